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
static int race(taps_event_loop *loop, const char *const *hosts, size_t n, const taps_transport_properties *props, int immediate,
                const char *want) {
  taps_remote_endpoint *eps[2];
  for (size_t i = 0; i < n; i++) {
    eps[i] = taps_remote_endpoint_new();
    taps_remote_endpoint_with_hostname(eps[i], hosts[i]);
    taps_remote_endpoint_with_port(eps[i], g_port);
  }
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)eps, n, props, NULL);
  for (size_t i = 0; i < n; i++) taps_remote_endpoint_free(eps[i]);
  if (p == NULL) return 0;
  if (immediate) taps_preconnection_set_racing_type(p, TAPS_BRANCH_KIND_ENDPOINT, TAPS_RACING_TYPE_IMMEDIATE, 0);
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb); /* no callbacks: read the outcome after the run */
  taps_connection *conn = NULL;
  if (taps_preconnection_initiate_with_racing(p, cb, &conn) != TAPS_OK) {
    printf("  %s\n", taps_last_error_message());
    taps_preconnection_free(p);
    return 0;
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
    printf("  attempt %zu: %s %s, started %.3f ms, outcome %d\n", i, a.protocol, ip, a.started_us / 1000.0,
           a.outcome);
  }
  const char *w = taps_connection_get_protocol(conn);
  printf("  winner: %s\n", w ? w : "none");
  int ok = w != NULL && strcmp(w, want) == 0;
  taps_connection_free(conn);
  taps_preconnection_free(p);
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
  taps_event_loop *loop = taps_event_loop_new();
  if (loop == NULL) return 1;
  static const char *const v4[] = {"127.0.0.1"};
  static const char *const both[] = {"::1", "127.0.0.1"};
  int ok = 1;

  printf("1. reliability No Preference, message boundaries Prefer\n");
  taps_transport_properties *props = taps_transport_properties_new();
  taps_transport_properties_set(props, TAPS_SELECTION_PROPERTY_RELIABILITY, TAPS_PREFERENCE_NO_PREFERENCE);
  taps_transport_properties_set(props, TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, TAPS_PREFERENCE_PREFER);
  ok &= race(loop, v4, 1, props, 0, "udp");
  taps_transport_properties_free(props);

  printf("2. message boundaries Prohibit\n");
  props = taps_transport_properties_new();
  taps_transport_properties_set(props, TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, TAPS_PREFERENCE_PROHIBIT);
  ok &= race(loop, v4, 1, props, 0, "tcp");
  taps_transport_properties_free(props);

  printf("3. endpoints raced immediately\n");
  ok &= race(loop, both, 2, NULL, 1, "tcp");

  taps_event_loop_free(loop);
  close(l);
  return ok ? 0 : 1;
}
