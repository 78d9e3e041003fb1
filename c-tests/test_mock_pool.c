/* taps_connection pools (issue 6) through the C API only, with a mock protocol
 * under the manual clock (every time exact to the µs): what the C API
 * adds to a pool (the C vtable, taps_pool_event and taps_attempt_info, NULL and
 * out-of-range arguments, who frees what: the pool, a waiting caller's
 * connection, the loop under a pool) and the backoff, jitter and idle
 * scenarios; and one pool of real TCP connections to a loopback listener
 * on the real clock. The racing-pool note's scenarios through the Rust API
 * (all fail and back off, first wins and the others disposed or buffered,
 * a middle one wins, refill with racing off and on, failures after the
 * winner, acquire during a refill, free with races in flight) are in
 * tests/pool.rs.
 *
 * The mock protocol, "relay", numbers attempts by start order across the
 * pool (mock.h's SeqTest): the log says "start #4 at 52000000", "cancel
 * #4", and the connection handle the test reports for attempt #i is 100 +
 * i ("close 104 fd -1"). Pool events are recorded as strings ("started 3",
 * "attempt failed 45000000 ECONNREFUSED", "won 40000000", "race failed
 * ...", "buffered", "disposed", "backoff 2000000") and compared exactly. */
#include "mock.h"

#include <sys/socket.h>

#define S 1000000ull

static const char *const one[] = {"127.0.0.1"};

typedef SeqTest PoolTest;

/* A caller's connection from taps_connection_pool_acquire and what its
 * callbacks saw. */
typedef struct Waiter {
  taps_event_loop *loop;
  taps_connection *c;
  int ready, establishment_error, connection_error, closed;
  uint64_t at_us;
  int forbid; /* any callback now fails the test */
} Waiter;

/* ---- events --------------------------------------------------------------- */

static const char *pt_errno_name(int e) {
  switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ECONNRESET: return "ECONNRESET";
    case ENETUNREACH: return "ENETUNREACH";
    case 0: return "0";
  }
  return "E?";
}

static void pt_event_str(const taps_pool_event *e, char *buf, size_t n) {
  switch (e->kind) {
    case TAPS_POOL_EVENT_KIND_RACE_STARTED: snprintf(buf, n, "started %u", e->count); return;
    case TAPS_POOL_EVENT_KIND_ATTEMPT_SUCCEEDED: snprintf(buf, n, "attempt ok %" PRIu64, e->elapsed_us); return;
    case TAPS_POOL_EVENT_KIND_ATTEMPT_FAILED:
      snprintf(buf, n, "attempt failed %" PRIu64 " %s", e->elapsed_us, pt_errno_name(e->os_error));
      return;
    case TAPS_POOL_EVENT_KIND_RACE_WON: snprintf(buf, n, "won %" PRIu64, e->elapsed_us); return;
    case TAPS_POOL_EVENT_KIND_RACE_FAILED:
      snprintf(buf, n, "race failed %" PRIu64 " %s", e->elapsed_us, pt_errno_name(e->os_error));
      return;
    case TAPS_POOL_EVENT_KIND_CONNECTION_BUFFERED: snprintf(buf, n, "buffered"); return;
    case TAPS_POOL_EVENT_KIND_CONNECTION_DISPOSED: snprintf(buf, n, "disposed"); return;
    case TAPS_POOL_EVENT_KIND_BACKOFF: snprintf(buf, n, "backoff %" PRIu64, e->elapsed_us); return;
  }
  snprintf(buf, n, "kind %d", (int)e->kind);
}

static void pt_on_event(const taps_pool_event *e, void *user_data) {
  PoolTest *t = (PoolTest *)user_data;
  char s[64];
  pt_event_str(e, s, sizeof s);
  /* count only for RaceStarted, os_error only for failures. */
  CHECK(e->kind == TAPS_POOL_EVENT_KIND_RACE_STARTED || e->count == 0);
  CHECK(e->kind == TAPS_POOL_EVENT_KIND_ATTEMPT_FAILED || e->kind == TAPS_POOL_EVENT_KIND_RACE_FAILED || e->os_error == 0);
  seq_event(t, s);
}

