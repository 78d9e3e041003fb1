//! The candidate tree of RFC 9623 §4.1 and branch racing of §4.3.
//!
//! ROOT → PATH → PROTOCOL → ENDPOINT. The driver gives the ordered,
//! already pruned path and protocol branches ([`PathBranch`],
//! [`ProtocolBranch`], see [`super::select`]); each (path, protocol) leaf
//! races the endpoints with a [`Race`] (RFC 8305 rules). Every leaf sees
//! every DNS answer from the start; a leaf only starts attempts once its
//! branch is activated.
//!
//! How a branch is activated relative to its earlier siblings is its
//! [`RacingType`] (RFC 9623 §4.3):
//!
//! - [`RacingType::Immediate`]: together with the previous sibling;
//! - [`RacingType::Delayed`]: the delay after the previous sibling was
//!   activated, or at once when the previous sibling has failed;
//! - [`RacingType::Failover`]: only when every earlier sibling has failed.
//!
//! The first branch of a level is activated with its parent. A branch has
//! failed when every leaf below it has failed. A path whose protocols all
//! serve registered ALPN ids races its protocols as one list instead
//! (HEv3 §5–§6, `joint`). The first attempt ready in
//! any leaf wins; every other attempt in every leaf is cancelled.
//!
//! A tree of one leaf (one path, one protocol: most races) is kept as its
//! leaf's race alone (`one_leaf`); any other tree by the general branch
//! scheduler (`Branches`). Both behave the same on one leaf.

mod hev3;
mod joint;
mod one_leaf;

use super::race::{Action as RaceAction, AttemptRecord, Outcome, Race, RaceConfig, RaceError};
use super::{AttemptId, Candidate, Micros, QueryKey};
use one_leaf::OneLeaf;
use std::collections::VecDeque;
use std::net::SocketAddr;

// How a branch starts relative to its earlier siblings: a vocabulary
// type, since the api's options name it too.
pub use crate::vocabulary::options::RacingType;

/// A protocol branch under a path: the driver's protocol id and how it
/// races its earlier siblings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolBranch {
    /// The driver's protocol id.
    pub protocol: usize,
    /// How it starts relative to the protocols before it.
    pub racing: RacingType,
}

/// A path branch: the driver's path id, how it races its earlier siblings,
/// and its protocol branches in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathBranch {
    /// The driver's path id.
    pub path: usize,
    /// How it starts relative to the paths before it.
    pub racing: RacingType,
    /// Its protocols, in order.
    pub protocols: Vec<ProtocolBranch>,
}

/// What the driver must do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start an attempt to `addr` with protocol `protocol` on path `path`.
    Start {
        /// Tree-wide attempt id (index in [`Tree::attempts`]).
        attempt: AttemptId,
        /// Where to connect.
        addr: SocketAddr,
        /// The driver's path id.
        path: usize,
        /// The driver's protocol id.
        protocol: usize,
    },
    /// Stop this attempt and release what it holds. Repeated Cancels for
    /// one attempt may come; only the first matters.
    Cancel {
        /// The attempt.
        attempt: AttemptId,
    },
    /// The race is won by this attempt; emitted once, after every Cancel.
    Won {
        /// The winner.
        attempt: AttemptId,
    },
    /// With `keep_losers`: an attempt ready after the win, a spare.
    Spare {
        /// The attempt.
        attempt: AttemptId,
    },
    /// The race failed; emitted once, after every Cancel.
    Failed {
        /// Why.
        error: RaceError,
    },
}

/// One attempt with the branch it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeAttempt {
    /// The attempt's record (times on the loop's clock).
    pub record: AttemptRecord,
    /// The driver's path id.
    pub path: usize,
    /// The driver's protocol id.
    pub protocol: usize,
}

#[derive(Debug)]
struct Leaf {
    race: Race,
    path: usize,
    protocol: usize,
    racing: RacingType,
    activated: Option<Micros>,
    failed: bool,
}

#[derive(Debug)]
struct PathNode {
    racing: RacingType,
    activated: Option<Micros>,
    /// Indices into `Branches::leaves`.
    leaves: std::ops::Range<usize>,
    /// Its leaves scheduled as one list (protocols by ALPN, see `joint`);
    /// `None`: they race as branches.
    joint: Option<joint::Joint>,
}

