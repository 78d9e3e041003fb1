//! Starting a race: the candidate tree for the spec, the queries it will
//! wait for (AAAA and A per host name, RFC 8305 §3; one per literal),
//! literal addresses answered at once, then the names: from the resolution
//! cache, the system resolver's workers, or the user's resolver.

use crate::api::endpoint::Host;
use crate::api::error::{Error, Result};
use crate::api::protocol::ResolverQuery;
use crate::engine::tree::Tree;
use crate::engine::{Candidate, Family, QueryKey};
use super::conn::{ConnCore, Phase};
use super::resolver::{self, Job};
use super::race::*;
use super::tree::*;
use super::{lock, LoopShared, LoopState};
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::Arc;

impl LoopShared {
    /// Start the race of `conn` over the candidate tree of `spec`
    /// (RFC 9623 §4.1): paths × protocols kept by the selection
    /// properties, each racing the resolved endpoints.
    pub(crate) fn start_race(self: &Arc<Self>, conn: &Arc<ConnCore>, spec: &RaceSpec<'_>) -> Result<()> {
        let mut st = lock(&self.state);
        if st.shut_down || st.stop_requested || conn.client.is_released() {
            return Err(Error::InvalidState);
        }
        self.start_race_locked(&mut st, conn, spec, RaceOwner::User)?;
        self.sync_wake_timer(&mut st);
        self.nudge(&st);
        Ok(())
    }

    /// Start a race with the state locked; `pool` marks a pool's race.
    pub(super) fn start_race_locked(
        &self,
        st: &mut LoopState,
        conn: &Arc<ConnCore>,
        spec: &RaceSpec<'_>,
        owner: RaceOwner,
    ) -> Result<u64> {
        let (paths, branches) = race_tree(st, spec);
        if branches.is_empty() {
            return Err(Error::NoCandidates);
        }
        let Some(id) = st.races.next_id() else {
            return Err(Error::Io(libc::ENOMEM));
        };
        {
            let mut c = conn.lock();
            if c.phase != Phase::Idle || c.released {
                return Err(Error::InvalidState);
            }
            c.phase = Phase::Establishing;
            c.race = NonZeroU64::new(id);
        }
        let now = self.clock.now();
        let remotes = spec.remotes;
        // On the stack for a few endpoints (the common case), else a Vec.
        let mut few = [QueryKey { endpoint: 0, family: Family::V4 }; 8];
        let mut many = Vec::new();
        let mut n = 0;
        let mut push = |q: QueryKey| {
            if n < few.len() {
                few[n] = q;
            } else {
                if many.is_empty() {
                    many.extend_from_slice(&few);
                }
                many.push(q);
            }
            n += 1;
        };
        for (i, ep) in remotes.iter().enumerate() {
            match ep.host() {
                Some(Host::Ip(ip)) => {
                    let family = if ip.is_ipv6() { Family::V6 } else { Family::V4 };
                    push(QueryKey { endpoint: i, family });
                }
                _ => {
                    push(QueryKey { endpoint: i, family: Family::V6 });
                    push(QueryKey { endpoint: i, family: Family::V4 });
                }
            }
        }
        let queries: &[QueryKey] = if n <= few.len() { &few[..n] } else { &many };
        let mut race = Tree::new(spec.config, now, queries, &branches);
        if !spec.avoid.is_empty() {
            race.set_avoided(spec.avoid);
        }
        // Sorting only matters with more than one candidate; a lone literal
        // needs no source address lookup.
        let need_sources = queries.len() > 1;
        // The first literal alone is given as one answer (no list of them).
        let mut first = None;
        let mut literals = Vec::new();
        for (i, ep) in remotes.iter().enumerate() {
            if let (Some(Host::Ip(ip)), Some(port)) = (ep.host(), ep.port()) {
                let addr = SocketAddr::new(*ip, port);
                let source = if need_sources { resolver::source_address(addr) } else { Some(addr.ip()) };
                let family = if ip.is_ipv6() { Family::V6 } else { Family::V4 };
                let literal = (QueryKey { endpoint: i, family }, Ok(vec![Candidate { addr, source }]));
                match first.take() {
                    None if literals.is_empty() => first = Some(literal),
                    earlier => literals.extend(earlier.into_iter().chain([literal])),
                }
            }
        }
        // Literal addresses are all known at once: the race sorts them
        // together (RFC 6724) before its first attempt (one alone is the
        // same as one answer).
        if let Some((key, answer)) = first {
            race.on_answer(now, key, answer);
        } else if !literals.is_empty() {
            race.on_answers(now, literals);
        }
        let user_resolver = st.user_resolver.clone();
        let inserted = st.races.insert(RaceEntry {
            race,
            conn: Arc::clone(conn),
            started_at: now,
            io: AttemptIos::default(),
            armed: NOT_ARMED,
            paths,
            user_queries: None,
            owner,
            from_cache: false,
        });
        debug_assert_eq!(inserted, Some(id));
        let mut cached = Vec::new();
        let mut jobs = Vec::new();
        for (i, ep) in remotes.iter().enumerate() {
            let (Some(Host::Name(host)), Some(port)) = (ep.host(), ep.port()) else { continue };
            let mut kept = match user_resolver {
                None => self.resolver.cache.get(host, port),
                Some(_) => [None, None],
            };
            for (family, kept) in [Family::V6, Family::V4].into_iter().zip(&mut kept) {
                let key = QueryKey { endpoint: i, family };
                match &user_resolver {
                    None => {
                        if let Some(answer) = kept.take() {
                            cached.push((key, answer));
                        } else if let Some(host) = ep.name_cstring() {
                            jobs.push(Job { race: id, key, host, port });
                        }
                    }
                    Some(r) => {
                        let query = ResolverQuery(Arc::new(resolver::QueryHandle {
                            resolver: Arc::downgrade(&self.resolver),
                            race: id,
                            key,
                            port,
                            done: std::sync::atomic::AtomicBool::new(false),
                        }));
                        if let Err(code) = r.resolve(query.clone(), host, family) {
                            query.fail(code);
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
        self.resolver.submit(jobs);
        // Cached answers are all known at once, like literals: sorted
        // together before the first attempt.
        if !cached.is_empty() {
            if let Some(e) = st.races.get_mut(&id) {
                e.race.on_answers(now, cached);
                e.from_cache = true;
            }
        }
        self.drive(st, id, now);
        Ok(id)
    }
}

