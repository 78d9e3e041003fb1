/* NULL and invalid arguments give error codes, never crashes; every _free
 * accepts NULL; taps_strerror knows every code. */
#include "test_util.h"

static int never_called(taps_connection *c, void *ud) {
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
  TEST_BEGIN("taps_racing_options_default");
  taps_racing_options o = taps_racing_options_default();
  CHECK_EQ(o.connection_attempt_delay_ms, 250);
  CHECK_EQ(o.resolution_delay_ms, 50);
  CHECK_EQ(o.first_address_family_count, 1);
  CHECK_EQ(o.attempt_timeout_ms, 0);
  CHECK_EQ(o.total_timeout_ms, 0);
  CHECK_EQ(o.race_count, 1);
  TEST_PASS("taps_racing_options_default");
}

static void test_null_arguments(void) {
  TEST_BEGIN("null_arguments");
  struct in_addr a4;
  a4.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  taps_attempt_info info;
  taps_connection *out = NULL;
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = never_called;
  cb.establishment_error = never_called;

  /* Every _free and taps_connection_close accept NULL. */
  taps_event_loop_free(NULL);
  taps_remote_endpoint_free(NULL);
  taps_transport_properties_free(NULL);
  taps_preconnection_free(NULL);
  taps_connection_free(NULL);
  taps_connection_close(NULL);

  CHECK_CODE(taps_event_loop_run(NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_remote_endpoint_with_hostname(NULL, "localhost"), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_remote_endpoint_with_port(NULL, 443), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_remote_endpoint_with_service(NULL, "https"), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_remote_endpoint_with_ipv4(NULL, a4), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_remote_endpoint_with_ipv6(NULL, in6addr_loopback), TAPS_ERROR_NULL_ARGUMENT);

  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  CHECK(ep != NULL);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_remote_endpoint_with_service(ep, NULL), TAPS_ERROR_NULL_ARGUMENT);
  taps_remote_endpoint_free(ep);

  CHECK(taps_preconnection_new(NULL, NULL, 0, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);
  CHECK(taps_preconnection_new(loop, NULL, 1, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  const taps_remote_endpoint *null_elem[1] = {NULL};
  CHECK(taps_preconnection_new(loop, null_elem, 1, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  taps_remote_endpoint *good = test_remote_literal(AF_INET, 9);
  CHECK(taps_preconnection_new(NULL, (const taps_remote_endpoint *const *)&good, 1, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_NULL_ARGUMENT);
  taps_remote_endpoint_free(good);

  CHECK_CODE(taps_preconnection_initiate_with_racing(NULL, cb, &out), TAPS_ERROR_NULL_ARGUMENT);
  CHECK(out == NULL);

  CHECK_EQ(taps_connection_get_fd(NULL), -1);
  CHECK_CODE(taps_connection_get_remote_address(NULL, &ss, &sl), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_connection_get_error(NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_EQ(taps_connection_attempt_count(NULL), 0);
  CHECK_CODE(taps_connection_get_attempt(NULL, 0, &info), TAPS_ERROR_NULL_ARGUMENT);
  taps_event_loop_free(loop);
  TEST_PASS("null_arguments");
}

static void test_invalid_endpoints(void) {
  TEST_BEGIN("invalid_endpoints");
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  CHECK(ep != NULL);
  CHECK_CODE(taps_remote_endpoint_with_port(ep, 0), TAPS_ERROR_INVALID_PORT);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, ""), TAPS_ERROR_INVALID_HOSTNAME);
  CHECK_CODE(taps_remote_endpoint_with_service(ep, "https"), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_service(ep, "443"), TAPS_OK);
  int r = taps_remote_endpoint_with_service(ep, "");
  CHECK(r < 0);
  r = taps_remote_endpoint_with_service(ep, "no-such-service-taps");
  CHECK(r < 0);
  r = taps_remote_endpoint_with_service(ep, "0");
  CHECK(r < 0);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, "example.test"), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, "127.0.0.1"), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, "::1"), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_port(ep, 65535), TAPS_OK);
  taps_remote_endpoint_free(ep);
  TEST_PASS("invalid_endpoints");
}

static void test_invalid_preconnections(void) {
  TEST_BEGIN("invalid_preconnections");
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);

  /* No remotes at all. */
  taps_remote_endpoint *good = test_remote_literal(AF_INET, 9);
  CHECK(taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&good, 0, NULL, NULL) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_ARGUMENT);

  /* A remote with an address but no port. */
  taps_remote_endpoint *noport = taps_remote_endpoint_new();
  CHECK(noport != NULL);
  CHECK_CODE(taps_remote_endpoint_with_hostname(noport, "localhost"), TAPS_OK);
  CHECK(taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&noport, 1, NULL, NULL) == NULL);
  fprintf(stderr, "  no port: %d %s\n", taps_last_error(), taps_strerror(taps_last_error()));
  CHECK(taps_last_error() < 0);
  /* ... also when it is the second remote. */
  const taps_remote_endpoint *two[2] = {good, noport};
  CHECK(taps_preconnection_new(loop, two, 2, NULL, NULL) == NULL);
  CHECK(taps_last_error() < 0);

  /* A remote with a port but no address. */
  taps_remote_endpoint *noaddr = taps_remote_endpoint_new();
  CHECK(noaddr != NULL);
  CHECK_CODE(taps_remote_endpoint_with_port(noaddr, 443), TAPS_OK);
  CHECK(taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&noaddr, 1, NULL, NULL) == NULL);
  fprintf(stderr, "  no address: %d %s\n", taps_last_error(), taps_strerror(taps_last_error()));
  CHECK(taps_last_error() < 0);

  /* taps_racing_options out of range (RFC 8305 bounds) -> INVALID_OPTION; the
   * attempt delay is clamped to [10, 2000] instead. */
  const taps_remote_endpoint *one[1] = {good};
  taps_racing_options o = taps_racing_options_default();
  o.resolution_delay_ms = 5000;
  CHECK(taps_preconnection_new(loop, one, 1, NULL, &o) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_OPTION);
  o = taps_racing_options_default();
  o.first_address_family_count = 0;
  CHECK(taps_preconnection_new(loop, one, 1, NULL, &o) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_OPTION);
  o = taps_racing_options_default();
  o.race_count = 0;
  CHECK(taps_preconnection_new(loop, one, 1, NULL, &o) == NULL);
  CHECK_CODE(taps_last_error(), TAPS_ERROR_INVALID_OPTION);
  o = taps_racing_options_default();
  o.connection_attempt_delay_ms = 1;
  taps_preconnection *clamped = taps_preconnection_new(loop, one, 1, NULL, &o);
  CHECK(clamped != NULL);
  taps_preconnection_free(clamped);
  o.connection_attempt_delay_ms = 100000;
  clamped = taps_preconnection_new(loop, one, 1, NULL, &o);
  CHECK(clamped != NULL);
  taps_preconnection_free(clamped);

  /* Defaults (NULL props and opts) are fine; properties can be passed. */
  taps_transport_properties *props = taps_transport_properties_new();
  CHECK(props != NULL);
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&good, 1, props, NULL);
  CHECK(p != NULL);
  taps_transport_properties_free(props);

  /* initiate with a NULL out pointer. */
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = never_called;
  cb.establishment_error = never_called;
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, cb, NULL), TAPS_ERROR_NULL_ARGUMENT);
  taps_preconnection_free(p);

  taps_remote_endpoint_free(good);
  taps_remote_endpoint_free(noport);
  taps_remote_endpoint_free(noaddr);
  taps_event_loop_free(loop);
  TEST_PASS("invalid_preconnections");
}

static void test_connection_arguments(void) {
  TEST_BEGIN("connection_arguments");
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

  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  taps_attempt_info info;
  CHECK_CODE(taps_connection_get_remote_address(c, NULL, &sl), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_connection_get_remote_address(c, &ss, NULL), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_connection_get_attempt(c, 0, NULL), TAPS_ERROR_NULL_ARGUMENT);
  size_t n = taps_connection_attempt_count(c);
  CHECK_EQ(n, 1);
  CHECK_CODE(taps_connection_get_attempt(c, n, &info), TAPS_ERROR_OUT_OF_RANGE);
  CHECK_CODE(taps_connection_get_attempt(c, (size_t)-1, &info), TAPS_ERROR_OUT_OF_RANGE);
  CHECK_CODE(taps_connection_get_attempt(c, 0, &info), TAPS_OK);

  taps_connection_free(c);
  taps_preconnection_free(p);
  taps_event_loop_free(loop);
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
