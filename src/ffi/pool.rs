//! C ABI: taps_connection_pool.

use super::connection::{start_connection, Connection, ConnectionCallbacks};
use super::preconnection::Preconnection;
use super::handle::{free_handle, handle_or_null, try_mut, try_ok, try_ref, Boxed};
use super::{c_enum, c_struct, fail, guard, read_growable};
use crate::api::{self, Error};
use std::ffi::{c_int, c_void};

/// A pool of connections from one taps_preconnection: several attempts raced at
/// once, a warm buffer, backoff when all fail. Free with
/// taps_connection_pool_free.
pub struct ConnectionPool(pub(crate) api::ConnectionPool);

impl Boxed for ConnectionPool {}

/// What happened in a pool, for observability.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolEventKind {
    /// A race started with `count` attempts.
    RaceStarted,
    /// An attempt became ready after `elapsed_us`.
    AttemptSucceeded,
    /// An attempt failed after `elapsed_us` with `os_error`.
    AttemptFailed,
    /// A race was won `elapsed_us` after it started.
    RaceWon,
    /// Every attempt of a race failed (`os_error`: the last errno).
    RaceFailed,
    /// A ready connection went into the buffer.
    ConnectionBuffered,
    /// A connection was closed: the buffer was full, it was idle too
    /// long, or it failed while buffered.
    ConnectionDisposed,
    /// The next race waits `elapsed_us` µs.
    Backoff,
}

c_enum!(PoolEventKind <=> api::PoolEventKind, "not a taps_pool_event_kind", [
    RaceStarted,
    AttemptSucceeded,
    AttemptFailed,
    RaceWon,
    RaceFailed,
    ConnectionBuffered,
    ConnectionDisposed,
    Backoff,
]);

/// One pool event.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolEvent {
    /// What happened.
    pub kind: PoolEventKind,
    /// Attempts started (RaceStarted), else 0.
    pub count: u32,
    /// A duration in µs, per kind.
    pub elapsed_us: u64,
    /// An errno (AttemptFailed, RaceFailed), else 0.
    pub os_error: i32,
}

impl From<&api::PoolEvent> for PoolEvent {
    fn from(e: &api::PoolEvent) -> PoolEvent {
        PoolEvent { kind: e.kind.into(), count: e.count, elapsed_us: e.elapsed_us, os_error: e.os_error }
    }
}

/// A pool's options, from taps_pool_options_default().
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// sizeof(taps_pool_options) of the caller's header, in bytes:
    /// taps_pool_options_default() sets it; 0 means this header's full
    /// struct. The library reads the fields that fit and takes the default
    /// for the rest (docs/ABI.md).
    pub struct_size: u32,
    /// Ready connections kept warm: the pool races to refill the buffer
    /// up to this many. Default 0 (no buffer: race on demand only).
    pub buffer_size: u32,
    /// Most connections the buffer holds; spares beyond it are closed.
    /// Default 8; at least buffer_size.
    pub max_size: u32,
    /// Attempts raced at once when a caller waits (taps_racing_options'
    /// race_count for on-demand races). Default 3, 1 to 64.
    pub race_count: u32,
    /// Attempts raced at once to refill the buffer. Default 1 (refill
    /// conservatively), 1 to 64.
    pub refill_race_count: u32,
    /// First backoff after a race whose attempts all failed, ms. Default
    /// 1000.
    pub backoff_initial_ms: u32,
    /// Growth of the backoff per failed race, percent (200 = ×2). Default
    /// 200, 100 to 1000.
    pub backoff_multiplier_percent: u32,
    /// Largest backoff, ms. Default 60000.
    pub backoff_max_ms: u32,
    /// Random spread of each backoff, ± percent of it. Default 0, at most
    /// 100.
    pub backoff_jitter_percent: u32,
    /// Buffered connections older than this are closed and replaced, ms;
    /// 0 for no limit (default).
    pub max_idle_ms: u32,
}

c_struct!(PoolOptions "taps_pool_options" <=> api::PoolOptions {
    buffer_size,
    max_size,
    race_count,
    refill_race_count,
    backoff_initial_ms,
    backoff_multiplier_percent,
    backoff_max_ms,
    backoff_jitter_percent,
    max_idle_ms,
});

