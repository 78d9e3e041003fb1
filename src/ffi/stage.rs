//! C ABI: security stages (`taps_stage_callbacks`, `taps_stage_attempt`):
//! the caller's TLS on each connected TCP attempt
//! (draft-ietf-happy-happyeyeballs-v3-04 §6.1), and the Preconnection's
//! ALPN list.

use super::connection::write_sockaddr;
use super::handle::{bytes_out, opt_ref, try_mut, try_ok, try_ref};
use super::preconnection::Preconnection;
use super::{fail, growable, guard, read_growable};
use crate::api::{self, Error};
use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

/// One attempt of a security stage: a connected TCP socket whose
/// handshake the stage runs. Valid from `start` until the stage's own
/// taps_stage_attempt_ready / taps_stage_attempt_failed call for it
/// returns, or until `cancel` for it returns, whichever comes first; the
/// pointers its getters return are valid as long.
pub struct StageAttempt {
    _opaque: [u8; 0],
}

impl StageAttempt {
    /// The attempt behind a handle, for one call.
    fn api(&self) -> api::StageAttempt {
        // SAFETY: a handle is a live attempt's raw handle while the C
        // contract lets the stage use it.
        unsafe { api::StageAttempt::from_raw(self as *const StageAttempt as *const c_void) }
    }
}

/// The caller's TLS (OpenSSL, rustls-ffi, ...) as a stage on top of the
/// built-in TCP (draft-ietf-happy-happyeyeballs-v3-04 §6.1): each TCP
/// attempt of a taps_preconnection with a stage is ready when its stage
/// says so, at the end of its handshake, not when TCP connects. Set with
/// taps_preconnection_set_security_stage (copied).
///
/// The functions run on the loop's thread with the loop locked: they must
/// not call the library, except the taps_stage_attempt_* functions (which
/// any thread may call) and taps_event_loop_now_us; they should not block
/// (the socket is non-blocking). Until the stage reports, the attempt is
/// running: the Connection Attempt Delay and attempt_timeout_ms count TCP
/// and the handshake together, and a failure starts the next attempt at
/// once. Every started attempt ends in exactly one of: the stage's own
/// failed; the win (its fd becomes the taps_connection's, taps_connection_get_fd,
/// and the stage's session on it, an SSL *, is the program's from then on:
/// find it by that fd); or `cancel`, once (the attempt lost, timed out, or
/// won for a connection freed meanwhile), after which the library closes
/// the fd.
///
/// Initialize it with designated initializers (struct_size 0: this
/// header's struct) or TAPS_STAGE_CALLBACKS_INIT, never positionally.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StageCallbacks {
    /// sizeof(taps_stage_callbacks) of the caller's header, in bytes; 0
    /// means this header's full struct (docs/ABI.md).
    pub struct_size: u32,
    /// The TCP connection of `attempt` is up: start the handshake on
    /// taps_stage_attempt_get_fd (SNI from taps_stage_attempt_get_host_name,
    /// ALPN from taps_stage_attempt_get_alpn_wire), ask for readiness with
    /// taps_stage_attempt_want_read / _want_write. Return 0 and report later
    /// (also from inside start), or an errno (> 0) to fail the attempt at
    /// once (no cancel follows). Required.
    pub start: Option<extern "C" fn(attempt: *mut StageAttempt, user_data: *mut c_void) -> c_int>,
    /// The socket is readable and/or writable (an error or hang-up sets
    /// both), as asked: go on with the handshake. Each wish is used up by
    /// the call it causes (ask again for more). May be NULL.
    pub io: Option<extern "C" fn(attempt: *mut StageAttempt, readable: bool, writable: bool, user_data: *mut c_void)>,
    /// The race no longer needs `attempt`: free the stage's state for it
    /// (not the fd: the library closes it after this returns). Called once
    /// per attempt that neither won nor reported a failure, also one that
    /// reported ready too late. May be NULL.
    pub cancel: Option<extern "C" fn(attempt: *mut StageAttempt, user_data: *mut c_void)>,
}

growable!(StageCallbacks "taps_stage_callbacks" { start, io, cancel });

impl StageCallbacks {
    /// No callbacks, struct_size this library's.
    fn none() -> StageCallbacks {
        StageCallbacks { struct_size: std::mem::size_of::<StageCallbacks>() as u32, start: None, io: None, cancel: None }
    }
}

