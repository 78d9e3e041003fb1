/* taps_connection_close is graceful: `closed` follows exactly once on the loop,
 * whether close is called inside `ready` or after the loop returned; the
 * winner's fd is closed. */
#include "test_util.h"

static void close_case(int in_ready) {
  const char *name = in_ready ? "close_in_ready" : "close_after_run";
  TEST_BEGIN(name);
  uint16_t port;
  int l = test_listen(AF_INET, &port);
  CHECK(l >= 0);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  int fds_before = test_count_fds();
  taps_remote_endpoint *r[1] = {test_remote_literal(AF_INET, port)};
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  rec.close_in_ready = in_ready;
  taps_preconnection *p = test_race(loop, r, 1, NULL, &rec);
  taps_connection *c = rec.conn;
  CHECK_EQ(rec.ready, 1);
  if (!in_ready) {
    CHECK_EQ(rec.closed, 0);
    CHECK(taps_connection_get_fd(c) >= 0);
    taps_connection_close(c);
    CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  }
  CHECK_EQ(rec.closed, 1);
  CHECK(rec.cb_conn == c);
  CHECK_EQ(rec.connection_error, 0);
  CHECK_EQ(rec.establishment_error, 0);
  /* The socket is gone once `closed` was delivered. */
  CHECK_EQ(test_count_fds(), fds_before);
  /* Closing again or running again delivers nothing more. */
  taps_connection_close(c);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  CHECK_EQ(rec.closed, 1);
  CHECK_EQ(rec.ready, 1);
  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);

  /* The peer saw an orderly shutdown (FIN, read returns 0). */
  int s = accept(l, NULL, NULL);
  CHECK(s >= 0);
  char b;
  CHECK_EQ(read(s, &b, 1), 0);
  close(s);
  close(l);
  TEST_PASS(name);
}

int main(void) {
  close_case(1);
  close_case(0);
  return 0;
}
