/* Every attempt refused: establishment_error exactly once, the race error is
 * TAPS_ERROR_ALL_ATTEMPTS_FAILED, each attempt's errno is ECONNREFUSED. */
#include "test_util.h"

int main(void) {
  TEST_BEGIN("all_refused");
  if (!test_have_ipv6()) test_skip("no IPv6 loopback");
  uint16_t p4, p6;
  int s4 = test_refusing(AF_INET, &p4);
  int s6 = test_refusing(AF_INET6, &p6);
  CHECK(s4 >= 0 && s6 >= 0);

  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_remote_endpoint *r[2] = {test_remote_literal(AF_INET, p4), test_remote_literal(AF_INET6, p6)};
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_preconnection *p = test_race(loop, r, 2, NULL, &rec);
  taps_connection *c = rec.conn;
  test_print_attempts(c);

  CHECK_EQ(rec.ready, 0);
  CHECK_EQ(rec.establishment_error, 1);
  CHECK_EQ(rec.connection_error, 0);
  CHECK_EQ(rec.closed, 0);
  CHECK(rec.cb_conn == c);
  CHECK_CODE(taps_connection_get_error(c), TAPS_ERROR_ALL_ATTEMPTS_FAILED);
  CHECK_EQ(taps_connection_get_fd(c), -1);
  /* Refusals are immediate: no attempt delay was waited. */
  CHECK_RANGE(rec.t_done_us - rec.t_start_us, 0, SCALED(100000));

  size_t n = taps_connection_attempt_count(c);
  CHECK_EQ(n, 2);
  int seen4 = 0, seen6 = 0;
  for (size_t i = 0; i < n; i++) {
    taps_attempt_info a;
    CHECK_CODE(taps_connection_get_attempt(c, i, &a), TAPS_OK);
    CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_FAILED);
    CHECK_EQ(a.os_error, ECONNREFUSED);
    CHECK(a.ended_us >= a.started_us);
    if (a.address.ss_family == AF_INET) {
      seen4++;
      CHECK_EQ(test_addr_port(&a.address), p4);
    } else {
      CHECK_EQ(a.address.ss_family, AF_INET6);
      seen6++;
      CHECK_EQ(test_addr_port(&a.address), p6);
    }
  }
  CHECK_EQ(seen4, 1);
  CHECK_EQ(seen6, 1);
  taps_attempt_info past;
  CHECK_CODE(taps_connection_get_attempt(c, n, &past), TAPS_ERROR_OUT_OF_RANGE);

  /* Running the loop again delivers nothing more. */
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(rec.establishment_error, 1);
  CHECK_EQ(rec.ready, 0);

  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  close(s4);
  close(s6);
  TEST_PASS("all_refused");
  return 0;
}
