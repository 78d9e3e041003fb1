/* epoll_connect: the ceiling for bench/compare.py. A plain non-blocking
 * connect loop over epoll, no racing, no library: IN_FLIGHT connects at a
 * time to ADDR (an IPv4 or IPv6 literal) on the ports in PORTS ("7100,7101");
 * each connected socket is closed with an RST (SO_LINGER 0, as taps_load
 * does) and a new connect starts, until MAX_CONNS started or MAX_SECONDS
 * passed.
 *
 *   epoll_connect ADDR PORTS IN_FLIGHT MAX_CONNS MAX_SECONDS
 *
 * Prints one JSON object: started, connected, failed, elapsed_s, cps.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sockaddr_storage addrs[16];
static socklen_t addr_len;
static int n_addrs, ep;
static long started, connected, failed, target;
static double deadline;

static void start_one(void) {
  if (started >= target || now_s() > deadline) return;
  const struct sockaddr_storage *sa = &addrs[started % n_addrs];
  started++;
  int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    failed++;
    return;
  }
  if (connect(fd, (const struct sockaddr *)sa, addr_len) != 0 && errno != EINPROGRESS) {
    close(fd);
    failed++;
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    close(fd);
    failed++;
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: epoll_connect ADDR PORTS IN_FLIGHT MAX_CONNS MAX_SECONDS\n");
    return 2;
  }
  int in_flight = atoi(argv[3]);
  target = atol(argv[4]);
  double max_s = atof(argv[5]);
  struct rlimit rl = {(rlim_t)in_flight * 2 + 1024, (rlim_t)in_flight * 2 + 1024};
  struct rlimit cur;
  getrlimit(RLIMIT_NOFILE, &cur);
  if (cur.rlim_cur < rl.rlim_cur) setrlimit(RLIMIT_NOFILE, &rl);
  char *ports = strdup(argv[2]), *save = NULL;
  for (char *t = strtok_r(ports, ",", &save); t && n_addrs < 16; t = strtok_r(NULL, ",", &save)) {
    struct sockaddr_storage *ss = &addrs[n_addrs];
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, argv[1], &s4->sin_addr) == 1) {
      s4->sin_family = AF_INET;
      s4->sin_port = htons((uint16_t)atoi(t));
      addr_len = sizeof *s4;
    } else if (inet_pton(AF_INET6, argv[1], &s6->sin6_addr) == 1) {
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons((uint16_t)atoi(t));
      addr_len = sizeof *s6;
    } else {
      fprintf(stderr, "epoll_connect: bad address %s\n", argv[1]);
      return 2;
    }
    n_addrs++;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("epoll_create1");
    return 1;
  }
  double t0 = now_s();
  deadline = t0 + max_s;
  for (int i = 0; i < in_flight; i++) start_one();
  struct epoll_event evs[256];
  long live = started - failed;
  while (live > 0) {
    int n = epoll_wait(ep, evs, 256, 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd, err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        connected++;
      } else {
        failed++;
      }
      close(fd); /* also removes it from the epoll set */
      start_one();
    }
    live = started - connected - failed;
  }
  double elapsed = now_s() - t0;
  printf("{\"started\": %ld, \"connected\": %ld, \"failed\": %ld, \"elapsed_s\": %.4f, \"cps\": %.1f}\n", started,
         connected, failed, elapsed, connected / elapsed);
  return 0;
}
