//! HTTPS records in the runtime (HEv3 draft §4–§7, RFC 9460): which races
//! ask them (the Preconnection's [`crate::vocabulary::svcb::HttpsPolicy`]), the questions the
//! engine asks ([`crate::engine::service::Resolve`]) carried to the
//! resolver, and the answers carried back to the race tree.
//!
//! # Entry points for a resolver
//!
//! - [`LoopCore::on_service_answer`]: THE entry point for an HTTPS answer
//!   (records or an error code), whichever resolver found it (a user
//!   resolver's [`ServiceQueryHandle`], or the library's DNS client).
//! - [`LoopCore::on_target_answer`]: the AAAA/A answer for a TargetName the
//!   engine asked (a name other than the endpoint's host).
//! - The questions themselves are asked by [`LoopCore::ask_resolves`]
//!   after each HTTPS answer, and once at the race's start: a user
//!   resolver's `resolve_https` (HTTPS) and `resolve` (TargetName AAAA/A,
//!   whose answers come back through the usual resolver queue with a
//!   query key at [`TARGET_KEY_BASE`] and above); without a user
//!   resolver, the library's DNS client ([`super::dns`]) through the
//!   resolver workers ([`LoopCore::ask_dns_client`]).
//!
//! A race that asks HTTPS keeps a [`RaceDns`]: its open questions and the
//! DNS answers of its report ([`DnsReport`]).

use super::race::{RaceEntry, RaceSpec, UserQueries};
use super::timers::RaceId;
use super::{lock, LoopCore, LoopState};
use crate::engine::service::{HttpsQuery, QueryKind, ServiceSpec};
use crate::engine::{Candidate, Family, Micros, QueryKey};
use crate::vocabulary::endpoint::Host;
use crate::vocabulary::report::{DnsAnswerReport, DnsReport, RecordType, ServiceReport};
use crate::vocabulary::svcb::ServiceRecord;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

/// A TargetName's AAAA/A question asked of a user resolver carries the
/// query key `{ endpoint: TARGET_KEY_BASE + slot, family }`, `slot` its
/// index in [`RaceDns::targets`]: far above any endpoint index.
pub(crate) const TARGET_KEY_BASE: usize = 1 << 24;

/// One HTTPS question asked of a user resolver; answered once, from any
/// thread.
pub(crate) struct ServiceQueryHandle {
    pub(crate) core: Weak<LoopCore>,
    pub(crate) race: RaceId,
    /// The remote endpoint whose question it is.
    pub(crate) endpoint: usize,
    /// The name asked.
    pub(crate) name: String,
    pub(crate) done: AtomicBool,
}

impl ServiceQueryHandle {
    /// Hand the answer (records and their TTL in seconds, or an error
    /// code) to the loop; later answers are ignored.
    pub(crate) fn answer(&self, result: Result<(Vec<ServiceRecord>, u32), i32>) {
        if self.done.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(core) = self.core.upgrade() {
            core.push_service_answer(ServiceAnswer { race: self.race, endpoint: self.endpoint, result });
        }
    }

    /// Ended by the library: later answers are ignored.
    pub(crate) fn end(&self) {
        self.done.store(true, Ordering::Release);
    }
}

/// An HTTPS answer queued for the loop.
pub(crate) struct ServiceAnswer {
    pub(crate) race: RaceId,
    pub(crate) endpoint: usize,
    pub(crate) result: Result<(Vec<ServiceRecord>, u32), i32>,
}

/// The HEv3 side of one race in flight.
#[derive(Default)]
pub(crate) struct RaceDns {
    /// The DNS answers so far (the report's).
    answers: Vec<DnsAnswerReport>,
    /// The open HTTPS question per endpoint: its name.
    open: Vec<(usize, String)>,
    /// TargetNames asked of a user resolver, by slot: (endpoint, name).
    targets: Vec<(usize, String)>,
    /// The endpoints' host names, for the report.
    hosts: Vec<(usize, String)>,
    /// HTTPS questions asked of a user resolver, cancelled if the race
    /// ends first.
    https: Vec<Arc<ServiceQueryHandle>>,
    /// The user resolver that has them.
    user: Option<Arc<dyn super::callbacks::UserResolver>>,
    /// The resolver took an HTTPS question (did not refuse it): after a
    /// win, the race's questions stay open for [`LINGER`].
    accepted: bool,
    /// The families a TargetName asks the DNS client (`[A, AAAA]`, HEv3
    /// -04 §4.1, [`super::connectivity::ask_families`]).
    ask: [bool; 2],
}

