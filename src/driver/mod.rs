//! The mio event loop that runs the engine.
//!
//! One [`LoopShared`] per EventLoop: its own `mio::Poll`, Waker, timerfd,
//! resolver workers and sockets; nothing process-wide. The loop's state is
//! behind one mutex so that any thread may call the API; the thread that
//! runs the loop polls without holding it and calls user callbacks with no
//! lock held, so callbacks may call back into the library (close or free
//! their own connection, start another race).

pub(crate) mod clock;
pub(crate) mod conn;
pub(crate) mod resolver;
pub(crate) mod tcp;
pub(crate) mod timers;

use crate::api::connection::{AttemptOutcome, AttemptReport};
use crate::api::endpoint::{Host, RemoteEndpoint};
use crate::api::error::{Error, Result};
use crate::engine::race::{Action, Outcome, Race, RaceConfig, RaceError};
use crate::engine::{AttemptId, Candidate, Family, Micros, QueryKey};
use clock::{Clock, WakeTimer};
use conn::{Callback, ConnCore, Phase};
use mio::{Events, Interest, Poll, Token};
use resolver::{Job, Resolver};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::ThreadId;
use std::time::Duration;
use timers::TimerHeap;

const WAKER: Token = Token(0);
const TIMER: Token = Token(1);
const FIRST_SOCKET: usize = 2;

/// What a socket token belongs to.
enum Target {
    /// A racing attempt.
    Attempt { race: u64, attempt: AttemptId },
    /// An established connection, watched for errors and hang-ups.
    Established(Weak<ConnCore>),
}

struct RaceEntry {
    race: Race,
    conn: Arc<ConnCore>,
    started_at: Micros,
    sockets: HashMap<AttemptId, (Token, mio::net::TcpStream)>,
    armed: Option<Micros>,
}

struct LoopState {
    races: HashMap<u64, RaceEntry>,
    targets: HashMap<Token, Target>,
    timers: TimerHeap,
    wake_timer: Option<WakeTimer>,
    callbacks: VecDeque<(Arc<ConnCore>, Callback)>,
    next_race: u64,
    next_token: usize,
    runner: Option<ThreadId>,
    shut_down: bool,
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
    resolver: Arc<Resolver>,
    clock: Clock,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_err(e: io::Error) -> Error {
    Error::Io(e.raw_os_error().unwrap_or(libc::EIO))
}

impl LoopShared {
    /// A new loop: a Poll, a Waker, a timerfd.
    pub(crate) fn new() -> Result<Arc<LoopShared>> {
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
        Ok(Arc::new(LoopShared {
            state: Mutex::new(LoopState {
                races: HashMap::new(),
                targets: HashMap::new(),
                timers: TimerHeap::default(),
                wake_timer,
                callbacks: VecDeque::new(),
                next_race: 1,
                next_token: FIRST_SOCKET,
                runner: None,
                shut_down: false,
            }),
            poller: Mutex::new(Poller { poll, events: Events::with_capacity(1024) }),
            registry,
            waker: Arc::clone(&waker),
            resolver: Resolver::new(waker),
            clock: Clock::new(),
        }))
    }

    /// Wake the thread running the loop if it is not the calling thread.
    fn nudge(&self, st: &LoopState) {
        if let Some(t) = st.runner {
            if t != std::thread::current().id() {
                if let Err(e) = self.waker.wake() {
                    log::error!("cannot wake the loop: {e}");
                }
            }
        }
    }

