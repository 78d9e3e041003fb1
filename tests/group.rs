//! Connection groups: building K members by racing, assignment policies,
//! capacity, failover, rebuild with backoff; mocked under the manual clock
//! and on real loopback sockets.

mod common;

use common::mock_setup;
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

type Events = Arc<Mutex<Vec<GroupEvent>>>;

fn group(pre: &Preconnection, opts: GroupOptions) -> (ConnectionGroup, Events) {
    let ev: Events = Arc::new(Mutex::new(Vec::new()));
    let e2 = Arc::clone(&ev);
    let g = ConnectionGroup::new(pre, &opts, Some(Box::new(move |e: &GroupEvent| e2.lock().unwrap().push(*e)))).unwrap();
    (g, ev)
}

fn kinds(ev: &Events) -> Vec<GroupEventKind> {
    ev.lock().unwrap().iter().map(|e| e.kind).collect()
}

#[test]
fn members_are_raced_diverse_and_round_robin_alternates_exactly() {
    let (lp, mock, pre) = mock_setup(&["127.0.0.1", "127.0.0.2"]);
    let (g, ev) = group(&pre, GroupOptions::default());
    lp.run().unwrap();
    assert_eq!(mock.starts(), 2, "K = 2 attempts at once");
    assert_ne!(mock.addr(0), mock.addr(1), "distinct candidates first");
    lp.advance_clock(20_000).unwrap();
    mock.attempt(1).ready(None, 1);
    lp.run().unwrap();
    lp.advance_clock(20_000).unwrap();
    mock.attempt(0).ready(None, 0);
    lp.run().unwrap();
    let m = g.members();
    assert_eq!(m.len(), 2);
    assert_eq!(kinds(&ev), vec![GroupEventKind::MemberJoined, GroupEventKind::MemberJoined]);
    assert_eq!(g.metrics(m[0]).unwrap().connect_time, 20_000);
    assert_eq!(g.metrics(m[1]).unwrap().connect_time, 40_000);
    let order: Vec<MemberId> = (0..6).map(|_| g.assign().unwrap()).collect();
    assert_eq!(order, vec![m[0], m[1], m[0], m[1], m[0], m[1]]);
    assert_eq!(g.metrics(m[0]).unwrap().streams_open, 3);
    assert!(!lp.has_work(), "nothing pending once K members are in");
}

fn two_members(opts: GroupOptions) -> (EventLoop, Arc<common::Mock>, ConnectionGroup, Events, Vec<MemberId>) {
    let (lp, mock, pre) = mock_setup(&["127.0.0.1", "127.0.0.2"]);
    let (g, ev) = group(&pre, opts);
    lp.run().unwrap();
    mock.attempt(0).ready(None, 0);
    mock.attempt(1).ready(None, 1);
    lp.run().unwrap();
    let m = g.members();
    assert_eq!(m.len(), 2);
    (lp, mock, g, ev, m)
}

#[test]
fn least_loaded_and_weighted_distribute_as_specified() {
    let (_lp, _mock, g, _ev, m) = two_members(GroupOptions { policy: AssignPolicy::LeastLoaded as u32, ..Default::default() });
    let a = g.assign().unwrap();
    let b = g.assign().unwrap();
    assert_ne!(a, b);
    g.release_stream(a, false).unwrap();
    assert_eq!(g.assign().unwrap(), a, "the member with fewer open streams");
    let (_lp, _mock, g, _ev, m2) = two_members(GroupOptions { policy: AssignPolicy::Weighted as u32, ..Default::default() });
    g.set_weight(m2[0], 3).unwrap();
    g.set_weight(m2[1], 1).unwrap();
    let picks: Vec<MemberId> = (0..8).map(|_| g.assign().unwrap()).collect();
    assert_eq!(picks.iter().filter(|p| **p == m2[0]).count(), 6, "3:1 {picks:?}");
    let _ = m;
}

#[test]
fn capacity_is_honoured() {
    let (_lp, _mock, g, _ev, m) = two_members(GroupOptions { capacity: 2, ..Default::default() });
    for _ in 0..4 {
        g.assign().unwrap();
    }
    assert_eq!(g.assign().err(), Some(Error::AllMembersFull));
    g.release_stream(m[1], false).unwrap();
    assert_eq!(g.assign().unwrap(), m[1]);
    assert!(g.release_stream(m[0], false).is_ok());
}

