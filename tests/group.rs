//! Connection groups: building K members by racing, assignment policies,
//! capacity, failover, rebuild with backoff; mocked under the manual clock
//! (every time exact to the µs) and on real loopback sockets. What the C
//! API adds to a group (GroupEvent and GroupMemberMetrics, NULL and
//! out-of-range arguments, freeing: from an event callback, with a
//! rebuild in flight, the loop first) is in c-tests/test_mock_group.c.
//!
//! The mock protocol (tests/seq) numbers attempts by start order across
//! the group: the log says "start #4 127.0.0.2 at 1600000", "cancel #4",
//! and the handle the test reports for attempt #i is 100 + i ("close 104
//! fd -1"). Group events are recorded as strings and compared exactly:
//!
//!   "joined 2 ct 40000"      MemberJoined, member 2, connect time 40 ms
//!   "failed 1 streams 3"     MemberFailed, member 1 carried 3 open streams
//!   "all failed"             AllFailed
//!   "recovered 4"            Recovered, member 4 joined
//!   "rebuild failed 500000"  RebuildFailed, the next race waits 500 ms

mod seq;

use seq::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use taps_racing::api::*;

const MS: u64 = 1000;
const HOSTS: [&str; 3] = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

fn event_str(e: &GroupEvent) -> String {
    match e.kind {
        GroupEventKind::MemberJoined => format!("joined {} ct {}", e.member, e.connect_time_us),
        GroupEventKind::MemberFailed => format!("failed {} streams {}", e.member, e.streams),
        GroupEventKind::AllFailed => "all failed".into(),
        GroupEventKind::Recovered => format!("recovered {}", e.member),
        GroupEventKind::RebuildFailed => format!("rebuild failed {}", e.connect_time_us),
    }
}

fn gopts(size: u32, policy: AssignPolicy, capacity: u32) -> GroupOptions {
    GroupOptions { size, policy: policy as u32, capacity, ..Default::default() }
}

/// "relay" and the candidates HOSTS[..n_hosts], and a group with `opts`
/// whose events are recorded. Runs nothing.
fn init(n_hosts: usize, opts: GroupOptions) -> (Setup, ConnectionGroup) {
    let s = seq::setup(&HOSTS[..n_hosts], true);
    let ev = Arc::clone(&s.events);
    let mock = Arc::clone(&s.mock);
    let on_event = move |e: &GroupEvent| {
        // The fields a kind does not use are 0.
        assert!(e.kind == GroupEventKind::MemberFailed || e.streams == 0, "{e:?}");
        assert!(
            matches!(e.kind, GroupEventKind::MemberJoined | GroupEventKind::RebuildFailed) || e.connect_time_us == 0,
            "{e:?}"
        );
        assert!(!matches!(e.kind, GroupEventKind::AllFailed | GroupEventKind::RebuildFailed) || e.member == 0, "{e:?}");
        record(&ev, &mock, event_str(e));
    };
    let g = ConnectionGroup::new(s.pre.as_ref().unwrap(), &opts, Some(Box::new(on_event))).unwrap();
    (s, g)
}

/// init, run, and attempts #0 to #k-1 ready: k members, joined at the
/// loop's time in that order.
fn build(n_hosts: usize, opts: GroupOptions, k: usize) -> (Setup, ConnectionGroup) {
    let (s, g) = init(n_hosts, opts);
    s.run();
    for i in 0..k {
        s.ready(i);
    }
    s.run();
    (s, g)
}

fn expect_assign(g: &ConnectionGroup, want: &[MemberId]) {
    let got: Vec<MemberId> = want.iter().map(|_| g.assign().unwrap()).collect();
    assert_eq!(got, want, "assignments");
}

fn assign_fails(g: &ConnectionGroup, e: Error) {
    assert_eq!(g.assign().err(), Some(e));
}

/// Member metrics: streams assigned, open, failed; live.
#[track_caller]
fn check_metrics(g: &ConnectionGroup, m: MemberId, assigned: u64, open: u32, failed: u64, live: bool) {
    let mm = g.metrics(m).unwrap();
    assert_eq!(
        (mm.streams_assigned, mm.streams_open, mm.streams_failed, g.members().contains(&m)),
        (assigned, open, failed, live),
        "member {m}: assigned, open, failed, live"
    );
}

