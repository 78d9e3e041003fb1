/* Faults on real loopback sockets (issue 8):
 *
 * - emfile: in a forked child whose RLIMIT_NOFILE leaves no free fd, the
 *   attempts fail with EMFILE (readable through taps_connection_get_attempt) and
 *   the race goes on: a candidate that arrives once fds are free again
 *   starts and wins;
 * - resolver_never_answers: a user resolver that never answers ends the
 *   race with TAPS_ERROR_TIMED_OUT at exactly total_timeout_ms (manual
 *   clock) and cancels both queries;
 * - cancel_*: taps_connection_free at every stage (before the loop runs, during
 *   resolution by a user resolver, with attempts connecting, from another thread while the loop's thread
 *   runs the race, inside ready / establishment_error / connection_error /
 *   closed): no callback afterwards, every socket closed;
 * - loop_stopped_mid_race: taps_event_loop_stop_thread with attempts connecting
 *   gives establishment_error with TAPS_ERROR_LOOP_STOPPED and closes the
 *   sockets; the loop then races again; taps_event_loop_free mid-race cancels
 *   silently;
 * - peer_reset: the peer resets (SO_LINGER 0) right after accept:
 *   connection_error on the established connection, TAPS_ERROR_IO with
 *   ECONNRESET, the socket closed.
 *
 * Every case checks the process's fd count before and after. Run with a
 * case name to run one case.
 */
#include "hardening.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>

static int faults_injected;

/* Run the loop in steps of at most 20 ms until `*flag` >= `want` or
 * `ms` pass. */
static void run_until(taps_event_loop *loop, const int *flag, int want, int ms) {
  uint64_t end = test_now_us() + (uint64_t)SCALED(ms) * 1000;
  while (*flag < want && test_now_us() < end) {
    int rc = taps_event_loop_run_once(loop, 20);
    CHECK(rc >= 0);
  }
}

static taps_preconnection *pre_for(taps_event_loop *loop, taps_remote_endpoint **eps, size_t n, const taps_racing_options *o) {
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)eps, n, NULL, o);
  CHECK(p != NULL);
  for (size_t i = 0; i < n; i++) taps_remote_endpoint_free(eps[i]);
  return p;
}

/* ---- EMFILE ------------------------------------------------------------ */

