//! The race's rules as code: its deadlines (total timeout, Resolution
//! Delay, Connection Attempt Delay), starting and cancelling attempts, and
//! `Race::pump`, which applies the rules of RFC 8305 §3 and §5 (the "Rules"
//! in the docs of `engine::race`) until nothing more is due at `now`.

use super::{Action, Attempt, Outcome, Race, RaceError, MIN_ATTEMPT_GAP};
use crate::engine::{Family, Micros};

impl Race {
    pub(super) fn total_deadline(&self) -> Option<Micros> {
        self.config.total_timeout.map(|t| self.created.saturating_add(t))
    }

    /// When the Resolution Delay ends, while it is running.
    pub(super) fn resolution_deadline(&self) -> Option<Micros> {
        if self.held {
            return None;
        }
        self.resolution_due()
    }

    /// [`Race::resolution_deadline`] as if the race were not held.
    pub(super) fn resolution_due(&self) -> Option<Micros> {
        if self.racing {
            return None;
        }
        // HEv3 §6.3: ECH required never races before the HTTPS answers.
        if self.svc.as_ref().is_some_and(|s| s.ech_required && !s.https_done()) {
            return None;
        }
        let held_by_history = self.all_known_failed().then(|| self.created.saturating_add(self.config.resolution_delay));
        self.first_a_answer
            .map(|t| t.saturating_add(self.config.resolution_delay))
            .into_iter()
            .chain(held_by_history)
            .min()
    }

    /// Whether history says every known candidate failed recently while a
    /// query is still outstanding: then racing waits for the other answers
    /// (the other family), at most the Resolution Delay after the race
    /// began (HEv3 draft -04 §5.3 with RFC 8305 §3).
    fn all_known_failed(&self) -> bool {
        let Some(h) = &self.history else { return false };
        self.is_resolving()
            && !self.known.is_empty()
            && self.known.iter().all(|c| h.hint(&c.addr).is_some_and(|x| x.failed.is_some()))
    }

    /// When the next attempt starts, while a candidate is pending: the
    /// Connection Attempt Delay after the previous start, or
    /// [`MIN_ATTEMPT_GAP`] after it when a start is owed (`deferred`).
    pub(super) fn attempt_delay_deadline(&self) -> Option<Micros> {
        if !self.racing || self.next_pending().is_none() {
            return None;
        }
        let last = self.last_start?;
        let owed = (self.deferred > 0).then(|| last.saturating_add(MIN_ATTEMPT_GAP));
        // Micros::MAX: failover racing of endpoints (only a failure starts
        // the next one).
        let delay = self.attempt_delay();
        let timer = (delay != Micros::MAX).then(|| last.saturating_add(delay));
        let due = owed.into_iter().chain(timer).min()?;
        // A fallback address the HTTPS services hold back starts no sooner
        // than the hold ends.
        Some(match self.held_fallback_until() {
            Some(hold) => due.max(hold),
            None => due,
        })
    }

    /// When the held-back fallback addresses may start, if the next
    /// pending candidate is one (see [`Race::next_startable`]).
    pub(super) fn held_fallback_until(&self) -> Option<Micros> {
        let svc = self.svc.as_ref()?;
        let hold = svc.fallback_hold?;
        (!self.attempts.is_empty() && svc.targets_open() && self.next_pending().is_some_and(|i| svc.is_fallback(i)))
            .then_some(hold)
    }

    /// Whether a start now would come within [`MIN_ATTEMPT_GAP`] of the
    /// previous one (RFC 8305 §5).
    fn within_gap(&self, now: Micros) -> bool {
        self.last_start.is_some_and(|t| now < t.saturating_add(MIN_ATTEMPT_GAP))
    }

    /// Start the next pending candidate now, or owe the start until
    /// [`MIN_ATTEMPT_GAP`] after the previous one; false if no candidate is
    /// pending or the start is owed.
    fn start_soon(&mut self, now: Micros) -> bool {
        if self.next_pending().is_none() {
            return false;
        }
        if self.within_gap(now) {
            // At most one owed start per pending candidate: a failure with
            // nothing left to start starts nothing later on.
            let pending = self.order().iter().filter(|&&i| !self.attempts.iter().any(|a| a.candidate == i)).count();
            if usize::from(self.deferred) < pending {
                self.deferred = self.deferred.saturating_add(1);
            }
            return false;
        }
        self.start_next(now)
    }

