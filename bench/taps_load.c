/* taps_load: load figures for the racing library through its C API, for
 * bench/compare.py (which runs it inside the namespace test bed).
 *
 *   taps_load cps HOST PORTS IN_FLIGHT MAX_RACES MAX_SECONDS [CACHE_MS]
 *       Connections per second: IN_FLIGHT races at a time on one loop to
 *       HOST (an IP literal or a name) on the ports in PORTS ("7100,7101"),
 *       one taps_preconnection per port, initiated again and again; each ready
 *       connection is closed with an RST (SO_LINGER 0, no TIME_WAIT) and freed,
 *       and a new race starts, until MAX_RACES started or MAX_SECONDS passed.
 *       CACHE_MS: the loop's resolution cache lifetime (default: the
 *       library's default; 0: every race resolves the name).
 *   taps_load ttc HOST PORT RUNS ATTEMPT_DELAY_MS RESOLUTION_DELAY_MS [CACHE_MS [HISTORY]]
 *       Time to connected, in one process: RUNS sequential races (after one
 *       warm-up race) on one loop, a new taps_preconnection each. CACHE_MS: the
 *       loop's resolution cache lifetime (default: the library's; 0: every
 *       race asks the resolver; -1: the default). HISTORY: 1 keeps the loop's
 *       history of earlier races on (each run then learns from the warm-up
 *       and the runs before it: a "second race"); default 0, off, so that
 *       every run is a first race. A HOST with "%d" gets the run's number
 *       there (a name of its own per run: the cache cannot answer); prints
 *       {"ms": [...], "family": [...], "errors": [...]}, ms from initiate to
 *       the ready callback (name resolution included).
 *   taps_load memory HOST PORTS N HOLD_MS
 *       Memory: N races in flight to HOST (a blackholed address) on PORTS,
 *       total timeout HOLD_MS. A sampler thread reads mallinfo2 (heap in use:
 *       uordblks + hblkhd), VmRSS and the number of open fds every 20 ms; the
 *       figures are taken when every race has its attempt's socket open.
 *
 * Prints one JSON object on stdout. Exit 0, or 1 when something could not
 * be set up (the message is on stderr).
 */
#define _GNU_SOURCE

#include "taps_racing.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
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

#define MAX_PORTS 16

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die_taps(const char *what, int code) {
  const char *m = taps_last_error_message();
  fprintf(stderr, "taps_load: %s: %s%s%s\n", what, taps_strerror(code), m && *m ? ": " : "", m && *m ? m : "");
  exit(1);
}

static int parse_ports(const char *s, uint16_t *ports) {
  int n = 0;
  char *copy = strdup(s), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok && n < MAX_PORTS; tok = strtok_r(NULL, ",", &save))
    ports[n++] = (uint16_t)atoi(tok);
  free(copy);
  return n;
}

static taps_remote_endpoint *remote(const char *host, uint16_t port) {
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  if (ep == NULL) die_taps("taps_remote_endpoint_new", taps_last_error());
  int rc = taps_remote_endpoint_with_hostname(ep, host);
  if (rc == TAPS_OK) rc = taps_remote_endpoint_with_port(ep, port);
  if (rc != TAPS_OK) die_taps("remote endpoint", rc);
  return ep;
}

static void raise_nofile(rlim_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur >= want) return;
  struct rlimit nrl = {want, want > rl.rlim_max ? want : rl.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &nrl) != 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* ---- cps --------------------------------------------------------------- */

typedef struct Load {
  taps_event_loop *loop;
  taps_preconnection *pre[MAX_PORTS];
  int n_pre;
  long target, started, ready, failed;
  double deadline;
} Load;

typedef struct Slot {
  Load *l;
  int index;
  taps_connection *conn;
} Slot;

static int slot_done(taps_connection *c, void *ud);

static void slot_start(Slot *s) {
  Load *l = s->l;
  if (l->started >= l->target || now_s() > l->deadline) return;
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = slot_done;
  cb.establishment_error = slot_done;
  cb.user_data = s;
  int rc = taps_preconnection_initiate_with_racing(l->pre[l->started % l->n_pre], cb, &s->conn);
  if (rc != TAPS_OK) die_taps("taps_preconnection_initiate_with_racing", rc);
  l->started++;
}

