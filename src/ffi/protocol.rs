//! C ABI: user protocols (`taps_protocol_implementation`) raced beside TCP and
//! UDP, and their attempts (`taps_protocol_attempt`).

use super::event_loop::EventLoop;
use super::handle::{bytes_out, opt_ref, try_ok, try_ref, try_str};
use super::{fail, guard, status};
use crate::api::{self, Error, PathInfo, ProtocolConnection, ProtocolTraits};
use std::ffi::{c_char, c_int, c_void, CString};
use std::net::SocketAddr;
use std::sync::Arc;

/// One attempt of a user protocol. Valid from `start` until the protocol's
/// own taps_protocol_attempt_ready / taps_protocol_attempt_failed call for it returns,
/// or until `cancel` for it returns, whichever comes first.
pub struct ProtocolAttempt {
    _opaque: [u8; 0],
}

impl ProtocolAttempt {
    /// The attempt behind a handle, for one call.
    fn api(&self) -> api::ProtocolAttempt {
        // SAFETY: a handle is a live attempt's raw handle while the C
        // contract lets the protocol use it.
        unsafe { api::ProtocolAttempt::from_raw(self as *const ProtocolAttempt as *const c_void) }
    }
}

/// What a protocol offers, as flags for taps_protocol_implementation.properties.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolFlag {
    /// Reliable data transfer (selection property reliability).
    TAPS_PROTOCOL_FLAG_RELIABLE = 1,
    /// Preserves message boundaries (preserveMsgBoundaries).
    TAPS_PROTOCOL_FLAG_PRESERVES_MSG_BOUNDARIES = 2,
    /// Several streams per connection (multistreaming).
    TAPS_PROTOCOL_FLAG_MULTISTREAMING = 4,
}

/// The ProtocolTraits that taps_protocol_flag bits say; unknown bits are an
/// error.
fn protocol_traits(flags: u32) -> Result<ProtocolTraits, Error> {
    use ProtocolFlag::*;
    let all = TAPS_PROTOCOL_FLAG_RELIABLE as u32 | TAPS_PROTOCOL_FLAG_PRESERVES_MSG_BOUNDARIES as u32 | TAPS_PROTOCOL_FLAG_MULTISTREAMING as u32;
    if flags & !all != 0 {
        return Err(Error::InvalidArgument("unknown ProtocolFlag bits"));
    }
    Ok(ProtocolTraits {
        reliable: flags & TAPS_PROTOCOL_FLAG_RELIABLE as u32 != 0,
        preserves_msg_boundaries: flags & TAPS_PROTOCOL_FLAG_PRESERVES_MSG_BOUNDARIES as u32 != 0,
        multistreaming: flags & TAPS_PROTOCOL_FLAG_MULTISTREAMING as u32 != 0,
    })
}

/// A protocol the program brings (QUIC, TLS over TCP, a tunnel, a mock),
/// raced like the built-in TCP and UDP (RFC 9623 §4.1, the PROTOCOL
/// level). Copied by taps_event_loop_add_protocol. The functions run on the
/// loop's thread with the loop locked: they must not call the library,
/// except taps_protocol_attempt_ready / taps_protocol_attempt_failed (any thread,
/// also from inside `start`), taps_protocol_attempt_index, the
/// taps_protocol_attempt_get_* getters and taps_event_loop_now_us.
/// If `cancel` comes for an attempt the protocol has just reported ready
/// from another thread, the library closes that connection with `close`
/// when it sees the report: `cancel` need not.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ProtocolImplementation {
    /// Its name (copied; unique per loop; "tcp" and "udp" are taken), as
    /// taps_attempt_info.protocol reports it.
    pub name: *const c_char,
    /// taps_protocol_flag bits: what it offers, for the selection properties.
    pub properties: u32,
    /// Start an attempt to `address` (`interface_name` and `local_address`
    /// are the path's, NULL when the path names none). Return 0 and report
    /// the outcome later through `attempt`, once; or return an errno (> 0)
    /// to fail the attempt at once. Required.
    pub start: Option<
        extern "C" fn(
            attempt: *mut ProtocolAttempt,
            address: *const libc::sockaddr,
            address_len: libc::socklen_t,
            interface_name: *const c_char,
            local_address: *const libc::sockaddr,
            local_address_len: libc::socklen_t,
            user_data: *mut c_void,
        ) -> c_int,
    >,
    /// Stop an attempt the race no longer needs (another attempt won, or
    /// the race ended); after it returns the attempt handle is invalid and
    /// a completion for it would be ignored. May be NULL.
    pub cancel: Option<extern "C" fn(attempt: *mut ProtocolAttempt, user_data: *mut c_void)>,
    /// Close a connection this protocol reported ready (the winner when its
    /// taps_connection is closed or freed; a late ready after the race was
    /// decided). `fd` is what the protocol reported (-1 for none); the
    /// library never closes it. May be NULL.
    pub close: Option<extern "C" fn(protocol_connection: *mut c_void, fd: c_int, user_data: *mut c_void)>,
    /// Passed to every function.
    pub user_data: *mut c_void,
}