/// A race over a candidate tree.
#[derive(Debug)]
pub struct Tree(Shape);

/// How a tree is kept.
#[derive(Debug)]
// The common shape is inline (no allocation per race); the rare one boxed.
#[allow(clippy::large_enum_variant)]
enum Shape {
    /// One path with one protocol: the leaf's race, nothing more.
    OneLeaf(OneLeaf),
    /// Any other tree (several leaves, or none).
    Branches(Box<Branches>),
}

/// Call the same method on either shape.
macro_rules! each_shape {
    ($tree:expr, $t:ident => $call:expr) => {
        match $tree {
            Shape::OneLeaf($t) => $call,
            Shape::Branches($t) => $call,
        }
    };
}

impl Tree {
    /// A race over `paths` (in order, each with its protocols in order),
    /// expecting an answer to each of `queries`. `config` applies to every
    /// leaf; its `total_timeout` to the whole tree. With no branch at all,
    /// the tree fails at once with `AllAttemptsFailed(0)`.
    pub fn new(config: RaceConfig, now: Micros, queries: &[QueryKey], paths: &[PathBranch]) -> Tree {
        let mut leaves = paths.iter().flat_map(|p| p.protocols.iter().map(move |proto| (p.path, proto.protocol)));
        match (leaves.next(), leaves.next()) {
            // The racing type of a first branch does not matter: it starts
            // with its parent.
            (Some((path, protocol)), None) => Tree(Shape::OneLeaf(OneLeaf::new(config, now, queries, path, protocol))),
            _ => Tree::new_general(config, now, queries, paths),
        }
    }

    /// Like [`Tree::new`], but kept by the general branch scheduler even
    /// for one leaf: for tests that check the compact tree of one leaf
    /// behaves the same.
    #[doc(hidden)]
    pub fn new_general(config: RaceConfig, now: Micros, queries: &[QueryKey], paths: &[PathBranch]) -> Tree {
        Tree(Shape::Branches(Box::new(Branches::new(config, now, queries, paths))))
    }

    /// An answer to one query, given to every branch.
    pub fn on_answer(&mut self, now: Micros, query: QueryKey, answer: Result<Vec<Candidate>, i32>) {
        each_shape!(&mut self.0, t => t.on_answer(now, query, answer))
    }

    /// Answers that arrived at the same instant, given to every branch
    /// together (see [`Race::on_answers`]).
    pub fn on_answers(&mut self, now: Micros, answers: Vec<(QueryKey, Result<Vec<Candidate>, i32>)>) {
        each_shape!(&mut self.0, t => t.on_answers(now, answers))
    }

    /// The attempt is ready (the protocol's ready). The first one wins.
    pub fn on_attempt_ready(&mut self, now: Micros, attempt: AttemptId) {
        each_shape!(&mut self.0, t => t.on_attempt_ready(now, attempt))
    }

    /// The attempt failed with `errno`.
    pub fn on_attempt_failed(&mut self, now: Micros, attempt: AttemptId, errno: i32) {
        each_shape!(&mut self.0, t => t.on_attempt_failed(now, attempt, errno))
    }

    /// Process every deadline due at `now`.
    pub fn on_timer(&mut self, now: Micros) {
        each_shape!(&mut self.0, t => t.on_timer(now))
    }

    /// Attempt these addresses only after every other candidate, in every
    /// branch (see [`Race::set_avoided`]). Call before the answers come.
    pub fn set_avoided(&mut self, addrs: &[SocketAddr]) {
        each_shape!(&mut self.0, t => t.set_avoided(addrs))
    }

    /// Sort addresses inside the NAT64 prefix as IPv4, in every branch
    /// (see [`Race::set_pref64`]). Call before the answers come.
    pub fn set_pref64(&mut self, pref64: Option<super::nat64::Pref64>) {
        each_shape!(&mut self.0, t => t.set_pref64(pref64))
    }

    /// Synthesize IPv4 hints under `prefix` in every leaf (see
    /// [`Race::set_hint_synthesis`]). Call before the HTTPS answer.
    pub fn set_hint_synthesis(&mut self, prefix: Option<super::nat64::Pref64>) {
        match &mut self.0 {
            Shape::OneLeaf(t) => t.race_mut().set_hint_synthesis(prefix),
            Shape::Branches(t) => t.leaves.iter_mut().for_each(|l| l.race.set_hint_synthesis(prefix)),
        }
    }

