/* Connection groups (issue 7) through the C API only: K members built by
 * racing, stream assignment (round robin, least loaded, weighted) with a
 * per-member capacity, failover, the rebuild with backoff, all-failed and
 * recovery, metrics, bad arguments, freeing; with a mock protocol under the
 * manual clock (every time exact to the µs), and one group of real TCP
 * connections to a loopback listener on the real clock.
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

static void gt_on_event(const GroupEvent *e, void *user_data) {
  GroupTest *t = (GroupTest *)user_data;
  char s[64];
  switch (e->kind) {
    case GROUP_EVENT_KIND_MEMBER_JOINED:
      snprintf(s, sizeof s, "joined %" PRIu64 " ct %" PRIu64, e->member, e->connect_time_us);
      break;
    case GROUP_EVENT_KIND_MEMBER_FAILED: snprintf(s, sizeof s, "failed %" PRIu64 " streams %u", e->member, e->streams); break;
    case GROUP_EVENT_KIND_ALL_FAILED: snprintf(s, sizeof s, "all failed"); break;
    case GROUP_EVENT_KIND_RECOVERED: snprintf(s, sizeof s, "recovered %" PRIu64, e->member); break;
    case GROUP_EVENT_KIND_REBUILD_FAILED: snprintf(s, sizeof s, "rebuild failed %" PRIu64, e->connect_time_us); break;
    default: snprintf(s, sizeof s, "kind %d", (int)e->kind); break;
  }
  /* The fields a kind does not use are 0. */
  CHECK(e->kind == GROUP_EVENT_KIND_MEMBER_FAILED || e->streams == 0);
  CHECK(e->kind == GROUP_EVENT_KIND_MEMBER_JOINED || e->kind == GROUP_EVENT_KIND_REBUILD_FAILED ||
        e->connect_time_us == 0);
  CHECK(e->kind != GROUP_EVENT_KIND_ALL_FAILED || e->member == 0);
  CHECK(e->kind != GROUP_EVENT_KIND_REBUILD_FAILED || e->member == 0);
  seq_event(t, s);
  if (t->free_on != NULL && strcmp(s, t->free_on) == 0) {
    connection_group_free(t->g); /* from its own event callback */
    t->g = NULL;
    t->freed = 1;
  }
}

/* ---- set-up --------------------------------------------------------------- */

/* A manual-clock loop with "relay" (mock_props keeps it alone in the
 * race), the candidates hosts[0..n_hosts) on port 443, and a group with
 * `o` (NULL: the defaults), whose events go to gt_on_event. Runs nothing. */
static void gt_init(GroupTest *t, size_t n_hosts, const GroupOptions *o) {
  seq_init(t, hosts, n_hosts);
  t->log_addr = 1;
  t->g = connection_group_new(t->pre, o, gt_on_event, t);
  if (t->g == NULL) fprintf(stderr, "connection_group_new: %s\n", taps_last_error_message());
  CHECK(t->g != NULL);
}

/* gt_init, run, and attempts #0 to #k-1 ready: k members, joined at the
 * loop's time (connect time 0) in that order. */
static void gt_build(GroupTest *t, size_t n_hosts, const GroupOptions *o, int k) {
  gt_init(t, n_hosts, o);
  mock_run(&t->m);
  for (int i = 0; i < k; i++) seq_ready(t, i);
  mock_run(&t->m);
}

static void gt_free_group(GroupTest *t) {
  connection_group_free(t->g);
  t->g = NULL;
  t->freed = 1;
}

static void gt_finish(GroupTest *t) {
  if (!t->freed) gt_free_group(t);
  seq_finish(t);
}

static GroupOptions gopts(uint32_t size, AssignPolicy policy, uint32_t capacity) {
  GroupOptions o = group_options_default();
  o.size = size;
  o.policy = (uint32_t)policy;
  o.capacity = capacity;
  return o;
}

/* The live members, in join order, into `out` (at most 16); how many. */
static size_t gt_members(const GroupTest *t, uint64_t *out) {
  size_t n = connection_group_members(t->g, out, 16);
  CHECK(n <= 16);
  CHECK_EQ(connection_group_members(t->g, NULL, 0), n);
  return n;
}

static uint64_t gt_assign(GroupTest *t) {
  uint64_t m = UINT64_MAX;
  CHECK_CODE(connection_group_assign(t->g, &m), TAPS_OK);
  CHECK(m != UINT64_MAX);
  return m;
}

