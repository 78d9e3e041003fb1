/* HTTPS records (Happy Eyeballs v3, draft-ietf-happy-happyeyeballs-v3-04
 * §4–§7) through the C API under the manual clock: a C resolver answers
 * HTTPS (taps_https_resolver_implementation, taps_service_query_answer),
 * the mock protocol records every start to the µs, and the report is read
 * through the C getters (taps_connection_get_attempt_service_priority,
 * taps_connection_get_https_record, taps_connection_get_dns_answer, ...).
 *
 * Log lines besides mock.h's: "resolve HTTPS name", "resolve AAAA name",
 * "resolve A name" (each question as asked) and "cancel HTTPS name",
 * "cancel A name" (the library cancelled it). Races go to NAME:443
 * (mock.h) with loopback answers. */
#include "mock.h"

#include <errno.h>
#include <sched.h>

#define DNS_MAX 32

/* One question the library asked the C resolver. */
typedef struct DnsQuestion {
  taps_resolver_query *addr;  /* AAAA/A */
  taps_service_query *https;  /* HTTPS */
  char type[8];
  char name[64];
  int live;
} DnsQuestion;

/* The mock (first member: its callbacks' user_data is the Mock) and the
 * resolver's questions. */
typedef struct Hev3 {
  Mock m;
  DnsQuestion q[DNS_MAX];
  int n;
} Hev3;

static DnsQuestion *ask(Hev3 *h, const char *type, const char *name) {
  CHECK(h->n < DNS_MAX);
  DnsQuestion *q = &h->q[h->n++];
  memset(q, 0, sizeof *q);
  snprintf(q->type, sizeof q->type, "%s", type);
  snprintf(q->name, sizeof q->name, "%s", name);
  q->live = 1;
  mock_logf(&h->m, "resolve %s %s", type, name);
  return q;
}

static int dns_resolve(taps_resolver_query *query, const char *name, int family, void *ud) {
  ask((Hev3 *)ud, mock_family_name(family), name)->addr = query;
  return 0;
}

static int dns_resolve_https(taps_service_query *query, const char *name, void *ud) {
  ask((Hev3 *)ud, "HTTPS", name)->https = query;
  return 0;
}

static void dns_cancelled(Hev3 *h, const void *handle) {
  for (int i = h->n - 1; i >= 0; i--) {
    DnsQuestion *q = &h->q[i];
    if (q->live && (q->addr == handle || (const void *)q->https == handle)) {
      q->live = 0;
      mock_logf(&h->m, "cancel %s %s", q->type, q->name);
      return;
    }
  }
  mock_logf(&h->m, "cancel of an unknown or answered question %p", handle);
}

static void dns_cancel(taps_resolver_query *query, void *ud) { dns_cancelled((Hev3 *)ud, query); }
static void dns_cancel_https(taps_service_query *query, void *ud) { dns_cancelled((Hev3 *)ud, query); }

/* The live question `type` ("HTTPS", "AAAA", "A") for `name`. */
static DnsQuestion *question(Hev3 *h, const char *type, const char *name) {
  for (int i = h->n - 1; i >= 0; i--) {
    DnsQuestion *q = &h->q[i];
    if (q->live && strcmp(q->type, type) == 0 && strcmp(q->name, name) == 0) return q;
  }
  fprintf(stderr, "no live %s question for %s\n", type, name);
  mock_print_log(&h->m);
  CHECK(0);
  return NULL;
}

/* Answer the AAAA or A question for `name` with `n` literals. */
static void answer(Hev3 *h, const char *type, const char *name, const char *const *addrs, size_t n) {
  DnsQuestion *q = question(h, type, name);
  struct sockaddr_storage ss[8];
  CHECK(n <= 8);
  memset(ss, 0, sizeof ss);
  for (size_t i = 0; i < n; i++) {
    if (strchr(addrs[i], ':') != NULL) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss[i];
      s6->sin6_family = AF_INET6;
      CHECK(inet_pton(AF_INET6, addrs[i], &s6->sin6_addr) == 1);
    } else {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&ss[i];
      s4->sin_family = AF_INET;
      CHECK(inet_pton(AF_INET, addrs[i], &s4->sin_addr) == 1);
    }
  }
  q->live = 0;
  CHECK_CODE(taps_resolver_query_answer(q->addr, ss, n), TAPS_OK);
}

static void answer_https(Hev3 *h, const char *name, const taps_service_record *records, size_t n) {
  DnsQuestion *q = question(h, "HTTPS", name);
  q->live = 0;
  CHECK_CODE(taps_service_query_answer(q->https, records, n, 300), TAPS_OK);
}

/* A ServiceMode (priority ≥ 1) or AliasMode (0) record. */
static taps_service_record record(uint16_t priority, const char *target) {
  taps_service_record r = TAPS_SERVICE_RECORD_INIT;
  r.priority = priority;
  r.target = target;
  return r;
}

/* A manual-clock loop with the mock protocol "m" and the C HTTPS
 * resolver; a preconnection to `host`:443 (m->pre), not yet initiated. */
