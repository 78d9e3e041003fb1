//! RFC 8305 §5, Connection Attempt Delay: one attempt at a time, the next
//! after the delay (exact at 10 ms and 2 s) or at once when one fails;
//! earlier attempts keep running until their own attempt timeout;
//! `race_count` attempts at once at the head of the list.

use super::support::*;
use crate::engine::race::{Action, Outcome, RaceConfig, RaceError};
use crate::engine::Micros;

#[test]
fn v6_blackholed() {
    let mut r = dual(cfg());
    assert_eq!(r.next_deadline(), None);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.next_deadline(), Some(250 * MS));
    r.on_timer(249 * MS);
    assert_eq!(drain(&mut r), []);
    r.on_timer(250 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    assert_eq!(r.next_deadline(), None);
    r.on_attempt_ready(260 * MS, 1);
    assert_eq!(drain(&mut r), [cancel(0), Action::Won { attempt: 1 }]);
    let a: Vec<_> = r.attempts().collect();
    assert_eq!(a.len(), 2);
    assert_eq!((a[0].started, a[0].ended, a[0].outcome), (0, Some(260 * MS), Outcome::Cancelled));
    assert_eq!((a[1].started, a[1].ended, a[1].outcome), (250 * MS, Some(260 * MS), Outcome::Won));
    assert_eq!(r.winner(), Some(1));
    assert_over(&mut r, 260 * MS);
}

#[test]
fn v6_refused_v4_starts_at_once() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    // Refused 13 ms after its start (past the 10 ms gap of RFC 8305 §5):
    // the next starts at once.
    r.on_attempt_failed(13 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    assert_eq!(r.attempt(1).unwrap().started, 13 * MS);
    assert_eq!(r.attempt(0).unwrap().outcome, Outcome::Failed(ECONNREFUSED));
    assert_eq!(r.attempt(0).unwrap().ended, Some(13 * MS));
    assert_eq!(r.next_deadline(), None);
    r.on_attempt_ready(20 * MS, 1);
    assert_eq!(drain(&mut r), [Action::Won { attempt: 1 }]);
    assert_over(&mut r, 20 * MS);
}

