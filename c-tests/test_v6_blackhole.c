/* RFC 8305 §5 with a silent IPv6 path: [::1]:P drops SYNs (listen backlog 0,
 * accept queue filled), 127.0.0.1:Q listens. With a 100 ms attempt delay the
 * IPv4 attempt starts at ~100 ms and wins, the ::1 attempt is CANCELLED, and
 * the loser's socket is already closed when `ready` runs (fd table). */
#include "test_util.h"

int main(void) {
  TEST_BEGIN("v6_blackhole");
  if (!test_have_ipv6()) test_skip("no IPv6 loopback");
  uint16_t p6, p4;
  int filler = -1;
  int bh = test_blackhole(AF_INET6, 0, &p6, &filler);
  if (bh < 0) test_skip("cannot blackhole [::1] with a full accept queue on this kernel");
  int l4 = test_listen(AF_INET, &p4);
  CHECK(l4 >= 0);

  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_remote_endpoint *r[2] = {test_remote_literal(AF_INET6, p6), test_remote_literal(AF_INET, p4)};
  taps_racing_options opts = taps_racing_options_default();
  opts.connection_attempt_delay_ms = 100;
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)r, 2, NULL, &opts);
  CHECK(p != NULL);
  taps_remote_endpoint_free(r[0]);
  taps_remote_endpoint_free(r[1]);

  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  int fds_before = test_count_fds();
  rec.t_start_us = test_now_us();
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &rec.conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  taps_connection *c = rec.conn;
  test_print_attempts(c);

  CHECK_EQ(rec.ready, 1);
  CHECK_EQ(rec.establishment_error, 0);
  uint64_t elapsed = rec.t_done_us - rec.t_start_us;
  fprintf(stderr, "elapsed %.2f ms, fds before %d, in ready %d\n", elapsed / 1000.0, fds_before,
          rec.fds_in_ready);
  CHECK_RANGE(elapsed, 90000, SCALED(250000));

  struct sockaddr_storage ra;
  socklen_t ralen = sizeof ra;
  CHECK_CODE(taps_connection_get_remote_address(c, &ra, &ralen), TAPS_OK);
  CHECK_EQ(ra.ss_family, AF_INET);
  CHECK_EQ(test_addr_port(&ra), p4);

  CHECK_EQ(taps_connection_attempt_count(c), 2);
  int seen6 = 0, seen4 = 0;
  for (size_t i = 0; i < 2; i++) {
    taps_attempt_info a;
    CHECK_CODE(taps_connection_get_attempt(c, i, &a), TAPS_OK);
    if (a.address.ss_family == AF_INET6) {
      seen6++;
      CHECK_EQ(test_addr_port(&a.address), p6);
      CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_CANCELLED);
      CHECK_RANGE(a.started_us, 0, SCALED(20000));
      CHECK(a.ended_us >= 90000);
    } else {
      seen4++;
      CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_WON);
      CHECK_EQ(a.os_error, 0);
      CHECK_RANGE(a.started_us, 90000, SCALED(200000));
    }
  }
  CHECK_EQ(seen6, 1);
  CHECK_EQ(seen4, 1);

  /* Inside `ready`: only the winner's socket is open beyond what was open before. */
  if (rec.fds_in_ready != fds_before + 1) test_list_fds("after the race");
  CHECK_EQ(rec.fds_in_ready, fds_before + 1);
  int fds_after = test_count_fds();
  CHECK_EQ(fds_after, fds_before + 1);
  taps_connection_free(c);
  CHECK_EQ(test_count_fds(), fds_before);

  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  close(filler);
  close(bh);
  close(l4);
  TEST_PASS("v6_blackhole");
  return 0;
}
