//! Security stages: the caller's TLS (or any handshake) run on the
//! connected socket of each built-in TCP attempt, so that the attempt wins
//! when its handshake is done, not when TCP connects
//! (draft-ietf-happy-happyeyeballs-v3-04 §6.1: "the attempt SHOULD be
//! considered successful at the end of the TLS handshake").
//!
//! The stage of a race lives in its connection ([`ConnCore::stage`]), set
//! by the Preconnection before the race starts. When a TCP attempt of such
//! a race connects, [`LoopCore::tcp_connected`] does not tell the race tree
//! it is ready: the attempt's socket becomes an [`AttemptIo::Stage`] and
//! the stage's `start` runs. The attempt stays running for the race tree
//! (the Connection Attempt Delay and the attempt timeout count until the
//! stage reports) until the stage reports `ready` or `failed`, which are
//! queued for the loop like a user protocol's completions.
//!
//! The stage's own I/O readiness: it asks with [`StageHandle::want`]; the
//! socket's registration with the poll is changed at once (no state lock:
//! the registry is thread-safe and the handle's own lock keeps the fd open
//! meanwhile), and the next matching event calls the stage's `io`. A wish
//! is used up by the `io` call it causes (ask again for more).
//!
//! The stage's functions run on the loop's thread with the loop locked,
//! as a user protocol's do.

use super::conn::ConnCore;
use super::protocol::{AttemptIo, Completion, ProtocolEntry};
use super::race::RaceEntry;
use super::sync::Mutex;
use super::timers::RaceId;
use super::LoopCore;
use crate::engine::tree::Tree;
use crate::engine::{AttemptId, Micros};
use crate::vocabulary::report::AttemptReport;
use std::ffi::{CStr, CString};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Weak};

/// A security stage as the runtime calls it (the api's `SecurityStage`).
pub(crate) trait UserStage: Send + Sync {
    /// The TCP connection of `attempt` is up: start the handshake on its
    /// fd, or fail the attempt at once with an errno.
    fn start(&self, attempt: Arc<StageHandle>) -> Result<(), i32>;
    /// The fd is readable and/or writable, as the stage asked.
    fn io(&self, attempt: Arc<StageHandle>, readable: bool, writable: bool);
    /// The race no longer needs `attempt`: free what the stage holds for
    /// it; the library closes the fd after this returns.
    fn cancel(&self, attempt: Arc<StageHandle>);
}

/// An ALPN list (RFC 7301): the ids as given, as C strings, and in the
/// wire format of the extension's ProtocolNameList (each id prefixed by
/// its length in one byte), which TLS libraries take as it is.
#[derive(Debug, Default)]
pub(crate) struct AlpnList {
    pub names: Vec<String>,
    pub c_names: Vec<CString>,
    pub wire: Vec<u8>,
}

impl AlpnList {
    /// The list of `ids`, each 1 to 255 bytes with no NUL.
    pub(crate) fn new(ids: &[&str]) -> Result<AlpnList, &'static str> {
        let mut list = AlpnList::default();
        for id in ids {
            if id.is_empty() || id.len() > 255 {
                return Err("an ALPN id is 1 to 255 bytes");
            }
            let c = CString::new(*id).map_err(|_| "an ALPN id has no NUL byte")?;
            list.wire.push(id.len() as u8);
            list.wire.extend_from_slice(id.as_bytes());
            list.names.push((*id).to_owned());
            list.c_names.push(c);
        }
        Ok(list)
    }

    /// The list of the ids of `ids` that can be ALPN ids (1 to 255 bytes,
    /// no NUL): an HTTPS record's, which a hostile answer may fill with
    /// anything; the others are left out.
    pub(crate) fn lossy(ids: &[impl AsRef<str>]) -> AlpnList {
        let valid: Vec<&str> = ids.iter().map(AsRef::as_ref).filter(|id| AlpnList::new(&[id]).is_ok()).collect();
        AlpnList::new(&valid).unwrap_or_default()
    }

    /// The list of `ids` for a race: an empty one is shared by every race
    /// (most races have no ALPN list: no allocation for them).
    pub(crate) fn for_race(ids: &[impl AsRef<str>]) -> Arc<AlpnList> {
        static EMPTY: once_cell::sync::Lazy<Arc<AlpnList>> = once_cell::sync::Lazy::new(Arc::default);
        if ids.is_empty() {
            Arc::clone(&EMPTY)
        } else {
            Arc::new(AlpnList::lossy(ids))
        }
    }
}

