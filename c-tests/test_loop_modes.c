/* The ways to run a taps_event_loop, through the public header on loopback:
 * the same race (a blackholed 127.0.0.1 port first, a listening one second,
 * 100 ms attempt delay) gives the same winner and schedule when run by
 * taps_event_loop_run, by taps_event_loop_run_once, on the loop's own thread, and
 * embedded in a poll() loop written here. Also: stopping a thread cancels
 * pending races with TAPS_ERROR_LOOP_STOPPED, a thread-owned loop refuses
 * other runners, calls from another thread wake an embedded loop, and
 * run_once honours its timeout. */
#include "test_util.h"

#include <pthread.h>

#define DELAY_MS 100

typedef struct Rec {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int ready, error, other;
  int error_code;
  pthread_t cb_thread;
  taps_connection *conn; /* written by initiate before the race starts */
  taps_connection *cb_conn;
} Rec;

static void rec_init(Rec *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
}

static void rec_destroy(Rec *r) {
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

static int rec_done(Rec *r) {
  pthread_mutex_lock(&r->mu);
  int n = r->ready + r->error;
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* Wait (on a condition variable) until a callback arrived, at most ms. */
static int rec_wait(Rec *r, long long ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += (time_t)(ms / 1000);
  deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&r->mu);
  int rc = 0;
  while (r->ready + r->error == 0 && rc == 0) rc = pthread_cond_timedwait(&r->cv, &r->mu, &deadline);
  int n = r->ready + r->error;
  pthread_mutex_unlock(&r->mu);
  return n;
}

static void rec_note(Rec *r, taps_connection *c, int *counter) {
  pthread_mutex_lock(&r->mu);
  (*counter)++;
  r->cb_thread = pthread_self();
  r->cb_conn = c;
  r->error_code = taps_connection_get_error(c);
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

static int cb_ready(taps_connection *c, void *ud) {
  rec_note((Rec *)ud, c, &((Rec *)ud)->ready);
  return 0;
}
static int cb_error(taps_connection *c, void *ud) {
  rec_note((Rec *)ud, c, &((Rec *)ud)->error);
  return 0;
}
static int cb_other(taps_connection *c, void *ud) {
  rec_note((Rec *)ud, c, &((Rec *)ud)->other);
  return 0;
}

static taps_connection_callbacks rec_callbacks(Rec *r) {
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = cb_ready;
  cb.establishment_error = cb_error;
  cb.connection_error = cb_other;
  cb.closed = cb_other;
  cb.user_data = r;
  return cb;
}

/* The listeners every test races to. */
static uint16_t g_listen_port, g_blackhole_port;

static taps_preconnection *make_pre(taps_event_loop *loop, int with_blackhole, int with_listener) {
  taps_remote_endpoint *r[2];
  size_t n = 0;
  if (with_blackhole) r[n++] = test_remote_literal(AF_INET, g_blackhole_port);
  if (with_listener) r[n++] = test_remote_literal(AF_INET, g_listen_port);
  taps_racing_options opts = taps_racing_options_default();
  opts.connection_attempt_delay_ms = DELAY_MS;
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)r, n, NULL, &opts);
  CHECK(p != NULL);
  for (size_t i = 0; i < n; i++) taps_remote_endpoint_free(r[i]);
  return p;
}

/* What a finished race looked like. */
typedef struct Schedule {
  size_t n;
  uint16_t port[4];
  taps_attempt_outcome outcome[4];
  uint64_t started_us[4];
  int same_thread; /* the callback ran on the thread that ran the test */
} Schedule;

static Schedule schedule_of(Rec *r) {
  Schedule s;
  memset(&s, 0, sizeof s);
  s.n = taps_connection_attempt_count(r->conn);
  CHECK(s.n <= 4);
  for (size_t i = 0; i < s.n; i++) {
    taps_attempt_info a;
    CHECK_CODE(taps_connection_get_attempt(r->conn, i, &a), TAPS_OK);
    s.port[i] = test_addr_port(&a.address);
    s.outcome[i] = a.outcome;
    s.started_us[i] = a.started_us;
  }
  s.same_thread = pthread_equal(r->cb_thread, pthread_self());
  return s;
}

