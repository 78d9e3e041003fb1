/* taps_connection groups (issue 7) through the C API only, with a mock protocol
 * under the manual clock (every time exact to the µs): what the C API adds
 * to a group (taps_group_event and taps_group_member_metrics, member fds, NULL and
 * out-of-range arguments, TAPS_ERROR_NO_MEMBER, freeing: with a rebuild in
 * flight or a ready queued, during a backoff, from its own event callback,
 * the loop first) and the cases with no Rust twin (round robin over three,
 * a diverse rebuild, weights from connect times). The scenarios through
 * the Rust API (round robin over two, diverse members, least loaded,
 * weighted, capacity, failover and rebuild, all failed and recovery, a
 * member closed by the peer on real sockets) are in tests/group.rs.
 *
 * The mock protocol, "relay", numbers attempts by start order across the
 * group (mock.h's SeqTest): the log says "start #4 127.0.0.2 at 1600000",
 * "cancel #4", and the connection handle the test reports for attempt #i
 * is 100 + i ("close 104 fd -1"). Group events are recorded as strings and
 * compared exactly:
 *
 *   "joined 2 ct 40000"   MEMBER_JOINED, member 2, connect time 40 ms
 *   "failed 1 streams 3"  MEMBER_FAILED, member 1 carried 3 open streams
 *   "all failed"          ALL_FAILED
 *   "recovered 4"         RECOVERED, member 4 joined
 *   "rebuild failed 500000"  REBUILD_FAILED, the next race waits 500 ms */
#include "mock.h"

#include <sys/socket.h>

#define S 1000000ull
#define MS 1000ull

static const char *const hosts[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};

typedef SeqTest GroupTest;

/* ---- events --------------------------------------------------------------- */

static void gt_on_event(const taps_group_event *e, void *user_data) {
  GroupTest *t = (GroupTest *)user_data;
  char s[64];
  switch (e->kind) {
    case TAPS_GROUP_EVENT_KIND_MEMBER_JOINED:
      snprintf(s, sizeof s, "joined %" PRIu64 " ct %" PRIu64, e->member, e->connect_time_us);
      break;
    case TAPS_GROUP_EVENT_KIND_MEMBER_FAILED: snprintf(s, sizeof s, "failed %" PRIu64 " streams %u", e->member, e->streams); break;
    case TAPS_GROUP_EVENT_KIND_ALL_FAILED: snprintf(s, sizeof s, "all failed"); break;
    case TAPS_GROUP_EVENT_KIND_RECOVERED: snprintf(s, sizeof s, "recovered %" PRIu64, e->member); break;
    case TAPS_GROUP_EVENT_KIND_REBUILD_FAILED: snprintf(s, sizeof s, "rebuild failed %" PRIu64, e->connect_time_us); break;
    default: snprintf(s, sizeof s, "kind %d", (int)e->kind); break;
  }
  /* The fields a kind does not use are 0. */
  CHECK(e->kind == TAPS_GROUP_EVENT_KIND_MEMBER_FAILED || e->streams == 0);
  CHECK(e->kind == TAPS_GROUP_EVENT_KIND_MEMBER_JOINED || e->kind == TAPS_GROUP_EVENT_KIND_REBUILD_FAILED ||
        e->connect_time_us == 0);
  CHECK(e->kind != TAPS_GROUP_EVENT_KIND_ALL_FAILED || e->member == 0);
  CHECK(e->kind != TAPS_GROUP_EVENT_KIND_REBUILD_FAILED || e->member == 0);
  seq_event(t, s);
  if (t->free_on != NULL && strcmp(s, t->free_on) == 0) {
    taps_connection_group_free(t->g); /* from its own event callback */
    t->g = NULL;
    t->freed = 1;
  }
}

/* ---- set-up --------------------------------------------------------------- */

/* A manual-clock loop with "relay" (mock_props keeps it alone in the
 * race), the candidates hosts[0..n_hosts) on port 443, and a group with
 * `o` (NULL: the defaults), whose events go to gt_on_event. Runs nothing. */
