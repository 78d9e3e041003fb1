//! HTTPS records in a race: the HEv3 rules of
//! draft-ietf-happy-happyeyeballs-v3-04 §4.2–§7 over RFC 9460 records.
//!
//! A race that expects HTTPS answers ([`super::race::Race::expect_services`],
//! [`super::tree::Tree::expect_services`]) keeps its HTTPS state; a race
//! that does not keeps nothing more and behaves as RFC 8305 alone.
//!
//! # The conversation with the runtime
//!
//! The engine asks, the runtime resolves and answers; the engine never
//! names a DNS server or a wire format. Every question is a [`Resolve`]
//! drained with `poll_resolve` (race or tree) after each input:
//!
//! - `Resolve { kind: Https, name }`: ask the HTTPS records of `name`;
//!   answer with `on_service_answer(now, endpoint, Ok(records) | Err(code))`.
//!   One HTTPS question per endpoint is open at a time: the first (the
//!   QNAME of [`HttpsQuery::qname`]) is asked when the race learns it
//!   expects services, the next only to follow an AliasMode record
//!   (RFC 9460 §2.4.2).
//! - `Resolve { kind: Aaaa | A, name }`: ask the addresses of a ServiceMode
//!   TargetName that is not the endpoint's host (§4.2.1: "clients are still
//!   required to issue A and AAAA queries for those TargetNames"); answer
//!   with `on_target_answer(now, endpoint, name, family, result)`. The
//!   host's own AAAA and A are the race's usual [`super::QueryKey`]
//!   queries.
//!
//! # Rules
//!
//! - §4.2: racing starts once an address answer arrived (addresses from
//!   AAAA, A or an ipv4hint/ipv6hint), the preferred family (AAAA) has
//!   answered, and every HTTPS question has ended (answered or failed);
//!   or once an address answer arrived and the Resolution Delay has passed
//!   since the first one. With [`ServiceSpec::ech_required`] (§6.3) racing
//!   never starts before every HTTPS question has ended.
//! - §4.2.1, RFC 9460 §2.4: only ServiceMode records make services; an
//!   AliasMode record is followed (its TargetName is asked next; any
//!   ServiceMode record in the same set is ignored), at most
//!   [`MAX_ALIAS_CHAIN`] times; a loop or a longer chain ends the HTTPS
//!   question with no service (the race goes on with A/AAAA). An AliasMode
//!   record to "." means no service.
//! - RFC 9460 §8 / §7.1.2, HEv3 §6.2: a record with a mandatory key the
//!   library does not know is skipped; the record's ALPN set is its "alpn"
//!   ids plus "http/1.1" unless "no-default-alpn"; a record whose set has
//!   nothing in common with the caller's ALPN list (when not empty) is
//!   skipped. A service's [`Service::alpn`] is the usable set, in the
//!   caller's order of preference when the caller gave one.
//! - RFC 9460 §7.3, HEv3 §4.2.1 and §7: a service's hints stand in for
//!   its TargetName's addresses of one family until that family's query
//!   answers (an answer replaces them, an error keeps them); a hint not
//!   confirmed and not yet attempted is then dropped.
//! - HEv3 -04 §8.2, RFC 8305 §7.1: on a path with no IPv4 route and a
//!   NAT64 prefix (the runtime decides, [`super::race::Race::set_hint_synthesis`]),
//!   ipv4hints are raced as their RFC 6052 synthesis, as A answers are.
//! - RFC 9460 §7.2: a service's port replaces the caller's on its
//!   candidates. The host's addresses belong to a ServiceMode record with
//!   TargetName "." (at the end of the alias chain, "." is the alias'
//!   name: a TargetName to resolve). Addresses no usable service claims
//!   are the fallback: the caller's port, no ALPN, sorted last (§5.2).
//! - §5, sorting: with `ech_required`, services with an ECH config first;
//!   then by SvcPriority, lowest first, services of equal SvcPriority in a
//!   shuffled order drawn from [`ServiceSpec::seed`]; each service is one
//!   group (its ALPN set and ECH config go with it); the fallback group
//!   last. Inside a group, RFC 6724 §6 and family interleaving
//!   ([`super::sort::order`]). ALPN is a filter, not a level of the sort
//!   (§5.1.1: clients SHOULD avoid grouping separately when their use of a
//!   protocol is not critical).
//! - §4.3, §7: every change re-derives the candidate list: new endpoints
//!   are added and the whole list re-sorted; endpoints no longer derived
//!   are removed if not yet attempted; attempts in flight are never
//!   cancelled by an answer.
//!
//! An address is one candidate: when two services claim it, it goes with
//! the first service in the order above.

