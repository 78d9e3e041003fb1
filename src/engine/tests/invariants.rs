//! A randomized self-check of the race scheduler: seeded scenarios of
//! answers, readies, failures and cancels in virtual time, with the
//! driver's view of every action checked against the race's records.

use super::support::*;
use crate::engine::race::{Action, AttemptRecord, Outcome, Race, RaceConfig};
use crate::engine::{AttemptId, Candidate, Family, Micros, QueryKey};
use std::net::SocketAddr;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, Debug)]
enum Event {
    Answer(QueryKey, Option<usize>),
    Ready(AttemptId),
    Fail(AttemptId, i32),
    Cancel,
}

/// Checks every action as it is polled, and what the driver does.
struct Checker {
    terminal: usize,
    starts: usize,
    cancelled: Vec<bool>,
    start_times: Vec<Micros>,
}

/// One random scenario, checked step by step. It is long on purpose: one
/// loop that feeds the events and checks every invariant after each, so
/// that a failure names the step and the seed.
fn run_scenario(seed: u64) {
    let mut rng = Lcg(seed);
    let delays = [10 * MS, 50 * MS, 250 * MS, 2000 * MS];
    let config = RaceConfig {
        connection_attempt_delay: delays[rng.below(4) as usize],
        resolution_delay: rng.below(100) * MS,
        first_address_family_count: 1 + rng.below(3) as usize,
        attempt_timeout: rng.chance(40).then(|| (1 + rng.below(600)) * MS),
        total_timeout: rng.chance(40).then(|| (1 + rng.below(3000)) * MS),
        race_count: 1 + rng.below(3) as usize,
        keep_losers: false,
    };
    let t0 = rng.below(1000);
    let endpoints = 1 + rng.below(2) as usize;
    let mut queries = Vec::new();
    for e in 0..endpoints {
        if rng.chance(80) {
            queries.push(q6(e));
        }
        if rng.chance(80) || queries.is_empty() {
            queries.push(q4(e));
        }
    }
    let pool: Vec<Candidate> = (1..5).map(v6).chain((1..5).map(v4)).collect();
    // External events: (time, sequence, event).
    let mut events: Vec<(Micros, u64, Event)> = Vec::new();
    let mut seq = 0;
    for q in &queries {
        if rng.chance(90) {
            let t = t0 + rng.below(300) * MS;
            let n = if rng.chance(10) {
                None
            } else if rng.chance(10) {
                Some(0)
            } else {
                Some(1 + rng.below(4) as usize)
            };
            events.push((t, seq, Event::Answer(*q, n)));
            seq += 1;
        }
    }
    if rng.chance(10) {
        events.push((t0 + rng.below(2000) * MS, seq, Event::Cancel));
        seq += 1;
    }

    let mut race = Race::new(config, t0, &queries);
    let mut now = t0;
    let mut chk = Checker { terminal: 0, starts: 0, cancelled: Vec::new(), start_times: Vec::new() };

    // Drain, acting as a driver; returns the number of actions.
    fn drain_checked(
        race: &mut Race,
        chk: &mut Checker,
        rng: &mut Lcg,
        events: &mut Vec<(Micros, u64, Event)>,
        seq: &mut u64,
        now: Micros,
    ) -> usize {
        let mut n = 0;
        while let Some(a) = race.poll_action() {
            n += 1;
            match a {
                Action::Start { attempt, addr } => {
                    assert_eq!(chk.terminal, 0, "start after the end");
                    assert_eq!(attempt, chk.starts);
                    chk.starts += 1;
                    chk.cancelled.push(false);
                    chk.start_times.push(now);
                    let rec = race.attempt(attempt).unwrap();
                    assert_eq!(rec.candidate.addr, addr);
                    assert_eq!(rec.started, now);
                    match rng.below(10) {
                        0 => race.on_attempt_failed(now, attempt, libc::ENETUNREACH),
                        1..=3 => {
                            let t = now + (1 + rng.below(800)) * MS;
                            events.push((t, *seq, Event::Fail(attempt, 100 + attempt as i32)));
                            *seq += 1;
                        }
                        4..=6 => {
                            let t = now + rng.below(800) * MS;
                            events.push((t, *seq, Event::Ready(attempt)));
                            *seq += 1;
                        }
                        _ => {}
                    }
                }
                Action::Cancel { attempt } => {
                    assert!(attempt < chk.starts);
                    chk.cancelled[attempt] = true;
                    assert_ne!(race.attempt(attempt).unwrap().outcome, Outcome::Running);
                    assert_ne!(race.attempt(attempt).unwrap().outcome, Outcome::Won);
                }
                Action::Spare { .. } => panic!("a spare without keep_losers"),
                Action::Won { attempt } => {
                    chk.terminal += 1;
                    assert_eq!(race.attempt(attempt).unwrap().outcome, Outcome::Won);
                    assert_eq!(race.attempt(attempt).unwrap().ended, Some(now));
                }
                Action::Failed { .. } => {
                    chk.terminal += 1;
                }
            }
        }
        n
    }

    drain_checked(&mut race, &mut chk, &mut rng, &mut events, &mut seq, now);
    for _ in 0..10_000 {
        let next_ev = events.iter().enumerate().min_by_key(|(_, e)| (e.0, e.1)).map(|(i, e)| (i, e.0));
        let deadline = race.next_deadline();
        if let Some(d) = deadline {
            assert!(d > now, "deadline {d} not after now {now}");
        }
        let (t, is_timer) = match (next_ev, deadline) {
            (None, None) => break,
            (Some((_, te)), Some(d)) if d <= te => (d, true),
            (None, Some(d)) => (d, true),
            (Some((_, te)), _) => (te, false),
        };
        assert!(t >= now);
        now = t;
        if is_timer {
            // Not early: at d-1 nothing happens; at d something does.
            race.on_timer(now - 1);
            assert_eq!(race.poll_action(), None, "timer work before the deadline");
            race.on_timer(now);
            let n = drain_checked(&mut race, &mut chk, &mut rng, &mut events, &mut seq, now);
            assert!(n > 0, "deadline {now} had nothing to do");
        } else {
            let (i, _) = next_ev.unwrap();
            let (_, _, ev) = events.remove(i);
            match ev {
                Event::Answer(q, n) => {
                    let answer = match n {
                        None => Err(-2),
                        Some(n) => {
                            let mut v = Vec::new();
                            for _ in 0..n {
                                let c = pool[rng.below(pool.len() as u64) as usize];
                                // Mostly the family asked for.
                                if Family::of(&c.addr) == q.family || rng.chance(5) {
                                    v.push(c);
                                }
                            }
                            Ok(v)
                        }
                    };
                    race.on_answer(now, q, answer);
                }
                Event::Ready(a) => race.on_attempt_ready(now, a),
                Event::Fail(a, e) => race.on_attempt_failed(now, a, e),
                Event::Cancel => race.cancel(now),
            }
            drain_checked(&mut race, &mut chk, &mut rng, &mut events, &mut seq, now);
        }
        // Calling the timer again at the same instant is harmless.
        race.on_timer(now);
        assert_eq!(race.poll_action(), None);
    }

    assert!(chk.terminal <= 1);
    let records: Vec<AttemptRecord> = race.attempts().collect();
    assert_eq!(records.len(), chk.starts);
    let addrs: std::collections::HashSet<SocketAddr> = records.iter().map(|r| r.candidate.addr).collect();
    // Repeats only fill a first batch larger than the candidate list.
    assert!(records.len() - addrs.len() < config.race_count, "an address attempted twice");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.started, chk.start_times[i]);
        if i > 0 {
            assert!(r.started >= records[i - 1].started);
        }
        if let Some(e) = r.ended {
            assert!(e >= r.started);
        }
    }
    if race.is_finished() {
        assert_eq!(chk.terminal, 1);
        assert_eq!(race.next_deadline(), None);
        let winners = records.iter().filter(|r| r.outcome == Outcome::Won).count();
        assert!(winners <= 1);
        assert_eq!(winners == 1, race.winner().is_some());
        for (i, r) in records.iter().enumerate() {
            assert_ne!(r.outcome, Outcome::Running, "attempt {i} still running after the end");
            assert!(r.ended.is_some());
            match r.outcome {
                Outcome::Cancelled => assert!(chk.cancelled[i], "attempt {i} not cancelled"),
                Outcome::Failed(e) if e == ETIMEDOUT => assert!(chk.cancelled[i]),
                _ => {}
            }
        }
    } else {
        // Stuck only if something can still report.
        assert_eq!(chk.terminal, 0);
        assert!(
            race.is_resolving() || records.iter().any(|r| r.outcome == Outcome::Running),
            "race stalled"
        );
        assert_eq!(race.next_deadline(), None);
    }
}

#[test]
fn randomized_invariants() {
    for seed in 0..5000 {
        run_scenario(seed);
    }
}
