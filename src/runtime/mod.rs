//! The mio event loop that runs the engine.
//!
//! One [`LoopShared`] per EventLoop: its own `mio::Poll`, Waker, timerfd,
//! resolver workers and sockets; nothing process-wide. The loop's state is
//! behind one mutex so that any thread may call the API; the thread that
//! runs the loop polls without holding it and calls user callbacks with no
//! lock held, so callbacks may call back into the library (close or free
//! their own connection, start another race).

pub(crate) mod cache;
pub(crate) mod client;
pub(crate) mod clock;
pub(crate) mod conn;
pub(crate) mod group;
pub(crate) mod paths;
pub(crate) mod pool;
pub(crate) mod protocol;
pub(crate) mod races;
pub(crate) mod resolver;
pub(crate) mod runner;
pub(crate) mod sync;
pub(crate) mod sys;
pub(crate) mod tcp;
pub(crate) mod timers;
pub(crate) mod tokens;

use crate::api::connection::{AttemptOutcome, AttemptReport};
use crate::api::endpoint::{Host, RemoteEndpoint};
use crate::api::error::{Error, Result};
use crate::api::endpoint::LocalEndpoint;
use crate::api::options::BranchRacing;
use crate::api::protocol::{Resolver as UserResolver, ResolverQuery};
use crate::engine::race::{Outcome, RaceConfig, RaceError};
use crate::engine::select::{self, InterfaceMatch, InterfaceType, SelectionProperties};
use crate::engine::tree::{Action, PathBranch, ProtocolBranch, RacingType, Tree};
use paths::Path;
use protocol::{AttemptIo, Completion, ProtocolEntry, Started, Transport};
use std::ffi::CStr;
use crate::engine::{AttemptId, Candidate, Family, Micros, QueryKey};
use clock::{Clock, WakeTimer};
use conn::{Callback, ConnCore, Holder, Phase};
use mio::{Events, Interest, Poll, Token};
use resolver::{Job, Resolver};
use tokens::{Target, Targets};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;
use sync::{Condvar, Mutex, MutexGuard};
use timers::TimerHeap;

/// A user protocol's completion waiting for the loop: race, attempt, what
/// happened, and the protocol (to close an orphaned ready connection).
type QueuedCompletion = (u64, AttemptId, Completion, Arc<ProtocolEntry>);

/// A user callback of a pool or group, called with no lock held.
pub(crate) type Note = Box<dyn FnOnce() + Send>;

/// A race entry's `armed` when no timer of it is in the heap (no deadline
/// is that far: µs since the loop started).
const NOT_ARMED: Micros = Micros::MAX;

/// Set in pool and group ids.
const OWNER_ID: u64 = 1 << 63;

const WAKER: Token = Token(0);
const TIMER: Token = Token(1);


struct RaceEntry {
    race: Tree,
    conn: Arc<ConnCore>,
    started_at: Micros,
    /// The I/O of the attempts still running.
    io: AttemptIos,
    /// When its timer is due in the loop's heap; [`NOT_ARMED`] for none
    /// (a plain number keeps the entry 8 bytes smaller than an Option).
    armed: Micros,
    /// The race's paths, by the ids the tree uses: most races share the
    /// loop's default path. Protocol ids are indices into the loop's
    /// registered protocols (which only grow).
    paths: Arc<[RacePath]>,
    /// Queries asked of a user resolver, to cancel if the race ends
    /// first; `None` for the system resolver and literals.
    user_queries: Option<Box<UserQueries>>,
    /// Who started the race: a user, a pool, a group.
    owner: RaceOwner,
    /// Some answers came from the resolution cache: a failed race drops
    /// the names it attempted from it.
    from_cache: bool,
}

/// A race's queries to a user resolver, with the resolver that has them.
struct UserQueries {
    resolver: Arc<dyn UserResolver>,
    queries: Vec<ResolverQuery>,
}

/// One path of a race, with its interface name as the race report gives
/// it (C string, shared by every report of the race).
pub(crate) struct RacePath {
    path: Path,
    name: Option<Arc<CStr>>,
}

impl RacePath {
    fn new(path: Path) -> RacePath {
        let name = path.interface.as_ref().and_then(|n| std::ffi::CString::new(n.as_str()).ok()).map(Arc::from);
        RacePath { path, name }
    }
}

/// The I/O of a race's running attempts, by attempt id. A race runs one
/// or two attempts at a time: the first is kept inline (no allocation for
/// a race of one attempt), more in a short list, which costs less than a
/// map.
#[derive(Default)]
struct AttemptIos {
    one: Option<(AttemptId, AttemptIo)>,
    more: Vec<(AttemptId, AttemptIo)>,
}

impl AttemptIos {
    fn get(&self, attempt: AttemptId) -> Option<&AttemptIo> {
        match &self.one {
            Some((a, io)) if *a == attempt => Some(io),
            _ => self.more.iter().find(|(a, _)| *a == attempt).map(|(_, io)| io),
        }
    }

    fn get_mut(&mut self, attempt: AttemptId) -> Option<&mut AttemptIo> {
        match &mut self.one {
            Some((a, io)) if *a == attempt => Some(io),
            _ => self.more.iter_mut().find(|(a, _)| *a == attempt).map(|(_, io)| io),
        }
    }

    fn insert(&mut self, attempt: AttemptId, io: AttemptIo) {
        if self.one.is_none() {
            self.one = Some((attempt, io));
        } else {
            crate::engine::push_first_exact(&mut self.more, (attempt, io));
        }
    }

    fn remove(&mut self, attempt: AttemptId) -> Option<AttemptIo> {
        if matches!(&self.one, Some((a, _)) if *a == attempt) {
            return self.one.take().map(|(_, io)| io);
        }
        let i = self.more.iter().position(|(a, _)| *a == attempt)?;
        Some(self.more.swap_remove(i).1)
    }

