//! EventLoop: one mio loop that runs races and calls their callbacks.
//!
//! # Ways to run it
//!
//! - [`EventLoop::run`] on the caller's thread until no race is pending,
//!   or [`EventLoop::run_once`] until a callback ran or a timeout passed;
//! - [`EventLoop::start_thread`]: a thread of its own, until
//!   [`EventLoop::stop_thread`];
//! - embedded in the caller's event loop: watch [`EventLoop::fd`] for
//!   readability, wake up after [`EventLoop::timeout`] at the latest, and
//!   call [`EventLoop::process`], which never blocks;
//! - [`EventLoop::shared`]: one loop per key on its own thread, shared by
//!   independent clients of one process.
//!
//! # Threads
//!
//! An `EventLoop` is `Send + Sync`: every method may be called from any
//! thread; a call from another thread wakes the thread that runs the loop
//! (through the loop's Waker). Callbacks run on the thread that runs the
//! loop, one at a time. One thread runs a loop at a time: `run`,
//! `run_once` and `process` fail with [`Error::InvalidState`] while another
//! thread runs it, on a loop with a thread of its own, and from inside the
//! loop's own callbacks.
//!
//! # Examples
//!
//! Embedded in a `poll(2)` loop:
//!
//! ```no_run
//! # use taps_racing::api::*;
//! let lp = EventLoop::new()?;
//! // ... initiate races on lp ...
//! while lp.has_work() {
//!     let mut pfd = libc::pollfd { fd: lp.fd()?, events: libc::POLLIN, revents: 0 };
//!     let ms = lp.timeout()?.map_or(-1, |d| d.as_millis().min(i32::MAX as u128) as i32);
//!     unsafe { libc::poll(&mut pfd, 1, ms) };
//!     lp.process()?;
//! }
//! # Ok::<(), Error>(())
//! ```

use super::error::{Error, Result};
use crate::runtime::client::Client;
use super::protocol::{Protocol, ProtocolAdapter, ProtocolTraits, Resolver, ResolverAdapter};
use crate::runtime::callbacks::UserResolver;
use crate::runtime::protocol::{ProtocolEntry, ProtocolKind};
use crate::runtime::LoopCore;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

/// One event loop: a mio Poll, its timers, sockets and resolver threads,
/// or one client's handle on a shared loop ([`EventLoop::shared`]). No
/// process-wide state but the registry of shared loops. Callbacks run on
/// the thread that runs it.
///
/// Dropping it cancels the handle's pending races (no callback follows);
/// a private loop is freed with them (its thread stopped and joined), a
/// shared loop when its last handle goes.
///
/// # Examples
///
/// A loop on a thread of its own: callbacks run there, and the caller
/// only waits for its result.
///
/// ```
/// use taps_racing::api::*;
/// use std::sync::mpsc;
///
/// struct Send(mpsc::Sender<Option<std::net::SocketAddr>>);
/// impl ConnectionHandler for Send {
///     fn ready(&mut self, c: &Connection) {
///         let _ = self.0.send(c.remote_address());
///     }
///     fn establishment_error(&mut self, _: &Connection) {
///         let _ = self.0.send(None);
///     }
/// }
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let lp = EventLoop::new()?;
/// lp.start_thread()?;
/// let mut ep = RemoteEndpoint::new();
/// ep.with_hostname("127.0.0.1")?.with_port(listener.local_addr()?.port())?;
/// let pre = Preconnection::new(&lp, &[ep], None, None)?;
/// let (tx, rx) = mpsc::channel();
/// let _conn = pre.initiate(Box::new(Send(tx)))?;
/// assert_eq!(rx.recv()?, Some(listener.local_addr()?));
/// lp.stop_thread()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// cbindgen:ignore
pub struct EventLoop {
    pub(crate) shared: Arc<LoopCore>,
    /// Whose races: the owner's for a private loop, one per shared handle.
    pub(crate) client: Arc<Client>,
    /// The key of a shared loop's handle.
    pub(crate) key: Option<String>,
}

