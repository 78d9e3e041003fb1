//! One race in flight as the loop keeps it: its race tree (the engine's
//! [`Tree`]), the I/O of its running attempts, its paths, its timer, who it
//! works for ([`RaceOwner`]), and the race report built from it. Also what
//! a caller asks to race ([`RaceSpec`]).

use crate::vocabulary::report::{AttemptOutcome, AttemptReport};
use crate::vocabulary::endpoint::RemoteEndpoint;
use crate::vocabulary::error::Error;
use crate::vocabulary::endpoint::LocalEndpoint;
use crate::vocabulary::options::BranchRacing;
use super::callbacks::UserResolver;
use crate::engine::race::{Outcome, RaceConfig, RaceError};
use crate::engine::select::SelectionProperties;
use crate::engine::tree::Tree;
use crate::engine::{AttemptId, Micros};
use super::paths::Path;
use super::protocol::{AttemptIo, Completion, ProtocolEntry};
use super::conn::ConnCore;
use super::timers::{GroupId, PoolId, RaceId, TimerHeap, TimerOwner};
use super::pool;
use std::ffi::CStr;
use std::net::SocketAddr;
use std::sync::Arc;

/// A user protocol's completion waiting for the loop: race, attempt, what
/// happened, and the protocol (to close an orphaned ready connection).
pub(super) type QueuedCompletion = (RaceId, AttemptId, Completion, Arc<ProtocolEntry>);

/// A race entry's `armed` when no timer of it is in the heap (no deadline
/// is that far: µs since the loop started).
pub(super) const NOT_ARMED: Micros = Micros::MAX;

/// One race in flight.
pub(super) struct RaceEntry {
    /// The race tree (the engine's state of the race).
    pub(super) tree: Tree,
    /// The connection it races for (a pool's or group's own, for theirs).
    pub(super) conn: Arc<ConnCore>,
    /// When it started, on the loop's clock: its report counts from it.
    pub(super) started_at: Micros,
    /// The I/O of the attempts still running.
    pub(super) io: AttemptIos,
    /// When its timer is due in the loop's heap; [`NOT_ARMED`] for none
    /// (a plain number keeps the entry 8 bytes smaller than an Option).
    pub(super) armed: Micros,
    /// The race's paths, by the ids the tree uses: most races share the
    /// loop's default path. Protocol ids are indices into the loop's
    /// registered protocols (which only grow).
    pub(super) paths: Arc<[RacePath]>,
    /// Queries asked of a user resolver, to cancel if the race ends
    /// first; `None` for the system resolver and literals.
    pub(super) user_queries: Option<Box<UserQueries>>,
    /// Who started the race: a user, a pool, a group.
    pub(super) owner: RaceOwner,
    /// Some answers came from the resolution cache: a failed race drops
    /// the names it attempted from it.
    pub(super) from_cache: bool,
    /// The HEv3 side of a race that asks HTTPS records; `None` for any
    /// other.
    pub(super) dns: Option<Box<super::https::RaceDns>>,
    /// The IPv6 destinations synthesized from IPv4 literals (NAT64), for
    /// the report; `None` when there are none.
    pub(super) nat64: Option<Box<super::nat64::Synthesized>>,
    /// The Preconnection's ALPN list (RFC 7301), given to the attempts of
    /// user protocols whose address has no HTTPS record
    /// ([`super::stage::attempt_security`]).
    pub(super) alpn: Arc<super::stage::AlpnList>,
    /// The ALPN ids each protocol serves (protocol id, ids), for the
    /// protocols the Preconnection gave ids (HEv3 draft §5.1, §6).
    pub(super) served: Box<[(usize, Vec<String>)]>,
    /// What the race may leave out because its paths cannot route it, and
    /// what it left out (HEv3 -04 §4.1); `None` when nothing can be (the
    /// default path on a dual-stack network).
    pub(super) pruning: Option<Box<super::connectivity::Pruning>>,
}

/// A race's queries to a user resolver, with the resolver that has them.
pub(super) struct UserQueries {
    pub(super) resolver: Arc<dyn UserResolver>,
    pub(super) queries: Vec<Arc<super::resolver::QueryHandle>>,
}

