// include/taps_racing.hpp, the C++17 wrapper: races to a loopback listener
// and a refused port through lambdas, exceptions thrown by callbacks come
// out of EventLoop::run() (or a handler) and never reach the library,
// connections destroyed inside their own callbacks, moves, errors as
// taps::Error, a pool and a group, an HTTPS resolver and a security stage
// (HEv3) with the report's HTTPS fields, and the loop's history. Built
// with g++ (cxx_wrapper) and, when installed, clang++ (cxx_wrapper_clang);
// under valgrind as cxx_wrapper_memcheck.
#include "taps_racing.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <type_traits>
#include <unistd.h>
#include <vector>

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

static_assert(!std::is_copy_constructible<taps::Connection>::value, "move-only");
static_assert(!std::is_copy_assignable<taps::EventLoop>::value, "move-only");
static_assert(std::is_nothrow_move_constructible<taps::Connection>::value, "noexcept moves");
static_assert(std::is_nothrow_move_assignable<taps::Preconnection>::value, "noexcept moves");
static_assert(std::is_base_of<std::runtime_error, taps::Error>::value, "taps::Error is a runtime_error");

namespace {

// A listener on 127.0.0.1 (listening) or a port nobody listens on.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
  explicit Listener(bool listening) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    CHECK(fd >= 0 && bind(fd, reinterpret_cast<sockaddr *>(&sa), sl) == 0);
    CHECK(getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &sl) == 0);
    port = ntohs(sa.sin_port);
    if (listening) {
      CHECK(listen(fd, 64) == 0);
    } else {
      close(fd);  // the port is now (most likely) refused
      fd = -1;
    }
  }
  ~Listener() {
    if (fd >= 0) close(fd);
  }
};

taps::RemoteEndpoint loopback(uint16_t port) { return taps::RemoteEndpoint().hostname("127.0.0.1").port(port); }

struct Boom : std::runtime_error {
  int value;
  explicit Boom(int v) : std::runtime_error("boom"), value(v) {}
};

void case_ready_once() {
  Listener l(true);
  taps::EventLoop loop;
  taps::Preconnection pre(loop, loopback(l.port));
  int ready = 0, failed = 0, closed = 0;
  std::string addr;
  int fd = -1;
  taps::Connection c = pre.initiate(taps::Callbacks()
                                        .on_ready([&](taps::Connection &conn) {
                                          ready++;
                                          addr = conn.remote_address().to_string();
                                          fd = conn.fd();
                                        })
                                        .on_establishment_error([&](taps::Connection &) { failed++; })
                                        .on_closed([&](taps::Connection &) { closed++; }));
  loop.run();
  CHECK(ready == 1 && failed == 0);
  CHECK(addr == "127.0.0.1:" + std::to_string(l.port));
  CHECK(fd >= 0 && c.fd() == fd);
  CHECK(c.error() == 0);
  CHECK(c.protocol() == "tcp");
  std::vector<taps_attempt_info> a = c.attempts();
  CHECK(a.size() == 1 && a[0].outcome == TAPS_ATTEMPT_OUTCOME_WON);
  CHECK(taps::Address::of(a[0].address, a[0].address_len).port() == l.port);
  CHECK(closed == 0);
  c.close();
  loop.run();
  CHECK(closed == 1 && c.fd() == -1);
}

// A shared loop (its own thread): the lambda runs there; rethrow_pending()
// brings its exception to this thread.
void case_shared_loop() {
  Listener l(true);
  taps::EventLoop loop = taps::EventLoop::shared("test_cpp_wrapper");
  taps::Preconnection pre(loop, loopback(l.port));
  std::mutex mu;
  int ready = 0;
  std::vector<taps::Connection> conns;
  // Moved (as the vector grows) on this thread while the loop's thread may
  // already call back: the move waits for the callback, which gets the
  // object that owns the connection when it runs.
  for (int i = 0; i < 8; i++) {
    conns.push_back(pre.initiate(taps::Callbacks().on_ready([&](taps::Connection &c) {
      std::lock_guard<std::mutex> g(mu);
      CHECK(c.fd() >= 0);
      if (++ready == 8) throw Boom(8);
    })));
  }
  for (int i = 0; i < 500; i++) {
    {
      std::lock_guard<std::mutex> g(mu);
      if (ready == 8) break;
    }
    usleep(10000);
  }
  bool got = false;
  for (int i = 0; i < 100 && !got; i++) {
    try {
      loop.rethrow_pending();
      usleep(10000);
    } catch (const Boom &b) {
      got = b.value == 8;
    }
  }
  CHECK(got);
  bool threw = false;
  try {
    loop.run();
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_STATE;
  }
  CHECK(threw);
}

