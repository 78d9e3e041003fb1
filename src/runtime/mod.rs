//! The mio event loop that runs the engine.
//!
//! One [`LoopCore`] per EventLoop: its own `mio::Poll`, Waker, timerfd,
//! resolver workers and sockets; nothing process-wide. The loop's state is
//! behind one mutex so that any thread may call the API; the thread that
//! runs the loop polls without holding it and calls user callbacks with no
//! lock held, so callbacks may call back into the library (close or free
//! their own connection, start another race).
//!
//! Where things are:
//! - this file: [`LoopCore`] and its state, creating a loop, its setters,
//!   waking it;
//! - [`runner`]: the ways to run it (run, run_once, process, a thread of
//!   its own);
//! - a race: [`race`] (one race in flight and its report), `start` (its
//!   queries, literals, cache, resolvers), `tree` (its candidate tree),
//!   `drive` (carrying out its tree's actions, its end), `events` (poll,
//!   socket events, queued answers and completions, timers), `cancel`
//!   (close, release, shutdown); [`race_table`], [`timers`] and
//!   [`tokens`] find races by id, by deadline and by socket;
//! - [`pool`] and [`group`]: pools and groups, with their own tables;
//! - [`conn`], [`client`], [`protocol`], [`paths`], [`resolver`],
//!   [`cache`], [`dns`], `dns_loop`, [`sources`]: connections, clients,
//!   protocols, paths, name resolution (getaddrinfo workers, the cache,
//!   the DNS client and its exchanges on the loop, RFC 6724 source
//!   addresses);
//! - [`sys`]: the operating system's side (sockets, interfaces, clock).

pub(crate) mod cache;
pub(crate) mod callbacks;
mod cancel;
pub(crate) mod client;
pub(crate) mod conn;
pub(crate) mod connectivity;
pub(crate) mod dns;
mod drive;
mod events;
pub(crate) mod https;
pub(crate) mod group;
pub(crate) mod nat64;
pub(crate) mod history;
pub(crate) mod paths;
pub(crate) mod pool;
pub(crate) mod pref64;
pub(crate) mod protocol;
pub(crate) mod race;
pub(crate) mod race_table;
pub(crate) mod resolver;
mod dns_loop;
pub(crate) mod runner;
pub(crate) mod sources;
pub(crate) mod stage;
mod start;
pub(crate) mod sync;
pub(crate) mod sys;
pub(crate) mod timers;
pub(crate) mod tokens;
mod tree;

use crate::vocabulary::error::{Error, Result};
use callbacks::UserResolver;
use crate::engine::tree::PathBranch;
use paths::Path;
use protocol::{Completion, ProtocolEntry};
use crate::engine::{AttemptId, Micros};
use sys::clock::{self, Clock, WakeTimer};
use conn::{Callback, ConnCore};
use mio::{Events, Interest, Poll, Token};
use resolver::Resolver;
use tokens::SocketTokens;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{JoinHandle, ThreadId};
use sync::{Condvar, Mutex, MutexGuard};
use timers::{RaceId, TimerHeap};
pub(crate) use race::RaceSpec;
use race::RaceOwner;
use race::{arm_race, race_error, RaceEntry, RacePath, QueuedCompletion};
use tree::DefaultTreeKey;

/// A pool's or group's event, queued for delivery with the connections'
/// callbacks: a call to the user's event callback, made with no lock held.
pub(crate) type QueuedEvent = Box<dyn FnOnce() + Send>;

const WAKER: Token = Token(0);
const TIMER: Token = Token(1);
/// The connectivity monitor's token (see [`connectivity`]).
const MONITOR: Token = Token(2);

