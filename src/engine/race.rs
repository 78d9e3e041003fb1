//! One race: resolution, staggered attempts, first ready wins.
//!
//! Rules (see ../shared/DESIGN.md "Racing rules"):
//!
//! - RFC 8305 §3, Resolution Delay: AAAA and A are asked at once. Racing
//!   starts as soon as any AAAA query answers with addresses. If an A answer
//!   comes first, racing starts when the AAAA queries answer, or when the
//!   Resolution Delay (default 50 ms) has passed since that first A answer,
//!   whichever is first. If every AAAA query has ended (failed or empty),
//!   racing starts with what A gave. Answers that arrive during the race are
//!   merged into the list of candidates not yet attempted (RFC 8305 §3, §6;
//!   HEv3 draft §4.3); a duplicate address is ignored.
//! - RFC 8305 §4 / RFC 6724 §6: the candidate list is ordered by
//!   [`super::sort::order`] over every candidate known so far; attempts are
//!   taken from that order, skipping those already started.
//! - RFC 8305 §5, Connection Attempt Delay: when racing starts,
//!   `race_count` attempts start at once (distinct candidates, default 1);
//!   after that one attempt starts every `connection_attempt_delay` after
//!   the previous start (or the delay history gives, see
//!   [`Race::add_history`]), or at once when any running attempt fails.
//!   When nothing is running and new candidates arrive, the next one
//!   starts at once. "At once" is never within [`MIN_ATTEMPT_GAP`] (10 ms)
//!   of the previous start (RFC 8305 §5): such a start waits until then.
//!   Earlier attempts keep running: only their own `attempt_timeout`
//!   (failure with ETIMEDOUT) or the end of the race stops them.
//! - History (HEv3 draft -04 §5.3, [`Race::add_history`]): the order of
//!   [`super::history::order`]; while every known candidate failed recently
//!   and a query is outstanding, racing waits for it, at most the
//!   Resolution Delay after [`Race::new`].
//! - `total_timeout`: the race fails with [`RaceError::TimedOut`] when it
//!   has not been won that long after [`Race::new`].
//! - RFC 9623 §4.3: the first attempt reported ready wins; every other
//!   running attempt is cancelled; no attempt starts after the race ended;
//!   a ready report for an attempt after the end gets a [`Action::Cancel`].
//!   Exactly one of [`Action::Won`] / [`Action::Failed`] is ever emitted.

use super::{AttemptId, Candidate, Family, Micros, QueryKey};
use std::net::SocketAddr;

mod hev3;
mod joint;
mod rules;

pub use hev3::AttemptService;
pub use joint::JointKey;
/// RFC 8305 §5: "a subsequent connection MUST NOT be started within 10
/// milliseconds of the previous attempt", µs. A start that a failure or a
/// late answer calls for waits until then; the starts of the first batch
/// (`race_count`, immediate racing) are simultaneous by request.
///
/// cbindgen:ignore
pub const MIN_ATTEMPT_GAP: Micros = 10_000;

/// Timing and counts for one race, already validated and clamped by the
/// API layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaceConfig {
    /// RFC 8305 §5 Connection Attempt Delay, µs. `Micros::MAX` means
    /// failover racing: only a failure starts the next attempt.
    pub connection_attempt_delay: Micros,
    /// RFC 8305 §3 Resolution Delay, µs.
    pub resolution_delay: Micros,
    /// RFC 8305 §4 First Address Family Count (≥ 1).
    pub first_address_family_count: usize,
    /// Deadline of one attempt after its start, µs; `None` for none.
    pub attempt_timeout: Option<Micros>,
    /// Deadline of the whole race after [`Race::new`], µs; `None` for none.
    pub total_timeout: Option<Micros>,
    /// Attempts started at once when racing starts (≥ 1). `usize::MAX`
    /// means immediate racing: every candidate starts as soon as it is known.
    /// With fewer candidates than `race_count` once resolution is over, the
    /// candidates are attempted again, in order, until `race_count`
    /// attempts have started (several attempts of one candidate).
    pub race_count: usize,
    /// Keep the losers: when the race is won, attempts still running are
    /// not cancelled; one that becomes ready later is reported as
    /// [`Action::Spare`] (a connection pool buffers it). No new attempt
    /// starts after the win.
    pub keep_losers: bool,
}

