//! Connection pools with a mocked protocol under the manual clock: the
//! scenarios of the racing-pool note (race N at once, keep spares, back
//! off when all fail, refill the buffer), every time exact to the µs.
//! What the C API adds to a pool (its vtables, PoolEvent and AttemptInfo
//! structs, freeing rules) is in c-tests/test_mock_pool.c.
//!
//! The mock protocol (tests/seq) numbers attempts by start order over the
//! pool's life (each race numbers its own from 0): the log says "start #4 at
//! 52000000", "cancel #4" ("cancel #4 (reported)" for an attempt the test
//! had reported ready), and the handle the test reports for attempt #i is
//! 100 + i ("close 104 fd -1"). Pool events are recorded as strings
//! ("started 3", "attempt failed 45000000 ECONNREFUSED", "won 40000000",
//! "race failed ...", "buffered", "disposed", "backoff 2000000") and
//! compared exactly.

mod seq;

use seq::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use taps_racing::api::*;

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ECONNRESET => "ECONNRESET",
        0 => "0",
        _ => "E?",
    }
}

fn event_str(e: &PoolEvent) -> String {
    match e.kind {
        PoolEventKind::RaceStarted => format!("started {}", e.count),
        PoolEventKind::AttemptSucceeded => format!("attempt ok {}", e.elapsed_us),
        PoolEventKind::AttemptFailed => format!("attempt failed {} {}", e.elapsed_us, errno_name(e.os_error)),
        PoolEventKind::RaceWon => format!("won {}", e.elapsed_us),
        PoolEventKind::RaceFailed => format!("race failed {} {}", e.elapsed_us, errno_name(e.os_error)),
        PoolEventKind::ConnectionBuffered => "buffered".into(),
        PoolEventKind::ConnectionDisposed => "disposed".into(),
        PoolEventKind::Backoff => format!("backoff {}", e.elapsed_us),
    }
}

fn opts(race_count: u32, buffer_size: u32, max_size: u32) -> PoolOptions {
    PoolOptions { race_count, buffer_size, max_size, ..Default::default() }
}

/// "relay" and one candidate, 127.0.0.1:443.
fn setup() -> Setup {
    seq::setup(&["127.0.0.1"], false)
}

fn pool(s: &Setup, opts: PoolOptions) -> ConnectionPool {
    let ev = Arc::clone(&s.events);
    let mock = Arc::clone(&s.mock);
    let on_event = move |e: &PoolEvent| {
        // count only for RaceStarted, os_error only for failures.
        assert!(e.kind == PoolEventKind::RaceStarted || e.count == 0, "{e:?}");
        assert!(
            matches!(e.kind, PoolEventKind::AttemptFailed | PoolEventKind::RaceFailed) || e.os_error == 0,
            "{e:?}"
        );
        record(&ev, &mock, event_str(e));
    };
    ConnectionPool::new(s.pre.as_ref().unwrap(), &opts, Some(Box::new(on_event))).unwrap()
}

fn acquire(s: &Setup, p: &ConnectionPool) -> (Connection, Arc<Mutex<Got>>) {
    let (h, g) = handler(s);
    (p.acquire(h).unwrap(), g)
}