void case_refused() {
  Listener l(false);
  taps::EventLoop loop;
  taps::Preconnection pre(loop, loopback(l.port));
  int ready = 0, failed = 0, err = 0;
  taps::Connection c = pre.initiate(taps::Callbacks()
                                        .on_ready([&](taps::Connection &) { ready++; })
                                        .on_establishment_error([&](taps::Connection &conn) {
                                          failed++;
                                          err = conn.error();
                                        }));
  loop.run();
  CHECK(ready == 0 && failed == 1);
  CHECK(err == TAPS_ERROR_ALL_ATTEMPTS_FAILED && c.error() == err);
  CHECK(c.os_error() == ECONNREFUSED);
  std::vector<taps_attempt_info> a = c.attempts();
  CHECK(a.size() == 1 && a[0].outcome == TAPS_ATTEMPT_OUTCOME_FAILED && a[0].os_error == ECONNREFUSED);
  bool threw = false;
  try {
    c.remote_address();
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_STATE;
  }
  CHECK(threw);
}

// A lambda's exception comes out of run(), as itself, and the races left go on.
void case_exception_from_run() {
  Listener l(true), refused(false);
  taps::EventLoop loop;
  taps::Preconnection pre(loop, loopback(l.port));
  taps::Preconnection pre_refused(loop, loopback(refused.port));
  int calls = 0;
  taps::Connection c = pre.initiate(taps::Callbacks().on_ready([&](taps::Connection &) {
    calls++;
    throw Boom(42);
  }));
  taps::Connection d = pre_refused.initiate(taps::Callbacks().on_establishment_error([&](taps::Connection &) {
    calls++;
    throw std::logic_error("second");
  }));
  int caught = 0;
  for (int i = 0; i < 10 && caught < 2; i++) {
    try {
      loop.run();
      break;
    } catch (const Boom &b) {
      CHECK(b.value == 42);
      caught++;
    } catch (const std::logic_error &e) {
      CHECK(std::string(e.what()) == "second");
      caught++;
    }
  }
  CHECK(caught == 2 && calls == 2);
  loop.run();  // nothing pending: returns normally
  CHECK(c.fd() >= 0 && d.error() == TAPS_ERROR_ALL_ATTEMPTS_FAILED);

  // run_once() and process() rethrow too.
  taps::Connection e = pre.initiate(taps::Callbacks().on_ready([](taps::Connection &) { throw 7; }));
  bool got = false;
  for (int i = 0; i < 100 && !got; i++) {
    try {
      loop.run_once(100);
    } catch (int v) {
      got = v == 7;
    }
  }
  CHECK(got);
}

// A handler set with taps::set_exception_handler gets the exception instead.
void case_exception_handler() {
  Listener l(true);
  taps::EventLoop loop;
  taps::Preconnection pre(loop, loopback(l.port));
  int handled = 0;
  auto previous = taps::set_exception_handler([&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const Boom &b) {
      handled += b.value;
    }
  });
  CHECK(!previous);
  taps::Connection c = pre.initiate(taps::Callbacks().on_ready([](taps::Connection &) { throw Boom(5); }));
  loop.run();  // does not throw: the handler took it
  CHECK(handled == 5);
  // A handler that throws: its exception is stored and rethrown.
  taps::set_exception_handler([](std::exception_ptr) { throw std::out_of_range("handler"); });
  taps::Connection d = pre.initiate(taps::Callbacks().on_ready([](taps::Connection &) { throw Boom(1); }));
  bool got = false;
  try {
    loop.run();
  } catch (const std::out_of_range &) {
    got = true;
  }
  CHECK(got);
  taps::set_exception_handler(nullptr);
}

// On a loop with a thread of its own, stop_thread() rethrows.
void case_exception_on_loop_thread() {
  Listener l(true);
  taps::EventLoop loop;
  loop.start_thread();
  taps::Preconnection pre(loop, loopback(l.port));
  std::mutex mu;
  bool done = false;
  taps::Connection c = pre.initiate(taps::Callbacks().on_ready([&](taps::Connection &) {
    std::lock_guard<std::mutex> g(mu);
    done = true;
    throw Boom(9);
  }));
  for (int i = 0; i < 500; i++) {
    {
      std::lock_guard<std::mutex> g(mu);
      if (done) break;
    }
    usleep(10000);
  }
  bool got = false;
  try {
    loop.stop_thread();
  } catch (const Boom &b) {
    got = b.value == 9;
  }
  CHECK(got);
}

