//! History (HEv3 draft -04 §5.3, §6; RFC 8305 §4, §5): the store's keys,
//! smoothing, convergence and bounds; the sort rules it adds; the
//! Connection Attempt Delay from RTT; and the 10 ms rule of RFC 8305 §5.

use super::support::*;
use crate::engine::history::{
    self, attempt_delay, EntryKey, Hint, History, HistoryConfig, NetworkKey, Observation, RaceHistory,
};
use crate::engine::race::Race;
use crate::engine::{Candidate, Micros};

const NET: u32 = 7;

fn net(c: &Candidate) -> NetworkKey {
    NetworkKey::new(NET, c.source.unwrap())
}

fn key(c: Candidate) -> EntryKey {
    EntryKey { network: net(&c), addr: c.addr, protocol: 1 }
}

fn connected(ms: Micros) -> Observation {
    Observation::Connected { rtt: ms * MS }
}

fn hint(srtt_ms: Option<u32>, used: bool, failed: bool) -> Hint {
    Hint { srtt: srtt_ms.map(|m| m * 1000), used, failed: failed.then_some(ECONNREFUSED), races_ago: 1, age: 0 }
}

fn race_history(hints: &[(Candidate, Hint)], adapt: bool) -> RaceHistory {
    RaceHistory { adapt_delay: adapt, hints: hints.iter().map(|(c, h)| (c.addr, *h)).collect() }
}

#[test]
fn a_connection_keeps_its_rtt_smoothed_and_marks_the_destination_used() {
    let mut h = History::default();
    assert_eq!(h.hint(&key(v6(1)), 0), None);
    h.record_race(0, &[(key(v6(1)), connected(8))]);
    let first = h.hint(&key(v6(1)), 0).unwrap();
    assert_eq!((first.srtt, first.used, first.failed), (Some(8000), true, None));
    // RFC 6298: 7/8 of the old, 1/8 of the new.
    h.record_race(MS, &[(key(v6(1)), connected(16))]);
    assert_eq!(h.hint(&key(v6(1)), MS).unwrap().srtt, Some(9000));
    assert_eq!(h.races_on(&net(&v6(1))), 2);
}

#[test]
fn another_network_sees_nothing() {
    let mut h = History::default();
    h.record_race(0, &[(key(v6(1)), connected(8))]);
    // Same destination, another interface; same interface, another /64.
    let other_if = EntryKey { network: NetworkKey::new(NET + 1, v6(1).source.unwrap()), ..key(v6(1)) };
    let other_prefix = EntryKey { network: NetworkKey::new(NET, "2001:db8:0:1::100".parse().unwrap()), ..key(v6(1)) };
    assert_eq!(h.hint(&other_if, 0), None);
    assert_eq!(h.hint(&other_prefix, 0), None);
    // The same /64 (or /24) is the same network.
    let same = EntryKey { network: NetworkKey::new(NET, "2001:db8::200".parse().unwrap()), ..key(v6(1)) };
    assert!(h.hint(&same, 0).is_some());
    assert_eq!(NetworkKey::new(0, "192.0.2.7".parse().unwrap()), NetworkKey::new(0, "192.0.2.200".parse().unwrap()));
}

#[test]
fn a_failure_demotes_for_30_s_or_8_races_then_converges() {
    let mut h = History::default();
    h.record_race(0, &[(key(v6(1)), Observation::Failed(ETIMEDOUT))]);
    assert_eq!(h.hint(&key(v6(1)), 0).unwrap().failed, Some(ETIMEDOUT));
    // By time: 30 s.
    assert!(h.hint(&key(v6(1)), 29_999 * MS).unwrap().failed.is_some());
    assert_eq!(h.hint(&key(v6(1)), 30_000 * MS).unwrap().failed, None);
    // By races: each later race consults the network, then records; the
    // 8th race after the failing one tries it again.
    for i in 1..8 {
        h.consult(net(&v6(1)), 100 + i);
        assert!(h.hint(&key(v6(1)), i * MS).unwrap().failed.is_some(), "race {i}");
        // IPv4 wins; IPv6 was known, not attempted.
        h.record_race_of(i * MS, 100 + i, &[(key(v4(1)), connected(1)), (key(v6(1)), Observation::NotAttempted)]);
    }
    assert_eq!(h.races_on(&net(&v6(1))), 8);
    h.consult(net(&v6(1)), 108);
    h.consult(net(&v6(1)), 108); // once per race
    assert_eq!(h.hint(&key(v6(1)), 8 * MS).unwrap().failed, None);
    assert_eq!(h.hint(&key(v6(1)), 8 * MS).unwrap().races_ago, 8);
}

#[test]
fn a_connection_clears_the_failure() {
    let mut h = History::default();
    h.record_race(0, &[(key(v6(1)), Observation::Failed(ECONNREFUSED))]);
    h.record_race(MS, &[(key(v6(1)), connected(2))]);
    let hint = h.hint(&key(v6(1)), MS).unwrap();
    assert_eq!((hint.failed, hint.used, hint.srtt), (None, true, Some(2000)));
}