/// How long a won race's open questions stay open and their answers go
/// into its report (HEv3 draft §6: the resolver "SHOULD still process DNS
/// replies … for a short period of time (recommended to be 1 second)").
/// They start no attempt.
pub(crate) const LINGER: Micros = 1_000_000;

/// glibc's EAI_ADDRFAMILY ("address family for hostname not supported"),
/// which the libc crate does not export: a TargetName's question of a
/// family the race has no connectivity for, not asked.
const EAI_ADDRFAMILY: i32 = -9;

/// A won race's DNS side, kept for [`LINGER`] after the win.
pub(crate) struct Lingering {
    race: RaceId,
    conn: Weak<super::conn::ConnCore>,
    started_at: Micros,
    /// When its questions are cancelled.
    pub(crate) until: Micros,
    dns: Box<RaceDns>,
    queries: Option<Box<UserQueries>>,
}

impl RaceDns {
    fn record(&mut self, record: RecordType, endpoint: usize, name: String, at_us: Micros, result: Result<usize, i32>) {
        self.answers.push(DnsAnswerReport { record, endpoint, name, at_us, result });
    }

    fn host(&self, endpoint: usize) -> String {
        self.hosts.iter().find(|(e, _)| *e == endpoint).map_or_else(String::new, |(_, h)| h.clone())
    }
}

/// The engine's HEv3 spec for a race of `spec`, if it asks any HTTPS
/// question (per the Preconnection's policy, for host names only).
pub(super) fn service_spec(spec: &RaceSpec<'_>, seed: u64) -> Option<ServiceSpec> {
    let queries: Vec<HttpsQuery> = spec
        .remotes
        .iter()
        .enumerate()
        .filter_map(|(i, ep)| {
            let (Some(Host::Name(host)), Some(port)) = (ep.host(), ep.port()) else { return None };
            let qname = spec.https.qname(host, port)?;
            Some(HttpsQuery { endpoint: i, host: host.trim_end_matches('.').to_ascii_lowercase(), qname, port })
        })
        .collect();
    if queries.is_empty() {
        return None;
    }
    Some(ServiceSpec { queries, alpn: spec.alpn.to_vec(), ech_required: spec.ech_required, seed })
}

/// The report's record type of an address family.
fn record_type(family: Family) -> RecordType {
    match family {
        Family::V6 => RecordType::Aaaa,
        Family::V4 => RecordType::A,
    }
}

impl LoopCore {
    /// Whether races on this loop can ask HTTPS questions: always. A user
    /// resolver answers them (or refuses, which ends the question); without
    /// one, the library's DNS client asks them (also where addresses come
    /// from getaddrinfo: see docs/guide/dns.md).
    pub(super) fn resolves_https(&self, _st: &LoopState) -> bool {
        true
    }

    /// Set up the HEv3 side of race `id` (its tree already expects the
    /// services): the hosts for the report, then ask the first questions.
    /// `ask`: the families a TargetName asks the DNS client (`[A, AAAA]`).
    pub(super) fn start_services(&self, st: &mut LoopState, id: RaceId, spec: &RaceSpec<'_>, ask: [bool; 2]) {
        let Some(entry) = st.races.get_mut(&id) else { return };
        let hosts = spec
            .remotes
            .iter()
            .enumerate()
            .filter_map(|(i, ep)| match ep.host() {
                Some(Host::Name(h)) => Some((i, h.to_string())),
                _ => None,
            })
            .collect();
        entry.dns = Some(Box::new(RaceDns { hosts, user: st.user_resolver.clone(), ask, ..RaceDns::default() }));
        self.ask_resolves(st, id);
    }

    /// Queue an HTTPS answer for the loop and wake it (any thread).
    pub(crate) fn push_service_answer(&self, answer: ServiceAnswer) {
        lock(&self.service_answers).push(answer);
        if let Err(e) = self.waker.wake() {
            log::error!("cannot wake the loop: {e}");
        }
    }

    /// Feed the queued HTTPS answers to their races; how many there were.
    pub(super) fn take_service_answers(&self, st: &mut LoopState) -> usize {
        let answers = std::mem::take(&mut *lock(&self.service_answers));
        let n = answers.len();
        for a in answers {
            let (result, ttl) = match a.result {
                Ok((records, ttl)) => (Ok(records), ttl),
                Err(code) => (Err(code), 0),
            };
            self.on_service_answer(st, a.race, a.endpoint, result, ttl);
        }
        n
    }

