/* NULL and invalid arguments give error codes, never crashes; every _free
 * accepts NULL; taps_strerror knows every code. */
#include "test_util.h"

static int never_called(Connection *c, void *ud) {
  (void)c;
  (void)ud;
  fprintf(stderr, "unexpected callback\n");
  exit(1);
}

static void test_strerror(void) {
  TEST_BEGIN("strerror");
  static const int codes[] = {
      TAPS_OK,
      TAPS_ERROR_NULL_ARGUMENT,
      TAPS_ERROR_INVALID_ARGUMENT,
      TAPS_ERROR_INVALID_HOSTNAME,
      TAPS_ERROR_INVALID_PORT,
      TAPS_ERROR_INVALID_OPTION,
      TAPS_ERROR_INVALID_STATE,
      TAPS_ERROR_OUT_OF_RANGE,
      TAPS_ERROR_RESOLUTION_FAILED,
      TAPS_ERROR_ALL_ATTEMPTS_FAILED,
      TAPS_ERROR_TIMED_OUT,
      TAPS_ERROR_CANCELLED,
      TAPS_ERROR_IO,
      TAPS_ERROR_PANIC,
  };
  const size_t n = sizeof codes / sizeof codes[0];
  const char *unknown = taps_strerror(-9999);
  CHECK(unknown != NULL);
  CHECK(strcmp(unknown, "unknown error") == 0);
  CHECK(strcmp(taps_strerror(12345), "unknown error") == 0);
  for (size_t i = 0; i < n; i++) {
    const char *s = taps_strerror(codes[i]);
    CHECK(s != NULL);
    CHECK(strlen(s) > 0);
    CHECK(strcmp(s, "unknown error") != 0);
    /* A static string: the same pointer every time. */
    CHECK(taps_strerror(codes[i]) == s);
    for (size_t j = 0; j < i; j++) CHECK(strcmp(s, taps_strerror(codes[j])) != 0);
    fprintf(stderr, "  %3d: %s\n", codes[i], s);
  }
  TEST_PASS("strerror");
}

static void test_defaults(void) {
  TEST_BEGIN("racing_options_default");
  RacingOptions o = racing_options_default();
  CHECK_EQ(o.connection_attempt_delay_ms, 250);
  CHECK_EQ(o.resolution_delay_ms, 50);
  CHECK_EQ(o.first_address_family_count, 1);
  CHECK_EQ(o.attempt_timeout_ms, 0);
  CHECK_EQ(o.total_timeout_ms, 0);
  CHECK_EQ(o.race_count, 1);
  TEST_PASS("racing_options_default");
}