#[test]
fn attempt_delay_10ms_exact() {
    let config = RaceConfig { connection_attempt_delay: 10 * MS, ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    let expect = [v4(1), v6(2), v4(2)];
    for (i, c) in expect.iter().enumerate() {
        let t = (i as Micros + 1) * 10 * MS;
        assert_eq!(r.next_deadline(), Some(t));
        r.on_timer(t - 1);
        assert_eq!(drain(&mut r), []);
        r.on_timer(t);
        assert_eq!(drain(&mut r), [start(i + 1, *c)]);
        assert_eq!(r.attempt(i + 1).unwrap().started, t);
    }
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn attempt_delay_2000ms_exact() {
    let config = RaceConfig { connection_attempt_delay: 2000 * MS, ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.next_deadline(), Some(2000 * MS));
    r.on_timer(1999 * MS);
    assert_eq!(drain(&mut r), []);
    r.on_timer(2000 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    assert_eq!(r.next_deadline(), Some(4000 * MS));
    r.on_timer(4000 * MS);
    assert_eq!(drain(&mut r), [start(2, v6(2))]);
}

#[test]
fn failure_restarts_delay_timer() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_timer(250 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    // One of two running fails: next at once, delay from there.
    r.on_attempt_failed(300 * MS, 1, ECONNREFUSED);
    assert_eq!(drain(&mut r), [start(2, v6(2))]);
    assert_eq!(r.next_deadline(), Some(550 * MS));
    r.on_timer(550 * MS);
    assert_eq!(drain(&mut r), [start(3, v4(2))]);
    // Attempt 0 kept running all along.
    assert_eq!(r.attempt(0).unwrap().outcome, Outcome::Running);
}

#[test]
fn failure_at_delay_boundary_starts_one() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_attempt_failed(250 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    r.on_timer(250 * MS);
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(500 * MS));
}

#[test]
fn sync_failure_while_draining() {
    let config = RaceConfig { race_count: 2, ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    let mut seen = Vec::new();
    while let Some(a) = r.poll_action() {
        seen.push(a);
        if let Action::Start { attempt: 0, .. } = a {
            // connect() failed synchronously.
            r.on_attempt_failed(0, 0, libc::ENETUNREACH);
        }
    }
    // The first batch starts together; the start the failure calls for
    // waits for the 10 ms gap of RFC 8305 §5.
    assert_eq!(seen, [start(0, v6(1)), start(1, v4(1))]);
    assert_eq!(r.next_deadline(), Some(10 * MS));
    r.on_timer(10 * MS);
    assert_eq!(drain(&mut r), [start(2, v6(2))]);
    assert_eq!(r.attempts().map(|a| a.started).collect::<Vec<_>>(), [0, 0, 10 * MS]);
}

#[test]
fn late_on_timer_starts_once() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    drain(&mut r);
    // Woken late, past two boundaries: one start, next from now.
    r.on_timer(600 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    assert_eq!(r.next_deadline(), Some(850 * MS));
}

#[test]
fn zero_delays() {
    let config = RaceConfig {
        connection_attempt_delay: 0,
        resolution_delay: 0,
        ..cfg()
    };
    let mut r = dual(config);
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    assert_eq!(drain(&mut r), [start(0, v4(1)), start(1, v4(2))]);
    assert_eq!(r.next_deadline(), None);
}

#[test]
fn attempt_timeout() {
    let config = RaceConfig { attempt_timeout: Some(100 * MS), ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.next_deadline(), Some(100 * MS));
    r.on_timer(99 * MS);
    assert_eq!(drain(&mut r), []);
    r.on_timer(100 * MS);
    assert_eq!(drain(&mut r), [cancel(0), start(1, v4(1))]);
    let a = r.attempt(0).unwrap();
    assert_eq!((a.ended, a.outcome), (Some(100 * MS), Outcome::Failed(ETIMEDOUT)));
    assert_eq!(r.attempt(1).unwrap().started, 100 * MS);
    assert_eq!(r.next_deadline(), Some(200 * MS));
    // A late failure report for the timed-out attempt is ignored.
    r.on_attempt_failed(150 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.attempt(0).unwrap().outcome, Outcome::Failed(ETIMEDOUT));
    r.on_timer(200 * MS);
    assert_eq!(
        drain(&mut r),
        [cancel(1), Action::Failed { error: RaceError::AllAttemptsFailed(ETIMEDOUT) }]
    );
    assert_over(&mut r, 200 * MS);
}

#[test]
fn attempt_timeout_longer_than_delay() {
    // Timeouts do not stop the stagger; each attempt has its own.
    let config = RaceConfig { attempt_timeout: Some(300 * MS), ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_timer(250 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    assert_eq!(r.next_deadline(), Some(300 * MS));
    r.on_timer(300 * MS);
    // Timeout of 0 starts the next at once; delay restarts from 300.
    assert_eq!(drain(&mut r), [cancel(0), start(2, v6(2))]);
    assert_eq!(r.next_deadline(), Some(550 * MS));
    r.on_timer(550 * MS);
    assert_eq!(drain(&mut r), [cancel(1), start(3, v4(2))]);
    assert_eq!(r.next_deadline(), Some(600 * MS));
}

#[test]
fn race_count_three() {
    let config = RaceConfig { race_count: 3, ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1)), start(1, v4(1)), start(2, v6(2))]);
    assert!(r.attempts().all(|a| a.started == 0));
    assert_eq!(r.next_deadline(), Some(250 * MS));
    r.on_timer(250 * MS);
    assert_eq!(drain(&mut r), [start(3, v4(2))]);
}

#[test]
fn race_count_tops_up_with_late_candidates() {
    let config = RaceConfig { race_count: 3, ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.on_answer(5 * MS, q4(0), Ok(vec![v4(1), v4(2), v4(3)]));
    assert_eq!(drain(&mut r), [start(1, v4(1)), start(2, v4(2))]);
    assert_eq!(r.attempt(1).unwrap().started, 5 * MS);
    assert_eq!(r.next_deadline(), Some(255 * MS));
    r.on_timer(255 * MS);
    assert_eq!(drain(&mut r), [start(3, v4(3))]);
}

#[test]
fn race_count_larger_than_candidates() {
    let config = RaceConfig { race_count: 5, ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.next_deadline(), None);
    // Resolution over with two candidates for five: they are attempted
    // again, in order, until five attempts have started (issue 6: N
    // attempts of one candidate when there are too few).
    r.on_answer(30 * MS, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(1, v4(1)), start(2, v6(1)), start(3, v4(1)), start(4, v6(1))]);
    assert!(r.attempts().all(|a| a.started <= 30 * MS));
    assert_eq!(r.next_deadline(), None);
}
