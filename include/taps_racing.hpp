/*
 * taps_racing.hpp: a header-only C++17 wrapper of taps_racing.h.
 *
 * Design
 * - Owners. taps::EventLoop, RemoteEndpoint, TransportProperties,
 *   Preconnection, Connection, ConnectionPool and ConnectionGroup each own
 *   one C handle: move-only, freed by their destructor (the C *_free
 *   function). A moved-from object is empty (`bool(obj)` is false); `get()`
 *   gives the C handle for calls the wrapper lacks. The C lifetime rules
 *   still hold: the EventLoop must outlive its Preconnections, pools and
 *   groups (Connections may outlive it).
 * - Errors are exceptions: a C constructor that returns NULL, or a
 *   function that returns a negative code, throws taps::Error (a
 *   std::runtime_error) carrying the code (`code()`) and
 *   taps_last_error_message() (or taps_strerror()) in `what()`.
 * - Callbacks are lambdas, in a taps::Callbacks: C++17 has no designated
 *   initializers, so set the members or chain the setters:
 *
 *       taps::Connection c = pre.initiate(taps::Callbacks()
 *           .on_ready([](taps::Connection &c) { use(c.fd()); })
 *           .on_establishment_error([](taps::Connection &c) { log(c.error()); }));
 *       loop.run();
 *
 *   (in C++20, `taps::Callbacks{.ready = ..., .establishment_error = ...}`
 *   works too). Empty members are not registered (an empty
 *   connection_error means the library does not watch the established
 *   socket, as in C). Each Connection owns one heap-allocated trampoline
 *   state with its callbacks, freed after taps_connection_free (no
 *   callback runs after it returns). The lambda receives the Connection
 *   object that owns the handle now (moves update it); it may close,
 *   move or destroy that object, also inside its own callback.
 * - Exceptions never unwind into the library (a C++ exception leaving a
 *   C callback aborts the process). Every trampoline catches everything a
 *   lambda throws and reports it: to the handler set with
 *   taps::set_exception_handler() if any (process-wide), else (the
 *   default) it is stored in the connection's EventLoop and rethrown, on
 *   the calling thread, from the next EventLoop::run(), run_once() or
 *   process() (run() returns at once after the callback that threw; the
 *   races still pending stay pending: call run() again to finish them).
 *   Exceptions queue up: each call rethrows the oldest. For a loop on a
 *   thread of its own (start_thread(), EventLoop::shared()), stop_thread()
 *   rethrows after joining, and rethrow_pending() does at any time. A
 *   loop destroyed with exceptions pending drops them.
 * - Pool and group event callbacks (std::function taking the event) are
 *   wrapped the same way.
 * - Objects the library calls back (taps::SecurityStage,
 *   taps::HttpsResolver) are subclassed and handed over as shared_ptrs,
 *   kept by the EventLoop object and every object made from it (a
 *   Preconnection, a Connection) while one lives: on a shared loop, keep
 *   the client that set them while races may call them. Their handles (StageAttempt, ResolverQuery, ServiceQuery) are
 *   views, valid as the C handles are. Exceptions from their functions
 *   are reported as a callback's are, and fail the attempt or query.
 * - Threads: as in C. A Connection may be moved on one thread while its
 *   callback runs on the loop's thread: the trampoline holds a lock of the
 *   connection's state while the lambda runs, and a move takes it (so do
 *   not move a Connection while holding a lock its lambda takes).
 *   Destroying a Connection waits for its callback (taps_connection_free).
 */
#ifndef TAPS_RACING_HPP
#define TAPS_RACING_HPP

#include "taps_racing.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace taps {

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

// A failed call: `code()` is the taps_error, `what()` names the function and
// gives taps_last_error_message() (or taps_strerror(code)).
class Error : public std::runtime_error {
 public:
  Error(int code, const std::string &message) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

namespace detail {

// The message of the last failure on this thread if it is `code`'s, else
// taps_strerror(code).
inline std::string message_for(int code, const char *function) {
  std::string m = function;
  m += ": ";
  const char *last = taps_last_error_message();
  if (taps_last_error() == code && last != nullptr && last[0] != '\0') {
    m += last;
  } else {
    m += taps_strerror(code);
  }
  return m;
}

// Throws taps::Error for a negative code; returns the code otherwise.
inline int check(int rc, const char *function) {
  if (rc < 0) throw Error(rc, message_for(rc, function));
  return rc;
}

// Throws taps::Error (taps_last_error()) for NULL.
template <typename T>
T *check_ptr(T *p, const char *function) {
  if (p == nullptr) {
    int code = taps_last_error();
    if (code == 0) code = TAPS_ERROR_IO;
    throw Error(code, message_for(code, function));
  }
  return p;
}

// Per EventLoop object: the exceptions callbacks threw, until rethrown.
struct LoopState {
  std::mutex mu;
  std::deque<std::exception_ptr> pending;  // oldest first
  // The states of security stages and resolvers handed to the library
  // (their user_data): kept as long as anything that may call them.
  std::vector<std::shared_ptr<void>> keep;
};

// Keep `state` alive as long as `loop`.
inline void keep(LoopState &loop, std::shared_ptr<void> state) {
  std::lock_guard<std::mutex> g(loop.mu);
  loop.keep.push_back(std::move(state));
}

using ExceptionHandler = std::function<void(std::exception_ptr)>;

inline std::mutex &handler_mutex() {
  static std::mutex mu;
  return mu;
}
inline ExceptionHandler &handler_slot() {
  static ExceptionHandler handler;
  return handler;
}

// Report an exception caught in a trampoline. Never throws.
inline void report(LoopState *loop, std::exception_ptr e) noexcept {
  try {
    ExceptionHandler h;
    {
      std::lock_guard<std::mutex> g(handler_mutex());
      h = handler_slot();
    }
    if (h) {
      h(e);
      return;
    }
  } catch (...) {
    e = std::current_exception();  // the handler threw: store that instead
  }
  if (loop != nullptr) {
    try {
      std::lock_guard<std::mutex> g(loop->mu);
      loop->pending.push_back(std::move(e));
    } catch (...) {
      // No memory to keep it: dropped rather than unwinding into the library.
    }
  }
}

}  // namespace detail

using ExceptionHandler = detail::ExceptionHandler;  // void(std::exception_ptr)

// Set the process-wide handler of exceptions thrown by callbacks (any
// thread may call it; it runs on the loop's thread, inside the trampoline).
// An empty handler (the default) restores store-and-rethrow. If the
// handler itself throws, that exception is stored and rethrown instead.
// Returns the previous handler.

inline ExceptionHandler set_exception_handler(ExceptionHandler handler) {
  std::lock_guard<std::mutex> g(detail::handler_mutex());
  std::swap(detail::handler_slot(), handler);
  return handler;
}

// ---------------------------------------------------------------------------
// EventLoop
// ---------------------------------------------------------------------------

class Preconnection;
class HttpsResolver;

// How much a loop's history holds (taps_event_loop_history_size).
struct HistorySize {
  size_t entries = 0;  // destination × protocol × network, at most 256
  size_t bytes = 0;    // memory of its tables, an estimate
};

// An owned taps_event_loop (or a handle on a shared loop).
class EventLoop {
 public:
  // taps_event_loop_new.
  EventLoop() : EventLoop(check_new(taps_event_loop_new(), "taps_event_loop_new")) {}
  // taps_event_loop_new_with_options.
  explicit EventLoop(const taps_event_loop_options &options)
      : EventLoop(check_new(taps_event_loop_new_with_options(&options), "taps_event_loop_new_with_options")) {}
  // A client handle on the shared loop of `key` (taps_event_loop_shared).
  static EventLoop shared(const std::string &key) {
    return EventLoop(check_new(taps_event_loop_shared(key.c_str()), "taps_event_loop_shared"));
  }

