/* Soak: many races with mixed outcomes against loopback, then the same
 * open fd count and heap as before.
 *
 *   soak [--races N] [--in-flight K] [--slack BYTES] [--warm-up N]
 *
 * N races (default 1,000,000), K in flight at once on one loop run by this
 * thread (default 256), in a repeating pattern of four outcomes:
 *
 *   won        127.0.0.1 on a listener (the soak accepts and resets each
 *              connection, so no TIME_WAIT piles up); taps_connection_free in
 *              `ready`;
 *   refused    127.0.0.1 on a bound port that does not listen;
 *   timed out  a blackholed listener (backlog 0, its queue full: SYNs are
 *              dropped) with total_timeout_ms 30;
 *   cancelled  the blackhole again, without a total timeout (so that no
 *              callback can come first), freed by the soak 0 to 2 loop
 *              turns after initiate (before the loop ran it, or with its
 *              attempt connecting).
 *
 * Each race must end with the planned callback (exactly one; none for a
 * cancelled one). Before and after, with the loop alive and warmed up by
 * 10,000 races (--warm-up), the process's open fds (/proc/self/fd) must be equal and
 * its heap (glibc mallinfo2: uordblks + hblkhd) equal within --slack bytes
 * (default 65536: glibc's per-thread tcache keeps freed chunks counted as
 * in use, and the loop's timer heap and slab keep their capacity). A leak
 * of one byte per race over 100,000 races exceeds the slack. Exits 0, or
 * 1 on a leak or a wrong outcome, with the figures on stdout.
 */
#include "soak_util.h"

#include <signal.h>

enum { WON, REFUSED, TIMED_OUT, CANCELLED, KINDS };
static const char *kind_names[KINDS] = {"won", "refused", "timed out", "cancelled"};

typedef struct Soak {
  taps_event_loop *loop;
  taps_preconnection *pre[4]; /* listener, refusing, blackhole (30 ms), blackhole (no timeout) */
  int listener, refusing, blackhole, filler;
  long planned[KINDS], seen[KINDS], wrong;
  long in_flight;
} Soak;

typedef struct Race {
  Soak *soak;
  int kind;
} Race;

static int on_ready(taps_connection *c, void *ud) {
  Race *r = (Race *)ud;
  r->soak->in_flight--;
  if (r->kind == WON) r->soak->seen[WON]++;
  else r->soak->wrong++;
  taps_connection_free(c);
  free(r);
  return 0;
}

static int on_error(taps_connection *c, void *ud) {
  Race *r = (Race *)ud;
  Soak *s = r->soak;
  s->in_flight--;
  int err = taps_connection_get_error(c);
  if (r->kind == REFUSED && err == TAPS_ERROR_ALL_ATTEMPTS_FAILED && taps_connection_get_os_error(c) == ECONNREFUSED)
    s->seen[REFUSED]++;
  else if (r->kind == TIMED_OUT && err == TAPS_ERROR_TIMED_OUT)
    s->seen[TIMED_OUT]++;
  else {
    if (s->wrong < 5) fprintf(stderr, "race kind %s ended with %s\n", kind_names[r->kind], taps_strerror(err));
    s->wrong++;
  }
  taps_connection_free(c);
  free(r);
  return 0;
}

static int on_unexpected(taps_connection *c, void *ud) {
  (void)c;
  ((Race *)ud)->soak->wrong++;
  return 0;
}

/* Accept every pending connection and reset it (SO_LINGER 0). */
static void reset_accepted(int listener) {
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
  }
}

typedef struct Pending {
  taps_connection *conn;
  Race *race;
  int turns;
} Pending;

/* Run `n` races; returns the seconds taken. */
static double soak_run(Soak *s, long n, long in_flight_max) {
  Pending cancel[64];
  int n_cancel = 0;
  long started = 0;
  uint64_t t0 = soak_now_us();
  uint32_t rnd = 12345;
  while (started < n || s->in_flight > 0 || n_cancel > 0) {
    while (started < n && s->in_flight < in_flight_max && n_cancel < 64) {
      int kind = (int)(started % KINDS);
      Race *r = (Race *)malloc(sizeof *r);
      CHECK(r != NULL);
      r->soak = s;
      r->kind = kind;
      taps_connection_callbacks cb;
      memset(&cb, 0, sizeof cb);
      cb.ready = on_ready;
      cb.establishment_error = on_error;
      cb.connection_error = on_unexpected;
      cb.closed = on_unexpected;
      cb.user_data = r;
      taps_preconnection *p = s->pre[kind];
      taps_connection *c = NULL;
      CHECK_CODE(taps_preconnection_initiate_with_racing(p, cb, &c), TAPS_OK);
      s->planned[kind]++;
      started++;
      if (kind == CANCELLED) {
        rnd = rnd * 1103515245u + 12345u;
        cancel[n_cancel++] = (Pending){c, r, (int)((rnd >> 16) % 3)};
      } else {
        s->in_flight++;
      }
    }
    /* Cancel the races whose turn has come. */
    for (int i = 0; i < n_cancel;) {
      if (cancel[i].turns-- <= 0) {
        taps_connection_free(cancel[i].conn);
        free(cancel[i].race);
        s->seen[CANCELLED]++;
        cancel[i] = cancel[--n_cancel];
      } else {
        i++;
      }
    }
    int rc = taps_event_loop_run_once(s->loop, n_cancel > 0 ? 0 : 10);
    CHECK(rc >= 0);
    reset_accepted(s->listener);
  }
  return (double)(soak_now_us() - t0) / 1e6;
}

