//! The candidate tree, RFC 9623 §4.1 and §4.3: path and protocol branches
//! raced immediate, delayed or failover, each leaf an RFC 8305 race; the
//! tree ends once, like a single race, and one leaf behaves as a race does.

use super::support::{drain, MS};
use crate::engine::race::{Outcome, RaceConfig, RaceError};
use crate::engine::tree::{Action, PathBranch, ProtocolBranch, RacingType, Tree};
use crate::engine::{Candidate, Family, Micros, QueryKey};
use std::net::SocketAddr;

fn cand(s: &str) -> Candidate {
    let addr: SocketAddr = s.parse().unwrap();
    Candidate { addr, source: Some(addr.ip()) }
}

fn q(family: Family) -> QueryKey {
    QueryKey { endpoint: 0, family }
}

fn starts(actions: &[Action]) -> Vec<(usize, usize, SocketAddr)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Start { path, protocol, addr, .. } => Some((*path, *protocol, *addr)),
            _ => None,
        })
        .collect()
}

fn one_path(protocols: &[(usize, RacingType)]) -> Vec<PathBranch> {
    vec![PathBranch {
        path: 0,
        racing: RacingType::Delayed(250 * MS),
        protocols: protocols.iter().map(|&(protocol, racing)| ProtocolBranch { protocol, racing }).collect(),
    }]
}

/// A tree over one literal IPv4 candidate (answered at 0).
fn literal_tree(paths: &[PathBranch]) -> Tree {
    let mut t = Tree::new(RaceConfig::default(), 0, &[q(Family::V4)], paths);
    t.on_answer(0, q(Family::V4), Ok(vec![cand("192.0.2.1:80")]));
    t
}

#[test]
fn one_leaf_behaves_like_a_plain_race() {
    let mut t = Tree::new(RaceConfig::default(), 0, &[q(Family::V6), q(Family::V4)], &one_path(&[(0, RacingType::Delayed(0))]));
    t.on_answer(0, q(Family::V4), Ok(vec![cand("192.0.2.1:80")]));
    assert_eq!(drain(&mut t), vec![], "waits the Resolution Delay for AAAA");
    assert_eq!(t.next_deadline(), Some(50 * MS));
    t.on_answer(30 * MS, q(Family::V6), Ok(vec![cand("[2001:db8::1]:80")]));
    assert_eq!(starts(&drain(&mut t)), vec![(0, 0, "[2001:db8::1]:80".parse().unwrap())]);
    assert_eq!(t.next_deadline(), Some(280 * MS));
    t.on_timer(280 * MS);
    assert_eq!(starts(&drain(&mut t)), vec![(0, 0, "192.0.2.1:80".parse().unwrap())]);
    t.on_attempt_ready(300 * MS, 1);
    assert_eq!(drain(&mut t), vec![Action::Cancel { attempt: 0 }, Action::Won { attempt: 1 }]);
    assert_eq!(t.next_deadline(), None);
}

#[test]
fn one_leaf_edge_cases_match_the_general_scheduler() {
    let one = one_path(&[(0, RacingType::Delayed(0))]);
    let zero = RaceConfig { total_timeout: Some(0), ..RaceConfig::default() };
    for (config, queries) in [(RaceConfig::default(), &[][..]), (zero, &[][..]), (zero, &[q(Family::V4)][..])] {
        let mut compact = Tree::new(config, 5, queries, &one);
        let mut general = Tree::new_general(config, 5, queries, &one);
        assert_eq!(drain(&mut compact), drain(&mut general));
        assert_eq!(compact.path_activations(), general.path_activations());
        assert_eq!((compact.is_finished(), compact.next_deadline()), (general.is_finished(), general.next_deadline()));
    }
}

#[test]
fn delayed_protocols_start_at_the_branch_delay() {
    let mut t = literal_tree(&one_path(&[(7, RacingType::Delayed(0)), (9, RacingType::Delayed(100 * MS))]));
    assert_eq!(starts(&drain(&mut t)).iter().map(|s| s.1).collect::<Vec<_>>(), vec![7]);
    assert_eq!(t.next_deadline(), Some(100 * MS));
    t.on_timer(99 * MS);
    assert!(drain(&mut t).is_empty());
    t.on_timer(100 * MS);
    assert_eq!(starts(&drain(&mut t)).iter().map(|s| s.1).collect::<Vec<_>>(), vec![9]);
    let a: Vec<_> = t.attempts().collect();
    assert_eq!((a[0].protocol, a[0].record.started), (7, 0));
    assert_eq!((a[1].protocol, a[1].record.started), (9, 100 * MS));
}