/// One path of a race, with its interface name as the race report gives
/// it (C string, shared by every report of the race).
pub(crate) struct RacePath {
    pub(super) path: Path,
    pub(super) name: Option<Arc<CStr>>,
}

impl RacePath {
    pub(super) fn new(path: Path) -> RacePath {
        let name = path.interface.as_ref().and_then(|n| std::ffi::CString::new(n.as_str()).ok()).map(Arc::from);
        RacePath { path, name }
    }
}

/// The I/O of a race's running attempts, by attempt id. A race runs one
/// or two attempts at a time: the first is kept inline (no allocation for
/// a race of one attempt), more in a short list, which costs less than a
/// map.
#[derive(Default)]
pub(super) struct AttemptIos {
    one: Option<(AttemptId, AttemptIo)>,
    more: Vec<(AttemptId, AttemptIo)>,
}

impl AttemptIos {
    pub(super) fn get(&self, attempt: AttemptId) -> Option<&AttemptIo> {
        match &self.one {
            Some((a, io)) if *a == attempt => Some(io),
            _ => self.more.iter().find(|(a, _)| *a == attempt).map(|(_, io)| io),
        }
    }

    pub(super) fn get_mut(&mut self, attempt: AttemptId) -> Option<&mut AttemptIo> {
        match &mut self.one {
            Some((a, io)) if *a == attempt => Some(io),
            _ => self.more.iter_mut().find(|(a, _)| *a == attempt).map(|(_, io)| io),
        }
    }

    pub(super) fn insert(&mut self, attempt: AttemptId, io: AttemptIo) {
        if self.one.is_none() {
            self.one = Some((attempt, io));
        } else {
            crate::engine::push_first_exact(&mut self.more, (attempt, io));
        }
    }

    pub(super) fn remove(&mut self, attempt: AttemptId) -> Option<AttemptIo> {
        if matches!(&self.one, Some((a, _)) if *a == attempt) {
            return self.one.take().map(|(_, io)| io);
        }
        let i = self.more.iter().position(|(a, _)| *a == attempt)?;
        Some(self.more.swap_remove(i).1)
    }

    pub(super) fn drain(&mut self) -> impl Iterator<Item = AttemptIo> + '_ {
        self.one.take().into_iter().chain(self.more.drain(..)).map(|(_, io)| io)
    }
}

/// Who a race works for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RaceOwner {
    /// A user's Connection: its callbacks hear the outcome.
    User,
    /// A pool (its id) and why it raced.
    Pool(PoolId, pool::RaceKind),
    /// A group (its id) building members.
    Group(GroupId),
}

/// What to race: a Preconnection's contents.
pub(crate) struct RaceSpec<'a> {
    /// Remote endpoints.
    pub remotes: &'a [RemoteEndpoint],
    /// Local endpoints (paths), possibly none.
    pub locals: &'a [LocalEndpoint],
    /// Selection properties.
    pub selection: &'a SelectionProperties,
    /// Endpoint-level timing.
    pub config: RaceConfig,
    /// Racing types per branch level.
    pub racing: BranchRacing,
    /// Addresses to attempt only after every other candidate.
    pub avoid: &'a [SocketAddr],
    /// When to ask HTTPS records (HEv3).
    pub https: crate::vocabulary::svcb::HttpsPolicy,
    /// The caller's ALPN ids, in order of preference; empty = any (HEv3
    /// draft §6.2).
    pub alpn: &'a [String],
    /// Never race before the HTTPS answers (HEv3 draft §6.3).
    pub ech_required: bool,
    /// The ALPN ids each protocol serves, by protocol name (HEv3 draft
    /// §5.1, §6); a protocol not listed races every candidate.
    pub protocol_alpn: &'a [(String, Vec<String>)],
}

/// Push the race's next deadline on the heap if it moved.
pub(super) fn arm_race(entry: &mut RaceEntry, timers: &mut TimerHeap, id: RaceId) {
    match entry.tree.next_deadline() {
        Some(at) if entry.armed != at => {
            entry.armed = at;
            timers.push(at, TimerOwner::Race(id));
        }
        Some(_) => {}
        None => entry.armed = NOT_ARMED,
    }
}