#[test]
fn entries_age_out_and_the_store_is_bounded() {
    let config = HistoryConfig { max_entries: 3, ..HistoryConfig::default() };
    let mut h = History::new(config);
    for n in 1..=4u16 {
        h.record_race(Micros::from(n) * MS, &[(key(v6(n)), connected(1))]);
    }
    // The least recently updated went first.
    assert_eq!(h.len(), 3);
    assert_eq!(h.hint(&key(v6(1)), 5 * MS), None);
    assert!(h.hint(&key(v6(4)), 5 * MS).is_some());
    assert!(h.memory_bytes() > 0);
    // 30 min without an update: gone.
    let late = 4 * MS + config.max_age;
    assert_eq!(h.hint(&key(v6(4)), late), None);
    h.expire(late);
    assert!(h.is_empty());
    assert_eq!(h.races_on(&net(&v6(4))), 0);
    h.record_race(0, &[(key(v6(1)), connected(1))]);
    h.clear();
    assert!(h.is_empty());
}

#[test]
fn export_and_import_keep_the_entries() {
    let mut h = History::default();
    let now = 100_000 * MS;
    h.record_race(now - 5000 * MS, &[(key(v6(1)), Observation::Failed(ETIMEDOUT)), (key(v4(1)), connected(3))]);
    h.record_race(now - 1000 * MS, &[(key(v4(1)), connected(3))]);
    let text = h.export(now);
    assert!(text.starts_with(history::EXPORT_HEADER));
    // Another process, another clock.
    let later = 1_000_000 * MS;
    let mut g = History::default();
    assert_eq!(g.import(&text, later), Ok(2));
    let v6h = g.hint(&key(v6(1)), later).unwrap();
    assert_eq!((v6h.failed, v6h.used, v6h.races_ago, v6h.age), (Some(ETIMEDOUT), false, 0, 5000 * MS));
    // 30 s later the failure no longer counts.
    assert_eq!(g.hint(&key(v6(1)), later + 25_000 * MS).unwrap().failed, None);
    let v4h = g.hint(&key(v4(1)), later).unwrap();
    assert_eq!((v4h.srtt, v4h.used, v4h.races_ago, v4h.age), (Some(3000), true, 0, 1000 * MS));
    // Into a young clock (a new process): an old failure stays old.
    let mut g = History::default();
    g.import(&h.export(now + 40_000 * MS), 7 * MS).unwrap();
    assert_eq!(g.hint(&key(v6(1)), 7 * MS).unwrap().failed, None);
    assert_eq!(g.hint(&key(v4(1)), 7 * MS).unwrap().srtt, Some(3000));
    // Another version, or a broken line: refused, nothing taken.
    assert_eq!(g.import("taps-racing-history 2\n", 0), Err(history::ImportError { line: 1 }));
    let broken = format!("{}\n# comment\nd 7 nonsense\n", history::EXPORT_HEADER);
    let mut e = History::default();
    assert_eq!(e.import(&broken, 0), Err(history::ImportError { line: 3 }));
    assert!(e.is_empty());
}

#[test]
fn a_failed_destination_goes_behind_its_family_and_families_interleave() {
    let hs = race_history(&[(v6(1), hint(None, false, true))], false);
    assert_eq!(history::order(&[v6(1), v6(2), v4(1)], 1, &hs), [v6(2), v4(1), v6(1)]);
    // Every IPv6 address failed: IPv4 leads, IPv6 still follows.
    let hs = race_history(&[(v6(1), hint(None, false, true))], false);
    assert_eq!(history::order(&[v6(1), v4(1)], 1, &hs), [v4(1), v6(1)]);
}

#[test]
fn a_lower_rtt_then_a_used_destination_sorts_first_within_rfc6724_rules() {
    // Between rules 8 and 9: lower RTT first, a known RTT before none.
    let hs = race_history(&[(v6(1), hint(Some(30), true, false)), (v6(2), hint(Some(5), true, false))], false);
    assert_eq!(history::order(&[v6(1), v6(2), v6(3)], 1, &hs), [v6(2), v6(1), v6(3)]);
    // Then used before unused.
    let hs = race_history(&[(v6(3), hint(None, true, false))], false);
    assert_eq!(history::order(&[v6(1), v6(2), v6(3)], 1, &hs), [v6(3), v6(1), v6(2)]);
    // Rule 6 (precedence) still comes first: a fast IPv4 does not lead.
    let hs = race_history(&[(v4(1), hint(Some(1), true, false))], false);
    assert_eq!(history::order(&[v4(1), v6(1)], 1, &hs), [v6(1), v4(1)]);
}

#[test]
fn the_attempt_delay_is_three_rtts_within_100_ms_and_2_s() {
    assert_eq!(attempt_delay([].into_iter()), None);
    assert_eq!(attempt_delay([1000].into_iter()), Some(100 * MS));
    assert_eq!(attempt_delay([50_000, 20_000].into_iter()), Some(150 * MS));
    assert_eq!(attempt_delay([900_000].into_iter()), Some(2000 * MS));
}

