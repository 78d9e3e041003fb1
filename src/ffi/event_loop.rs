//! C ABI: taps_event_loop, its run modes and shared loops.

use super::handle::{free_handle, handle_or_null, try_ok, try_ref, try_str, Boxed};
use super::{fail, growable, guard, read_growable, status};
use crate::api;
use crate::api::Error;
use std::ffi::{c_char, c_int};
use std::time::Duration;

/// One event loop (a mio Poll with its timers, sockets and resolver
/// threads), or one client's handle on a shared loop (taps_event_loop_shared).
/// Loops are independent; the registry of shared loops is the library's
/// only process-wide state.
///
/// Ways to run a loop:
/// - taps_event_loop_run: on the calling thread until no race is pending;
/// - taps_event_loop_run_once: until a callback was called, or a timeout;
/// - taps_event_loop_start_thread / taps_event_loop_stop_thread: a thread of its own;
/// - embedded in your event loop (libuv, epoll, poll): watch
///   taps_event_loop_get_fd for readability, wake after taps_event_loop_get_timeout_ms
///   at the latest, then call taps_event_loop_process (never blocks);
/// - taps_event_loop_shared: one loop per key on its own thread, shared by the
///   independent components of a process.
///
/// Threads: a taps_event_loop may be shared by threads. Every function may be
/// called from any thread at any time (a call from another thread wakes
/// the thread that runs the loop), except taps_event_loop_free /
/// taps_event_loop_release, which must be the handle's last call. One thread
/// runs a loop at a time: run, run_once and process return
/// TAPS_ERROR_INVALID_STATE while another thread runs it, when it has a
/// thread of its own (or is shared), and from inside its own callbacks.
/// Callbacks run on the thread that runs the loop, one at a time.
pub struct EventLoop(pub(crate) api::EventLoop);

impl Boxed for EventLoop {}

/// Options of taps_event_loop_new_with_options. Start from
/// TAPS_EVENT_LOOP_OPTIONS_INIT or zero (`{.manual_clock = true}`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EventLoopOptions {
    /// sizeof(taps_event_loop_options) of the caller's header, in bytes
    /// (TAPS_EVENT_LOOP_OPTIONS_INIT sets it); 0 means this header's full
    /// struct. The library reads the fields that fit and takes the default
    /// for the rest (docs/ABI.md).
    pub struct_size: u32,
    /// A manual clock: time starts at 0 and moves only with
    /// taps_event_loop_advance_clock, and running the loop never blocks (it does
    /// what is ready and returns). For tests that drive every delay exactly.
    pub manual_clock: bool,
}

growable!(EventLoopOptions "taps_event_loop_options" { manual_clock });

/// A new event loop, or NULL (then `taps_last_error()` is TAPS_ERROR_IO:
/// the system refused an epoll instance, eventfd or timerfd). Free it with
/// `taps_event_loop_free`. Any thread.
///
/// The first loop a process makes (with this function,
/// taps_event_loop_new_with_options or taps_event_loop_shared) reads the
/// `TAPS_LOG` environment variable: error, warn, info, debug or trace logs
/// the library's records at that level to stderr, unless a log callback
/// was set (see taps_set_log_callback).
#[no_mangle]
pub extern "C" fn taps_event_loop_new() -> *mut EventLoop {
    guard!(std::ptr::null_mut(), {
        super::log::init_from_env();
        handle_or_null(api::EventLoop::new().map(EventLoop))
    })
}

/// A new loop with options (NULL: the defaults, as taps_event_loop_new). NULL
/// on failure, with taps_last_error(): TAPS_ERROR_IO,
/// TAPS_ERROR_INVALID_ARGUMENT (options->struct_size, as for
/// taps_preconnection_new). Free with taps_event_loop_free.
#[no_mangle]
pub extern "C" fn taps_event_loop_new_with_options(options: *const EventLoopOptions) -> *mut EventLoop {
    guard!(std::ptr::null_mut(), {
        super::log::init_from_env();
        let opts = if options.is_null() {
            EventLoopOptions::default()
        } else {
            // SAFETY: the C contract: options points at a struct of its struct_size bytes.
            try_ok!(unsafe { read_growable(options, EventLoopOptions::default()) })
        };
        let made = if opts.manual_clock { api::EventLoop::with_manual_clock() } else { api::EventLoop::new() };
        handle_or_null(made.map(EventLoop))
    })
}

/// Run the loop on the calling thread until no race is pending and every
/// queued callback (ready, establishment_error, closed, ...) was called.
/// Callbacks run on this thread. Returns at once when nothing is pending.
/// Returns 0, TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_STATE (another
/// thread runs the loop, it has a thread of its own or is shared, or
/// called from its own callback), or TAPS_ERROR_IO if polling failed.
#[no_mangle]
pub extern "C" fn taps_event_loop_run(event_loop: *mut EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        status(lp.0.run())
    })
}