static int slot_done(taps_connection *c, void *ud) {
  Slot *s = (Slot *)ud;
  int fd = taps_connection_get_fd(c);
  if (fd >= 0) {
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    s->l->ready++;
  } else {
    s->l->failed++;
  }
  taps_connection_free(c);
  s->conn = NULL;
  slot_start(s);
  return 0;
}

static int cmd_cps(const char *host, const char *ports_s, int in_flight, long max_races, double max_s,
                   long cache_ms) {
  uint16_t ports[MAX_PORTS];
  int np = parse_ports(ports_s, ports);
  raise_nofile((rlim_t)in_flight * 4 + 1024);
  Load l;
  memset(&l, 0, sizeof l);
  l.loop = taps_event_loop_new();
  if (l.loop == NULL) die_taps("taps_event_loop_new", taps_last_error());
  if (cache_ms >= 0) {
    int rc = taps_event_loop_set_resolution_cache(l.loop, (uint32_t)cache_ms);
    if (rc != TAPS_OK) die_taps("taps_event_loop_set_resolution_cache", rc);
  }
  taps_racing_options opts = taps_racing_options_default();
  opts.total_timeout_ms = 10000;
  for (int i = 0; i < np; i++) {
    taps_remote_endpoint *ep = remote(host, ports[i]);
    l.pre[i] = taps_preconnection_new(l.loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, &opts);
    taps_remote_endpoint_free(ep);
    if (l.pre[i] == NULL) die_taps("taps_preconnection_new", taps_last_error());
  }
  l.n_pre = np;
  l.target = max_races;
  Slot *slots = calloc((size_t)in_flight, sizeof *slots);
  double t0 = now_s();
  l.deadline = t0 + max_s;
  for (int i = 0; i < in_flight; i++) {
    slots[i].l = &l;
    slots[i].index = i;
    slot_start(&slots[i]);
  }
  int rc = taps_event_loop_run(l.loop);
  double elapsed = now_s() - t0;
  if (rc != TAPS_OK) die_taps("taps_event_loop_run", rc);
  for (int i = 0; i < in_flight; i++) taps_connection_free(slots[i].conn);
  free(slots);
  for (int i = 0; i < np; i++) taps_preconnection_free(l.pre[i]);
  taps_event_loop_free(l.loop);
  printf("{\"started\": %ld, \"connected\": %ld, \"failed\": %ld, \"elapsed_s\": %.4f, \"cps\": %.1f}\n", l.started,
         l.ready, l.failed, elapsed, (double)l.ready / elapsed);
  return 0;
}

/* ---- ttc ---------------------------------------------------------------- */

typedef struct Ttc {
  double t0, ms;
  int won;
  char family[5];
} Ttc;

static int ttc_done(taps_connection *c, void *ud) {
  Ttc *t = (Ttc *)ud;
  t->ms = (now_s() - t->t0) * 1000.0;
  t->won = taps_connection_get_fd(c) >= 0;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (t->won && taps_connection_get_remote_address(c, &ss, &len) == TAPS_OK)
    strcpy(t->family, ss.ss_family == AF_INET6 ? "ipv6" : "ipv4");
  return 0;
}

