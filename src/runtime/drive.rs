//! Driving a race: carrying out the actions its race tree asks for
//! (start or cancel an attempt, a winner, spares, failure), and the end of
//! a user's race: the winner's transport installed in its connection, the
//! losers closed, the callback queued. Pools' and groups' races hand their
//! connections to [`super::pool`] and [`super::group`].

use crate::vocabulary::state::ConnectionState;
use crate::vocabulary::report::AttemptReport;
use crate::vocabulary::error::Error;
use crate::engine::race::RaceError;
use crate::engine::tree::Action;
use crate::engine::{AttemptId, Micros};
use super::protocol::{self, AttemptIo, Started, Transport};
use super::stage;
use super::conn::{self, Callback, ConnCore};
use super::tokens::SocketTokens;
use super::group::Groups;
use super::pool::Pools;
use super::sys::tcp;
use super::timers::RaceId;
use super::protocol::ProtocolEntry;
use super::race::{arm_race, race_error_of, reports, Ms, RaceEntry, RaceOwner};
use super::{lock, LoopCore, LoopState};
use mio::Interest;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How a race ended: its winning attempt, or why it failed.
type RaceEnd = std::result::Result<AttemptId, RaceError>;

impl LoopCore {
    /// Carry out the race's actions until it has none left; finish it if it
    /// ended. A pool's or group's race hands its connections to its owner.
    pub(super) fn drive(&self, st: &mut LoopState, id: RaceId, now: Micros) {
        // Written under the state lock only: a plain increment, no locked
        // read-modify-write (this runs twice per race).
        let steps = self.progress.load(Ordering::Relaxed);
        self.progress.store(steps + 1, Ordering::Release);
        let LoopState { races, tokens, timers, protocols, history, .. } = &mut *st;
        let Some(entry) = races.get_mut(&id) else { return };
        let mut spares: Vec<AttemptId> = Vec::new();
        let end = self.carry_out_actions(entry, tokens, protocols, id, now, &mut spares);
        if let Some(end) = end {
            history.record_end(entry, id, protocols, end, now);
        }
        if matches!(end, Some(Err(_))) && entry.from_cache {
            // The kept addresses failed: the next race asks again.
            let tried: Vec<std::net::IpAddr> = entry.tree.attempts().map(|a| a.record.candidate.addr.ip()).collect();
            self.resolver.cache.forget_addresses(&tried);
        }
        match entry.owner {
            RaceOwner::User => {}
            RaceOwner::Pool(pool, kind) => {
                let reports = reports(entry, protocols);
                return Pools::drive_race(self, st, id, pool, kind, end, spares, reports, now);
            }
            RaceOwner::Group(group) => {
                let reports = reports(entry, protocols);
                return Groups::drive_race(self, st, id, group, end, spares, reports, now);
            }
        }
        // A user's race report is read from the race while it runs (see
        // attempt_reports) and kept in the connection when it ends.
        match end {
            None => arm_race(entry, timers, id),
            Some(end) => self.finish_user_race(st, id, end),
        }
    }

    /// Carry out the actions the race tree asks for: start attempts
    /// (registering their sockets), cancel them; the race's end, if it
    /// came, and the spares (attempts ready after the winner that the race
    /// keeps) are returned.
    fn carry_out_actions(
        &self,
        entry: &mut RaceEntry,
        tokens: &mut SocketTokens,
        protocols: &[Arc<ProtocolEntry>],
        id: RaceId,
        now: Micros,
        spares: &mut Vec<AttemptId>,
    ) -> Option<RaceEnd> {
        let mut end = None;
        while let Some(action) = entry.tree.poll_action() {
            match action {
                Action::Start { attempt, addr, path, protocol } => {
                    log::debug!(
                        "race {id}: attempt {attempt} started at {}: {addr} {} on {}",
                        Ms(now.saturating_sub(entry.started_at)),
                        protocols[protocol].name.to_string_lossy(),
                        entry.paths[path],
                    );
                    let (tree, alpn, served) = (&entry.tree, &entry.alpn, entry.served(protocol));
                    let security = || super::stage::attempt_security(alpn, served, tree, attempt);
                    let started = protocol::start(&protocols[protocol], &entry.paths[path].path, addr, &self.me, (id, attempt), security);
                    let (io, ready) = match started {
                        Ok(Started::Pending(io)) => (io, false),
                        Ok(Started::Ready(io)) => (io, true),
                        Err(errno) => {
                            entry.tree.on_attempt_failed(now, attempt, errno);
                            entry.log_attempt_end(id, attempt, protocols);
                            continue;
                        }
                    };
                    let io = match io {
                        AttemptIo::Tcp(_, mut stream) => {
                            let token = tokens.attempt(id, attempt);
                            if let Err(e) = self.registry.register(&mut stream, token, Interest::WRITABLE) {
                                tokens.forget(token);
                                entry.tree.on_attempt_failed(now, attempt, tcp::errno(e));
                                entry.log_attempt_end(id, attempt, protocols);
                                continue;
                            }
                            AttemptIo::Tcp(token, stream)
                        }
                        other => other,
                    };
                    entry.io.insert(attempt, io);
                    if ready {
                        self.tcp_connected(entry, id, attempt, now, &protocols[protocol]);
                    }
                }
                Action::Cancel { attempt } => {
                    if let Some(io) = entry.io.remove(attempt) {
                        self.discard_attempt(tokens, io);
                        // Logged once: the first Cancel of a running attempt.
                        entry.log_attempt_end(id, attempt, protocols);
                    }
                }
                Action::Won { attempt } => {
                    entry.log_attempt_end(id, attempt, protocols);
                    entry.log_race_end(id, Ok(attempt), now, protocols);
                    end = Some(Ok(attempt));
                }
                Action::Spare { attempt } => {
                    entry.log_attempt_end(id, attempt, protocols);
                    spares.push(attempt);
                }
                Action::Failed { error } => {
                    entry.log_race_end(id, Err(error), now, protocols);
                    end = Some(Err(error));
                }
            }
        }
        end
    }