  EventLoop(EventLoop &&o) noexcept : loop_(std::exchange(o.loop_, nullptr)), state_(std::move(o.state_)) {}
  EventLoop &operator=(EventLoop &&o) noexcept {
    if (this != &o) {
      reset();
      loop_ = std::exchange(o.loop_, nullptr);
      state_ = std::move(o.state_);
    }
    return *this;
  }
  EventLoop(const EventLoop &) = delete;
  EventLoop &operator=(const EventLoop &) = delete;
  ~EventLoop() { reset(); }

  // Run until no race is pending (taps_event_loop_run's contract), or until
  // a callback threw: then that exception is rethrown here.
  void run() {
    rethrow_pending();
    for (;;) {
      int n = detail::check(taps_event_loop_run_once(loop_, -1), "taps_event_loop_run_once");
      rethrow_pending();
      if (n == 0) return;
    }
  }
  // taps_event_loop_run_once: the number of callbacks called.
  int run_once(int timeout_ms = -1) {
    rethrow_pending();
    int n = detail::check(taps_event_loop_run_once(loop_, timeout_ms), "taps_event_loop_run_once");
    rethrow_pending();
    return n;
  }
  // taps_event_loop_process (never blocks): the number of callbacks called.
  int process() {
    rethrow_pending();
    int n = detail::check(taps_event_loop_process(loop_), "taps_event_loop_process");
    rethrow_pending();
    return n;
  }
  // A thread of its own runs the loop (taps_event_loop_start_thread).
  void start_thread() { detail::check(taps_event_loop_start_thread(loop_), "taps_event_loop_start_thread"); }
  // Stop and join that thread, then rethrow what a callback threw on it.
  void stop_thread() {
    detail::check(taps_event_loop_stop_thread(loop_), "taps_event_loop_stop_thread");
    rethrow_pending();
  }
  // The fd to watch when embedding the loop (taps_event_loop_get_fd).
  int fd() const { return detail::check(taps_event_loop_get_fd(loop_), "taps_event_loop_get_fd"); }
  // ms until process() is due at the latest; -1: wait for fd() alone.
  int timeout_ms() const {
    int t = taps_event_loop_get_timeout_ms(loop_);
    if (t < -1) detail::check(t, "taps_event_loop_get_timeout_ms");
    return t;
  }
  // taps_event_loop_set_resolution_cache.
  void set_resolution_cache(uint32_t lifetime_ms) {
    detail::check(taps_event_loop_set_resolution_cache(loop_, lifetime_ms), "taps_event_loop_set_resolution_cache");
  }
  // Manual clock: taps_event_loop_advance_clock / taps_event_loop_now_us.
  void advance_clock(uint64_t us) {
    detail::check(taps_event_loop_advance_clock(loop_, us), "taps_event_loop_advance_clock");
  }
  uint64_t now_us() const { return taps_event_loop_now_us(loop_); }

  // History of earlier races (HEv3 draft -04 §5.3): taps_event_loop_set_history.
  void set_history(bool enabled) {
    detail::check(taps_event_loop_set_history(loop_, enabled), "taps_event_loop_set_history");
  }
  // taps_event_loop_clear_history.
  void clear_history() { detail::check(taps_event_loop_clear_history(loop_), "taps_event_loop_clear_history"); }
  // taps_event_loop_history_size.
  HistorySize history_size() const {
    HistorySize h;
    detail::check(taps_event_loop_history_size(loop_, &h.entries, &h.bytes), "taps_event_loop_history_size");
    return h;
  }
  // The history as text (taps_event_loop_export_history; it names the
  // hosts connected to: keep it private).
  std::string export_history() const {
    std::string text;
    for (;;) {
      int len = detail::check(taps_event_loop_export_history(loop_, text.empty() ? nullptr : &text[0], text.size()),
                              "taps_event_loop_export_history");
      if (static_cast<size_t>(len) < text.size()) {
        text.resize(static_cast<size_t>(len));
        return text;
      }
      text.assign(static_cast<size_t>(len) + 1, '\0');
    }
  }
  // Add the entries of an exported text (taps_event_loop_import_history):
  // the number read.
  int import_history(const std::string &text) {
    return detail::check(taps_event_loop_import_history(loop_, text.c_str()), "taps_event_loop_import_history");
  }
  // Resolve host names, and HTTPS records (HEv3 draft §4.1), with
  // `resolver` (taps_event_loop_set_https_resolver); nullptr: the system
  // resolver again. The loop keeps `resolver` as long as a race may call it.
  inline void set_https_resolver(std::shared_ptr<HttpsResolver> resolver);

  // Rethrow (and forget) the oldest exception a callback threw, if any.
  void rethrow_pending() {
    if (!state_) return;
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> g(state_->mu);
      if (state_->pending.empty()) return;
      e = std::move(state_->pending.front());
      state_->pending.pop_front();
    }
    std::rethrow_exception(e);
  }

  taps_event_loop *get() const noexcept { return loop_; }
  explicit operator bool() const noexcept { return loop_ != nullptr; }
  // Free the loop now (taps_event_loop_free / release); drops pending exceptions.
  void reset() noexcept {
    taps_event_loop_free(std::exchange(loop_, nullptr));
    state_.reset();
  }

 private:
  friend class Preconnection;
  static taps_event_loop *check_new(taps_event_loop *l, const char *function) {
    return detail::check_ptr(l, function);
  }
  explicit EventLoop(taps_event_loop *l) : loop_(l) {
    try {
      state_ = std::make_shared<detail::LoopState>();
    } catch (...) {
      taps_event_loop_free(std::exchange(loop_, nullptr));
      throw;
    }
  }

  taps_event_loop *loop_ = nullptr;
  std::shared_ptr<detail::LoopState> state_;
};

