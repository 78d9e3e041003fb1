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
//!
//! [`Pools`] is the loop's table of pools; its operations take the loop
//! and its locked state, since a pool's races run on the loop.

use crate::vocabulary::state::ConnectionState;
use super::conn::{Callback, ConnCore, HeldBy};
use super::timers::{PoolId, RaceId, TimerOwner};
use super::protocol::Transport;
use super::{arm_race, lock, race_error, LoopCore, LoopState, RaceSpec};
use crate::vocabulary::report::{AttemptOutcome, AttemptReport};
use crate::vocabulary::endpoint::{LocalEndpoint, RemoteEndpoint};
use crate::vocabulary::error::{Error, Result};
use crate::vocabulary::options::BranchRacing;
use crate::vocabulary::events::{PoolEvent, PoolEventHandler, PoolEventKind};
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
#[derive(Clone)]
pub(crate) struct OwnedSpec {
    pub remotes: Vec<RemoteEndpoint>,
    pub locals: Vec<LocalEndpoint>,
    pub selection: SelectionProperties,
    pub config: RaceConfig,
    pub racing: BranchRacing,
    /// When to ask HTTPS records (HEv3), the Preconnection's.
    pub https: crate::vocabulary::svcb::HttpsPolicy,
    /// The caller's ALPN ids (HEv3 draft §6.2).
    pub alpn: Vec<String>,
    /// Never race before the HTTPS answers (HEv3 draft §6.3).
    pub ech_required: bool,
    /// The ALPN ids each protocol serves, by name (HEv3 draft §5.1, §6).
    pub protocol_alpn: Vec<(String, Vec<String>)>,
}

impl OwnedSpec {
    /// The race of this spec, avoiding `avoid` (see [`RaceSpec::avoid`]).
    pub(crate) fn race<'a>(&'a self, avoid: &'a [SocketAddr]) -> RaceSpec<'a> {
        RaceSpec {
            remotes: &self.remotes,
            locals: &self.locals,
            selection: &self.selection,
            config: self.config,
            racing: self.racing,
            avoid,
            https: self.https,
            alpn: &self.alpn,
            ech_required: self.ech_required,
            protocol_alpn: &self.protocol_alpn,
        }
    }
}

/// The user's side of a pool: its event callback.
pub(crate) struct PoolCore {
    pub id: PoolId,
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
    races: HashMap<RaceId, (RaceKind, Micros, Box<[AttemptOutcome]>)>,
    core: Arc<PoolCore>,
    client: Arc<super::client::Client>,
    armed: Option<Micros>,
}

impl PoolEntry {
    /// Whether the loop must keep running for this pool: a race in flight
    /// or a caller waiting.
    pub(crate) fn is_pending(&self) -> bool {
        !self.races.is_empty() || !self.waiters.is_empty()
    }
}

/// The loop's connection pools, by id: the table, and the pools' part of
/// the loop's work (their races, their connections, their timers, their
/// events). The table is part of the loop's locked state; operations that
/// reach the loop's races, sockets or callbacks take the loop (`lp`) and
/// that state (`st`).
#[derive(Default)]
pub(crate) struct Pools {
    entries: HashMap<PoolId, PoolEntry>,
}

impl Pools {
    fn get(&self, pool: &PoolId) -> Option<&PoolEntry> {
        self.entries.get(pool)
    }

    fn get_mut(&mut self, pool: &PoolId) -> Option<&mut PoolEntry> {
        self.entries.get_mut(pool)
    }

    /// Whether some pool keeps the loop running (see
    /// [`PoolEntry::is_pending`]).
    pub(super) fn any_pending(&self) -> bool {
        self.entries.values().any(PoolEntry::is_pending)
    }

    /// Whether the pool's timer is armed at `at` (else a heap entry is stale).
    pub(super) fn is_armed_at(&self, pool: PoolId, at: Micros) -> bool {
        self.entries.get(&pool).is_some_and(|p| p.armed == Some(at))
    }

    /// The pools `client` made; every pool with `None`.
    pub(super) fn ids_of(&self, client: Option<&Arc<super::client::Client>>) -> Vec<PoolId> {
        let made_by = |p: &PoolEntry| client.is_none_or(|c| Arc::ptr_eq(&p.client, c));
        self.entries.iter().filter(|(_, p)| made_by(p)).map(|(id, _)| *id).collect()
    }

    /// A waiting caller released its connection: it no longer waits.
    pub(super) fn forget_waiter(&mut self, pool: PoolId, conn: &Arc<ConnCore>) {
        if let Some(entry) = self.entries.get_mut(&pool) {
            let before = entry.waiters.len();
            entry.waiters.retain(|w| !Arc::ptr_eq(w, conn));
            if entry.waiters.len() < before {
                entry.policy.cancel_wait();
            }
        }
    }
}

