//! The connection group's policy: which member carries the next stream
//! (round robin, least loaded, smooth weighted), capacity, failover to the
//! live members, per-member metrics and ids.

use super::support::MS;
use crate::engine::group::*;
use crate::engine::Micros;
use AssignError::*;
use AssignPolicy::*;

fn group(policy: AssignPolicy, capacity: u32, members: usize) -> (GroupPolicy, Vec<MemberId>) {
    let mut g = GroupPolicy::new(policy, capacity);
    let ids = (0..members).map(|i| g.add_member(i as Micros * MS, 10 * MS)).collect();
    (g, ids)
}

fn take(g: &mut GroupPolicy, n: usize) -> Vec<MemberId> {
    (0..n).map(|_| g.assign().unwrap()).collect()
}

#[test]
fn round_robin_alternates_exactly() {
    let (mut g, m) = group(RoundRobin, DEFAULT_CAPACITY, 2);
    let (a, b) = (m[0], m[1]);
    assert_eq!(take(&mut g, 6), vec![a, b, a, b, a, b]);

    let (mut g, m) = group(RoundRobin, DEFAULT_CAPACITY, 3);
    let (a, b, c) = (m[0], m[1], m[2]);
    assert_eq!(take(&mut g, 9), vec![a, b, c, a, b, c, a, b, c]);
}

#[test]
fn round_robin_skips_a_full_member_without_disturbing_the_order() {
    let (mut g, m) = group(RoundRobin, 2, 3);
    let (a, b, c) = (m[0], m[1], m[2]);
    assert_eq!(take(&mut g, 5), vec![a, b, c, a, b]); // a: 2, b: 2, c: 1
    g.release(a, false); // a: 1 — b stays full
    assert_eq!(take(&mut g, 2), vec![c, a], "b is skipped, the order goes on");
    assert_eq!(g.assign(), Err(AllFull));
    g.release(b, false);
    g.release(c, false);
    assert_eq!(take(&mut g, 2), vec![b, c], "b is back in its place");
}

#[test]
fn a_failed_member_moves_new_streams_to_the_others_at_once() {
    let (mut g, m) = group(RoundRobin, DEFAULT_CAPACITY, 3);
    let (a, b, c) = (m[0], m[1], m[2]);
    assert_eq!(take(&mut g, 4), vec![a, b, c, a]);
    assert_eq!(g.member_failed(b), 1, "b carried one stream");
    assert_eq!(g.live_members(), 2);
    assert_eq!(g.members(), vec![a, c]);
    assert_eq!(take(&mut g, 4), vec![c, a, c, a], "the next stream goes to c, not b");
    // The member chosen last fails: the rotation goes on after it.
    assert_eq!(g.member_failed(a), 4);
    assert_eq!(take(&mut g, 2), vec![c, c], "degraded mode: one member left");
    assert_eq!(g.member_failed(a), 0, "already failed");
    // A rebuilt member joins last, with a new id.
    let d = g.add_member(50 * MS, 10 * MS);
    assert!(d > c);
    assert_eq!(take(&mut g, 4), vec![d, c, d, c]);
}

#[test]
fn no_member_when_none_joined_or_all_failed() {
    let mut g = GroupPolicy::new(RoundRobin, DEFAULT_CAPACITY);
    assert_eq!(g.assign(), Err(NoMember));
    let a = g.add_member(0, MS);
    let b = g.add_member(0, MS);
    take(&mut g, 3);
    g.member_failed(a);
    g.member_failed(b);
    assert_eq!(g.live_members(), 0);
    assert_eq!(g.assign(), Err(NoMember));
    for p in [LeastLoaded, Weighted] {
        let (mut g, m) = group(p, DEFAULT_CAPACITY, 2);
        g.member_failed(m[0]);
        g.member_failed(m[1]);
        assert_eq!(g.assign(), Err(NoMember), "{p:?}");
    }
}