/* ---- callers -------------------------------------------------------------- */

/* Count a callback of the waiter's connection `c` in *count; the two
 * that end the wait also note the loop's time. */
static int w_note(Waiter *w, taps_connection *c, int *count, int ends_wait) {
  CHECK(!w->forbid);
  CHECK(c == w->c);
  (*count)++;
  if (ends_wait) w->at_us = taps_event_loop_now_us(w->loop);
  return 0;
}

static int w_ready(taps_connection *c, void *ud) {
  Waiter *w = (Waiter *)ud;
  return w_note(w, c, &w->ready, 1);
}

static int w_establishment_error(taps_connection *c, void *ud) {
  Waiter *w = (Waiter *)ud;
  return w_note(w, c, &w->establishment_error, 1);
}

static int w_connection_error(taps_connection *c, void *ud) {
  Waiter *w = (Waiter *)ud;
  return w_note(w, c, &w->connection_error, 0);
}

static int w_closed(taps_connection *c, void *ud) {
  Waiter *w = (Waiter *)ud;
  return w_note(w, c, &w->closed, 0);
}

static void w_acquire(taps_connection_pool *pool, taps_event_loop *loop, Waiter *w) {
  memset(w, 0, sizeof *w);
  w->loop = loop;
  taps_connection_callbacks cb = mock_no_callbacks();
  cb.ready = w_ready;
  cb.establishment_error = w_establishment_error;
  cb.connection_error = w_connection_error;
  cb.closed = w_closed;
  cb.user_data = w;
  CHECK_CODE(taps_connection_pool_acquire(pool, cb, &w->c), TAPS_OK);
  CHECK(w->c != NULL);
}

static void pt_acquire(PoolTest *t, Waiter *w) { w_acquire(t->pool, t->m.loop, w); }

/* pt_acquire, then run what is ready. */
static void pt_acquire_run(PoolTest *t, Waiter *w) {
  pt_acquire(t, w);
  mock_run(&t->m);
}

/* The waiter got the connection attempt #i made (handle 100 + i) at `at_us`. */
#define CHECK_SERVED(w, i, at)                                                      \
  do {                                                                              \
    CHECK_EQ((w)->ready, 1);                                                        \
    CHECK_EQ((w)->establishment_error, 0);                                          \
    CHECK_EQ((w)->at_us, (at));                                                     \
    CHECK_CODE(taps_connection_get_error((w)->c), TAPS_OK);                              \
    CHECK_EQ((intptr_t)taps_connection_get_protocol_connection((w)->c), 100 + (i));      \
    CHECK(taps_connection_get_protocol((w)->c) != NULL);                                 \
    CHECK(strcmp(taps_connection_get_protocol((w)->c), "relay") == 0);                   \
  } while (0)

static void w_free(Waiter *w) {
  taps_connection_free(w->c);
  w->c = NULL;
}

/* ---- set-up --------------------------------------------------------------- */

/* A manual-clock loop with "relay" (reliable, multistreaming; mock_props
 * keeps it alone in the race), one candidate 127.0.0.1:443, and a pool
 * with `o` (NULL: the defaults). */
static void pt_init(PoolTest *t, const taps_pool_options *o) {
  seq_init(t, one, 1);
  t->pool = taps_connection_pool_new(t->pre, o, pt_on_event, t);
  if (t->pool == NULL) fprintf(stderr, "taps_connection_pool_new: %s\n", taps_last_error_message());
  CHECK(t->pool != NULL);
}

static void pt_free_pool(PoolTest *t) {
  taps_connection_pool_free(t->pool);
  t->pool = NULL;
  t->freed = 1;
}

static void pt_finish(PoolTest *t) {
  pt_free_pool(t);
  seq_finish(t);
}