/// The API error of a race error.
pub(super) fn race_error(e: RaceError) -> Error {
    match e {
        RaceError::ResolutionFailed(code) => Error::ResolutionFailed(code),
        RaceError::AllAttemptsFailed(errno) => Error::AllAttemptsFailed(errno),
        RaceError::TimedOut => Error::TimedOut,
        RaceError::Cancelled => Error::Cancelled,
    }
}

/// The API error of a race's error: a race that found addresses but
/// left every one out because no path routes it (and so asked nothing of
/// the network) fails with [`Error::NoCandidates`], not as a resolution
/// failure.
pub(super) fn race_error_of(entry: &RaceEntry, e: RaceError) -> Error {
    let pruned = entry.pruning.as_ref().is_some_and(|p| !p.list.is_empty());
    match e {
        RaceError::ResolutionFailed(_) if pruned && entry.tree.attempt_count() == 0 => Error::NoCandidates,
        e => race_error(e),
    }
}

/// The report entry of a candidate the race left out (outcome
/// [`AttemptOutcome::Pruned`], its reason as `os_error`), after the
/// attempts.
fn pruned_report(entry: &RaceEntry, p: &super::connectivity::Pruned, protocols: &[Arc<ProtocolEntry>]) -> AttemptReport {
    AttemptReport {
        address: p.addr,
        protocol: Arc::clone(&protocols[p.protocol].name),
        interface: entry.paths[p.path].name.clone(),
        started_us: p.at,
        ended_us: Some(p.at),
        connected_us: None,
        outcome: AttemptOutcome::Pruned,
        os_error: p.errno,
        alpn: Vec::new(),
        svc_priority: None,
        from_hint: false,
        synthesized_from: entry.nat64.as_ref().and_then(|s| s.source_of(p.addr)),
        history: None,
    }
}

/// The race report in the API's terms: times relative to the race start;
/// the attempts, then the candidates left out.
pub(super) fn reports(entry: &RaceEntry, protocols: &[Arc<ProtocolEntry>]) -> Vec<AttemptReport> {
    let pruned = entry.pruning.as_ref().map_or(&[][..], |p| &p.list[..]);
    entry
        .tree
        .attempts()
        .enumerate()
        .map(|(i, a)| {
            let r = a.record;
            let tag = entry.tree.attempt_service(i);
            let service = tag.and_then(|t| t.service).and_then(|s| entry.tree.services().get(s as usize));
            AttemptReport {
                address: r.candidate.addr,
                protocol: Arc::clone(&protocols[a.protocol].name),
                interface: entry.paths[a.path].name.clone(),
                started_us: r.started.saturating_sub(entry.started_at),
                ended_us: r.ended.map(|e| e.saturating_sub(entry.started_at)),
                connected_us: None,
                outcome: match r.outcome {
                    Outcome::Running => AttemptOutcome::Running,
                    Outcome::Won => AttemptOutcome::Won,
                    Outcome::Failed(_) => AttemptOutcome::Failed,
                    Outcome::Cancelled => AttemptOutcome::Cancelled,
                    Outcome::Spare => AttemptOutcome::Spare,
                },
                os_error: match r.outcome {
                    Outcome::Failed(e) => e,
                    _ => 0,
                },
                // What the attempt's protocol or stage was given: the
                // service's ids, kept to those the protocol serves.
                alpn: match service {
                    Some(_) => super::stage::attempt_security(&entry.alpn, entry.served(a.protocol), &entry.tree, i).alpn.names.clone(),
                    None => Vec::new(),
                },
                svc_priority: service.map(|s| s.priority),
                from_hint: tag.is_some_and(|t| t.from_hint),
                synthesized_from: entry.nat64.as_ref().and_then(|s| s.source_of(r.candidate.addr)),
                history: entry.tree.history_hint(i).as_ref().map(super::history::note),
            }
        })
        .chain(pruned.iter().map(|p| pruned_report(entry, p, protocols)))
        .collect()
}

/// A time in µs written in ms for the logs ("0.26 ms").
pub(super) struct Ms(pub(super) Micros);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02} ms", self.0 / 1000, self.0 % 1000 / 10)
    }
}