/// K = 2 (the default) over two candidates: both attempts start at once, to
/// distinct addresses; each joins when ready, with its connect time; then
/// round robin alternates exactly, in join order. Nothing is pending once
/// the group is built.
#[test]
fn members_are_raced_diverse_and_round_robin_alternates_exactly() {
    let (s, g) = init(2, GroupOptions::default());
    assign_fails(&g, Error::NoMember); // nothing joined yet
    s.run();
    s.expect_log(&["start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0"]);
    assert!(g.members().is_empty());
    assign_fails(&g, Error::NoMember);

    s.ready_at(20 * MS, 1);
    assert_eq!(g.members(), vec![0]);
    let a = 0;
    s.expect_events_from(0, &["joined 0 ct 20000"]);
    // One member: every stream goes to it (degraded until the second).
    expect_assign(&g, &[a, a]);
    s.ready_at(40 * MS, 0);
    let m = g.members();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0], a);
    let b = m[1];
    assert_ne!(b, a);
    s.expect_events_from(0, &["joined 0 ct 20000", "joined 1 ct 40000"]);
    // No attempt was cancelled or closed: both became members.
    s.expect_log(&["start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0"]);

    // The rotation goes on after a (chosen last): b, a, b, a, ...
    expect_assign(&g, &[b, a, b, a, b, a, b, a]);
    check_metrics(&g, a, 6, 6, 0, true);
    check_metrics(&g, b, 4, 4, 0, true);
    let (ma, mb) = (g.metrics(a).unwrap(), g.metrics(b).unwrap());
    assert_eq!((ma.connect_time, ma.joined_at), (20 * MS, 20 * MS));
    assert_eq!((mb.connect_time, mb.joined_at), (40 * MS, 40 * MS));
    // Mock members have no fd.
    assert_eq!(g.member(a).unwrap().0, None);

    // Released streams do not disturb the order.
    g.release_stream(a, false).unwrap();
    g.release_stream(a, false).unwrap();
    expect_assign(&g, &[b, a, b, a]);

    // Nothing is pending, however long we wait.
    assert_eq!(s.timeout(), None);
    assert!(!s.lp.has_work(), "nothing pending once K members are in");
    s.advance(100 * S);
    assert_eq!(s.log().len(), 2);
    assert_eq!(s.n_events(), 2);
    drop(g);
    s.run();
    // Dropping the group closed both members through the protocol (in no
    // particular order).
    assert_eq!(s.log().len(), 4);
    assert!(s.log_has("close 100 fd -1") && s.log_has("close 101 fd -1"), "{:?}", s.log());
}

/// Members are diverse: the K first attempts go to K distinct remote
/// addresses (K = 2 and K = 3 over 127.0.0.1, .2, .3), all at once, not one
/// Connection Attempt Delay apart.
#[test]
fn members_are_raced_at_once_to_distinct_addresses() {
    for k in 2..=3usize {
        let (s, _g) = init(3, gopts(k as u32, AssignPolicy::RoundRobin, 256));
        s.run();
        assert_eq!(s.starts(), k);
        let a = s.mock.attempts.lock().unwrap();
        for i in 0..k {
            assert_eq!(a[i].at_us, 0);
            for j in 0..i {
                assert_ne!(a[i].addr, a[j].addr, "attempts #{i} and #{j}");
            }
        }
        drop(a);
        if k == 2 {
            s.expect_log(&["start #0 127.0.0.1 at 0", "start #1 127.0.0.2 at 0"]);
        }
    }
}

/// Least loaded: the member with the fewest open streams; equal loads
/// rotate (after the member chosen last).
#[test]
fn least_loaded_picks_the_fewest_open_streams() {
    let (_s, g) = build(3, gopts(3, AssignPolicy::LeastLoaded, 256), 3);
    let m = g.members();
    assert_eq!(m.len(), 3);
    let (a, b, c) = (m[0], m[1], m[2]);
    expect_assign(&g, &[a, b, c, a, b, c]); // equal loads rotate
    // b: 2 → 0 open (one ended failed).
    g.release_stream(b, false).unwrap();
    g.release_stream(b, true).unwrap();
    check_metrics(&g, b, 2, 0, 1, true);
    expect_assign(&g, &[b, b]); // b has the fewest open until it has 2
    expect_assign(&g, &[c, a]); // 2, 2, 2: the tie rotates after b
    // a: 3 → 0 (b: 2, c: 3).
    for _ in 0..3 {
        g.release_stream(a, false).unwrap();
    }
    // a: 0, b: 2, c: 3 → a, a (a: 2), then a and b tie at 2: after a
    // (chosen last) comes b.
    expect_assign(&g, &[a, a, b]);
    check_metrics(&g, a, 5, 2, 0, true);
    check_metrics(&g, b, 5, 3, 1, true);
    check_metrics(&g, c, 3, 3, 0, true);
    // Distribution under churn: with releases the loads stay within one.
    for round in 0..300 {
        let x = g.assign().unwrap();
        if round % 3 == 0 {
            g.release_stream(x, false).unwrap();
        }
        let open: Vec<u32> = m.iter().map(|&i| g.metrics(i).unwrap().streams_open).collect();
        assert!(open.iter().max().unwrap() - open.iter().min().unwrap() <= 1, "round {round}: {open:?}");
    }
}