    /// What history knows of `candidates` (HEv3 draft -04 §5.3): `hint`
    /// is asked for each leaf's path id, protocol id and candidate; a
    /// leaf's Connection Attempt Delay follows the RTTs when it is the
    /// default (see [`Race::add_history`]). Call before the answer that
    /// carries them.
    pub fn add_history(
        &mut self,
        candidates: &[Candidate],
        mut hint: impl FnMut(usize, usize, &Candidate) -> Option<super::history::Hint>,
    ) {
        let mut give = |race: &mut Race, path: usize, protocol: usize| {
            let adapt = race.config().connection_attempt_delay == RaceConfig::default().connection_attempt_delay;
            for c in candidates {
                if let Some(h) = hint(path, protocol, c) {
                    race.add_history(c.addr, h, adapt);
                }
            }
        };
        match &mut self.0 {
            Shape::OneLeaf(t) => {
                let (path, protocol) = (t.path, t.protocol);
                give(&mut t.race, path, protocol);
            }
            Shape::Branches(t) => {
                for leaf in t.leaves.iter_mut() {
                    give(&mut leaf.race, leaf.path, leaf.protocol);
                }
            }
        }
    }

    /// The user gave up: cancel everything, then `Failed{Cancelled}`.
    pub fn cancel(&mut self, now: Micros) {
        each_shape!(&mut self.0, t => t.cancel(now))
    }

    /// Attempts still running (after a win with `keep_losers`, the kept
    /// losers).
    pub fn running_count(&self) -> usize {
        each_shape!(&self.0, t => t.running_count())
    }

    /// The earliest time at which [`Tree::on_timer`] has work; `None` once
    /// the race ended.
    pub fn next_deadline(&self) -> Option<Micros> {
        each_shape!(&self.0, t => t.next_deadline())
    }

    /// The next action, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        each_shape!(&mut self.0, t => t.poll_action())
    }

    /// Whether the race ended.
    pub fn is_finished(&self) -> bool {
        each_shape!(&self.0, t => t.is_finished())
    }

    /// The winning attempt, once won.
    pub fn winner(&self) -> Option<AttemptId> {
        each_shape!(&self.0, t => t.winner())
    }

    /// Number of attempts started.
    pub fn attempt_count(&self) -> usize {
        each_shape!(&self.0, t => t.attempt_count())
    }

    /// Every attempt so far, in start order (index = attempt id).
    pub fn attempts(&self) -> impl Iterator<Item = TreeAttempt> + '_ {
        let (one, branches) = match &self.0 {
            Shape::OneLeaf(t) => (Some(t.attempts()), None),
            Shape::Branches(t) => (None, Some(t.attempts())),
        };
        one.into_iter().flatten().chain(branches.into_iter().flatten())
    }

    /// What history told the race of attempt `attempt`'s destination (see
    /// [`Tree::add_history`]), if anything: for the race report.
    pub fn history_hint(&self, attempt: AttemptId) -> Option<super::history::Hint> {
        let (race, local) = match &self.0 {
            Shape::OneLeaf(t) => (&t.race, attempt),
            Shape::Branches(t) => {
                let (leaf, local) = t.locate(attempt)?;
                (&t.leaves[leaf].race, local)
            }
        };
        let addr = race.attempt(local)?.candidate.addr;
        race.history()?.hint(&addr).copied()
    }

    /// When each path branch was activated (`None`: not yet), in branch order.
    pub fn path_activations(&self) -> Vec<Option<Micros>> {
        each_shape!(&self.0, t => t.path_activations())
    }
}

/// The general branch scheduler: path nodes, leaves, their activation,
/// and tree attempt ids over the leaves' own.
#[derive(Debug)]
struct Branches {
    total_deadline: Option<Micros>,
    paths: Box<[PathNode]>,
    leaves: Box<[Leaf]>,
    /// Tree attempt id → (leaf, local attempt id).
    attempts: Vec<(usize, AttemptId)>,
    finished: bool,
    last_errno: i32,
    last_resolution_error: i32,
    keep_losers: bool,
    actions: VecDeque<Action>,
}