use super::nat64::{is_host_or_link_scoped, synthesize, Pref64};
use super::{Candidate, Family, Micros};
use crate::vocabulary::svcb::{key, ServiceRecord};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The longest AliasMode chain followed. RFC 9460 §2.4.2 lets clients
/// bound chains and says chained aliases SHOULD NOT be published; 8 is
/// the CNAME chain bound of common stub resolvers, and keeps a hostile
/// answer from making a race ask without end.
pub const MAX_ALIAS_CHAIN: usize = 8;

/// Most services a race keeps (their index is a `u8`, and 255 means "no
/// service"); records beyond are ignored.
pub const MAX_SERVICES: usize = 254;

/// The type of a question the engine asks the runtime to resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryKind {
    /// HTTPS records (RFC 9460, type 65).
    Https,
    /// AAAA records.
    Aaaa,
    /// A records.
    A,
}

impl QueryKind {
    /// The address query of a family.
    pub fn of(family: Family) -> QueryKind {
        match family {
            Family::V6 => QueryKind::Aaaa,
            Family::V4 => QueryKind::A,
        }
    }
}

/// A question for the runtime (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolve {
    /// Index of the remote endpoint in the Preconnection.
    pub endpoint: usize,
    /// The name to ask, lower case, no final dot.
    pub name: String,
    /// The record type.
    pub kind: QueryKind,
}

/// One endpoint's HTTPS question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpsQuery {
    /// Index of the remote endpoint in the Preconnection.
    pub endpoint: usize,
    /// The endpoint's host name (whose AAAA/A are the race's usual
    /// queries).
    pub host: String,
    /// The first name asked: the host, or `_PORT._https.host` for a port
    /// other than 443 (RFC 9460 §9.1).
    pub qname: String,
    /// The caller's port (for hints, and for the fallback).
    pub port: u16,
}

/// What a race needs to apply the HEv3 rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceSpec {
    /// One per endpoint that expects HTTPS records.
    pub queries: Vec<HttpsQuery>,
    /// The caller's ALPN ids in order of preference; empty = any.
    pub alpn: Vec<String>,
    /// Never race before every HTTPS question has ended (HEv3 §6.3, RFC
    /// 9460 §5.1), and prefer services with an ECH config.
    pub ech_required: bool,
    /// Seed of the shuffle of services of equal SvcPriority (§5.2).
    pub seed: u64,
}

/// One usable ServiceMode record, as the race keeps it (the race's
/// service table, indexed by the `u8` its candidates carry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The endpoint whose HTTPS question gave it.
    pub endpoint: usize,
    /// SvcPriority (≥ 1).
    pub priority: u16,
    /// The effective TargetName (never "."), lower case.
    pub target: Box<str>,
    /// Whether the TargetName is the endpoint's host (its AAAA/A are the
    /// race's own queries).
    pub is_host: bool,
    /// The "port" SvcParam.
    pub port: Option<u16>,
    /// The usable ALPN ids (see the module documentation).
    pub alpn: Box<[Box<str>]>,
    /// The "ech" SvcParam.
    pub ech: Option<Arc<[u8]>>,
    /// The hints, both families.
    pub hints: Box<[IpAddr]>,
    /// Shuffle rank among services of the same SvcPriority.
    rank: u64,
}

/// How one candidate relates to the service table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tag {
    /// Index in the service table, [`NO_SERVICE`] for the fallback.
    pub service: u8,
    /// The address came from an ipv4hint/ipv6hint.
    pub from_hint: bool,
    /// No longer derived from the answers: never attempted from now on.
    pub removed: bool,
}

/// The `Tag::service` of a fallback candidate.
pub const NO_SERVICE: u8 = u8::MAX;

/// One endpoint's HTTPS question as it goes.
#[derive(Debug)]
struct Chain {
    query: HttpsQuery,
    /// Names asked so far (loop detection); the last is the open one.
    asked: Vec<Box<str>>,
    /// Whether the question has ended.
    done: bool,
}

/// The addresses answered for one name of one endpoint.
#[derive(Debug)]
struct Name {
    endpoint: usize,
    /// `None` for the endpoint's host (the race's own queries).
    name: Option<Box<str>>,
    /// AAAA answer (`None` while open or after an error).
    v6: Option<Vec<Candidate>>,
    v4: Option<Vec<Candidate>>,
    open6: bool,
    open4: bool,
}

