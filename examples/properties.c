/* Selection properties (RFC 9622 §6.2) choose and order the protocols of
 * a race; racing types (RFC 9623 §4.3) say how the branches of one level
 * of the candidate tree start relative to each other.
 *
 *   properties   three races to 127.0.0.1 (a listener this program runs):
 *                1. reliability No Preference, message boundaries Prefer:
 *                   UDP (a connected UDP socket, ready at once) wins;
 *                2. message boundaries Prohibit: only TCP races;
 *                3. ::1 and 127.0.0.1 with the endpoint level immediate:
 *                   both addresses start at once, 127.0.0.1 connects
 *
 * Exit 0 when each race went as described, 1 otherwise. */
#include <taps_racing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint16_t g_port;

/* Race to `hosts` with `props`, the endpoint level immediate if asked.
 * Prints the attempts; returns whether protocol `want` won. */
static int race(EventLoop *loop, const char *const *hosts, size_t n, const TransportProperties *props, int immediate,
                const char *want) {
  RemoteEndpoint *eps[2];
  for (size_t i = 0; i < n; i++) {
    eps[i] = remote_endpoint_new();
    remote_endpoint_with_hostname(eps[i], hosts[i]);
    remote_endpoint_with_port(eps[i], g_port);
  }
  Preconnection *p = preconnection_new(loop, (const RemoteEndpoint *const *)eps, n, props, NULL);
  for (size_t i = 0; i < n; i++) remote_endpoint_free(eps[i]);
  if (p == NULL) return 0;
  if (immediate) preconnection_set_racing_type(p, BRANCH_KIND_ENDPOINT, RACING_TYPE_IMMEDIATE, 0);
  ConnectionCallbacks cb;
  memset(&cb, 0, sizeof cb); /* no callbacks: read the outcome after the run */
  Connection *conn = NULL;
  if (preconnection_initiate_with_racing(p, cb, &conn) != TAPS_OK) {
    printf("  %s\n", taps_last_error_message());
    preconnection_free(p);
    return 0;
  }
  event_loop_run(loop);
  for (size_t i = 0; i < connection_attempt_count(conn); i++) {
    AttemptInfo a;
    char ip[INET6_ADDRSTRLEN] = "?";
    connection_get_attempt(conn, i, &a);
    if (a.address.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a.address)->sin6_addr, ip, sizeof ip);
    else
      inet_ntop(AF_INET, &((struct sockaddr_in *)&a.address)->sin_addr, ip, sizeof ip);
    printf("  attempt %zu: %s %s, started %.3f ms, outcome %d\n", i, a.protocol, ip, a.started_us / 1000.0,
           a.outcome);
  }
  const char *w = connection_get_protocol(conn);
  printf("  winner: %s\n", w ? w : "none");
  int ok = w != NULL && strcmp(w, want) == 0;
  connection_free(conn);
  preconnection_free(p);
  return ok;
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
  g_port = ntohs(sa.sin_port);
  EventLoop *loop = event_loop_new();
  if (loop == NULL) return 1;
  static const char *const v4[] = {"127.0.0.1"};
  static const char *const both[] = {"::1", "127.0.0.1"};
  int ok = 1;

  printf("1. reliability No Preference, message boundaries Prefer\n");
  TransportProperties *props = transport_properties_new();
  transport_properties_set(props, SELECTION_PROPERTY_RELIABILITY, PREFERENCE_NO_PREFERENCE);
  transport_properties_set(props, SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, PREFERENCE_PREFER);
  ok &= race(loop, v4, 1, props, 0, "udp");
  transport_properties_free(props);

  printf("2. message boundaries Prohibit\n");
  props = transport_properties_new();
  transport_properties_set(props, SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, PREFERENCE_PROHIBIT);
  ok &= race(loop, v4, 1, props, 0, "tcp");
  transport_properties_free(props);

  printf("3. endpoints raced immediately\n");
  ok &= race(loop, both, 2, NULL, 1, "tcp");

  event_loop_free(loop);
  close(l);
  return ok ? 0 : 1;
}