static void setup(Hev3 *h, const char *host) {
  memset(h, 0, sizeof *h);
  mock_init(&h->m);
  mock_add_protocol(&h->m, "m");
  taps_https_resolver_implementation r = TAPS_HTTPS_RESOLVER_IMPLEMENTATION_INIT;
  r.resolve = dns_resolve;
  r.cancel = dns_cancel;
  r.resolve_https = dns_resolve_https;
  r.cancel_https = dns_cancel_https;
  r.user_data = h;
  CHECK_CODE(taps_event_loop_set_https_resolver(h->m.loop, &r), TAPS_OK);
  h->m.props = mock_props();
  const char *hosts[] = {host};
  h->m.pre = mock_preconnection(&h->m, hosts, 1, h->m.props, NULL);
}

static void check_record_(const Hev3 *h, size_t i, uint16_t priority, const char *target, uint16_t port,
                          size_t alpn_count, bool ech, int line) {
  taps_https_record_info r = TAPS_HTTPS_RECORD_INFO_INIT;
  CHECK_CODE(taps_connection_get_https_record(h->m.conn, i, &r), TAPS_OK);
  if (r.priority != priority || strcmp(r.target, target) != 0 || r.port != port || r.alpn_count != alpn_count ||
      r.ech != ech || r.endpoint != 0) {
    fprintf(stderr, "line %d: HTTPS record %zu is %u %s port %u, %zu alpn, ech %d\n", line, i, r.priority, r.target,
            r.port, r.alpn_count, (int)r.ech);
    exit(1);
  }
}
#define CHECK_RECORD(h, i, prio, target, port, alpn_count, ech) \
  check_record_((h), (i), (prio), (target), (port), (alpn_count), (ech), __LINE__)

/* DNS answer i: type, name, arrival (µs), count (error 0) or error. */
static void check_answer_(const Hev3 *h, size_t i, taps_dns_type type, const char *name, uint64_t at_us, size_t count,
                          int error, int line) {
  taps_dns_answer_info a = TAPS_DNS_ANSWER_INFO_INIT;
  CHECK_CODE(taps_connection_get_dns_answer(h->m.conn, i, &a), TAPS_OK);
  if (a.record_type != type || strcmp(a.name, name) != 0 || a.at_us != at_us || a.count != count || a.error != error) {
    for (size_t j = 0; j < taps_connection_get_dns_answer_count(h->m.conn); j++) {
      taps_dns_answer_info b = TAPS_DNS_ANSWER_INFO_INIT;
      CHECK_CODE(taps_connection_get_dns_answer(h->m.conn, j, &b), TAPS_OK);
      fprintf(stderr, "  answer %zu: type %d %s at %" PRIu64 " count %zu error %d\n", j, (int)b.record_type, b.name,
              b.at_us, b.count, b.error);
    }
    fprintf(stderr, "line %d: DNS answer %zu is type %d %s at %" PRIu64 " count %zu error %d\n", line, i,
            (int)a.record_type, a.name, a.at_us, a.count, a.error);
    exit(1);
  }
}
#define CHECK_ANSWER(h, i, type, name, at, count, error) \
  check_answer_((h), (i), (type), (name), (at), (count), (error), __LINE__)

/* Attempt i's SvcPriority (0: none) and whether it came from a hint. */
static void check_service_(const Hev3 *h, size_t i, uint16_t priority, int from_hint, int line) {
  uint16_t p = 0;
  int has = taps_connection_get_attempt_service_priority(h->m.conn, i, &p);
  int hint = taps_connection_get_attempt_from_hint(h->m.conn, i);
  if (has != (priority != 0) || (has && p != priority) || hint != from_hint) {
    fprintf(stderr, "line %d: attempt %zu has priority %d/%u, from_hint %d\n", line, i, has, p, hint);
    exit(1);
  }
}
#define CHECK_SERVICE(h, i, prio, hint) check_service_((h), (i), (prio), (hint), __LINE__)

static void check_alpn(const char *got, const char *want) {
  if (got == NULL || want == NULL) {
    CHECK(got == want);
    return;
  }
  if (strcmp(got, want) != 0) {
    fprintf(stderr, "ALPN %s, want %s\n", got, want);
    exit(1);
  }
}

static const char *const none[] = {"unused"};
static const char *const lo4[] = {"127.0.0.1"};
static const char *const lo6[] = {"::1"};

static void need_ipv6(void) {
  if (!test_have_ipv6()) test_skip("no IPv6 loopback: ::1 would sort last");
}

/* HEv3 §4.2: HTTPS answers 300 ms late. AAAA and A answered at 0, so the
 * race waits the Resolution Delay alone (first attempt at 50 ms), not the
 * HTTPS answer; the record (port 8443) reaches the next attempt at 300 ms. */