/// Operations on pools that reach the loop.
impl Pools {
    /// A new pool over `spec`; returns its core (id, events).
    pub(crate) fn create(
        lp: &LoopCore,
        spec: OwnedSpec,
        config: PoolConfig,
        events: Option<PoolEventHandler>,
        client: Arc<super::client::Client>,
    ) -> Result<Arc<PoolCore>> {
        let mut st = lock(&lp.state);
        if st.shut_down {
            return Err(Error::InvalidState);
        }
        let id = st.next_pool_or_group_id;
        st.next_pool_or_group_id += 1;
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
        st.pools.entries.insert(id, entry);
        let now = lp.clock.now();
        Pools::step(lp, &mut st, id, now);
        lp.sync_wake_timer(&mut st);
        lp.wake_loop(&st);
        Ok(core)
    }

    /// A caller's `conn` (idle, with its handler) asks for a connection:
    /// the oldest buffered one now, or the next one a race makes.
    pub(crate) fn acquire(lp: &LoopCore, pool: PoolId, conn: &Arc<ConnCore>) -> Result<()> {
        let mut st = lock(&lp.state);
        let now = lp.clock.now();
        let Some(entry) = st.pools.get_mut(&pool) else { return Err(Error::InvalidState) };
        {
            let c = conn.lock();
            if c.phase != ConnectionState::Idle || c.released {
                return Err(Error::InvalidState);
            }
        }
        if entry.policy.acquire() {
            let buffered = entry.buffer.pop_front().expect("the policy counts the buffer");
            let (transport, remote, attempts) = {
                let mut b = buffered.lock();
                b.phase = ConnectionState::Closed;
                (b.take_transport(), b.remote(), std::mem::take(&mut b.race_result().attempts))
            };
            let mut c = conn.lock();
            c.race_result().attempts = attempts;
            if let Some(t) = transport {
                let LoopState { tokens, .. } = &mut *st;
                lp.install(tokens, conn, &mut c, t, remote);
            }
            drop(c);
            st.callbacks.push_back((Arc::clone(conn), Callback::Ready));
        } else {
            let mut c = conn.lock();
            c.phase = ConnectionState::Establishing;
            c.held_by = Some(HeldBy::Pool(pool));
            drop(c);
            entry.waiters.push_back(Arc::clone(conn));
        }
        Pools::step(lp, &mut st, pool, now);
        lp.sync_wake_timer(&mut st);
        lp.wake_loop(&st);
        Ok(())
    }

    /// Free a pool: its races are cancelled, its buffered connections
    /// closed, its waiting callers' connections fail with Cancelled (no
    /// callback), and no event follows.
    pub(crate) fn free(lp: &LoopCore, pool: PoolId) {
        let mut st = lock(&lp.state);
        Pools::free_locked(lp, &mut st, pool);
        lp.sync_wake_timer(&mut st);
        lp.wake_loop(&st);
    }

    /// [`Pools::free`] with the state locked.
    pub(super) fn free_locked(lp: &LoopCore, st: &mut LoopState, pool: PoolId) {
        let Some(entry) = st.pools.entries.remove(&pool) else { return };
        entry.core.silence();
        st.queued_events.retain(|(owner, _)| *owner != pool);
        for (race, _) in entry.races {
            lp.cancel_race(st, race);
        }
        for b in entry.buffer {
            let t = {
                let mut c = b.lock();
                c.phase = ConnectionState::Closed;
                c.take_transport()
            };
            if let Some(t) = t {
                lp.close_transport(st, t);
            }
        }
        for w in entry.waiters {
            let mut c = w.lock();
            c.phase = ConnectionState::Failed;
            c.race_result().error = Some(Error::Cancelled);
            c.held_by = None;
        }
    }

    /// Number of connections buffered.
    pub(crate) fn buffered(lp: &LoopCore, pool: PoolId) -> usize {
        lock(&lp.state).pools.get(&pool).map_or(0, |p| p.buffer.len())
    }

    /// Queue a pool event.
    fn event(st: &mut LoopState, pool: PoolId, kind: PoolEventKind, count: u32, elapsed_us: u64, os_error: i32) {
        log_event(pool, kind, count, elapsed_us, os_error);
        if let Some(entry) = st.pools.get(&pool) {
            let core = Arc::clone(&entry.core);
            let e = PoolEvent { kind, count, elapsed_us, os_error };
            st.queued_events.push_back((pool, Box::new(move || core.emit(&e))));
        }
    }

