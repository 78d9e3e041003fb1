//! Connection pools with a mocked protocol under the manual clock: the
//! scenarios of the racing-pool note (race N at once, keep spares, back
//! off when all fail, refill the buffer).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

#[derive(Default)]
struct Mock {
    log: Mutex<Vec<String>>,
    attempts: Mutex<Vec<ProtocolAttempt>>,
}

impl Mock {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn starts(&self) -> usize {
        self.attempts.lock().unwrap().len()
    }
    fn attempt(&self, i: usize) -> ProtocolAttempt {
        self.attempts.lock().unwrap()[i].clone()
    }
}

struct P(Arc<Mock>);

impl Protocol for P {
    fn start(&self, attempt: ProtocolAttempt, _: SocketAddr, _: &PathInfo) -> std::result::Result<(), i32> {
        let n = self.0.starts();
        self.0.log.lock().unwrap().push(format!("start {n}"));
        self.0.attempts.lock().unwrap().push(attempt);
        Ok(())
    }
    fn cancel(&self, _: &ProtocolAttempt) {
        self.0.log.lock().unwrap().push("cancel".into());
    }
    fn close(&self, c: ProtocolConnection) {
        self.0.log.lock().unwrap().push(format!("close {}", c.data));
    }
}

#[derive(Default)]
struct Got {
    ready: usize,
    failed: usize,
    data: Option<usize>,
}

struct H(Arc<Mutex<Got>>);

impl ConnectionHandler for H {
    fn ready(&mut self, c: &Connection) {
        let mut g = self.0.lock().unwrap();
        g.ready += 1;
        g.data = c.protocol_data();
    }
    fn establishment_error(&mut self, _: &Connection) {
        self.0.lock().unwrap().failed += 1;
    }
}

struct Setup {
    lp: EventLoop,
    mock: Arc<Mock>,
    pre: Preconnection,
    events: Arc<Mutex<Vec<PoolEvent>>>,
}

fn setup() -> Setup {
    let lp = EventLoop::with_manual_clock().unwrap();
    let mock = Arc::new(Mock::default());
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    lp.add_protocol("relay", traits, Arc::new(P(Arc::clone(&mock)))).unwrap();
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname("127.0.0.1").unwrap().with_port(9001).unwrap();
    let pre = Preconnection::new(&lp, &[ep], Some(&props), None).unwrap();
    Setup { lp, mock, pre, events: Arc::new(Mutex::new(Vec::new())) }
}

fn pool(s: &Setup, opts: PoolOptions) -> ConnectionPool {
    let ev = Arc::clone(&s.events);
    ConnectionPool::new(&s.pre, &opts, Some(Box::new(move |e: &PoolEvent| ev.lock().unwrap().push(*e)))).unwrap()
}

fn acquire(p: &ConnectionPool) -> (Connection, Arc<Mutex<Got>>) {
    let g = Arc::new(Mutex::new(Got::default()));
    (p.acquire(Box::new(H(Arc::clone(&g)))).unwrap(), g)
}

fn kinds(s: &Setup) -> Vec<PoolEventKind> {
    s.events.lock().unwrap().iter().map(|e| e.kind).collect()
}

const S: u64 = 1_000_000;

#[test]
fn all_n_fail_then_backoff_then_retry() {
    let s = setup();
    let p = pool(&s, PoolOptions { race_count: 3, backoff_initial_ms: 2000, ..Default::default() });
    let (_c, g) = acquire(&p);
    s.lp.run().unwrap();
    assert_eq!(s.mock.starts(), 3, "three attempts of the one candidate at once");
    for i in 0..3 {
        s.mock.attempt(i).failed(libc::ECONNREFUSED);
    }
    s.lp.run().unwrap();
    assert_eq!(g.lock().unwrap().failed, 1, "the caller hears the race failed");
    let backoff = s.events.lock().unwrap().iter().find(|e| e.kind == PoolEventKind::Backoff).copied().unwrap();
    assert_eq!(backoff.elapsed_us, 2 * S);
    // A new acquire during the backoff waits for it.
    let (_c2, g2) = acquire(&p);
    s.lp.run().unwrap();
    assert_eq!(s.mock.starts(), 3);
    s.lp.advance_clock(2 * S - 1).unwrap();
    s.lp.run().unwrap();
    assert_eq!(s.mock.starts(), 3, "not before the backoff ends");
    s.lp.advance_clock(1).unwrap();
    s.lp.run().unwrap();
    assert_eq!(s.mock.starts(), 6, "the retry races three again");
    // The second failure doubles the backoff; a success resets it.
    for i in 3..6 {
        s.mock.attempt(i).failed(libc::ETIMEDOUT);
    }
    s.lp.run().unwrap();
    assert_eq!(g2.lock().unwrap().failed, 1);
    let last = s.events.lock().unwrap().iter().rev().find(|e| e.kind == PoolEventKind::Backoff).copied().unwrap();
    assert_eq!(last.elapsed_us, 4 * S);
}

