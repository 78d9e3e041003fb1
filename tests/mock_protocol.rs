//! User protocols and resolvers under the manual clock, through the Rust
//! API: exact schedules, cancels, selection properties, failover branches.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

/// A protocol that records every call and completes only when told.
#[derive(Default)]
struct Mock {
    log: Mutex<Vec<String>>,
    attempts: Mutex<Vec<ProtocolAttempt>>,
    clock: Mutex<Option<Arc<EventLoop>>>,
}

impl Mock {
    fn at(&self) -> u64 {
        self.clock.lock().unwrap().as_ref().map_or(0, |l| l.now_us() / 1000)
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn attempt(&self, i: usize) -> ProtocolAttempt {
        self.attempts.lock().unwrap()[i].clone()
    }
}

struct Named(&'static str, Arc<Mock>);

impl Protocol for Named {
    fn start(&self, attempt: ProtocolAttempt, remote: SocketAddr, path: &PathInfo) -> std::result::Result<(), i32> {
        let m = &self.1;
        let from = path.local.map(|l| format!(" from {}", l.ip())).unwrap_or_default();
        m.log.lock().unwrap().push(format!("{} start {}{} at {}", self.0, remote, from, m.at()));
        m.attempts.lock().unwrap().push(attempt);
        Ok(())
    }
    fn cancel(&self, attempt: &ProtocolAttempt) {
        self.1.log.lock().unwrap().push(format!("{} cancel #{}", self.0, attempt.index()));
    }
    fn close(&self, c: ProtocolConnection) {
        self.1.log.lock().unwrap().push(format!("{} close {}", self.0, c.data));
    }
}

#[derive(Default)]
struct Outcome {
    ready: usize,
    failed: usize,
    error: Option<Error>,
}

struct H(Arc<Mutex<Outcome>>);

impl ConnectionHandler for H {
    fn ready(&mut self, _: &Connection) {
        self.0.lock().unwrap().ready += 1;
    }
    fn establishment_error(&mut self, c: &Connection) {
        let mut o = self.0.lock().unwrap();
        o.failed += 1;
        o.error = c.error();
    }
}

fn ep(host: &str) -> RemoteEndpoint {
    let mut e = RemoteEndpoint::new();
    e.with_hostname(host).unwrap().with_port(443).unwrap();
    e
}

/// A loop with a manual clock and the mock registered as a reliable,
/// multistreaming protocol; properties that require multistreaming, so
/// only user protocols race.
fn setup(names: &[&'static str]) -> (Arc<EventLoop>, Arc<Mock>, TransportProperties) {
    let lp = Arc::new(EventLoop::with_manual_clock().unwrap());
    let mock = Arc::new(Mock::default());
    *mock.clock.lock().unwrap() = Some(Arc::clone(&lp));
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    for n in names {
        lp.add_protocol(n, traits, Arc::new(Named(n, Arc::clone(&mock)))).unwrap();
    }
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    (lp, mock, props)
}

fn done(mock: &Arc<Mock>) {
    // Break the Arc cycle mock → loop.
    mock.clock.lock().unwrap().take();
}

#[test]
fn staggered_starts_are_exact_and_the_winner_cancels_the_rest() {
    let (lp, mock, props) = setup(&["mock"]);
    let pre = Preconnection::new(&lp, &[ep("::1"), ep("127.0.0.1"), ep("127.0.0.2")], Some(&props), None).unwrap();
    let out = Arc::new(Mutex::new(Outcome::default()));
    let conn = pre.initiate(Box::new(H(Arc::clone(&out)))).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.log(), vec!["mock start [::1]:443 at 0"]);
    lp.advance_clock(249_999).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.log().len(), 1, "nothing before 250 ms");
    lp.advance_clock(1).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.log()[1], "mock start 127.0.0.1:443 at 250");
    // The second attempt wins at 260 ms: the first is cancelled, the third never starts.
    lp.advance_clock(10_000).unwrap();
    mock.attempt(1).ready(None, 77);
    lp.run().unwrap();
    assert_eq!(mock.log()[2..], ["mock cancel #0".to_string()]);
    assert_eq!(out.lock().unwrap().ready, 1);
    assert_eq!(conn.protocol_data(), Some(77));
    let a = conn.attempts();
    assert_eq!(a.len(), 2);
    assert_eq!((a[1].started_us, a[1].ended_us, a[1].outcome), (250_000, Some(260_000), AttemptOutcome::Won));
    assert_eq!(a[0].outcome, AttemptOutcome::Cancelled);
    assert_eq!(a[1].protocol.to_str().unwrap(), "mock");
    // Advancing further starts nothing: the race is over.
    lp.advance_clock(1_000_000).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.log().len(), 3);
    drop(conn);
    assert_eq!(mock.log().last().unwrap(), "mock close 77");
    done(&mock);
}