/// What the loop's state lock guards: races, sockets, timers, pools,
/// groups, the callbacks waiting to be delivered, who runs the loop.
struct LoopState {
    races: race_table::RaceTable<RaceEntry>,
    /// What earlier races taught, per network (shared by every race,
    /// pool and group of the loop).
    history: history::LoopHistory,
    tokens: SocketTokens,
    timers: TimerHeap,
    wake_timer: Option<WakeTimer>,
    /// How early the timerfd fires before a deadline while the library
    /// itself waits (run, run_once, own thread): the last µs are polled
    /// without sleeping, so a deadline does not pay the wake-up of an idle
    /// CPU. 0 while embedded (`process`): the caller's loop sleeps until
    /// the deadline itself.
    wake_ahead: Micros,
    callbacks: VecDeque<(Arc<ConnCore>, Callback)>,
    /// Connection pools on this loop (see `next_pool_or_group_id`).
    pools: pool::Pools,
    /// Pool and group events to deliver with the other callbacks: the
    /// owner's id and the call (the owner's free drops its pending ones).
    queued_events: VecDeque<(u64, QueuedEvent)>,
    /// Connection groups on this loop.
    groups: group::Groups,
    /// The next pool or group id (one counter for both, so that their
    /// events and timers never mistake one for the other).
    next_pool_or_group_id: u64,
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
    /// with what it was built from (see [`tree::race_tree`]).
    default_tree: Option<(DefaultTreeKey, Arc<[PathBranch]>)>,
    /// Won races whose DNS questions stay open a little (see
    /// [`https::LINGER`]).
    lingering: Vec<https::Lingering>,
    /// The NAT64 prefix IPv4 literals are synthesized under when the host
    /// has no IPv4 route to them (see [`nat64`]); `None`: no synthesis.
    pref64: Option<crate::engine::nat64::Pref64>,
    /// The DNS client's exchanges running on the loop (see [`dns_loop`]).
    exchanges: dns_loop::LoopExchanges,
}

struct Poller {
    poll: Poll,
    events: Events,
}

