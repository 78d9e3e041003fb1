//! Connections: the handle a race gives back, its callbacks and its report.

use super::error::{Error, Result};
use crate::runtime::callbacks::ConnCallbacks;
use crate::runtime::conn::{Callback, ConnCore};
use std::ffi::CStr;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

pub use crate::vocabulary::report::{AttemptOutcome, AttemptReport, HistoryNote};
pub use crate::vocabulary::state::ConnectionState;

/// The user's callbacks for one Connection, called on the thread that runs
/// the loop, never two at once for the same connection. Exactly one of
/// `ready` / `establishment_error` follows a started race (none if the
/// connection is released first). A handler may close or drop its own
/// connection.
pub trait ConnectionHandler: Send {
    /// The race was won; the connection is established.
    fn ready(&mut self, connection: &Connection) {
        let _ = connection;
    }
    /// The race failed; [`Connection::error`] says why and
    /// [`Connection::attempts`] holds every attempt's errno.
    fn establishment_error(&mut self, connection: &Connection) {
        let _ = connection;
    }
    /// An established connection failed (socket error or hang-up); it is
    /// closed. [`Connection::error`] carries the errno as [`Error::Io`].
    fn connection_error(&mut self, connection: &Connection) {
        let _ = connection;
    }
    /// [`Connection::close`] finished.
    fn closed(&mut self, connection: &Connection) {
        let _ = connection;
    }
    /// Whether `connection_error` should be called: when it returns false,
    /// the established socket is not watched for errors and hang-ups (one
    /// system call less per connection). Default true.
    fn wants_connection_errors(&self) -> bool {
        true
    }
}

/// The user's handler as the runtime calls it: each callback gets a
/// non-owning [`Connection`] view of the core it is called for.
pub(crate) struct Handler(pub(crate) Box<dyn ConnectionHandler>);

impl ConnCallbacks for Handler {
    fn call(&mut self, core: &Arc<ConnCore>, cb: Callback) {
        let view = Connection::view(Arc::clone(core));
        match cb {
            Callback::Ready => self.0.ready(&view),
            Callback::EstablishmentError => self.0.establishment_error(&view),
            Callback::ConnectionError => self.0.connection_error(&view),
            Callback::Closed => self.0.closed(&view),
        }
    }

    fn wants_connection_errors(&self) -> bool {
        self.0.wants_connection_errors()
    }
}

/// A connection: racing, established, failed or closed. Dropping the handle
/// that [`crate::api::Preconnection::initiate`] returned cancels a running
/// race and closes the socket, with no callback after the drop returns.
///
/// # Examples
///
/// The race report: every attempt with its address, times (µs since
/// initiate) and outcome. Here the only address refuses:
///
/// ```
/// use taps_racing::api::*;
///
/// // A port nobody listens on: bind, read the port, close.
/// let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
/// let lp = EventLoop::new()?;
/// let mut ep = RemoteEndpoint::new();
/// ep.with_hostname("127.0.0.1")?.with_port(port)?;
/// let pre = Preconnection::new(&lp, &[ep], None, None)?;
/// struct Quiet;
/// impl ConnectionHandler for Quiet {}
/// let conn = pre.initiate(Box::new(Quiet))?;
/// lp.run()?;
/// assert_eq!(conn.state(), ConnectionState::Failed);
/// assert_eq!(conn.error(), Some(Error::AllAttemptsFailed(libc::ECONNREFUSED)));
/// let first = conn.attempt(0)?;
/// assert_eq!(first.outcome, AttemptOutcome::Failed);
/// assert_eq!(first.os_error, libc::ECONNREFUSED);
/// assert!(first.ended_us.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// cbindgen:ignore
pub struct Connection {
    pub(crate) core: Arc<ConnCore>,
    owner: bool,
}

impl Connection {
    pub(crate) fn owned(core: Arc<ConnCore>) -> Connection {
        Connection { core, owner: true }
    }

    /// The shared core of an owning connection, which stops owning it: the
    /// caller keeps the reference (the C handle does) and gives it back
    /// with [`Connection::owned`].
    pub(crate) fn into_core(self) -> Arc<ConnCore> {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped: its core moves out exactly once.
        unsafe { std::ptr::read(&me.core) }
    }

    /// A non-owning view, given to handlers.
    pub(crate) fn view(core: Arc<ConnCore>) -> Connection {
        Connection { core, owner: false }
    }

