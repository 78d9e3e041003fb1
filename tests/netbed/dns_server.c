/* The test bed's DNS server (tests/netbed/netbed.py builds and starts it in
 * the server namespace).
 *
 * usage: dns_server [--relay ADDR RPORT ZONE] PORT A_ADDR AAAA_ADDR BIND_ADDR...
 *
 * Answers queries on PORT of every BIND_ADDR, over UDP and TCP (RFC 7766:
 * two-byte length prefix, several queries per connection), for names
 * *.slow.test: the first label is tokens joined by '-': aaaa<MS> delays the
 * AAAA answer by MS milliseconds, a<MS> the A answer, https<MS> makes the
 * HTTPS (type 65) answer one ServiceMode record "1 . alpn=h2" sent after MS
 * ms; noaaaa / noa make that answer empty (no records, same delay), nohttps
 * (the default without https<MS>) an empty HTTPS answer at once; tc answers
 * every UDP query for the name at once with the TC bit set and no records,
 * so the client retries over TCP, where the answers follow the other
 * tokens. Other tokens are ignored (tests add a per-run token so that no
 * cache answers for the server). The A answer carries A_ADDR, the AAAA
 * answer AAAA_ADDR, TTL 0. An HTTPS query for _PORT._https.NAME (RFC 9460
 * §9.1) follows NAME's tokens, its record's TargetName being NAME; A and
 * AAAA for such a name are empty.
 *
 * With --relay, queries for ZONE and the names under it are relayed as they
 * are to the DNS server at ADDR port RPORT (knotd, authoritative for ZONE)
 * over the transport they came on, and its answer relayed back. Other names:
 * NXDOMAIN at once; other query types: an empty answer at once.
 *
 * Delayed answers are sent on time by one thread: epoll over the sockets and
 * a timerfd armed (absolute, CLOCK_MONOTONIC, 1 us timer slack) for the
 * earliest pending answer; a query arriving meanwhile is answered at once.
 * A relayed query waits (at most 250 ms) for the relay's answer: the relay is
 * local and answers in microseconds. No spinning: the bed runs on small
 * machines where the clients under test need the CPUs. Prints "ready" once
 * bound; exits when stdin closes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKS 8
#define MAX_MSG 1024
#define MAX_IN 65535
#define MAX_CONNS 64
#define MAX_LABELS 128

enum kind { K_STDIN = 1, K_TIMER, K_UDP, K_TCP_LISTEN, K_TCP_CONN };

struct pending {
  uint64_t due_ns;
  int sock;
  int tcp;
  struct sockaddr_storage peer;
  socklen_t peer_len;
  size_t len;
  unsigned char msg[MAX_MSG];
};

struct conn {
  int fd;
  size_t have;
  unsigned char buf[2 + MAX_IN];
};

static struct pending *pend;
static size_t npend, cap;
static struct conn *conns[MAX_CONNS];
static unsigned char a4[4], a6[16];
static int tfd, ep;
static struct sockaddr_storage relay_addr;
static socklen_t relay_len;
static const char *relay_zone; /* NULL: no relay */

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

static uint64_t tag(enum kind k, int fd) { return (uint64_t)k << 32 | (uint32_t)fd; }

static void watch(enum kind k, int fd) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(k, fd)};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

/* A parsed question: the labels (offsets into the message) and the type. */
struct question {
  int nl;
  size_t off[MAX_LABELS]; /* offset of each label's length byte */
  size_t qend;            /* offset just past QTYPE and QCLASS */
  unsigned qtype;
};

static int label_is(const unsigned char *q, const struct question *qs, int i, const char *s) {
  size_t n = q[qs->off[i]];
  return strlen(s) == n && !strncasecmp((const char *)q + qs->off[i] + 1, s, n);
}

