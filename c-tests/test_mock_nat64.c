/* NAT64 rules with a mock resolver under the manual clock (HEv3 -04 §8):
 * AAAA answers inside the loop's NAT64 prefix (a DNS64's) sort and
 * interleave as IPv4, so native IPv6 alternates with translated IPv4;
 * without a prefix they race in the sorter's order as plain IPv6; the
 * prefix and its source are read back through the C API. The addresses
 * are documentation ones: the mock protocol never sends anything. */
#include "mock.h"

static const char *const host[] = {"mock.test"};
/* Two DNS64 addresses (10.64.0.2, 10.64.0.3 under 2001:db8:64::/96) first,
 * as a resolver may give them, then two native IPv6 addresses. */
static const char *const answer[] = {"2001:db8:64::a40:2", "2001:db8:64::a40:3", "2001:db8:46:9::1",
                                     "2001:db8:46:9::2"};

/* The race to mock.test:443 with `prefix` set on the loop (NULL: none);
 * AAAA answers at 0, A has no data (an IPv6-only name). */
static void start(Mock *m, const char *prefix) {
  mock_init(m);
  if (prefix) CHECK_CODE(taps_event_loop_set_pref64(m->loop, prefix), TAPS_OK);
  mock_add_protocol(m, "m");
  mock_set_resolver(m);
  m->props = mock_props();
  m->pre = mock_preconnection(m, host, 1, m->props, NULL);
  mock_initiate(m);
  mock_answer(m, AF_INET6, answer, 4);
  mock_fail_query(m, AF_INET, 2);
  mock_run(m);
}

/* With the prefix: native, DNS64, native, DNS64, one attempt delay apart. */
static void case_dns64_answers_interleave_as_ipv4(void) {
  Mock m;
  start(&m, "2001:db8:64::/96");
  for (int i = 0; i < 3; i++) mock_advance(&m, 250000);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start [2001:db8:46:9::1]:443 at 0",
              "m start [2001:db8:64::a40:2]:443 at 250000", "m start [2001:db8:46:9::2]:443 at 500000",
              "m start [2001:db8:64::a40:3]:443 at 750000");
  mock_ready(&m, 3, -1, 4);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  char buf[64];
  CHECK_EQ(taps_event_loop_get_pref64(m.loop, buf, sizeof buf), 16);
  CHECK(strcmp(buf, "2001:db8:64::/96") == 0);
  CHECK_EQ(taps_event_loop_get_pref64_source(m.loop), TAPS_PREF64_SOURCE_CALLER);
  mock_finish(&m);
}

/* Without a prefix the same answer is four IPv6 addresses: no
 * interleaving, the DNS64 ones keep their place (RFC 6724 ties them). */
static void case_without_a_prefix_dns64_answers_are_plain_ipv6(void) {
  Mock m;
  start(&m, NULL);
  for (int i = 0; i < 3; i++) mock_advance(&m, 250000);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start [2001:db8:64::a40:2]:443 at 0",
              "m start [2001:db8:64::a40:3]:443 at 250000", "m start [2001:db8:46:9::1]:443 at 500000",
              "m start [2001:db8:46:9::2]:443 at 750000");
  mock_ready(&m, 0, -1, 1);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  CHECK_EQ(taps_event_loop_get_pref64(m.loop, NULL, 0), 0);
  CHECK_EQ(taps_event_loop_get_pref64_source(m.loop), TAPS_PREF64_SOURCE_NONE);
  mock_finish(&m);
}

/* A prefix none of the answers is inside changes nothing. */
static void case_another_prefix_changes_nothing(void) {
  Mock m;
  start(&m, "2001:db8:99::/96");
  mock_advance(&m, 250000);
  MOCK_EXPECT(&m, "resolve AAAA mock.test", "resolve A mock.test", "m start [2001:db8:64::a40:2]:443 at 0",
              "m start [2001:db8:64::a40:3]:443 at 250000");
  mock_ready(&m, 1, -1, 2);
  mock_run(&m);
  CHECK_EQ(m.ready, 1);
  mock_finish(&m);
}

MOCK_MAIN(MOCK_CASE(dns64_answers_interleave_as_ipv4), MOCK_CASE(without_a_prefix_dns64_answers_are_plain_ipv6),
          MOCK_CASE(another_prefix_changes_nothing))