    fn drain(&mut self) -> impl Iterator<Item = AttemptIo> + '_ {
        self.one.take().into_iter().chain(self.more.drain(..)).map(|(_, io)| io)
    }
}

/// Who a race works for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RaceOwner {
    /// A user's Connection: its callbacks hear the outcome.
    User,
    /// A pool (its id) and why it raced.
    Pool(u64, pool::RaceKind),
    /// A group (its id) building members.
    Group(u64),
}

/// What to race: a Preconnection's contents.
pub(crate) struct RaceSpec<'a> {
    /// Remote endpoints.
    pub remotes: &'a [RemoteEndpoint],
    /// Local endpoints (paths), possibly none.
    pub locals: &'a [LocalEndpoint],
    /// Selection properties.
    pub selection: &'a SelectionProperties,
    /// Endpoint-level timing.
    pub config: RaceConfig,
    /// Racing types per branch level.
    pub racing: BranchRacing,
    /// Addresses to attempt only after every other candidate.
    pub avoid: &'a [SocketAddr],
}

struct LoopState {
    races: races::RaceTable<RaceEntry>,
    targets: Targets,
    timers: TimerHeap,
    wake_timer: Option<WakeTimer>,
    /// How early the timerfd fires before a deadline while the library
    /// itself waits (run, run_once, own thread): the last µs are polled
    /// without sleeping, so a deadline does not pay the wake-up of an idle
    /// CPU. 0 while embedded (`process`): the caller's loop sleeps until
    /// the deadline itself.
    wake_ahead: Micros,
    callbacks: VecDeque<(Arc<ConnCore>, Callback)>,
    /// Connection pools on this loop, by id (see `next_owner`).
    pools: HashMap<u64, pool::PoolEntry>,
    /// Pool and group events to deliver with the other callbacks: the
    /// owner's id and the call (the owner's free drops its pending ones).
    notes: VecDeque<(u64, Note)>,
    /// Connection groups on this loop, by id.
    groups: HashMap<u64, group::GroupEntry>,
    /// The next pool or group id: [`OWNER_ID`] is set in them, so that
    /// they never equal a race id (below 2^47) where ids meet (timers).
    next_owner: u64,
    /// The thread inside run / run_once / process (or the loop's own
    /// thread): it sees changes without being woken.
    runner: Option<ThreadId>,
    /// The loop's own thread (event_loop_start_thread): only it may run
    /// the loop.
    owner: Option<ThreadId>,
    /// event_loop_stop_thread asked the loop's thread to stop; no new race
    /// starts until it has.
    stop_requested: bool,
    shut_down: bool,
    /// tcp, udp, then user protocols in registration order.
    protocols: Vec<Arc<ProtocolEntry>>,
    /// The default path alone, shared by the races that take it.
    default_paths: Arc<[RacePath]>,
    /// A user resolver replacing the system one.
    user_resolver: Option<Arc<dyn UserResolver>>,
    /// The candidate tree of the last race on the default path alone,
    /// with what it was built from (see [`race_tree`]).
    default_tree: Option<(DefaultTreeKey, Arc<[PathBranch]>)>,
}

/// What the candidate tree of a race on the default path alone (no local
/// endpoint, no interface preference) depends on: the protocol selection
/// properties, the racing types of paths and protocols, and the registered
/// protocols (which only grow, so their number tells them).
#[derive(Clone, Copy, PartialEq, Eq)]
struct DefaultTreeKey {
    selection: [select::Preference; 3],
    path: RacingType,
    protocol: RacingType,
    protocols: usize,
}

struct Poller {
    poll: Poll,
    events: Events,
}

/// Everything one EventLoop owns.
pub(crate) struct LoopShared {
    state: Mutex<LoopState>,
    poller: Mutex<Poller>,
    registry: mio::Registry,
    waker: Arc<mio::Waker>,
    /// The Waker was woken and the loop has not seen it yet: no need to
    /// wake it again. Set and cleared under the state lock.
    wake_pending: AtomicBool,
    /// The loop's own thread, joined by stop_thread.
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Signalled when the loop's own thread has stopped.
    stopped: Condvar,
    resolver: Arc<Resolver>,
    clock: Clock,
    /// User-protocol completions from any thread, for the loop.
    completions: Mutex<Vec<QueuedCompletion>>,
    /// This loop, for the handles given to user protocols.
    me: Weak<LoopShared>,
    /// Counts race steps, so that a manual-clock run knows when nothing
    /// more happens.
    progress: std::sync::atomic::AtomicU64,
    /// See [`LoopState::wake_ahead`]: the value while the library waits.
    wake_ahead: Micros,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

fn io_err(e: io::Error) -> Error {
    Error::Io(e.raw_os_error().unwrap_or(libc::EIO))
}

impl LoopShared {
    /// A new loop: a Poll, a Waker, a timerfd.
    pub(crate) fn new(manual_clock: bool) -> Result<Arc<LoopShared>> {
        let poll = Poll::new().map_err(io_err)?;
        let registry = poll.registry().try_clone().map_err(io_err)?;
        let waker = Arc::new(mio::Waker::new(&registry, WAKER).map_err(io_err)?);
        let wake_timer = match WakeTimer::new() {
            Ok(t) => {
                let fd = t.raw_fd();
                registry.register(&mut mio::unix::SourceFd(&fd), TIMER, Interest::READABLE).map_err(io_err)?;
                Some(t)
            }
            Err(e) => {
                log::warn!("no timerfd ({e}); timers fall back to the poll timeout (1 ms resolution)");
                None
            }
        };
        Ok(Arc::new_cyclic(|me| LoopShared {
            me: me.clone(),
            progress: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(LoopState {
                races: races::RaceTable::default(),
                targets: Targets::default(),
                timers: TimerHeap::default(),
                wake_timer,
                wake_ahead: 0,
                callbacks: VecDeque::new(),
                pools: HashMap::new(),
                notes: VecDeque::new(),
                groups: HashMap::new(),
                next_owner: OWNER_ID | 1,
                runner: None,
                owner: None,
                stop_requested: false,
                shut_down: false,
                protocols: ProtocolEntry::builtins(),
                default_paths: Arc::new([RacePath::new(Path::default_path())]),
                user_resolver: None,
                default_tree: None,
            }),
            poller: Mutex::new(Poller { poll, events: Events::with_capacity(1024) }),
            registry,
            waker: Arc::clone(&waker),
            wake_pending: AtomicBool::new(false),
            thread: Mutex::new(None),
            stopped: Condvar::new(),
            resolver: Resolver::new(waker),
            clock: if manual_clock { Clock::manual() } else { Clock::new() },
            wake_ahead: clock::WAKE_AHEAD,
            completions: Mutex::new(Vec::new()),
        }))
    }

