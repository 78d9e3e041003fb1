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
#include <taps_racing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *kind_name(taps_pool_event_kind k) {
  switch (k) {
    case TAPS_POOL_EVENT_KIND_RACE_STARTED: return "race started";
    case TAPS_POOL_EVENT_KIND_ATTEMPT_SUCCEEDED: return "attempt succeeded";
    case TAPS_POOL_EVENT_KIND_ATTEMPT_FAILED: return "attempt failed";
    case TAPS_POOL_EVENT_KIND_RACE_WON: return "race won";
    case TAPS_POOL_EVENT_KIND_RACE_FAILED: return "race failed";
    case TAPS_POOL_EVENT_KIND_CONNECTION_BUFFERED: return "connection buffered";
    case TAPS_POOL_EVENT_KIND_CONNECTION_DISPOSED: return "connection disposed";
    case TAPS_POOL_EVENT_KIND_BACKOFF: return "backoff";
  }
  return "?";
}

/* Called on the loop's thread for every event. */
static void on_event(const taps_pool_event *e, void *user_data) {
  (void)user_data;
  printf("  event: %-19s count %u, %.3f ms, errno %d\n", kind_name(e->kind), e->count, e->elapsed_us / 1000.0,
         e->os_error);
}

typedef struct Caller {
  const char *name;
  int ready, failed;
} Caller;

static int on_ready(taps_connection *c, void *user_data) {
  Caller *caller = (Caller *)user_data;
  caller->ready = 1;
  printf("  %s: ready, fd %d\n", caller->name, taps_connection_get_fd(c));
  return 0;
}

static int on_error(taps_connection *c, void *user_data) {
  Caller *caller = (Caller *)user_data;
  caller->failed = 1;
  printf("  %s: failed: %s\n", caller->name, taps_strerror(taps_connection_get_error(c)));
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

  taps_pool_options opts = taps_pool_options_default();
  opts.buffer_size = 2;       /* keep two ready connections warm */
  opts.race_count = 3;        /* a waiting caller gets a race of three */
  opts.refill_race_count = 1; /* refill one attempt at a time */
  opts.backoff_initial_ms = 500;
  taps_connection_pool *pool = taps_connection_pool_new(p, &opts, on_event, NULL);
  taps_preconnection_free(p); /* the pool has its own copy */
  if (pool == NULL) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }

  printf("filling the buffer\n");
  taps_event_loop_run(loop); /* returns when the refill races are over */
  printf("buffered: %zu\n", taps_connection_pool_buffered(pool));

  printf("three callers at once\n");
  Caller callers[3] = {{"caller 1", 0, 0}, {"caller 2", 0, 0}, {"caller 3", 0, 0}};
  taps_connection *conns[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    taps_connection_callbacks cb = {.ready = on_ready, .establishment_error = on_error, .user_data = &callers[i]};
    if (taps_connection_pool_acquire(pool, cb, &conns[i]) != TAPS_OK) {
      fprintf(stderr, "acquire: %s\n", taps_last_error_message());
      return 1;
    }
    printf("  %s: acquire, %zu left in the buffer\n", callers[i].name, taps_connection_pool_buffered(pool));
  }
  taps_event_loop_run(loop); /* until every caller is served and the races are over */
  printf("buffered: %zu\n", taps_connection_pool_buffered(pool));

  int ok = 1;
  for (int i = 0; i < 3; i++) {
    struct sockaddr_storage peer;
    socklen_t len = 0;
    ok &= callers[i].ready && taps_connection_get_remote_address(conns[i], &peer, &len) == TAPS_OK &&
          ntohs(((struct sockaddr_in *)&peer)->sin_port) == port;
    taps_connection_free(conns[i]); /* the callers' connections are their own */
  }
  taps_connection_pool_free(pool); /* closes the buffered connections */
  taps_event_loop_free(loop);
  close(l);
  printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
