//! How a race fails: every attempt failed (the last error), resolution
//! failed (the last resolver error), the total timeout passed (while
//! attempts run or while still resolving), or there was nothing to ask.

use super::support::*;
use crate::engine::race::{Action, Outcome, Race, RaceConfig, RaceError};
use crate::engine::Micros;

#[test]
fn all_fail() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    let mut actions = drain(&mut r);
    let errnos = [libc::ECONNREFUSED, libc::ENETUNREACH, libc::EHOSTUNREACH, libc::ECONNRESET];
    for (i, e) in errnos.iter().enumerate() {
        r.on_attempt_failed((i as Micros + 1) * 20 * MS, i, *e);
        actions.extend(drain(&mut r));
    }
    assert_eq!(
        actions,
        [
            start(0, v6(1)),
            start(1, v4(1)),
            start(2, v6(2)),
            start(3, v4(2)),
            Action::Failed { error: RaceError::AllAttemptsFailed(libc::ECONNRESET) }
        ]
    );
    for (i, e) in errnos.iter().enumerate() {
        let a = r.attempt(i).unwrap();
        assert_eq!(a.outcome, Outcome::Failed(*e));
        assert_eq!(a.started, i as Micros * 20 * MS);
        assert_eq!(a.ended, Some((i as Micros + 1) * 20 * MS));
    }
    assert_over(&mut r, 80 * MS);
}

#[test]
fn all_fail_waits_for_outstanding_query() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_attempt_failed(10 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), []);
    assert!(!r.is_finished());
    assert!(r.is_resolving());
    r.on_answer(20 * MS, q4(0), Ok(vec![]));
    assert_eq!(
        drain(&mut r),
        [Action::Failed { error: RaceError::AllAttemptsFailed(ECONNREFUSED) }]
    );
    assert_over(&mut r, 20 * MS);
}

#[test]
fn resolution_failed() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Err(-2));
    assert_eq!(drain(&mut r), []);
    r.on_answer(MS, q4(0), Err(-3));
    assert_eq!(drain(&mut r), [Action::Failed { error: RaceError::ResolutionFailed(-3) }]);
    assert_over(&mut r, MS);

    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![]));
    r.on_answer(MS, q4(0), Ok(vec![]));
    assert_eq!(drain(&mut r), [Action::Failed { error: RaceError::ResolutionFailed(0) }]);

    // The last error code, even if an empty answer came after it.
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Err(-5));
    r.on_answer(MS, q4(0), Ok(vec![]));
    assert_eq!(drain(&mut r), [Action::Failed { error: RaceError::ResolutionFailed(-5) }]);
}

#[test]
fn no_queries_fails_at_once() {
    let mut r = Race::new(cfg(), 0, &[]);
    assert_eq!(drain(&mut r), [Action::Failed { error: RaceError::ResolutionFailed(0) }]);
    assert_over(&mut r, 0);
}

#[test]
fn total_timeout() {
    let config = RaceConfig {
        connection_attempt_delay: 100 * MS,
        total_timeout: Some(300 * MS),
        ..cfg()
    };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_timer(100 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    r.on_timer(200 * MS);
    assert_eq!(drain(&mut r), [start(2, v6(2))]);
    // Delay boundary and total timeout coincide: nothing starts.
    assert_eq!(r.next_deadline(), Some(300 * MS));
    r.on_timer(300 * MS);
    assert_eq!(
        drain(&mut r),
        [cancel(0), cancel(1), cancel(2), Action::Failed { error: RaceError::TimedOut }]
    );
    assert_eq!(r.attempts().len(), 3);
    assert!(r
        .attempts()
        .all(|a| a.outcome == Outcome::Cancelled && a.ended == Some(300 * MS)));
    // A late ready gets its socket closed; records stay.
    r.on_attempt_ready(310 * MS, 1);
    assert_eq!(drain(&mut r), [cancel(1)]);
    assert_eq!(r.attempt(1).unwrap().outcome, Outcome::Cancelled);
    assert_over(&mut r, 310 * MS);
}

#[test]
fn attempt_and_total_timeouts_together() {
    let config = RaceConfig {
        attempt_timeout: Some(150 * MS),
        total_timeout: Some(400 * MS),
        ..cfg()
    };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.next_deadline(), Some(150 * MS));
    r.on_timer(150 * MS);
    assert_eq!(drain(&mut r), [cancel(0), start(1, v4(1))]);
    assert_eq!(r.next_deadline(), Some(300 * MS));
    r.on_timer(300 * MS);
    assert_eq!(drain(&mut r), [cancel(1), start(2, v6(2))]);
    assert_eq!(r.next_deadline(), Some(400 * MS));
    r.on_timer(400 * MS);
    assert_eq!(
        drain(&mut r),
        [cancel(2), Action::Failed { error: RaceError::TimedOut }]
    );
    assert_eq!(r.attempt(2).unwrap().outcome, Outcome::Cancelled);
    assert_eq!(r.attempts().len(), 3);
    assert_over(&mut r, 400 * MS);
}

#[test]
fn total_timeout_while_resolving() {
    let config = RaceConfig { total_timeout: Some(1000 * MS), ..cfg() };
    let mut r = Race::new(config, 5 * MS, &[q6(0), q4(0)]);
    assert_eq!(r.next_deadline(), Some(1005 * MS));
    r.on_timer(1005 * MS);
    assert_eq!(drain(&mut r), [Action::Failed { error: RaceError::TimedOut }]);
    assert_eq!(r.attempt_count(), 0);
    assert_over(&mut r, 1005 * MS);
}
