//! The policy of a connection group: which member carries the next stream,
//! per-member stream capacity, failover, per-member metrics.
//!
//! Pure: the driver tells it what happened (a member joined, a stream
//! ended, a member failed) and asks it where the next stream goes. Time is
//! an input (`now` when a member joins); the policy never reads a clock.
//! Rebuilding failed members (racing a replacement with the pool's
//! backoff) is the driver's job: a rebuilt member joins with
//! [`GroupPolicy::add_member`] and gets a new [`MemberId`].
//!
//! Policies ([`AssignPolicy`]):
//!
//! - Round robin: the live members in join order, 1, 2, 1, 2 exactly; full
//!   and failed members are skipped without disturbing the order of the
//!   others (the rotation goes on from the member chosen last).
//! - Least loaded: the member with the fewest open streams; ties go to the
//!   first one in round-robin order after the member chosen last, so equal
//!   loads rotate instead of piling onto the oldest member.
//! - Weighted: smooth weighted round robin (nginx's algorithm):
//!   deterministic, proportional to the weights and interleaved (weights
//!   3 and 1 give a, a, b, a). A member's weight is set by the caller or
//!   derived from its connect time ([`weight_for_connect_time`]).

use super::Micros;

/// Streams a member carries at most, unless the group says otherwise.
pub const DEFAULT_CAPACITY: u32 = 256;

/// How a group picks the member for the next stream.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignPolicy {
    /// The live members in join order, one stream each in turn.
    RoundRobin,
    /// The member with the fewest open streams (ties in round-robin order).
    LeastLoaded,
    /// Smooth weighted round robin over the members' weights.
    Weighted,
}

/// A member of a group: the index of its slot, stable for the member's
/// life and never reused (a rebuilt member gets a new id). Ids grow in
/// join order.
pub type MemberId = usize;

/// What a group knows about one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberMetrics {
    /// Streams assigned to the member since it joined.
    pub streams_assigned: u64,
    /// Streams open on it now (0 once it failed).
    pub streams_open: u32,
    /// Streams that ended in failure: released with `failed`, or open when
    /// the member failed.
    pub streams_failed: u64,
    /// How long its connection took to become ready, µs.
    pub connect_time: Micros,
    /// When it joined the group (its connection was ready), on the loop's
    /// clock.
    pub joined_at: Micros,
    /// Its weight for [`AssignPolicy::Weighted`]: set by the caller, or
    /// derived from `connect_time` ([`weight_for_connect_time`]). 0: never
    /// chosen by the weighted policy.
    pub weight: u32,
}

/// Why no member could take a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignError {
    /// No live member (none joined, or all failed); with
    /// [`AssignPolicy::Weighted`], also when every live member has weight 0.
    NoMember,
    /// Every member that could be chosen carries its capacity of streams.
    AllFull,
}

/// The weight derived from a connect time for [`AssignPolicy::Weighted`]:
/// `max(1, 1_000_000 / max(connect_time_µs, 1000))`, inversely proportional
/// to the connect time: 1 ms or less → 1000, 10 ms → 100, 40 ms → 25,
/// 1 s or more → 1. A member that connected four times faster carries four
/// times the streams.
pub fn weight_for_connect_time(connect_time: Micros) -> u32 {
    (1_000_000 / connect_time.max(1000)).max(1) as u32
}

#[derive(Clone, Debug)]
struct Member {
    metrics: MemberMetrics,
    live: bool,
    /// The weight was set by the caller: do not derive it.
    weight_set: bool,
    /// Smooth WRR's current weight.
    current: i64,
}

/// Stream assignment over the members of a connection group.
#[derive(Clone, Debug)]
pub struct GroupPolicy {
    policy: AssignPolicy,
    capacity: u32,
    /// Every member not yet forgotten, by id.
    slots: Vec<Option<Member>>,
    /// Live members' ids, ascending (= join order).
    live: Vec<MemberId>,
    /// The member chosen last: round robin (and least-loaded ties) go on
    /// from the next one.
    last: Option<MemberId>,
}

