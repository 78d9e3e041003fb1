/* RFC 8305 races through the C API on the namespace test bed
 * (tests/netbed/netbed.py), run in the bed's client namespace by
 * tests/integration/c_netbed.py:
 *
 *   test_netbed CASE
 *
 * Each case races real sockets to the bed's names (hosts file, or the bed's
 * DNS server for *.slow.test) with a 250 ms Connection Attempt Delay and the
 * default 50 ms Resolution Delay, RUNS times, on a new taps_event_loop each run
 * (its resolution cache is empty), and checks from the race report which
 * attempts started, when, how each ended, which one won, and that every
 * loser's socket was closed before `ready` ran and every socket and loop fd
 * after the frees (the library's fds: TCP sockets and the loop's anon
 * inodes; glibc's DNS socket in a resolver thread still waiting for a late
 * AAAA answer is not one of them):
 *
 *   blackhole   blackhole.test:7001, IPv6 SYNs dropped: IPv6 first (cancelled),
 *               IPv4 one attempt delay later (RFC 8305 §5), IPv4 wins;
 *   refused     refused.test:7002: IPv6 refused, IPv4 at once after (10 ms
 *               after IPv6's start at the earliest, RFC 8305 §5), wins;
 *   both        both.test:7003: one attempt, IPv6, wins;
 *   slow_aaaa   aaaa300.slow.test:7003 (AAAA after 300 ms): IPv4 alone, started
 *               the Resolution Delay after A (RFC 8305 §3), wins;
 *   fast_aaaa   aaaa20.slow.test:7003: IPv6 alone, started when AAAA came;
 *   late_aaaa   aaaa150.slow.test:7004 (IPv4 blackholed): IPv4 at ~50 ms, the
 *               late IPv6 joins one attempt delay later and wins;
 *   two_paths   twopath.test:7005 over local endpoints bound to c2 (SYNs
 *               dropped) and c1: the c1 path wins, in the order c2, c1
 *               no earlier than one attempt delay after the race started
 *               (RFC 9623 §4.3, delayed branches);
 *   embedded    blackhole, with the loop driven by the test's own poll(2) on
 *               taps_event_loop_get_fd / taps_event_loop_get_timeout_ms /
 *               taps_event_loop_process: the same schedule;
 *   free_while_resolving
 *               aaaa3000.slow.test: IPv4 wins after 50 ms while the AAAA
 *               lookup still runs on a resolver thread; after
 *               taps_event_loop_free the process has no fd of the loop left.
 *
 * Timing margins are wide (CI runs this beside valgrind and ASan builds on 2
 * CPUs): no attempt may start before its RFC time; the median lateness must
 * be under 5 ms and every run's under 30 ms. Exit 0 pass, 1 fail, 2 usage.
 */
#include "test_util.h"

#include <net/if.h>
#include <sys/stat.h>

#define RUNS 5
#define DELAY_MS 250
#define RES_DELAY_MS 50
#define MEDIAN_LATE_US 5000
#define RUN_LATE_US 30000

/* The fds the library opens: TCP sockets (attempts, connections) and anon
 * inodes (the loop's epoll, eventfd, timerfd). Not glibc's UDP socket of a
 * DNS lookup still running on a resolver thread. */
static int library_fds(int *loop_fds) {
  int n = 0, loops = 0;
  DIR *d = opendir("/proc/self/fd");
  CHECK(d != NULL);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] == '.' || fd == dirfd(d)) continue;
    char path[64], target[128] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(path, target, sizeof target - 1);
    if (len > 0) target[len] = '\0';
    if (strncmp(target, "anon_inode:", 11) == 0) {
      n++;
      loops++;
      continue;
    }
    int type = 0;
    socklen_t tl = sizeof type;
    if (strncmp(target, "socket:", 7) == 0 && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
        type == SOCK_STREAM)
      n++;
  }
  closedir(d);
  if (loop_fds) *loop_fds = loops;
  return n;
}

static int on_ready(taps_connection *c, void *ud);

/* One finished race: the report copied out, the winner's family. */
typedef struct Race {
  TestRecord rec;
  int fds_before;   /* library fds open just before initiate */
  int fds_in_ready; /* ... and in `ready` */
  int fds_base;     /* ... before taps_event_loop_new */
  int winner_family;
  char winner_if[IF_NAMESIZE];
  size_t n;
  taps_attempt_info a[8];
  char if_name[8][IF_NAMESIZE];
} Race;

static taps_racing_options options(void) {
  taps_racing_options o = taps_racing_options_default();
  o.connection_attempt_delay_ms = DELAY_MS;
  o.resolution_delay_ms = RES_DELAY_MS;
  o.total_timeout_ms = 20000;
  return o;
}