static void gt_init(GroupTest *t, size_t n_hosts, const taps_group_options *o) {
  seq_init(t, hosts, n_hosts);
  t->log_addr = 1;
  t->g = taps_connection_group_new(t->pre, o, gt_on_event, t);
  if (t->g == NULL) fprintf(stderr, "taps_connection_group_new: %s\n", taps_last_error_message());
  CHECK(t->g != NULL);
}

/* gt_init, run, and attempts #0 to #k-1 ready: k members, joined at the
 * loop's time (connect time 0) in that order. */
static void gt_build(GroupTest *t, size_t n_hosts, const taps_group_options *o, int k) {
  gt_init(t, n_hosts, o);
  mock_run(&t->m);
  for (int i = 0; i < k; i++) seq_ready(t, i);
  mock_run(&t->m);
}

static void gt_free_group(GroupTest *t) {
  taps_connection_group_free(t->g);
  t->g = NULL;
  t->freed = 1;
}

static void gt_finish(GroupTest *t) {
  if (!t->freed) gt_free_group(t);
  seq_finish(t);
}

static taps_group_options gopts(uint32_t size, taps_assign_policy policy, uint32_t capacity) {
  taps_group_options o = taps_group_options_default();
  o.size = size;
  o.policy = (uint32_t)policy;
  o.capacity = capacity;
  return o;
}

/* The live members, in join order, into `out` (at most 16); how many. */
static size_t gt_members(const GroupTest *t, uint64_t *out) {
  size_t n = taps_connection_group_members(t->g, out, 16);
  CHECK(n <= 16);
  CHECK_EQ(taps_connection_group_members(t->g, NULL, 0), n);
  return n;
}

static uint64_t gt_assign(GroupTest *t) {
  uint64_t m = UINT64_MAX;
  CHECK_CODE(taps_connection_group_assign(t->g, &m), TAPS_OK);
  CHECK(m != UINT64_MAX);
  return m;
}

/* Assignment fails with `code`; *out_member is left alone. */
static void gt_assign_fails(GroupTest *t, int code, int line) {
  uint64_t m = 777;
  int rc = taps_connection_group_assign(t->g, &m);
  if (rc != code || m != 777) {
    fprintf(stderr, "%s:%d: taps_connection_group_assign returned %d (%s) member %" PRIu64 "; expected %d (%s)\n",
            __FILE__, line, rc, taps_strerror(rc), m, code, taps_strerror(code));
    exit(1);
  }
}
#define GT_ASSIGN_FAILS(t, code) gt_assign_fails((t), (code), __LINE__)

/* `n` assignments equal want[0..n). */
static void gt_expect_assign_(GroupTest *t, const uint64_t *want, size_t n, int line) {
  uint64_t got[256];
  CHECK(n <= 256);
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    got[i] = gt_assign(t);
    ok = ok && got[i] == want[i];
  }
  if (!ok) {
    fprintf(stderr, "%s:%d: assignments differ:\n  got ", __FILE__, line);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %" PRIu64, got[i]);
    fprintf(stderr, "\n  want");
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %" PRIu64, want[i]);
    fprintf(stderr, "\n");
    exit(1);
  }
}
#define GT_EXPECT_ASSIGN(t, ...)                                                   \
  gt_expect_assign_((t), (const uint64_t[]){__VA_ARGS__},                          \
                    sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t), __LINE__)

static taps_group_member_metrics gt_metrics(const GroupTest *t, uint64_t member) {
  taps_group_member_metrics mm;
  memset(&mm, 0xa5, sizeof mm);
  CHECK_CODE(taps_connection_group_member_metrics(t->g, member, &mm), TAPS_OK);
  return mm;
}

