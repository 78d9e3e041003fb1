//! The tree's side of the HEv3 rules: every leaf's race takes the same
//! HTTPS answers (see [`crate::engine::service`]); the questions and the
//! service table are the first leaf's (every leaf derives the same ones
//! from the same inputs).

use super::{Shape, Tree};
use crate::engine::race::{AttemptService, Race};
use crate::engine::service::{Resolve, Service, ServiceSpec};
use crate::engine::{AttemptId, Candidate, Family, Micros};
use crate::vocabulary::svcb::ServiceRecord;

impl Tree {
    /// Expect HTTPS answers in every leaf ([`Race::expect_services`]).
    /// Call right after [`Tree::new`], before any answer; then drain
    /// [`Tree::poll_resolve`].
    pub fn expect_services(&mut self, spec: ServiceSpec) {
        match &mut self.0 {
            Shape::OneLeaf(t) => t.race_mut().expect_services(spec),
            Shape::Branches(t) => t.leaves.iter_mut().for_each(|l| l.race.expect_services(spec.clone())),
        }
    }

    /// The ALPN ids each protocol branch serves (HEv3 §5.1, §6): `served`
    /// gives, for a leaf's protocol id, its ids, or `None` for a protocol
    /// that races every candidate. A leaf with ids races only the
    /// candidates they serve ([`Race::serve_alpn`]): the services whose
    /// usable ALPN ids share one with them, and the fallback only with
    /// "http/1.1". When every protocol of a path has ids (and `race_count`
    /// is 1), its protocols no longer race as branches: their candidates
    /// are one list, one attempt at a time (HEv3 §5–§6, see `joint`).
    /// Call after [`Tree::expect_services`] (if any), before any answer.
    pub fn serve_alpn(&mut self, served: impl Fn(usize) -> Option<Vec<String>>) {
        match &mut self.0 {
            Shape::OneLeaf(t) => {
                if let Some(ids) = served(t.protocol()) {
                    t.race_mut().serve_alpn(&ids);
                }
            }
            Shape::Branches(t) => {
                for leaf in t.leaves.iter_mut() {
                    if let Some(ids) = served(leaf.protocol) {
                        leaf.race.serve_alpn(&ids);
                    }
                }
                t.join_served(|leaf| served(leaf.protocol).is_some());
            }
        }
    }

    /// The next question for the runtime (see [`crate::engine::service`]).
    pub fn poll_resolve(&mut self) -> Option<Resolve> {
        match &mut self.0 {
            Shape::OneLeaf(t) => t.race_mut().poll_resolve(),
            Shape::Branches(t) => {
                let (first, rest) = t.leaves.split_first_mut()?;
                // The other leaves ask the same: drop their copies.
                rest.iter_mut().for_each(|l| while l.race.poll_resolve().is_some() {});
                first.race.poll_resolve()
            }
        }
    }

    /// The answer to the endpoint's open HTTPS question, given to every
    /// leaf ([`Race::on_service_answer`]).
    pub fn on_service_answer(&mut self, now: Micros, endpoint: usize, answer: Result<Vec<ServiceRecord>, i32>) {
        match &mut self.0 {
            Shape::OneLeaf(t) => t.input(now, |race| race.on_service_answer(now, endpoint, answer)),
            Shape::Branches(t) => {
                t.leaves.iter_mut().for_each(|l| l.race.on_service_answer(now, endpoint, answer.clone()));
                t.pump(now);
            }
        }
    }

    /// A TargetName's AAAA/A answer, given to every leaf
    /// ([`Race::on_target_answer`]).
    pub fn on_target_answer(&mut self, now: Micros, endpoint: usize, name: &str, family: Family, answer: Result<Vec<Candidate>, i32>) {
        match &mut self.0 {
            Shape::OneLeaf(t) => t.input(now, |race| race.on_target_answer(now, endpoint, name, family, answer)),
            Shape::Branches(t) => {
                t.leaves.iter_mut().for_each(|l| l.race.on_target_answer(now, endpoint, name, family, answer.clone()));
                t.pump(now);
            }
        }
    }

    /// The service table ([`Race::services`]), the same in every leaf.
    pub fn services(&self) -> &[Service] {
        self.first_race().map_or(&[], Race::services)
    }

    /// The service table's indices in HEv3 §5 order ([`Race::service_order`]).
    pub fn service_order(&self) -> Vec<usize> {
        self.first_race().map_or_else(Vec::new, Race::service_order)
    }

    /// What a tree attempt's candidate owes to the HTTPS records.
    pub fn attempt_service(&self, attempt: AttemptId) -> Option<AttemptService> {
        match &self.0 {
            Shape::OneLeaf(t) => t.race().attempt_service(attempt),
            Shape::Branches(t) => {
                let (leaf, local) = t.locate(attempt)?;
                t.leaves[leaf].race.attempt_service(local)
            }
        }
    }

    fn first_race(&self) -> Option<&Race> {
        match &self.0 {
            Shape::OneLeaf(t) => Some(t.race()),
            Shape::Branches(t) => t.leaves.first().map(|l| &l.race),
        }
    }
}