impl Default for RaceConfig {
    fn default() -> Self {
        RaceConfig {
            connection_attempt_delay: 250_000,
            resolution_delay: 50_000,
            first_address_family_count: 1,
            attempt_timeout: None,
            total_timeout: None,
            race_count: 1,
            keep_losers: false,
        }
    }
}

/// How an attempt ended, or that it has not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Started, not ended.
    Running,
    /// The winner.
    Won,
    /// Failed with this errno (ETIMEDOUT for an attempt timeout).
    Failed(i32),
    /// Stopped by the engine because the race ended.
    Cancelled,
    /// Ready after the race was won, with `keep_losers`: a spare
    /// connection.
    Spare,
}

/// The report of one started attempt (made on request from what the race
/// keeps, see [`Race::attempt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The candidate attempted.
    pub candidate: Candidate,
    /// When it started, µs on the loop's clock.
    pub started: Micros,
    /// When it ended, µs on the loop's clock; `None` while running.
    pub ended: Option<Micros>,
    /// How it ended.
    pub outcome: Outcome,
}

/// One started attempt as the race keeps it: the candidate by its index in
/// the known candidates (stored once there), not a copy.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    /// Index of the candidate in `Race::known`.
    candidate: u32,
    /// How it ended, or Running.
    outcome: Outcome,
    /// When it started.
    started: Micros,
    /// When it ended; `None` while running.
    ended: Option<Micros>,
}

/// Why a race failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaceError {
    /// Every query ended without a single address. Carries the last
    /// query's error code as the driver gave it (a getaddrinfo EAI_* code,
    /// or 0 when the answers were just empty).
    ResolutionFailed(i32),
    /// Every candidate was attempted and every attempt failed. Carries the
    /// errno of the last attempt to fail.
    AllAttemptsFailed(i32),
    /// `total_timeout` passed before any attempt was ready.
    TimedOut,
    /// The user cancelled the race ([`Race::cancel`]).
    Cancelled,
}

/// What the driver must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a connection attempt to `addr`; report it with
    /// [`Race::on_attempt_ready`] or [`Race::on_attempt_failed`].
    Start {
        /// The attempt's id (its index in [`Race::attempts`]).
        attempt: AttemptId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Stop this attempt and close its socket. The engine has already
    /// recorded its outcome (Cancelled, or Failed(ETIMEDOUT) for an attempt
    /// timeout). Every Cancel for a race's losers is emitted before its
    /// [`Action::Won`].
    Cancel {
        /// The attempt to stop.
        attempt: AttemptId,
    },
    /// The race is won by this attempt. Emitted once, after the losers'
    /// Cancels.
    Won {
        /// The winner.
        attempt: AttemptId,
    },
    /// With `keep_losers`: this attempt became ready after the race was
    /// won; its connection is a spare.
    Spare {
        /// The attempt.
        attempt: AttemptId,
    },
    /// The race failed. Emitted once, after every running attempt's Cancel.
    Failed {
        /// Why.
        error: RaceError,
    },
}