static int cmd_ttc(const char *host, uint16_t port, int runs, uint32_t delay, uint32_t res_delay, long cache_ms,
                   int history) {
  taps_event_loop *loop = taps_event_loop_new();
  if (loop == NULL) die_taps("taps_event_loop_new", taps_last_error());
  int hrc = taps_event_loop_set_history(loop, history != 0);
  if (hrc != TAPS_OK) die_taps("taps_event_loop_set_history", hrc);
  if (cache_ms >= 0) {
    int rc = taps_event_loop_set_resolution_cache(loop, (uint32_t)cache_ms);
    if (rc != TAPS_OK) die_taps("taps_event_loop_set_resolution_cache", rc);
  }
  taps_racing_options opts = taps_racing_options_default();
  opts.connection_attempt_delay_ms = delay;
  opts.resolution_delay_ms = res_delay;
  opts.total_timeout_ms = 10000;
  printf("{\"ms\": [");
  int n = 0, errors = 0;
  char fams[4096] = "";
  for (int i = 0; i <= runs; i++) { /* run 0 warms up (NSS, resolver threads) */
    char name[256];
    if (strstr(host, "%d") != NULL)
      snprintf(name, sizeof name, host, i); /* a name of its own per run */
    else
      snprintf(name, sizeof name, "%s", host);
    taps_remote_endpoint *ep = remote(name, port);
    taps_preconnection *pre = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, &opts);
    taps_remote_endpoint_free(ep);
    if (pre == NULL) die_taps("taps_preconnection_new", taps_last_error());
    Ttc t;
    memset(&t, 0, sizeof t);
    taps_connection_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.ready = ttc_done;
    cb.establishment_error = ttc_done;
    cb.user_data = &t;
    taps_connection *c = NULL;
    t.t0 = now_s();
    int rc = taps_preconnection_initiate_with_racing(pre, cb, &c);
    if (rc != TAPS_OK) die_taps("taps_preconnection_initiate_with_racing", rc);
    rc = taps_event_loop_run(loop);
    if (rc != TAPS_OK) die_taps("taps_event_loop_run", rc);
    if (i > 0) {
      if (t.won) {
        printf("%s%.3f", n ? ", " : "", t.ms);
        size_t l = strlen(fams);
        snprintf(fams + l, sizeof fams - l, "%s\"%s\"", n ? ", " : "", t.family);
        n++;
      } else {
        errors++;
      }
    }
    if (c) {
      int fd = taps_connection_get_fd(c);
      if (fd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      }
    }
    taps_connection_free(c);
    taps_preconnection_free(pre);
  }
  printf("], \"family\": [%s], \"errors\": [%s]}\n", fams, errors ? "\"failed\"" : "");
  taps_event_loop_free(loop);
  return 0;
}

/* ---- memory ------------------------------------------------------------- */

static size_t heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static long status_kb(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long v = -1;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = atol(line + kl + 1);
      break;
    }
  fclose(f);
  return v;
}

static long count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  long n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n - 2;
}

typedef struct Sampler {
  atomic_int stop;
  long want_fds;
  /* at the first sample with every race's socket open */
  int seen_all;
  double t_all;
  size_t heap_all;
  long rss_all_kb, fds_all;
  /* maxima */
  size_t heap_max;
  long fds_max;
} Sampler;

static void *sampler(void *arg) {
  Sampler *s = (Sampler *)arg;
  while (!atomic_load(&s->stop)) {
    long fds = count_fds();
    size_t heap = heap_in_use();
    if (heap > s->heap_max) s->heap_max = heap;
    if (fds > s->fds_max) s->fds_max = fds;
    if (!s->seen_all && fds >= s->want_fds) {
      /* settle: let the loop finish registering, then sample again */
      usleep(100000);
      s->seen_all = 1;
      s->t_all = now_s();
      s->heap_all = heap_in_use();
      s->rss_all_kb = status_kb("VmRSS");
      s->fds_all = count_fds();
    }
    usleep(20000);
  }
  return NULL;
}

static int noop_cb(taps_connection *c, void *ud) {
  (void)c;
  (*(long *)ud)++;
  return 0;
}