impl GroupPolicy {
    /// A group with no members. `capacity` is the most streams a member
    /// carries at once ([`DEFAULT_CAPACITY`] by default; the API layer
    /// validates it: 0 would make every member full).
    pub fn new(policy: AssignPolicy, capacity: u32) -> Self {
        GroupPolicy { policy, capacity, slots: Vec::new(), live: Vec::new(), last: None }
    }

    /// The assignment policy.
    pub fn policy(&self) -> AssignPolicy {
        self.policy
    }

    /// Streams per member, at most.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// A member joined (its connection is ready) at `now`, with its
    /// measured connect time (µs). It enters the rotation last (after the
    /// members already there). Its weight is
    /// [`weight_for_connect_time`]`(connect_time)` until
    /// [`set_weight`](Self::set_weight) is called. Restarts the weighted
    /// sequence.
    pub fn add_member(&mut self, now: Micros, connect_time: Micros) -> MemberId {
        let id = self.slots.len();
        self.slots.push(Some(Member {
            metrics: MemberMetrics {
                streams_assigned: 0,
                streams_open: 0,
                streams_failed: 0,
                connect_time,
                joined_at: now,
                weight: weight_for_connect_time(connect_time),
            },
            live: true,
            weight_set: false,
            current: 0,
        }));
        self.live.push(id);
        self.reset_weighted();
        id
    }

    /// Set member `m`'s weight for [`AssignPolicy::Weighted`] (it is no
    /// longer derived from the connect time). 0: the member is never
    /// chosen by the weighted policy, but its streams are still counted.
    /// Restarts the weighted sequence. Unknown ids are ignored.
    pub fn set_weight(&mut self, m: MemberId, weight: u32) {
        if let Some(Some(mem)) = self.slots.get_mut(m) {
            mem.metrics.weight = weight;
            mem.weight_set = true;
            self.reset_weighted();
        }
    }

    /// Pick the member for the next stream and count it there
    /// (`streams_assigned` += 1, `streams_open` += 1). Full members
    /// (`streams_open == capacity`) are skipped. No live member →
    /// [`AssignError::NoMember`]; every member that could be chosen full →
    /// [`AssignError::AllFull`].
    pub fn assign(&mut self) -> Result<MemberId, AssignError> {
        if self.live.is_empty() {
            return Err(AssignError::NoMember);
        }
        let id = match self.policy {
            AssignPolicy::RoundRobin => self.pick_round_robin(),
            AssignPolicy::LeastLoaded => self.pick_least_loaded(),
            AssignPolicy::Weighted => self.pick_weighted()?,
        }
        .ok_or(AssignError::AllFull)?;
        self.last = Some(id);
        let m = &mut self.member_mut(id).metrics;
        m.streams_assigned += 1;
        m.streams_open += 1;
        Ok(id)
    }

    /// A stream on member `m` ended (`streams_open` -= 1); `failed` counts
    /// it in `streams_failed`. Ignored for a member that failed (its open
    /// streams were counted then) or is unknown.
    pub fn release(&mut self, m: MemberId, failed: bool) {
        if let Some(Some(mem)) = self.slots.get_mut(m) {
            if mem.live && mem.metrics.streams_open > 0 {
                mem.metrics.streams_open -= 1;
                if failed {
                    mem.metrics.streams_failed += 1;
                }
            }
        }
    }

    /// Member `m` failed: it leaves the rotation at once and assignment
    /// goes on with the others (degraded mode). Returns how many streams
    /// were open on it; they are counted in its `streams_failed` and its
    /// `streams_open` becomes 0. Its metrics stay readable until
    /// [`forget`](Self::forget). 0 for a member already failed or unknown.
    /// Restarts the weighted sequence.
    pub fn member_failed(&mut self, m: MemberId) -> u32 {
        let Some(Some(mem)) = self.slots.get_mut(m) else { return 0 };
        if !mem.live {
            return 0;
        }
        mem.live = false;
        let open = mem.metrics.streams_open;
        mem.metrics.streams_open = 0;
        mem.metrics.streams_failed += open as u64;
        if let Ok(i) = self.live.binary_search(&m) {
            self.live.remove(i);
        }
        self.reset_weighted();
        open
    }

