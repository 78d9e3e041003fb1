/* Every exported function of taps_racing.h, called with NULL, with values
 * out of range and on objects in the wrong state: each call gives the code
 * its doc comment in the header promises, and nothing crashes.
 *
 * The table: one ROW per call,
 *
 *   ROW(function, "what is wrong", expected result, expression)
 *
 * `function` names the header function the row is about; `expression` is
 * evaluated on a fresh Fixture `f` (torn down after the row) and compared
 * with the expected result. Functions that return a pointer are checked
 * with RC(ptr): 0 for a non-NULL pointer, else taps_last_error().
 *
 * Coverage: the test reads the header (TAPS_HEADER_PATH) and fails when it
 * declares a function no row names, or a row names a function the header
 * does not declare. Run with an argument to list the rows.
 *
 * Strings with a NUL inside: C strings end at their first NUL, so a buffer
 * "ab\0cd" passed as a hostname is the name "ab" (the library cannot see
 * past the NUL); the row checks that the resolver is asked for "ab". The
 * same holds for every `const char *` argument (service, interface name,
 * protocol name, shared loop key).
 */
#include "hardening.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>

#ifndef TAPS_HEADER_PATH
#error "TAPS_HEADER_PATH must name include/taps_racing.h"
#endif

/* ---- fixture ---------------------------------------------------------- */

typedef struct Fixture {
  taps_event_loop *loop;          /* plain loop, made on demand by fx_loop */
  taps_event_loop *mloop;         /* manual-clock loop with protocol "hx" and resolver */
  HxProtocol proto;
  HxResolver resolver;
  taps_transport_properties *props;
  taps_remote_endpoint *ep;
  taps_local_endpoint *local;
  taps_preconnection *pre;
  taps_connection *conn;
  TestRecord rec;
  taps_connection_pool *pool;
  taps_connection_group *group;
  int listener;
  int in_callback_code;     /* what a call made inside a callback returned */
} Fixture;

static void fx_init(Fixture *f) {
  memset(f, 0, sizeof *f);
  f->listener = -1;
  f->in_callback_code = 1;
}

static void fx_free(Fixture *f) {
  taps_connection_group_free(f->group);
  taps_connection_pool_free(f->pool);
  taps_connection_free(f->conn);
  taps_preconnection_free(f->pre);
  taps_remote_endpoint_free(f->ep);
  taps_local_endpoint_free(f->local);
  taps_transport_properties_free(f->props);
  taps_event_loop_free(f->mloop);
  taps_event_loop_free(f->loop);
  if (f->listener >= 0) close(f->listener);
}

static taps_event_loop *fx_loop(Fixture *f) {
  if (f->loop == NULL) f->loop = taps_event_loop_new();
  CHECK(f->loop != NULL);
  return f->loop;
}

static taps_remote_endpoint *fx_ep(Fixture *f) {
  if (f->ep == NULL) f->ep = taps_remote_endpoint_new();
  CHECK(f->ep != NULL);
  return f->ep;
}

static taps_transport_properties *fx_props(Fixture *f) {
  if (f->props == NULL) f->props = taps_transport_properties_new();
  CHECK(f->props != NULL);
  return f->props;
}

static taps_local_endpoint *fx_local(Fixture *f) {
  if (f->local == NULL) f->local = taps_local_endpoint_new();
  CHECK(f->local != NULL);
  return f->local;
}

/* A taps_preconnection to 127.0.0.1:9 on the plain loop (nothing started). */
static taps_preconnection *fx_pre(Fixture *f) {
  if (f->pre == NULL) {
    taps_remote_endpoint *ep = test_remote_literal(AF_INET, 9);
    f->pre = taps_preconnection_new(fx_loop(f), (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
    taps_remote_endpoint_free(ep);
  }
  CHECK(f->pre != NULL);
  return f->pre;
}

/* The manual-clock loop with protocol "hx" (raced alone) and a resolver
 * that never answers, and a taps_preconnection to `host` on it (literals:
 * attempts start at once; names: queries wait). */
static taps_preconnection *fx_mock_pre(Fixture *f, const char *host, const taps_racing_options *opts) {
  f->mloop = hx_manual_loop();
  hx_add_protocol(f->mloop, &f->proto, "hx");
  hx_set_resolver(f->mloop, &f->resolver, HX_NEVER);
  taps_remote_endpoint *ep = test_remote_host(host, 443);
  f->props = hx_props();
  f->pre = taps_preconnection_new(f->mloop, (const taps_remote_endpoint *const *)&ep, 1, f->props, opts);
  taps_remote_endpoint_free(ep);
  CHECK(f->pre != NULL);
  return f->pre;
}

/* A race initiated through fx_mock_pre and run once: attempts started. */
static taps_connection *fx_mock_race(Fixture *f, const char *host) {
  fx_mock_pre(f, host, NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  return f->conn;
}

/* A connection established over TCP to a loopback listener. */
static taps_connection *fx_established(Fixture *f) {
  uint16_t port = 0;
  f->listener = test_listen(AF_INET, &port);
  CHECK(f->listener >= 0);
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  f->pre = taps_preconnection_new(fx_loop(f), (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  CHECK(f->pre != NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->loop), TAPS_OK);
  CHECK_EQ(f->rec.ready, 1);
  return f->conn;
}

/* A connection whose race failed: 127.0.0.1 on a port that refuses. */
static taps_connection *fx_refused(Fixture *f) {
  uint16_t port = 0;
  f->listener = test_refusing(AF_INET, &port);
  CHECK(f->listener >= 0);
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  f->pre = taps_preconnection_new(fx_loop(f), (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  CHECK(f->pre != NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->loop), TAPS_OK);
  CHECK_EQ(f->rec.establishment_error, 1);
  return f->conn;
}

/* A connection still establishing: a name the resolver never answers. */
static taps_connection *fx_establishing(Fixture *f) { return fx_mock_race(f, "never.test"); }

/* ---- the table -------------------------------------------------------- */

typedef struct Row {
  const char *function;
  const char *what;
  long long want;
  long long (*call)(Fixture *f);
  int line;
  int finding; /* a known disagreement, reported in the README: printed, not failed */
} Row;

#define MAX_ROWS 512
static Row rows[MAX_ROWS];
static int n_rows;

static void add_row(const char *function, const char *what, long long want, long long (*call)(Fixture *), int line,
                    int finding) {
  CHECK(n_rows < MAX_ROWS);
  rows[n_rows++] = (Row){function, what, want, call, line, finding};
}

#define ROW(fn, what, want, expr) ROW_(__LINE__, fn, what, want, expr, 0)
/* A row whose expected result is the documented or sane one but which the
 * library does not give today (a finding): it runs and prints FINDING
 * instead of failing; TAPS_STRICT_FINDINGS=1 makes it fail. */
#define FINDING_ROW(fn, what, want, expr) ROW_(__LINE__, fn, what, want, expr, 1)
#define ROW_(line, fn, what, want, expr, finding) ROW__(line, fn, what, want, expr, finding)
#define ROW__(line, fn, what, want, expr, finding)                                           \
  static long long row_call_##line(Fixture *f) {                                             \
    (void)f;                                                                                 \
    return (long long)(expr);                                                                \
  }                                                                                          \
  __attribute__((constructor)) static void row_add_##line(void) {                            \
    add_row(#fn, what, (long long)(want), row_call_##line, line, finding);                   \
  }

/* 0 for a non-NULL pointer, else the thread's last error. */
#define RC(ptr) ((ptr) != NULL ? 0 : taps_last_error())

static int ends_with_last_error(int want) { return taps_last_error() == want ? 0 : -1000 + taps_last_error(); }

/* Track objects a row creates so the fixture frees them. */
static long long keep_loop(Fixture *f, taps_event_loop *l) {
  int rc = RC(l);
  taps_event_loop_free(l);
  (void)f;
  return rc;
}

static char long_name[400];
static const char *name_of(size_t len, char c) {
  memset(long_name, c, len);
  long_name[len] = '\0';
  return long_name;
}

/* A DNS name of `labels` labels of 63 characters plus a tail: 253 = 3*64 + 61. */
static const char *dns_name(size_t total) {
  size_t i = 0;
  while (i < total) {
    long_name[i] = ((i + 1) % 64 == 0) ? '.' : 'a';
    i++;
  }
  if (total > 0 && long_name[total - 1] == '.') long_name[total - 1] = 'b';
  long_name[total] = '\0';
  return long_name;
}

/* ---- scenarios (rows that need more than one call) -------------------- */

static long long hostname_with_nul(Fixture *f) {
  /* "ab\0cd": the library sees "ab" and asks the resolver for it. */
  static const char buf[] = {'a', 'b', '\0', 'c', 'd', '\0'};
  fx_mock_pre(f, "placeholder.test", NULL);
  taps_remote_endpoint *ep = fx_ep(f);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, buf), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_port(ep, 443), TAPS_OK);
  taps_preconnection_free(f->pre);
  f->pre = taps_preconnection_new(f->mloop, (const taps_remote_endpoint *const *)&f->ep, 1, f->props, NULL);
  CHECK(f->pre != NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  return strcmp(f->resolver.last_host, "ab");
}

static long long service_with_nul(Fixture *f) {
  static const char buf[] = {'8', '0', '\0', '8', '0', '\0'};
  return taps_remote_endpoint_with_service(fx_ep(f), buf);
}

/* The endpoint is unchanged after a rejected hostname: the race still
 * goes to the literal set before. */
static long long hostname_rejected_keeps_old(Fixture *f) {
  uint16_t port = 0;
  f->listener = test_listen(AF_INET, &port);
  taps_remote_endpoint *ep = fx_ep(f);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, "127.0.0.1"), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_port(ep, port), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, name_of(300, 'a')), TAPS_ERROR_INVALID_HOSTNAME);
  CHECK_CODE(taps_remote_endpoint_with_port(ep, 0), TAPS_ERROR_INVALID_PORT);
  f->pre = taps_preconnection_new(fx_loop(f), (const taps_remote_endpoint *const *)&f->ep, 1, NULL, NULL);
  CHECK(f->pre != NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->loop), TAPS_OK);
  return f->rec.ready == 1 ? 0 : taps_connection_get_error(f->conn);
}

static long long pre_with_opts(Fixture *f, taps_racing_options o) {
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, 9);
  taps_preconnection *p = taps_preconnection_new(fx_loop(f), (const taps_remote_endpoint *const *)&ep, 1, NULL, &o);
  taps_remote_endpoint_free(ep);
  int rc = RC(p);
  taps_preconnection_free(p);
  return rc;
}

static taps_racing_options opt_resolution(uint32_t v) {
  taps_racing_options o = taps_racing_options_default();
  o.resolution_delay_ms = v;
  return o;
}
static taps_racing_options opt_fafc(uint32_t v) {
  taps_racing_options o = taps_racing_options_default();
  o.first_address_family_count = v;
  return o;
}
static taps_racing_options opt_race_count(uint32_t v) {
  taps_racing_options o = taps_racing_options_default();
  o.race_count = v;
  return o;
}
static taps_racing_options opt_size(uint32_t v) {
  taps_racing_options o = taps_racing_options_default();
  o.struct_size = v;
  return o;
}
static taps_racing_options opt_delay(uint32_t v) {
  taps_racing_options o = taps_racing_options_default();
  o.connection_attempt_delay_ms = v;
  return o;
}
static taps_racing_options opt_timeouts(uint32_t attempt, uint32_t total) {
  taps_racing_options o = taps_racing_options_default();
  o.attempt_timeout_ms = attempt;
  o.total_timeout_ms = total;
  return o;
}

/* The message of an INVALID_OPTION names the field. */
static long long option_message_names_field(Fixture *f) {
  CHECK_CODE(pre_with_opts(f, opt_race_count(65)), TAPS_ERROR_INVALID_OPTION);
  return strstr(taps_last_error_message(), "race_count") != NULL ? 0 : -1;
}

/* The call gives `want` and its last-error message contains `needle`. */
static long long code_and_message(int got, int want, const char *needle) {
  if (got != want) return got;
  if (strstr(taps_last_error_message(), needle) == NULL) {
    fprintf(stderr, "message \"%s\" lacks \"%s\"\n", taps_last_error_message(), needle);
    return -1000;
  }
  return 0;
}

/* The attempt delay is clamped to [10, 2000] ms: the second attempt of a
 * race over two literals starts at that delay on the manual clock. */
static long long second_start_us(Fixture *f, uint32_t delay_ms) {
  taps_racing_options o = opt_delay(delay_ms);
  f->mloop = hx_manual_loop();
  hx_add_protocol(f->mloop, &f->proto, "hx");
  taps_remote_endpoint *eps[2] = {test_remote_host("127.0.0.1", 443), test_remote_host("127.0.0.2", 443)};
  f->props = hx_props();
  f->pre = taps_preconnection_new(f->mloop, (const taps_remote_endpoint *const *)eps, 2, f->props, &o);
  taps_remote_endpoint_free(eps[0]);
  taps_remote_endpoint_free(eps[1]);
  CHECK(f->pre != NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  CHECK_EQ(f->proto.starts, 1);
  for (int step = 0; step < 3000 && f->proto.starts < 2; step++) {
    CHECK_CODE(taps_event_loop_advance_clock(f->mloop, 1000), TAPS_OK);
    CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  }
  CHECK_EQ(f->proto.starts, 2);
  return (long long)f->proto.started_us[1];
}

static long long empty_remotes(Fixture *f, int null_array) {
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, 9);
  taps_preconnection *p = taps_preconnection_new(fx_loop(f), null_array ? NULL : (const taps_remote_endpoint *const *)&ep, 0, NULL, NULL);
  taps_remote_endpoint_free(ep);
  int rc = RC(p);
  taps_preconnection_free(p);
  return rc;
}

static long long remote_lacking(Fixture *f, int lack_port) {
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  if (lack_port) {
    CHECK_CODE(taps_remote_endpoint_with_hostname(ep, "127.0.0.1"), TAPS_OK);
  } else {
    CHECK_CODE(taps_remote_endpoint_with_port(ep, 80), TAPS_OK);
  }
  taps_remote_endpoint *good = test_remote_literal(AF_INET, 9);
  const taps_remote_endpoint *two[2] = {good, ep};
  taps_preconnection *p = taps_preconnection_new(fx_loop(f), two, 2, NULL, NULL);
  taps_remote_endpoint_free(ep);
  taps_remote_endpoint_free(good);
  int rc = RC(p);
  taps_preconnection_free(p);
  return rc;
}