static taps_pool_options opts(uint32_t race_count, uint32_t buffer_size, uint32_t max_size) {
  taps_pool_options o = taps_pool_options_default();
  o.race_count = race_count;
  o.buffer_size = buffer_size;
  o.max_size = max_size;
  return o;
}

/* pt_init with the defaults but these three. */
static void pt_init_n(PoolTest *t, uint32_t race_count, uint32_t buffer_size, uint32_t max_size) {
  taps_pool_options o = opts(race_count, buffer_size, max_size);
  pt_init(t, &o);
}

/* The connection's attempt `i` has `outcome` and `os_error`, started and
 * ended at these µs. */
static void check_attempt(taps_connection *c, size_t i, uint64_t started, uint64_t ended, taps_attempt_outcome outcome,
                          int os_error, int line) {
  taps_attempt_info a;
  memset(&a, 0, sizeof a);
  int rc = taps_connection_get_attempt(c, i, &a);
  if (rc != TAPS_OK || a.started_us != started || a.ended_us != ended || a.outcome != outcome ||
      a.os_error != os_error || a.protocol == NULL || strcmp(a.protocol, "relay") != 0) {
    fprintf(stderr,
            "%s:%d: attempt %zu: rc %d, %s started %" PRIu64 " ended %" PRIu64
            " %s os_error %d; expected started %" PRIu64 " ended %" PRIu64 " %s os_error %d\n",
            __FILE__, line, i, rc, a.protocol ? a.protocol : "(null)", a.started_us, a.ended_us,
            test_outcome_name(a.outcome), a.os_error, started, ended, test_outcome_name(outcome), os_error);
    test_print_attempts(c);
    exit(1);
  }
}
#define CHECK_ATTEMPT(c, i, started, ended, outcome, err) \
  check_attempt((c), (i), (started), (ended), (outcome), (err), __LINE__)

/* ---- races, backoff, idle expiry ------------------------------------------- */

/* A failed pool race leaves the caller's connection readable like a failed
 * race: taps_connection_get_attempt gives each attempt's errno (the header's
 * establishment_error contract). */
static void case_failed_race_attempts_readable(void) {
  PoolTest t;
  pt_init_n(&t, 2, 0, 8);
  Waiter w;
  pt_acquire_run(&t, &w);
  mock_advance(&t.m, 1000);
  seq_fail(&t, 0, ECONNREFUSED);
  mock_run(&t.m); /* completions are recorded when the loop takes them */
  mock_advance(&t.m, 1000);
  seq_fail(&t, 1, ETIMEDOUT);
  mock_run(&t.m);
  CHECK_EQ(w.establishment_error, 1);
  CHECK_EQ(taps_connection_attempt_count(w.c), 2);
  CHECK_ATTEMPT(w.c, 0, 0, 1000, TAPS_ATTEMPT_OUTCOME_FAILED, ECONNREFUSED);
  CHECK_ATTEMPT(w.c, 1, 0, 2000, TAPS_ATTEMPT_OUTCOME_FAILED, ETIMEDOUT);
  w_free(&w);
  pt_finish(&t);
}

/* The backoff grows by the multiplier up to the maximum. */
static void case_backoff_grows_to_max(void) {
  PoolTest t;
  taps_pool_options o = opts(1, 0, 8);
  o.backoff_initial_ms = 1000;
  o.backoff_multiplier_percent = 300;
  o.backoff_max_ms = 5000;
  pt_init(&t, &o);
  static const uint64_t want[] = {1 * S, 3 * S, 5 * S, 5 * S};
  uint64_t wait = 0;
  for (int r = 0; r < 4; r++) {
    Waiter w;
    pt_acquire_run(&t, &w);
    if (wait > 0) {
      CHECK_EQ(t.n, r);
      mock_advance(&t.m, wait - 1);
      CHECK_EQ(t.n, r);
      mock_advance(&t.m, 1);
    }
    CHECK_EQ(t.n, r + 1);
    seq_fail(&t, r, ECONNREFUSED);
    mock_run(&t.m);
    CHECK_EQ(w.establishment_error, 1);
    char b[32];
    snprintf(b, sizeof b, "backoff %" PRIu64, want[r]);
    CHECK(strcmp(t.ev[t.n_ev - 1], b) == 0);
    wait = want[r];
    w_free(&w);
  }
  pt_finish(&t);
}