    /// THE entry point for an HTTPS answer to race `race`'s open question
    /// for remote endpoint `endpoint` (HEv3 draft §4.2.1): the records (an
    /// empty list for NODATA) or the resolver's error code. `ttl` (seconds)
    /// is logged; caching is the resolver's. Unknown races and endpoints
    /// with no open question are ignored. The race's next questions (an
    /// alias' target, TargetNames' AAAA/A) are asked before it goes on.
    /// Call with the state locked, on the loop's thread.
    pub(super) fn on_service_answer(
        &self,
        st: &mut LoopState,
        race: RaceId,
        endpoint: usize,
        result: Result<Vec<ServiceRecord>, i32>,
        ttl: u32,
    ) {
        let now = self.clock.now();
        let prefix = self.pref64_locked(st);
        let Some(entry) = st.races.get_mut(&race) else {
            self.lingering_answer(st, race, None, endpoint, result.as_ref().map(Vec::len).map_err(|c| *c));
            return;
        };
        let at = now.saturating_sub(entry.started_at);
        if let Some(dns) = entry.dns.as_mut() {
            let i = dns.open.iter().position(|(e, _)| *e == endpoint);
            let name = i.map(|i| dns.open.swap_remove(i).1).unwrap_or_default();
            log::debug!(
                "race {race}: HTTPS answer for endpoint {endpoint} ({name}) at {}: {} (ttl {ttl} s)",
                super::race::Ms(at),
                match &result {
                    Ok(r) => format!("{} record(s)", r.len()),
                    Err(code) => format!("error {code}"),
                }
            );
            dns.record(RecordType::Https, endpoint, name, at, result.as_ref().map(Vec::len).map_err(|c| *c));
        }
        if let Ok(records) = &result {
            // HEv3 -04 §8.2: ipv4hints on a path without IPv4 are synthesized.
            let out = entry.nat64.get_or_insert_with(Default::default);
            let synth = super::nat64::hint_synthesis(prefix, records, out, |v4| self.routes.routed(v4.into()));
            if out.is_empty() {
                entry.nat64 = None;
            }
            if synth.is_some() {
                entry.tree.set_hint_synthesis(synth);
            }
        }
        entry.tree.on_service_answer(now, endpoint, result);
        self.ask_resolves(st, race);
        self.drive(st, race, now);
    }

    /// The AAAA ([`Family::V6`]) or A answer for TargetName `name` of
    /// remote endpoint `endpoint`, asked by race `race` (a
    /// [`crate::engine::service::Resolve`]). The candidates' ports do not
    /// matter (the service's or the caller's is used); their sources do.
    /// Call with the state locked, on the loop's thread.
    pub(super) fn on_target_answer(
        &self,
        st: &mut LoopState,
        race: RaceId,
        endpoint: usize,
        name: &str,
        family: Family,
        result: Result<Vec<Candidate>, i32>,
    ) {
        let now = self.clock.now();
        let prefix = self.pref64_locked(st);
        let Some(entry) = st.races.get_mut(&race) else { return };
        let mut result = result;
        // HEv3 -04 §8.2: a TargetName's A answer is synthesized as the host's.
        super::nat64::on_answer(prefix, entry, &QueryKey { endpoint, family }, &mut result);
        let at = now.saturating_sub(entry.started_at);
        if let Some(dns) = entry.dns.as_mut() {
            dns.record(record_type(family), endpoint, name.to_string(), at, result.as_ref().map(Vec::len).map_err(|c| *c));
        }
        entry.tree.on_target_answer(now, endpoint, name, family, result);
        self.drive(st, race, now);
    }

    /// A resolver answer whose key is a TargetName's slot (at or above
    /// [`TARGET_KEY_BASE`]): to [`LoopCore::on_target_answer`].
    pub(super) fn route_target_answer(&self, st: &mut LoopState, race: RaceId, key: QueryKey, result: Result<Vec<Candidate>, i32>) {
        let Some(slot) = key.endpoint.checked_sub(TARGET_KEY_BASE) else { return };
        let target = st.races.get(&race).and_then(|e| e.dns.as_ref()).and_then(|d| d.targets.get(slot)).cloned();
        if let Some((endpoint, name)) = target {
            self.on_target_answer(st, race, endpoint, &name, key.family, result);
        }
    }

    /// Record a host's AAAA/A answer in the race's DNS report, if it keeps
    /// one.
    pub(super) fn note_host_answer(entry: &mut RaceEntry, key: &QueryKey, result: &Result<Vec<Candidate>, i32>, at: Micros) {
        if let Some(dns) = entry.dns.as_mut() {
            let name = dns.host(key.endpoint);
            dns.record(record_type(key.family), key.endpoint, name, at, result.as_ref().map(Vec::len).map_err(|c| *c));
        }
    }

