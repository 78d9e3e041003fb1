/* A literal address (127.0.0.1, a listening socket) connects: one attempt,
 * WON, a valid fd, and the remote address is the listener's. */
#include "test_util.h"

int main(void) {
  TEST_BEGIN("literal_connect");
  uint16_t port;
  int l = test_listen(AF_INET, &port);
  CHECK(l >= 0);

  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  taps_remote_endpoint *r[1] = {test_remote_literal(AF_INET, port)};
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  taps_preconnection *p = test_race(loop, r, 1, NULL, &rec);
  taps_connection *c = rec.conn;

  CHECK_EQ(rec.ready, 1);
  CHECK_EQ(rec.establishment_error, 0);
  CHECK_EQ(rec.connection_error, 0);
  CHECK_EQ(rec.closed, 0);
  CHECK(rec.cb_conn == c);
  CHECK_CODE(taps_connection_get_error(c), TAPS_OK);

  int fd = taps_connection_get_fd(c);
  CHECK(fd >= 0);
  CHECK(fcntl(fd, F_GETFD) != -1);
  int type = 0;
  socklen_t tlen = sizeof type;
  CHECK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0);
  CHECK_EQ(type, SOCK_STREAM);

  /* The socket really is connected to the listener: its peer is 127.0.0.1:port. */
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  CHECK(getpeername(fd, (struct sockaddr *)&peer, &plen) == 0);
  CHECK_EQ(peer.ss_family, AF_INET);
  CHECK_EQ(test_addr_port(&peer), port);

  struct sockaddr_storage ra;
  socklen_t ralen = 0;
  CHECK_CODE(taps_connection_get_remote_address(c, &ra, &ralen), TAPS_OK);
  CHECK_EQ(ra.ss_family, AF_INET);
  CHECK_EQ(ralen, sizeof(struct sockaddr_in));
  CHECK_EQ(test_addr_port(&ra), port);
  CHECK_EQ(((struct sockaddr_in *)&ra)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));

  CHECK_EQ(taps_connection_attempt_count(c), 1);
  taps_attempt_info a;
  CHECK_CODE(taps_connection_get_attempt(c, 0, &a), TAPS_OK);
  test_print_attempts(c);
  CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_WON);
  CHECK_EQ(a.os_error, 0);
  CHECK_EQ(a.address.ss_family, AF_INET);
  CHECK_EQ(a.address_len, sizeof(struct sockaddr_in));
  CHECK_EQ(test_addr_port(&a.address), port);
  CHECK(a.protocol != NULL && strcmp(a.protocol, "tcp") == 0);
  CHECK(a.ended_us >= a.started_us);
  CHECK(a.ended_us > 0);
  /* The race took well under a second on loopback. */
  CHECK_RANGE(a.ended_us, 0, SCALED(1000000));
  CHECK_CODE(taps_connection_get_attempt(c, 1, &a), TAPS_ERROR_OUT_OF_RANGE);

  /* Data flows over the winner's fd. */
  int s = accept(l, NULL, NULL);
  CHECK(s >= 0);
  CHECK_EQ(write(fd, "ping", 4), 4);
  char buf[8];
  CHECK_EQ(read(s, buf, sizeof buf), 4);
  CHECK(memcmp(buf, "ping", 4) == 0);
  close(s);

  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
  /* taps_connection_free closed the winner's fd. */
  CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
  close(l);
  TEST_PASS("literal_connect");
  return 0;
}