impl EventLoop {
    /// A new private loop, run by the caller (or by its own thread after
    /// [`EventLoop::start_thread`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the system refuses an epoll instance,
    /// eventfd or timerfd.
    pub fn new() -> Result<EventLoop> {
        Ok(EventLoop { shared: LoopCore::new(false)?, client: Arc::new(Client::new()), key: None })
    }

    /// A new private loop with a manual clock: time starts at 0 and moves
    /// only with [`EventLoop::advance_clock`], so tests drive every delay
    /// exactly. Running it never blocks: it does what is ready and returns.
    ///
    /// # Errors
    /// As [`EventLoop::new`].
    pub fn with_manual_clock() -> Result<EventLoop> {
        Ok(EventLoop { shared: LoopCore::new(true)?, client: Arc::new(Client::new()), key: None })
    }

    /// Move a manual clock forward by `us` µs. Deadlines that fall due run
    /// at the next run / run_once / process (advance_clock then run is the
    /// usual pair).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the loop's clock is not manual.
    pub fn advance_clock(&self, us: u64) -> Result<()> {
        self.shared.advance_clock(us)
    }

    /// The loop's clock, µs since the loop was created.
    pub fn now_us(&self) -> u64 {
        self.shared.now()
    }

    /// Register a user protocol (RFC 9623 §4.1, the PROTOCOL level): races
    /// on this loop include it when the selection properties keep it,
    /// ordered and pruned by `traits`. Returns its id.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty name, a name with a NUL, or
    /// a name already registered ("tcp" and "udp" are).
    pub fn add_protocol(&self, name: &str, traits: ProtocolTraits, protocol: Arc<dyn Protocol>) -> Result<usize> {
        if name.is_empty() || name.len() > 64 {
            return Err(Error::InvalidArgument("a protocol name is 1 to 64 bytes"));
        }
        let name = std::ffi::CString::new(name).map_err(|_| Error::InvalidArgument("a protocol name has no NUL"))?;
        self.shared.add_protocol(ProtocolEntry { name: Arc::from(name.as_c_str()), traits, kind: ProtocolKind::User(Arc::new(ProtocolAdapter(protocol))) })
    }

    /// Resolve host names of races on this loop with `resolver` (`None`:
    /// the system resolver again). Races already running keep theirs.
    pub fn set_resolver(&self, resolver: Option<Arc<dyn Resolver>>) {
        self.shared.set_resolver(resolver.map(|r| Arc::new(ResolverAdapter(r)) as Arc<dyn UserResolver>));
    }

    /// Keep the system resolver's answers for `lifetime` (default 60 s,
    /// like curl's DNS cache; zero: no cache, and the kept answers are
    /// dropped). A race to a name with answers kept for both families
    /// starts at once, without getaddrinfo; kept are the addresses of each
    /// family with their source addresses, and "no address of this family";
    /// not kept are other failures. A race that fails with kept answers
    /// drops them. Applies to every client of a shared loop and to races
    /// started after the call. User resolvers are not cached.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] for more than one day.
    pub fn set_resolution_cache(&self, lifetime: std::time::Duration) -> Result<()> {
        if lifetime > crate::runtime::cache::MAX_LIFETIME {
            return Err(Error::OutOfRange);
        }
        self.shared.set_resolution_cache(lifetime);
        Ok(())
    }

    /// Run on the calling thread until no race is pending and every
    /// callback was called. Returns at once when nothing is pending.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when another thread runs the loop, it has a
    /// thread of its own (or is shared), or from its own callback;
    /// [`Error::Io`] when polling fails.
    pub fn run(&self) -> Result<()> {
        self.shared.run()
    }

    /// Run on the calling thread until at least one callback was called,
    /// `timeout` passed (`None`: no limit), or no race and no callback is
    /// pending any more (at once if none was). Callbacks that are ready are
    /// called without waiting. Returns the number of callbacks called: 0
    /// when the timeout passed or nothing is pending.
    ///
    /// # Errors
    /// As [`EventLoop::run`].
    pub fn run_once(&self, timeout: Option<Duration>) -> Result<usize> {
        self.shared.run_once(timeout)
    }