    /// A user's race ended: its entry goes, the losers close, the winner's
    /// transport becomes the connection's (unless the user let go of it
    /// meanwhile), and `ready` or `establishment_error` is queued.
    fn finish_user_race(&self, st: &mut LoopState, id: RaceId, end: RaceEnd) {
        let LoopState { races, tokens, protocols, lingering, timers, .. } = &mut *st;
        let Some(mut entry) = races.remove(&id) else { return };
        let reports = stage::with_stage_times(&entry, reports(&entry, protocols));
        let dns = entry.dns.is_some().then(|| Box::new(super::https::dns_report(&entry)));
        if end.is_ok() {
            // HEv3 §6: DNS answers keep coming into the report a while.
            LoopCore::linger(lingering, timers, id, &mut entry, self.clock.now());
        }
        self.end_queries(&mut entry);
        let winner = match end {
            Ok(attempt) => entry.io.remove(attempt),
            Err(_) => None,
        };
        for io in entry.io.drain() {
            self.discard_attempt(tokens, io);
        }
        let error = end.err().map(|e| race_error_of(&entry, e));
        let conn = entry.conn;
        let mut c = conn.lock();
        c.race_result().attempts = reports.into();
        c.race_result().dns = dns;
        c.race = None;
        let live = c.phase == ConnectionState::Establishing && !c.released;
        let callback = match (end, winner) {
            (Ok(_), Some(io @ AttemptIo::Stage(_))) if !live => {
                // The stage's session on the fd has no connection to go to.
                self.discard_attempt(tokens, io);
                None
            }
            (Ok(attempt), Some(io)) => {
                let remote = entry.tree.attempts().nth(attempt).map(|a| a.record.candidate.addr);
                let alpn = match &io {
                    AttemptIo::Stage(s) => s.selected_alpn(),
                    _ => None,
                };
                let transport = self.to_transport(tokens, io);
                if live {
                    self.install(tokens, &conn, &mut c, transport, remote);
                    c.race_result().alpn = alpn;
                    Some(Callback::Ready)
                } else {
                    protocol::close_transport(transport, &self.registry);
                    None
                }
            }
            (Ok(_), None) => {
                log::error!("race {id}: the winner has no transport");
                c.phase = ConnectionState::Failed;
                c.race_result().error = Some(Error::Io(libc::EIO));
                Some(Callback::EstablishmentError)
            }
            (Err(_), _) => {
                if c.phase == ConnectionState::Establishing {
                    c.phase = ConnectionState::Failed;
                    c.race_result().error = error;
                    Some(Callback::EstablishmentError)
                } else {
                    None
                }
            }
        };
        let released = c.released;
        drop(c);
        if let (Some(cb), false) = (callback, released) {
            st.callbacks.push_back((conn, cb));
        }
    }

    /// Remove a race that has nothing running: its queries are cancelled,
    /// what is left of its I/O released.
    pub(super) fn remove_race(&self, st: &mut LoopState, id: RaceId) {
        if let Some(mut entry) = st.races.remove(&id) {
            self.end_queries(&mut entry);
            for io in entry.io.drain() {
                self.discard_attempt(&mut st.tokens, io);
            }
        }
    }

