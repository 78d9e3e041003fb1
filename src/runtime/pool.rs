//! Connection pools on the loop: the buffer of ready connections, the
//! callers waiting, and the races the policy ([`crate::engine::pool`])
//! asks for.
//!
//! A caller's acquire gives it a Connection at once, establishing; its
//! `ready` follows when a buffered connection or a race's winner (or
//! spare) is handed to it, its `establishment_error` when the race that
//! should have served it failed. Pool races keep their losers: attempts
//! ready after the winner are spares that serve other callers or fill the
//! buffer.

use super::conn::{Callback, ConnCore, Holder, Phase};
use super::protocol::{self, Transport};
use super::{arm_race, lock, race_error, LoopShared, LoopState, RaceSpec};
use crate::api::connection::{AttemptOutcome, AttemptReport};
use crate::api::endpoint::{LocalEndpoint, RemoteEndpoint};
use crate::api::error::{Error, Result};
use crate::api::options::BranchRacing;
use crate::api::pool::{PoolEvent, PoolEventKind};
use crate::engine::pool::{Placement, PoolConfig, PoolPolicy};
use crate::engine::race::{RaceConfig, RaceError};
use crate::engine::select::SelectionProperties;
use crate::engine::{AttemptId, Micros};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use super::sync::Mutex;
use std::sync::Arc;

pub(crate) use crate::engine::pool::RaceKind;

/// A Preconnection's contents, owned by a pool.
pub(crate) struct OwnedSpec {
    pub remotes: Vec<RemoteEndpoint>,
    pub locals: Vec<LocalEndpoint>,
    pub selection: SelectionProperties,
    pub config: RaceConfig,
    pub racing: BranchRacing,
}

/// The user's side of a pool: its event callback.
pub(crate) struct PoolCore {
    pub id: u64,
    events: Events<PoolEvent>,
}

impl PoolCore {
    /// Call the event callback (no loop lock held).
    pub(crate) fn emit(&self, e: &PoolEvent) {
        self.events.emit(e);
    }

    /// No event after this returns (a callback running on another thread
    /// finishes).
    pub(crate) fn silence(&self) {
        self.events.silence();
    }
}

/// An event callback that may free its own pool or group: it is taken out
/// of its slot while it runs, so no lock is held during the call.
/// A boxed event callback.
pub(crate) type EventFn<E> = Box<dyn FnMut(&E) + Send>;

pub(crate) struct Events<E> {
    slot: Mutex<Option<EventFn<E>>>,
    silenced: std::sync::atomic::AtomicBool,
}

impl<E> Events<E> {
    pub(crate) fn new(f: Option<EventFn<E>>) -> Self {
        Events { slot: Mutex::new(f), silenced: std::sync::atomic::AtomicBool::new(false) }
    }

    pub(crate) fn emit(&self, e: &E) {
        use std::sync::atomic::Ordering;
        if self.silenced.load(Ordering::Acquire) {
            return;
        }
        let taken = self.slot.lock().take();
        if let Some(mut f) = taken {
            f(e);
            if !self.silenced.load(Ordering::Acquire) {
                *self.slot.lock() = Some(f);
            }
        }
    }

    pub(crate) fn silence(&self) {
        self.silenced.store(true, std::sync::atomic::Ordering::Release);
        let f = self.slot.lock().take();
        drop(f);
    }
}

pub(crate) struct PoolEntry {
    policy: PoolPolicy,
    spec: OwnedSpec,
    /// Ready connections, oldest first (the policy's order).
    buffer: VecDeque<Arc<ConnCore>>,
    /// Callers' connections waiting, oldest first.
    waiters: VecDeque<Arc<ConnCore>>,
    /// Races in flight and their start times.
    /// The pool's races: why each started, when, and its attempts'
    /// outcomes already reported as events.
    races: HashMap<u64, (RaceKind, Micros, Box<[AttemptOutcome]>)>,
    core: Arc<PoolCore>,
    client: Arc<super::client::Client>,
    pub(crate) armed: Option<Micros>,
}