/* Run the loop with taps_event_loop_process from our own poll(2). */
static void run_embedded(taps_event_loop *loop, TestRecord *rec) {
  int fd = taps_event_loop_get_fd(loop);
  CHECK(fd >= 0);
  while (rec->ready + rec->establishment_error == 0) {
    int64_t t = taps_event_loop_get_timeout_ms(loop);
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, t < 0 ? 1000 : (int)t);
    CHECK(taps_event_loop_process(loop) >= 0); /* the number of callbacks called */
  }
}

/* Race HOST:PORT on a new loop, over local endpoints bound to the interfaces
 * in `ifs` (NULL-terminated; NULL: the default path); copy out the report;
 * free everything; check that no fd is left behind. */
static void race(const char *host, uint16_t port, const char *const *ifs, int embedded, Race *r) {
  memset(r, 0, sizeof *r);
  r->fds_base = library_fds(NULL);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_remote_endpoint *ep = test_remote_host(host, port);
  taps_racing_options o = options();
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, &o);
  CHECK(p != NULL);
  taps_remote_endpoint_free(ep);
  for (size_t i = 0; ifs != NULL && ifs[i] != NULL; i++) {
    taps_local_endpoint *l = taps_local_endpoint_new();
    CHECK(l != NULL);
    CHECK_CODE(taps_local_endpoint_with_interface(l, ifs[i]), TAPS_OK);
    CHECK_CODE(taps_preconnection_add_local_endpoint(p, l), TAPS_OK);
    taps_local_endpoint_free(l);
  }
  r->fds_before = library_fds(NULL);
  r->rec.t_start_us = test_now_us();
  taps_connection_callbacks cb = test_callbacks(&r->rec);
  cb.ready = on_ready;
  cb.user_data = r;
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, cb, &r->rec.conn), TAPS_OK);
  if (embedded)
    run_embedded(loop, &r->rec);
  else
    CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  taps_connection *c = r->rec.conn;
  test_print_attempts(c);
  CHECK_EQ(r->rec.ready, 1);
  CHECK_EQ(r->rec.establishment_error, 0);
  /* Every loser's socket is closed before `ready` runs: only the winner's
   * is open then. */
  CHECK_EQ(r->fds_in_ready, r->fds_before + 1);
  struct sockaddr_storage ra;
  socklen_t len = sizeof ra;
  CHECK_CODE(taps_connection_get_remote_address(c, &ra, &len), TAPS_OK);
  r->winner_family = ra.ss_family;
  CHECK_EQ(test_addr_port(&ra), port);
  r->n = taps_connection_attempt_count(c);
  CHECK(r->n >= 1 && r->n <= 8);
  int won = 0;
  for (size_t i = 0; i < r->n; i++) {
    CHECK_CODE(taps_connection_get_attempt(c, i, &r->a[i]), TAPS_OK);
    if (r->a[i].interface_name != NULL) snprintf(r->if_name[i], IF_NAMESIZE, "%s", r->a[i].interface_name);
    CHECK(r->a[i].outcome != TAPS_ATTEMPT_OUTCOME_RUNNING);
    if (r->a[i].outcome == TAPS_ATTEMPT_OUTCOME_WON) {
      won++;
      CHECK_EQ(r->a[i].address.ss_family, ra.ss_family);
      snprintf(r->winner_if, IF_NAMESIZE, "%s", r->if_name[i]);
    }
  }
  CHECK_EQ(won, 1);
  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  CHECK_EQ(library_fds(NULL), r->fds_base);
}

static int on_ready(taps_connection *c, void *ud) {
  Race *r = (Race *)ud;
  r->fds_in_ready = library_fds(NULL);
  return test_cb_ready(c, &r->rec);
}

/* The attempt of `family` (the first one started, or NULL). */
static const taps_attempt_info *attempt_of(const Race *r, int family) {
  const taps_attempt_info *best = NULL;
  for (size_t i = 0; i < r->n; i++)
    if (r->a[i].address.ss_family == family && (best == NULL || r->a[i].started_us < best->started_us))
      best = &r->a[i];
  return best;
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return (x > y) - (x < y);
}

/* `late[i]` is how late run i started something (µs, ≥ 0 is checked by the
 * caller): median and every run within the margins. */
static void check_lateness(const char *what, long long *late, int n) {
  long long s[RUNS];
  memcpy(s, late, sizeof(long long) * (size_t)n);
  qsort(s, (size_t)n, sizeof s[0], cmp_ll);
  fprintf(stderr, "%s: lateness median %.3f ms, worst %.3f ms\n", what, s[n / 2] / 1000.0, s[n - 1] / 1000.0);
  CHECK_RANGE(s[n / 2], 0, MEDIAN_LATE_US);
  CHECK_RANGE(s[n - 1], 0, RUN_LATE_US);
}