static void gt_check_metrics_(const GroupTest *t, uint64_t member, uint64_t assigned, uint32_t open, uint64_t failed,
                              int live, int line) {
  taps_group_member_metrics mm = gt_metrics(t, member);
  if (mm.streams_assigned != assigned || mm.streams_open != open || mm.streams_failed != failed || mm.live != live) {
    fprintf(stderr,
            "%s:%d: member %" PRIu64 ": assigned %" PRIu64 " open %u failed %" PRIu64 " live %d; expected assigned %" PRIu64
            " open %u failed %" PRIu64 " live %d\n",
            __FILE__, line, member, mm.streams_assigned, mm.streams_open, mm.streams_failed, mm.live, assigned, open,
            failed, live);
    exit(1);
  }
}
/* Member metrics: streams assigned, open, failed; live. */
#define GT_CHECK_METRICS(t, m, assigned, open, failed, live) \
  gt_check_metrics_((t), (m), (assigned), (open), (failed), (live), __LINE__)

/* ---- building, round robin, diversity ------------------------------------- */

/* K = 3: 1, 2, 3, 1, 2, 3 exactly, in join order (not start order). */
static void case_round_robin_three(void) {
  GroupTest t;
  taps_group_options o = gopts(3, TAPS_ASSIGN_POLICY_ROUND_ROBIN, 256);
  gt_init(&t, 3, &o);
  mock_run(&t.m);
  MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0", "start #2 127.0.0.3 at 0");
  mock_advance_to(&t.m, 5 * MS);
  seq_ready(&t, 2);
  mock_run(&t.m);
  mock_advance_to(&t.m, 7 * MS);
  seq_ready(&t, 0);
  mock_run(&t.m);
  mock_advance_to(&t.m, 9 * MS);
  seq_ready(&t, 1);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 5000", "joined 1 ct 7000", "joined 2 ct 9000");
  uint64_t ids[16];
  CHECK_EQ(gt_members(&t, ids), 3);
  CHECK_EQ(ids[0], 0);
  CHECK_EQ(ids[1], 1);
  CHECK_EQ(ids[2], 2);
  GT_EXPECT_ASSIGN(&t, 0, 1, 2, 0, 1, 2, 0, 1, 2);
  for (uint64_t m = 0; m < 3; m++) GT_CHECK_METRICS(&t, m, 3, 3, 0, 1);
  MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0", "start #2 127.0.0.3 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(t.m.loop), -1);
  gt_finish(&t);
}

/* A rebuilt member is diverse too: with members on 127.0.0.1 and .2 and
 * the one on .2 failed, the replacement's first attempt goes to an address
 * no live member uses (.2 or .3), not to 127.0.0.1 again while an unused
 * candidate is left ("members are made diverse where the candidates
 * allow"). */
static void case_rebuild_is_diverse(void) {
  GroupTest t;
  gt_init(&t, 3, NULL);
  mock_run(&t.m);
  seq_ready(&t, 0); /* member 0: 127.0.0.1 */
  mock_run(&t.m);
  seq_ready(&t, 1); /* member 1: 127.0.0.2 */
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "joined 1 ct 0");
  mock_advance_to(&t.m, S);
  CHECK_CODE(taps_connection_group_mark_failed(t.g, 1), TAPS_OK);
  mock_run(&t.m);
  CHECK_EQ(t.n, 3);
  if (strcmp(t.a[2].addr, "127.0.0.1") == 0) {
    fprintf(stderr, "the replacement of the member on 127.0.0.2 was attempted to 127.0.0.1, the live member's address, "
                    "while 127.0.0.3 was unused:\n");
    mock_print_log(&t.m);
    exit(1);
  }
  gt_finish(&t);
}

/* ---- weighted ------------------------------------------------------------- */

/* Weighted with the default weights, from the connect times: the member
 * that connected in 10 ms (weight 100) gets 4× the streams of the one that
 * took 40 ms (weight 25), 4 in every 5, interleaved. */