/// The pool's event callback: called on the loop's thread for each event;
/// `event` is valid during the call.
pub type PoolEventCallback = Option<extern "C" fn(event: *const PoolEvent, user_data: *mut c_void)>;

struct CEvents(extern "C" fn(*const PoolEvent, *mut c_void), *mut c_void);

// SAFETY: the C contract: the callback and user_data are used on the
// loop's thread.
unsafe impl Send for CEvents {}

impl CEvents {
    fn call(&self, e: &api::PoolEvent) {
        (self.0)(&PoolEvent::from(e), self.1)
    }
}

/// The defaults: buffer_size 0, max_size 8, race_count 3,
/// refill_race_count 1, backoff_initial_ms 1000, backoff_multiplier_percent
/// 200, backoff_max_ms 60000, backoff_jitter_percent 0, max_idle_ms 0;
/// struct_size sizeof(taps_pool_options).
#[no_mangle]
pub extern "C" fn taps_pool_options_default() -> PoolOptions {
    api::PoolOptions::default().into()
}

/// A pool racing `p`'s candidates (copied; `p` may be freed after) with
/// `opts` (NULL: the defaults). `on_event` (may be NULL) hears every
/// taps_pool_event. NULL on error, with taps_last_error():
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (opts->struct_size,
/// as for taps_preconnection_new), TAPS_ERROR_INVALID_OPTION (the message
/// names the field), TAPS_ERROR_INVALID_STATE (the loop was freed).
#[no_mangle]
pub extern "C" fn taps_connection_pool_new(
    p: *const Preconnection,
    opts: *const PoolOptions,
    on_event: PoolEventCallback,
    user_data: *mut c_void,
) -> *mut ConnectionPool {
    guard!(std::ptr::null_mut(), {
        let pre = try_ref!(p);
        let opts = if opts.is_null() {
            api::PoolOptions::default()
        } else {
            // SAFETY: the C contract: opts points at a struct of its struct_size bytes.
            try_ok!(unsafe { read_growable(opts, taps_pool_options_default()) }).into()
        };
        let events: Option<crate::api::pool::PoolEventHandler> = on_event.map(|f| {
            let c = CEvents(f, user_data);
            Box::new(move |e: &api::PoolEvent| c.call(e)) as crate::api::pool::PoolEventHandler
        });
        handle_or_null(api::ConnectionPool::new(&pre.0, &opts, events).map(ConnectionPool))
    })
}

/// Ask the pool for a connection: `*out_connection` is set at once,
/// establishing (the caller owns it: taps_connection_free). Its `ready` follows
/// with the oldest buffered connection (on the next loop turn) or the next
/// one a race makes; its `establishment_error` if the race meant to serve
/// it failed (then the pool backs off). Errors (then `*out_connection` is
/// NULL): TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_STATE,
/// TAPS_ERROR_INVALID_ARGUMENT (callbacks.struct_size, as for
/// taps_preconnection_initiate_with_racing).
#[no_mangle]
pub extern "C" fn taps_connection_pool_acquire(
    pool: *mut ConnectionPool,
    callbacks: ConnectionCallbacks,
    out_connection: *mut *mut Connection,
) -> c_int {
    guard!(fail(Error::Panic), {
        let out = try_mut!(out_connection);
        *out = std::ptr::null_mut();
        let pool = try_ref!(pool);
        start_connection(pool.0.new_connection(), callbacks, out, |c, h| pool.0.acquire_into(c, h))
    })
}

/// Connections buffered now (0 for NULL).
#[no_mangle]
pub extern "C" fn taps_connection_pool_buffered(pool: *const ConnectionPool) -> usize {
    guard!(0, {
        try_ref!(pool, else 0).0.buffered()
    })
}

/// Free a pool: its races are cancelled, its buffered connections closed,
/// connections still waiting fail with TAPS_ERROR_CANCELLED without a
/// callback (free them as usual); no event follows. Connections already
/// handed out are not affected. NULL is fine.
#[no_mangle]
pub extern "C" fn taps_connection_pool_free(pool: *mut ConnectionPool) {
    // SAFETY: NULL, or from taps_connection_pool_new and freed once.
    guard!((), { unsafe { free_handle(pool) } })
}