struct CStage {
    callbacks: StageCallbacks,
    user_data: *mut c_void,
}

// SAFETY: the C contract: the callbacks may be called from the loop's
// thread, whichever thread that is; user_data is the program's.
unsafe impl Send for CStage {}
// SAFETY: as above; the library never calls them concurrently for one loop.
unsafe impl Sync for CStage {}

fn raw(attempt: &api::StageAttempt) -> *mut StageAttempt {
    attempt.as_raw() as *mut StageAttempt
}

impl api::SecurityStage for CStage {
    fn start(&self, attempt: api::StageAttempt) -> Result<(), i32> {
        let Some(start) = self.callbacks.start else { return Err(libc::ENOSYS) };
        match start(raw(&attempt), self.user_data) {
            0 => Ok(()),
            e if e > 0 => Err(e),
            _ => Err(libc::EINVAL),
        }
    }

    fn io(&self, attempt: &api::StageAttempt, readable: bool, writable: bool) {
        if let Some(io) = self.callbacks.io {
            io(raw(attempt), readable, writable, self.user_data);
        }
    }

    fn cancel(&self, attempt: &api::StageAttempt) {
        if let Some(cancel) = self.callbacks.cancel {
            cancel(raw(attempt), self.user_data);
        }
    }
}

/// Run the caller's TLS as a stage on each built-in TCP attempt of the
/// races `p` initiates from now on (draft-ietf-happy-happyeyeballs-v3-04
/// §6.1): see taps_stage_callbacks. `callbacks` is copied (NULL removes
/// the stage); `user_data` is passed to each callback and must outlive
/// every race started with the stage. Connection pools and groups race
/// plain TCP. Call before initiating; not at the same time as another
/// call on `p`. Errors: TAPS_ERROR_NULL_ARGUMENT (p, or callbacks->start,
/// is NULL), TAPS_ERROR_INVALID_ARGUMENT (callbacks->struct_size below
/// the smallest layout, inside a field, or larger with a nonzero tail).
#[no_mangle]
pub extern "C" fn taps_preconnection_set_security_stage(p: *mut Preconnection, callbacks: *const StageCallbacks, user_data: *mut c_void) -> c_int {
    guard!(fail(Error::Panic), {
        let p = try_mut!(p);
        if callbacks.is_null() {
            p.0.set_security_stage(None);
            return 0;
        }
        // SAFETY: the C contract: callbacks points at a struct of its
        // struct_size bytes.
        let callbacks = try_ok!(unsafe { read_growable(callbacks, StageCallbacks::none()) });
        if callbacks.start.is_none() {
            return fail(Error::NullArgument);
        }
        p.0.set_security_stage(Some(Arc::new(CStage { callbacks, user_data })));
        0
    })
}

/// The connected, non-blocking TCP socket of `attempt`; -1 for NULL. The
/// library's: do not close it.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_get_fd(attempt: *const StageAttempt) -> c_int {
    guard!(-1, { try_ref!(attempt, else -1).api().fd() })
}

/// The remote address and port of `attempt` into `*out` (sockaddr_in or
/// sockaddr_in6) and its length into `*out_len`. Errors:
/// TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_get_remote(
    attempt: *const StageAttempt,
    out: *mut libc::sockaddr_storage,
    out_len: *mut libc::socklen_t,
) -> c_int {
    guard!(fail(Error::Panic), {
        let a = try_ref!(attempt).api();
        let out = try_mut!(out);
        let out_len = try_mut!(out_len);
        *out_len = write_sockaddr(&a.remote(), out);
        0
    })
}

/// The host name for SNI and the certificate check: the first remote
/// endpoint given by name; NULL when every remote endpoint is an address
/// (or for NULL).
#[no_mangle]
pub extern "C" fn taps_stage_attempt_get_host_name(attempt: *const StageAttempt) -> *const c_char {
    guard!(std::ptr::null(), {
        let a = try_ref!(attempt, else std::ptr::null()).api();
        a.host_name_c().map_or(std::ptr::null(), |h| h.as_ptr())
    })
}