// ---------------------------------------------------------------------------
// Endpoints and properties
// ---------------------------------------------------------------------------

// An owned taps_remote_endpoint, built with chained setters:
// `taps::RemoteEndpoint().hostname("example.com").service("https")`.
class RemoteEndpoint {
 public:
  RemoteEndpoint() : ep_(detail::check_ptr(taps_remote_endpoint_new(), "taps_remote_endpoint_new")) {}
  RemoteEndpoint(RemoteEndpoint &&o) noexcept : ep_(std::exchange(o.ep_, nullptr)) {}
  RemoteEndpoint &operator=(RemoteEndpoint &&o) noexcept {
    if (this != &o) {
      taps_remote_endpoint_free(ep_);
      ep_ = std::exchange(o.ep_, nullptr);
    }
    return *this;
  }
  RemoteEndpoint(const RemoteEndpoint &) = delete;
  RemoteEndpoint &operator=(const RemoteEndpoint &) = delete;
  ~RemoteEndpoint() { taps_remote_endpoint_free(ep_); }

  // A DNS name or an IP literal.
  RemoteEndpoint &hostname(const std::string &host) & {
    detail::check(taps_remote_endpoint_with_hostname(ep_, host.c_str()), "taps_remote_endpoint_with_hostname");
    return *this;
  }
  RemoteEndpoint &&hostname(const std::string &host) && { return std::move(hostname(host)); }
  // A port, host byte order.
  RemoteEndpoint &port(uint16_t p) & {
    detail::check(taps_remote_endpoint_with_port(ep_, p), "taps_remote_endpoint_with_port");
    return *this;
  }
  RemoteEndpoint &&port(uint16_t p) && { return std::move(port(p)); }
  // A service: "443" or "https".
  RemoteEndpoint &service(const std::string &s) & {
    detail::check(taps_remote_endpoint_with_service(ep_, s.c_str()), "taps_remote_endpoint_with_service");
    return *this;
  }
  RemoteEndpoint &&service(const std::string &s) && { return std::move(service(s)); }

  taps_remote_endpoint *get() const noexcept { return ep_; }
  explicit operator bool() const noexcept { return ep_ != nullptr; }

 private:
  taps_remote_endpoint *ep_;
};