static long long pre_null_element(Fixture *f) {
  taps_remote_endpoint *good = test_remote_literal(AF_INET, 9);
  const taps_remote_endpoint *two[2] = {good, NULL};
  taps_preconnection *p = taps_preconnection_new(fx_loop(f), two, 2, NULL, NULL);
  taps_remote_endpoint_free(good);
  int rc = RC(p);
  taps_preconnection_free(p);
  return rc;
}

static long long pre_null_loop(Fixture *f) {
  (void)f;
  taps_remote_endpoint *good = test_remote_literal(AF_INET, 9);
  taps_preconnection *p = taps_preconnection_new(NULL, (const taps_remote_endpoint *const *)&good, 1, NULL, NULL);
  taps_remote_endpoint_free(good);
  int rc = RC(p);
  taps_preconnection_free(p);
  return rc;
}

static long long initiate_after_loop_freed(Fixture *f) {
  fx_pre(f);
  taps_event_loop_free(f->loop);
  f->loop = NULL;
  taps_connection *c = (taps_connection *)1;
  int rc = taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &c);
  if (c != NULL) return -100; /* *out_connection must be NULL on error */
  return rc;
}

static long long initiate_null_out(Fixture *f) {
  return taps_preconnection_initiate_with_racing(fx_pre(f), test_callbacks(&f->rec), NULL);
}

static long long initiate_null_pre(Fixture *f) {
  taps_connection *c = (taps_connection *)1;
  int rc = taps_preconnection_initiate_with_racing(NULL, test_callbacks(&f->rec), &c);
  return c == NULL ? rc : -100;
}

/* Initiate on a loop whose thread was stopped: allowed (the header: "the
 * loop can be run by the caller or started again"); the race then runs
 * when the caller runs the loop. Returns the callbacks seen. */
static long long initiate_after_stop_thread(Fixture *f) {
  uint16_t port = 0;
  f->listener = test_listen(AF_INET, &port);
  taps_event_loop *loop = fx_loop(f);
  CHECK_CODE(taps_event_loop_start_thread(loop), TAPS_OK);
  CHECK_CODE(taps_event_loop_stop_thread(loop), TAPS_OK);
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  f->pre = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  CHECK(f->pre != NULL);
  int rc = taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn);
  if (rc != TAPS_OK) return rc;
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  return f->rec.ready * 10 + f->rec.establishment_error;
}

/* Stop the thread mid-race: establishment_error with LOOP_STOPPED. */
static long long stop_thread_mid_race(Fixture *f) {
  taps_event_loop *loop = fx_loop(f);
  HxResolver r;
  hx_set_resolver(loop, &r, HX_NEVER);
  taps_remote_endpoint *ep = test_remote_host("never.test", 80);
  f->pre = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  CHECK_CODE(taps_event_loop_start_thread(loop), TAPS_OK);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  for (int i = 0; i < 2000 && r.asked < 2; i++) test_sleep_ms(1);
  CHECK_CODE(taps_event_loop_stop_thread(loop), TAPS_OK);
  CHECK_EQ(f->rec.establishment_error, 1);
  CHECK_EQ(f->rec.ready, 0);
  /* The resolver's queries were cancelled. */
  CHECK_EQ(r.cancels, r.asked);
  int err = taps_connection_get_error(f->conn);
  taps_connection_free(f->conn);
  f->conn = NULL;
  taps_event_loop_free(f->loop); /* before `r` goes out of scope */
  f->loop = NULL;
  return err;
}

static long long run_with_thread(Fixture *f, int which) {
  taps_event_loop *loop = fx_loop(f);
  CHECK_CODE(taps_event_loop_start_thread(loop), TAPS_OK);
  long long rc = 0;
  switch (which) {
    case 0: rc = taps_event_loop_run(loop); break;
    case 1: rc = taps_event_loop_run_once(loop, 0); break;
    case 2: rc = taps_event_loop_process(loop); break;
    case 3: rc = taps_event_loop_get_fd(loop); break;
    case 4: rc = taps_event_loop_get_timeout_ms(loop) < -1 ? taps_last_error() : 999; break;
    case 5: rc = taps_event_loop_start_thread(loop); break;
  }
  CHECK_CODE(taps_event_loop_stop_thread(loop), TAPS_OK);
  return rc;
}

static long long shared_call(Fixture *f, int which) {
  (void)f;
  taps_event_loop *loop = taps_event_loop_shared("taps-test-every-function");
  CHECK(loop != NULL);
  long long rc = 0;
  switch (which) {
    case 0: rc = taps_event_loop_run(loop); break;
    case 1: rc = taps_event_loop_start_thread(loop); break;
    case 2: rc = taps_event_loop_stop_thread(loop); break;
    case 3: rc = taps_event_loop_get_fd(loop); break;
    case 4: rc = taps_event_loop_run_once(loop, 0); break;
    case 5: rc = taps_event_loop_process(loop); break;
  }
  taps_event_loop_release(loop);
  return rc;
}

/* taps_event_loop_run from inside the loop's own callback. */
static int run_inside_ready(taps_connection *c, void *ud) {
  (void)c;
  Fixture *f = (Fixture *)ud;
  f->in_callback_code = taps_event_loop_run(f->loop);
  f->rec.ready++;
  return 0;
}

static long long run_inside_callback(Fixture *f) {
  uint16_t port = 0;
  f->listener = test_listen(AF_INET, &port);
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  f->pre = taps_preconnection_new(fx_loop(f), (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = run_inside_ready;
  cb.user_data = f;
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, cb, &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->loop), TAPS_OK);
  CHECK_EQ(f->rec.ready, 1);
  return f->in_callback_code;
}

static long long close_twice(Fixture *f) {
  taps_connection *c = fx_established(f);
  taps_connection_close(c);
  taps_connection_close(c);
  CHECK_CODE(taps_event_loop_run(f->loop), TAPS_OK);
  taps_connection_close(c);
  CHECK_CODE(taps_event_loop_run(f->loop), TAPS_OK);
  CHECK_EQ(taps_connection_get_fd(c), -1);
  return f->rec.closed; /* once */
}

static long long close_failed(Fixture *f) {
  taps_connection *c = fx_refused(f);
  taps_connection_close(c);
  CHECK_CODE(taps_event_loop_run(f->loop), TAPS_OK);
  /* "Closing ... a failed connection does nothing": no callback. */
  return f->rec.closed + f->rec.establishment_error * 10 + f->rec.ready * 100 + f->rec.connection_error * 1000;
}

static long long close_racing(Fixture *f) {
  taps_connection *c = fx_establishing(f);
  taps_connection_close(c);
  taps_connection_close(c);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  /* No establishment_error; `closed` once; the queries cancelled. */
  CHECK_EQ(f->resolver.cancels, f->resolver.asked);
  return f->rec.closed + f->rec.establishment_error * 10 + f->rec.ready * 100;
}

static long long free_racing(Fixture *f) {
  taps_connection *c = fx_mock_race(f, "127.0.0.1");
  CHECK_EQ(f->proto.starts, 1);
  taps_connection_free(c);
  f->conn = NULL;
  CHECK_CODE(taps_event_loop_advance_clock(f->mloop, 10000000), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  CHECK_EQ(f->proto.cancels, 1);
  return f->rec.ready + f->rec.establishment_error + f->rec.closed;
}

static long long attempt_past_end(Fixture *f, size_t past) {
  taps_connection *c = fx_established(f);
  taps_attempt_info a;
  return taps_connection_get_attempt(c, taps_connection_attempt_count(c) + past, &a);
}

static long long attempt_at_max(Fixture *f) {
  taps_connection *c = fx_established(f);
  taps_attempt_info a;
  return taps_connection_get_attempt(c, SIZE_MAX, &a);
}

static long long attempt_of_establishing(Fixture *f) {
  taps_connection *c = fx_establishing(f);
  taps_attempt_info a;
  CHECK_EQ(taps_connection_attempt_count(c), 0);
  return taps_connection_get_attempt(c, 0, &a);
}

static long long pref64_get(Fixture *f, const char *set, size_t len) {
  if (set) CHECK_CODE(taps_event_loop_set_pref64(fx_loop(f), set), TAPS_OK);
  char buf[64];
  return taps_event_loop_get_pref64(fx_loop(f), buf, len);
}

/* With a NAT64 prefix set, a race to 127.0.0.1 (which has an IPv4 route)
 * is not synthesized: its attempt reports 0. */
static long long synthesized_from_routed(Fixture *f, int null_out) {
  CHECK_CODE(taps_event_loop_set_pref64(fx_loop(f), "2001:db8:64::/96"), TAPS_OK);
  taps_connection *c = fx_established(f);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  return taps_connection_get_attempt_synthesized_from(c, 0, null_out ? NULL : &ss, &len);
}

static long long synthesized_from_past_end(Fixture *f) {
  taps_connection *c = fx_established(f);
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  return taps_connection_get_attempt_synthesized_from(c, taps_connection_attempt_count(c), &ss, &len);
}

/* The history note of an established connection's attempt `index`
 * (SIZE_MAX: the attempt count, one past the end): the text's length (a
 * first race on a fresh loop: empty). */
static long long attempt_history(Fixture *f, size_t index, int null_buf) {
  taps_connection *c = fx_established(f);
  if (index == SIZE_MAX) index = taps_connection_attempt_count(c);
  char buf[128];
  long long n = taps_connection_get_attempt_history(c, index, null_buf ? NULL : buf, null_buf ? 0 : sizeof buf);
  if (n == 0 && !null_buf && buf[0] != '\0') return -1000;
  return n;
}

static long long remote_address_of(Fixture *f, taps_connection *c, int null_out, int null_len) {
  (void)f;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  return taps_connection_get_remote_address(c, null_out ? NULL : &ss, null_len ? NULL : &len);
}

static long long protocol_name_is(taps_connection *c, const char *want) {
  const char *p = taps_connection_get_protocol(c);
  if (p == NULL || want == NULL) return p == want ? 0 : -1;
  return strcmp(p, want);
}

static long long ids_differ(Fixture *f) {
  taps_connection *a = fx_establishing(f);
  taps_connection *b = NULL;
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &b), TAPS_OK);
  long long ok = taps_connection_get_id(a) != 0 && taps_connection_get_id(b) != 0 && taps_connection_get_id(a) != taps_connection_get_id(b);
  taps_connection_free(b);
  return ok;
}

static long long strerror_all_distinct(Fixture *f) {
  (void)f;
  int last = 0;
  while (strcmp(taps_strerror(last - 1), "unknown error") != 0) last--;
  if (last > TAPS_ERROR_ALL_MEMBERS_FULL) return -999;
  for (int c = last; c <= 0; c++) {
    const char *s = taps_strerror(c);
    if (s == NULL || strcmp(s, "unknown error") == 0 || s[0] == '\0') return c;
    for (int d = c + 1; d <= 0; d++) {
      if (strcmp(s, taps_strerror(d)) == 0) return 100 + c;
    }
  }
  return 0;
}

static long long strerror_unknown(int code) { return strcmp(taps_strerror(code), "unknown error"); }

#define TAPS_TEST_STR_(x) #x
#define TAPS_TEST_STR(x) TAPS_TEST_STR_(x)

/* 0 when taps_version() is the header's TAPS_RACING_VERSION_STRING and
 * that string is MAJOR.MINOR.PATCH of the header's number macros. */
static long long version_matches_header(void) {
  const char *v = taps_version();
  if (v == NULL) return 1;
  if (strcmp(v, TAPS_RACING_VERSION_STRING) != 0) return 2;
  const char *parts = TAPS_TEST_STR(TAPS_RACING_VERSION_MAJOR) "." TAPS_TEST_STR(
      TAPS_RACING_VERSION_MINOR) "." TAPS_TEST_STR(TAPS_RACING_VERSION_PATCH);
  return strcmp(v, parts) != 0 ? 3 : 0;
}

static long long defaults_ok(Fixture *f) {
  (void)f;
  taps_racing_options o = taps_racing_options_default();
  return !(o.connection_attempt_delay_ms == 250 && o.resolution_delay_ms == 50 && o.first_address_family_count == 1 &&
           o.attempt_timeout_ms == 0 && o.total_timeout_ms == 0 && o.race_count == 1);
}

static long long add_locals(Fixture *f, int n) {
  taps_preconnection *p = fx_pre(f);
  taps_local_endpoint *l = fx_local(f);
  CHECK_CODE(taps_local_endpoint_with_ipv4(l, (struct in_addr){htonl(INADDR_LOOPBACK)}), TAPS_OK);
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) rc = taps_preconnection_add_local_endpoint(p, l);
  return rc;
}

static long long add_interfaces(Fixture *f, int n) {
  taps_transport_properties *p = fx_props(f);
  int rc = 0;
  char name[16];
  for (int i = 0; i < n && rc == 0; i++) {
    snprintf(name, sizeof name, "if%d", i);
    rc = taps_transport_properties_set_interface(p, name, TAPS_PREFERENCE_PREFER);
  }
  return rc;
}

static int dummy_start(taps_protocol_attempt *a, const struct sockaddr *ad, socklen_t al, const char *i,
                       const struct sockaddr *la, socklen_t ll, void *ud) {
  (void)a, (void)ad, (void)al, (void)i, (void)la, (void)ll, (void)ud;
  return 0;
}

static long long add_protocol(Fixture *f, const char *name, int null_start, uint32_t flags, int twice) {
  taps_protocol_implementation impl;
  memset(&impl, 0, sizeof impl);
  impl.name = name;
  impl.properties = flags;
  impl.start = null_start ? NULL : dummy_start;
  if (twice) CHECK_CODE(taps_event_loop_add_protocol(fx_loop(f), &impl), TAPS_OK);
  return taps_event_loop_add_protocol(fx_loop(f), &impl);
}

static int dummy_resolve(taps_resolver_query *q, const char *h, int fam, void *ud) {
  (void)q, (void)h, (void)fam, (void)ud;
  return -2;
}

static long long set_resolver(Fixture *f, int null_resolve) {
  taps_resolver_implementation impl;
  memset(&impl, 0, sizeof impl);
  impl.resolve = null_resolve ? NULL : dummy_resolve;
  return taps_event_loop_set_resolver(fx_loop(f), &impl);
}