/* Assignment fails with `code`; *out_member is left alone. */
static void gt_assign_fails(GroupTest *t, int code, int line) {
  uint64_t m = 777;
  int rc = connection_group_assign(t->g, &m);
  if (rc != code || m != 777) {
    fprintf(stderr, "%s:%d: connection_group_assign returned %d (%s) member %" PRIu64 "; expected %d (%s)\n",
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

static GroupMemberMetrics gt_metrics(const GroupTest *t, uint64_t member) {
  GroupMemberMetrics mm;
  memset(&mm, 0xa5, sizeof mm);
  CHECK_CODE(connection_group_member_metrics(t->g, member, &mm), TAPS_OK);
  return mm;
}

static void gt_check_metrics_(const GroupTest *t, uint64_t member, uint64_t assigned, uint32_t open, uint64_t failed,
                              int live, int line) {
  GroupMemberMetrics mm = gt_metrics(t, member);
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

/* K = 2 (the default) over two candidates: both attempts start at once, to
 * distinct addresses; each joins when ready, with its connect time; then
 * round robin alternates 1, 2, 1, 2 exactly, in join order. Nothing is
 * pending once the group is built. */
static void case_round_robin_two(void) {
  GroupTest t;
  gt_init(&t, 2, NULL);
  GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER); /* nothing joined yet */
  mock_run(&t.m);
  MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0");
  uint64_t ids[16];
  CHECK_EQ(gt_members(&t, ids), 0);
  GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);

  mock_advance_to(&t.m, 20 * MS);
  seq_ready(&t, 1);
  mock_run(&t.m);
  CHECK_EQ(gt_members(&t, ids), 1);
  uint64_t a = ids[0];
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 20000");
  CHECK_EQ(a, 0);
  /* One member: every stream goes to it (degraded until the second). */
  GT_EXPECT_ASSIGN(&t, a, a);
  mock_advance_to(&t.m, 40 * MS);
  seq_ready(&t, 0);
  mock_run(&t.m);
  CHECK_EQ(gt_members(&t, ids), 2);
  CHECK_EQ(ids[0], a);
  uint64_t b = ids[1];
  CHECK(b != a);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 20000", "joined 1 ct 40000");
  /* No attempt was cancelled or closed: both became members. */
  MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0");

  /* The rotation goes on after a (chosen last): b, a, b, a, ... */
  GT_EXPECT_ASSIGN(&t, b, a, b, a, b, a, b, a);
  GT_CHECK_METRICS(&t, a, 6, 6, 0, 1);
  GT_CHECK_METRICS(&t, b, 4, 4, 0, 1);
  GroupMemberMetrics ma = gt_metrics(&t, a), mb = gt_metrics(&t, b);
  CHECK_EQ(ma.connect_time_us, 20 * MS);
  CHECK_EQ(ma.joined_at_us, 20 * MS);
  CHECK_EQ(mb.connect_time_us, 40 * MS);
  CHECK_EQ(mb.joined_at_us, 40 * MS);
  /* Mock members have no fd. */
  CHECK_EQ(connection_group_member_fd(t.g, a), -1);

  /* Released streams do not disturb the order. */
  CHECK_CODE(connection_group_release_stream(t.g, a, 0), TAPS_OK);
  CHECK_CODE(connection_group_release_stream(t.g, a, 0), TAPS_OK);
  GT_EXPECT_ASSIGN(&t, b, a, b, a);

  /* Nothing is pending, however long we wait. */
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), -1);
  mock_advance(&t.m, 100 * S);
  CHECK_EQ(t.m.n_log, 2);
  CHECK_EQ(t.n_ev, 2);
  gt_finish(&t);
  /* Freeing the group closed both members through the protocol (in no
   * particular order). */
  CHECK_EQ(t.m.n_log, 4);
  MOCK_CHECK_LOG_HAS(&t.m, "close 100 fd -1");
  MOCK_CHECK_LOG_HAS(&t.m, "close 101 fd -1");
}

/* K = 3: 1, 2, 3, 1, 2, 3 exactly, in join order (not start order). */
static void case_round_robin_three(void) {
  GroupTest t;
  GroupOptions o = gopts(3, ASSIGN_POLICY_ROUND_ROBIN, 256);
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
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), -1);
  gt_finish(&t);
}

/* Members are diverse: the K first attempts go to K distinct remote
 * addresses (K = 2 and K = 3 over 127.0.0.1, .2, .3), all at once, not one
 * Connection Attempt Delay apart. */
static void case_members_diverse(void) {
  for (uint32_t k = 2; k <= 3; k++) {
    GroupTest t;
    GroupOptions o = gopts(k, ASSIGN_POLICY_ROUND_ROBIN, 256);
    gt_init(&t, 3, &o);
    mock_run(&t.m);
    CHECK_EQ(t.n, (int)k);
    for (uint32_t i = 0; i < k; i++) {
      CHECK_EQ(t.a[i].at_us, 0);
      for (uint32_t j = 0; j < i; j++) CHECK(strcmp(t.a[i].addr, t.a[j].addr) != 0);
    }
    if (k == 2) MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0");
    gt_finish(&t);
  }
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
  CHECK_CODE(connection_group_mark_failed(t.g, 1), TAPS_OK);
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

/* ---- least loaded, weighted ----------------------------------------------- */

/* Least loaded: the member with the fewest open streams; equal loads
 * rotate (after the member chosen last). */
static void case_least_loaded(void) {
  GroupTest t;
  GroupOptions o = gopts(3, ASSIGN_POLICY_LEAST_LOADED, 256);
  gt_build(&t, 3, &o, 3);
  uint64_t ids[16];
  CHECK_EQ(gt_members(&t, ids), 3);
  uint64_t a = ids[0], b = ids[1], c = ids[2];
  GT_EXPECT_ASSIGN(&t, a, b, c, a, b, c); /* equal loads rotate */
  /* b: 2 → 0 open (one ended failed). */
  CHECK_CODE(connection_group_release_stream(t.g, b, 0), TAPS_OK);
  CHECK_CODE(connection_group_release_stream(t.g, b, 1), TAPS_OK);
  GT_CHECK_METRICS(&t, b, 2, 0, 1, 1);
  GT_EXPECT_ASSIGN(&t, b, b); /* b has the fewest open until it has 2 */
  GT_EXPECT_ASSIGN(&t, c, a); /* 2, 2, 2: the tie rotates after b */
  /* a: 3 → 0 (b: 2, c: 3). */
  for (int i = 0; i < 3; i++) CHECK_CODE(connection_group_release_stream(t.g, a, 0), TAPS_OK);
  /* a: 0, b: 2, c: 3 → a, a (a: 2), then a and b tie at 2: after a (chosen
   * last) comes b. */
  GT_EXPECT_ASSIGN(&t, a, a, b);
  GT_CHECK_METRICS(&t, a, 5, 2, 0, 1);
  GT_CHECK_METRICS(&t, b, 5, 3, 1, 1);
  GT_CHECK_METRICS(&t, c, 3, 3, 0, 1);
  /* Distribution under churn: with releases the loads stay within one. */
  for (int round = 0; round < 300; round++) {
    uint64_t m = gt_assign(&t);
    if (round % 3 == 0) CHECK_CODE(connection_group_release_stream(t.g, m, 0), TAPS_OK);
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < 3; i++) {
      uint32_t open = gt_metrics(&t, ids[i]).streams_open;
      lo = open < lo ? open : lo;
      hi = open > hi ? open : hi;
    }
    CHECK(hi - lo <= 1);
  }
  gt_finish(&t);
}