    /// Do all due work without blocking: deliver queued callbacks, fire due
    /// timers, handle every ready socket, resolver answer and wake-up.
    /// Call it when [`EventLoop::fd`] is readable or [`EventLoop::timeout`]
    /// has passed. Returns the number of callbacks delivered.
    ///
    /// # Errors
    /// As [`EventLoop::run`].
    pub fn process(&self) -> Result<usize> {
        self.shared.process()
    }

    /// The file descriptor to watch for readability when the loop is
    /// embedded in another event loop: the loop's epoll instance, readable
    /// whenever a socket, a timer, a resolver answer or a call from another
    /// thread needs [`EventLoop::process`]. Owned by the loop: do not close
    /// or read it. The same fd for the loop's whole life.
    ///
    /// # Errors
    /// [`Error::InvalidState`] for a loop with a thread of its own or a
    /// shared loop (nothing to embed).
    pub fn fd(&self) -> Result<RawFd> {
        self.refuse_if_threaded()?;
        Ok(self.shared.poll_fd())
    }

    /// How long the embedding loop may wait before calling
    /// [`EventLoop::process`] when [`EventLoop::fd`] stays quiet: zero when
    /// work is ready now, the time to the next timer, `None` when no timer
    /// is pending (wait for the fd alone).
    ///
    /// # Errors
    /// As [`EventLoop::fd`].
    pub fn timeout(&self) -> Result<Option<Duration>> {
        self.refuse_if_threaded()?;
        Ok(self.shared.next_timeout())
    }

    /// Start a thread that runs the loop (named `taps-loop`); callbacks run
    /// on it. Until [`EventLoop::stop_thread`], `run`, `run_once` and
    /// `process` are refused.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when the loop already has a thread, another
    /// thread runs it, or it is shared; [`Error::Io`] when the system
    /// refuses a thread.
    pub fn start_thread(&self) -> Result<()> {
        if self.key.is_some() {
            return Err(Error::InvalidState);
        }
        self.shared.start_thread()
    }

    /// Stop the loop's thread and join it. Every race still establishing
    /// ends with `establishment_error` and [`Error::LoopStopped`], called on
    /// the loop's thread before it exits; connections already established
    /// stay so. Initiating a race while the thread stops fails with
    /// [`Error::InvalidState`]. Afterwards the loop can be run by the
    /// caller or started again. From the loop's own callback the thread
    /// cannot be joined: it stops after the callback returns.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when the loop has no thread, or is shared.
    pub fn stop_thread(&self) -> Result<()> {
        if self.key.is_some() {
            return Err(Error::InvalidState);
        }
        self.shared.stop_thread()
    }

    /// Whether a race or a callback is pending (of any client).
    pub fn has_work(&self) -> bool {
        self.shared.has_work()
    }

    /// Whether the loop runs on a thread of its own (started, or shared).
    pub fn has_thread(&self) -> bool {
        self.shared.has_thread()
    }

    /// Whether this is a handle on a shared loop.
    pub fn is_shared(&self) -> bool {
        self.key.is_some()
    }

    fn refuse_if_threaded(&self) -> Result<()> {
        if self.key.is_some() || self.shared.has_thread() {
            return Err(Error::InvalidState);
        }
        Ok(())
    }
}

