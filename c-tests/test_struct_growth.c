/* The growable structs (docs/ABI.md): each starts with uint32_t
 * struct_size, the bytes of the caller's struct, and the library reads only
 * the fields that fit in it.
 *
 * - A program built against an older header, whose taps_racing_options
 *   lacks the newest field (race_count), passes its smaller struct: the
 *   library reads the fields it has (a 2000 ms attempt delay) and takes
 *   the default for race_count (1: one attempt at once), and never reads
 *   the bytes past it (here a 2 that would be race_count).
 * - A struct_size below the smallest layout (struct_size and the first
 *   field), or ending inside a field, is TAPS_ERROR_INVALID_ARGUMENT naming
 *   the struct.
 * - A larger struct (a program built against a newer header) is accepted
 *   when every byte past this library's struct is zero, and refused when
 *   one is not (Linux's copy_struct_from_user rule).
 * - struct_size 0 is this header's full struct: zero-initialized structs
 *   ({.ready = f}, memset) keep working.
 * - taps_connection_callbacks, passed by value: a smaller struct hides the
 *   callbacks past it; a larger one is refused (no tail to check).
 * - taps_pool_options, taps_group_options, taps_event_loop_options follow
 *   the same rules.
 *
 * The races run on a manual clock with the mock protocol (c-tests/mock.h).
 */
#include "mock.h"

#include <stddef.h>

/* taps_racing_options as a header without race_count declared it. */
typedef struct old_racing_options {
  uint32_t struct_size;
  uint32_t connection_attempt_delay_ms;
  uint32_t resolution_delay_ms;
  uint32_t first_address_family_count;
  uint32_t attempt_timeout_ms;
  uint32_t total_timeout_ms;
} old_racing_options;

/* taps_racing_options as a newer header might declare it. */
typedef struct newer_racing_options {
  taps_racing_options known;
  uint32_t newer_field;
} newer_racing_options;

static const char *const HOSTS[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};

_Static_assert(sizeof(old_racing_options) == offsetof(taps_racing_options, race_count),
               "the old layout is the current one without its last field");

/* A smaller struct: the fields it has are read, race_count is the default
 * (1), and the 2 right after it in memory is never read. */
static void case_older_smaller_struct(void) {
  struct {
    old_racing_options o;
    uint32_t after; /* where race_count would be */
  } mem;
  memset(&mem, 0, sizeof mem);
  mem.o.struct_size = (uint32_t)sizeof(old_racing_options);
  mem.o.connection_attempt_delay_ms = 2000;
  mem.o.resolution_delay_ms = 50;
  mem.o.first_address_family_count = 1;
  mem.after = 2;
  Mock m;
  mock_setup(&m, HOSTS, 3, (const taps_racing_options *)&mem.o);
  mock_initiate(&m);
  CHECK_EQ(m.n_started, 1); /* race_count 1, not the 2 past the struct */
  mock_advance(&m, 1999999);
  CHECK_EQ(m.n_started, 1); /* the 2000 ms delay of the smaller struct */
  mock_advance(&m, 1);
  CHECK_EQ(m.n_started, 2);
  MOCK_CHECK_LOG_HAS(&m, "m start 127.0.0.2:443 at 2000000");
  mock_finish(&m);
}

/* The control: the full struct with race_count 2 starts two at once. */
static void case_full_struct(void) {
  taps_racing_options o = taps_racing_options_default();
  CHECK_EQ(o.struct_size, sizeof(taps_racing_options));
  o.connection_attempt_delay_ms = 2000;
  o.race_count = 2;
  Mock m;
  mock_setup(&m, HOSTS, 3, &o);
  mock_initiate(&m);
  CHECK_EQ(m.n_started, 2);
  mock_finish(&m);
}

/* struct_size 0 is this header's struct. */
static void case_size_zero_is_this_header(void) {
  taps_racing_options o = taps_racing_options_default();
  o.struct_size = 0;
  o.race_count = 3;
  Mock m;
  mock_setup(&m, HOSTS, 3, &o);
  mock_initiate(&m);
  CHECK_EQ(m.n_started, 3);
  mock_finish(&m);
}

static taps_preconnection *pre_with(Mock *m, const void *opts) {
  return mock_preconnection(m, HOSTS, 1, m->props, (const taps_racing_options *)opts);
}

/* A new preconnection with `opts` fails with INVALID_ARGUMENT naming
 * taps_racing_options. */
static void check_refused(const void *opts) {
  Mock m;
  mock_init(&m);
  m.props = mock_props();
  taps_remote_endpoint *ep = test_remote_host("127.0.0.1", 443);
  taps_preconnection *p =
      taps_preconnection_new(m.loop, (const taps_remote_endpoint *const *)&ep, 1, m.props, (const taps_racing_options *)opts);
  CHECK(p == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(taps_last_error_message(), "taps_racing_options.struct_size") != NULL);
  taps_remote_endpoint_free(ep);
  mock_finish(&m);
}

static void case_too_small_is_refused(void) {
  taps_racing_options o = taps_racing_options_default();
  o.struct_size = 4; /* struct_size alone: below the smallest layout */
  check_refused(&o);
  o.struct_size = 1;
  check_refused(&o);
  o.struct_size = 6; /* inside connection_attempt_delay_ms */
  check_refused(&o);
  o.struct_size = (uint32_t)offsetof(taps_racing_options, race_count) + 2; /* inside race_count */
  check_refused(&o);
  /* The smallest layout: struct_size and the first field. */
  o.struct_size = (uint32_t)offsetof(taps_racing_options, resolution_delay_ms);
  Mock m;
  mock_init(&m);
  m.props = mock_props();
  m.pre = pre_with(&m, &o);
  mock_finish(&m);
}

