/* Helpers of the hardening tests (issue 8): a minimal user protocol and a
 * minimal user resolver through the public header.
 *
 * Used by c-tests/test_every_function.c and c-tests/test_faults.c.
 * Separate from c-tests/mock.h on purpose: these tests only
 * need a protocol whose attempts the test completes by hand and a resolver
 * that answers, fails or never answers.
 */
#ifndef TAPS_HARDENING_H
#define TAPS_HARDENING_H

#include "test_util.h"

#define HX_MAX 64

/* A user protocol: every start is kept (handle, address, loop time) until
 * the test completes it with taps_protocol_attempt_ready / _failed, or the
 * library cancels it. `start_errno` > 0 fails every start at once. */
typedef struct HxProtocol {
  taps_event_loop *loop;
  char name[16];
  int start_errno;
  taps_protocol_attempt *handles[HX_MAX];
  uint64_t started_us[HX_MAX];
  int live[HX_MAX];
  int starts, cancels, closes;
} HxProtocol;

static int hx_start(taps_protocol_attempt *attempt, const struct sockaddr *address, socklen_t address_len,
                    const char *interface_name, const struct sockaddr *local_address,
                    socklen_t local_address_len, void *user_data) {
  (void)address;
  (void)address_len;
  (void)interface_name;
  (void)local_address;
  (void)local_address_len;
  HxProtocol *p = (HxProtocol *)user_data;
  if (p->starts >= HX_MAX) return EMFILE;
  int i = p->starts++;
  p->handles[i] = attempt;
  p->started_us[i] = taps_event_loop_now_us(p->loop);
  p->live[i] = p->start_errno <= 0;
  return p->start_errno > 0 ? p->start_errno : 0;
}

static void hx_cancel(taps_protocol_attempt *attempt, void *user_data) {
  HxProtocol *p = (HxProtocol *)user_data;
  p->cancels++;
  for (int i = p->starts - 1; i >= 0; i--) {
    if (p->live[i] && p->handles[i] == attempt) {
      p->live[i] = 0;
      return;
    }
  }
}

static void hx_close(void *protocol_connection, int fd, void *user_data) {
  (void)protocol_connection;
  (void)fd;
  ((HxProtocol *)user_data)->closes++;
}

/* The vtable of `p` (not registered). */
static inline taps_protocol_implementation hx_protocol_impl(HxProtocol *p) {
  taps_protocol_implementation impl;
  memset(&impl, 0, sizeof impl);
  impl.name = p->name;
  impl.properties = TAPS_PROTOCOL_FLAG_RELIABLE | TAPS_PROTOCOL_FLAG_MULTISTREAMING;
  impl.start = hx_start;
  impl.cancel = hx_cancel;
  impl.close = hx_close;
  impl.user_data = p;
  return impl;
}

/* Register `p` as protocol `name` on `loop`: reliable and multistreaming,
 * so that hx_props() (multistreaming required) races it alone. */
static inline void hx_add_protocol(taps_event_loop *loop, HxProtocol *p, const char *name) {
  memset(p, 0, sizeof *p);
  p->loop = loop;
  snprintf(p->name, sizeof p->name, "%s", name);
  taps_protocol_implementation impl = hx_protocol_impl(p);
  CHECK_CODE(taps_event_loop_add_protocol(loop, &impl), TAPS_OK);
}

/* Properties that keep the built-in TCP and UDP out of the race. */
static inline taps_transport_properties *hx_props(void) {
  taps_transport_properties *props = taps_transport_properties_new();
  CHECK(props != NULL);
  CHECK_CODE(taps_transport_properties_set(props, TAPS_SELECTION_PROPERTY_MULTISTREAMING, TAPS_PREFERENCE_REQUIRE), TAPS_OK);
  return props;
}

/* A user resolver. mode HX_NEVER keeps every query (never answers until
 * the test does); HX_LOOPBACK answers ::1 / 127.0.0.1 at once from inside
 * `resolve`; HX_FAIL fails every query at once (EAI_NONAME). */
enum { HX_NEVER, HX_LOOPBACK, HX_FAIL };
typedef struct HxResolver {
  int mode;
  taps_resolver_query *queries[HX_MAX];
  int families[HX_MAX];
  int live[HX_MAX];
  int asked, cancels;
  char hosts[HX_MAX][64];
  char last_host[300];
} HxResolver;

static int hx_resolve(taps_resolver_query *query, const char *hostname, int family, void *user_data) {
  HxResolver *r = (HxResolver *)user_data;
  snprintf(r->last_host, sizeof r->last_host, "%s", hostname);
  if (r->asked >= HX_MAX) return -1;
  int i = r->asked++;
  snprintf(r->hosts[i], sizeof r->hosts[i], "%s", hostname);
  r->queries[i] = query;
  r->families[i] = family;
  r->live[i] = 0;
  if (r->mode == HX_FAIL) return taps_resolver_query_fail(query, -2) == TAPS_OK ? 0 : -1;
  if (r->mode == HX_LOOPBACK) {
    struct sockaddr_storage ss;
    test_make_addr(family, 0, &ss);
    return taps_resolver_query_answer(query, &ss, 1) == TAPS_OK ? 0 : -1;
  }
  r->live[i] = 1;
  return 0;
}

static void hx_resolver_cancel(taps_resolver_query *query, void *user_data) {
  HxResolver *r = (HxResolver *)user_data;
  r->cancels++;
  for (int i = 0; i < r->asked; i++) {
    if (r->live[i] && r->queries[i] == query) r->live[i] = 0;
  }
}

/* The live query for `host` and `family` (AF_INET / AF_INET6), or NULL. */
static inline taps_resolver_query *hx_query(HxResolver *r, const char *host, int family) {
  for (int i = 0; i < r->asked; i++) {
    if (r->live[i] && r->families[i] == family && strcmp(r->hosts[i], host) == 0) {
      r->live[i] = 0;
      return r->queries[i];
    }
  }
  return NULL;
}

static inline void hx_set_resolver(taps_event_loop *loop, HxResolver *r, int mode) {
  memset(r, 0, sizeof *r);
  r->mode = mode;
  taps_resolver_implementation impl;
  memset(&impl, 0, sizeof impl);
  impl.resolve = hx_resolve;
  impl.cancel = hx_resolver_cancel;
  impl.user_data = r;
  CHECK_CODE(taps_event_loop_set_resolver(loop, &impl), TAPS_OK);
}

static inline taps_event_loop *hx_manual_loop(void) {
  taps_event_loop_options o;
  memset(&o, 0, sizeof o);
  o.manual_clock = true;
  taps_event_loop *loop = taps_event_loop_new_with_options(&o);
  CHECK(loop != NULL);
  return loop;
}

#endif /* TAPS_HARDENING_H */
