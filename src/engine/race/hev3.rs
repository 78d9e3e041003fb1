//! The race's side of the HEv3 rules (draft-ietf-happy-happyeyeballs-v3-04
//! §4.2–§7): its inputs for HTTPS answers and TargetName addresses, and
//! the re-derivation and re-sorting of its candidates. The rules
//! themselves are documented in [`crate::engine::service`].

use super::Race;
use crate::engine::service::{Resolve, Service, ServiceSpec, ServiceState, Tag, NO_SERVICE};
use crate::engine::{AttemptId, Candidate, Family, Micros, QueryKey};
use crate::vocabulary::svcb::ServiceRecord;

/// What an attempt's candidate owes to the HTTPS records (HEv3 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptService {
    /// Index in [`Race::services`] of the service the candidate belongs
    /// to; `None` for a fallback address (no record, the caller's port).
    pub service: Option<u8>,
    /// The address came from an ipv4hint/ipv6hint (RFC 9460 §7.3).
    pub from_hint: bool,
}

impl Race {
    /// Expect HTTPS answers (HEv3): apply the rules of
    /// [`crate::engine::service`] from now on. Call right after
    /// [`Race::new`] / [`Race::new_held`], before any answer; the first
    /// HTTPS questions are then ready in [`Race::poll_resolve`]. A spec
    /// with no query still applies the rules (hints, ports, sorting) to
    /// nothing: the race behaves as RFC 8305 alone, but sorted as
    /// fallback candidates.
    pub fn expect_services(&mut self, spec: ServiceSpec) {
        // Too late once an answer was taken: the race stays RFC 8305.
        if self.finished || self.queries.iter().any(|(_, answered)| *answered) {
            return;
        }
        self.svc = Some(Box::new(ServiceState::new(spec)));
    }

    /// Race the IPv4 hints of the HTTPS records as their RFC 6052
    /// synthesis under `prefix` (HEv3 -04 §8.2): each ipv4hint becomes the
    /// address [`crate::engine::nat64::synthesize`] gives, except a host- or
    /// link-scoped one (HEv3 -04 §8.1) and one the Well-Known Prefix may
    /// not carry (RFC 6052 §3.1), which stay IPv4; `None`: as they are. The
    /// runtime calls it when the path has no IPv4 route to them and knows
    /// a NAT64 prefix. Takes effect at the next answer; no-op on a race
    /// that expects no services.
    pub fn set_hint_synthesis(&mut self, prefix: Option<crate::engine::nat64::Pref64>) {
        if let Some(svc) = &mut self.svc {
            svc.set_hint_synthesis(prefix);
        }
    }

    /// Race only the candidates a protocol serving the ALPN ids `ids` can
    /// use (HEv3 §5.1, §6): the addresses of services whose usable ALPN
    /// ids share one with `ids`, and the fallback (addresses with no HTTPS
    /// record, or every address of a race without HTTPS records) only when
    /// `ids` has [`crate::engine::service::DEFAULT_ALPN`]. Call after
    /// [`Race::expect_services`] (if any), before any answer; a race that
    /// expects no services then applies the rules to no query (its
    /// addresses are all fallback). Ignored once an answer was taken.
    pub fn serve_alpn(&mut self, ids: &[impl AsRef<str>]) {
        if self.finished || self.queries.iter().any(|(_, answered)| *answered) {
            return;
        }
        if self.svc.is_none() {
            self.svc = Some(Box::new(ServiceState::new(ServiceSpec::default())));
        }
        if let Some(svc) = &mut self.svc {
            svc.set_served(ids);
        }
    }

    /// The next question for the runtime (see [`crate::engine::service`]).
    pub fn poll_resolve(&mut self) -> Option<Resolve> {
        self.svc.as_mut()?.poll_resolve()
    }

    /// The race's service table: the usable ServiceMode records, indexed
    /// by [`AttemptService::service`]. Empty without HTTPS records.
    pub fn services(&self) -> &[Service] {
        self.svc.as_ref().map_or(&[], |s| &s.services)
    }

    /// Indices into [`Race::services`] in the order of HEv3 §5 (the order
    /// their candidates are attempted).
    pub fn service_order(&self) -> Vec<usize> {
        self.svc.as_ref().map_or_else(Vec::new, |s| s.service_order())
    }