/// What a Preconnection gives its races about security: the stage, the
/// ALPN list, the host name for SNI.
pub(crate) struct StageSetup {
    pub stage: Arc<dyn UserStage>,
    pub alpn: Arc<AlpnList>,
    /// The first remote endpoint's host name, `None` when every remote
    /// endpoint is an address.
    pub host: Option<Arc<CStr>>,
}

/// A connection's stage and when its attempts' TCP connections came up
/// (µs on the loop's clock, by attempt id), for the race report.
pub(crate) struct StageRace {
    pub setup: StageSetup,
    connected: Mutex<Vec<(AttemptId, Micros)>>,
}

impl StageRace {
    pub(crate) fn new(setup: StageSetup) -> StageRace {
        StageRace { setup, connected: Mutex::new(Vec::new()) }
    }
}

/// The ALPN list and ECH config (draft-ietf-tls-esni) of one attempt.
pub(crate) struct AttemptSecurity {
    pub alpn: Arc<AlpnList>,
    pub ech: Option<Arc<[u8]>>,
}

/// The ALPN list and ECH config of tree attempt `attempt` (HEv3 §6.1,
/// §6.3): the one place that decides them, for security stages and user
/// protocols alike. An attempt whose address came with an HTTPS record
/// (RFC 9460) gets its service's ALPN ids (the usable ones of RFC 9460
/// §7.1.2, in the caller's order, as [`crate::engine::service::Service::alpn`]
/// has them) and its "ech" SvcParam; any other attempt (a fallback
/// address, a race without HTTPS records) gets `caller`, the
/// Preconnection's ALPN list, and no ECH config. When the attempt's
/// protocol serves registered ids (`served`, HEv3 §5.1, §6), the list
/// keeps only those (in its own order).
pub(crate) fn attempt_security(caller: &Arc<AlpnList>, served: Option<&[String]>, tree: &Tree, attempt: AttemptId) -> AttemptSecurity {
    let service = tree.attempt_service(attempt).and_then(|t| t.service).and_then(|s| tree.services().get(s as usize));
    let keep = |id: &&str| served.is_none_or(|ids| ids.iter().any(|s| s == id));
    match (service, served) {
        (Some(s), _) => {
            let ids: Vec<&str> = s.alpn.iter().map(|a| &**a).filter(keep).collect();
            AttemptSecurity { alpn: Arc::new(AlpnList::lossy(&ids)), ech: s.ech.clone() }
        }
        (None, None) => AttemptSecurity { alpn: Arc::clone(caller), ech: None },
        (None, Some(_)) => {
            let ids: Vec<&str> = caller.names.iter().map(String::as_str).filter(keep).collect();
            AttemptSecurity { alpn: Arc::new(AlpnList::lossy(&ids)), ech: None }
        }
    }
}

/// Where a staged attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The handshake runs.
    Running,
    /// The stage reported ready; the loop has not ended the attempt yet.
    Ready,
    /// The stage reported a failure.
    Failed,
    /// The library ended it (won, cancelled, or after a report).
    Ended,
}

struct HandleState {
    phase: Phase,
    /// The readiness the stage waits for: (readable, writable).
    wanted: (bool, bool),
    /// The ALPN id the stage selected (in its ready).
    selected: Option<CString>,
}

/// The library's side of one staged attempt. The C `taps_stage_attempt *`
/// points at it.
pub(crate) struct StageHandle {
    lp: Weak<LoopCore>,
    pub race: RaceId,
    pub attempt: AttemptId,
    /// The connected socket (the library's: the stage must not close it).
    pub fd: RawFd,
    token: mio::Token,
    pub remote: SocketAddr,
    pub host: Option<Arc<CStr>>,
    pub security: AttemptSecurity,
    /// TCP's entry, for the completion queue.
    tcp: Arc<ProtocolEntry>,
    state: Mutex<HandleState>,
}

