/* A mock protocol and a mock resolver for the C tests, through the public
 * header only, on a loop with a manual clock.
 *
 * The mock protocol records every start (protocol, address, loop time in
 * µs from taps_event_loop_now_us), cancel and close in a log of lines, and
 * keeps each attempt's taps_protocol_attempt pointer under the attempt's index
 * in the race (taps_connection_get_attempt's) so that the test completes it
 * with mock_ready / mock_fail. The mock resolver keeps each query's
 * taps_resolver_query pointer; the test answers it with mock_answer / mock_fail_query.
 * Log lines:
 *
 *   "a start 127.0.0.1:443 at 250000"   protocol a started an attempt at
 *                                       250 ms on the loop's clock
 *   "a cancel #1"                       the library cancelled attempt #1
 *   "a close 7 fd -1"                   the library closed the connection that
 *                                       mock_ready(.., fd, 7) reported
 *   "resolve AAAA mock.test"            a query (AAAA or A)
 *   "resolver cancel A"                 the library cancelled the A query
 *
 * Races use loopback addresses only (127.0.0.x, ::1): RFC 6724 sorts by the
 * real routes, which loopback has on every machine. Mock protocols are
 * registered as reliable and multistreaming, and mock_props() requires
 * multistreaming, so built-in TCP (not multistreaming) and UDP (not
 * reliable) stay out of the race unless a test lets them in.
 *
 * One test case per function `static void case_NAME(void)`; MOCK_MAIN
 * builds main(): with no argument it runs every case, with one it runs
 * that case (ctest registers one test per case, see CMakeLists.txt). Each
 * case runs twice and the second run must free all it allocated.
 */
#ifndef TAPS_MOCK_H
#define TAPS_MOCK_H

#include "test_util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>

#if defined(__SANITIZE_ADDRESS__)
#define MOCK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MOCK_ASAN 1
#endif
#endif
#if defined(MOCK_ASAN)
/* From <sanitizer/allocator_interface.h>, which not every compiler ships. */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

#define MOCK_MAX 64
#define MOCK_LINE 96

typedef struct Mock Mock;

/* One registered mock protocol. */
typedef struct MockProtocol {
  Mock *mock;
  char name[16];
  /* When > 0, `start` returns it: the attempt fails at once. */
  int start_errno;
  /* When > 0, `start` reports the attempt ready at once, from inside
   * `start`, with this connection handle and no fd. */
  intptr_t ready_in_start;
} MockProtocol;

/* One attempt the library started with a mock protocol. `handle` is valid
 * while `live`: until the test completes it or the library cancels it. */
typedef struct MockAttempt {
  taps_protocol_attempt *handle;
  const MockProtocol *protocol;
  struct sockaddr_storage address;
  uint64_t at_us;
  int live;
} MockAttempt;

/* One query the library asked. `handle` is valid while `live`. */
typedef struct MockQuery {
  taps_resolver_query *handle;
  int family;
  int live;
} MockQuery;

struct Mock {
  taps_event_loop *loop;
  char log[MOCK_MAX][MOCK_LINE];
  int n_log;
  /* By attempt index (taps_connection_get_attempt's). */
  MockAttempt attempts[MOCK_MAX];
  int n_attempts; /* highest index started + 1 */
  int n_started;  /* starts of mock protocols */
  MockProtocol protocols[8];
  int n_protocols;
  MockQuery queries[MOCK_MAX];
  int n_queries;
  /* The race's properties and preconnection (mock_setup's, or the
   * test's), freed by mock_finish. */
  taps_transport_properties *props;
  taps_preconnection *pre;
  /* The connection of the race and what its callbacks saw. */
  taps_connection *conn;
  int ready, establishment_error, connection_error, closed;
  uint64_t done_at_us; /* loop time of ready / establishment_error */
};

static inline void mock_logf(Mock *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void mock_logf(Mock *m, const char *fmt, ...) {
  CHECK(m->n_log < MOCK_MAX);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->log[m->n_log++], MOCK_LINE, fmt, ap);
  va_end(ap);
}

/* "127.0.0.1:443" or "[::1]:443". */
static inline const char *mock_addr_str(const struct sockaddr *sa, char *buf, size_t len) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
    inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
    snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
    inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
    snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
  } else {
    snprintf(buf, len, "family %d", sa->sa_family);
  }
  return buf;
}

/* ---- the protocol vtable --------------------------------------------- */

