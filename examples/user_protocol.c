/* A protocol the program brings, raced by the library like built-in TCP
 * (RFC 9623 §4.1, the PROTOCOL level): "hello", a TCP connection that is
 * ready only once the server sent its greeting line. That is the
 * protocol's own handshake: the race is decided at the protocol's ready,
 * not at the transport's. Each attempt runs on a thread of its own with
 * blocking I/O; the completion functions may be called from any thread.
 *
 *   user_protocol   races "hello" (preferred: it preserves message
 *                   boundaries, which the properties prefer) and built-in
 *                   TCP (the next branch, one attempt delay later) to a
 *                   greeting server on 127.0.0.1 that this program runs
 *
 * Exit 0 when "hello" won, 1 otherwise. */
#include <taps_racing.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { MAX_ATTEMPTS = 16 };

/* One attempt. The library's handle is valid until we complete it or until
 * `cancel` for it returns; the protocol's mutex orders the two. */
typedef struct HelloAttempt {
  struct Hello *hello;
  taps_protocol_attempt *handle;
  struct sockaddr_storage addr;
  socklen_t addr_len;
  pthread_t thread;
  int fd;
  bool cancelled, completed, reported_ready;
} HelloAttempt;

/* The protocol's state (its user_data). A real protocol would keep its
 * attempts in a hash table keyed by the taps_protocol_attempt pointer. */
typedef struct Hello {
  pthread_mutex_t mu;
  HelloAttempt attempts[MAX_ATTEMPTS];
  int n;
} Hello;

/* Connect, then wait for "hello\n". */
static void *attempt_main(void *arg) {
  HelloAttempt *a = (HelloAttempt *)arg;
  Hello *h = a->hello;
  int err = 0;
  int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) err = errno;
  pthread_mutex_lock(&h->mu);
  a->fd = fd; /* from now on `cancel` can interrupt us with shutdown() */
  bool cancelled = a->cancelled;
  pthread_mutex_unlock(&h->mu);
  if (err == 0 && !cancelled) {
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a->addr, a->addr_len) != 0) err = errno;
  }
  if (err == 0 && !cancelled) {
    char line[16] = {0};
    ssize_t n = recv(fd, line, sizeof line - 1, 0);
    if (n < 0) err = errno;
    else if (strcmp(line, "hello\n") != 0) err = EPROTO;
  }
  pthread_mutex_lock(&h->mu);
  if (a->cancelled) {
    if (fd >= 0) close(fd);
  } else if (err != 0) {
    if (fd >= 0) close(fd);
    taps_protocol_attempt_failed(a->handle, err);
  } else {
    a->reported_ready = true;
    /* The fd becomes the taps_connection's; `a` comes back to hello_close. */
    taps_protocol_attempt_ready(a->handle, fd, a);
  }
  a->completed = true;
  pthread_mutex_unlock(&h->mu);
  return NULL;
}

/* Called on the loop's thread with the loop locked: start the attempt and
 * return at once (0), or return an errno to fail it now. */
static int hello_start(taps_protocol_attempt *attempt, const struct sockaddr *address, socklen_t address_len,
                       const char *interface_name, const struct sockaddr *local_address,
                       socklen_t local_address_len, void *user_data) {
  (void)interface_name; /* paths: bind to these when the race names them */
  (void)local_address;
  (void)local_address_len;
  Hello *h = (Hello *)user_data;
  pthread_mutex_lock(&h->mu);
  if (h->n == MAX_ATTEMPTS || address_len > sizeof(struct sockaddr_storage)) {
    pthread_mutex_unlock(&h->mu);
    return EAGAIN;
  }
  HelloAttempt *a = &h->attempts[h->n];
  memset(a, 0, sizeof *a);
  a->hello = h;
  a->handle = attempt;
  memcpy(&a->addr, address, address_len);
  a->addr_len = address_len;
  a->fd = -1;
  int rc = pthread_create(&a->thread, NULL, attempt_main, a);
  if (rc == 0) h->n++;
  pthread_mutex_unlock(&h->mu);
  return rc;
}