/* HEv3 (HTTPS records): a resolver that refuses everything, through the
 * growable taps_https_resolver_implementation. */
static int dummy_resolve_https(taps_service_query *q, const char *name, void *ud) {
  (void)q, (void)name, (void)ud;
  return -2;
}

static long long set_https_resolver(Fixture *f, int null_resolve, uint32_t struct_size) {
  taps_https_resolver_implementation impl = TAPS_HTTPS_RESOLVER_IMPLEMENTATION_INIT;
  impl.struct_size = struct_size;
  impl.resolve = null_resolve ? NULL : dummy_resolve;
  impl.resolve_https = dummy_resolve_https;
  return taps_event_loop_set_https_resolver(fx_loop(f), &impl);
}

/* The DNS report of a race that asked no HTTPS record (a literal): empty. */
static long long https_record_of(Fixture *f, size_t index, int null_out) {
  taps_https_record_info r = TAPS_HTTPS_RECORD_INFO_INIT;
  return taps_connection_get_https_record(fx_established(f), index, null_out ? NULL : &r);
}

static long long dns_answer_of(Fixture *f, size_t index, int null_out) {
  taps_dns_answer_info a = TAPS_DNS_ANSWER_INFO_INIT;
  return taps_connection_get_dns_answer(fx_established(f), index, null_out ? NULL : &a);
}

static long long service_priority_of(Fixture *f, size_t index, int null_out) {
  uint16_t p = 7;
  long long rc = taps_connection_get_attempt_service_priority(fx_established(f), index, null_out ? NULL : &p);
  CHECK_EQ(p, 7); /* untouched: no record */
  return rc;
}

/* Completing a user protocol's attempt twice: the second is ignored. */
static long long attempt_ready_twice(Fixture *f) {
  fx_mock_race(f, "127.0.0.1");
  taps_protocol_attempt *a = f->proto.handles[0];
  CHECK_EQ(taps_protocol_attempt_index(a), 0);
  CHECK_CODE(taps_protocol_attempt_ready(a, -1, (void *)7), TAPS_OK);
  int rc = taps_protocol_attempt_ready(a, -1, (void *)8);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  CHECK_EQ(f->rec.ready, 1);
  CHECK(taps_connection_get_protocol_connection(f->conn) == (void *)7);
  CHECK_EQ(protocol_name_is(f->conn, "hx"), 0);
  CHECK_EQ(taps_connection_get_fd(f->conn), -1);
  return rc;
}

static long long attempt_failed_bad_errno(Fixture *f, int os_error) {
  fx_mock_race(f, "127.0.0.1");
  int rc = taps_protocol_attempt_failed(f->proto.handles[0], os_error);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  CHECK_EQ(f->rec.establishment_error, 1);
  taps_attempt_info a;
  CHECK_CODE(taps_connection_get_attempt(f->conn, 0, &a), TAPS_OK);
  CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_FAILED);
  CHECK_EQ(a.os_error, EIO); /* "the attempt is failed with EIO" */
  CHECK_EQ(taps_connection_get_os_error(f->conn), EIO);
  return rc;
}

static long long query_answer(Fixture *f, int null_addrs, size_t n, int family) {
  fx_mock_race(f, "name.test");
  CHECK_EQ(f->resolver.asked, 2);
  struct sockaddr_storage ss[2];
  memset(ss, 0, sizeof ss);
  ss[0].ss_family = (sa_family_t)family;
  ss[1].ss_family = (sa_family_t)family;
  long long rc = 0;
  for (int i = 0; i < 2; i++) {
    int r = taps_resolver_query_answer(f->resolver.queries[i], null_addrs ? NULL : ss, n);
    if (r != TAPS_OK) rc = r;
    f->resolver.live[i] = 0;
  }
  if (rc != 0) return rc;
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  /* Nothing usable: the race fails with RESOLUTION_FAILED. */
  CHECK_EQ(f->rec.establishment_error, 1);
  return taps_connection_get_error(f->conn);
}

static long long query_fail_then_answer(Fixture *f) {
  fx_mock_race(f, "name.test");
  CHECK_CODE(taps_resolver_query_fail(f->resolver.queries[0], -2), TAPS_OK);
  CHECK_CODE(taps_resolver_query_fail(f->resolver.queries[1], -3), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  CHECK_EQ(f->rec.establishment_error, 1);
  CHECK_CODE(taps_connection_get_error(f->conn), TAPS_ERROR_RESOLUTION_FAILED);
  return taps_connection_get_os_error(f->conn);
}

static long long advance_huge(Fixture *f) {
  f->mloop = hx_manual_loop();
  CHECK_CODE(taps_event_loop_advance_clock(f->mloop, UINT64_MAX / 2), TAPS_OK);
  uint64_t a = taps_event_loop_now_us(f->mloop);
  int rc = taps_event_loop_advance_clock(f->mloop, UINT64_MAX);
  uint64_t b = taps_event_loop_now_us(f->mloop);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  if (b < a) return -100; /* the clock went back */
  return rc;
}

static long long get_timeout_null(Fixture *f) {
  (void)f;
  int t = taps_event_loop_get_timeout_ms(NULL);
  return t == -1 ? ends_with_last_error(TAPS_ERROR_NULL_ARGUMENT) : t;
}

static long long release_with_race(Fixture *f) {
  (void)f;
  /* A shared handle released with a race pending: cancelled, no callback. */
  taps_event_loop *loop = taps_event_loop_shared("taps-test-every-function-release");
  CHECK(loop != NULL);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  uint16_t port = 0;
  int bh_filler = -1;
  int bh = test_blackhole(AF_INET, 0, &port, &bh_filler);
  CHECK(bh >= 0);
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  taps_connection *c = NULL;
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &c), TAPS_OK);
  taps_event_loop_release(loop);
  int err = taps_connection_get_error(c);
  CHECK_EQ(rec.ready + rec.establishment_error, 0);
  taps_connection_free(c);
  taps_preconnection_free(p);
  close(bh);
  close(bh_filler);
  return err;
}

static long long interface_type_pref(Fixture *f, int type, int pref) {
  return taps_transport_properties_set_interface_type(fx_props(f), type, pref);
}

/* ---- rows ------------------------------------------------------------- */

/* status and errors */
ROW(taps_strerror, "every taps_error code: distinct, static, not 'unknown error'", 0, strerror_all_distinct(f))
ROW(taps_strerror, "code 1 (positive)", 0, strerror_unknown(1))
ROW(taps_strerror, "code -1000", 0, strerror_unknown(-1000))
ROW(taps_strerror, "INT_MIN", 0, strerror_unknown(INT_MIN))
ROW(taps_strerror, "INT_MAX", 0, strerror_unknown(INT_MAX))
ROW(taps_version, "is TAPS_RACING_VERSION_STRING and MAJOR.MINOR.PATCH", 0, version_matches_header())
ROW(taps_version, "static: the same pointer twice", 1, taps_version() == taps_version())
ROW(taps_last_error, "after taps_preconnection_new(NULL, ...)", TAPS_ERROR_NULL_ARGUMENT, (taps_preconnection_new(NULL, NULL, 0, NULL, NULL), taps_last_error()))
ROW(taps_last_error_message, "never NULL", 1, taps_last_error_message() != NULL)
ROW(taps_last_error_message, "INVALID_OPTION names the field", 0, option_message_names_field(f))
ROW(taps_set_log_callback, "level 6", TAPS_ERROR_INVALID_ARGUMENT, taps_set_log_callback(6, NULL, NULL))
ROW(taps_set_log_callback, "level -1", TAPS_ERROR_INVALID_ARGUMENT, taps_set_log_callback(-1, NULL, NULL))
ROW(taps_set_log_callback, "NULL callback: off", 0, taps_set_log_callback(TAPS_LOG_LEVEL_DEBUG, NULL, NULL))

/* remote endpoints */
ROW(taps_remote_endpoint_new, "a new endpoint", 0, (f->ep = taps_remote_endpoint_new(), RC(f->ep)))
ROW(taps_remote_endpoint_free, "NULL", 0, (taps_remote_endpoint_free(NULL), 0))
ROW(taps_remote_endpoint_with_hostname, "NULL endpoint", TAPS_ERROR_NULL_ARGUMENT, taps_remote_endpoint_with_hostname(NULL, "localhost"))
ROW(taps_remote_endpoint_with_hostname, "NULL hostname", TAPS_ERROR_NULL_ARGUMENT, taps_remote_endpoint_with_hostname(fx_ep(f), NULL))
ROW(taps_remote_endpoint_with_hostname, "empty", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), ""))
ROW(taps_remote_endpoint_with_hostname, "300 bytes", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), name_of(300, 'a')))
ROW(taps_remote_endpoint_with_hostname, "253 characters (the most)", TAPS_OK, taps_remote_endpoint_with_hostname(fx_ep(f), dns_name(253)))
ROW(taps_remote_endpoint_with_hostname, "254 characters", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), dns_name(254)))
ROW(taps_remote_endpoint_with_hostname, "a label of 64", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), name_of(64, 'a')))
ROW(taps_remote_endpoint_with_hostname, "a label of 63", TAPS_OK, taps_remote_endpoint_with_hostname(fx_ep(f), name_of(63, 'a')))
ROW(taps_remote_endpoint_with_hostname, "a space", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), "a b"))
ROW(taps_remote_endpoint_with_hostname, "not UTF-8", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), "\xff\xfe"))
ROW(taps_remote_endpoint_with_hostname, "an empty label", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), "a..b"))
ROW(taps_remote_endpoint_with_hostname, "\"127.1\" (inet_aton shorthand) is not dotted-quad", 0, code_and_message(taps_remote_endpoint_with_hostname(fx_ep(f), "127.1"), TAPS_ERROR_INVALID_HOSTNAME, "dotted-quad"))
ROW(taps_remote_endpoint_with_hostname, "\"0x7f.0.0.1\" (inet_aton hex) is not dotted-quad", 0, code_and_message(taps_remote_endpoint_with_hostname(fx_ep(f), "0x7f.0.0.1"), TAPS_ERROR_INVALID_HOSTNAME, "dotted-quad"))
ROW(taps_remote_endpoint_with_hostname, "\"2130706433\" (one number)", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), "2130706433"))
ROW(taps_remote_endpoint_with_hostname, "\"1.example\" (numeric, not last)", TAPS_OK, taps_remote_endpoint_with_hostname(fx_ep(f), "1.example"))
ROW(taps_remote_endpoint_with_hostname, "IPv6 in brackets", TAPS_OK, taps_remote_endpoint_with_hostname(fx_ep(f), "[::1]"))
ROW(taps_remote_endpoint_with_hostname, "unclosed bracket", TAPS_ERROR_INVALID_HOSTNAME, taps_remote_endpoint_with_hostname(fx_ep(f), "[::1"))
ROW(taps_remote_endpoint_with_hostname, "\"ab\\0cd\" is the name \"ab\"", 0, hostname_with_nul(f))
ROW(taps_remote_endpoint_with_hostname, "a rejected name leaves the endpoint unchanged", 0, hostname_rejected_keeps_old(f))
ROW(taps_remote_endpoint_with_port, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_remote_endpoint_with_port(NULL, 443))
ROW(taps_remote_endpoint_with_port, "port 0", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_port(fx_ep(f), 0))
ROW(taps_remote_endpoint_with_port, "port 65535", TAPS_OK, taps_remote_endpoint_with_port(fx_ep(f), 65535))
ROW(taps_remote_endpoint_with_service, "NULL endpoint", TAPS_ERROR_NULL_ARGUMENT, taps_remote_endpoint_with_service(NULL, "https"))
ROW(taps_remote_endpoint_with_service, "NULL service", TAPS_ERROR_NULL_ARGUMENT, taps_remote_endpoint_with_service(fx_ep(f), NULL))
ROW(taps_remote_endpoint_with_service, "\"0\"", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), "0"))
ROW(taps_remote_endpoint_with_service, "empty", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), ""))
ROW(taps_remote_endpoint_with_service, "unknown name", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), "no-such-service-taps"))
ROW(taps_remote_endpoint_with_service, "\"65536\" is out of range (65535 the largest)", 0, code_and_message(taps_remote_endpoint_with_service(fx_ep(f), "65536"), TAPS_ERROR_INVALID_PORT, "65535"))
ROW(taps_remote_endpoint_with_service, "\"4294967296\" is out of range", 0, code_and_message(taps_remote_endpoint_with_service(fx_ep(f), "4294967296"), TAPS_ERROR_INVALID_PORT, "out of range"))
ROW(taps_remote_endpoint_with_service, "\"65535\" (the most)", TAPS_OK, taps_remote_endpoint_with_service(fx_ep(f), "65535"))
ROW(taps_remote_endpoint_with_service, "unknown name says so", 0, code_and_message(taps_remote_endpoint_with_service(fx_ep(f), "no-such-service-taps"), TAPS_ERROR_INVALID_PORT, "unknown service"))
ROW(taps_remote_endpoint_with_service, "\" 80\" (a leading space)", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), " 80"))
ROW(taps_remote_endpoint_with_service, "\"80 \" (a trailing space)", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), "80 "))
ROW(taps_remote_endpoint_with_service, "\"+80\" (a sign)", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), "+80"))
ROW(taps_remote_endpoint_with_service, "\"-1\"", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), "-1"))
ROW(taps_remote_endpoint_with_service, "300 digits is out of range", 0, code_and_message(taps_remote_endpoint_with_service(fx_ep(f), name_of(300, '7')), TAPS_ERROR_INVALID_PORT, "out of range"))
ROW(taps_remote_endpoint_with_service, "300 bytes", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), name_of(300, '7')))
ROW(taps_remote_endpoint_with_service, "not UTF-8", TAPS_ERROR_INVALID_PORT, taps_remote_endpoint_with_service(fx_ep(f), "\xff"))
ROW(taps_remote_endpoint_with_service, "\"80\\0\" + \"80\" is \"80\"", TAPS_OK, service_with_nul(f))
ROW(taps_remote_endpoint_with_service, "\"https\"", TAPS_OK, taps_remote_endpoint_with_service(fx_ep(f), "https"))
ROW(taps_remote_endpoint_with_ipv4, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_remote_endpoint_with_ipv4(NULL, (struct in_addr){0}))
ROW(taps_remote_endpoint_with_ipv4, "0.0.0.0", TAPS_OK, taps_remote_endpoint_with_ipv4(fx_ep(f), (struct in_addr){0}))
ROW(taps_remote_endpoint_with_ipv6, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_remote_endpoint_with_ipv6(NULL, in6addr_loopback))
ROW(taps_remote_endpoint_with_ipv6, "::", TAPS_OK, taps_remote_endpoint_with_ipv6(fx_ep(f), in6addr_any))