/* Weighted with weights set by connection_group_set_weight: 3 and 1 give
 * a, a, b, a (smooth weighted round robin) in every period of 4; weight 0
 * is never chosen; when no member may be chosen, TAPS_ERROR_NO_MEMBER. */
static void case_weighted_set_weight(void) {
  GroupTest t;
  GroupOptions o = gopts(2, ASSIGN_POLICY_WEIGHTED, 256);
  gt_init(&t, 2, &o);
  mock_run(&t.m);
  mock_advance(&t.m, 10 * MS);
  seq_ready(&t, 0);
  seq_ready(&t, 1);
  mock_run(&t.m);
  uint64_t ids[16];
  CHECK_EQ(gt_members(&t, ids), 2);
  uint64_t a = ids[0], b = ids[1];
  CHECK_EQ(gt_metrics(&t, a).weight, 100); /* 10 ms: the derived weight */
  CHECK_CODE(connection_group_set_weight(t.g, a, 3), TAPS_OK);
  CHECK_CODE(connection_group_set_weight(t.g, b, 1), TAPS_OK);
  CHECK_EQ(gt_metrics(&t, a).weight, 3);
  CHECK_EQ(gt_metrics(&t, b).weight, 1);
  for (int period = 0; period < 10; period++) GT_EXPECT_ASSIGN(&t, a, a, b, a);
  GT_CHECK_METRICS(&t, a, 30, 30, 0, 1);
  GT_CHECK_METRICS(&t, b, 10, 10, 0, 1);
  /* 1:1 */
  CHECK_CODE(connection_group_set_weight(t.g, a, 5), TAPS_OK);
  CHECK_CODE(connection_group_set_weight(t.g, b, 5), TAPS_OK);
  GT_EXPECT_ASSIGN(&t, a, b, a, b);
  /* Weight 0: never chosen, its streams still counted. */
  CHECK_CODE(connection_group_set_weight(t.g, a, 0), TAPS_OK);
  GT_EXPECT_ASSIGN(&t, b, b, b, b, b);
  CHECK_CODE(connection_group_release_stream(t.g, a, 0), TAPS_OK);
  GT_CHECK_METRICS(&t, a, 32, 31, 0, 1);
  CHECK_CODE(connection_group_set_weight(t.g, b, 0), TAPS_OK);
  GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
  CHECK_CODE(connection_group_set_weight(t.g, a, 1), TAPS_OK);
  GT_EXPECT_ASSIGN(&t, a);
  gt_finish(&t);
}

/* Weighted with the default weights, from the connect times: the member
 * that connected in 10 ms (weight 100) gets 4× the streams of the one that
 * took 40 ms (weight 25), 4 in every 5, interleaved. */