static inline int mock_start(taps_protocol_attempt *attempt, const struct sockaddr *address, socklen_t address_len,
                      const char *interface_name, const struct sockaddr *local_address,
                      socklen_t local_address_len, void *user_data) {
  (void)interface_name;
  (void)local_address;
  (void)local_address_len;
  MockProtocol *p = (MockProtocol *)user_data;
  Mock *m = p->mock;
  /* The attempt's index in its race (taps_connection_get_attempt's); attempts
   * of other protocols (built-in TCP) leave their slots empty. The header
   * lets `start` call only the completion functions; taps_protocol_attempt_index
   * and taps_event_loop_now_us are plain reads (no lock), so they are fine. */
  int idx = taps_protocol_attempt_index(attempt);
  CHECK(idx >= 0 && idx < MOCK_MAX);
  CHECK(address != NULL && address_len <= sizeof(struct sockaddr_storage));
  MockAttempt *a = &m->attempts[idx];
  CHECK(a->protocol == NULL);
  memset(a, 0, sizeof *a);
  a->handle = attempt;
  a->protocol = p;
  memcpy(&a->address, address, address_len);
  a->at_us = taps_event_loop_now_us(m->loop);
  a->live = p->start_errno <= 0;
  char buf[64];
  mock_logf(m, "%s start %s at %" PRIu64, p->name, mock_addr_str(address, buf, sizeof buf), a->at_us);
  m->n_started++;
  if (idx >= m->n_attempts) m->n_attempts = idx + 1;
  if (p->start_errno > 0) return p->start_errno;
  if (p->ready_in_start > 0) {
    a->live = 0;
    /* Allowed inside `start` by the header. */
    CHECK_CODE(taps_protocol_attempt_ready(attempt, -1, (void *)p->ready_in_start), TAPS_OK);
  }
  return 0;
}

static inline void mock_cancel(taps_protocol_attempt *attempt, void *user_data) {
  MockProtocol *p = (MockProtocol *)user_data;
  Mock *m = p->mock;
  /* The newest live attempt with this pointer (a freed handle's memory may
   * be reused by a later attempt). */
  for (int i = m->n_attempts - 1; i >= 0; i--) {
    if (m->attempts[i].live && m->attempts[i].handle == attempt) {
      m->attempts[i].live = 0;
      CHECK(m->attempts[i].protocol == p);
      mock_logf(m, "%s cancel #%d", p->name, i);
      return;
    }
  }
  mock_logf(m, "%s cancel of an unknown or completed attempt %p", p->name, (void *)attempt);
}

static inline void mock_close(void *protocol_connection, int fd, void *user_data) {
  MockProtocol *p = (MockProtocol *)user_data;
  mock_logf(p->mock, "%s close %ld fd %d", p->name, (long)(intptr_t)protocol_connection, fd);
}

/* Register a mock protocol `name` with taps_protocol_flag bits `flags`. */
static inline MockProtocol *mock_add_protocol_flags(Mock *m, const char *name, uint32_t flags) {
  CHECK(m->n_protocols < 8);
  MockProtocol *p = &m->protocols[m->n_protocols++];
  p->mock = m;
  snprintf(p->name, sizeof p->name, "%s", name);
  taps_protocol_implementation impl;
  memset(&impl, 0, sizeof impl);
  impl.name = p->name;
  impl.properties = flags;
  impl.start = mock_start;
  impl.cancel = mock_cancel;
  impl.close = mock_close;
  impl.user_data = p;
  CHECK_CODE(taps_event_loop_add_protocol(m->loop, &impl), TAPS_OK);
  return p;
}

/* A reliable, multistreaming mock protocol. */
static inline MockProtocol *mock_add_protocol(Mock *m, const char *name) {
  return mock_add_protocol_flags(m, name, TAPS_PROTOCOL_FLAG_RELIABLE | TAPS_PROTOCOL_FLAG_MULTISTREAMING);
}

/* ---- the resolver vtable --------------------------------------------- */

static inline const char *mock_family_name(int family) {
  return family == AF_INET6 ? "AAAA" : family == AF_INET ? "A" : "?";
}

static inline int mock_resolve(taps_resolver_query *query, const char *hostname, int family, void *user_data) {
  Mock *m = (Mock *)user_data;
  CHECK(m->n_queries < MOCK_MAX);
  MockQuery *q = &m->queries[m->n_queries++];
  q->handle = query;
  q->family = family;
  q->live = 1;
  mock_logf(m, "resolve %s %s", mock_family_name(family), hostname);
  return 0;
}