    /// Start what the policy wants, expire idle connections, re-arm the
    /// pool's timer.
    pub(super) fn step(lp: &LoopCore, st: &mut LoopState, pool: PoolId, now: Micros) {
        let Some(entry) = st.pools.get_mut(&pool) else { return };
        let expired = entry.policy.expired(now);
        let mut closed = Vec::new();
        for _ in &expired {
            if let Some(b) = entry.buffer.pop_front() {
                let mut c = b.lock();
                c.phase = ConnectionState::Closed;
                if let Some(t) = c.take_transport() {
                    closed.push(t);
                }
            }
        }
        let starts = entry.policy.races_to_start(now);
        let n_expired = expired.len();
        for t in closed {
            lp.close_transport(st, t);
        }
        for _ in 0..n_expired {
            Pools::event(st, pool, PoolEventKind::ConnectionDisposed, 0, 0, 0);
        }
        for (kind, count) in starts {
            Pools::start_race(lp, st, pool, kind, count, now);
        }
        if let Some(entry) = st.pools.get_mut(&pool) {
            match entry.policy.next_deadline() {
                Some(at) if entry.armed != Some(at) => {
                    entry.armed = Some(at);
                    st.timers.push(at, TimerOwner::Pool(pool));
                }
                Some(_) => {}
                None => entry.armed = None,
            }
        }
    }