/// A race's HTTPS state (see the module documentation).
#[derive(Debug)]
pub(crate) struct ServiceState {
    alpn: Box<[Box<str>]>,
    pub(crate) ech_required: bool,
    seed: u64,
    chains: Vec<Chain>,
    pub(crate) services: Vec<Service>,
    names: Vec<Name>,
    /// One per known candidate of the race (same index).
    pub(crate) tags: Vec<Tag>,
    resolves: VecDeque<Resolve>,
    /// Records seen, for the shuffle.
    seen: u64,
    /// Until when the fallback addresses wait for the services' TargetName
    /// answers once racing has started (see [`ServiceState::holds_fallback`]);
    /// `None` before racing starts.
    pub(crate) fallback_hold: Option<Micros>,
    /// The ALPN ids the race's protocol serves (HEv3 §5.1, §6); `None`:
    /// every candidate (see [`ServiceState::set_served`]).
    served: Option<Box<[Box<str>]>>,
    /// The NAT64 prefix IPv4 hints are synthesized under (see
    /// [`ServiceState::set_hint_synthesis`]); `None`: hints as they are.
    hint_synthesis: Option<Pref64>,
}

/// The ALPN id of the fallback (addresses with no HTTPS record): HTTP/1.1,
/// the SVCB default ALPN of HTTPS (RFC 9460 §7.1.2).
pub const DEFAULT_ALPN: &str = "http/1.1";

/// splitmix64: a small seeded mixer for the shuffle rank.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The SvcParamKeys the library understands (RFC 9460 §8: a record whose
/// "mandatory" lists another is skipped).
fn understood(k: u16) -> bool {
    matches!(k, key::ALPN | key::NO_DEFAULT_ALPN | key::PORT | key::IPV4HINT | key::ECH | key::IPV6HINT)
}

/// The SVCB ALPN set of an HTTPS record (RFC 9460 §7.1.2): its ids, plus
/// "http/1.1" unless "no-default-alpn".
pub fn alpn_set(record: &ServiceRecord) -> Vec<String> {
    let mut set = record.params.alpn.clone();
    if !record.params.no_default_alpn && !set.iter().any(|a| a == "http/1.1") {
        set.push("http/1.1".to_string());
    }
    set
}

/// The ALPN ids usable with `record` by a caller offering `caller` (empty
/// = any): the caller's ids in the set, in the caller's order, or the
/// whole set. `None` when the record must be skipped (RFC 9460 §8
/// mandatory keys, HEv3 §6.2 no common ALPN).
pub fn usable_alpn(record: &ServiceRecord, caller: &[impl AsRef<str>]) -> Option<Vec<String>> {
    let p = &record.params;
    if p.mandatory.iter().any(|&k| !understood(k)) {
        return None;
    }
    let set = alpn_set(record);
    if set.is_empty() {
        return None;
    }
    if caller.is_empty() {
        return Some(set);
    }
    let common: Vec<String> =
        caller.iter().map(|c| c.as_ref()).filter(|c| set.iter().any(|s| s == c)).map(str::to_string).collect();
    (!common.is_empty()).then_some(common)
}

impl ServiceState {
    /// The state for `spec`, with the first HTTPS question of each query
    /// queued.
    pub(crate) fn new(spec: ServiceSpec) -> ServiceState {
        let mut state = ServiceState {
            alpn: spec.alpn.iter().map(|a| a.as_str().into()).collect(),
            ech_required: spec.ech_required,
            seed: spec.seed,
            chains: Vec::new(),
            services: Vec::new(),
            names: Vec::new(),
            tags: Vec::new(),
            resolves: VecDeque::new(),
            seen: 0,
            fallback_hold: None,
            served: None,
            hint_synthesis: None,
        };
        for q in spec.queries {
            if state.chains.iter().any(|c| c.query.endpoint == q.endpoint) {
                continue;
            }
            state.resolves.push_back(Resolve { endpoint: q.endpoint, name: q.qname.clone(), kind: QueryKind::Https });
            state.chains.push(Chain { asked: vec![q.qname.as_str().into()], query: q, done: false });
        }
        state
    }

