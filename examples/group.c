/* A connection group (issue 7): K connections raced from one
 * taps_preconnection, streams (or requests) spread over them with a
 * per-connection capacity, failover when one dies, a rebuild until K are
 * back.
 *
 *   group   a group of 2 TCP connections to a listener on 127.0.0.1 that
 *           this program runs: 6 streams are assigned round robin (1, 2,
 *           1, 2, ...) up to the capacity of 3 each, the 7th is refused
 *           (TAPS_ERROR_ALL_MEMBERS_FULL); then the server closes the first
 *           member's connection: MEMBER_FAILED with the 3 streams it
 *           carried, new streams go to the other member at once, and the
 *           group races a replacement. Every group event is printed.
 *
 * Exit 0 when the group was built, failed over and rebuilt to 2, 1
 * otherwise. */
#include <taps_racing.h>

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct Seen {
  int joined, failed;
  uint64_t failed_member;
  uint32_t failed_streams;
} Seen;

/* Called on the loop's thread for every event. */
static void on_event(const taps_group_event *e, void *user_data) {
  Seen *seen = (Seen *)user_data;
  switch (e->kind) {
    case TAPS_GROUP_EVENT_KIND_MEMBER_JOINED:
      seen->joined++;
      printf("  event: member %" PRIu64 " joined (connected in %.3f ms)\n", e->member, e->connect_time_us / 1000.0);
      break;
    case TAPS_GROUP_EVENT_KIND_MEMBER_FAILED:
      seen->failed++;
      seen->failed_member = e->member;
      seen->failed_streams = e->streams;
      printf("  event: member %" PRIu64 " failed with %u open streams\n", e->member, e->streams);
      break;
    case TAPS_GROUP_EVENT_KIND_ALL_FAILED: printf("  event: every member failed\n"); break;
    case TAPS_GROUP_EVENT_KIND_RECOVERED: printf("  event: recovered (member %" PRIu64 ")\n", e->member); break;
    case TAPS_GROUP_EVENT_KIND_REBUILD_FAILED:
      printf("  event: rebuild failed, next in %.0f ms\n", e->connect_time_us / 1000.0);
      break;
  }
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Run the loop until `failed` member failures were seen and the group has
 * `want` members (any number: SIZE_MAX), or 5 s passed. Between races the loop has nothing pending
 * (the members are only watched), so taps_event_loop_run_once returns at once:
 * wait on its fd then. */
static int run_until(taps_event_loop *loop, const taps_connection_group *g, const Seen *seen, size_t want, int failed) {
  uint64_t until = now_ms() + 5000;
  while ((want != SIZE_MAX && taps_connection_group_members(g, NULL, 0) != want) || seen->failed != failed) {
    if (now_ms() > until) return 0;
    int n = taps_event_loop_run_once(loop, 10);
    if (n < 0) return 0;
    if (n == 0) {
      struct pollfd p = {taps_event_loop_get_fd(loop), POLLIN, 0};
      (void)poll(&p, 1, 10);
    }
  }
  return 1;
}

static uint16_t port_of(int fd, int peer) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  int rc = peer ? getpeername(fd, (struct sockaddr *)&sa, &len) : getsockname(fd, (struct sockaddr *)&sa, &len);
  return rc == 0 ? ntohs(sa.sin_port) : 0;
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
  uint16_t port = ntohs(sa.sin_port);

  taps_event_loop *loop = taps_event_loop_new();
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  taps_remote_endpoint_with_hostname(ep, "127.0.0.1");
  taps_remote_endpoint_with_port(ep, port);
  const taps_remote_endpoint *remotes[] = {ep};
  taps_preconnection *p = taps_preconnection_new(loop, remotes, 1, NULL, NULL);
  taps_remote_endpoint_free(ep);
  if (p == NULL) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }

  taps_group_options opts = taps_group_options_default();
  opts.size = 2;                            /* K members */
  opts.policy = TAPS_ASSIGN_POLICY_ROUND_ROBIN;  /* 1, 2, 1, 2, ... */
  opts.capacity = 3;                        /* streams per member at most */
  opts.backoff_initial_ms = 100;            /* after a rebuild race that failed */
  Seen seen = {0, 0, 0, 0};
  taps_connection_group *g = taps_connection_group_new(p, &opts, on_event, &seen);
  taps_preconnection_free(p); /* the group has its own copy */
  if (g == NULL) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }

  printf("building 2 members\n");
  int ok = run_until(loop, g, &seen, 2, 0);
  uint64_t ids[2] = {0, 0};
  taps_connection_group_members(g, ids, 2);
  for (int i = 0; ok && i < 2; i++) {
    int fd = taps_connection_group_member_fd(g, ids[i]); /* owned by the group */
    printf("  member %" PRIu64 ": fd %d, local port %u\n", ids[i], fd, port_of(fd, 0));
    ok = fd >= 0 && port_of(fd, 1) == port;
  }

  printf("assigning streams (capacity 3 per member)\n");
  int assigned = 0, full = 0;
  for (int i = 0; ok && i < 7; i++) {
    uint64_t m;
    int rc = taps_connection_group_assign(g, &m); /* counted open until released */
    if (rc == TAPS_OK) {
      printf("  stream %d -> member %" PRIu64 "\n", i + 1, m);
      ok = m == ids[i % 2];
      assigned++;
    } else {
      printf("  stream %d: %s\n", i + 1, taps_strerror(rc));
      full = rc == TAPS_ERROR_ALL_MEMBERS_FULL;
    }
  }
  ok = ok && assigned == 6 && full;
  /* A stream on the second member ends: its slot is free again. */
  ok = ok && taps_connection_group_release_stream(g, ids[1], 0) == TAPS_OK;

  printf("the server closes member %" PRIu64 "'s connection\n", ids[0]);
  uint16_t victim = port_of(taps_connection_group_member_fd(g, ids[0]), 0);
  int srv[2] = {-1, -1};
  for (int i = 0; ok && i < 2; i++) {
    srv[i] = accept(l, NULL, NULL); /* both are connected already */
    ok = srv[i] >= 0;
  }
  for (int i = 0; ok && i < 2; i++) {
    if (port_of(srv[i], 1) == victim) {
      close(srv[i]); /* the peer goes away: the member fails */
      srv[i] = -1;
    }
  }
  ok = ok && run_until(loop, g, &seen, SIZE_MAX, 1);
  ok = ok && seen.failed_member == ids[0] && seen.failed_streams == 3;
  /* Failover: the next stream goes to the other member at once. */
  uint64_t next = ids[0];
  ok = ok && taps_connection_group_assign(g, &next) == TAPS_OK && next != ids[0];
  printf("  the next stream -> member %" PRIu64 "\n", next);
  printf("rebuilding\n");
  ok = ok && run_until(loop, g, &seen, 2, 1) && seen.joined == 3;

  uint64_t now[2] = {0, 0};
  taps_connection_group_members(g, now, 2);
  printf("members now: %" PRIu64 ", %" PRIu64 "\n", now[0], now[1]);
  taps_group_member_metrics mm;
  for (uint64_t m = 0; m <= now[1]; m++) {
    if (taps_connection_group_member_metrics(g, m, &mm) != TAPS_OK) continue;
    printf("  member %" PRIu64 ": %s, %" PRIu64 " assigned, %u open, %" PRIu64 " failed, connect %.3f ms\n", m,
           mm.live ? "live" : "failed", mm.streams_assigned, mm.streams_open, mm.streams_failed,
           mm.connect_time_us / 1000.0);
  }

  taps_connection_group_free(g); /* closes the members */
  taps_event_loop_free(loop);
  for (int i = 0; i < 2; i++) {
    if (srv[i] >= 0) close(srv[i]);
  }
  close(l);
  printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
