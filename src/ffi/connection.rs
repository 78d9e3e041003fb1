//! C ABI: taps_connection, its callbacks and its race report.

use super::handle::{opt_ref, try_mut, try_ok, try_ref};
use super::{c_enum, fail, growable, guard, value_growable};
use crate::api;
use crate::api::{ConnectionHandler, Error};
use std::ffi::{c_char, c_int, c_void};
use std::net::SocketAddr;

/// A connection: establishing, established, failed or closed. Owned by the
/// caller of taps_preconnection_initiate_with_racing; free with taps_connection_free.
///
/// Threads: a taps_connection may be shared by threads. Every function may be
/// called from any thread, also while its race runs on the loop's thread
/// (taps_connection_close and taps_connection_free from another thread wake the
/// loop). taps_connection_free must be the handle's last call; it is safe inside
/// the connection's own callbacks and waits for a callback running on
/// another thread. Its callbacks run on the loop's thread only.
// The handle is the connection's shared core itself, one reference count
// of it: no allocation of its own. Never constructed in Rust.
pub struct Connection {
    _core: [u8; 0],
}

impl Connection {
    /// The handle of an owning connection: its reference becomes the
    /// handle's, given back by [`Connection::into_api`].
    fn from_api(conn: api::Connection) -> *mut Connection {
        conn.into_raw() as *mut Connection
    }

    /// The owning connection of a handle (taps_connection_free, or a start that
    /// failed).
    ///
    /// # Safety
    /// `raw` came from [`Connection::from_api`], and this is its last use.
    unsafe fn into_api(raw: *mut Connection) -> api::Connection {
        api::Connection::from_raw(raw as *const std::ffi::c_void)
    }

    /// A view of the connection for one call (its own reference count).
    pub(super) fn api(&self) -> api::Connection {
        // SAFETY: a handle is a live connection's raw handle until
        // taps_connection_free.
        unsafe { api::Connection::view_raw(self as *const Connection as *const std::ffi::c_void) }
    }
}

/// The callbacks of one connection, called on the thread that runs the
/// loop, never two at once for one connection. Any may be NULL. The return
/// value is reserved: return 0. A callback may call taps_connection_close or
/// taps_connection_free on its own connection, and initiate new races.
///
/// Initialize it with designated initializers (`{.ready = f}`, struct_size
/// 0: this header's struct) or TAPS_CONNECTION_CALLBACKS_INIT, never
/// positionally.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ConnectionCallbacks {
    /// sizeof(taps_connection_callbacks) of the caller's header, in bytes
    /// (TAPS_CONNECTION_CALLBACKS_INIT sets it); 0 means this header's full
    /// struct. Callbacks past it are NULL to the library; a size larger
    /// than this library's struct is TAPS_ERROR_INVALID_ARGUMENT (a
    /// callback it cannot call; docs/ABI.md).
    pub struct_size: u32,
    /// The race was won; taps_connection_get_fd gives the socket.
    pub ready: Option<extern "C" fn(connection: *mut Connection, user_data: *mut c_void) -> c_int>,
    /// The race failed; taps_connection_get_error says why, taps_connection_get_attempt
    /// gives each attempt's errno.
    pub establishment_error: Option<extern "C" fn(connection: *mut Connection, user_data: *mut c_void) -> c_int>,
    /// An established connection failed (socket error or hang-up) and is
    /// now closed; taps_connection_get_error is TAPS_ERROR_IO. When NULL, the
    /// library does not watch the established socket at all.
    pub connection_error: Option<extern "C" fn(connection: *mut Connection, user_data: *mut c_void) -> c_int>,
    /// taps_connection_close finished.
    pub closed: Option<extern "C" fn(connection: *mut Connection, user_data: *mut c_void) -> c_int>,
    /// Passed back to every callback.
    pub user_data: *mut c_void,
}

growable!(ConnectionCallbacks "taps_connection_callbacks" { ready, establishment_error, connection_error, closed, user_data });

impl ConnectionCallbacks {
    /// No callbacks (every one NULL), struct_size this library's.
    pub(crate) fn none() -> ConnectionCallbacks {
        ConnectionCallbacks {
            struct_size: std::mem::size_of::<ConnectionCallbacks>() as u32,
            ready: None,
            establishment_error: None,
            connection_error: None,
            closed: None,
            user_data: std::ptr::null_mut(),
        }
    }
}