/// All N attempts fail: the caller hears the race failed, the next race
/// waits for the backoff (none before it ends, one exactly when it ends),
/// the second failure doubles it, a success resets it.
#[test]
fn all_n_fail_then_backoff_then_retry() {
    let s = setup();
    let p = pool(&s, PoolOptions { backoff_initial_ms: 2000, ..opts(3, 0, 8) });
    s.run();
    s.expect_log(&[]); // no buffer: nothing until a caller asks
    s.expect_events_from(0, &[]);

    let (c1, g1) = acquire(&s, &p);
    s.run();
    s.expect_log(&["start #0 at 0", "start #1 at 0", "start #2 at 0"]);
    assert_eq!((s.attempt(0).0, s.attempt(1).0, s.attempt(2).0), (0, 1, 2), "race indexes");
    {
        let g = g1.lock().unwrap();
        assert_eq!(g.ready + g.failed, 0);
    }
    assert_eq!(c1.error(), None);
    s.fail_at(40 * S, 1, libc::ETIMEDOUT);
    s.fail_at(45 * S, 0, libc::ECONNREFUSED);
    assert_eq!(g1.lock().unwrap().failed, 0, "#2 still runs");
    s.fail_at(50 * S, 2, libc::EHOSTUNREACH);
    {
        let g = g1.lock().unwrap();
        assert_eq!((g.ready, g.failed, g.at_us), (0, 1, 50 * S));
    }
    assert_eq!(c1.error(), Some(Error::AllAttemptsFailed(libc::EHOSTUNREACH)));
    s.expect_events_from(
        0,
        &[
            "started 3",
            "attempt failed 40000000 ETIMEDOUT",
            "attempt failed 45000000 ECONNREFUSED",
            "attempt failed 50000000 EHOSTUNREACH",
            "race failed 50000000 EHOSTUNREACH",
            "backoff 2000000",
        ],
    );
    s.expect_log(&["start #0 at 0", "start #1 at 0", "start #2 at 0"]); // failed attempts: no cancel, no close

    // A caller during the backoff waits for its end.
    let (c2, g2) = acquire(&s, &p);
    s.run();
    assert_eq!(s.starts(), 3);
    assert_eq!(s.timeout(), Some(Duration::from_secs(2)));
    s.advance(2 * S - 1);
    assert_eq!(s.starts(), 3, "not before the backoff ends");
    assert_eq!(s.timeout(), Some(Duration::from_micros(1)));
    s.advance(1);
    s.expect_log(&[
        "start #0 at 0",
        "start #1 at 0",
        "start #2 at 0",
        "start #3 at 52000000",
        "start #4 at 52000000",
        "start #5 at 52000000",
    ]);
    s.expect_events_from(6, &["started 3"]);

    // The second failure doubles the backoff.
    s.advance_to(60 * S);
    s.fail(3, libc::ECONNREFUSED);
    s.fail(4, libc::ECONNREFUSED);
    s.fail(5, libc::ECONNRESET);
    s.run();
    {
        let g = g2.lock().unwrap();
        assert_eq!((g.failed, g.at_us), (1, 60 * S));
    }
    assert_eq!(c2.error(), Some(Error::AllAttemptsFailed(libc::ECONNRESET)));
    s.expect_events_from(
        7,
        &[
            "attempt failed 8000000 ECONNREFUSED",
            "attempt failed 8000000 ECONNREFUSED",
            "attempt failed 8000000 ECONNRESET",
            "race failed 8000000 ECONNRESET",
            "backoff 4000000",
        ],
    );
    let (c3, g3) = acquire(&s, &p);
    s.advance(4 * S - 1);
    assert_eq!(s.starts(), 6);
    s.advance(1);
    assert_eq!(s.starts(), 9);
    assert_eq!(s.attempt(6).1, 64 * S);

    // A success resets it: the losers that fail afterwards do not back
    // off, and the next race that fails waits the initial backoff again.
    s.ready_at(94 * S, 7);
    check_served(&c3, &g3, 7, 94 * S);
    s.fail(6, libc::ECONNREFUSED);
    s.fail(8, libc::ECONNREFUSED);
    s.run();
    s.expect_events_from(
        12,
        &[
            "started 3",
            "attempt ok 30000000",
            "won 30000000",
            "attempt failed 30000000 ECONNREFUSED",
            "attempt failed 30000000 ECONNREFUSED",
        ],
    );
    let (c4, g4) = acquire(&s, &p);
    s.run();
    assert_eq!(s.starts(), 12, "at once: no backoff in force");
    assert_eq!(s.attempt(9).1, 94 * S);
    s.advance(S);
    for i in 9..12 {
        s.fail(i, libc::ETIMEDOUT);
    }
    s.run();
    assert_eq!(g4.lock().unwrap().failed, 1);
    s.expect_events_from(
        17,
        &[
            "started 3",
            "attempt failed 1000000 ETIMEDOUT",
            "attempt failed 1000000 ETIMEDOUT",
            "attempt failed 1000000 ETIMEDOUT",
            "race failed 1000000 ETIMEDOUT",
            "backoff 2000000",
        ],
    );
    drop((c1, c2));
    drop(c3);
    assert!(s.log_has("close 107 fd -1"), "the served connection closes with its handle");
    drop(c4);
}

