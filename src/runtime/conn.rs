//! The shared state behind one Connection handle: its phase, the race
//! report, the winner's socket, and the user's handler.
//!
//! Lock order: the loop's state lock, then a connection's lock; never the
//! other way round. Handlers are called with no lock held.

use super::client::Client;
use super::protocol::Transport;
use super::sync::{Condvar, Mutex, MutexGuard};
use super::LoopShared;
use crate::api::connection::{AttemptReport, Connection, ConnectionHandler};
use crate::api::error::Error;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::ThreadId;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Made, race not started.
    Idle,
    /// The race is running.
    Establishing,
    /// The race was won; the socket is the connection's.
    Established,
    /// Closed by the user, or ended by a connection error.
    Closed,
    /// The race failed (establishment error).
    Failed,
}

/// Which user callback to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Callback {
    Ready,
    EstablishmentError,
    ConnectionError,
    Closed,
}

pub(crate) struct ConnState {
    pub phase: Phase,
    /// The race running for it (race ids start at 1).
    pub race: Option<NonZeroU64>,
    /// What it has once its race ended; `None` before.
    settled: Option<Box<Settled>>,
    pub handler: Option<Box<dyn ConnectionHandler>>,
    pub released: bool,
    pub in_callback: Option<ThreadId>,
    /// Signalled when a callback returns; made by the first thread that
    /// has to wait for one (rare: a free from another thread), so that a
    /// connection costs no condition variable otherwise.
    callback_done: Option<Arc<Condvar>>,
    /// The pool or group that holds it, if any.
    pub holder: Option<Holder>,
}

/// What a connection has once its race ended: the race report, the error
/// of a failed race or connection, the established transport and its
/// peer. Boxed and made when first set, so that a connection still racing
/// (thousands may be in flight) carries no room for them.
#[derive(Default)]
pub(crate) struct Settled {
    /// The race report (see [`super::LoopShared::attempt_reports`]).
    pub attempts: Box<[AttemptReport]>,
    pub transport: Option<Transport>,
    pub remote: Option<SocketAddr>,
    pub error: Option<Error>,
}

/// Who holds a connection besides its user (one at most).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The pool (its id) it waits in or is buffered by.
    Pool(u64),
    /// The group (its id) and its member id there.
    Group(u64, u32),
}

impl ConnState {
    /// The settled part, made on first use (to set one of its fields).
    pub(crate) fn settled(&mut self) -> &mut Settled {
        self.settled.get_or_insert_with(Box::default)
    }

    /// The race report kept when the race ended (empty before).
    pub(crate) fn attempts(&self) -> &[AttemptReport] {
        self.settled.as_ref().map_or(&[], |s| &s.attempts)
    }

    /// The established transport.
    pub(crate) fn transport(&self) -> Option<&Transport> {
        self.settled.as_ref()?.transport.as_ref()
    }

    /// Take the established transport out.
    pub(crate) fn take_transport(&mut self) -> Option<Transport> {
        self.settled.as_mut()?.transport.take()
    }

    /// The established connection's peer.
    pub(crate) fn remote(&self) -> Option<SocketAddr> {
        self.settled.as_ref()?.remote
    }

    /// Why the race failed, or the connection error.
    pub(crate) fn error(&self) -> Option<Error> {
        self.settled.as_ref()?.error
    }

    /// Let go of the pool that holds it, if a pool does: its id.
    pub(crate) fn take_pool(&mut self) -> Option<u64> {
        match self.holder {
            Some(Holder::Pool(pool)) => {
                self.holder = None;
                Some(pool)
            }
            _ => None,
        }
    }
}

/// One connection's shared core. The loop keeps an `Arc` while a race or a
/// callback is pending; the user's [`Connection`] owns another.
pub(crate) struct ConnCore {
    pub id: u64,
    pub lp: Arc<LoopShared>,
    /// The loop client that started it: its release cancels this
    /// connection's race and silences its callbacks.
    pub client: Arc<Client>,
    st: Mutex<ConnState>,
}

/// Process-unique connection ids.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl ConnCore {
    pub(crate) fn new(lp: Arc<LoopShared>, client: Arc<Client>) -> Arc<ConnCore> {
        Arc::new(ConnCore {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            lp,
            client,
            st: Mutex::new(ConnState {
                phase: Phase::Idle,
                race: None,
                settled: None,
                handler: None,
                released: false,
                in_callback: None,
                callback_done: None,
                holder: None,
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
        let view = Connection::view(Arc::clone(self));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cb {
            Callback::Ready => handler.ready(&view),
            Callback::EstablishmentError => handler.establishment_error(&view),
            Callback::ConnectionError => handler.connection_error(&view),
            Callback::Closed => handler.closed(&view),
        }));
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