/// How a C program hears about its connection.
pub(crate) struct CHandler {
    pub callbacks: ConnectionCallbacks,
    pub connection: *mut Connection,
}

// SAFETY: the C contract: callbacks and user_data may be used from the
// thread that runs the loop; the handle pointer stays valid until
// taps_connection_free, which waits for a running callback to return.
unsafe impl Send for CHandler {}

impl CHandler {
    fn call(&self, f: Option<extern "C" fn(*mut Connection, *mut c_void) -> c_int>) {
        if let Some(f) = f {
            f(self.connection, self.callbacks.user_data);
        }
    }
}

impl ConnectionHandler for CHandler {
    fn ready(&mut self, _: &api::Connection) {
        self.call(self.callbacks.ready)
    }
    fn establishment_error(&mut self, _: &api::Connection) {
        self.call(self.callbacks.establishment_error)
    }
    fn connection_error(&mut self, _: &api::Connection) {
        self.call(self.callbacks.connection_error)
    }
    fn closed(&mut self, _: &api::Connection) {
        self.call(self.callbacks.closed)
    }
    fn wants_connection_errors(&self) -> bool {
        self.callbacks.connection_error.is_some()
    }
}

/// Box `conn` as the caller's handle, publish it in `*out` before anything
/// can call back, and `start` it with the C callbacks; on error the handle
/// is freed and `*out` is NULL again.
pub(crate) fn start_connection(
    conn: api::Connection,
    callbacks: ConnectionCallbacks,
    out: &mut *mut Connection,
    start: impl FnOnce(&api::Connection, Box<dyn ConnectionHandler>) -> api::Result<()>,
) -> c_int {
    let callbacks = match value_growable(callbacks, callbacks.struct_size, ConnectionCallbacks::none()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let raw = Connection::from_api(conn);
    *out = raw;
    let handler = Box::new(CHandler { callbacks, connection: raw });
    // SAFETY: raw stays valid: only taps_connection_free gives it back.
    let view = unsafe { &*raw }.api();
    match start(&view, handler) {
        Ok(()) => 0,
        Err(e) => {
            *out = std::ptr::null_mut();
            // SAFETY: raw was never handed out successfully.
            drop(unsafe { Connection::into_api(raw) });
            fail(e)
        }
    }
}

/// How an attempt ended, or that it has not.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Still connecting.
    Running,
    /// The winner.
    Won,
    /// Failed; `os_error` says why (ETIMEDOUT for an attempt timeout).
    Failed,
    /// Stopped because the race ended (another attempt won, the race
    /// failed, timed out, or was cancelled).
    Cancelled,
    /// Ready after another attempt won, and kept as a spare connection
    /// (connection pools, race_count above 1).
    Spare,
    /// Not attempted: no path of the race can route to the address (HEv3
    /// draft -04 §4.1); `os_error` says why (ENETUNREACH, EHOSTUNREACH,
    /// EACCES for a prohibit route, ENODEV for a missing interface,
    /// EAFNOSUPPORT for a local address of the other family). Listed
    /// after the attempts; `started_us` = `ended_us` = when it was left
    /// out. A race whose every candidate was left out fails at once with
    /// TAPS_ERROR_NO_CANDIDATES.
    Pruned,
}

c_enum!(AttemptOutcome <=> api::AttemptOutcome, "not a taps_attempt_outcome", [Running, Won, Failed, Cancelled, Spare, Pruned]);

/// One attempt of a race.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct AttemptInfo {
    /// The remote address and port attempted (sockaddr_in or sockaddr_in6).
    pub address: libc::sockaddr_storage,
    /// Length of `address`.
    pub address_len: libc::socklen_t,
    /// The protocol: "tcp", "udp" or a user protocol's name; valid while
    /// the taps_connection lives.
    pub protocol: *const c_char,
    /// Start, µs since taps_preconnection_initiate_with_racing.
    pub started_us: u64,
    /// End, µs since taps_preconnection_initiate_with_racing; 0 while running.
    pub ended_us: u64,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// errno of a failed attempt (ECONNREFUSED, ETIMEDOUT for
    /// attempt_timeout_ms, ...), or why a pruned candidate was left out
    /// (TAPS_ATTEMPT_OUTCOME_PRUNED), else 0.
    pub os_error: c_int,
    /// The path's interface name, NULL for the default path (the system
    /// routes); valid while the taps_connection lives.
    pub interface_name: *const c_char,
}