/* With jitter, the Backoff event tells how long the next race waits: the
 * race starts exactly elapsed_us after the failure. */
static void case_backoff_jitter_event_is_the_wait(void) {
  PoolTest t;
  taps_pool_options o = opts(1, 0, 8);
  o.backoff_initial_ms = 1000;
  o.backoff_jitter_percent = 50;
  pt_init(&t, &o);
  uint64_t wait = 0;
  for (int r = 0; r < 4; r++) {
    Waiter w;
    pt_acquire_run(&t, &w);
    if (wait > 0) {
      mock_advance(&t.m, wait - 1);
      if (t.n != r) {
        fprintf(stderr, "round %d: the Backoff event said %" PRIu64 " us, but the race started earlier\n", r, wait);
        mock_print_log(&t.m);
        exit(1);
      }
      mock_advance(&t.m, 1);
      if (t.n != r + 1) {
        fprintf(stderr, "round %d: the Backoff event said %" PRIu64 " us, but no race started then\n", r, wait);
        seq_print_events(&t, 0);
        mock_print_log(&t.m);
        exit(1);
      }
    }
    CHECK_EQ(t.n, r + 1);
    seq_fail(&t, r, ECONNREFUSED);
    mock_run(&t.m);
    CHECK_EQ(w.establishment_error, 1);
    CHECK(sscanf(t.ev[t.n_ev - 1], "backoff %" SCNu64, &wait) == 1);
    uint64_t base = S << r; /* 1, 2, 4, 8 s, each +-50% */
    CHECK_RANGE(wait, base / 2, base + base / 2);
    w_free(&w);
  }
  pt_finish(&t);
}

/* max_idle_ms: a buffered connection older than it is closed exactly when
 * it reaches that age, reported disposed, and replaced. */
static void case_idle_expiry(void) {
  PoolTest t;
  taps_pool_options o = opts(3, 1, 8);
  o.max_idle_ms = 10000;
  pt_init(&t, &o);
  mock_run(&t.m);
  mock_advance_to(&t.m, 1 * S);
  seq_ready(&t, 0);
  mock_run(&t.m);
  CHECK_EQ(taps_connection_pool_buffered(t.pool), 1);
  CHECK_EQ(taps_event_loop_get_timeout_ms(t.m.loop), 10000);
  int mark = t.n_ev;
  mock_advance_to(&t.m, 11 * S - 1);
  CHECK_EQ(taps_connection_pool_buffered(t.pool), 1);
  MOCK_EXPECT(&t.m, "start #0 at 0");
  mock_advance(&t.m, 1);
  CHECK_EQ(taps_connection_pool_buffered(t.pool), 0);
  MOCK_EXPECT(&t.m, "start #0 at 0", "close 100 fd -1", "start #1 at 11000000");
  SEQ_EVENTS_FROM(&t, mark, "disposed", "started 1");
  seq_ready(&t, 1);
  mock_run(&t.m);
  Waiter w;
  pt_acquire_run(&t, &w);
  CHECK_SERVED(&w, 1, 11 * S);
  w_free(&w);
  pt_finish(&t);
}

/* Freeing the pool closes its buffered connections and cancels the spare
 * attempts still running; a connection already handed out is not
 * affected. */
