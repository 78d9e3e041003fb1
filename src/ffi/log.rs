//! Logs a C program can see: the library logs with the `log` crate; this
//! file installs one [`log::Log`] for the process (once, when a C program
//! asks for logs) that forwards each record to the C callback set by
//! [`taps_set_log_callback`], or to stderr when the `TAPS_LOG` environment
//! variable asks for it.
//!
//! - Installed at most once per process (`log::set_logger`), and only when
//!   logs are asked for: a C callback, or `TAPS_LOG` read at the first
//!   loop a C call makes. A Rust program that installed its own logger
//!   first keeps it (the callback is then refused with
//!   `TAPS_ERROR_INVALID_STATE`; `TAPS_LOG` is ignored).
//! - The sink (callback or stderr, and its level) is swappable at any
//!   time; records are read under a read lock, so a callback replaced or
//!   turned off is not called after `taps_set_log_callback` returns.
//! - With logging off, `log::max_level()` is `Off`: the library's log
//!   macros stop at that check and format nothing.

use super::{fail, guard};
use crate::api::Error;
use std::ffi::{c_char, c_int, c_void, CString};
use std::io::Write;
use std::sync::{Once, RwLock};
use std::time::Instant;

/// Log levels, most severe first; a callback set at one level receives
/// records of that level and of the more severe ones.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum taps_log_level {
    /// Nothing (as a minimum level: the callback receives no record).
    TAPS_LOG_LEVEL_OFF = 0,
    /// Errors: the library could not do something it should (wake its
    /// loop, start a thread); a user callback panicked.
    TAPS_LOG_LEVEL_ERROR = 1,
    /// Warnings: something degraded (no timerfd, a pool's race could not
    /// start).
    TAPS_LOG_LEVEL_WARN = 2,
    /// One line per race start and end, per pool and group step.
    TAPS_LOG_LEVEL_INFO = 3,
    /// Each DNS answer, each attempt's start and end, with their times.
    TAPS_LOG_LEVEL_DEBUG = 4,
    /// Everything, including the event loop library's own records.
    TAPS_LOG_LEVEL_TRACE = 5,
}

super::c_enum!(
    taps_log_level,
    "min_level is not a taps_log_level (TAPS_LOG_LEVEL_OFF to TAPS_LOG_LEVEL_TRACE)",
    [
        TAPS_LOG_LEVEL_OFF,
        TAPS_LOG_LEVEL_ERROR,
        TAPS_LOG_LEVEL_WARN,
        TAPS_LOG_LEVEL_INFO,
        TAPS_LOG_LEVEL_DEBUG,
        TAPS_LOG_LEVEL_TRACE
    ]
);

impl taps_log_level {
    fn filter(self) -> log::LevelFilter {
        match self {
            Self::TAPS_LOG_LEVEL_OFF => log::LevelFilter::Off,
            Self::TAPS_LOG_LEVEL_ERROR => log::LevelFilter::Error,
            Self::TAPS_LOG_LEVEL_WARN => log::LevelFilter::Warn,
            Self::TAPS_LOG_LEVEL_INFO => log::LevelFilter::Info,
            Self::TAPS_LOG_LEVEL_DEBUG => log::LevelFilter::Debug,
            Self::TAPS_LOG_LEVEL_TRACE => log::LevelFilter::Trace,
        }
    }

    fn of(level: log::Level) -> Self {
        match level {
            log::Level::Error => Self::TAPS_LOG_LEVEL_ERROR,
            log::Level::Warn => Self::TAPS_LOG_LEVEL_WARN,
            log::Level::Info => Self::TAPS_LOG_LEVEL_INFO,
            log::Level::Debug => Self::TAPS_LOG_LEVEL_DEBUG,
            log::Level::Trace => Self::TAPS_LOG_LEVEL_TRACE,
        }
    }
}

/// A log callback: one record, its `level`, its `target` (the library's
/// module that logged, e.g. "taps_racing::runtime::drive") and its
/// `message` (one line, no trailing newline); both strings are
/// NUL-terminated and valid during the call only. See
/// `taps_set_log_callback` for the threads it runs on and what it may do.
#[allow(non_camel_case_types)]
pub type taps_log_callback = Option<
    unsafe extern "C" fn(level: taps_log_level, target: *const c_char, message: *const c_char, user_data: *mut c_void),
>;

/// Where records go.
#[derive(Clone, Copy)]
enum Sink {
    Nowhere,
    Stderr,
    /// The callback and its user_data (an address: the C side owns it).
    Callback(unsafe extern "C" fn(taps_log_level, *const c_char, *const c_char, *mut c_void), usize),
}

struct State {
    sink: Sink,
    level: log::LevelFilter,
}

static STATE: RwLock<State> = RwLock::new(State { sink: Sink::Nowhere, level: log::LevelFilter::Off });

/// Whether `log::set_logger` installed ours (once per process).
static INSTALLED: once_cell::sync::OnceCell<bool> = once_cell::sync::OnceCell::new();

/// When the first record was written to stderr: its lines count from it.
static FIRST: once_cell::sync::OnceCell<Instant> = once_cell::sync::OnceCell::new();