static int emfile_child(void) {
  uint16_t port = 0;
  int l = test_bind_socket(AF_INET, 0, 128, &port);
  CHECK(l >= 0);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  HxResolver r;
  hx_set_resolver(loop, &r, HX_NEVER);
  taps_remote_endpoint *eps[2] = {test_remote_host("first.test", port), test_remote_host("late.test", port)};
  taps_racing_options o = taps_racing_options_default();
  o.resolution_delay_ms = 0;
  taps_preconnection *p = pre_for(loop, eps, 2, &o);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_connection *c = NULL;
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &c), TAPS_OK);
  CHECK_EQ(taps_event_loop_run_once(loop, 0), 0);
  CHECK_EQ(r.asked, 4);

  /* No free fd from now on: the lowest free fd is the limit. */
  int lowest = fcntl(0, F_DUPFD_CLOEXEC, 0);
  CHECK(lowest >= 0);
  close(lowest);
  struct rlimit old, tight;
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  tight = old;
  tight.rlim_cur = (rlim_t)lowest;
  CHECK(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  CHECK(socket(AF_INET, SOCK_STREAM, 0) < 0 && errno == EMFILE);

  /* first.test answers two addresses: both attempts fail with EMFILE, one
   * after the other (10 ms apart: RFC 8305 §5); late.test has not
   * answered, so the race is still on. */
  struct sockaddr_storage a[2];
  test_make_addr(AF_INET, 0, &a[0]);
  test_make_addr(AF_INET, 0, &a[1]);
  ((struct sockaddr_in *)&a[1])->sin_addr.s_addr = htonl(0x7f000002);
  ((struct sockaddr_in *)&a[0])->sin_addr.s_addr = htonl(0x7f000003);
  CHECK_CODE(taps_resolver_query_answer(hx_query(&r, "first.test", AF_INET6), NULL, 0), TAPS_OK);
  CHECK_CODE(taps_resolver_query_answer(hx_query(&r, "first.test", AF_INET), a, 2), TAPS_OK);
  for (int i = 0; i < 20 && taps_connection_attempt_count(c) < 2; i++) CHECK(taps_event_loop_run_once(loop, 5) >= 0);
  for (int i = 0; i < 5; i++) CHECK(taps_event_loop_run_once(loop, 0) >= 0);
  CHECK_EQ(rec.ready + rec.establishment_error, 0);
  CHECK_EQ(taps_connection_attempt_count(c), 2);
  for (size_t i = 0; i < 2; i++) {
    taps_attempt_info info;
    CHECK_CODE(taps_connection_get_attempt(c, i, &info), TAPS_OK);
    CHECK_EQ(info.outcome, TAPS_ATTEMPT_OUTCOME_FAILED);
    CHECK_EQ(info.os_error, EMFILE);
  }

  /* fds are free again: late.test's address (127.0.0.1, the listener)
   * starts at once and wins. */
  CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
  CHECK_CODE(taps_resolver_query_answer(hx_query(&r, "late.test", AF_INET6), NULL, 0), TAPS_OK);
  struct sockaddr_storage b;
  test_make_addr(AF_INET, 0, &b);
  CHECK_CODE(taps_resolver_query_answer(hx_query(&r, "late.test", AF_INET), &b, 1), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  test_print_attempts(c);
  CHECK_EQ(rec.ready, 1);
  CHECK_EQ(taps_connection_attempt_count(c), 3);
  taps_attempt_info w;
  CHECK_CODE(taps_connection_get_attempt(c, 2, &w), TAPS_OK);
  CHECK_EQ(w.outcome, TAPS_ATTEMPT_OUTCOME_WON);
  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  close(l);
  return 0;
}

/* The same with the system out of fds for the whole race: every attempt
 * fails with EMFILE and establishment_error reports it. */
static int emfile_all_child(void) {
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_remote_endpoint *eps[3] = {test_remote_literal(AF_INET, 9), test_remote_host("127.0.0.2", 9),
                            test_remote_host("127.0.0.3", 9)};
  taps_preconnection *p = pre_for(loop, eps, 3, NULL);
  int lowest = fcntl(0, F_DUPFD_CLOEXEC, 0);
  close(lowest);
  struct rlimit old, tight;
  CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
  tight = old;
  tight.rlim_cur = (rlim_t)lowest;
  CHECK(setrlimit(RLIMIT_NOFILE, &tight) == 0);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_connection *c = NULL;
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &c), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
  test_print_attempts(c);
  CHECK_EQ(rec.establishment_error, 1);
  CHECK_CODE(taps_connection_get_error(c), TAPS_ERROR_ALL_ATTEMPTS_FAILED);
  CHECK_EQ(taps_connection_get_os_error(c), EMFILE);
  CHECK_EQ(taps_connection_attempt_count(c), 3);
  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  return 0;
}

static void in_child(const char *name, int (*body)(void)) {
  TEST_BEGIN(name);
  fflush(stderr);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(body());
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s: child failed (status %d)\n", name, status);
    exit(1);
  }
  faults_injected++;
  TEST_PASS(name);
}

static void emfile(void) { in_child("emfile", emfile_child); }
static void emfile_all(void) { in_child("emfile_all", emfile_all_child); }

/* ---- a resolver that never answers ------------------------------------- */