static inline void mock_resolver_cancel(taps_resolver_query *query, void *user_data) {
  Mock *m = (Mock *)user_data;
  for (int i = m->n_queries - 1; i >= 0; i--) {
    if (m->queries[i].live && m->queries[i].handle == query) {
      m->queries[i].live = 0;
      mock_logf(m, "resolver cancel %s", mock_family_name(m->queries[i].family));
      return;
    }
  }
  mock_logf(m, "resolver cancel of an unknown or answered query %p", (void *)query);
}

static inline void mock_set_resolver(Mock *m) {
  taps_resolver_implementation r;
  memset(&r, 0, sizeof r);
  r.resolve = mock_resolve;
  r.cancel = mock_resolver_cancel;
  r.user_data = m;
  CHECK_CODE(taps_event_loop_set_resolver(m->loop, &r), TAPS_OK);
}

/* The newest live query of `family`. */
static inline MockQuery *mock_query(Mock *m, int family) {
  for (int i = m->n_queries - 1; i >= 0; i--) {
    if (m->queries[i].live && m->queries[i].family == family) return &m->queries[i];
  }
  fprintf(stderr, "no live %s query\n", mock_family_name(family));
  CHECK(0);
  return NULL;
}

/* Answer the live query of `family` with `n` literal addresses. */
static inline void mock_answer(Mock *m, int family, const char *const *addrs, size_t n) {
  MockQuery *q = mock_query(m, family);
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
  CHECK_CODE(taps_resolver_query_answer(q->handle, ss, n), TAPS_OK);
}

static inline void mock_fail_query(Mock *m, int family, int error) {
  MockQuery *q = mock_query(m, family);
  q->live = 0;
  CHECK_CODE(taps_resolver_query_fail(q->handle, error), TAPS_OK);
}

/* ---- completing attempts ---------------------------------------------- */

static inline MockAttempt *mock_attempt(Mock *m, int i) {
  CHECK(i >= 0 && i < m->n_attempts);
  CHECK(m->attempts[i].live);
  return &m->attempts[i];
}

/* Attempt #i (its index in the race) is ready with `fd` (-1 for none) and connection handle `conn`. */
static inline void mock_ready(Mock *m, int i, int fd, intptr_t conn) {
  MockAttempt *a = mock_attempt(m, i);
  CHECK_EQ(taps_protocol_attempt_index(a->handle), i);
  a->live = 0;
  CHECK_CODE(taps_protocol_attempt_ready(a->handle, fd, (void *)conn), TAPS_OK);
}

/* Attempt #i failed with errno `err`. */
static inline void mock_fail(Mock *m, int i, int err) {
  MockAttempt *a = mock_attempt(m, i);
  CHECK_EQ(taps_protocol_attempt_index(a->handle), i);
  a->live = 0;
  CHECK_CODE(taps_protocol_attempt_failed(a->handle, err), TAPS_OK);
}

/* ---- the connection's callbacks --------------------------------------- */

/* Count a callback of the race's connection `c` in *count; the two that
 * end the race also note the loop's time. */
static inline int mock_cb_note(Mock *m, taps_connection *c, int *count, int ends_race) {
  CHECK(c == m->conn);
  (*count)++;
  if (ends_race) m->done_at_us = taps_event_loop_now_us(m->loop);
  return 0;
}

static inline int mock_cb_ready(taps_connection *c, void *ud) {
  Mock *m = (Mock *)ud;
  return mock_cb_note(m, c, &m->ready, 1);
}

static inline int mock_cb_establishment_error(taps_connection *c, void *ud) {
  Mock *m = (Mock *)ud;
  return mock_cb_note(m, c, &m->establishment_error, 1);
}

static inline int mock_cb_connection_error(taps_connection *c, void *ud) {
  Mock *m = (Mock *)ud;
  return mock_cb_note(m, c, &m->connection_error, 0);
}

static inline int mock_cb_closed(taps_connection *c, void *ud) {
  Mock *m = (Mock *)ud;
  return mock_cb_note(m, c, &m->closed, 0);
}

/* A taps_connection_callbacks with every callback NULL (a call that must fail
 * before it could call any). */
static inline taps_connection_callbacks mock_no_callbacks(void) {
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  return cb;
}

