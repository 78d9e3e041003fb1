//! RFC 8305 §3, Resolution Delay: AAAA and A asked at once; racing starts
//! when an AAAA query answers, or the Resolution Delay after an A answer;
//! answers that arrive during the race join the candidates not yet
//! attempted (§3, §6); literal addresses need no resolution.

use super::support::*;
use crate::engine::race::{Action, Race, RaceError};

#[test]
fn v6_blackholed_a_answered_first_same_instant() {
    let mut r = dual(cfg());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(50 * MS));
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.next_deadline(), Some(250 * MS));
}

#[test]
fn aaaa_within_resolution_delay() {
    let mut r = dual(cfg());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(50 * MS));
    r.on_timer(20 * MS);
    assert_eq!(drain(&mut r), []);
    r.on_answer(30 * MS, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.attempt(0).unwrap().started, 30 * MS);
    assert_eq!(r.next_deadline(), Some(280 * MS));
    r.on_timer(280 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    assert!(!r.is_resolving());
}

#[test]
fn aaaa_never_answers_then_late_while_running() {
    let mut r = dual(cfg());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(r.next_deadline(), Some(50 * MS));
    r.on_timer(50 * MS - 1);
    assert_eq!(drain(&mut r), []);
    r.on_timer(50 * MS);
    assert_eq!(drain(&mut r), [start(0, v4(1))]);
    assert!(r.is_resolving());
    // Nothing pending: no deadline.
    assert_eq!(r.next_deadline(), None);
    // v4 still running: the late v6 waits for the delay boundary.
    r.on_answer(120 * MS, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(300 * MS));
    r.on_timer(300 * MS);
    assert_eq!(drain(&mut r), [start(1, v6(1))]);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn aaaa_late_after_v4_failed_starts_at_once() {
    let mut r = dual(cfg());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.on_timer(50 * MS);
    assert_eq!(drain(&mut r), [start(0, v4(1))]);
    r.on_attempt_failed(100 * MS, 0, ECONNREFUSED);
    // AAAA still outstanding: not failed yet.
    assert_eq!(drain(&mut r), []);
    assert!(!r.is_finished());
    assert_eq!(r.next_deadline(), None);
    r.on_answer(120 * MS, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(1, v6(1))]);
    assert_eq!(r.attempt(1).unwrap().started, 120 * MS);
}

#[test]
fn aaaa_late_after_delay_boundary_starts_at_once() {
    let mut r = dual(cfg());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.on_timer(50 * MS);
    assert_eq!(drain(&mut r), [start(0, v4(1))]);
    r.on_answer(400 * MS, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(1, v6(1))]);
    assert_eq!(r.attempt(1).unwrap().started, 400 * MS);
}

#[test]
fn aaaa_error_starts_v4_at_once() {
    let mut r = dual(cfg());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), []);
    r.on_answer(10 * MS, q6(0), Err(-2));
    assert_eq!(drain(&mut r), [start(0, v4(1))]);
    assert_eq!(r.attempt(0).unwrap().started, 10 * MS);
    assert!(!r.is_resolving());
}

#[test]
fn aaaa_empty_starts_v4_at_once() {
    let mut r = dual(cfg());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.on_answer(7 * MS, q6(0), Ok(vec![]));
    assert_eq!(drain(&mut r), [start(0, v4(1))]);
    assert_eq!(r.attempt(0).unwrap().started, 7 * MS);
}

#[test]
fn aaaa_before_a_starts_at_once_and_a_joins() {
    let mut r = dual(cfg());
    r.on_answer(5 * MS, q6(0), Ok(vec![v6(1), v6(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_answer(40 * MS, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(255 * MS));
    r.on_timer(255 * MS);
    // Re-sorted: v6(1), v4(1), v6(2); v6(1) already started.
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    r.on_timer(505 * MS);
    assert_eq!(drain(&mut r), [start(2, v6(2))]);
    assert_eq!(r.candidates(), [v6(1), v4(1), v6(2)]);
}

#[test]
fn any_endpoint_aaaa_starts_racing() {
    let mut r = Race::new(cfg(), 0, &[q6(0), q4(0), q6(1), q4(1)]);
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.on_answer(10 * MS, q6(0), Err(-2));
    // Endpoint 1's AAAA is still out: wait for the Resolution Delay.
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(50 * MS));
    r.on_answer(20 * MS, q6(1), Ok(vec![v6(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(2))]);
}

#[test]
fn unexpected_and_repeated_answers_ignored() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(7), Ok(vec![v6(7)]));
    assert_eq!(drain(&mut r), []);
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(1)]));
    r.on_answer(MS, q4(0), Ok(vec![v4(2)]));
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.candidates(), [v4(1)]);
    r.on_answer(2 * MS, q6(0), Ok(vec![v6(1), v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.candidates(), [v6(1), v4(1)]);
}

#[test]
fn duplicate_of_started_not_restarted() {
    let mut r = Race::new(cfg(), 0, &[q6(0), q4(0), q6(1), q4(1)]);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_attempt_failed(MS, 0, ECONNREFUSED);
    // Endpoint 1 resolves to the same address: nothing new.
    r.on_answer(2 * MS, q6(1), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), []);
    // Nothing runs: the new candidate starts, 10 ms after the previous
    // start (RFC 8305 §5).
    r.on_answer(3 * MS, q4(1), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(10 * MS));
    r.on_timer(10 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    assert_eq!(r.attempt(1).unwrap().started, 10 * MS);
}

#[test]
fn v4_literal_alone_starts_at_once() {
    let mut r = Race::new(cfg(), 0, &[q4(0)]);
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v4(1))]);
    assert!(!r.is_resolving());
    r.on_attempt_failed(MS, 0, ECONNREFUSED);
    assert_eq!(
        drain(&mut r),
        [Action::Failed { error: RaceError::AllAttemptsFailed(ECONNREFUSED) }]
    );
    assert_over(&mut r, MS);
}

#[test]
fn v6_literal_alone_starts_at_once() {
    let mut r = Race::new(cfg(), 0, &[q6(0)]);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
}
