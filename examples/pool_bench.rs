//! Benchmark of connection pools on slow, unreliable connections, in
//! virtual time (the loop's manual clock): every attempt takes 30–90 s and
//! fails half the time, like a relay circuit or a tunnel. Callers arrive
//! every 60 s; a caller whose acquire fails asks again at once. Prints the
//! time to acquire (median, p99) for race counts 1, 3 and 5, without and
//! with a buffer of 2.
//!
//!     cargo run --release --example pool_bench [-- CALLERS]

use std::collections::BinaryHeap;
use std::cmp::Reverse;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

const S: u64 = 1_000_000;

/// xorshift64*: deterministic per seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Completions to deliver: (time, seq, attempt, success).
type Due = BinaryHeap<Reverse<(u64, u64, usize, bool)>>;

struct Sim {
    rng: Rng,
    now: u64,
    seq: u64,
    due: Due,
    attempts: Vec<ProtocolAttempt>,
    started: u64,
}

struct Slow(Arc<Mutex<Sim>>);

impl Protocol for Slow {
    fn start(&self, attempt: ProtocolAttempt, _: SocketAddr, _: &PathInfo) -> std::result::Result<(), i32> {
        let mut s = self.0.lock().unwrap();
        let took = 30 * S + s.rng.next() % (60 * S + 1);
        let ok = s.rng.next().is_multiple_of(2);
        let (at, seq) = (s.now + took, s.seq);
        s.seq += 1;
        let id = s.attempts.len();
        s.attempts.push(attempt);
        s.due.push(Reverse((at, seq, id, ok)));
        s.started += 1;
        Ok(())
    }
    fn cancel(&self, _: &ProtocolAttempt) {}
    fn close(&self, _: ProtocolConnection) {}
}

#[derive(Default)]
struct Caller {
    asked_at: u64,
    done_at: Option<u64>,
    failed: bool,
}

struct H(Arc<Mutex<Caller>>, Arc<Mutex<Sim>>);

impl ConnectionHandler for H {
    fn ready(&mut self, _: &Connection) {
        let now = self.1.lock().unwrap().now;
        self.0.lock().unwrap().done_at = Some(now);
    }
    fn establishment_error(&mut self, _: &Connection) {
        self.0.lock().unwrap().failed = true;
    }
}

fn run(race_count: u32, buffer: u32, callers: usize) -> (f64, f64, f64) {
    let lp = EventLoop::with_manual_clock().unwrap();
    let sim = Arc::new(Mutex::new(Sim { rng: Rng(0x5eed ^ race_count as u64 ^ (buffer as u64) << 8), now: 0, seq: 0, due: BinaryHeap::new(), attempts: Vec::new(), started: 0 }));
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    lp.add_protocol("relay", traits, Arc::new(Slow(Arc::clone(&sim)))).unwrap();
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname("127.0.0.1").unwrap().with_port(9001).unwrap();
    let pre = Preconnection::new(&lp, &[ep], Some(&props), None).unwrap();
    let opts = PoolOptions {
        race_count,
        buffer_size: buffer,
        max_size: buffer.max(2),
        backoff_initial_ms: 1000,
        backoff_max_ms: 60_000,
        ..Default::default()
    };
    let pool = ConnectionPool::new(&pre, &opts, None).unwrap();
    let mut waiting: Vec<(Arc<Mutex<Caller>>, Connection)> = Vec::new();
    let mut times = Vec::with_capacity(callers);
    let mut arrived = 0;
    let interval = 60 * S;
    lp.run().unwrap();
    while times.len() < callers {
        // Next event: a caller arrives, or an attempt completes.
        let next_arrival = if arrived < callers { Some(arrived as u64 * interval) } else { None };
        let next_done = sim.lock().unwrap().due.peek().map(|Reverse(d)| d.0);
        let at = match (next_arrival, next_done) {
            (Some(a), Some(d)) => a.min(d),
            (Some(a), None) => a,
            (None, Some(d)) => d,
            (None, None) => {
                // Only a backoff timer is left: step time forward.
                sim.lock().unwrap().now + S
            }
        };
        let now = sim.lock().unwrap().now;
        if at > now {
            lp.advance_clock(at - now).unwrap();
            sim.lock().unwrap().now = at;
        }
        if next_arrival == Some(at) {
            let c = Arc::new(Mutex::new(Caller { asked_at: at, ..Default::default() }));
            let conn = pool.acquire(Box::new(H(Arc::clone(&c), Arc::clone(&sim)))).unwrap();
            waiting.push((c, conn));
            arrived += 1;
        }
        loop {
            let d = {
                let mut s = sim.lock().unwrap();
                match s.due.peek() {
                    Some(Reverse(d)) if d.0 <= at => {
                        let Reverse((_, _, id, ok)) = s.due.pop().unwrap();
                        Some((s.attempts[id].clone(), ok))
                    }
                    _ => None,
                }
            };
            match d {
                Some((a, true)) => a.ready(None, 1),
                Some((a, false)) => a.failed(libc::ECONNRESET),
                None => break,
            }
        }
        lp.run().unwrap();
        // Collect served callers; failed ones ask again at once.
        let mut still = Vec::new();
        for (c, conn) in waiting.drain(..) {
            let (done, failed, asked) = {
                let g = c.lock().unwrap();
                (g.done_at, g.failed, g.asked_at)
            };
            if let Some(t) = done {
                times.push(t - asked);
            } else if failed {
                let c2 = Arc::new(Mutex::new(Caller { asked_at: asked, ..Default::default() }));
                let conn2 = pool.acquire(Box::new(H(Arc::clone(&c2), Arc::clone(&sim)))).unwrap();
                drop(conn);
                still.push((c2, conn2));
            } else {
                still.push((c, conn));
            }
        }
        waiting = still;
        lp.run().unwrap();
    }
    times.sort_unstable();
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).saturating_sub(1).min(times.len() - 1)] as f64 / S as f64;
    let started = sim.lock().unwrap().started as f64;
    (pct(0.5), pct(0.99), started / callers as f64)
}

fn main() {
    let callers: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    println!("pool_bench: attempts take 30-90 s and fail 50% (virtual time); a caller every 60 s; {callers} callers per row");
    println!("| race count | buffer | time to acquire, median | p99 | attempts per caller |");
    println!("|---|---|---|---|---|");
    for buffer in [0u32, 2] {
        for rc in [1u32, 3, 5] {
            let (med, p99, per) = run(rc, buffer, callers);
            println!("| {rc} | {buffer} | {med:.1} s | {p99:.1} s | {per:.2} |");
        }
    }
}