/* ---- loop, endpoints, race -------------------------------------------- */

static inline void mock_init(Mock *m) {
  memset(m, 0, sizeof *m);
  taps_event_loop_options o;
  memset(&o, 0, sizeof o);
  o.manual_clock = true;
  m->loop = taps_event_loop_new_with_options(&o);
  CHECK(m->loop != NULL);
  CHECK_EQ(taps_event_loop_now_us(m->loop), 0);
}

/* Properties that keep only multistreaming protocols: the mocks. Free with
 * taps_transport_properties_free. */
static inline taps_transport_properties *mock_props(void) {
  taps_transport_properties *props = taps_transport_properties_new();
  CHECK(props != NULL);
  CHECK_CODE(taps_transport_properties_set(props, TAPS_SELECTION_PROPERTY_MULTISTREAMING, TAPS_PREFERENCE_REQUIRE), TAPS_OK);
  return props;
}

/* A preconnection to `hosts` (literals or names), all on `port`. */
static inline taps_preconnection *mock_preconnection_port(Mock *m, const char *const *hosts, size_t n, uint16_t port,
                                                     const taps_transport_properties *props, const taps_racing_options *opts) {
  taps_remote_endpoint *eps[8];
  CHECK(n >= 1 && n <= 8);
  for (size_t i = 0; i < n; i++) eps[i] = test_remote_host(hosts[i], port);
  taps_preconnection *p = taps_preconnection_new(m->loop, (const taps_remote_endpoint *const *)eps, n, props, opts);
  if (p == NULL) fprintf(stderr, "taps_preconnection_new: %s\n", taps_last_error_message());
  CHECK(p != NULL);
  for (size_t i = 0; i < n; i++) taps_remote_endpoint_free(eps[i]);
  return p;
}

static inline taps_preconnection *mock_preconnection(Mock *m, const char *const *hosts, size_t n,
                                                const taps_transport_properties *props, const taps_racing_options *opts) {
  return mock_preconnection_port(m, hosts, n, 443, props, opts);
}

/* The usual race's set-up: a manual-clock loop with one mock protocol,
 * "m", properties that keep it alone in the race (mock_props) and a
 * preconnection to hosts[0..n) on port 443 with `opts` (NULL: the
 * defaults), in m->props and m->pre. Returns the protocol, for the test
 * to set its start_errno or ready_in_start before mock_initiate. */
static inline MockProtocol *mock_setup(Mock *m, const char *const *hosts, size_t n, const taps_racing_options *opts) {
  mock_init(m);
  MockProtocol *mp = mock_add_protocol(m, "m");
  m->props = mock_props();
  m->pre = mock_preconnection(m, hosts, n, m->props, opts);
  return mp;
}

/* Run what is ready; on a manual clock this never blocks. */
static inline void mock_run(Mock *m) { CHECK_CODE(taps_event_loop_run(m->loop), TAPS_OK); }

/* Initiate m->pre (the connection is m->conn, its callbacks count in *m)
 * and run what is ready. */
static inline void mock_initiate(Mock *m) {
  taps_connection_callbacks cb = mock_no_callbacks();
  cb.ready = mock_cb_ready;
  cb.establishment_error = mock_cb_establishment_error;
  cb.connection_error = mock_cb_connection_error;
  cb.closed = mock_cb_closed;
  cb.user_data = m;
  CHECK(m->pre != NULL);
  CHECK_CODE(taps_preconnection_initiate_with_racing(m->pre, cb, &m->conn), TAPS_OK);
  CHECK(m->conn != NULL);
  mock_run(m);
}

/* Advance the manual clock by `us` and run what fell due. */
static inline void mock_advance(Mock *m, uint64_t us) {
  uint64_t before = taps_event_loop_now_us(m->loop);
  CHECK_CODE(taps_event_loop_advance_clock(m->loop, us), TAPS_OK);
  CHECK_EQ(taps_event_loop_now_us(m->loop), before + us);
  mock_run(m);
}

/* Advance the clock to `at_us` (absolute) and run. */
static inline void mock_advance_to(Mock *m, uint64_t at_us) {
  uint64_t now = taps_event_loop_now_us(m->loop);
  CHECK(at_us >= now);
  mock_advance(m, at_us - now);
}

