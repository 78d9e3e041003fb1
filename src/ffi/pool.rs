//! C ABI: ConnectionPool.

use super::connection::{start_connection, Connection, ConnectionCallbacks};
use super::preconnection::Preconnection;
use super::handle::{free_handle, handle_or_null, opt_ref, try_mut, try_ref, Boxed};
use super::{fail, guard};
use crate::api::{self, Error, PoolEvent, PoolOptions};
use std::ffi::{c_int, c_void};

/// A pool of connections from one Preconnection: several attempts raced at
/// once, a warm buffer, backoff when all fail. Free with
/// connection_pool_free.
pub struct ConnectionPool(pub(crate) api::ConnectionPool);

impl Boxed for ConnectionPool {}

/// The pool's event callback: called on the loop's thread for each event;
/// `event` is valid during the call.
pub type PoolEventCallback = Option<extern "C" fn(event: *const PoolEvent, user_data: *mut c_void)>;

struct CEvents(extern "C" fn(*const PoolEvent, *mut c_void), *mut c_void);

// SAFETY: the C contract: the callback and user_data are used on the
// loop's thread.
unsafe impl Send for CEvents {}

impl CEvents {
    fn call(&self, e: &PoolEvent) {
        (self.0)(e, self.1)
    }
}

/// The defaults: buffer_size 0, max_size 8, race_count 3,
/// refill_race_count 1, backoff_initial_ms 1000, backoff_multiplier_percent
/// 200, backoff_max_ms 60000, backoff_jitter_percent 0, max_idle_ms 0.
#[no_mangle]
pub extern "C" fn pool_options_default() -> PoolOptions {
    PoolOptions::default()
}

/// A pool racing `p`'s candidates (copied; `p` may be freed after) with
/// `opts` (NULL: the defaults). `on_event` (may be NULL) hears every
/// PoolEvent. NULL on error, with taps_last_error():
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_OPTION (the message names
/// the field), TAPS_ERROR_INVALID_STATE (the loop was freed).
#[no_mangle]
pub extern "C" fn connection_pool_new(
    p: *const Preconnection,
    opts: *const PoolOptions,
    on_event: PoolEventCallback,
    user_data: *mut c_void,
) -> *mut ConnectionPool {
    guard!(std::ptr::null_mut(), {
        let pre = try_ref!(p);
        let opts = opt_ref!(opts).copied().unwrap_or_default();
        let events: Option<crate::api::pool::PoolEventHandler> = on_event.map(|f| {
            let c = CEvents(f, user_data);
            Box::new(move |e: &PoolEvent| c.call(e)) as crate::api::pool::PoolEventHandler
        });
        handle_or_null(api::ConnectionPool::new(&pre.0, &opts, events).map(ConnectionPool))
    })
}

/// Ask the pool for a connection: `*out_connection` is set at once,
/// establishing (the caller owns it: connection_free). Its `ready` follows
/// with the oldest buffered connection (on the next loop turn) or the next
/// one a race makes; its `establishment_error` if the race meant to serve
/// it failed (then the pool backs off). Errors (then `*out_connection` is
/// NULL): TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_STATE.
#[no_mangle]
pub extern "C" fn connection_pool_acquire(
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
pub extern "C" fn connection_pool_buffered(pool: *const ConnectionPool) -> usize {
    guard!(0, {
        try_ref!(pool, else 0).0.buffered()
    })
}

/// Free a pool: its races are cancelled, its buffered connections closed,
/// connections still waiting fail with TAPS_ERROR_CANCELLED without a
/// callback (free them as usual); no event follows. Connections already
/// handed out are not affected. NULL is fine.
#[no_mangle]
pub extern "C" fn connection_pool_free(pool: *mut ConnectionPool) {
    // SAFETY: NULL, or from connection_pool_new and freed once.
    guard!((), { unsafe { free_handle(pool) } })
}