/// Write a socket address into a sockaddr_storage; returns its length.
pub(crate) fn write_sockaddr(addr: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let sa = socket2::SockAddr::from(*addr);
    // SAFETY: sockaddr_storage is large enough for any socket2 address.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr() as *const u8,
            out as *mut libc::sockaddr_storage as *mut u8,
            sa.len() as usize,
        );
    }
    sa.len()
}

/// The socket of an established connection (non-blocking, owned by the
/// connection: do not close it), or -1 (not established, closed, or NULL).
#[no_mangle]
pub extern "C" fn taps_connection_get_fd(c: *const Connection) -> c_int {
    guard!(-1, {
        try_ref!(c, else -1).api().fd().unwrap_or(-1)
    })
}

/// The remote address of an established connection into `*out`, its length
/// into `*out_len`. Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_STATE (not established).
#[no_mangle]
pub extern "C" fn taps_connection_get_remote_address(
    c: *const Connection,
    out: *mut libc::sockaddr_storage,
    out_len: *mut libc::socklen_t,
) -> c_int {
    guard!(fail(Error::Panic), {
        let c = try_ref!(c);
        let out = try_mut!(out);
        let out_len = try_mut!(out_len);
        match c.api().remote_address() {
            Some(addr) => {
                *out_len = write_sockaddr(&addr, out);
                0
            }
            None => fail(Error::InvalidState),
        }
    })
}

/// The race's error after establishment_error (TAPS_ERROR_ALL_ATTEMPTS_FAILED,
/// TAPS_ERROR_RESOLUTION_FAILED, TAPS_ERROR_TIMED_OUT, TAPS_ERROR_CANCELLED),
/// TAPS_ERROR_IO after connection_error, else 0. TAPS_ERROR_NULL_ARGUMENT
/// for NULL.
#[no_mangle]
pub extern "C" fn taps_connection_get_error(c: *const Connection) -> c_int {
    guard!(fail(Error::Panic), {
        let c = try_ref!(c);
        c.api().error().map_or(0, |e| e.code())
    })
}

/// The errno behind taps_connection_get_error: the last failed attempt's errno
/// for TAPS_ERROR_ALL_ATTEMPTS_FAILED, the socket's errno for TAPS_ERROR_IO,
/// the getaddrinfo EAI_* code for TAPS_ERROR_RESOLUTION_FAILED; else 0.
#[no_mangle]
pub extern "C" fn taps_connection_get_os_error(c: *const Connection) -> c_int {
    guard!(0, {
        match try_ref!(c, else 0).api().error() {
            Some(Error::AllAttemptsFailed(e) | Error::Io(e) | Error::ResolutionFailed(e)) => e,
            _ => 0,
        }
    })
}

/// A process-unique id of the connection, or 0 for NULL.
#[no_mangle]
pub extern "C" fn taps_connection_get_id(c: *const Connection) -> u64 {
    guard!(0, {
        try_ref!(c, else 0).api().id()
    })
}

/// The winner's protocol name ("tcp", "udp" or a user protocol's) once
/// established, valid while the taps_connection lives; NULL otherwise.
#[no_mangle]
pub extern "C" fn taps_connection_get_protocol(c: *const Connection) -> *const c_char {
    guard!(std::ptr::null(), {
        let c = try_ref!(c, else std::ptr::null());
        let attempts = c.api().attempts();
        match attempts.iter().find(|a| a.outcome == api::AttemptOutcome::Won) {
            // The name lives in the protocol's registry entry, which the
            // connection's report keeps alive.
            Some(a) => a.protocol.as_ptr(),
            None => std::ptr::null(),
        }
    })
}