static BRIDGE: Bridge = Bridge;

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        STATE.read().is_ok_and(|s| metadata.level() <= s.level)
    }

    fn log(&self, record: &log::Record<'_>) {
        // Poisoned only by a panic while formatting: keep logging.
        let state = STATE.read().unwrap_or_else(|p| p.into_inner());
        if record.level() > state.level {
            return;
        }
        match state.sink {
            Sink::Nowhere => {}
            Sink::Stderr => {
                let since = FIRST.get_or_init(Instant::now).elapsed();
                let ms = since.as_secs_f64() * 1000.0;
                let line = format!("{ms:10.3} ms {:<5} {}: {}\n", record.level(), record.target(), record.args());
                // One write per line, so that lines of several threads do
                // not interleave; a failed write is dropped.
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::Callback(callback, user_data) => {
                let target = c_string(record.target().to_owned());
                let message = c_string(record.args().to_string());
                // SAFETY: the C contract of taps_set_log_callback: the
                // callback stays valid until replaced, and the strings
                // live through the call.
                unsafe {
                    callback(taps_log_level::of(record.level()), target.as_ptr(), message.as_ptr(), user_data as *mut c_void)
                };
            }
        }
    }

    fn flush(&self) {}
}

/// `text` as a C string (an inner NUL, which C would cut at, becomes a
/// space).
fn c_string(text: String) -> CString {
    CString::new(text).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.iter_mut().filter(|b| **b == 0).for_each(|b| *b = b' ');
        CString::new(bytes).unwrap_or_default()
    })
}

/// Install the bridge as the process's logger if nobody did: true when it
/// is ours (now or before).
fn install() -> bool {
    *INSTALLED.get_or_init(|| log::set_logger(&BRIDGE).is_ok())
}

/// Make `sink` at `level` the destination of the library's records.
fn set_sink(sink: Sink, level: log::LevelFilter) {
    let mut state = STATE.write().unwrap_or_else(|p| p.into_inner());
    let level = if matches!(sink, Sink::Nowhere) { log::LevelFilter::Off } else { level };
    *state = State { sink, level };
    log::set_max_level(level);
}

/// The level `TAPS_LOG` names (error, warn, info, debug, trace; any case).
fn env_level(value: &str) -> Option<log::LevelFilter> {
    match value.trim().to_ascii_lowercase().as_str() {
        "error" => Some(log::LevelFilter::Error),
        "warn" | "warning" => Some(log::LevelFilter::Warn),
        "info" => Some(log::LevelFilter::Info),
        "debug" => Some(log::LevelFilter::Debug),
        "trace" => Some(log::LevelFilter::Trace),
        _ => None,
    }
}

/// Read `TAPS_LOG` once per process (the C functions that make a loop
/// call this): when it names a level and no callback was set, log to
/// stderr at that level. Any other value, or none, changes nothing.
pub(crate) fn init_from_env() {
    static READ: Once = Once::new();
    READ.call_once(|| {
        let Some(level) = std::env::var("TAPS_LOG").ok().as_deref().and_then(env_level) else { return };
        let callback_set = STATE.read().is_ok_and(|s| matches!(s.sink, Sink::Callback(..)));
        if !callback_set && install() {
            set_sink(Sink::Stderr, level);
        }
    });
}

/// Send the library's log records at `min_level` and the more severe
/// levels to `callback`, with `user_data`; a NULL `callback` turns it off
/// (nothing is logged then, not even to stderr). Returns 0,
/// TAPS_ERROR_INVALID_ARGUMENT for a `min_level` that is not a
/// taps_log_level, or TAPS_ERROR_INVALID_STATE when the process already
/// installed another logger of the Rust `log` crate (a Rust program that
/// set up its own: the records go to it, this callback is not set).
///
/// Process-wide: one callback for every loop; a later call replaces it,
/// and after the call returns the previous callback is no longer called.
/// It replaces the stderr output that the `TAPS_LOG` environment variable
/// turns on.
///
/// The callback runs on the thread that logs: usually the thread running
/// an event loop, also threads calling the API (a race that fails to
/// start) and the library's own threads (resolver workers, a loop's own
/// thread). It may therefore be called concurrently from several threads,
/// and must be thread-safe. It must not call back into the library, except
/// taps_strerror, and must not block for long (the loop waits for it).
/// Any thread.
#[no_mangle]
pub extern "C" fn taps_set_log_callback(min_level: c_int, callback: taps_log_callback, user_data: *mut c_void) -> c_int {
    guard!(super::TapsError::TAPS_ERROR_PANIC as c_int, {
        let level = match taps_log_level::try_from(min_level) {
            Ok(level) => level,
            Err(e) => return fail(e),
        };
        let Some(callback) = callback else {
            if INSTALLED.get() == Some(&true) {
                set_sink(Sink::Nowhere, log::LevelFilter::Off);
            }
            return 0;
        };
        if !install() {
            return fail(Error::InvalidState);
        }
        set_sink(Sink::Callback(callback, user_data as usize), level.filter());
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_convert_both_ways_and_reject_others() {
        assert_eq!(taps_log_level::try_from(4), Ok(taps_log_level::TAPS_LOG_LEVEL_DEBUG));
        assert!(taps_log_level::try_from(6).is_err());
        assert!(taps_log_level::try_from(-1).is_err());
        assert_eq!(taps_log_level::of(log::Level::Warn).filter(), log::LevelFilter::Warn);
        assert_eq!(taps_set_log_callback(9, None, std::ptr::null_mut()), super::super::TapsError::TAPS_ERROR_INVALID_ARGUMENT as c_int);
    }

    #[test]
    fn taps_log_names_a_level_in_any_case() {
        assert_eq!(env_level("DEBUG"), Some(log::LevelFilter::Debug));
        assert_eq!(env_level(" trace\n"), Some(log::LevelFilter::Trace));
        assert_eq!(env_level("verbose"), None);
        assert_eq!(env_level(""), None);
    }

    #[test]
    fn an_inner_nul_becomes_a_space() {
        assert_eq!(c_string("a\0b".to_owned()).as_bytes(), b"a b");
    }
}
