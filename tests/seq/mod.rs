//! A mocked protocol for the pool and group tests under the manual
//! clock. A pool or a group starts several races over its life and each
//! race numbers its attempts from 0, so this protocol, "relay", numbers
//! them by start order over the test: the log says "start #4 at 52000000"
//! (with `log_addr`, "start #4 127.0.0.2 at 1600000"), "cancel #4"
//! ("cancel #4 (reported)" for an attempt the test had reported ready),
//! and the handle the test reports for attempt #i is 100 + i ("close 104
//! fd -1"). The pool's or group's events are kept as strings with the
//! loop's time, and compared exactly.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use taps_racing::api::*;

/// One second in µs.
pub const S: u64 = 1_000_000;

/// One attempt the library started, by start order.
pub struct Attempt {
    pub handle: ProtocolAttempt,
    /// Its index in its race (protocol_attempt_index).
    pub race_index: usize,
    pub addr: SocketAddr,
    pub at_us: u64,
    /// Neither reported by the test nor cancelled.
    pub live: bool,
    /// The test reported it ready or failed.
    pub reported: bool,
    /// The library cancelled it.
    pub cancelled: bool,
}

#[derive(Default)]
pub struct Mock {
    /// The loop's manual clock, which moves only through Setup::advance
    /// (the protocol cannot ask the loop from inside `start`).
    pub now: AtomicU64,
    /// Starts are logged with their address.
    pub log_addr: bool,
    pub log: Mutex<Vec<String>>,
    pub attempts: Mutex<Vec<Attempt>>,
}

impl Mock {
    pub fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
    fn push(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }
}

struct P(Arc<Mock>);

impl Protocol for P {
    fn start(&self, attempt: ProtocolAttempt, addr: SocketAddr, _: &PathInfo) -> std::result::Result<(), i32> {
        let at_us = self.0.now();
        let mut a = self.0.attempts.lock().unwrap();
        if self.0.log_addr {
            self.0.push(format!("start #{} {} at {at_us}", a.len(), addr.ip()));
        } else {
            self.0.push(format!("start #{} at {at_us}", a.len()));
        }
        let race_index = attempt.index();
        a.push(Attempt { handle: attempt, race_index, addr, at_us, live: true, reported: false, cancelled: false });
        Ok(())
    }
    fn cancel(&self, attempt: &ProtocolAttempt) {
        let mut a = self.0.attempts.lock().unwrap();
        match a.iter().rposition(|x| x.handle.as_raw() == attempt.as_raw() && !x.cancelled) {
            Some(i) => {
                let x = &mut a[i];
                assert!(x.live || x.reported, "cancel of attempt #{i}, which neither runs nor was reported");
                x.cancelled = true;
                // The library may cancel an attempt just reported ready.
                self.0.push(if x.live { format!("cancel #{i}") } else { format!("cancel #{i} (reported)") });
                x.live = false;
            }
            None => self.0.push("cancel of an unknown attempt".into()),
        }
    }
    fn close(&self, c: ProtocolConnection) {
        self.0.push(format!("close {} fd {}", c.data, c.fd.unwrap_or(-1)));
    }
}

/// What a caller's handler saw.
#[derive(Default)]
pub struct Got {
    pub ready: usize,
    pub failed: usize,
    pub connection_error: usize,
    pub closed: usize,
    /// Loop time of ready / establishment_error.
    pub at_us: u64,
}

pub struct H(pub Arc<Mutex<Got>>, pub Arc<Mock>);

impl ConnectionHandler for H {
    fn ready(&mut self, _: &Connection) {
        let mut g = self.0.lock().unwrap();
        g.ready += 1;
        g.at_us = self.1.now();
    }
    fn establishment_error(&mut self, _: &Connection) {
        let mut g = self.0.lock().unwrap();
        g.failed += 1;
        g.at_us = self.1.now();
    }
    fn connection_error(&mut self, _: &Connection) {
        self.0.lock().unwrap().connection_error += 1;
    }
    fn closed(&mut self, _: &Connection) {
        self.0.lock().unwrap().closed += 1;
    }
}

/// The events, as strings, with the loop's time.
pub type Events = Arc<Mutex<Vec<(String, u64)>>>;

pub struct Setup {
    pub lp: EventLoop,
    pub mock: Arc<Mock>,
    pub pre: Option<Preconnection>,
    pub events: Events,
}