static inline void mock_print_log(const Mock *m) {
  fprintf(stderr, "mock log (%d lines):\n", m->n_log);
  for (int i = 0; i < m->n_log; i++) fprintf(stderr, "  %2d: %s\n", i, m->log[i]);
}

/* The whole log equals `want` (NULL-terminated). */
static inline void mock_expect_(const Mock *m, const char *file, int line, const char *const *want) {
  int n = 0;
  while (want[n] != NULL) n++;
  int ok = n == m->n_log;
  for (int i = 0; ok && i < n; i++) ok = strcmp(want[i], m->log[i]) == 0;
  if (!ok) {
    fprintf(stderr, "%s:%d: the mock log differs; expected (%d lines):\n", file, line, n);
    for (int i = 0; i < n; i++) fprintf(stderr, "  %2d: %s\n", i, want[i]);
    mock_print_log(m);
    if (m->conn != NULL) test_print_attempts(m->conn);
    exit(1);
  }
}
#define MOCK_EXPECT(m, ...) mock_expect_((m), __FILE__, __LINE__, (const char *const[]){__VA_ARGS__, NULL})
#define MOCK_EXPECT_EMPTY(m) mock_expect_((m), __FILE__, __LINE__, (const char *const[]){NULL})

/* Whether the log has this line. */
static inline int mock_log_has(const Mock *m, const char *line) {
  for (int i = 0; i < m->n_log; i++) {
    if (strcmp(m->log[i], line) == 0) return 1;
  }
  return 0;
}
#define MOCK_CHECK_LOG_HAS(m, line)                                              \
  do {                                                                           \
    if (!mock_log_has((m), (line))) {                                            \
      fprintf(stderr, "%s:%d: the mock log lacks \"%s\"\n", __FILE__, __LINE__, (line)); \
      mock_print_log(m);                                                         \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

/* Attempt `i` of the connection. */
static inline taps_attempt_info mock_info(const Mock *m, size_t i) {
  taps_attempt_info a;
  memset(&a, 0, sizeof a);
  CHECK_CODE(taps_connection_get_attempt(m->conn, i, &a), TAPS_OK);
  return a;
}

static inline void mock_check_attempt(const Mock *m, size_t i, const char *protocol, const char *addr,
                                      uint64_t started_us, uint64_t ended_us, taps_attempt_outcome outcome,
                                      int os_error, const char *file, int line) {
  taps_attempt_info a = mock_info(m, i);
  char buf[64];
  mock_addr_str((const struct sockaddr *)&a.address, buf, sizeof buf);
  if (a.protocol == NULL || strcmp(a.protocol, protocol) != 0 || strcmp(buf, addr) != 0 ||
      a.started_us != started_us || a.ended_us != ended_us || a.outcome != outcome || a.os_error != os_error) {
    fprintf(stderr,
            "%s:%d: attempt %zu is %s %s started %" PRIu64 " ended %" PRIu64 " %s os_error %d; expected %s %s "
            "started %" PRIu64 " ended %" PRIu64 " %s os_error %d\n",
            file, line, i, a.protocol ? a.protocol : "(null)", buf, a.started_us, a.ended_us,
            test_outcome_name(a.outcome), a.os_error, protocol, addr, started_us, ended_us,
            test_outcome_name(outcome), os_error);
    test_print_attempts(m->conn);
    exit(1);
  }
}
/* Attempt i: protocol, address, start and end (µs since initiate), outcome, errno. */
#define MOCK_CHECK_ATTEMPT(m, i, proto, addr, start, end, outcome, err) \
  mock_check_attempt((m), (i), (proto), (addr), (start), (end), (outcome), (err), __FILE__, __LINE__)

/* Free the connection, the preconnection, the properties and the loop
 * (in that order). */
static inline void mock_finish(Mock *m) {
  taps_connection_free(m->conn);
  m->conn = NULL;
  taps_preconnection_free(m->pre);
  m->pre = NULL;
  taps_transport_properties_free(m->props);
  m->props = NULL;
  taps_event_loop_free(m->loop);
  m->loop = NULL;
}

/* ---- pools and groups: attempts numbered by start order ---------------- */

/* A pool or a group starts several races over its life and each race
 * numbers its attempts from 0 (taps_protocol_attempt_index), so the pool and
 * group tests share a mock protocol, "relay", that numbers attempts by
 * start order over the test instead: the log says "start #4 at 52000000"
 * (with `log_addr`, "start #4 127.0.0.2 at 1600000"), "cancel #4" ("cancel
 * #4 (reported)" for an attempt the test had reported ready), and the
 * connection handle the test reports for attempt #i is 100 + i ("close 104
 * fd -1"). The pool's or group's events are recorded as strings, with the
 * loop's time, and compared exactly. */
#define SEQ_ATTEMPTS 160
#define SEQ_EVENTS 128

/* One attempt the library started, by start order. */
typedef struct SeqAttempt {
  taps_protocol_attempt *handle;
  int race_index; /* taps_protocol_attempt_index */
  char addr[INET6_ADDRSTRLEN];
  uint64_t at_us;
  int live;      /* neither completed by the test nor cancelled */
  int reported;  /* the test reported ready or failed */
  int cancelled; /* the library called `cancel` */
} SeqAttempt;

/* A pool test or a group test: one of `pool` and `g` is used. */
typedef struct SeqTest {
  Mock m; /* the loop and the log */
  SeqAttempt a[SEQ_ATTEMPTS];
  int n;
  int log_addr; /* starts are logged with their address */
  int quiet;    /* starts and cancels are not logged (a group of 64) */
  char ev[SEQ_EVENTS][64];
  uint64_t ev_at[SEQ_EVENTS];
  int n_ev;
  /* The pool or group was freed (or its loop): no event may follow, and
   * no attempt may start (logged as "start after free" and counted,
   * checked by seq_finish and the cases). */
  int freed;
  int started_after_free;
  taps_transport_properties *props;
  taps_preconnection *pre;
  taps_connection_pool *pool;
  taps_connection_group *g;
  const char *free_on; /* a group's event callback frees it on this event */
} SeqTest;

static inline int seq_start(taps_protocol_attempt *attempt, const struct sockaddr *address, socklen_t address_len,
                            const char *interface_name, const struct sockaddr *local_address,
                            socklen_t local_address_len, void *user_data) {
  (void)address_len;
  (void)interface_name;
  (void)local_address;
  (void)local_address_len;
  SeqTest *t = (SeqTest *)user_data;
  if (t->freed) t->started_after_free++;
  CHECK(t->n < SEQ_ATTEMPTS);
  int i = t->n++;
  SeqAttempt *a = &t->a[i];
  memset(a, 0, sizeof *a);
  a->handle = attempt;
  a->race_index = taps_protocol_attempt_index(attempt);
  CHECK(address->sa_family == AF_INET);
  inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)address)->sin_addr, a->addr, sizeof a->addr);
  a->at_us = taps_event_loop_now_us(t->m.loop);
  a->live = 1;
  if (t->quiet) return 0;
  const char *after = t->freed ? " after free" : "";
  if (t->log_addr) mock_logf(&t->m, "start%s #%d %s at %" PRIu64, after, i, a->addr, a->at_us);
  else mock_logf(&t->m, "start%s #%d at %" PRIu64, after, i, a->at_us);
  return 0;
}

