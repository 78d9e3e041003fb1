//! A race held by a tree that schedules several protocol leaves as one
//! list (protocols by ALPN, draft-ietf-happy-happyeyeballs-v3-04 §5–§6,
//! see `crate::engine::tree`): the leaf takes answers and sorts as ever,
//! starts nothing by itself, and the tree asks it for its next candidate,
//! that candidate's place in the HEv3 order, and starts it.

use super::Race;
use crate::engine::Micros;

/// Where a leaf's next candidate stands in the HEv3 order (§5), to merge
/// the leaves' lists: its service group (SvcPriority order, fallback
/// last; `None` for a race without HTTPS records), then its place inside
/// that group. Leaves compare these, ties going to the earlier leaf.
pub type JointKey = (Option<(bool, bool, u16, u64, u8)>, usize);

impl Race {
    /// Hold the race again (see [`Race::new_held`]) before racing started;
    /// no-op once it started or ended.
    pub fn hold(&mut self) {
        if !self.racing && !self.finished {
            self.held = true;
        }
    }

    /// Whether racing could start now (RFC 8305 §3, HEv3 §4.2) if the
    /// race were not held.
    pub fn would_race(&self, now: Micros) -> bool {
        !self.finished && self.ready_to_race(now)
    }

    /// When the Resolution Delay ends if the race were not held.
    pub fn resolution_due_held(&self) -> Option<Micros> {
        if self.finished { None } else { self.resolution_due() }
    }

    /// The place of the candidate [`Race::start_pending`] would start at
    /// `now`; `None` when none may start.
    pub fn next_key(&self, now: Micros) -> Option<JointKey> {
        if self.finished {
            return None;
        }
        let next = self.next_startable(now)?;
        let order = self.order();
        let pos = order.iter().position(|&i| i == next)?;
        let Some(svc) = &self.svc else { return Some((None, pos)) };
        let service = svc.tags[next as usize].service;
        let in_group = order[..pos].iter().filter(|&&i| svc.tags[i as usize].service == service).count();
        Some((Some(svc.group_key(service)), in_group))
    }

    /// When the next pending candidate may start at the earliest (a
    /// fallback address the services hold back waits for the hold); `None`
    /// when no candidate is pending.
    pub fn pending_not_before(&self) -> Option<Micros> {
        if self.finished {
            return None;
        }
        self.next_pending()?;
        Some(self.held_fallback_until().unwrap_or(0))
    }

    /// Start the next candidate now, though held; `racing_since` is when
    /// the tree's joint schedule began racing (the HTTPS services hold the
    /// fallback back from then, as [`Race`] does from its own start).
    /// False when none may start.
    pub fn start_pending(&mut self, now: Micros, racing_since: Micros) -> bool {
        if self.finished {
            return false;
        }
        let hold = racing_since.saturating_add(self.attempt_delay().min(2_000_000));
        if let Some(svc) = self.svc.as_mut() {
            svc.fallback_hold.get_or_insert(hold);
        }
        self.start_next(now)
    }
}