    /// Ask the library's DNS client one of the engine's questions (no
    /// user resolver): HTTPS over DNS; a TargetName's AAAA/A as the race's
    /// own names go (the DNS client, or getaddrinfo where nsswitch.conf
    /// needs it), with a query key at [`TARGET_KEY_BASE`] and above. A name
    /// that cannot be a C string fails its question at once, and so does a
    /// family the race's paths have no connectivity for (HEv3 -04 §4.1:
    /// not asked; `EAI_ADDRFAMILY` in the report), unless the hosts file
    /// or RFC 6761 answers the name.
    fn ask_dns_client(&self, dns: &mut RaceDns, id: RaceId, r: crate::engine::service::Resolve) {
        let host = std::ffi::CString::new(r.name.as_str());
        if r.kind == QueryKind::Https {
            return match host {
                Ok(host) => self.resolver.submit_name(super::resolver::NameJob {
                    race: id,
                    endpoint: r.endpoint,
                    host,
                    port: 0,
                    families: Vec::new(),
                    https: true,
                }),
                // A NUL byte in a name (only a hostile record gives one).
                Err(_) => self.push_service_answer(ServiceAnswer { race: id, endpoint: r.endpoint, result: Err(libc::EAI_NONAME) }),
            };
        }
        let family = if r.kind == QueryKind::Aaaa { Family::V6 } else { Family::V4 };
        let asked = dns.ask[if family == Family::V6 { 1 } else { 0 }]
            || super::connectivity::answered_locally(&self.resolver.dns(), &r.name);
        let key = QueryKey { endpoint: TARGET_KEY_BASE + dns.targets.len(), family };
        dns.targets.push((r.endpoint, r.name));
        let fail = |code| self.resolver.deliver(super::resolver::Answer { race: id, key, result: Err(code), ttl: None });
        match host {
            Ok(_) if !asked => fail(EAI_ADDRFAMILY),
            Ok(host) => self.resolver.submit(vec![super::resolver::Job { race: id, key, host, port: 0 }]),
            Err(_) => fail(libc::EAI_NONAME),
        }
    }

    /// Ask the resolver every question the race's tree has queued.
    pub(super) fn ask_resolves(&self, st: &mut LoopState, id: RaceId) {
        let user = st.user_resolver.clone();
        loop {
            let Some(entry) = st.races.get_mut(&id) else { return };
            let Some(r) = entry.tree.poll_resolve() else { return };
            let Some(dns) = entry.dns.as_mut() else { return };
            let Some(user) = &user else {
                // The system resolver: the question goes to the DNS client.
                if r.kind == QueryKind::Https {
                    dns.open.push((r.endpoint, r.name.clone()));
                }
                self.ask_dns_client(dns, id, r);
                continue;
            };
            match r.kind {
                QueryKind::Https => {
                    dns.open.push((r.endpoint, r.name.clone()));
                    let q = Arc::new(ServiceQueryHandle {
                        core: self.me.clone(),
                        race: id,
                        endpoint: r.endpoint,
                        name: r.name.clone(),
                        done: AtomicBool::new(false),
                    });
                    dns.https.push(Arc::clone(&q));
                    let accepted = user.resolve_https(Arc::clone(&q), &r.name);
                    dns.accepted |= accepted.is_ok();
                    if let Err(code) = accepted {
                        // Refused at once (the trait's default): the race
                        // takes it now, as if answered before any other.
                        q.end();
                        dns.open.pop();
                        dns.https.pop();
                        let at = self.clock.now();
                        dns.record(RecordType::Https, r.endpoint, r.name, at.saturating_sub(entry.started_at), Err(code));
                        entry.tree.on_service_answer(at, r.endpoint, Err(code));
                    }
                }
                QueryKind::Aaaa | QueryKind::A => {
                    let family = if r.kind == QueryKind::Aaaa { Family::V6 } else { Family::V4 };
                    let slot = dns.targets.len();
                    dns.targets.push((r.endpoint, r.name.clone()));
                    let query = Arc::new(super::resolver::QueryHandle {
                        resolver: Arc::downgrade(&self.resolver),
                        race: id,
                        key: QueryKey { endpoint: TARGET_KEY_BASE + slot, family },
                        port: 0,
                        done: AtomicBool::new(false),
                    });
                    let u = entry.user_queries.get_or_insert_with(|| Box::new(UserQueries { resolver: Arc::clone(user), queries: Vec::new() }));
                    u.queries.push(Arc::clone(&query));
                    if let Err(code) = user.resolve(Arc::clone(&query), &r.name, family) {
                        query.answer(Err(code));
                    }
                }
            }
        }
    }

}