struct CProtocol(ProtocolImplementation);

// SAFETY: the C contract: the vtable's functions may be called from the
// loop's thread, whichever thread that is; user_data is the program's.
unsafe impl Send for CProtocol {}
// SAFETY: as above; the library never calls them concurrently for one loop.
unsafe impl Sync for CProtocol {}

fn with_sockaddr<R>(addr: Option<SocketAddr>, f: impl FnOnce(*const libc::sockaddr, libc::socklen_t) -> R) -> R {
    match addr {
        Some(a) => {
            let sa = socket2::SockAddr::from(a);
            f(sa.as_ptr() as *const libc::sockaddr, sa.len())
        }
        None => f(std::ptr::null(), 0),
    }
}

impl api::Protocol for CProtocol {
    fn start(&self, attempt: api::ProtocolAttempt, remote: SocketAddr, path: &PathInfo) -> Result<(), i32> {
        let Some(start) = self.0.start else { return Err(libc::ENOSYS) };
        let ptr = attempt.as_raw() as *mut ProtocolAttempt;
        let iface = path.interface.as_deref().and_then(|n| CString::new(n).ok());
        let iface_ptr = iface.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        let rc = with_sockaddr(Some(remote), |ra, rl| {
            with_sockaddr(path.local, |la, ll| start(ptr, ra, rl, iface_ptr, la, ll, self.0.user_data))
        });
        match rc {
            0 => Ok(()),
            e if e > 0 => Err(e),
            _ => Err(libc::EINVAL),
        }
    }

    fn cancel(&self, attempt: &api::ProtocolAttempt) {
        if let Some(cancel) = self.0.cancel {
            cancel(attempt.as_raw() as *mut ProtocolAttempt, self.0.user_data);
        }
    }

    fn close(&self, connection: ProtocolConnection) {
        if let Some(close) = self.0.close {
            close(connection.data as *mut c_void, connection.fd.unwrap_or(-1), self.0.user_data);
        }
    }
}

/// Register a user protocol with a loop (copied). Races on the loop
/// include it when the selection properties keep it (RFC 9623 §4.1, §5).
/// Returns 0, or TAPS_ERROR_NULL_ARGUMENT (loop, impl, name or start NULL),
/// TAPS_ERROR_INVALID_ARGUMENT (empty or duplicate name, unknown flag bits).
#[no_mangle]
pub extern "C" fn taps_event_loop_add_protocol(event_loop: *mut EventLoop, protocol: *const ProtocolImplementation) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        let imp = *try_ref!(protocol);
        if imp.start.is_none() {
            return fail(Error::NullArgument);
        }
        let name = try_str!(imp.name, Error::InvalidArgument("a protocol name is UTF-8"));
        let traits = try_ok!(protocol_traits(imp.properties));
        status(lp.0.add_protocol(name, traits, Arc::new(CProtocol(imp))).map(|_| ()))
    })
}