static void test_null_arguments(void) {
  TEST_BEGIN("null_arguments");
  struct in_addr a4;
  a4.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  AttemptInfo info;
  Connection *out = NULL;
  ConnectionCallbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = never_called;
  cb.establishment_error = never_called;

  /* Every _free and connection_close accept NULL. */
  event_loop_free(NULL);
  remote_endpoint_free(NULL);
  transport_properties_free(NULL);
  preconnection_free(NULL);
  connection_free(NULL);
  connection_close(NULL);

  CHECK_CODE(event_loop_run(NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(remote_endpoint_with_hostname(NULL, "localhost"), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(remote_endpoint_with_port(NULL, 443), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(remote_endpoint_with_service(NULL, "https"), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(remote_endpoint_with_ipv4(NULL, a4), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(remote_endpoint_with_ipv6(NULL, in6addr_loopback), TAPS_ERROR_NULL_ARGUMENT);

  RemoteEndpoint *ep = remote_endpoint_new();
  CHECK(ep != NULL);
  CHECK_CODE(remote_endpoint_with_hostname(ep, NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(remote_endpoint_with_service(ep, NULL), TAPS_ERROR_NULL_ARGUMENT);
  remote_endpoint_free(ep);

  CHECK(preconnection_new(NULL, NULL, 0, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  EventLoop *loop = event_loop_new();
  CHECK(loop != NULL);
  CHECK(preconnection_new(loop, NULL, 1, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  const RemoteEndpoint *null_elem[1] = {NULL};
  CHECK(preconnection_new(loop, null_elem, 1, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  RemoteEndpoint *good = test_remote_literal(AF_INET, 9);
  CHECK(preconnection_new(NULL, (const RemoteEndpoint *const *)&good, 1, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  remote_endpoint_free(good);

  CHECK_CODE(preconnection_initiate_with_racing(NULL, cb, &out), TAPS_ERROR_NULL_ARGUMENT);
  CHECK(out == NULL);

  CHECK_EQ(connection_get_fd(NULL), -1);
  CHECK_CODE(connection_get_remote_address(NULL, &ss, &sl), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(connection_get_error(NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_EQ(connection_attempt_count(NULL), 0);
  CHECK_CODE(connection_get_attempt(NULL, 0, &info), TAPS_ERROR_NULL_ARGUMENT);
  event_loop_free(loop);
  TEST_PASS("null_arguments");
}

static void test_invalid_endpoints(void) {
  TEST_BEGIN("invalid_endpoints");
  RemoteEndpoint *ep = remote_endpoint_new();
  CHECK(ep != NULL);
  CHECK_CODE(remote_endpoint_with_port(ep, 0), TAPS_ERROR_INVALID_PORT);
  CHECK_CODE(remote_endpoint_with_hostname(ep, ""), TAPS_ERROR_INVALID_HOSTNAME);
  CHECK_CODE(remote_endpoint_with_service(ep, "https"), TAPS_OK);
  CHECK_CODE(remote_endpoint_with_service(ep, "443"), TAPS_OK);
  int r = remote_endpoint_with_service(ep, "");
  CHECK(r < 0);
  r = remote_endpoint_with_service(ep, "no-such-service-taps");
  CHECK(r < 0);
  r = remote_endpoint_with_service(ep, "0");
  CHECK(r < 0);
  CHECK_CODE(remote_endpoint_with_hostname(ep, "example.test"), TAPS_OK);
  CHECK_CODE(remote_endpoint_with_hostname(ep, "127.0.0.1"), TAPS_OK);
  CHECK_CODE(remote_endpoint_with_hostname(ep, "::1"), TAPS_OK);
  CHECK_CODE(remote_endpoint_with_port(ep, 65535), TAPS_OK);
  remote_endpoint_free(ep);
  TEST_PASS("invalid_endpoints");
}

static void test_invalid_preconnections(void) {
  TEST_BEGIN("invalid_preconnections");
  EventLoop *loop = event_loop_new();
  CHECK(loop != NULL);

  /* No remotes at all. */
  RemoteEndpoint *good = test_remote_literal(AF_INET, 9);
  CHECK(preconnection_new(loop, (const RemoteEndpoint *const *)&good, 0, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_ARGUMENT);

  /* A remote with an address but no port. */
  RemoteEndpoint *noport = remote_endpoint_new();
  CHECK(noport != NULL);
  CHECK_CODE(remote_endpoint_with_hostname(noport, "localhost"), TAPS_OK);
  CHECK(preconnection_new(loop, (const RemoteEndpoint *const *)&noport, 1, NULL, NULL) == NULL);
  fprintf(stderr, "  no port: %d %s\n", taps_last_error(), taps_strerror(taps_last_error()));
  CHECK(taps_last_error() < 0);
  /* ... also when it is the second remote. */
  const RemoteEndpoint *two[2] = {good, noport};
  CHECK(preconnection_new(loop, two, 2, NULL, NULL) == NULL);
  CHECK(taps_last_error() < 0);

  /* A remote with a port but no address. */
  RemoteEndpoint *noaddr = remote_endpoint_new();
  CHECK(noaddr != NULL);
  CHECK_CODE(remote_endpoint_with_port(noaddr, 443), TAPS_OK);
  CHECK(preconnection_new(loop, (const RemoteEndpoint *const *)&noaddr, 1, NULL, NULL) == NULL);
  fprintf(stderr, "  no address: %d %s\n", taps_last_error(), taps_strerror(taps_last_error()));
  CHECK(taps_last_error() < 0);

  /* RacingOptions out of range (RFC 8305 bounds) -> INVALID_OPTION; the
   * attempt delay is clamped to [10, 2000] instead. */
  const RemoteEndpoint *one[1] = {good};
  RacingOptions o = racing_options_default();
  o.resolution_delay_ms = 5000;
  CHECK(preconnection_new(loop, one, 1, NULL, &o) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_OPTION);
  o = racing_options_default();
  o.first_address_family_count = 0;
  CHECK(preconnection_new(loop, one, 1, NULL, &o) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_OPTION);
  o = racing_options_default();
  o.race_count = 0;
  CHECK(preconnection_new(loop, one, 1, NULL, &o) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_OPTION);
  o = racing_options_default();
  o.connection_attempt_delay_ms = 1;
  Preconnection *clamped = preconnection_new(loop, one, 1, NULL, &o);
  CHECK(clamped != NULL);
  preconnection_free(clamped);
  o.connection_attempt_delay_ms = 100000;
  clamped = preconnection_new(loop, one, 1, NULL, &o);
  CHECK(clamped != NULL);
  preconnection_free(clamped);

  /* Defaults (NULL props and opts) are fine; properties can be passed. */
  TransportProperties *props = transport_properties_new();
  CHECK(props != NULL);
  Preconnection *p = preconnection_new(loop, (const RemoteEndpoint *const *)&good, 1, props, NULL);
  CHECK(p != NULL);
  transport_properties_free(props);

  /* initiate with a NULL out pointer. */
  ConnectionCallbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = never_called;
  cb.establishment_error = never_called;
  CHECK_CODE(preconnection_initiate_with_racing(p, cb, NULL), TAPS_ERROR_NULL_ARGUMENT);
  preconnection_free(p);

  remote_endpoint_free(good);
  remote_endpoint_free(noport);
  remote_endpoint_free(noaddr);
  event_loop_free(loop);
  TEST_PASS("invalid_preconnections");
}

static void test_connection_arguments(void) {
  TEST_BEGIN("connection_arguments");
  uint16_t port;
  int l = test_listen(AF_INET, &port);
  CHECK(l >= 0);
  EventLoop *loop = event_loop_new();
  CHECK(loop != NULL);
  RemoteEndpoint *r[1] = {test_remote_literal(AF_INET, port)};
  TestRecord rec;
  memset(&rec, 0, sizeof rec);
  Preconnection *p = test_race(loop, r, 1, NULL, &rec);
  Connection *c = rec.conn;
  CHECK_EQ(rec.ready, 1);

  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  AttemptInfo info;
  CHECK_CODE(connection_get_remote_address(c, NULL, &sl), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(connection_get_remote_address(c, &ss, NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(connection_get_attempt(c, 0, NULL), TAPS_ERROR_NULL_ARGUMENT);
  size_t n = connection_attempt_count(c);
  CHECK_EQ(n, 1);
  CHECK_CODE(connection_get_attempt(c, n, &info), TAPS_ERROR_OUT_OF_RANGE);
  CHECK_CODE(connection_get_attempt(c, (size_t)-1, &info), TAPS_ERROR_OUT_OF_RANGE);
  CHECK_CODE(connection_get_attempt(c, 0, &info), TAPS_OK);

  connection_free(c);
  preconnection_free(p);
  event_loop_free(loop);
  close(l);
  TEST_PASS("connection_arguments");
}

int main(void) {
  test_strerror();
  test_defaults();
  test_null_arguments();
  test_invalid_endpoints();
  test_invalid_preconnections();
  test_connection_arguments();
  return 0;
}