// A Connection destroyed inside its own callback, also when it then throws.
void case_destroy_in_callback() {
  Listener l(true), refused(false);
  taps::EventLoop loop;
  taps::Preconnection pre(loop, loopback(l.port));
  taps::Preconnection pre_refused(loop, loopback(refused.port));
  std::optional<taps::Connection> a;
  auto b = std::make_unique<taps::Connection>();
  int calls = 0;
  a = pre.initiate(taps::Callbacks().on_ready([&](taps::Connection &c) {
    calls++;
    CHECK(&c == &*a);
    a.reset();  // frees the connection and its callbacks' state
  }));
  *b = pre_refused.initiate(taps::Callbacks().on_establishment_error([&](taps::Connection &c) {
    calls++;
    CHECK(&c == b.get());
    int err = c.error();
    b.reset();
    throw Boom(err);
  }));
  int caught = 0;
  for (int i = 0; i < 5; i++) {
    try {
      loop.run();
      break;
    } catch (const Boom &e) {
      CHECK(e.value == TAPS_ERROR_ALL_ATTEMPTS_FAILED);
      caught++;
    }
  }
  CHECK(calls == 2 && caught == 1 && !a && !b);
  // reset() inside a callback of a connection moved into another object.
  std::vector<taps::Connection> v;
  v.push_back(pre.initiate(taps::Callbacks().on_ready([&](taps::Connection &c) {
    CHECK(&c == &v[0]);
    c.reset();
  })));
  loop.run();
  CHECK(!v[0]);
}

// Moves: the callback gets the object that owns the handle now; moved-from
// objects are empty; nothing is freed twice (memcheck).
void case_moves() {
  Listener l(true);
  taps::EventLoop loop0;
  taps::EventLoop loop(std::move(loop0));
  CHECK(!loop0 && loop);
  taps::RemoteEndpoint ep0 = loopback(l.port);
  taps::RemoteEndpoint ep(std::move(ep0));
  CHECK(!ep0 && ep);
  taps::Preconnection pre0(loop, ep);
  taps::Preconnection pre = std::move(pre0);
  CHECK(pre0.get() == nullptr);
  std::vector<taps::Connection> conns;
  taps::Connection *seen[3] = {nullptr, nullptr, nullptr};
  for (int i = 0; i < 3; i++) {
    taps::Connection c = pre.initiate(taps::Callbacks().on_ready([&seen, i](taps::Connection &c) { seen[i] = &c; }));
    taps::Connection moved(std::move(c));
    CHECK(!c && moved && c.fd() == -1);
    conns.push_back(std::move(moved));  // and moved again as the vector grows
  }
  taps::Connection assigned;
  assigned = std::move(conns[2]);
  conns[2] = std::move(assigned);
  conns[1] = std::move(conns[1]);  // self-move keeps it
  loop.run();
  for (int i = 0; i < 3; i++) CHECK(seen[i] == &conns[i] && conns[i].fd() >= 0);
  // Assigning over a live connection frees the old one.
  conns[0] = std::move(conns[1]);
  CHECK(!conns[1] && conns[0].fd() >= 0);
  // The moved-to loop rethrows the callbacks' exceptions.
  taps::Connection t = pre.initiate(taps::Callbacks().on_ready([](taps::Connection &) { throw Boom(3); }));
  bool got = false;
  try {
    loop.run();
  } catch (const Boom &b) {
    got = b.value == 3;
  }
  CHECK(got);
}

void case_errors() {
  bool threw = false;
  try {
    taps::RemoteEndpoint().hostname("not a host!");
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_HOSTNAME && std::string(e.what()).find("taps_remote_endpoint") == 0;
  }
  CHECK(threw);
  threw = false;
  try {
    taps::RemoteEndpoint().port(0);
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_PORT;
  }
  CHECK(threw);
  taps::EventLoop loop;
  taps::RemoteEndpoint no_port;
  no_port.hostname("127.0.0.1");
  threw = false;
  try {
    taps::Preconnection p(loop, no_port);
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_ARGUMENT;
  }
  CHECK(threw);
  taps_racing_options o = taps_racing_options_default();
  o.race_count = 1000;
  threw = false;
  try {
    taps::Preconnection p(loop, taps::RemoteEndpoint().hostname("127.0.0.1").service("80"), o);
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_OPTION;
  }
  CHECK(threw);
  // Embedding: fd() and timeout_ms() on a loop run by the caller.
  CHECK(loop.fd() >= 0 && loop.timeout_ms() >= -1 && loop.process() == 0);
  loop.start_thread();
  threw = false;
  try {
    loop.run();
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_STATE;
  }
  CHECK(threw);
  loop.stop_thread();
}