#[test]
fn a_late_ready_is_closed_and_failures_start_the_next_at_once() {
    let (lp, mock, props) = setup(&["mock"]);
    let pre = Preconnection::new(&lp, &[ep("127.0.0.1"), ep("127.0.0.2"), ep("127.0.0.3")], Some(&props), None).unwrap();
    let out = Arc::new(Mutex::new(Outcome::default()));
    let conn = pre.initiate(Box::new(H(Arc::clone(&out)))).unwrap();
    lp.run().unwrap();
    // Refused 13 ms after its start (past the 10 ms of RFC 8305 §5): the
    // next starts at once.
    lp.advance_clock(13_000).unwrap();
    mock.attempt(0).failed(libc::ECONNREFUSED);
    lp.run().unwrap();
    assert_eq!(mock.log()[1], "mock start 127.0.0.2:443 at 13");
    lp.advance_clock(250_000).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.log()[2], "mock start 127.0.0.3:443 at 263");
    // Both ready in the same tick: the first reported wins, the other is closed.
    mock.attempt(2).ready(None, 3);
    mock.attempt(1).ready(None, 2);
    lp.run().unwrap();
    assert_eq!(out.lock().unwrap().ready, 1);
    assert_eq!(conn.protocol_data(), Some(3));
    assert!(mock.log().contains(&"mock close 2".to_string()), "{:?}", mock.log());
    done(&mock);
}

#[test]
fn protocols_race_by_preference_with_failover_for_avoided_ones() {
    let lp = Arc::new(EventLoop::with_manual_clock().unwrap());
    let mock = Arc::new(Mock::default());
    *mock.clock.lock().unwrap() = Some(Arc::clone(&lp));
    // Three multistreaming protocols (so built-in TCP, which is not, is
    // left out by Require multistreaming): "msg" preserves message
    // boundaries, which the properties Avoid: it becomes failover.
    let plain = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    let msg = ProtocolTraits { reliable: true, preserves_msg_boundaries: true, multistreaming: true };
    lp.add_protocol("msg", msg, Arc::new(Named("msg", Arc::clone(&mock)))).unwrap();
    lp.add_protocol("a", plain, Arc::new(Named("a", Arc::clone(&mock)))).unwrap();
    lp.add_protocol("b", plain, Arc::new(Named("b", Arc::clone(&mock)))).unwrap();
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require).set_preserve_msg_boundaries(Preference::Avoid);
    let mut pre = Preconnection::new(&lp, &[ep("192.0.2.1")], Some(&props), None).unwrap();
    pre.set_racing_type(BranchKind::Protocol, RacingType::Delayed(100_000));
    let out = Arc::new(Mutex::new(Outcome::default()));
    let conn = pre.initiate(Box::new(H(Arc::clone(&out)))).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.log(), vec!["a start 192.0.2.1:443 at 0"]);
    lp.advance_clock(100_000).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.log()[1], "b start 192.0.2.1:443 at 100");
    lp.advance_clock(1_000_000).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.log().len(), 2, "the avoided protocol waits for the others to fail");
    mock.attempt(0).failed(libc::ECONNREFUSED);
    lp.run().unwrap();
    assert_eq!(mock.log().len(), 2);
    mock.attempt(1).failed(libc::ECONNREFUSED);
    lp.run().unwrap();
    assert_eq!(mock.log()[2], "msg start 192.0.2.1:443 at 1100");
    mock.attempt(2).failed(libc::ETIMEDOUT);
    lp.run().unwrap();
    let o = out.lock().unwrap();
    assert_eq!((o.ready, o.failed, o.error), (0, 1, Some(Error::AllAttemptsFailed(libc::ETIMEDOUT))));
    let errnos: Vec<_> = conn.attempts().iter().map(|a| a.os_error).collect();
    assert_eq!(errnos, vec![libc::ECONNREFUSED, libc::ECONNREFUSED, libc::ETIMEDOUT]);
    drop(conn);
    done(&mock);
}

/// A resolver that answers when told.
#[derive(Default)]
struct MockResolver {
    queries: Mutex<Vec<(ResolverQuery, String)>>,
}

impl Resolver for MockResolver {
    fn resolve(&self, query: ResolverQuery, host: &str, _: Family) -> std::result::Result<(), i32> {
        self.queries.lock().unwrap().push((query, host.to_string()));
        Ok(())
    }
}

#[test]
fn resolution_delay_with_a_user_resolver() {
    let (lp, mock, props) = setup(&["mock"]);
    let r = Arc::new(MockResolver::default());
    lp.set_resolver(Some(Arc::clone(&r) as Arc<dyn Resolver>));
    let pre = Preconnection::new(&lp, &[ep("example.test")], Some(&props), None).unwrap();
    let out = Arc::new(Mutex::new(Outcome::default()));
    let conn = pre.initiate(Box::new(H(Arc::clone(&out)))).unwrap();
    let q = |f: Family| r.queries.lock().unwrap().iter().find(|(q, _)| q.family() == f).unwrap().0.clone();
    assert_eq!(r.queries.lock().unwrap().len(), 2);
    // Loopback addresses: routable on any machine, so RFC 6724 sorts IPv6 first.
    q(Family::V4).answer(&["127.0.0.1".parse::<IpAddr>().unwrap()]);
    lp.run().unwrap();
    assert!(mock.log().is_empty(), "waits the Resolution Delay for AAAA");
    lp.advance_clock(30_000).unwrap();
    q(Family::V6).answer(&["::1".parse::<IpAddr>().unwrap()]);
    lp.run().unwrap();
    assert_eq!(mock.log(), vec!["mock start [::1]:443 at 30"]);
    drop(conn);
    done(&mock);
}

