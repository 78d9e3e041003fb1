/*
 * ttc_floor: the floor under time to connected for bench/compare.py. Plain
 * C, no library: the RFC 8305 §5 schedule over the answers, IPv6 first and
 * the families alternating: the next attempt after the attempt delay, or at
 * once when the running one fails, but never within 10 ms of the previous
 * start (RFC 8305 §5, as the library does); the first to connect wins and
 * every other socket is closed.
 *
 * This is what any program pays on this machine for the same schedule:
 * glibc's lookup, the kernel's connects, the wakes from poll. It has no
 * candidate tree, no sorting beyond the alternation, no source-address
 * probe and no cache.
 *
 *   ttc_floor [--resolution-delay MS] HOST PORT ATTEMPT_DELAY_MS [RUNS]
 *
 * Without --resolution-delay (the hosts-file cases): getaddrinfo for AAAA
 * then A on the calling thread (a hosts-file name answers in µs, so asking
 * one after the other costs nothing), then the schedule.
 *
 * With --resolution-delay (the slow-DNS cases): AAAA and A asked at once on
 * two of a pool of resolver threads, each answer handed to the racing
 * thread through a pipe, as the library does (RFC 8305 §3): racing starts
 * when the AAAA answer comes, or MS after a positive A answer if the AAAA
 * one has not come by then; an answer that comes later joins the addresses
 * still to try. A lookup that outlives its race (the AAAA answer of a race
 * that IPv4 won first) finishes on its thread and is dropped.
 *
 * Without RUNS: one race, in a process of its own (the cold start that
 * taps_race and curl pay), printed as {"ms": [..], "family": [..],
 * "errors": [..]}. With RUNS: one warm-up race, then RUNS races back to
 * back in this process, like `taps_load ttc`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_ADDRS 16
/* RFC 8305 §5: no start within 10 ms of the previous one. */
#define MIN_GAP_MS 10.0
/* Resolver threads, as many as the library's MAX_WORKERS: a race that IPv4
 * wins in 50 ms leaves its 300 ms AAAA lookup running, so several lookups
 * are busy at once. */
#define POOL_THREADS 16

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Up to `max` addresses of one family, appended to `out`. */
static int lookup(const char *host, const char *port, int family, struct sockaddr_storage *out, int max) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &res) != 0) return 0;
  int n = 0;
  for (struct addrinfo *ai = res; ai != NULL && n < max; ai = ai->ai_next) memcpy(&out[n++], ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(res);
  return n;
}

/* ---- attempts ----------------------------------------------------------- */

/* The sockets of one race's running attempts; the two slots after
 * `open_n` in `fds` are left for the resolver pipe and the timerfd. */
typedef struct Attempts {
  struct pollfd fds[2 * MAX_ADDRS + 2];
  int fam[2 * MAX_ADDRS], open_n;
} Attempts;

/* Start a connect to `sa`: 1 if it is running, 0 if it failed at once. */
static int attempt_start(Attempts *a, const struct sockaddr_storage *sa) {
  socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0 && (connect(fd, (const struct sockaddr *)sa, len) == 0 || errno == EINPROGRESS)) {
    a->fds[a->open_n] = (struct pollfd){.fd = fd, .events = POLLOUT};
    a->fam[a->open_n++] = sa->ss_family;
    return 1;
  }
  if (fd >= 0) close(fd);
  return 0;
}

/* After a poll: the winner's family and `*ms` since `t0`, or NULL. An
 * attempt that failed is closed, and the next one is due at once (RFC 8305
 * §5): `*next_at` is now. */
static const char *attempt_results(Attempts *a, double t0, double *ms, double *next_at) {
  for (int i = 0; i < a->open_n; i++) {
    if (a->fds[i].revents == 0) continue;
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(a->fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err == 0) {
      *ms = now_ms() - t0;
      return a->fam[i] == AF_INET6 ? "ipv6" : "ipv4";
    }
    close(a->fds[i].fd);
    a->fds[i] = a->fds[a->open_n - 1];
    a->fam[i] = a->fam[a->open_n - 1];
    a->open_n--;
    i--;
    *next_at = now_ms();
  }
  return NULL;
}