void case_pool_and_group() {
  Listener l(true);
  taps::EventLoop loop;
  taps::RemoteEndpoint ep = loopback(l.port);
  taps::Preconnection pre(loop, {ep});
  taps_pool_options po = taps_pool_options_default();
  po.buffer_size = 1;
  int buffered_events = 0;
  taps::ConnectionPool pool(pre, po, [&](const taps_pool_event &e) {
    if (e.kind == TAPS_POOL_EVENT_KIND_CONNECTION_BUFFERED) buffered_events++;
  });
  loop.run();
  CHECK(pool.buffered() == 1 && buffered_events >= 1);
  int ready = 0;
  taps::Connection c = pool.acquire(taps::Callbacks().on_ready([&](taps::Connection &conn) {
    ready++;
    CHECK(conn.remote_address().port() == l.port);
  }));
  loop.run();
  CHECK(ready == 1);

  taps_group_options go = taps_group_options_default();
  go.size = 2;
  int joined = 0;
  taps::ConnectionGroup group(pre, go, [&](const taps_group_event &e) {
    if (e.kind == TAPS_GROUP_EVENT_KIND_MEMBER_JOINED) joined++;
    if (joined == 2) throw Boom(joined);  // an event callback's exception
  });
  bool got = false;
  for (int i = 0; i < 5; i++) {
    try {
      loop.run();
      break;
    } catch (const Boom &b) {
      got = b.value == 2;
    }
  }
  CHECK(got && joined == 2);
  std::vector<uint64_t> m = group.members();
  CHECK(m.size() == 2 && group.member_fd(m[0]) >= 0);
  uint64_t s = group.assign();
  CHECK(group.member_metrics(s).streams_open == 1);
  group.release_stream(s);
  bool threw = false;
  try {
    group.release_stream(s);
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_ARGUMENT;
  }
  CHECK(threw);
}

// A resolver that answers svc.test: A 127.0.0.1, AAAA none, and one
// HTTPS record (priority 1, port `port`, alpn h2, an ECH config).
struct MockDns : taps::HttpsResolver {
  uint16_t port = 0;
  std::vector<std::string> https_names;
  int resolve(taps::ResolverQuery q, const std::string &host, int family) override {
    CHECK(host == "svc.test");
    if (family == AF_INET) {
      q.answer({taps::Address::from_ip("127.0.0.1")});
    } else {
      q.answer({});
    }
    return 0;
  }
  int resolve_https(taps::ServiceQuery q, const std::string &name) override {
    https_names.push_back(name);
    taps::ServiceRecord r;
    r.priority = 1;
    r.port = port;
    r.alpn = {"h2"};
    r.no_default_alpn = true;
    r.ech = {0x00, 0x04, 1, 2, 3, 4};
    q.answer({r}, 60);
    return 0;
  }
};

// A stage that records what its attempt offers and is ready at once (or
// throws from start).
struct ReadyStage : taps::SecurityStage {
  bool throws = false;
  int starts = 0;
  std::vector<std::string> alpn;
  std::vector<uint8_t> wire, ech;
  std::string host;
  uint16_t port = 0;
  int start(taps::StageAttempt a) override {
    starts++;
    if (throws) throw Boom(9);
    CHECK(a.fd() >= 0 && a.index() == 0);
    alpn = a.alpn();
    wire = a.alpn_wire();
    ech = a.ech_config();
    host = a.host_name();
    port = a.remote().port();
    a.ready(alpn.empty() ? "" : alpn.front());
    return 0;
  }
};