/* transport properties */
ROW(taps_transport_properties_new, "defaults", 0, (f->props = taps_transport_properties_new(), RC(f->props)))
ROW(taps_transport_properties_free, "NULL", 0, (taps_transport_properties_free(NULL), 0))
ROW(taps_transport_properties_set, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_transport_properties_set(NULL, TAPS_SELECTION_PROPERTY_RELIABILITY, TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set, "property 3", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set(fx_props(f), 3, TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set, "property -1", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set(fx_props(f), -1, TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set, "preference 5", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set(fx_props(f), TAPS_SELECTION_PROPERTY_RELIABILITY, 5))
ROW(taps_transport_properties_set, "preference INT_MIN", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set(fx_props(f), TAPS_SELECTION_PROPERTY_RELIABILITY, INT_MIN))
ROW(taps_transport_properties_set, "every valid pair", TAPS_OK, taps_transport_properties_set(fx_props(f), TAPS_SELECTION_PROPERTY_MULTISTREAMING, TAPS_PREFERENCE_PROHIBIT))
ROW(taps_transport_properties_set_interface, "NULL properties", TAPS_ERROR_NULL_ARGUMENT, taps_transport_properties_set_interface(NULL, "lo", TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set_interface, "NULL name", TAPS_ERROR_NULL_ARGUMENT, taps_transport_properties_set_interface(fx_props(f), NULL, TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set_interface, "empty name", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set_interface(fx_props(f), "", TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set_interface, "16 bytes", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set_interface(fx_props(f), name_of(16, 'e'), TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set_interface, "15 bytes", TAPS_OK, taps_transport_properties_set_interface(fx_props(f), name_of(15, 'e'), TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set_interface, "300 bytes", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set_interface(fx_props(f), name_of(300, 'e'), TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set_interface, "preference -1", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set_interface(fx_props(f), "lo", -1))
ROW(taps_transport_properties_set_interface, "not UTF-8", TAPS_ERROR_INVALID_ARGUMENT, taps_transport_properties_set_interface(fx_props(f), "\xff", TAPS_PREFERENCE_REQUIRE))
ROW(taps_transport_properties_set_interface, "64 entries", TAPS_OK, add_interfaces(f, 64))
ROW(taps_transport_properties_set_interface, "65 entries", TAPS_ERROR_INVALID_ARGUMENT, add_interfaces(f, 65))
ROW(taps_transport_properties_set_interface_type, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_transport_properties_set_interface_type(NULL, TAPS_INTERFACE_TYPE_WIRED, TAPS_PREFERENCE_PREFER))
ROW(taps_transport_properties_set_interface_type, "type 4", TAPS_ERROR_INVALID_ARGUMENT, interface_type_pref(f, 4, TAPS_PREFERENCE_PREFER))
ROW(taps_transport_properties_set_interface_type, "type -1", TAPS_ERROR_INVALID_ARGUMENT, interface_type_pref(f, -1, TAPS_PREFERENCE_PREFER))
ROW(taps_transport_properties_set_interface_type, "preference 5", TAPS_ERROR_INVALID_ARGUMENT, interface_type_pref(f, TAPS_INTERFACE_TYPE_WIRED, 5))
ROW(taps_transport_properties_set_interface_type, "valid", TAPS_OK, interface_type_pref(f, TAPS_INTERFACE_TYPE_OTHER, TAPS_PREFERENCE_AVOID))

/* local endpoints */
ROW(taps_local_endpoint_new, "a new endpoint", 0, (f->local = taps_local_endpoint_new(), RC(f->local)))
ROW(taps_local_endpoint_free, "NULL", 0, (taps_local_endpoint_free(NULL), 0))
ROW(taps_local_endpoint_with_interface, "NULL endpoint", TAPS_ERROR_NULL_ARGUMENT, taps_local_endpoint_with_interface(NULL, "lo"))
ROW(taps_local_endpoint_with_interface, "NULL name", TAPS_ERROR_NULL_ARGUMENT, taps_local_endpoint_with_interface(fx_local(f), NULL))
ROW(taps_local_endpoint_with_interface, "empty", TAPS_ERROR_INVALID_ARGUMENT, taps_local_endpoint_with_interface(fx_local(f), ""))
ROW(taps_local_endpoint_with_interface, "16 bytes", TAPS_ERROR_INVALID_ARGUMENT, taps_local_endpoint_with_interface(fx_local(f), name_of(16, 'e')))
ROW(taps_local_endpoint_with_interface, "300 bytes", TAPS_ERROR_INVALID_ARGUMENT, taps_local_endpoint_with_interface(fx_local(f), name_of(300, 'e')))
ROW(taps_local_endpoint_with_interface, "a '/'", TAPS_ERROR_INVALID_ARGUMENT, taps_local_endpoint_with_interface(fx_local(f), "a/b"))
ROW(taps_local_endpoint_with_interface, "a space", TAPS_ERROR_INVALID_ARGUMENT, taps_local_endpoint_with_interface(fx_local(f), "a b"))
ROW(taps_local_endpoint_with_interface, "\"lo\"", TAPS_OK, taps_local_endpoint_with_interface(fx_local(f), "lo"))
ROW(taps_local_endpoint_with_ipv4, "NULL (no error documented)", TAPS_ERROR_NULL_ARGUMENT, taps_local_endpoint_with_ipv4(NULL, (struct in_addr){0}))
ROW(taps_local_endpoint_with_ipv6, "NULL (no error documented)", TAPS_ERROR_NULL_ARGUMENT, taps_local_endpoint_with_ipv6(NULL, in6addr_loopback))
ROW(taps_local_endpoint_with_port, "NULL (no error documented)", TAPS_ERROR_NULL_ARGUMENT, taps_local_endpoint_with_port(NULL, 80))
ROW(taps_local_endpoint_with_port, "port 0 (the system chooses)", TAPS_OK, taps_local_endpoint_with_port(fx_local(f), 0))

/* event loops */
ROW(taps_event_loop_new, "a new loop", 0, keep_loop(f, taps_event_loop_new()))
ROW(taps_event_loop_new_with_options, "NULL options: the defaults", 0, keep_loop(f, taps_event_loop_new_with_options(NULL)))
ROW(taps_event_loop_free, "NULL", 0, (taps_event_loop_free(NULL), 0))
ROW(taps_event_loop_release, "NULL", 0, (taps_event_loop_release(NULL), 0))
ROW(taps_event_loop_release, "a shared handle with a race pending: cancelled, no callback", TAPS_ERROR_CANCELLED, release_with_race(f))
ROW(taps_event_loop_run, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_run(NULL))
ROW(taps_event_loop_run, "nothing pending: returns at once", TAPS_OK, taps_event_loop_run(fx_loop(f)))
ROW(taps_event_loop_run, "the loop has a thread", TAPS_ERROR_INVALID_STATE, run_with_thread(f, 0))
ROW(taps_event_loop_run, "a shared loop", TAPS_ERROR_INVALID_STATE, shared_call(f, 0))
ROW(taps_event_loop_run, "from the loop's own callback", TAPS_ERROR_INVALID_STATE, run_inside_callback(f))
ROW(taps_event_loop_run_once, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_run_once(NULL, 0))
ROW(taps_event_loop_run_once, "timeout -2", TAPS_ERROR_INVALID_ARGUMENT, taps_event_loop_run_once(fx_loop(f), -2))
ROW(taps_event_loop_run_once, "timeout INT_MIN", TAPS_ERROR_INVALID_ARGUMENT, taps_event_loop_run_once(fx_loop(f), INT_MIN))
ROW(taps_event_loop_run_once, "timeout -1, nothing pending: 0 at once", 0, taps_event_loop_run_once(fx_loop(f), -1))
ROW(taps_event_loop_run_once, "the loop has a thread", TAPS_ERROR_INVALID_STATE, run_with_thread(f, 1))
ROW(taps_event_loop_run_once, "a shared loop", TAPS_ERROR_INVALID_STATE, shared_call(f, 4))
ROW(taps_event_loop_process, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_process(NULL))
ROW(taps_event_loop_process, "nothing to do", 0, taps_event_loop_process(fx_loop(f)))
ROW(taps_event_loop_process, "the loop has a thread", TAPS_ERROR_INVALID_STATE, run_with_thread(f, 2))
ROW(taps_event_loop_process, "a shared loop", TAPS_ERROR_INVALID_STATE, shared_call(f, 5))
ROW(taps_event_loop_get_fd, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_get_fd(NULL))
ROW(taps_event_loop_get_fd, "a plain loop: an fd", 1, taps_event_loop_get_fd(fx_loop(f)) >= 0)
ROW(taps_event_loop_get_fd, "the loop has a thread", TAPS_ERROR_INVALID_STATE, run_with_thread(f, 3))
ROW(taps_event_loop_get_fd, "a shared loop", TAPS_ERROR_INVALID_STATE, shared_call(f, 3))
ROW(taps_event_loop_get_timeout_ms, "NULL: -1, last error NULL_ARGUMENT", 0, get_timeout_null(f))
ROW(taps_event_loop_get_timeout_ms, "no timer pending", -1, taps_event_loop_get_timeout_ms(fx_loop(f)))
ROW(taps_event_loop_get_timeout_ms, "the loop has a thread (< -1)", TAPS_ERROR_INVALID_STATE, run_with_thread(f, 4))
ROW(taps_event_loop_start_thread, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_start_thread(NULL))
ROW(taps_event_loop_start_thread, "twice", TAPS_ERROR_INVALID_STATE, run_with_thread(f, 5))
ROW(taps_event_loop_start_thread, "a shared loop", TAPS_ERROR_INVALID_STATE, shared_call(f, 1))
ROW(taps_event_loop_stop_thread, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_stop_thread(NULL))
ROW(taps_event_loop_stop_thread, "no thread", TAPS_ERROR_INVALID_STATE, taps_event_loop_stop_thread(fx_loop(f)))
ROW(taps_event_loop_stop_thread, "a shared loop", TAPS_ERROR_INVALID_STATE, shared_call(f, 2))
ROW(taps_event_loop_stop_thread, "mid-race: establishment_error, LOOP_STOPPED", TAPS_ERROR_LOOP_STOPPED, stop_thread_mid_race(f))
ROW(taps_event_loop_shared, "NULL key", TAPS_ERROR_NULL_ARGUMENT, RC(taps_event_loop_shared(NULL)))
ROW(taps_event_loop_shared, "key not UTF-8", TAPS_ERROR_INVALID_ARGUMENT, RC(taps_event_loop_shared("\xff")))
ROW(taps_event_loop_shared, "empty key", 0, keep_loop(f, taps_event_loop_shared("")))
ROW(taps_event_loop_advance_clock, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_advance_clock(NULL, 1))
ROW(taps_event_loop_advance_clock, "not a manual clock", TAPS_ERROR_INVALID_STATE, taps_event_loop_advance_clock(fx_loop(f), 1))
/* Once a finding (the manual clock was a wrapping add and ran backwards
 * past 2^64 µs in total, -100 here); the clock now saturates. */
ROW(taps_event_loop_advance_clock, "UINT64_MAX/2 then UINT64_MAX: no wrap", TAPS_OK, advance_huge(f))
ROW(taps_event_loop_advance_clock, "1 µs", TAPS_OK, (f->mloop = hx_manual_loop(), taps_event_loop_advance_clock(f->mloop, 1)))
ROW(taps_event_loop_now_us, "NULL", 0, taps_event_loop_now_us(NULL))
ROW(taps_event_loop_add_protocol, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, (taps_event_loop_add_protocol(NULL, NULL)))
ROW(taps_event_loop_add_protocol, "NULL implementation", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_add_protocol(fx_loop(f), NULL))
ROW(taps_event_loop_add_protocol, "NULL name", TAPS_ERROR_NULL_ARGUMENT, add_protocol(f, NULL, 0, 1, 0))
ROW(taps_event_loop_add_protocol, "NULL start", TAPS_ERROR_NULL_ARGUMENT, add_protocol(f, "p", 1, 1, 0))
ROW(taps_event_loop_add_protocol, "empty name", TAPS_ERROR_INVALID_ARGUMENT, add_protocol(f, "", 0, 1, 0))
ROW(taps_event_loop_add_protocol, "\"tcp\" (taken)", TAPS_ERROR_INVALID_ARGUMENT, add_protocol(f, "tcp", 0, 1, 0))
ROW(taps_event_loop_add_protocol, "a name twice", TAPS_ERROR_INVALID_ARGUMENT, add_protocol(f, "p", 0, 1, 1))
ROW(taps_event_loop_add_protocol, "unknown flag 8", TAPS_ERROR_INVALID_ARGUMENT, add_protocol(f, "p", 0, 8, 0))
ROW(taps_event_loop_add_protocol, "not UTF-8 name", TAPS_ERROR_INVALID_ARGUMENT, add_protocol(f, "\xff", 0, 1, 0))
ROW(taps_event_loop_set_resolver, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_set_resolver(NULL, NULL))
ROW(taps_event_loop_set_resolver, "NULL resolve", TAPS_ERROR_NULL_ARGUMENT, set_resolver(f, 1))
ROW(taps_event_loop_set_resolver, "NULL resolver: the system's", TAPS_OK, taps_event_loop_set_resolver(fx_loop(f), NULL))
ROW(taps_event_loop_set_resolver, "a resolver", TAPS_OK, set_resolver(f, 0))
ROW(taps_event_loop_set_resolution_cache, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_set_resolution_cache(NULL, 0))
ROW(taps_event_loop_set_resolution_cache, "off", TAPS_OK, taps_event_loop_set_resolution_cache(fx_loop(f), 0))
ROW(taps_event_loop_set_resolution_cache, "one day", TAPS_OK, taps_event_loop_set_resolution_cache(fx_loop(f), 86400000))
ROW(taps_event_loop_set_resolution_cache, "over one day", TAPS_ERROR_OUT_OF_RANGE,
    taps_event_loop_set_resolution_cache(fx_loop(f), 86400001))
ROW(taps_event_loop_set_pref64, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_set_pref64(NULL, NULL))
ROW(taps_event_loop_set_pref64, "NULL prefix: no synthesis", TAPS_OK, taps_event_loop_set_pref64(fx_loop(f), NULL))
ROW(taps_event_loop_set_pref64, "a /96 NSP", TAPS_OK, taps_event_loop_set_pref64(fx_loop(f), "2001:db8:64::/96"))
ROW(taps_event_loop_set_pref64, "the Well-Known Prefix", TAPS_OK, taps_event_loop_set_pref64(fx_loop(f), "64:ff9b::/96"))
ROW(taps_event_loop_set_pref64, "length /80", TAPS_ERROR_INVALID_ARGUMENT,
    taps_event_loop_set_pref64(fx_loop(f), "2001:db8::/80"))
ROW(taps_event_loop_set_pref64, "not a prefix", TAPS_ERROR_INVALID_ARGUMENT, taps_event_loop_set_pref64(fx_loop(f), "10.0.0.0/8"))
ROW(taps_event_loop_set_pref64, "IPv4-mapped", TAPS_ERROR_INVALID_ARGUMENT,
    taps_event_loop_set_pref64(fx_loop(f), "::ffff:0:0/96"))
ROW(taps_event_loop_get_pref64, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_get_pref64(NULL, NULL, 0))
ROW(taps_event_loop_get_pref64, "NULL buf, length 8", TAPS_ERROR_NULL_ARGUMENT,
    taps_event_loop_get_pref64(fx_loop(f), NULL, 8))
ROW(taps_event_loop_get_pref64, "none set", 0, pref64_get(f, NULL, 64))
ROW(taps_event_loop_get_pref64, "set: its length", 16, pref64_get(f, "2001:db8:64::/96", 64))
ROW(taps_event_loop_get_pref64, "no room for the NUL", TAPS_ERROR_OUT_OF_RANGE, pref64_get(f, "2001:db8:64::/96", 16))
ROW(taps_event_loop_get_pref64_source, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_get_pref64_source(NULL))
ROW(taps_event_loop_get_pref64_source, "none", TAPS_PREF64_SOURCE_NONE, taps_event_loop_get_pref64_source(fx_loop(f)))
ROW(taps_event_loop_get_pref64_source, "set by the caller", TAPS_PREF64_SOURCE_CALLER,
    (pref64_get(f, "2001:db8:64::/96", 64), taps_event_loop_get_pref64_source(fx_loop(f))))
ROW(taps_event_loop_set_history, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_set_history(NULL, true))
ROW(taps_event_loop_set_history, "off", TAPS_OK, taps_event_loop_set_history(fx_loop(f), false))
ROW(taps_event_loop_set_history, "on", TAPS_OK, taps_event_loop_set_history(fx_loop(f), true))
ROW(taps_event_loop_clear_history, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_clear_history(NULL))
ROW(taps_event_loop_clear_history, "a loop", TAPS_OK, taps_event_loop_clear_history(fx_loop(f)))
ROW(taps_event_loop_history_size, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_history_size(NULL, NULL, NULL))
ROW(taps_event_loop_history_size, "NULL outputs", TAPS_OK, taps_event_loop_history_size(fx_loop(f), NULL, NULL))
ROW(taps_event_loop_export_history, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_export_history(NULL, NULL, 0))
ROW(taps_event_loop_export_history, "NULL buffer: the length", 0,
    taps_event_loop_export_history(fx_loop(f), NULL, 0) > 0 ? 0 : -1)
ROW(taps_event_loop_import_history, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_import_history(NULL, "x"))
ROW(taps_event_loop_import_history, "NULL text", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_import_history(fx_loop(f), NULL))
ROW(taps_event_loop_import_history, "another version", TAPS_ERROR_INVALID_ARGUMENT,
    taps_event_loop_import_history(fx_loop(f), "taps-racing-history 2\n"))
ROW(taps_event_loop_import_history, "not UTF-8", TAPS_ERROR_INVALID_ARGUMENT, taps_event_loop_import_history(fx_loop(f), "\xff"))
ROW(taps_event_loop_import_history, "no entry", 0, taps_event_loop_import_history(fx_loop(f), "taps-racing-history 1\n"))

/* preconnections */
ROW(taps_racing_options_default, "the documented defaults", 0, defaults_ok(f))
ROW(taps_preconnection_new, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, pre_null_loop(f))
ROW(taps_preconnection_new, "NULL remotes, n 1", TAPS_ERROR_NULL_ARGUMENT, RC(taps_preconnection_new(fx_loop(f), NULL, 1, NULL, NULL)))
ROW(taps_preconnection_new, "a NULL element", TAPS_ERROR_NULL_ARGUMENT, pre_null_element(f))
ROW(taps_preconnection_new, "an empty list of endpoints", TAPS_ERROR_INVALID_ARGUMENT, empty_remotes(f, 0))
ROW(taps_preconnection_new, "NULL remotes, n 0", TAPS_ERROR_INVALID_ARGUMENT, empty_remotes(f, 1))
ROW(taps_preconnection_new, "an endpoint without port", TAPS_ERROR_INVALID_ARGUMENT, remote_lacking(f, 1))
ROW(taps_preconnection_new, "an endpoint without host", TAPS_ERROR_INVALID_ARGUMENT, remote_lacking(f, 0))
ROW(taps_preconnection_new, "resolution_delay_ms 2001", TAPS_ERROR_INVALID_OPTION, pre_with_opts(f, opt_resolution(2001)))
ROW(taps_preconnection_new, "resolution_delay_ms 2000", TAPS_OK, pre_with_opts(f, opt_resolution(2000)))
ROW(taps_preconnection_new, "resolution_delay_ms UINT32_MAX", TAPS_ERROR_INVALID_OPTION, pre_with_opts(f, opt_resolution(UINT32_MAX)))
ROW(taps_preconnection_new, "first_address_family_count 0", TAPS_ERROR_INVALID_OPTION, pre_with_opts(f, opt_fafc(0)))
ROW(taps_preconnection_new, "first_address_family_count 65", TAPS_ERROR_INVALID_OPTION, pre_with_opts(f, opt_fafc(65)))
ROW(taps_preconnection_new, "first_address_family_count 64", TAPS_OK, pre_with_opts(f, opt_fafc(64)))
ROW(taps_preconnection_new, "race_count 0", TAPS_ERROR_INVALID_OPTION, pre_with_opts(f, opt_race_count(0)))
ROW(taps_preconnection_new, "race_count 65", TAPS_ERROR_INVALID_OPTION, pre_with_opts(f, opt_race_count(65)))
ROW(taps_preconnection_new, "race_count UINT32_MAX", TAPS_ERROR_INVALID_OPTION, pre_with_opts(f, opt_race_count(UINT32_MAX)))
ROW(taps_preconnection_new, "struct_size 4 (below the smallest layout)", TAPS_ERROR_INVALID_ARGUMENT, pre_with_opts(f, opt_size(4)))
ROW(taps_preconnection_new, "struct_size 6 (inside a field)", TAPS_ERROR_INVALID_ARGUMENT, pre_with_opts(f, opt_size(6)))
ROW(taps_preconnection_new, "struct_size 0 (this header's struct)", TAPS_OK, pre_with_opts(f, opt_size(0)))
ROW(taps_preconnection_new, "struct_size 8 (the smallest layout)", TAPS_OK, pre_with_opts(f, opt_size(8)))
ROW(taps_preconnection_new, "connection_attempt_delay_ms 0 (clamped)", TAPS_OK, pre_with_opts(f, opt_delay(0)))
ROW(taps_preconnection_new, "connection_attempt_delay_ms UINT32_MAX (clamped)", TAPS_OK, pre_with_opts(f, opt_delay(UINT32_MAX)))
ROW(taps_preconnection_new, "attempt delay 1 ms runs as 10 ms", 10000, second_start_us(f, 1))
ROW(taps_preconnection_new, "attempt delay 100000 ms runs as 2000 ms", 2000000, second_start_us(f, 100000))
ROW(taps_preconnection_new, "timeouts UINT32_MAX", TAPS_OK, pre_with_opts(f, opt_timeouts(UINT32_MAX, UINT32_MAX)))
ROW(taps_preconnection_free, "NULL", 0, (taps_preconnection_free(NULL), 0))
ROW(taps_preconnection_initiate_with_racing, "NULL preconnection", TAPS_ERROR_NULL_ARGUMENT, initiate_null_pre(f))
ROW(taps_preconnection_initiate_with_racing, "NULL out_connection", TAPS_ERROR_NULL_ARGUMENT, initiate_null_out(f))
ROW(taps_preconnection_initiate_with_racing, "the loop was freed", TAPS_ERROR_INVALID_STATE, initiate_after_loop_freed(f))
ROW(taps_preconnection_initiate_with_racing, "the loop's thread was stopped: races when run (ready)", 10, initiate_after_stop_thread(f))
ROW(taps_preconnection_add_local_endpoint, "NULL preconnection", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_add_local_endpoint(NULL, fx_local(f)))
ROW(taps_preconnection_add_local_endpoint, "NULL local", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_add_local_endpoint(fx_pre(f), NULL))
ROW(taps_preconnection_add_local_endpoint, "64 local endpoints", TAPS_OK, add_locals(f, 64))
ROW(taps_preconnection_add_local_endpoint, "65 local endpoints", TAPS_ERROR_INVALID_ARGUMENT, add_locals(f, 65))
ROW(taps_preconnection_set_racing_type, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_set_racing_type(NULL, TAPS_BRANCH_KIND_PATH, TAPS_RACING_TYPE_DELAYED, 0))
ROW(taps_preconnection_set_racing_type, "kind 3", TAPS_ERROR_INVALID_ARGUMENT, taps_preconnection_set_racing_type(fx_pre(f), 3, TAPS_RACING_TYPE_DELAYED, 0))
ROW(taps_preconnection_set_racing_type, "kind -1", TAPS_ERROR_INVALID_ARGUMENT, taps_preconnection_set_racing_type(fx_pre(f), -1, TAPS_RACING_TYPE_DELAYED, 0))
ROW(taps_preconnection_set_racing_type, "racing type 3", TAPS_ERROR_INVALID_ARGUMENT, taps_preconnection_set_racing_type(fx_pre(f), TAPS_BRANCH_KIND_PATH, 3, 0))
ROW(taps_preconnection_set_racing_type, "delay UINT32_MAX (clamped)", TAPS_OK, taps_preconnection_set_racing_type(fx_pre(f), TAPS_BRANCH_KIND_PROTOCOL, TAPS_RACING_TYPE_DELAYED, UINT32_MAX))
ROW(taps_preconnection_set_https_policy, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_set_https_policy(NULL, TAPS_HTTPS_POLICY_ON))
ROW(taps_preconnection_set_https_policy, "policy 3", TAPS_ERROR_INVALID_ARGUMENT, taps_preconnection_set_https_policy(fx_pre(f), 3))
ROW(taps_preconnection_set_https_policy, "policy -1", TAPS_ERROR_INVALID_ARGUMENT, taps_preconnection_set_https_policy(fx_pre(f), -1))
ROW(taps_preconnection_set_https_policy, "ON", TAPS_OK, taps_preconnection_set_https_policy(fx_pre(f), TAPS_HTTPS_POLICY_ON))
ROW(taps_preconnection_set_ech_required, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_set_ech_required(NULL, true))
ROW(taps_preconnection_set_ech_required, "true", TAPS_OK, taps_preconnection_set_ech_required(fx_pre(f), true))

/* connections */
ROW(taps_connection_get_fd, "NULL", -1, taps_connection_get_fd(NULL))
ROW(taps_connection_get_fd, "establishing", -1, taps_connection_get_fd(fx_establishing(f)))
ROW(taps_connection_get_fd, "failed", -1, taps_connection_get_fd(fx_refused(f)))
ROW(taps_connection_get_fd, "established", 1, taps_connection_get_fd(fx_established(f)) >= 0)
ROW(taps_connection_get_remote_address, "NULL connection", TAPS_ERROR_NULL_ARGUMENT, remote_address_of(f, NULL, 0, 0))
ROW(taps_connection_get_remote_address, "NULL out", TAPS_ERROR_NULL_ARGUMENT, remote_address_of(f, fx_established(f), 1, 0))
ROW(taps_connection_get_remote_address, "NULL out_len", TAPS_ERROR_NULL_ARGUMENT, remote_address_of(f, fx_established(f), 0, 1))
ROW(taps_connection_get_remote_address, "establishing", TAPS_ERROR_INVALID_STATE, remote_address_of(f, fx_establishing(f), 0, 0))
ROW(taps_connection_get_remote_address, "failed", TAPS_ERROR_INVALID_STATE, remote_address_of(f, fx_refused(f), 0, 0))
ROW(taps_connection_get_error, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_error(NULL))
ROW(taps_connection_get_error, "establishing", 0, taps_connection_get_error(fx_establishing(f)))
ROW(taps_connection_get_error, "refused", TAPS_ERROR_ALL_ATTEMPTS_FAILED, taps_connection_get_error(fx_refused(f)))
ROW(taps_connection_get_os_error, "NULL", 0, taps_connection_get_os_error(NULL))
ROW(taps_connection_get_os_error, "refused: ECONNREFUSED", ECONNREFUSED, taps_connection_get_os_error(fx_refused(f)))
ROW(taps_connection_get_os_error, "both queries failed: the last EAI code", -3, query_fail_then_answer(f))
ROW(taps_connection_get_id, "NULL", 0, taps_connection_get_id(NULL))
ROW(taps_connection_get_id, "two connections: distinct, non-zero", 1, ids_differ(f))
ROW(taps_connection_get_protocol, "NULL", 0, protocol_name_is(NULL, NULL))
ROW(taps_connection_get_protocol, "establishing: NULL", 0, protocol_name_is(fx_establishing(f), NULL))
ROW(taps_connection_get_protocol, "established over TCP: \"tcp\"", 0, protocol_name_is(fx_established(f), "tcp"))
ROW(taps_connection_get_protocol_connection, "NULL", 0, (long long)(intptr_t)taps_connection_get_protocol_connection(NULL))
ROW(taps_connection_get_protocol_connection, "TCP: NULL", 0, (long long)(intptr_t)taps_connection_get_protocol_connection(fx_established(f)))
ROW(taps_connection_attempt_count, "NULL", 0, taps_connection_attempt_count(NULL))
ROW(taps_connection_attempt_count, "one literal", 1, taps_connection_attempt_count(fx_established(f)))
ROW(taps_connection_get_attempt, "NULL connection", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_attempt(NULL, 0, &(taps_attempt_info){0}))
ROW(taps_connection_get_attempt, "NULL out", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_attempt(fx_established(f), 0, NULL))
ROW(taps_connection_get_attempt, "index == count", TAPS_ERROR_OUT_OF_RANGE, attempt_past_end(f, 0))
ROW(taps_connection_get_attempt, "index count + 1000", TAPS_ERROR_OUT_OF_RANGE, attempt_past_end(f, 1000))
ROW(taps_connection_get_attempt, "index SIZE_MAX", TAPS_ERROR_OUT_OF_RANGE, attempt_at_max(f))
ROW(taps_connection_get_attempt, "no attempt yet, index 0", TAPS_ERROR_OUT_OF_RANGE, attempt_of_establishing(f))
ROW(taps_connection_get_attempt_history, "NULL connection", TAPS_ERROR_NULL_ARGUMENT,
    taps_connection_get_attempt_history(NULL, 0, NULL, 0))
ROW(taps_connection_get_attempt_history, "first race: history knew nothing", 0, attempt_history(f, 0, 0))
ROW(taps_connection_get_attempt_history, "NULL buffer: the length", 0, attempt_history(f, 0, 1))
ROW(taps_connection_get_attempt_history, "index == count", TAPS_ERROR_OUT_OF_RANGE, attempt_history(f, SIZE_MAX, 0))
ROW(taps_connection_get_attempt_synthesized_from, "NULL connection", TAPS_ERROR_NULL_ARGUMENT,
    taps_connection_get_attempt_synthesized_from(NULL, 0, &(struct sockaddr_storage){0}, &(socklen_t){0}))
ROW(taps_connection_get_attempt_synthesized_from, "NULL out", TAPS_ERROR_NULL_ARGUMENT, synthesized_from_routed(f, 1))
ROW(taps_connection_get_attempt_synthesized_from, "index == count", TAPS_ERROR_OUT_OF_RANGE, synthesized_from_past_end(f))
ROW(taps_connection_get_attempt_synthesized_from, "IPv4 with a route: not synthesized", 0, synthesized_from_routed(f, 0))
ROW(taps_connection_get_attempt_alpn_count, "NULL", 0, taps_connection_get_attempt_alpn_count(NULL, 0))
ROW(taps_connection_get_attempt_alpn_count, "a literal: no ALPN", 0, taps_connection_get_attempt_alpn_count(fx_established(f), 0))
ROW(taps_connection_get_attempt_alpn_count, "index == count", 0, taps_connection_get_attempt_alpn_count(fx_established(f), 1))
ROW(taps_connection_get_attempt_alpn, "NULL", 1, taps_connection_get_attempt_alpn(NULL, 0, 0) == NULL)
ROW(taps_connection_get_attempt_alpn, "a literal: NULL", 1, taps_connection_get_attempt_alpn(fx_established(f), 0, 0) == NULL)
ROW(taps_connection_get_attempt_service_priority, "NULL connection", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_attempt_service_priority(NULL, 0, &(uint16_t){0}))
ROW(taps_connection_get_attempt_service_priority, "NULL out", TAPS_ERROR_NULL_ARGUMENT, service_priority_of(f, 0, 1))
ROW(taps_connection_get_attempt_service_priority, "index == count", TAPS_ERROR_OUT_OF_RANGE, service_priority_of(f, 1, 0))
ROW(taps_connection_get_attempt_service_priority, "a literal: none", 0, service_priority_of(f, 0, 0))
ROW(taps_connection_get_attempt_from_hint, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_attempt_from_hint(NULL, 0))
ROW(taps_connection_get_attempt_from_hint, "index == count", TAPS_ERROR_OUT_OF_RANGE, taps_connection_get_attempt_from_hint(fx_established(f), 1))
ROW(taps_connection_get_attempt_from_hint, "a literal: 0", 0, taps_connection_get_attempt_from_hint(fx_established(f), 0))
ROW(taps_connection_get_https_record_count, "NULL", 0, taps_connection_get_https_record_count(NULL))
ROW(taps_connection_get_https_record_count, "asked none", 0, taps_connection_get_https_record_count(fx_established(f)))
ROW(taps_connection_get_https_record, "NULL connection", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_https_record(NULL, 0, &(taps_https_record_info){0}))
ROW(taps_connection_get_https_record, "NULL out", TAPS_ERROR_NULL_ARGUMENT, https_record_of(f, 0, 1))
ROW(taps_connection_get_https_record, "index == count", TAPS_ERROR_OUT_OF_RANGE, https_record_of(f, 0, 0))
ROW(taps_connection_get_https_record_alpn, "NULL", 1, taps_connection_get_https_record_alpn(NULL, 0, 0) == NULL)
ROW(taps_connection_get_https_record_alpn, "no record: NULL", 1, taps_connection_get_https_record_alpn(fx_established(f), 0, 0) == NULL)
ROW(taps_connection_get_dns_answer_count, "NULL", 0, taps_connection_get_dns_answer_count(NULL))
ROW(taps_connection_get_dns_answer_count, "asked none", 0, taps_connection_get_dns_answer_count(fx_established(f)))
ROW(taps_connection_get_dns_answer, "NULL connection", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_dns_answer(NULL, 0, &(taps_dns_answer_info){0}))
ROW(taps_connection_get_dns_answer, "NULL out", TAPS_ERROR_NULL_ARGUMENT, dns_answer_of(f, 0, 1))
ROW(taps_connection_get_dns_answer, "index == count", TAPS_ERROR_OUT_OF_RANGE, dns_answer_of(f, 0, 0))
ROW(taps_connection_close, "NULL", 0, (taps_connection_close(NULL), 0))
ROW(taps_connection_close, "closed twice: `closed` once", 1, close_twice(f))
ROW(taps_connection_close, "a failed connection: nothing", 10, close_failed(f))
ROW(taps_connection_close, "racing: no establishment_error, `closed` once", 1, close_racing(f))
ROW(taps_connection_free, "NULL", 0, (taps_connection_free(NULL), 0))
ROW(taps_connection_free, "racing: cancelled, no callback", 0, free_racing(f))

/* user protocols and resolvers */
ROW(taps_protocol_attempt_ready, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_protocol_attempt_ready(NULL, -1, NULL))
ROW(taps_protocol_attempt_ready, "twice: the second ignored", TAPS_OK, attempt_ready_twice(f))
ROW(taps_protocol_attempt_failed, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_protocol_attempt_failed(NULL, ECONNREFUSED))
ROW(taps_protocol_attempt_failed, "os_error 0: failed with EIO", TAPS_ERROR_INVALID_ARGUMENT, attempt_failed_bad_errno(f, 0))
ROW(taps_protocol_attempt_failed, "os_error INT_MIN: failed with EIO", TAPS_ERROR_INVALID_ARGUMENT, attempt_failed_bad_errno(f, INT_MIN))
ROW(taps_protocol_attempt_index, "NULL", -1, taps_protocol_attempt_index(NULL))

/* security stages (HEv3 §6.1) and ALPN */
static int stage_start_noop(taps_stage_attempt *a, void *ud) {
  (void)a;
  (void)ud;
  return 0;
}
static long long set_stage(Fixture *f, uint32_t size, int with_start) {
  taps_stage_callbacks cb = TAPS_STAGE_CALLBACKS_INIT;
  if (size) cb.struct_size = size;
  cb.start = with_start ? stage_start_noop : NULL;
  return taps_preconnection_set_security_stage(fx_pre(f), &cb, NULL);
}
static long long set_alpn_n(Fixture *f, size_t n, size_t id_len) {
  static char ids[65][300];
  const char *list[65];
  for (size_t i = 0; i < n; i++) {
    memset(ids[i], 'a' + (int)(i % 26), id_len);
    ids[i][id_len] = '\0';
    list[i] = ids[i];
  }
  return taps_preconnection_set_alpn(fx_pre(f), list, n);
}
/* What a stage's start saw and got on a real staged attempt. */
typedef struct StageSeen {
  long long fd_ok, alpn_count, alpn0_is_h2, alpn_past_end_null, wire_len, ech_null, host_null, remote_rc, remote_v4,
      index, want_read, want_write, ready, ready_again, failed_after;
} StageSeen;
static StageSeen stage_seen;
static int stage_start_report(taps_stage_attempt *a, void *ud) {
  (void)ud;
  StageSeen *s = &stage_seen;
  s->fd_ok = taps_stage_attempt_get_fd(a) >= 0;
  s->alpn_count = (long long)taps_stage_attempt_get_alpn_count(a);
  const char *id = taps_stage_attempt_get_alpn(a, 0);
  s->alpn0_is_h2 = id != NULL && strcmp(id, "h2") == 0;
  s->alpn_past_end_null = taps_stage_attempt_get_alpn(a, 2) == NULL;
  size_t len = 99;
  const uint8_t *wire = taps_stage_attempt_get_alpn_wire(a, &len);
  s->wire_len = wire != NULL && wire[0] == 2 && memcmp(wire + 1, "h2", 2) == 0 ? (long long)len : -1;
  size_t ech_len = 99;
  s->ech_null = taps_stage_attempt_get_ech_config(a, &ech_len) == NULL && ech_len == 0;
  s->host_null = taps_stage_attempt_get_host_name(a) == NULL;
  struct sockaddr_storage ss;
  socklen_t sl = 0;
  s->remote_rc = taps_stage_attempt_get_remote(a, &ss, &sl);
  s->remote_v4 = ss.ss_family == AF_INET && sl == sizeof(struct sockaddr_in);
  s->index = taps_stage_attempt_index(a);
  s->want_read = taps_stage_attempt_want_read(a);
  s->want_write = taps_stage_attempt_want_write(a);
  s->ready = taps_stage_attempt_ready(a, "h2");
  s->ready_again = taps_stage_attempt_ready(a, "ignored");
  s->failed_after = taps_stage_attempt_failed(a, EPROTO);
  return 0;
}
/* A race to a loopback listener with a stage that reports ready from
 * start; returns the connection. */
static taps_connection *staged_established(Fixture *f) {
  memset(&stage_seen, 0, sizeof stage_seen);
  uint16_t port = 0;
  f->listener = test_listen(AF_INET, &port);
  CHECK(f->listener >= 0);
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  f->pre = taps_preconnection_new(fx_loop(f), (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  CHECK(f->pre != NULL);
  const char *ids[] = {"h2", "http/1.1"};
  CHECK_CODE(taps_preconnection_set_alpn(f->pre, ids, 2), TAPS_OK);
  taps_stage_callbacks cb = TAPS_STAGE_CALLBACKS_INIT;
  cb.start = stage_start_report;
  CHECK_CODE(taps_preconnection_set_security_stage(f->pre, &cb, NULL), TAPS_OK);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->loop), TAPS_OK);
  CHECK_EQ(f->rec.ready, 1);
  return f->conn;
}
static long long staged_alpn_is_h2(Fixture *f) {
  const char *alpn = taps_connection_get_alpn(staged_established(f));
  return alpn != NULL && strcmp(alpn, "h2") == 0;
}
static long long staged_seen(Fixture *f, size_t offset) {
  staged_established(f);
  return *(long long *)((char *)&stage_seen + offset);
}
#define SEEN(field) staged_seen(f, offsetof(StageSeen, field))
static long long connected_us_of(taps_connection *c) {
  uint64_t us = 12345;
  int rc = taps_connection_get_attempt_connected_us(c, 0, &us);
  return rc != 0 ? rc : (long long)us;
}
static long long staged_connected_before_end(Fixture *f) {
  taps_connection *c = staged_established(f);
  taps_attempt_info info;
  CHECK_CODE(taps_connection_get_attempt(c, 0, &info), TAPS_OK);
  long long at = connected_us_of(c);
  return at >= 0 && (uint64_t)at <= info.ended_us;
}
static long long wire_of_null(void) {
  size_t len = 99;
  const uint8_t *w = taps_stage_attempt_get_alpn_wire(NULL, &len);
  return w == NULL && len == 0;
}
static long long ech_of_null(void) {
  size_t len = 99;
  const uint8_t *e = taps_stage_attempt_get_ech_config(NULL, &len);
  return e == NULL && len == 0;
}
ROW(taps_preconnection_set_security_stage, "NULL preconnection", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_set_security_stage(NULL, NULL, NULL))
ROW(taps_preconnection_set_security_stage, "NULL callbacks: none", TAPS_OK, taps_preconnection_set_security_stage(fx_pre(f), NULL, NULL))
ROW(taps_preconnection_set_security_stage, "NULL start", TAPS_ERROR_NULL_ARGUMENT, set_stage(f, 0, 0))
ROW(taps_preconnection_set_security_stage, "a stage", TAPS_OK, set_stage(f, 0, 1))
ROW(taps_preconnection_set_security_stage, "struct_size 2 (below the smallest layout)", TAPS_ERROR_INVALID_ARGUMENT, set_stage(f, 2, 1))
ROW(taps_preconnection_set_security_stage, "a stage reporting ready from start wins with its ALPN", 1, staged_alpn_is_h2(f))
ROW(taps_preconnection_set_alpn, "NULL preconnection", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_set_alpn(NULL, NULL, 0))
ROW(taps_preconnection_set_alpn, "NULL ids, count 1", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_set_alpn(fx_pre(f), NULL, 1))
ROW(taps_preconnection_set_alpn, "NULL ids, count 0: cleared", TAPS_OK, taps_preconnection_set_alpn(fx_pre(f), NULL, 0))
ROW(taps_preconnection_set_alpn, "a NULL id", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_set_alpn(fx_pre(f), (const char *const[]){"h2", NULL}, 2))
ROW(taps_preconnection_set_alpn, "an empty id", TAPS_ERROR_INVALID_ARGUMENT, set_alpn_n(f, 1, 0))
ROW(taps_preconnection_set_alpn, "an id of 255 bytes", TAPS_OK, set_alpn_n(f, 1, 255))
ROW(taps_preconnection_set_alpn, "an id of 256 bytes", TAPS_ERROR_INVALID_ARGUMENT, set_alpn_n(f, 1, 256))
ROW(taps_preconnection_set_alpn, "64 ids", TAPS_OK, set_alpn_n(f, 64, 2))
ROW(taps_preconnection_set_alpn, "65 ids", TAPS_ERROR_INVALID_ARGUMENT, set_alpn_n(f, 65, 2))
ROW(taps_connection_get_alpn, "NULL: NULL", 1, taps_connection_get_alpn(NULL) == NULL)
ROW(taps_connection_get_alpn, "established without a stage: NULL", 1, taps_connection_get_alpn(fx_established(f)) == NULL)
ROW(taps_connection_get_attempt_connected_us, "NULL connection", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_attempt_connected_us(NULL, 0, &(uint64_t){0}))
ROW(taps_connection_get_attempt_connected_us, "NULL out", TAPS_ERROR_NULL_ARGUMENT, taps_connection_get_attempt_connected_us(fx_established(f), 0, NULL))
ROW(taps_connection_get_attempt_connected_us, "index past the end", TAPS_ERROR_OUT_OF_RANGE, taps_connection_get_attempt_connected_us(fx_established(f), 1, &(uint64_t){0}))
ROW(taps_connection_get_attempt_connected_us, "without a stage", TAPS_ERROR_INVALID_STATE, connected_us_of(fx_established(f)))
ROW(taps_connection_get_attempt_connected_us, "with a stage: connected, then ended", 1, staged_connected_before_end(f))
ROW(taps_stage_attempt_get_fd, "NULL", -1, taps_stage_attempt_get_fd(NULL))
ROW(taps_stage_attempt_get_fd, "in start: the socket", 1, SEEN(fd_ok))
ROW(taps_stage_attempt_get_remote, "NULL attempt", TAPS_ERROR_NULL_ARGUMENT, taps_stage_attempt_get_remote(NULL, &(struct sockaddr_storage){0}, &(socklen_t){0}))
ROW(taps_stage_attempt_get_remote, "in start", TAPS_OK, SEEN(remote_rc))
ROW(taps_stage_attempt_get_remote, "in start: 127.0.0.1", 1, SEEN(remote_v4))
ROW(taps_stage_attempt_get_host_name, "NULL: NULL", 1, taps_stage_attempt_get_host_name(NULL) == NULL)
ROW(taps_stage_attempt_get_host_name, "a literal address: NULL", 1, SEEN(host_null))
ROW(taps_stage_attempt_get_alpn_count, "NULL: 0", 0, taps_stage_attempt_get_alpn_count(NULL))
ROW(taps_stage_attempt_get_alpn_count, "h2, http/1.1", 2, SEEN(alpn_count))
ROW(taps_stage_attempt_get_alpn, "NULL: NULL", 1, taps_stage_attempt_get_alpn(NULL, 0) == NULL)
ROW(taps_stage_attempt_get_alpn, "index 0: h2", 1, SEEN(alpn0_is_h2))
ROW(taps_stage_attempt_get_alpn, "index 2: NULL", 1, SEEN(alpn_past_end_null))
ROW(taps_stage_attempt_get_alpn_wire, "NULL attempt: NULL, 0", 1, wire_of_null())
ROW(taps_stage_attempt_get_alpn_wire, "NULL out_len: NULL", 1, taps_stage_attempt_get_alpn_wire(NULL, NULL) == NULL)
ROW(taps_stage_attempt_get_alpn_wire, "h2, http/1.1: 12 bytes", 12, SEEN(wire_len))
ROW(taps_stage_attempt_get_ech_config, "NULL attempt: NULL, 0", 1, ech_of_null())
ROW(taps_stage_attempt_get_ech_config, "none yet: NULL, 0", 1, SEEN(ech_null))
ROW(taps_stage_attempt_want_read, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_stage_attempt_want_read(NULL))
ROW(taps_stage_attempt_want_read, "in start", TAPS_OK, SEEN(want_read))
ROW(taps_stage_attempt_want_write, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_stage_attempt_want_write(NULL))
ROW(taps_stage_attempt_want_write, "in start", TAPS_OK, SEEN(want_write))
ROW(taps_stage_attempt_ready, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_stage_attempt_ready(NULL, "h2"))
ROW(taps_stage_attempt_ready, "in start", TAPS_OK, SEEN(ready))
ROW(taps_stage_attempt_ready, "twice: the second ignored", TAPS_OK, SEEN(ready_again))
ROW(taps_stage_attempt_failed, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_stage_attempt_failed(NULL, EPROTO))
ROW(taps_stage_attempt_failed, "after ready: ignored", TAPS_OK, SEEN(failed_after))
ROW(taps_stage_attempt_index, "NULL", -1, taps_stage_attempt_index(NULL))
ROW(taps_stage_attempt_index, "the first attempt", 0, SEEN(index))
ROW(taps_resolver_query_answer, "NULL query", TAPS_ERROR_NULL_ARGUMENT, taps_resolver_query_answer(NULL, NULL, 0))
ROW(taps_resolver_query_answer, "NULL addrs, n 1", TAPS_ERROR_NULL_ARGUMENT, query_answer(f, 1, 1, AF_INET))
ROW(taps_resolver_query_answer, "NULL addrs, n 0: empty answers", TAPS_ERROR_RESOLUTION_FAILED, query_answer(f, 1, 0, AF_INET))
ROW(taps_resolver_query_answer, "AF_UNIX addresses: ignored", TAPS_ERROR_RESOLUTION_FAILED, query_answer(f, 0, 2, AF_UNIX))
ROW(taps_resolver_query_answer, "family 0: ignored", TAPS_ERROR_RESOLUTION_FAILED, query_answer(f, 0, 2, 0))
ROW(taps_resolver_query_fail, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_resolver_query_fail(NULL, -2))
ROW(taps_event_loop_set_https_resolver, "NULL loop", TAPS_ERROR_NULL_ARGUMENT, taps_event_loop_set_https_resolver(NULL, NULL))
ROW(taps_event_loop_set_https_resolver, "NULL resolve", TAPS_ERROR_NULL_ARGUMENT, set_https_resolver(f, 1, 0))
ROW(taps_event_loop_set_https_resolver, "struct_size 2", TAPS_ERROR_INVALID_ARGUMENT, set_https_resolver(f, 0, 2))
ROW(taps_event_loop_set_https_resolver, "NULL resolver: the system's", TAPS_OK, taps_event_loop_set_https_resolver(fx_loop(f), NULL))
ROW(taps_event_loop_set_https_resolver, "a resolver (struct_size 0)", TAPS_OK, set_https_resolver(f, 0, 0))
ROW(taps_service_query_answer, "NULL query", TAPS_ERROR_NULL_ARGUMENT, taps_service_query_answer(NULL, NULL, 0, 60))
ROW(taps_service_query_fail, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_service_query_fail(NULL, -2))

/* connection pools */
static long long pool_defaults_ok(Fixture *f) {
  (void)f;
  taps_pool_options o = taps_pool_options_default();
  return !(o.buffer_size == 0 && o.max_size == 8 && o.race_count == 3 && o.refill_race_count == 1 &&
           o.backoff_initial_ms == 1000 && o.backoff_multiplier_percent == 200 && o.backoff_max_ms == 60000);
}
static long long pool_with(Fixture *f, int null_pre, uint32_t race_count) {
  taps_pool_options o = taps_pool_options_default();
  o.race_count = race_count;
  taps_connection_pool *pool = taps_connection_pool_new(null_pre ? NULL : fx_pre(f), &o, NULL, NULL);
  int rc = RC(pool);
  taps_connection_pool_free(pool);
  return rc;
}
static long long pool_acquire(Fixture *f, int null_pool, int null_out) {
  taps_connection_pool *pool = null_pool ? NULL : taps_connection_pool_new(fx_pre(f), NULL, NULL, NULL);
  taps_connection *c = NULL;
  int rc = taps_connection_pool_acquire(pool, test_callbacks(&f->rec), null_out ? NULL : &c);
  taps_connection_free(c);
  taps_connection_pool_free(pool);
  return rc;
}
static long long pool_loop_freed(Fixture *f, int acquire) {
  fx_pre(f);
  if (acquire) {
    f->pool = taps_connection_pool_new(f->pre, NULL, NULL, NULL);
    CHECK(f->pool != NULL);
  }
  taps_event_loop_free(f->loop);
  f->loop = NULL;
  if (!acquire) return RC(taps_connection_pool_new(f->pre, NULL, NULL, NULL));
  taps_connection *c = (taps_connection *)1;
  int rc = taps_connection_pool_acquire(f->pool, test_callbacks(&f->rec), &c);
  return c == NULL ? rc : -100;
}
ROW(taps_pool_options_default, "the documented defaults", 0, pool_defaults_ok(f))
ROW(taps_connection_pool_new, "NULL preconnection", TAPS_ERROR_NULL_ARGUMENT, pool_with(f, 1, 3))
ROW(taps_connection_pool_new, "race_count 0", TAPS_ERROR_INVALID_OPTION, pool_with(f, 0, 0))
ROW(taps_connection_pool_new, "race_count 65", TAPS_ERROR_INVALID_OPTION, pool_with(f, 0, 65))
ROW(taps_connection_pool_new, "the loop was freed", TAPS_ERROR_INVALID_STATE, pool_loop_freed(f, 0))
ROW(taps_connection_pool_acquire, "NULL pool", TAPS_ERROR_NULL_ARGUMENT, pool_acquire(f, 1, 0))
ROW(taps_connection_pool_acquire, "NULL out_connection", TAPS_ERROR_NULL_ARGUMENT, pool_acquire(f, 0, 1))
ROW(taps_connection_pool_acquire, "the loop was freed", TAPS_ERROR_INVALID_STATE, pool_loop_freed(f, 1))
ROW(taps_connection_pool_buffered, "NULL", 0, taps_connection_pool_buffered(NULL))
ROW(taps_connection_pool_free, "NULL", 0, (taps_connection_pool_free(NULL), 0))

/* connection groups */
static long long group_defaults_ok(Fixture *f) {
  (void)f;
  taps_group_options o = taps_group_options_default();
  return !(o.size == 2 && o.policy == TAPS_ASSIGN_POLICY_ROUND_ROBIN && o.capacity == 256 && o.backoff_initial_ms == 1000 &&
           o.backoff_multiplier_percent == 200 && o.backoff_max_ms == 60000);
}
static taps_group_options group_opts(uint32_t size, uint32_t policy, uint32_t capacity, uint32_t multiplier) {
  taps_group_options o = taps_group_options_default();
  o.size = size;
  o.policy = policy;
  o.capacity = capacity;
  o.backoff_multiplier_percent = multiplier;
  return o;
}
static long long group_with(Fixture *f, int null_pre, taps_group_options o) {
  taps_connection_group *g = taps_connection_group_new(null_pre ? NULL : fx_pre(f), &o, NULL, NULL);
  int rc = RC(g);
  taps_connection_group_free(g);
  return rc;
}
static long long group_loop_freed(Fixture *f) {
  fx_pre(f);
  taps_event_loop_free(f->loop);
  f->loop = NULL;
  return RC(taps_connection_group_new(f->pre, NULL, NULL, NULL));
}
/* A group whose members never connect (127.0.0.1:9 refuses). */
static taps_connection_group *group_dead(Fixture *f) {
  f->group = taps_connection_group_new(fx_pre(f), NULL, NULL, NULL);
  CHECK(f->group != NULL);
  return f->group;
}
/* A group of `size` members connected to a loopback listener. */
static taps_connection_group *group_live(Fixture *f, uint32_t size, uint32_t capacity) {
  uint16_t port = 0;
  f->listener = test_listen(AF_INET, &port);
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  f->pre = taps_preconnection_new(fx_loop(f), (const taps_remote_endpoint *const *)&ep, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  taps_group_options o = taps_group_options_default();
  o.size = size;
  o.capacity = capacity;
  f->group = taps_connection_group_new(f->pre, &o, NULL, NULL);
  CHECK(f->group != NULL);
  uint64_t end = test_now_us() + (uint64_t)SCALED(3000000);
  while (taps_connection_group_members(f->group, NULL, 0) < size && test_now_us() < end)
    CHECK(taps_event_loop_run_once(f->loop, 10) >= 0);
  CHECK_EQ(taps_connection_group_members(f->group, NULL, 0), size);
  return f->group;
}
static uint64_t first_member(taps_connection_group *g) {
  uint64_t m = 0;
  CHECK_EQ(taps_connection_group_members(g, &m, 1), 1);
  return m;
}
static long long group_assign(Fixture *f, int times) {
  taps_connection_group *g = group_live(f, 1, 1);
  uint64_t m;
  int rc = 0;
  for (int i = 0; i < times && rc == 0; i++) rc = taps_connection_group_assign(g, &m);
  return rc;
}
static long long group_release(Fixture *f, int assigned, int times) {
  taps_connection_group *g = group_live(f, 1, 4);
  uint64_t m = first_member(g);
  if (assigned) CHECK_CODE(taps_connection_group_assign(g, &m), TAPS_OK);
  int rc = 0;
  for (int i = 0; i < times && rc == 0; i++) rc = taps_connection_group_release_stream(g, m, 0);
  return rc;
}
static long long group_mark_failed(Fixture *f, int times) {
  taps_connection_group *g = group_live(f, 1, 4);
  uint64_t m = first_member(g);
  int rc = 0;
  for (int i = 0; i < times && rc == 0; i++) rc = taps_connection_group_mark_failed(g, m);
  return rc;
}
static long long group_metrics(Fixture *f, int null_out, int unknown) {
  taps_connection_group *g = group_live(f, 1, 4);
  taps_group_member_metrics out;
  return taps_connection_group_member_metrics(g, unknown ? 987654 : first_member(g), null_out ? NULL : &out);
}
static long long group_fd(Fixture *f, int unknown) {
  taps_connection_group *g = group_live(f, 1, 4);
  int fd = taps_connection_group_member_fd(g, unknown ? 987654 : first_member(g));
  return unknown ? fd : fd >= 0;
}
ROW(taps_group_options_default, "the documented defaults", 0, group_defaults_ok(f))
ROW(taps_connection_group_new, "NULL preconnection", TAPS_ERROR_NULL_ARGUMENT, group_with(f, 1, taps_group_options_default()))
ROW(taps_connection_group_new, "NULL options: the defaults", 0, group_with(f, 0, taps_group_options_default()))
ROW(taps_connection_group_new, "size 0", TAPS_ERROR_INVALID_OPTION, group_with(f, 0, group_opts(0, 0, 256, 200)))
ROW(taps_connection_group_new, "size 65", TAPS_ERROR_INVALID_OPTION, group_with(f, 0, group_opts(65, 0, 256, 200)))
ROW(taps_connection_group_new, "capacity 0", TAPS_ERROR_INVALID_OPTION, group_with(f, 0, group_opts(2, 0, 0, 200)))
ROW(taps_connection_group_new, "capacity 1,000,001", TAPS_ERROR_INVALID_OPTION, group_with(f, 0, group_opts(2, 0, 1000001, 200)))
ROW(taps_connection_group_new, "policy 3", TAPS_ERROR_INVALID_OPTION, group_with(f, 0, group_opts(2, 3, 256, 200)))
ROW(taps_connection_group_new, "backoff_multiplier_percent 99", TAPS_ERROR_INVALID_OPTION, group_with(f, 0, group_opts(2, 0, 256, 99)))
ROW(taps_connection_group_new, "backoff_multiplier_percent 1001", TAPS_ERROR_INVALID_OPTION, group_with(f, 0, group_opts(2, 0, 256, 1001)))
ROW(taps_connection_group_new, "the loop was freed", TAPS_ERROR_INVALID_STATE, group_loop_freed(f))
ROW(taps_connection_group_assign, "NULL group", TAPS_ERROR_NULL_ARGUMENT, taps_connection_group_assign(NULL, &(uint64_t){0}))
ROW(taps_connection_group_assign, "NULL out_member", TAPS_ERROR_NULL_ARGUMENT, taps_connection_group_assign(group_dead(f), NULL))
ROW(taps_connection_group_assign, "no live member", TAPS_ERROR_NO_MEMBER, taps_connection_group_assign(group_dead(f), &(uint64_t){0}))
ROW(taps_connection_group_assign, "capacity 1, twice", TAPS_ERROR_ALL_MEMBERS_FULL, group_assign(f, 2))
ROW(taps_connection_group_release_stream, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_connection_group_release_stream(NULL, 1, 0))
ROW(taps_connection_group_release_stream, "no open stream", TAPS_ERROR_INVALID_ARGUMENT, group_release(f, 0, 1))
ROW(taps_connection_group_release_stream, "released twice", TAPS_ERROR_INVALID_ARGUMENT, group_release(f, 1, 2))
ROW(taps_connection_group_release_stream, "unknown member", TAPS_ERROR_INVALID_ARGUMENT, taps_connection_group_release_stream(group_dead(f), UINT64_MAX, 0))
ROW(taps_connection_group_mark_failed, "NULL", TAPS_ERROR_NULL_ARGUMENT, taps_connection_group_mark_failed(NULL, 1))
ROW(taps_connection_group_mark_failed, "unknown member", TAPS_ERROR_INVALID_ARGUMENT, taps_connection_group_mark_failed(group_dead(f), 987654))
ROW(taps_connection_group_mark_failed, "twice: not live the second time", TAPS_ERROR_INVALID_ARGUMENT, group_mark_failed(f, 2))
ROW(taps_connection_group_set_weight, "NULL (no error documented)", TAPS_ERROR_NULL_ARGUMENT, taps_connection_group_set_weight(NULL, 1, 1))
ROW(taps_connection_group_set_weight, "unknown member (no error documented)", TAPS_ERROR_INVALID_ARGUMENT, taps_connection_group_set_weight(group_dead(f), 987654, 1))
ROW(taps_connection_group_member_metrics, "NULL group", TAPS_ERROR_NULL_ARGUMENT, taps_connection_group_member_metrics(NULL, 1, &(taps_group_member_metrics){0}))
ROW(taps_connection_group_member_metrics, "NULL out", TAPS_ERROR_NULL_ARGUMENT, group_metrics(f, 1, 0))
ROW(taps_connection_group_member_metrics, "unknown member", TAPS_ERROR_INVALID_ARGUMENT, group_metrics(f, 0, 1))
ROW(taps_connection_group_member_fd, "NULL", -1, taps_connection_group_member_fd(NULL, 1))
ROW(taps_connection_group_member_fd, "unknown member", -1, group_fd(f, 1))
ROW(taps_connection_group_member_fd, "a live member", 1, group_fd(f, 0))
ROW(taps_connection_group_members, "NULL", 0, taps_connection_group_members(NULL, NULL, 0))
ROW(taps_connection_group_members, "none live", 0, taps_connection_group_members(group_dead(f), NULL, 0))
ROW(taps_connection_group_free, "NULL", 0, (taps_connection_group_free(NULL), 0))

/* a user protocol's attempt: its ALPN ids and ECH config (HEv3 §6.1, §6.3) */
static taps_protocol_attempt *alpn_attempt(Fixture *f) {
  fx_mock_pre(f, "127.0.0.1", NULL);
  const char *ids[] = {"h2", "http/1.1"};
  CHECK_CODE(taps_preconnection_set_alpn(f->pre, ids, 2), TAPS_OK);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  CHECK(f->proto.handles[0] != NULL);
  return f->proto.handles[0];
}
static long long proto_alpn_is(Fixture *f, size_t index, const char *want) {
  const char *id = taps_protocol_attempt_get_alpn(alpn_attempt(f), index);
  return want ? (id != NULL && strcmp(id, want) == 0) : id == NULL;
}
static long long proto_wire_len(Fixture *f, int null_attempt) {
  size_t len = 99;
  const uint8_t *w = taps_protocol_attempt_get_alpn_wire(null_attempt ? NULL : alpn_attempt(f), &len);
  if (null_attempt) return w == NULL && len == 0;
  return w != NULL && w[0] == 2 && memcmp(w + 1, "h2", 2) == 0 ? (long long)len : -1;
}
static long long proto_ech_none(Fixture *f, int null_attempt) {
  size_t len = 99;
  const uint8_t *e = taps_protocol_attempt_get_ech_config(null_attempt ? NULL : alpn_attempt(f), &len);
  return e == NULL && len == 0;
}
ROW(taps_protocol_attempt_get_alpn_count, "NULL: 0", 0, taps_protocol_attempt_get_alpn_count(NULL))
ROW(taps_protocol_attempt_get_alpn_count, "no HTTPS record: the Preconnection's 2", 2, taps_protocol_attempt_get_alpn_count(alpn_attempt(f)))
ROW(taps_protocol_attempt_get_alpn, "NULL: NULL", 1, taps_protocol_attempt_get_alpn(NULL, 0) == NULL)
ROW(taps_protocol_attempt_get_alpn, "index 0: h2", 1, proto_alpn_is(f, 0, "h2"))
ROW(taps_protocol_attempt_get_alpn, "index 1: http/1.1", 1, proto_alpn_is(f, 1, "http/1.1"))
ROW(taps_protocol_attempt_get_alpn, "index 2: NULL", 1, proto_alpn_is(f, 2, NULL))
ROW(taps_protocol_attempt_get_alpn_wire, "NULL attempt: NULL, 0", 1, proto_wire_len(f, 1))
ROW(taps_protocol_attempt_get_alpn_wire, "NULL out_len: NULL", 1, taps_protocol_attempt_get_alpn_wire(NULL, NULL) == NULL)
ROW(taps_protocol_attempt_get_alpn_wire, "h2, http/1.1: 12 bytes", 12, proto_wire_len(f, 0))
ROW(taps_protocol_attempt_get_ech_config, "NULL attempt: NULL, 0", 1, proto_ech_none(f, 1))
ROW(taps_protocol_attempt_get_ech_config, "no HTTPS record: NULL, 0", 1, proto_ech_none(f, 0))
static long long set_protocol_alpn(Fixture *f, const char *name, const char *const *ids, size_t n) {
  fx_mock_pre(f, "127.0.0.1", NULL);
  return taps_preconnection_set_protocol_alpn(f->pre, name, ids, n);
}
/* A race where "hx" serves h3 only and the address has no HTTPS record:
   no branch races it (the loop's "tcp" is not selected by hx_props). */
static long long hx_h3_only_starts_nothing(Fixture *f) {
  fx_mock_pre(f, "127.0.0.1", NULL);
  CHECK_CODE(taps_preconnection_set_protocol_alpn(f->pre, "hx", (const char *const[]){"h3"}, 1), TAPS_OK);
  CHECK_CODE(taps_preconnection_initiate_with_racing(f->pre, test_callbacks(&f->rec), &f->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(f->mloop), TAPS_OK);
  return (long long)f->proto.starts;
}
ROW(taps_preconnection_set_protocol_alpn, "NULL preconnection", TAPS_ERROR_NULL_ARGUMENT, taps_preconnection_set_protocol_alpn(NULL, "tcp", NULL, 0))
ROW(taps_preconnection_set_protocol_alpn, "NULL protocol name", TAPS_ERROR_NULL_ARGUMENT, set_protocol_alpn(f, NULL, NULL, 0))
ROW(taps_preconnection_set_protocol_alpn, "NULL ids, count 1", TAPS_ERROR_NULL_ARGUMENT, set_protocol_alpn(f, "hx", NULL, 1))
ROW(taps_preconnection_set_protocol_alpn, "a NULL id", TAPS_ERROR_NULL_ARGUMENT, set_protocol_alpn(f, "hx", (const char *const[]){"h3", NULL}, 2))
ROW(taps_preconnection_set_protocol_alpn, "no protocol of that name", TAPS_ERROR_INVALID_ARGUMENT, set_protocol_alpn(f, "quic", (const char *const[]){"h3"}, 1))
ROW(taps_preconnection_set_protocol_alpn, "an empty id", TAPS_ERROR_INVALID_ARGUMENT, set_protocol_alpn(f, "hx", (const char *const[]){""}, 1))
ROW(taps_preconnection_set_protocol_alpn, "h3 for hx", TAPS_OK, set_protocol_alpn(f, "hx", (const char *const[]){"h3"}, 1))
ROW(taps_preconnection_set_protocol_alpn, "count 0: cleared", TAPS_OK, set_protocol_alpn(f, "tcp", NULL, 0))
ROW(taps_preconnection_set_protocol_alpn, "hx serving h3 gets no fallback address", 0, hx_h3_only_starts_nothing(f))

/* ---- coverage of the header ------------------------------------------- */

/* Names of the functions the header declares: a line that starts with a
 * type (not indented, not a comment, typedef or preprocessor line) and
 * holds '(' declares the identifier just before it. */
static int header_functions(char names[][64], int max) {
  FILE *h = fopen(TAPS_HEADER_PATH, "r");
  if (h == NULL) {
    fprintf(stderr, "cannot open %s: %s\n", TAPS_HEADER_PATH, strerror(errno));
    exit(1);
  }
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, h) != NULL) {
    if (!((line[0] >= 'a' && line[0] <= 'z') || (line[0] >= 'A' && line[0] <= 'Z'))) continue;
    if (strncmp(line, "typedef", 7) == 0 || strncmp(line, "extern", 6) == 0) continue;
    char *paren = strchr(line, '(');
    if (paren == NULL) continue;
    char *end = paren;
    while (end > line && (end[-1] == ' ')) end--;
    char *start = end;
    while (start > line && (isalnum((unsigned char)start[-1]) || start[-1] == '_')) start--;
    if (end - start <= 0 || end - start >= 64) continue;
    CHECK(n < max);
    memcpy(names[n], start, (size_t)(end - start));
    names[n][end - start] = '\0';
    n++;
  }
  fclose(h);
  return n;
}

static int check_coverage(void) {
  static char names[320][64];
  int n = header_functions(names, 320);
  CHECK(n > 40);
  int missing = 0;
  for (int i = 0; i < n; i++) {
    int found = 0;
    for (int r = 0; r < n_rows && !found; r++) found = strcmp(rows[r].function, names[i]) == 0;
    if (!found) {
      fprintf(stderr, "COVERAGE: %s is declared in the header but no row calls it\n", names[i]);
      missing++;
    }
  }
  for (int r = 0; r < n_rows; r++) {
    int found = 0;
    for (int i = 0; i < n && !found; i++) found = strcmp(rows[r].function, names[i]) == 0;
    if (!found) {
      fprintf(stderr, "COVERAGE: row at line %d names %s, which the header does not declare\n", rows[r].line,
              rows[r].function);
      missing++;
    }
  }
  fprintf(stderr, "coverage: %d functions in the header, %d rows\n", n, n_rows);
  return missing;
}

static int by_line(const void *a, const void *b) { return ((const Row *)a)->line - ((const Row *)b)->line; }

int main(int argc, char **argv) {
  qsort(rows, (size_t)n_rows, sizeof rows[0], by_line);
  if (argc > 1 && strcmp(argv[1], "--list") == 0) {
    for (int r = 0; r < n_rows; r++) printf("%-40s %-60s %lld\n", rows[r].function, rows[r].what, rows[r].want);
    return 0;
  }
  int fds_before = test_count_fds();
  int failed = 0, findings = 0;
  const char *strict = getenv("TAPS_STRICT_FINDINGS");
  for (int r = 0; r < n_rows; r++) {
    Fixture f;
    fx_init(&f);
    long long got = rows[r].call(&f);
    fx_free(&f);
    if (got != rows[r].want && rows[r].finding && !(strict && strcmp(strict, "1") == 0)) {
      fprintf(stderr, "FINDING line %d: %s (%s): got %lld, want %lld\n", rows[r].line, rows[r].function, rows[r].what,
              got, rows[r].want);
      findings++;
    } else if (got != rows[r].want) {
      fprintf(stderr, "FAIL line %d: %s (%s): got %lld, want %lld (%s)\n", rows[r].line, rows[r].function,
              rows[r].what, got, rows[r].want, taps_strerror((int)got));
      failed++;
    }
  }
  int fds_after = test_count_fds();
  if (fds_after != fds_before) {
    fprintf(stderr, "FAIL: %d fds open before the rows, %d after\n", fds_before, fds_after);
    test_list_fds("after");
    failed++;
  }
  int uncovered = check_coverage();
  fprintf(stderr, "%d calls tried, %d failed, %d known findings; %d coverage problems\n", n_rows, failed, findings,
          uncovered);
  printf("%d passed, %d failed\n", n_rows - failed, failed + (uncovered ? 1 : 0));
  return failed || uncovered ? 1 : 0;
}
