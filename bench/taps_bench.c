/* taps_bench: figures for the racing library, through the C API only.
 *
 *   taps_bench [--races N] [--throughput-races N] [--in-flight N]
 *
 * (a) schedule lateness: N races (default 200, run 20 at a time on one loop),
 *     each with 4 candidates that never connect (blackholed loopback
 *     listeners: listen backlog 0 and a full accept queue, so SYNs are
 *     dropped), connection attempt delay 20 ms, total timeout 70 ms. Attempt
 *     i is due i*20 ms after initiate; lateness = started_us - due. Prints
 *     median, p99 and max in µs.
 * (b) throughput: races to 127.0.0.1 listeners (a thread accepts and closes)
 *     with 100 races in flight on one loop; each ready connection is freed
 *     and another race starts. Prints races per second.
 *
 * A benchmark, not a test: it prints figures and exits 0 unless something
 * could not be set up.
 */
#define _GNU_SOURCE

#include "taps_racing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_CANDIDATES 4
#define LATENESS_DELAY_MS 20
#define LATENESS_TIMEOUT_MS 70
#define LATENESS_BATCH 20
#define N_LISTENERS 4
#define MAX_SECONDS_THROUGHPUT 15.0

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "taps_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void die_taps(const char *what, int code) {
  fprintf(stderr, "taps_bench: %s: %s\n", what, taps_strerror(code));
  exit(1);
}

static uint16_t bound_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) die("getsockname");
  return ntohs(sa.sin_port);
}

static int listen_loopback(int backlog, uint16_t *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("bind");
  if (listen(fd, backlog) != 0) die("listen");
  *port = bound_port(fd);
  return fd;
}

/* A listener whose SYNs are dropped: backlog 0, accept queue filled by one
 * connection that is never accepted. *filler is that connection. */
static int blackhole(uint16_t *port, int *filler) {
  int l = listen_loopback(0, port);
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c < 0) die("socket");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(*port);
  if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) die("connect");
  struct pollfd p = {c, POLLOUT, 0};
  if (poll(&p, 1, 2000) != 1) die("filling the accept queue");
  *filler = c;
  return l;
}