// HEv3: an HTTPS resolver and a security stage in C++; the race report's
// HTTPS fields.
void case_https_resolver_and_stage() {
  Listener l(true);
  taps::EventLoop loop;
  auto dns = std::make_shared<MockDns>();
  dns->port = l.port;
  loop.set_https_resolver(dns);
  taps::Preconnection pre(loop, taps::RemoteEndpoint().hostname("svc.test").port(443));
  pre.set_alpn({"h2", "http/1.1"});
  pre.set_https_policy(TAPS_HTTPS_POLICY_AUTO);
  auto stage = std::make_shared<ReadyStage>();
  pre.set_security_stage(stage);
  int ready = 0;
  taps::Connection c = pre.initiate(taps::Callbacks().on_ready([&](taps::Connection &) { ready++; }));
  loop.run();
  CHECK(ready == 1 && c.fd() >= 0);
  CHECK(dns->https_names == std::vector<std::string>{"svc.test"});
  // The stage got the record's ALPN id, its ECH config, the host name, and
  // the record's port.
  CHECK(stage->starts == 1 && stage->alpn == std::vector<std::string>{"h2"});
  CHECK((stage->wire == std::vector<uint8_t>{2, 'h', '2'}));
  CHECK((stage->ech == std::vector<uint8_t>{0x00, 0x04, 1, 2, 3, 4}));
  CHECK(stage->host == "svc.test" && stage->port == l.port);
  CHECK(c.alpn() == "h2");
  CHECK(c.attempt_alpn(0) == std::vector<std::string>{"h2"});
  CHECK(c.attempt_service_priority(0) == std::optional<uint16_t>(1));
  CHECK(!c.attempt_from_hint(0));
  std::vector<taps::HttpsRecord> records = c.https_records();
  CHECK(records.size() == 1 && records[0].priority == 1 && records[0].port == l.port);
  CHECK(records[0].target == "svc.test" && records[0].alpn == std::vector<std::string>{"h2"} && records[0].ech);
  bool https_answer = false;
  for (const taps::DnsAnswer &a : c.dns_answers())
    https_answer = https_answer || (a.type == TAPS_DNS_TYPE_HTTPS && a.name == "svc.test" && a.count == 1 && a.error == 0);
  CHECK(https_answer);
  bool threw = false;
  try {
    c.attempt_service_priority(99);
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_OUT_OF_RANGE;
  }
  CHECK(threw);

  // A stage that throws: the attempt fails (EIO), the race with it, and
  // the exception comes out of run().
  taps::Preconnection pre2(loop, taps::RemoteEndpoint().hostname("svc.test").port(443));
  auto thrower = std::make_shared<ReadyStage>();
  thrower->throws = true;
  pre2.set_security_stage(thrower);
  int failed = 0;
  taps::Connection d = pre2.initiate(taps::Callbacks().on_establishment_error([&](taps::Connection &) { failed++; }));
  bool got = false;
  for (int i = 0; i < 10; i++) {
    try {
      loop.run();
      break;
    } catch (const Boom &b) {
      got = b.value == 9;
    }
  }
  CHECK(got && thrower->starts == 1 && failed == 1);
  std::vector<taps_attempt_info> a = d.attempts();
  CHECK(a.size() == 1 && a[0].outcome == TAPS_ATTEMPT_OUTCOME_FAILED && a[0].os_error == EIO);
}

// History: on, a second race knows the address; export, import, clear.
void case_history() {
  Listener l(true);
  taps::EventLoop loop;
  loop.set_history(true);
  taps::Preconnection pre(loop, loopback(l.port));
  taps::Connection first = pre.initiate(taps::Callbacks());
  loop.run();
  CHECK(first.fd() >= 0 && first.attempt_history(0).empty());
  taps::Connection second = pre.initiate(taps::Callbacks());
  loop.run();
  CHECK(second.fd() >= 0 && second.attempt_history(0).find("used") != std::string::npos);
  CHECK(loop.history_size().entries >= 1 && loop.history_size().bytes > 0);
  std::string text = loop.export_history();
  CHECK(text.rfind("taps-racing-history 1", 0) == 0 && text.find('\0') == std::string::npos);
  taps::EventLoop other;
  CHECK(other.import_history(text) >= 1 && other.history_size().entries >= 1);
  loop.clear_history();
  CHECK(loop.history_size().entries == 0);
  bool threw = false;
  try {
    second.attempt_history(99);
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_OUT_OF_RANGE;
  }
  CHECK(threw);
  threw = false;
  try {
    other.import_history("not a history");
  } catch (const taps::Error &e) {
    threw = e.code() == TAPS_ERROR_INVALID_ARGUMENT;
  }
  CHECK(threw);
}

}  // namespace

int main(int argc, char **argv) {
  struct Case {
    const char *name;
    void (*fn)();
  } cases[] = {
      {"ready_once", case_ready_once},
      {"refused", case_refused},
      {"shared_loop", case_shared_loop},
      {"exception_from_run", case_exception_from_run},
      {"exception_handler", case_exception_handler},
      {"exception_on_loop_thread", case_exception_on_loop_thread},
      {"destroy_in_callback", case_destroy_in_callback},
      {"moves", case_moves},
      {"errors", case_errors},
      {"pool_and_group", case_pool_and_group},
      {"https_resolver_and_stage", case_https_resolver_and_stage},
      {"history", case_history},
  };
  for (const Case &c : cases) {
    if (argc > 1 && std::strcmp(argv[1], c.name) != 0) continue;
    std::fprintf(stderr, "test cpp_wrapper %s ...\n", c.name);
    c.fn();
    std::fprintf(stderr, "test cpp_wrapper %s ... ok\n", c.name);
  }
  return 0;
}