/// The first ready wins, the other attempts keep running; with no room in
/// the buffer (max_size 0) each that becomes ready later is closed through
/// the protocol and reported disposed.
#[test]
fn the_first_wins_and_the_others_are_disposed() {
    let s = setup();
    let p = pool(&s, opts(3, 0, 0));
    let (c, g) = acquire(&s, &p);
    s.run();
    s.ready_at(30 * S, 1);
    check_served(&c, &g, 1, 30 * S);
    assert_eq!(c.attempt_count(), 3);
    check_attempt(&c, 1, 0, 30 * S, AttemptOutcome::Won, 0);
    s.expect_log(&["start #0 at 0", "start #1 at 0", "start #2 at 0"]);
    s.ready_at(35 * S, 0);
    s.ready_at(40 * S, 2);
    s.expect_log(&["start #0 at 0", "start #1 at 0", "start #2 at 0", "close 100 fd -1", "close 102 fd -1"]);
    s.expect_events_from(
        0,
        &["started 3", "attempt ok 30000000", "won 30000000", "attempt ok 35000000", "disposed", "attempt ok 40000000", "disposed"],
    );
    assert_eq!(p.buffered(), 0);
    assert_eq!(g.lock().unwrap().ready, 1);
    assert_eq!(s.timeout(), None);
    drop(c);
    s.expect_log(&[
        "start #0 at 0",
        "start #1 at 0",
        "start #2 at 0",
        "close 100 fd -1",
        "close 102 fd -1",
        "close 101 fd -1",
    ]);
    drop(p);
    s.run();
    assert_eq!(s.log().len(), 6);
}

/// The first ready wins; the others that become ready go to the buffer, and
/// the next callers are served from it at once, oldest first, with no new
/// race; once it is empty a caller starts a race again.
#[test]
fn the_first_wins_and_the_others_are_buffered() {
    let s = setup();
    let p = pool(&s, opts(3, 0, 8));
    let (c1, g1) = acquire(&s, &p);
    s.run();
    s.ready_at(30 * S, 0);
    check_served(&c1, &g1, 0, 30 * S);
    s.ready_at(31 * S, 2);
    s.ready_at(32 * S, 1);
    assert_eq!(p.buffered(), 2);
    s.expect_events_from(
        0,
        &["started 3", "attempt ok 30000000", "won 30000000", "attempt ok 31000000", "buffered", "attempt ok 32000000", "buffered"],
    );
    let mark = s.n_events();

    let (c2, g2) = acquire(&s, &p);
    assert_eq!(p.buffered(), 1, "taken at once");
    assert_eq!(g2.lock().unwrap().ready, 0, "ready on the next turn");
    s.run();
    check_served(&c2, &g2, 2, 32 * S); // the oldest buffered one
    let (c3, g3) = acquire(&s, &p);
    s.run();
    check_served(&c3, &g3, 1, 32 * S);
    assert_eq!(s.starts(), 3, "no new race");
    assert_eq!(p.buffered(), 0);
    s.expect_events_from(mark, &[]);
    s.expect_log(&["start #0 at 0", "start #1 at 0", "start #2 at 0"]);

    let (c4, g4) = acquire(&s, &p);
    s.run();
    s.expect_log(&[
        "start #0 at 0",
        "start #1 at 0",
        "start #2 at 0",
        "start #3 at 32000000",
        "start #4 at 32000000",
        "start #5 at 32000000",
    ]);
    s.expect_events_from(mark, &["started 3"]);
    s.ready(4);
    s.run();
    check_served(&c4, &g4, 4, 32 * S);
    // Dropping the pool cancels the spares still running; the connections
    // handed out are the callers'.
    drop(p);
    s.run();
    s.expect_log(&[
        "start #0 at 0",
        "start #1 at 0",
        "start #2 at 0",
        "start #3 at 32000000",
        "start #4 at 32000000",
        "start #5 at 32000000",
        "cancel #3",
        "cancel #5",
    ]);
    drop((c1, c2, c3));
    drop(c4);
    assert_eq!(s.log().len(), 12, "100, 102, 101, 104 closed");
    assert!(s.log_has("close 104 fd -1"));
}

