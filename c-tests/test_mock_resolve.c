/* Resolution with a mock resolver under the manual clock (RFC 8305 §3):
 * AAAA and A asked at once, the Resolution Delay after an early A, a
 * failing AAAA, late answers joining the race. The answers are loopback
 * addresses (::1 sorts before 127.0.0.1 by RFC 6724 precedence on every
 * machine with IPv6 loopback; the cases that need it skip without). */
#include "mock.h"

static const char *const host[] = {"mock.test"};
static const char *const v6[] = {"::1"};
static const char *const v4[] = {"127.0.0.1"};
static const char *const v4_two[] = {"127.0.0.1", "127.0.0.2"};

/* A loop with the mock protocol and resolver and a race to mock.test:443;
 * both queries are asked when the race is initiated. */
static void start(Mock *m, const taps_racing_options *opts) {
  mock_init(m);
  mock_add_protocol(m, "m");
  mock_set_resolver(m);
  m->props = mock_props();
  m->pre = mock_preconnection(m, host, 1, m->props, opts);
  mock_initiate(m);
  CHECK_EQ(m->n_queries, 2);
  MOCK_EXPECT(m, "resolve AAAA mock.test", "resolve A mock.test");
}

static void need_ipv6(void) {
  if (!test_have_ipv6()) test_skip("no IPv6 loopback: ::1 would sort last");
}

/* A answers first, AAAA 30 ms later, within the Resolution Delay: racing
 * starts with IPv6 at 30 ms, IPv4 one attempt delay later. */
static void case_a_then_aaaa_within_delay(void) {
  need_ipv6();
  Mock m;
  start(&m, NULL);
  mock_answer(&m, AF_INET, v4, 1);
  mock_run(&m);
  mock_advance(&m, 29999);
  CHECK_EQ(m.n_attempts, 0); /* waiting for AAAA */
  mock_advance(&m, 1);
  mock_answer(&m, AF_INET6, v6, 1);
  mock_run(&m);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start [::1]:443 at 30000");
  mock_advance_to(&m, 279999);
  CHECK_EQ(m.n_attempts, 1);
  mock_advance(&m, 1);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start [::1]:443 at 30000",
              "m start 127.0.0.1:443 at 280000");
  mock_ready(&m, 1, -1, 4);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  MOCK_CHECK_ATTEMPT(&m, 0, "m", "[::1]:443", 30000, 280000, TAPS_ATTEMPT_OUTCOME_CANCELLED, 0);
  MOCK_CHECK_ATTEMPT(&m, 1, "m", "127.0.0.1:443", 280000, 280000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  mock_finish(&m);
}

/* AAAA answers first: racing starts at once, without waiting for A. */
static void case_aaaa_first(void) {
  need_ipv6();
  Mock m;
  start(&m, NULL);
  mock_advance(&m, 7000);
  mock_answer(&m, AF_INET6, v6, 1);
  mock_run(&m);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start [::1]:443 at 7000");
  /* A answers later and joins: its address is next, one attempt delay
   * after the first start. */
  mock_advance(&m, 10000);
  mock_answer(&m, AF_INET, v4, 1);
  mock_run(&m);
  CHECK_EQ(m.n_attempts, 1);
  mock_advance_to(&m, 257000);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start [::1]:443 at 7000",
              "m start 127.0.0.1:443 at 257000");
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  mock_finish(&m);
}

/* A answers first and AAAA not within the Resolution Delay: IPv4 starts at
 * exactly 50 ms (not 1 µs earlier). The race is won before AAAA answers:
 * the AAAA query is cancelled. */
static void case_aaaa_after_delay(void) {
  Mock m;
  start(&m, NULL);
  mock_answer(&m, AF_INET, v4, 1);
  mock_run(&m);
  CHECK_EQ(taps_event_loop_get_timeout_ms(m.loop), 50);
  mock_advance(&m, 49999);
  CHECK_EQ(m.n_attempts, 0);
  mock_advance(&m, 1);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start 127.0.0.1:443 at 50000");
  mock_advance(&m, 10000);
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(m.done_at_us, 60000);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start 127.0.0.1:443 at 50000",
              "resolver cancel AAAA");
  mock_finish(&m);
}

/* A first, then AAAA fails within the Resolution Delay: IPv4 starts at
 * once, at the failure. */
static void case_aaaa_fails(void) {
  Mock m;
  start(&m, NULL);
  mock_answer(&m, AF_INET, v4, 1);
  mock_run(&m);
  mock_advance(&m, 20000);
  CHECK_EQ(m.n_attempts, 0);
  mock_fail_query(&m, AF_INET6, 2 /* EAI_AGAIN-like code */);
  mock_run(&m);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start 127.0.0.1:443 at 20000");
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  mock_finish(&m);
}

/* AAAA fails before A answers: racing starts at once when A answers (no
 * Resolution Delay is left to wait for). */