/// One race's state machine.
///
/// # Driving it
///
/// Feed one input ([`Race::on_answer`], [`Race::on_attempt_ready`],
/// [`Race::on_attempt_failed`], [`Race::on_timer`], [`Race::cancel`]),
/// then drain [`Race::poll_action`] until it returns `None`; more inputs may
/// be fed while draining (their actions are appended to the queue). Sleep
/// until [`Race::next_deadline`] and call [`Race::on_timer`] then. A race
/// created with no query at all fails at once: drain its actions after
/// [`Race::new`] too.
///
/// With HTTPS records (HEv3), call [`Race::expect_services`] right after
/// creating it, drain [`Race::poll_resolve`] after each input as well, and
/// feed [`Race::on_service_answer`] and [`Race::on_target_answer`]; the
/// rules are in [`super::service`].
///
/// # Details of the rules
///
/// - The Resolution Delay runs from the first A answer that carries at
///   least one address.
/// - A failure (reported, or an attempt timeout) starts one pending
///   candidate at once (at the earliest [`MIN_ATTEMPT_GAP`] after the
///   previous start), if there is one; a failure with nothing pending
///   starts nothing later on. The Connection Attempt Delay then runs from
///   that start. When a failure and the delay boundary fall on the same
///   instant, one attempt starts.
/// - If racing started with fewer than `race_count` candidates, candidates
///   that arrive later start at once until `race_count` attempts have
///   started (so two literals answered one after the other at the same
///   instant are raced together with `race_count = 2`).
/// - Candidates that arrive while an attempt is running start at the next
///   delay boundary (previous start + Connection Attempt Delay), at once if
///   that boundary has passed.
/// - A ready report for an attempt that is not running (it failed, timed
///   out, or the race has ended), other than the winner, gets an
///   [`Action::Cancel`] so that its socket is closed; its record is not
///   changed. Reports for unknown attempt ids are ignored.
/// - [`RaceError::ResolutionFailed`] carries the last error code given by a
///   query, or 0 if every query answered with no address and no error.
/// - Deadlines processed late start at most one attempt for the Connection
///   Attempt Delay (starts are not back-dated) and record `now` as the end
///   of timed-out attempts.
#[derive(Debug)]
pub struct Race {
    config: RaceConfig,
    /// When the race was created.
    created: Micros,
    /// Every expected query, and whether it has been answered.
    queries: Box<[(QueryKey, bool)]>,
    /// Every candidate known so far, in arrival order, no duplicate address.
    known: Vec<Candidate>,
    /// `known` ordered by [`super::sort::order`], as indices into `known`
    /// (a candidate is stored once); empty for a lone candidate, which is
    /// its own order (see [`Race::order`]): no allocation for it.
    ordered: Box<[u32]>,
    // Candidates already attempted are found by scanning `attempts`: a race
    // has a handful, and a set would cost an allocation per race.
    attempts: Vec<Attempt>,
    /// Whether the Resolution Delay phase is over and attempts may start.
    racing: bool,
    /// Addresses to attempt only after every other (see `set_avoided`).
    avoided: Box<[SocketAddr]>,
    /// The NAT64 prefix whose addresses sort as IPv4 (see `set_pref64`).
    pref64: Option<super::nat64::Pref64>,
    /// What history knows of the candidates (see `add_history`); `None`
    /// (no allocation) when it knows nothing.
    history: Option<Box<super::history::RaceHistory>>,
    /// Starts owed to failures or late answers that came within
    /// [`MIN_ATTEMPT_GAP`] of the previous start: each is due that long
    /// after the previous start.
    deferred: u16,
    /// Created held by a branch scheduler: answers are taken, nothing
    /// starts until [`Race::activate`].
    held: bool,
    /// When the first A answer with addresses arrived.
    first_a_answer: Option<Micros>,
    /// Whether an AAAA query answered with at least one address.
    aaaa_answered: bool,
    /// When the last attempt started.
    last_start: Option<Micros>,
    /// Failures not yet answered by a start (within one input).
    start_credits: u16,
    /// errno of the last attempt failure.
    last_errno: i32,
    /// Last error code given by a query.
    last_resolution_error: i32,
    finished: bool,
    // The winner is the attempt whose outcome is Won (at most one): no
    // field of its own.
    actions: super::Queue<Action>,
    /// The HEv3 state when HTTPS answers are expected
    /// ([`Race::expect_services`]); `None`: RFC 8305 alone.
    svc: Option<Box<super::service::ServiceState>>,
}

impl Race {
    /// A race that expects an answer for each of `queries` (one per remote
    /// endpoint and family; literal addresses included: the driver answers
    /// them at once). `now` is the race's start time.
    pub fn new(config: RaceConfig, now: Micros, queries: &[QueryKey]) -> Race {
        let mut qs: Vec<(QueryKey, bool)> = Vec::with_capacity(queries.len());
        for q in queries {
            if !qs.iter().any(|(k, _)| k == q) {
                qs.push((*q, false));
            }
        }
        let mut race = Race {
            config,
            created: now,
            queries: qs.into_boxed_slice(),
            known: Vec::new(),
            ordered: Box::default(),
            attempts: Vec::new(),
            racing: false,
            avoided: Box::default(),
            pref64: None,
            history: None,
            deferred: 0,
            held: false,
            first_a_answer: None,
            aaaa_answered: false,
            last_start: None,
            start_credits: 0,
            last_errno: 0,
            last_resolution_error: 0,
            finished: false,
            actions: super::Queue::default(),
            svc: None,
        };
        race.pump(now);
        race
    }