    /// Turns an owning connection into a raw handle (the C ABI's
    /// `Connection *`): the handle keeps the connection alive and owned
    /// until [`Connection::from_raw`] takes it back. A view gives a handle
    /// that owns nothing.
    pub fn into_raw(self) -> *const std::ffi::c_void {
        Arc::into_raw(self.into_core()) as *const std::ffi::c_void
    }

    /// Takes back the owning connection of a raw handle; dropping it then
    /// cancels a running race and closes the socket.
    ///
    /// # Safety
    /// `raw` came from [`Connection::into_raw`] and is not used after this.
    pub unsafe fn from_raw(raw: *const std::ffi::c_void) -> Connection {
        Connection::owned(Arc::from_raw(raw as *const ConnCore))
    }

    /// A non-owning view of the connection behind a raw handle, for the
    /// length of one call: dropping it does not close anything.
    ///
    /// # Safety
    /// `raw` came from [`Connection::into_raw`] and has not been given back
    /// to [`Connection::from_raw`].
    pub unsafe fn view_raw(raw: *const std::ffi::c_void) -> Connection {
        let core = raw as *const ConnCore;
        Arc::increment_strong_count(core);
        Connection::view(Arc::from_raw(core))
    }

    /// A process-unique id.
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> ConnectionState {
        self.core.lock().phase
    }

    /// The socket of an established connection (non-blocking, owned by the
    /// connection: do not close it).
    pub fn fd(&self) -> Option<RawFd> {
        self.core.lock().transport().and_then(|t| t.fd())
    }

    /// The winner's remote address, once established.
    pub fn remote_address(&self) -> Option<SocketAddr> {
        self.core.lock().remote()
    }

    /// Why the race failed (after establishment_error), or the errno of a
    /// connection error; `None` otherwise.
    pub fn error(&self) -> Option<Error> {
        self.core.lock().error()
    }

    /// Number of attempts started so far.
    pub fn attempt_count(&self) -> usize {
        self.core.lp.attempt_reports(&self.core, |a| a.len())
    }

    /// Attempt `index` (start order).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] past the end.
    pub fn attempt(&self, index: usize) -> Result<AttemptReport> {
        self.core.lp.attempt_reports(&self.core, |a| a.get(index).cloned()).ok_or(Error::OutOfRange)
    }

    /// The winner's protocol name ("tcp", "udp" or a user protocol's),
    /// once established.
    pub fn protocol(&self) -> Option<Arc<CStr>> {
        self.core.lp.attempt_reports(&self.core, |a| {
            a.iter().find(|a| a.outcome == AttemptOutcome::Won).map(|a| Arc::clone(&a.protocol))
        })
    }

    /// The handle a user protocol gave with its ready (see
    /// [`super::ProtocolAttempt::ready`]); `None` for TCP and UDP or when
    /// not established.
    pub fn protocol_data(&self) -> Option<usize> {
        self.core.lock().transport().and_then(|t| t.user_data())
    }

    /// The ALPN id (RFC 7301) the winner's security stage reported as
    /// selected (see [`super::Preconnection::set_security_stage`]); `None`
    /// without a stage, when the server selected none, or before the win.
    pub fn alpn(&self) -> Option<String> {
        self.core.lock().alpn().map(|a| a.to_string_lossy().into_owned())
    }

    /// [`Connection::alpn`] as a C string, valid while the connection
    /// lives (for the C ABI).
    pub(crate) fn alpn_ptr(&self) -> *const std::ffi::c_char {
        self.core.lock().alpn().map_or(std::ptr::null(), |a| a.as_ptr())
    }

    /// Every attempt so far, in start order.
    pub fn attempts(&self) -> Vec<AttemptReport> {
        self.core.lp.attempt_reports(&self.core, <[AttemptReport]>::to_vec)
    }

    /// What the race learnt from DNS when it asked HTTPS records (HEv3
    /// draft §4–§7): the ServiceMode records it used, in the order it
    /// tried them, and every DNS answer with its arrival time (µs since
    /// the race was initiated). Empty for a race that asked no HTTPS
    /// record. Any thread.
    pub fn dns_report(&self) -> super::DnsReport {
        self.core.lp.dns_report(&self.core)
    }

    /// Close gracefully: a race stops, an established socket sends FIN and
    /// closes; the handler's `closed` follows on the loop. A no-op when
    /// already closed, failed or never started.
    pub fn close(&self) {
        self.core.lp.close(&self.core);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.owner {
            self.core.lp.release(&self.core);
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("id", &self.core.id).field("state", &self.state()).finish()
    }
}