/// An errno as the system describes it, for the logs.
pub(super) struct Errno(pub(super) i32);

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl std::fmt::Display for RacePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.path.interface, self.path.local) {
            (None, None) => f.write_str("the default path"),
            (Some(name), None) => write!(f, "interface {name}"),
            (None, Some(local)) => write!(f, "local {local}"),
            (Some(name), Some(local)) => write!(f, "interface {name}, local {local}"),
        }
    }
}

impl RaceEntry {
    /// The ALPN ids protocol `protocol` serves in this race, if it was
    /// given some.
    pub(super) fn served(&self, protocol: usize) -> Option<&[String]> {
        self.served.iter().find(|(p, _)| *p == protocol).map(|(_, ids)| ids.as_slice())
    }

    /// Log (debug) how an attempt ended and when, from its record.
    pub(super) fn log_attempt_end(&self, id: RaceId, attempt: AttemptId, protocols: &[Arc<ProtocolEntry>]) {
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let Some(a) = self.tree.attempts().nth(attempt) else { return };
        let r = a.record;
        let ended = r.ended.unwrap_or(r.started);
        let at = Ms(ended.saturating_sub(self.started_at));
        let took = Ms(ended.saturating_sub(r.started));
        let protocol = protocols[a.protocol].name.to_string_lossy();
        let addr = r.candidate.addr;
        match r.outcome {
            Outcome::Won => log::debug!("race {id}: attempt {attempt} ({addr} {protocol}) won at {at} (connected in {took})"),
            Outcome::Failed(libc::ETIMEDOUT) => {
                log::debug!("race {id}: attempt {attempt} ({addr} {protocol}) failed at {at}: timed out after {took}")
            }
            Outcome::Failed(errno) => {
                log::debug!("race {id}: attempt {attempt} ({addr} {protocol}) failed at {at} after {took}: {}", Errno(errno))
            }
            Outcome::Cancelled => log::debug!("race {id}: attempt {attempt} ({addr} {protocol}) cancelled at {at} after {took}"),
            Outcome::Spare => {
                log::debug!("race {id}: attempt {attempt} ({addr} {protocol}) ready at {at} after the win: a spare")
            }
            Outcome::Running => {}
        }
    }

    /// Log (info) how the race ended: its winner, or its error, with the
    /// count of attempts that failed and were cancelled.
    pub(super) fn log_race_end(&self, id: RaceId, end: Result<AttemptId, RaceError>, now: Micros, protocols: &[Arc<ProtocolEntry>]) {
        if !log::log_enabled!(log::Level::Info) {
            return;
        }
        let (mut failed, mut cancelled) = (0, Vec::new());
        for (i, a) in self.tree.attempts().enumerate() {
            match a.record.outcome {
                Outcome::Failed(_) => failed += 1,
                Outcome::Cancelled => cancelled.push(i),
                _ => {}
            }
        }
        let at = Ms(now.saturating_sub(self.started_at));
        let owner = RaceOwnerName(self.owner);
        match end {
            Ok(attempt) => {
                let Some(a) = self.tree.attempts().nth(attempt) else { return };
                let protocol = protocols[a.protocol].name.to_string_lossy();
                log::info!(
                    "race {id}{owner}: won at {at} by attempt {attempt} ({} {protocol} on {}); {failed} failed, {} cancelled{}{}",
                    a.record.candidate.addr,
                    self.paths[a.path],
                    cancelled.len(),
                    if cancelled.is_empty() { "" } else { ": attempts " },
                    CommaList(&cancelled),
                )
            }
            Err(e) => log::info!(
                "race {id}{owner}: failed at {at} after {} attempt(s): {}",
                self.tree.attempt_count(),
                race_error_of(self, e)
            ),
        }
    }
}

/// A race's owner for the logs: nothing for a user's race, " (pool 2)".
pub(super) struct RaceOwnerName(pub(super) RaceOwner);

impl std::fmt::Display for RaceOwnerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            RaceOwner::User => Ok(()),
            RaceOwner::Pool(pool, _) => write!(f, " (pool {pool})"),
            RaceOwner::Group(group) => write!(f, " (group {group})"),
        }
    }
}

/// Numbers as "0, 2, 3".
struct CommaList<'a>(&'a [usize]);

impl std::fmt::Display for CommaList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}