static inline void seq_cancel(taps_protocol_attempt *attempt, void *user_data) {
  SeqTest *t = (SeqTest *)user_data;
  /* The newest attempt with this pointer (a freed handle's memory may be
   * reused by a later attempt). */
  for (int i = t->n - 1; i >= 0; i--) {
    SeqAttempt *a = &t->a[i];
    if (a->handle != attempt || a->cancelled) continue;
    CHECK(a->live || a->reported);
    a->cancelled = 1;
    /* The header allows a cancel for an attempt just reported ready. */
    if (!t->quiet) mock_logf(&t->m, a->live ? "cancel #%d" : "cancel #%d (reported)", i);
    a->live = 0;
    return;
  }
  mock_logf(&t->m, "cancel of an unknown attempt %p", (void *)attempt);
}

static inline void seq_close(void *protocol_connection, int fd, void *user_data) {
  SeqTest *t = (SeqTest *)user_data;
  mock_logf(&t->m, "close %ld fd %d", (long)(intptr_t)protocol_connection, fd);
}

/* Attempt #i (start order) is ready with `fd` (-1: none): its connection
 * handle is 100 + i. */
static inline void seq_ready_fd(SeqTest *t, int i, int fd) {
  CHECK(i >= 0 && i < t->n);
  CHECK(t->a[i].live);
  t->a[i].live = 0;
  t->a[i].reported = 1;
  CHECK_CODE(taps_protocol_attempt_ready(t->a[i].handle, fd, (void *)(intptr_t)(100 + i)), TAPS_OK);
}