static void case_aaaa_fails_before_a(void) {
  Mock m;
  start(&m, NULL);
  mock_advance(&m, 5000);
  mock_fail_query(&m, AF_INET6, 2);
  mock_run(&m);
  CHECK_EQ(m.n_attempts, 0);
  CHECK_EQ(m.establishment_error, 0); /* A is still pending */
  mock_advance(&m, 15000);
  mock_answer(&m, AF_INET, v4, 1);
  mock_run(&m);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start 127.0.0.1:443 at 20000");
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  mock_finish(&m);
}

/* An AAAA answer after racing started with IPv4 joins the running race:
 * its address is the next attempt, one attempt delay after the previous
 * start, before the remaining IPv4 address (RFC 8305 §3, §4). */
static void case_late_answer_joins(void) {
  need_ipv6();
  Mock m;
  start(&m, NULL);
  mock_answer(&m, AF_INET, v4_two, 2);
  mock_run(&m);
  mock_advance(&m, 50000);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start 127.0.0.1:443 at 50000");
  mock_advance(&m, 50000);
  mock_answer(&m, AF_INET6, v6, 1);
  mock_run(&m);
  CHECK_EQ(m.n_attempts, 1);
  mock_advance_to(&m, 299999);
  CHECK_EQ(m.n_attempts, 1);
  mock_advance(&m, 1);
  mock_advance_to(&m, 550000);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start 127.0.0.1:443 at 50000",
              "m start [::1]:443 at 300000", "m start 127.0.0.2:443 at 550000");
  mock_ready(&m, 1, -1, 6);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK(taps_connection_get_protocol_connection(m.conn) == (void *)6);
  MOCK_CHECK_ATTEMPT(&m, 1, "m", "[::1]:443", 300000, 550000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  mock_finish(&m);
}

/* When every attempt has failed but a query is still pending, the race
 * waits for it; its late answer starts an attempt at once. */
static void case_late_answer_when_idle(void) {
  need_ipv6();
  Mock m;
  start(&m, NULL);
  mock_answer(&m, AF_INET, v4, 1);
  mock_run(&m);
  mock_advance(&m, 50000);
  mock_advance(&m, 10000);
  mock_fail(&m, 0, ECONNREFUSED);
  mock_run(&m);
  CHECK_EQ(m.establishment_error, 0);
  mock_advance(&m, 40000);
  CHECK_EQ(m.n_attempts, 1);
  mock_answer(&m, AF_INET6, v6, 1);
  mock_run(&m);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start 127.0.0.1:443 at 50000",
              "m start [::1]:443 at 100000");
  mock_fail(&m, 1, ECONNREFUSED);
  mock_run(&m);
  CHECK_EQ(m.establishment_error, 1);
  CHECK_CODE(taps_connection_get_error(m.conn), TAPS_ERROR_ALL_ATTEMPTS_FAILED);
  mock_finish(&m);
}

/* Both queries fail: establishment_error with TAPS_ERROR_RESOLUTION_FAILED
 * and the last query's code; no attempt ever started. */
static void case_resolution_fails(void) {
  Mock m;
  start(&m, NULL);
  mock_fail_query(&m, AF_INET, 3);
  mock_run(&m);
  CHECK_EQ(m.establishment_error, 0);
  mock_advance(&m, 1000);
  mock_fail_query(&m, AF_INET6, 4);
  mock_run(&m);
  CHECK_EQ(m.establishment_error, 1);
  CHECK_EQ(m.done_at_us, 1000);
  CHECK_CODE(taps_connection_get_error(m.conn), TAPS_ERROR_RESOLUTION_FAILED);
  CHECK_EQ(taps_connection_get_os_error(m.conn), 4);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 0);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test");
  mock_finish(&m);
}

/* Empty answers count as no address: the race fails when both are empty. */
static void case_empty_answers(void) {
  Mock m;
  start(&m, NULL);
  mock_answer(&m, AF_INET6, NULL, 0);
  mock_answer(&m, AF_INET, NULL, 0);
  mock_run(&m);
  CHECK_EQ(m.establishment_error, 1);
  CHECK_CODE(taps_connection_get_error(m.conn), TAPS_ERROR_RESOLUTION_FAILED);
  CHECK_EQ(taps_connection_attempt_count(m.conn), 0);
  mock_finish(&m);
}

/* Freeing the connection while resolving cancels both queries. */
static void case_free_cancels_queries(void) {
  Mock m;
  start(&m, NULL);
  taps_connection_free(m.conn);
  m.conn = NULL;
  mock_run(&m);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "resolver cancel AAAA", "resolver cancel A");
  CHECK_EQ(m.ready + m.establishment_error, 0);
  mock_finish(&m);
}

MOCK_MAIN(MOCK_CASE(a_then_aaaa_within_delay), MOCK_CASE(aaaa_first), MOCK_CASE(aaaa_after_delay),
          MOCK_CASE(aaaa_fails), MOCK_CASE(aaaa_fails_before_a), MOCK_CASE(late_answer_joins),
          MOCK_CASE(late_answer_when_idle), MOCK_CASE(resolution_fails), MOCK_CASE(empty_answers),
          MOCK_CASE(free_cancels_queries))