    /// Now on the loop's clock, µs.
    pub(crate) fn now(&self) -> Micros {
        self.clock.now()
    }

    /// Move a manual clock forward by `us`.
    pub(crate) fn advance_clock(&self, us: Micros) -> Result<()> {
        if !self.clock.is_manual() {
            return Err(Error::InvalidState);
        }
        self.clock.advance(us);
        let st = lock(&self.state);
        self.nudge(&st);
        Ok(())
    }

    /// Register a protocol; its id is its index.
    pub(crate) fn add_protocol(&self, entry: ProtocolEntry) -> Result<usize> {
        let mut st = lock(&self.state);
        if st.protocols.iter().any(|p| p.name == entry.name) {
            return Err(Error::InvalidArgument("a protocol with this name is already registered"));
        }
        st.protocols.push(Arc::new(entry));
        Ok(st.protocols.len() - 1)
    }

    /// How long the system resolver's answers are kept for later races
    /// (zero: not at all; see [`cache`]).
    pub(crate) fn set_resolution_cache(&self, lifetime: std::time::Duration) {
        self.resolver.cache.set_lifetime(lifetime);
    }

    /// Start the system resolver's threads for a race to come (no-op with
    /// a user resolver, or when they are running).
    pub(crate) fn prepare_resolver(&self) {
        if lock(&self.state).user_resolver.is_none() {
            self.resolver.prepare();
        }
    }

    /// Use `resolver` instead of the system resolver (None: back to it).
    pub(crate) fn set_resolver(&self, resolver: Option<Arc<dyn UserResolver>>) {
        lock(&self.state).user_resolver = resolver;
    }

    /// Queue a user-protocol completion and wake the loop.
    pub(crate) fn push_completion(&self, race: u64, attempt: AttemptId, c: Completion, protocol: Arc<ProtocolEntry>) {
        lock(&self.completions).push((race, attempt, c, protocol));
        // Not nudge(): this may be called with the state lock held (a
        // protocol completing inside its start); an extra wake is harmless.
        if let Err(e) = self.waker.wake() {
            log::error!("cannot wake the loop: {e}");
        }
    }

    /// Tell the loop that its state changed: wake the thread blocked in
    /// poll (a thread of its own, or a caller's run / run_once), or make
    /// the loop's fd readable for an embedding caller (event_loop_get_fd).
    /// Nothing to do when the caller is the thread running the loop (it
    /// looks at the state before it polls again), or when a wake-up is
    /// already pending. Call with the state locked.
    fn nudge(&self, st: &LoopState) {
        if st.runner == Some(sync::current_thread()) {
            return;
        }
        if self.wake_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = self.waker.wake() {
            self.wake_pending.store(false, Ordering::Release);
            log::error!("cannot wake the loop: {e}");
        }
    }

    /// Start the race of `conn` over the candidate tree of `spec`
    /// (RFC 9623 §4.1): paths × protocols kept by the selection
    /// properties, each racing the resolved endpoints.
    pub(crate) fn start_race(self: &Arc<Self>, conn: &Arc<ConnCore>, spec: &RaceSpec<'_>) -> Result<()> {
        let mut st = lock(&self.state);
        if st.shut_down || st.stop_requested || conn.client.is_released() {
            return Err(Error::InvalidState);
        }
        self.start_race_locked(&mut st, conn, spec, RaceOwner::User)?;
        self.sync_wake_timer(&mut st);
        self.nudge(&st);
        Ok(())
    }

