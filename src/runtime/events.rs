//! What wakes the loop: one poll and its socket events (a connect that
//! completed or failed, an error or hang-up on an established
//! connection), resolver answers and user-protocol completions queued from
//! other threads, due timers, and arming the timerfd for the next one.

use crate::vocabulary::state::ConnectionState;
use crate::vocabulary::error::{Error, Result};
use crate::engine::{AttemptId, Micros};
use super::protocol::{self, AttemptIo, Completion, Transport};
use super::conn::{Callback, ConnCore, HeldBy};
use super::tokens::Watched;
use super::timers::{RaceId, TimerOwner};
use super::group::Groups;
use super::pool::Pools;
use super::sys::tcp;
use super::race::NOT_ARMED;
use super::{lock, io_err, LoopCore, LoopState, WAKER, TIMER, MONITOR, Poller};
use mio::Token;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl LoopCore {
    /// Poll once (at most `timeout`), then handle what came: queued
    /// answers and completions, socket events, due timers.
    pub(super) fn poll_once(&self, timeout: Option<Duration>) -> Result<()> {
        let mut poller = lock(&self.poller);
        let Poller { poll, events } = &mut *poller;
        match poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(io_err(e)),
        }
        let mut st = lock(&self.state);
        let now = self.clock.now();
        // Answers and completions queued from other threads (checked on
        // every pass: the waker's event may have been consumed before).
        self.take_queues(&mut st, now);
        for event in events.iter() {
            match event.token() {
                WAKER => {
                    self.wake_pending.store(false, Ordering::Release);
                }
                TIMER => {
                    if let Some(t) = st.wake_timer.as_mut() {
                        t.acknowledge();
                    }
                }
                MONITOR => self.connectivity.on_readable(),
                token => self.socket_event(&mut st, token, event, now),
            }
        }
        drop(poller);
        self.fire_timers(&mut st, now);
        self.sync_wake_timer(&mut st);
        Ok(())
    }

    /// A readiness event on one of the loop's sockets: a racing attempt's
    /// or an established connection's.
    fn socket_event(&self, st: &mut LoopState, token: Token, event: &mio::event::Event, now: Micros) {
        match st.tokens.get(token) {
            Some(Watched::Attempt { race, attempt }) => self.attempt_event(st, race, attempt, event, now),
            Some(Watched::Established(weak)) => {
                if let Some(conn) = weak.upgrade() {
                    self.connection_event(st, token, &conn, event, now);
                }
            }
            Some(Watched::Dns { exchange, server }) => self.exchange_readable(st, exchange, server, now),
            None => {}
        }
    }

    /// A racing TCP attempt's socket: connected, failed, or not yet.
    fn attempt_event(&self, st: &mut LoopState, id: RaceId, attempt: AttemptId, event: &mio::event::Event, now: Micros) {
        let Some(entry) = st.races.get_mut(&id) else { return };
        let stream = match entry.io.get(attempt) {
            Some(AttemptIo::Tcp(_, stream)) => stream,
            Some(AttemptIo::Stage(_)) => return LoopCore::stage_event(entry, attempt, event),
            _ => return,
        };
        let writable = event.is_writable() && !event.is_error() && !event.is_write_closed();
        match tcp::progress_after(stream, Some(writable)) {
            tcp::Progress::Ready => self.tcp_connected(entry, id, attempt, now, &st.protocols[0]),
            tcp::Progress::Failed(errno) => {
                entry.tree.on_attempt_failed(now, attempt, errno);
                entry.log_attempt_end(id, attempt, &st.protocols);
            }
            tcp::Progress::Waiting => return,
        }
        self.drive(st, id, now);
    }

    /// An established connection's socket: on an error or hang-up it
    /// closes, and its pool, its group or its user hears of it.
    fn connection_event(
        &self,
        st: &mut LoopState,
        token: Token,
        conn: &Arc<ConnCore>,
        event: &mio::event::Event,
        now: Micros,
    ) {
        let mut c = conn.lock();
        if c.phase != ConnectionState::Established {
            return;
        }
        // A user's connection fails on an error or a full hang-up
        // (the user may still write after the peer's FIN); a pool's
        // or group's, which nobody reads, also when the peer closed.
        let owned = c.held_by.is_some();
        let hangup = event.is_read_closed() && (event.is_write_closed() || owned);
        if !(event.is_error() || hangup) {
            return;
        }
        let errno = match c.transport() {
            Some(Transport::Tcp(_, s)) => match s.take_error() {
                Ok(Some(e)) => tcp::errno(e),
                _ => libc::EPIPE,
            },
            _ => libc::EPIPE,
        };
        if let Some(t) = c.take_transport() {
            protocol::close_transport(t, &self.registry);
        }
        c.phase = ConnectionState::Closed;
        c.race_result().error = Some(Error::Io(errno));
        let held_by = c.held_by.take();
        drop(c);
        st.tokens.forget(token);
        match held_by {
            // A buffered connection: the pool replaces it.
            Some(HeldBy::Pool(pool)) => Pools::lost(self, st, pool, conn, now),
            // A group member: failover, then rebuild.
            Some(HeldBy::Group(group, member)) => Groups::member_lost(self, st, group, member as usize, now),
            None => st.callbacks.push_back((Arc::clone(conn), Callback::ConnectionError)),
        }
    }

    /// Feed queued resolver answers and protocol completions to their
    /// races; returns how many there were.
    pub(super) fn take_queues(&self, st: &mut LoopState, now: Micros) -> usize {
        let answers = self.resolver.take_answers();
        let tcp = self.resolver.take_tcp_replies();
        let completions = std::mem::take(&mut *lock(&self.completions));
        let n = self.take_service_answers(st) + tcp.len() + answers.len() + completions.len();
        self.on_tcp_replies(st, tcp, now);
        for answer in answers {
            self.feed_answer(st, answer, now);
        }
        // Mark every ready attempt first: when one of them wins, the others
        // that reported ready in the same batch are closed, not cancelled.
        // A completion whose attempt the race already let go of (it ended,
        // or cancelled it while the protocol completed it) is an orphan: a
        // ready connection is closed.
        let mut claimed = Vec::with_capacity(completions.len());
        for (id, attempt, completion, protocol) in &completions {
            let io = st.races.get_mut(id).and_then(|e| e.io.get_mut(*attempt));
            let mine = match io {
                Some(AttemptIo::User { ready, .. }) => {
                    if let Completion::Ready(fd, data) = completion {
                        *ready = Some((*fd, *data));
                    }
                    true
                }
                Some(AttemptIo::Stage(_)) => true,
                _ => false,
            };
            if !mine {
                protocol::close_orphan(protocol, *completion);
            }
            claimed.push(mine);
        }
        for ((id, attempt, completion, _), mine) in completions.into_iter().zip(claimed) {
            if !mine {
                continue;
            }
            let Some(entry) = st.races.get_mut(&id) else { continue };
            match completion {
                Completion::Ready(..) => {
                    if !matches!(entry.io.get(attempt), Some(AttemptIo::User { .. } | AttemptIo::Stage(_))) {
                        continue;
                    }
                    entry.tree.on_attempt_ready(now, attempt);
                }
                Completion::Failed(errno) => {
                    // The protocol ended it: nothing to cancel.
                    if entry.io.remove(attempt).is_none() {
                        continue;
                    }
                    entry.tree.on_attempt_failed(now, attempt, errno);
                    entry.log_attempt_end(id, attempt, &st.protocols);
                }
            }
            self.drive(st, id, now);
        }
        n
    }

    /// A resolver's AAAA or A answer (a worker's, a user resolver's, the
    /// loop's DNS client's), to its race.
    pub(super) fn feed_answer(&self, st: &mut LoopState, answer: super::resolver::Answer, now: Micros) {
        if !st.lingering.is_empty() && st.races.get(&answer.race).is_none() {
            // A won race's late answer: into its report only.
            let count = answer.result.as_ref().map(Vec::len).map_err(|c| *c);
            self.lingering_answer(st, answer.race, Some(answer.key), answer.key.endpoint, count);
            return;
        }
        if answer.key.endpoint >= super::https::TARGET_KEY_BASE {
            return self.route_target_answer(st, answer.race, answer.key, answer.result);
        }
        let prefix = self.pref64_locked(st);
        let LoopState { races, history, protocols, .. } = &mut *st;
        let Some(entry) = races.get_mut(&answer.race) else { return };
        let mut answer = answer;
        super::nat64::on_answer(prefix, entry, &answer.key, &mut answer.result);
        let at = now.saturating_sub(entry.started_at);
        if let Ok(candidates) = answer.result.as_mut() {
            self.connectivity.prune(entry.pruning.as_deref_mut(), candidates, at);
        }
        LoopCore::note_host_answer(entry, &answer.key, &answer.result, at);
        let ttl = match answer.ttl {
            Some(ttl) if log::log_enabled!(log::Level::Debug) => format!(" (ttl {} s)", ttl.as_secs()),
            _ => String::new(),
        };
        log_answer(answer.race, &answer.key, &answer.result, at, &ttl);
        if let Ok(candidates) = &answer.result {
            history.hint_answer(&mut entry.tree, answer.race, &entry.paths, protocols, candidates, now);
        }
        entry.tree.on_answer(now, answer.key, answer.result);
        self.drive(st, answer.race, now);
    }

    /// An HTTPS answer from the library's DNS client: to the race's HEv3
    /// rules ([`LoopCore::on_service_answer`]) with its TTL in seconds (0
    /// when unknown) or its error as an EAI_* code.
    pub(super) fn system_service_answer(&self, st: &mut LoopState, answer: super::resolver::ServiceAnswer) {
        let (result, ttl) = match answer.result {
            Ok((records, ttl)) => (Ok(records), ttl.map_or(0, |t| u32::try_from(t.as_secs()).unwrap_or(u32::MAX))),
            Err(e) => (Err(e.eai()), 0),
        };
        self.on_service_answer(st, answer.race, answer.endpoint, result, ttl);
    }

    /// Hand every timer due at `now` to its owner: a race's tree, a pool, a
    /// group (a stale one, whose owner moved its deadline or is gone, is
    /// dropped).
    pub(super) fn fire_timers(&self, st: &mut LoopState, now: Micros) {
        while let Some((at, owner)) = st.timers.pop_due(now) {
            let id = match owner {
                TimerOwner::Pool(pool) => {
                    Pools::timer(self, st, pool, at, now);
                    continue;
                }
                TimerOwner::Group(group) => {
                    Groups::timer(self, st, group, at, now);
                    continue;
                }
                TimerOwner::Dns(exchange) => {
                    self.exchange_timer(st, exchange, at, now);
                    continue;
                }
                TimerOwner::Race(id) => id,
            };
            let Some(entry) = st.races.get_mut(&id) else {
                self.expire_lingering(st, now);
                continue;
            };
            if entry.armed != at {
                continue;
            }
            entry.armed = NOT_ARMED;
            entry.tree.on_timer(now);
            self.drive(st, id, now);
        }
    }

    /// Arm the timerfd for the earliest deadline somebody still wants
    /// (early by the wake-ahead while the library waits itself).
    /// The name jobs queued for the loop start first (see
    /// src/runtime/dns_loop.rs): their deadlines join the others.
    pub(super) fn sync_wake_timer(&self, st: &mut LoopState) {
        self.start_name_jobs(st);
        let LoopState { timers, races, pools, groups, wake_timer, wake_ahead, lingering, exchanges, .. } = st;
        timers.drop_stale_top(|at, owner| match owner {
            TimerOwner::Race(id) => races.get(&id).is_some_and(|e| e.armed == at) || LoopCore::lingers_until(lingering, id, at),
            TimerOwner::Pool(id) => pools.is_armed_at(id, at),
            TimerOwner::Group(id) => groups.is_armed_at(id, at),
            TimerOwner::Dns(id) => exchanges.is_armed_at(id, at),
        });
        if let Some(t) = wake_timer.as_mut() {
            // Early by the wake-ahead while that is still in the future;
            // inside the window, at the deadline itself (the runner polls
            // without sleeping there).
            let at = timers.peek().map(|at| {
                let early = at.saturating_sub(*wake_ahead);
                // Armed early for this deadline already: it stays so
                // (no clock read, several times per race). Had that time
                // passed, the timerfd has fired, and the loop arms it
                // again once it has seen that.
                if early != at && t.armed() == Some(early) {
                    return early;
                }
                if early > self.clock.now() { early } else { at }
            });
            t.arm(&self.clock, at);
        }
    }
}

/// Log (debug) a DNS answer: its query, when it came, how many addresses
/// or its error; `from` says where it came from ("" for a resolver).
pub(super) fn log_answer(
    race: RaceId,
    key: &crate::engine::QueryKey,
    result: &std::result::Result<Vec<crate::engine::Candidate>, i32>,
    at: Micros,
    from: &str,
) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let record = match key.family {
        crate::engine::Family::V6 => "AAAA",
        crate::engine::Family::V4 => "A",
    };
    let (endpoint, at) = (key.endpoint, super::race::Ms(at));
    match result {
        Ok(addrs) => log::debug!("race {race}: {record} answer{from} for endpoint {endpoint} at {at}: {} address(es)", addrs.len()),
        Err(code) => log::debug!("race {race}: {record} query{from} for endpoint {endpoint} failed at {at}: {}", Error::ResolutionFailed(*code)),
    }
}