static void case_late_https_costs_only_the_resolution_delay(void) {
  need_ipv6();
  Hev3 h;
  setup(&h, "svc.test");
  mock_initiate(&h.m);
  MOCK_EXPECT(&h.m, "resolve HTTPS svc.test", "resolve AAAA svc.test", "resolve A svc.test");
  answer(&h, "AAAA", "svc.test", lo6, 1);
  answer(&h, "A", "svc.test", lo4, 1);
  mock_run(&h.m);
  mock_advance(&h.m, 49999);
  CHECK_EQ(h.m.n_attempts, 0);
  mock_advance(&h.m, 1);
  CHECK_EQ(h.m.n_attempts, 1);
  mock_advance_to(&h.m, 299000);
  taps_service_record r = record(1, ".");
  r.port = 8443;
  answer_https(&h, "svc.test", &r, 1);
  mock_run(&h.m);
  CHECK_EQ(h.m.n_attempts, 1);
  mock_advance(&h.m, 1000);
  MOCK_EXPECT(&h.m, "resolve HTTPS svc.test", "resolve AAAA svc.test", "resolve A svc.test", "m start [::1]:443 at 50000",
              "m start [::1]:8443 at 300000");
  CHECK_SERVICE(&h, 0, 0, 0);
  CHECK_SERVICE(&h, 1, 1, 0);
  CHECK_EQ(taps_connection_get_attempt_alpn_count(h.m.conn, 0), 0);
  CHECK_EQ(taps_connection_get_attempt_alpn_count(h.m.conn, 1), 1);
  check_alpn(taps_connection_get_attempt_alpn(h.m.conn, 1, 0), "http/1.1");
  check_alpn(taps_connection_get_attempt_alpn(h.m.conn, 1, 1), NULL);
  CHECK_EQ(taps_connection_get_dns_answer_count(h.m.conn), 3);
  CHECK_ANSWER(&h, 0, TAPS_DNS_TYPE_AAAA, "svc.test", 0, 1, 0);
  CHECK_ANSWER(&h, 1, TAPS_DNS_TYPE_A, "svc.test", 0, 1, 0);
  CHECK_ANSWER(&h, 2, TAPS_DNS_TYPE_HTTPS, "svc.test", 299000, 1, 0);
  CHECK_EQ(taps_connection_get_https_record_count(h.m.conn), 1);
  CHECK_RECORD(&h, 0, 1, "svc.test", 8443, 1, false);
  mock_ready(&h.m, 1, -1, 1);
  mock_run(&h.m);
  CHECK_EQ(h.m.ready, 1);
  mock_finish(&h.m);
}

/* RFC 9460 §7.2: the record's port replaces the caller's (443); every
 * answer in at 0 ms, so racing starts at once. */
static void case_record_port_replaces_the_callers(void) {
  Hev3 h;
  setup(&h, "port.test");
  mock_initiate(&h.m);
  taps_service_record r = record(1, "");
  r.port = 8443;
  answer_https(&h, "port.test", &r, 1);
  answer(&h, "AAAA", "port.test", none, 0);
  answer(&h, "A", "port.test", lo4, 1);
  mock_run(&h.m);
  MOCK_EXPECT(&h.m, "resolve HTTPS port.test", "resolve AAAA port.test", "resolve A port.test",
              "m start 127.0.0.1:8443 at 0");
  CHECK_SERVICE(&h, 0, 1, 0);
  CHECK_RECORD(&h, 0, 1, "port.test", 8443, 1, false);
  check_alpn(taps_connection_get_https_record_alpn(h.m.conn, 0, 0), "http/1.1");
  check_alpn(taps_connection_get_https_record_alpn(h.m.conn, 0, 1), NULL);
  mock_ready(&h.m, 0, -1, 1);
  mock_run(&h.m);
  CHECK_EQ(h.m.ready, 1);
  MOCK_CHECK_ATTEMPT(&h.m, 0, "m", "127.0.0.1:8443", 0, 0, TAPS_ATTEMPT_OUTCOME_WON, 0);
  mock_finish(&h.m);
}

/* HEv3 §4.2.1, RFC 9460 §2.4.2: an AliasMode record is followed: HTTPS is
 * asked for its target, then the target's ServiceMode record's AAAA/A. */