    /// Start a race with the state locked; `pool` marks a pool's race.
    fn start_race_locked(
        &self,
        st: &mut LoopState,
        conn: &Arc<ConnCore>,
        spec: &RaceSpec<'_>,
        owner: RaceOwner,
    ) -> Result<u64> {
        let (paths, branches) = race_tree(st, spec);
        if branches.is_empty() {
            return Err(Error::NoCandidates);
        }
        let Some(id) = st.races.next_id() else {
            return Err(Error::Io(libc::ENOMEM));
        };
        {
            let mut c = conn.lock();
            if c.phase != Phase::Idle || c.released {
                return Err(Error::InvalidState);
            }
            c.phase = Phase::Establishing;
            c.race = NonZeroU64::new(id);
        }
        let now = self.clock.now();
        let remotes = spec.remotes;
        // On the stack for a few endpoints (the common case), else a Vec.
        let mut few = [QueryKey { endpoint: 0, family: Family::V4 }; 8];
        let mut many = Vec::new();
        let mut n = 0;
        let mut push = |q: QueryKey| {
            if n < few.len() {
                few[n] = q;
            } else {
                if many.is_empty() {
                    many.extend_from_slice(&few);
                }
                many.push(q);
            }
            n += 1;
        };
        for (i, ep) in remotes.iter().enumerate() {
            match ep.host() {
                Some(Host::Ip(ip)) => {
                    let family = if ip.is_ipv6() { Family::V6 } else { Family::V4 };
                    push(QueryKey { endpoint: i, family });
                }
                _ => {
                    push(QueryKey { endpoint: i, family: Family::V6 });
                    push(QueryKey { endpoint: i, family: Family::V4 });
                }
            }
        }
        let queries: &[QueryKey] = if n <= few.len() { &few[..n] } else { &many };
        let mut race = Tree::new(spec.config, now, queries, &branches);
        if !spec.avoid.is_empty() {
            race.set_avoided(spec.avoid);
        }
        // Sorting only matters with more than one candidate; a lone literal
        // needs no source address lookup.
        let need_sources = queries.len() > 1;
        // The first literal alone is given as one answer (no list of them).
        let mut first = None;
        let mut literals = Vec::new();
        for (i, ep) in remotes.iter().enumerate() {
            if let (Some(Host::Ip(ip)), Some(port)) = (ep.host(), ep.port()) {
                let addr = SocketAddr::new(*ip, port);
                let source = if need_sources { resolver::source_address(addr) } else { Some(addr.ip()) };
                let family = if ip.is_ipv6() { Family::V6 } else { Family::V4 };
                let literal = (QueryKey { endpoint: i, family }, Ok(vec![Candidate { addr, source }]));
                match first.take() {
                    None if literals.is_empty() => first = Some(literal),
                    earlier => literals.extend(earlier.into_iter().chain([literal])),
                }
            }
        }
        // Literal addresses are all known at once: the race sorts them
        // together (RFC 6724) before its first attempt (one alone is the
        // same as one answer).
        if let Some((key, answer)) = first {
            race.on_answer(now, key, answer);
        } else if !literals.is_empty() {
            race.on_answers(now, literals);
        }
        let user_resolver = st.user_resolver.clone();
        let inserted = st.races.insert(RaceEntry {
            race,
            conn: Arc::clone(conn),
            started_at: now,
            io: AttemptIos::default(),
            armed: NOT_ARMED,
            paths,
            user_queries: None,
            owner,
            from_cache: false,
        });
        debug_assert_eq!(inserted, Some(id));
        let mut cached = Vec::new();
        let mut jobs = Vec::new();
        for (i, ep) in remotes.iter().enumerate() {
            let (Some(Host::Name(host)), Some(port)) = (ep.host(), ep.port()) else { continue };
            let mut kept = match user_resolver {
                None => self.resolver.cache.get(host, port),
                Some(_) => [None, None],
            };
            for (family, kept) in [Family::V6, Family::V4].into_iter().zip(&mut kept) {
                let key = QueryKey { endpoint: i, family };
                match &user_resolver {
                    None => {
                        if let Some(answer) = kept.take() {
                            cached.push((key, answer));
                        } else if let Some(host) = ep.name_cstring() {
                            jobs.push(Job { race: id, key, host, port });
                        }
                    }
                    Some(r) => {
                        let query = ResolverQuery(Arc::new(resolver::QueryHandle {
                            resolver: Arc::downgrade(&self.resolver),
                            race: id,
                            key,
                            port,
                            done: std::sync::atomic::AtomicBool::new(false),
                        }));
                        if let Err(code) = r.resolve(query.clone(), host, family) {
                            query.fail(code);
                        }
                        if let Some(e) = st.races.get_mut(&id) {
                            let u = e.user_queries.get_or_insert_with(|| {
                                Box::new(UserQueries { resolver: Arc::clone(r), queries: Vec::new() })
                            });
                            u.queries.push(query);
                        }
                    }
                }
            }
        }
        self.resolver.submit(jobs);
        // Cached answers are all known at once, like literals: sorted
        // together before the first attempt.
        if !cached.is_empty() {
            if let Some(e) = st.races.get_mut(&id) {
                e.race.on_answers(now, cached);
                e.from_cache = true;
            }
        }
        self.drive(st, id, now);
        Ok(id)
    }

    /// The user released its handle: cancel the race, close the socket,
    /// drop the handler; no callback follows. Waits for a callback of this
    /// connection running on another thread to return.
    pub(crate) fn release(&self, conn: &Arc<ConnCore>) {
        let handler = {
            let mut st = lock(&self.state);
            let (race, transport, handler, pool) = {
                let mut c = conn.lock();
                c.released = true;
                (c.race.take(), c.take_transport(), c.handler.take(), c.take_pool())
            };
            if let Some(id) = race.map(NonZeroU64::get) {
                self.cancel_race(&mut st, id);
            }
            if let Some(pool) = pool {
                self.pool_forget_waiter(&mut st, pool, conn);
            }
            if let Some(t) = transport {
                if let Transport::Tcp(token, _) = &t {
                    st.targets.forget(*token);
                }
                // Freed, not closed gracefully: closing the fd sends the FIN
                // and takes it out of the epoll set; no shutdown or
                // deregister call needed.
                protocol::drop_transport(t);
            }
            // Callbacks still queued for it are skipped when their turn
            // comes (`invoke` sees `released`): no O(queue) search here,
            // where a handler that frees its connection in `ready` would
            // pay one per connection of the batch.
            self.sync_wake_timer(&mut st);
            self.nudge(&st);
            handler
        };
        conn.wait_callbacks();
        drop(handler);
    }

