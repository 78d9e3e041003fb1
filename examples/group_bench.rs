//! Benchmark of connection-group stream assignment (the engine's
//! `GroupPolicy`, no I/O): 1,000,000 streams over 4 members with each
//! policy. Streams are released at random (a uniformly chosen open stream)
//! so that at most 256 are open in all: the per-member capacity (256) is
//! never the limit. Prints assignments per second (each with its release)
//! and the distribution per member, as a Markdown table.
//!
//!     cargo run --release --example group_bench [-- STREAMS]

use std::hint::black_box;
use std::time::Instant;
use taps_racing::engine::group::{AssignPolicy, GroupPolicy, MemberId, DEFAULT_CAPACITY};

const MEMBERS: usize = 4;
/// Streams open at once, in all.
const MAX_OPEN: usize = 256;

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

struct Row {
    name: &'static str,
    per_sec: f64,
    counts: Vec<u64>,
}

/// Assign `streams` streams; `fail_at`: member 2 fails after that many.
fn run(name: &'static str, policy: AssignPolicy, weights: Option<[u32; MEMBERS]>, streams: u64, fail_at: Option<u64>) -> Row {
    let mut g = GroupPolicy::new(policy, DEFAULT_CAPACITY);
    // Connect times 10, 20, 30, 40 ms (only the weighted policy cares, and
    // its weights are set below).
    let ids: Vec<MemberId> = (0..MEMBERS).map(|i| g.add_member(0, 10_000 * (i as u64 + 1))).collect();
    if let Some(w) = weights {
        for (&id, &w) in ids.iter().zip(&w) {
            g.set_weight(id, w);
        }
    }
    let mut rng = Rng(0x5eed);
    let mut open: Vec<MemberId> = Vec::with_capacity(MAX_OPEN + 1);
    let start = Instant::now();
    for n in 0..streams {
        if fail_at == Some(n) {
            g.member_failed(ids[2]);
            open.retain(|&m| m != ids[2]);
        }
        let m = g.assign().expect("capacity is never the limit");
        open.push(black_box(m));
        // Random releases: one now and then, and always one once MAX_OPEN
        // are open.
        while open.len() >= MAX_OPEN || (!open.is_empty() && rng.next().is_multiple_of(4)) {
            let i = (rng.next() % open.len() as u64) as usize;
            let m = open.swap_remove(i);
            g.release(m, false);
            if open.len() < MAX_OPEN / 2 {
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let counts = ids.iter().map(|&id| g.metrics(id).unwrap().streams_assigned).collect();
    Row { name, per_sec: streams as f64 / secs, counts }
}

fn main() {
    let streams: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    println!(
        "group_bench: {streams} streams over {MEMBERS} members, capacity {DEFAULT_CAPACITY} per member, \
         at most {MAX_OPEN} open in all (random releases)"
    );
    println!();
    print!("| policy | assignments/s |");
    for i in 0..MEMBERS {
        print!(" member {i} |");
    }
    println!();
    println!("|---|---:|{}", "---:|".repeat(MEMBERS));
    let rows = [
        run("round robin", AssignPolicy::RoundRobin, None, streams, None),
        run("least loaded, random releases", AssignPolicy::LeastLoaded, None, streams, None),
        run("weighted 4, 3, 2, 1", AssignPolicy::Weighted, Some([4, 3, 2, 1]), streams, None),
        run("round robin, member 2 fails halfway", AssignPolicy::RoundRobin, None, streams, Some(streams / 2)),
    ];
    for r in rows {
        let total: u64 = r.counts.iter().sum();
        print!("| {} | {:.1} M |", r.name, r.per_sec / 1e6);
        for c in &r.counts {
            print!(" {} ({:.2} %) |", c, *c as f64 * 100.0 / total as f64);
        }
        println!();
    }
}