#[test]
fn no_protocol_left_is_a_clear_error() {
    let lp = EventLoop::with_manual_clock().unwrap();
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    let pre = Preconnection::new(&lp, &[ep("192.0.2.1")], Some(&props), None).unwrap();
    let out = Arc::new(Mutex::new(Outcome::default()));
    assert_eq!(pre.initiate(Box::new(H(out))).err(), Some(Error::NoCandidates));
}

/// The loop keeps the candidate tree of races on the default path while
/// what it depends on stays the same: a protocol registered later, another
/// protocol racing type and other selection properties each give the next
/// race a tree of its own.
#[test]
fn the_kept_candidate_tree_follows_protocols_and_properties() {
    let (lp, mock, props) = setup(&["a"]);
    let race = |props: &TransportProperties, racing: RacingType| {
        let mut pre = Preconnection::new(&lp, &[ep("192.0.2.1")], Some(props), None).unwrap();
        pre.set_racing_type(BranchKind::Protocol, racing);
        let out = Arc::new(Mutex::new(Outcome::default()));
        let conn = pre.initiate(Box::new(H(out))).unwrap();
        lp.run().unwrap();
        conn
    };
    let starts = |from: usize| -> Vec<String> {
        mock.log()[from..].iter().filter(|l| l.contains(" start ")).map(|l| l.split(' ').next().unwrap().to_string()).collect()
    };
    let c1 = race(&props, RacingType::Immediate);
    assert_eq!(starts(0), ["a"]);
    drop(c1);
    // A protocol registered after the first race races in the next one.
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    lp.add_protocol("b", traits, Arc::new(Named("b", Arc::clone(&mock)))).unwrap();
    let n = mock.log().len();
    let c2 = race(&props, RacingType::Immediate);
    assert_eq!(starts(n), ["a", "b"]);
    drop(c2);
    // The same properties with failover racing: only the first protocol
    // starts while it runs.
    let n = mock.log().len();
    let c3 = race(&props, RacingType::Failover);
    assert_eq!(starts(n), ["a"]);
    drop(c3);
    // Other selection properties: neither protocol preserves message
    // boundaries, so requiring them leaves nothing: a clear error, not the
    // kept tree.
    let mut strict = props.clone();
    strict.set_preserve_msg_boundaries(Preference::Require);
    let pre = Preconnection::new(&lp, &[ep("192.0.2.1")], Some(&strict), None).unwrap();
    let out = Arc::new(Mutex::new(Outcome::default()));
    assert_eq!(pre.initiate(Box::new(H(out))).err(), Some(Error::NoCandidates));
    // And back: the same tree as the second race.
    let n = mock.log().len();
    let c4 = race(&props, RacingType::Immediate);
    assert_eq!(starts(n), ["a", "b"]);
    drop(c4);
    // A protocol that preserves message boundaries races with the others,
    // until the properties Avoid that: then it is the failover, started
    // only when the others have failed.
    let msg = ProtocolTraits { reliable: true, preserves_msg_boundaries: true, multistreaming: true };
    lp.add_protocol("m", msg, Arc::new(Named("m", Arc::clone(&mock)))).unwrap();
    let n = mock.log().len();
    let c5 = race(&props, RacingType::Immediate);
    assert_eq!(starts(n), ["a", "b", "m"]);
    drop(c5);
    let mut avoid = props.clone();
    avoid.set_preserve_msg_boundaries(Preference::Avoid);
    let n = mock.log().len();
    let c6 = race(&avoid, RacingType::Immediate);
    assert_eq!(starts(n), ["a", "b"]);
    drop(c6);
    // A local endpoint is a path of its own, never the kept default tree.
    let mut pre = Preconnection::new(&lp, &[ep("127.0.0.1")], Some(&avoid), None).unwrap();
    let mut local = LocalEndpoint::new();
    local.with_address("127.0.0.1".parse().unwrap());
    pre.add_local_endpoint(&local).unwrap();
    pre.set_racing_type(BranchKind::Protocol, RacingType::Immediate);
    let n = mock.log().len();
    let c7 = pre.initiate(Box::new(H(Arc::new(Mutex::new(Outcome::default()))))).unwrap();
    lp.run().unwrap();
    let log = mock.log();
    assert!(log[n..].iter().filter(|l| l.contains(" start ")).all(|l| l.contains(" from 127.0.0.1 ")), "{log:?}");
    assert_eq!(starts(n), ["a", "b"]);
    drop(c7);
    done(&mock);
}