static void case_blackhole_with(int embedded) {
  long long late[RUNS];
  for (int i = 0; i < RUNS; i++) {
    Race r;
    race("blackhole.test", 7001, NULL, embedded, &r);
    CHECK_EQ(r.winner_family, AF_INET);
    CHECK_EQ(r.n, 2);
    const taps_attempt_info *v6 = attempt_of(&r, AF_INET6), *v4 = attempt_of(&r, AF_INET);
    CHECK(v6 != NULL && v4 != NULL);
    CHECK_EQ(v6->outcome, TAPS_ATTEMPT_OUTCOME_CANCELLED);
    CHECK_EQ(v4->outcome, TAPS_ATTEMPT_OUTCOME_WON);
    CHECK_RANGE(v6->started_us, 0, RUN_LATE_US); /* the hosts file answers at once */
    late[i] = (long long)v4->started_us - (long long)v6->started_us - DELAY_MS * 1000LL;
    CHECK(late[i] >= 0); /* never before the attempt delay */
  }
  check_lateness(embedded ? "embedded: IPv4 after IPv6" : "blackhole: IPv4 after IPv6", late, RUNS);
}

static void case_blackhole(void) { case_blackhole_with(0); }
static void case_embedded(void) { case_blackhole_with(1); }

static void case_refused(void) {
  long long late[RUNS];
  for (int i = 0; i < RUNS; i++) {
    Race r;
    race("refused.test", 7002, NULL, 0, &r);
    CHECK_EQ(r.winner_family, AF_INET);
    CHECK_EQ(r.n, 2);
    const taps_attempt_info *v6 = attempt_of(&r, AF_INET6), *v4 = attempt_of(&r, AF_INET);
    CHECK(v6 != NULL && v4 != NULL);
    CHECK_EQ(v6->outcome, TAPS_ATTEMPT_OUTCOME_FAILED);
    CHECK_EQ(v6->os_error, ECONNREFUSED);
    /* A failed attempt starts the next one at once, but not within 10 ms
     * of the previous start (RFC 8305 §5). */
    long long due = (long long)v6->ended_us;
    if (due < (long long)v6->started_us + 10000) due = (long long)v6->started_us + 10000;
    late[i] = (long long)v4->started_us - due;
    CHECK(v4->started_us >= v6->started_us);
  }
  check_lateness("refused: IPv4 after the refusal", late, RUNS);
}

/* The *.slow.test names are not in the hosts file: the bed's DNS server
 * answers A at once and AAAA after the delay in the name. A name of its own
 * per run ("aaaa300-r3.slow.test"; the server ignores the extra token). */
static const char *slow_name(char *buf, size_t n, int delay_ms, int run) {
  snprintf(buf, n, "aaaa%d-c%d-r%d.slow.test", delay_ms, (int)getpid(), run);
  return buf;
}

/* Races to port 7003 (both families accept) that make one attempt, of
 * `family`, due `due_us` after the call, and win long before 250 ms: to
 * both.test (hosts file) when `aaaa_ms` < 0, else to a name whose AAAA
 * answer comes after `aaaa_ms`. */
static void check_lone_attempt(const char *what, int aaaa_ms, int family, long long due_us) {
  long long late[RUNS];
  for (int i = 0; i < RUNS; i++) {
    char name[64];
    Race r;
    race(aaaa_ms < 0 ? "both.test" : slow_name(name, sizeof name, aaaa_ms, i), 7003, NULL, 0, &r);
    CHECK_EQ(r.winner_family, family);
    CHECK_EQ(r.n, 1);
    late[i] = (long long)r.a[0].started_us - due_us;
    CHECK(late[i] >= 0);
    CHECK(r.rec.t_done_us - r.rec.t_start_us < 250000);
  }
  check_lateness(what, late, RUNS);
}

static void case_both(void) { check_lone_attempt("both: IPv6 at once", -1, AF_INET6, 0); }

/* AAAA comes after 300 ms: IPv4 alone, the Resolution Delay after A
 * (long before AAAA). */
static void case_slow_aaaa(void) {
  check_lone_attempt("slow_aaaa: IPv4 after the Resolution Delay", 300, AF_INET, RES_DELAY_MS * 1000LL);
}

/* AAAA within the Resolution Delay: IPv6 first, when AAAA came. */
static void case_fast_aaaa(void) {
  check_lone_attempt("fast_aaaa: IPv6 when AAAA came (20 ms)", 20, AF_INET6, 20000);
}

