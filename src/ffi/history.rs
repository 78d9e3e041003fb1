//! C ABI: the loop's history of earlier races (HEv3 draft -04 §5.3, §6;
//! RFC 8305 §4, §5; RFC 9623 §9.2): switch, clear, size, export, import, and what a race's attempt got from it.

use super::event_loop::EventLoop;
use super::handle::{try_ok, try_ref, try_str};
use super::{fail, guard};
use crate::api::Error;
use std::ffi::{c_char, c_int};

/// Turn the loop's history of earlier races on (`enabled` true, the
/// default) or off. With history, each race sorts the addresses that
/// failed recently on this network behind the others, addresses with a
/// lower RTT and used before first (HEv3 draft -04 §5.3), and its
/// Connection Attempt Delay follows the RTTs known when it is the default
/// 250 ms (3 × RTT, within 100 ms to 2 s; RFC 8305 §5). Off, races neither
/// consult nor feed it; what it holds is kept (taps_event_loop_clear_history
/// forgets it). Per loop: on a shared loop it applies to every client; its
/// pools and groups use the same history. Any thread.
///
/// Returns 0 or TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_event_loop_set_history(event_loop: *mut EventLoop, enabled: bool) -> c_int {
    guard!(fail(Error::Panic), {
        try_ref!(event_loop).0.set_history(enabled);
        0
    })
}

/// Forget everything the loop's history holds. Any thread.
///
/// Returns 0 or TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_event_loop_clear_history(event_loop: *mut EventLoop) -> c_int {
    guard!(fail(Error::Panic), {
        try_ref!(event_loop).0.clear_history();
        0
    })
}

/// How much the loop's history holds: `*entries` (destination × protocol ×
/// network, at most 256) and `*bytes` (memory of its tables, an estimate);
/// either pointer may be NULL. Any thread.
///
/// Returns 0 or TAPS_ERROR_NULL_ARGUMENT (no loop).
#[no_mangle]
pub extern "C" fn taps_event_loop_history_size(event_loop: *mut EventLoop, entries: *mut usize, bytes: *mut usize) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = &try_ref!(event_loop).0;
        // SAFETY: the C contract: NULL or valid for a write.
        if let Some(e) = unsafe { entries.as_mut() } {
            *e = lp.history_len();
        }
        // SAFETY: as above.
        if let Some(b) = unsafe { bytes.as_mut() } {
            *b = lp.history_memory();
        }
        0
    })
}

/// Write the loop's history as text into `buf` (`size` bytes, NUL
/// included), in the versioned format of docs/guide/history.md (first line
/// "taps-racing-history 1"). It names the hosts this loop connected to:
/// keep it private. With `buf` NULL or too small, nothing is written.
/// Any thread.
///
/// Returns the text's length in bytes without its NUL (>= 0: when it is
/// `size` or more, call again with a larger buffer), or
/// TAPS_ERROR_NULL_ARGUMENT (no loop).
#[no_mangle]
pub extern "C" fn taps_event_loop_export_history(event_loop: *mut EventLoop, buf: *mut c_char, size: usize) -> c_int {
    guard!(fail(Error::Panic), {
        let text = try_ref!(event_loop).0.export_history();
        let n = text.len();
        if !buf.is_null() && n < size {
            // SAFETY: the C contract: buf is valid for `size` bytes, n + 1 <= size.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
        }
        c_int::try_from(n).unwrap_or(c_int::MAX)
    })
}

/// Add the entries of `text` (NUL-terminated, as written by
/// taps_event_loop_export_history, from this or another process) to the
/// loop's history; expired entries are skipped. Any thread.
///
/// Returns the number of entries read (>= 0), TAPS_ERROR_NULL_ARGUMENT, or
/// TAPS_ERROR_INVALID_ARGUMENT (not UTF-8, another version, a line that
/// cannot be read; nothing is taken then).
#[no_mangle]
pub extern "C" fn taps_event_loop_import_history(event_loop: *mut EventLoop, text: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        let text = try_str!(text, Error::InvalidArgument("the history text is not UTF-8"));
        match lp.0.import_history(text) {
            Ok(n) => c_int::try_from(n).unwrap_or(c_int::MAX),
            Err(e) => fail(e),
        }
    })
}

/// What the loop's history knew of attempt `index`'s destination (start
/// order) when its race sorted it (HEv3 draft -04 §5.3), as text: "12.0 ms
/// RTT, used, 3 race(s) ago", or "failed recently (errno 111), 2 race(s)
/// ago"; empty when history knew nothing of it (or was off). Written with
/// its NUL into `buf` when `size` is larger than its length (with `buf`
/// NULL or too small, nothing is written). Any thread.
///
/// Returns the text's length in bytes without its NUL (>= 0), or
/// TAPS_ERROR_NULL_ARGUMENT (no connection), TAPS_ERROR_OUT_OF_RANGE
/// (index >= taps_connection_attempt_count).
#[no_mangle]
pub extern "C" fn taps_connection_get_attempt_history(
    c: *const super::connection::Connection,
    index: usize,
    buf: *mut c_char,
    size: usize,
) -> c_int {
    guard!(fail(Error::Panic), {
        let report = try_ok!(try_ref!(c).api().attempt(index));
        let text = report.history.map(|h| h.to_string()).unwrap_or_default();
        let n = text.len();
        if !buf.is_null() && n < size {
            // SAFETY: the C contract: buf is valid for `size` bytes, n + 1 <= size.
            unsafe {
                std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), n);
                *buf.add(n) = 0;
            }
        }
        c_int::try_from(n).unwrap_or(c_int::MAX)
    })
}
