//! Protocols by ALPN as one race (draft-ietf-happy-happyeyeballs-v3-04
//! §5–§6): when every protocol branch of a path serves registered ALPN
//! ids ([`super::Tree::serve_alpn`]), its leaves do not race each other
//! as branches (RFC 9623 §4.3) but are scheduled as one sorted list of
//! (endpoint, protocol) candidates: the HEv3 order of the endpoints
//! (service groups by SvcPriority, fallback last, then RFC 6724 and
//! interleaving inside a group), each endpoint with the protocols that
//! serve it in branch order, one attempt at a time with the Connection
//! Attempt Delay between starts. The rules of RFC 8305 §5 apply across
//! the list: a failure starts the next candidate at once, a late
//! candidate with nothing running starts at once, and never within
//! [`MIN_ATTEMPT_GAP`] of the previous start.
//!
//! Each leaf keeps its own [`Race`] (held: it takes answers, sorts, fails
//! when it has nothing left); the path's [`Joint`] decides which leaf
//! starts its next candidate and when.

use super::{Branches, Leaf};
use crate::engine::race::{Outcome, MIN_ATTEMPT_GAP};
use crate::engine::Micros;

/// The joint schedule of one path's leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Joint {
    /// When racing began (the first leaf ready to race, RFC 8305 §3).
    racing_since: Option<Micros>,
    /// When the last candidate of the list started.
    last_start: Option<Micros>,
    /// Starts owed to failures (each starts the next candidate at once).
    owed: u16,
    /// Failed attempts already counted into `owed`.
    failed_seen: usize,
}

impl Branches {
    /// Schedule path `p`'s leaves as one list when it has several and
    /// `served` (by leaf) says each serves registered ALPN ids, and the
    /// race starts one attempt at a time (`race_count` 1). Call before
    /// any answer.
    pub(super) fn join_served(&mut self, served: impl Fn(&Leaf) -> bool) {
        for p in 0..self.paths.len() {
            let range = self.paths[p].leaves.clone();
            let leaves = &self.leaves[range.clone()];
            let one_at_a_time = leaves.iter().all(|l| l.race.config().race_count <= 1);
            if leaves.len() < 2 || !one_at_a_time || !leaves.iter().all(&served) {
                continue;
            }
            self.paths[p].joint = Some(Joint::default());
            for leaf in &mut self.leaves[range] {
                leaf.race.hold();
                leaf.activated = self.paths[p].activated;
            }
        }
    }

    /// Start path `p`'s next candidate if it is due at `now`; true if one
    /// started.
    pub(super) fn step_joint(&mut self, p: usize, now: Micros) -> bool {
        let Some(mut j) = self.paths[p].joint else { return false };
        let started = self.joint_start(p, &mut j, now);
        self.paths[p].joint = Some(j);
        started
    }

    fn joint_start(&mut self, p: usize, j: &mut Joint, now: Micros) -> bool {
        let range = self.paths[p].leaves.clone();
        let failed: usize = self.leaves[range.clone()]
            .iter()
            .map(|l| l.race.attempts().filter(|a| matches!(a.outcome, Outcome::Failed(_))).count())
            .sum();
        j.owed = j.owed.saturating_add(failed.saturating_sub(j.failed_seen) as u16);
        j.failed_seen = failed;
        if j.racing_since.is_none() {
            if !self.leaves[range.clone()].iter().any(|l| !l.failed && l.race.would_race(now)) {
                return false;
            }
            j.racing_since = Some(now);
        }
        // The next (endpoint, protocol) of the list: the least key, ties
        // to the earlier branch.
        let pick = range.clone().filter(|&i| !self.leaves[i].failed).filter_map(|i| Some((self.leaves[i].race.next_key(now)?, i))).min();
        let Some((_, leaf)) = pick else {
            // A failure with nothing to start starts nothing later on.
            j.owed = 0;
            return false;
        };
        let running: usize = self.leaves[range].iter().map(|l| l.race.running_count()).sum();
        let due = match j.last_start {
            None => true,
            Some(last) => {
                let at_once = (j.owed > 0 || running == 0) && now >= last.saturating_add(MIN_ATTEMPT_GAP);
                at_once || now >= last.saturating_add(self.leaves[leaf].race.attempt_delay())
            }
        };
        let since = j.racing_since.unwrap_or(now);
        if !due || !self.leaves[leaf].race.start_pending(now, since) {
            return false;
        }
        j.last_start = Some(now);
        j.owed = j.owed.saturating_sub(1);
        true
    }

    /// When path `p`'s joint schedule has work next, if it has a joint
    /// schedule and is active.
    pub(super) fn joint_deadline(&self, p: usize) -> Option<Micros> {
        let j = self.paths[p].joint?;
        self.paths[p].activated?;
        let leaves = self.leaves[self.paths[p].leaves.clone()].iter().filter(|l| !l.failed);
        if j.racing_since.is_none() {
            return leaves.filter_map(|l| l.race.resolution_due_held()).min();
        }
        let running: usize = self.leaves[self.paths[p].leaves.clone()].iter().map(|l| l.race.running_count()).sum();
        leaves
            .filter_map(|l| {
                let not_before = l.race.pending_not_before()?;
                let at = match j.last_start {
                    None => 0,
                    Some(last) => {
                        let delay = last.saturating_add(l.race.attempt_delay());
                        if j.owed > 0 || running == 0 { delay.min(last.saturating_add(MIN_ATTEMPT_GAP)) } else { delay }
                    }
                };
                Some(at.max(not_before))
            })
            .min()
    }
}