static void case_late_aaaa(void) {
  long long late[RUNS];
  for (int i = 0; i < RUNS; i++) {
    char name[64];
    Race r;
    race(slow_name(name, sizeof name, 150, i), 7004, NULL, 0, &r);
    CHECK_EQ(r.winner_family, AF_INET6);
    CHECK_EQ(r.n, 2);
    const taps_attempt_info *v6 = attempt_of(&r, AF_INET6), *v4 = attempt_of(&r, AF_INET);
    CHECK(v6 != NULL && v4 != NULL);
    CHECK(v4->started_us >= RES_DELAY_MS * 1000ULL);
    CHECK(v4->started_us <= RES_DELAY_MS * 1000ULL + RUN_LATE_US);
    CHECK_EQ(v4->outcome, TAPS_ATTEMPT_OUTCOME_CANCELLED);
    CHECK(v6->started_us >= 150000); /* not before AAAA came */
    /* The late address joins the race: one attempt delay after IPv4. */
    late[i] = (long long)v6->started_us - (long long)v4->started_us - DELAY_MS * 1000LL;
    CHECK(late[i] >= 0);
  }
  check_lateness("late_aaaa: IPv6 one attempt delay after IPv4", late, RUNS);
}

static void case_two_paths(void) {
  static const char *const orders[2][3] = {{"c1", "c2", NULL}, {"c2", "c1", NULL}};
  int c2_tried = 0;
  for (int o = 0; o < 2; o++) {
    for (int i = 0; i < 3; i++) {
      Race r;
      race("twopath.test", 7005, orders[o], 0, &r);
      CHECK(strcmp(r.winner_if, "c1") == 0);
      const taps_attempt_info *first = &r.a[0];
      for (size_t k = 1; k < r.n; k++)
        if (r.a[k].started_us < first->started_us) first = &r.a[k];
      for (size_t k = 0; k < r.n; k++) {
        CHECK(strcmp(r.if_name[k], "c1") == 0 || strcmp(r.if_name[k], "c2") == 0);
        c2_tried += strcmp(r.if_name[k], "c2") == 0;
        /* When c2 went first, the c1 branch starts one attempt delay after
         * the race (branches are delayed from the race's start). */
        if (strcmp(r.if_name[first - r.a], "c2") == 0 && strcmp(r.if_name[k], "c1") == 0)
          CHECK(r.a[k].started_us >= DELAY_MS * 1000ULL);
      }
    }
  }
  CHECK(c2_tried > 0); /* both paths raced */
}

/* Process fds of a loop (its epoll, eventfd, timerfd): none left after
 * taps_event_loop_free, although a resolver thread is still inside getaddrinfo
 * for the AAAA answer (3 s away). */
static void case_free_while_resolving(void) {
  char name[64];
  int base_loop_fds = 0, base = library_fds(&base_loop_fds);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_remote_endpoint *ep = test_remote_host(slow_name(name, sizeof name, 3000, 0), 7003);
  taps_racing_options o = options();
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, &o);
  CHECK(p != NULL);
  taps_remote_endpoint_free(ep);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &rec.conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(rec.ready, 1);
  taps_connection_free(rec.conn);
  taps_preconnection_free(p);
  uint64_t t0 = test_now_us();
  taps_event_loop_free(loop);
  int loop_fds = 0, left = library_fds(&loop_fds) - base;
  if (left != 0) test_list_fds("after taps_event_loop_free");
  fprintf(stderr, "library fds left after taps_event_loop_free: %d, of them the loop's %d (%.2f ms after)\n", left,
          loop_fds - base_loop_fds, (test_now_us() - t0) / 1000.0);
  CHECK_EQ(left, 0);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*run)(void);
  } cases[] = {
      {"blackhole", case_blackhole}, {"refused", case_refused},     {"both", case_both},
      {"slow_aaaa", case_slow_aaaa}, {"fast_aaaa", case_fast_aaaa}, {"late_aaaa", case_late_aaaa},
      {"two_paths", case_two_paths}, {"embedded", case_embedded},   {"free_while_resolving", case_free_while_resolving},
  };
  if (argc != 2) {
    fprintf(stderr, "usage: %s CASE (in the test bed's client namespace)\ncases:", argv[0]);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) fprintf(stderr, " %s", cases[i].name);
    fprintf(stderr, "\n");
    return 2;
  }
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (strcmp(argv[1], cases[i].name) != 0) continue;
    TEST_BEGIN(cases[i].name);
    cases[i].run();
    TEST_PASS(cases[i].name);
    return 0;
  }
  fprintf(stderr, "no case named %s\n", argv[1]);
  return 2;
}