impl Branches {
    /// See [`Tree::new`].
    fn new(config: RaceConfig, now: Micros, queries: &[QueryKey], paths: &[PathBranch]) -> Branches {
        let leaf_config = RaceConfig { total_timeout: None, ..config };
        let mut leaves = Vec::with_capacity(paths.iter().map(|p| p.protocols.len()).sum());
        let mut nodes = Vec::with_capacity(paths.len());
        for p in paths {
            let first = leaves.len();
            for proto in &p.protocols {
                leaves.push(Leaf {
                    race: Race::new_held(leaf_config, now, queries),
                    path: p.path,
                    protocol: proto.protocol,
                    racing: proto.racing,
                    activated: None,
                    failed: false,
                });
            }
            if leaves.len() > first {
                nodes.push(PathNode { racing: p.racing, activated: None, leaves: first..leaves.len(), joint: None });
            }
        }
        let mut tree = Branches {
            total_deadline: config.total_timeout.map(|t| now.saturating_add(t)),
            paths: nodes.into_boxed_slice(),
            leaves: leaves.into_boxed_slice(),
            attempts: Vec::new(),
            finished: false,
            last_errno: 0,
            last_resolution_error: 0,
            keep_losers: config.keep_losers,
            actions: VecDeque::new(),
        };
        tree.pump(now);
        tree
    }

    /// An answer to one query, given to every branch.
    fn on_answer(&mut self, now: Micros, query: QueryKey, answer: Result<Vec<Candidate>, i32>) {
        for leaf in &mut self.leaves {
            leaf.race.on_answer(now, query, answer.clone());
        }
        self.pump(now);
    }

    /// Answers that arrived at the same instant, given to every branch
    /// together (see [`Race::on_answers`]).
    fn on_answers(&mut self, now: Micros, answers: Vec<(QueryKey, Result<Vec<Candidate>, i32>)>) {
        for leaf in &mut self.leaves {
            leaf.race.on_answers(now, answers.clone());
        }
        self.pump(now);
    }

    /// The attempt is ready (the protocol's ready). The first one wins.
    fn on_attempt_ready(&mut self, now: Micros, attempt: AttemptId) {
        if let Some((leaf, local)) = self.locate(attempt) {
            self.leaves[leaf].race.on_attempt_ready(now, local);
            self.pump(now);
        }
    }

    /// The attempt failed with `errno`.
    fn on_attempt_failed(&mut self, now: Micros, attempt: AttemptId, errno: i32) {
        if let Some((leaf, local)) = self.locate(attempt) {
            self.leaves[leaf].race.on_attempt_failed(now, local, errno);
            self.pump(now);
        }
    }

    /// Process every deadline due at `now`.
    fn on_timer(&mut self, now: Micros) {
        // The total timeout first: nothing starts at the instant it ends.
        if !self.finished && self.total_deadline.is_some_and(|t| t <= now) {
            self.end(now, Err(RaceError::TimedOut));
            return;
        }
        for leaf in &mut self.leaves {
            leaf.race.on_timer(now);
        }
        self.pump(now);
    }

    /// Attempt these addresses only after every other candidate, in every
    /// branch (see [`Race::set_avoided`]). Call before the answers come.
    fn set_avoided(&mut self, addrs: &[SocketAddr]) {
        for leaf in &mut self.leaves {
            leaf.race.set_avoided(addrs);
        }
    }

    /// Sort addresses inside the NAT64 prefix as IPv4 (see
    /// [`Race::set_pref64`]).
    fn set_pref64(&mut self, pref64: Option<super::nat64::Pref64>) {
        for leaf in &mut self.leaves {
            leaf.race.set_pref64(pref64);
        }
    }

    /// The user gave up: cancel everything, then `Failed{Cancelled}`.
    fn cancel(&mut self, now: Micros) {
        if !self.finished {
            self.end(now, Err(RaceError::Cancelled));
        } else {
            // Kept losers still running: stop them.
            for leaf in &mut self.leaves {
                leaf.race.cancel(now);
            }
            self.drain_leaves(now);
        }
    }

    /// Attempts still running (after a win with `keep_losers`, the kept
    /// losers).
    fn running_count(&self) -> usize {
        self.leaves.iter().map(|l| l.race.running_count()).sum()
    }

