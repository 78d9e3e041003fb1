/* The test bed's DNS server (tests/netbed/netbed.py builds and starts it in
 * the server namespace).
 *
 * usage: dns_server PORT A_ADDR AAAA_ADDR BIND_ADDR...
 *
 * Answers UDP queries on PORT of every BIND_ADDR for names *.slow.test: the
 * first label is tokens joined by '-': aaaa<MS> delays the AAAA answer by MS
 * milliseconds, a<MS> the A answer, noaaaa / noa make that answer empty (no
 * records, same delay); other tokens are ignored (tests add a per-run token
 * so that no cache answers for the server). The A answer carries A_ADDR, the
 * AAAA answer AAAA_ADDR, TTL 0. Other names: NXDOMAIN at once; other query
 * types: an empty answer at once.
 *
 * Delayed answers are sent on time by one thread: epoll over the sockets and
 * a timerfd armed (absolute, CLOCK_MONOTONIC, 1 us timer slack) for the
 * earliest pending answer; a query arriving meanwhile is answered at once.
 * No spinning: the bed runs on small machines where the clients under test
 * need the CPUs. Prints "ready" once bound; exits when stdin closes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKS 8
#define MAX_MSG 512

struct pending {
  uint64_t due_ns;
  int sock;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  size_t len;
  unsigned char msg[MAX_MSG];
};

static struct pending *pend;
static size_t npend, cap;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  printf("error: %s: %s\n", what, strerror(errno));
  fflush(stdout);
  exit(1);
}

/* The plan for a name: 0 = NXDOMAIN; otherwise delays (ms) and empties. */
struct plan {
  long a_ms, aaaa_ms;
  int noa, noaaaa;
};

static int digits(const char *s, size_t n, long *out) {
  long v = 0;
  if (n == 0 || n > 9) return 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

static int plan_for(char labels[][64], int nl, struct plan *p) {
  memset(p, 0, sizeof *p);
  if (nl < 3 || strcmp(labels[nl - 2], "slow") || strcmp(labels[nl - 1], "test")) return 0;
  const char *s = labels[0];
  while (*s) {
    const char *e = strchr(s, '-');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    long v;
    if (n > 4 && !strncmp(s, "aaaa", 4) && digits(s + 4, n - 4, &v))
      p->aaaa_ms = v;
    else if (n > 1 && s[0] == 'a' && digits(s + 1, n - 1, &v))
      p->a_ms = v;
    else if (n == 3 && !strncmp(s, "noa", 3))
      p->noa = 1;
    else if (n == 6 && !strncmp(s, "noaaaa", 6))
      p->noaaaa = 1;
    s += n;
    if (*s == '-') s++;
  }
  return 1;
}

static void arm(int tfd) {
  struct itimerspec it = {0};
  if (npend) {
    uint64_t due = pend[0].due_ns;
    for (size_t i = 1; i < npend; i++)
      if (pend[i].due_ns < due) due = pend[i].due_ns;
    it.it_value.tv_sec = (time_t)(due / 1000000000u);
    it.it_value.tv_nsec = (long)(due % 1000000000u);
    if (!it.it_value.tv_sec && !it.it_value.tv_nsec) it.it_value.tv_nsec = 1;
  }
  if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &it, NULL) < 0) die("timerfd_settime");
}

static void send_due(int tfd) {
  uint64_t t = now_ns();
  for (size_t i = 0; i < npend;) {
    if (pend[i].due_ns <= t) {
      struct pending *q = &pend[i];
      (void)sendto(q->sock, q->msg, q->len, 0, (struct sockaddr *)&q->peer, q->peer_len);
      pend[i] = pend[--npend];
    } else {
      i++;
    }
  }
  arm(tfd);
}