static int cmd_memory(const char *host, const char *ports_s, long n, uint32_t hold_ms) {
  uint16_t ports[MAX_PORTS];
  int np = parse_ports(ports_s, ports);
  raise_nofile((rlim_t)n + 4096);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if ((long)rl.rlim_cur < n + 100) {
    printf("{\"error\": \"RLIMIT_NOFILE %ld is too small for %ld races\"}\n", (long)rl.rlim_cur, n);
    return 0;
  }
  taps_event_loop *loop = taps_event_loop_new();
  if (loop == NULL) die_taps("taps_event_loop_new", taps_last_error());
  taps_racing_options opts = taps_racing_options_default();
  opts.total_timeout_ms = hold_ms;
  taps_preconnection *pre[MAX_PORTS];
  for (int i = 0; i < np; i++) {
    taps_remote_endpoint *ep = remote(host, ports[i]);
    pre[i] = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, &opts);
    taps_remote_endpoint_free(ep);
    if (pre[i] == NULL) die_taps("taps_preconnection_new", taps_last_error());
  }
  taps_connection **conns = calloc((size_t)n, sizeof *conns);
  long rss0_kb = status_kb("VmRSS");
  long fds0 = count_fds();
  size_t heap0 = heap_in_use();
  Sampler s;
  memset(&s, 0, sizeof s);
  s.want_fds = fds0 + n;
  pthread_t th;
  pthread_create(&th, NULL, sampler, &s);
  long callbacks = 0;
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = noop_cb;
  cb.establishment_error = noop_cb;
  cb.user_data = &callbacks;
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    int rc = taps_preconnection_initiate_with_racing(pre[i % np], cb, &conns[i]);
    if (rc != TAPS_OK) die_taps("taps_preconnection_initiate_with_racing", rc);
  }
  double t_initiated = now_s();
  size_t heap_initiated = heap_in_use();
  int rc = taps_event_loop_run(loop);
  double t_end = now_s();
  atomic_store(&s.stop, 1);
  pthread_join(th, NULL);
  if (rc != TAPS_OK) die_taps("taps_event_loop_run", rc);
  long timed_out = 0, other = 0;
  for (long i = 0; i < n; i++) {
    if (taps_connection_get_error(conns[i]) == TAPS_ERROR_TIMED_OUT)
      timed_out++;
    else
      other++;
  }
  for (long i = 0; i < n; i++) taps_connection_free(conns[i]);
  free(conns);
  for (int i = 0; i < np; i++) taps_preconnection_free(pre[i]);
  taps_event_loop_free(loop);
  size_t heap_after = heap_in_use();
  printf("{\"races\": %ld, \"all_in_flight\": %s, \"fds_before\": %ld, \"fds_in_flight\": %ld, \"fds_max\": %ld, "
         "\"heap_before\": %zu, \"heap_initiated\": %zu, \"heap_in_flight\": %zu, \"heap_max\": %zu, "
         "\"heap_after_free\": %zu, \"rss_before_kb\": %ld, \"rss_in_flight_kb\": %ld, \"rss_peak_kb\": %ld, "
         "\"initiate_s\": %.3f, \"all_in_flight_after_s\": %.3f, \"run_s\": %.3f, \"timed_out\": %ld, "
         "\"other_end\": %ld, \"callbacks\": %ld, \"nofile\": %ld}\n",
         n, s.seen_all ? "true" : "false", fds0, s.fds_all, s.fds_max, heap0, heap_initiated, s.heap_all,
         s.heap_max, heap_after, rss0_kb, s.rss_all_kb, status_kb("VmHWM"), t_initiated - t0,
         s.seen_all ? s.t_all - t0 : -1.0, t_end - t0, timed_out, other, callbacks, (long)rl.rlim_cur);
  return 0;
}

int main(int argc, char **argv) {
  if ((argc == 7 || argc == 8) && strcmp(argv[1], "cps") == 0)
    return cmd_cps(argv[2], argv[3], atoi(argv[4]), atol(argv[5]), atof(argv[6]), argc == 8 ? atol(argv[7]) : -1);
  if (argc >= 7 && argc <= 9 && strcmp(argv[1], "ttc") == 0)
    return cmd_ttc(argv[2], (uint16_t)atoi(argv[3]), atoi(argv[4]), (uint32_t)atol(argv[5]),
                   (uint32_t)atol(argv[6]), argc >= 8 ? atol(argv[7]) : -1, argc == 9 ? atoi(argv[8]) : 0);
  if (argc == 6 && strcmp(argv[1], "memory") == 0)
    return cmd_memory(argv[2], argv[3], atol(argv[4]), (uint32_t)atol(argv[5]));
  fprintf(stderr,
          "usage: taps_load cps HOST PORTS IN_FLIGHT MAX_RACES MAX_SECONDS [CACHE_MS]\n"
          "       taps_load ttc HOST PORT RUNS ATTEMPT_DELAY_MS RESOLUTION_DELAY_MS [CACHE_MS [HISTORY]]\n"
          "       taps_load memory HOST PORTS N HOLD_MS\n");
  return 2;
}