static void check_schedule(const char *mode, Rec *r, const Schedule *s) {
  fprintf(stderr, "  %-9s winner port %u, attempt 2 started at %.2f ms, callback on %s thread\n", mode,
          s->n > 1 ? s->port[1] : 0, s->n > 1 ? s->started_us[1] / 1000.0 : -1.0,
          s->same_thread ? "the caller's" : "another");
  if (r->ready != 1 || r->error != 0 || s->n != 2) {
    test_print_attempts(r->conn);
    CHECK_EQ(r->ready, 1);
    CHECK_EQ(r->error, 0);
    CHECK_EQ(s->n, 2);
  }
  CHECK(r->cb_conn == r->conn);
  CHECK_EQ(s->port[0], g_blackhole_port);
  CHECK_EQ(s->outcome[0], TAPS_ATTEMPT_OUTCOME_CANCELLED);
  CHECK_EQ(s->port[1], g_listen_port);
  CHECK_EQ(s->outcome[1], TAPS_ATTEMPT_OUTCOME_WON);
  CHECK(s->started_us[0] < (uint64_t)SCALED(50000));
  /* Never early; late by at most a loaded machine's scheduling delay. */
  CHECK_RANGE(s->started_us[1], DELAY_MS * 1000, DELAY_MS * 1000 + SCALED(150000));
}

static void same_race_every_way(void) {
  TEST_BEGIN("same_race_every_way");
  Schedule got[4];
  const char *names[4] = {"run", "run_once", "thread", "embedded"};
  for (int mode = 0; mode < 4; mode++) {
    taps_event_loop *loop = taps_event_loop_new();
    CHECK(loop != NULL);
    taps_preconnection *p = make_pre(loop, 1, 1);
    Rec r;
    rec_init(&r);
    if (mode == 2) CHECK_CODE(taps_event_loop_start_thread(loop), TAPS_OK);
    CHECK_CODE(taps_preconnection_initiate_with_racing(p, rec_callbacks(&r), &r.conn), TAPS_OK);
    switch (mode) {
      case 0: CHECK_CODE(taps_event_loop_run(loop), TAPS_OK); break;
      case 1: {
        int delivered = 0;
        for (int i = 0; i < 1000 && rec_done(&r) == 0; i++) {
          int n = taps_event_loop_run_once(loop, -1);
          CHECK(n >= 0);
          delivered += n;
        }
        CHECK_EQ(delivered, 1);
        break;
      }
      case 2: {
        CHECK_EQ(rec_wait(&r, SCALED(10000)), 1);
        /* Only the loop's thread runs it now. */
        CHECK_CODE(taps_event_loop_run(loop), TAPS_ERROR_INVALID_STATE);
        CHECK_CODE(taps_event_loop_run_once(loop, 0), TAPS_ERROR_INVALID_STATE);
        CHECK_CODE(taps_event_loop_process(loop), TAPS_ERROR_INVALID_STATE);
        CHECK_CODE(taps_event_loop_get_fd(loop), TAPS_ERROR_INVALID_STATE);
        CHECK_CODE(taps_event_loop_get_timeout_ms(loop), TAPS_ERROR_INVALID_STATE);
        CHECK_CODE(taps_event_loop_start_thread(loop), TAPS_ERROR_INVALID_STATE);
        CHECK_CODE(taps_event_loop_stop_thread(loop), TAPS_OK);
        CHECK_CODE(taps_event_loop_stop_thread(loop), TAPS_ERROR_INVALID_STATE);
        break;
      }
      default: {
        int fd = taps_event_loop_get_fd(loop);
        CHECK(fd >= 0);
        int delivered = 0;
        for (int i = 0; i < 10000 && rec_done(&r) == 0; i++) {
          int ms = taps_event_loop_get_timeout_ms(loop);
          CHECK(ms >= -1);
          struct pollfd pfd = {fd, POLLIN, 0};
          CHECK(poll(&pfd, 1, ms) >= 0);
          int n = taps_event_loop_process(loop);
          CHECK(n >= 0);
          delivered += n;
        }
        CHECK_EQ(delivered, 1);
        /* Nothing left: no timer, and the fd is quiet. */
        CHECK_EQ(taps_event_loop_get_timeout_ms(loop), -1);
        struct pollfd pfd = {fd, POLLIN, 0};
        CHECK_EQ(poll(&pfd, 1, 0), 0);
        break;
      }
    }
    got[mode] = schedule_of(&r);
    check_schedule(names[mode], &r, &got[mode]);
    CHECK_EQ(got[mode].same_thread, mode != 2);
    taps_connection_free(r.conn);
    taps_preconnection_free(p);
    taps_event_loop_free(loop);
    rec_destroy(&r);
  }
  /* The same winner and the same order everywhere (checked against the
   * expectation above); the attempt delay the same within a loaded
   * machine's jitter. */
  for (int mode = 1; mode < 4; mode++) {
    CHECK_EQ(got[mode].n, got[0].n);
    long long d = (long long)got[mode].started_us[1] - (long long)got[0].started_us[1];
    CHECK_RANGE(d, -SCALED(150000), SCALED(150000));
  }
  TEST_PASS("same_race_every_way");
}