static void case_alias_followed(void) {
  Hev3 h;
  setup(&h, "alias.test");
  mock_initiate(&h.m);
  answer(&h, "AAAA", "alias.test", none, 0);
  answer(&h, "A", "alias.test", none, 0);
  taps_service_record alias = record(0, "CDN.test.");
  answer_https(&h, "alias.test", &alias, 1);
  mock_run(&h.m);
  const char *h2[] = {"h2"};
  taps_service_record r = record(1, ".");
  r.alpn = h2;
  r.alpn_count = 1;
  answer_https(&h, "cdn.test", &r, 1);
  mock_run(&h.m);
  MOCK_EXPECT(&h.m, "resolve HTTPS alias.test", "resolve AAAA alias.test", "resolve A alias.test",
              "resolve HTTPS cdn.test", "resolve AAAA cdn.test", "resolve A cdn.test");
  mock_advance(&h.m, 5000);
  answer(&h, "A", "cdn.test", (const char *const[]){"127.0.0.2"}, 1);
  mock_run(&h.m);
  CHECK_EQ(h.m.n_attempts, 1);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.2:443 at 5000");
  mock_ready(&h.m, 0, -1, 1);
  mock_run(&h.m);
  CHECK_SERVICE(&h, 0, 1, 0);
  CHECK_EQ(taps_connection_get_attempt_alpn_count(h.m.conn, 0), 2);
  check_alpn(taps_connection_get_attempt_alpn(h.m.conn, 0, 0), "h2");
  check_alpn(taps_connection_get_attempt_alpn(h.m.conn, 0, 1), "http/1.1");
  CHECK_RECORD(&h, 0, 1, "cdn.test", 0, 2, false);
  /* In the order the loop took them (the HTTPS answer before the address
   * answers queued in the same turn). */
  CHECK_EQ(taps_connection_get_dns_answer_count(h.m.conn), 5);
  CHECK_ANSWER(&h, 0, TAPS_DNS_TYPE_HTTPS, "alias.test", 0, 1, 0);
  CHECK_ANSWER(&h, 1, TAPS_DNS_TYPE_AAAA, "alias.test", 0, 0, 0);
  CHECK_ANSWER(&h, 3, TAPS_DNS_TYPE_HTTPS, "cdn.test", 0, 1, 0);
  CHECK_ANSWER(&h, 4, TAPS_DNS_TYPE_A, "cdn.test", 5000, 1, 0);
  mock_finish(&h.m);
}

/* HEv3 §4.2.1: an alias loop (a → b → a) ends the HTTPS question with no
 * service: the host's own addresses on the caller's port. */
static void case_alias_loop_falls_back(void) {
  Hev3 h;
  setup(&h, "a.test");
  mock_initiate(&h.m);
  answer(&h, "AAAA", "a.test", none, 0);
  answer(&h, "A", "a.test", lo4, 1);
  mock_run(&h.m);
  mock_advance(&h.m, 10000);
  taps_service_record to_b = record(0, "b.test");
  answer_https(&h, "a.test", &to_b, 1);
  mock_run(&h.m);
  taps_service_record to_a = record(0, "a.test");
  answer_https(&h, "b.test", &to_a, 1);
  mock_run(&h.m);
  /* a.test's HTTPS question was already answered: the loop is seen
   * without asking it again, and racing starts at once. */
  MOCK_EXPECT(&h.m, "resolve HTTPS a.test", "resolve AAAA a.test", "resolve A a.test", "resolve HTTPS b.test",
              "m start 127.0.0.1:443 at 10000");
  CHECK_SERVICE(&h, 0, 0, 0);
  CHECK_EQ(taps_connection_get_https_record_count(h.m.conn), 0);
  mock_finish(&h.m);
}

/* HEv3 §5, §7: two priorities from hints: SvcPriority 1 first; it fails,
 * SvcPriority 2 wins at once. Then (§6) answers keep coming into the
 * report for 1 s after the win and start nothing; the questions still open
 * are cancelled after that second. */
static void case_two_priorities_second_wins_and_late_answers(void) {
  Hev3 h;
  setup(&h, "two.test");
  mock_initiate(&h.m);
  answer(&h, "AAAA", "two.test", none, 0);
  answer(&h, "A", "two.test", none, 0);
  struct in_addr a2, a3;
  CHECK(inet_pton(AF_INET, "127.0.0.2", &a2) == 1);
  CHECK(inet_pton(AF_INET, "127.0.0.3", &a3) == 1);
  taps_service_record rs[2] = {record(2, "b.test"), record(1, "a.test")};
  rs[0].ipv4hint = &a3;
  rs[0].ipv4hint_count = 1;
  rs[1].ipv4hint = &a2;
  rs[1].ipv4hint_count = 1;
  answer_https(&h, "two.test", rs, 2);
  mock_run(&h.m);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.2:443 at 0");
  CHECK_EQ(h.m.n_attempts, 1);
  mock_advance(&h.m, 20000);
  mock_fail(&h.m, 0, ECONNREFUSED);
  mock_run(&h.m);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.3:443 at 20000");
  answer(&h, "A", "a.test", (const char *const[]){"127.0.0.4"}, 1);
  mock_advance(&h.m, 10000);
  mock_ready(&h.m, 1, -1, 2);
  mock_run(&h.m);
  CHECK_EQ(h.m.ready, 1);
  CHECK_EQ(h.m.done_at_us, 30000);
  MOCK_CHECK_ATTEMPT(&h.m, 0, "m", "127.0.0.2:443", 0, 20000, TAPS_ATTEMPT_OUTCOME_FAILED, ECONNREFUSED);
  MOCK_CHECK_ATTEMPT(&h.m, 1, "m", "127.0.0.3:443", 20000, 30000, TAPS_ATTEMPT_OUTCOME_WON, 0);
  CHECK_SERVICE(&h, 0, 1, 1);
  CHECK_SERVICE(&h, 1, 2, 1);
  CHECK_EQ(taps_connection_get_https_record_count(h.m.conn), 2);
  CHECK_RECORD(&h, 0, 1, "a.test", 0, 1, false);
  CHECK_RECORD(&h, 1, 2, "b.test", 0, 1, false);
  size_t before = taps_connection_get_dns_answer_count(h.m.conn);
  CHECK_ANSWER(&h, before - 1, TAPS_DNS_TYPE_A, "a.test", 30000, 1, 0);
  /* 500 ms after the win: into the report, no attempt. */
  mock_advance(&h.m, 500000);
  answer(&h, "A", "b.test", (const char *const[]){"127.0.0.5"}, 1);
  mock_run(&h.m);
  CHECK_EQ(taps_connection_get_dns_answer_count(h.m.conn), before + 1);
  CHECK_ANSWER(&h, before, TAPS_DNS_TYPE_A, "b.test", 530000, 1, 0);
  CHECK_EQ(h.m.n_started, 2);
  int logged = h.m.n_log;
  mock_advance(&h.m, 499999);
  CHECK_EQ(h.m.n_log, logged);
  mock_advance(&h.m, 1);
  CHECK_EQ(h.m.n_log, logged + 2);
  MOCK_CHECK_LOG_HAS(&h.m, "cancel AAAA a.test");
  MOCK_CHECK_LOG_HAS(&h.m, "cancel AAAA b.test");
  CHECK_EQ(h.m.n_started, 2);
  mock_finish(&h.m);
}

