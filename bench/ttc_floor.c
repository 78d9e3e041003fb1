/*
 * ttc_floor: the floor under time to connected for the hosts-file cases of
 * bench/compare.py. Plain C on the calling thread, no library: getaddrinfo
 * for AAAA then A (a hosts-file name answers in µs, so asking one after the
 * other costs nothing here), then the RFC 8305 §5 schedule over the
 * answers, IPv6 first and the families alternating: the next attempt after
 * the attempt delay, or at once when the running one fails; the first to
 * connect wins and every other socket is closed.
 *
 * This is what any program pays on this machine for the same schedule:
 * glibc's lookup, the kernel's connects, the wake from poll. It has no
 * resolver threads, no Resolution Delay (so it is not valid for the slow
 * DNS cases) and no candidate tree.
 *
 *   ttc_floor HOST PORT ATTEMPT_DELAY_MS [RUNS]
 *
 * Without RUNS: one race, in a process of its own (the cold start that
 * taps_race and curl pay), printed as {"ms": [..], "family": [..],
 * "errors": [..]}. With RUNS: one warm-up race, then RUNS races back to
 * back in this process, like `taps_load ttc`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_ADDRS 16

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
  struct pollfd fds[2 * MAX_ADDRS + 1];
  int fam[2 * MAX_ADDRS], open_n = 0, next = 0;
  double next_at = t0;
  const char *won = NULL;
  while (won == NULL && (next < n || open_n > 0)) {
    if (next < n && now_ms() >= next_at) {
      struct sockaddr_storage *sa = &order[next++];
      socklen_t len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
      int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd >= 0 && (connect(fd, (struct sockaddr *)sa, len) == 0 || errno == EINPROGRESS)) {
        fds[open_n] = (struct pollfd){.fd = fd, .events = POLLOUT};
        fam[open_n++] = sa->ss_family;
        next_at = now_ms() + delay;
      } else if (fd >= 0) {
        close(fd); /* failed at once: the next one now */
      }
      continue;
    }
    /* Like the library: a timerfd (poll's own timeout has a slack of 0.1%
     * of the wait: 250 µs on 250 ms), set 200 µs before the next start,
     * then polls without sleeping until it (a wake from idle takes 0.1-0.2
     * ms on this machine). */
    int timed = next < n;
    if (timed) {
      double at = next_at - 0.2;
      if (at <= now_ms()) {
        poll(fds, (nfds_t)open_n, 0);
      } else {
        struct itimerspec its;
        memset(&its, 0, sizeof its);
        its.it_value.tv_sec = (time_t)(at / 1000.0);
        its.it_value.tv_nsec = (long)((at - (double)its.it_value.tv_sec * 1000.0) * 1e6);
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        fds[open_n] = (struct pollfd){.fd = tfd, .events = POLLIN};
        poll(fds, (nfds_t)open_n + 1, -1);
        uint64_t expirations;
        if (fds[open_n].revents && read(tfd, &expirations, sizeof expirations) < 0) perror("timerfd");
      }
    } else {
      poll(fds, (nfds_t)open_n, -1);
    }
    for (int i = 0; i < open_n && won == NULL; i++) {
      if (fds[i].revents == 0) continue;
      int err = 0;
      socklen_t el = sizeof err;
      getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &el);
      if (err == 0) {
        *ms = now_ms() - t0;
        won = fam[i] == AF_INET6 ? "ipv6" : "ipv4";
      } else {
        close(fds[i].fd);
        fds[i] = fds[open_n - 1];
        fam[i] = fam[open_n - 1];
        open_n--;
        i--;
        next_at = now_ms(); /* RFC 8305 §5: the next attempt at once */
      }
    }
  }
  for (int i = 0; i < open_n; i++) {
    struct linger lg = {1, 0}; /* an RST, no TIME_WAIT, as the other clients */
    setsockopt(fds[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fds[i].fd);
  }
  return won;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: ttc_floor HOST PORT ATTEMPT_DELAY_MS [RUNS]\n");
    return 2;
  }
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
  if (tfd < 0) {
    perror("timerfd_create");
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
    const char *won = race(tfd, argv[1], argv[2], delay, &ms);
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