/// Weighted with weights set by set_weight: 3 and 1 give a, a, b, a
/// (smooth weighted round robin) in every period of 4; weight 0 is never
/// chosen; when no member may be chosen, NoMember.
#[test]
fn weighted_follows_the_weights_set() {
    let (s, g) = init(2, gopts(2, AssignPolicy::Weighted, 256));
    s.run();
    s.advance(10 * MS);
    s.ready(0);
    s.ready(1);
    s.run();
    let m = g.members();
    assert_eq!(m.len(), 2);
    let (a, b) = (m[0], m[1]);
    assert_eq!(g.metrics(a).unwrap().weight, 100, "10 ms: the derived weight");
    g.set_weight(a, 3).unwrap();
    g.set_weight(b, 1).unwrap();
    assert_eq!((g.metrics(a).unwrap().weight, g.metrics(b).unwrap().weight), (3, 1));
    for _ in 0..10 {
        expect_assign(&g, &[a, a, b, a]);
    }
    check_metrics(&g, a, 30, 30, 0, true);
    check_metrics(&g, b, 10, 10, 0, true);
    // 1:1
    g.set_weight(a, 5).unwrap();
    g.set_weight(b, 5).unwrap();
    expect_assign(&g, &[a, b, a, b]);
    // Weight 0: never chosen, its streams still counted.
    g.set_weight(a, 0).unwrap();
    expect_assign(&g, &[b, b, b, b, b]);
    g.release_stream(a, false).unwrap();
    check_metrics(&g, a, 32, 31, 0, true);
    g.set_weight(b, 0).unwrap();
    assign_fails(&g, Error::NoMember);
    g.set_weight(a, 1).unwrap();
    expect_assign(&g, &[a]);
}

/// Each member carries at most `capacity` open streams: full members are
/// skipped (round robin keeps its order), every member full gives
/// AllMembersFull, a release frees a slot. The same for least loaded and
/// weighted; the default capacity is 256.
#[test]
fn capacity_is_honoured() {
    {
        let (_s, g) = build(2, gopts(2, AssignPolicy::RoundRobin, 2), 2);
        expect_assign(&g, &[0, 1, 0, 1]);
        assign_fails(&g, Error::AllMembersFull);
        assign_fails(&g, Error::AllMembersFull);
        check_metrics(&g, 0, 2, 2, 0, true); // failed assignments are not counted
        g.release_stream(1, false).unwrap();
        expect_assign(&g, &[1]); // the freed slot
        assign_fails(&g, Error::AllMembersFull);
        g.release_stream(0, true).unwrap();
        expect_assign(&g, &[0]);
        check_metrics(&g, 0, 3, 2, 1, true);
        check_metrics(&g, 1, 3, 2, 0, true);
    }
    {
        // Round robin over 3 with capacity 2: a full member is skipped
        // without disturbing the others' order.
        let (_s, g) = build(3, gopts(3, AssignPolicy::RoundRobin, 2), 3);
        expect_assign(&g, &[0, 1, 2, 0, 1]); // 0: 2, 1: 2, 2: 1
        g.release_stream(0, false).unwrap();
        expect_assign(&g, &[2, 0]); // 1 is full: skipped
        assign_fails(&g, Error::AllMembersFull);
        g.release_stream(1, false).unwrap();
        g.release_stream(2, false).unwrap();
        expect_assign(&g, &[1, 2]); // 1 is back in its place
    }
    {
        // Least loaded, capacity 1.
        let (_s, g) = build(2, gopts(2, AssignPolicy::LeastLoaded, 1), 2);
        expect_assign(&g, &[0, 1]);
        assign_fails(&g, Error::AllMembersFull);
        g.release_stream(1, false).unwrap();
        expect_assign(&g, &[1]);
        assign_fails(&g, Error::AllMembersFull);
    }
    {
        // Weighted 3:1, capacity 2: a is full after two, b takes the rest.
        let (_s, g) = build(2, gopts(2, AssignPolicy::Weighted, 2), 2);
        g.set_weight(0, 3).unwrap();
        g.set_weight(1, 1).unwrap();
        expect_assign(&g, &[0, 0, 1, 1]);
        assign_fails(&g, Error::AllMembersFull);
        g.release_stream(0, false).unwrap();
        expect_assign(&g, &[0]);
    }
    {
        // The default capacity is 256 per member.
        let (_s, g) = build(2, GroupOptions::default(), 2);
        for _ in 0..512 {
            g.assign().unwrap();
        }
        assign_fails(&g, Error::AllMembersFull);
        check_metrics(&g, 0, 256, 256, 0, true);
        check_metrics(&g, 1, 256, 256, 0, true);
    }
}

