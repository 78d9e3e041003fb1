//! The Rust API end to end on loopback sockets: literal and resolved
//! hosts, refused and blackholed IPv6, all-fail reports, timeouts, and
//! handlers that drop their own connection.

use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

/// What a handler saw.
#[derive(Default, Debug)]
struct Seen {
    ready: usize,
    failed: usize,
    closed: usize,
    error: Option<Error>,
    attempts_at_ready: Vec<AttemptReport>,
}

struct Recorder {
    seen: Arc<Mutex<Seen>>,
    close_on_ready: bool,
}

impl ConnectionHandler for Recorder {
    fn ready(&mut self, c: &Connection) {
        let mut s = self.seen.lock().unwrap();
        s.ready += 1;
        s.attempts_at_ready = c.attempts();
        if self.close_on_ready {
            c.close();
        }
    }
    fn establishment_error(&mut self, c: &Connection) {
        let mut s = self.seen.lock().unwrap();
        s.failed += 1;
        s.error = c.error();
    }
    fn closed(&mut self, _: &Connection) {
        self.seen.lock().unwrap().closed += 1;
    }
}

fn recorder() -> (Box<Recorder>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    (Box::new(Recorder { seen: Arc::clone(&seen), close_on_ready: false }), seen)
}

fn endpoint(host: &str, port: u16) -> RemoteEndpoint {
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname(host).unwrap().with_port(port).unwrap();
    ep
}

fn closed_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// A listener whose accept queue is full: further SYNs are dropped, so a
/// connect to it neither succeeds nor fails (a blackhole on loopback).
struct Blackhole {
    _listener: Socket,
    _filler: TcpStream,
    port: u16,
}

fn blackhole(ip: &str) -> Blackhole {
    let addr: SocketAddr = format!("{}:0", if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() })
        .parse()
        .unwrap();
    let l = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    if addr.is_ipv6() {
        l.set_only_v6(true).unwrap();
    }
    l.bind(&addr.into()).unwrap();
    l.listen(0).unwrap();
    let local = l.local_addr().unwrap().as_socket().unwrap();
    let filler = TcpStream::connect(local).unwrap();
    Blackhole { _listener: l, _filler: filler, port: local.port() }
}

#[test]
fn literal_address_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", port)], None, None).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    assert_eq!(conn.state(), ConnectionState::Establishing);
    lp.run().unwrap();
    let s = seen.lock().unwrap();
    assert_eq!((s.ready, s.failed), (1, 0));
    assert_eq!(conn.state(), ConnectionState::Established);
    assert_eq!(conn.remote_address(), Some(SocketAddr::from(([127, 0, 0, 1], port))));
    assert!(conn.fd().is_some());
    let a = conn.attempts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, AttemptOutcome::Won);
    assert_eq!(a[0].started_us, 0);
}

#[test]
fn refused_ipv6_lets_ipv4_win_without_waiting_the_delay() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Nothing listens on [::1]:port (v6-only bind check: the port is free on ::1).
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint("::1", port), endpoint("127.0.0.1", port)], None, None).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    assert_eq!(seen.lock().unwrap().ready, 1);
    let a = conn.attempts();
    assert_eq!(a.len(), 2);
    assert!(a[0].address.is_ipv6(), "IPv6 first (RFC 6724 / RFC 8305 §4): {a:?}");
    assert_eq!((a[0].outcome, a[0].os_error), (AttemptOutcome::Failed, libc::ECONNREFUSED));
    assert_eq!(a[1].outcome, AttemptOutcome::Won);
    // The failure started the next attempt at once, not after 250 ms: at
    // the end of the refusal, or 10 ms after the previous start when it
    // was refused sooner (RFC 8305 §5: no start within 10 ms of another).
    assert!(a[1].started_us < 100_000, "{a:?}");
    let ended = a[0].ended_us.unwrap();
    assert!(a[1].started_us >= a[0].started_us + 10_000, "{a:?}");
    assert!(a[1].started_us == ended || ended < a[0].started_us + 10_000, "{a:?}");
}