    /// Graceful close: a racing connection stops racing, an established one
    /// sends FIN and closes its socket; `closed` follows on the loop.
    /// Nothing happens in any other phase.
    pub(crate) fn close(&self, conn: &Arc<ConnCore>) {
        let mut st = lock(&self.state);
        let (race, transport, waiting_in) = {
            let mut c = conn.lock();
            match c.phase {
                Phase::Establishing | Phase::Established => {}
                _ => return,
            }
            c.phase = Phase::Closed;
            (c.race.take(), c.take_transport(), c.take_pool())
        };
        if let Some(id) = race.map(NonZeroU64::get) {
            self.cancel_race(&mut st, id);
        }
        if let Some(pool) = waiting_in {
            self.pool_forget_waiter(&mut st, pool, conn);
        }
        if let Some(t) = transport {
            if let Transport::Tcp(token, _) = &t {
                st.targets.forget(*token);
            }
            protocol::close_transport(t, &self.registry);
        }
        st.callbacks.push_back((Arc::clone(conn), Callback::Closed));
        self.sync_wake_timer(&mut st);
        self.nudge(&st);
    }

    /// Free the loop: cancel every race (no callback), stop the resolver.
    pub(crate) fn shutdown(&self) {
        let mut st = lock(&self.state);
        st.shut_down = true;
        let pools: Vec<u64> = st.pools.keys().copied().collect();
        for id in pools {
            self.pool_free_locked(&mut st, id);
        }
        let groups: Vec<u64> = st.groups.keys().copied().collect();
        for id in groups {
            self.group_free_locked(&mut st, id);
        }
        st.notes.clear();
        let ids: Vec<u64> = st.races.keys().collect();
        for id in ids {
            if let Some(entry) = st.races.get(&id) {
                let mut c = entry.conn.lock();
                c.race = None;
                if c.phase == Phase::Establishing {
                    c.phase = Phase::Failed;
                    c.settled().error = Some(Error::Cancelled);
                }
            }
            self.cancel_race(&mut st, id);
        }
        st.callbacks.clear();
        drop(st);
        self.resolver.shutdown();
    }

    fn poll_once(&self, timeout: Option<Duration>) -> Result<()> {
        let mut poller = lock(&self.poller);
        let Poller { poll, events } = &mut *poller;
        match poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(io_err(e)),
        }
        let mut st = lock(&self.state);
        let now = self.clock.now();
        // Answers and completions queued from other threads (checked on
        // every pass: the waker's event may have been consumed before).
        self.take_queues(&mut st, now);
        for event in events.iter() {
            match event.token() {
                WAKER => {
                    self.wake_pending.store(false, Ordering::Release);
                }
                TIMER => {
                    if let Some(t) = st.wake_timer.as_mut() {
                        t.acknowledge();
                    }
                }
                token => self.socket_event(&mut st, token, event, now),
            }
        }
        drop(poller);
        self.fire_timers(&mut st, now);
        self.sync_wake_timer(&mut st);
        Ok(())
    }

    fn socket_event(&self, st: &mut LoopState, token: Token, event: &mio::event::Event, now: Micros) {
        match st.targets.get(token) {
            Some(Target::Attempt { race: id, attempt }) => {
                let Some(entry) = st.races.get_mut(&id) else { return };
                let Some(AttemptIo::Tcp(_, stream)) = entry.io.get(attempt) else { return };
                let writable = event.is_writable() && !event.is_error() && !event.is_write_closed();
                match tcp::progress_after(stream, Some(writable)) {
                    tcp::Progress::Ready => entry.race.on_attempt_ready(now, attempt),
                    tcp::Progress::Failed(errno) => entry.race.on_attempt_failed(now, attempt, errno),
                    tcp::Progress::Waiting => return,
                }
                self.drive(st, id, now);
            }
            Some(Target::Established(weak)) => {
                let Some(conn) = weak.upgrade() else { return };
                let mut c = conn.lock();
                if c.phase != Phase::Established {
                    return;
                }
                // A user's connection fails on an error or a full hang-up
                // (the user may still write after the peer's FIN); a pool's
                // or group's, which nobody reads, also when the peer closed.
                let owned = c.holder.is_some();
                let hangup = event.is_read_closed() && (event.is_write_closed() || owned);
                if !(event.is_error() || hangup) {
                    return;
                }
                let errno = match c.transport() {
                    Some(Transport::Tcp(_, s)) => match s.take_error() {
                        Ok(Some(e)) => tcp::errno(e),
                        _ => libc::EPIPE,
                    },
                    _ => libc::EPIPE,
                };
                if let Some(t) = c.take_transport() {
                    protocol::close_transport(t, &self.registry);
                }
                c.phase = Phase::Closed;
                c.settled().error = Some(Error::Io(errno));
                let holder = c.holder.take();
                drop(c);
                st.targets.forget(token);
                match holder {
                    // A buffered connection: the pool replaces it.
                    Some(Holder::Pool(pool)) => self.pool_lost(st, pool, &conn, now),
                    // A group member: failover, then rebuild.
                    Some(Holder::Group(group, member)) => self.group_member_lost(st, group, member as usize, now),
                    None => st.callbacks.push_back((conn, Callback::ConnectionError)),
                }
            }
            None => {}
        }
    }

