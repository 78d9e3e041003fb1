/* Selection properties (RFC 9622 §6.2; Prohibit → Require → Prefer →
 * Avoid) and protocol racing types (RFC 9623 §4.3) with mock protocols
 * under the manual clock, and one mock raced against built-in TCP (to a
 * closed or silent loopback port). */
#include "mock.h"

static const char *const one[] = {"127.0.0.1"};

#define PLAIN (TAPS_PROTOCOL_FLAG_RELIABLE | TAPS_PROTOCOL_FLAG_MULTISTREAMING)
#define MSG (TAPS_PROTOCOL_FLAG_RELIABLE | TAPS_PROTOCOL_FLAG_MULTISTREAMING | TAPS_PROTOCOL_FLAG_PRESERVES_MSG_BOUNDARIES)

/* Fail every live attempt (from the newest), then run. */
static void fail_all(Mock *m, int err) {
  for (int i = m->n_attempts - 1; i >= 0; i--) {
    if (m->attempts[i].live) mock_fail(m, i, err);
  }
  mock_run(m);
}

/* A prohibited protocol never starts, not even when the others failed. */
static void case_prohibited_never_starts(void) {
  Mock m;
  mock_init(&m);
  mock_add_protocol_flags(&m, "msg", MSG);
  mock_add_protocol_flags(&m, "plain", PLAIN);
  m.props = mock_props();
  CHECK_CODE(taps_transport_properties_set(m.props, TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, TAPS_PREFERENCE_PROHIBIT), TAPS_OK);
  m.pre = mock_preconnection(&m, one, 1, m.props, NULL);
  mock_initiate(&m);
  MOCK_EXPECT(&m, "plain start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_advance(&m, 5 * 1000 * 1000);
  fail_all(&m, ECONNREFUSED);
  mock_advance(&m, 5 * 1000 * 1000);
  MOCK_EXPECT(&m, "plain start 127.0.0.1:443 at 0");
  CHECK_EQ(m.establishment_error, 1);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 1);
  mock_finish(&m);
}

/* A required property leaves only the protocol that has it: not TCP (no
 * message boundaries), not UDP (not reliable), not the other mock. */
static void case_required_is_the_only_one(void) {
  Mock m;
  mock_init(&m);
  mock_add_protocol_flags(&m, "plain", PLAIN);
  mock_add_protocol_flags(&m, "msg", MSG);
  m.props = taps_transport_properties_new();
  CHECK(m.props != NULL);
  CHECK_CODE(taps_transport_properties_set(m.props, TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, TAPS_PREFERENCE_REQUIRE), TAPS_OK);
  m.pre = mock_preconnection(&m, one, 1, m.props, NULL);
  mock_initiate(&m);
  MOCK_EXPECT(&m, "msg start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_advance(&m, 5 * 1000 * 1000);
  fail_all(&m, ECONNREFUSED);
  MOCK_EXPECT(&m, "msg start 127.0.0.1:443 at 0");
  CHECK_EQ(m.establishment_error, 1);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 1);
  MOCK_CHECK_ATTEMPT(&m, 0, "msg", "127.0.0.1:443", 0, 5000000, TAPS_ATTEMPT_OUTCOME_FAILED, ECONNREFUSED);
  mock_finish(&m);
}

/* No protocol left: initiate says so. */
static void case_nothing_left(void) {
  Mock m;
  mock_init(&m);
  mock_add_protocol_flags(&m, "plain", PLAIN);
  m.props = mock_props();
  CHECK_CODE(taps_transport_properties_set(m.props, TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, TAPS_PREFERENCE_REQUIRE), TAPS_OK);
  m.pre = mock_preconnection(&m, one, 1, m.props, NULL);
  taps_connection *c = (taps_connection *)&m; /* must be set to NULL */
  CHECK_CODE(taps_preconnection_initiate_with_racing(m.pre, mock_no_callbacks(), &c), TAPS_ERROR_NO_CANDIDATES);
  CHECK(c == NULL);
  CHECK_EQ(m.n_log, 0);
  mock_finish(&m);
}

/* Prefer orders the starts: the protocol that has the preferred property
 * first, the others in registration order, one attempt delay apart. */