    /// Drop a failed member's record: its metrics are no longer kept. Its
    /// id is not reused. `false` (and nothing done) if `m` is live or
    /// unknown.
    pub fn forget(&mut self, m: MemberId) -> bool {
        match self.slots.get_mut(m) {
            Some(slot) if slot.as_ref().is_some_and(|mem| !mem.live) => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// Members in the rotation (joined, not failed).
    pub fn live_members(&self) -> usize {
        self.live.len()
    }

    /// Whether `m` is in the rotation.
    pub fn is_live(&self, m: MemberId) -> bool {
        matches!(self.slots.get(m), Some(Some(mem)) if mem.live)
    }

    /// Member `m`'s metrics, live or failed (until forgotten); `None` for
    /// an unknown or forgotten id.
    pub fn metrics(&self, m: MemberId) -> Option<MemberMetrics> {
        self.slots.get(m)?.as_ref().map(|mem| mem.metrics)
    }

    /// The live members, in join order.
    pub fn members(&self) -> Vec<MemberId> {
        self.live.clone()
    }

    fn member(&self, id: MemberId) -> &Member {
        self.slots[id].as_ref().expect("live member has a slot")
    }

    fn member_mut(&mut self, id: MemberId) -> &mut Member {
        self.slots[id].as_mut().expect("live member has a slot")
    }

    fn has_room(&self, id: MemberId) -> bool {
        self.member(id).metrics.streams_open < self.capacity
    }

    /// Index in `live` where the rotation goes on: the first member after
    /// the one chosen last (which may have failed since).
    fn rotation_start(&self) -> usize {
        match self.last {
            None => 0,
            Some(last) => {
                let i = self.live.partition_point(|&id| id <= last);
                if i == self.live.len() {
                    0
                } else {
                    i
                }
            }
        }
    }

    /// The live members in rotation order.
    fn rotation(&self) -> impl Iterator<Item = MemberId> + '_ {
        let start = self.rotation_start();
        self.live[start..].iter().chain(self.live[..start].iter()).copied()
    }

    fn pick_round_robin(&self) -> Option<MemberId> {
        self.rotation().find(|&id| self.has_room(id))
    }

    fn pick_least_loaded(&self) -> Option<MemberId> {
        let mut best: Option<(u32, MemberId)> = None;
        for id in self.rotation() {
            let open = self.member(id).metrics.streams_open;
            if open < self.capacity && best.is_none_or(|(b, _)| open < b) {
                best = Some((open, id));
            }
        }
        best.map(|(_, id)| id)
    }

    /// nginx's smooth weighted round robin over the live members with
    /// room and a weight: each adds its weight to its current weight, the
    /// largest current weight (first in join order on a tie) is chosen and
    /// loses the total of the weights.
    fn pick_weighted(&mut self) -> Result<Option<MemberId>, AssignError> {
        let cap = self.capacity;
        let mut total: i64 = 0;
        let mut weighted = false;
        let mut best: Option<(i64, MemberId)> = None;
        for &id in &self.live {
            let mem = self.slots[id].as_mut().expect("live member has a slot");
            let w = mem.metrics.weight as i64;
            if w == 0 {
                continue;
            }
            weighted = true;
            if mem.metrics.streams_open >= cap {
                continue;
            }
            mem.current += w;
            total += w;
            if best.is_none_or(|(c, _)| mem.current > c) {
                best = Some((mem.current, id));
            }
        }
        if !weighted {
            return Err(AssignError::NoMember);
        }
        Ok(best.map(|(_, id)| {
            self.member_mut(id).current -= total;
            id
        }))
    }

    fn reset_weighted(&mut self) {
        for mem in self.slots.iter_mut().flatten() {
            mem.current = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AssignError::*;
    use AssignPolicy::*;

    const MS: Micros = 1000;

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
}
