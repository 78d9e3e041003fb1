//! Starting a race: the candidate tree for the spec, the queries it will
//! wait for (AAAA and A per host name, RFC 8305 §3; one per literal),
//! literal addresses answered at once, then the names: from the resolution
//! cache, the system resolver's workers, or the user's resolver.

use crate::vocabulary::state::ConnectionState;
use crate::vocabulary::endpoint::{Host, RemoteEndpoint};
use crate::vocabulary::error::{Error, Result};
use super::callbacks::UserResolver;
use crate::engine::tree::Tree;
use crate::engine::{Candidate, Family, Micros, QueryKey};
use super::timers::RaceId;
use super::conn::{ConnCore};
use super::resolver::{self, Job};
use super::race::{AttemptIos, RaceEntry, RaceOwner, RaceSpec, UserQueries, NOT_ARMED};
use super::tree::race_tree;
use super::{lock, LoopCore, LoopState};
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::Arc;

impl LoopCore {
    /// Start the race of `conn` over the candidate tree of `spec`
    /// (RFC 9623 §4.1): paths × protocols kept by the selection
    /// properties, each racing the resolved endpoints.
    pub(crate) fn start_race(self: &Arc<Self>, conn: &Arc<ConnCore>, spec: &RaceSpec<'_>) -> Result<()> {
        self.discover_pref64_for(spec.remotes);
        let mut st = lock(&self.state);
        if st.shut_down || st.stop_requested || conn.client.is_released() {
            return Err(Error::InvalidState);
        }
        self.start_race_locked(&mut st, conn, spec, RaceOwner::User)?;
        self.sync_wake_timer(&mut st);
        self.wake_loop(&st);
        Ok(())
    }

    /// Start a race with the state locked, for `owner`: its candidate
    /// tree, its race tree with the literal addresses answered, the entry
    /// in the loop's table, the names asked, and its first actions.
    pub(super) fn start_race_locked(
        &self,
        st: &mut LoopState,
        conn: &Arc<ConnCore>,
        spec: &RaceSpec<'_>,
        owner: RaceOwner,
    ) -> Result<RaceId> {
        let (paths, branches) = race_tree(st, spec);
        if branches.is_empty() {
            return Err(Error::NoCandidates);
        }
        let Some(id) = st.races.next_id() else {
            return Err(Error::Io(libc::ENOMEM));
        };
        {
            let mut c = conn.lock();
            if c.phase != ConnectionState::Idle || c.released {
                return Err(Error::InvalidState);
            }
            c.phase = ConnectionState::Establishing;
            c.race = NonZeroU64::new(id);
        }
        let now = self.clock.now();
        let pref64 = self.pref64_locked(st);
        let (queries, mut pruning, target_ask) = self.plan_queries(st, spec.remotes, &paths, &branches, pref64.is_some());
        let mut tree = Tree::new(spec.config, now, queries.keys(), &branches);
        // HEv3: the HTTPS questions, before any answer (literals too).
        let services = if self.resolves_https(st) { super::https::service_spec(spec, id ^ now) } else { None };
        let hev3 = services.is_some();
        if let Some(services) = services {
            tree.expect_services(services);
        }
        // HEv3 §5.1, §6: each protocol branch races what its ALPN ids serve.
        let served: Box<[(usize, Vec<String>)]> = if spec.protocol_alpn.is_empty() {
            Box::default()
        } else {
            (st.protocols.iter().enumerate())
                .filter_map(|(i, p)| {
                    let name = p.name.to_bytes();
                    spec.protocol_alpn.iter().find(|(n, _)| n.as_bytes() == name).map(|(_, ids)| (i, ids.clone()))
                })
                .collect()
        };
        if !served.is_empty() {
            tree.serve_alpn(|p| served.iter().find(|(i, _)| *i == p).map(|(_, ids)| ids.clone()));
        }
        if !spec.avoid.is_empty() {
            tree.set_avoided(spec.avoid);
        }
        // HEv3 -04 §8: addresses inside the NAT64 prefix sort as IPv4.
        if pref64.is_some() {
            tree.set_pref64(pref64);
        }
        // Sorting only matters with more than one candidate; a lone literal
        // needs no source address lookup.
        let LoopState { history, protocols, .. } = &mut *st;
        let connectivity = &self.connectivity;
        // The literal's route was looked up (and remembered) when the race
        // asked whether it needs a prefix: no second rtnetlink round trip.
        let routed = |v4: std::net::Ipv4Addr| self.routes.routed(v4.into());
        let literals = Literals { need_sources: queries.keys().len() > 1, now, pref64: pref64.as_ref(), routed: &routed };
        let synthesized = literals.answer(
            &mut tree,
            spec.remotes,
            |candidates| connectivity.prune(pruning.as_deref_mut(), candidates, 0),
            |tree, candidates| history.hint_answer(tree, id, &paths, protocols, candidates, now),
        );
        let inserted = st.races.insert(RaceEntry {
            tree,
            conn: Arc::clone(conn),
            started_at: now,
            io: AttemptIos::default(),
            armed: NOT_ARMED,
            paths,
            user_queries: None,
            owner,
            from_cache: false,
            dns: None,
            nat64: (!synthesized.is_empty()).then(|| Box::new(synthesized)),
            alpn: super::stage::AlpnList::for_race(spec.alpn),
            served,
            pruning,
        });
        debug_assert_eq!(inserted, Some(id));
        log_start(id, owner, spec, &branches);
        if hev3 {
            // HEv3 draft §4.1: the HTTPS question first, then AAAA, A.
            self.start_services(st, id, spec, target_ask);
        }
        match st.user_resolver.clone() {
            None => self.resolve_names(st, id, spec.remotes, queries.keys(), now),
            Some(r) => self.ask_user_resolver(st, id, &r, spec.remotes),
        }
        self.drive(st, id, now);
        Ok(id)
    }