/// The attempt's connection is ready (after the protocol's own handshake):
/// the race may be won by it. `fd` (-1 for none) becomes the taps_connection's
/// fd; `protocol_connection` is given back to `close`. Any thread; once per
/// attempt (a second completion is ignored). Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_protocol_attempt_ready(attempt: *mut ProtocolAttempt, fd: c_int, protocol_connection: *mut c_void) -> c_int {
    guard!(fail(Error::Panic), {
        try_ref!(attempt).api().ready(if fd >= 0 { Some(fd) } else { None }, protocol_connection as usize);
        0
    })
}

/// The attempt failed with `os_error` (an errno, > 0). Any thread; once per
/// attempt. Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT
/// (os_error ≤ 0: the attempt is failed with EIO).
#[no_mangle]
pub extern "C" fn taps_protocol_attempt_failed(attempt: *mut ProtocolAttempt, os_error: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        let a = try_ref!(attempt).api();
        if os_error <= 0 {
            a.failed(libc::EIO);
            return fail(Error::InvalidArgument("os_error must be an errno > 0"));
        }
        a.failed(os_error);
        0
    })
}

/// The index of the attempt in its race (its taps_connection_get_attempt index).
/// -1 for NULL.
#[no_mangle]
pub extern "C" fn taps_protocol_attempt_index(attempt: *const ProtocolAttempt) -> c_int {
    guard!(-1, {
        // SAFETY: NULL or valid per the contract.
        try_ref!(attempt, else -1).api().index() as c_int
    })
}

/// How many ALPN ids (RFC 7301) the attempt is for
/// (draft-ietf-happy-happyeyeballs-v3-04 §6.1): for an address that came
/// with an HTTPS record (RFC 9460), its service's usable ids (the record's
/// ALPN set, RFC 9460 §7.1.2, kept to the taps_preconnection_set_alpn ids
/// in their order when some were set); for any other address the
/// taps_preconnection_set_alpn list. 0 for none or NULL.
#[no_mangle]
pub extern "C" fn taps_protocol_attempt_get_alpn_count(attempt: *const ProtocolAttempt) -> usize {
    guard!(0, { try_ref!(attempt, else 0).api().alpn().len() })
}

/// ALPN id `index` (0: the most preferred) of the attempt, NUL-terminated;
/// NULL past the end or for NULL. Valid as long as the attempt handle.
#[no_mangle]
pub extern "C" fn taps_protocol_attempt_get_alpn(attempt: *const ProtocolAttempt, index: usize) -> *const c_char {
    guard!(std::ptr::null(), {
        let a = try_ref!(attempt, else std::ptr::null()).api();
        a.alpn_c().get(index).map_or(std::ptr::null(), |id| id.as_ptr())
    })
}

/// The attempt's ALPN ids in the extension's wire format (each id prefixed
/// by its length in one byte, as OpenSSL's SSL_set_alpn_protos and QUIC
/// libraries take them), its length in bytes into `*out_len`. NULL (and 0)
/// for no ids or a NULL argument. Valid as long as the attempt handle.
#[no_mangle]
pub extern "C" fn taps_protocol_attempt_get_alpn_wire(attempt: *const ProtocolAttempt, out_len: *mut usize) -> *const u8 {
    guard!(std::ptr::null(), {
        let a = opt_ref!(attempt).map(|a| a.api());
        bytes_out(a.as_ref().map(|a| a.alpn_wire()), out_len)
    })
}

/// The attempt's ECHConfigList (draft-ietf-tls-esni): the "ech" SvcParam of
/// the HTTPS record its address came with (HEv3 §6.3), its length in bytes
/// into `*out_len`. NULL (and 0) for none (no record, a record without
/// "ech") or a NULL argument. Valid as long as the attempt handle.
#[no_mangle]
pub extern "C" fn taps_protocol_attempt_get_ech_config(attempt: *const ProtocolAttempt, out_len: *mut usize) -> *const u8 {
    guard!(std::ptr::null(), {
        let a = opt_ref!(attempt).map(|a| a.api());
        bytes_out(a.as_ref().and_then(|a| a.ech_config()), out_len)
    })
}