/* HEv3 §7, RFC 9460 §7.3: hints are candidates until the TargetName's
 * A answers; a hint it does not confirm and not yet attempted is dropped. */
static void case_hints_dropped_when_not_confirmed(void) {
  Hev3 h;
  setup(&h, "hint.test");
  mock_initiate(&h.m);
  answer(&h, "AAAA", "hint.test", none, 0);
  answer(&h, "A", "hint.test", none, 0);
  struct in_addr hints[2];
  CHECK(inet_pton(AF_INET, "127.0.0.2", &hints[0]) == 1);
  CHECK(inet_pton(AF_INET, "127.0.0.3", &hints[1]) == 1);
  taps_service_record r = record(1, "t.test");
  r.ipv4hint = hints;
  r.ipv4hint_count = 2;
  answer_https(&h, "hint.test", &r, 1);
  mock_run(&h.m);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.2:443 at 0");
  mock_advance(&h.m, 10000);
  answer(&h, "A", "t.test", (const char *const[]){"127.0.0.4"}, 1);
  mock_run(&h.m);
  mock_advance_to(&h.m, 250000);
  CHECK_EQ(h.m.n_attempts, 2);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.4:443 at 250000");
  CHECK(!mock_log_has(&h.m, "m start 127.0.0.3:443 at 250000"));
  CHECK_SERVICE(&h, 0, 1, 1);
  CHECK_SERVICE(&h, 1, 1, 0);
  mock_finish(&h.m);
}

/* RFC 9460 §8: a record whose "mandatory" lists a key the library does
 * not know (9) is skipped: the fallback, on the caller's port. */
static void case_unknown_mandatory_key_skipped(void) {
  Hev3 h;
  setup(&h, "mand.test");
  mock_initiate(&h.m);
  uint16_t keys[] = {3, 9};
  taps_service_record r = record(1, ".");
  r.port = 8443;
  r.mandatory = keys;
  r.mandatory_count = 2;
  answer_https(&h, "mand.test", &r, 1);
  answer(&h, "AAAA", "mand.test", none, 0);
  answer(&h, "A", "mand.test", lo4, 1);
  mock_run(&h.m);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.1:443 at 0");
  CHECK_SERVICE(&h, 0, 0, 0);
  CHECK_EQ(taps_connection_get_https_record_count(h.m.conn), 0);
  CHECK_ANSWER(&h, 0, TAPS_DNS_TYPE_HTTPS, "mand.test", 0, 1, 0);
  mock_finish(&h.m);
}

/* HEv3 §6.2, RFC 9460 §7.1.1: "no-default-alpn" leaves "http/1.1" out of
 * the record's ALPN set; without it the set gains "http/1.1". */
static void case_no_default_alpn(void) {
  Hev3 h;
  setup(&h, "alpn.test");
  mock_initiate(&h.m);
  const char *h3[] = {"h3"};
  const char *h2[] = {"h2"};
  taps_service_record rs[2] = {record(1, "."), record(2, ".")};
  rs[0].alpn = h3;
  rs[0].alpn_count = 1;
  rs[0].no_default_alpn = true;
  rs[1].alpn = h2;
  rs[1].alpn_count = 1;
  rs[1].port = 8443;
  answer_https(&h, "alpn.test", rs, 2);
  answer(&h, "AAAA", "alpn.test", none, 0);
  answer(&h, "A", "alpn.test", lo4, 1);
  mock_run(&h.m);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.1:443 at 0");
  CHECK_RECORD(&h, 0, 1, "alpn.test", 0, 1, false);
  check_alpn(taps_connection_get_https_record_alpn(h.m.conn, 0, 0), "h3");
  CHECK_RECORD(&h, 1, 2, "alpn.test", 8443, 2, false);
  check_alpn(taps_connection_get_https_record_alpn(h.m.conn, 1, 0), "h2");
  check_alpn(taps_connection_get_https_record_alpn(h.m.conn, 1, 1), "http/1.1");
  CHECK_EQ(taps_connection_get_attempt_alpn_count(h.m.conn, 0), 1);
  check_alpn(taps_connection_get_attempt_alpn(h.m.conn, 0, 0), "h3");
  /* The same pointer each time: the connection keeps one copy. */
  CHECK(taps_connection_get_attempt_alpn(h.m.conn, 0, 0) == taps_connection_get_https_record_alpn(h.m.conn, 0, 0));
  mock_finish(&h.m);
}

