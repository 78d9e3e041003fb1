/* Shared helpers for the C tests: CHECK macros, loopback listeners, fd counting.
 *
 * Every test program includes this header, prints the name of each test it
 * runs, and exits 0 (pass), 1 (a CHECK failed) or 77 (skipped).
 */
#ifndef TAPS_TEST_UTIL_H
#define TAPS_TEST_UTIL_H

#include "taps_racing.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TEST_SKIP 77

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

#define CHECK_EQ(a, b)                                                           \
  do {                                                                           \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);              \
    if (check_a_ != check_b_) {                                                  \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n",       \
              __FILE__, __LINE__, #a, #b, check_a_, check_b_);                   \
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

#define CHECK_RANGE(v, lo, hi)                                                   \
  do {                                                                           \
    long long check_v_ = (long long)(v);                                         \
    if (check_v_ < (long long)(lo) || check_v_ > (long long)(hi)) {              \
      fprintf(stderr, "%s:%d: CHECK_RANGE failed: %s = %lld not in [%lld, %lld]\n", \
              __FILE__, __LINE__, #v, check_v_, (long long)(lo), (long long)(hi)); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

/* Time bounds are multiplied by $TAPS_TEST_TIME_SCALE (default 1), e.g. 20
 * under valgrind. */
static inline long long test_time_scale(void) {
  const char *s = getenv("TAPS_TEST_TIME_SCALE");
  long long v = s ? atoll(s) : 1;
  return v > 0 ? v : 1;
}
#define SCALED(us) ((long long)(us) * test_time_scale())

#define TEST_BEGIN(name) fprintf(stderr, "test %s ...\n", (name))
#define TEST_PASS(name) fprintf(stderr, "test %s ... ok\n", (name))

static inline void test_skip(const char *why) {
  fprintf(stderr, "SKIP: %s\n", why);
  exit(TEST_SKIP);
}

static inline uint64_t test_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void test_sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Number of open file descriptors of this process. */
static inline int test_count_fds(void) {
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

static inline void test_list_fds(const char *label) {
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

static inline socklen_t test_make_addr(int family, uint16_t port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_loopback;
    s6->sin6_port = htons(port);
    return sizeof *s6;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s4->sin_port = htons(port);
  return sizeof *s4;
}

static inline uint16_t test_addr_port(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  if (ss->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)ss)->sin_port);
  return 0;
}

/* A TCP socket bound to the loopback address of `family` on `port` (0 for an
 * ephemeral port). With backlog >= 0 it listens; with backlog < 0 it stays
 * bound but not listening, so connections to it are refused while the port
 * stays reserved. Returns the fd (or -1) and stores the port. */
static inline int test_bind_socket(int family, uint16_t port, int backlog, uint16_t *out_port) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  struct sockaddr_storage ss;
  socklen_t len = test_make_addr(family, port, &ss);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
    close(fd);
    return -1;
  }
  if (backlog >= 0 && listen(fd, backlog) != 0) {
    close(fd);
    return -1;
  }
  len = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &len);
  if (out_port) *out_port = test_addr_port(&ss);
  return fd;
}

static inline int test_listen(int family, uint16_t *out_port) {
  return test_bind_socket(family, 0, 128, out_port);
}

/* A port on the loopback address of `family` that refuses connections. */
static inline int test_refusing(int family, uint16_t *out_port) {
  return test_bind_socket(family, 0, -1, out_port);
}

static inline int test_have_ipv6(void) {
  uint16_t port;
  int fd = test_bind_socket(AF_INET6, 0, -1, &port);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

/* A "blackholed" listener: listen backlog 0 and an accept queue filled by one
 * connection that is never accepted, so further SYNs are dropped silently.
 * Returns the listener fd and stores the filler client's fd (keep both open). */
static inline int test_blackhole(int family, uint16_t port, uint16_t *out_port, int *out_filler) {
  uint16_t p;
  int l = test_bind_socket(family, port, 0, &p);
  if (l < 0) return -1;
  int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c < 0) {
    close(l);
    return -1;
  }
  struct sockaddr_storage ss;
  socklen_t len = test_make_addr(family, p, &ss);
  int r = connect(c, (struct sockaddr *)&ss, len);
  if (r != 0 && errno != EINPROGRESS) {
    close(c);
    close(l);
    return -1;
  }
  struct pollfd pfd = {c, POLLOUT, 0};
  int err = 0;
  socklen_t elen = sizeof err;
  if (poll(&pfd, 1, 2000) != 1 || getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
    close(c);
    close(l);
    return -1;
  }
  /* Check that a second connection attempt is now silently dropped. */
  int probe = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (probe >= 0) {
    r = connect(probe, (struct sockaddr *)&ss, len);
    pfd.fd = probe;
    pfd.revents = 0;
    int ready = (r == 0) || (r != 0 && errno == EINPROGRESS && poll(&pfd, 1, 50) == 1);
    close(probe);
    if (ready) {
      fprintf(stderr, "blackhole: the filled accept queue still answers SYNs here\n");
      close(c);
      close(l);
      return -1;
    }
  }
  *out_filler = c;
  if (out_port) *out_port = p;
  return l;
}

/* Accept and close every pending connection on a listener (non-blocking). */
static inline int test_drain(int listener) {
  int n = 0;
  int fl = fcntl(listener, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(listener, F_SETFL, fl | O_NONBLOCK);
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    close(fd);
    n++;
  }
  return n;
}

static inline taps_remote_endpoint *test_remote_literal(int family, uint16_t port) {
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  CHECK(ep != NULL);
  if (family == AF_INET6) {
    CHECK_CODE(taps_remote_endpoint_with_ipv6(ep, in6addr_loopback), TAPS_OK);
  } else {
    struct in_addr a;
    a.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_CODE(taps_remote_endpoint_with_ipv4(ep, a), TAPS_OK);
  }
  CHECK_CODE(taps_remote_endpoint_with_port(ep, port), TAPS_OK);
  return ep;
}

static inline taps_remote_endpoint *test_remote_host(const char *host, uint16_t port) {
  taps_remote_endpoint *ep = taps_remote_endpoint_new();
  CHECK(ep != NULL);
  CHECK_CODE(taps_remote_endpoint_with_hostname(ep, host), TAPS_OK);
  CHECK_CODE(taps_remote_endpoint_with_port(ep, port), TAPS_OK);
  return ep;
}

/* Records what the callbacks saw. */
typedef struct TestRecord {
  int ready;
  int establishment_error;
  int connection_error;
  int closed;
  uint64_t t_start_us;
  uint64_t t_done_us;
  int fds_in_ready;
  int free_in_callback; /* taps_connection_free inside ready / establishment_error */
  int close_in_ready;   /* taps_connection_close inside ready */
  taps_connection *conn;     /* the handle returned by initiate (NULL once freed) */
  taps_connection *cb_conn;  /* the handle passed to the last callback */
} TestRecord;

static inline int test_cb_ready(taps_connection *c, void *ud) {
  TestRecord *r = (TestRecord *)ud;
  r->ready++;
  r->t_done_us = test_now_us();
  r->fds_in_ready = test_count_fds();
  r->cb_conn = c;
  if (r->free_in_callback) {
    taps_connection_free(c);
    r->conn = NULL;
  } else if (r->close_in_ready) {
    taps_connection_close(c);
  }
  return 0;
}

static inline int test_cb_establishment_error(taps_connection *c, void *ud) {
  TestRecord *r = (TestRecord *)ud;
  r->establishment_error++;
  r->t_done_us = test_now_us();
  r->cb_conn = c;
  if (r->free_in_callback) {
    taps_connection_free(c);
    r->conn = NULL;
  }
  return 0;
}

static inline int test_cb_connection_error(taps_connection *c, void *ud) {
  TestRecord *r = (TestRecord *)ud;
  r->connection_error++;
  r->cb_conn = c;
  return 0;
}

static inline int test_cb_closed(taps_connection *c, void *ud) {
  TestRecord *r = (TestRecord *)ud;
  r->closed++;
  r->cb_conn = c;
  return 0;
}

static inline taps_connection_callbacks test_callbacks(TestRecord *r) {
  taps_connection_callbacks cb;
  memset(&cb, 0, sizeof cb);
  cb.ready = test_cb_ready;
  cb.establishment_error = test_cb_establishment_error;
  cb.connection_error = test_cb_connection_error;
  cb.closed = test_cb_closed;
  cb.user_data = r;
  return cb;
}

/* Creates a preconnection from `remotes` (the endpoints are freed here: the
 * preconnection copies them), initiates and runs the loop to completion. */
static inline taps_preconnection *test_race(taps_event_loop *loop, taps_remote_endpoint **remotes, size_t n,
                                       const taps_racing_options *opts, TestRecord *rec) {
  taps_preconnection *p = taps_preconnection_new(loop, (const taps_remote_endpoint *const *)remotes, n, NULL, opts);
  if (p == NULL) {
    fprintf(stderr, "taps_preconnection_new failed: %s\n", taps_strerror(taps_last_error()));
  }
  CHECK(p != NULL);
  for (size_t i = 0; i < n; i++) taps_remote_endpoint_free(remotes[i]);
  rec->t_start_us = test_now_us();
  CHECK_CODE(taps_preconnection_initiate_with_racing(p, test_callbacks(rec), &rec->conn), TAPS_OK);
  CHECK(rec->conn != NULL);
  CHECK_CODE(taps_event_loop_run(loop), TAPS_OK);
  return p;
}

static inline const char *test_outcome_name(taps_attempt_outcome o) {
  switch (o) {
    case TAPS_ATTEMPT_OUTCOME_RUNNING: return "running";
    case TAPS_ATTEMPT_OUTCOME_WON: return "won";
    case TAPS_ATTEMPT_OUTCOME_FAILED: return "failed";
    case TAPS_ATTEMPT_OUTCOME_CANCELLED: return "cancelled";
    case TAPS_ATTEMPT_OUTCOME_SPARE: return "spare";
    case TAPS_ATTEMPT_OUTCOME_PRUNED: return "pruned";
  }
  return "?";
}

static inline void test_print_attempts(const taps_connection *c) {
  size_t n = taps_connection_attempt_count(c);
  for (size_t i = 0; i < n; i++) {
    taps_attempt_info a;
    if (taps_connection_get_attempt(c, i, &a) != TAPS_OK) continue;
    char buf[INET6_ADDRSTRLEN] = "?";
    if (a.address.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a.address)->sin6_addr, buf, sizeof buf);
    else if (a.address.ss_family == AF_INET)
      inet_ntop(AF_INET, &((struct sockaddr_in *)&a.address)->sin_addr, buf, sizeof buf);
    fprintf(stderr, "  attempt %zu: %s port %u %s started %.2f ms ended %.2f ms %s os_error %d (%s)\n", i,
            buf, test_addr_port(&a.address), a.protocol ? a.protocol : "(null)", a.started_us / 1000.0,
            a.ended_us / 1000.0, test_outcome_name(a.outcome), a.os_error,
            a.os_error ? strerror(a.os_error) : "-");
  }
}

#endif /* TAPS_TEST_UTIL_H */