    /// Start the race of `conn` to `remotes`.
    pub(crate) fn start_race(
        self: &Arc<Self>,
        conn: &Arc<ConnCore>,
        remotes: &[RemoteEndpoint],
        config: RaceConfig,
    ) -> Result<()> {
        let mut st = lock(&self.state);
        if st.shut_down {
            return Err(Error::InvalidState);
        }
        {
            let mut c = conn.lock();
            if c.phase != Phase::Idle || c.released {
                return Err(Error::InvalidState);
            }
            c.phase = Phase::Establishing;
        }
        let now = self.clock.now();
        let id = st.next_race;
        st.next_race += 1;
        let mut queries = Vec::with_capacity(remotes.len() * 2);
        for (i, ep) in remotes.iter().enumerate() {
            match ep.host() {
                Some(Host::Ip(ip)) => {
                    let family = if ip.is_ipv6() { Family::V6 } else { Family::V4 };
                    queries.push(QueryKey { endpoint: i, family });
                }
                _ => {
                    queries.push(QueryKey { endpoint: i, family: Family::V6 });
                    queries.push(QueryKey { endpoint: i, family: Family::V4 });
                }
            }
        }
        let mut race = Race::new(config, now, &queries);
        // Sorting only matters with more than one candidate; a lone literal
        // needs no source address lookup.
        let need_sources = queries.len() > 1;
        for (i, ep) in remotes.iter().enumerate() {
            if let (Some(Host::Ip(ip)), Some(port)) = (ep.host(), ep.port()) {
                let addr = SocketAddr::new(*ip, port);
                let source = if need_sources { resolver::source_address(addr) } else { Some(addr.ip()) };
                let family = if ip.is_ipv6() { Family::V6 } else { Family::V4 };
                race.on_answer(now, QueryKey { endpoint: i, family }, Ok(vec![Candidate { addr, source }]));
            }
        }
        conn.lock().race = Some(id);
        st.races.insert(
            id,
            RaceEntry { race, conn: Arc::clone(conn), started_at: now, sockets: HashMap::new(), armed: None },
        );
        for (i, ep) in remotes.iter().enumerate() {
            if let (Some(host), Some(port)) = (ep.name_cstring(), ep.port()) {
                for family in [Family::V6, Family::V4] {
                    let key = QueryKey { endpoint: i, family };
                    self.resolver.submit(Job { race: id, key, host: host.clone(), port });
                }
            }
        }
        self.drive(&mut st, id, now);
        self.sync_wake_timer(&mut st);
        self.nudge(&st);
        Ok(())
    }