/* HEv3 §6.2, RFC 9460 §7.1.2: with the caller's ALPN list
 * (taps_preconnection_set_alpn), a record whose ALPN set has none of its
 * ids is skipped; the next record is used, its ids in the caller's order. */
static void case_alpn_list_skips_records_without_a_common_id(void) {
  Hev3 h;
  setup(&h, "list.test");
  const char *mine[] = {"http/1.1", "h2"};
  CHECK_CODE(taps_preconnection_set_alpn(h.m.pre, mine, 2), TAPS_OK);
  mock_initiate(&h.m);
  const char *h3[] = {"h3"};
  const char *h2[] = {"h2"};
  taps_service_record rs[2] = {record(1, "."), record(2, ".")};
  rs[0].alpn = h3;
  rs[0].alpn_count = 1;
  rs[0].no_default_alpn = true;
  rs[0].port = 8443;
  rs[1].alpn = h2;
  rs[1].alpn_count = 1;
  rs[1].port = 8444;
  answer_https(&h, "list.test", rs, 2);
  answer(&h, "AAAA", "list.test", none, 0);
  answer(&h, "A", "list.test", lo4, 1);
  mock_run(&h.m);
  MOCK_EXPECT(&h.m, "resolve HTTPS list.test", "resolve AAAA list.test", "resolve A list.test",
              "m start 127.0.0.1:8444 at 0");
  CHECK_EQ(taps_connection_get_https_record_count(h.m.conn), 1);
  CHECK_RECORD(&h, 0, 2, "list.test", 8444, 2, false);
  CHECK_SERVICE(&h, 0, 2, 0);
  CHECK_EQ(taps_connection_get_attempt_alpn_count(h.m.conn, 0), 2);
  check_alpn(taps_connection_get_attempt_alpn(h.m.conn, 0, 0), "http/1.1");
  check_alpn(taps_connection_get_attempt_alpn(h.m.conn, 0, 1), "h2");
  mock_finish(&h.m);
}

/* HEv3 §6.3: with ECH required, racing waits for the HTTPS answer (here
 * 300 ms, not the 50 ms Resolution Delay), and the record with an ECH
 * config goes first although its SvcPriority is higher. */
static void case_ech_required_waits_for_https(void) {
  Hev3 h;
  setup(&h, "ech.test");
  CHECK_CODE(taps_preconnection_set_ech_required(h.m.pre, true), TAPS_OK);
  mock_initiate(&h.m);
  answer(&h, "AAAA", "ech.test", none, 0);
  answer(&h, "A", "ech.test", lo4, 1);
  mock_run(&h.m);
  mock_advance(&h.m, 299999);
  CHECK_EQ(h.m.n_attempts, 0);
  mock_advance(&h.m, 1);
  static const uint8_t config[] = {0xfe, 0x0d, 0x00, 0x01, 0x00};
  taps_service_record rs[2] = {record(1, "."), record(2, ".")};
  rs[0].port = 8001;
  rs[1].port = 8002;
  rs[1].ech = config;
  rs[1].ech_len = sizeof config;
  answer_https(&h, "ech.test", rs, 2);
  mock_run(&h.m);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.1:8002 at 300000");
  CHECK_RECORD(&h, 0, 2, "ech.test", 8002, 1, true);
  CHECK_RECORD(&h, 1, 1, "ech.test", 8001, 1, false);
  CHECK_SERVICE(&h, 0, 2, 0);
  mock_finish(&h.m);
}

/* HEv3 §4.1: TAPS_HTTPS_POLICY_OFF asks no HTTPS record: AAAA and A only,
 * and the DNS report is empty. A bad policy is refused. */
static void case_policy_off_asks_nothing(void) {
  Hev3 h;
  setup(&h, "off.test");
  CHECK_CODE(taps_preconnection_set_https_policy(h.m.pre, 7), TAPS_ERROR_INVALID_ARGUMENT);
  CHECK_CODE(taps_preconnection_set_https_policy(h.m.pre, TAPS_HTTPS_POLICY_OFF), TAPS_OK);
  mock_initiate(&h.m);
  answer(&h, "AAAA", "off.test", none, 0);
  answer(&h, "A", "off.test", lo4, 1);
  mock_run(&h.m);
  MOCK_EXPECT(&h.m, "resolve AAAA off.test", "resolve A off.test", "m start 127.0.0.1:443 at 0");
  CHECK_EQ(taps_connection_get_dns_answer_count(h.m.conn), 0);
  CHECK_EQ(taps_connection_get_https_record_count(h.m.conn), 0);
  mock_finish(&h.m);
}