/// How many ALPN ids the attempt offers: its HTTPS record's usable ids
/// (RFC 9460 §7.1.2, in the order of taps_preconnection_set_alpn) when its
/// address came with one, else the taps_preconnection_set_alpn list
/// (draft-ietf-happy-happyeyeballs-v3-04 §6.1); 0 for NULL.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_get_alpn_count(attempt: *const StageAttempt) -> usize {
    guard!(0, { try_ref!(attempt, else 0).api().alpn().len() })
}

/// ALPN id `index` (0: the most preferred) of the attempt; NULL past the
/// end or for NULL.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_get_alpn(attempt: *const StageAttempt, index: usize) -> *const c_char {
    guard!(std::ptr::null(), {
        let a = try_ref!(attempt, else std::ptr::null()).api();
        a.alpn_c().get(index).map_or(std::ptr::null(), |id| id.as_ptr())
    })
}

/// The attempt's ALPN ids in the extension's wire format (each id
/// prefixed by its length in one byte), as OpenSSL's SSL_set_alpn_protos
/// takes them; its length in bytes into `*out_len`. NULL (and 0) for no
/// ids or a NULL argument.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_get_alpn_wire(attempt: *const StageAttempt, out_len: *mut usize) -> *const u8 {
    guard!(std::ptr::null(), {
        let a = opt_ref!(attempt).map(|a| a.api());
        bytes_out(a.as_ref().map(|a| a.alpn_wire()), out_len)
    })
}

/// The attempt's ECHConfigList (draft-ietf-tls-esni) and its length in
/// bytes into `*out_len`: the "ech" SvcParam of the HTTPS record the
/// attempt's address came with (HEv3 §6.3); NULL (and 0) for none.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_get_ech_config(attempt: *const StageAttempt, out_len: *mut usize) -> *const u8 {
    guard!(std::ptr::null(), {
        let a = opt_ref!(attempt).map(|a| a.api());
        bytes_out(a.as_ref().and_then(|a| a.ech_config()), out_len)
    })
}

/// Call the stage's `io` when the socket is readable. Any thread; ignored
/// after the attempt reported or ended. Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_want_read(attempt: *mut StageAttempt) -> c_int {
    guard!(fail(Error::Panic), {
        try_ref!(attempt).api().want_read();
        0
    })
}

/// Call the stage's `io` when the socket is writable. Any thread; ignored
/// after the attempt reported or ended. Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_want_write(attempt: *mut StageAttempt) -> c_int {
    guard!(fail(Error::Panic), {
        try_ref!(attempt).api().want_write();
        0
    })
}

/// The handshake is done: the attempt may win the race. `selected_alpn`
/// is the ALPN id the server chose (copied; NULL for none), read back with
/// taps_connection_get_alpn. Any thread; once per attempt (a second report,
/// or one after cancel, is ignored). Errors: TAPS_ERROR_NULL_ARGUMENT
/// (attempt), TAPS_ERROR_INVALID_ARGUMENT (selected_alpn not UTF-8: the
/// attempt is ready with none).
#[no_mangle]
pub extern "C" fn taps_stage_attempt_ready(attempt: *mut StageAttempt, selected_alpn: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let a = try_ref!(attempt).api();
        if selected_alpn.is_null() {
            a.ready(None);
            return 0;
        }
        // SAFETY: the C contract: a NUL-terminated string.
        match unsafe { std::ffi::CStr::from_ptr(selected_alpn) }.to_str() {
            Ok(id) => {
                a.ready(Some(id));
                0
            }
            Err(_) => {
                a.ready(None);
                fail(Error::InvalidArgument("the selected ALPN id is UTF-8"))
            }
        }
    })
}

/// The handshake failed with `os_error` (an errno, > 0; the attempt's
/// taps_attempt_info.os_error): the next attempt starts at once. Any
/// thread; once per attempt. Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_ARGUMENT (os_error ≤ 0: the attempt fails with EIO).
#[no_mangle]
pub extern "C" fn taps_stage_attempt_failed(attempt: *mut StageAttempt, os_error: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        let a = try_ref!(attempt).api();
        a.failed(os_error);
        if os_error <= 0 {
            return fail(Error::InvalidArgument("os_error must be an errno > 0"));
        }
        0
    })
}

/// The index of the attempt in its race (its taps_connection_get_attempt
/// index); -1 for NULL.
#[no_mangle]
pub extern "C" fn taps_stage_attempt_index(attempt: *const StageAttempt) -> c_int {
    guard!(-1, { try_ref!(attempt, else -1).api().index() as c_int })
}