impl PoolEntry {
    /// Whether the loop must keep running for this pool: a race in flight
    /// or a caller waiting.
    pub(crate) fn is_pending(&self) -> bool {
        !self.races.is_empty() || !self.waiters.is_empty()
    }
}

impl LoopShared {
    /// A new pool over `spec`; returns its core (id, events).
    pub(crate) fn pool_new(
        &self,
        spec: OwnedSpec,
        config: PoolConfig,
        events: Option<crate::api::pool::PoolEventHandler>,
        client: Arc<super::client::Client>,
    ) -> Result<Arc<PoolCore>> {
        let mut st = lock(&self.state);
        if st.shut_down {
            return Err(Error::InvalidState);
        }
        let id = st.next_owner;
        st.next_owner += 1;
        let core = Arc::new(PoolCore { id, events: Events::new(events) });
        let entry = PoolEntry {
            policy: PoolPolicy::new(config, id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            spec,
            buffer: VecDeque::new(),
            waiters: VecDeque::new(),
            races: HashMap::new(),
            core: Arc::clone(&core),
            client,
            armed: None,
        };
        st.pools.insert(id, entry);
        let now = self.clock.now();
        self.pool_step(&mut st, id, now);
        self.sync_wake_timer(&mut st);
        self.nudge(&st);
        Ok(core)
    }

    /// A caller's `conn` (idle, with its handler) asks for a connection:
    /// the oldest buffered one now, or the next one a race makes.
    pub(crate) fn pool_acquire(&self, pool: u64, conn: &Arc<ConnCore>) -> Result<()> {
        let mut st = lock(&self.state);
        let now = self.clock.now();
        let Some(entry) = st.pools.get_mut(&pool) else { return Err(Error::InvalidState) };
        {
            let c = conn.lock();
            if c.phase != Phase::Idle || c.released {
                return Err(Error::InvalidState);
            }
        }
        if entry.policy.acquire() {
            let buffered = entry.buffer.pop_front().expect("the policy counts the buffer");
            let (transport, remote, attempts) = {
                let mut b = buffered.lock();
                b.phase = Phase::Closed;
                (b.take_transport(), b.remote(), std::mem::take(&mut b.settled().attempts))
            };
            let mut c = conn.lock();
            c.settled().attempts = attempts;
            if let Some(t) = transport {
                let LoopState { targets, .. } = &mut *st;
                self.install(targets, conn, &mut c, t, remote);
            }
            drop(c);
            st.callbacks.push_back((Arc::clone(conn), Callback::Ready));
        } else {
            let mut c = conn.lock();
            c.phase = Phase::Establishing;
            c.holder = Some(Holder::Pool(pool));
            drop(c);
            entry.waiters.push_back(Arc::clone(conn));
        }
        self.pool_step(&mut st, pool, now);
        self.sync_wake_timer(&mut st);
        self.nudge(&st);
        Ok(())
    }

    /// A waiting caller released its connection: it no longer waits.
    pub(super) fn pool_forget_waiter(&self, st: &mut LoopState, pool: u64, conn: &Arc<ConnCore>) {
        if let Some(entry) = st.pools.get_mut(&pool) {
            let before = entry.waiters.len();
            entry.waiters.retain(|w| !Arc::ptr_eq(w, conn));
            if entry.waiters.len() < before {
                entry.policy.cancel_wait();
            }
        }
    }

    /// Free a pool: its races are cancelled, its buffered connections
    /// closed, its waiting callers' connections fail with Cancelled (no
    /// callback), and no event follows.
    pub(crate) fn pool_free(&self, pool: u64) {
        let mut st = lock(&self.state);
        self.pool_free_locked(&mut st, pool);
        self.sync_wake_timer(&mut st);
        self.nudge(&st);
    }

    /// The pools a client made.
    pub(super) fn pools_of(&self, st: &LoopState, client: &Arc<super::client::Client>) -> Vec<u64> {
        st.pools.iter().filter(|(_, p)| Arc::ptr_eq(&p.client, client)).map(|(id, _)| *id).collect()
    }

    /// [`LoopShared::pool_free`] with the state locked.
    pub(super) fn pool_free_locked(&self, st: &mut LoopState, pool: u64) {
        let Some(entry) = st.pools.remove(&pool) else { return };
        entry.core.silence();
        st.notes.retain(|(owner, _)| *owner != pool);
        for (race, _) in entry.races {
            self.cancel_race(st, race);
        }
        for b in entry.buffer {
            let t = {
                let mut c = b.lock();
                c.phase = Phase::Closed;
                c.take_transport()
            };
            if let Some(t) = t {
                self.drop_transport(st, t);
            }
        }
        for w in entry.waiters {
            let mut c = w.lock();
            c.phase = Phase::Failed;
            c.settled().error = Some(Error::Cancelled);
            c.holder = None;
        }
    }

    /// Number of connections buffered.
    pub(crate) fn pool_buffered(&self, pool: u64) -> usize {
        lock(&self.state).pools.get(&pool).map_or(0, |p| p.buffer.len())
    }

    /// Close a transport that no connection keeps.
    pub(super) fn drop_transport(&self, st: &mut LoopState, t: Transport) {
        if let Transport::Tcp(token, _) = &t {
            st.targets.forget(*token);
        }
        protocol::close_transport(t, &self.registry);
    }

    /// Queue a pool event.
    fn pool_event(&self, st: &mut LoopState, pool: u64, kind: PoolEventKind, count: u32, elapsed_us: u64, os_error: i32) {
        if let Some(entry) = st.pools.get(&pool) {
            let core = Arc::clone(&entry.core);
            let e = PoolEvent { kind, count, elapsed_us, os_error };
            st.notes.push_back((pool, Box::new(move || core.emit(&e))));
        }
    }

    /// Start what the policy wants, expire idle connections, re-arm the
    /// pool's timer.
    pub(super) fn pool_step(&self, st: &mut LoopState, pool: u64, now: Micros) {
        let Some(entry) = st.pools.get_mut(&pool) else { return };
        let expired = entry.policy.expired(now);
        let mut closed = Vec::new();
        for _ in &expired {
            if let Some(b) = entry.buffer.pop_front() {
                let mut c = b.lock();
                c.phase = Phase::Closed;
                if let Some(t) = c.take_transport() {
                    closed.push(t);
                }
            }
        }
        let starts = entry.policy.races_to_start(now);
        let n_expired = expired.len();
        for t in closed {
            self.drop_transport(st, t);
        }
        for _ in 0..n_expired {
            self.pool_event(st, pool, PoolEventKind::ConnectionDisposed, 0, 0, 0);
        }
        for (kind, count) in starts {
            self.pool_start_race(st, pool, kind, count, now);
        }
        if let Some(entry) = st.pools.get_mut(&pool) {
            match entry.policy.next_deadline() {
                Some(at) if entry.armed != Some(at) => {
                    entry.armed = Some(at);
                    st.timers.push(at, pool);
                }
                Some(_) => {}
                None => entry.armed = None,
            }
        }
    }

    fn pool_start_race(&self, st: &mut LoopState, pool: u64, kind: RaceKind, count: usize, now: Micros) {
        let Some(entry) = st.pools.get(&pool) else { return };
        let conn = ConnCore::new(self.me.upgrade().expect("the loop is alive"), Arc::clone(&entry.client));
        let config = RaceConfig { race_count: count, keep_losers: true, ..entry.spec.config };
        let spec = RaceSpec {
            remotes: &entry.spec.remotes,
            locals: &entry.spec.locals,
            selection: &entry.spec.selection,
            config,
            racing: entry.spec.racing,
            avoid: &[],
        };
        // The spec borrows the pool entry; copy what the race needs first.
        let owned = OwnedSpec {
            remotes: spec.remotes.to_vec(),
            locals: spec.locals.to_vec(),
            selection: spec.selection.clone(),
            config,
            racing: spec.racing,
        };
        let spec = RaceSpec {
            remotes: &owned.remotes,
            locals: &owned.locals,
            selection: &owned.selection,
            config: owned.config,
            racing: owned.racing,
            avoid: &[],
        };
        self.pool_event(st, pool, PoolEventKind::RaceStarted, count as u32, 0, 0);
        // The pool knows its race before it starts: attempts that end
        // inside the start are reported like later ones.
        let race = st.races.next_id().unwrap_or(0);
        if let Some(entry) = st.pools.get_mut(&pool) {
            entry.races.insert(race, (kind, now, Box::default()));
        }
        let started = self.start_race_locked(st, &conn, &spec, super::RaceOwner::Pool(pool, kind));
        // The race may have ended inside start (all failed at once), or
        // not started.
        if !st.races.contains_key(&race) {
            if let Some(entry) = st.pools.get_mut(&pool) {
                entry.races.remove(&race);
            }
        }
        match started {
            Ok(_) => {}
            Err(e) => {
                log::warn!("pool {pool}: cannot start a race: {e}");
                let error = match e {
                    Error::NoCandidates => RaceError::AllAttemptsFailed(0),
                    _ => RaceError::Cancelled,
                };
                self.pool_race_failed(st, pool, kind, error, &[], now, now);
            }
        }
    }

    /// A pool race's actions were carried out: attempt events, connections
    /// to the pool, the race's end.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn drive_pool_race(
        &self,
        st: &mut LoopState,
        id: u64,
        pool: u64,
        kind: RaceKind,
        end: Option<std::result::Result<AttemptId, RaceError>>,
        spares: Vec<AttemptId>,
        reports: Vec<AttemptReport>,
        now: Micros,
    ) {
        let started = st.pools.get(&pool).and_then(|p| p.races.get(&id)).map_or(now, |r| r.1);
        // Attempt events: outcomes that changed since the last look.
        let mut changes = Vec::new();
        if let Some(record) = st.pools.get_mut(&pool).and_then(|p| p.races.get_mut(&id)) {
            for (i, r) in reports.iter().enumerate() {
                let before = record.2.get(i).copied();
                if before != Some(r.outcome) {
                    changes.push((r.outcome, r.ended_us.unwrap_or(0).saturating_sub(r.started_us), r.os_error));
                }
            }
            record.2 = reports.iter().map(|r| r.outcome).collect();
        }
        for (outcome, took, errno) in changes {
            match outcome {
                AttemptOutcome::Won | AttemptOutcome::Spare => {
                    self.pool_event(st, pool, PoolEventKind::AttemptSucceeded, 0, took, 0)
                }
                AttemptOutcome::Failed => self.pool_event(st, pool, PoolEventKind::AttemptFailed, 0, took, errno),
                _ => {}
            }
        }
        // Connections made: the winner, then spares.
        let mut ready: Vec<(Transport, Option<SocketAddr>)> = Vec::new();
        let mut failed = None;
        {
            let LoopState { races, targets, timers, .. } = &mut *st;
            let Some(entry) = races.get_mut(&id) else { return };
            let mut take = |entry: &mut super::RaceEntry, a: AttemptId| {
                let remote = entry.race.attempts().nth(a).map(|x| x.record.candidate.addr);
                entry.io.remove(a).map(|io| (self.to_transport(targets, io), remote))
            };
            match end {
                Some(Ok(a)) => ready.extend(take(entry, a)),
                Some(Err(e)) => failed = Some(e),
                None => {}
            }
            for a in spares {
                ready.extend(take(entry, a));
            }
            arm_race(entry, timers, id);
        }
        let won = matches!(end, Some(Ok(_)));
        if won {
            self.pool_event(st, pool, PoolEventKind::RaceWon, 0, now.saturating_sub(started), 0);
            if let Some(entry) = st.pools.get_mut(&pool) {
                entry.policy.race_ended(now, kind, true);
            }
        }
        for (t, remote) in ready {
            self.pool_ready(st, pool, t, remote, reports.clone(), now);
        }
        // Remove the race once nothing of it runs.
        let done = st.races.get(&id).is_some_and(|e| e.race.is_finished() && e.race.running_count() == 0);
        if done {
            self.remove_race(st, id);
            if let Some(p) = st.pools.get_mut(&pool) {
                p.races.remove(&id);
            }
        }
        if let Some(e) = failed {
            self.pool_race_failed(st, pool, kind, e, &reports, started, now);
        }
        self.pool_step(st, pool, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn pool_race_failed(
        &self,
        st: &mut LoopState,
        pool: u64,
        kind: RaceKind,
        error: RaceError,
        reports: &[AttemptReport],
        started: Micros,
        now: Micros,
    ) {
        let Some(entry) = st.pools.get_mut(&pool) else { return };
        let tell = entry.policy.race_ended(now, kind, false).min(entry.waiters.len());
        let (backoff, _) = entry.policy.backoff();
        entry.policy.waiters_failed(tell);
        let failed_waiters: Vec<_> = entry.waiters.drain(..tell).collect();
        let errno = match error {
            RaceError::AllAttemptsFailed(e) => e,
            _ => 0,
        };
        self.pool_event(st, pool, PoolEventKind::RaceFailed, 0, now.saturating_sub(started), errno);
        self.pool_event(st, pool, PoolEventKind::Backoff, 0, backoff, 0);
        for w in failed_waiters {
            let mut c = w.lock();
            c.settled().attempts = reports.into();
            c.phase = Phase::Failed;
            c.settled().error = Some(race_error(error));
            c.holder = None;
            let released = c.released;
            drop(c);
            if !released {
                st.callbacks.push_back((w, Callback::EstablishmentError));
            }
        }
    }

    /// A pool's connection is ready: to the caller waiting longest, into the
    /// buffer, or closed when the buffer is full.
    fn pool_ready(
        &self,
        st: &mut LoopState,
        pool: u64,
        transport: Transport,
        remote: Option<SocketAddr>,
        reports: Vec<AttemptReport>,
        now: Micros,
    ) {
        let Some(entry) = st.pools.get_mut(&pool) else {
            self.drop_transport(st, transport);
            return;
        };
        let placement = entry.policy.place(now);
        match placement {
            Placement::Waiter => {
                let w = entry.waiters.pop_front().expect("the policy counts the waiters");
                let mut c = w.lock();
                c.settled().attempts = reports.into();
                c.holder = None;
                let LoopState { targets, .. } = &mut *st;
                self.install(targets, &w, &mut c, transport, remote);
                let released = c.released;
                drop(c);
                if !released {
                    st.callbacks.push_back((w, Callback::Ready));
                }
            }
            Placement::Buffer => {
                let client = Arc::clone(&entry.client);
                let b = ConnCore::new(self.me.upgrade().expect("the loop is alive"), client);
                let mut c = b.lock();
                c.settled().attempts = reports.into();
                c.holder = Some(Holder::Pool(pool));
                let LoopState { targets, .. } = &mut *st;
                self.install(targets, &b, &mut c, transport, remote);
                drop(c);
                if let Some(entry) = st.pools.get_mut(&pool) {
                    entry.buffer.push_back(b);
                }
                self.pool_event(st, pool, PoolEventKind::ConnectionBuffered, 0, 0, 0);
            }
            Placement::Dispose => {
                self.drop_transport(st, transport);
                self.pool_event(st, pool, PoolEventKind::ConnectionDisposed, 0, 0, 0);
            }
        }
    }

    /// A buffered connection failed (socket error or hang-up): drop it, let
    /// the policy replace it.
    pub(super) fn pool_lost(&self, st: &mut LoopState, pool: u64, conn: &Arc<ConnCore>, now: Micros) {
        let Some(entry) = st.pools.get_mut(&pool) else { return };
        if let Some(i) = entry.buffer.iter().position(|b| Arc::ptr_eq(b, conn)) {
            entry.buffer.remove(i);
            entry.policy.lost(i);
            self.pool_event(st, pool, PoolEventKind::ConnectionDisposed, 0, 0, 0);
            self.pool_step(st, pool, now);
        }
    }

    /// A pool's timer fired.
    pub(super) fn pool_timer(&self, st: &mut LoopState, pool: u64, at: Micros, now: Micros) {
        let Some(entry) = st.pools.get_mut(&pool) else { return };
        if entry.armed != Some(at) {
            return;
        }
        entry.armed = None;
        self.pool_step(st, pool, now);
    }
}