/* RFC 9460 §9.1: TAPS_HTTPS_POLICY_ON asks `_PORT._https.host` for a port
 * other than 443. */
static void case_policy_on_other_port(void) {
  Hev3 h;
  setup(&h, "on.test");
  taps_preconnection_free(h.m.pre);
  const char *hosts[] = {"on.test"};
  h.m.pre = mock_preconnection_port(&h.m, hosts, 1, 8080, h.m.props, NULL);
  CHECK_CODE(taps_preconnection_set_https_policy(h.m.pre, TAPS_HTTPS_POLICY_ON), TAPS_OK);
  mock_initiate(&h.m);
  MOCK_EXPECT(&h.m, "resolve HTTPS _8080._https.on.test", "resolve AAAA on.test", "resolve A on.test");
  mock_finish(&h.m);
}

/* HEv3 §4.2: the HTTPS question fails (at 10 ms, after AAAA and A): racing
 * starts at once without records, and the report has the error. */
static void case_https_failure_falls_back(void) {
  Hev3 h;
  setup(&h, "fail.test");
  mock_initiate(&h.m);
  answer(&h, "AAAA", "fail.test", none, 0);
  answer(&h, "A", "fail.test", lo4, 1);
  mock_run(&h.m);
  mock_advance(&h.m, 10000);
  CHECK_EQ(h.m.n_attempts, 0);
  DnsQuestion *q = question(&h, "HTTPS", "fail.test");
  q->live = 0;
  CHECK_CODE(taps_service_query_fail(q->https, 2), TAPS_OK);
  mock_run(&h.m);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.1:443 at 10000");
  CHECK_SERVICE(&h, 0, 0, 0);
  CHECK_ANSWER(&h, 2, TAPS_DNS_TYPE_HTTPS, "fail.test", 10000, 0, 2);
  mock_finish(&h.m);
}

/* taps_service_query_answer refuses a record with a NULL array and a
 * count, copies nothing and leaves the question open; a good answer
 * follows. Everything is copied: the caller's arrays are overwritten at
 * once and the race still sees the original. */
static void case_answer_checks_and_copies(void) {
  Hev3 h;
  setup(&h, "copy.test");
  mock_initiate(&h.m);
  DnsQuestion *q = question(&h, "HTTPS", "copy.test");
  taps_service_record r = record(1, ".");
  r.alpn_count = 1;
  CHECK_CODE(taps_service_query_answer(q->https, &r, 1, 60), TAPS_ERROR_NULL_ARGUMENT);
  CHECK_CODE(taps_service_query_answer(q->https, NULL, 1, 60), TAPS_ERROR_NULL_ARGUMENT);
  r.struct_size = 2;
  CHECK_CODE(taps_service_query_answer(q->https, &r, 1, 60), TAPS_ERROR_INVALID_ARGUMENT);
  char id[8] = "h2";
  const char *ids[] = {id};
  r = record(1, ".");
  r.alpn = ids;
  r.alpn_count = 1;
  r.port = 8443;
  answer_https(&h, "copy.test", &r, 1);
  strcpy(id, "xx");
  answer(&h, "AAAA", "copy.test", none, 0);
  answer(&h, "A", "copy.test", lo4, 1);
  mock_run(&h.m);
  MOCK_CHECK_LOG_HAS(&h.m, "m start 127.0.0.1:8443 at 0");
  check_alpn(taps_connection_get_attempt_alpn(h.m.conn, 0, 0), "h2");
  CHECK_CODE(taps_connection_get_https_record(h.m.conn, 1, &(taps_https_record_info){0}), TAPS_ERROR_OUT_OF_RANGE);
  CHECK_CODE(taps_connection_get_dns_answer(h.m.conn, 99, &(taps_dns_answer_info){0}), TAPS_ERROR_OUT_OF_RANGE);
  uint16_t p = 0;
  CHECK_CODE(taps_connection_get_attempt_service_priority(h.m.conn, 5, &p), TAPS_ERROR_OUT_OF_RANGE);
  mock_finish(&h.m);
}

/* A resolver without HTTPS support (the taps_resolver_implementation of
 * earlier releases, or resolve_https NULL) keeps the RFC 8305 schedule:
 * A at 0, AAAA open, first attempt at exactly 50 ms. */
