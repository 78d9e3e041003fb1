//! Security stages: the caller's TLS handshake as the last stage of each
//! built-in TCP attempt, so that an attempt wins at the end of its
//! handshake (draft-ietf-happy-happyeyeballs-v3-04 §6.1: "the attempt
//! SHOULD be considered successful at the end of the TLS handshake").
//!
//! Set one with [`super::Preconnection::set_security_stage`]. When a TCP
//! attempt of its races connects, the stage's [`SecurityStage::start`]
//! gets a [`StageAttempt`]: the connected socket, the remote address, the
//! host name (SNI), the attempt's ALPN list and ECH config. The stage runs
//! its handshake on the socket, asks for readiness with
//! [`StageAttempt::want_read`] / [`StageAttempt::want_write`] (the loop
//! calls [`SecurityStage::io`]), and reports [`StageAttempt::ready`] with
//! the ALPN id the server selected, or [`StageAttempt::failed`].
//!
//! Until it reports, the attempt is running: the Connection Attempt Delay
//! (RFC 8305 §5) and `attempt_timeout_ms` count TCP and the handshake
//! together, and a failure starts the next attempt at once like a refused
//! connect. The first attempt whose stage reports ready wins; every other
//! started stage gets [`SecurityStage::cancel`] exactly once (also one
//! that reported ready too late), after which its socket is closed.
//!
//! Ownership: the socket stays the library's; the stage must not close it.
//! The winner's socket becomes the Connection's ([`super::Connection::fd`],
//! the same fd): the stage's session on it (an `SSL *`) is the caller's
//! from then on, found by that fd. The selected ALPN id is
//! [`super::Connection::alpn`]; the race report's
//! [`super::AttemptReport::connected_us`] says when TCP connected and
//! `ended_us` when the stage reported.
//!
//! Stages apply to races started by [`super::Preconnection::initiate`];
//! connection pools and groups race plain TCP.

use crate::runtime::stage::{StageHandle, UserStage};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

/// A caller's security stage (TLS over the built-in TCP). Its methods run
/// on the loop's thread with the loop's lock held: they must not call the
/// library, except the [`StageAttempt`] methods (which any thread may call
/// at any time). They should not block: the handshake's socket is
/// non-blocking.
pub trait SecurityStage: Send + Sync {
    /// The TCP connection of `attempt` is up: start the handshake (write
    /// the ClientHello, ask for readability). Report later, once, through
    /// `attempt` (also from inside this call), or return an errno to fail
    /// the attempt at once (no `cancel` follows).
    fn start(&self, attempt: StageAttempt) -> Result<(), i32>;
    /// The socket is `readable` and/or `writable`, as asked with
    /// [`StageAttempt::want_read`] / [`StageAttempt::want_write`] (an error
    /// or hang-up counts as both): go on with the handshake. Each wish is
    /// used up by the call it causes.
    fn io(&self, attempt: &StageAttempt, readable: bool, writable: bool);
    /// The race no longer needs `attempt` (another attempt won, it timed
    /// out, or the race ended): free what the stage holds for it. The
    /// socket is closed after this returns; a report after it is ignored.
    /// Called once per attempt that neither won nor reported a failure.
    fn cancel(&self, attempt: &StageAttempt);
}

/// One staged attempt. Clone it freely; report once.
///
/// cbindgen:ignore
#[derive(Clone)]
pub struct StageAttempt(pub(crate) Arc<StageHandle>);

impl StageAttempt {
    /// The connected, non-blocking TCP socket. The library's: do not close
    /// it. Valid until [`SecurityStage::cancel`], or for the winner as
    /// long as its Connection.
    pub fn fd(&self) -> RawFd {
        self.0.fd
    }

    /// The remote address and port.
    pub fn remote(&self) -> SocketAddr {
        self.0.remote
    }

    /// The host name for SNI and certificate checks: the Preconnection's
    /// first remote endpoint given by name; `None` when every remote
    /// endpoint is an address.
    pub fn host_name(&self) -> Option<&str> {
        self.0.host.as_deref().and_then(|h| h.to_str().ok())
    }