static void resolver_never_answers(void) {
  TEST_BEGIN("resolver_never_answers");
  int fds = test_count_fds();
  taps_event_loop *loop = hx_manual_loop();
  HxResolver r;
  hx_set_resolver(loop, &r, HX_NEVER);
  taps_remote_endpoint *eps[1] = {test_remote_host("silent.test", 443)};
  taps_racing_options o = taps_racing_options_default();
  o.total_timeout_ms = 300;
  taps_preconnection *p = pre_for(loop, eps, 1, &o);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_connection *c = NULL;
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &c), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(r.asked, 2);
  CHECK_CODE(taps_event_loop_advance_clock(loop, 299999), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(rec.establishment_error, 0);
  CHECK_CODE(taps_event_loop_advance_clock(loop, 1), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(rec.establishment_error, 1);
  CHECK_CODE(taps_connection_get_error(c), TAPS_ERROR_TIMED_OUT);
  CHECK_EQ(taps_connection_attempt_count(c), 0);
  CHECK_EQ(r.cancels, 2);
  /* (No late answer here: a query's handle is invalid once `cancel`
   * returned, and using it is a use-after-free that valgrind reports.) */
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(rec.ready + rec.establishment_error, 1);
  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  CHECK_EQ(test_count_fds(), fds);
  faults_injected++;
  TEST_PASS("resolver_never_answers");
}

/* The same on the real clock: total timeout 100 ms. (No case here uses
 * the system resolver: a name getaddrinfo does not find in /etc/hosts
 * would query the machine's DNS server, which is not on loopback.) */
static void resolver_never_answers_real_clock(void) {
  TEST_BEGIN("resolver_never_answers_real_clock");
  int fds = test_count_fds();
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  HxResolver r;
  hx_set_resolver(loop, &r, HX_NEVER);
  taps_remote_endpoint *eps[1] = {test_remote_host("silent.test", 443)};
  taps_racing_options o = taps_racing_options_default();
  o.total_timeout_ms = 100;
  taps_preconnection *p = pre_for(loop, eps, 1, &o);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_connection *c = NULL;
  uint64_t t0 = test_now_us();
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &c), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  uint64_t took = test_now_us() - t0;
  CHECK_EQ(rec.establishment_error, 1);
  CHECK_CODE(taps_connection_get_error(c), TAPS_ERROR_TIMED_OUT);
  CHECK_RANGE(took, 100000, SCALED(1000000));
  CHECK_EQ(r.cancels, 2);
  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  CHECK_EQ(test_count_fds(), fds);
  faults_injected++;
  TEST_PASS("resolver_never_answers_real_clock");
}

/* ---- cancel at every stage ---------------------------------------------- */

typedef struct Stage {
  taps_event_loop *loop;
  taps_preconnection *pre;
  taps_connection *conn;
  TestRecord rec;
  int listener, filler, listener2, filler2;
  int fds;
} Stage;

/* A race over two endpoints, 10 ms apart: two blackholed 127.0.0.1 ports
 * (attempts hang), or 127.0.0.1 on a listener then 127.0.0.2 (refused). */
static void stage_begin(Stage *s, int blackhole) {
  memset(s, 0, sizeof *s);
  s->fds = test_count_fds();
  uint16_t port = 0, port2 = 0;
  s->filler = s->filler2 = s->listener2 = -1;
  s->listener = blackhole ? test_blackhole(AF_INET, 0, &port, &s->filler) : test_listen(AF_INET, &port);
  CHECK(s->listener >= 0);
  if (blackhole) {
    s->listener2 = test_blackhole(AF_INET, 0, &port2, &s->filler2);
    CHECK(s->listener2 >= 0);
  }
  s->loop = taps_event_loop_new();
  CHECK(s->loop != NULL);
  taps_remote_endpoint *eps[2] = {test_remote_literal(AF_INET, port),
                            blackhole ? test_remote_literal(AF_INET, port2) : test_remote_host("127.0.0.2", port)};
  taps_racing_options o = taps_racing_options_default();
  o.connection_attempt_delay_ms = 10;
  s->pre = pre_for(s->loop, eps, 2, &o);
}

static void stage_end(Stage *s, const char *name) {
  /* Nothing follows: the loop has nothing left to do. */
  CHECK_CODE(taps_event_loop_run(s->loop), TAPS_OK);
  taps_preconnection_free(s->pre);
  taps_event_loop_free(s->loop);
  if (s->filler >= 0) close(s->filler);
  if (s->filler2 >= 0) close(s->filler2);
  if (s->listener2 >= 0) close(s->listener2);
  close(s->listener);
  int now = test_count_fds();
  if (now != s->fds) {
    test_list_fds(name);
    CHECK_EQ(now, s->fds);
  }
  faults_injected++;
  TEST_PASS(name);
}