    /// HEv3 -04 §4.1: the queries of a race over `paths` (the families its
    /// paths can send with; A also with a NAT64 prefix, `pref64`) and what
    /// it may prune (see [`super::connectivity`]). Only the DNS client's
    /// questions follow connectivity: a name it answers locally (hosts
    /// file, localhost), getaddrinfo's and a user resolver's ask both.
    /// The third value is the families an HTTPS TargetName asks the DNS
    /// client (`[A, AAAA]`).
    fn plan_queries(
        &self,
        st: &LoopState,
        remotes: &[RemoteEndpoint],
        paths: &[super::race::RacePath],
        branches: &[crate::engine::tree::PathBranch],
        pref64: bool,
    ) -> (QueryPlan, Option<Box<super::connectivity::Pruning>>, [bool; 2]) {
        let kernel = |p: usize| st.protocols.get(p).is_some_and(|e| !matches!(e.kind, super::protocol::ProtocolKind::User(_)));
        let reach = self.connectivity.for_race(paths, branches, kernel);
        let ask = super::connectivity::ask_families(reach.ask, pref64);
        let names = remotes.iter().any(|ep| matches!(ep.host(), Some(Host::Name(_))));
        let dns = (ask != [true, true] && names && st.user_resolver.is_none())
            .then(|| self.resolver.dns())
            .filter(|d| d.answers_addresses());
        let queries = QueryPlan::of(remotes, |host| match &dns {
            Some(d) if !super::connectivity::answered_locally(d, host) => ask,
            _ => [true, true],
        });
        let target_ask = if dns.is_some() { ask } else { [true, true] };
        (queries, reach.pruning, target_ask)
    }

    /// Ask the system resolver for the race's host names (AAAA and A each),
    /// unless the resolution cache has them: cached answers are all known
    /// at once, like literals, and sorted together before the first
    /// attempt.
    fn resolve_names(&self, st: &mut LoopState, id: RaceId, remotes: &[RemoteEndpoint], asked: &[QueryKey], now: Micros) {
        let mut cached = Vec::new();
        let mut jobs = Vec::new();
        for (i, ep) in remotes.iter().enumerate() {
            let (Some(Host::Name(host)), Some(port)) = (ep.host(), ep.port()) else { continue };
            let mut kept = self.resolver.cache.get(host, port);
            for (family, kept) in [Family::V6, Family::V4].into_iter().zip(&mut kept) {
                let key = QueryKey { endpoint: i, family };
                if !asked.contains(&key) {
                    continue; // HEv3 -04 §4.1: no connectivity in this family
                }
                if let Some(answer) = kept.take() {
                    cached.push((key, answer));
                } else if let Some(host) = ep.name_cstring() {
                    jobs.push(Job { race: id, key, host, port });
                }
            }
        }
        self.resolver.submit(jobs);
        if !cached.is_empty() {
            let LoopState { races, history, protocols, .. } = &mut *st;
            if let Some(e) = races.get_mut(&id) {
                for (key, answer) in &mut cached {
                    if let Ok(candidates) = answer.as_mut() {
                        self.connectivity.prune(e.pruning.as_deref_mut(), candidates, now.saturating_sub(e.started_at));
                    }
                    super::events::log_answer(id, key, answer, now.saturating_sub(e.started_at), " (from the cache)");
                    if let Ok(candidates) = answer {
                        history.hint_answer(&mut e.tree, id, &e.paths, protocols, candidates, now);
                    }
                }
                e.tree.on_answers(now, cached);
                e.from_cache = true;
            }
        }
    }

