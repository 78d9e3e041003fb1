/* taps_connection_free is safe inside `ready` and inside `establishment_error`,
 * and freeing a connection whose race is running cancels it: taps_event_loop_run
 * returns, nothing crashes, and no callback follows. */
#include "test_util.h"

static void free_in_ready(void) {
  TEST_BEGIN("free_in_ready");
  uint16_t port;
  int l = test_listen(AF_INET, &port);
  CHECK(l >= 0);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  int fds_before = test_count_fds();
  taps_remote_endpoint *r[1] = {test_remote_literal(AF_INET, port)};
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  rec.free_in_callback = 1;
  taps_preconnection *p = test_race(loop, r, 1, NULL, &rec);
  CHECK(rec.conn == NULL);
  CHECK_EQ(rec.ready, 1);
  CHECK_EQ(rec.establishment_error, 0);
  CHECK_EQ(rec.connection_error, 0);
  CHECK_EQ(rec.closed, 0);
  /* Nothing is left pending: a second run returns at once, silently. */
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(rec.ready + rec.establishment_error + rec.connection_error + rec.closed, 1);
  taps_preconnection_free(p);
  test_drain(l);
  CHECK_EQ(test_count_fds(), fds_before);
  taps_event_loop_free(loop);
  close(l);
  TEST_PASS("free_in_ready");
}

/* Free in ready while another attempt is still running (a blackholed ::1
 * attempt that the win cancels). */
static void free_in_ready_with_loser(void) {
  TEST_BEGIN("free_in_ready_with_loser");
  if (!test_have_ipv6()) {
    fprintf(stderr, "  skipped: no IPv6 loopback\n");
    return;
  }
  uint16_t p6, p4;
  int filler = -1;
  int bh = test_blackhole(AF_INET6, 0, &p6, &filler);
  if (bh < 0) {
    fprintf(stderr, "  skipped: no blackhole\n");
    return;
  }
  int l = test_listen(AF_INET, &p4);
  CHECK(l >= 0);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  int fds_before = test_count_fds();
  taps_remote_endpoint *r[2] = {test_remote_literal(AF_INET6, p6), test_remote_literal(AF_INET, p4)};
  taps_racing_options opts = taps_racing_options_default();
  opts.connection_attempt_delay_ms = 10;
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  rec.free_in_callback = 1;
  taps_preconnection *p = test_race(loop, r, 2, &opts, &rec);
  CHECK(rec.conn == NULL);
  CHECK_EQ(rec.ready, 1);
  CHECK_EQ(rec.establishment_error + rec.connection_error + rec.closed, 0);
  taps_preconnection_free(p);
  CHECK_EQ(test_count_fds(), fds_before);
  taps_event_loop_free(loop);
  close(l);
  close(filler);
  close(bh);
  TEST_PASS("free_in_ready_with_loser");
}

static void free_in_establishment_error(void) {
  TEST_BEGIN("free_in_establishment_error");
  uint16_t port;
  int s = test_refusing(AF_INET, &port);
  CHECK(s >= 0);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  int fds_before = test_count_fds();
  taps_remote_endpoint *r[1] = {test_remote_literal(AF_INET, port)};
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  rec.free_in_callback = 1;
  taps_preconnection *p = test_race(loop, r, 1, NULL, &rec);
  CHECK(rec.conn == NULL);
  CHECK_EQ(rec.establishment_error, 1);
  CHECK_EQ(rec.ready + rec.connection_error + rec.closed, 0);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(rec.establishment_error, 1);
  taps_preconnection_free(p);
  CHECK_EQ(test_count_fds(), fds_before);
  taps_event_loop_free(loop);
  close(s);
  TEST_PASS("free_in_establishment_error");
}

/* taps_connection_free before the loop ran: the race is cancelled, no callback. */
static void free_before_run(void) {
  TEST_BEGIN("free_before_run");
  uint16_t port;
  int l = test_listen(AF_INET, &port);
  CHECK(l >= 0);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  int fds_before = test_count_fds();
  taps_remote_endpoint *r[1] = {test_remote_literal(AF_INET, port)};
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)r, 1, NULL, NULL);
  CHECK(p != NULL);
  taps_remote_endpoint_free(r[0]);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &rec.conn), TAPS_OK);
  taps_connection_free(rec.conn);
  uint64_t t0 = test_now_us();
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK((long long)(test_now_us() - t0) < SCALED(1000000));
  CHECK_EQ(rec.ready + rec.establishment_error + rec.connection_error + rec.closed, 0);
  taps_preconnection_free(p);
  CHECK_EQ(test_count_fds(), fds_before);
  taps_event_loop_free(loop);
  test_drain(l);
  close(l);
  TEST_PASS("free_before_run");
}

/* taps_connection_free of a race stuck on a blackholed address (long before its
 * attempt delay ends): taps_event_loop_run returns at once. */
static void free_running_race(void) {
  TEST_BEGIN("free_running_race");
  uint16_t p6;
  int filler = -1;
  int bh = test_blackhole(AF_INET, 0, &p6, &filler);
  if (bh < 0) {
    fprintf(stderr, "  skipped: no blackhole\n");
    return;
  }
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  int fds_before = test_count_fds();
  taps_remote_endpoint *r[1] = {test_remote_literal(AF_INET, p6)};
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)r, 1, NULL, NULL);
  CHECK(p != NULL);
  taps_remote_endpoint_free(r[0]);
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(&rec), &rec.conn), TAPS_OK);
  taps_connection_free(rec.conn);
  uint64_t t0 = test_now_us();
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK((long long)(test_now_us() - t0) < SCALED(1000000));
  CHECK_EQ(rec.ready + rec.establishment_error + rec.connection_error + rec.closed, 0);
  taps_preconnection_free(p);
  CHECK_EQ(test_count_fds(), fds_before);
  taps_event_loop_free(loop);
  close(filler);
  close(bh);
  TEST_PASS("free_running_race");
}

int main(void) {
  free_in_ready();
  free_in_ready_with_loser();
  free_in_establishment_error();
  free_before_run();
  free_running_race();
  return 0;
}