    /// Keep only the candidates a protocol serving `ids` can use (HEv3
    /// §5.1, §6: a protocol branch races the services whose ALPN set has
    /// one of its ids): a service's addresses when its usable ALPN ids
    /// ([`Service::alpn`]) share one with `ids`, and the fallback only when
    /// `ids` has [`DEFAULT_ALPN`]. The service table itself is unchanged.
    pub(crate) fn set_served(&mut self, ids: &[impl AsRef<str>]) {
        self.served = Some(ids.iter().map(|i| i.as_ref().into()).collect());
    }

    /// Synthesize the IPv4 hints under `prefix` (HEv3 -04 §8.2: on an
    /// IPv6-only path the ipv4hint addresses are translated as A answers
    /// are; RFC 8305 §7.1); `None`: no synthesis. An ipv4hint becomes the
    /// IPv6 address [`super::nat64::synthesize`] gives, its own source
    /// (as every hint), on the service's port; a host- or link-scoped one
    /// (0/8, 127/8, 169.254/16, broadcast, HEv3 -04 §8.1) and one the
    /// Well-Known Prefix may not carry (RFC 6052 §3.1) stay IPv4. The
    /// synthesized hints still stand in for the TargetName's A answer
    /// (replaced when it comes). Takes effect at the next derivation (the
    /// next answer).
    pub(crate) fn set_hint_synthesis(&mut self, prefix: Option<Pref64>) {
        self.hint_synthesis = prefix;
    }

    /// The address to race for hint `a`: its synthesis under the hint
    /// prefix when `a` is IPv4 and may be synthesized, else `a`.
    fn hint_address(&self, a: IpAddr) -> IpAddr {
        match (a, &self.hint_synthesis) {
            (IpAddr::V4(v4), Some(prefix)) if !is_host_or_link_scoped(v4) => {
                synthesize(prefix, v4).map_or(a, IpAddr::V6)
            }
            _ => a,
        }
    }

    /// Whether the protocol serves a service with these ALPN ids (the
    /// fallback: `None`).
    fn serves(&self, alpn: Option<&[Box<str>]>) -> bool {
        let Some(served) = &self.served else { return true };
        match alpn {
            Some(ids) => ids.iter().any(|a| served.contains(a)),
            None => served.iter().any(|a| &**a == DEFAULT_ALPN),
        }
    }

    /// The next question for the runtime.
    pub(crate) fn poll_resolve(&mut self) -> Option<Resolve> {
        let r = self.resolves.pop_front();
        if self.resolves.is_empty() {
            self.resolves = VecDeque::new();
        }
        r
    }

    /// Whether every HTTPS question has ended.
    pub(crate) fn https_done(&self) -> bool {
        self.chains.iter().all(|c| c.done)
    }

    /// Whether the service information counts as received (HEv3 §4.2:
    /// "SVCB/HTTPS service information has been received"). §4.2.1 does
    /// not count it until ServiceMode records are available; the library
    /// also waits, in service order, for the first service that has an
    /// address (its TargetName's answer or its hints) or whose TargetName
    /// questions have not all ended empty: otherwise the fallback addresses
    /// (§5.2: last) would be raced, and on a fast path won, before the
    /// records' own targets had a chance. The Resolution Delay still
    /// bounds the wait.
    pub(crate) fn service_info_ready(&self) -> bool {
        if !self.https_done() {
            return false;
        }
        for si in self.service_order() {
            let s = &self.services[si];
            if !s.hints.is_empty() {
                return true;
            }
            let own = if s.is_host { None } else { Some(&*s.target) };
            let Some(n) = self.names.iter().find(|n| n.endpoint == s.endpoint && n.name.as_deref() == own) else {
                continue;
            };
            if [Family::V6, Family::V4].into_iter().any(|f| n.get(f).is_some_and(|l| !l.is_empty())) {
                return true;
            }
            if n.open6 || n.open4 {
                return false;
            }
        }
        true
    }

    /// Whether the fallback addresses (no record, §5.2: the last group)
    /// are held back at `now`, once a service's attempt has been made
    /// (the race checks that): while a service's TargetName questions are
    /// open, until [`ServiceState::fallback_hold`] (racing's start plus one
    /// Connection Attempt Delay). HEv3 §6: the groups are attempted in
    /// order, and a service whose target has not answered yet is an
    /// earlier group than the fallback: a failed first service then goes
    /// on to the second one's target, not to the host's own addresses,
    /// when its answer comes within that time.
    pub(crate) fn holds_fallback(&self, now: Micros) -> bool {
        self.fallback_hold.is_some_and(|t| now < t) && self.targets_open()
    }