/// The note's example: of three attempts two fail fast, the middle one wins
/// 40 s after the race started; the caller waited 40 s, not the sum. With
/// five attempts, the losers that neither failed nor won keep running for
/// the pool.
#[test]
fn a_middle_one_wins_after_two_fast_failures() {
    let s = setup();
    let p = pool(&s, opts(3, 0, 0));
    s.advance(S); // the race starts at 1 s on the loop's clock
    let (c, g) = acquire(&s, &p);
    s.run();
    s.expect_log(&["start #0 at 1000000", "start #1 at 1000000", "start #2 at 1000000"]);
    s.advance(100_000);
    s.fail(0, libc::ECONNRESET);
    s.run();
    s.advance(100_000);
    s.fail(2, libc::ECONNREFUSED);
    s.run();
    assert_eq!(s.starts(), 3, "failures start nothing new");
    {
        let got = g.lock().unwrap();
        assert_eq!(got.ready + got.failed, 0);
    }
    s.ready_at(41 * S, 1);
    check_served(&c, &g, 1, 41 * S);
    s.expect_events_from(
        0,
        &["started 3", "attempt failed 100000 ECONNRESET", "attempt failed 200000 ECONNREFUSED", "attempt ok 40000000", "won 40000000"],
    );
    assert_eq!(s.events.lock().unwrap()[4].1, 41 * S);
    // The caller's connection shows the race (µs since it started).
    assert_eq!(c.attempt_count(), 3);
    check_attempt(&c, 0, 0, 100_000, AttemptOutcome::Failed, libc::ECONNRESET);
    check_attempt(&c, 1, 0, 40 * S, AttemptOutcome::Won, 0);
    check_attempt(&c, 2, 0, 200_000, AttemptOutcome::Failed, libc::ECONNREFUSED);
    s.expect_log(&["start #0 at 1000000", "start #1 at 1000000", "start #2 at 1000000"]);
    assert_eq!(s.timeout(), None);

    // Five at once: two fail fast, the third wins; the others run on.
    let s = setup();
    let p = pool(&s, opts(5, 0, 0));
    let (c, g) = acquire(&s, &p);
    s.run();
    s.advance(100_000);
    s.fail(0, libc::ECONNRESET);
    s.fail(4, libc::ECONNRESET);
    s.run();
    assert_eq!(s.starts(), 5, "failures start nothing new: the batch had every candidate");
    s.advance(30 * S);
    s.ready(2);
    s.run();
    assert_eq!(g.lock().unwrap().ready, 1);
    s.expect_events_from(3, &["attempt ok 30100000", "won 30100000"]);
    let a = c.attempts();
    assert_eq!(a[2].outcome, AttemptOutcome::Won);
    assert_eq!(a[0].outcome, AttemptOutcome::Failed);
    assert_eq!(a[1].outcome, AttemptOutcome::Running, "losers keep running for the pool");
    drop(p);
}

/// Buffer refill of 2 with racing off (refill_race_count 1, the default):
/// one attempt per missing connection; a refill that fails backs off like
/// any race. The preconnection is dropped right after the pool is made
/// (the pool copies it).
#[test]
fn buffer_refill_with_racing_off() {
    let mut s = setup();
    let p = pool(&s, opts(3, 2, 2));
    s.pre = None;
    s.run();
    s.expect_log(&["start #0 at 0", "start #1 at 0"]);
    s.expect_events_from(0, &["started 1", "started 1"]);
    s.ready_at(30 * S, 0);
    s.ready_at(40 * S, 1);
    assert_eq!(p.buffered(), 2);
    s.expect_events_from(
        2,
        &["attempt ok 30000000", "won 30000000", "buffered", "attempt ok 40000000", "won 40000000", "buffered"],
    );
    s.advance(100 * S);
    assert_eq!(s.starts(), 2, "full: nothing more");

    // Taking one starts one refill attempt.
    let mark = s.n_events();
    let (c1, g1) = acquire(&s, &p);
    s.run();
    check_served(&c1, &g1, 0, 140 * S);
    assert_eq!(s.starts(), 3);
    assert_eq!(s.attempt(2).1, 140 * S);
    assert_eq!(p.buffered(), 1);
    // It fails: the refill backs off 1 s, then tries again.
    s.advance(10 * S);
    s.fail(2, libc::ECONNREFUSED);
    s.run();
    s.expect_events_from(
        mark,
        &["started 1", "attempt failed 10000000 ECONNREFUSED", "race failed 10000000 ECONNREFUSED", "backoff 1000000"],
    );
    s.advance(S - 1);
    assert_eq!(s.starts(), 3);
    s.advance(1);
    assert_eq!(s.starts(), 4);
    assert_eq!(s.attempt(3).1, 151 * S);
    s.ready(3);
    s.run();
    assert_eq!(p.buffered(), 2);
    let (c2, g2) = acquire(&s, &p);
    s.run();
    check_served(&c2, &g2, 1, 151 * S); // the oldest
    drop((c1, c2));
    drop(p);
    s.run();
    assert!(s.log_has("close 103 fd -1"), "the buffered one closes with the pool");
}