static void case_prefer_orders_starts(void) {
  Mock m;
  mock_init(&m);
  mock_add_protocol_flags(&m, "a", PLAIN);
  mock_add_protocol_flags(&m, "b", MSG);
  mock_add_protocol_flags(&m, "c", PLAIN);
  m.props = mock_props();
  CHECK_CODE(taps_transport_properties_set(m.props, TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, TAPS_PREFERENCE_PREFER), TAPS_OK);
  m.pre = mock_preconnection(&m, one, 1, m.props, NULL);
  mock_initiate(&m);
  mock_advance(&m, 249999);
  MOCK_EXPECT(&m, "b start 127.0.0.1:443 at 0");
  mock_advance(&m, 1);
  mock_advance_to(&m, 500000);
  MOCK_EXPECT(&m, "b start 127.0.0.1:443 at 0", "a start 127.0.0.1:443 at 250000", "c start 127.0.0.1:443 at 500000");
  mock_ready(&m, 2, -1, 3);
  mock_run(&m);
  MOCK_EXPECT(&m, "b start 127.0.0.1:443 at 0", "a start 127.0.0.1:443 at 250000", "c start 127.0.0.1:443 at 500000",
              "b cancel #0", "a cancel #1");
  CHECK(strcmp(taps_connection_get_protocol(m.conn), "c") == 0);
  MOCK_CHECK_ATTEMPT(&m, 0, "b", "127.0.0.1:443", 0, 500000, TAPS_ATTEMPT_OUTCOME_CANCELLED, 0);
  MOCK_CHECK_ATTEMPT(&m, 2, "c", "127.0.0.1:443", 500000, 500000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  mock_finish(&m);
}

/* Avoid orders the starts the other way: the protocol that has the avoided
 * property goes last, as failover (it waits for the others to fail). */
static void case_avoid_is_failover(void) {
  Mock m;
  mock_init(&m);
  mock_add_protocol_flags(&m, "msg", MSG);
  mock_add_protocol_flags(&m, "a", PLAIN);
  mock_add_protocol_flags(&m, "b", PLAIN);
  m.props = mock_props();
  CHECK_CODE(taps_transport_properties_set(m.props, TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, TAPS_PREFERENCE_AVOID), TAPS_OK);
  m.pre = mock_preconnection(&m, one, 1, m.props, NULL);
  CHECK_CODE(taps_preconnection_set_racing_type(m.pre, TAPS_BRANCH_KIND_PROTOCOL, TAPS_RACING_TYPE_DELAYED, 100), TAPS_OK);
  mock_initiate(&m);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0");
  mock_advance(&m, 99999);
  CHECK_EQ(m.n_log, 1);
  mock_advance(&m, 1);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0", "b start 127.0.0.1:443 at 100000");
  /* No timer for the avoided protocol: it waits for failures only. */
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_advance(&m, 1000000);
  CHECK_EQ(m.n_log, 2);
  mock_fail(&m, 0, ECONNREFUSED);
  mock_run(&m);
  CHECK_EQ(m.n_log, 2); /* b still runs */
  mock_advance(&m, 500);
  mock_fail(&m, 1, ECONNREFUSED);
  mock_run(&m);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0", "b start 127.0.0.1:443 at 100000", "msg start 127.0.0.1:443 at 1100500");
  mock_fail(&m, 2, ETIMEDOUT);
  mock_run(&m);
  CHECK_EQ(m.ready, 0);
  CHECK_EQ(m.establishment_error, 1);
  CHECK_CODE(taps_connection_get_error(m.conn), TAPS_ERROR_ALL_ATTEMPTS_FAILED);
  CHECK_EQ(taps_connection_get_os_error(m.conn), ETIMEDOUT);
  MOCK_CHECK_ATTEMPT(&m, 0, "a", "127.0.0.1:443", 0, 1100000, TAPS_ATTEMPT_OUTCOME_FAILED, ECONNREFUSED);
  MOCK_CHECK_ATTEMPT(&m, 1, "b", "127.0.0.1:443", 100000, 1100500, TAPS_ATTEMPT_OUTCOME_FAILED, ECONNREFUSED);
  MOCK_CHECK_ATTEMPT(&m, 2, "msg", "127.0.0.1:443", 1100500, 1100500, TAPS_ATTEMPT_OUTCOME_FAILED, ETIMEDOUT);
  mock_finish(&m);
}

/* taps_preconnection_set_racing_type(PROTOCOL, FAILOVER): the second protocol
 * starts only when the first failed, however long that takes. */
static void case_racing_type_failover(void) {
  Mock m;
  mock_init(&m);
  mock_add_protocol(&m, "a");
  mock_add_protocol(&m, "b");
  m.props = mock_props();
  m.pre = mock_preconnection(&m, one, 1, m.props, NULL);
  CHECK_CODE(taps_preconnection_set_racing_type(m.pre, TAPS_BRANCH_KIND_PROTOCOL, TAPS_RACING_TYPE_FAILOVER, 0), TAPS_OK);
  mock_initiate(&m);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_advance(&m, 10 * 1000 * 1000);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0");
  mock_fail(&m, 0, EHOSTUNREACH);
  mock_run(&m);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0", "b start 127.0.0.1:443 at 10000000");
  mock_ready(&m, 1, -1, 2);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK(strcmp(taps_connection_get_protocol(m.conn), "b") == 0);
  MOCK_CHECK_ATTEMPT(&m, 0, "a", "127.0.0.1:443", 0, 10000000, TAPS_ATTEMPT_OUTCOME_FAILED, EHOSTUNREACH);
  mock_finish(&m);
}

/* taps_preconnection_set_racing_type(PROTOCOL, IMMEDIATE): every protocol
 * starts at once; the first ready wins and the other is cancelled. */
static void case_racing_type_immediate(void) {
  Mock m;
  mock_init(&m);
  mock_add_protocol(&m, "a");
  mock_add_protocol(&m, "b");
  m.props = mock_props();
  m.pre = mock_preconnection(&m, one, 1, m.props, NULL);
  CHECK_CODE(taps_preconnection_set_racing_type(m.pre, TAPS_BRANCH_KIND_PROTOCOL, TAPS_RACING_TYPE_IMMEDIATE, 0), TAPS_OK);
  mock_initiate(&m);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0", "b start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), -1);
  mock_advance(&m, 3000);
  mock_ready(&m, 1, -1, 2);
  mock_run(&m);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0", "b start 127.0.0.1:443 at 0", "a cancel #0");
  CHECK(strcmp(taps_connection_get_protocol(m.conn), "b") == 0);
  mock_finish(&m);
}