static taps_remote_endpoint *remote_v4(uint16_t port) {
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  if (ep == NULL) die_taps("taps_remote_endpoint_new", taps_last_error());
  struct in_addr a;
  a.s_addr = htonl(INADDR_LOOPBACK);
  int rc = taps_remote_endpoint_with_ipv4(ep, a);
  if (rc == TAPS_OK) rc = taps_remote_endpoint_with_port(ep, port);
  if (rc != TAPS_OK) die_taps("remote endpoint", rc);
  return ep;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int count_callback(taps_connection *c, void *ud) {
  (void)c;
  (*(int *)ud)++;
  return 0;
}

/* ---- (a) lateness ------------------------------------------------------- */

static void bench_lateness(int n_races) {
  uint16_t ports[N_CANDIDATES];
  int listeners[N_CANDIDATES], fillers[N_CANDIDATES];
  for (int i = 0; i < N_CANDIDATES; i++) listeners[i] = blackhole(&ports[i], &fillers[i]);

  taps_remote_endpoint *remotes[N_CANDIDATES];
  for (int i = 0; i < N_CANDIDATES; i++) remotes[i] = remote_v4(ports[i]);
  taps_racing_options opts = taps_racing_options_default();
  opts.connection_attempt_delay_ms = LATENESS_DELAY_MS;
  opts.total_timeout_ms = LATENESS_TIMEOUT_MS;

  taps_event_loop *loop = taps_event_loop_new();
  if (loop == NULL) die_taps("taps_event_loop_new", taps_last_error());
  int64_t *lateness = calloc((size_t)n_races * N_CANDIDATES, sizeof *lateness);
  size_t n_late = 0;
  int n_callbacks = 0, n_short = 0, n_timed_out = 0;
  taps_preconnection *pres[LATENESS_BATCH];
  taps_connection *conns[LATENESS_BATCH];
  double t0 = now_s();

  for (int done = 0; done < n_races;) {
    int batch = n_races - done < LATENESS_BATCH ? n_races - done : LATENESS_BATCH;
    for (int i = 0; i < batch; i++) {
      pres[i] = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)remotes, N_CANDIDATES, NULL, &opts);
      if (pres[i] == NULL) die_taps("taps_preconnection_new", taps_last_error());
      taps_connection_callbacks cb;
      memset(&cb, 0, sizeof cb);
      cb.ready = count_callback;
      cb.establishment_error = count_callback;
      cb.user_data = &n_callbacks;
      int rc = taps_preconnection_initiate_with_racing(pres[i], cb, &conns[i]);
      if (rc != TAPS_OK) die_taps("taps_preconnection_initiate_with_racing", rc);
    }
    int rc = taps_event_loop_run(loop);
    if (rc != TAPS_OK) die_taps("taps_event_loop_run", rc);
    for (int i = 0; i < batch; i++) {
      if (taps_connection_get_error(conns[i]) == TAPS_ERROR_TIMED_OUT) n_timed_out++;
      size_t n = taps_connection_attempt_count(conns[i]);
      uint64_t started[N_CANDIDATES];
      size_t k = 0;
      for (size_t j = 0; j < n && k < N_CANDIDATES; j++) {
        taps_attempt_info info;
        if (taps_connection_get_attempt(conns[i], j, &info) == TAPS_OK) started[k++] = info.started_us;
      }
      if (k < N_CANDIDATES) n_short++;
      /* attempts in start order */
      for (size_t a = 1; a < k; a++)
        for (size_t b = a; b > 0 && started[b - 1] > started[b]; b--) {
          uint64_t t = started[b];
          started[b] = started[b - 1];
          started[b - 1] = t;
        }
      /* attempt 0 starts at initiate by definition: only timer-driven starts count */
      for (size_t j = 1; j < k; j++)
        lateness[n_late++] = (int64_t)started[j] - (int64_t)j * LATENESS_DELAY_MS * 1000;
      taps_connection_free(conns[i]);
      taps_preconnection_free(pres[i]);
    }
    done += batch;
  }
  double elapsed = now_s() - t0;
  for (int i = 0; i < N_CANDIDATES; i++) {
    taps_remote_endpoint_free(remotes[i]);
    close(fillers[i]);
    close(listeners[i]);
  }
  taps_event_loop_free(loop);

  printf("(a) attempt start lateness vs schedule (i * %d ms), %d races x %d blackholed candidates,\n"
         "    %d races in flight, total timeout %d ms (%.1f s)\n",
         LATENESS_DELAY_MS, n_races, N_CANDIDATES, LATENESS_BATCH, LATENESS_TIMEOUT_MS, elapsed);
  if (n_late == 0) {
    printf("    no attempt started\n");
  } else {
    qsort(lateness, n_late, sizeof *lateness, cmp_i64);
    size_t p99 = (n_late * 99 + 99) / 100 - 1;
    printf("    timer-driven starts %zu: median %lld us, p99 %lld us, max %lld us, min %lld us\n", n_late,
           (long long)lateness[n_late / 2], (long long)lateness[p99], (long long)lateness[n_late - 1],
           (long long)lateness[0]);
  }
  printf("    callbacks %d, timed out %d, races with fewer than %d attempts %d\n", n_callbacks, n_timed_out,
         N_CANDIDATES, n_short);
  free(lateness);
}

/* ---- (b) throughput ------------------------------------------------------ */

static atomic_int stop_acceptor;