static void case_weighted_connect_time(void) {
  GroupTest t;
  taps_group_options o = gopts(2, TAPS_ASSIGN_POLICY_WEIGHTED, 256);
  gt_init(&t, 2, &o);
  mock_run(&t.m);
  mock_advance_to(&t.m, 10 * MS);
  seq_ready(&t, 1);
  mock_run(&t.m);
  mock_advance_to(&t.m, 40 * MS);
  seq_ready(&t, 0);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 10000", "joined 1 ct 40000");
  uint64_t fast = 0, slow = 1;
  CHECK_EQ(gt_metrics(&t, fast).weight, 100);
  CHECK_EQ(gt_metrics(&t, slow).weight, 25);
  CHECK_EQ(gt_metrics(&t, fast).connect_time_us, 10 * MS);
  CHECK_EQ(gt_metrics(&t, slow).connect_time_us, 40 * MS);
  for (int w = 0; w < 25; w++) {
    int n_fast = 0;
    for (int i = 0; i < 5; i++) n_fast += gt_assign(&t) == fast;
    if (n_fast != 4) {
      fprintf(stderr, "window %d of 5 streams: %d to the fast member, expected 4\n", w, n_fast);
      exit(1);
    }
  }
  GT_CHECK_METRICS(&t, fast, 100, 100, 0, 1);
  GT_CHECK_METRICS(&t, slow, 25, 25, 0, 1);
  gt_finish(&t);
}

/* ---- failover, rebuild ---------------------------------------------------- */

/* A user protocol's member: taps_connection_group_member_fd gives the fd the
 * protocol reported; marked failed (the library watches only built-in TCP
 * members' sockets for hang-up, see tests/group.rs on real sockets: the
 * caller who sees a user protocol's connection die marks it failed), it
 * is closed through the protocol with that fd, which the library never
 * closes itself; the replacement joins with its own fd. */
static void case_member_fd_and_close(void) {
  GroupTest t;
  gt_init(&t, 2, NULL);
  mock_run(&t.m);
  int sv[2], sw[2], sx[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sw) == 0);
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sx) == 0);
  seq_ready_fd(&t, 0, sv[0]);
  seq_ready_fd(&t, 1, sw[0]);
  mock_run(&t.m);
  CHECK_EQ(taps_connection_group_member_fd(t.g, 0), sv[0]);
  CHECK_EQ(taps_connection_group_member_fd(t.g, 1), sw[0]);
  GT_EXPECT_ASSIGN(&t, 0, 1, 0);
  mock_advance_to(&t.m, 2 * S);
  CHECK_CODE(taps_connection_group_mark_failed(t.g, 0), TAPS_OK);
  CHECK_EQ(taps_connection_group_member_fd(t.g, 0), -1);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "joined 1 ct 0", "failed 0 streams 2");
  GT_CHECK_METRICS(&t, 0, 2, 0, 2, 0);
  char want[64];
  snprintf(want, sizeof want, "close 100 fd %d", sv[0]);
  MOCK_CHECK_LOG_HAS(&t.m, want);
  CHECK(fcntl(sv[0], F_GETFD) != -1); /* the library never closes the protocol's fd */
  CHECK_EQ(t.n, 3);
  GT_EXPECT_ASSIGN(&t, 1, 1);
  mock_advance(&t.m, 3 * MS);
  seq_ready_fd(&t, 2, sx[0]);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "joined 1 ct 0", "failed 0 streams 2", "joined 2 ct 3000");
  uint64_t ids[16];
  CHECK_EQ(gt_members(&t, ids), 2);
  CHECK_EQ(taps_connection_group_member_fd(t.g, 2), sx[0]);
  gt_finish(&t);
  snprintf(want, sizeof want, "close 101 fd %d", sw[0]);
  MOCK_CHECK_LOG_HAS(&t.m, want);
  snprintf(want, sizeof want, "close 102 fd %d", sx[0]);
  MOCK_CHECK_LOG_HAS(&t.m, want);
  for (int i = 0; i < 2; i++) {
    close(sv[i]);
    close(sw[i]);
    close(sx[i]);
  }
}