    /// Whether known candidate `i` is a fallback address (no record).
    pub(crate) fn is_fallback(&self, i: u32) -> bool {
        self.tags.get(i as usize).is_some_and(|t| t.service == NO_SERVICE)
    }

    /// Whether a TargetName's AAAA or A question is open.
    pub(crate) fn targets_open(&self) -> bool {
        self.names.iter().any(|n| n.name.is_some() && (n.open6 || n.open4))
    }

    /// Whether a question (HTTPS or a TargetName's address) is open.
    pub(crate) fn is_resolving(&self) -> bool {
        !self.https_done() || self.names.iter().any(|n| n.name.is_some() && (n.open6 || n.open4))
    }

    /// The host's own AAAA or A answer for `endpoint`.
    pub(crate) fn take_host_answer(&mut self, endpoint: usize, family: Family, answer: Result<Vec<Candidate>, i32>) {
        let i = self.name_index(endpoint, None);
        let n = &mut self.names[i];
        n.set(family, answer);
    }

    /// A TargetName's AAAA or A answer; false if it was not asked or was
    /// answered already.
    pub(crate) fn take_target_answer(&mut self, endpoint: usize, name: &str, family: Family, answer: Result<Vec<Candidate>, i32>) -> bool {
        let Some(n) = self.names.iter_mut().find(|n| n.endpoint == endpoint && n.name.as_deref() == Some(name)) else {
            return false;
        };
        let open = match family {
            Family::V6 => n.open6,
            Family::V4 => n.open4,
        };
        if open {
            n.set(family, answer);
        }
        open
    }

    fn name_index(&mut self, endpoint: usize, name: Option<&str>) -> usize {
        if let Some(i) = self.names.iter().position(|n| n.endpoint == endpoint && n.name.as_deref() == name) {
            return i;
        }
        let open = name.is_some();
        self.names.push(Name { endpoint, name: name.map(Into::into), v6: None, v4: None, open6: open, open4: open });
        self.names.len() - 1
    }

    /// An answer to `endpoint`'s open HTTPS question. False if none is
    /// open (unexpected or repeated answers are ignored).
    pub(crate) fn take_service_answer(&mut self, endpoint: usize, answer: Result<Vec<ServiceRecord>, i32>) -> bool {
        let Some(ci) = self.chains.iter().position(|c| c.query.endpoint == endpoint && !c.done) else {
            return false;
        };
        let records = match answer {
            Ok(records) => records,
            Err(_) => {
                self.chains[ci].done = true;
                return true;
            }
        };
        if let Some(alias) = records.iter().find(|r| r.is_alias()) {
            self.follow_alias(ci, &alias.target);
            return true;
        }
        self.chains[ci].done = true;
        let chain = &self.chains[ci];
        let owner = chain.asked.last().expect("asked is never empty").clone();
        let aliased = chain.asked.len() > 1;
        let host = chain.query.host.clone();
        for r in records.iter().filter(|r| !r.is_alias()) {
            self.seen += 1;
            self.add_service(endpoint, r, &owner, aliased, &host);
        }
        true
    }

    /// RFC 9460 §2.4.2: ask the alias' TargetName next, unless it is ".",
    /// a loop, or one too many.
    fn follow_alias(&mut self, ci: usize, target: &str) {
        let chain = &mut self.chains[ci];
        let target = target.trim_end_matches('.').to_ascii_lowercase();
        if target.is_empty() || chain.asked.len() > MAX_ALIAS_CHAIN || chain.asked.iter().any(|n| **n == *target) {
            chain.done = true;
            return;
        }
        chain.asked.push(target.as_str().into());
        self.resolves.push_back(Resolve { endpoint: chain.query.endpoint, name: target, kind: QueryKind::Https });
    }