/* Close every socket left: an RST, no TIME_WAIT, as the other clients. */
static void attempts_close(Attempts *a) {
  for (int i = 0; i < a->open_n; i++) {
    struct linger lg = {1, 0};
    setsockopt(a->fds[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(a->fds[i].fd);
  }
  a->open_n = 0;
}

/* Arm `tfd` at absolute CLOCK_MONOTONIC ms `at`. */
static void timer_at(int tfd, double at) {
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = (time_t)(at / 1000.0);
  its.it_value.tv_nsec = (long)((at - (double)its.it_value.tv_sec * 1000.0) * 1e6);
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Poll the attempts and, in slot `open_n`, `extra` (-1: none) until the
 * next start at `next_at` (< 0: none). Like the library: a timerfd (poll's
 * own timeout has a slack of 0.1% of the wait: 250 µs on 250 ms), set 200
 * µs before the next start, then polls without sleeping until it (a wake
 * from idle takes 0.1-0.2 ms on this machine). With an `extra` fd, the
 * timer has slot `open_n + 1`. Returns the revents of `extra`. */
static short attempts_wait(Attempts *a, int tfd, double next_at, int extra) {
  nfds_t n = (nfds_t)a->open_n;
  if (extra >= 0) a->fds[n++] = (struct pollfd){.fd = extra, .events = POLLIN};
  if (next_at < 0) {
    poll(a->fds, n, -1);
  } else if (next_at - 0.2 <= now_ms()) {
    poll(a->fds, n, 0);
  } else {
    timer_at(tfd, next_at - 0.2);
    struct pollfd *t = &a->fds[n];
    *t = (struct pollfd){.fd = tfd, .events = POLLIN};
    poll(a->fds, n + 1, -1);
    uint64_t expirations;
    if (t->revents && read(tfd, &expirations, sizeof expirations) < 0) perror("timerfd");
  }
  return extra >= 0 ? a->fds[a->open_n].revents : 0;
}

/* ---- hosts-file cases: lookups on this thread --------------------------- */

/* One race: the winner's family ("ipv6"/"ipv4") and the time from the
 * lookup's start to connected, or NULL when every attempt failed. */
static const char *race(int tfd, const char *host, const char *port, double delay, double *ms) {
  double t0 = now_ms();
  struct sockaddr_storage v6[MAX_ADDRS], v4[MAX_ADDRS], order[2 * MAX_ADDRS];
  int n6 = lookup(host, port, AF_INET6, v6, MAX_ADDRS);
  int n4 = lookup(host, port, AF_INET, v4, MAX_ADDRS);
  int n = 0;
  for (int i = 0; i < n6 || i < n4; i++) {
    if (i < n6) order[n++] = v6[i];
    if (i < n4) order[n++] = v4[i];
  }
  Attempts a = {.open_n = 0};
  int next = 0;
  double next_at = t0, last_start = -MIN_GAP_MS;
  const char *won = NULL;
  while (won == NULL && (next < n || a.open_n > 0)) {
    if (next < n && now_ms() >= next_at) {
      last_start = now_ms();
      /* Failed at once: the next one as soon as the 10 ms gap allows. */
      next_at = attempt_start(&a, &order[next++]) ? now_ms() + delay : last_start + MIN_GAP_MS;
      continue;
    }
    attempts_wait(&a, tfd, next < n ? next_at : -1.0, -1);
    won = attempt_results(&a, t0, ms, &next_at);
    if (next_at < last_start + MIN_GAP_MS) next_at = last_start + MIN_GAP_MS;
  }
  attempts_close(&a);
  return won;
}

/* ---- slow-DNS cases: lookups on a pool of threads ----------------------- */

typedef struct Lookup {
  struct Lookup *next;
  unsigned long race;
  int family;
  const char *host, *port;
  struct sockaddr_storage out[MAX_ADDRS];
  int n;
} Lookup;

/* Lookups wait in a list; a thread takes one, resolves it and writes the
 * pointer to `done` (a pipe write of a pointer is atomic and orders the
 * result before the read that gets it). */
typedef struct Pool {
  pthread_mutex_t lock;
  pthread_cond_t more;
  Lookup *head, *tail;
  int done[2];
} Pool;

static void *pool_thread(void *arg) {
  Pool *p = (Pool *)arg;
  for (;;) {
    pthread_mutex_lock(&p->lock);
    while (p->head == NULL) pthread_cond_wait(&p->more, &p->lock);
    Lookup *l = p->head;
    p->head = l->next;
    if (p->head == NULL) p->tail = NULL;
    pthread_mutex_unlock(&p->lock);
    l->n = lookup(l->host, l->port, l->family, l->out, MAX_ADDRS);
    if (write(p->done[1], &l, sizeof l) != (ssize_t)sizeof l) perror("write");
  }
  return NULL;
}

static int pool_start(Pool *p) {
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->more, NULL);
  if (pipe2(p->done, O_CLOEXEC) != 0) return -1;
  for (int i = 0; i < POOL_THREADS; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, pool_thread, p) != 0) return -1;
    pthread_detach(t);
  }
  return 0;
}