static void case_weighted_connect_time(void) {
  GroupTest t;
  GroupOptions o = gopts(2, ASSIGN_POLICY_WEIGHTED, 256);
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

/* ---- capacity --------------------------------------------------------------- */

/* Each member carries at most `capacity` open streams: full members are
 * skipped (round robin keeps its order), every member full gives
 * TAPS_ERROR_ALL_MEMBERS_FULL, a release frees a slot. The same for least
 * loaded and weighted. */
static void case_capacity(void) {
  {
    GroupTest t;
    GroupOptions o = gopts(2, ASSIGN_POLICY_ROUND_ROBIN, 2);
    gt_build(&t, 2, &o, 2);
    GT_EXPECT_ASSIGN(&t, 0, 1, 0, 1);
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_ALL_MEMBERS_FULL);
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_ALL_MEMBERS_FULL);
    GT_CHECK_METRICS(&t, 0, 2, 2, 0, 1); /* failed assignments are not counted */
    CHECK_CODE(connection_group_release_stream(t.g, 1, 0), TAPS_OK);
    GT_EXPECT_ASSIGN(&t, 1); /* the freed slot */
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_ALL_MEMBERS_FULL);
    CHECK_CODE(connection_group_release_stream(t.g, 0, 1), TAPS_OK);
    GT_EXPECT_ASSIGN(&t, 0);
    GT_CHECK_METRICS(&t, 0, 3, 2, 1, 1);
    GT_CHECK_METRICS(&t, 1, 3, 2, 0, 1);
    gt_finish(&t);
  }
  {
    /* Round robin over 3 with capacity 2: a full member is skipped without
     * disturbing the others' order. */
    GroupTest t;
    GroupOptions o = gopts(3, ASSIGN_POLICY_ROUND_ROBIN, 2);
    gt_build(&t, 3, &o, 3);
    GT_EXPECT_ASSIGN(&t, 0, 1, 2, 0, 1); /* 0: 2, 1: 2, 2: 1 */
    CHECK_CODE(connection_group_release_stream(t.g, 0, 0), TAPS_OK);
    GT_EXPECT_ASSIGN(&t, 2, 0); /* 1 is full: skipped */
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_ALL_MEMBERS_FULL);
    CHECK_CODE(connection_group_release_stream(t.g, 1, 0), TAPS_OK);
    CHECK_CODE(connection_group_release_stream(t.g, 2, 0), TAPS_OK);
    GT_EXPECT_ASSIGN(&t, 1, 2); /* 1 is back in its place */
    gt_finish(&t);
  }
  {
    /* Least loaded, capacity 1. */
    GroupTest t;
    GroupOptions o = gopts(2, ASSIGN_POLICY_LEAST_LOADED, 1);
    gt_build(&t, 2, &o, 2);
    GT_EXPECT_ASSIGN(&t, 0, 1);
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_ALL_MEMBERS_FULL);
    CHECK_CODE(connection_group_release_stream(t.g, 1, 0), TAPS_OK);
    GT_EXPECT_ASSIGN(&t, 1);
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_ALL_MEMBERS_FULL);
    gt_finish(&t);
  }
  {
    /* Weighted 3:1, capacity 2: a is full after two, b takes the rest. */
    GroupTest t;
    GroupOptions o = gopts(2, ASSIGN_POLICY_WEIGHTED, 2);
    gt_build(&t, 2, &o, 2);
    CHECK_CODE(connection_group_set_weight(t.g, 0, 3), TAPS_OK);
    CHECK_CODE(connection_group_set_weight(t.g, 1, 1), TAPS_OK);
    GT_EXPECT_ASSIGN(&t, 0, 0, 1, 1);
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_ALL_MEMBERS_FULL);
    CHECK_CODE(connection_group_release_stream(t.g, 0, 0), TAPS_OK);
    GT_EXPECT_ASSIGN(&t, 0);
    gt_finish(&t);
  }
  {
    /* The default capacity is 256 per member. */
    GroupTest t;
    gt_build(&t, 2, NULL, 2);
    for (int i = 0; i < 512; i++) (void)gt_assign(&t);
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_ALL_MEMBERS_FULL);
    GT_CHECK_METRICS(&t, 0, 256, 256, 0, 1);
    GT_CHECK_METRICS(&t, 1, 256, 256, 0, 1);
    gt_finish(&t);
  }
}

/* ---- failover, rebuild ---------------------------------------------------- */

/* connection_group_mark_failed: the member leaves the rotation at once (the
 * very next assignment goes to the others), its connection is closed
 * through the protocol, MEMBER_FAILED carries the streams it had open,
 * which its metrics count as failed; a rebuild races one replacement at
 * once, which joins last with a new id and restores K. */
static void case_failover_and_rebuild(void) {
  GroupTest t;
  GroupOptions o = gopts(3, ASSIGN_POLICY_ROUND_ROBIN, 256);
  gt_build(&t, 3, &o, 3);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "joined 1 ct 0", "joined 2 ct 0");
  GT_EXPECT_ASSIGN(&t, 0, 1, 2, 0, 1, 2, 0);
  CHECK_CODE(connection_group_release_stream(t.g, 1, 1), TAPS_OK); /* 1: one ended failed, one open */
  mock_advance_to(&t.m, 3 * S);
  CHECK_CODE(connection_group_mark_failed(t.g, 1), TAPS_OK);
  /* At once, before the loop runs: the next streams go to 2 and 0. */
  GT_EXPECT_ASSIGN(&t, 2, 0, 2, 0);
  GT_CHECK_METRICS(&t, 1, 2, 0, 2, 0);
  uint64_t ids[16];
  CHECK_EQ(gt_members(&t, ids), 2);
  CHECK_EQ(ids[0], 0);
  CHECK_EQ(ids[1], 2);
  CHECK_CODE(connection_group_mark_failed(t.g, 1), TAPS_ERROR_INVALID_ARGUMENT); /* not live any more */
  CHECK_CODE(connection_group_release_stream(t.g, 1, 0), TAPS_ERROR_INVALID_ARGUMENT); /* nothing open */
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 3, "failed 1 streams 1");
  CHECK_EQ(t.ev_at[3], 3 * S);
  /* Closed, then one replacement raced at once (where to: see
   * case_rebuild_is_diverse). */
  CHECK_EQ(t.m.n_log, 5);
  CHECK(strcmp(t.m.log[3], "close 101 fd -1") == 0);
  CHECK_EQ(t.n, 4);
  CHECK(strncmp(t.m.log[4], "start #3 ", 9) == 0);
  CHECK_EQ(t.a[3].at_us, 3 * S);
  /* The replacement joins 15 ms later. */
  mock_advance(&t.m, 15 * MS);
  seq_ready(&t, 3);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 3, "failed 1 streams 1", "joined 3 ct 15000");
  CHECK_EQ(gt_members(&t, ids), 3);
  CHECK_EQ(ids[0], 0);
  CHECK_EQ(ids[1], 2);
  CHECK_EQ(ids[2], 3);
  GroupMemberMetrics m3 = gt_metrics(&t, 3);
  CHECK_EQ(m3.joined_at_us, 3 * S + 15 * MS);
  CHECK_EQ(m3.connect_time_us, 15 * MS);
  /* The failed member's metrics stay readable. */
  GT_CHECK_METRICS(&t, 1, 2, 0, 2, 0);
  /* Round robin goes on after 0 (chosen last): 2, 3, 0, ... */
  GT_EXPECT_ASSIGN(&t, 2, 3, 0, 2, 3, 0);
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), -1);
  mock_advance(&t.m, 100 * S);
  CHECK_EQ(t.n, 4);
  CHECK_EQ(t.n_ev, 5);
  gt_finish(&t);
}