/// A manual-clock loop with "relay" (reliable, multistreaming; the
/// properties require multistreaming, so it races alone) and the
/// candidates `hosts` on port 443; starts logged with their address when
/// `log_addr`.
pub fn setup(hosts: &[&str], log_addr: bool) -> Setup {
    let lp = EventLoop::with_manual_clock().unwrap();
    let mock = Arc::new(Mock { log_addr, ..Default::default() });
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    lp.add_protocol("relay", traits, Arc::new(P(Arc::clone(&mock)))).unwrap();
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    let eps: Vec<RemoteEndpoint> = hosts
        .iter()
        .map(|h| {
            let mut ep = RemoteEndpoint::new();
            ep.with_hostname(h).unwrap().with_port(443).unwrap();
            ep
        })
        .collect();
    let pre = Preconnection::new(&lp, &eps, Some(&props), None).unwrap();
    Setup { lp, mock, pre: Some(pre), events: Arc::new(Mutex::new(Vec::new())) }
}

/// A connection handler that counts into a new Got.
pub fn handler(s: &Setup) -> (Box<H>, Arc<Mutex<Got>>) {
    let g = Arc::new(Mutex::new(Got::default()));
    (Box::new(H(Arc::clone(&g), Arc::clone(&s.mock))), g)
}

/// Record event `e` at the loop's time.
pub fn record(events: &Events, mock: &Mock, e: String) {
    events.lock().unwrap().push((e, mock.now()));
}

impl Setup {
    pub fn run(&self) {
        self.lp.run().unwrap();
    }
    pub fn advance(&self, us: u64) {
        self.lp.advance_clock(us).unwrap();
        self.mock.now.fetch_add(us, Ordering::SeqCst);
        assert_eq!(self.lp.now_us(), self.mock.now());
        self.run();
    }
    pub fn advance_to(&self, at_us: u64) {
        let now = self.mock.now();
        assert!(at_us >= now);
        self.advance(at_us - now);
    }
    pub fn starts(&self) -> usize {
        self.mock.attempts.lock().unwrap().len()
    }
    pub fn attempt(&self, i: usize) -> (usize, u64) {
        let a = &self.mock.attempts.lock().unwrap()[i];
        (a.race_index, a.at_us)
    }
    /// Take attempt #i (start order) to report it: it must be live.
    pub fn take(&self, i: usize) -> ProtocolAttempt {
        let mut a = self.mock.attempts.lock().unwrap();
        assert!(a[i].live, "attempt #{i} is not live");
        a[i].live = false;
        a[i].reported = true;
        a[i].handle.clone()
    }
    /// Attempt #i is ready: its handle is 100 + i.
    pub fn ready(&self, i: usize) {
        self.take(i).ready(None, 100 + i);
    }
    pub fn fail(&self, i: usize, errno: i32) {
        self.take(i).failed(errno);
    }
    /// At `at_us` attempt #i is ready; run.
    pub fn ready_at(&self, at_us: u64, i: usize) {
        self.advance_to(at_us);
        self.ready(i);
        self.run();
    }
    /// At `at_us` attempt #i fails with `errno`; run.
    pub fn fail_at(&self, at_us: u64, i: usize, errno: i32) {
        self.advance_to(at_us);
        self.fail(i, errno);
        self.run();
    }
    pub fn log(&self) -> Vec<String> {
        self.mock.log.lock().unwrap().clone()
    }
    pub fn log_has(&self, line: &str) -> bool {
        self.log().iter().any(|l| l == line)
    }
    pub fn expect_log(&self, want: &[&str]) {
        assert_eq!(self.log(), want, "the mock log");
    }
    pub fn n_events(&self) -> usize {
        self.events.lock().unwrap().len()
    }
    pub fn events_from(&self, from: usize) -> Vec<String> {
        self.events.lock().unwrap()[from..].iter().map(|e| e.0.clone()).collect()
    }
    pub fn expect_events_from(&self, from: usize, want: &[&str]) {
        assert_eq!(self.events_from(from), want, "the pool events from #{from}");
    }
    pub fn timeout(&self) -> Option<Duration> {
        self.lp.timeout().unwrap()
    }
}

/// The caller got the connection attempt #i made (handle 100 + i) at `at_us`.
pub fn check_served(c: &Connection, g: &Arc<Mutex<Got>>, i: usize, at_us: u64) {
    let got = g.lock().unwrap();
    assert_eq!((got.ready, got.failed, got.at_us), (1, 0, at_us), "served by #{i}");
    assert_eq!(c.error(), None);
    assert_eq!(c.protocol_data(), Some(100 + i));
    assert_eq!(c.protocol().as_deref().map(|p| p.to_str().unwrap()), Some("relay"));
}

/// The connection's attempt `i`: started and ended (µs since its race
/// started), outcome, errno; protocol "relay".
pub fn check_attempt(c: &Connection, i: usize, started_us: u64, ended_us: u64, outcome: AttemptOutcome, os_error: i32) {
    let a = c.attempt(i).unwrap();
    assert_eq!(
        (a.started_us, a.ended_us, a.outcome, a.os_error, a.protocol.to_str().unwrap()),
        (started_us, Some(ended_us), outcome, os_error, "relay"),
        "attempt {i}"
    );
}