    /// The first candidate in order not attempted yet, as its index in
    /// `known`.
    pub(super) fn next_pending(&self) -> Option<u32> {
        self.order().iter().copied().find(|&i| !self.attempts.iter().any(|a| a.candidate == i))
    }

    /// The first candidate in order that may start at `now`: as
    /// [`Race::next_pending`], without the fallback addresses while the
    /// HTTPS services hold them back
    /// ([`crate::engine::service::ServiceState::holds_fallback`]).
    pub(super) fn next_startable(&self, now: Micros) -> Option<u32> {
        // Only once a service's attempt has been made: a race that starts
        // with fallback addresses alone (its targets silent past the
        // Resolution Delay) races them at once.
        let Some(svc) = self.svc.as_ref().filter(|s| !self.attempts.is_empty() && s.holds_fallback(now)) else {
            return self.next_pending();
        };
        self.order()
            .iter()
            .copied()
            .find(|&i| !self.attempts.iter().any(|a| a.candidate == i) && !svc.is_fallback(i))
    }

    /// When a fallback address held back by the services may start, if
    /// that is what the race waits for with nothing running (with an
    /// attempt running, [`Race::attempt_delay_deadline`] says when).
    pub(super) fn fallback_hold_deadline(&self) -> Option<Micros> {
        self.held_fallback_until().filter(|_| self.racing && self.running() == 0)
    }

    pub(super) fn running(&self) -> usize {
        self.attempts
            .iter()
            .filter(|r| r.outcome == Outcome::Running)
            .count()
    }

    fn aaaa_all_ended(&self) -> bool {
        self.queries
            .iter()
            .all(|(k, answered)| k.family != Family::V6 || *answered)
    }

    /// RFC 8305 §3: whether racing may start now.
    fn may_start_racing(&self, now: Micros) -> bool {
        !self.held && self.ready_to_race(now)
    }

    /// [`Race::may_start_racing`] as if the race were not held.
    pub(super) fn ready_to_race(&self, now: Micros) -> bool {
        if self.known.is_empty() {
            return false;
        }
        if self.all_known_failed() && now < self.created.saturating_add(self.config.resolution_delay) {
            return false;
        }
        if let Some(svc) = &self.svc {
            // HEv3 §4.2 (the ECH rule is in `resolution_deadline`).
            return !self.order().is_empty()
                && ((svc.service_info_ready() && (self.aaaa_answered || self.aaaa_all_ended()))
                    || self.resolution_due().is_some_and(|t| t <= now));
        }
        self.aaaa_answered
            || self.aaaa_all_ended()
            || self.resolution_due().is_some_and(|t| t <= now)
    }

    /// Start the next pending candidate; false if there is none.
    pub(super) fn start_next(&mut self, now: Micros) -> bool {
        let Some(candidate) = self.next_startable(now) else {
            return false;
        };
        self.start(now, candidate);
        true
    }

    /// Start an attempt of candidate `candidate` (an index in `known`).
    fn start(&mut self, now: Micros, candidate: u32) {
        let attempt = self.attempts.len();
        crate::engine::push_first_exact(&mut self.attempts, Attempt { candidate, outcome: Outcome::Running, started: now, ended: None });
        self.last_start = Some(now);
        self.deferred = self.deferred.saturating_sub(1);
        self.actions.push_back(Action::Start { attempt, addr: self.known[candidate as usize].addr });
    }

    /// Attempt timeouts of kept losers after the end.
    pub(super) fn expire_kept(&mut self, now: Micros) {
        let Some(timeout) = self.config.attempt_timeout else { return };
        for (attempt, r) in self.attempts.iter_mut().enumerate() {
            if r.outcome == Outcome::Running && r.started.saturating_add(timeout) <= now {
                r.outcome = Outcome::Failed(libc::ETIMEDOUT);
                r.ended = Some(now);
                self.actions.push_back(Action::Cancel { attempt });
            }
        }
    }

