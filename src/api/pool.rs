//! ConnectionPool: several attempts raced at once for expensive
//! connections, a warm buffer of ready ones, backoff when every attempt
//! fails (see `engine::pool` for the policy).

use super::connection::{Connection, ConnectionHandler, Handler};
use super::error::{Error, Result};
use super::preconnection::Preconnection;
use crate::runtime::pool::{OwnedSpec, PoolCore, Pools};
use crate::runtime::LoopCore;
use crate::engine::pool::PoolConfig;
use std::sync::Arc;

pub use crate::vocabulary::events::{PoolEvent, PoolEventHandler, PoolEventKind};

/// A pool's options (C: `PoolOptions`, from `pool_options_default`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Ready connections kept warm: the pool races to refill the buffer
    /// up to this many. Default 0 (no buffer: race on demand only).
    pub buffer_size: u32,
    /// Most connections the buffer holds; spares beyond it are closed.
    /// Default 8; at least buffer_size.
    pub max_size: u32,
    /// Attempts raced at once when a caller waits (RacingOptions'
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

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            buffer_size: 0,
            max_size: 8,
            race_count: 3,
            refill_race_count: 1,
            backoff_initial_ms: 1000,
            backoff_multiplier_percent: 200,
            backoff_max_ms: 60_000,
            backoff_jitter_percent: 0,
            max_idle_ms: 0,
        }
    }
}

impl PoolOptions {
    /// Check and convert.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the field out of range.
    pub fn to_config(&self) -> Result<PoolConfig> {
        if !(1..=64).contains(&self.race_count) {
            return Err(Error::InvalidOption("race_count must be 1 to 64"));
        }
        if !(1..=64).contains(&self.refill_race_count) {
            return Err(Error::InvalidOption("refill_race_count must be 1 to 64"));
        }
        if self.max_size < self.buffer_size || self.max_size > 4096 {
            return Err(Error::InvalidOption("max_size must be at least buffer_size and at most 4096"));
        }
        if !(100..=1000).contains(&self.backoff_multiplier_percent) {
            return Err(Error::InvalidOption("backoff_multiplier_percent must be 100 to 1000"));
        }
        if self.backoff_jitter_percent > 100 {
            return Err(Error::InvalidOption("backoff_jitter_percent must be at most 100"));
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            return Err(Error::InvalidOption("backoff_max_ms must be at least backoff_initial_ms"));
        }
        let ms = |v: u32| v as u64 * 1000;
        Ok(PoolConfig {
            buffer_size: self.buffer_size as usize,
            max_size: self.max_size as usize,
            race_count: self.race_count as usize,
            refill_race_count: self.refill_race_count as usize,
            backoff_initial: ms(self.backoff_initial_ms),
            backoff_multiplier_percent: self.backoff_multiplier_percent,
            backoff_max: ms(self.backoff_max_ms),
            backoff_jitter_percent: self.backoff_jitter_percent,
            max_idle: (self.max_idle_ms > 0).then(|| ms(self.max_idle_ms)),
        })
    }
}

/// A pool of connections made from one Preconnection. Dropping it cancels
/// its races, closes its buffered connections and fails its waiting
/// connections with [`Error::Cancelled`] (no callback); no event follows.
///
/// # Examples
///
/// Race three attempts at once; the winner serves the caller, the other
/// ready ones go into the buffer (up to `max_size`):
///
/// ```
/// use taps_racing::api::*;
/// use std::time::Duration;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let lp = EventLoop::new()?;
/// let mut ep = RemoteEndpoint::new();
/// ep.with_hostname("127.0.0.1")?.with_port(listener.local_addr()?.port())?;
/// let pre = Preconnection::new(&lp, &[ep], None, None)?;
/// let options = PoolOptions { race_count: 3, ..PoolOptions::default() };
/// let pool = ConnectionPool::new(&pre, &options, None)?;
/// struct Quiet;
/// impl ConnectionHandler for Quiet {}
/// let conn = pool.acquire(Box::new(Quiet))?;
/// while conn.state() != ConnectionState::Established {
///     lp.run_once(Some(Duration::from_secs(5)))?;
/// }
/// // The two other attempts became spares in the buffer.
/// while pool.buffered() < 2 {
///     lp.run_once(Some(Duration::from_secs(5)))?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// cbindgen:ignore
pub struct ConnectionPool {
    lp: Arc<LoopCore>,
    core: Arc<PoolCore>,
    pre: Preconnection,
}

impl ConnectionPool {
    /// A pool racing `pre`'s candidates (copied) with `options`; `events`
    /// is called on the loop's thread for each [`PoolEvent`].
    ///
    /// # Errors
    /// [`Error::InvalidOption`] from [`PoolOptions::to_config`];
    /// [`Error::InvalidState`] if the loop was freed.
    pub fn new(pre: &Preconnection, options: &PoolOptions, events: Option<PoolEventHandler>) -> Result<ConnectionPool> {
        let config = options.to_config()?;
        let spec: OwnedSpec = pre.owned_spec();
        let core = Pools::create(pre.loop_shared(), spec, config, events, pre.client())?;
        Ok(ConnectionPool { lp: Arc::clone(pre.loop_shared()), core, pre: pre.clone() })
    }

    /// Ask for a connection: returns it at once, establishing; its
    /// handler's `ready` follows with the oldest buffered connection (on
    /// the next loop turn) or the next one a race makes, its
    /// `establishment_error` if the race meant to serve it failed.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the pool's loop was freed.
    pub fn acquire(&self, handler: Box<dyn ConnectionHandler>) -> Result<Connection> {
        let conn = self.new_connection();
        self.acquire_into(&conn, handler)?;
        Ok(conn)
    }

    /// A Connection not yet waiting, for [`ConnectionPool::acquire_into`]
    /// (bindings that need the handle before a callback can run).
    pub fn new_connection(&self) -> Connection {
        self.pre.new_connection()
    }

    /// [`ConnectionPool::acquire`] for a connection from
    /// [`ConnectionPool::new_connection`].
    ///
    /// # Errors
    /// As [`ConnectionPool::acquire`]; [`Error::InvalidState`] if `conn`
    /// already started.
    pub fn acquire_into(&self, conn: &Connection, handler: Box<dyn ConnectionHandler>) -> Result<()> {
        conn.core.install_handler(Box::new(Handler(handler)))?;
        let r = Pools::acquire(&self.lp, self.core.id, &conn.core);
        if r.is_err() {
            conn.core.remove_handler();
        }
        r
    }

    /// Connections buffered now.
    pub fn buffered(&self) -> usize {
        Pools::buffered(&self.lp, self.core.id)
    }
}

impl Drop for ConnectionPool {
    fn drop(&mut self) {
        Pools::free(&self.lp, self.core.id);
    }
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool").field("id", &self.core.id).finish()
    }
}
