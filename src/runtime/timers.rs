//! The loop's deadlines: races', pools' and groups', each timer saying
//! whose it is by its type ([`TimerOwner`]). Binary heaps: O(log n) to add
//! and to take the earliest. Entries are never removed in place; an entry
//! whose owner has moved its deadline since is stale and skipped when it
//! surfaces.
//!
//! Races' timers, the many, sit in a heap of their own with 16-byte
//! entries; pools' and groups' in a second one. Taking the earliest looks
//! at both tops.

use crate::engine::Micros;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A race's id (see [`super::race_table`]).
pub(crate) type RaceId = u64;
/// A pool's id (pools and groups take theirs from one counter).
pub(crate) type PoolId = u64;
/// A group's id (pools and groups take theirs from one counter).
pub(crate) type GroupId = u64;

/// Whose timer it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerOwner {
    /// A race tree's next deadline (attempt delay, timeouts).
    Race(RaceId),
    /// A pool's next deadline (backoff, idle expiry).
    Pool(PoolId),
    /// A group's rebuild backoff.
    Group(GroupId),
    /// A DNS exchange's next deadline (a try's timeout), see
    /// src/runtime/dns_loop.rs; its own ids.
    Dns(u64),
}

/// Which kind of owner an entry of the second heap has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PoolOrGroup {
    Pool,
    Group,
    Dns,
}

/// Min-heaps of (deadline, owner).
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    races: BinaryHeap<Reverse<(Micros, RaceId)>>,
    /// Ordered by deadline, then id (unique across pools and groups;
    /// DNS exchanges' ids are told apart by the kind).
    others: BinaryHeap<Reverse<(Micros, u64, PoolOrGroup)>>,
}

impl TimerHeap {
    /// Remember that `owner` wants to be woken at `at`.
    pub(crate) fn push(&mut self, at: Micros, owner: TimerOwner) {
        match owner {
            TimerOwner::Race(id) => self.races.push(Reverse((at, id))),
            TimerOwner::Pool(id) => self.others.push(Reverse((at, id, PoolOrGroup::Pool))),
            TimerOwner::Group(id) => self.others.push(Reverse((at, id, PoolOrGroup::Group))),
            TimerOwner::Dns(id) => self.others.push(Reverse((at, id, PoolOrGroup::Dns))),
        }
    }

    fn race_top(&self) -> Option<(Micros, TimerOwner)> {
        self.races.peek().map(|Reverse((at, id))| (*at, TimerOwner::Race(*id)))
    }

    fn other_top(&self) -> Option<(Micros, TimerOwner)> {
        self.others.peek().map(|Reverse((at, id, kind))| {
            let owner = match kind {
                PoolOrGroup::Pool => TimerOwner::Pool(*id),
                PoolOrGroup::Group => TimerOwner::Group(*id),
                PoolOrGroup::Dns => TimerOwner::Dns(*id),
            };
            (*at, owner)
        })
    }

    /// The earliest entry; a race's first when a pool's or group's is due
    /// at the same time.
    fn top(&self) -> Option<(Micros, TimerOwner)> {
        match (self.race_top(), self.other_top()) {
            (Some(r), Some(o)) => Some(if r.0 <= o.0 { r } else { o }),
            (r, o) => r.or(o),
        }
    }

    fn pop_owner(&mut self, owner: TimerOwner) {
        match owner {
            TimerOwner::Race(_) => drop(self.races.pop()),
            TimerOwner::Pool(_) | TimerOwner::Group(_) | TimerOwner::Dns(_) => drop(self.others.pop()),
        }
    }

    /// The earliest deadline, stale or not.
    pub(crate) fn peek(&self) -> Option<Micros> {
        self.top().map(|(at, _)| at)
    }

    /// Take the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Micros) -> Option<(Micros, TimerOwner)> {
        let (at, owner) = self.top().filter(|(at, _)| *at <= now)?;
        self.pop_owner(owner);
        Some((at, owner))
    }

    /// Drop entries for which `is_live(at, owner)` is false from the tops,
    /// so that `peek` shows a deadline somebody still wants.
    pub(crate) fn drop_stale_top(&mut self, mut is_live: impl FnMut(Micros, TimerOwner) -> bool) {
        while let Some((at, owner)) = self.race_top() {
            if is_live(at, owner) {
                break;
            }
            self.races.pop();
        }
        while let Some((at, owner)) = self.other_top() {
            if is_live(at, owner) {
                break;
            }
            self.others.pop();
        }
    }

    /// Number of entries, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.races.len() + self.others.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TimerOwner::{Group, Pool, Race};

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let mut h = TimerHeap::default();
        h.push(300, Race(1));
        h.push(100, Race(2));
        h.push(200, Race(3));
        assert_eq!(h.peek(), Some(100));
        assert_eq!(h.pop_due(99), None);
        assert_eq!(h.pop_due(250), Some((100, Race(2))));
        assert_eq!(h.pop_due(250), Some((200, Race(3))));
        assert_eq!(h.pop_due(250), None);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn owners_are_kept_apart_and_merged_by_deadline() {
        let mut h = TimerHeap::default();
        h.push(200, Group(5));
        h.push(100, Pool(5));
        h.push(200, Race(5));
        h.push(50, Race(9));
        h.push(60, TimerOwner::Dns(5));
        assert_eq!(h.pop_due(1000), Some((50, Race(9))));
        assert_eq!(h.pop_due(1000), Some((60, TimerOwner::Dns(5))), "not pool 5's");
        assert_eq!(h.pop_due(1000), Some((100, Pool(5))));
        // A race's timer goes first at the same deadline.
        assert_eq!(h.pop_due(1000), Some((200, Race(5))));
        assert_eq!(h.pop_due(1000), Some((200, Group(5))));
        assert_eq!(h.pop_due(1000), None);
    }

    #[test]
    fn stale_entries_are_dropped_from_the_top() {
        let mut h = TimerHeap::default();
        h.push(10, Race(1));
        h.push(20, Race(2));
        h.push(30, Race(1));
        h.push(5, Pool(3));
        h.drop_stale_top(|at, owner| !(owner == Race(1) && at == 10) && owner != Pool(3));
        assert_eq!(h.peek(), Some(20));
    }
}
