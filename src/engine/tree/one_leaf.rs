//! A tree of one leaf (one path, one protocol): the common case, kept
//! compact.
//!
//! The leaf's [`Race`] is the whole state: no path node, no branch state,
//! no second action queue. On top of it only what a tree adds: the path
//! and protocol ids of its attempts and the tree's total timeout, which
//! the race itself does not run. It behaves exactly as the general
//! scheduler ([`super::Branches`]) does with one leaf:
//!
//! - the race takes each input first; then, unless the race was already
//!   over or has just been won, a total deadline that has passed ends the
//!   tree with [`RaceError::TimedOut`] (what the race started at that
//!   instant is cancelled);
//! - [`OneLeaf::on_timer`] checks the total deadline before the race's own
//!   deadlines, so nothing starts at the instant it passes;
//! - the race's error is the tree's, except after the total deadline.

use super::{Action, TreeAttempt};
use crate::engine::race::{Action as RaceAction, Race, RaceConfig, RaceError};
use crate::engine::{AttemptId, Candidate, Micros, QueryKey};
use std::net::SocketAddr;

/// One leaf's race with the tree's total timeout on top.
#[derive(Debug)]
pub(super) struct OneLeaf {
    /// The leaf's race; its own `total_timeout` is `None`.
    pub(super) race: Race,
    /// The driver's path id.
    pub(super) path: usize,
    /// The driver's protocol id.
    pub(super) protocol: usize,
    /// When the tree times out.
    total_deadline: Option<Micros>,
    /// The total deadline ended the race: its `Failed` is reported as
    /// [`RaceError::TimedOut`].
    timed_out: bool,
    /// Whether the leaf (and so its path) was activated at creation: not
    /// when the race failed at once or the total timeout was zero.
    activated: bool,
}

/// Each method not documented here is [`super::Tree`]'s of the same name.
impl OneLeaf {
    /// The tree of one leaf on `path` with `protocol` (see
    /// [`super::Tree::new`]).
    pub(super) fn new(config: RaceConfig, now: Micros, queries: &[QueryKey], path: usize, protocol: usize) -> OneLeaf {
        let leaf_config = RaceConfig { total_timeout: None, ..config };
        let mut leaf = OneLeaf {
            race: Race::new_held(leaf_config, now, queries),
            path,
            protocol,
            total_deadline: config.total_timeout.map(|t| now.saturating_add(t)),
            timed_out: false,
            activated: false,
        };
        if leaf.deadline_passed(now) {
            leaf.time_out(now);
        } else if !leaf.race.is_finished() {
            leaf.race.activate(now);
            leaf.activated = true;
        }
        leaf
    }

    pub(super) fn on_answer(&mut self, now: Micros, query: QueryKey, answer: Result<Vec<Candidate>, i32>) {
        let was_finished = self.race.is_finished();
        self.race.on_answer(now, query, answer);
        self.settle(now, was_finished);
    }

    /// Feed the race one input, then settle as for any input.
    pub(super) fn input(&mut self, now: Micros, feed: impl FnOnce(&mut Race)) {
        let was_finished = self.race.is_finished();
        feed(&mut self.race);
        self.settle(now, was_finished);
    }

    pub(super) fn protocol(&self) -> usize {
        self.protocol
    }

    pub(super) fn race(&self) -> &Race {
        &self.race
    }

    pub(super) fn race_mut(&mut self) -> &mut Race {
        &mut self.race
    }

    pub(super) fn on_answers(&mut self, now: Micros, answers: Vec<(QueryKey, Result<Vec<Candidate>, i32>)>) {
        let was_finished = self.race.is_finished();
        self.race.on_answers(now, answers);
        self.settle(now, was_finished);
    }

    /// Reports for unknown attempts are ignored, the total deadline too.
    pub(super) fn on_attempt_ready(&mut self, now: Micros, attempt: AttemptId) {
        if attempt < self.race.attempt_count() {
            let was_finished = self.race.is_finished();
            self.race.on_attempt_ready(now, attempt);
            self.settle(now, was_finished);
        }
    }

    pub(super) fn on_attempt_failed(&mut self, now: Micros, attempt: AttemptId, errno: i32) {
        if attempt < self.race.attempt_count() {
            let was_finished = self.race.is_finished();
            self.race.on_attempt_failed(now, attempt, errno);
            self.settle(now, was_finished);
        }
    }

    pub(super) fn on_timer(&mut self, now: Micros) {
        // The total timeout first: nothing starts at the instant it ends.
        if !self.race.is_finished() && self.deadline_passed(now) {
            self.time_out(now);
        } else {
            self.race.on_timer(now);
        }
    }

    pub(super) fn set_avoided(&mut self, addrs: &[SocketAddr]) {
        self.race.set_avoided(addrs);
    }

    pub(super) fn set_pref64(&mut self, pref64: Option<crate::engine::nat64::Pref64>) {
        self.race.set_pref64(pref64);
    }

    pub(super) fn cancel(&mut self, now: Micros) {
        self.race.cancel(now);
    }

    pub(super) fn running_count(&self) -> usize {
        self.race.running_count()
    }

    pub(super) fn next_deadline(&self) -> Option<Micros> {
        let race = self.race.next_deadline();
        if self.race.is_finished() {
            // Kept losers' attempt timeouts.
            return race;
        }
        match (race, self.total_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn poll_action(&mut self) -> Option<Action> {
        Some(match self.race.poll_action()? {
            RaceAction::Start { attempt, addr } => Action::Start { attempt, addr, path: self.path, protocol: self.protocol },
            RaceAction::Cancel { attempt } => Action::Cancel { attempt },
            RaceAction::Won { attempt } => Action::Won { attempt },
            RaceAction::Spare { attempt } => Action::Spare { attempt },
            RaceAction::Failed { error } => Action::Failed { error: if self.timed_out { RaceError::TimedOut } else { error } },
        })
    }

    pub(super) fn is_finished(&self) -> bool {
        self.race.is_finished()
    }

    pub(super) fn winner(&self) -> Option<AttemptId> {
        self.race.winner()
    }

    pub(super) fn attempt_count(&self) -> usize {
        self.race.attempt_count()
    }

    pub(super) fn attempts(&self) -> impl Iterator<Item = TreeAttempt> + '_ {
        self.race.attempts().map(|record| TreeAttempt { record, path: self.path, protocol: self.protocol })
    }

    pub(super) fn path_activations(&self) -> Vec<Option<Micros>> {
        vec![self.activated.then(|| self.race.created())]
    }

    fn deadline_passed(&self, now: Micros) -> bool {
        self.total_deadline.is_some_and(|t| t <= now)
    }

    /// After an input the race took: end the tree if its total deadline
    /// has passed, unless the race was over before or has just been won.
    fn settle(&mut self, now: Micros, was_finished: bool) {
        if !was_finished && self.race.winner().is_none() && self.deadline_passed(now) {
            self.time_out(now);
        }
    }

    /// The total timeout ends the tree: cancel what runs (a race that has
    /// just failed has nothing running), report `TimedOut`.
    fn time_out(&mut self, now: Micros) {
        self.timed_out = true;
        self.race.cancel(now);
    }
}