    fn start_race(lp: &LoopCore, st: &mut LoopState, pool: PoolId, kind: RaceKind, count: usize, now: Micros) {
        let Some(entry) = st.pools.get(&pool) else { return };
        let conn = ConnCore::new(lp.me.upgrade().expect("the loop is alive"), Arc::clone(&entry.client));
        let config = RaceConfig { race_count: count, keep_losers: true, ..entry.spec.config };
        // A copy: the race's spec must not borrow the pool entry.
        let owned = OwnedSpec { config, ..entry.spec.clone() };
        let spec = owned.race(&[]);
        Pools::event(st, pool, PoolEventKind::RaceStarted, count as u32, 0, 0);
        // The pool knows its race before it starts: attempts that end
        // inside the start are reported like later ones.
        let race = st.races.next_id().unwrap_or(0);
        if let Some(entry) = st.pools.get_mut(&pool) {
            entry.races.insert(race, (kind, now, Box::default()));
        }
        let started = lp.start_race_locked(st, &conn, &spec, super::RaceOwner::Pool(pool, kind));
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
                Pools::race_failed(st, pool, kind, (error, race_error(error)), &[], now, now);
            }
        }
    }

    /// A pool race's actions were carried out: attempt events, connections
    /// to the pool, the race's end.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn drive_race(
        lp: &LoopCore,
        st: &mut LoopState,
        id: RaceId,
        pool: PoolId,
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
                    Pools::event(st, pool, PoolEventKind::AttemptSucceeded, 0, took, 0)
                }
                AttemptOutcome::Failed => Pools::event(st, pool, PoolEventKind::AttemptFailed, 0, took, errno),
                _ => {}
            }
        }
        // Connections made: the winner, then spares.
        let mut ready: Vec<(Transport, Option<SocketAddr>)> = Vec::new();
        let mut failed = None;
        {
            let LoopState { races, tokens, timers, .. } = &mut *st;
            let Some(entry) = races.get_mut(&id) else { return };
            let mut take = |entry: &mut super::RaceEntry, a: AttemptId| {
                let remote = entry.tree.attempts().nth(a).map(|x| x.record.candidate.addr);
                entry.io.remove(a).map(|io| (lp.to_transport(tokens, io), remote))
            };
            match end {
                Some(Ok(a)) => ready.extend(take(entry, a)),
                Some(Err(e)) => failed = Some((e, super::race::race_error_of(entry, e))),
                None => {}
            }
            for a in spares {
                ready.extend(take(entry, a));
            }
            arm_race(entry, timers, id);
        }
        let won = matches!(end, Some(Ok(_)));
        if won {
            Pools::event(st, pool, PoolEventKind::RaceWon, 0, now.saturating_sub(started), 0);
            if let Some(entry) = st.pools.get_mut(&pool) {
                entry.policy.race_ended(now, kind, true);
            }
        }
        for (t, remote) in ready {
            Pools::ready(lp, st, pool, t, remote, reports.clone(), now);
        }
        // Remove the race once nothing of it runs.
        let done = st.races.get(&id).is_some_and(|e| e.tree.is_finished() && e.tree.running_count() == 0);
        if done {
            lp.remove_race(st, id);
            if let Some(p) = st.pools.get_mut(&pool) {
                p.races.remove(&id);
            }
        }
        if let Some(e) = failed {
            Pools::race_failed(st, pool, kind, e, &reports, started, now);
        }
        Pools::step(lp, st, pool, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn race_failed(
        st: &mut LoopState,
        pool: PoolId,
        kind: RaceKind,
        (error, api_error): (RaceError, Error),
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
        Pools::event(st, pool, PoolEventKind::RaceFailed, 0, now.saturating_sub(started), errno);
        Pools::event(st, pool, PoolEventKind::Backoff, 0, backoff, 0);
        for w in failed_waiters {
            let mut c = w.lock();
            c.race_result().attempts = reports.into();
            c.phase = ConnectionState::Failed;
            c.race_result().error = Some(api_error);
            c.held_by = None;
            let released = c.released;
            drop(c);
            if !released {
                st.callbacks.push_back((w, Callback::EstablishmentError));
            }
        }
    }

    /// A pool's connection is ready: to the caller waiting longest, into the
    /// buffer, or closed when the buffer is full.
    fn ready(
        lp: &LoopCore,
        st: &mut LoopState,
        pool: PoolId,
        transport: Transport,
        remote: Option<SocketAddr>,
        reports: Vec<AttemptReport>,
        now: Micros,
    ) {
        let Some(entry) = st.pools.get_mut(&pool) else {
            lp.close_transport(st, transport);
            return;
        };
        let placement = entry.policy.place(now);
        match placement {
            Placement::Waiter => {
                let w = entry.waiters.pop_front().expect("the policy counts the waiters");
                let mut c = w.lock();
                c.race_result().attempts = reports.into();
                c.held_by = None;
                let LoopState { tokens, .. } = &mut *st;
                lp.install(tokens, &w, &mut c, transport, remote);
                let released = c.released;
                drop(c);
                if !released {
                    st.callbacks.push_back((w, Callback::Ready));
                }
            }
            Placement::Buffer => {
                let client = Arc::clone(&entry.client);
                let b = ConnCore::new(lp.me.upgrade().expect("the loop is alive"), client);
                let mut c = b.lock();
                c.race_result().attempts = reports.into();
                c.held_by = Some(HeldBy::Pool(pool));
                let LoopState { tokens, .. } = &mut *st;
                lp.install(tokens, &b, &mut c, transport, remote);
                drop(c);
                if let Some(entry) = st.pools.get_mut(&pool) {
                    entry.buffer.push_back(b);
                }
                Pools::event(st, pool, PoolEventKind::ConnectionBuffered, 0, 0, 0);
            }
            Placement::Dispose => {
                lp.close_transport(st, transport);
                Pools::event(st, pool, PoolEventKind::ConnectionDisposed, 0, 0, 0);
            }
        }
    }

    /// A buffered connection failed (socket error or hang-up): drop it, let
    /// the policy replace it.
    pub(super) fn lost(lp: &LoopCore, st: &mut LoopState, pool: PoolId, conn: &Arc<ConnCore>, now: Micros) {
        let Some(entry) = st.pools.get_mut(&pool) else { return };
        if let Some(i) = entry.buffer.iter().position(|b| Arc::ptr_eq(b, conn)) {
            entry.buffer.remove(i);
            entry.policy.lost(i);
            Pools::event(st, pool, PoolEventKind::ConnectionDisposed, 0, 0, 0);
            Pools::step(lp, st, pool, now);
        }
    }

    /// A pool's timer fired.
    pub(super) fn timer(lp: &LoopCore, st: &mut LoopState, pool: PoolId, at: Micros, now: Micros) {
        let Some(entry) = st.pools.get_mut(&pool) else { return };
        if entry.armed != Some(at) {
            return;
        }
        entry.armed = None;
        Pools::step(lp, st, pool, now);
    }
}

/// Log a pool event: info for its races and backoff, debug for its
/// attempts and connections.
fn log_event(pool: PoolId, kind: PoolEventKind, count: u32, elapsed: Micros, errno: i32) {
    use super::race::{Errno, Ms};
    if !log::log_enabled!(log::Level::Info) {
        return;
    }
    let (took, errno) = (Ms(elapsed), Errno(errno));
    match kind {
        PoolEventKind::RaceStarted => log::info!("pool {pool}: racing {count}"),
        PoolEventKind::AttemptSucceeded => log::debug!("pool {pool}: an attempt connected in {took}"),
        PoolEventKind::AttemptFailed => log::debug!("pool {pool}: an attempt failed after {took}: {errno}"),
        PoolEventKind::RaceWon => log::info!("pool {pool}: race won at {took}"),
        PoolEventKind::RaceFailed => log::info!("pool {pool}: race failed at {took}: {errno}"),
        PoolEventKind::ConnectionBuffered => log::debug!("pool {pool}: a connection buffered"),
        PoolEventKind::ConnectionDisposed => log::debug!("pool {pool}: a connection disposed"),
        PoolEventKind::Backoff => log::info!("pool {pool}: backing off for {took} before the next race"),
    }
}
