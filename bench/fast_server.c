/* fast_server: the server for bench/compare.py's connection-rate runs. An
 * accept-and-close loop over epoll on one thread: listens on ADDR:PORT for
 * every ADDR (IPv4 or IPv6 literal) and PORT given, backlog 65535, accepts
 * everything it can and closes it at once. Prints "ready" when listening,
 * then runs until its stdin closes (or it is killed); on exit prints the
 * number of connections accepted.
 *
 *   fast_server ADDRS PORTS        e.g. fast_server 10.200.1.1,2001:db8::1 7100,7101
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
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: fast_server ADDRS PORTS\n");
    return 2;
  }
  struct rlimit rl = {65536, 65536};
  setrlimit(RLIMIT_NOFILE, &rl);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = 0};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev); /* stdin: EOF ends the server */
  char *addrs = strdup(argv[1]), *sa = NULL;
  for (char *a = strtok_r(addrs, ",", &sa); a; a = strtok_r(NULL, ",", &sa)) {
    char *ports = strdup(argv[2]), *sp = NULL;
    for (char *p = strtok_r(ports, ",", &sp); p; p = strtok_r(NULL, ",", &sp)) {
      struct sockaddr_storage ss;
      memset(&ss, 0, sizeof ss);
      socklen_t len;
      struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
      if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)atoi(p));
        len = sizeof *s4;
      } else if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)atoi(p));
        len = sizeof *s6;
      } else {
        fprintf(stderr, "fast_server: bad address %s\n", a);
        return 2;
      }
      int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 65535) != 0) {
        fprintf(stderr, "fast_server: %s port %s: %s\n", a, p, strerror(errno));
        return 1;
      }
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    free(ports);
  }
  printf("ready\n");
  fflush(stdout);
  long accepted = 0;
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; i++) {
      int l = evs[i].data.fd;
      if (l == 0) {
        char buf[64];
        if (read(0, buf, sizeof buf) <= 0) {
          printf("accepted %ld\n", accepted);
          return 0;
        }
        continue;
      }
      for (;;) {
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) break;
        close(c);
        accepted++;
      }
    }
  }
  return 0;
}