/* A group of one: its member fails → ALL_FAILED, TAPS_ERROR_NO_MEMBER until
 * the replacement joins (RECOVERED). The initial build failing reports
 * REBUILD_FAILED and ALL_FAILED as well (no member ever joined). */
static void case_no_member_while_none_live(void) {
  {
    GroupTest t;
    taps_group_options o = gopts(1, TAPS_ASSIGN_POLICY_ROUND_ROBIN, 256);
    gt_init(&t, 1, &o);
    mock_run(&t.m);
    MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0");
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
    seq_ready(&t, 0);
    mock_run(&t.m);
    GT_EXPECT_ASSIGN(&t, 0, 0);
    CHECK_CODE(taps_connection_group_mark_failed(t.g, 0), TAPS_OK);
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
    mock_run(&t.m);
    SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "failed 0 streams 2", "all failed");
    MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "close 100 fd -1", "start #1 127.0.0.1 at 0");
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
    seq_ready(&t, 1);
    mock_run(&t.m);
    SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "failed 0 streams 2", "all failed", "joined 1 ct 0", "recovered 1");
    GT_EXPECT_ASSIGN(&t, 1);
    gt_finish(&t);
  }
  {
    GroupTest t;
    taps_group_options o = gopts(1, TAPS_ASSIGN_POLICY_ROUND_ROBIN, 256);
    o.backoff_initial_ms = 200;
    gt_init(&t, 1, &o);
    mock_run(&t.m);
    mock_advance(&t.m, 30 * MS);
    seq_fail(&t, 0, ECONNREFUSED);
    mock_run(&t.m);
    SEQ_EVENTS_FROM(&t, 0, "rebuild failed 200000", "all failed");
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
    mock_advance(&t.m, 200 * MS);
    MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "start #1 127.0.0.1 at 230000");
    seq_ready(&t, 1);
    mock_run(&t.m);
    SEQ_EVENTS_FROM(&t, 0, "rebuild failed 200000", "all failed", "joined 0 ct 0", "recovered 0");
    GT_EXPECT_ASSIGN(&t, 0);
    gt_finish(&t);
  }
}

/* ---- arguments -------------------------------------------------------------- */

/* NULL pointers (TAPS_ERROR_NULL_ARGUMENT), options out of range (NULL with
 * TAPS_ERROR_INVALID_OPTION, a message naming the field; the ends of each
 * range are fine), unknown members (TAPS_ERROR_INVALID_ARGUMENT). */