static void case_resolver_without_https_keeps_timing(void) {
  for (int variant = 0; variant < 2; variant++) {
    Hev3 h;
    setup(&h, "plain.test");
    if (variant == 0) {
      taps_resolver_implementation r;
      memset(&r, 0, sizeof r);
      r.resolve = dns_resolve;
      r.cancel = dns_cancel;
      r.user_data = &h;
      CHECK_CODE(taps_event_loop_set_resolver(h.m.loop, &r), TAPS_OK);
    } else {
      taps_https_resolver_implementation r = {.resolve = dns_resolve, .cancel = dns_cancel, .user_data = &h};
      CHECK_CODE(taps_event_loop_set_https_resolver(h.m.loop, &r), TAPS_OK);
    }
    mock_initiate(&h.m);
    answer(&h, "A", "plain.test", lo4, 1);
    mock_run(&h.m);
    mock_advance(&h.m, 49999);
    CHECK_EQ(h.m.n_attempts, 0);
    mock_advance(&h.m, 1);
    MOCK_EXPECT(&h.m, "resolve AAAA plain.test", "resolve A plain.test", "m start 127.0.0.1:443 at 50000");
    CHECK_ANSWER(&h, 0, TAPS_DNS_TYPE_HTTPS, "plain.test", 0, 0, ENOTSUP);
    mock_finish(&h.m);
  }
}

/* Attempt i's synthesized_from (NULL: not synthesized). */
static void check_synthesized_from_(const Hev3 *h, size_t i, const char *v4, int line) {
  struct sockaddr_storage ss;
  socklen_t len = 0;
  int got = taps_connection_get_attempt_synthesized_from(h->m.conn, i, &ss, &len);
  char buf[INET_ADDRSTRLEN] = "";
  if (got == 1) inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, sizeof buf);
  if (got != (v4 != NULL) || (v4 && strcmp(buf, v4) != 0)) {
    fprintf(stderr, "line %d: attempt %zu synthesized_from %d %s, expected %s\n", line, i, got, buf, v4 ? v4 : "none");
    exit(1);
  }
}
#define CHECK_SYNTHESIZED_FROM(h, i, v4) check_synthesized_from_((h), (i), (v4), __LINE__)

/* HEv3 -04 §8.2 on a host without IPv4 routes (a network namespace of its
 * own: only the loopback, down) and with the caller's NAT64 prefix: the
 * ipv4hints race as their RFC 6052 synthesis at once, and the TargetName's
 * A answer, when it comes, is synthesized too; the report names the IPv4
 * address of each. Runs last: the process stays in the namespace. */
static void case_ipv4_hints_and_target_a_answers_synthesized_without_ipv4(void) {
  if (unshare(CLONE_NEWNET) != 0) test_skip("no network namespace of its own (needs CAP_SYS_ADMIN)");
  Hev3 h;
  setup(&h, "syn.test");
  CHECK_CODE(taps_event_loop_set_pref64(h.m.loop, "2001:db8:64::/96"), TAPS_OK);
  mock_initiate(&h.m);
  answer(&h, "AAAA", "syn.test", none, 0);
  answer(&h, "A", "syn.test", none, 0);
  struct in_addr hints[2];
  CHECK(inet_pton(AF_INET, "10.64.0.2", &hints[0]) == 1);
  CHECK(inet_pton(AF_INET, "10.64.0.3", &hints[1]) == 1);
  taps_service_record r = record(1, "t.test");
  r.ipv4hint = hints;
  r.ipv4hint_count = 2;
  answer_https(&h, "syn.test", &r, 1);
  mock_run(&h.m);
  mock_advance(&h.m, 10000);
  answer(&h, "A", "t.test", (const char *const[]){"10.64.0.4"}, 1);
  mock_run(&h.m);
  mock_advance_to(&h.m, 250000);
  MOCK_EXPECT(&h.m, "resolve HTTPS syn.test", "resolve AAAA syn.test", "resolve A syn.test",
              "resolve AAAA t.test", "resolve A t.test", "m start [2001:db8:64::a40:2]:443 at 0",
              "m start [2001:db8:64::a40:4]:443 at 250000");
  mock_ready(&h.m, 1, -1, 2);
  mock_run(&h.m);
  CHECK_EQ(h.m.ready, 1);
  CHECK_SERVICE(&h, 0, 1, 1);
  CHECK_SERVICE(&h, 1, 1, 0);
  CHECK_SYNTHESIZED_FROM(&h, 0, "10.64.0.2");
  CHECK_SYNTHESIZED_FROM(&h, 1, "10.64.0.4");
  mock_finish(&h.m);
}

MOCK_MAIN(MOCK_CASE(late_https_costs_only_the_resolution_delay), MOCK_CASE(record_port_replaces_the_callers),
          MOCK_CASE(alias_followed), MOCK_CASE(alias_loop_falls_back),
          MOCK_CASE(two_priorities_second_wins_and_late_answers), MOCK_CASE(hints_dropped_when_not_confirmed),
          MOCK_CASE(unknown_mandatory_key_skipped), MOCK_CASE(no_default_alpn),
          MOCK_CASE(alpn_list_skips_records_without_a_common_id), MOCK_CASE(ech_required_waits_for_https),
          MOCK_CASE(policy_off_asks_nothing), MOCK_CASE(policy_on_other_port), MOCK_CASE(https_failure_falls_back),
          MOCK_CASE(answer_checks_and_copies), MOCK_CASE(resolver_without_https_keeps_timing),
          MOCK_CASE(ipv4_hints_and_target_a_answers_synthesized_without_ipv4))
