//! Deadlines of many races in one binary heap: O(log n) to add and to take
//! the earliest. Entries are never removed in place; an entry whose race has
//! moved its deadline since is stale and skipped when it surfaces.

use crate::engine::Micros;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A min-heap of (deadline, race id).
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<(Micros, u64)>>,
}

impl TimerHeap {
    /// Remember that race `id` wants to be woken at `at`.
    pub(crate) fn push(&mut self, at: Micros, id: u64) {
        self.heap.push(Reverse((at, id)));
    }

    /// The earliest deadline, stale or not.
    pub(crate) fn peek(&self) -> Option<Micros> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Take the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Micros) -> Option<(Micros, u64)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Drop entries for which `is_live(at, id)` is false from the top, so
    /// that `peek` shows a deadline somebody still wants.
    pub(crate) fn drop_stale_top(&mut self, mut is_live: impl FnMut(Micros, u64) -> bool) {
        while let Some(Reverse((at, id))) = self.heap.peek() {
            if is_live(*at, *id) {
                break;
            }
            self.heap.pop();
        }
    }

    /// Number of entries, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_only_when_due() {
        let mut h = TimerHeap::default();
        h.push(300, 1);
        h.push(100, 2);
        h.push(200, 3);
        assert_eq!(h.peek(), Some(100));
        assert_eq!(h.pop_due(99), None);
        assert_eq!(h.pop_due(250), Some((100, 2)));
        assert_eq!(h.pop_due(250), Some((200, 3)));
        assert_eq!(h.pop_due(250), None);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn stale_entries_are_dropped_from_the_top() {
        let mut h = TimerHeap::default();
        h.push(10, 1);
        h.push(20, 2);
        h.push(30, 1);
        h.drop_stale_top(|at, id| !(id == 1 && at == 10));
        assert_eq!(h.peek(), Some(20));
    }
}