/* The race no longer needs this attempt. */
static void hello_cancel(taps_protocol_attempt *attempt, void *user_data) {
  Hello *h = (Hello *)user_data;
  pthread_mutex_lock(&h->mu);
  for (int i = h->n - 1; i >= 0; i--) {
    HelloAttempt *a = &h->attempts[i];
    if (a->handle != attempt || a->cancelled) continue;
    a->cancelled = true;
    if (!a->completed && a->fd >= 0) shutdown(a->fd, SHUT_RDWR); /* wakes connect / recv */
    /* We reported ready but the race ended before the loop took it: the
     * connection is still ours to close. */
    if (a->reported_ready) close(a->fd);
    break;
  }
  pthread_mutex_unlock(&h->mu);
}

/* Close a connection we reported ready: the winner when its taps_connection is
 * closed or freed, or a loser that was ready too late. */
static void hello_close(void *protocol_connection, int fd, void *user_data) {
  (void)protocol_connection;
  (void)user_data;
  close(fd);
}

/* ---- a greeting server on 127.0.0.1, for the demonstration ---- */

static void *server_main(void *arg) {
  int l = *(int *)arg;
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) return NULL; /* the listener was shut down */
    if (send(c, "hello\n", 6, MSG_NOSIGNAL) != 6) perror("send");
    close(c);
  }
}

static int on_ready(taps_connection *c, void *ud) {
  (void)ud;
  printf("ready: protocol %s, fd %d\n", taps_connection_get_protocol(c), taps_connection_get_fd(c));
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
  pthread_t server;
  pthread_create(&server, NULL, server_main, &l);

  static Hello hello = {.mu = PTHREAD_MUTEX_INITIALIZER};
  taps_event_loop *loop = taps_event_loop_new();
  taps_protocol_implementation impl = {
      .name = "hello",
      .properties = TAPS_PROTOCOL_FLAG_RELIABLE | TAPS_PROTOCOL_FLAG_PRESERVES_MSG_BOUNDARIES,
      .start = hello_start,
      .cancel = hello_cancel,
      .close = hello_close,
      .user_data = &hello,
  };
  if (loop == NULL || taps_event_loop_add_protocol(loop, &impl) != TAPS_OK) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }
  /* Reliable protocols only (the default), message boundaries preferred:
   * "hello" first, TCP one attempt delay later. */
  taps_transport_properties *props = taps_transport_properties_new();
  taps_transport_properties_set(props, TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES, TAPS_PREFERENCE_PREFER);

  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  taps_remote_endpoint_with_hostname(ep, "127.0.0.1");
  taps_remote_endpoint_with_port(ep, ntohs(sa.sin_port));
  const taps_remote_endpoint *remotes[] = {ep};
  taps_preconnection *p = taps_preconnection_new(loop, remotes, 1, props, NULL);
  taps_connection_callbacks cb = {.ready = on_ready, .establishment_error = on_error};
  taps_connection *conn = NULL;
  if (p == NULL || taps_preconnection_initiate_with_racing(p, cb, &conn) != TAPS_OK) {
    fprintf(stderr, "%s\n", taps_last_error_message());
    return 1;
  }
  taps_event_loop_run(loop);

  for (size_t i = 0; i < taps_connection_attempt_count(conn); i++) {
    taps_attempt_info a;
    taps_connection_get_attempt(conn, i, &a);
    printf("attempt %zu: %s, started %.3f ms, outcome %d, errno %d\n", i, a.protocol, a.started_us / 1000.0,
           a.outcome, a.os_error);
  }
  const char *winner = taps_connection_get_protocol(conn);
  int ok = winner != NULL && strcmp(winner, "hello") == 0;
  taps_connection_free(conn); /* calls hello_close for the winner */
  taps_preconnection_free(p);
  taps_remote_endpoint_free(ep);
  taps_transport_properties_free(props);
  taps_event_loop_free(loop);

  for (int i = 0; i < hello.n; i++) pthread_join(hello.attempts[i].thread, NULL);
  shutdown(l, SHUT_RDWR);
  pthread_join(server, NULL);
  close(l);
  return ok ? 0 : 1;
}
