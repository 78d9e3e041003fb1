//! C ABI: EventLoop.

use super::{fail, guard, status};
use crate::api;
use crate::api::Error;
use std::ffi::c_int;

/// One event loop (a mio Poll with its timers, sockets and resolver
/// threads). Loops are independent: there are no process-wide globals.
pub struct EventLoop(pub(crate) api::EventLoop);

/// A new event loop, or NULL (then `taps_last_error()` is TAPS_ERROR_IO:
/// the system refused an epoll instance, eventfd or timerfd). Free it with
/// `event_loop_free`. Any thread.
#[no_mangle]
pub extern "C" fn event_loop_new() -> *mut EventLoop {
    guard!(std::ptr::null_mut(), {
        match api::EventLoop::new() {
            Ok(lp) => Box::into_raw(Box::new(EventLoop(lp))),
            Err(e) => {
                fail(e);
                std::ptr::null_mut()
            }
        }
    })
}

/// Run the loop on the calling thread until no race is pending and every
/// queued callback (ready, establishment_error, closed, ...) was called.
/// Callbacks run on this thread. Returns 0, TAPS_ERROR_NULL_ARGUMENT, or
/// TAPS_ERROR_IO if polling failed. Returns at once when nothing is
/// pending.
#[no_mangle]
pub extern "C" fn event_loop_run(event_loop: *mut EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = super::arg!(event_loop);
        status(lp.0.run())
    })
}

/// Free a loop. Every race still pending on it is cancelled and its
/// sockets closed, with no callback. Connections made on it stay valid
/// handles: free them with `connection_free`. NULL is fine. Do not call it
/// from a callback of this loop or while another thread runs it.
#[no_mangle]
pub extern "C" fn event_loop_free(event_loop: *mut EventLoop) {
    guard!((), {
        if !event_loop.is_null() {
            // SAFETY: the pointer came from event_loop_new and is freed once.
            drop(unsafe { Box::from_raw(event_loop) });
        }
    })
}