// Owned taps_transport_properties (the defaults: TCP).
class TransportProperties {
 public:
  TransportProperties()
      : p_(detail::check_ptr(taps_transport_properties_new(), "taps_transport_properties_new")) {}
  TransportProperties(TransportProperties &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  TransportProperties &operator=(TransportProperties &&o) noexcept {
    if (this != &o) {
      taps_transport_properties_free(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  TransportProperties(const TransportProperties &) = delete;
  TransportProperties &operator=(const TransportProperties &) = delete;
  ~TransportProperties() { taps_transport_properties_free(p_); }

  TransportProperties &set(taps_selection_property property, taps_preference preference) {
    detail::check(taps_transport_properties_set(p_, property, preference), "taps_transport_properties_set");
    return *this;
  }
  TransportProperties &set_interface(const std::string &name, taps_preference preference) {
    detail::check(taps_transport_properties_set_interface(p_, name.c_str(), preference),
                  "taps_transport_properties_set_interface");
    return *this;
  }
  TransportProperties &set_interface_type(taps_interface_type type, taps_preference preference) {
    detail::check(taps_transport_properties_set_interface_type(p_, type, preference),
                  "taps_transport_properties_set_interface_type");
    return *this;
  }

  taps_transport_properties *get() const noexcept { return p_; }

 private:
  taps_transport_properties *p_;
};

// ---------------------------------------------------------------------------
// Connection
// ---------------------------------------------------------------------------

class Connection;

// The lambdas of one connection; empty ones are not registered.
struct Callbacks {
  std::function<void(Connection &)> ready{};
  std::function<void(Connection &)> establishment_error{};
  std::function<void(Connection &)> connection_error{};
  std::function<void(Connection &)> closed{};

  Callbacks &on_ready(std::function<void(Connection &)> f) {
    ready = std::move(f);
    return *this;
  }
  Callbacks &on_establishment_error(std::function<void(Connection &)> f) {
    establishment_error = std::move(f);
    return *this;
  }
  Callbacks &on_connection_error(std::function<void(Connection &)> f) {
    connection_error = std::move(f);
    return *this;
  }
  Callbacks &on_closed(std::function<void(Connection &)> f) {
    closed = std::move(f);
    return *this;
  }
};

// A socket address (taps_connection_get_remote_address, an attempt's).
struct Address {
  sockaddr_storage storage{};
  socklen_t len = 0;

  int family() const noexcept { return storage.ss_family; }
  // Host byte order; 0 for an unknown family.
  uint16_t port() const noexcept {
    if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in &>(storage).sin_port);
    if (storage.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6 &>(storage).sin6_port);
    return 0;
  }
  // "127.0.0.1" or "::1".
  std::string host() const {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (storage.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in &>(storage).sin_addr, buf, sizeof buf);
    } else if (storage.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 &>(storage).sin6_addr, buf, sizeof buf);
    }
    return buf;
  }
  // "127.0.0.1:80" or "[::1]:80".
  std::string to_string() const {
    std::string h = host();
    if (storage.ss_family == AF_INET6) h = "[" + h + "]";
    return h + ":" + std::to_string(port());
  }
  static Address of(const sockaddr_storage &s, socklen_t l) {
    Address a;
    a.storage = s;
    a.len = l;
    return a;
  }
  // An IPv4 or IPv6 literal ("192.0.2.1", "2001:db8::1") and a port;
  // throws taps::Error (TAPS_ERROR_INVALID_ARGUMENT) for other text.
  static Address from_ip(const std::string &ip, uint16_t port = 0) {
    Address a;
    auto *s4 = reinterpret_cast<sockaddr_in *>(&a.storage);
    auto *s6 = reinterpret_cast<sockaddr_in6 *>(&a.storage);
    if (inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1) {
      s4->sin_family = AF_INET;
      s4->sin_port = htons(port);
      a.len = sizeof *s4;
    } else if (inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1) {
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(port);
      a.len = sizeof *s6;
    } else {
      throw Error(TAPS_ERROR_INVALID_ARGUMENT, "taps::Address::from_ip: not an IP address: " + ip);
    }
    return a;
  }
};

// An HTTPS ServiceMode record a race used (taps_connection_get_https_record).
struct HttpsRecord {
  uint16_t priority = 0;        // SvcPriority (≥ 1)
  uint16_t port = 0;            // the "port" SvcParam; 0: none
  size_t endpoint = 0;          // index of the remote endpoint
  std::string target;           // effective TargetName, lower case
  std::vector<std::string> alpn;  // usable ALPN ids
  bool ech = false;             // it carried an ECH config
};

// A DNS answer a race got (taps_connection_get_dns_answer, HEv3 draft §4.2).
struct DnsAnswer {
  taps_dns_type type = TAPS_DNS_TYPE_A;
  size_t endpoint = 0;
  std::string name;  // the name asked
  uint64_t at_us = 0;  // arrival, µs since the race started
  size_t count = 0;  // records, when error is 0
  int error = 0;     // the resolver's error code, or 0
};

namespace detail {

// One per connection, owned by the Connection object that owns the handle;
// it is the C callbacks' user_data.
struct ConnState {
  Callbacks callbacks;
  std::shared_ptr<LoopState> loop;
  std::recursive_mutex mu;       // guards `owner` against moves on other threads
  Connection *owner = nullptr;   // the C++ object that owns the handle now
  bool *destroyed = nullptr;     // set by the trampoline running on this state
};

// The state whose callback runs on this thread (nullptr outside callbacks).
inline ConnState *&current_state() {
  static thread_local ConnState *current = nullptr;
  return current;
}

}  // namespace detail

// An owned taps_connection with its callbacks' state.
class Connection {
 public:
  Connection() noexcept = default;
  Connection(Connection &&o) noexcept { take(o); }
  Connection &operator=(Connection &&o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;
  ~Connection() { reset(); }

  // The socket once established (owned by the connection), else -1.
  int fd() const noexcept { return taps_connection_get_fd(conn_); }
  // The peer's address; throws taps::Error when not established.
  Address remote_address() const {
    Address a;
    detail::check(taps_connection_get_remote_address(conn_, &a.storage, &a.len),
                  "taps_connection_get_remote_address");
    return a;
  }
  // taps_connection_get_error: 0, or why the race or connection failed.
  int error() const noexcept { return taps_connection_get_error(conn_); }
  // taps_connection_get_os_error: the errno behind error().
  int os_error() const noexcept { return taps_connection_get_os_error(conn_); }
  uint64_t id() const noexcept { return taps_connection_get_id(conn_); }
  // The winner's protocol ("tcp", ...), "" before establishment.
  std::string protocol() const {
    const char *p = taps_connection_get_protocol(conn_);
    return p != nullptr ? p : "";
  }
  // Every attempt so far, in start order (pointers inside are valid while
  // the connection lives).
  std::vector<taps_attempt_info> attempts() const {
    std::vector<taps_attempt_info> v;
    size_t n = taps_connection_attempt_count(conn_);
    v.reserve(n);
    for (size_t i = 0; i < n; i++) {
      taps_attempt_info info;
      std::memset(&info, 0, sizeof info);
      if (taps_connection_get_attempt(conn_, i, &info) != TAPS_OK) break;
      v.push_back(info);
    }
    return v;
  }
  // What the loop's history knew of attempt `index`'s destination
  // (taps_connection_get_attempt_history): "" when nothing.
  std::string attempt_history(size_t index) const {
    char buf[128];
    int len = detail::check(taps_connection_get_attempt_history(conn_, index, buf, sizeof buf),
                            "taps_connection_get_attempt_history");
    if (static_cast<size_t>(len) < sizeof buf) return std::string(buf, static_cast<size_t>(len));
    std::string text(static_cast<size_t>(len) + 1, '\0');
    detail::check(taps_connection_get_attempt_history(conn_, index, &text[0], text.size()),
                  "taps_connection_get_attempt_history");
    text.resize(static_cast<size_t>(len));
    return text;
  }
  // The ALPN id the winner's security stage reported (taps_connection_get_alpn); "" for none.
  std::string alpn() const {
    const char *a = taps_connection_get_alpn(conn_);
    return a != nullptr ? a : "";
  }
  // Attempt `index`'s ALPN ids (taps_connection_get_attempt_alpn; HEv3 draft §6.1).
  std::vector<std::string> attempt_alpn(size_t index) const {
    std::vector<std::string> ids;
    size_t n = taps_connection_get_attempt_alpn_count(conn_, index);
    for (size_t j = 0; j < n; j++) {
      const char *id = taps_connection_get_attempt_alpn(conn_, index, j);
      if (id != nullptr) ids.emplace_back(id);
    }
    return ids;
  }
  // Attempt `index`'s SvcPriority, none for an address no HTTPS record gave
  // (taps_connection_get_attempt_service_priority; throws for a bad index).
  std::optional<uint16_t> attempt_service_priority(size_t index) const {
    uint16_t prio = 0;
    if (detail::check(taps_connection_get_attempt_service_priority(conn_, index, &prio),
                      "taps_connection_get_attempt_service_priority") == 1)
      return prio;
    return std::nullopt;
  }
  // Whether attempt `index`'s address came from an ipv4hint/ipv6hint
  // (taps_connection_get_attempt_from_hint; throws for a bad index).
  bool attempt_from_hint(size_t index) const {
    return detail::check(taps_connection_get_attempt_from_hint(conn_, index),
                         "taps_connection_get_attempt_from_hint") == 1;
  }
  // The HTTPS records the race used, in the order tried.
  std::vector<HttpsRecord> https_records() const {
    std::vector<HttpsRecord> v;
    size_t n = taps_connection_get_https_record_count(conn_);
    for (size_t i = 0; i < n; i++) {
      taps_https_record_info r;
      std::memset(&r, 0, sizeof r);
      r.struct_size = sizeof r;
      detail::check(taps_connection_get_https_record(conn_, i, &r), "taps_connection_get_https_record");
      HttpsRecord h;
      h.priority = r.priority;
      h.port = r.port;
      h.endpoint = r.endpoint;
      h.target = r.target != nullptr ? r.target : "";
      for (size_t j = 0; j < r.alpn_count; j++) {
        const char *id = taps_connection_get_https_record_alpn(conn_, i, j);
        if (id != nullptr) h.alpn.emplace_back(id);
      }
      h.ech = r.ech;
      v.push_back(std::move(h));
    }
    return v;
  }
  // The DNS answers of a race that asked HTTPS records, in arrival order.
  std::vector<DnsAnswer> dns_answers() const {
    std::vector<DnsAnswer> v;
    size_t n = taps_connection_get_dns_answer_count(conn_);
    for (size_t i = 0; i < n; i++) {
      taps_dns_answer_info a;
      std::memset(&a, 0, sizeof a);
      a.struct_size = sizeof a;
      detail::check(taps_connection_get_dns_answer(conn_, i, &a), "taps_connection_get_dns_answer");
      v.push_back(DnsAnswer{a.record_type, a.endpoint, a.name != nullptr ? a.name : "", a.at_us, a.count, a.error});
    }
    return v;
  }
  // Close gracefully; `closed` follows on the loop.
  void close() noexcept { taps_connection_close(conn_); }

  taps_connection *get() const noexcept { return conn_; }
  explicit operator bool() const noexcept { return conn_ != nullptr; }

  // Free the connection now (taps_connection_free: no callback runs after
  // it); safe inside this connection's own callback.
  void reset() noexcept {
    if (conn_ == nullptr && state_ == nullptr) return;
    taps_connection_free(std::exchange(conn_, nullptr));
    detail::ConnState *st = std::exchange(state_, nullptr);
    if (st == nullptr) return;
    if (detail::current_state() == st && st->destroyed != nullptr) {
      st->owner = nullptr;
      *st->destroyed = true;  // inside its own callback: the trampoline frees it
    } else {
      delete st;
    }
  }

 private:
  friend class Preconnection;
  friend class ConnectionPool;

  // Start a connection: `start(callbacks, &out)` is the C initiate call.
  template <typename Start>
  static Connection start(Callbacks cbs, std::shared_ptr<detail::LoopState> loop, Start &&start_fn,
                          const char *function) {
    auto st = std::make_unique<detail::ConnState>();
    st->callbacks = std::move(cbs);
    st->loop = std::move(loop);
    taps_connection_callbacks c{};
    if (st->callbacks.ready) c.ready = &trampoline<&Callbacks::ready>;
    if (st->callbacks.establishment_error) c.establishment_error = &trampoline<&Callbacks::establishment_error>;
    if (st->callbacks.connection_error) c.connection_error = &trampoline<&Callbacks::connection_error>;
    if (st->callbacks.closed) c.closed = &trampoline<&Callbacks::closed>;
    c.user_data = st.get();
    // A loop on its own thread may call back before this returns: the lock
    // holds the callback until the Connection below owns the handle.
    std::unique_lock<std::recursive_mutex> lock(st->mu);
    taps_connection *conn = nullptr;
    detail::check(start_fn(c, &conn), function);
    return Connection(conn, st.release());  // constructed in place (C++17), then `lock` unlocks
  }

  Connection(taps_connection *c, detail::ConnState *st) noexcept : conn_(c), state_(st) { st->owner = this; }

  void take(Connection &o) noexcept {
    if (o.state_ == nullptr) {
      conn_ = std::exchange(o.conn_, nullptr);
      return;
    }
    std::lock_guard<std::recursive_mutex> g(o.state_->mu);
    conn_ = std::exchange(o.conn_, nullptr);
    state_ = std::exchange(o.state_, nullptr);
    state_->owner = this;
  }

  template <std::function<void(Connection &)> Callbacks::*Member>
  static int trampoline(taps_connection *, void *user_data) noexcept {
    auto *st = static_cast<detail::ConnState *>(user_data);
    std::unique_lock<std::recursive_mutex> lock(st->mu);
    bool destroyed = false;
    bool *outer_destroyed = std::exchange(st->destroyed, &destroyed);
    detail::ConnState *outer = std::exchange(detail::current_state(), st);
    try {
      if (st->owner != nullptr) (st->callbacks.*Member)(*st->owner);
    } catch (...) {
      detail::report(st->loop.get(), std::current_exception());
    }
    detail::current_state() = outer;
    if (destroyed) {
      lock.unlock();
      delete st;
    } else {
      st->destroyed = outer_destroyed;
    }
    return 0;
  }

  taps_connection *conn_ = nullptr;
  detail::ConnState *state_ = nullptr;
};

// ---------------------------------------------------------------------------
// Security stages (HEv3 draft §6.1)
// ---------------------------------------------------------------------------

// One attempt of a security stage (taps_stage_attempt): a connected TCP
// socket whose handshake the stage runs. A view: valid as the C handle is
// (from start until the stage's ready/failed returns, or until cancel
// returns).
class StageAttempt {
 public:
  explicit StageAttempt(taps_stage_attempt *a) noexcept : a_(a) {}
  // The connected, non-blocking socket (the library's: do not close it).
  int fd() const noexcept { return taps_stage_attempt_get_fd(a_); }
  // The remote address and port.
  Address remote() const {
    Address r;
    r.len = sizeof r.storage;
    detail::check(taps_stage_attempt_get_remote(a_, &r.storage, &r.len), "taps_stage_attempt_get_remote");
    return r;
  }
  // The host name for SNI; "" when every remote endpoint is an address.
  std::string host_name() const {
    const char *h = taps_stage_attempt_get_host_name(a_);
    return h != nullptr ? h : "";
  }
  // The ALPN ids to offer, most preferred first (taps_stage_attempt_get_alpn).
  std::vector<std::string> alpn() const {
    std::vector<std::string> ids;
    size_t n = taps_stage_attempt_get_alpn_count(a_);
    for (size_t i = 0; i < n; i++) {
      const char *id = taps_stage_attempt_get_alpn(a_, i);
      if (id != nullptr) ids.emplace_back(id);
    }
    return ids;
  }
  // The same in the extension's wire format (SSL_set_alpn_protos's).
  std::vector<uint8_t> alpn_wire() const {
    size_t n = 0;
    const uint8_t *p = taps_stage_attempt_get_alpn_wire(a_, &n);
    return p != nullptr ? std::vector<uint8_t>(p, p + n) : std::vector<uint8_t>();
  }
  // The ECHConfigList of the attempt's HTTPS record (HEv3 §6.3); empty for none.
  std::vector<uint8_t> ech_config() const {
    size_t n = 0;
    const uint8_t *p = taps_stage_attempt_get_ech_config(a_, &n);
    return p != nullptr ? std::vector<uint8_t>(p, p + n) : std::vector<uint8_t>();
  }
  // Call the stage's io when the socket is readable / writable.
  void want_read() { detail::check(taps_stage_attempt_want_read(a_), "taps_stage_attempt_want_read"); }
  void want_write() { detail::check(taps_stage_attempt_want_write(a_), "taps_stage_attempt_want_write"); }
  // The handshake is done; `selected_alpn` is the server's choice ("": none).
  void ready(const std::string &selected_alpn = std::string()) {
    detail::check(taps_stage_attempt_ready(a_, selected_alpn.empty() ? nullptr : selected_alpn.c_str()),
                  "taps_stage_attempt_ready");
  }
  // The handshake failed with `os_error` (an errno > 0).
  void failed(int os_error) { detail::check(taps_stage_attempt_failed(a_, os_error), "taps_stage_attempt_failed"); }
  // The attempt's index in its race (Connection::attempts()).
  int index() const noexcept { return taps_stage_attempt_index(a_); }