static inline void seq_ready(SeqTest *t, int i) { seq_ready_fd(t, i, -1); }

static inline void seq_fail(SeqTest *t, int i, int err) {
  CHECK(i >= 0 && i < t->n);
  CHECK(t->a[i].live);
  t->a[i].live = 0;
  t->a[i].reported = 1;
  CHECK_CODE(taps_protocol_attempt_failed(t->a[i].handle, err), TAPS_OK);
}

/* A manual-clock loop with "relay" (reliable, multistreaming; mock_props
 * keeps it alone in the race) and a preconnection to hosts[0..n) on port
 * 443 in t->pre. The test then makes its pool or group. */
static inline void seq_init(SeqTest *t, const char *const *hosts, size_t n) {
  memset(t, 0, sizeof *t);
  mock_init(&t->m);
  taps_protocol_implementation impl;
  memset(&impl, 0, sizeof impl);
  impl.name = "relay";
  impl.properties = TAPS_PROTOCOL_FLAG_RELIABLE | TAPS_PROTOCOL_FLAG_MULTISTREAMING;
  impl.start = seq_start;
  impl.cancel = seq_cancel;
  impl.close = seq_close;
  impl.user_data = t;
  CHECK_CODE(taps_event_loop_add_protocol(t->m.loop, &impl), TAPS_OK);
  t->props = mock_props();
  t->pre = mock_preconnection(&t->m, hosts, n, t->props, NULL);
}

/* After the test freed its pool or group: run what is left, check that
 * nothing started after the free, free the rest. */
static inline void seq_finish(SeqTest *t) {
  CHECK(t->freed);
  mock_run(&t->m);
  if (t->started_after_free > 0) {
    fprintf(stderr, "%d attempts started after the pool or group was freed\n", t->started_after_free);
    mock_print_log(&t->m);
    exit(1);
  }
  taps_preconnection_free(t->pre);
  t->pre = NULL;
  taps_transport_properties_free(t->props);
  t->props = NULL;
  taps_event_loop_free(t->m.loop);
  t->m.loop = NULL;
}

/* Record event `s` (an event callback's): none may come once freed. */
static inline void seq_event(SeqTest *t, const char *s) {
  if (t->freed) {
    fprintf(stderr, "an event after the pool or group was freed: %s\n", s);
    exit(1);
  }
  CHECK(t->n_ev < SEQ_EVENTS);
  snprintf(t->ev[t->n_ev], sizeof t->ev[0], "%s", s);
  t->ev_at[t->n_ev] = taps_event_loop_now_us(t->m.loop);
  t->n_ev++;
}

static inline void seq_print_events(const SeqTest *t, int from) {
  fprintf(stderr, "events from #%d (%d in all):\n", from, t->n_ev);
  for (int i = from; i < t->n_ev; i++) fprintf(stderr, "  %2d: %s (at %" PRIu64 ")\n", i, t->ev[i], t->ev_at[i]);
}

/* The events from index `from` on equal `want` (NULL-terminated). */
static inline void seq_expect_events_(const SeqTest *t, int from, const char *file, int line,
                                      const char *const *want) {
  int n = 0;
  while (want[n] != NULL) n++;
  int ok = t->n_ev - from == n;
  for (int i = 0; ok && i < n; i++) ok = strcmp(want[i], t->ev[from + i]) == 0;
  if (!ok) {
    fprintf(stderr, "%s:%d: the events differ; expected from #%d:\n", file, line, from);
    for (int i = 0; i < n; i++) fprintf(stderr, "  %2d: %s\n", from + i, want[i]);
    seq_print_events(t, from);
    mock_print_log(&t->m);
    exit(1);
  }
}
#define SEQ_EVENTS_FROM(t, from, ...) \
  seq_expect_events_((t), (from), __FILE__, __LINE__, (const char *const[]){__VA_ARGS__, NULL})
#define SEQ_NO_EVENTS_FROM(t, from) seq_expect_events_((t), (from), __FILE__, __LINE__, (const char *const[]){NULL})

/* ---- main ------------------------------------------------------------- */

typedef struct MockCase {
  const char *name;
  void (*run)(void);
} MockCase;

#define MOCK_CASE(name) {#name, case_##name}