#[test]
fn a_failed_branch_starts_the_next_delayed_one_at_once() {
    let mut t = literal_tree(&one_path(&[(0, RacingType::Delayed(0)), (1, RacingType::Delayed(100 * MS))]));
    drain(&mut t);
    t.on_attempt_failed(3 * MS, 0, libc::ECONNREFUSED);
    let s = drain(&mut t);
    assert_eq!(starts(&s).iter().map(|s| s.1).collect::<Vec<_>>(), vec![1]);
    assert_eq!(t.attempts().nth(1).unwrap().record.started, 3 * MS);
}

#[test]
fn immediate_branches_start_together() {
    let mut t = literal_tree(&one_path(&[(0, RacingType::Delayed(0)), (1, RacingType::Immediate), (2, RacingType::Immediate)]));
    assert_eq!(starts(&drain(&mut t)).len(), 3);
    assert!(t.attempts().all(|a| a.record.started == 0));
}

#[test]
fn failover_starts_only_after_every_other_branch_failed() {
    let mut t = literal_tree(&one_path(&[
        (0, RacingType::Delayed(0)),
        (1, RacingType::Delayed(100 * MS)),
        (2, RacingType::Failover),
    ]));
    drain(&mut t);
    t.on_timer(100 * MS);
    assert_eq!(starts(&drain(&mut t)).len(), 1);
    assert_eq!(t.next_deadline(), None, "no timer for a failover branch");
    t.on_attempt_failed(150 * MS, 1, libc::ECONNREFUSED);
    assert!(starts(&drain(&mut t)).is_empty(), "branch 0 still running");
    t.on_attempt_failed(400 * MS, 0, libc::ETIMEDOUT);
    let s = drain(&mut t);
    assert_eq!(starts(&s).iter().map(|s| s.1).collect::<Vec<_>>(), vec![2]);
    t.on_attempt_failed(410 * MS, 2, libc::ECONNREFUSED);
    assert_eq!(drain(&mut t), vec![Action::Failed { error: RaceError::AllAttemptsFailed(libc::ECONNREFUSED) }]);
}

#[test]
fn endpoint_failover_and_immediate_configs() {
    let cfg = RaceConfig { connection_attempt_delay: Micros::MAX, ..RaceConfig::default() };
    let two = |t: &mut Tree| {
        t.on_answer(0, q(Family::V6), Ok(vec![cand("[2001:db8::1]:80")]));
        t.on_answer(0, q(Family::V4), Ok(vec![cand("192.0.2.1:80")]));
    };
    let mut t = Tree::new(cfg, 0, &[q(Family::V6), q(Family::V4)], &one_path(&[(0, RacingType::Delayed(0))]));
    two(&mut t);
    assert_eq!(starts(&drain(&mut t)).len(), 1);
    assert_eq!(t.next_deadline(), None);
    t.on_attempt_failed(900 * MS, 0, libc::ECONNREFUSED);
    assert_eq!(starts(&drain(&mut t)).len(), 1);
    let cfg = RaceConfig { race_count: usize::MAX, ..RaceConfig::default() };
    let mut t = Tree::new(cfg, 0, &[q(Family::V6), q(Family::V4)], &one_path(&[(0, RacingType::Delayed(0))]));
    two(&mut t);
    assert_eq!(starts(&drain(&mut t)).len(), 2);
}