/// The `protocol_connection` a user protocol gave with
/// taps_protocol_attempt_ready, once established; NULL for TCP and UDP.
#[no_mangle]
pub extern "C" fn taps_connection_get_protocol_connection(c: *const Connection) -> *mut c_void {
    guard!(std::ptr::null_mut(), {
        try_ref!(c, else std::ptr::null_mut()).api().protocol_data().map_or(std::ptr::null_mut(), |d| d as *mut c_void)
    })
}

/// Number of attempts started so far (0 for NULL).
#[no_mangle]
pub extern "C" fn taps_connection_attempt_count(c: *const Connection) -> usize {
    guard!(0, {
        try_ref!(c, else 0).api().attempt_count()
    })
}

/// Attempt `index` (start order) into `*out`. Readable at any time, also
/// after establishment_error. Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_OUT_OF_RANGE (index ≥ taps_connection_attempt_count).
#[no_mangle]
pub extern "C" fn taps_connection_get_attempt(c: *const Connection, index: usize, out: *mut AttemptInfo) -> c_int {
    guard!(fail(Error::Panic), {
        let c = try_ref!(c);
        let out = try_mut!(out);
        let report = try_ok!(c.api().attempt(index));
        // SAFETY: an all-zero sockaddr_storage is valid.
        let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let address_len = write_sockaddr(&report.address, &mut address);
        *out = AttemptInfo {
            address,
            address_len,
            protocol: report.protocol.as_ptr(),
            started_us: report.started_us,
            ended_us: report.ended_us.unwrap_or(0),
            outcome: report.outcome.into(),
            os_error: report.os_error,
            interface_name: report.interface.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()),
        };
        0
    })
}

/// The ALPN id (RFC 7301) the winner's security stage reported with
/// taps_stage_attempt_ready, once established; NULL without a stage
/// (taps_preconnection_set_security_stage), when the server selected none,
/// before the win, or for NULL. Valid while the taps_connection lives.
#[no_mangle]
pub extern "C" fn taps_connection_get_alpn(c: *const Connection) -> *const c_char {
    guard!(std::ptr::null(), {
        try_ref!(c, else std::ptr::null()).api().alpn_ptr()
    })
}

/// With a security stage (draft-ietf-happy-happyeyeballs-v3-04 §6.1):
/// when attempt `index`'s TCP connection came up, µs since
/// taps_preconnection_initiate_with_racing, into `*out_us`; its stage ran
/// from then to taps_attempt_info.ended_us (the handshake's time is the
/// difference). Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_OUT_OF_RANGE
/// (index ≥ taps_connection_attempt_count), TAPS_ERROR_INVALID_STATE (the
/// attempt had no stage, or its TCP did not connect; `*out_us` is 0).
#[no_mangle]
pub extern "C" fn taps_connection_get_attempt_connected_us(c: *const Connection, index: usize, out_us: *mut u64) -> c_int {
    guard!(fail(Error::Panic), {
        let c = try_ref!(c);
        let out = try_mut!(out_us);
        *out = 0;
        match try_ok!(c.api().attempt(index)).connected_us {
            Some(us) => {
                *out = us;
                0
            }
            None => fail(Error::InvalidState),
        }
    })
}

/// Close gracefully: a racing connection stops racing (its sockets close,
/// no establishment_error), an established one sends FIN and closes its
/// socket. `closed` follows on the loop. Closing twice, or a failed
/// connection, does nothing. NULL is fine. Any thread.
#[no_mangle]
pub extern "C" fn taps_connection_close(c: *mut Connection) {
    guard!((), {
        if let Some(c) = opt_ref!(c) {
            c.api().close();
        }
    })
}

/// Free the handle: a running race is cancelled, the socket closed; no
/// callback is called after it returns (if another thread is inside one of
/// this connection's callbacks, it waits for it). Safe inside the
/// connection's own callbacks. NULL is fine.
#[no_mangle]
pub extern "C" fn taps_connection_free(c: *mut Connection) {
    guard!((), {
        if !c.is_null() {
            // SAFETY: from taps_preconnection_initiate_with_racing (or a pool's
            // acquire), freed once.
            let conn = unsafe { Connection::into_api(c) };
            let id = conn.id();
            drop(conn);
            super::dns_report::forget(id);
        }
    })
}