    /// Like [`Race::new`], but held: answers are taken and sorted, nothing
    /// starts until [`Race::activate`]. A branch scheduler
    /// ([`super::tree::Tree`]) makes one per branch at the start, so that
    /// every branch sees every answer.
    pub fn new_held(config: RaceConfig, now: Micros, queries: &[QueryKey]) -> Race {
        let mut race = Race::new(config, now, queries);
        race.held = !race.finished;
        race
    }

    /// Let a held race start: racing starts now if the Resolution Delay
    /// rules allow it. No-op if it is not held.
    pub fn activate(&mut self, now: Micros) {
        if self.held {
            self.held = false;
            self.pump(now);
        }
    }

    /// When the race was created (its `now` at [`Race::new`]).
    pub fn created(&self) -> Micros {
        self.created
    }

    /// Whether the race is held (see [`Race::new_held`]).
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// An answer to one query: candidates (possibly empty) or an error code.
    /// An answer for a query not expected, or given twice, is ignored.
    pub fn on_answer(&mut self, now: Micros, query: QueryKey, answer: Result<Vec<Candidate>, i32>) {
        self.take_answer(now, query, answer);
        self.pump(now);
    }

    /// Several answers that arrived at the same instant (the literal
    /// addresses of a Preconnection, known at once): all are taken before
    /// the rules run, so racing starts with every one of them.
    pub fn on_answers(&mut self, now: Micros, answers: Vec<(QueryKey, Result<Vec<Candidate>, i32>)>) {
        for (query, answer) in answers {
            self.take_answer(now, query, answer);
        }
        self.pump(now);
    }

    fn take_answer(&mut self, now: Micros, query: QueryKey, answer: Result<Vec<Candidate>, i32>) {
        let Some(entry) = self.queries.iter_mut().find(|(k, _)| *k == query) else {
            return;
        };
        if entry.1 {
            return;
        }
        entry.1 = true;
        if self.finished {
            return;
        }
        if self.svc.is_some() {
            self.take_host_answer(now, query, answer);
            return;
        }
        match answer {
            Err(code) => self.last_resolution_error = code,
            Ok(candidates) => {
                if !candidates.is_empty() {
                    match query.family {
                        Family::V6 => self.aaaa_answered = true,
                        Family::V4 => {
                            if self.first_a_answer.is_none() {
                                self.first_a_answer = Some(now);
                            }
                        }
                    }
                }
                let mut added = false;
                if self.known.is_empty() && !candidates.is_empty() && candidates.len() == candidates.capacity() {
                    // The first answer's list becomes the known candidates
                    // (duplicates dropped, first ones kept): no copy.
                    let mut kept = candidates;
                    let mut i = 1;
                    while i < kept.len() {
                        if kept[..i].iter().any(|k| k.addr == kept[i].addr) {
                            kept.remove(i);
                        } else {
                            i += 1;
                        }
                    }
                    self.known = kept;
                    self.reorder();
                    return;
                }
                self.known.reserve_exact(candidates.len());
                for c in candidates {
                    if !self.known.iter().any(|k| k.addr == c.addr) {
                        self.known.push(c);
                        added = true;
                    }
                }
                if added {
                    self.reorder();
                }
            }
        }
    }