    /// The earliest time at which [`Tree::on_timer`] has work; `None` once
    /// the race ended.
    fn next_deadline(&self) -> Option<Micros> {
        if self.finished {
            // Kept losers' attempt timeouts.
            return self.leaves.iter().filter_map(|l| l.race.next_deadline()).min();
        }
        let mut best = self.total_deadline;
        let mut consider = |t: Option<Micros>| {
            if let Some(t) = t {
                best = Some(best.map_or(t, |b| b.min(t)));
            }
        };
        for leaf in &self.leaves {
            consider(leaf.race.next_deadline());
        }
        let path_state: Vec<_> = self.paths.iter().map(|p| (p.racing, p.activated, self.path_failed(p))).collect();
        consider(delay_deadline(&path_state));
        for p in 0..self.paths.len() {
            consider(self.joint_deadline(p));
        }
        for p in self.paths.iter().filter(|p| p.activated.is_some() && p.joint.is_none()) {
            let leaf_state: Vec<_> = self.leaves[p.leaves.clone()].iter().map(|l| (l.racing, l.activated, l.failed)).collect();
            consider(delay_deadline(&leaf_state));
        }
        best
    }

    /// The next action, in order.
    fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front();
        if action.is_none() {
            super::release_queue(&mut self.actions);
        }
        action
    }

    /// Whether the race ended.
    fn is_finished(&self) -> bool {
        self.finished
    }

    /// The winning attempt, once won.
    fn winner(&self) -> Option<AttemptId> {
        // At most one leaf wins: the others are cancelled or stop starting attempts first.
        self.attempts().position(|a| a.record.outcome == Outcome::Won)
    }

    /// Number of attempts started.
    fn attempt_count(&self) -> usize {
        self.attempts.len()
    }

    /// Every attempt so far, in start order (index = attempt id).
    fn attempts(&self) -> impl Iterator<Item = TreeAttempt> + '_ {
        self.attempts.iter().map(|&(leaf, local)| {
            let l = &self.leaves[leaf];
            let record = l.race.attempt(local).expect("every tree attempt is a leaf's");
            TreeAttempt { record, path: l.path, protocol: l.protocol }
        })
    }

    /// When each path branch was activated (`None`: not yet), in branch order.
    fn path_activations(&self) -> Vec<Option<Micros>> {
        self.paths.iter().map(|p| p.activated).collect()
    }

    fn path_failed(&self, p: &PathNode) -> bool {
        self.leaves[p.leaves.clone()].iter().all(|l| l.failed)
    }

    /// The tree attempt id of leaf `leaf`'s attempt `local`. A race has a
    /// handful of attempts: a scan costs less than a map per leaf.
    fn global_id(&self, leaf: usize, local: AttemptId) -> AttemptId {
        self.attempts.iter().position(|&a| a == (leaf, local)).expect("every leaf attempt has a tree id")
    }

    /// The leaf and local id of tree attempt `attempt`, if it exists.
    fn locate(&self, attempt: AttemptId) -> Option<(usize, AttemptId)> {
        self.attempts.get(attempt).copied()
    }

    /// Translate every leaf's queued actions into tree actions.
    fn drain_leaves(&mut self, now: Micros) -> bool {
        let mut changed = false;
        for i in 0..self.leaves.len() {
            while let Some(action) = self.leaves[i].race.poll_action() {
                changed = true;
                match action {
                    RaceAction::Start { attempt, addr } => {
                        super::push_first_exact(&mut self.attempts, (i, attempt));
                        let global = self.attempts.len() - 1;
                        let leaf = &self.leaves[i];
                        self.actions.push_back(Action::Start { attempt: global, addr, path: leaf.path, protocol: leaf.protocol });
                    }
                    RaceAction::Cancel { attempt } => {
                        let global = self.global_id(i, attempt);
                        self.actions.push_back(Action::Cancel { attempt: global });
                    }
                    RaceAction::Won { attempt } => {
                        let global = self.global_id(i, attempt);
                        self.end(now, Ok(global));
                    }
                    RaceAction::Spare { attempt } => {
                        let global = self.global_id(i, attempt);
                        self.actions.push_back(Action::Spare { attempt: global });
                    }
                    RaceAction::Failed { error } => {
                        self.leaves[i].failed = true;
                        match error {
                            RaceError::AllAttemptsFailed(e) => self.last_errno = e,
                            RaceError::ResolutionFailed(c) => self.last_resolution_error = c,
                            RaceError::TimedOut | RaceError::Cancelled => {}
                        }
                    }
                }
            }
        }
        changed
    }

    /// End the race: cancel every leaf still racing, then Won or Failed.
    fn end(&mut self, now: Micros, outcome: Result<AttemptId, RaceError>) {
        self.finished = true;
        let keep = self.keep_losers && outcome.is_ok();
        for leaf in &mut self.leaves {
            if keep {
                leaf.race.stop_starting();
            } else {
                leaf.race.cancel(now);
            }
        }
        self.drain_leaves(now);
        match outcome {
            Ok(attempt) => {
                self.actions.push_back(Action::Won { attempt });
            }
            Err(error) => self.actions.push_back(Action::Failed { error }),
        }
    }

    /// Activate what the racing types allow at `now`; true if anything was.
    fn schedule(&mut self, now: Micros) -> bool {
        let mut changed = false;
        let path_state: Vec<_> = self.paths.iter().map(|p| (p.racing, p.activated, self.path_failed(p))).collect();
        for i in due(&path_state, now) {
            self.paths[i].activated = Some(now);
            changed = true;
        }
        for p in 0..self.paths.len() {
            if self.paths[p].activated.is_none() {
                continue;
            }
            let range = self.paths[p].leaves.clone();
            if self.paths[p].joint.is_some() {
                let activated = self.paths[p].activated;
                self.leaves[range].iter_mut().for_each(|l| l.activated = l.activated.or(activated));
                changed |= self.step_joint(p, now);
                continue;
            }
            let leaf_state: Vec<_> = self.leaves[range.clone()].iter().map(|l| (l.racing, l.activated, l.failed)).collect();
            for i in due(&leaf_state, now) {
                let leaf = &mut self.leaves[range.start + i];
                leaf.activated = Some(now);
                leaf.race.activate(now);
                changed = true;
            }
        }
        changed
    }

    fn pump(&mut self, now: Micros) {
        loop {
            let drained = self.drain_leaves(now);
            if self.finished {
                return;
            }
            if self.total_deadline.is_some_and(|t| t <= now) {
                self.end(now, Err(RaceError::TimedOut));
                return;
            }
            if self.leaves.iter().all(|l| l.failed) {
                let error = if self.attempt_count() == 0 && !self.leaves.is_empty() {
                    RaceError::ResolutionFailed(self.last_resolution_error)
                } else {
                    RaceError::AllAttemptsFailed(self.last_errno)
                };
                self.end(now, Err(error));
                return;
            }
            if !self.schedule(now) && !drained {
                return;
            }
        }
    }
}

