/* RFC 8305 §5: when the running attempt fails, the next one starts at once.
 * Remotes: the host name "localhost" and the literal ::1 on the same port;
 * 127.0.0.1 listens, ::1 refuses. IPv4 wins without waiting for the 250 ms
 * connection attempt delay, and every ::1 attempt failed with ECONNREFUSED. */
#include "test_util.h"

int main(void) {
  TEST_BEGIN("localhost_v6_refused");
  if (!test_have_ipv6()) test_skip("no IPv6 loopback");

  /* Find a port P where 127.0.0.1:P listens and [::1]:P is bound, not listening. */
  uint16_t port = 0;
  int l = -1, v6 = -1;
  for (int i = 0; i < 50 && v6 < 0; i++) {
    if (l >= 0) close(l);
    l = test_listen(AF_INET, &port);
    CHECK(l >= 0);
    v6 = test_bind_socket(AF_INET6, port, -1, NULL);
  }
  CHECK(v6 >= 0);

  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_remote_endpoint *r[2] = {test_remote_host("localhost", port), test_remote_literal(AF_INET6, port)};
  taps_racing_options opts = taps_racing_options_default();
  CHECK_EQ(opts.connection_attempt_delay_ms, 250);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_preconnection *p = test_race(loop, r, 2, &opts, &rec);
  taps_connection *c = rec.conn;
  test_print_attempts(c);

  CHECK_EQ(rec.ready, 1);
  CHECK_EQ(rec.establishment_error, 0);
  uint64_t elapsed = rec.t_done_us - rec.t_start_us;
  fprintf(stderr, "elapsed %.2f ms\n", elapsed / 1000.0);
  CHECK_RANGE(elapsed, 0, SCALED(100000)); /* well under the 250 ms attempt delay */

  struct sockaddr_storage ra;
  socklen_t ralen = sizeof ra;
  CHECK_CODE(taps_connection_get_remote_address(c, &ra, &ralen), TAPS_OK);
  CHECK_EQ(ra.ss_family, AF_INET);
  CHECK_EQ(test_addr_port(&ra), port);

  size_t n = taps_connection_attempt_count(c);
  CHECK(n >= 2);
  int v6_attempts = 0, won = 0;
  uint64_t v6_end = 0, v4_start = 0;
  for (size_t i = 0; i < n; i++) {
    taps_attempt_info a;
    CHECK_CODE(taps_connection_get_attempt(c, i, &a), TAPS_OK);
    CHECK_EQ(test_addr_port(&a.address), port);
    if (a.address.ss_family == AF_INET6) {
      v6_attempts++;
      CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_FAILED);
      CHECK_EQ(a.os_error, ECONNREFUSED);
      CHECK(a.ended_us > 0);
      if (a.ended_us > v6_end) v6_end = a.ended_us;
    } else {
      CHECK_EQ(a.address.ss_family, AF_INET);
      CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_WON);
      won++;
      v4_start = a.started_us;
    }
  }
  CHECK(v6_attempts >= 1);
  CHECK_EQ(won, 1);
  /* The IPv4 attempt did not wait for the attempt delay. */
  CHECK_RANGE(v4_start, 0, SCALED(100000));

  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  close(v6);
  close(l);
  TEST_PASS("localhost_v6_refused");
  return 0;
}
