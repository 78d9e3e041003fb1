/* Candidates no path can route are left out before the race (HEv3 draft -04
 * §4.1) and listed in the report as TAPS_ATTEMPT_OUTCOME_PRUNED with their
 * reason in os_error. The path here is a local endpoint 127.0.0.1: the IPv6
 * candidate ::1 cannot take it (EAFNOSUPPORT), without any system call.
 * Alone, it fails the race at once with TAPS_ERROR_NO_CANDIDATES; beside a
 * refused IPv4 candidate, the race makes its one attempt and the pruned one
 * follows it in the report. */
#include "test_util.h"

static taps_connection *race_from_loopback_v4(taps_event_loop *loop, taps_remote_endpoint **r, size_t n,
                                              TestRecord *rec, taps_preconnection **out) {
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)r, n, NULL, NULL);
  CHECK(p != NULL);
  for (size_t i = 0; i < n; i++) taps_remote_endpoint_free(r[i]);
  taps_local_endpoint *l = taps_local_endpoint_new();
  CHECK(l != NULL);
  CHECK_CODE(taps_local_endpoint_with_ipv4(l, (struct in_addr){htonl(INADDR_LOOPBACK)}), TAPS_OK);
  CHECK_CODE(taps_preconnection_add_local_endpoint(p, l), TAPS_OK);
  taps_local_endpoint_free(l);
  memset(rec, 0, sizeof *rec);
  rec->t_start_us = test_now_us();
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(rec), &rec->conn), TAPS_OK);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  test_print_attempts(rec->conn);
  *out = p;
  return rec->conn;
}

int main(void) {
  TEST_BEGIN("pruned");
  uint16_t p4, p6;
  int s4 = test_refusing(AF_INET, &p4);
  CHECK(s4 >= 0);
  p6 = p4; /* nothing is sent to ::1 */
  taps_event_loop *loop = taps_event_loop_new();
  CHECK(loop != NULL);

  /* ::1 alone from 127.0.0.1: nothing to race. */
  TestRecord rec;
  taps_preconnection *p;
  taps_remote_endpoint *one[1] = {test_remote_literal(AF_INET6, p6)};
  taps_connection *c = race_from_loopback_v4(loop, one, 1, &rec, &p);
  CHECK_EQ(rec.establishment_error, 1);
  CHECK_EQ(rec.ready, 0);
  CHECK_CODE(taps_connection_get_error(c), TAPS_ERROR_NO_CANDIDATES);
  CHECK(strstr(taps_strerror(TAPS_ERROR_NO_CANDIDATES), "no path has a route") != NULL);
  CHECK_RANGE(rec.t_done_us - rec.t_start_us, 0, SCALED(100000));
  CHECK_EQ(taps_connection_attempt_count(c), 1);
  taps_attempt_info a;
  CHECK_CODE(taps_connection_get_attempt(c, 0, &a), TAPS_OK);
  CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_PRUNED);
  CHECK_EQ(a.os_error, EAFNOSUPPORT);
  CHECK_EQ(a.address.ss_family, AF_INET6);
  CHECK_EQ(test_addr_port(&a.address), p6);
  CHECK_EQ(a.started_us, a.ended_us);
  CHECK(a.interface_name == NULL);
  CHECK(a.protocol != NULL && strcmp(a.protocol, "tcp") == 0);
  taps_connection_free(c);
  taps_preconnection_free(p);

  /* 127.0.0.1 (refused) and ::1: one attempt, then the pruned candidate. */
  taps_remote_endpoint *two[2] = {test_remote_literal(AF_INET6, p6), test_remote_literal(AF_INET, p4)};
  c = race_from_loopback_v4(loop, two, 2, &rec, &p);
  CHECK_EQ(rec.establishment_error, 1);
  CHECK_CODE(taps_connection_get_error(c), TAPS_ERROR_ALL_ATTEMPTS_FAILED);
  CHECK_EQ(taps_connection_attempt_count(c), 2);
  CHECK_CODE(taps_connection_get_attempt(c, 0, &a), TAPS_OK);
  CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_FAILED);
  CHECK_EQ(a.os_error, ECONNREFUSED);
  CHECK_EQ(a.address.ss_family, AF_INET);
  CHECK_CODE(taps_connection_get_attempt(c, 1, &a), TAPS_OK);
  CHECK_EQ(a.outcome, TAPS_ATTEMPT_OUTCOME_PRUNED);
  CHECK_EQ(a.os_error, EAFNOSUPPORT);
  CHECK_EQ(a.address.ss_family, AF_INET6);
  taps_attempt_info past;
  CHECK_CODE(taps_connection_get_attempt(c, 2, &past), TAPS_ERROR_OUT_OF_RANGE);
  taps_connection_free(c);
  taps_preconnection_free(p);

  taps_event_loop_free(loop);
  close(s4);
  TEST_PASS("pruned");
  return 0;
}