    /// Keep one ServiceMode record if usable; ask its TargetName's
    /// addresses when it is not the host.
    fn add_service(&mut self, endpoint: usize, r: &ServiceRecord, owner: &str, aliased: bool, host: &str) {
        if self.services.len() >= MAX_SERVICES {
            return;
        }
        let Some(alpn) = usable_alpn(r, &self.alpn) else { return };
        let named = r.target.trim_end_matches('.').to_ascii_lowercase();
        // "." is the owner name: the host itself unless aliased; the
        // port-prefixed QNAME (RFC 9460 §9.1) names the host's service.
        let target: String = if named.is_empty() { if aliased { owner.to_string() } else { host.to_string() } } else { named };
        let is_host = target == host;
        let p = &r.params;
        let hints = p.ipv6hint.iter().map(|&a| IpAddr::V6(a)).chain(p.ipv4hint.iter().map(|&a| IpAddr::V4(a))).collect();
        self.services.push(Service {
            endpoint,
            priority: r.priority,
            target: target.as_str().into(),
            is_host,
            port: p.port,
            alpn: alpn.into_iter().map(Into::into).collect(),
            ech: p.ech.clone(),
            hints,
            rank: mix(self.seed ^ self.seen),
        });
        if !is_host && !self.names.iter().any(|n| n.endpoint == endpoint && n.name.as_deref() == Some(&target)) {
            self.name_index(endpoint, Some(&target));
            for kind in [QueryKind::Aaaa, QueryKind::A] {
                self.resolves.push_back(Resolve { endpoint, name: target.clone(), kind });
            }
        }
    }

    /// The candidates the answers give now, with their tags, in service
    /// order then fallback (see the module documentation).
    pub(crate) fn derive(&self) -> Vec<(Candidate, Tag)> {
        let mut out: Vec<(Candidate, Tag)> = Vec::new();
        let mut push = |c: Candidate, tag: Tag| {
            if !out.iter().any(|(k, _)| k.addr == c.addr) {
                out.push((c, tag));
            }
        };
        for &si in &self.service_order() {
            let s = &self.services[si];
            if !self.serves(Some(&s.alpn)) {
                continue;
            }
            let port = s.port.unwrap_or_else(|| self.caller_port(s.endpoint));
            let name = self.names.iter().find(|n| n.endpoint == s.endpoint && n.name.as_deref() == if s.is_host { None } else { Some(&*s.target) });
            for family in [Family::V6, Family::V4] {
                let answered = name.and_then(|n| n.get(family));
                let tag = Tag { service: si as u8, from_hint: answered.is_none(), removed: false };
                match answered {
                    Some(list) => list.iter().for_each(|c| push(Candidate { addr: SocketAddr::new(c.addr.ip(), port), ..*c }, tag)),
                    None => s
                        .hints
                        .iter()
                        .filter(|a| Family::of(&SocketAddr::new(**a, 0)) == family)
                        .map(|&a| self.hint_address(a))
                        .for_each(|a| push(Candidate { addr: SocketAddr::new(a, port), source: Some(a) }, tag)),
                }
            }
        }
        // The fallback: host addresses no usable service claims.
        let fallback = self.serves(None);
        for n in self.names.iter().filter(|n| fallback && n.name.is_none()) {
            if self.services.iter().any(|s| s.endpoint == n.endpoint && s.is_host) {
                continue;
            }
            for family in [Family::V6, Family::V4] {
                for c in n.get(family).unwrap_or(&[]) {
                    push(*c, Tag { service: NO_SERVICE, from_hint: false, removed: false });
                }
            }
        }
        out
    }

    fn caller_port(&self, endpoint: usize) -> u16 {
        self.chains.iter().find(|c| c.query.endpoint == endpoint).map_or(0, |c| c.query.port)
    }

    /// Service indices in sort order (§5): ECH first when required, then
    /// SvcPriority, then the shuffle rank.
    pub(crate) fn service_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.services.len()).collect();
        order.sort_by_key(|&i| self.group_key(i as u8));
        order
    }

    /// The sort key of a candidate's group (smaller first); the fallback
    /// last.
    pub(crate) fn group_key(&self, service: u8) -> (bool, bool, u16, u64, u8) {
        match self.services.get(service as usize) {
            None => (true, true, u16::MAX, u64::MAX, service),
            Some(s) => (false, self.ech_required && s.ech.is_none(), s.priority, s.rank, service),
        }
    }
}

impl Name {
    fn set(&mut self, family: Family, answer: Result<Vec<Candidate>, i32>) {
        let (slot, open) = match family {
            Family::V6 => (&mut self.v6, &mut self.open6),
            Family::V4 => (&mut self.v4, &mut self.open4),
        };
        *open = false;
        if let Ok(list) = answer {
            *slot = Some(list);
        }
    }

    fn get(&self, family: Family) -> Option<&[Candidate]> {
        match family {
            Family::V6 => self.v6.as_deref(),
            Family::V4 => self.v4.as_deref(),
        }
    }
}