/// Children of one level as (racing type, activated at, failed): which
/// not-yet-activated children are due at `now`, in order. Activating one
/// may make the next due (immediate racing), so the scan goes on with the
/// new state.
fn due(children: &[(RacingType, Option<Micros>, bool)], now: Micros) -> Vec<usize> {
    let mut state: Vec<_> = children.to_vec();
    let mut out = Vec::new();
    for i in 0..state.len() {
        if state[i].1.is_some() {
            continue;
        }
        let ready = if i == 0 {
            true
        } else {
            let (_, prev_activated, prev_failed) = state[i - 1];
            match state[i].0 {
                RacingType::Immediate => prev_activated.is_some(),
                RacingType::Delayed(d) => {
                    prev_activated.is_some_and(|t| t.saturating_add(d) <= now) || (prev_activated.is_some() && prev_failed)
                }
                RacingType::Failover => state[..i].iter().all(|c| c.2),
            }
        };
        if ready {
            state[i].1 = Some(now);
            out.push(i);
        }
    }
    out
}

/// The next time a delayed child becomes due, if one waits on a delay.
fn delay_deadline(children: &[(RacingType, Option<Micros>, bool)]) -> Option<Micros> {
    children.windows(2).filter_map(|w| match (w[0].1, w[1]) {
        (Some(prev), (RacingType::Delayed(d), None, _)) => Some(prev.saturating_add(d)),
        _ => None,
    })
    .min()
}