    /// Ask the user's resolver for the race's host names (AAAA, then A);
    /// the race keeps the queries, to cancel them if it ends first. The
    /// resolver may answer at once: its answers are queued for the loop
    /// like later ones.
    fn ask_user_resolver(&self, st: &mut LoopState, id: RaceId, r: &Arc<dyn UserResolver>, remotes: &[RemoteEndpoint]) {
        for (i, ep) in remotes.iter().enumerate() {
            let (Some(Host::Name(host)), Some(port)) = (ep.host(), ep.port()) else { continue };
            for family in [Family::V6, Family::V4] {
                let query = Arc::new(resolver::QueryHandle {
                    resolver: Arc::downgrade(&self.resolver),
                    race: id,
                    key: QueryKey { endpoint: i, family },
                    port,
                    done: std::sync::atomic::AtomicBool::new(false),
                });
                if let Err(code) = r.resolve(Arc::clone(&query), host, family) {
                    query.answer(Err(code));
                }
                if let Some(e) = st.races.get_mut(&id) {
                    let u = e.user_queries.get_or_insert_with(|| {
                        Box::new(UserQueries { resolver: Arc::clone(r), queries: Vec::new() })
                    });
                    u.queries.push(query);
                }
            }
        }
    }
}

/// Log (info) a race's start: what it races (its literal addresses and
/// names, paths and protocols, the candidates known so far) and its
/// options (RFC 8305 §3–§5).
fn log_start(id: RaceId, owner: RaceOwner, spec: &RaceSpec<'_>, branches: &[crate::engine::tree::PathBranch]) {
    if !log::log_enabled!(log::Level::Info) {
        return;
    }
    let literals = spec.remotes.iter().filter(|ep| matches!(ep.host(), Some(Host::Ip(_)))).count();
    let names = spec.remotes.iter().filter(|ep| matches!(ep.host(), Some(Host::Name(_)))).count();
    let leaves: usize = branches.iter().map(|b| b.protocols.len()).sum();
    let c = &spec.config;
    let delay = if c.connection_attempt_delay == Micros::MAX {
        "none (failover)".to_owned()
    } else {
        super::race::Ms(c.connection_attempt_delay).to_string()
    };
    log::info!(
        "race {id}{} started: {} candidate(s) known ({literals} literal address(es) × {leaves} path/protocol branch(es)), \
         {names} name(s) to resolve; attempt delay {delay}, resolution delay {}, first address family count {}, \
         race count {}",
        super::race::RaceOwnerName(owner),
        literals * leaves,
        super::race::Ms(c.resolution_delay),
        c.first_address_family_count,
        if c.race_count == usize::MAX { "all (immediate)".to_owned() } else { c.race_count.to_string() },
    );
}

/// The queries a race waits for, in endpoint order: one per literal
/// address (its family), AAAA and A per host name (RFC 8305 §3), each
/// only when `ask(host)` (`[A, AAAA]`) says so (HEv3 -04 §4.1, see
/// [`super::connectivity::ask_families`]). On the stack for a few
/// endpoints (the common case), else in a Vec.
struct QueryPlan {
    few: [QueryKey; 8],
    many: Vec<QueryKey>,
    n: usize,
}

impl QueryPlan {
    fn of(remotes: &[RemoteEndpoint], ask: impl Fn(&str) -> [bool; 2]) -> QueryPlan {
        let mut plan = QueryPlan { few: [QueryKey { endpoint: 0, family: Family::V4 }; 8], many: Vec::new(), n: 0 };
        for (i, ep) in remotes.iter().enumerate() {
            match ep.host() {
                Some(Host::Ip(ip)) => {
                    let family = if ip.is_ipv6() { Family::V6 } else { Family::V4 };
                    plan.push(QueryKey { endpoint: i, family });
                }
                host => {
                    let [a, aaaa] = match host {
                        Some(Host::Name(name)) => ask(name),
                        _ => [true, true],
                    };
                    if aaaa || !a {
                        plan.push(QueryKey { endpoint: i, family: Family::V6 });
                    }
                    if a {
                        plan.push(QueryKey { endpoint: i, family: Family::V4 });
                    }
                }
            }
        }
        plan
    }

    fn push(&mut self, q: QueryKey) {
        if self.n < self.few.len() {
            self.few[self.n] = q;
        } else {
            if self.many.is_empty() {
                self.many.extend_from_slice(&self.few);
            }
            self.many.push(q);
        }
        self.n += 1;
    }

    fn keys(&self) -> &[QueryKey] {
        if self.n <= self.few.len() {
            &self.few[..self.n]
        } else {
            &self.many
        }
    }
}

