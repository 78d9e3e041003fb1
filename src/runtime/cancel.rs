//! Ending things early: a user closing or releasing a connection, a
//! client releasing its handle of a shared loop, the loop being freed
//! (races given up this way end without a callback, see `let_go`), the
//! loop's own thread stopping (its races end with `LoopStopped`).

use crate::vocabulary::state::ConnectionState;
use crate::vocabulary::error::Error;
use super::protocol::{self, Transport};
use super::conn::{Callback, ConnCore};
use super::group::Groups;
use super::pool::Pools;
use super::client::Client;
use super::timers::RaceId;
use super::{lock, LoopCore, LoopState};
use std::num::NonZeroU64;
use std::sync::Arc;

impl LoopCore {
    /// The user released its handle: cancel the race, close the socket,
    /// drop the handler; no callback follows. Waits for a callback of this
    /// connection running on another thread to return.
    pub(crate) fn release(&self, conn: &Arc<ConnCore>) {
        let handler = {
            let mut st = lock(&self.state);
            let (race, transport, handler, pool) = {
                let mut c = conn.lock();
                c.released = true;
                (c.race.take(), c.take_transport(), c.handler.take(), c.take_pool())
            };
            if let Some(id) = race.map(NonZeroU64::get) {
                self.cancel_race(&mut st, id);
            }
            if let Some(pool) = pool {
                st.pools.forget_waiter(pool, conn);
            }
            if let Some(t) = transport {
                if let Transport::Tcp(token, _) = &t {
                    st.tokens.forget(*token);
                }
                // Freed, not closed gracefully: closing the fd sends the FIN
                // and takes it out of the epoll set; no shutdown or
                // deregister call needed.
                protocol::drop_transport(t);
            }
            // Callbacks still queued for it are skipped when their turn
            // comes (`invoke` sees `released`): no O(queue) search here,
            // where a handler that frees its connection in `ready` would
            // pay one per connection of the batch.
            self.sync_wake_timer(&mut st);
            self.wake_loop(&st);
            handler
        };
        conn.wait_callbacks();
        drop(handler);
    }

    /// Graceful close: a racing connection stops racing, an established one
    /// sends FIN and closes its socket; `closed` follows on the loop.
    /// Nothing happens in any other phase.
    pub(crate) fn close(&self, conn: &Arc<ConnCore>) {
        let mut st = lock(&self.state);
        let (race, transport, waiting_in) = {
            let mut c = conn.lock();
            match c.phase {
                ConnectionState::Establishing | ConnectionState::Established => {}
                _ => return,
            }
            c.phase = ConnectionState::Closed;
            (c.race.take(), c.take_transport(), c.take_pool())
        };
        if let Some(id) = race.map(NonZeroU64::get) {
            self.cancel_race(&mut st, id);
        }
        if let Some(pool) = waiting_in {
            st.pools.forget_waiter(pool, conn);
        }
        if let Some(t) = transport {
            if let Transport::Tcp(token, _) = &t {
                st.tokens.forget(*token);
            }
            protocol::close_transport(t, &self.registry);
        }
        st.callbacks.push_back((Arc::clone(conn), Callback::Closed));
        self.sync_wake_timer(&mut st);
        self.wake_loop(&st);
    }

    /// Free the loop: cancel every race (no callback), stop the resolver.
    pub(crate) fn shutdown(&self) {
        let mut st = lock(&self.state);
        st.shut_down = true;
        self.let_go(&mut st, None);
        st.queued_events.clear();
        drop(st);
        self.resolver.shutdown();
    }

    /// Cancel a race the user gave up: its sockets close, no callback.
    pub(super) fn cancel_race(&self, st: &mut LoopState, id: RaceId) {
        let now = self.clock.now();
        if let Some(entry) = st.races.get_mut(&id) {
            entry.tree.cancel(now);
            self.drive(st, id, now);
        }
    }

    /// A client let go of the loop: its pending races are cancelled (their
    /// sockets closed, [`Error::Cancelled`] readable, no callback), its
    /// queued callbacks dropped, and none of its callbacks runs after this
    /// returns. Other clients are not touched.
    pub(crate) fn release_client(&self, client: &Arc<Client>) {
        client.release();
        let mut st = lock(&self.state);
        self.let_go(&mut st, Some(client));
        self.sync_wake_timer(&mut st);
        self.wake_loop(&st);
    }

    /// Let go of everything of `client` (of every client with `None`: the
    /// loop is freed). Its pools and groups go first, so that cancelling
    /// their races does not look like failures to rebuild from; then its
    /// races are cancelled with no callback: the connection of one still
    /// establishing fails with [`Error::Cancelled`] (readable through the
    /// API, not reported) and its attempts' sockets close; then its queued
    /// callbacks are dropped. The loop's shutdown and a client's release
    /// share it.
    fn let_go(&self, st: &mut LoopState, client: Option<&Arc<Client>>) {
        let ours = |c: &Arc<Client>| client.is_none_or(|mine| Arc::ptr_eq(mine, c));
        for pool in st.pools.ids_of(client) {
            Pools::free_locked(self, st, pool);
        }
        for group in st.groups.ids_of(client) {
            Groups::free_locked(self, st, group);
        }
        let races: Vec<RaceId> = st.races.iter().filter(|(_, e)| ours(&e.conn.client)).map(|(id, _)| id).collect();
        for id in races {
            if let Some(entry) = st.races.get(&id) {
                let mut c = entry.conn.lock();
                c.race = None;
                if c.phase == ConnectionState::Establishing {
                    c.phase = ConnectionState::Failed;
                    c.race_result().error = Some(Error::Cancelled);
                }
            }
            self.cancel_race(st, id);
        }
        st.callbacks.retain(|(conn, _)| !ours(&conn.client));
    }

    /// The loop's own thread stops: every race is cancelled, and one still
    /// establishing ends with `establishment_error` ([`Error::LoopStopped`])
    /// delivered on that thread before it exits.
    pub(super) fn stop_races(&self, st: &mut LoopState) {
        let ids: Vec<RaceId> = st.races.keys().collect();
        for id in ids {
            let conn = st.races.get(&id).map(|e| Arc::clone(&e.conn));
            // A race still establishing ends with establishment_error ...
            self.cancel_race(st, id);
            // ... that says why.
            if let Some(conn) = conn {
                let mut c = conn.lock();
                if c.phase == ConnectionState::Failed && c.error() == Some(Error::Cancelled) {
                    c.race_result().error = Some(Error::LoopStopped);
                }
            }
        }
    }
}