static void stop_thread_cancels_pending_races(void) {
  TEST_BEGIN("stop_thread_cancels_pending_races");
  int fds_before = test_count_fds();
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  CHECK_CODE(taps_event_loop_stop_thread(loop), TAPS_ERROR_INVALID_STATE);
  CHECK_CODE(taps_event_loop_start_thread(loop), TAPS_OK);
  taps_preconnection *stuck = make_pre(loop, 1, 0);
  Rec r;
  rec_init(&r);
  CHECK_CODE(taps_preconnection_initiate_with_racing(stuck, rec_callbacks(&r), &r.conn), TAPS_OK);
  test_sleep_ms(20);
  CHECK_EQ(rec_done(&r), 0);
  CHECK_CODE(taps_event_loop_stop_thread(loop), TAPS_OK);
  /* The callback was called on the loop's thread before stop returned. */
  CHECK_EQ(r.error, 1);
  CHECK_EQ(r.ready + r.other, 0);
  CHECK_CODE(r.error_code, TAPS_ERROR_LOOP_STOPPED);
  CHECK_CODE(taps_connection_get_error(r.conn), TAPS_ERROR_LOOP_STOPPED);
  CHECK(!pthread_equal(r.cb_thread, pthread_self()));
  CHECK(strstr(taps_strerror(TAPS_ERROR_LOOP_STOPPED), "stopped") != NULL);
  taps_connection_free(r.conn);
  rec_destroy(&r);

  /* The caller may run the loop itself afterwards. */
  taps_preconnection *won = make_pre(loop, 0, 1);
  rec_init(&r);
  CHECK_CODE(taps_preconnection_initiate_with_racing(won, rec_callbacks(&r), &r.conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(r.ready, 1);
  CHECK(pthread_equal(r.cb_thread, pthread_self()));
  taps_connection_free(r.conn);
  rec_destroy(&r);

  /* Freeing a loop whose thread runs a race: joined, no callback. */
  CHECK_CODE(taps_event_loop_start_thread(loop), TAPS_OK);
  rec_init(&r);
  CHECK_CODE(taps_preconnection_initiate_with_racing(stuck, rec_callbacks(&r), &r.conn), TAPS_OK);
  taps_preconnection_free(stuck);
  taps_preconnection_free(won);
  taps_event_loop_free(loop);
  CHECK_EQ(rec_done(&r) + r.other, 0);
  CHECK_CODE(taps_connection_get_error(r.conn), TAPS_ERROR_CANCELLED);
  taps_connection_free(r.conn);
  rec_destroy(&r);
  /* The loop's own fds (epoll, eventfd, timerfd) and sockets are gone. */
  if (test_count_fds() != fds_before) test_list_fds("after taps_event_loop_free");
  CHECK_EQ(test_count_fds(), fds_before);
  TEST_PASS("stop_thread_cancels_pending_races");
}

/* Another thread initiates races on a loop embedded in this thread's
 * poll() loop: the loop's fd wakes this thread, callbacks run here. */
typedef struct Starter {
  taps_preconnection *p;
  taps_preconnection *by_name; /* "localhost": resolver answers wake the fd too */
  Rec *recs;
  int n;
} Starter;

static void *starter_main(void *arg) {
  Starter *s = (Starter *)arg;
  for (int i = 0; i < s->n; i++) {
    taps_preconnection *p = i % 4 == 3 ? s->by_name : s->p;
    CHECK_CODE(taps_preconnection_initiate_with_racing(p, rec_callbacks(&s->recs[i]), &s->recs[i].conn), TAPS_OK);
    test_sleep_ms(1);
  }
  return NULL;
}

static void embedded_loop_woken_by_other_threads(void) {
  TEST_BEGIN("embedded_loop_woken_by_other_threads");
  enum { N = 40 };
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_preconnection *p = make_pre(loop, 0, 1);
  taps_remote_endpoint *name[1] = {test_remote_host("localhost", g_listen_port)};
  taps_preconnection *by_name = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)name, 1, NULL, NULL);
  CHECK(by_name != NULL);
  taps_remote_endpoint_free(name[0]);
  Rec recs[N];
  for (int i = 0; i < N; i++) rec_init(&recs[i]);
  Starter s = {p, by_name, recs, N};
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, starter_main, &s), 0);
  int fd = taps_event_loop_get_fd(loop);
  CHECK(fd >= 0);
  int delivered = 0;
  uint64_t t0 = test_now_us();
  while (delivered < N) {
    CHECK((long long)(test_now_us() - t0) < SCALED(20000000));
    int ms = taps_event_loop_get_timeout_ms(loop);
    CHECK(ms >= -1);
    struct pollfd pfd = {fd, POLLIN, 0};
    CHECK(poll(&pfd, 1, ms) >= 0);
    int n = taps_event_loop_process(loop);
    CHECK(n >= 0);
    delivered += n;
  }
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_EQ(delivered, N);
  for (int i = 0; i < N; i++) {
    CHECK_EQ(recs[i].ready, 1);
    CHECK(recs[i].cb_conn == recs[i].conn);
    CHECK(pthread_equal(recs[i].cb_thread, pthread_self()));
    taps_connection_free(recs[i].conn);
    rec_destroy(&recs[i]);
  }
  taps_preconnection_free(p);
  taps_preconnection_free(by_name);
  taps_event_loop_free(loop);
  TEST_PASS("embedded_loop_woken_by_other_threads");
}