#[test]
fn blackholed_ipv6_loses_to_ipv4_at_the_attempt_delay() {
    let hole = blackhole("::1");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let opts = RacingOptions { connection_attempt_delay_ms: 50, ..Default::default() };
    let pre =
        Preconnection::new(&lp, &[endpoint("::1", hole.port), endpoint("127.0.0.1", port)], None, Some(&opts)).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    assert_eq!(seen.lock().unwrap().ready, 1);
    let a = seen.lock().unwrap().attempts_at_ready.clone();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].outcome, AttemptOutcome::Cancelled, "{a:?}");
    assert_eq!(a[1].outcome, AttemptOutcome::Won);
    assert!((50_000..60_000).contains(&a[1].started_us), "v4 starts at the 50 ms delay: {a:?}");
    assert_eq!(conn.remote_address().unwrap().port(), port);
}

#[test]
fn all_refused_reports_every_errno_once() {
    let (p6, p4) = (closed_port("::1"), closed_port("127.0.0.1"));
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint("::1", p6), endpoint("127.0.0.1", p4)], None, None).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    let s = seen.lock().unwrap();
    assert_eq!((s.ready, s.failed), (0, 1));
    assert_eq!(s.error, Some(Error::AllAttemptsFailed(libc::ECONNREFUSED)));
    assert_eq!(conn.state(), ConnectionState::Failed);
    for a in conn.attempts() {
        assert_eq!((a.outcome, a.os_error), (AttemptOutcome::Failed, libc::ECONNREFUSED));
        assert!(a.ended_us.is_some());
    }
    assert_eq!(conn.attempt_count(), 2);
    assert_eq!(conn.attempt(2).err(), Some(Error::OutOfRange));
}

#[test]
fn total_timeout_ends_a_blackholed_race() {
    let hole = blackhole("127.0.0.1");
    let lp = EventLoop::new().unwrap();
    let opts = RacingOptions { total_timeout_ms: 80, ..Default::default() };
    let pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", hole.port)], None, Some(&opts)).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    let t = std::time::Instant::now();
    lp.run().unwrap();
    let took = t.elapsed().as_millis();
    assert!((75..500).contains(&took), "{took} ms");
    assert_eq!(seen.lock().unwrap().error, Some(Error::TimedOut));
    assert_eq!(conn.attempts()[0].outcome, AttemptOutcome::Cancelled);
}

#[test]
fn attempt_timeout_fails_the_attempt_with_etimedout() {
    let hole = blackhole("127.0.0.1");
    let lp = EventLoop::new().unwrap();
    let opts = RacingOptions { attempt_timeout_ms: 40, ..Default::default() };
    let pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", hole.port)], None, Some(&opts)).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    assert_eq!(seen.lock().unwrap().error, Some(Error::AllAttemptsFailed(libc::ETIMEDOUT)));
    let a = conn.attempts()[0].clone();
    assert_eq!((a.outcome, a.os_error), (AttemptOutcome::Failed, libc::ETIMEDOUT));
    assert!((40_000..200_000).contains(&a.ended_us.unwrap()), "{a:?}");
}

#[test]
fn host_names_resolve_and_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint("localhost", port)], None, None).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    assert_eq!(seen.lock().unwrap().ready, 1, "{:?}", conn.attempts());
    assert_eq!(conn.remote_address().unwrap().port(), port);
}

#[test]
fn unknown_host_fails_resolution() {
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint("no-such-host.invalid", 80)], None, None).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    assert!(matches!(seen.lock().unwrap().error, Some(Error::ResolutionFailed(_))));
    assert_eq!(conn.attempt_count(), 0);
}

#[test]
fn close_in_ready_then_closed_once() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", port)], None, None).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let conn = pre.initiate(Box::new(Recorder { seen: Arc::clone(&seen), close_on_ready: true })).unwrap();
    lp.run().unwrap();
    conn.close();
    lp.run().unwrap();
    let s = seen.lock().unwrap();
    assert_eq!((s.ready, s.closed), (1, 1));
    assert_eq!(conn.state(), ConnectionState::Closed);
    assert_eq!(conn.fd(), None);
}

/// A handler that drops the owning handle from inside `ready`.
struct DropInReady(Arc<Mutex<Option<Connection>>>, Arc<Mutex<usize>>);