    /// The ALPN ids to offer (RFC 7301), most preferred first
    /// (draft-ietf-happy-happyeyeballs-v3-04 §6.1): for an address that
    /// came with an HTTPS record (RFC 9460), its service's usable ids (RFC
    /// 9460 §7.1.2, kept to the caller's ids in the caller's order); for
    /// any other address, the Preconnection's
    /// ([`super::Preconnection::set_alpn`]); empty for none.
    pub fn alpn(&self) -> &[String] {
        &self.0.security.alpn.names
    }

    /// The ALPN list in the extension's wire format (each id prefixed by
    /// its length in one byte), as OpenSSL's `SSL_set_alpn_protos` takes it.
    pub fn alpn_wire(&self) -> &[u8] {
        &self.0.security.alpn.wire
    }

    /// The ECHConfigList to use (draft-ietf-tls-esni): the "ech" SvcParam
    /// of the HTTPS record the attempt's address came with (HEv3 §6.3);
    /// `None` for none.
    pub fn ech_config(&self) -> Option<&[u8]> {
        self.0.security.ech.as_deref()
    }

    /// Call [`SecurityStage::io`] when the socket is readable. Any thread;
    /// ignored after the attempt reported or ended.
    pub fn want_read(&self) {
        self.0.want(true, false);
    }

    /// Call [`SecurityStage::io`] when the socket is writable. Any thread;
    /// ignored after the attempt reported or ended.
    pub fn want_write(&self) {
        self.0.want(false, true);
    }

    /// The handshake is done; `selected_alpn` is the ALPN id the server
    /// chose (`None`: none). The attempt may win the race. Any thread; a
    /// second report, or one after `cancel`, is ignored.
    pub fn ready(&self, selected_alpn: Option<&str>) {
        self.0.report(Ok(selected_alpn));
    }

    /// The handshake failed with `errno` (> 0; the race report's
    /// `os_error`): the next attempt starts at once. Any thread; a second
    /// report, or one after `cancel`, is ignored.
    pub fn failed(&self, errno: i32) {
        self.0.report(Err(if errno > 0 { errno } else { libc::EIO }));
    }

    /// The attempt's index in its race (its [`super::AttemptReport`] index).
    pub fn index(&self) -> usize {
        self.0.attempt
    }

    /// The attempt's address, stable while any clone of it lives: the
    /// handle the C ABI gives to a stage.
    pub fn as_raw(&self) -> *const std::ffi::c_void {
        Arc::as_ptr(&self.0) as *const std::ffi::c_void
    }

    /// A clone of the attempt whose address [`StageAttempt::as_raw`] gave.
    ///
    /// # Safety
    /// `raw` came from `as_raw` of an attempt that is still alive (the
    /// library holds it until the stage's `cancel` returned or the race
    /// saw its report).
    pub unsafe fn from_raw(raw: *const std::ffi::c_void) -> StageAttempt {
        let ptr = raw as *const StageHandle;
        Arc::increment_strong_count(ptr);
        StageAttempt(Arc::from_raw(ptr))
    }

    /// The ALPN ids as C strings (for the C ABI).
    pub(crate) fn alpn_c(&self) -> &[std::ffi::CString] {
        &self.0.security.alpn.c_names
    }

    /// The host name as a C string (for the C ABI).
    pub(crate) fn host_name_c(&self) -> Option<&std::ffi::CStr> {
        self.0.host.as_deref()
    }
}

impl std::fmt::Debug for StageAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageAttempt").field("race", &self.0.race).field("attempt", &self.0.attempt).field("fd", &self.0.fd).finish()
    }
}

/// A security stage as the runtime calls it.
pub(crate) struct StageAdapter(pub(crate) Arc<dyn SecurityStage>);

impl UserStage for StageAdapter {
    fn start(&self, attempt: Arc<StageHandle>) -> Result<(), i32> {
        self.0.start(StageAttempt(attempt))
    }

    fn io(&self, attempt: Arc<StageHandle>, readable: bool, writable: bool) {
        self.0.io(&StageAttempt(attempt), readable, writable);
    }

    fn cancel(&self, attempt: Arc<StageHandle>) {
        self.0.cancel(&StageAttempt(attempt));
    }
}