#[test]
fn least_loaded_picks_the_fewest_open_and_release_changes_the_pick() {
    let (mut g, m) = group(LeastLoaded, DEFAULT_CAPACITY, 3);
    let (a, b, c) = (m[0], m[1], m[2]);
    assert_eq!(take(&mut g, 6), vec![a, b, c, a, b, c], "equal loads rotate");
    // a: 2, b: 2, c: 2.
    g.release(b, false);
    g.release(b, true);
    assert_eq!(take(&mut g, 2), vec![b, b], "b has the fewest open");
    // a: 2, b: 2, c: 2; b was chosen last → c, then a.
    assert_eq!(take(&mut g, 2), vec![c, a]);
    g.release(a, false);
    g.release(a, false);
    g.release(a, false);
    assert_eq!(take(&mut g, 3), vec![a, a, b], "a: 0 → 2, then the tie rotates after a");
}

#[test]
fn least_loaded_skips_full_and_failed_members() {
    let (mut g, m) = group(LeastLoaded, 1, 3);
    let (a, b, c) = (m[0], m[1], m[2]);
    assert_eq!(take(&mut g, 3), vec![a, b, c]);
    assert_eq!(g.assign(), Err(AllFull));
    g.release(c, false);
    g.member_failed(b);
    assert_eq!(g.assign(), Ok(c));
    g.release(a, false);
    assert_eq!(g.assign(), Ok(a));
}

#[test]
fn weighted_3_to_1_is_smooth_and_exact() {
    let (mut g, m) = group(Weighted, DEFAULT_CAPACITY, 2);
    let (a, b) = (m[0], m[1]);
    g.set_weight(a, 3);
    g.set_weight(b, 1);
    let seq = take(&mut g, 40);
    for w in seq.chunks(4) {
        assert_eq!(w, [a, a, b, a], "nginx's smooth WRR: a, a, b, a");
    }
    // 3:1 over every window of 4, aligned or not.
    for w in seq.windows(4) {
        assert_eq!(w.iter().filter(|&&x| x == a).count(), 3, "{w:?}");
    }
}

#[test]
fn weighted_4_3_2_1_sequence() {
    let (mut g, m) = group(Weighted, DEFAULT_CAPACITY, 4);
    for (i, &id) in m.iter().enumerate() {
        g.set_weight(id, 4 - i as u32);
    }
    let seq = take(&mut g, 20);
    let [a, b, c, d] = [m[0], m[1], m[2], m[3]];
    assert_eq!(&seq[..10], [a, b, c, a, b, d, a, c, b, a]);
    assert_eq!(&seq[10..], &seq[..10], "period = total weight");
}

#[test]
fn weight_from_connect_time_prefers_the_faster_member_proportionally() {
    assert_eq!(weight_for_connect_time(0), 1000);
    assert_eq!(weight_for_connect_time(500), 1000);
    assert_eq!(weight_for_connect_time(MS), 1000);
    assert_eq!(weight_for_connect_time(10 * MS), 100);
    assert_eq!(weight_for_connect_time(40 * MS), 25);
    assert_eq!(weight_for_connect_time(1000 * MS), 1);
    assert_eq!(weight_for_connect_time(60_000 * MS), 1);

    let mut g = GroupPolicy::new(Weighted, DEFAULT_CAPACITY);
    let slow = g.add_member(0, 40 * MS);
    let fast = g.add_member(0, 10 * MS);
    assert_eq!(g.metrics(fast).unwrap().weight, 100);
    assert_eq!(g.metrics(slow).unwrap().weight, 25);
    let seq = take(&mut g, 125);
    for w in seq.chunks(5) {
        assert_eq!(w.iter().filter(|&&x| x == fast).count(), 4, "4:1 in every 5: {w:?}");
    }
    assert_eq!(g.metrics(fast).unwrap().streams_assigned, 100);
    assert_eq!(g.metrics(slow).unwrap().streams_assigned, 25);
}

#[test]
fn weight_zero_is_never_chosen_but_counted() {
    let (mut g, m) = group(Weighted, DEFAULT_CAPACITY, 2);
    let (a, b) = (m[0], m[1]);
    g.set_weight(a, 0);
    assert_eq!(take(&mut g, 5), vec![b; 5]);
    assert_eq!(g.metrics(a).unwrap().weight, 0);
    g.set_weight(b, 0);
    assert_eq!(g.assign(), Err(NoMember), "no member may be chosen");
    // A member that joins later gets its derived weight.
    let c = g.add_member(0, 10 * MS);
    assert_eq!(g.assign(), Ok(c));
}