#[test]
fn paths_race_with_their_own_delay_and_protocols_inside_each() {
    let paths = vec![
        PathBranch {
            path: 10,
            racing: RacingType::Delayed(0),
            protocols: vec![ProtocolBranch { protocol: 0, racing: RacingType::Delayed(0) }],
        },
        PathBranch {
            path: 11,
            racing: RacingType::Delayed(40 * MS),
            protocols: vec![
                ProtocolBranch { protocol: 0, racing: RacingType::Delayed(0) },
                ProtocolBranch { protocol: 1, racing: RacingType::Immediate },
            ],
        },
    ];
    let mut t = literal_tree(&paths);
    assert_eq!(starts(&drain(&mut t)).iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), vec![(10, 0)]);
    assert_eq!(t.next_deadline(), Some(40 * MS));
    t.on_timer(40 * MS);
    assert_eq!(starts(&drain(&mut t)).iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), vec![(11, 0), (11, 1)]);
    assert_eq!(t.path_activations(), vec![Some(0), Some(40 * MS)]);
    t.on_attempt_ready(41 * MS, 2);
    let s = drain(&mut t);
    assert_eq!(s.last(), Some(&Action::Won { attempt: 2 }));
    let cancels: Vec<_> = s.iter().filter(|a| matches!(a, Action::Cancel { .. })).collect();
    assert_eq!(cancels.len(), 2);
    let outcomes: Vec<_> = t.attempts().map(|a| a.record.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::Cancelled, Outcome::Cancelled, Outcome::Won]);
}

#[test]
fn answers_reach_branches_that_start_later() {
    let cfg = RaceConfig::default();
    let mut t = Tree::new(cfg, 0, &[q(Family::V6), q(Family::V4)], &one_path(&[(0, RacingType::Delayed(0)), (1, RacingType::Delayed(300 * MS))]));
    t.on_answer(MS, q(Family::V6), Ok(vec![cand("[2001:db8::1]:80")]));
    t.on_answer(2 * MS, q(Family::V4), Ok(vec![cand("192.0.2.1:80")]));
    t.on_timer(251 * MS);
    t.on_timer(300 * MS);
    let s = starts(&drain(&mut t));
    assert_eq!(s.iter().map(|s| (s.1, s.2.is_ipv6())).collect::<Vec<_>>(), vec![(0, true), (0, false), (1, true)]);
}

#[test]
fn a_late_ready_in_another_branch_is_cancelled() {
    let mut t = literal_tree(&one_path(&[(0, RacingType::Delayed(0)), (1, RacingType::Immediate)]));
    drain(&mut t);
    t.on_attempt_ready(5 * MS, 0);
    t.on_attempt_ready(5 * MS, 1);
    let s = drain(&mut t);
    assert_eq!(s, vec![Action::Cancel { attempt: 1 }, Action::Won { attempt: 0 }, Action::Cancel { attempt: 1 }]);
}

#[test]
fn total_timeout_and_cancel_end_the_tree() {
    let cfg = RaceConfig { total_timeout: Some(500 * MS), ..RaceConfig::default() };
    let mut t = Tree::new(cfg, 0, &[q(Family::V4)], &one_path(&[(0, RacingType::Delayed(0)), (1, RacingType::Failover)]));
    t.on_answer(0, q(Family::V4), Ok(vec![cand("192.0.2.1:80")]));
    drain(&mut t);
    assert_eq!(t.next_deadline(), Some(500 * MS));
    t.on_timer(500 * MS);
    assert_eq!(drain(&mut t), vec![Action::Cancel { attempt: 0 }, Action::Failed { error: RaceError::TimedOut }]);
    let mut t = literal_tree(&one_path(&[(0, RacingType::Delayed(0))]));
    drain(&mut t);
    t.cancel(1);
    assert_eq!(drain(&mut t), vec![Action::Cancel { attempt: 0 }, Action::Failed { error: RaceError::Cancelled }]);
}

#[test]
fn resolution_failure_fails_the_tree_once() {
    let mut t = Tree::new(RaceConfig::default(), 0, &[q(Family::V6), q(Family::V4)], &one_path(&[(0, RacingType::Delayed(0)), (1, RacingType::Immediate)]));
    t.on_answer(1, q(Family::V6), Err(-2));
    t.on_answer(2, q(Family::V4), Err(-2));
    assert_eq!(drain(&mut t), vec![Action::Failed { error: RaceError::ResolutionFailed(-2) }]);
}

#[test]
fn an_empty_tree_fails_at_once() {
    let mut t = Tree::new(RaceConfig::default(), 0, &[q(Family::V4)], &[]);
    assert_eq!(drain(&mut t), vec![Action::Failed { error: RaceError::AllAttemptsFailed(0) }]);
}