/* A user protocol's member: connection_group_member_fd gives the fd the
 * protocol reported; marked failed (the library watches only built-in TCP
 * members' sockets for hang-up, see case_tcp_loopback: the caller who
 * sees a user protocol's connection die marks it failed), it is closed
 * through the protocol with that fd, which the library never closes
 * itself; the replacement joins with its own fd. */
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
  CHECK_EQ(connection_group_member_fd(t.g, 0), sv[0]);
  CHECK_EQ(connection_group_member_fd(t.g, 1), sw[0]);
  GT_EXPECT_ASSIGN(&t, 0, 1, 0);
  mock_advance_to(&t.m, 2 * S);
  CHECK_CODE(connection_group_mark_failed(t.g, 0), TAPS_OK);
  CHECK_EQ(connection_group_member_fd(t.g, 0), -1);
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
  CHECK_EQ(connection_group_member_fd(t.g, 2), sx[0]);
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

/* Every member fails: ALL_FAILED once for the outage, TAPS_ERROR_NO_MEMBER
 * while none is live; a failed rebuild race reports REBUILD_FAILED with the
 * backoff (500 ms, then 1 s: the multiplier), no attempt starts before the
 * backoff ends and the next race starts exactly when it ends; RECOVERED
 * when a member joins again; a later outage is reported again. */
static void case_all_failed_once_and_recovers(void) {
  GroupTest t;
  GroupOptions o = group_options_default();
  o.backoff_initial_ms = 500;
  gt_build(&t, 2, &o, 2);
  GT_EXPECT_ASSIGN(&t, 0, 1, 0);
  mock_advance_to(&t.m, S);
  CHECK_CODE(connection_group_mark_failed(t.g, 0), TAPS_OK);
  CHECK_CODE(connection_group_mark_failed(t.g, 1), TAPS_OK);
  GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "joined 1 ct 0", "failed 0 streams 2", "failed 1 streams 1", "all failed");
  GT_CHECK_METRICS(&t, 0, 2, 0, 2, 0);
  GT_CHECK_METRICS(&t, 1, 1, 0, 1, 0);
  uint64_t ids[16];
  CHECK_EQ(gt_members(&t, ids), 0);
  GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
  /* The rebuild race is under way; every attempt it starts fails. */
  CHECK(t.n > 2);
  CHECK_EQ(t.a[2].at_us, S);
  mock_advance(&t.m, 100 * MS);
  while (t.n > 0 && t.a[t.n - 1].live) {
    for (int i = 2; i < t.n; i++) {
      if (t.a[i].live) seq_fail(&t, i, ECONNREFUSED);
    }
    mock_run(&t.m);
  }
  int n1 = t.n;
  SEQ_EVENTS_FROM(&t, 5, "rebuild failed 500000");
  CHECK_EQ(t.ev_at[5], S + 100 * MS);
  CHECK_EQ(seq_count_events(&t, "all failed"), 1);
  GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
  /* No race before the backoff ends; one exactly when it ends. */
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), 500);
  mock_advance(&t.m, 500 * MS - 1);
  CHECK_EQ(t.n, n1);
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), 1);
  mock_advance(&t.m, 1);
  CHECK(t.n > n1);
  for (int i = n1; i < t.n; i++) CHECK_EQ(t.a[i].at_us, S + 600 * MS);
  /* That race fails too: the backoff doubles; still one ALL_FAILED. */
  mock_advance(&t.m, 50 * MS);
  while (t.a[t.n - 1].live) {
    for (int i = n1; i < t.n; i++) {
      if (t.a[i].live) seq_fail(&t, i, ETIMEDOUT);
    }
    mock_run(&t.m);
  }
  int n2 = t.n;
  SEQ_EVENTS_FROM(&t, 5, "rebuild failed 500000", "rebuild failed 1000000");
  CHECK_EQ(seq_count_events(&t, "all failed"), 1);
  mock_advance(&t.m, S - 1);
  CHECK_EQ(t.n, n2);
  mock_advance(&t.m, 1);
  CHECK(t.n > n2);
  uint64_t t3 = S + 650 * MS + S;
  CHECK_EQ(t.a[n2].at_us, t3);
  /* A member joins: RECOVERED, and streams are assigned again. */
  mock_advance(&t.m, 20 * MS);
  seq_ready(&t, n2);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 7, "joined 2 ct 20000", "recovered 2");
  CHECK_EQ(t.ev_at[8], t3 + 20 * MS);
  GT_EXPECT_ASSIGN(&t, 2, 2);
  /* The group goes on until K members are back: the second one joins
   * without RECOVERED. */
  for (int guard = 0; gt_members(&t, ids) < 2 && guard < 8; guard++) {
    int ready = -1;
    for (int i = n2; i < t.n; i++) {
      if (t.a[i].live) ready = i;
    }
    CHECK(ready >= 0);
    seq_ready(&t, ready);
    mock_run(&t.m);
  }
  CHECK_EQ(gt_members(&t, ids), 2);
  SEQ_EVENTS_FROM(&t, 7, "joined 2 ct 20000", "recovered 2", "joined 3 ct 20000");
  CHECK_EQ(seq_count_events(&t, "all failed"), 1);
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), -1);
  /* A new outage is reported again, once; the backoff starts over at
   * 500 ms after a member joined. */
  int mark = t.n_ev;
  int n3 = t.n;
  CHECK_CODE(connection_group_mark_failed(t.g, 2), TAPS_OK);
  CHECK_CODE(connection_group_mark_failed(t.g, 3), TAPS_OK);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, mark, "failed 2 streams 2", "failed 3 streams 0", "all failed");
  while (t.n > n3 && t.a[t.n - 1].live) {
    for (int i = n3; i < t.n; i++) {
      if (t.a[i].live) seq_fail(&t, i, ECONNREFUSED);
    }
    mock_run(&t.m);
  }
  SEQ_EVENTS_FROM(&t, mark, "failed 2 streams 2", "failed 3 streams 0", "all failed", "rebuild failed 500000");
  CHECK_EQ(seq_count_events(&t, "all failed"), 2);
  gt_finish(&t);
}