static void pool_ask(Pool *p, unsigned long race_id, int family, const char *host, const char *port) {
  Lookup *l = calloc(1, sizeof *l);
  if (l == NULL) abort();
  *l = (Lookup){.race = race_id, .family = family, .host = host, .port = port};
  pthread_mutex_lock(&p->lock);
  if (p->tail) p->tail->next = l;
  else p->head = l;
  p->tail = l;
  pthread_cond_signal(&p->more);
  pthread_mutex_unlock(&p->lock);
}

/* One race with the Resolution Delay `rd` (ms); as race(). */
static const char *race_dns(Pool *pool, unsigned long race_id, int tfd, const char *host, const char *port,
                            double delay, double rd, double *ms) {
  double t0 = now_ms();
  pool_ask(pool, race_id, AF_INET6, host, port);
  pool_ask(pool, race_id, AF_INET, host, port);
  struct sockaddr_storage v6[MAX_ADDRS], v4[MAX_ADDRS];
  int n6 = 0, n4 = 0, used6 = 0, used4 = 0, got6 = 0, got4 = 0, racing = 0, last = AF_INET;
  double a_at = 0, next_at = 0, last_start = -MIN_GAP_MS;
  Attempts a = {.open_n = 0};
  const char *won = NULL;
  while (won == NULL) {
    double now = now_ms();
    if (!racing) {
      /* RFC 8305 §3: at once on a positive AAAA answer; after the
       * Resolution Delay (or the AAAA answer) on a positive A answer. */
      racing = n6 > 0 || (n4 > 0 && (got6 || now >= a_at + rd));
      if (racing) next_at = now;
      else if (got6 && got4) break; /* no address */
    }
    int pending = (n6 - used6) + (n4 - used4);
    if (racing && pending > 0 && now >= next_at) {
      /* IPv6 first, then the families alternate. */
      int v6_next = used6 < n6 && (last == AF_INET || used4 == n4);
      struct sockaddr_storage *sa = v6_next ? &v6[used6++] : &v4[used4++];
      last = sa->ss_family;
      last_start = now_ms();
      /* Failed at once: the next one as soon as the 10 ms gap allows. */
      next_at = attempt_start(&a, sa) ? now_ms() + delay : last_start + MIN_GAP_MS;
      continue;
    }
    if (racing && pending == 0 && a.open_n == 0 && got6 && got4) break; /* every attempt failed */
    double wake = racing ? (pending > 0 ? next_at : -1.0) : (n4 > 0 ? a_at + rd : -1.0);
    short rev = attempts_wait(&a, tfd, wake, got6 && got4 ? -1 : pool->done[0]);
    if (rev) {
      Lookup *l;
      if (read(pool->done[0], &l, sizeof l) == (ssize_t)sizeof l) {
        if (l->race == race_id) {
          if (l->family == AF_INET6) {
            memcpy(v6, l->out, sizeof v6);
            n6 = l->n;
            got6 = 1;
          } else {
            memcpy(v4, l->out, sizeof v4);
            n4 = l->n;
            got4 = 1;
            a_at = now_ms();
          }
        }
        free(l);
      }
    }
    won = attempt_results(&a, t0, ms, &next_at);
    if (next_at < last_start + MIN_GAP_MS) next_at = last_start + MIN_GAP_MS;
  }
  attempts_close(&a);
  return won;
}

int main(int argc, char **argv) {
  double rd = -1;
  if (argc > 2 && strcmp(argv[1], "--resolution-delay") == 0) {
    rd = atof(argv[2]);
    argv += 2;
    argc -= 2;
  }
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: ttc_floor [--resolution-delay MS] HOST PORT ATTEMPT_DELAY_MS [RUNS]\n");
    return 2;
  }
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (tfd < 0) {
    perror("timerfd_create");
    return 1;
  }
  Pool pool;
  if (rd >= 0 && pool_start(&pool) != 0) {
    perror("resolver threads");
    return 1;
  }
  double delay = atof(argv[3]);
  int runs = argc == 5 ? atoi(argv[4]) : 1;
  int warm = argc == 5;
  printf("{\"ms\": [");
  char fams[8192] = "";
  int n = 0, errors = 0;
  for (int i = warm ? -1 : 0; i < runs; i++) {
    double ms = 0;
    const char *won = rd >= 0 ? race_dns(&pool, (unsigned long)(i + 2), tfd, argv[1], argv[2], delay, rd, &ms)
                              : race(tfd, argv[1], argv[2], delay, &ms);
    if (i < 0) continue; /* the warm-up race */
    if (won == NULL) {
      errors++;
      continue;
    }
    printf("%s%.3f", n ? ", " : "", ms);
    size_t l = strlen(fams);
    snprintf(fams + l, sizeof fams - l, "%s\"%s\"", n ? ", " : "", won);
    n++;
  }
  printf("], \"family\": [%s], \"errors\": [%s]}\n", fams, errors ? "\"failed\"" : "");
  return 0;
}