static void on_query(int sock, int tfd, const unsigned char *a4, const unsigned char *a6) {
  unsigned char q[MAX_MSG];
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  ssize_t n = recvfrom(sock, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&peer, &plen);
  if (n < 12) return;
  unsigned flags = (unsigned)q[2] << 8 | q[3];
  unsigned qd = (unsigned)q[4] << 8 | q[5];
  if ((flags & 0x8000) || qd < 1) return;
  char labels[16][64];
  int nl = 0;
  size_t i = 12;
  for (;;) {
    if (i >= (size_t)n) return;
    unsigned len = q[i];
    if (len == 0) {
      i++;
      break;
    }
    if ((len & 0xC0) || nl == 16 || i + 1 + len > (size_t)n) return;
    for (unsigned k = 0; k < len; k++) labels[nl][k] = (char)tolower(q[i + 1 + k]);
    labels[nl][len] = 0;
    nl++;
    i += 1 + len;
  }
  if (i + 4 > (size_t)n) return;
  unsigned qtype = (unsigned)q[i] << 8 | q[i + 1];
  size_t qend = i + 4;

  struct plan p;
  int rcode = 0, ancount = 0;
  long delay_ms = 0;
  const unsigned char *rdata = NULL;
  unsigned rdlen = 0;
  if (!plan_for(labels, nl, &p)) {
    rcode = 3; /* NXDOMAIN */
  } else if (qtype == 1) {
    delay_ms = p.a_ms;
    if (!p.noa) ancount = 1, rdata = a4, rdlen = 4;
  } else if (qtype == 28) {
    delay_ms = p.aaaa_ms;
    if (!p.noaaaa) ancount = 1, rdata = a6, rdlen = 16;
  }

  unsigned char r[MAX_MSG];
  size_t qlen = qend - 12;
  if (12 + qlen + 12 + 16 > sizeof r) return;
  unsigned rflags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | (unsigned)rcode;
  unsigned char hdr[12] = {q[0], q[1], (unsigned char)(rflags >> 8), (unsigned char)rflags, 0, 1,
                           0, (unsigned char)ancount, 0, 0, 0, 0};
  memcpy(r, hdr, 12);
  memcpy(r + 12, q + 12, qlen);
  size_t len = 12 + qlen;
  if (ancount) {
    unsigned char rr[12] = {0xC0, 0x0C, (unsigned char)(qtype >> 8), (unsigned char)qtype, 0, 1,
                            0, 0, 0, 0, 0, (unsigned char)rdlen};
    memcpy(r + len, rr, 12);
    memcpy(r + len + 12, rdata, rdlen);
    len += 12 + rdlen;
  }
  if (delay_ms <= 0) {
    (void)sendto(sock, r, len, 0, (struct sockaddr *)&peer, plen);
    return;
  }
  if (npend == cap) {
    size_t ncap = cap ? cap * 2 : 64;
    struct pending *np = realloc(pend, ncap * sizeof *np);
    if (!np) return; /* out of memory: drop the query; the client retries */
    pend = np;
    cap = ncap;
  }
  struct pending *e = &pend[npend++];
  e->due_ns = now_ns() + (uint64_t)delay_ms * 1000000u;
  e->sock = sock;
  e->peer = peer;
  e->peer_len = plen;
  e->len = len;
  memcpy(e->msg, r, len);
  arm(tfd);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: dns_server PORT A_ADDR AAAA_ADDR BIND_ADDR...\n");
    return 2;
  }
  int port = atoi(argv[1]);
  unsigned char a4[4], a6[16];
  if (port <= 0 || port > 65535 || inet_pton(AF_INET, argv[2], a4) != 1 ||
      inet_pton(AF_INET6, argv[3], a6) != 1 || argc - 4 > MAX_SOCKS) {
    fprintf(stderr, "dns_server: bad arguments\n");
    return 2;
  }
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (ep < 0 || tfd < 0) die("epoll/timerfd");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = tfd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0) die("epoll_ctl");
  ev.data.fd = 0;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) < 0) die("epoll_ctl stdin");
  for (int k = 4; k < argc; k++) {
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    int fam;
    if (strchr(argv[k], ':')) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons((uint16_t)port);
      if (inet_pton(AF_INET6, argv[k], &s6->sin6_addr) != 1) return 2;
      fam = AF_INET6, sl = sizeof *s6;
    } else {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
      s4->sin_family = AF_INET;
      s4->sin_port = htons((uint16_t)port);
      if (inet_pton(AF_INET, argv[k], &s4->sin_addr) != 1) return 2;
      fam = AF_INET, sl = sizeof *s4;
    }
    int s = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) die("socket");
    if (bind(s, (struct sockaddr *)&ss, sl) < 0) die(argv[k]);
    ev.data.fd = s;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) < 0) die("epoll_ctl");
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int j = 0; j < n; j++) {
      int fd = evs[j].data.fd;
      if (fd == 0) {
        char b[256];
        ssize_t r = read(0, b, sizeof b);
        if (r <= 0) return 0; /* stdin closed: the bed is going down */
      } else if (fd == tfd) {
        uint64_t ticks;
        if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) die("read timerfd");
        send_due(tfd);
      } else {
        on_query(fd, tfd, a4, a6);
      }
    }
  }
}