#[test]
fn with_1_ms_rtts_a_blackholed_first_address_costs_100_ms() {
    let mut r = dual(cfg());
    r.add_history(v6(1).addr, hint(Some(1), true, false), true);
    r.add_history(v4(1).addr, hint(Some(1), true, false), true);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.attempt_delay(), 100 * MS);
    assert_eq!(r.next_deadline(), Some(100 * MS));
    r.on_timer(100 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
}

#[test]
fn a_fixed_delay_ignores_the_rtts() {
    let mut r = dual(cfg());
    r.add_history(v4(1).addr, hint(Some(1), true, false), false);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.next_deadline(), Some(250 * MS));
}

#[test]
fn a_race_after_a_blackholed_ipv6_starts_ipv4_first() {
    let mut r = dual(cfg());
    r.add_history(v6(1).addr, hint(None, false, true), true);
    r.add_history(v4(1).addr, hint(Some(1), true, false), true);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v4(1))]);
    // IPv6 is still attempted, at the delay the RTTs give.
    assert_eq!(r.next_deadline(), Some(100 * MS));
    r.on_attempt_ready(MS, 0);
    assert_eq!(r.winner(), Some(0));
}

#[test]
fn history_given_after_the_answer_reorders_what_is_pending() {
    let mut r = Race::new(cfg(), 0, &[q6(0), q4(0), q6(1)]);
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    r.add_history(v6(2).addr, hint(None, false, true), true);
    assert_eq!(r.candidates(), [v6(1), v6(2)]);
    r.on_answer(MS, q4(0), Ok(vec![v4(1)]));
    assert_eq!(r.candidates(), [v6(1), v4(1), v6(2)]);
    r.on_timer(250 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
}

// RFC 8305 §5: "a subsequent connection MUST NOT be started within 10
// milliseconds of the previous attempt".

#[test]
fn a_refusal_within_10_ms_starts_the_next_10_ms_after_the_previous_start() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    // Refused after 0.5 ms: the next waits until 10 ms.
    r.on_attempt_failed(500, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(10 * MS));
    r.on_timer(10 * MS - 1);
    assert_eq!(drain(&mut r), []);
    r.on_timer(10 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    // Refused again at once: 20 ms. Then the Connection Attempt Delay
    // runs from that start.
    r.on_attempt_failed(10 * MS + 300, 1, ECONNREFUSED);
    assert_eq!(drain(&mut r), []);
    r.on_timer(20 * MS);
    assert_eq!(drain(&mut r), [start(2, v6(2))]);
    assert_eq!(r.attempts().map(|a| a.started).collect::<Vec<_>>(), [0, 10 * MS, 20 * MS]);
}

#[test]
fn a_refusal_after_10_ms_starts_the_next_at_once() {
    let mut r = dual(cfg());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    drain(&mut r);
    r.on_attempt_failed(10 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
}

#[test]
fn race_count_starts_its_first_batch_together() {
    let mut r = dual(crate::engine::race::RaceConfig { race_count: 2, ..cfg() });
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1)), start(1, v4(1))]);
}

#[test]
fn a_tree_gives_each_leaf_its_hints_and_reports_them() {
    use crate::engine::tree::{PathBranch, ProtocolBranch, RacingType, Tree};
    let paths = [PathBranch {
        path: 0,
        racing: RacingType::Delayed(250 * MS),
        protocols: vec![
            ProtocolBranch { protocol: 0, racing: RacingType::Delayed(250 * MS) },
            ProtocolBranch { protocol: 1, racing: RacingType::Delayed(250 * MS) },
        ],
    }];
    for general in [false, true] {
        let one = [PathBranch { protocols: paths[0].protocols[..1].to_vec(), ..paths[0].clone() }];
        let mut t = if general {
            Tree::new(cfg(), 0, &[q6(0), q4(0)], &paths)
        } else {
            Tree::new(cfg(), 0, &[q6(0), q4(0)], &one)
        };
        // Protocol 0 knows IPv6 failed; protocol 1 knows nothing.
        t.add_history(&[v6(1), v4(1)], |_, protocol, c| (protocol == 0 && *c == v6(1)).then(|| hint(None, false, true)));
        t.on_answers(0, vec![(q6(0), Ok(vec![v6(1)])), (q4(0), Ok(vec![v4(1)]))]);
        let first: Vec<_> = std::iter::from_fn(|| t.poll_action()).collect();
        assert!(
            matches!(first.first(), Some(crate::engine::tree::Action::Start { addr, protocol: 0, .. }) if *addr == v4(1).addr),
            "{first:?}"
        );
        assert_eq!(t.history_hint(0), None, "IPv4 had no hint");
        t.on_timer(100 * MS);
        t.on_timer(250 * MS);
        let i = t.attempts().position(|a| a.record.candidate == v6(1) && a.protocol == 0).expect("IPv6 at 250 ms");
        assert!(t.history_hint(i).is_some_and(|h| h.failed.is_some()));
    }
}
