/* A resolver the program brings (a DNS library, a service registry, a
 * table), asked once per family for each host name of a race: AAAA and A
 * separately and at once (RFC 8305 §3). This one answers from a table in
 * memory, at once from inside `resolve` (allowed); a resolver that works
 * asynchronously keeps the taps_resolver_query and answers later, from any
 * thread, with taps_resolver_query_answer or taps_resolver_query_fail.
 *
 *   user_resolver   races "db.internal" (::1 and 127.0.0.1 in the table)
 *                   to a listener on 127.0.0.1 that this program runs:
 *                   IPv6 is tried first and refused, IPv4 connects
 *
 * Exit 0 when connected, 1 otherwise. */
#include <taps_racing.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct HostEntry {
  const char *name;
  const char *address; /* an IPv4 or IPv6 literal */
} HostEntry;

static const HostEntry table[] = {
    {"db.internal", "::1"},
    {"db.internal", "127.0.0.1"},
};

/* Called on the loop's thread with the loop locked: answer now or later
 * through `query` (once), or return an error code (≠ 0) to fail at once. */
static int table_resolve(taps_resolver_query *query, const char *hostname, int family, void *user_data) {
  (void)user_data;
  struct sockaddr_storage addrs[4];
  size_t n = 0;
  int known = 0;
  memset(addrs, 0, sizeof addrs);
  for (size_t i = 0; i < sizeof table / sizeof table[0] && n < 4; i++) {
    if (strcmp(table[i].name, hostname) != 0) continue;
    known = 1;
    if (family == AF_INET6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&addrs[n];
      if (inet_pton(AF_INET6, table[i].address, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6; /* the port is the endpoint's */
        n++;
      }
    } else {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&addrs[n];
      if (inet_pton(AF_INET, table[i].address, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        n++;
      }
    }
  }
  if (!known) return EAI_NONAME;
  /* No address of this family is an empty answer, not an error. */
  return taps_resolver_query_answer(query, addrs, n) == TAPS_OK ? 0 : EAI_FAIL;
}

static int on_ready(taps_connection *c, void *ud) {
  (void)ud;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char ip[INET6_ADDRSTRLEN] = "?";
  memset(&ss, 0, sizeof ss);
  if (taps_connection_get_remote_address(c, &ss, &len) == TAPS_OK && ss.ss_family == AF_INET)
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
  else if (ss.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
  printf("connected to %s\n", ip);
  return 0;
}

static int on_error(taps_connection *c, void *ud) {
  (void)ud;
  printf("failed: %s\n", taps_strerror(taps_connection_get_error(c)));
  return 0;
}

int main(void) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (l < 0 || bind(l, (struct sockaddr *)&sa, sl) != 0 || listen(l, 16) != 0 ||
      getsockname(l, (struct sockaddr *)&sa, &sl) != 0) {
    perror("listener");
    return 1;
  }

  taps_event_loop *loop = taps_event_loop_new();
  taps_resolver_implementation resolver = {.resolve = table_resolve, .cancel = NULL, .user_data = NULL};
  if (loop == NULL || taps_event_loop_set_resolver(loop, &resolver) != TAPS_OK) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }

  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  taps_remote_endpoint_with_hostname(ep, "db.internal");
  taps_remote_endpoint_with_port(ep, ntohs(sa.sin_port));
  const taps_remote_endpoint *remotes[] = {ep};
  taps_preconnection *p = taps_preconnection_new(loop, remotes, 1, NULL, NULL);
  taps_connection_callbacks cb = {.ready = on_ready, .establishment_error = on_error};
  taps_connection *conn = NULL;
  if (p == NULL || taps_preconnection_initiate_with_racing(p, cb, &conn) != TAPS_OK) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }
  taps_event_loop_run(loop);

  for (size_t i = 0; i < taps_connection_attempt_count(conn); i++) {
    taps_attempt_info a;
    char ip[INET6_ADDRSTRLEN] = "?";
    taps_connection_get_attempt(conn, i, &a);
    if (a.address.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a.address)->sin6_addr, ip, sizeof ip);
    else
      inet_ntop(AF_INET, &((struct sockaddr_in *)&a.address)->sin_addr, ip, sizeof ip);
    printf("attempt %zu: %s, started %.3f ms, outcome %d, errno %d\n", i, ip, a.started_us / 1000.0, a.outcome,
           a.os_error);
  }
  int ok = taps_connection_get_fd(conn) >= 0;
  taps_connection_free(conn);
  taps_preconnection_free(p);
  taps_remote_endpoint_free(ep);
  taps_event_loop_free(loop);
  close(l);
  return ok ? 0 : 1;
}