/* taps_preconnection_set_racing_type(ENDPOINT, FAILOVER): the next address
 * only when an attempt failed. Bad arguments change nothing. */
static void case_endpoint_failover(void) {
  static const char *const two[] = {"127.0.0.1", "127.0.0.2"};
  Mock m;
  mock_init(&m);
  mock_add_protocol(&m, "a");
  m.props = mock_props();
  m.pre = mock_preconnection(&m, two, 2, m.props, NULL);
  CHECK_CODE(taps_preconnection_set_racing_type(m.pre, TAPS_BRANCH_KIND_ENDPOINT, TAPS_RACING_TYPE_FAILOVER, 0), TAPS_OK);
  CHECK_CODE(taps_preconnection_set_racing_type(m.pre, 7, TAPS_RACING_TYPE_IMMEDIATE, 0), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_preconnection_set_racing_type(m.pre, TAPS_BRANCH_KIND_ENDPOINT, 9, 0), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_preconnection_set_racing_type(NULL, TAPS_BRANCH_KIND_ENDPOINT, TAPS_RACING_TYPE_IMMEDIATE, 0),
             TAPS_ERROR_NULL_ARGUMENT);
  mock_initiate(&m);
  mock_advance(&m, 10 * 1000 * 1000);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0");
  mock_fail(&m, 0, ECONNREFUSED);
  mock_run(&m);
  MOCK_EXPECT(&m, "a start 127.0.0.1:443 at 0", "a start 127.0.0.2:443 at 10000000");
  mock_ready(&m, 1, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  mock_finish(&m);
}

/* Run the loop (the clock stands still) until attempt `i` ended: a
 * refused loopback connect completes in the kernel, not on our clock. */
static void wait_attempt_ended(Mock *m, size_t i) {
  for (int tries = 0; tries < 2000; tries++) {
    mock_run(m);
    if (taps_connection_attempt_count(m->conn) > i && mock_info(m, i).outcome != TAPS_ATTEMPT_OUTCOME_RUNNING) return;
    test_sleep_ms(1);
  }
  test_print_attempts(m->conn);
  CHECK(!"attempt did not end");
}

/* A mock races built-in TCP (to a closed loopback port). The mock
 * multistreams, which the default properties prefer: it goes first, TCP
 * one attempt delay later; TCP is refused; the mock wins. */
static void case_tcp_and_mock(void) {
  uint16_t port;
  int closed = test_refusing(AF_INET, &port);
  CHECK(closed >= 0);
  Mock m;
  mock_init(&m);
  mock_add_protocol(&m, "m");
  m.pre = mock_preconnection_port(&m, one, 1, port, NULL, NULL);
  mock_initiate(&m);
  char w0[64];
  snprintf(w0, sizeof w0, "m start 127.0.0.1:%u at 0", port);
  MOCK_EXPECT(&m, w0);
  mock_advance(&m, 249999);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 1);
  mock_advance(&m, 1);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 2);
  wait_attempt_ended(&m, 1);
  char a1[64];
  snprintf(a1, sizeof a1, "127.0.0.1:%u", port);
  MOCK_CHECK_ATTEMPT(&m, 1, "tcp", a1, 250000, 250000, TAPS_ATTEMPT_OUTCOME_FAILED, ECONNREFUSED);
  CHECK_EQ(m.establishment_error, 0); /* the mock still runs */
  mock_advance(&m, 50000);
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK(strcmp(taps_connection_get_protocol(m.conn), "m") == 0);
  MOCK_CHECK_ATTEMPT(&m, 0, "m", a1, 0, 300000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  MOCK_EXPECT(&m, w0);
  mock_finish(&m);
  close(closed);
}