/// Buffer refill of 2 with racing on (refill_race_count 3): two refill
/// races of three; each fills the buffer despite failures, a spare beyond
/// max_size is closed, and no race fails, so nothing backs off.
#[test]
fn buffer_refill_with_racing_on() {
    let s = setup();
    let p = pool(&s, PoolOptions { refill_race_count: 3, ..opts(3, 2, 2) });
    s.run();
    s.expect_log(&["start #0 at 0", "start #1 at 0", "start #2 at 0", "start #3 at 0", "start #4 at 0", "start #5 at 0"]);
    for i in 0..6 {
        assert_eq!(s.attempt(i).0, i % 3, "race index of #{i}");
    }
    s.expect_events_from(0, &["started 3", "started 3"]);
    // Race A: two fail, the third wins.
    s.fail_at(10 * S, 0, libc::ECONNREFUSED);
    s.fail_at(20 * S, 1, libc::ETIMEDOUT);
    s.ready_at(30 * S, 2);
    assert_eq!(p.buffered(), 1);
    // Race B: the first wins, a spare finds the buffer full, one fails.
    s.ready_at(35 * S, 3);
    s.ready_at(36 * S, 4);
    s.fail_at(37 * S, 5, libc::ECONNRESET);
    assert_eq!(p.buffered(), 2);
    s.expect_events_from(
        2,
        &[
            "attempt failed 10000000 ECONNREFUSED",
            "attempt failed 20000000 ETIMEDOUT",
            "attempt ok 30000000",
            "won 30000000",
            "buffered",
            "attempt ok 35000000",
            "won 35000000",
            "buffered",
            "attempt ok 36000000",
            "disposed",
            "attempt failed 37000000 ECONNRESET",
        ],
    );
    s.expect_log(&[
        "start #0 at 0",
        "start #1 at 0",
        "start #2 at 0",
        "start #3 at 0",
        "start #4 at 0",
        "start #5 at 0",
        "close 104 fd -1",
    ]);
    assert_eq!(s.timeout(), None);
    // Taking one starts a refill race of three.
    let (c, g) = acquire(&s, &p);
    s.run();
    check_served(&c, &g, 2, 37 * S);
    assert_eq!(s.starts(), 9);
    s.expect_events_from(13, &["started 3"]);
}

/// Attempts that fail after the winner are recorded (events) and nothing
/// more: no race failure, no backoff; the race is over once they ended, and
/// the next caller's race starts at once.
#[test]
fn attempts_that_fail_after_the_winner_are_just_recorded() {
    let s = setup();
    let p = pool(&s, opts(3, 0, 8));
    let (c, g) = acquire(&s, &p);
    s.run();
    s.ready_at(30 * S, 0);
    check_served(&c, &g, 0, 30 * S);
    s.fail_at(40 * S, 1, libc::ECONNREFUSED);
    s.fail_at(50 * S, 2, libc::ETIMEDOUT);
    s.expect_events_from(
        0,
        &["started 3", "attempt ok 30000000", "won 30000000", "attempt failed 40000000 ECONNREFUSED", "attempt failed 50000000 ETIMEDOUT"],
    );
    {
        let got = g.lock().unwrap();
        assert_eq!((got.ready, got.failed, got.connection_error), (1, 0, 0));
    }
    assert_eq!(c.error(), None);
    assert_eq!(p.buffered(), 0);
    assert_eq!(s.timeout(), None);
    assert!(!s.lp.has_work(), "the race is over once its losers ended");
    s.advance(100 * S);
    assert_eq!(s.starts(), 3);
    assert_eq!(s.n_events(), 5, "a won race does not back off");
    let (_c2, _g2) = acquire(&s, &p);
    s.run();
    assert_eq!(s.starts(), 6);
    assert_eq!(s.attempt(3).1, 150 * S);
    s.expect_log(&[
        "start #0 at 0",
        "start #1 at 0",
        "start #2 at 0",
        "start #3 at 150000000",
        "start #4 at 150000000",
        "start #5 at 150000000",
    ]);
}