/// mark_failed: the member leaves the rotation at once (the very next
/// assignment goes to the others), its connection is closed through the
/// protocol, MemberFailed carries the streams it had open, which its
/// metrics count as failed; a rebuild races one replacement at once, which
/// joins last with a new id and restores K.
#[test]
fn a_failure_moves_streams_at_once_and_the_rebuild_restores_k() {
    let (s, g) = build(3, gopts(3, AssignPolicy::RoundRobin, 256), 3);
    s.expect_events_from(0, &["joined 0 ct 0", "joined 1 ct 0", "joined 2 ct 0"]);
    expect_assign(&g, &[0, 1, 2, 0, 1, 2, 0]);
    g.release_stream(1, true).unwrap(); // 1: one ended failed, one open
    s.advance_to(3 * S);
    g.mark_failed(1).unwrap();
    // At once, before the loop runs: the next streams go to 2 and 0.
    expect_assign(&g, &[2, 0, 2, 0]);
    check_metrics(&g, 1, 2, 0, 2, false);
    assert_eq!(g.members(), vec![0, 2]);
    assert!(matches!(g.mark_failed(1), Err(Error::InvalidArgument(_))), "not live any more");
    assert!(matches!(g.release_stream(1, false), Err(Error::InvalidArgument(_))), "nothing open");
    s.run();
    s.expect_events_from(3, &["failed 1 streams 1"]);
    assert_eq!(s.events.lock().unwrap()[3].1, 3 * S);
    // Closed, then one replacement raced at once.
    let log = s.log();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(log[3], "close 101 fd -1");
    assert_eq!(s.starts(), 4);
    assert!(log[4].starts_with("start #3 "), "{log:?}");
    assert_eq!(s.attempt(3).1, 3 * S);
    // The replacement joins 15 ms later.
    s.advance(15 * MS);
    s.ready(3);
    s.run();
    s.expect_events_from(3, &["failed 1 streams 1", "joined 3 ct 15000"]);
    assert_eq!(g.members(), vec![0, 2, 3]);
    let m3 = g.metrics(3).unwrap();
    assert_eq!((m3.joined_at, m3.connect_time), (3 * S + 15 * MS, 15 * MS));
    // The failed member's metrics stay readable.
    check_metrics(&g, 1, 2, 0, 2, false);
    // Round robin goes on after 0 (chosen last): 2, 3, 0, ...
    expect_assign(&g, &[2, 3, 0, 2, 3, 0]);
    assert_eq!(s.timeout(), None);
    s.advance(100 * S);
    assert_eq!(s.starts(), 4);
    assert_eq!(s.n_events(), 5);
}

/// Fail every live attempt from #from on with `errno` until none is left
/// (each failure may start the next candidate at once).
fn fail_all_from(s: &Setup, from: usize, errno: i32) {
    loop {
        let live: Vec<usize> = (from..s.starts()).filter(|&i| s.mock.attempts.lock().unwrap()[i].live).collect();
        if live.is_empty() {
            // A start owed to a failure comes 10 ms after the previous
            // start (RFC 8305 §5): let it come, and fail it too.
            match s.timeout() {
                Some(t) if t <= Duration::from_millis(10) && !t.is_zero() => {
                    s.advance(t.as_micros() as u64);
                    continue;
                }
                _ => return,
            }
        }
        for i in live {
            s.fail(i, errno);
        }
        s.run();
    }
}

