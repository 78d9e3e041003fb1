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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignPolicy {
    /// The live members in join order, one stream each in turn.
    RoundRobin,
    /// The member with the fewest open streams (ties in round-robin order).
    LeastLoaded,
    /// Smooth weighted round robin over the members' weights.
    Weighted,
}

impl AssignPolicy {
    /// Every policy, in the order of their values.
    pub const ALL: [AssignPolicy; 3] = [AssignPolicy::RoundRobin, AssignPolicy::LeastLoaded, AssignPolicy::Weighted];
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
