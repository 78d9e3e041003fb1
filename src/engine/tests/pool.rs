//! The warm pool's policy: on-demand and refill races, where a ready
//! connection goes, idle expiry, exponential backoff with jitter.

use crate::engine::pool::*;
use crate::engine::Micros;

const S: Micros = 1_000_000;

fn cfg() -> PoolConfig {
    PoolConfig { backoff_initial: S, backoff_max: 8 * S, ..PoolConfig::default() }
}

#[test]
fn a_waiting_caller_starts_one_on_demand_race() {
    let mut p = PoolPolicy::new(cfg(), 1);
    assert!(!p.acquire());
    assert_eq!(p.races_to_start(0), vec![(RaceKind::OnDemand, 3)]);
    assert_eq!(p.races_to_start(0), vec![], "one on-demand race per waiting caller");
    assert_eq!(p.place(5), Placement::Waiter);
    assert_eq!(p.place(5), Placement::Buffer, "a spare goes to the buffer");
    assert_eq!(p.race_ended(6, RaceKind::OnDemand, true), 0);
    assert!(p.acquire(), "the spare serves the next caller at once");
}

#[test]
fn failures_back_off_exponentially_then_reset() {
    let mut p = PoolPolicy::new(cfg(), 1);
    p.acquire();
    p.races_to_start(0);
    assert_eq!(p.race_ended(10, RaceKind::OnDemand, false), 1, "the waiter is told");
    p.waiters_failed(1);
    assert_eq!(p.backoff(), (S, Some(10 + S)));
    p.acquire();
    assert_eq!(p.races_to_start(10 + S - 1), vec![]);
    assert_eq!(p.next_deadline(), Some(10 + S));
    assert_eq!(p.races_to_start(10 + S), vec![(RaceKind::OnDemand, 3)]);
    p.race_ended(20 + S, RaceKind::OnDemand, false);
    assert_eq!(p.backoff().0, 2 * S);
    for _ in 0..5 {
        p.race_ended(0, RaceKind::OnDemand, false);
    }
    assert_eq!(p.backoff().0, 8 * S, "capped");
    p.race_ended(0, RaceKind::OnDemand, true);
    assert_eq!(p.backoff(), (0, None));
}

#[test]
fn refill_is_conservative_and_yields_to_callers() {
    let mut p = PoolPolicy::new(PoolConfig { buffer_size: 2, ..cfg() }, 1);
    assert_eq!(p.races_to_start(0), vec![(RaceKind::Refill, 1)]);
    assert_eq!(p.races_to_start(0), vec![(RaceKind::Refill, 1)]);
    assert_eq!(p.races_to_start(0), vec![], "two refills for a buffer of two");
    // A caller arrives during the refill: an on-demand race with race_count.
    assert!(!p.acquire());
    assert_eq!(p.races_to_start(1), vec![(RaceKind::OnDemand, 3)]);
    assert_eq!(p.place(2), Placement::Waiter, "the first ready serves the caller");
    p.race_ended(2, RaceKind::Refill, true);
    assert_eq!(p.place(3), Placement::Buffer);
    p.race_ended(3, RaceKind::Refill, true);
    assert_eq!(p.buffered(), 1);
    p.race_ended(4, RaceKind::OnDemand, false);
    assert_eq!(p.races_to_start(4), vec![], "backing off");
    assert_eq!(p.races_to_start(4 + S), vec![(RaceKind::Refill, 1)]);
}

#[test]
fn a_full_buffer_disposes_and_idle_ones_expire() {
    let mut p = PoolPolicy::new(PoolConfig { buffer_size: 1, max_size: 2, max_idle: Some(10 * S), ..cfg() }, 1);
    assert_eq!(p.place(0), Placement::Buffer);
    assert_eq!(p.place(1), Placement::Buffer);
    assert_eq!(p.place(2), Placement::Dispose);
    assert_eq!(p.next_deadline(), Some(10 * S));
    assert_eq!(p.expired(10 * S), vec![0]);
    assert_eq!(p.buffered(), 1);
    assert_eq!(p.next_deadline(), Some(10 * S + 1));
}

#[test]
fn jitter_stays_within_its_spread_and_is_deterministic() {
    let c = PoolConfig { backoff_jitter_percent: 20, ..cfg() };
    let mut a = PoolPolicy::new(c, 7);
    let mut b = PoolPolicy::new(c, 7);
    for _ in 0..100 {
        let (x, y) = (a.jittered(S), b.jittered(S));
        assert_eq!(x, y);
        assert!((800_000..=1_200_000).contains(&x), "{x}");
    }
}