static void case_newer_larger_struct(void) {
  newer_racing_options n;
  memset(&n, 0, sizeof n);
  n.known = taps_racing_options_default();
  n.known.struct_size = (uint32_t)sizeof n;
  n.known.race_count = 2;
  /* The unknown tail is zero: accepted, the known fields read. */
  Mock m;
  mock_setup(&m, HOSTS, 3, &n.known);
  mock_initiate(&m);
  CHECK_EQ(m.n_started, 2);
  mock_finish(&m);
  /* A field this library does not know is set: refused. */
  n.newer_field = 1;
  check_refused(&n);
}

static int g_ready, g_error;
static int count_ready(taps_connection *c, void *ud) {
  (void)c;
  (void)ud;
  g_ready++;
  return 0;
}
static int count_error(taps_connection *c, void *ud) {
  (void)c;
  (void)ud;
  g_error++;
  return 0;
}

/* Callbacks by value: a smaller struct hides what lies past it; a larger
 * one is refused; TAPS_CONNECTION_CALLBACKS_INIT sets this header's size. */
static void case_callbacks(void) {
  taps_connection_callbacks init = TAPS_CONNECTION_CALLBACKS_INIT;
  CHECK_EQ(init.struct_size, sizeof(taps_connection_callbacks));
  CHECK(init.ready == NULL && init.establishment_error == NULL && init.user_data == NULL);

  /* Only `ready` fits: establishment_error is NULL to the library. */
  g_ready = g_error = 0;
  Mock m;
  mock_setup(&m, HOSTS, 1, NULL);
  taps_connection_callbacks cb = TAPS_CONNECTION_CALLBACKS_INIT;
  cb.struct_size = (uint32_t)offsetof(taps_connection_callbacks, establishment_error);
  cb.ready = count_ready;
  cb.establishment_error = count_error;
  CHECK_CODE(taps_preconnection_initiate_with_racing(m.pre, cb, &m.conn), TAPS_OK);
  mock_run(&m);
  mock_fail(&m, 0, ECONNREFUSED);
  mock_run(&m);
  CHECK_EQ(taps_connection_get_error(m.conn), TAPS_ERROR_ALL_ATTEMPTS_FAILED);
  CHECK_EQ(g_error, 0);
  CHECK_EQ(g_ready, 0);
  mock_finish(&m);

  /* The full struct: establishment_error is called. */
  mock_setup(&m, HOSTS, 1, NULL);
  cb.struct_size = 0;
  CHECK_CODE(taps_preconnection_initiate_with_racing(m.pre, cb, &m.conn), TAPS_OK);
  mock_run(&m);
  mock_fail(&m, 0, ECONNREFUSED);
  mock_run(&m);
  CHECK_EQ(g_error, 1);
  taps_connection_free(m.conn);
  m.conn = NULL;

  /* Larger than this library's struct, or too small: refused. */
  const uint32_t bad[] = {(uint32_t)sizeof(taps_connection_callbacks) + 8, 4,
                          (uint32_t)offsetof(taps_connection_callbacks, ready) + 4};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cb.struct_size = bad[i];
    taps_connection *c = (taps_connection *)&m; /* must be reset to NULL */
    CHECK_CODE(taps_preconnection_initiate_with_racing(m.pre, cb, &c), TAPS_ERROR_INVALID_ARGUMENT);
    CHECK(c == NULL);
    CHECK(strstr(taps_last_error_message(), "taps_connection_callbacks.struct_size") != NULL);
  }
  mock_finish(&m);
}

/* Pool, group and event loop options follow the same rules. */
static void case_other_options(void) {
  Mock m;
  mock_setup(&m, HOSTS, 1, NULL);

  taps_pool_options po = taps_pool_options_default();
  CHECK_EQ(po.struct_size, sizeof(taps_pool_options));
  po.struct_size = 4;
  CHECK(taps_connection_pool_new(m.pre, &po, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(taps_last_error_message(), "taps_pool_options.struct_size") != NULL);
  /* A pool built against a header with only buffer_size: the rest default. */
  po = taps_pool_options_default();
  po.struct_size = (uint32_t)offsetof(taps_pool_options, max_size);
  po.max_size = 0; /* past struct_size: not read (0 would be out of range) */
  taps_connection_pool *pool = taps_connection_pool_new(m.pre, &po, NULL, NULL);
  CHECK(pool != NULL);
  taps_connection_pool_free(pool);

  taps_group_options go = taps_group_options_default();
  CHECK_EQ(go.struct_size, sizeof(taps_group_options));
  go.struct_size = 2;
  CHECK(taps_connection_group_new(m.pre, &go, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(taps_last_error_message(), "taps_group_options.struct_size") != NULL);

  taps_event_loop_options lo = TAPS_EVENT_LOOP_OPTIONS_INIT;
  CHECK_EQ(lo.struct_size, sizeof(taps_event_loop_options));
  CHECK(!lo.manual_clock);
  lo.manual_clock = true;
  taps_event_loop *loop = taps_event_loop_new_with_options(&lo);
  CHECK(loop != NULL);
  CHECK_EQ(taps_event_loop_now_us(loop), 0);
  taps_event_loop_free(loop);
  lo.struct_size = 4;
  CHECK(taps_event_loop_new_with_options(&lo) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(taps_last_error_message(), "taps_event_loop_options.struct_size") != NULL);
  mock_finish(&m);
}

MOCK_MAIN(MOCK_CASE(older_smaller_struct), MOCK_CASE(full_struct), MOCK_CASE(size_zero_is_this_header),
          MOCK_CASE(too_small_is_refused), MOCK_CASE(newer_larger_struct), MOCK_CASE(callbacks),
          MOCK_CASE(other_options))