impl StageHandle {
    /// Ask for an `io` call when the fd is readable (`read`) or writable
    /// (`write`); added to what was asked since the last `io`. Ignored once
    /// the stage reported or the attempt ended.
    pub(crate) fn want(&self, read: bool, write: bool) {
        let mut st = self.state.lock();
        if st.phase != Phase::Running || !(read || write) {
            return;
        }
        st.wanted = (st.wanted.0 || read, st.wanted.1 || write);
        let interest = match st.wanted {
            (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
            (true, false) => mio::Interest::READABLE,
            _ => mio::Interest::WRITABLE,
        };
        let Some(lp) = self.lp.upgrade() else { return };
        // The fd stays open while the state is locked and Running (the
        // library ends the handle before it closes the socket). Modifying
        // the registration re-checks the socket: a readiness that came
        // before the wish is reported.
        if let Err(e) = lp.registry.reregister(&mut mio::unix::SourceFd(&self.fd), self.token, interest) {
            log::warn!("race {}: attempt {}: cannot watch its socket for the stage: {e}", self.race, self.attempt);
        }
    }

    /// The stage reports: `Ok(selected ALPN)` or `Err(errno)`. Queued for
    /// the loop; ignored after the first report or once the attempt ended.
    pub(crate) fn report(&self, result: Result<Option<&str>, i32>) {
        let completion = {
            let mut st = self.state.lock();
            if st.phase != Phase::Running {
                log::warn!("race {}: attempt {}: a stage report after its end or a report; ignored", self.race, self.attempt);
                return;
            }
            match result {
                Ok(alpn) => {
                    st.phase = Phase::Ready;
                    st.selected = alpn.and_then(|a| CString::new(a).ok());
                    Completion::Ready(None, 0)
                }
                Err(errno) => {
                    st.phase = Phase::Failed;
                    Completion::Failed(errno)
                }
            }
        };
        if let Some(lp) = self.lp.upgrade() {
            lp.push_completion(self.race, self.attempt, completion, Arc::clone(&self.tcp));
        }
    }

    /// The library ends the attempt; returns the phase it had.
    fn end(&self) -> Phase {
        let mut st = self.state.lock();
        let was = st.phase;
        st.phase = Phase::Ended;
        st.wanted = (false, false);
        was
    }

    /// Take the wish an event of (readable, writable) fulfils: the flags
    /// to pass to `io`, or `None` when the stage waits for none of them.
    fn fulfil(&self, readable: bool, writable: bool) -> Option<(bool, bool)> {
        let mut st = self.state.lock();
        let (r, w) = st.wanted;
        if st.phase != Phase::Running || !((r && readable) || (w && writable)) {
            return None;
        }
        st.wanted = (false, false);
        Some((readable, writable))
    }
}

/// A TCP attempt whose stage runs: the socket, still registered with the
/// poll under the attempt's token, and the stage.
pub(crate) struct StagedTcp {
    pub token: mio::Token,
    pub stream: mio::net::TcpStream,
    pub handle: Arc<StageHandle>,
    pub stage: Arc<dyn UserStage>,
}

impl StagedTcp {
    /// The ALPN id its stage selected (after its ready).
    pub(crate) fn selected_alpn(&self) -> Option<CString> {
        self.handle.state.lock().selected.clone()
    }

    /// The winner's socket, for the connection: the stage's attempt ends
    /// (no cancel: the caller's session on the fd lives on).
    pub(crate) fn into_stream(self) -> (mio::Token, mio::net::TcpStream) {
        self.handle.end();
        (self.token, self.stream)
    }