static void cancel_before_run(void) {
  TEST_BEGIN("cancel_before_run");
  Stage s;
  stage_begin(&s, 0);
  CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, test_callbacks(&s.rec), &s.conn), TAPS_OK);
  taps_connection_free(s.conn);
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  CHECK_EQ(s.rec.ready + s.rec.establishment_error + s.rec.closed, 0);
  stage_end(&s, "cancel_before_run");
}

static void cancel_during_user_resolution(void) {
  TEST_BEGIN("cancel_during_user_resolution");
  Stage s;
  stage_begin(&s, 0);
  HxResolver r;
  hx_set_resolver(s.loop, &r, HX_NEVER);
  taps_remote_endpoint *eps[1] = {test_remote_host("slow.test", 80)};
  taps_preconnection *p = pre_for(s.loop, eps, 1, NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&s.rec), &s.conn), TAPS_OK);
  CHECK(taps_event_loop_run_once(s.loop, 0) >= 0);
  CHECK_EQ(r.asked, 2);
  taps_connection_free(s.conn);
  CHECK_EQ(r.cancels, 2);
  /* Answering a cancelled query's handle is not allowed (it is invalid
   * after cancel returns); the loop simply has nothing to do. */
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  CHECK_EQ(s.rec.ready + s.rec.establishment_error + s.rec.closed, 0);
  taps_preconnection_free(p);
  stage_end(&s, "cancel_during_user_resolution");
}

static void cancel_with_attempts_running(void) {
  TEST_BEGIN("cancel_with_attempts_running");
  Stage s;
  stage_begin(&s, 1);
  CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, test_callbacks(&s.rec), &s.conn), TAPS_OK);
  uint64_t end = test_now_us() + (uint64_t)SCALED(2000000);
  while (taps_connection_attempt_count(s.conn) < 2 && test_now_us() < end) CHECK(taps_event_loop_run_once(s.loop, 5) >= 0);
  CHECK_EQ(taps_connection_attempt_count(s.conn), 2);
  int racing_fds = test_count_fds();
  taps_connection_free(s.conn);
  /* Both attempts' sockets are closed when taps_connection_free returns. */
  CHECK_EQ(test_count_fds(), racing_fds - 2);
  CHECK_EQ(s.rec.ready + s.rec.establishment_error + s.rec.closed, 0);
  stage_end(&s, "cancel_with_attempts_running");
}

static void cancel_after_established(void) {
  TEST_BEGIN("cancel_after_established");
  Stage s;
  stage_begin(&s, 0);
  CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, test_callbacks(&s.rec), &s.conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  CHECK_EQ(s.rec.ready, 1);
  taps_connection_free(s.conn);
  test_drain(s.listener);
  CHECK_EQ(s.rec.closed + s.rec.connection_error, 0);
  stage_end(&s, "cancel_after_established");
}

typedef struct FreeFromThread {
  taps_connection *conn;
  int done;
} FreeFromThread;

static void *free_thread(void *arg) {
  FreeFromThread *t = (FreeFromThread *)arg;
  taps_connection_free(t->conn);
  __atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static void cancel_from_another_thread(void) {
  TEST_BEGIN("cancel_from_another_thread");
  Stage s;
  stage_begin(&s, 1);
  CHECK_CODE(taps_event_loop_start_thread(s.loop), TAPS_OK);
  for (int i = 0; i < 20; i++) {
    TestRecord rec;
    memset(&rec, 0, sizeof rec);
    FreeFromThread t = {NULL, 0};
    CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, test_callbacks(&rec), &t.conn), TAPS_OK);
    test_sleep_ms((unsigned)(i % 4) * 5);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, free_thread, &t) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    int seen = __atomic_load_n(&rec.ready, __ATOMIC_SEQ_CST) + __atomic_load_n(&rec.establishment_error, __ATOMIC_SEQ_CST);
    test_sleep_ms(5);
    /* No callback after taps_connection_free returned. */
    CHECK_EQ(__atomic_load_n(&rec.ready, __ATOMIC_SEQ_CST) + __atomic_load_n(&rec.establishment_error, __ATOMIC_SEQ_CST),
             seen);
    CHECK_EQ(seen, 0);
  }
  CHECK_CODE(taps_event_loop_stop_thread(s.loop), TAPS_OK);
  stage_end(&s, "cancel_from_another_thread");
}