    /// Call `f` with the race report of `conn`: built from its race while
    /// a user's race runs, else the one the connection kept (its race
    /// ended, or a pool or group gave it its report).
    pub(crate) fn attempt_reports<R>(&self, conn: &ConnCore, f: impl FnOnce(&[AttemptReport]) -> R) -> R {
        let st = lock(&self.state);
        let c = conn.lock();
        match c.race.and_then(|id| st.races.get(&id.get())) {
            Some(entry) if entry.owner == RaceOwner::User => f(&stage::with_stage_times(entry, reports(entry, &st.protocols))),
            _ => f(c.attempts()),
        }
    }

    /// The DNS report of `conn`'s race (HEv3): built from its race while a
    /// user's race runs, else the one the connection kept.
    pub(crate) fn dns_report(&self, conn: &ConnCore) -> crate::vocabulary::report::DnsReport {
        let st = lock(&self.state);
        let c = conn.lock();
        match c.race.and_then(|id| st.races.get(&id.get())) {
            Some(entry) if entry.owner == RaceOwner::User => super::https::dns_report(entry),
            _ => c.dns_report().cloned().unwrap_or_default(),
        }
    }

    /// Cancel the user-resolver queries of a race that ended.
    pub(super) fn end_queries(&self, entry: &mut RaceEntry) {
        super::https::end_service_queries(entry);
        let Some(u) = entry.user_queries.take() else { return };
        for q in u.queries {
            if !q.done.load(std::sync::atomic::Ordering::Acquire) {
                q.end();
                u.resolver.cancel(q);
            }
        }
    }

    /// A ready attempt's I/O as an established connection's transport: a
    /// TCP stream stops being watched for writability (its token is
    /// forgotten until [`LoopCore::install`]).
    pub(super) fn to_transport(&self, tokens: &mut SocketTokens, io: AttemptIo) -> Transport {
        match io {
            AttemptIo::Tcp(token, stream) => {
                tokens.forget(token);
                Transport::Tcp(token, stream)
            }
            AttemptIo::Udp(sock) => Transport::Udp(sock),
            AttemptIo::Stage(staged) => {
                let (token, stream) = staged.into_stream();
                tokens.forget(token);
                Transport::Tcp(token, stream)
            }
            AttemptIo::User { entry, handle, ready } => {
                handle.end();
                let (fd, data) = ready.unwrap_or((None, 0));
                Transport::User { entry, fd, data }
            }
        }
    }

    /// Make `transport` the established connection of `conn` (whose state
    /// `c` is locked): a TCP socket is watched for errors and hang-ups.
    pub(super) fn install(
        &self,
        tokens: &mut SocketTokens,
        conn: &Arc<ConnCore>,
        c: &mut conn::ConnState,
        mut transport: Transport,
        remote: Option<SocketAddr>,
    ) {
        // Watched for errors and hang-ups when someone listens: a pool or
        // group that owns it, or a handler that wants connection errors
        // (a C program that set connection_error). Otherwise the socket is
        // left as it is, which saves an epoll_ctl per connection.
        let watch = c.held_by.is_some() || c.handler.as_ref().is_some_and(|h| h.wants_connection_errors());
        if let (true, Transport::Tcp(token, stream)) = (watch, &mut transport) {
            let watched = tokens.established(Arc::downgrade(conn));
            if self.registry.reregister(stream, watched, Interest::READABLE).is_ok() {
                *token = watched;
            } else {
                tokens.forget(watched);
            }
        }
        c.phase = ConnectionState::Established;
        let race_result = c.race_result();
        race_result.remote = remote;
        race_result.transport = Some(transport);
    }

    /// Stop an attempt the race no longer needs (see [`protocol::discard`])
    /// and forget its socket's token.
    fn discard_attempt(&self, tokens: &mut SocketTokens, io: AttemptIo) {
        match &io {
            AttemptIo::Tcp(token, _) => tokens.forget(*token),
            AttemptIo::Stage(staged) => tokens.forget(staged.token),
            _ => {}
        }
        protocol::discard(io, &self.registry);
    }

    /// Close a transport that no connection keeps (a pool's or group's):
    /// TCP sends its FIN (see [`protocol::close_transport`]).
    pub(super) fn close_transport(&self, st: &mut LoopState, t: Transport) {
        if let Transport::Tcp(token, _) = &t {
            st.tokens.forget(*token);
        }
        protocol::close_transport(t, &self.registry);
    }
}