/// The core of one EventLoop, shared by its handles (as [`ConnCore`] is
/// a Connection's): everything the loop owns.
pub(crate) struct LoopCore {
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
    pub(crate) resolver: Arc<Resolver>,
    clock: Clock,
    /// User-protocol completions from any thread, for the loop.
    completions: Mutex<Vec<QueuedCompletion>>,
    /// HTTPS answers from any thread, for the loop (see [`https`]).
    service_answers: Mutex<Vec<https::ServiceAnswer>>,
    /// This loop, for the handles given to user protocols.
    me: Weak<LoopCore>,
    /// Counts race steps, so that a manual-clock run knows when nothing
    /// more happens.
    progress: std::sync::atomic::AtomicU64,
    /// See [`LoopState::wake_ahead`]: the value while the library waits.
    wake_ahead: Micros,
    /// The NAT64 prefix learnt from the network (see [`pref64`]).
    discovery: Arc<pref64::Discovery>,
    /// Route lookups for [`LoopCore::discover_pref64_for`], remembered a
    /// second.
    routes: nat64::RouteMemo,
    /// Which families and paths can route (HEv3 -04 §4.1).
    connectivity: connectivity::Connectivity,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

fn io_err(e: io::Error) -> Error {
    Error::Io(e.raw_os_error().unwrap_or(libc::EIO))
}

impl LoopCore {
    /// A new loop: a Poll, a Waker, a timerfd.
    pub(crate) fn new(manual_clock: bool) -> Result<Arc<LoopCore>> {
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
        let connectivity = connectivity::Connectivity::new(&registry);
        Ok(Arc::new_cyclic(|me| LoopCore {
            me: me.clone(),
            progress: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(LoopState {
                races: race_table::RaceTable::default(),
                history: history::LoopHistory::default(),
                tokens: SocketTokens::default(),
                timers: TimerHeap::default(),
                wake_timer,
                wake_ahead: 0,
                callbacks: VecDeque::new(),
                pools: pool::Pools::default(),
                queued_events: VecDeque::new(),
                groups: group::Groups::default(),
                next_pool_or_group_id: 1,
                runner: None,
                owner: None,
                stop_requested: false,
                shut_down: false,
                protocols: ProtocolEntry::builtins(),
                default_paths: Arc::new([RacePath::new(Path::default_path())]),
                user_resolver: None,
                default_tree: None,
                lingering: Vec::new(),
                pref64: None,
                exchanges: dns_loop::LoopExchanges::default(),
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
            service_answers: Mutex::new(Vec::new()),
            discovery: Arc::default(),
            routes: nat64::RouteMemo::default(),
            connectivity,
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
        self.wake_loop(&st);
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

    /// Whether a protocol named `name` is registered.
    pub(crate) fn has_protocol(&self, name: &str) -> bool {
        lock(&self.state).protocols.iter().any(|p| p.name.to_bytes() == name.as_bytes())
    }

    /// How long the system resolver's answers are kept for later races
    /// (zero: not at all; see [`cache`]).
    pub(crate) fn set_resolution_cache(&self, lifetime: std::time::Duration) {
        self.resolver.cache.set_lifetime(lifetime);
    }

    /// Start the system resolver's threads for a race to come (no-op with
    /// a user resolver, when they are running, or when the DNS client,
    /// which runs on the loop, answers for addresses).
    pub(crate) fn prepare_resolver(&self) {
        if lock(&self.state).user_resolver.is_none() {
            self.resolver.prepare();
        }
    }

    /// Synthesize IPv4 literals under `prefix` in races started from now
    /// on (None: the prefix discovered, if any; see [`nat64`], [`pref64`]).
    pub(crate) fn set_pref64(&self, prefix: Option<crate::engine::nat64::Pref64>) {
        lock(&self.state).pref64 = prefix;
    }

    /// The NAT64 prefix races use now and where it came from: the one set
    /// with [`set_pref64`](Self::set_pref64), else the discovered one.
    pub(crate) fn pref64(&self) -> Option<(crate::engine::nat64::Pref64, pref64::Pref64Source)> {
        let caller = lock(&self.state).pref64;
        pref64::choose(caller, None, None, std::time::Instant::now()).or_else(|| self.discovery.current())
    }

    /// [`pref64`](Self::pref64) with the state locked, without its source.
    fn pref64_locked(&self, st: &LoopState) -> Option<crate::engine::nat64::Pref64> {
        st.pref64.or_else(|| self.discovery.current().map(|(p, _)| p))
    }

    /// Before a race starts: when it has an IPv4 literal the host has no
    /// IPv4 route to, or a name on an IPv6-only host (its A
    /// answers), and the loop knows no prefix, start PREF64 discovery and
    /// wait for its first round (at most [`pref64::FIRST_ROUND_WAIT`]).
    fn discover_pref64_for(&self, remotes: &[crate::vocabulary::endpoint::RemoteEndpoint]) {
        if self.pref64().is_some() || !nat64::needs_prefix(remotes, |ip| self.routes.routed(ip)) {
            return;
        }
        let resolver = Arc::clone(&self.resolver);
        self.discovery.ensure(move || resolver.dns(), pref64::FIRST_ROUND_WAIT);
    }

    /// Use `resolver` instead of the system resolver (None: back to it).
    pub(crate) fn set_resolver(&self, resolver: Option<Arc<dyn UserResolver>>) {
        lock(&self.state).user_resolver = resolver;
    }

    /// Queue a user-protocol completion and wake the loop.
    pub(crate) fn push_completion(&self, race: RaceId, attempt: AttemptId, c: Completion, protocol: Arc<ProtocolEntry>) {
        lock(&self.completions).push((race, attempt, c, protocol));
        // Not wake_loop(): this may be called with the state lock held (a
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
    fn wake_loop(&self, st: &LoopState) {
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
}

impl Drop for LoopCore {
    fn drop(&mut self) {
        self.resolver.shutdown();
        self.discovery.shutdown();
    }
}