static void run_once_timeout(void) {
  TEST_BEGIN("run_once_timeout");
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_preconnection *p = make_pre(loop, 1, 0);
  Rec r;
  rec_init(&r);
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, rec_callbacks(&r), &r.conn), TAPS_OK);
  uint64_t t0 = test_now_us();
  CHECK_EQ(taps_event_loop_run_once(loop, 60), 0);
  long long took = (long long)(test_now_us() - t0);
  CHECK_RANGE(took, 55000, SCALED(5000000));
  CHECK_EQ(taps_event_loop_run_once(loop, 0), 0);
  /* Closing from another thread's point of view: `closed` is delivered. */
  taps_connection_close(r.conn);
  CHECK_EQ(taps_event_loop_run_once(loop, -1), 1);
  CHECK_EQ(r.other, 1);
  /* Nothing pending: returns at once even with no limit. */
  t0 = test_now_us();
  CHECK_EQ(taps_event_loop_run_once(loop, -1), 0);
  CHECK((long long)(test_now_us() - t0) < SCALED(1000000));
  CHECK_CODE(taps_event_loop_run_once(loop, -2), TAPS_ERROR_INVALID_ARGUMENT);
  taps_connection_free(r.conn);
  rec_destroy(&r);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  TEST_PASS("run_once_timeout");
}

static void null_arguments(void) {
  TEST_BEGIN("null_arguments");
  CHECK_CODE(taps_event_loop_run_once(NULL, 0), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_event_loop_process(NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_event_loop_get_fd(NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_EQ(taps_event_loop_get_timeout_ms(NULL), -1);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_event_loop_start_thread(NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_event_loop_stop_thread(NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK(taps_event_loop_shared(NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  CHECK(taps_event_loop_shared("\xff\xfe") == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_ARGUMENT);
  taps_event_loop_release(NULL);
  TEST_PASS("null_arguments");
}

int main(void) {
  int l = test_listen(AF_INET, &g_listen_port);
  CHECK(l >= 0);
  int filler = -1;
  int bh = test_blackhole(AF_INET, 0, &g_blackhole_port, &filler);
  if (bh < 0) test_skip("no blackhole on 127.0.0.1");
  same_race_every_way();
  test_drain(l);
  stop_thread_cancels_pending_races();
  test_drain(l);
  embedded_loop_woken_by_other_threads();
  run_once_timeout();
  null_arguments();
  close(filler);
  close(bh);
  close(l);
  return 0;
}
