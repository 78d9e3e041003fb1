//! The shared state behind one Connection handle: its phase, the race
//! report, the winner's socket, and the user's handler.
//!
//! Lock order: the loop's state lock, then a connection's lock; never the
//! other way round. Handlers are called with no lock held.

use super::client::Client;
use super::protocol::Transport;
use super::timers::{GroupId, PoolId};
use super::sync::{Condvar, Mutex, MutexGuard};
use super::LoopCore;
use super::callbacks::ConnCallbacks;
use crate::vocabulary::error::{Error, Result};
use crate::vocabulary::report::AttemptReport;
use crate::vocabulary::state::ConnectionState;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

/// Which user callback to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Callback {
    Ready,
    EstablishmentError,
    ConnectionError,
    Closed,
}

pub(crate) struct ConnState {
    pub phase: ConnectionState,
    /// The race running for it (race ids start at 1).
    pub race: Option<NonZeroU64>,
    /// What it has once its race ended; `None` before.
    race_result: Option<Box<RaceResult>>,
    pub handler: Option<Box<dyn ConnCallbacks>>,
    pub released: bool,
    pub in_callback: Option<ThreadId>,
    /// Signalled when a callback returns; made by the first thread that
    /// has to wait for one (rare: a free from another thread), so that a
    /// connection costs no condition variable otherwise.
    callback_done: Option<Arc<Condvar>>,
    /// The pool or group that holds it, if any.
    pub held_by: Option<HeldBy>,
}

/// What a connection has once its race ended: the race report, the error
/// of a failed race or connection, the established transport and its
/// peer. Boxed and made when first set, so that a connection still racing
/// (thousands may be in flight) carries no room for them.
#[derive(Default)]
pub(crate) struct RaceResult {
    /// The race report (see [`super::LoopCore::attempt_reports`]).
    pub attempts: Box<[AttemptReport]>,
    pub transport: Option<Transport>,
    pub remote: Option<SocketAddr>,
    pub error: Option<Error>,
    /// The DNS side of a race that asked HTTPS records (HEv3).
    pub dns: Option<Box<crate::vocabulary::report::DnsReport>>,
    /// The ALPN id the winner's security stage selected.
    pub alpn: Option<std::ffi::CString>,
}

/// The pool or group that holds a connection besides its user (one at
/// most).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeldBy {
    /// The pool (its id) it waits in or is buffered by.
    Pool(PoolId),
    /// The group (its id) and its member id there.
    Group(GroupId, u32),
}

impl ConnState {
    /// The race's result, made on first use (to set one of its fields).
    pub(crate) fn race_result(&mut self) -> &mut RaceResult {
        self.race_result.get_or_insert_with(Box::default)
    }

    /// The race report kept when the race ended (empty before).
    pub(crate) fn attempts(&self) -> &[AttemptReport] {
        self.race_result.as_ref().map_or(&[], |s| &s.attempts)
    }

    /// The DNS report kept when a race that asked HTTPS records ended.
    pub(crate) fn dns_report(&self) -> Option<&crate::vocabulary::report::DnsReport> {
        self.race_result.as_ref()?.dns.as_deref()
    }

    /// The established transport.
    pub(crate) fn transport(&self) -> Option<&Transport> {
        self.race_result.as_ref()?.transport.as_ref()
    }

    /// Take the established transport out.
    pub(crate) fn take_transport(&mut self) -> Option<Transport> {
        self.race_result.as_mut()?.transport.take()
    }

    /// The established connection's peer.
    pub(crate) fn remote(&self) -> Option<SocketAddr> {
        self.race_result.as_ref()?.remote
    }

    /// The ALPN id the winner's security stage selected.
    pub(crate) fn alpn(&self) -> Option<&std::ffi::CStr> {
        self.race_result.as_ref()?.alpn.as_deref()
    }

    /// Why the race failed, or the connection error.
    pub(crate) fn error(&self) -> Option<Error> {
        self.race_result.as_ref()?.error
    }

    /// Let go of the pool that holds it, if a pool does: its id.
    pub(crate) fn take_pool(&mut self) -> Option<PoolId> {
        match self.held_by {
            Some(HeldBy::Pool(pool)) => {
                self.held_by = None;
                Some(pool)
            }
            _ => None,
        }
    }
}

/// One connection's shared core. The loop keeps an `Arc` while a race or a
/// callback is pending; the user's `Connection` (api) owns another.
pub(crate) struct ConnCore {
    pub id: u64,
    pub lp: Arc<LoopCore>,
    /// The loop client that started it: its release cancels this
    /// connection's race and silences its callbacks.
    pub client: Arc<Client>,
    /// The security stage its race runs on each connected TCP attempt,
    /// set before the race starts (see [`super::stage`]).
    pub stage: std::sync::OnceLock<Box<super::stage::StageRace>>,
    st: Mutex<ConnState>,
}

/// Process-unique connection ids.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl ConnCore {
    pub(crate) fn new(lp: Arc<LoopCore>, client: Arc<Client>) -> Arc<ConnCore> {
        Arc::new(ConnCore {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            lp,
            client,
            stage: std::sync::OnceLock::new(),
            st: Mutex::new(ConnState {
                phase: ConnectionState::Idle,
                race: None,
                race_result: None,
                handler: None,
                released: false,
                in_callback: None,
                callback_done: None,
                held_by: None,
            }),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.st.lock()
    }

    /// Call the user's handler for `cb`, unless the connection or its
    /// client was released. No lock is held during the call, so the handler
    /// may close or free its own connection (or release its loop handle).
    pub(crate) fn invoke(self: &Arc<Self>, cb: Callback) {
        let Some(_in_client) = self.client.enter() else { return };
        let mut handler = {
            let mut st = self.lock();
            if st.released {
                return;
            }
            let Some(h) = st.handler.take() else { return };
            st.in_callback = Some(super::sync::current_thread());
            h
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.call(self, cb)));
        let leftover = {
            let mut st = self.lock();
            st.in_callback = None;
            if let Some(done) = &st.callback_done {
                done.notify_all();
            }
            if st.released || st.handler.is_some() {
                Some(handler)
            } else {
                st.handler = Some(handler);
                None
            }
        };
        drop(leftover);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    /// Give the connection the handler its race will call.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it has one (its race started).
    pub(crate) fn install_handler(&self, handler: Box<dyn ConnCallbacks>) -> Result<()> {
        let mut c = self.lock();
        if c.handler.is_some() {
            return Err(Error::InvalidState);
        }
        c.handler = Some(handler);
        Ok(())
    }

    /// Drop the handler of a race that could not start.
    pub(crate) fn remove_handler(&self) {
        self.lock().handler = None;
    }

    /// Wait until no other thread is inside one of this connection's
    /// callbacks (a free from another thread must not pull the handle out
    /// from under a running callback).
    pub(crate) fn wait_callbacks(&self) {
        let me = super::sync::current_thread();
        let mut st = self.lock();
        while matches!(st.in_callback, Some(t) if t != me) {
            let done = Arc::clone(st.callback_done.get_or_insert_with(|| Arc::new(Condvar::new())));
            st = done.wait(st);
        }
    }
}