/* Bytes the process has allocated now, and how far two counts of the same
 * allocations may differ: ASan's count in a sanitizer build (the bytes
 * asked for: exact, tolerance 0); glibc's when its per-thread cache is off
 * (GLIBC_TUNABLES=glibc.malloc.tcache_count=0, as ctest runs these tests:
 * with the cache on, mallinfo2 counts cached free chunks as in use). glibc
 * counts chunk sizes, and a request is served by a larger free chunk when
 * splitting it would leave less than a minimal chunk: the same objects can
 * take up to 48 bytes more or less depending on which free chunks there
 * were, so glibc's count gets a tolerance of 64 bytes (the ASan build runs
 * every case with the exact count). Returns 0 (no check) otherwise. */
static inline int mock_heap_in_use(size_t *out, size_t *tolerance) {
#if defined(MOCK_ASAN)
  *out = __sanitizer_get_current_allocated_bytes();
  *tolerance = 0;
  return 1;
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  const char *t = getenv("GLIBC_TUNABLES");
  if (t == NULL || strstr(t, "glibc.malloc.tcache_count=0") == NULL) return 0;
  *out = mallinfo2().uordblks;
  *tolerance = 64;
  return 1;
#else
  (void)out;
  (void)tolerance;
  return 0;
#endif
}

/* Runs the case named by argv[1], or every case. Each case runs twice:
 * the first run warms up what the process allocates once (stdio buffers,
 * the library's thread-local error, the Rust runtime's thread data); the
 * second must leave the heap as it found it (within the count's
 * tolerance, see mock_heap_in_use), since every case frees everything it
 * made ("nothing left allocated"; LeakSanitizer alone can miss a leak that
 * a stale register still points at). */
static inline int mock_main(const MockCase *cases, size_t n, int argc, char **argv) {
  int ran = 0;
  for (size_t i = 0; i < n; i++) {
    if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue;
    TEST_BEGIN(cases[i].name);
    cases[i].run();
    size_t before = 0, after = 0, tolerance = 0;
    int counted = mock_heap_in_use(&before, &tolerance);
    cases[i].run();
    if (counted && mock_heap_in_use(&after, &tolerance) && after > before + tolerance) {
      fprintf(stderr, "%s: the heap grew by %lld bytes in the second run: something was not freed\n",
              cases[i].name, (long long)after - (long long)before);
      exit(1);
    }
    TEST_PASS(cases[i].name);
    ran++;
  }
  if (ran == 0) {
    fprintf(stderr, "no case named %s; cases:\n", argc > 1 ? argv[1] : "?");
    for (size_t i = 0; i < n; i++) fprintf(stderr, "  %s\n", cases[i].name);
    return 2;
  }
  return 0;
}

#define MOCK_MAIN(...)                                                           \
  int main(int argc, char **argv) {                                              \
    static const MockCase cases[] = {__VA_ARGS__};                               \
    return mock_main(cases, sizeof cases / sizeof cases[0], argc, argv);        \
  }

/* Real-clock loopback helpers for the TCP cases. */

/* Accept what is pending on the non-blocking listener `l` into fds. */
static inline void tcp_accept(int l, int *fds, int *n, int max) {
  for (;;) {
    int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) break;
    CHECK(*n < max);
    fds[(*n)++] = fd;
  }
}

/* The local (peer = 0) or remote (peer = 1) port of a socket. */
static inline uint16_t sock_port(int fd, int peer) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  CHECK((peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len)) == 0);
  return test_addr_port(&ss);
}

/* A non-blocking 127.0.0.1 listener into *listener, a real-clock loop and
 * a taps_preconnection to the listener into *loop and *pre (the caller frees
 * them); returns the listener's port. */
static inline uint16_t tcp_fixture(int *listener, taps_event_loop **loop, taps_preconnection **pre) {
  uint16_t port = 0;
  *listener = test_listen(AF_INET, &port);
  CHECK(*listener >= 0);
  CHECK(fcntl(*listener, F_SETFL, fcntl(*listener, F_GETFL) | O_NONBLOCK) == 0);
  *loop = taps_event_loop_new();
  CHECK(*loop != NULL);
  taps_remote_endpoint *ep = test_remote_literal(AF_INET, port);
  const taps_remote_endpoint *eps[] = {ep};
  *pre = taps_preconnection_new(*loop, eps, 1, NULL, NULL);
  CHECK(*pre != NULL);
  taps_remote_endpoint_free(ep);
  return port;
}

#endif /* TAPS_MOCK_H */