impl ConnectionHandler for DropInReady {
    fn ready(&mut self, _: &Connection) {
        *self.1.lock().unwrap() += 1;
        drop(self.0.lock().unwrap().take());
    }
}

#[test]
fn dropping_the_connection_inside_ready_is_safe() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", port)], None, None).unwrap();
    let slot = Arc::new(Mutex::new(None));
    let calls = Arc::new(Mutex::new(0));
    let conn = pre.initiate(Box::new(DropInReady(Arc::clone(&slot), Arc::clone(&calls)))).unwrap();
    *slot.lock().unwrap() = Some(conn);
    lp.run().unwrap();
    assert_eq!(*calls.lock().unwrap(), 1);
    assert!(slot.lock().unwrap().is_none());
    assert!(!lp.has_work());
}

#[test]
fn dropping_a_racing_connection_cancels_without_callback() {
    let hole = blackhole("127.0.0.1");
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", hole.port)], None, None).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    assert!(lp.has_work());
    drop(conn);
    assert!(!lp.has_work());
    lp.run().unwrap();
    let s = seen.lock().unwrap();
    assert_eq!((s.ready, s.failed, s.closed), (0, 0, 0));
}

#[test]
fn bad_input_is_refused_and_loses_nothing() {
    let lp = EventLoop::new().unwrap();
    assert!(matches!(Preconnection::new(&lp, &[], None, None), Err(Error::InvalidArgument(_))));
    let mut no_port = RemoteEndpoint::new();
    no_port.with_hostname("example.com").unwrap();
    assert!(matches!(Preconnection::new(&lp, &[no_port], None, None), Err(Error::InvalidArgument(_))));
    let opts = RacingOptions { race_count: 0, ..Default::default() };
    assert!(matches!(Preconnection::new(&lp, &[endpoint("::1", 1)], None, Some(&opts)), Err(Error::InvalidOption(_))));
    let mut ep = endpoint("example.com", 443);
    assert!(matches!(ep.with_hostname(""), Err(Error::InvalidHostname(_))));
    assert!(matches!(ep.with_port(0), Err(Error::InvalidPort(_))));
    assert_eq!(ep, endpoint("example.com", 443));
}

#[test]
fn udp_races_when_reliability_is_prohibited() {
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let mut props = TransportProperties::new();
    props.set_reliability(Preference::Prohibit);
    let pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", port)], Some(&props), None).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    assert_eq!(seen.lock().unwrap().ready, 1);
    let a = conn.attempts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].protocol.to_str().unwrap(), "udp");
    // The fd is the connected UDP socket: what it sends reaches the server.
    let fd = conn.fd().unwrap();
    let n = unsafe { libc::send(fd, b"hi".as_ptr().cast(), 2, 0) };
    assert_eq!(n, 2);
    let mut buf = [0u8; 8];
    let (got, _) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..got], b"hi");
}

#[test]
fn local_endpoints_bind_the_attempt() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let mut pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", port)], None, None).unwrap();
    let mut local = LocalEndpoint::new();
    local.with_address("127.0.0.2".parse().unwrap());
    pre.add_local_endpoint(&local).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    assert_eq!(seen.lock().unwrap().ready, 1, "{:?}", conn.attempts());
    let (_, peer) = listener.accept().unwrap();
    assert_eq!(peer.ip(), "127.0.0.2".parse::<std::net::IpAddr>().unwrap());
}

#[test]
fn an_interface_path_binds_to_the_device() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let mut pre = Preconnection::new(&lp, &[endpoint("127.0.0.1", port)], None, None).unwrap();
    let mut local = LocalEndpoint::new();
    local.with_interface("lo").unwrap();
    pre.add_local_endpoint(&local).unwrap();
    let (h, seen) = recorder();
    let conn = pre.initiate(h).unwrap();
    lp.run().unwrap();
    let a = conn.attempts();
    if a[0].os_error == libc::EPERM {
        eprintln!("SO_BINDTODEVICE needs CAP_NET_RAW: skipped");
        return;
    }
    assert_eq!(seen.lock().unwrap().ready, 1, "{a:?}");
    assert_eq!(a[0].interface.as_deref().unwrap().to_str().unwrap(), "lo");
}