/// Run the loop on the calling thread until at least one callback was
/// called, `timeout_ms` ms passed (-1: no limit; 0: only what is ready
/// now), or no race and no callback is pending any more (at once when none
/// is, even with -1). Callbacks run on this thread, inside this call.
///
/// Returns the number of callbacks called (>= 0; 0 when the timeout passed
/// or nothing is pending). Errors (< 0):
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (timeout_ms below
/// -1), TAPS_ERROR_INVALID_STATE and TAPS_ERROR_IO as for taps_event_loop_run.
#[no_mangle]
pub extern "C" fn taps_event_loop_run_once(event_loop: *mut EventLoop, timeout_ms: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        let timeout = match timeout_ms {
            -1 => None,
            ms if ms >= 0 => Some(Duration::from_millis(ms as u64)),
            _ => return fail(Error::InvalidArgument("timeout_ms must be -1 (no limit) or >= 0")),
        };
        count(lp.0.run_once(timeout))
    })
}

/// Keep the system resolver's answers for `lifetime_ms` ms (default 60000,
/// like curl's DNS cache; 0: no cache, and the kept answers are dropped).
/// getaddrinfo reports no TTL, so this is the lifetime of every answer. A
/// race to a name with answers kept for both families starts at once, with
/// no getaddrinfo call and no resolver thread; kept are each family's
/// addresses (with the source address of each, for RFC 6724 sorting) and
/// "no address of this family" (EAI_NONAME, EAI_NODATA); other failures
/// are asked again. A race that fails using kept answers drops them. Per
/// loop: on a shared loop it applies to every client. Races started before
/// the call are unaffected. Names resolved by a user resolver
/// (taps_event_loop_set_resolver) are not cached. Any thread.
///
/// Returns 0, TAPS_ERROR_NULL_ARGUMENT, or TAPS_ERROR_OUT_OF_RANGE (more
/// than 86400000, one day).
#[no_mangle]
pub extern "C" fn taps_event_loop_set_resolution_cache(event_loop: *mut EventLoop, lifetime_ms: u32) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        status(lp.0.set_resolution_cache(Duration::from_millis(u64::from(lifetime_ms))))
    })
}

/// Do all due work without blocking: call queued callbacks, fire due
/// timers, handle every ready socket, resolver answer and wake-up. For a
/// loop embedded in another event loop: call it when taps_event_loop_get_fd is
/// readable or taps_event_loop_get_timeout_ms has passed. Callbacks run on the
/// calling thread, inside this call.
///
/// Returns the number of callbacks called (>= 0), or TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_STATE, TAPS_ERROR_IO as for taps_event_loop_run.
#[no_mangle]
pub extern "C" fn taps_event_loop_process(event_loop: *mut EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        count(lp.0.process())
    })
}

/// The file descriptor to watch for readability (POLLIN, EPOLLIN,
/// UV_READABLE) when the loop is embedded in another event loop: the
/// loop's epoll instance, readable whenever a socket, timer, resolver
/// answer or a call from another thread needs taps_event_loop_process. Do not
/// read, write or close it. The same fd for the loop's whole life.
///
/// Returns the fd (>= 0), TAPS_ERROR_NULL_ARGUMENT, or
/// TAPS_ERROR_INVALID_STATE for a loop with a thread of its own or a
/// shared loop.
#[no_mangle]
pub extern "C" fn taps_event_loop_get_fd(event_loop: *const EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        match lp.0.fd() {
            Ok(fd) => fd,
            Err(e) => fail(e),
        }
    })
}

/// How many ms the embedding loop may wait before calling
/// taps_event_loop_process when taps_event_loop_get_fd stays quiet: 0 when work is
/// ready now (queued callbacks, a due timer), the ms to the next timer
/// (rounded up), or -1 when no timer is pending (wait for the fd alone).
/// Ask again after every taps_event_loop_process and every initiate.
///
/// Errors: -1 is also returned for NULL (taps_last_error() is then
/// TAPS_ERROR_NULL_ARGUMENT); TAPS_ERROR_INVALID_STATE (< -1) for a loop
/// with a thread of its own or a shared loop.
#[no_mangle]
pub extern "C" fn taps_event_loop_get_timeout_ms(event_loop: *const EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        match lp.0.timeout() {
            Ok(None) => -1,
            Ok(Some(d)) => d.as_micros().div_ceil(1000).min(c_int::MAX as u128) as c_int,
            Err(e) => fail(e),
        }
    })
}

/// Start a thread (named "taps-loop") that runs the loop; callbacks run on
/// it. Until taps_event_loop_stop_thread, taps_event_loop_run, taps_event_loop_run_once
/// and taps_event_loop_process return TAPS_ERROR_INVALID_STATE. Any thread.
///
/// Returns 0, TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_STATE (it
/// already has a thread, another thread runs it, or it is shared), or
/// TAPS_ERROR_IO (the system refused a thread).
#[no_mangle]
pub extern "C" fn taps_event_loop_start_thread(event_loop: *mut EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        status(lp.0.start_thread())
    })
}

