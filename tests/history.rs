//! History on a real loop over loopback: a blackholed [::1] (a listener
//! whose accept queue is full) and a working 127.0.0.1. The first race
//! waits the Connection Attempt Delay; the next ones attempt IPv4 first
//! (HEv3 draft -04 §5.3); the switch, clear, export and import.

use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use taps_racing::api::*;

fn endpoint(host: &str, port: u16) -> RemoteEndpoint {
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname(host).unwrap().with_port(port).unwrap();
    ep
}

struct Quiet;
impl ConnectionHandler for Quiet {}

/// A blackholed [::1] port (kept open by the returned sockets) and a
/// listening 127.0.0.1 one.
fn bed() -> (Socket, TcpStream, TcpListener, SocketAddr, u16) {
    let hole = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
    hole.set_only_v6(true).unwrap();
    hole.bind(&"[::1]:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    hole.listen(0).unwrap();
    let hole_addr = hole.local_addr().unwrap().as_socket().unwrap();
    let filler = TcpStream::connect(hole_addr).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    (hole, filler, listener, hole_addr, port)
}

/// One race on `lp`: its report and how long it took.
fn race(lp: &EventLoop, pre: &Preconnection) -> (Vec<AttemptReport>, Duration) {
    let t = Instant::now();
    let conn = pre.initiate(Box::new(Quiet)).unwrap();
    lp.run().unwrap();
    (conn.attempts().to_vec(), t.elapsed())
}

#[test]
fn the_second_race_skips_the_blackholed_address_and_export_carries_it() {
    let (_hole, _filler, listener, hole_addr, port) = bed();
    let lp = EventLoop::new().unwrap();
    let remotes = [endpoint("::1", hole_addr.port()), endpoint("127.0.0.1", port)];
    let pre = Preconnection::new(&lp, &remotes, None, None).unwrap();

    // First race: IPv6 first, IPv4 at the attempt delay (250 ms).
    let (a, took) = race(&lp, &pre);
    assert_eq!(a[0].address, hole_addr);
    assert_eq!((a[0].outcome, a[1].outcome), (AttemptOutcome::Cancelled, AttemptOutcome::Won));
    assert!(a[1].started_us >= 250_000, "{a:?}");
    assert!(took >= Duration::from_millis(250));
    assert!(a.iter().all(|r| r.history.is_none()), "history knew nothing yet: {a:?}");
    assert_eq!(lp.history_len(), 2);
    assert!(lp.history_memory() > 0);

    // Second and third: IPv4 first, at once.
    for _ in 0..2 {
        let (a, _) = race(&lp, &pre);
        assert_eq!(a[0].address.port(), port, "{a:?}");
        assert_eq!(a[0].outcome, AttemptOutcome::Won);
        assert!(a[0].started_us < 5_000, "{a:?}");
        // The report says why: IPv4 connected before, with its RTT.
        let note = a[0].history.expect("history knew IPv4");
        assert!(note.used && note.srtt_us.is_some() && note.failed.is_none(), "{note:?}");
        assert!(note.to_string().contains(" ms RTT, used, "), "{note}");
    }
    while listener.accept().is_ok() {}

    // Exported, imported by another loop: its first race skips IPv6 too.
    let text = lp.export_history();
    assert!(text.starts_with("taps-racing-history 1\n"), "{text}");
    let other = EventLoop::new().unwrap();
    assert_eq!(other.import_history(&text).unwrap(), 2);
    let pre2 = Preconnection::new(&other, &remotes, None, None).unwrap();
    let (a, _) = race(&other, &pre2);
    assert_eq!(a[0].address.port(), port, "{a:?}");
    assert!(other.import_history("taps-racing-history 9\n").is_err());

    // Off: IPv6 first again. Cleared: nothing kept.
    lp.set_history(false);
    let (a, _) = race(&lp, &pre);
    assert_eq!(a[0].address, hole_addr, "{a:?}");
    lp.set_history(true);
    lp.clear_history();
    assert_eq!(lp.history_len(), 0);
    let (a, _) = race(&lp, &pre);
    assert_eq!(a[0].address, hole_addr, "{a:?}");
    while listener.accept().is_ok() {}
}

#[test]
fn with_rtts_known_a_newly_blackholed_address_costs_the_minimum_delay() {
    // Both addresses connected before (sub-ms RTTs on loopback); then IPv6
    // stops answering: the delay is 100 ms, not 250 ms.
    let listener6 = TcpListener::bind("[::1]:0").unwrap();
    listener6.set_nonblocking(true).unwrap();
    let listener4 = TcpListener::bind("127.0.0.1:0").unwrap();
    listener4.set_nonblocking(true).unwrap();
    let (p6, p4) = (listener6.local_addr().unwrap().port(), listener4.local_addr().unwrap().port());
    let lp = EventLoop::new().unwrap();
    let remotes = [endpoint("::1", p6), endpoint("127.0.0.1", p4)];
    let pre = Preconnection::new(&lp, &remotes, None, None).unwrap();
    let (a, _) = race(&lp, &pre);
    assert_eq!((a.len(), a[0].outcome), (1, AttemptOutcome::Won), "{a:?}");
    // IPv4 learns its RTT too.
    let pre4 = Preconnection::new(&lp, &[endpoint("127.0.0.1", p4)], None, None).unwrap();
    let (a, _) = race(&lp, &pre4);
    assert_eq!(a[0].outcome, AttemptOutcome::Won);
    // Now IPv6 is a blackhole: a full accept queue on the same port.
    drop(listener6);
    let hole = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
    hole.set_only_v6(true).unwrap();
    hole.bind(&format!("[::1]:{p6}").parse::<SocketAddr>().unwrap().into()).unwrap();
    hole.listen(0).unwrap();
    let _filler = TcpStream::connect(format!("[::1]:{p6}")).unwrap();
    let (a, _) = race(&lp, &pre);
    assert_eq!(a[0].address.port(), p6, "{a:?}");
    assert_eq!(a[1].outcome, AttemptOutcome::Won, "{a:?}");
    assert!((100_000..200_000).contains(&a[1].started_us), "{a:?}");
}

#[test]
fn a_repaired_ipv6_is_used_again_within_8_races() {
    let (hole, filler, listener4, hole_addr, port) = bed();
    let lp = EventLoop::new().unwrap();
    let remotes = [endpoint("::1", hole_addr.port()), endpoint("127.0.0.1", port)];
    let pre = Preconnection::new(&lp, &remotes, None, None).unwrap();
    let (a, _) = race(&lp, &pre);
    assert_eq!((a[0].address, a[0].outcome), (hole_addr, AttemptOutcome::Cancelled), "{a:?}");
    // Repaired: a listener that accepts on the same [::1] port.
    drop(filler);
    drop(hole);
    let listener6 = TcpListener::bind(hole_addr).unwrap();
    listener6.set_nonblocking(true).unwrap();
    // Races 2 to 8 still go to IPv4 first (the failure counts for 8 races
    // or 30 s); the 8th after the failing one attempts IPv6 at its turn,
    // and it wins.
    let mut used_ipv6_at = None;
    for n in 2..=9 {
        let (a, took) = race(&lp, &pre);
        assert!(took < Duration::from_millis(200), "race {n}: {a:?}");
        if a[0].address == hole_addr && a[0].outcome == AttemptOutcome::Won {
            used_ipv6_at = Some(n);
            break;
        }
        assert_eq!(a[0].address.port(), port, "race {n}: {a:?}");
        while listener4.accept().is_ok() {}
    }
    assert_eq!(used_ipv6_at, Some(9));
    while listener6.accept().is_ok() {}
}

/// A pool on the same loop uses the same history: after one race learnt
/// that [::1] drops SYNs, the pool's race connects over IPv4 at once, not
/// after the 250 ms attempt delay.
#[test]
fn a_pool_uses_the_loops_history() {
    let (_hole, _filler, listener, hole_addr, port) = bed();
    let lp = EventLoop::new().unwrap();
    let remotes = [endpoint("::1", hole_addr.port()), endpoint("127.0.0.1", port)];
    let pre = Preconnection::new(&lp, &remotes, None, None).unwrap();
    let (a, _) = race(&lp, &pre);
    assert_eq!((a[0].address, a[1].outcome), (hole_addr, AttemptOutcome::Won), "{a:?}");

    let t = Instant::now();
    let pool = ConnectionPool::new(&pre, &PoolOptions { buffer_size: 1, race_count: 1, ..Default::default() }, None).unwrap();
    while pool.buffered() < 1 && t.elapsed() < Duration::from_secs(5) {
        lp.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(pool.buffered(), 1);
    assert!(t.elapsed() < Duration::from_millis(200), "IPv4 first, not after the attempt delay: {:?}", t.elapsed());
    drop(pool);
    while listener.accept().is_ok() {}
}