/// How a race answers the queries of its literal addresses: `need_sources`:
/// look up each one's source address (for sorting; a lone literal needs
/// none); `pref64`: the NAT64 prefix; `routed`: whether the host has a
/// route to an IPv4 address.
struct Literals<'a> {
    need_sources: bool,
    now: Micros,
    pref64: Option<&'a crate::engine::nat64::Pref64>,
    routed: &'a dyn Fn(std::net::Ipv4Addr) -> bool,
}

impl Literals<'_> {
    /// Answer the queries of the literal addresses: all known at once, so
    /// the race sorts them together (RFC 6724) before its first attempt;
    /// the first alone is given as one answer (no list of them). With a
    /// NAT64 prefix, an IPv4 literal the host has no IPv4 route to is
    /// raced as its synthesized IPv6 address (RFC 8305 §7.1); those are
    /// returned. `prune` takes out what no path can route (HEv3 -04 §4.1),
    /// before any source address lookup; `hint` gives the race what
    /// history knows of the candidates before they are answered.
    fn answer(
        &self,
        tree: &mut Tree,
        remotes: &[RemoteEndpoint],
        mut prune: impl FnMut(&mut Vec<Candidate>),
        mut hint: impl FnMut(&mut Tree, &[Candidate]),
    ) -> super::nat64::Synthesized {
        let mut first = None;
        let mut literals = Vec::new();
        let mut synthesized = super::nat64::Synthesized::default();
        for (i, ep) in remotes.iter().enumerate() {
            if let (Some(Host::Ip(ip)), Some(port)) = (ep.host(), ep.port()) {
                let addr = super::nat64::literal_destination(
                    self.pref64,
                    SocketAddr::new(*ip, port),
                    &mut synthesized,
                    self.routed,
                );
                let mut candidates = vec![Candidate { addr, source: None }];
                prune(&mut candidates);
                for c in &mut candidates {
                    c.source = if self.need_sources { resolver::source_address(addr) } else { Some(addr.ip()) };
                }
                let family = if ip.is_ipv6() { Family::V6 } else { Family::V4 };
                let literal = (QueryKey { endpoint: i, family }, Ok(candidates));
                match first.take() {
                    None if literals.is_empty() => first = Some(literal),
                    earlier => literals.extend(earlier.into_iter().chain([literal])),
                }
            }
        }
        if let Some((key, answer)) = first {
            if let Ok(candidates) = &answer {
                hint(tree, candidates);
            }
            tree.on_answer(self.now, key, answer);
        } else if !literals.is_empty() {
            for (_, answer) in &literals {
                if let Ok(candidates) = answer {
                    hint(tree, candidates);
                }
            }
            tree.on_answers(self.now, literals);
        }
        synthesized
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn name(host: &str) -> RemoteEndpoint {
        let mut ep = RemoteEndpoint::new();
        ep.with_hostname(host).unwrap();
        ep
    }

    fn v6() -> RemoteEndpoint {
        let mut ep = RemoteEndpoint::new();
        ep.with_ipv6(Ipv6Addr::LOCALHOST);
        ep
    }

    #[test]
    fn a_name_waits_for_aaaa_and_a_a_literal_for_its_family() {
        let plan = QueryPlan::of(&[name("example.com"), v6()], |_| [true, true]);
        let keys: Vec<_> = plan.keys().iter().map(|k| (k.endpoint, k.family)).collect();
        assert_eq!(keys, [(0, Family::V6), (0, Family::V4), (1, Family::V6)]);
        assert!(plan.many.is_empty(), "a few queries stay on the stack");
    }

    #[test]
    fn more_queries_than_fit_on_the_stack_are_all_kept_in_order() {
        let remotes: Vec<_> = (0..5).map(|i| name(&format!("h{i}.example"))).collect();
        let plan = QueryPlan::of(&remotes, |_| [true, true]);
        let keys: Vec<_> = plan.keys().iter().map(|k| (k.endpoint, k.family)).collect();
        let want: Vec<_> = (0..5).flat_map(|i| [(i, Family::V6), (i, Family::V4)]).collect();
        assert_eq!(keys, want);
    }

    #[test]
    fn a_name_asks_only_the_families_connectivity_allows() {
        let remotes = [name("v6.example"), name("v4.example"), name("hosts.example"), v6()];
        let plan = QueryPlan::of(&remotes, |host| match host {
            "v6.example" => [false, true],
            "v4.example" => [true, false],
            _ => [true, true],
        });
        let keys: Vec<_> = plan.keys().iter().map(|k| (k.endpoint, k.family)).collect();
        assert_eq!(keys, [(0, Family::V6), (1, Family::V4), (2, Family::V6), (2, Family::V4), (3, Family::V6)]);
        // A literal is never filtered (pruning handles it); [false, false]
        // never happens, and would still ask AAAA rather than nothing.
        let plan = QueryPlan::of(&[name("x.example")], |_| [false, false]);
        assert_eq!(plan.keys().len(), 1);
    }
}