/* Free inside each callback. */
static int free_self(taps_connection *c, void *ud) {
  int *n = (int *)ud;
  (*n)++;
  taps_connection_free(c);
  return 0;
}

static void cancel_inside_callbacks(void) {
  TEST_BEGIN("cancel_inside_callbacks");
  Stage s;
  stage_begin(&s, 0);
  /* inside ready */
  int calls = 0;
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.user_data = &calls;
  cb.ready = free_self;
  taps_connection *c = NULL;
  CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, cb, &c), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  CHECK_EQ(calls, 1);
  /* inside closed */
  calls = 0;
  memset(&cb, 0, sizeof cb);
  cb.user_data = &calls;
  cb.closed = free_self;
  CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, cb, &c), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  taps_connection_close(c);
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  CHECK_EQ(calls, 1);
  /* inside connection_error: the peer resets */
  calls = 0;
  memset(&cb, 0, sizeof cb);
  cb.user_data = &calls;
  cb.connection_error = free_self;
  test_drain(s.listener);
  CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, cb, &c), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  int peer = accept4(s.listener, NULL, NULL, SOCK_CLOEXEC);
  CHECK(peer >= 0);
  struct linger lg = {1, 0};
  CHECK(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  close(peer);
  run_until(s.loop, &calls, 1, 2000);
  CHECK_EQ(calls, 1);
  /* inside establishment_error: a refused port */
  calls = 0;
  memset(&cb, 0, sizeof cb);
  cb.user_data = &calls;
  cb.establishment_error = free_self;
  uint16_t rport = 0;
  int refusing = test_refusing(AF_INET, &rport);
  taps_remote_endpoint *eps[1] = {test_remote_literal(AF_INET, rport)};
  taps_preconnection *p = pre_for(s.loop, eps, 1, NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, cb, &c), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  CHECK_EQ(calls, 1);
  taps_preconnection_free(p);
  close(refusing);
  test_drain(s.listener);
  stage_end(&s, "cancel_inside_callbacks");
}

/* ---- the loop stopped mid-race ------------------------------------------ */

static void loop_stopped_mid_race(void) {
  TEST_BEGIN("loop_stopped_mid_race");
  Stage s;
  stage_begin(&s, 1);
  CHECK_CODE(taps_event_loop_start_thread(s.loop), TAPS_OK);
  int base = test_count_fds();
  TestRecord recs[5];
  taps_connection *conns[5];
  memset(recs, 0, sizeof recs);
  for (int i = 0; i < 5; i++) CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, test_callbacks(&recs[i]), &conns[i]), TAPS_OK);
  test_sleep_ms(30); /* both attempts of each race are connecting */
  CHECK_CODE(taps_event_loop_stop_thread(s.loop), TAPS_OK);
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(recs[i].establishment_error, 1);
    CHECK_EQ(recs[i].ready, 0);
    CHECK_CODE(taps_connection_get_error(conns[i]), TAPS_ERROR_LOOP_STOPPED);
    CHECK(taps_connection_attempt_count(conns[i]) >= 1);
    for (size_t a = 0; a < taps_connection_attempt_count(conns[i]); a++) {
      taps_attempt_info info;
      CHECK_CODE(taps_connection_get_attempt(conns[i], a, &info), TAPS_OK);
      CHECK_EQ(info.outcome, TAPS_ATTEMPT_OUTCOME_CANCELLED);
    }
    taps_connection_free(conns[i]);
  }
  /* Every attempt's socket is closed. */
  CHECK_EQ(test_count_fds(), base);
  /* The loop races again, on its thread ... */
  uint16_t port = 0;
  int l = test_listen(AF_INET, &port);
  taps_remote_endpoint *eps[1] = {test_remote_literal(AF_INET, port)};
  taps_preconnection *p = pre_for(s.loop, eps, 1, NULL);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_connection *c = NULL;
  CHECK_CODE(taps_event_loop_start_thread(s.loop), TAPS_OK);
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &c), TAPS_OK);
  for (int i = 0; i < 200 && __atomic_load_n(&rec.ready, __ATOMIC_SEQ_CST) == 0; i++) test_sleep_ms(5);
  CHECK_EQ(__atomic_load_n(&rec.ready, __ATOMIC_SEQ_CST), 1);
  /* ... and freeing it mid-race cancels silently. */
  TestRecord rec2;
  memset(&rec2, 0, sizeof rec2);
  taps_connection *c2 = NULL;
  CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, test_callbacks(&rec2), &c2), TAPS_OK);
  test_sleep_ms(20);
  taps_event_loop_free(s.loop);
  s.loop = taps_event_loop_new();
  CHECK_EQ(rec2.ready + rec2.establishment_error, 0);
  CHECK_CODE(taps_connection_get_error(c2), TAPS_ERROR_CANCELLED);
  taps_connection_free(c2);
  taps_connection_free(c);
  taps_preconnection_free(p);
  close(l);
  /* stage_end frees the taps_preconnection of the freed loop: fine, it only
   * keeps the loop's shared state alive. */
  stage_end(&s, "loop_stopped_mid_race");
}