impl Drop for EventLoop {
    /// Cancels this handle's pending races with no callback; connections
    /// made on the loop stay valid handles to free. A private loop stops
    /// its thread (if any) and is freed; a shared loop when its last
    /// handle is dropped.
    fn drop(&mut self) {
        self.shared.release_client(&self.client);
        match self.key.take() {
            Some(key) => super::shared_loops::release(&key, &self.shared),
            None => {
                if self.shared.has_thread() {
                    let _ = self.shared.stop_thread();
                }
                self.shared.shutdown();
            }
        }
    }
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop").field("shared", &self.key).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    /// Dropping an EventLoop that resolved a name joins its resolver's
    /// threads: none is left, and none holds the resolver. (Detached
    /// workers would still be starting, answering or waking up from their
    /// idle wait here; `shutdown_waits_for_a_short_lookup_and_hands_off_a_stuck_one`
    /// checks the same without a race, on a lookup that takes 20 ms.)
    #[test]
    fn dropping_a_loop_joins_its_resolver_threads() {
        use crate::api::{Connection, ConnectionHandler, EventLoop, Preconnection, RemoteEndpoint};
        use crate::runtime::resolver::{tests::job, MAX_WORKERS};
        use crate::engine::Family;
        use std::sync::Arc;
        struct Quiet;
        impl ConnectionHandler for Quiet {
            fn ready(&mut self, _: &Connection) {}
            fn establishment_error(&mut self, _: &Connection) {}
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lp = EventLoop::new().unwrap();
        let resolver = Arc::clone(&lp.shared.resolver);
        let mut ep = RemoteEndpoint::new();
        ep.with_hostname("localhost").unwrap().with_port(port).unwrap();
        let pre = Preconnection::new(&lp, &[ep], None, None).unwrap();
        let conn = pre.initiate(Box::new(Quiet)).unwrap();
        lp.run().unwrap();
        assert_eq!(resolver.submitted.load(std::sync::atomic::Ordering::Relaxed), 2, "AAAA and A asked");
        if resolver.dns().answers_addresses() {
            assert_eq!(resolver.thread_counts().0, 0, "the loop ran the DNS client's exchange itself");
        } else {
            assert!(resolver.thread_counts().0 > 0, "the workers wait for more work");
        }
        drop(conn);
        drop(pre);
        // More queries in flight as the loop goes: workers busy, starting.
        resolver.submit_lookups((0..2 * MAX_WORKERS as u64).map(|i| job(i, Family::V4)).collect());
        drop(lp);
        assert_eq!(resolver.thread_counts(), (0, 0), "every worker left and was joined");
        assert_eq!(Arc::strong_count(&resolver), 1, "no worker holds the resolver");
    }

    /// End to end on loopback: the second race to a name asks nothing, a
    /// race that fails with kept answers drops them, zero turns it off.
    #[test]
    fn races_use_kept_answers() {
        use crate::api::{Connection, ConnectionHandler, EventLoop, Preconnection, RemoteEndpoint};
        use crate::runtime::cache::MAX_LIFETIME;
        use std::time::Duration;
        struct Outcome(std::sync::Arc<std::sync::Mutex<Vec<bool>>>);
        impl ConnectionHandler for Outcome {
            fn ready(&mut self, _: &Connection) {
                self.0.lock().unwrap().push(true);
            }
            fn establishment_error(&mut self, _: &Connection) {
                self.0.lock().unwrap().push(false);
            }
        }
        let lp = EventLoop::new().unwrap();
        let queries = || lp.shared.resolver_queries();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let race = |port: u16| {
            let mut ep = RemoteEndpoint::new();
            ep.with_hostname("localhost").unwrap().with_port(port).unwrap();
            let pre = Preconnection::new(&lp, &[ep], None, None).unwrap();
            let conn = pre.initiate(Box::new(Outcome(std::sync::Arc::clone(&seen)))).unwrap();
            lp.run().unwrap();
            drop(conn);
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        race(port);
        assert_eq!(queries(), 2, "AAAA and A asked");
        race(port);
        assert_eq!(queries(), 2, "both answers kept");
        drop(listener);
        race(port); // refused on both families: the kept answers go
        assert_eq!(queries(), 2);
        race(port);
        assert_eq!(queries(), 4, "asked again after the failure");
        lp.set_resolution_cache(Duration::ZERO).unwrap();
        race(port);
        assert_eq!(queries(), 6, "no cache");
        assert_eq!(*seen.lock().unwrap(), vec![true, true, false, false, false]);
        assert!(lp.set_resolution_cache(MAX_LIFETIME + Duration::from_millis(1)).is_err());
    }
}