/// A caller arrives while a refill runs: an on-demand race of race_count
/// starts at once; the refill's attempt, ready first, serves the caller,
/// and the on-demand race's winner refills the buffer.
#[test]
fn acquisition_while_a_refill_is_running() {
    let s = setup();
    let p = pool(&s, opts(3, 1, 8));
    s.run();
    s.expect_log(&["start #0 at 0"]); // a conservative refill
    s.advance_to(10 * S);
    let (c, g) = acquire(&s, &p);
    s.run();
    s.expect_log(&["start #0 at 0", "start #1 at 10000000", "start #2 at 10000000", "start #3 at 10000000"]);
    s.expect_events_from(0, &["started 1", "started 3"]);
    s.ready_at(20 * S, 0);
    check_served(&c, &g, 0, 20 * S);
    assert_eq!(p.buffered(), 0);
    assert_eq!(s.starts(), 4, "the on-demand race runs on: no second refill");
    s.ready_at(25 * S, 2);
    assert_eq!(p.buffered(), 1);
    s.fail(1, libc::ECONNREFUSED);
    s.fail(3, libc::ECONNREFUSED);
    s.run();
    s.expect_events_from(
        2,
        &[
            "attempt ok 20000000",
            "won 20000000",
            "attempt ok 15000000",
            "won 15000000",
            "buffered",
            "attempt failed 15000000 ECONNREFUSED",
            "attempt failed 15000000 ECONNREFUSED",
        ],
    );
    assert_eq!(s.starts(), 4);
    assert_eq!(p.buffered(), 1);
    let (c2, g2) = acquire(&s, &p);
    s.run();
    check_served(&c2, &g2, 2, 25 * S);
    assert_eq!(s.starts(), 5, "refill");
}

/// The pool is dropped with races in flight (a refill and an on-demand
/// race) and a completion the protocol reported that the loop has not seen
/// yet: every attempt still running is cancelled, the late ready
/// connection is closed, the waiting caller gets no callback and reports
/// Cancelled, and no event follows; a completion after the drop is
/// ignored.
#[test]
fn freeing_the_pool_with_races_in_flight_cancels_without_callbacks() {
    let s = setup();
    let p = pool(&s, opts(2, 1, 8));
    s.run();
    let (c, g) = acquire(&s, &p);
    s.run();
    s.expect_log(&["start #0 at 0", "start #1 at 0", "start #2 at 0"]);
    s.expect_events_from(0, &["started 1", "started 2"]);
    s.advance(5 * S);
    let late = s.mock.attempts.lock().unwrap()[0].handle.clone();
    s.ready(1); // reported, not yet seen by the loop
    drop(p);
    s.run();
    // A completion after the drop is ignored.
    late.ready(None, 999);
    s.run();
    s.advance(100 * S);
    assert_eq!(c.error(), Some(Error::Cancelled));
    {
        let got = g.lock().unwrap();
        assert_eq!((got.ready, got.failed, got.connection_error, got.closed), (0, 0, 0, 0));
    }
    assert_eq!(c.fd(), None);
    assert_eq!(c.protocol_data(), None);
    s.expect_events_from(0, &["started 1", "started 2"]);
    assert!(s.log_has("cancel #0") && s.log_has("cancel #2"), "{:?}", s.log());
    assert!(s.log_has("close 101 fd -1"), "{:?}", s.log());
    let log = s.log();
    assert_eq!(log.iter().filter(|l| l.starts_with("close")).count(), 1, "{log:?}");
    assert_eq!(log.iter().filter(|l| l.starts_with("start")).count(), 3, "{log:?}");
    assert_eq!(log.len(), if s.log_has("cancel #1 (reported)") { 7 } else { 6 }, "{log:?}");
    assert_eq!(s.timeout(), None);
    assert!(!s.lp.has_work());
}