    /// The attempt's connection is ready. The first one wins.
    pub fn on_attempt_ready(&mut self, now: Micros, attempt: AttemptId) {
        let Some(record) = self.attempts.get(attempt) else {
            return;
        };
        if record.outcome == Outcome::Won {
            return;
        }
        if record.outcome == Outcome::Running && self.finished && self.config.keep_losers {
            // Ready after the end, kept: a spare connection.
            let record = &mut self.attempts[attempt];
            record.outcome = Outcome::Spare;
            record.ended = Some(now);
            self.actions.push_back(Action::Spare { attempt });
            return;
        }
        if self.finished || record.outcome != Outcome::Running {
            // Too late: close its socket, keep its record.
            self.actions.push_back(Action::Cancel { attempt });
            return;
        }
        let record = &mut self.attempts[attempt];
        record.outcome = Outcome::Won;
        record.ended = Some(now);
        if !self.config.keep_losers {
            self.cancel_running(now);
        }
        self.finished = true;
        self.actions.push_back(Action::Won { attempt });
    }

    /// Prefer other candidates to these addresses: they keep their RFC
    /// 8305 order but come after every other candidate (a connection group
    /// rebuilding a member away from the live members' addresses).
    pub fn set_avoided(&mut self, addrs: &[SocketAddr]) {
        self.avoided = addrs.into();
        self.reorder();
    }

    /// Sort the candidates inside the NAT64 prefix `pref64` (DNS64 answers,
    /// synthesized addresses) as the IPv4 addresses they carry (see
    /// [`super::sort::order_with_pref64`]).
    pub fn set_pref64(&mut self, pref64: Option<super::nat64::Pref64>) {
        self.pref64 = pref64;
        self.reorder();
    }

    /// What history knows of destination `addr` (HEv3 draft -04 §5.3,
    /// [`super::history`]): it sorts by it, and when `adapt_delay`, the
    /// Connection Attempt Delay follows the RTTs known (RFC 8305 §5). Give
    /// it before the answer that carries `addr`.
    pub fn add_history(&mut self, addr: SocketAddr, hint: super::history::Hint, adapt_delay: bool) {
        let h = self.history.get_or_insert_with(Box::default);
        h.adapt_delay = adapt_delay;
        h.set(addr, hint);
        if self.known.iter().any(|c| c.addr == addr) {
            self.reorder();
        }
    }

    /// What history told the race (see [`Race::add_history`]).
    pub fn history(&self) -> Option<&super::history::RaceHistory> {
        self.history.as_deref()
    }

    /// The Connection Attempt Delay in force: from history's RTTs when it
    /// adapts, else the configured one.
    pub fn attempt_delay(&self) -> Micros {
        if self.config.connection_attempt_delay == Micros::MAX {
            return Micros::MAX;
        }
        self.history.as_ref().and_then(|h| h.attempt_delay()).unwrap_or(self.config.connection_attempt_delay)
    }

    /// Sort every known candidate (RFC 6724, RFC 8305 §4), avoided
    /// addresses last.
    fn reorder(&mut self) {
        if self.svc.is_some() {
            self.reorder_services();
            return;
        }
        // One candidate is its own order.
        if self.known.len() == 1 {
            self.ordered = Box::default();
            return;
        }
        let mut ordered = match &self.history {
            Some(h) => super::history::order(&self.known, self.config.first_address_family_count, h),
            None => super::sort::order_with_pref64(&self.known, self.config.first_address_family_count, self.pref64.as_ref()),
        };
        if !self.avoided.is_empty() {
            ordered.sort_by_key(|c| self.avoided.contains(&c.addr));
        }
        // Addresses are unique in `known`: each finds its own index.
        let index = |c: &Candidate| self.known.iter().position(|k| k.addr == c.addr).expect("sorted from known") as u32;
        self.ordered = ordered.iter().map(index).collect();
    }

    /// Stop starting attempts without cancelling the running ones (used by
    /// a tree when another branch won and losers are kept). No action.
    pub fn stop_starting(&mut self) {
        self.finished = true;
    }

    /// Attempts still running.
    pub fn running_count(&self) -> usize {
        self.running()
    }

    /// The attempt failed with `errno`. Ignored if it had already ended.
    pub fn on_attempt_failed(&mut self, now: Micros, attempt: AttemptId, errno: i32) {
        let Some(record) = self.attempts.get_mut(attempt) else {
            return;
        };
        if record.outcome != Outcome::Running {
            return;
        }
        if self.finished {
            // Only a kept loser is still running after the end.
            record.outcome = Outcome::Failed(errno);
            record.ended = Some(now);
            return;
        }
        record.outcome = Outcome::Failed(errno);
        record.ended = Some(now);
        self.last_errno = errno;
        self.start_credits += 1;
        self.pump(now);
    }