static taps_preconnection *pre_to(taps_event_loop *loop, uint16_t port, uint32_t total_timeout_ms) {
  taps_remote_endpoint *ep = soak_remote(port);
  taps_racing_options o = taps_racing_options_default();
  o.total_timeout_ms = total_timeout_ms;
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)&ep, 1, NULL, &o);
  taps_remote_endpoint_free(ep);
  CHECK(p != NULL);
  return p;
}

int main(int argc, char **argv) {
  long races = 1000000, in_flight = 256, warm_up = 10000;
  long long slack = 65536;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--races") == 0 && i + 1 < argc) races = atol(argv[++i]);
    else if (strcmp(argv[i], "--in-flight") == 0 && i + 1 < argc) in_flight = atol(argv[++i]);
    else if (strcmp(argv[i], "--slack") == 0 && i + 1 < argc) slack = atoll(argv[++i]);
    else if (strcmp(argv[i], "--warm-up") == 0 && i + 1 < argc) warm_up = atol(argv[++i]);
    else {
      fprintf(stderr, "usage: soak [--races N] [--in-flight K] [--slack BYTES] [--warm-up N]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  int fds_start = soak_count_fds();
  size_t heap_start = soak_heap_bytes();

  Soak s;
  memset(&s, 0, sizeof s);
  uint16_t p_listen, p_refuse, p_black;
  s.listener = soak_bind_socket(4096, &p_listen);
  s.refusing = soak_bind_socket(-1, &p_refuse);
  s.blackhole = soak_blackhole(&p_black, &s.filler);
  if (s.listener < 0 || s.refusing < 0 || s.blackhole < 0) {
    fprintf(stderr, "SKIP: loopback sockets unavailable\n");
    return 77;
  }
  fcntl(s.listener, F_SETFL, fcntl(s.listener, F_GETFL) | O_NONBLOCK);
  s.loop = taps_event_loop_new();
  CHECK(s.loop != NULL);
  s.pre[0] = pre_to(s.loop, p_listen, 0);
  s.pre[1] = pre_to(s.loop, p_refuse, 0);
  s.pre[2] = pre_to(s.loop, p_black, 30);
  s.pre[3] = pre_to(s.loop, p_black, 0);

  /* Warm up: the loop's tables, thread-locals and allocator caches reach
   * their working size. */
  soak_run(&s, warm_up, in_flight);
  memset(s.planned, 0, sizeof s.planned);
  memset(s.seen, 0, sizeof s.seen);
  int fds_before = soak_count_fds();
  size_t heap_before = soak_heap_bytes();

  double secs = soak_run(&s, races, in_flight);

  int fds_after = soak_count_fds();
  size_t heap_after = soak_heap_bytes();
  long long heap_delta = (long long)heap_after - (long long)heap_before;

  for (int i = 0; i < 4; i++) taps_preconnection_free(s.pre[i]);
  taps_event_loop_free(s.loop);
  close(s.listener);
  close(s.refusing);
  close(s.blackhole);
  close(s.filler);
  int fds_end = soak_count_fds();
  size_t heap_end = soak_heap_bytes();

  int ok = 1;
  printf("races:                %ld in %.1f s (%.0f races/s), %ld in flight, after %ld warm-up races\n", races, secs,
         races / secs, in_flight, warm_up);
  for (int k = 0; k < KINDS; k++) {
    printf("  %-10s          %ld planned, %ld seen\n", kind_names[k], s.planned[k], s.seen[k]);
    if (s.planned[k] != s.seen[k]) ok = 0;
  }
  printf("wrong callbacks:      %ld\n", s.wrong);
  printf("open fds:             %d before, %d after (leaked %d); %d at start, %d at the end\n", fds_before, fds_after,
         fds_after - fds_before, fds_start, fds_end);
  printf("heap bytes in use:    %zu before, %zu after (delta %+lld, slack %lld); %zu at start, %zu at the end\n",
         heap_before, heap_after, heap_delta, slack, heap_start, heap_end);
  if (s.wrong != 0) ok = 0;
  if (fds_after != fds_before || fds_end != fds_start) {
    printf("LEAK: file descriptors\n");
    soak_list_fds("after");
    ok = 0;
  }
  if (heap_delta > slack) {
    printf("LEAK: heap grew by %lld bytes over %ld races\n", heap_delta, races);
    ok = 0;
  }
  printf("%s\n", ok ? "soak: ok" : "soak: FAILED");
  return ok ? 0 : 1;
}