#[test]
fn the_first_wins_and_the_others_are_disposed_or_buffered() {
    // No room: the spares are closed.
    let s = setup();
    let p = pool(&s, PoolOptions { race_count: 3, max_size: 0, ..Default::default() });
    let (c, g) = acquire(&p);
    s.lp.run().unwrap();
    s.mock.attempt(1).ready(None, 11);
    s.lp.run().unwrap();
    let got = g.lock().unwrap();
    assert_eq!((got.ready, got.data), (1, Some(11)));
    drop(got);
    assert_eq!(c.protocol_data(), Some(11));
    s.mock.attempt(0).ready(None, 10);
    s.mock.attempt(2).ready(None, 12);
    s.lp.run().unwrap();
    let log = s.mock.log();
    assert!(log.contains(&"close 10".to_string()) && log.contains(&"close 12".to_string()), "{log:?}");
    assert_eq!(p.buffered(), 0);
    assert_eq!(kinds(&s).iter().filter(|k| **k == PoolEventKind::ConnectionDisposed).count(), 2);
    // Room: the spares are buffered and serve the next callers at once.
    let s = setup();
    let p = pool(&s, PoolOptions { race_count: 3, ..Default::default() });
    let (_c, _g) = acquire(&p);
    s.lp.run().unwrap();
    s.mock.attempt(0).ready(None, 20);
    s.mock.attempt(1).ready(None, 21);
    s.mock.attempt(2).ready(None, 22);
    s.lp.run().unwrap();
    assert_eq!(p.buffered(), 2);
    let (c2, g2) = acquire(&p);
    s.lp.run().unwrap();
    assert_eq!(g2.lock().unwrap().ready, 1);
    assert_eq!(c2.protocol_data(), Some(21), "the oldest buffered one");
    assert_eq!(s.mock.starts(), 3, "no new race");
}

#[test]
fn a_middle_one_wins_after_two_fast_failures() {
    let s = setup();
    let p = pool(&s, PoolOptions { race_count: 5, max_size: 0, ..Default::default() });
    let (c, g) = acquire(&p);
    s.lp.run().unwrap();
    s.lp.advance_clock(100_000).unwrap();
    s.mock.attempt(0).failed(libc::ECONNRESET);
    s.mock.attempt(4).failed(libc::ECONNRESET);
    s.lp.run().unwrap();
    assert_eq!(s.mock.starts(), 5, "failures start nothing new: the batch had every candidate");
    s.lp.advance_clock(30 * S).unwrap();
    s.mock.attempt(2).ready(None, 2);
    s.lp.run().unwrap();
    assert_eq!(g.lock().unwrap().ready, 1);
    let won = s.events.lock().unwrap().iter().find(|e| e.kind == PoolEventKind::RaceWon).copied().unwrap();
    assert_eq!(won.elapsed_us, 30 * S + 100_000);
    let a = c.attempts();
    assert_eq!(a[2].outcome, AttemptOutcome::Won);
    assert_eq!(a[0].outcome, AttemptOutcome::Failed);
    assert_eq!(a[1].outcome, AttemptOutcome::Running, "losers keep running for the pool");
}

#[test]
fn buffer_refill_with_racing_on_and_off() {
    for refill in [1u32, 3] {
        let s = setup();
        let p = pool(&s, PoolOptions { buffer_size: 2, refill_race_count: refill, max_size: 2, ..Default::default() });
        s.lp.run().unwrap();
        assert_eq!(s.mock.starts(), 2 * refill as usize, "two refill races of {refill}");
        let n = s.mock.starts();
        for i in 0..n {
            s.mock.attempt(i).ready(None, 100 + i);
        }
        s.lp.run().unwrap();
        assert_eq!(p.buffered(), 2);
        // Taking one starts a refill race.
        let (_c, g) = acquire(&p);
        s.lp.run().unwrap();
        assert_eq!(g.lock().unwrap().ready, 1);
        assert_eq!(s.mock.starts(), n + refill as usize);
    }
}

#[test]
fn attempts_that_fail_after_the_winner_are_just_recorded() {
    let s = setup();
    let p = pool(&s, PoolOptions { race_count: 3, ..Default::default() });
    let (c, g) = acquire(&p);
    s.lp.run().unwrap();
    s.mock.attempt(0).ready(None, 1);
    s.lp.run().unwrap();
    s.mock.attempt(1).failed(libc::ECONNREFUSED);
    s.mock.attempt(2).failed(libc::ECONNREFUSED);
    s.lp.run().unwrap();
    assert_eq!(g.lock().unwrap().ready, 1);
    assert_eq!(p.buffered(), 0);
    assert!(!kinds(&s).contains(&PoolEventKind::Backoff), "a won race does not back off");
    assert!(!s.lp.has_work(), "the race is over once its losers ended");
    drop(c);
}

#[test]
fn acquisition_while_a_refill_is_running() {
    let s = setup();
    let p = pool(&s, PoolOptions { buffer_size: 1, race_count: 3, ..Default::default() });
    s.lp.run().unwrap();
    assert_eq!(s.mock.starts(), 1, "a conservative refill");
    let (_c, g) = acquire(&p);
    s.lp.run().unwrap();
    assert_eq!(s.mock.starts(), 4, "a caller waits: an on-demand race of three");
    // The refill's attempt is ready first: it serves the caller.
    s.mock.attempt(0).ready(None, 7);
    s.lp.run().unwrap();
    let got = g.lock().unwrap();
    assert_eq!((got.ready, got.data), (1, Some(7)));
}

#[test]
fn freeing_the_pool_with_races_in_flight_cancels_without_callbacks() {
    let s = setup();
    let p = pool(&s, PoolOptions { race_count: 2, buffer_size: 1, ..Default::default() });
    let (c, g) = acquire(&p);
    s.lp.run().unwrap();
    let before = s.events.lock().unwrap().len();
    drop(p);
    s.lp.run().unwrap();
    assert_eq!(s.mock.log().iter().filter(|l| *l == "cancel").count(), s.mock.starts());
    // A late completion is ignored.
    s.mock.attempt(0).ready(None, 1);
    s.lp.run().unwrap();
    let got = g.lock().unwrap();
    assert_eq!((got.ready, got.failed), (0, 0));
    assert_eq!(c.error(), Some(Error::Cancelled));
    assert_eq!(s.events.lock().unwrap().len(), before, "no event after free");
    assert!(!s.lp.has_work());
}