/* ---- the peer resets right after accept ---------------------------------- */

static void peer_reset(void) {
  TEST_BEGIN("peer_reset");
  Stage s;
  stage_begin(&s, 0);
  CHECK_CODE(taps_preconnection_initiate_with_racing(s.pre, test_callbacks(&s.rec), &s.conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(s.loop), TAPS_OK);
  CHECK_EQ(s.rec.ready, 1);
  CHECK(taps_connection_get_fd(s.conn) >= 0);
  int peer = accept4(s.listener, NULL, NULL, SOCK_CLOEXEC);
  CHECK(peer >= 0);
  struct linger lg = {1, 0};
  CHECK(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
  close(peer); /* RST */
  run_until(s.loop, &s.rec.connection_error, 1, 2000);
  CHECK_EQ(s.rec.connection_error, 1);
  CHECK_CODE(taps_connection_get_error(s.conn), TAPS_ERROR_IO);
  CHECK_EQ(taps_connection_get_os_error(s.conn), ECONNRESET);
  CHECK_EQ(taps_connection_get_fd(s.conn), -1);
  /* Closing the failed connection does nothing; nothing else follows. */
  taps_connection_close(s.conn);
  for (int i = 0; i < 3; i++) CHECK(taps_event_loop_run_once(s.loop, 10) >= 0);
  CHECK_EQ(s.rec.closed + s.rec.establishment_error, 0);
  CHECK_EQ(s.rec.connection_error, 1);
  taps_connection_free(s.conn);
  stage_end(&s, "peer_reset");
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } cases[] = {
      /* The forked cases first, while the process has no thread. */
      {"emfile", emfile},
      {"emfile_all", emfile_all},
      {"resolver_never_answers", resolver_never_answers},
      {"resolver_never_answers_real_clock", resolver_never_answers_real_clock},
      {"cancel_before_run", cancel_before_run},
      {"cancel_during_user_resolution", cancel_during_user_resolution},
      {"cancel_with_attempts_running", cancel_with_attempts_running},
      {"cancel_after_established", cancel_after_established},
      {"cancel_from_another_thread", cancel_from_another_thread},
      {"cancel_inside_callbacks", cancel_inside_callbacks},
      {"loop_stopped_mid_race", loop_stopped_mid_race},
      {"peer_reset", peer_reset},
  };
  size_t n = sizeof cases / sizeof cases[0];
  size_t ran = 0;
  for (size_t i = 0; i < n; i++) {
    if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
    cases[i].fn();
    ran++;
  }
  if (ran == 0) {
    fprintf(stderr, "no case named %s\n", argc > 1 ? argv[1] : "?");
    return 2;
  }
  fprintf(stderr, "%zu cases, %d faults injected\n", ran, faults_injected);
  return 0;
}