/// Every member fails: AllFailed once for the outage, NoMember while none
/// is live; a failed rebuild race reports RebuildFailed with the backoff
/// (500 ms, then 1 s: the multiplier), no attempt starts before the
/// backoff ends and the next race starts exactly when it ends; Recovered
/// when a member joins again; a later outage is reported again.
#[test]
fn all_failed_is_reported_once_and_recovers_after_backoff() {
    let (s, g) = build(2, GroupOptions { backoff_initial_ms: 500, ..Default::default() }, 2);
    expect_assign(&g, &[0, 1, 0]);
    s.advance_to(S);
    g.mark_failed(0).unwrap();
    g.mark_failed(1).unwrap();
    assign_fails(&g, Error::NoMember);
    s.run();
    s.expect_events_from(0, &["joined 0 ct 0", "joined 1 ct 0", "failed 0 streams 2", "failed 1 streams 1", "all failed"]);
    check_metrics(&g, 0, 2, 0, 2, false);
    check_metrics(&g, 1, 1, 0, 1, false);
    assert!(g.members().is_empty());
    assign_fails(&g, Error::NoMember);
    // The rebuild race is under way; every attempt it starts fails.
    assert!(s.starts() > 2);
    assert_eq!(s.attempt(2).1, S);
    s.advance(100 * MS);
    fail_all_from(&s, 2, libc::ECONNREFUSED);
    let n1 = s.starts();
    s.expect_events_from(5, &["rebuild failed 500000"]);
    // Its attempts came 10 ms apart once they failed at once.
    let t1 = s.events.lock().unwrap()[5].1;
    assert!((S + 100 * MS..=S + 130 * MS).contains(&t1), "{t1}");
    assign_fails(&g, Error::NoMember);
    // No race before the backoff ends; one exactly when it ends.
    assert_eq!(s.timeout(), Some(Duration::from_millis(500)));
    s.advance(500 * MS - 1);
    assert_eq!(s.starts(), n1);
    assert_eq!(s.timeout(), Some(Duration::from_micros(1)));
    s.advance(1);
    assert!(s.starts() > n1);
    for i in n1..s.starts() {
        assert_eq!(s.attempt(i).1, t1 + 500 * MS);
    }
    // That race fails too: the backoff doubles; still one AllFailed.
    s.advance(50 * MS);
    fail_all_from(&s, n1, libc::ETIMEDOUT);
    let n2 = s.starts();
    s.expect_events_from(5, &["rebuild failed 500000", "rebuild failed 1000000"]);
    s.advance(S - 1);
    assert_eq!(s.starts(), n2);
    s.advance(1);
    assert!(s.starts() > n2);
    let t2 = s.events.lock().unwrap()[6].1;
    let t3 = t2 + S;
    assert_eq!(s.attempt(n2).1, t3);
    // A member joins: Recovered, and streams are assigned again.
    s.advance(20 * MS);
    s.ready(n2);
    s.run();
    s.expect_events_from(7, &["joined 2 ct 20000", "recovered 2"]);
    assert_eq!(s.events.lock().unwrap()[8].1, t3 + 20 * MS);
    expect_assign(&g, &[2, 2]);
    // The group goes on until K members are back: the second one joins
    // without Recovered.
    for _ in 0..8 {
        if g.members().len() == 2 {
            break;
        }
        let live = (n2..s.starts()).rev().find(|&i| s.mock.attempts.lock().unwrap()[i].live).expect("a live attempt");
        s.ready(live);
        s.run();
    }
    assert_eq!(g.members().len(), 2);
    s.expect_events_from(7, &["joined 2 ct 20000", "recovered 2", "joined 3 ct 20000"]);
    assert_eq!(s.timeout(), None);
    // A new outage is reported again, once; the backoff starts over at
    // 500 ms after a member joined.
    let (mark, n3) = (s.n_events(), s.starts());
    g.mark_failed(2).unwrap();
    g.mark_failed(3).unwrap();
    s.run();
    s.expect_events_from(mark, &["failed 2 streams 2", "failed 3 streams 0", "all failed"]);
    fail_all_from(&s, n3, libc::ECONNREFUSED);
    s.expect_events_from(mark, &["failed 2 streams 2", "failed 3 streams 0", "all failed", "rebuild failed 500000"]);
    let all_failed = s.events.lock().unwrap().iter().filter(|e| e.0 == "all failed").count();
    assert_eq!(all_failed, 2, "once per outage");
}

