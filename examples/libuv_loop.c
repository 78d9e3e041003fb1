/* A taps_event_loop embedded in a libuv loop: libuv watches the loop's one fd
 * (taps_event_loop_get_fd) and a timer set from taps_event_loop_get_timeout_ms, and
 * calls taps_event_loop_process, which never blocks. Callbacks run on the libuv
 * thread, between libuv's own callbacks.
 *
 *   libuv_loop            race "localhost" (resolved on the taps_event_loop's
 *                         resolver threads) to a libuv TCP server on
 *                         127.0.0.1; an IPv6 answer, if any, is refused
 *   libuv_loop HOST PORT  race HOST PORT instead
 *
 * Exit 0 when the race was won, 1 when it failed, 2 on bad usage. */
#include <taps_racing.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct App {
  uv_loop_t *uv;
  uv_poll_t poll;   /* the taps_event_loop's fd */
  uv_timer_t timer; /* its next timer */
  uv_tcp_t server;  /* the demo's server (no HOST PORT given) */
  int have_server;
  taps_event_loop *loop;
  taps_connection *conn;
  int result; /* exit code */
  int done;
} App;

static void on_closed_handle(uv_handle_t *h) { (void)h; }

static void stop_watching(App *app) {
  uv_poll_stop(&app->poll);
  uv_timer_stop(&app->timer);
  uv_close((uv_handle_t *)&app->poll, on_closed_handle);
  uv_close((uv_handle_t *)&app->timer, on_closed_handle);
  if (app->have_server) uv_close((uv_handle_t *)&app->server, on_closed_handle);
}

static void on_timer(uv_timer_t *t);

/* Process the taps_event_loop, then re-arm the timer from its next deadline. */
static void process(App *app) {
  int n = taps_event_loop_process(app->loop);
  if (n < 0) {
    fprintf(stderr, "taps_event_loop_process: %s\n", taps_strerror(n));
    app->result = 1;
    app->done = 1;
  }
  if (app->done) {
    stop_watching(app);
    return;
  }
  int ms = taps_event_loop_get_timeout_ms(app->loop);
  if (ms >= 0)
    uv_timer_start(&app->timer, on_timer, (uint64_t)ms, 0);
  else
    uv_timer_stop(&app->timer);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  process((App *)p->data);
}

static void on_timer(uv_timer_t *t) { process((App *)t->data); }

static int on_ready(taps_connection *c, void *ud) {
  (void)ud;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char addr[INET6_ADDRSTRLEN] = "?";
  if (taps_connection_get_remote_address(c, &ss, &len) == TAPS_OK) {
    if (ss.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
    else
      inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
  }
  printf("ready: connection %llu to %s, fd %d, after %zu attempt(s)\n", (unsigned long long)taps_connection_get_id(c),
         addr, taps_connection_get_fd(c), taps_connection_attempt_count(c));
  for (size_t i = 0; i < taps_connection_attempt_count(c); i++) {
    taps_attempt_info a;
    if (taps_connection_get_attempt(c, i, &a) == TAPS_OK)
      printf("  attempt %zu: family %s, started %.2f ms, outcome %d, errno %d\n", i,
             a.address.ss_family == AF_INET6 ? "IPv6" : "IPv4", a.started_us / 1000.0, (int)a.outcome, a.os_error);
  }
  taps_connection_close(c); /* 'closed' follows, on this thread */
  return 0;
}

static int on_error(taps_connection *c, void *ud) {
  App *app = (App *)ud;
  fprintf(stderr, "race failed: %s\n", taps_strerror(taps_connection_get_error(c)));
  app->result = 1;
  app->done = 1;
  return 0;
}

static int on_closed(taps_connection *c, void *ud) {
  (void)c;
  App *app = (App *)ud;
  printf("closed\n");
  app->result = 0;
  app->done = 1;
  return 0;
}

/* The demo server: accept and close. */
static void on_accepted_closed(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  uv_tcp_t *client = malloc(sizeof *client);
  if (client == NULL) return;
  uv_tcp_init(server->loop, client);
  if (uv_accept(server, (uv_stream_t *)client) == 0) printf("server: accepted a connection\n");
  uv_close((uv_handle_t *)client, on_accepted_closed);
}

int main(int argc, char **argv) {
  if (argc != 1 && argc != 3) {
    fprintf(stderr, "usage: %s [HOST PORT]\n", argv[0]);
    return 2;
  }
  App app;
  memset(&app, 0, sizeof app);
  app.result = 1;
  app.uv = uv_default_loop();

  const char *host = "localhost";
  int port = 0;
  if (argc == 3) {
    host = argv[1];
    port = atoi(argv[2]);
    if (port <= 0 || port > 65535) {
      fprintf(stderr, "bad port %s\n", argv[2]);
      return 2;
    }
  } else {
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_tcp_init(app.uv, &app.server);
    if (uv_tcp_bind(&app.server, (const struct sockaddr *)&sin, 0) != 0 ||
        uv_listen((uv_stream_t *)&app.server, 16, on_connection) != 0) {
      fprintf(stderr, "cannot listen on 127.0.0.1\n");
      return 1;
    }
    int len = sizeof sin;
    uv_tcp_getsockname(&app.server, (struct sockaddr *)&sin, &len);
    port = ntohs(sin.sin_port);
    app.have_server = 1;
  }

  app.loop = taps_event_loop_new();
  if (app.loop == NULL) {
    fprintf(stderr, "taps_event_loop_new: %s\n", taps_last_error_message());
    return 1;
  }
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  if (taps_remote_endpoint_with_hostname(ep, host) != TAPS_OK || taps_remote_endpoint_with_port(ep, (uint16_t)port) != TAPS_OK) {
    fprintf(stderr, "bad host or port: %s\n", taps_last_error_message());
    return 2;
  }
  taps_racing_options opts = taps_racing_options_default();
  opts.total_timeout_ms = 10000;
  const taps_remote_endpoint *remotes[] = {ep};
  taps_preconnection *p = taps_preconnection_new(app.loop, remotes, 1, NULL, &opts);
  taps_remote_endpoint_free(ep);
  if (p == NULL) {
    fprintf(stderr, "taps_preconnection_new: %s\n", taps_last_error_message());
    return 1;
  }

  /* Watch the taps_event_loop from libuv: its fd, and a timer. */
  uv_poll_init(app.uv, &app.poll, taps_event_loop_get_fd(app.loop));
  app.poll.data = &app;
  uv_timer_init(app.uv, &app.timer);
  app.timer.data = &app;
  uv_poll_start(&app.poll, UV_READABLE, on_poll);

  taps_connection_callbacks cb = {.ready = on_ready, .establishment_error = on_error, .closed = on_closed, .user_data = &app};
  if (taps_preconnection_initiate_with_racing(p, cb, &app.conn) != TAPS_OK) {
    fprintf(stderr, "initiate: %s\n", taps_last_error_message());
    return 1;
  }
  process(&app); /* arm the timer for the race's first deadline */
  uv_run(app.uv, UV_RUN_DEFAULT);

  taps_connection_free(app.conn);
  taps_preconnection_free(p);
  taps_event_loop_free(app.loop);
  uv_loop_close(app.uv);
  return app.result;
}