    /// Feed queued resolver answers and protocol completions to their
    /// races; returns how many there were.
    fn take_queues(&self, st: &mut LoopState, now: Micros) -> usize {
        let answers = self.resolver.take_answers();
        let completions = std::mem::take(&mut *lock(&self.completions));
        let n = answers.len() + completions.len();
        for answer in answers {
            if let Some(entry) = st.races.get_mut(&answer.race) {
                entry.race.on_answer(now, answer.key, answer.result);
                self.drive(st, answer.race, now);
            }
        }
        // Mark every ready attempt first: when one of them wins, the others
        // that reported ready in the same batch are closed, not cancelled.
        // A completion whose attempt the race already let go of (it ended,
        // or cancelled it while the protocol completed it) is an orphan: a
        // ready connection is closed.
        let mut claimed = Vec::with_capacity(completions.len());
        for (id, attempt, completion, protocol) in &completions {
            let io = st.races.get_mut(id).and_then(|e| e.io.get_mut(*attempt));
            let mine = match io {
                Some(AttemptIo::User { ready, .. }) => {
                    if let Completion::Ready(fd, data) = completion {
                        *ready = Some((*fd, *data));
                    }
                    true
                }
                _ => false,
            };
            if !mine {
                protocol::close_orphan(protocol, *completion);
            }
            claimed.push(mine);
        }
        for ((id, attempt, completion, _), mine) in completions.into_iter().zip(claimed) {
            if !mine {
                continue;
            }
            let Some(entry) = st.races.get_mut(&id) else { continue };
            match completion {
                Completion::Ready(..) => {
                    if !matches!(entry.io.get(attempt), Some(AttemptIo::User { .. })) {
                        continue;
                    }
                    entry.race.on_attempt_ready(now, attempt);
                }
                Completion::Failed(errno) => {
                    // The protocol ended it: nothing to cancel.
                    if entry.io.remove(attempt).is_none() {
                        continue;
                    }
                    entry.race.on_attempt_failed(now, attempt, errno);
                }
            }
            self.drive(st, id, now);
        }
        n
    }

    fn fire_timers(&self, st: &mut LoopState, now: Micros) {
        while let Some((at, id)) = st.timers.pop_due(now) {
            if st.pools.contains_key(&id) {
                self.pool_timer(st, id, at, now);
                continue;
            }
            if st.groups.contains_key(&id) {
                self.group_timer(st, id, at, now);
                continue;
            }
            let Some(entry) = st.races.get_mut(&id) else { continue };
            if entry.armed != at {
                continue;
            }
            entry.armed = NOT_ARMED;
            entry.race.on_timer(now);
            self.drive(st, id, now);
        }
    }

    fn sync_wake_timer(&self, st: &mut LoopState) {
        let LoopState { timers, races, pools, groups, wake_timer, wake_ahead, .. } = st;
        timers.drop_stale_top(|at, id| {
            races.get(&id).is_some_and(|e| e.armed == at)
                || pools.get(&id).is_some_and(|p| p.armed == Some(at))
                || groups.get(&id).is_some_and(|g| g.armed == Some(at))
        });
        if let Some(t) = wake_timer.as_mut() {
            // Early by the wake-ahead while that is still in the future;
            // inside the window, at the deadline itself (the runner polls
            // without sleeping there).
            let at = timers.peek().map(|at| {
                let early = at.saturating_sub(*wake_ahead);
                // Armed early for this deadline already: it stays so
                // (no clock read, several times per race). Had that time
                // passed, the timerfd has fired, and the loop arms it
                // again once it has seen that.
                if early != at && t.armed() == Some(early) {
                    return early;
                }
                if early > self.clock.now() { early } else { at }
            });
            t.arm(&self.clock, at);
        }
    }

    /// Cancel a race the user gave up: its sockets close, no callback.
    fn cancel_race(&self, st: &mut LoopState, id: u64) {
        let now = self.clock.now();
        if let Some(entry) = st.races.get_mut(&id) {
            entry.race.cancel(now);
            self.drive(st, id, now);
        }
    }

