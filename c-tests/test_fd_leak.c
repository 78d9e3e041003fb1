/* 200 sequential races on one loop (won and refused, literals and the host
 * name "localhost", one and two remotes), each connection and preconnection
 * freed: the fd table ends where it started, and again after the loop is freed. */
#include "test_util.h"

int main(void) {
  TEST_BEGIN("fd_leak_200_races");
  int have6 = test_have_ipv6();
  uint16_t lport, rport, r6port = 0;
  int l = test_listen(AF_INET, &lport);
  int refusing = test_refusing(AF_INET, &rport);
  CHECK(l >= 0 && refusing >= 0);
  int refusing6 = -1;
  if (have6) {
    refusing6 = test_bind_socket(AF_INET6, lport, -1, &r6port);
    if (refusing6 < 0) refusing6 = test_refusing(AF_INET6, &r6port);
    CHECK(refusing6 >= 0);
  }

  int fds_start = test_count_fds();
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  int fds_loop = test_count_fds();
  int won = 0, failed = 0;
  for (int i = 0; i < 200; i++) {
    taps_remote_endpoint *r[2];
    size_t n = 1;
    int expect_win = 1;
    switch (i % 5) {
      case 0: r[0] = test_remote_literal(AF_INET, lport); break;
      case 1:
        r[0] = test_remote_literal(AF_INET, rport);
        expect_win = 0;
        break;
      case 2:
        r[0] = test_remote_literal(AF_INET, lport);
        if (have6) r[n++] = test_remote_literal(AF_INET6, r6port);
        break;
      case 3: r[0] = test_remote_host("localhost", lport); break;
      default:
        r[0] = test_remote_literal(AF_INET, rport);
        if (have6) r[n++] = test_remote_literal(AF_INET6, r6port);
        expect_win = 0;
        break;
    }
    TestRecord rec;
    memset(&rec, 0, sizeof rec);
    taps_preconnection *p = test_race(loop, r, n, NULL, &rec);
    if (rec.ready + rec.establishment_error != 1 || rec.ready != expect_win) {
      fprintf(stderr, "race %d: ready %d establishment_error %d (expected %s)\n", i, rec.ready,
              rec.establishment_error, expect_win ? "ready" : "establishment_error");
      test_print_attempts(rec.conn);
      exit(1);
    }
    won += rec.ready;
    failed += rec.establishment_error;
    taps_connection_free(rec.conn);
    taps_preconnection_free(p);
    test_drain(l);
    /* A resolver thread may still be finishing a lookup: allow a little
     * slack per race, but no growth. */
    int now = test_count_fds();
    if (now > fds_loop + 2) {
      fprintf(stderr, "race %d: %d fds open, %d expected\n", i, now, fds_loop);
      test_list_fds("leak");
      exit(1);
    }
  }
  fprintf(stderr, "  %d won, %d failed\n", won, failed);
  for (int w = 0; w < 100 && test_count_fds() != fds_loop; w++) test_sleep_ms(10);
  if (test_count_fds() != fds_loop) test_list_fds("after 200 races");
  CHECK_EQ(test_count_fds(), fds_loop);
  CHECK_EQ(won, 120);
  CHECK_EQ(failed, 80);
  taps_event_loop_free(loop);
  if (getenv("TAPS_DEBUG_FDS") && test_count_fds() != fds_start) test_list_fds("right after taps_event_loop_free");
  for (int w = 0; w < 100 && test_count_fds() != fds_start; w++) test_sleep_ms(10);
  if (test_count_fds() != fds_start) test_list_fds("after taps_event_loop_free");
  CHECK_EQ(test_count_fds(), fds_start);
  if (fds_loop != fds_start) fprintf(stderr, "  the loop holds %d fds\n", fds_loop - fds_start);
  close(l);
  close(refusing);
  if (refusing6 >= 0) close(refusing6);
  TEST_PASS("fd_leak_200_races");
  return 0;
}