impl LoopCore {
    /// A won race whose resolver took its HTTPS questions: keep its DNS
    /// side and its open questions for [`LINGER`] (their answers go into
    /// the connection's report), with a timer to cancel them then. False
    /// (nothing taken) for any other race.
    pub(super) fn linger(
        lingering: &mut Vec<Lingering>,
        timers: &mut super::timers::TimerHeap,
        id: RaceId,
        entry: &mut RaceEntry,
        now: Micros,
    ) -> bool {
        if !entry.dns.as_ref().is_some_and(|d| d.accepted) {
            return false;
        }
        let until = now.saturating_add(LINGER);
        let dns = entry.dns.take().expect("checked");
        let queries = entry.user_queries.take();
        lingering.push(Lingering { race: id, conn: Arc::downgrade(&entry.conn), started_at: entry.started_at, until, dns, queries });
        timers.push(until, super::timers::TimerOwner::Race(id));
        true
    }

    /// An answer (address or HTTPS) for a race no longer in flight: into
    /// its connection's report if it lingers (see [`LINGER`]). False if
    /// it does not.
    pub(super) fn lingering_answer(&self, st: &mut LoopState, race: RaceId, key: Option<QueryKey>, endpoint: usize, result: Result<usize, i32>) -> bool {
        let now = self.clock.now();
        let Some(l) = st.lingering.iter_mut().find(|l| l.race == race && now < l.until) else { return false };
        let (record, endpoint, name) = match key {
            None => {
                let i = l.dns.open.iter().position(|(e, _)| *e == endpoint);
                (RecordType::Https, endpoint, i.map(|i| l.dns.open.swap_remove(i).1).unwrap_or_default())
            }
            Some(k) => match k.endpoint.checked_sub(TARGET_KEY_BASE).and_then(|s| l.dns.targets.get(s)) {
                Some((e, name)) => (record_type(k.family), *e, name.clone()),
                None => (record_type(k.family), k.endpoint, l.dns.host(k.endpoint)),
            },
        };
        let answer = DnsAnswerReport { record, endpoint, name, at_us: now.saturating_sub(l.started_at), result };
        if let Some(conn) = l.conn.upgrade() {
            let mut c = conn.lock();
            c.race_result().dns.get_or_insert_with(Box::default).answers.push(answer);
        }
        true
    }

    /// Cancel the questions of races that lingered [`LINGER`] (all of them
    /// with `now` = `Micros::MAX`).
    pub(super) fn expire_lingering(&self, st: &mut LoopState, now: Micros) {
        let mut i = 0;
        while i < st.lingering.len() {
            if st.lingering[i].until > now {
                i += 1;
                continue;
            }
            let l = st.lingering.swap_remove(i);
            let mut dns = l.dns;
            cancel_https(&mut dns);
            if let Some(u) = l.queries {
                for q in u.queries {
                    if !q.done.load(Ordering::Acquire) {
                        q.end();
                        u.resolver.cancel(q);
                    }
                }
            }
        }
        if st.lingering.is_empty() {
            st.lingering = Vec::new();
        }
    }

    /// Whether a race timer at `at` belongs to a lingering race.
    pub(super) fn lingers_until(lingering: &[Lingering], race: RaceId, at: Micros) -> bool {
        lingering.iter().any(|l| l.race == race && l.until == at)
    }
}

/// Cancel the open HTTPS questions of a race's DNS side.
fn cancel_https(dns: &mut RaceDns) {
    for q in std::mem::take(&mut dns.https) {
        if !q.done.load(Ordering::Acquire) {
            q.end();
            if let Some(u) = &dns.user {
                u.cancel_https(q);
            }
        }
    }
}

/// Cancel the HTTPS questions of a race that ended.
pub(super) fn end_service_queries(entry: &mut RaceEntry) {
    if let Some(dns) = entry.dns.as_mut() {
        cancel_https(dns);
    }
}

/// The DNS report of a race entry: its services in HEv3 §5 order, its
/// answers.
pub(super) fn dns_report(entry: &RaceEntry) -> DnsReport {
    let Some(dns) = entry.dns.as_ref() else { return DnsReport::default() };
    let services = entry.tree.services();
    let order = entry.tree.service_order();
    DnsReport {
        services: order
            .into_iter()
            .map(|i| {
                let s = &services[i];
                ServiceReport {
                    endpoint: s.endpoint,
                    priority: s.priority,
                    target: s.target.to_string(),
                    port: s.port,
                    alpn: s.alpn.iter().map(|a| a.to_string()).collect(),
                    ech: s.ech.is_some(),
                }
            })
            .collect(),
        answers: dns.answers.clone(),
    }
}