    /// Carry out the race's actions until it has none left; finish it if it
    /// ended. A pool's race hands its connections to the pool instead.
    fn drive(&self, st: &mut LoopState, id: u64, now: Micros) {
        // Written under the state lock only: a plain increment, no locked
        // read-modify-write (this runs twice per race).
        let steps = self.progress.load(Ordering::Relaxed);
        self.progress.store(steps + 1, Ordering::Release);
        let LoopState { races, targets, timers, protocols, .. } = &mut *st;
        let Some(entry) = races.get_mut(&id) else { return };
        let mut end = None;
        let mut spares: Vec<AttemptId> = Vec::new();
        while let Some(action) = entry.race.poll_action() {
            match action {
                Action::Start { attempt, addr, path, protocol } => {
                    let started = protocol::start(&protocols[protocol], &entry.paths[path].path, addr, &self.me, id, attempt);
                    let (io, ready) = match started {
                        Ok(Started::Pending(io)) => (io, false),
                        Ok(Started::Ready(io)) => (io, true),
                        Err(errno) => {
                            entry.race.on_attempt_failed(now, attempt, errno);
                            continue;
                        }
                    };
                    let io = match io {
                        AttemptIo::Tcp(_, mut stream) => {
                            let token = targets.attempt(id, attempt);
                            if let Err(e) = self.registry.register(&mut stream, token, Interest::WRITABLE) {
                                targets.forget(token);
                                entry.race.on_attempt_failed(now, attempt, tcp::errno(e));
                                continue;
                            }
                            AttemptIo::Tcp(token, stream)
                        }
                        other => other,
                    };
                    entry.io.insert(attempt, io);
                    if ready {
                        entry.race.on_attempt_ready(now, attempt);
                    }
                }
                Action::Cancel { attempt } => {
                    if let Some(io) = entry.io.remove(attempt) {
                        if let AttemptIo::Tcp(token, _) = &io {
                            targets.forget(*token);
                        }
                        protocol::discard(io, &self.registry);
                    }
                }
                Action::Won { attempt } => end = Some(Ok(attempt)),
                Action::Spare { attempt } => spares.push(attempt),
                Action::Failed { error } => end = Some(Err(error)),
            }
        }
        if matches!(end, Some(Err(_))) && entry.from_cache {
            // The kept addresses failed: the next race asks again.
            let tried: Vec<std::net::IpAddr> = entry.race.attempts().map(|a| a.record.candidate.addr.ip()).collect();
            self.resolver.cache.forget_addresses(&tried);
        }
        match entry.owner {
            RaceOwner::User => {}
            RaceOwner::Pool(pool, kind) => {
                let reports = reports(entry, protocols);
                return self.drive_pool_race(st, id, pool, kind, end, spares, reports, now);
            }
            RaceOwner::Group(group) => {
                let reports = reports(entry, protocols);
                return self.drive_group_race(st, id, group, end, spares, reports, now);
            }
        }
        // A user's race report is read from the race while it runs (see
        // attempt_reports) and kept in the connection when it ends.
        let Some(end) = end else {
            arm_race(entry, timers, id);
            return;
        };
        let Some(mut entry) = races.remove(&id) else { return };
        let reports = reports(&entry, protocols);
        self.end_queries(&mut entry);
        let winner = match end {
            Ok(attempt) => entry.io.remove(attempt),
            Err(_) => None,
        };
        for io in entry.io.drain() {
            if let AttemptIo::Tcp(token, _) = &io {
                targets.forget(*token);
            }
            protocol::discard(io, &self.registry);
        }
        let conn = entry.conn;
        let mut c = conn.lock();
        c.settled().attempts = reports.into();
        c.race = None;
        let live = c.phase == Phase::Establishing && !c.released;
        let callback = match (end, winner) {
            (Ok(attempt), Some(io)) => {
                let remote = entry.race.attempts().nth(attempt).map(|a| a.record.candidate.addr);
                let transport = self.to_transport(targets, io);
                if live {
                    self.install(targets, &conn, &mut c, transport, remote);
                    Some(Callback::Ready)
                } else {
                    protocol::close_transport(transport, &self.registry);
                    None
                }
            }
            (Ok(_), None) => {
                log::error!("race {id}: the winner has no transport");
                c.phase = Phase::Failed;
                c.settled().error = Some(Error::Io(libc::EIO));
                Some(Callback::EstablishmentError)
            }
            (Err(error), _) => {
                if c.phase == Phase::Establishing {
                    c.phase = Phase::Failed;
                    c.settled().error = Some(race_error(error));
                    Some(Callback::EstablishmentError)
                } else {
                    None
                }
            }
        };
        let released = c.released;
        drop(c);
        if let (Some(cb), false) = (callback, released) {
            st.callbacks.push_back((conn, cb));
        }
    }

    /// Remove a race that has nothing running: its queries are cancelled,
    /// what is left of its I/O released.
    fn remove_race(&self, st: &mut LoopState, id: u64) {
        if let Some(mut entry) = st.races.remove(&id) {
            self.end_queries(&mut entry);
            for io in entry.io.drain() {
                if let AttemptIo::Tcp(token, _) = &io {
                    st.targets.forget(*token);
                }
                protocol::discard(io, &self.registry);
            }
        }
    }

    /// Call `f` with the race report of `conn`: built from its race while
    /// a user's race runs, else the one the connection kept (its race
    /// ended, or a pool or group gave it its report).
    pub(crate) fn attempt_reports<R>(&self, conn: &ConnCore, f: impl FnOnce(&[AttemptReport]) -> R) -> R {
        let st = lock(&self.state);
        let c = conn.lock();
        match c.race.and_then(|id| st.races.get(&id.get())) {
            Some(entry) if entry.owner == RaceOwner::User => f(&reports(entry, &st.protocols)),
            _ => f(c.attempts()),
        }
    }

    /// Cancel the user-resolver queries of a race that ended.
    fn end_queries(&self, entry: &mut RaceEntry) {
        let Some(u) = entry.user_queries.take() else { return };
        for q in u.queries {
            if !q.0.done.load(std::sync::atomic::Ordering::Acquire) {
                q.0.end();
                u.resolver.cancel(&q);
            }
        }
    }

    /// A ready attempt's I/O as an established connection's transport: a
    /// TCP stream stops being watched for writability (its token is
    /// forgotten until [`LoopShared::install`]).
    fn to_transport(&self, targets: &mut Targets, io: AttemptIo) -> Transport {
        match io {
            AttemptIo::Tcp(token, stream) => {
                targets.forget(token);
                Transport::Tcp(token, stream)
            }
            AttemptIo::Udp(sock) => Transport::Udp(sock),
            AttemptIo::User { entry, handle, ready } => {
                handle.end();
                let (fd, data) = ready.unwrap_or((None, 0));
                Transport::User { entry, fd, data }
            }
        }
    }

    /// Make `transport` the established connection of `conn` (whose state
    /// `c` is locked): a TCP socket is watched for errors and hang-ups.
    fn install(
        &self,
        targets: &mut Targets,
        conn: &Arc<ConnCore>,
        c: &mut conn::ConnState,
        mut transport: Transport,
        remote: Option<SocketAddr>,
    ) {
        // Watched for errors and hang-ups when someone listens: a pool or
        // group that owns it, or a handler that wants connection errors
        // (a C program that set connection_error). Otherwise the socket is
        // left as it is, which saves an epoll_ctl per connection.
        let watch = c.holder.is_some() || c.handler.as_ref().is_some_and(|h| h.wants_connection_errors());
        if let (true, Transport::Tcp(token, stream)) = (watch, &mut transport) {
            let watched = targets.established(Arc::downgrade(conn));
            if self.registry.reregister(stream, watched, Interest::READABLE).is_ok() {
                *token = watched;
            } else {
                targets.forget(watched);
            }
        }
        c.phase = Phase::Established;
        let settled = c.settled();
        settled.remote = remote;
        settled.transport = Some(transport);
    }
}