static int parse_question(const unsigned char *q, size_t n, struct question *qs) {
  size_t i = 12;
  qs->nl = 0;
  for (;;) {
    if (i >= n) return 0;
    unsigned len = q[i];
    if (len == 0) {
      i++;
      break;
    }
    if ((len & 0xC0) || qs->nl == MAX_LABELS || i + 1 + len > n) return 0;
    qs->off[qs->nl++] = i;
    i += 1 + len;
  }
  if (i + 4 > n) return 0;
  qs->qtype = (unsigned)q[i] << 8 | q[i + 1];
  qs->qend = i + 4;
  return 1;
}

/* Whether the question's name is `zone` ("a.b") or a name under it. */
static int under_zone(const unsigned char *q, const struct question *qs, const char *zone) {
  char zl[MAX_LABELS][64];
  int nz = 0;
  const char *s = zone;
  while (*s && nz < MAX_LABELS) {
    const char *e = strchr(s, '.');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0 || n > 63) return 0;
    memcpy(zl[nz], s, n);
    zl[nz++][n] = 0;
    s += n + (e ? 1 : 0);
  }
  if (nz == 0 || qs->nl < nz) return 0;
  for (int k = 0; k < nz; k++)
    if (!label_is(q, qs, qs->nl - nz + k, zl[k])) return 0;
  return 1;
}