static void case_free_closes_buffered(void) {
  PoolTest t;
  pt_init_n(&t, 3, 0, 8);
  Waiter w;
  pt_acquire_run(&t, &w);
  seq_ready(&t, 0);
  seq_ready(&t, 1);
  mock_run(&t.m);
  CHECK_SERVED(&w, 0, 0);
  CHECK_EQ(taps_connection_pool_buffered(t.pool), 1);
  int mark = t.n_ev;
  pt_free_pool(&t);
  mock_run(&t.m);
  MOCK_EXPECT(&t.m, "start #0 at 0", "start #1 at 0", "start #2 at 0", "cancel #2", "close 101 fd -1");
  SEQ_NO_EVENTS_FROM(&t, mark);
  CHECK_EQ(taps_connection_pool_buffered(t.pool), 0); /* NULL now */
  CHECK_EQ((intptr_t)taps_connection_get_protocol_connection(w.c), 100);
  CHECK_CODE(taps_connection_get_error(w.c), TAPS_OK);
  mock_advance(&t.m, 10 * S);
  CHECK_EQ(w.closed + w.connection_error, 0);
  w_free(&w);
  MOCK_EXPECT(&t.m, "start #0 at 0", "start #1 at 0", "start #2 at 0", "cancel #2", "close 101 fd -1",
              "close 100 fd -1");
  pt_finish(&t);
}

/* Freed during a backoff, with a caller waiting for it: the caller reports
 * TAPS_ERROR_CANCELLED without a callback, no race starts when the backoff
 * would have ended, no timer is left. */
static void case_free_during_backoff(void) {
  PoolTest t;
  pt_init_n(&t, 1, 0, 8);
  Waiter w1, w2;
  pt_acquire_run(&t, &w1);
  seq_fail(&t, 0, ECONNREFUSED);
  mock_run(&t.m);
  CHECK_EQ(w1.establishment_error, 1);
  pt_acquire_run(&t, &w2);
  CHECK_EQ(taps_event_loop_get_timeout_ms(t.m.loop), 1000);
  int mark = t.n_ev;
  w2.forbid = 1;
  pt_free_pool(&t);
  mock_run(&t.m);
  CHECK_EQ(taps_event_loop_get_timeout_ms(t.m.loop), -1);
  mock_advance(&t.m, 10 * S);
  CHECK_EQ(t.n, 1);
  SEQ_NO_EVENTS_FROM(&t, mark);
  CHECK_CODE(taps_connection_get_error(w2.c), TAPS_ERROR_CANCELLED);
  w_free(&w1);
  w_free(&w2);
  pt_finish(&t);
}

/* A caller that frees its connection while it waits no longer waits: the
 * race's connection goes to the buffer and serves the next caller. */
static void case_waiter_freed_while_waiting(void) {
  PoolTest t;
  pt_init_n(&t, 2, 0, 8);
  Waiter w1;
  pt_acquire_run(&t, &w1);
  w1.forbid = 1;
  w_free(&w1);
  mock_advance(&t.m, S);
  seq_ready(&t, 1);
  mock_run(&t.m);
  CHECK_EQ(taps_connection_pool_buffered(t.pool), 1);
  SEQ_EVENTS_FROM(&t, 0, "started 2", "attempt ok 1000000", "won 1000000", "buffered");
  Waiter w2;
  pt_acquire_run(&t, &w2);
  CHECK_SERVED(&w2, 1, S);
  CHECK_EQ(t.n, 2);
  w_free(&w2);
  pt_finish(&t);
}

/* taps_connection_close on a caller's connection while it waits: `closed`
 * follows, and no `ready` after it; the race's connection goes to the
 * buffer instead. */
static void case_close_while_waiting(void) {
  PoolTest t;
  pt_init_n(&t, 2, 0, 8);
  Waiter w1;
  pt_acquire_run(&t, &w1);
  taps_connection_close(w1.c);
  mock_run(&t.m);
  CHECK_EQ(w1.closed, 1);
  mock_advance(&t.m, S);
  seq_ready(&t, 0);
  mock_run(&t.m);
  if (w1.ready != 0) {
    fprintf(stderr, "ready called after closed on a pool connection closed while it waited\n");
    exit(1);
  }
  CHECK_EQ(taps_connection_pool_buffered(t.pool), 1);
  Waiter w2;
  pt_acquire_run(&t, &w2);
  CHECK_SERVED(&w2, 0, S);
  w_free(&w1);
  w_free(&w2);
  pt_finish(&t);
}