  taps_stage_attempt *get() const noexcept { return a_; }

 private:
  taps_stage_attempt *a_;
};

// The program's TLS as a stage on each built-in TCP attempt
// (taps_stage_callbacks; Preconnection::set_security_stage): the same
// rules as in C. The functions run on the loop's thread with the loop
// locked. An exception from start fails the attempt (EIO) at once; from io,
// the attempt fails with EIO; either way (and from cancel) it is reported
// as a connection callback's is (set_exception_handler, else rethrown from
// EventLoop::run()).
class SecurityStage {
 public:
  virtual ~SecurityStage() = default;
  // The TCP connection is up: start the handshake. 0, or an errno (> 0) to
  // fail the attempt at once.
  virtual int start(StageAttempt attempt) = 0;
  // The socket is readable and/or writable, as asked.
  virtual void io(StageAttempt attempt, bool readable, bool writable) {
    (void)attempt;
    (void)readable;
    (void)writable;
  }
  // The race no longer needs the attempt: free its state (not the fd).
  virtual void cancel(StageAttempt attempt) { (void)attempt; }
};

namespace detail {

struct StageState {
  std::shared_ptr<SecurityStage> stage;
  LoopState *loop = nullptr;  // its keeper
};

inline int stage_start(taps_stage_attempt *a, void *user_data) noexcept {
  auto *st = static_cast<StageState *>(user_data);
  try {
    return st->stage->start(StageAttempt(a));
  } catch (...) {
    report(st->loop, std::current_exception());
    return EIO;
  }
}

inline void stage_io(taps_stage_attempt *a, bool readable, bool writable, void *user_data) noexcept {
  auto *st = static_cast<StageState *>(user_data);
  try {
    st->stage->io(StageAttempt(a), readable, writable);
  } catch (...) {
    report(st->loop, std::current_exception());
    taps_stage_attempt_failed(a, EIO);
  }
}

inline void stage_cancel(taps_stage_attempt *a, void *user_data) noexcept {
  auto *st = static_cast<StageState *>(user_data);
  try {
    st->stage->cancel(StageAttempt(a));
  } catch (...) {
    report(st->loop, std::current_exception());
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Resolvers with HTTPS records (HEv3 draft §4)
// ---------------------------------------------------------------------------

// One address query of a user resolver (taps_resolver_query): a view,
// valid until it is answered or cancelled.
class ResolverQuery {
 public:
  explicit ResolverQuery(taps_resolver_query *q) noexcept : q_(q) {}
  // Answer with addresses (their ports are ignored; may be empty).
  void answer(const std::vector<Address> &addrs) {
    std::vector<sockaddr_storage> v;
    v.reserve(addrs.size());
    for (const Address &a : addrs) v.push_back(a.storage);
    detail::check(taps_resolver_query_answer(q_, v.data(), v.size()), "taps_resolver_query_answer");
  }
  // Fail it with an error code.
  void fail(int error) { detail::check(taps_resolver_query_fail(q_, error), "taps_resolver_query_fail"); }
  taps_resolver_query *get() const noexcept { return q_; }

 private:
  taps_resolver_query *q_;
};

// One HTTPS resource record (RFC 9460 §2.2) to answer with
// (taps_service_record).
struct ServiceRecord {
  uint16_t priority = 1;  // 0: AliasMode; ≥ 1: ServiceMode, lower preferred
  uint16_t port = 0;      // the "port" SvcParam; 0: none
  std::string target;     // TargetName; "" or ".": the owner name
  std::vector<std::string> alpn;
  bool no_default_alpn = false;
  std::vector<uint16_t> mandatory;
  std::vector<in_addr> ipv4hint;
  std::vector<in6_addr> ipv6hint;
  std::vector<uint8_t> ech;  // the ECHConfigList; empty: none
};

// One HTTPS query of a user resolver (taps_service_query): a view, valid
// until it is answered or cancelled.
class ServiceQuery {
 public:
  explicit ServiceQuery(taps_service_query *q) noexcept : q_(q) {}
  // Answer with `records` (empty: NODATA) and their TTL in seconds.
  void answer(const std::vector<ServiceRecord> &records, uint32_t ttl_s) {
    std::vector<std::vector<const char *>> alpn(records.size());
    std::vector<taps_service_record> c(records.size());
    for (size_t i = 0; i < records.size(); i++) {
      const ServiceRecord &r = records[i];
      for (const std::string &id : r.alpn) alpn[i].push_back(id.c_str());
      taps_service_record &o = c[i];
      std::memset(&o, 0, sizeof o);
      o.struct_size = sizeof o;
      o.priority = r.priority;
      o.port = r.port;
      o.target = r.target.c_str();
      o.alpn = alpn[i].empty() ? nullptr : alpn[i].data();
      o.alpn_count = alpn[i].size();
      o.no_default_alpn = r.no_default_alpn;
      o.mandatory = r.mandatory.empty() ? nullptr : r.mandatory.data();
      o.mandatory_count = r.mandatory.size();
      o.ipv4hint = r.ipv4hint.empty() ? nullptr : r.ipv4hint.data();
      o.ipv4hint_count = r.ipv4hint.size();
      o.ipv6hint = r.ipv6hint.empty() ? nullptr : r.ipv6hint.data();
      o.ipv6hint_count = r.ipv6hint.size();
      o.ech = r.ech.empty() ? nullptr : r.ech.data();
      o.ech_len = r.ech.size();
    }
    detail::check(taps_service_query_answer(q_, c.empty() ? nullptr : c.data(), c.size(), ttl_s),
                  "taps_service_query_answer");
  }
  // Fail it: the race goes on without HTTPS records.
  void fail(int error) { detail::check(taps_service_query_fail(q_, error), "taps_service_query_fail"); }
  taps_service_query *get() const noexcept { return q_; }

 private:
  taps_service_query *q_;
};

// A resolver that answers A, AAAA and HTTPS records
// (taps_https_resolver_implementation; EventLoop::set_https_resolver).
// The functions run on the loop's thread with the loop locked; the
// queries may be answered from any thread, also from inside them. An
// exception from resolve or resolve_https fails that query (EIO) and is
// reported as a connection callback's is.
class HttpsResolver {
 public:
  virtual ~HttpsResolver() = default;
  // Resolve `hostname` for `family` (AF_INET6 or AF_INET): 0 and answer
  // later through `query`, or an error code (≠ 0) to fail it at once.
  virtual int resolve(ResolverQuery query, const std::string &hostname, int family) = 0;
  // The race ended before `query` was answered.
  virtual void cancel(ResolverQuery query) { (void)query; }
  // Resolve the HTTPS records of `name`: 0 and answer later, or an error
  // code to fail it at once (the race goes on with A/AAAA).
  virtual int resolve_https(ServiceQuery query, const std::string &name) = 0;
  // The race ended before `query` was answered.
  virtual void cancel_https(ServiceQuery query) { (void)query; }
};

namespace detail {

struct ResolverState {
  std::shared_ptr<HttpsResolver> resolver;
  LoopState *loop = nullptr;  // its keeper
};

inline int resolver_resolve(taps_resolver_query *q, const char *host, int family, void *user_data) noexcept {
  auto *st = static_cast<ResolverState *>(user_data);
  try {
    return st->resolver->resolve(ResolverQuery(q), host, family);
  } catch (...) {
    report(st->loop, std::current_exception());
    return EIO;
  }
}

inline void resolver_cancel(taps_resolver_query *q, void *user_data) noexcept {
  auto *st = static_cast<ResolverState *>(user_data);
  try {
    st->resolver->cancel(ResolverQuery(q));
  } catch (...) {
    report(st->loop, std::current_exception());
  }
}

inline int resolver_resolve_https(taps_service_query *q, const char *name, void *user_data) noexcept {
  auto *st = static_cast<ResolverState *>(user_data);
  try {
    return st->resolver->resolve_https(ServiceQuery(q), name);
  } catch (...) {
    report(st->loop, std::current_exception());
    return EIO;
  }
}

inline void resolver_cancel_https(taps_service_query *q, void *user_data) noexcept {
  auto *st = static_cast<ResolverState *>(user_data);
  try {
    st->resolver->cancel_https(ServiceQuery(q));
  } catch (...) {
    report(st->loop, std::current_exception());
  }
}

}  // namespace detail

inline void EventLoop::set_https_resolver(std::shared_ptr<HttpsResolver> resolver) {
  if (!resolver) {
    detail::check(taps_event_loop_set_https_resolver(loop_, nullptr), "taps_event_loop_set_https_resolver");
    return;
  }
  auto st = std::make_shared<detail::ResolverState>();
  st->resolver = std::move(resolver);
  st->loop = state_.get();
  taps_https_resolver_implementation impl;
  std::memset(&impl, 0, sizeof impl);
  impl.struct_size = sizeof impl;
  impl.resolve = &detail::resolver_resolve;
  impl.cancel = &detail::resolver_cancel;
  impl.resolve_https = &detail::resolver_resolve_https;
  impl.cancel_https = &detail::resolver_cancel_https;
  impl.user_data = st.get();
  detail::keep(*state_, st);
  detail::check(taps_event_loop_set_https_resolver(loop_, &impl), "taps_event_loop_set_https_resolver");
}

// ---------------------------------------------------------------------------
// Preconnection
// ---------------------------------------------------------------------------

// An owned taps_preconnection: remote endpoints (copied), properties and
// racing options on a loop, which must outlive it.
class Preconnection {
 public:
  using Endpoints = std::vector<std::reference_wrapper<const RemoteEndpoint>>;

  Preconnection(EventLoop &loop, const Endpoints &remotes, const TransportProperties *props = nullptr,
                const taps_racing_options *opts = nullptr)
      : loop_(loop.state_) {
    std::vector<const taps_remote_endpoint *> eps;
    eps.reserve(remotes.size());
    for (const RemoteEndpoint &r : remotes) eps.push_back(r.get());
    p_ = detail::check_ptr(taps_preconnection_new(loop.get(), eps.data(), eps.size(),
                                                  props != nullptr ? props->get() : nullptr, opts),
                           "taps_preconnection_new");
  }
  Preconnection(EventLoop &loop, const Endpoints &remotes, const taps_racing_options &opts)
      : Preconnection(loop, remotes, nullptr, &opts) {}
  Preconnection(EventLoop &loop, const RemoteEndpoint &remote, const TransportProperties *props = nullptr,
                const taps_racing_options *opts = nullptr)
      : Preconnection(loop, Endpoints{std::cref(remote)}, props, opts) {}
  Preconnection(EventLoop &loop, const RemoteEndpoint &remote, const taps_racing_options &opts)
      : Preconnection(loop, Endpoints{std::cref(remote)}, nullptr, &opts) {}

  Preconnection(Preconnection &&o) noexcept : p_(std::exchange(o.p_, nullptr)), loop_(std::move(o.loop_)) {}
  Preconnection &operator=(Preconnection &&o) noexcept {
    if (this != &o) {
      taps_preconnection_free(p_);
      p_ = std::exchange(o.p_, nullptr);
      loop_ = std::move(o.loop_);
    }
    return *this;
  }
  Preconnection(const Preconnection &) = delete;
  Preconnection &operator=(const Preconnection &) = delete;
  ~Preconnection() { taps_preconnection_free(p_); }

  // Start racing (taps_preconnection_initiate_with_racing). Keep the
  // returned Connection: destroying it cancels the race.
  Connection initiate(Callbacks callbacks) {
    taps_preconnection *p = p_;
    return Connection::start(
        std::move(callbacks), loop_,
        [p](taps_connection_callbacks c, taps_connection **out) {
          return taps_preconnection_initiate_with_racing(p, c, out);
        },
        "taps_preconnection_initiate_with_racing");
  }
  // taps_preconnection_set_racing_type.
  void set_racing_type(taps_branch_kind kind, taps_racing_type_code type, uint32_t delay_ms = 0) {
    detail::check(taps_preconnection_set_racing_type(p_, kind, type, delay_ms), "taps_preconnection_set_racing_type");
  }

  // Run `stage` (the program's TLS) on each built-in TCP attempt of the
  // races initiated from now on (taps_preconnection_set_security_stage;
  // HEv3 draft §6.1); nullptr removes it. The loop keeps `stage` as long
  // as a race may call it.
  void set_security_stage(std::shared_ptr<SecurityStage> stage) {
    if (!stage) {
      detail::check(taps_preconnection_set_security_stage(p_, nullptr, nullptr), "taps_preconnection_set_security_stage");
      return;
    }
    auto st = std::make_shared<detail::StageState>();
    st->stage = std::move(stage);
    st->loop = loop_.get();
    taps_stage_callbacks cb;
    std::memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.start = &detail::stage_start;
    cb.io = &detail::stage_io;
    cb.cancel = &detail::stage_cancel;
    detail::keep(*loop_, st);
    detail::check(taps_preconnection_set_security_stage(p_, &cb, st.get()), "taps_preconnection_set_security_stage");
  }
  // The ALPN ids TLS offers, most preferred first (taps_preconnection_set_alpn).
  void set_alpn(const std::vector<std::string> &ids) {
    std::vector<const char *> v = c_strings(ids);
    detail::check(taps_preconnection_set_alpn(p_, v.empty() ? nullptr : v.data(), v.size()),
                  "taps_preconnection_set_alpn");
  }
  // The ALPN ids protocol `name` serves (taps_preconnection_set_protocol_alpn; HEv3 §5.1, §6).
  void set_protocol_alpn(const std::string &name, const std::vector<std::string> &ids) {
    std::vector<const char *> v = c_strings(ids);
    detail::check(taps_preconnection_set_protocol_alpn(p_, name.c_str(), v.empty() ? nullptr : v.data(), v.size()),
                  "taps_preconnection_set_protocol_alpn");
  }
  // When races ask HTTPS records (taps_preconnection_set_https_policy).
  void set_https_policy(taps_https_policy policy) {
    detail::check(taps_preconnection_set_https_policy(p_, policy), "taps_preconnection_set_https_policy");
  }
  // ECH required (taps_preconnection_set_ech_required; HEv3 §6.3).
  void set_ech_required(bool required) {
    detail::check(taps_preconnection_set_ech_required(p_, required), "taps_preconnection_set_ech_required");
  }

  taps_preconnection *get() const noexcept { return p_; }

 private:
  static std::vector<const char *> c_strings(const std::vector<std::string> &ids) {
    std::vector<const char *> v;
    v.reserve(ids.size());
    for (const std::string &id : ids) v.push_back(id.c_str());
    return v;
  }

  friend class ConnectionPool;
  friend class ConnectionGroup;
  taps_preconnection *p_ = nullptr;
  std::shared_ptr<detail::LoopState> loop_;
};

// ---------------------------------------------------------------------------
// Pools and groups
// ---------------------------------------------------------------------------

namespace detail {
template <typename Event>
struct EventState {
  std::function<void(const Event &)> on_event;
  std::shared_ptr<LoopState> loop;

  static void trampoline(const Event *e, void *user_data) noexcept {
    auto *st = static_cast<EventState *>(user_data);
    try {
      st->on_event(*e);
    } catch (...) {
      report(st->loop.get(), std::current_exception());
    }
  }
};
}  // namespace detail

// An owned taps_connection_pool (its events go to `on_event`, if set).
class ConnectionPool {
 public:
  using EventHandler = std::function<void(const taps_pool_event &)>;

  explicit ConnectionPool(const Preconnection &p, const taps_pool_options *opts = nullptr,
                          EventHandler on_event = {})
      : state_(new detail::EventState<taps_pool_event>{std::move(on_event), p.loop_}) {
    pool_ = detail::check_ptr(
        taps_connection_pool_new(p.get(), opts,
                                 state_->on_event ? &detail::EventState<taps_pool_event>::trampoline : nullptr,
                                 state_.get()),
        "taps_connection_pool_new");
  }
  ConnectionPool(const Preconnection &p, const taps_pool_options &opts, EventHandler on_event = {})
      : ConnectionPool(p, &opts, std::move(on_event)) {}
  ConnectionPool(ConnectionPool &&o) noexcept : pool_(std::exchange(o.pool_, nullptr)), state_(std::move(o.state_)) {}
  ConnectionPool &operator=(ConnectionPool &&o) noexcept {
    if (this != &o) {
      taps_connection_pool_free(pool_);  // no event follows: its state may go
      pool_ = std::exchange(o.pool_, nullptr);
      state_ = std::move(o.state_);
    }
    return *this;
  }
  ConnectionPool(const ConnectionPool &) = delete;
  ConnectionPool &operator=(const ConnectionPool &) = delete;
  ~ConnectionPool() { taps_connection_pool_free(pool_); }

  // taps_connection_pool_acquire: the connection's `ready` follows.
  Connection acquire(Callbacks callbacks) {
    taps_connection_pool *pool = pool_;
    return Connection::start(
        std::move(callbacks), state_ ? state_->loop : nullptr,
        [pool](taps_connection_callbacks c, taps_connection **out) {
          return taps_connection_pool_acquire(pool, c, out);
        },
        "taps_connection_pool_acquire");
  }
  size_t buffered() const noexcept { return taps_connection_pool_buffered(pool_); }
  taps_connection_pool *get() const noexcept { return pool_; }

 private:
  taps_connection_pool *pool_ = nullptr;
  std::unique_ptr<detail::EventState<taps_pool_event>> state_;
};

// An owned taps_connection_group (its events go to `on_event`, if set).
class ConnectionGroup {
 public:
  using EventHandler = std::function<void(const taps_group_event &)>;

  explicit ConnectionGroup(const Preconnection &p, const taps_group_options *opts = nullptr,
                           EventHandler on_event = {})
      : state_(new detail::EventState<taps_group_event>{std::move(on_event), p.loop_}) {
    group_ = detail::check_ptr(
        taps_connection_group_new(p.get(), opts,
                                  state_->on_event ? &detail::EventState<taps_group_event>::trampoline : nullptr,
                                  state_.get()),
        "taps_connection_group_new");
  }
  ConnectionGroup(const Preconnection &p, const taps_group_options &opts, EventHandler on_event = {})
      : ConnectionGroup(p, &opts, std::move(on_event)) {}
  ConnectionGroup(ConnectionGroup &&o) noexcept
      : group_(std::exchange(o.group_, nullptr)), state_(std::move(o.state_)) {}
  ConnectionGroup &operator=(ConnectionGroup &&o) noexcept {
    if (this != &o) {
      taps_connection_group_free(group_);
      group_ = std::exchange(o.group_, nullptr);
      state_ = std::move(o.state_);
    }
    return *this;
  }
  ConnectionGroup(const ConnectionGroup &) = delete;
  ConnectionGroup &operator=(const ConnectionGroup &) = delete;
  ~ConnectionGroup() { taps_connection_group_free(group_); }

  // The member for the next stream (taps_connection_group_assign).
  uint64_t assign() {
    uint64_t m = 0;
    detail::check(taps_connection_group_assign(group_, &m), "taps_connection_group_assign");
    return m;
  }
  void release_stream(uint64_t member, bool failed = false) {
    detail::check(taps_connection_group_release_stream(group_, member, failed ? 1 : 0),
                  "taps_connection_group_release_stream");
  }
  void mark_failed(uint64_t member) {
    detail::check(taps_connection_group_mark_failed(group_, member), "taps_connection_group_mark_failed");
  }
  void set_weight(uint64_t member, uint32_t weight) {
    detail::check(taps_connection_group_set_weight(group_, member, weight), "taps_connection_group_set_weight");
  }
  taps_group_member_metrics member_metrics(uint64_t member) const {
    taps_group_member_metrics m{};
    detail::check(taps_connection_group_member_metrics(group_, member, &m), "taps_connection_group_member_metrics");
    return m;
  }
  // A live member's socket (owned by the group), or -1.
  int member_fd(uint64_t member) const noexcept { return taps_connection_group_member_fd(group_, member); }
  // The live members, in join order.
  std::vector<uint64_t> members() const {
    std::vector<uint64_t> v(taps_connection_group_members(group_, nullptr, 0));
    size_t n = taps_connection_group_members(group_, v.data(), v.size());
    if (n < v.size()) v.resize(n);
    return v;
  }
  taps_connection_group *get() const noexcept { return group_; }

 private:
  taps_connection_group *group_ = nullptr;
  std::unique_ptr<detail::EventState<taps_group_event>> state_;
};

}  // namespace taps

#endif  // TAPS_RACING_HPP