/* TCP first (the mock's multistreaming avoided: it is failover); TCP is
 * refused, so the mock starts at once. */
static void case_tcp_then_avoided_mock(void) {
  uint16_t port;
  int closed = test_refusing(AF_INET, &port);
  CHECK(closed >= 0);
  Mock m;
  mock_init(&m);
  mock_add_protocol(&m, "m");
  m.props = taps_transport_properties_new();
  CHECK(m.props != NULL);
  CHECK_CODE(taps_transport_properties_set(m.props, TAPS_SELECTION_PROPERTY_MULTISTREAMING, TAPS_PREFERENCE_AVOID), TAPS_OK);
  m.pre = mock_preconnection_port(&m, one, 1, port, m.props, NULL);
  mock_initiate(&m);
  wait_attempt_ended(&m, 0);
  char a[64], w[64];
  snprintf(a, sizeof a, "127.0.0.1:%u", port);
  snprintf(w, sizeof w, "m start 127.0.0.1:%u at 0", port);
  MOCK_CHECK_ATTEMPT(&m, 0, "tcp", a, 0, 0, TAPS_ATTEMPT_OUTCOME_FAILED, ECONNREFUSED);
  mock_run(&m);
  MOCK_EXPECT(&m, w);
  mock_fail(&m, 1, ECONNREFUSED);
  mock_run(&m);
  CHECK_EQ(m.establishment_error, 1);
  mock_finish(&m);
  close(closed);
}

/* A mock wins while a TCP attempt (to a loopback port that drops SYNs) is
 * still connecting: the TCP socket is closed before `ready` returns. */
static void case_tcp_loser_socket_closed(void) {
  uint16_t port;
  int filler = -1;
  int listener = test_blackhole(AF_INET, 0, &port, &filler);
  if (listener < 0) test_skip("no silent loopback port here");
  Mock m;
  mock_init(&m);
  mock_add_protocol(&m, "m");
  m.pre = mock_preconnection_port(&m, one, 1, port, NULL, NULL);
  mock_initiate(&m);
  int fds_before_tcp = test_count_fds();
  mock_advance(&m, 250000);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 2);
  CHECK_EQ(test_count_fds(), fds_before_tcp + 1);
  mock_run(&m);
  CHECK_EQ(mock_info(&m, 1).outcome, TAPS_ATTEMPT_OUTCOME_RUNNING);
  mock_advance(&m, 1000);
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(test_count_fds(), fds_before_tcp);
  char a[64];
  snprintf(a, sizeof a, "127.0.0.1:%u", port);
  MOCK_CHECK_ATTEMPT(&m, 1, "tcp", a, 250000, 251000, TAPS_ATTEMPT_OUTCOME_CANCELLED, 0);
  mock_finish(&m);
  close(filler);
  close(listener);
}

MOCK_MAIN(MOCK_CASE(prohibited_never_starts), MOCK_CASE(required_is_the_only_one), MOCK_CASE(nothing_left),
          MOCK_CASE(prefer_orders_starts), MOCK_CASE(avoid_is_failover), MOCK_CASE(racing_type_failover),
          MOCK_CASE(racing_type_immediate), MOCK_CASE(endpoint_failover), MOCK_CASE(tcp_and_mock),
          MOCK_CASE(tcp_then_avoided_mock), MOCK_CASE(tcp_loser_socket_closed))