/// Push the race's next deadline on the heap if it moved.
fn arm_race(entry: &mut RaceEntry, timers: &mut TimerHeap, id: u64) {
    match entry.race.next_deadline() {
        Some(at) if entry.armed != at => {
            entry.armed = at;
            timers.push(at, id);
        }
        Some(_) => {}
        None => entry.armed = NOT_ARMED,
    }
}

/// The API error of a race error.
fn race_error(e: RaceError) -> Error {
    match e {
        RaceError::ResolutionFailed(code) => Error::ResolutionFailed(code),
        RaceError::AllAttemptsFailed(errno) => Error::AllAttemptsFailed(errno),
        RaceError::TimedOut => Error::TimedOut,
        RaceError::Cancelled => Error::Cancelled,
    }
}

impl Drop for LoopShared {
    fn drop(&mut self) {
        self.resolver.shutdown();
    }
}

/// The race report in the API's terms: times relative to the race start.
fn reports(entry: &RaceEntry, protocols: &[Arc<ProtocolEntry>]) -> Vec<AttemptReport> {
    entry
        .race
        .attempts()
        .map(|a| {
            let r = a.record;
            AttemptReport {
                address: r.candidate.addr,
                protocol: Arc::clone(&protocols[a.protocol].name),
                interface: entry.paths[a.path].name.clone(),
                started_us: r.started.saturating_sub(entry.started_at),
                ended_us: r.ended.map(|e| e.saturating_sub(entry.started_at)),
                outcome: match r.outcome {
                    Outcome::Running => AttemptOutcome::Running,
                    Outcome::Won => AttemptOutcome::Won,
                    Outcome::Failed(_) => AttemptOutcome::Failed,
                    Outcome::Cancelled => AttemptOutcome::Cancelled,
                    Outcome::Spare => AttemptOutcome::Spare,
                },
                os_error: match r.outcome {
                    Outcome::Failed(e) => e,
                    _ => 0,
                },
            }
        })
        .collect()
}

/// The paths and candidate tree of a race (see [`build_tree`]). Most races
/// take the default path alone: their tree depends on a few properties
/// only, and is built once for as long as those stay the same (no
/// allocation, no selection per race). The default path is the loop's,
/// shared by every race that takes it.
fn race_tree(st: &mut LoopState, spec: &RaceSpec<'_>) -> (Arc<[RacePath]>, Arc<[PathBranch]>) {
    let sel = spec.selection;
    let default_only = spec.locals.is_empty() && sel.interfaces.is_empty();
    let key = DefaultTreeKey {
        selection: [sel.reliability, sel.preserve_msg_boundaries, sel.multistreaming],
        path: spec.racing.path,
        protocol: spec.racing.protocol,
        protocols: st.protocols.len(),
    };
    if default_only {
        if let Some((k, branches)) = &st.default_tree {
            if *k == key {
                return (Arc::clone(&st.default_paths), Arc::clone(branches));
            }
        }
    }
    let (paths, branches) = build_tree(&st.protocols, spec);
    let branches: Arc<[PathBranch]> = branches.into();
    if paths.len() == 1 && paths[0] == st.default_paths[0].path {
        if default_only {
            st.default_tree = Some((key, Arc::clone(&branches)));
        }
        (Arc::clone(&st.default_paths), branches)
    } else {
        (paths.into_iter().map(RacePath::new).collect(), branches)
    }
}

/// The candidate tree of a race: paths and protocols kept and ordered by
/// the selection properties (RFC 9623 §4.1, §5), with their racing types
/// (§4.3; a branch that hits an Avoid races as failover behind the
/// others). Returns the paths and the tree's branches (path ids index
/// the returned paths, protocol ids the `registered` protocols).
fn build_tree(registered: &[Arc<ProtocolEntry>], spec: &RaceSpec<'_>) -> (Vec<Path>, Vec<PathBranch>) {
    let sel = spec.selection;
    let names_loopback = sel.interfaces.iter().any(|(m, p)| {
        matches!(p, select::Preference::Require | select::Preference::Prefer)
            && match m {
                InterfaceMatch::Name(n) => n == "lo",
                InterfaceMatch::Type(t) => *t == InterfaceType::Loopback,
            }
    });
    let paths = paths::candidate_paths(spec.locals, !sel.interfaces.is_empty(), names_loopback);
    let path_traits: Vec<_> = paths.iter().map(Path::traits).collect();
    let chosen_paths = select::select_paths(sel, &path_traits);
    let traits: Vec<_> = registered.iter().map(|p| p.traits).collect();
    let chosen_protocols = select::select_protocols(sel, &traits);
    let level = |chosen: &[select::Selected], racing: RacingType| -> Vec<RacingType> {
        chosen
            .iter()
            .enumerate()
            .map(|(i, c)| if i > 0 && c.avoided && !chosen[i - 1].avoided { RacingType::Failover } else { racing })
            .collect()
    };
    let protocol_racing = level(&chosen_protocols, spec.racing.protocol);
    let path_racing = level(&chosen_paths, spec.racing.path);
    let branches = if chosen_protocols.is_empty() {
        Vec::new()
    } else {
        chosen_paths
            .iter()
            .zip(path_racing)
            .map(|(c, racing)| PathBranch {
                path: c.index,
                racing,
                protocols: chosen_protocols
                    .iter()
                    .zip(&protocol_racing)
                    .map(|(c, &racing)| ProtocolBranch { protocol: c.index, racing })
                    .collect(),
            })
            .collect()
    };
    (paths, branches)
}