#[test]
fn a_failure_moves_streams_at_once_and_the_rebuild_restores_k() {
    let (lp, mock, g, ev, m) = two_members(GroupOptions::default());
    g.assign().unwrap();
    g.assign().unwrap();
    g.mark_failed(m[0]).unwrap();
    let failed = ev.lock().unwrap().iter().find(|e| e.kind == GroupEventKind::MemberFailed).copied();
    lp.run().unwrap();
    let failed = failed.or_else(|| ev.lock().unwrap().iter().find(|e| e.kind == GroupEventKind::MemberFailed).copied()).unwrap();
    assert_eq!((failed.member, failed.streams), (m[0] as u64, 1));
    assert_eq!(g.metrics(m[0]).unwrap().streams_failed, 1);
    // Degraded: every new stream goes to the other member.
    assert_eq!((0..3).map(|_| g.assign().unwrap()).collect::<Vec<_>>(), vec![m[1]; 3]);
    // The rebuild raced one replacement.
    assert_eq!(mock.starts(), 3);
    mock.attempt(2).ready(None, 2);
    lp.run().unwrap();
    let now = g.members();
    assert_eq!(now.len(), 2);
    assert!(!now.contains(&m[0]) && now.contains(&m[1]));
    assert!(mock.log().contains(&"close 0".to_string()), "the failed member was closed");
}

#[test]
fn all_failed_is_reported_once_and_recovers_after_backoff() {
    let (lp, mock, g, ev, m) = two_members(GroupOptions { backoff_initial_ms: 500, ..Default::default() });
    g.mark_failed(m[0]).unwrap();
    g.mark_failed(m[1]).unwrap();
    lp.run().unwrap();
    assert_eq!(g.assign().err(), Some(Error::NoMember));
    assert_eq!(kinds(&ev).iter().filter(|k| **k == GroupEventKind::AllFailed).count(), 1);
    // The rebuild race (one race for the missing members) fails: every
    // attempt it starts fails, the next candidate at once after each.
    let mut failed = 2;
    while failed < mock.starts() {
        mock.attempt(failed).failed(libc::ECONNREFUSED);
        failed += 1;
        lp.run().unwrap();
    }
    let n = mock.starts();
    let rebuild = ev.lock().unwrap().iter().find(|e| e.kind == GroupEventKind::RebuildFailed).copied().unwrap();
    assert_eq!(rebuild.connect_time_us, 500_000, "the backoff");
    assert_eq!(kinds(&ev).iter().filter(|k| **k == GroupEventKind::AllFailed).count(), 1, "once per outage");
    lp.advance_clock(499_999).unwrap();
    lp.run().unwrap();
    assert_eq!(mock.starts(), n, "nothing before the backoff ends");
    lp.advance_clock(1).unwrap();
    lp.run().unwrap();
    assert!(mock.starts() > n, "the rebuild goes on");
    mock.attempt(n).ready(None, 9);
    lp.run().unwrap();
    assert!(kinds(&ev).contains(&GroupEventKind::Recovered));
    assert!(g.assign().is_ok());
}

#[test]
fn a_member_closed_by_the_peer_fails_over_on_real_sockets() {
    use std::net::TcpListener;
    use std::time::{Duration, Instant};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname("127.0.0.1").unwrap().with_port(port).unwrap();
    let pre = Preconnection::new(&lp, &[ep], None, None).unwrap();
    let (g, ev) = group(&pre, GroupOptions { backoff_initial_ms: 10, ..Default::default() });
    let deadline = Instant::now() + Duration::from_secs(10);
    while g.members().len() < 2 && Instant::now() < deadline {
        lp.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(g.members().len(), 2);
    let (s1, _) = listener.accept().unwrap();
    drop(s1); // the server closes one member's connection
    while !kinds(&ev).contains(&GroupEventKind::MemberFailed) && Instant::now() < deadline {
        lp.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert!(kinds(&ev).contains(&GroupEventKind::MemberFailed), "{:?}", kinds(&ev));
    while g.members().len() < 2 && Instant::now() < deadline {
        lp.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(g.members().len(), 2, "rebuilt");
    assert_eq!(kinds(&ev).iter().filter(|k| **k == GroupEventKind::MemberJoined).count(), 3);
}
