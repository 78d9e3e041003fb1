//! C ABI: RacingOptions, Preconnection and Initiate.

use super::connection::{start_connection, Connection, ConnectionCallbacks};
use super::endpoint::{RemoteEndpoint, TransportProperties};
use super::event_loop::EventLoop;
use super::{fail, guard};
use crate::api;
use crate::api::{Error, RacingOptions};
use std::ffi::c_int;

/// Remote endpoints, properties and racing options on one loop, ready to
/// initiate (RFC 9622 §6). Free with preconnection_free.
///
/// Threads: a Preconnection may be shared by threads: several may call
/// preconnection_initiate_with_racing on it at once, from any thread.
/// Functions that change it (adding endpoints) and preconnection_free must
/// not run at the same time as any other call on it. Races it initiates
/// belong to its loop handle (for a shared loop, to that client).
pub struct Preconnection(pub(crate) api::Preconnection);

/// The defaults: connection_attempt_delay_ms 250 (RFC 8305 §5),
/// resolution_delay_ms 50 (§3), first_address_family_count 1 (§4),
/// attempt_timeout_ms 0 (none), total_timeout_ms 0 (none), race_count 1.
#[no_mangle]
pub extern "C" fn racing_options_default() -> RacingOptions {
    RacingOptions::default()
}

/// A Preconnection on `event_loop` racing to `remotes` (an array of
/// `n_remotes` endpoints, each copied; each needs a host and a port).
/// `props` and `opts` may be NULL for the defaults; both are copied.
///
/// Returns NULL on error, with taps_last_error():
/// TAPS_ERROR_NULL_ARGUMENT (event_loop, remotes or an element is NULL),
/// TAPS_ERROR_INVALID_ARGUMENT (n_remotes is 0, an endpoint lacks a host
/// or a port), TAPS_ERROR_INVALID_OPTION (an option out of range; the
/// message names it). The loop must outlive the Preconnection.
#[no_mangle]
pub extern "C" fn preconnection_new(
    event_loop: *mut EventLoop,
    remotes: *const *const RemoteEndpoint,
    n_remotes: usize,
    props: *const TransportProperties,
    opts: *const RacingOptions,
) -> *mut Preconnection {
    guard!(std::ptr::null_mut(), {
        let made = (|| {
            // SAFETY: pointers are NULL or valid per the contract.
            let lp = unsafe { event_loop.as_ref() }.ok_or(Error::NullArgument)?;
            if remotes.is_null() && n_remotes > 0 {
                return Err(Error::NullArgument);
            }
            let mut list = Vec::with_capacity(n_remotes);
            for i in 0..n_remotes {
                // SAFETY: remotes holds n_remotes pointers, each NULL or valid.
                let ep = unsafe { (*remotes.add(i)).as_ref() }.ok_or(Error::NullArgument)?;
                list.push(ep.0.clone());
            }
            // SAFETY: NULL or valid.
            let props = unsafe { props.as_ref() }.map(|p| &p.0);
            let opts = unsafe { opts.as_ref() };
            api::Preconnection::new(&lp.0, &list, props, opts)
        })();
        match made {
            Ok(p) => Box::into_raw(Box::new(Preconnection(p))),
            Err(e) => {
                fail(e);
                std::ptr::null_mut()
            }
        }
    })
}

/// Free a Preconnection. NULL is fine. Connections initiated from it are
/// not affected.
#[no_mangle]
pub extern "C" fn preconnection_free(p: *mut Preconnection) {
    guard!((), {
        if !p.is_null() {
            // SAFETY: from preconnection_new, freed once.
            drop(unsafe { Box::from_raw(p) });
        }
    })
}

/// Start racing (RFC 8305; RFC 9623 §4) and return at once: `*out_connection`
/// is set, in the establishing state, before any callback can run. Exactly
/// one of `ready` / `establishment_error` follows, on the thread that runs
/// the loop, unless the connection is freed or closed first. Losing
/// attempts' sockets are closed before `ready` is called. Callbacks may be
/// NULL (not called); `user_data` is passed back untouched.
///
/// The caller owns `*out_connection` and frees it with connection_free
/// (also inside a callback). Errors (then `*out_connection` is NULL):
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_STATE (the loop was freed).
#[no_mangle]
pub extern "C" fn preconnection_initiate_with_racing(
    p: *mut Preconnection,
    callbacks: ConnectionCallbacks,
    out_connection: *mut *mut Connection,
) -> c_int {
    guard!(fail(Error::Panic), {
        if out_connection.is_null() {
            return fail(Error::NullArgument);
        }
        // SAFETY: out_connection is a valid out-pointer.
        unsafe { *out_connection = std::ptr::null_mut() };
        let pre = super::arg!(p);
        start_connection(pre.0.new_connection(), callbacks, out_connection, |c, h| pre.0.initiate_connection(c, h))
    })
}
