/* What bench/soak.c needs besides the library: checks that end the
 * program, the clock, the process's open fds and heap, and loopback
 * sockets (a listener, a refusing port, a blackholed listener). The
 * bench programs are self-contained: they use the public header only. */
#ifndef TAPS_SOAK_UTIL_H
#define TAPS_SOAK_UTIL_H

#include "taps_racing.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

/* Compare two taps_error codes and print them with taps_strerror. */
#define CHECK_CODE(got, want)                                                    \
  do {                                                                           \
    int check_g_ = (int)(got), check_w_ = (int)(want);                           \
    if (check_g_ != check_w_) {                                                  \
      fprintf(stderr, "%s:%d: CHECK_CODE failed: %s == %s (%d \"%s\" != %d \"%s\")\n", \
              __FILE__, __LINE__, #got, #want, check_g_, taps_strerror(check_g_), \
              check_w_, taps_strerror(check_w_));                                \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

static inline uint64_t soak_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Number of open file descriptors of this process. */
static inline int soak_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') n++;
  }
  closedir(d);
  return n - 1; /* the directory's own fd */
}

/* Print each open fd and what it points to. */
static inline void soak_list_fds(const char *label) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return;
  struct dirent *e;
  fprintf(stderr, "open fds (%s):\n", label);
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n < 0 ? 0 : n] = '\0';
    fprintf(stderr, "  %s -> %s\n", e->d_name, target);
  }
  closedir(d);
}

/* Heap bytes in use (glibc mallinfo2: main arena and mmapped chunks). */
static inline size_t soak_heap_bytes(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

/* 127.0.0.1:`port`. */
static inline socklen_t soak_loopback(uint16_t port, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa->sin_port = htons(port);
  return sizeof *sa;
}

/* A TCP socket bound to 127.0.0.1 on an ephemeral port. With backlog >= 0
 * it listens; with backlog < 0 it stays bound but not listening, so
 * connections to it are refused while the port stays reserved. Returns the
 * fd (or -1) and stores the port. */
static inline int soak_bind_socket(int backlog, uint16_t *out_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in sa;
  socklen_t len = soak_loopback(0, &sa);
  if (bind(fd, (struct sockaddr *)&sa, len) != 0 || (backlog >= 0 && listen(fd, backlog) != 0)) {
    close(fd);
    return -1;
  }
  len = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
    close(fd);
    return -1;
  }
  *out_port = ntohs(sa.sin_port);
  return fd;
}

/* A "blackholed" listener on 127.0.0.1: listen backlog 0 and an accept
 * queue filled by one connection that is never accepted, so further SYNs
 * are dropped silently. Returns the listener fd (or -1) and stores the
 * filler client's fd (keep both open). */
static inline int soak_blackhole(uint16_t *out_port, int *out_filler) {
  uint16_t p;
  int l = soak_bind_socket(0, &p);
  if (l < 0) return -1;
  int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c < 0) {
    close(l);
    return -1;
  }
  struct sockaddr_in sa;
  socklen_t len = soak_loopback(p, &sa);
  int r = connect(c, (struct sockaddr *)&sa, len);
  struct pollfd pfd = {c, POLLOUT, 0};
  int err = 0;
  socklen_t elen = sizeof err;
  if ((r != 0 && errno != EINPROGRESS) || poll(&pfd, 1, 2000) != 1 ||
      getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
    close(c);
    close(l);
    return -1;
  }
  /* A second connection attempt must now be dropped silently. */
  int probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe >= 0) {
    r = connect(probe, (struct sockaddr *)&sa, len);
    pfd.fd = probe;
    pfd.revents = 0;
    int answered = r == 0 || (errno == EINPROGRESS && poll(&pfd, 1, 50) == 1);
    close(probe);
    if (answered) {
      fprintf(stderr, "blackhole: the filled accept queue still answers SYNs here\n");
      close(c);
      close(l);
      return -1;
    }
  }
  *out_filler = c;
  *out_port = p;
  return l;
}

/* A remote endpoint 127.0.0.1:`port`. */
static inline taps_remote_endpoint *soak_remote(uint16_t port) {
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  CHECK(ep != NULL);
  struct in_addr a;
  a.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_CODE(taps_remote_endpoint_with_ipv4(ep, a), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_port(ep, port), TAPS_OK);
  return ep;
}

#endif /* TAPS_SOAK_UTIL_H */