    /// Stop it: the stage's `cancel` (unless it reported a failure, or the
    /// library ended it before), then the socket closes.
    pub(crate) fn discard(self, registry: &mio::Registry) {
        let StagedTcp { mut stream, handle, stage, .. } = self;
        let was = handle.end();
        if matches!(was, Phase::Running | Phase::Ready) {
            log::debug!("race {}: attempt {}: stage cancelled", handle.race, handle.attempt);
            stage.cancel(Arc::clone(&handle));
        }
        let _ = registry.deregister(&mut stream);
    }
}

impl LoopCore {
    /// The TCP connection of attempt `attempt` is up (or a UDP or user
    /// protocol's attempt is ready): the race tree hears of it, unless the
    /// race has a security stage, which starts on the fd instead.
    pub(super) fn tcp_connected(&self, entry: &mut RaceEntry, id: RaceId, attempt: AttemptId, now: Micros, tcp: &Arc<ProtocolEntry>) {
        let conn: Arc<ConnCore> = Arc::clone(&entry.conn);
        let staged = conn.stage.get().filter(|_| matches!(entry.io.get(attempt), Some(AttemptIo::Tcp(..))));
        let Some(race) = staged else {
            entry.tree.on_attempt_ready(now, attempt);
            return;
        };
        let stage = Arc::clone(&race.setup.stage);
        let Some(AttemptIo::Tcp(token, stream)) = entry.io.remove(attempt) else { return };
        race.connected.lock().push((attempt, now));
        let tree_attempt = entry.tree.attempts().nth(attempt);
        let protocol = tree_attempt.map_or(usize::MAX, |a| a.protocol);
        let remote = tree_attempt.map(|a| a.record.candidate.addr);
        let remote = remote.unwrap_or_else(|| stream.peer_addr().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))));
        let handle = Arc::new(StageHandle {
            lp: self.me.clone(),
            race: id,
            attempt,
            fd: stream.as_raw_fd(),
            token,
            remote,
            host: race.setup.host.clone(),
            security: attempt_security(&race.setup.alpn, entry.served(protocol), &entry.tree, attempt),
            tcp: Arc::clone(tcp),
            state: Mutex::new(HandleState { phase: Phase::Running, wanted: (false, false), selected: None }),
        });
        log::debug!("race {id}: attempt {attempt} ({remote}) connected at {}; its stage starts", super::race::Ms(now.saturating_sub(entry.started_at)));
        let staged = StagedTcp { token, stream, handle: Arc::clone(&handle), stage: Arc::clone(&stage) };
        entry.io.insert(attempt, AttemptIo::Stage(Box::new(staged)));
        if let Err(errno) = stage.start(handle) {
            if let Some(AttemptIo::Stage(s)) = entry.io.remove(attempt) {
                s.handle.end();
            }
            entry.tree.on_attempt_failed(now, attempt, errno);
            log::debug!("race {id}: attempt {attempt} ({remote}): its stage refused to start: {}", super::race::Errno(errno));
        }
    }

    /// A poll event on a staged attempt's socket: the stage's `io`, if it
    /// waits for what came (errors and hang-ups count as both, so that its
    /// own I/O sees them).
    pub(super) fn stage_event(entry: &RaceEntry, attempt: AttemptId, event: &mio::event::Event) {
        let Some(AttemptIo::Stage(s)) = entry.io.get(attempt) else { return };
        let broken = event.is_error() || event.is_read_closed() || event.is_write_closed();
        let readable = event.is_readable() || broken;
        let writable = event.is_writable() || broken;
        if let Some((r, w)) = s.handle.fulfil(readable, writable) {
            s.stage.io(Arc::clone(&s.handle), r, w);
        }
    }
}

/// The race report of a race with a stage: each staged attempt's
/// `connected_us` (µs since the race started) filled in.
pub(super) fn with_stage_times(entry: &RaceEntry, mut reports: Vec<AttemptReport>) -> Vec<AttemptReport> {
    if let Some(race) = entry.conn.stage.get() {
        for &(attempt, at) in race.connected.lock().iter() {
            if let Some(r) = reports.get_mut(attempt) {
                r.connected_us = Some(at.saturating_sub(entry.started_at));
            }
        }
    }
    reports
}