    /// What attempt `attempt`'s candidate owes to the HTTPS records.
    pub fn attempt_service(&self, attempt: AttemptId) -> Option<AttemptService> {
        let a = self.attempts.get(attempt)?;
        let tag = self.svc.as_ref().and_then(|s| s.tags.get(a.candidate as usize)).copied().unwrap_or(Tag { service: NO_SERVICE, ..Tag::default() });
        Some(AttemptService { service: (tag.service != NO_SERVICE).then_some(tag.service), from_hint: tag.from_hint })
    }

    /// The answer to the endpoint's open HTTPS question: records, or an
    /// error code. Ignored when none is open or the race has ended.
    pub fn on_service_answer(&mut self, now: Micros, endpoint: usize, answer: Result<Vec<ServiceRecord>, i32>) {
        if self.finished {
            return;
        }
        if let Some(svc) = &mut self.svc {
            if svc.take_service_answer(endpoint, answer) {
                self.rederive(now);
            }
        }
        self.pump(now);
    }

    /// The answer to a TargetName's AAAA ([`Family::V6`]) or A question
    /// (asked by a [`Resolve`]). The candidates' ports are ignored: the
    /// service's (or the caller's) is used. Ignored when not asked, given
    /// twice, or after the end.
    pub fn on_target_answer(&mut self, now: Micros, endpoint: usize, name: &str, family: Family, answer: Result<Vec<Candidate>, i32>) {
        if self.finished {
            return;
        }
        if let Some(svc) = &mut self.svc {
            if svc.take_target_answer(endpoint, name, family, answer) {
                self.rederive(now);
            }
        }
        self.pump(now);
    }

    /// The host's own AAAA/A answer, with services expected.
    pub(super) fn take_host_answer(&mut self, now: Micros, query: QueryKey, answer: Result<Vec<Candidate>, i32>) {
        match &answer {
            Err(code) => self.last_resolution_error = *code,
            Ok(list) if !list.is_empty() && query.family == Family::V6 => self.aaaa_answered = true,
            Ok(_) => {}
        }
        let Some(svc) = &mut self.svc else { return };
        svc.take_host_answer(query.endpoint, query.family, answer);
        self.rederive(now);
    }

    /// HEv3 §4.3 / §7: merge what the answers give now into the known
    /// candidates (append-only: attempts point into them), drop those no
    /// longer given that were not attempted, and re-sort.
    fn rederive(&mut self, now: Micros) {
        let Some(svc) = &mut self.svc else { return };
        let desired = svc.derive();
        let attempted = |i: usize, attempts: &[super::Attempt]| attempts.iter().any(|a| a.candidate as usize == i);
        for (i, tag) in svc.tags.iter_mut().enumerate() {
            if !attempted(i, &self.attempts) && !desired.iter().any(|(c, _)| c.addr == self.known[i].addr) {
                tag.removed = true;
            }
        }
        for (c, tag) in desired {
            match self.known.iter().position(|k| k.addr == c.addr) {
                Some(i) if !attempted(i, &self.attempts) => svc.tags[i] = tag,
                Some(_) => {}
                None => {
                    self.known.push(c);
                    svc.tags.push(tag);
                }
            }
        }
        if self.first_a_answer.is_none() && svc.tags.iter().any(|t| !t.removed) {
            // §4.2: the Resolution Delay runs from the first address
            // answer of any family (hints included).
            self.first_a_answer = Some(now);
        }
        self.reorder();
    }

    /// HEv3 §5: groups in service order, fallback last; inside a group
    /// RFC 6724 and interleaving (addresses inside the NAT64 prefix as
    /// IPv4, HEv3 §8); avoided addresses last. Removed
    /// candidates are left out.
    pub(super) fn reorder_services(&mut self) {
        let Some(svc) = &self.svc else { return };
        let mut live: Vec<u32> = (0..self.known.len() as u32).filter(|&i| !svc.tags[i as usize].removed).collect();
        live.sort_by_key(|&i| svc.group_key(svc.tags[i as usize].service));
        let mut ordered = Vec::with_capacity(live.len());
        for group in live.chunk_by(|&a, &b| svc.tags[a as usize].service == svc.tags[b as usize].service) {
            let cands: Vec<Candidate> = group.iter().map(|&i| self.known[i as usize]).collect();
            let order = crate::engine::sort::order_with_pref64;
            for c in order(&cands, self.config.first_address_family_count, self.pref64.as_ref()) {
                let i = group.iter().copied().find(|&i| self.known[i as usize].addr == c.addr).expect("sorted from the group");
                ordered.push(i);
            }
        }
        if !self.avoided.is_empty() {
            ordered.sort_by_key(|&i| self.avoided.contains(&self.known[i as usize].addr));
        }
        self.ordered = ordered.into_boxed_slice();
    }
}