/* A group of one: its member fails → ALL_FAILED, TAPS_ERROR_NO_MEMBER until
 * the replacement joins (RECOVERED). The initial build failing reports
 * REBUILD_FAILED and ALL_FAILED as well (no member ever joined). */
static void case_no_member_while_none_live(void) {
  {
    GroupTest t;
    GroupOptions o = gopts(1, ASSIGN_POLICY_ROUND_ROBIN, 256);
    gt_init(&t, 1, &o);
    mock_run(&t.m);
    MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0");
    GT_ASSIGN_FAILS(&t, TAPS_ERROR_NO_MEMBER);
    seq_ready(&t, 0);
    mock_run(&t.m);
    GT_EXPECT_ASSIGN(&t, 0, 0);
    CHECK_CODE(connection_group_mark_failed(t.g, 0), TAPS_OK);
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
    GroupOptions o = gopts(1, ASSIGN_POLICY_ROUND_ROBIN, 256);
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
  GroupOptions d = group_options_default();
  CHECK_EQ(d.size, 2);
  CHECK_EQ(d.policy, ASSIGN_POLICY_ROUND_ROBIN);
  CHECK_EQ(d.capacity, 256);
  CHECK_EQ(d.backoff_initial_ms, 1000);
  CHECK_EQ(d.backoff_multiplier_percent, 200);
  CHECK_EQ(d.backoff_max_ms, 60000);

  /* NULL */
  CHECK(connection_group_new(NULL, &d, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  uint64_t m = 0;
  CHECK_CODE(connection_group_assign(NULL, &m), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(connection_group_assign(t.g, NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(connection_group_release_stream(NULL, 0, 0), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(connection_group_mark_failed(NULL, 0), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(connection_group_set_weight(NULL, 0, 1), TAPS_ERROR_NULL_ARGUMENT);
  GroupMemberMetrics mm;
  CHECK_CODE(connection_group_member_metrics(NULL, 0, &mm), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_EQ(connection_group_member_fd(NULL, 0), -1);
  CHECK_EQ(connection_group_members(NULL, NULL, 0), 0);
  uint64_t ids[4];
  CHECK_EQ(connection_group_members(NULL, ids, 4), 0);
  connection_group_free(NULL);

  mock_run(&t.m);
  seq_ready(&t, 0);
  seq_ready(&t, 1);
  mock_run(&t.m);
  CHECK_CODE(connection_group_member_metrics(t.g, 0, NULL), TAPS_ERROR_NULL_ARGUMENT);
  /* members with a short array: the count of all, `cap` written. */
  ids[0] = ids[1] = 99;
  CHECK_EQ(connection_group_members(t.g, ids, 1), 2);
  CHECK_EQ(ids[0], 0);
  CHECK_EQ(ids[1], 99);

  /* Unknown members. */
  CHECK_CODE(connection_group_mark_failed(t.g, 7), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(connection_group_set_weight(t.g, 7, 1), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(connection_group_member_metrics(t.g, 7, &mm), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(connection_group_release_stream(t.g, 7, 0), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(connection_group_mark_failed(t.g, UINT64_MAX), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(connection_group_member_metrics(t.g, UINT64_MAX, &mm), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_EQ(connection_group_member_fd(t.g, 7), -1);
  /* A known member with no open stream: nothing to release. */
  CHECK_CODE(connection_group_release_stream(t.g, 0, 0), TAPS_ERROR_INVALID_ARGUMENT);
  GT_CHECK_METRICS(&t, 0, 0, 0, 0, 1);
  /* None of that disturbed the group. */
  GT_EXPECT_ASSIGN(&t, 0, 1);

  /* Options out of range. */
  struct {
    const char *field;
    GroupOptions o;
  } bad[16];
  size_t n = 0;
#define BAD(name, ...)                           \
  do {                                           \
    bad[n].field = (name);                       \
    bad[n].o = group_options_default();          \
    { GroupOptions *o = &bad[n].o; __VA_ARGS__; } \
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
    ConnectionGroup *g = connection_group_new(t.pre, &bad[i].o, NULL, NULL);
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
  GroupOptions good[7];
  for (int i = 0; i < 7; i++) good[i] = group_options_default();
  good[0].size = 1;
  good[0].capacity = 1;
  good[1].size = 64;
  good[1].capacity = 1000000;
  good[2].policy = ASSIGN_POLICY_LEAST_LOADED;
  good[2].backoff_multiplier_percent = 100;
  good[3].policy = ASSIGN_POLICY_WEIGHTED;
  good[3].backoff_multiplier_percent = 1000;
  good[4].backoff_max_ms = 1000; /* == backoff_initial_ms */
  good[5].backoff_initial_ms = 0;
  good[5].backoff_max_ms = 0;
  t.quiet = 1;
  for (int i = 0; i < 8; i++) {
    ConnectionGroup *g = connection_group_new(t.pre, i < 7 ? &good[i] : NULL, NULL, NULL);
    if (g == NULL) fprintf(stderr, "good options %d: %s\n", i, taps_last_error_message());
    CHECK(g != NULL);
    mock_run(&t.m);
    connection_group_free(g);
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
  GroupOptions o = gopts(3, ASSIGN_POLICY_ROUND_ROBIN, 256);
  gt_init(&t, 3, &o);
  mock_run(&t.m);
  seq_ready(&t, 0);
  seq_ready(&t, 1);
  seq_ready(&t, 2);
  mock_run(&t.m);
  GT_EXPECT_ASSIGN(&t, 0, 1, 2);
  mock_advance_to(&t.m, S);
  CHECK_CODE(connection_group_mark_failed(t.g, 0), TAPS_OK);
  CHECK_CODE(connection_group_mark_failed(t.g, 1), TAPS_OK);
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
      fprintf(stderr, "attempt #%d was not cancelled by connection_group_free\n", i);
      mock_print_log(&t.m);
      exit(1);
    }
  }
  MOCK_CHECK_LOG_HAS(&t.m, "close 102 fd -1"); /* the live member */
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), -1);
  gt_finish(&t);
}

/* Freed just after a rebuild attempt reported ready, before the loop took
 * that completion: its connection is closed (once), not cancelled; the
 * other running attempt is cancelled; no event. */
static void case_free_with_ready_queued(void) {
  GroupTest t;
  gt_build(&t, 2, NULL, 2);
  CHECK_CODE(connection_group_mark_failed(t.g, 0), TAPS_OK);
  CHECK_CODE(connection_group_mark_failed(t.g, 1), TAPS_OK);
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
  GroupOptions o = gopts(1, ASSIGN_POLICY_ROUND_ROBIN, 256);
  gt_init(&t, 1, &o);
  mock_run(&t.m);
  seq_fail(&t, 0, ECONNREFUSED);
  mock_run(&t.m);
  SEQ_EVENTS_FROM(&t, 0, "rebuild failed 1000000", "all failed");
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), 1000);
  gt_free_group(&t);
  mock_run(&t.m);
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), -1);
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
  GroupOptions o = gopts(1, ASSIGN_POLICY_ROUND_ROBIN, 256);
  gt_init(&t, 1, &o);
  mock_run(&t.m);
  seq_ready(&t, 0);
  mock_run(&t.m);
  t.free_on = "failed 0 streams 0";
  CHECK_CODE(connection_group_mark_failed(t.g, 0), TAPS_OK);
  mock_run(&t.m);
  CHECK(t.freed);
  mock_advance(&t.m, 10 * S);
  SEQ_EVENTS_FROM(&t, 0, "joined 0 ct 0", "failed 0 streams 0");
  MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "close 100 fd -1", "start #1 127.0.0.1 at 0", "cancel #1");
  CHECK_EQ(event_loop_get_timeout_ms(t.m.loop), -1);
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
  preconnection_free(t.pre);
  t.pre = NULL;
  t.freed = 1; /* no event either */
  event_loop_free(t.m.loop);
  t.m.loop = NULL;
  /* "Every race still pending on it is cancelled ... with no callback":
   * the build race is cancelled and the member closed; no new attempt may
   * start while the loop is freed. */
  MOCK_EXPECT(&t.m, "start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0", "cancel #1", "close 100 fd -1");
  CHECK_EQ(t.started_after_free, 0);
  uint64_t m = 0;
  CHECK_CODE(connection_group_assign(t.g, &m), TAPS_ERROR_INVALID_STATE);
  CHECK_EQ(connection_group_members(t.g, NULL, 0), 0);
  CHECK_EQ(connection_group_member_fd(t.g, 0), -1);
  connection_group_free(t.g);
  t.g = NULL;
  transport_properties_free(t.props);
}

/* ---- a real group of TCP connections on loopback --------------------------- */

typedef struct TcpEvents {
  int joined, failed, all_failed;
  uint64_t failed_member;
} TcpEvents;

static void tcp_on_event(const GroupEvent *e, void *ud) {
  TcpEvents *r = (TcpEvents *)ud;
  if (e->kind == GROUP_EVENT_KIND_MEMBER_JOINED) r->joined++;
  if (e->kind == GROUP_EVENT_KIND_MEMBER_FAILED) {
    r->failed++;
    r->failed_member = e->member;
  }
  if (e->kind == GROUP_EVENT_KIND_ALL_FAILED) r->all_failed++;
}

/* Run the loop: event_loop_run_once for at most 10 ms, and when it returns
 * at once with nothing done (no race pending: the members are only
 * watched), wait for the loop's fd up to 10 ms. */
static void tcp_pump(EventLoop *loop) {
  int rc = event_loop_run_once(loop, 10);
  CHECK(rc >= 0);
  if (rc == 0) {
    struct pollfd p = {event_loop_get_fd(loop), POLLIN, 0};
    (void)poll(&p, 1, 10);
  }
}

#define TCP_PUMP_UNTIL(loop, cond, ms)                                   \
  do {                                                                   \
    uint64_t until_ = test_now_us() + (uint64_t)SCALED(ms) * 1000u;      \
    while (!(cond) && test_now_us() < until_) tcp_pump(loop);            \
  } while (0)

/* A group of 2 to a 127.0.0.1 listener builds; its members' fds are
 * connected to the listener; the server closes one member's connection →
 * MEMBER_FAILED for that member, new streams go to the other, and the
 * group rebuilds to 2 with a new connection. */
static void case_tcp_loopback(void) {
  int l, srv[16], n_srv = 0;
  EventLoop *loop;
  Preconnection *pre;
  uint16_t port = tcp_fixture(&l, &loop, &pre);
  GroupOptions o = group_options_default();
  o.backoff_initial_ms = 10;
  TcpEvents ev;
  memset(&ev, 0, sizeof ev);
  ConnectionGroup *g = connection_group_new(pre, &o, tcp_on_event, &ev);
  CHECK(g != NULL);
  preconnection_free(pre);

  TCP_PUMP_UNTIL(loop, connection_group_members(g, NULL, 0) == 2, 5000);
  uint64_t ids[4];
  CHECK_EQ(connection_group_members(g, ids, 4), 2);
  CHECK_EQ(ev.joined, 2);
  CHECK_EQ(ev.failed, 0);
  int fd0 = connection_group_member_fd(g, ids[0]);
  int fd1 = connection_group_member_fd(g, ids[1]);
  CHECK(fd0 >= 0 && fd1 >= 0 && fd0 != fd1);
  CHECK(fcntl(fd0, F_GETFD) != -1);
  CHECK_EQ(sock_port(fd0, 1), port);
  CHECK_EQ(sock_port(fd1, 1), port);
  GroupMemberMetrics mm;
  CHECK_CODE(connection_group_member_metrics(g, ids[0], &mm), TAPS_OK);
  CHECK_EQ(mm.live, 1);
  CHECK(mm.connect_time_us < (uint64_t)SCALED(5000) * 1000u);

  uint64_t until = test_now_us() + (uint64_t)SCALED(2000) * 1000u;
  while (n_srv < 2 && test_now_us() < until) {
    tcp_accept(l, srv, &n_srv, 16);
    test_sleep_ms(1);
  }
  CHECK_EQ(n_srv, 2);
  /* The server closes member 0's connection. */
  uint16_t mine = sock_port(fd0, 0);
  int victim = sock_port(srv[0], 1) == mine ? 0 : 1;
  CHECK_EQ(sock_port(srv[victim], 1), mine);
  uint64_t a = ids[0], b = ids[1];
  uint64_t s = 0;
  CHECK_CODE(connection_group_assign(g, &s), TAPS_OK);
  CHECK_EQ(s, a);
  close(srv[victim]);
  srv[victim] = -1;
  TCP_PUMP_UNTIL(loop, ev.failed == 1, 5000);
  if (ev.failed != 1) {
    fprintf(stderr, "the server closed member %" PRIu64 "'s connection (FIN); after %lld ms the group reports %d "
                    "failed, %zu members\n",
            a, (long long)SCALED(5000), ev.failed, connection_group_members(g, NULL, 0));
    exit(1);
  }
  CHECK_EQ(ev.failed_member, a);
  CHECK_CODE(connection_group_member_metrics(g, a, &mm), TAPS_OK);
  CHECK_EQ(mm.live, 0);
  CHECK_EQ(mm.streams_failed, 1);
  /* New streams go to b while the group rebuilds (or to the newcomer). */
  CHECK_CODE(connection_group_assign(g, &s), TAPS_OK);
  CHECK(s != a);
  TCP_PUMP_UNTIL(loop, connection_group_members(g, NULL, 0) == 2, 5000);
  CHECK_EQ(connection_group_members(g, ids, 4), 2);
  CHECK_EQ(ev.joined, 3);
  CHECK_EQ(ev.all_failed, 0);
  CHECK(ids[0] == b || ids[1] == b);
  CHECK(ids[0] != a && ids[1] != a);
  for (int i = 0; i < 2; i++) {
    int fd = connection_group_member_fd(g, ids[i]);
    CHECK(fd >= 0);
    CHECK_EQ(sock_port(fd, 1), port);
  }

  connection_group_free(g);
  event_loop_free(loop);
  tcp_accept(l, srv, &n_srv, 16);
  for (int i = 0; i < n_srv; i++) {
    if (srv[i] >= 0) close(srv[i]);
  }
  close(l);
}

MOCK_MAIN(MOCK_CASE(round_robin_two), MOCK_CASE(round_robin_three), MOCK_CASE(members_diverse),
          MOCK_CASE(rebuild_is_diverse), MOCK_CASE(least_loaded), MOCK_CASE(weighted_set_weight),
          MOCK_CASE(weighted_connect_time), MOCK_CASE(capacity), MOCK_CASE(failover_and_rebuild),
          MOCK_CASE(member_fd_and_close), MOCK_CASE(all_failed_once_and_recovers),
          MOCK_CASE(no_member_while_none_live), MOCK_CASE(bad_arguments), MOCK_CASE(free_with_rebuild_in_flight),
          MOCK_CASE(free_with_ready_queued), MOCK_CASE(free_during_backoff), MOCK_CASE(free_in_event_callback),
          MOCK_CASE(loop_freed_first),
          MOCK_CASE(tcp_loopback))