static void *acceptor(void *arg) {
  int *ls = (int *)arg;
  struct pollfd p[N_LISTENERS];
  for (int i = 0; i < N_LISTENERS; i++) {
    p[i].fd = ls[i];
    p[i].events = POLLIN;
  }
  while (!atomic_load(&stop_acceptor)) {
    int r = poll(p, N_LISTENERS, 50);
    if (r <= 0) continue;
    for (int i = 0; i < N_LISTENERS; i++) {
      if (!(p[i].revents & POLLIN)) continue;
      for (;;) {
        int fd = accept4(ls[i], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        close(fd);
      }
    }
  }
  return NULL;
}

typedef struct Throughput {
  taps_event_loop *loop;
  taps_racing_options opts;
  uint16_t ports[N_LISTENERS];
  int target, started, ready, failed;
  double deadline;
} Throughput;

typedef struct Slot {
  Throughput *t;
  int index;
  taps_preconnection *pre;
  taps_connection *conn;
} Slot;

static int slot_done(taps_connection *c, void *ud);

static void slot_start(Slot *s) {
  Throughput *t = s->t;
  if (t->started >= t->target || now_s() > t->deadline) return;
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = slot_done;
  cb.establishment_error = slot_done;
  cb.user_data = s;
  for (int tries = 0; tries < 2; tries++) {
    if (s->pre == NULL) {
      taps_remote_endpoint *ep = remote_v4(t->ports[s->index % N_LISTENERS]);
      s->pre = taps_preconnection_new(t->loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, &t->opts);
      taps_remote_endpoint_free(ep);
      if (s->pre == NULL) die_taps("taps_preconnection_new", taps_last_error());
    }
    int rc = taps_preconnection_initiate_with_racing(s->pre, cb, &s->conn);
    if (rc == TAPS_OK) {
      t->started++;
      return;
    }
    /* A preconnection that cannot initiate twice: use a new one. */
    taps_preconnection_free(s->pre);
    s->pre = NULL;
    if (tries == 1) die_taps("taps_preconnection_initiate_with_racing", rc);
  }
}

static int slot_done(taps_connection *c, void *ud) {
  Slot *s = (Slot *)ud;
  if (taps_connection_get_fd(c) >= 0)
    s->t->ready++;
  else
    s->t->failed++;
  taps_connection_free(c);
  s->conn = NULL;
  slot_start(s);
  return 0;
}

static void bench_throughput(int n_races, int in_flight) {
  Throughput t;
  memset(&t, 0, sizeof t);
  int ls[N_LISTENERS];
  for (int i = 0; i < N_LISTENERS; i++) {
    ls[i] = listen_loopback(4096, &t.ports[i]);
    int fl = fcntl(ls[i], F_GETFL);
    if (fl < 0 || fcntl(ls[i], F_SETFL, fl | O_NONBLOCK) != 0) die("fcntl");
  }
  pthread_t th;
  atomic_store(&stop_acceptor, 0);
  if (pthread_create(&th, NULL, acceptor, ls) != 0) die("pthread_create");

  t.loop = taps_event_loop_new();
  if (t.loop == NULL) die_taps("taps_event_loop_new", taps_last_error());
  t.opts = taps_racing_options_default();
  t.target = n_races;
  Slot *slots = calloc((size_t)in_flight, sizeof *slots);
  double t0 = now_s();
  t.deadline = t0 + MAX_SECONDS_THROUGHPUT;
  for (int i = 0; i < in_flight; i++) {
    slots[i].t = &t;
    slots[i].index = i;
    slot_start(&slots[i]);
  }
  int rc = taps_event_loop_run(t.loop);
  double elapsed = now_s() - t0;
  if (rc != TAPS_OK) die_taps("taps_event_loop_run", rc);
  for (int i = 0; i < in_flight; i++) {
    taps_connection_free(slots[i].conn);
    taps_preconnection_free(slots[i].pre);
  }
  free(slots);
  taps_event_loop_free(t.loop);
  atomic_store(&stop_acceptor, 1);
  pthread_join(th, NULL);
  for (int i = 0; i < N_LISTENERS; i++) close(ls[i]);

  int finished = t.ready + t.failed;
  printf("(b) throughput: %d races to 127.0.0.1, %d in flight, one loop: %d ready, %d failed in %.2f s\n", t.started,
         in_flight, t.ready, t.failed, elapsed);
  printf("    %.0f races/s (%.1f us per race)\n", finished / elapsed,
         finished ? elapsed * 1e6 / finished : 0.0);
}

static int arg_int(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "taps_bench: %s needs a number\n", argv[*i]);
    exit(2);
  }
  char *end;
  long v = strtol(argv[*i + 1], &end, 10);
  if (*end != '\0' || v <= 0 || v > 10000000) {
    fprintf(stderr, "taps_bench: bad number '%s'\n", argv[*i + 1]);
    exit(2);
  }
  (*i)++;
  return (int)v;
}

int main(int argc, char **argv) {
  int n_lateness = 200, n_throughput = 20000, in_flight = 100;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--races") == 0)
      n_lateness = arg_int(argc, argv, &i);
    else if (strcmp(argv[i], "--throughput-races") == 0)
      n_throughput = arg_int(argc, argv, &i);
    else if (strcmp(argv[i], "--in-flight") == 0)
      in_flight = arg_int(argc, argv, &i);
    else {
      fprintf(stderr, "usage: taps_bench [--races N] [--throughput-races N] [--in-flight N]\n");
      return 2;
    }
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  printf("taps_bench: %ld CPUs\n", ncpu);
  fflush(stdout);
  bench_lateness(n_lateness);
  fflush(stdout);
  bench_throughput(n_throughput, in_flight);
  return 0;
}