    /// Start candidate `index` of the order again (race_count larger than
    /// the number of candidates).
    fn start_again(&mut self, now: Micros, index: usize) {
        self.start(now, self.order()[index]);
    }

    /// Cancel every running attempt (record and action).
    pub(super) fn cancel_running(&mut self, now: Micros) {
        for (attempt, r) in self.attempts.iter_mut().enumerate() {
            if r.outcome == Outcome::Running {
                r.outcome = Outcome::Cancelled;
                r.ended = Some(now);
                self.actions.push_back(Action::Cancel { attempt });
            }
        }
    }

    /// End the race with `error`.
    pub(super) fn fail(&mut self, now: Micros, error: RaceError) {
        self.cancel_running(now);
        self.finished = true;
        self.start_credits = 0;
        self.actions.push_back(Action::Failed { error });
    }

    /// Apply every rule until nothing more is due at `now`.
    pub(super) fn pump(&mut self, now: Micros) {
        while !self.finished && self.step(now) {}
        self.start_credits = 0;
    }

    /// One round of the rules; true if something changed that may make
    /// another rule due.
    fn step(&mut self, now: Micros) -> bool {
        // Total timeout.
        if self.total_deadline().is_some_and(|t| t <= now) {
            self.fail(now, RaceError::TimedOut);
            return false;
        }
        // Attempt timeouts: fail with ETIMEDOUT, close the socket.
        if let Some(timeout) = self.config.attempt_timeout {
            for (attempt, r) in self.attempts.iter_mut().enumerate() {
                if r.outcome == Outcome::Running && r.started.saturating_add(timeout) <= now {
                    r.outcome = Outcome::Failed(libc::ETIMEDOUT);
                    r.ended = Some(now);
                    self.last_errno = libc::ETIMEDOUT;
                    self.start_credits += 1;
                    self.actions.push_back(Action::Cancel { attempt });
                }
            }
        }
        // RFC 8305 §3: end of the resolution phase.
        if !self.racing {
            if !self.may_start_racing(now) {
                return self.check_end(now);
            }
            self.racing = true;
            let hold = now.saturating_add(self.attempt_delay().min(2_000_000));
            if let Some(svc) = self.svc.as_mut() {
                svc.fallback_hold = Some(hold);
            }
            for _ in 0..self.config.race_count.max(1) {
                if !self.start_next(now) {
                    break;
                }
            }
            return true;
        }
        // RFC 8305 §5: a failure starts the next candidate at once, but
        // not within 10 ms of the previous start.
        while self.start_credits > 0 {
            self.start_credits -= 1;
            if self.start_soon(now) {
                return true;
            }
            if self.next_pending().is_none() {
                self.start_credits = 0;
            }
        }
        // The initial batch of race_count is not complete (racing started
        // with fewer candidates): late candidates join it at once.
        if self.attempts.len() < self.config.race_count.max(1) && self.start_next(now) {
            return true;
        }
        // race_count above the number of candidates, resolution over:
        // attempt the candidates again until race_count attempts started.
        let want = self.config.race_count.max(1);
        if want != usize::MAX
            && self.attempts.len() < want
            && !self.order().is_empty()
            && self.next_pending().is_none()
            && !self.is_resolving()
        {
            let index = self.attempts.len() % self.order().len();
            self.start_again(now, index);
            return true;
        }
        // Nothing running (late answers): start at once, but not within
        // 10 ms of the previous start.
        if self.running() == 0 && self.deferred == 0 && self.start_soon(now) {
            return true;
        }
        // Connection Attempt Delay, or a start owed since the 10 ms gap.
        if self.attempt_delay_deadline().is_some_and(|t| t <= now) && self.start_next(now) {
            return true;
        }
        self.check_end(now)
    }

    /// Fail the race if nothing can happen any more. Always false (nothing
    /// more to do in this round).
    fn check_end(&mut self, now: Micros) -> bool {
        if self.running() > 0 || self.is_resolving() || self.next_pending().is_some() {
            return false;
        }
        let error = if self.attempts.is_empty() {
            RaceError::ResolutionFailed(self.last_resolution_error)
        } else {
            RaceError::AllAttemptsFailed(self.last_errno)
        };
        self.fail(now, error);
        false
    }
}