/* The loop is freed under a pool: its races are cancelled, the waiting
 * caller reports TAPS_ERROR_CANCELLED without a callback, and the pool
 * answers TAPS_ERROR_INVALID_STATE until it is freed. */
static void case_loop_freed_first(void) {
  PoolTest t;
  pt_init_n(&t, 2, 0, 8);
  Waiter w;
  pt_acquire_run(&t, &w);
  taps_preconnection_free(t.pre);
  t.pre = NULL;
  w.forbid = 1;
  t.freed = 1; /* no event either */
  taps_event_loop_free(t.m.loop);
  t.m.loop = NULL;
  MOCK_EXPECT(&t.m, "start #0 at 0", "start #1 at 0", "cancel #0", "cancel #1");
  CHECK_EQ(t.started_after_free, 0);
  CHECK_CODE(taps_connection_get_error(w.c), TAPS_ERROR_CANCELLED);
  taps_connection *c = (taps_connection *)&t; /* not NULL: the call must clear it */
  CHECK_CODE(taps_connection_pool_acquire(t.pool, mock_no_callbacks(), &c), TAPS_ERROR_INVALID_STATE);
  CHECK(c == NULL);
  CHECK_EQ(taps_connection_pool_buffered(t.pool), 0);
  taps_connection_pool_free(t.pool);
  t.pool = NULL;
  w_free(&w);
  taps_transport_properties_free(t.props);
}