/// A group of 2 to a 127.0.0.1 listener builds; its members' fds are
/// connected to the listener; the server closes one member's connection →
/// MemberFailed for that member, new streams go to the other, and the
/// group rebuilds to 2 with a new connection.
#[test]
fn a_member_closed_by_the_peer_fails_over_on_real_sockets() {
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    /// The local (peer = false) or remote (peer = true) port of a socket.
    fn sock_port(fd: i32, peer: bool) -> u16 {
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let sa = &mut ss as *mut libc::sockaddr_storage as *mut libc::sockaddr;
        // SAFETY: `ss` is large enough for any socket address.
        let rc = unsafe { if peer { libc::getpeername(fd, sa, &mut len) } else { libc::getsockname(fd, sa, &mut len) } };
        assert_eq!(rc, 0);
        assert_eq!(i32::from(ss.ss_family), libc::AF_INET);
        // SAFETY: an AF_INET address.
        u16::from_be(unsafe { (*(sa as *const libc::sockaddr_in)).sin_port })
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname("127.0.0.1").unwrap().with_port(port).unwrap();
    let pre = Preconnection::new(&lp, &[ep], None, None).unwrap();
    let ev: Arc<Mutex<Vec<GroupEvent>>> = Arc::new(Mutex::new(Vec::new()));
    let e2 = Arc::clone(&ev);
    let opts = GroupOptions { backoff_initial_ms: 10, ..Default::default() };
    let g = ConnectionGroup::new(&pre, &opts, Some(Box::new(move |e: &GroupEvent| e2.lock().unwrap().push(*e)))).unwrap();
    drop(pre);
    let count = |k: GroupEventKind| ev.lock().unwrap().iter().filter(|e| e.kind == k).count();
    let pump_until = |cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() && Instant::now() < deadline {
            lp.run_once(Some(Duration::from_millis(10))).unwrap();
        }
    };

    pump_until(&|| g.members().len() == 2);
    let ids = g.members();
    assert_eq!(ids.len(), 2);
    assert_eq!((count(GroupEventKind::MemberJoined), count(GroupEventKind::MemberFailed)), (2, 0));
    let fd0 = g.member(ids[0]).unwrap().0.unwrap();
    let fd1 = g.member(ids[1]).unwrap().0.unwrap();
    assert_ne!(fd0, fd1);
    assert_eq!((sock_port(fd0, true), sock_port(fd1, true)), (port, port));
    assert_eq!(g.member(ids[0]).unwrap().1.unwrap().port(), port);
    assert!(g.metrics(ids[0]).unwrap().connect_time < 5 * S);

    let mut srv = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while srv.len() < 2 && Instant::now() < deadline {
        match listener.accept() {
            Ok((c, _)) => srv.push(c),
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    assert_eq!(srv.len(), 2);
    // The server closes member a's connection.
    let (a, b) = (ids[0], ids[1]);
    let mine = sock_port(fd0, false);
    let victim = srv.iter().position(|c| sock_port(c.as_raw_fd(), true) == mine).unwrap();
    assert_eq!(g.assign().unwrap(), a);
    drop(srv.remove(victim));
    pump_until(&|| count(GroupEventKind::MemberFailed) == 1);
    let failed: Vec<GroupEvent> = ev.lock().unwrap().iter().filter(|e| e.kind == GroupEventKind::MemberFailed).copied().collect();
    assert_eq!(failed.len(), 1, "the server closed member {a}'s connection (FIN): {:?}", ev.lock().unwrap());
    assert_eq!(failed[0].member, a as u64);
    assert!(!g.members().contains(&a));
    assert_eq!(g.metrics(a).unwrap().streams_failed, 1);
    // New streams go to b while the group rebuilds (or to the newcomer).
    assert_ne!(g.assign().unwrap(), a);
    pump_until(&|| g.members().len() == 2);
    let now = g.members();
    assert_eq!(now.len(), 2, "rebuilt");
    assert_eq!(count(GroupEventKind::MemberJoined), 3);
    assert_eq!(count(GroupEventKind::AllFailed), 0);
    assert!(now.contains(&b) && !now.contains(&a));
    for m in now {
        let fd = g.member(m).unwrap().0.unwrap();
        assert_eq!(sock_port(fd, true), port);
    }
}