/// Stop the loop's thread and join it. Every race still establishing ends
/// with establishment_error and taps_connection_get_error() ==
/// TAPS_ERROR_LOOP_STOPPED, called on the loop's thread before it exits;
/// established connections stay so. Initiating while the thread stops
/// returns TAPS_ERROR_INVALID_STATE. Afterwards the loop can be run by the
/// caller or started again. From a callback on the loop's own thread it
/// returns 0 without joining: the thread stops when the callback returns.
///
/// Returns 0, TAPS_ERROR_NULL_ARGUMENT, or TAPS_ERROR_INVALID_STATE (no
/// thread runs the loop, or it is shared).
#[no_mangle]
pub extern "C" fn taps_event_loop_stop_thread(event_loop: *mut EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        status(lp.0.stop_thread())
    })
}

/// A handle on the shared loop of `key` (a NUL-terminated UTF-8 string, ""
/// included), which runs on its own thread. The first call for a key
/// creates the loop and starts its thread; later calls, from any thread,
/// get the same loop, until the last handle is released (the key then
/// starts afresh).
///
/// Each handle is a client of its own: use it like any taps_event_loop for
/// taps_preconnection_new; the races it initiates, their callbacks (on the
/// shared loop's thread) and user_data are its own. It cannot be run,
/// embedded, started or stopped (TAPS_ERROR_INVALID_STATE). Release it
/// with taps_event_loop_release (or taps_event_loop_free, the same).
///
/// Returns NULL on error, with taps_last_error(): TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_ARGUMENT (key is not UTF-8), TAPS_ERROR_IO (the loop
/// or its thread could not be created).
#[no_mangle]
pub extern "C" fn taps_event_loop_shared(key: *const c_char) -> *mut EventLoop {
    guard!(std::ptr::null_mut(), {
        super::log::init_from_env();
        let key = try_str!(key, Error::InvalidArgument("the shared loop key is not UTF-8"));
        handle_or_null(api::EventLoop::shared(key).map(EventLoop))
    })
}

/// Release a handle from taps_event_loop_shared: its own pending races are
/// cancelled (sockets closed, taps_connection_get_error() == TAPS_ERROR_CANCELLED,
/// no callback), and none of its connections' callbacks runs after this
/// returns (a callback running on the loop's thread is waited for); other
/// handles' races go on. Its connections stay valid handles to free. The
/// last handle of a key stops the loop's thread and joins it (not from a
/// callback of that loop: there it stops when the callback returns).
///
/// On a loop from taps_event_loop_new it is taps_event_loop_free. NULL is fine.
#[no_mangle]
pub extern "C" fn taps_event_loop_release(event_loop: *mut EventLoop) {
    guard!((), { taps_event_loop_free(event_loop) })
}

/// Free a loop. Every race still pending on it is cancelled and its
/// sockets closed, with no callback; its thread, if started, is stopped
/// and joined. Connections made on it stay valid handles: free them with
/// `taps_connection_free`. The loop's fds (epoll instance, eventfd, timerfd)
/// close when the loop and every taps_preconnection, taps_connection, pool and
/// group made on it are freed; a resolver thread still waiting in
/// getaddrinfo does not hold them. On a handle from taps_event_loop_shared it is
/// taps_event_loop_release. NULL is fine. It must be the handle's last call.
/// From a callback of this loop only when the loop runs on a thread of its
/// own (that thread then stops after the callback returns), never inside
/// taps_event_loop_run / run_once / process.
#[no_mangle]
pub extern "C" fn taps_event_loop_free(event_loop: *mut EventLoop) {
    // SAFETY: NULL, or from taps_event_loop_new(_with_options) or
    // taps_event_loop_shared and freed once, per the contract.
    guard!((), { unsafe { free_handle(event_loop) } })
}

/// Move a manual clock forward by `us` µs; what falls due runs at the next
/// taps_event_loop_run (or run_once / process) on the loop's thread. Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_STATE (not a manual clock).
#[no_mangle]
pub extern "C" fn taps_event_loop_advance_clock(event_loop: *mut EventLoop, us: u64) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        status(lp.0.advance_clock(us))
    })
}

/// The loop's clock in µs since the loop was created (a manual clock's
/// value); 0 for NULL.
#[no_mangle]
pub extern "C" fn taps_event_loop_now_us(event_loop: *const EventLoop) -> u64 {
    guard!(0, { try_ref!(event_loop, else 0).0.now_us() })
}

/// A count of callbacks as a C result, or the error's code.
fn count(r: crate::api::Result<usize>) -> c_int {
    match r {
        Ok(n) => n.min(c_int::MAX as usize) as c_int,
        Err(e) => fail(e),
    }
}