#[test]
fn weighted_skips_full_and_failed_members() {
    let (mut g, m) = group(Weighted, 2, 2);
    let (a, b) = (m[0], m[1]);
    g.set_weight(a, 3);
    g.set_weight(b, 1);
    assert_eq!(take(&mut g, 4), vec![a, a, b, b], "a full after two");
    assert_eq!(g.assign(), Err(AllFull));
    g.release(a, false);
    assert_eq!(g.assign(), Ok(a));
    g.release(b, false);
    g.member_failed(a);
    assert_eq!(g.assign(), Ok(b));
    assert_eq!(g.assign(), Err(AllFull));
}

#[test]
fn capacity_is_honoured() {
    let (mut g, m) = group(RoundRobin, 3, 2);
    let (a, b) = (m[0], m[1]);
    assert_eq!(take(&mut g, 6), vec![a, b, a, b, a, b]);
    assert_eq!(g.assign(), Err(AllFull));
    assert_eq!(g.metrics(a).unwrap().streams_open, 3);
    g.release(b, false);
    assert_eq!(g.assign(), Ok(b), "a release frees a slot");
    assert_eq!(g.assign(), Err(AllFull));
    // The default capacity.
    let (mut g, _) = group(RoundRobin, DEFAULT_CAPACITY, 2);
    assert_eq!(take(&mut g, 512).len(), 512);
    assert_eq!(g.assign(), Err(AllFull));
}

#[test]
fn metrics_count_assigned_open_and_failed() {
    let mut g = GroupPolicy::new(RoundRobin, DEFAULT_CAPACITY);
    let a = g.add_member(5 * MS, 12 * MS);
    let b = g.add_member(7 * MS, 40 * MS);
    take(&mut g, 7); // a: 4, b: 3
    g.release(a, false);
    g.release(a, true);
    g.release(b, true);
    assert_eq!(
        g.metrics(a),
        Some(MemberMetrics {
            streams_assigned: 4,
            streams_open: 2,
            streams_failed: 1,
            connect_time: 12 * MS,
            joined_at: 5 * MS,
            weight: 83,
        })
    );
    let mb = g.metrics(b).unwrap();
    assert_eq!((mb.streams_assigned, mb.streams_open, mb.streams_failed), (3, 2, 1));
    assert_eq!((mb.connect_time, mb.joined_at, mb.weight), (40 * MS, 7 * MS, 25));
    // Failure: the open streams count as failed; later releases are ignored.
    assert_eq!(g.member_failed(b), 2);
    g.release(b, true);
    let mb = g.metrics(b).unwrap();
    assert_eq!((mb.streams_assigned, mb.streams_open, mb.streams_failed), (3, 0, 3));
    assert!(!g.is_live(b) && g.is_live(a));
    // Releasing more than is open does not underflow.
    g.release(a, false);
    g.release(a, false);
    g.release(a, false);
    assert_eq!(g.metrics(a).unwrap().streams_open, 0);
    assert_eq!(g.metrics(99), None);
}

#[test]
fn member_ids_are_not_reused() {
    let (mut g, m) = group(RoundRobin, DEFAULT_CAPACITY, 2);
    let (a, b) = (m[0], m[1]);
    assert!(!g.forget(a), "a live member is not forgotten");
    g.member_failed(a);
    assert!(g.metrics(a).is_some(), "a failed member's metrics stay");
    assert!(g.forget(a));
    assert_eq!(g.metrics(a), None);
    let c = g.add_member(0, MS);
    g.member_failed(b);
    let d = g.add_member(0, MS);
    let ids = [a, b, c, d];
    for (i, x) in ids.iter().enumerate() {
        assert!(ids[i + 1..].iter().all(|y| y != x), "{ids:?}");
    }
    assert_eq!(g.members(), vec![c, d]);
    // Stale ids do nothing.
    g.release(a, true);
    g.set_weight(a, 5);
    assert_eq!(g.member_failed(a), 0);
    assert_eq!(g.metrics(a), None);
}
