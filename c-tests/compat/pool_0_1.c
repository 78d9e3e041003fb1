/* FROZEN COPY of examples/pool.c as it was in taps-racing 0.1, written
 * against the 0.1 names (PoolEventKind, event_loop_new, ...). Do not
 * migrate it: the compat_pool_0_1 test compiles it unchanged except for
 * the one include line below, against <taps_racing_compat.h>, to prove
 * that programs written for 0.1 still build, link and race. */
/* A connection pool (issue 6): several attempts raced at once for each
 * caller that waits, a warm buffer of ready connections, backoff when
 * every attempt of a race fails.
 *
 *   pool   a pool of TCP connections to a listener on 127.0.0.1 that this
 *          program runs: it fills its buffer of 2, then three callers ask
 *          at once: the first two are served from the buffer, the third
 *          waits for a race of 3 attempts, whose spares refill the buffer.
 *          Every pool event is printed.
 *
 * Exit 0 when the three callers got connected sockets, 1 otherwise. */
#include <taps_racing_compat.h> /* 0.1: <taps_racing.h> */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *kind_name(PoolEventKind k) {
  switch (k) {
    case POOL_EVENT_KIND_RACE_STARTED: return "race started";
    case POOL_EVENT_KIND_ATTEMPT_SUCCEEDED: return "attempt succeeded";
    case POOL_EVENT_KIND_ATTEMPT_FAILED: return "attempt failed";
    case POOL_EVENT_KIND_RACE_WON: return "race won";
    case POOL_EVENT_KIND_RACE_FAILED: return "race failed";
    case POOL_EVENT_KIND_CONNECTION_BUFFERED: return "connection buffered";
    case POOL_EVENT_KIND_CONNECTION_DISPOSED: return "connection disposed";
    case POOL_EVENT_KIND_BACKOFF: return "backoff";
  }
  return "?";
}

/* Called on the loop's thread for every event. */
static void on_event(const PoolEvent *e, void *user_data) {
  (void)user_data;
  printf("  event: %-19s count %u, %.3f ms, errno %d\n", kind_name(e->kind), e->count, e->elapsed_us / 1000.0,
         e->os_error);
}

typedef struct Caller {
  const char *name;
  int ready, failed;
} Caller;

static int on_ready(Connection *c, void *user_data) {
  Caller *caller = (Caller *)user_data;
  caller->ready = 1;
  printf("  %s: ready, fd %d\n", caller->name, connection_get_fd(c));
  return 0;
}

static int on_error(Connection *c, void *user_data) {
  Caller *caller = (Caller *)user_data;
  caller->failed = 1;
  printf("  %s: failed: %s\n", caller->name, taps_strerror(connection_get_error(c)));
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
  uint16_t port = ntohs(sa.sin_port);

  EventLoop *loop = event_loop_new();
  RemoteEndpoint *ep = remote_endpoint_new();
  remote_endpoint_with_hostname(ep, "127.0.0.1");
  remote_endpoint_with_port(ep, port);
  const RemoteEndpoint *remotes[] = {ep};
  Preconnection *p = preconnection_new(loop, remotes, 1, NULL, NULL);
  remote_endpoint_free(ep);
  if (p == NULL) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }

  PoolOptions opts = pool_options_default();
  opts.buffer_size = 2;       /* keep two ready connections warm */
  opts.race_count = 3;        /* a waiting caller gets a race of three */
  opts.refill_race_count = 1; /* refill one attempt at a time */
  opts.backoff_initial_ms = 500;
  ConnectionPool *pool = connection_pool_new(p, &opts, on_event, NULL);
  preconnection_free(p); /* the pool has its own copy */
  if (pool == NULL) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }

  printf("filling the buffer\n");
  event_loop_run(loop); /* returns when the refill races are over */
  printf("buffered: %zu\n", connection_pool_buffered(pool));

  printf("three callers at once\n");
  Caller callers[3] = {{"caller 1", 0, 0}, {"caller 2", 0, 0}, {"caller 3", 0, 0}};
  Connection *conns[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    ConnectionCallbacks cb = {.ready = on_ready, .establishment_error = on_error, .user_data = &callers[i]};
    if (connection_pool_acquire(pool, cb, &conns[i]) != TAPS_OK) {
      fprintf(stderr, "acquire: %s\n", taps_last_error_message());
      return 1;
    }
    printf("  %s: acquire, %zu left in the buffer\n", callers[i].name, connection_pool_buffered(pool));
  }
  event_loop_run(loop); /* until every caller is served and the races are over */
  printf("buffered: %zu\n", connection_pool_buffered(pool));

  int ok = 1;
  for (int i = 0; i < 3; i++) {
    struct sockaddr_storage peer;
    socklen_t len = 0;
    ok &= callers[i].ready && connection_get_remote_address(conns[i], &peer, &len) == TAPS_OK &&
          ntohs(((struct sockaddr_in *)&peer)->sin_port) == port;
    connection_free(conns[i]); /* the callers' connections are their own */
  }
  connection_pool_free(pool); /* closes the buffered connections */
  event_loop_free(loop);
  close(l);
  printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