static void case_bad_arguments(void) {
  GroupTest t;
  gt_init(&t, 2, NULL);
  taps_group_options d = taps_group_options_default();
  CHECK_EQ(d.size, 2);
  CHECK_EQ(d.policy, TAPS_ASSIGN_POLICY_ROUND_ROBIN);
  CHECK_EQ(d.capacity, 256);
  CHECK_EQ(d.backoff_initial_ms, 1000);
  CHECK_EQ(d.backoff_multiplier_percent, 200);
  CHECK_EQ(d.backoff_max_ms, 60000);

  /* NULL */
  CHECK(taps_connection_group_new(NULL, &d, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  uint64_t m = 0;
  CHECK_CODE(taps_connection_group_assign(NULL, &m), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_connection_group_assign(t.g, NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_connection_group_release_stream(NULL, 0, 0), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_connection_group_mark_failed(NULL, 0), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_connection_group_set_weight(NULL, 0, 1), TAPS_ERROR_NULL_ARGUMENT);
  taps_group_member_metrics mm;
  CHECK_CODE(taps_connection_group_member_metrics(NULL, 0, &mm), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_EQ(taps_connection_group_member_fd(NULL, 0), -1);
  CHECK_EQ(taps_connection_group_members(NULL, NULL, 0), 0);
  uint64_t ids[4];
  CHECK_EQ(taps_connection_group_members(NULL, ids, 4), 0);
  taps_connection_group_free(NULL);

  mock_run(&t.m);
  seq_ready(&t, 0);
  seq_ready(&t, 1);
  mock_run(&t.m);
  CHECK_CODE(taps_connection_group_member_metrics(t.g, 0, NULL), TAPS_ERROR_NULL_ARGUMENT);
  /* members with a short array: the count of all, `cap` written. */
  ids[0] = ids[1] = 99;
  CHECK_EQ(taps_connection_group_members(t.g, ids, 1), 2);
  CHECK_EQ(ids[0], 0);
  CHECK_EQ(ids[1], 99);

  /* Unknown members. */
  CHECK_CODE(taps_connection_group_mark_failed(t.g, 7), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_connection_group_set_weight(t.g, 7, 1), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_connection_group_member_metrics(t.g, 7, &mm), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_connection_group_release_stream(t.g, 7, 0), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_connection_group_mark_failed(t.g, UINT64_MAX), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_connection_group_member_metrics(t.g, UINT64_MAX, &mm), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_EQ(taps_connection_group_member_fd(t.g, 7), -1);
  /* A known member with no open stream: nothing to release. */
  CHECK_CODE(taps_connection_group_release_stream(t.g, 0, 0), TAPS_ERROR_INVALID_ARGUMENT);
  GT_CHECK_METRICS(&t, 0, 0, 0, 0, 1);
  /* None of that disturbed the group. */
  GT_EXPECT_ASSIGN(&t, 0, 1);

  /* Options out of range. */
  struct {
    const char *field;
    taps_group_options o;
  } bad[16];
  size_t n = 0;
#define BAD(name, ...)                           \
  do {                                           \
    bad[n].field = (name);                       \
    bad[n].o = taps_group_options_default();          \
    { taps_group_options *o = &bad[n].o; __VA_ARGS__; } \
    n++;                                         \
  } while (0)
  BAD("size", o->size = 0);
  BAD("size", o->size = 65);
  BAD("policy", o->policy = 3);
  BAD("policy", o->policy = UINT32_MAX);
  BAD("capacity", o->capacity = 0);
  BAD("capacity", o->capacity = 1000001);
  BAD("backoff_multiplier_percent", o->backoff_multiplier_percent = 99);
  BAD("backoff_multiplier_percent", o->backoff_multiplier_percent = 1001);
  BAD("backoff_max_ms", o->backoff_max_ms = 999);
#undef BAD
  int before = t.n;
  for (size_t i = 0; i < n; i++) {
    taps_connection_group *g = taps_connection_group_new(t.pre, &bad[i].o, NULL, NULL);
    if (g != NULL || taps_last_error() != TAPS_ERROR_INVALID_OPTION ||
        strstr(taps_last_error_message(), bad[i].field) == NULL) {
      fprintf(stderr, "bad option %zu (%s): group %p, error %d, message \"%s\"\n", i, bad[i].field, (void *)g,
              taps_last_error(), taps_last_error_message());
      exit(1);
    }
  }
  mock_run(&t.m);
  CHECK_EQ(t.n, before); /* no race for a group that was refused */

  /* The ends of each range are fine (NULL options: the defaults). */
  taps_group_options good[7];
  for (int i = 0; i < 7; i++) good[i] = taps_group_options_default();
  good[0].size = 1;
  good[0].capacity = 1;
  good[1].size = 64;
  good[1].capacity = 1000000;
  good[2].policy = TAPS_ASSIGN_POLICY_LEAST_LOADED;
  good[2].backoff_multiplier_percent = 100;
  good[3].policy = TAPS_ASSIGN_POLICY_WEIGHTED;
  good[3].backoff_multiplier_percent = 1000;
  good[4].backoff_max_ms = 1000; /* == backoff_initial_ms */
  good[5].backoff_initial_ms = 0;
  good[5].backoff_max_ms = 0;
  t.quiet = 1;
  for (int i = 0; i < 8; i++) {
    taps_connection_group *g = taps_connection_group_new(t.pre, i < 7 ? &good[i] : NULL, NULL, NULL);
    if (g == NULL) fprintf(stderr, "good options %d: %s\n", i, taps_last_error_message());
    CHECK(g != NULL);
    mock_run(&t.m);
    taps_connection_group_free(g);
    mock_run(&t.m);
  }
  /* The group of 64 raced 64 attempts at once (2 candidates, repeated). */
  CHECK(t.n - before >= 64);
  for (int i = before; i < t.n; i++) CHECK(!t.a[i].live);
  t.quiet = 0;
  gt_finish(&t);
}

/* ---- freeing ---------------------------------------------------------------- */

/* Freed with a rebuild race in flight: every started attempt is cancelled
 * (the one just reported ready is closed instead), the members are closed,
 * no event follows, nothing more starts, no timer is left. The mock suite
 * checks that the second run of the case left the heap as it found it. */
static void case_free_with_rebuild_in_flight(void) {
  GroupTest t;
  taps_group_options o = gopts(3, TAPS_ASSIGN_POLICY_ROUND_ROBIN, 256);
  gt_init(&t, 3, &o);
  mock_run(&t.m);
  seq_ready(&t, 0);
  seq_ready(&t, 1);
  seq_ready(&t, 2);
  mock_run(&t.m);
  GT_EXPECT_ASSIGN(&t, 0, 1, 2);
  mock_advance_to(&t.m, S);
  CHECK_CODE(taps_connection_group_mark_failed(t.g, 0), TAPS_OK);
  CHECK_CODE(taps_connection_group_mark_failed(t.g, 1), TAPS_OK);
  mock_run(&t.m);
  /* The rebuild: its first attempt runs; 250 ms later the next starts. */
  mock_advance(&t.m, 250 * MS);
  int started = t.n;
  CHECK(started >= 5);
  for (int i = 3; i < started; i++) CHECK(t.a[i].live);
  int mark = t.n_ev;
  gt_free_group(&t);
  mock_run(&t.m);
  mock_advance(&t.m, 100 * S);
  SEQ_NO_EVENTS_FROM(&t, mark);
  CHECK_EQ(t.n, started);
  for (int i = 3; i < started; i++) {
    if (!t.a[i].cancelled) {
      fprintf(stderr, "attempt #%d was not cancelled by taps_connection_group_free\n", i);
      mock_print_log(&t.m);
      exit(1);
    }
  }
  MOCK_CHECK_LOG_HAS(&t.m, "close 102 fd -1"); /* the live member */
  CHECK_EQ(taps_event_loop_get_timeout_ms(t.m.loop), -1);
  gt_finish(&t);
}

/* Freed just after a rebuild attempt reported ready, before the loop took
 * that completion: its connection is closed (once), not cancelled; the
 * other running attempt is cancelled; no event. */
static void case_free_with_ready_queued(void) {
  GroupTest t;
  gt_build(&t, 2, NULL, 2);
  CHECK_CODE(taps_connection_group_mark_failed(t.g, 0), TAPS_OK);
  CHECK_CODE(taps_connection_group_mark_failed(t.g, 1), TAPS_OK);
  mock_run(&t.m);
  mock_advance(&t.m, 250 * MS);
  CHECK_EQ(t.n, 4);
  seq_ready(&t, 3); /* queued for the loop, which has not run yet */
  int mark = t.n_ev;
  gt_free_group(&t);
  mock_run(&t.m);
  SEQ_NO_EVENTS_FROM(&t, mark);
  MOCK_CHECK_LOG_HAS(&t.m, "cancel #2");
  MOCK_CHECK_LOG_HAS(&t.m, "close 103 fd -1");
  int closes103 = 0;
  for (int i = 0; i < t.m.n_log; i++) closes103 += strcmp(t.m.log[i], "close 103 fd -1") == 0;
  CHECK_EQ(closes103, 1);
  CHECK(!mock_log_has(&t.m, "cancel #3"));
  gt_finish(&t);
}

/* Freed during a backoff: nothing starts when it would have ended, no
 * event, no timer left. */
static void case_free_during_backoff(void) {
  GroupTest t;
  taps_group_options o = gopts(1, TAPS_ASSIGN_POLICY_ROUND_ROBIN, 256);
  gt_init(&t, 1, &o);
  mock_run(&t.m);
  seq_fail(&t, 0, ECONNREFUSED);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 0, "rebuild failed 1000000", "all failed");
  CHECK_EQ(taps_event_loop_get_timeout_ms(t.m.loop), 1000);
  gt_free_group(&t);
  mock_run(&t.m);
  CHECK_EQ(taps_event_loop_get_timeout_ms(t.m.loop), -1);
  mock_advance(&t.m, 10 * S);
  CHECK_EQ(t.n, 1);
  SEQ_EVENTS_FROM(&t, 0, "rebuild failed 1000000", "all failed");
  gt_finish(&t);
}

/* The group freed from its own event callback (on MEMBER_FAILED, with
 * ALL_FAILED queued behind it and the rebuild's attempt running): the
 * queued event is not delivered, the attempt is cancelled, nothing starts
 * afterwards. */
static void case_free_in_event_callback(void) {
  GroupTest t;
  taps_group_options o = gopts(1, TAPS_ASSIGN_POLICY_ROUND_ROBIN, 256);
  gt_init(&t, 1, &o);
  mock_run(&t.m);
  seq_ready(&t, 0);
  mock_run(&t.m);
  t.free_on = "failed 0 streams 0";
  CHECK_CODE(taps_connection_group_mark_failed(t.g, 0), TAPS_OK);
  mock_run(&t.m);
  CHECK(t.freed);
  mock_advance(&t.m, 10 * S);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "failed 0 streams 0");
  MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "close 100 fd -1", "start #1 127.0.0.1 at 0", "cancel #1");
  CHECK_EQ(taps_event_loop_get_timeout_ms(t.m.loop), -1);
  gt_finish(&t);
}

/* The loop freed before the group: the build race is cancelled, no event;
 * the group's calls then fail with TAPS_ERROR_INVALID_STATE (assign) or
 * report nothing, and freeing it afterwards is fine. */
static void case_loop_freed_first(void) {
  GroupTest t;
  gt_init(&t, 2, NULL);
  mock_run(&t.m);
  seq_ready(&t, 0);
  mock_run(&t.m);
  taps_preconnection_free(t.pre);
  t.pre = NULL;
  t.freed = 1; /* no event either */
  taps_event_loop_free(t.m.loop);
  t.m.loop = NULL;
  /* "Every race still pending on it is cancelled ... with no callback":
   * the build race is cancelled and the member closed; no new attempt may
   * start while the loop is freed. */
  MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0", "cancel #1", "close 100 fd -1");
  CHECK_EQ(t.started_after_free, 0);
  uint64_t m = 0;
  CHECK_CODE(taps_connection_group_assign(t.g, &m), TAPS_ERROR_INVALID_STATE);
  CHECK_EQ(taps_connection_group_members(t.g, NULL, 0), 0);
  CHECK_EQ(taps_connection_group_member_fd(t.g, 0), -1);
  taps_connection_group_free(t.g);
  t.g = NULL;
  taps_transport_properties_free(t.props);
}

MOCK_MAIN(MOCK_CASE(round_robin_three), MOCK_CASE(rebuild_is_diverse), MOCK_CASE(weighted_connect_time),
          MOCK_CASE(member_fd_and_close), MOCK_CASE(no_member_while_none_live), MOCK_CASE(bad_arguments),
          MOCK_CASE(free_with_rebuild_in_flight), MOCK_CASE(free_with_ready_queued), MOCK_CASE(free_during_backoff),
          MOCK_CASE(free_in_event_callback), MOCK_CASE(loop_freed_first))