/* Bad arguments: NULL pointers and options out of range. */
static void case_bad_arguments(void) {
  taps_pool_options d = taps_pool_options_default();
  CHECK_EQ(d.buffer_size, 0);
  CHECK_EQ(d.max_size, 8);
  CHECK_EQ(d.race_count, 3);
  CHECK_EQ(d.refill_race_count, 1);
  CHECK_EQ(d.backoff_initial_ms, 1000);
  CHECK_EQ(d.backoff_multiplier_percent, 200);
  CHECK_EQ(d.backoff_max_ms, 60000);
  CHECK_EQ(d.backoff_jitter_percent, 0);
  CHECK_EQ(d.max_idle_ms, 0);

  CHECK(taps_connection_pool_new(NULL, NULL, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  CHECK(taps_connection_pool_new(NULL, &d, pt_on_event, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);

  PoolTest t;
  pt_init(&t, NULL); /* NULL options: the defaults */
  taps_connection *c = (taps_connection *)&t; /* not NULL: the call must clear it */
  CHECK_CODE(taps_connection_pool_acquire(NULL, mock_no_callbacks(), &c), TAPS_ERROR_NULL_ARGUMENT);
  CHECK(c == NULL);
  CHECK_CODE(taps_connection_pool_acquire(t.pool, mock_no_callbacks(), NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_EQ(taps_connection_pool_buffered(NULL), 0);
  taps_connection_pool_free(NULL);
  mock_run(&t.m);
  MOCK_EXPECT_EMPTY(&t.m); /* the failed calls started nothing */

  /* Each field out of range: NULL, TAPS_ERROR_INVALID_OPTION, and the
   * message names the field. */
  struct {
    const char *field;
    taps_pool_options o;
  } bad[16];
  size_t n = 0;
#define BAD(name, ...)                 \
  do {                                 \
    taps_pool_options *o = &bad[n].o;        \
    bad[n].field = (name);             \
    *o = taps_pool_options_default();       \
    __VA_ARGS__;                       \
    n++;                               \
  } while (0)
  BAD("race_count", o->race_count = 0);
  BAD("race_count", o->race_count = 65);
  BAD("refill_race_count", o->refill_race_count = 0);
  BAD("refill_race_count", o->refill_race_count = 65);
  BAD("max_size", o->buffer_size = 9);
  BAD("max_size", o->max_size = 4097);
  BAD("backoff_multiplier_percent", o->backoff_multiplier_percent = 99);
  BAD("backoff_multiplier_percent", o->backoff_multiplier_percent = 1001);
  BAD("backoff_jitter_percent", o->backoff_jitter_percent = 101);
  BAD("backoff_max_ms", o->backoff_max_ms = 999);
#undef BAD
  for (size_t i = 0; i < n; i++) {
    taps_connection_pool *p = taps_connection_pool_new(t.pre, &bad[i].o, NULL, NULL);
    if (p != NULL || taps_last_error() != TAPS_ERROR_INVALID_OPTION ||
        strstr(taps_last_error_message(), bad[i].field) == NULL) {
      fprintf(stderr, "bad option %zu (%s): pool %p, error %d, message \"%s\"\n", i, bad[i].field, (void *)p,
              taps_last_error(), taps_last_error_message());
      exit(1);
    }
  }
  /* The ends of each range are fine. */
  taps_pool_options good[6];
  for (int i = 0; i < 6; i++) good[i] = taps_pool_options_default();
  good[0].race_count = 1;
  good[0].refill_race_count = 64;
  good[1].race_count = 64;
  good[1].refill_race_count = 1;
  good[2].buffer_size = 8; /* max_size == buffer_size */
  good[3].max_size = 4096;
  good[3].backoff_multiplier_percent = 100;
  good[4].backoff_multiplier_percent = 1000;
  good[4].backoff_jitter_percent = 100;
  good[5].backoff_max_ms = 1000; /* == backoff_initial_ms */
  good[5].max_size = 0;
  for (int i = 0; i < 6; i++) {
    taps_connection_pool *p = taps_connection_pool_new(t.pre, &good[i], NULL, NULL);
    if (p == NULL) fprintf(stderr, "good options %d: %s\n", i, taps_last_error_message());
    CHECK(p != NULL);
    taps_connection_pool_free(p);
  }
  mock_run(&t.m);
  /* good[2] (buffer_size 8) started 8 refills; its free cancelled them. */
  CHECK_EQ(t.n, 8);
  CHECK_EQ(t.m.n_log, 16);
  for (int i = 0; i < 8; i++) CHECK(t.a[i].cancelled);
  pt_finish(&t);
}

/* ---- a real pool of TCP connections on loopback ---------------------------- */

typedef struct TcpEvents {
  int buffered, disposed, won, failed;
} TcpEvents;

static void tcp_on_event(const taps_pool_event *e, void *ud) {
  TcpEvents *r = (TcpEvents *)ud;
  if (e->kind == TAPS_POOL_EVENT_KIND_CONNECTION_BUFFERED) r->buffered++;
  if (e->kind == TAPS_POOL_EVENT_KIND_CONNECTION_DISPOSED) r->disposed++;
  if (e->kind == TAPS_POOL_EVENT_KIND_RACE_WON) r->won++;
  if (e->kind == TAPS_POOL_EVENT_KIND_RACE_FAILED) r->failed++;
}

/* Embedded-loop style: wait for the loop's fd at most `max_ms` (or its
 * next timer), then process. The pool's buffered sockets are watched even
 * when no race is pending, which taps_event_loop_run would not wait for. */
static void tcp_pump(taps_event_loop *loop, int max_ms) {
  int fd = taps_event_loop_get_fd(loop);
  CHECK(fd >= 0);
  int t = taps_event_loop_get_timeout_ms(loop);
  if (t < 0 || t > max_ms) t = max_ms;
  struct pollfd p = {fd, POLLIN, 0};
  (void)poll(&p, 1, t);
  CHECK(taps_event_loop_process(loop) >= 0);
}

#define TCP_PUMP_UNTIL(loop, cond, ms)                                   \
  do {                                                                   \
    uint64_t until_ = test_now_us() + (uint64_t)SCALED(ms) * 1000u;      \
    while (!(cond) && test_now_us() < until_) tcp_pump((loop), 10);      \
  } while (0)

/* A pool with buffer_size 2 to a 127.0.0.1 listener fills its buffer; an
 * acquire is served at once; when the server closes a buffered connection
 * the pool notices the hang-up, disposes of it and refills. */
static void case_tcp_loopback(void) {
  int l, srv[16], n_srv = 0;
  taps_event_loop *loop;
  taps_preconnection *pre;
  uint16_t port = tcp_fixture(&l, &loop, &pre);
  taps_pool_options o = taps_pool_options_default();
  o.buffer_size = 2;
  TcpEvents ev;
  memset(&ev, 0, sizeof ev);
  taps_connection_pool *pool = taps_connection_pool_new(pre, &o, tcp_on_event, &ev);
  CHECK(pool != NULL);
  taps_preconnection_free(pre);

  TCP_PUMP_UNTIL(loop, taps_connection_pool_buffered(pool) == 2, 5000);
  CHECK_EQ(taps_connection_pool_buffered(pool), 2);
  CHECK_EQ(ev.buffered, 2);
  CHECK_EQ(ev.failed, 0);

  /* Served at once: the ready callback comes with the next processing. */
  Waiter w;
  w_acquire(pool, loop, &w);
  CHECK_EQ(taps_connection_pool_buffered(pool), 1);
  CHECK(taps_event_loop_process(loop) >= 1);
  CHECK_EQ(w.ready, 1);
  int cfd = taps_connection_get_fd(w.c);
  CHECK(cfd >= 0);
  CHECK_EQ(sock_port(cfd, 1), port);
  CHECK(strcmp(taps_connection_get_protocol(w.c), "tcp") == 0);
  /* The pool refills. */
  TCP_PUMP_UNTIL(loop, taps_connection_pool_buffered(pool) == 2, 5000);
  CHECK_EQ(taps_connection_pool_buffered(pool), 2);
  CHECK_EQ(ev.buffered, 3);

  /* The server closes one of the buffered connections (not the caller's). */
  uint64_t until = test_now_us() + (uint64_t)SCALED(2000) * 1000u;
  while (n_srv < 3 && test_now_us() < until) {
    tcp_accept(l, srv, &n_srv, 16);
    test_sleep_ms(1);
  }
  CHECK_EQ(n_srv, 3);
  uint16_t mine = sock_port(cfd, 0);
  int victim = -1;
  for (int i = 0; i < n_srv && victim < 0; i++) {
    if (sock_port(srv[i], 1) != mine) victim = i;
  }
  CHECK(victim >= 0);
  close(srv[victim]);
  srv[victim] = -1;
  TCP_PUMP_UNTIL(loop, ev.disposed == 1 && taps_connection_pool_buffered(pool) == 2, 5000);
  if (ev.disposed != 1) {
    fprintf(stderr, "the server closed a buffered connection (FIN); after %lld ms the pool reports %d disposed, %zu "
                    "buffered\n",
            (long long)SCALED(5000), ev.disposed, taps_connection_pool_buffered(pool));
    exit(1);
  }
  CHECK_EQ(taps_connection_pool_buffered(pool), 2);
  CHECK_EQ(ev.buffered, 4);
  CHECK_EQ(w.connection_error, 0); /* the caller's connection is not affected */
  CHECK_CODE(taps_connection_get_error(w.c), TAPS_OK);

  w_free(&w);
  taps_connection_pool_free(pool);
  taps_event_loop_free(loop);
  tcp_accept(l, srv, &n_srv, 16);
  for (int i = 0; i < n_srv; i++) {
    if (srv[i] >= 0) close(srv[i]);
  }
  close(l);
}

MOCK_MAIN(MOCK_CASE(failed_race_attempts_readable), MOCK_CASE(backoff_grows_to_max),
          MOCK_CASE(backoff_jitter_event_is_the_wait), MOCK_CASE(idle_expiry), MOCK_CASE(free_closes_buffered),
          MOCK_CASE(free_during_backoff), MOCK_CASE(waiter_freed_while_waiting), MOCK_CASE(close_while_waiting),
          MOCK_CASE(loop_freed_first), MOCK_CASE(bad_arguments), MOCK_CASE(tcp_loopback))