/* The plan for a *.slow.test name: delays (ms) and empties. */
struct plan {
  long a_ms, aaaa_ms, https_ms;
  int noa, noaaaa, https, nohttps, tc;
  int prefixed;      /* _PORT._https.NAME */
  size_t host_off;   /* offset of NAME in the message */
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

static int token(const char *s, size_t n, const char *word) { return n == strlen(word) && !strncmp(s, word, n); }

static int plan_for(const unsigned char *q, const struct question *qs, struct plan *p) {
  memset(p, 0, sizeof *p);
  int nl = qs->nl, h = 0;
  if (nl >= 2 && q[qs->off[0]] > 1 && q[qs->off[0] + 1] == '_' && label_is(q, qs, 1, "_https")) h = 2;
  if (nl < h + 3 || !label_is(q, qs, nl - 2, "slow") || !label_is(q, qs, nl - 1, "test")) return 0;
  p->prefixed = h != 0;
  p->host_off = qs->off[h];
  char first[64];
  size_t fl = q[qs->off[h]];
  for (size_t k = 0; k < fl; k++) first[k] = (char)tolower(q[qs->off[h] + 1 + k]);
  first[fl] = 0;
  const char *s = first;
  while (*s) {
    const char *e = strchr(s, '-');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    long v;
    if (n > 4 && !strncmp(s, "aaaa", 4) && digits(s + 4, n - 4, &v))
      p->aaaa_ms = v;
    else if (n > 5 && !strncmp(s, "https", 5) && digits(s + 5, n - 5, &v))
      p->https_ms = v, p->https = 1;
    else if (n > 1 && s[0] == 'a' && digits(s + 1, n - 1, &v))
      p->a_ms = v;
    else if (token(s, n, "noa"))
      p->noa = 1;
    else if (token(s, n, "noaaaa"))
      p->noaaaa = 1;
    else if (token(s, n, "nohttps"))
      p->nohttps = 1;
    else if (token(s, n, "tc"))
      p->tc = 1;
    s += n;
    if (*s == '-') s++;
  }
  if (p->nohttps) p->https = 0, p->https_ms = 0; /* nohttps wins whatever the order */
  return 1;
}

static void arm(void) {
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

/* Sends one answer: a datagram, or a length-prefixed message on TCP. */
static void reply(int sock, int tcp, const struct sockaddr_storage *peer, socklen_t plen, const unsigned char *r,
                  size_t len) {
  if (!tcp) {
    (void)sendto(sock, r, len, 0, (const struct sockaddr *)peer, plen);
    return;
  }
  unsigned char pre[2] = {(unsigned char)(len >> 8), (unsigned char)len};
  struct iovec iov[2] = {{pre, 2}, {(void *)r, len}};
  struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
  (void)sendmsg(sock, &mh, MSG_NOSIGNAL); /* a small answer: the socket buffer takes it whole */
}

static void send_due(void) {
  uint64_t t = now_ns();
  for (size_t i = 0; i < npend;) {
    if (pend[i].due_ns <= t) {
      struct pending *q = &pend[i];
      reply(q->sock, q->tcp, &q->peer, q->peer_len, q->msg, q->len);
      pend[i] = pend[--npend];
    } else {
      i++;
    }
  }
  arm();
}

/* Relays query q (n bytes) to the relay over UDP or TCP; returns the
 * answer's length in out, 0 when none came within 250 ms. */
static size_t relay(const unsigned char *q, size_t n, int tcp, unsigned char *out, size_t outcap) {
  int s = socket(relay_addr.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  struct timeval tv = {0, 250000};
  (void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  size_t got = 0;
  if (connect(s, (struct sockaddr *)&relay_addr, relay_len) < 0) goto out;
  if (!tcp) {
    if (send(s, q, n, 0) != (ssize_t)n) goto out;
    for (int tries = 0; tries < 4; tries++) {
      ssize_t r = recv(s, out, outcap, 0);
      if (r < 0) goto out;
      if (r >= 12 && out[0] == q[0] && out[1] == q[1]) {
        got = (size_t)r;
        goto out;
      }
    }
    goto out;
  }
  unsigned char pre[2] = {(unsigned char)(n >> 8), (unsigned char)n};
  if (send(s, pre, 2, MSG_NOSIGNAL | MSG_MORE) != 2 || send(s, q, n, MSG_NOSIGNAL) != (ssize_t)n) goto out;
  size_t want = 2, have = 0;
  unsigned char lenb[2];
  while (have < want) { /* the length, then the message */
    ssize_t r = have < 2 ? recv(s, lenb + have, 2 - have, 0) : recv(s, out + have - 2, want - have, 0);
    if (r <= 0) goto out;
    have += (size_t)r;
    if (have == 2 && want == 2) {
      want = 2 + ((size_t)lenb[0] << 8 | lenb[1]);
      if (want - 2 > outcap || want == 2) goto out;
    }
  }
  got = want - 2;
out:
  close(s);
  return got;
}

/* One HTTPS ServiceMode record "1 TARGET alpn=h2": TARGET the root, or
 * the host name of the question at host_off, uncompressed (RFC 9460 §2.2).
 * Returns its length. */
static size_t https_rdata(unsigned char *d, const unsigned char *q, int prefixed, size_t host_off) {
  size_t k = 0;
  d[k++] = 0, d[k++] = 1; /* SvcPriority 1 */
  if (prefixed) {
    for (size_t i = host_off; q[i]; i += 1 + q[i]) {
      memcpy(d + k, q + i, 1 + (size_t)q[i]);
      k += 1 + (size_t)q[i];
    }
  }
  d[k++] = 0; /* the root */
  const unsigned char alpn[] = {0, 1, 0, 3, 2, 'h', '2'}; /* key 1 (alpn), length 3, "h2" */
  memcpy(d + k, alpn, sizeof alpn);
  return k + sizeof alpn;
}

/* Builds the answer to query q for a *.slow.test name, or NXDOMAIN for a
 * name neither slow.test nor the relay's. Returns its length (0: drop) and
 * the delay; -1 when the query goes to the relay. */
static long answer(const unsigned char *q, size_t n, int tcp, unsigned char *r, long *delay_ms) {
  *delay_ms = 0;
  if (n < 12) return 0;
  unsigned flags = (unsigned)q[2] << 8 | q[3];
  unsigned qd = (unsigned)q[4] << 8 | q[5];
  if ((flags & 0x8000) || qd < 1) return 0;
  struct question qs;
  int parsed = parse_question(q, n, &qs);
  if (relay_zone && (!parsed || under_zone(q, &qs, relay_zone))) return -1;
  if (!parsed) return 0;

  struct plan p;
  int rcode = 0, ancount = 0, trunc = 0;
  const unsigned char *rdata = NULL;
  unsigned char https[300];
  unsigned rdlen = 0;
  if (!plan_for(q, &qs, &p)) {
    rcode = 3; /* NXDOMAIN */
  } else if (p.tc && !tcp) {
    trunc = 1;
  } else if (qs.qtype == 1 && !p.prefixed) {
    *delay_ms = p.a_ms;
    if (!p.noa) ancount = 1, rdata = a4, rdlen = 4;
  } else if (qs.qtype == 28 && !p.prefixed) {
    *delay_ms = p.aaaa_ms;
    if (!p.noaaaa) ancount = 1, rdata = a6, rdlen = 16;
  } else if (qs.qtype == 65 && p.https) {
    *delay_ms = p.https_ms;
    rdlen = (unsigned)https_rdata(https, q, p.prefixed, p.host_off);
    ancount = 1, rdata = https;
  }

  size_t qlen = qs.qend - 12;
  if (12 + qlen + 12 + rdlen > MAX_MSG) return 0;
  unsigned rflags = 0x8000 | 0x0400 | (trunc ? 0x0200 : 0) | (flags & 0x0100) | 0x0080 | (unsigned)rcode;
  unsigned char hdr[12] = {q[0], q[1], (unsigned char)(rflags >> 8), (unsigned char)rflags, 0, 1,
                           0, (unsigned char)ancount, 0, 0, 0, 0};
  memcpy(r, hdr, 12);
  memcpy(r + 12, q + 12, qlen);
  size_t len = 12 + qlen;
  if (ancount) {
    unsigned char rr[12] = {0xC0, 0x0C, (unsigned char)(qs.qtype >> 8), (unsigned char)qs.qtype, 0, 1,
                            0, 0, 0, 0, (unsigned char)(rdlen >> 8), (unsigned char)rdlen};
    memcpy(r + len, rr, 12);
    memcpy(r + len + 12, rdata, rdlen);
    len += 12 + rdlen;
  }
  return (long)len;
}

/* Answers one query (at once, later, or through the relay). */
static void on_message(int sock, int tcp, const struct sockaddr_storage *peer, socklen_t plen, const unsigned char *q,
                       size_t n) {
  static unsigned char big[MAX_IN];
  unsigned char r[MAX_MSG];
  long delay_ms;
  long len = answer(q, n, tcp, r, &delay_ms);
  if (len < 0) {
    size_t got = relay(q, n, tcp, big, sizeof big);
    if (got) reply(sock, tcp, peer, plen, big, got);
    return;
  }
  if (len == 0) return;
  if (delay_ms <= 0) {
    reply(sock, tcp, peer, plen, r, (size_t)len);
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
  e->tcp = tcp;
  if (peer) memcpy(&e->peer, peer, sizeof e->peer);
  e->peer_len = plen;
  e->len = (size_t)len;
  memcpy(e->msg, r, (size_t)len);
  arm();
}

static void on_udp(int sock) {
  static unsigned char q[MAX_IN];
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  ssize_t n = recvfrom(sock, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&peer, &plen);
  if (n > 0) on_message(sock, 0, &peer, plen, q, (size_t)n);
}

static void close_conn(int slot) {
  struct conn *c = conns[slot];
  for (size_t i = 0; i < npend;) /* no answer may go to a later socket of that number */
    if (pend[i].tcp && pend[i].sock == c->fd)
      pend[i] = pend[--npend];
    else
      i++;
  arm();
  close(c->fd);
  free(c);
  conns[slot] = NULL;
}

static void on_accept(int ls) {
  int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  for (int k = 0; k < MAX_CONNS; k++) {
    if (!conns[k]) {
      conns[k] = malloc(sizeof *conns[k]);
      if (!conns[k]) break;
      conns[k]->fd = fd;
      conns[k]->have = 0;
      watch(K_TCP_CONN, fd);
      return;
    }
  }
  close(fd); /* too many connections */
}

static void on_conn(int fd) {
  int slot = -1;
  for (int k = 0; k < MAX_CONNS; k++)
    if (conns[k] && conns[k]->fd == fd) slot = k;
  if (slot < 0) return;
  struct conn *c = conns[slot];
  ssize_t r = recv(fd, c->buf + c->have, sizeof c->buf - c->have, 0);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
    close_conn(slot);
    return;
  }
  if (r < 0) return;
  c->have += (size_t)r;
  while (c->have >= 2) {
    size_t len = (size_t)c->buf[0] << 8 | c->buf[1];
    if (c->have < 2 + len) break;
    on_message(fd, 1, NULL, 0, c->buf + 2, len);
    memmove(c->buf, c->buf + 2 + len, c->have - 2 - len);
    c->have -= 2 + len;
  }
}

static int parse_addr(const char *a, int port, struct sockaddr_storage *ss, socklen_t *sl) {
  memset(ss, 0, sizeof *ss);
  if (strchr(a, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    *sl = sizeof *s6;
    return inet_pton(AF_INET6, a, &s6->sin6_addr) == 1;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons((uint16_t)port);
  *sl = sizeof *s4;
  return inet_pton(AF_INET, a, &s4->sin_addr) == 1;
}

static void bind_all(const char *addr, int port) {
  struct sockaddr_storage ss;
  socklen_t sl;
  if (!parse_addr(addr, port, &ss, &sl)) {
    fprintf(stderr, "dns_server: bad address %s\n", addr);
    exit(2);
  }
  int one = 1;
  int u = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int t = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (u < 0 || t < 0) die("socket");
  (void)setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(u, (struct sockaddr *)&ss, sl) < 0 || bind(t, (struct sockaddr *)&ss, sl) < 0) die(addr);
  if (listen(t, 64) < 0) die("listen");
  watch(K_UDP, u);
  watch(K_TCP_LISTEN, t);
}

int main(int argc, char **argv) {
  int a = 1;
  if (argc > 4 && !strcmp(argv[1], "--relay")) {
    int rport = atoi(argv[3]);
    if (rport <= 0 || rport > 65535 || !parse_addr(argv[2], rport, &relay_addr, &relay_len)) {
      fprintf(stderr, "dns_server: bad relay\n");
      return 2;
    }
    relay_zone = argv[4];
    a = 5;
  }
  if (argc - a < 4) {
    fprintf(stderr, "usage: dns_server [--relay ADDR RPORT ZONE] PORT A_ADDR AAAA_ADDR BIND_ADDR...\n");
    return 2;
  }
  int port = atoi(argv[a]);
  if (port <= 0 || port > 65535 || inet_pton(AF_INET, argv[a + 1], a4) != 1 ||
      inet_pton(AF_INET6, argv[a + 2], a6) != 1 || argc - a - 3 > MAX_SOCKS) {
    fprintf(stderr, "dns_server: bad arguments\n");
    return 2;
  }
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  ep = epoll_create1(EPOLL_CLOEXEC);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (ep < 0 || tfd < 0) die("epoll/timerfd");
  watch(K_TIMER, tfd);
  watch(K_STDIN, 0);
  for (int k = a + 3; k < argc; k++) bind_all(argv[k], port);
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
      enum kind k = (enum kind)(evs[j].data.u64 >> 32);
      int fd = (int)(uint32_t)evs[j].data.u64;
      if (k == K_STDIN) {
        char b[256];
        ssize_t r = read(0, b, sizeof b);
        if (r <= 0) return 0; /* stdin closed: the bed is going down */
      } else if (k == K_TIMER) {
        uint64_t ticks;
        if (read(tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) die("read timerfd");
        send_due();
      } else if (k == K_UDP) {
        on_udp(fd);
      } else if (k == K_TCP_LISTEN) {
        on_accept(fd);
      } else if (k == K_TCP_CONN) {
        on_conn(fd);
      }
    }
  }
}