    /// Process every deadline that is due at `now` (Resolution Delay,
    /// Connection Attempt Delay, attempt and total timeouts). Calling it
    /// early or twice is harmless.
    pub fn on_timer(&mut self, now: Micros) {
        if self.finished {
            self.expire_kept(now);
        }
        self.pump(now);
    }

    /// The user gave up: every running attempt is cancelled and the race
    /// ends with [`RaceError::Cancelled`] (a [`Action::Failed`] follows the
    /// Cancels). After the end, only losers kept running (`keep_losers`)
    /// are cancelled; nothing else happens.
    pub fn cancel(&mut self, now: Micros) {
        if !self.finished {
            self.fail(now, RaceError::Cancelled);
        } else {
            // Kept losers still running: stop them too.
            self.cancel_running(now);
        }
    }

    /// The earliest time at which [`Race::on_timer`] has work to do, if any.
    /// `None` once the race has ended.
    pub fn next_deadline(&self) -> Option<Micros> {
        if self.finished {
            // Kept losers still time out.
            let timeout = self.config.attempt_timeout?;
            return self
                .attempts
                .iter()
                .filter(|r| r.outcome == Outcome::Running)
                .map(|r| r.started.saturating_add(timeout))
                .min();
        }
        let mut deadline: Option<Micros> = None;
        let mut consider = |t: Micros| {
            deadline = Some(deadline.map_or(t, |d| d.min(t)));
        };
        if let Some(t) = self.total_deadline() {
            consider(t);
        }
        if let Some(timeout) = self.config.attempt_timeout {
            for r in self.attempts.iter().filter(|r| r.outcome == Outcome::Running) {
                consider(r.started.saturating_add(timeout));
            }
        }
        if let Some(t) = self.resolution_deadline() {
            consider(t);
        }
        if let Some(t) = self.attempt_delay_deadline() {
            consider(t);
        }
        if let Some(t) = self.fallback_hold_deadline() {
            consider(t);
        }
        deadline
    }

    /// The next action, in the order they must be carried out.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether the race has ended (won, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Every attempt started so far, in start order (index = [`AttemptId`]).
    pub fn attempts(&self) -> impl ExactSizeIterator<Item = AttemptRecord> + '_ {
        self.attempts.iter().map(|a| self.record(a))
    }

    /// The record of attempt `attempt`, if it was started.
    pub fn attempt(&self, attempt: AttemptId) -> Option<AttemptRecord> {
        self.attempts.get(attempt).map(|a| self.record(a))
    }

    /// Number of attempts started.
    pub fn attempt_count(&self) -> usize {
        self.attempts.len()
    }

    /// The report of a kept attempt.
    fn record(&self, a: &Attempt) -> AttemptRecord {
        AttemptRecord { candidate: self.known[a.candidate as usize], started: a.started, ended: a.ended, outcome: a.outcome }
    }

    /// Whether a query is still unanswered.
    pub fn is_resolving(&self) -> bool {
        self.queries.iter().any(|(_, answered)| !answered) || self.svc.as_ref().is_some_and(|s| s.is_resolving())
    }

    /// The winning attempt, once the race is won.
    pub fn winner(&self) -> Option<AttemptId> {
        self.attempts.iter().position(|r| r.outcome == Outcome::Won)
    }

    /// Every candidate known so far, in the order they are (or were)
    /// attempted: RFC 6724 §6 sorted and RFC 8305 §4 interleaved.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.ordered().collect()
    }

    /// The known candidates in order.
    fn ordered(&self) -> impl Iterator<Item = Candidate> + '_ {
        self.order().iter().map(|&i| self.known[i as usize])
    }

    /// The order of the known candidates, as indices into `known`.
    fn order(&self) -> &[u32] {
        if self.known.len() == 1 && self.svc.is_none() {
            &[0]
        } else {
            &self.ordered
        }
    }

    /// The configuration the race was created with.
    pub fn config(&self) -> &RaceConfig {
        &self.config
    }
}
