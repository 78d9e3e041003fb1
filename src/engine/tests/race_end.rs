//! The end of a race (RFC 9623 §4.3, DESIGN.md "End of the race"): the first
//! attempt reported ready wins and every other one is cancelled; reports
//! after the end get a cancel or are ignored; the user's cancel ends the
//! race; with `keep_losers` late readies become spares instead.

use super::support::*;
use crate::engine::race::{Action, Outcome, Race, RaceConfig, RaceError};

#[test]
fn success_mid_race() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_timer(250 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    r.on_attempt_ready(300 * MS, 0);
    assert_eq!(drain(&mut r), [cancel(1), Action::Won { attempt: 0 }]);
    assert_eq!(r.attempts().len(), 2);
    assert_eq!(r.attempt(1).unwrap().ended, Some(300 * MS));
    assert_over(&mut r, 300 * MS);
    // Failure reported after the end: ignored.
    r.on_attempt_failed(400 * MS, 1, ECONNREFUSED);
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.attempt(1).unwrap().outcome, Outcome::Cancelled);
}

#[test]
fn two_ready_same_tick() {
    let config = RaceConfig { race_count: 2, ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1)), start(1, v4(1))]);
    r.on_attempt_ready(10 * MS, 1);
    r.on_attempt_ready(10 * MS, 0);
    assert_eq!(drain(&mut r), [cancel(0), Action::Won { attempt: 1 }, cancel(0)]);
    assert_eq!(r.attempt(0).unwrap().outcome, Outcome::Cancelled);
    assert_eq!(r.attempt(1).unwrap().outcome, Outcome::Won);
    // The winner reported twice: nothing.
    r.on_attempt_ready(11 * MS, 1);
    assert_eq!(drain(&mut r), []);
    assert_over(&mut r, 11 * MS);
}

#[test]
fn ready_for_failed_attempt_gets_cancel() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    drain(&mut r);
    r.on_attempt_failed(10 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    r.on_attempt_ready(12 * MS, 0);
    assert_eq!(drain(&mut r), [cancel(0)]);
    assert!(!r.is_finished());
    assert_eq!(r.attempt(0).unwrap().outcome, Outcome::Failed(ECONNREFUSED));
    // Unknown ids are ignored.
    r.on_attempt_ready(2 * MS, 42);
    r.on_attempt_failed(2 * MS, 42, 1);
    assert_eq!(drain(&mut r), []);
}

#[test]
fn keep_losers_turns_late_readies_into_spares() {
    let config = RaceConfig { race_count: 3, keep_losers: true, attempt_timeout: Some(500 * MS), ..cfg() };
    let mut r = Race::new(config, 0, &[q4(0)]);
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v4(1)), start(1, v4(1)), start(2, v4(1))]);
    r.on_attempt_failed(10 * MS, 0, libc::ECONNREFUSED);
    assert_eq!(drain(&mut r), [], "the batch had every candidate: nothing new starts");
    r.on_attempt_ready(20 * MS, 2);
    assert_eq!(drain(&mut r), [Action::Won { attempt: 2 }], "attempt 1 is not cancelled");
    assert_eq!(r.running_count(), 1);
    assert_eq!(r.next_deadline(), Some(500 * MS), "a kept loser still times out");
    r.on_attempt_ready(30 * MS, 1);
    assert_eq!(drain(&mut r), [Action::Spare { attempt: 1 }]);
    assert_eq!(r.attempt(1).unwrap().outcome, Outcome::Spare);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn cancel_by_user() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.on_timer(250 * MS);
    assert_eq!(drain(&mut r), [start(0, v6(1)), start(1, v4(1))]);
    r.on_attempt_failed(260 * MS, 0, ECONNREFUSED);
    r.cancel(270 * MS);
    assert_eq!(drain(&mut r), [cancel(1), Action::Failed { error: RaceError::Cancelled }]);
    assert_eq!(r.attempt(0).unwrap().outcome, Outcome::Failed(ECONNREFUSED));
    assert_eq!(r.attempt(1).unwrap().outcome, Outcome::Cancelled);
    assert_eq!(r.attempt(1).unwrap().ended, Some(270 * MS));
    assert_over(&mut r, 270 * MS);
    r.on_attempt_ready(280 * MS, 1);
    assert_eq!(drain(&mut r), [cancel(1)]);
}

#[test]
fn cancel_while_resolving() {
    let mut r = dual(cfg());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.cancel(10 * MS);
    assert_eq!(drain(&mut r), [Action::Failed { error: RaceError::Cancelled }]);
    assert_over(&mut r, 10 * MS);
}