    /// The user released its handle: cancel the race, close the socket,
    /// drop the handler; no callback follows. Waits for a callback of this
    /// connection running on another thread to return.
    pub(crate) fn release(&self, conn: &Arc<ConnCore>) {
        let handler = {
            let mut st = lock(&self.state);
            let (race, stream, handler) = {
                let mut c = conn.lock();
                c.released = true;
                (c.race.take(), c.stream.take(), c.handler.take())
            };
            if let Some(id) = race {
                self.cancel_race(&mut st, id);
            }
            if let Some((token, mut s)) = stream {
                st.targets.remove(&token);
                let _ = self.registry.deregister(&mut s);
            }
            st.callbacks.retain(|(c, _)| !Arc::ptr_eq(c, conn));
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
        let (race, stream) = {
            let mut c = conn.lock();
            match c.phase {
                Phase::Establishing | Phase::Established => {}
                _ => return,
            }
            c.phase = Phase::Closed;
            (c.race.take(), c.stream.take())
        };
        if let Some(id) = race {
            self.cancel_race(&mut st, id);
        }
        if let Some((token, mut s)) = stream {
            st.targets.remove(&token);
            let _ = self.registry.deregister(&mut s);
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        st.callbacks.push_back((Arc::clone(conn), Callback::Closed));
        self.sync_wake_timer(&mut st);
        self.nudge(&st);
    }

    /// Free the loop: cancel every race (no callback), stop the resolver.
    pub(crate) fn shutdown(&self) {
        let mut st = lock(&self.state);
        st.shut_down = true;
        let ids: Vec<u64> = st.races.keys().copied().collect();
        for id in ids {
            if let Some(entry) = st.races.get(&id) {
                let mut c = entry.conn.lock();
                c.race = None;
                if c.phase == Phase::Establishing {
                    c.phase = Phase::Failed;
                    c.error = Some(Error::Cancelled);
                }
            }
            self.cancel_race(&mut st, id);
        }
        st.callbacks.clear();
        drop(st);
        self.resolver.shutdown();
    }

    /// Whether the loop has races or callbacks pending.
    pub(crate) fn has_work(&self) -> bool {
        let st = lock(&self.state);
        !st.races.is_empty() || !st.callbacks.is_empty()
    }

    /// Run until no race is pending and every callback was delivered.
    pub(crate) fn run(&self) -> Result<()> {
        let me = std::thread::current().id();
        loop {
            self.deliver();
            let timeout = {
                let mut st = lock(&self.state);
                let now = self.clock.now();
                self.fire_timers(&mut st, now);
                if !st.callbacks.is_empty() {
                    continue;
                }
                if st.races.is_empty() {
                    if st.runner == Some(me) {
                        st.runner = None;
                    }
                    return Ok(());
                }
                st.runner = Some(me);
                self.sync_wake_timer(&mut st);
                // The timerfd wakes us on time; the poll timeout is a backstop.
                st.timers.peek().map(|at| Duration::from_micros(at.saturating_sub(now)) + Duration::from_millis(1))
            };
            if let Err(e) = self.poll_once(timeout) {
                lock(&self.state).runner = None;
                return Err(e);
            }
        }
    }

    /// Call the queued callbacks, in order, with no lock held.
    fn deliver(&self) {
        loop {
            let next = lock(&self.state).callbacks.pop_front();
            match next {
                Some((conn, cb)) => conn.invoke(cb),
                None => return,
            }
        }
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
        for event in events.iter() {
            match event.token() {
                WAKER => {
                    for answer in self.resolver.take_answers() {
                        if let Some(entry) = st.races.get_mut(&answer.race) {
                            entry.race.on_answer(now, answer.key, answer.result);
                            self.drive(&mut st, answer.race, now);
                        }
                    }
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
        match st.targets.get(&token) {
            Some(Target::Attempt { race, attempt }) => {
                let (id, attempt) = (*race, *attempt);
                let Some(entry) = st.races.get_mut(&id) else { return };
                let Some((_, stream)) = entry.sockets.get(&attempt) else { return };
                match tcp::progress(stream) {
                    tcp::Progress::Ready => entry.race.on_attempt_ready(now, attempt),
                    tcp::Progress::Failed(errno) => entry.race.on_attempt_failed(now, attempt, errno),
                    tcp::Progress::Waiting => return,
                }
                self.drive(st, id, now);
            }
            Some(Target::Established(weak)) => {
                if !(event.is_error() || (event.is_read_closed() && event.is_write_closed())) {
                    return;
                }
                let Some(conn) = weak.upgrade() else { return };
                let mut c = conn.lock();
                if c.phase != Phase::Established {
                    return;
                }
                let errno = match c.stream.as_ref().map(|(_, s)| s.take_error()) {
                    Some(Ok(Some(e))) => tcp::errno(e),
                    _ => libc::EPIPE,
                };
                if let Some((_, mut s)) = c.stream.take() {
                    let _ = self.registry.deregister(&mut s);
                }
                c.phase = Phase::Closed;
                c.error = Some(Error::Io(errno));
                drop(c);
                st.targets.remove(&token);
                st.callbacks.push_back((conn, Callback::ConnectionError));
            }
            None => {}
        }
    }

    fn fire_timers(&self, st: &mut LoopState, now: Micros) {
        while let Some((at, id)) = st.timers.pop_due(now) {
            let Some(entry) = st.races.get_mut(&id) else { continue };
            if entry.armed != Some(at) {
                continue;
            }
            entry.armed = None;
            entry.race.on_timer(now);
            self.drive(st, id, now);
        }
    }

    fn sync_wake_timer(&self, st: &mut LoopState) {
        let LoopState { timers, races, wake_timer, .. } = st;
        timers.drop_stale_top(|at, id| races.get(&id).is_some_and(|e| e.armed == Some(at)));
        if let Some(t) = wake_timer.as_mut() {
            t.arm(&self.clock, timers.peek());
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
    /// ended.
    fn drive(&self, st: &mut LoopState, id: u64, now: Micros) {
        let LoopState { races, targets, next_token, timers, callbacks, .. } = st;
        let Some(entry) = races.get_mut(&id) else { return };
        let mut end = None;
        while let Some(action) = entry.race.poll_action() {
            match action {
                Action::Start { attempt, addr } => match tcp::start(addr) {
                    Ok(started) => {
                        let (mut stream, connected) = match started {
                            tcp::Started::Pending(s) => (s, false),
                            tcp::Started::Connected(s) => (s, true),
                        };
                        let token = Token(*next_token);
                        *next_token += 1;
                        if let Err(e) = self.registry.register(&mut stream, token, Interest::WRITABLE) {
                            entry.race.on_attempt_failed(now, attempt, tcp::errno(e));
                            continue;
                        }
                        targets.insert(token, Target::Attempt { race: id, attempt });
                        entry.sockets.insert(attempt, (token, stream));
                        if connected {
                            entry.race.on_attempt_ready(now, attempt);
                        }
                    }
                    Err(errno) => entry.race.on_attempt_failed(now, attempt, errno),
                },
                Action::Cancel { attempt } => {
                    if let Some((token, mut stream)) = entry.sockets.remove(&attempt) {
                        targets.remove(&token);
                        let _ = self.registry.deregister(&mut stream);
                        drop(stream);
                    }
                }
                Action::Won { attempt } => end = Some(Ok(attempt)),
                Action::Failed { error } => end = Some(Err(error)),
            }
        }
        let reports = reports(&entry.race, entry.started_at);
        let Some(end) = end else {
            entry.conn.lock().attempts = reports;
            match entry.race.next_deadline() {
                Some(at) if entry.armed != Some(at) => {
                    entry.armed = Some(at);
                    timers.push(at, id);
                }
                Some(_) => {}
                None => entry.armed = None,
            }
            return;
        };
        let Some(mut entry) = races.remove(&id) else { return };
        let winner = match end {
            Ok(attempt) => entry.sockets.remove(&attempt),
            Err(_) => None,
        };
        for (_, (token, mut stream)) in entry.sockets.drain() {
            targets.remove(&token);
            let _ = self.registry.deregister(&mut stream);
        }
        let conn = entry.conn;
        let mut c = conn.lock();
        c.attempts = reports;
        c.race = None;
        let callback = match (end, winner) {
            (Ok(_), Some((token, mut stream))) => {
                let watch = self.registry.reregister(&mut stream, token, Interest::READABLE);
                c.remote = stream.peer_addr().ok();
                if c.phase == Phase::Establishing && !c.released {
                    if watch.is_ok() {
                        targets.insert(token, Target::Established(Arc::downgrade(&conn)));
                    } else {
                        targets.remove(&token);
                    }
                    c.phase = Phase::Established;
                    c.stream = Some((token, stream));
                    Some(Callback::Ready)
                } else {
                    targets.remove(&token);
                    None
                }
            }
            (Ok(_), None) => {
                log::error!("race {id}: winner has no socket");
                c.phase = Phase::Failed;
                c.error = Some(Error::Io(libc::EIO));
                Some(Callback::EstablishmentError)
            }
            (Err(error), _) => {
                if c.phase == Phase::Establishing {
                    c.phase = Phase::Failed;
                    c.error = Some(match error {
                        RaceError::ResolutionFailed(code) => Error::ResolutionFailed(code),
                        RaceError::AllAttemptsFailed(errno) => Error::AllAttemptsFailed(errno),
                        RaceError::TimedOut => Error::TimedOut,
                        RaceError::Cancelled => Error::Cancelled,
                    });
                    Some(Callback::EstablishmentError)
                } else {
                    None
                }
            }
        };
        let released = c.released;
        drop(c);
        if let (Some(cb), false) = (callback, released) {
            callbacks.push_back((conn, cb));
        }
    }
}

impl Drop for LoopShared {
    fn drop(&mut self) {
        self.resolver.shutdown();
    }
}

/// The race report in the API's terms: times relative to the race start.
fn reports(race: &Race, started_at: Micros) -> Vec<AttemptReport> {
    race.attempts()
        .iter()
        .map(|r| AttemptReport {
            address: r.candidate.addr,
            protocol: "tcp",
            started_us: r.started.saturating_sub(started_at),
            ended_us: r.ended.map(|e| e.saturating_sub(started_at)),
            outcome: match r.outcome {
                Outcome::Running => AttemptOutcome::Running,
                Outcome::Won => AttemptOutcome::Won,
                Outcome::Failed(_) => AttemptOutcome::Failed,
                Outcome::Cancelled => AttemptOutcome::Cancelled,
            },
            os_error: match r.outcome {
                Outcome::Failed(e) => e,
                _ => 0,
            },
        })
        .collect()
}
