// A race from C++ with include/taps_racing.hpp: RAII owners, lambdas as
// callbacks, errors as exceptions.
//
//   cpp_race              races to a listener on 127.0.0.1 that this program
//                         opens itself, with "localhost" as the host name
//                         (::1 is refused or absent, 127.0.0.1 wins)
//   cpp_race HOST PORT    races to HOST (a name or an IP literal) on PORT
//                         (a number or a service name), 10 s at most
//
// Prints the winner and every attempt. Exit 0 when the race was won, 1
// when it failed, 2 on a usage or setup error.
#include <taps_racing.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

static const char *outcome_name(taps_attempt_outcome o) {
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

int main(int argc, char **argv) {
  if (argc != 1 && argc != 3) {
    std::fprintf(stderr, "usage: %s [HOST PORT]\n", argv[0]);
    return 2;
  }
  std::string host = "localhost";
  std::string service;
  int listener = -1;
  if (argc == 3) {
    host = argv[1];
    service = argv[2];
  } else {
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr *>(&sa), sl) != 0 || listen(listener, 16) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr *>(&sa), &sl) != 0) {
      std::perror("listener");
      return 2;
    }
    service = std::to_string(ntohs(sa.sin_port));
  }

  bool won = false;
  try {
    taps::EventLoop loop;
    taps_racing_options opts = taps_racing_options_default();
    opts.total_timeout_ms = 10000;
    taps::Preconnection pre(loop, taps::RemoteEndpoint().hostname(host).service(service), opts);

    std::printf("racing to %s port %s\n", host.c_str(), service.c_str());
    taps::Connection conn = pre.initiate(taps::Callbacks()
                                             .on_ready([&](taps::Connection &c) {
                                               won = true;
                                               std::printf("winner: %s over %s, fd %d\n",
                                                           c.remote_address().to_string().c_str(),
                                                           c.protocol().c_str(), c.fd());
                                             })
                                             .on_establishment_error([](taps::Connection &c) {
                                               std::printf("failed: %s\n", taps_strerror(c.error()));
                                             }));
    loop.run();  // callbacks run here; an exception one throws comes out here

    for (const taps_attempt_info &a : conn.attempts()) {
      taps::Address addr = taps::Address::of(a.address, a.address_len);
      std::printf("  attempt %-24s %8.3f ms .. %8.3f ms  %-9s %s\n", addr.to_string().c_str(),
                  a.started_us / 1000.0, a.ended_us / 1000.0, outcome_name(a.outcome),
                  a.os_error != 0 ? std::strerror(a.os_error) : "");
    }
  } catch (const taps::Error &e) {
    std::fprintf(stderr, "error %d: %s\n", e.code(), e.what());
    if (listener >= 0) close(listener);
    return 2;
  }
  if (listener >= 0) close(listener);
  return won ? 0 : 1;
}
