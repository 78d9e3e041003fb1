//! Protocols by ALPN (HEv3 draft §5.1, §6): each PROTOCOL branch of the
//! candidate tree races only the candidates whose HTTPS service's ALPN set
//! has one of the ids its protocol serves; the fallback (addresses no
//! record claims) goes only to protocols serving "http/1.1" or serving no
//! registered ids. When every protocol of the path has ids, the
//! (endpoint, protocol) candidates are one list (HEv3 §5–§6), raced one at
//! a time with the Connection Attempt Delay; otherwise the protocols race
//! as branches (RFC 9623 §4.3).

use super::support::*;
use crate::engine::race::{AttemptService, RaceError};
use crate::engine::service::{HttpsQuery, ServiceSpec};
use crate::engine::tree::{Action, PathBranch, ProtocolBranch, RacingType, Tree};
use crate::engine::{Candidate, Micros};
use crate::vocabulary::svcb::{ServiceRecord, SvcParams};
use std::net::SocketAddr;

const HOST: &str = "example.com";
/// Protocol ids of the trees below.
const QUIC: usize = 0;
const TCP: usize = 1;

fn spec() -> ServiceSpec {
    ServiceSpec {
        queries: vec![HttpsQuery { endpoint: 0, host: HOST.into(), qname: HOST.into(), port: 443 }],
        ..ServiceSpec::default()
    }
}

fn alpn(ids: &[&str]) -> ServiceRecord {
    let params = SvcParams { alpn: ids.iter().map(|s| s.to_string()).collect(), no_default_alpn: true, ..SvcParams::default() };
    ServiceRecord { priority: 1, target: ".".into(), params }
}

/// QUIC then TCP under one path, racing as `racing` says; QUIC serves h3,
/// TCP h2 and http/1.1 (or nothing registered with `tcp_any`).
fn tree(racing: RacingType, https: bool, tcp_any: bool) -> Tree {
    let paths = [PathBranch {
        path: 0,
        racing: RacingType::Immediate,
        protocols: vec![ProtocolBranch { protocol: QUIC, racing: RacingType::Immediate }, ProtocolBranch { protocol: TCP, racing }],
    }];
    let mut t = Tree::new(cfg(), 0, &[q6(0), q4(0)], &paths);
    if https {
        t.expect_services(spec());
        while t.poll_resolve().is_some() {}
    }
    t.serve_alpn(|p| match p {
        QUIC => Some(vec!["h3".into()]),
        _ if tcp_any => None,
        _ => Some(vec!["h2".into(), "http/1.1".into()]),
    });
    t
}

fn starts(actions: &[Action]) -> Vec<(SocketAddr, usize)> {
    actions.iter().filter_map(|a| if let Action::Start { addr, protocol, .. } = a { Some((*addr, *protocol)) } else { None }).collect()
}

fn addr(c: Candidate) -> SocketAddr {
    c.addr
}

/// Drive `t` from `now` through its deadlines up to `until`, failing the
/// attempts `fail` names (attempt id, at) on the way: every start as (ms,
/// address, protocol).
fn timeline(t: &mut Tree, mut now: Micros, until: Micros, fail: &[(usize, Micros)]) -> Vec<(Micros, SocketAddr, usize)> {
    let mut out = Vec::new();
    loop {
        out.extend(starts(&drain(t)).into_iter().map(|(a, p)| (now / MS, a, p)));
        let next_fail = fail.iter().filter(|(_, at)| *at > now).map(|(_, at)| *at).min();
        let next = [t.next_deadline(), next_fail].into_iter().flatten().min();
        let Some(next) = next.filter(|&n| n <= until) else { return out };
        now = now.max(next);
        for &(attempt, _) in fail.iter().filter(|(_, at)| *at == now) {
            t.on_attempt_failed(now, attempt, libc::ECONNREFUSED);
        }
        t.on_timer(now);
    }
}

#[test]
fn record_h3_h2_is_one_list_h3_then_h2_on_each_address() {
    // HEv3 §5–§6: one sorted list of (endpoint, protocol), each address
    // with h3 (QUIC) first, then h2 (TCP); 250 ms between starts.
    let mut t = tree(RacingType::Immediate, true, false);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["h3", "h2"])]));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    t.on_answer(0, q4(0), Ok(vec![v4(1)]));
    let got = timeline(&mut t, 0, 2000 * MS, &[]);
    let want = [(0, addr(v6(1)), QUIC), (250, addr(v6(1)), TCP), (500, addr(v4(1)), QUIC), (750, addr(v4(1)), TCP)];
    assert_eq!(got, want);
    assert_eq!(t.attempt_service(0), Some(AttemptService { service: Some(0), from_hint: false }));
    assert_eq!(t.attempt_service(1), Some(AttemptService { service: Some(0), from_hint: false }));
}

#[test]
fn a_failure_starts_the_next_of_the_list_at_once_on_either_protocol() {
    // QUIC to v6(1) fails at 30 ms: TCP to v6(1) starts then, and the
    // attempt delay runs from there.
    let mut t = tree(RacingType::Immediate, true, false);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["h3", "h2"])]));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    t.on_answer(0, q4(0), Ok(vec![v4(1)]));
    let got = timeline(&mut t, 0, 2000 * MS, &[(0, 30 * MS)]);
    let want = [(0, addr(v6(1)), QUIC), (30, addr(v6(1)), TCP), (280, addr(v4(1)), QUIC), (530, addr(v4(1)), TCP)];
    assert_eq!(got, want);
    // A failure within 10 ms of the previous start waits until 10 ms after it.
    let mut t = tree(RacingType::Immediate, true, false);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["h3", "h2"])]));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    t.on_answer(0, q4(0), Ok(vec![v4(1)]));
    let got = timeline(&mut t, 0, 300 * MS, &[(0, 2 * MS)]);
    assert_eq!(got, [(0, addr(v6(1)), QUIC), (10, addr(v6(1)), TCP), (260, addr(v4(1)), QUIC)]);
}

#[test]
fn the_list_follows_svc_priority_across_protocols() {
    // Priority 1 serves h2 only (TCP), priority 2 h3 only (QUIC), both on
    // the name's own addresses: every priority 1 candidate comes first,
    // whatever protocol is listed first (HEv3 §5.2, §6).
    let mut t = tree(RacingType::Immediate, true, false);
    let mut h2 = alpn(&["h2"]);
    h2.params.ipv6hint = vec!["2001:db8::7".parse().unwrap()];
    let mut h3 = alpn(&["h3"]);
    h3.priority = 2;
    h3.params.ipv6hint = vec!["2001:db8::8".parse().unwrap()];
    h3.target = "quic.example.com".into();
    h2.target = "tcp.example.com".into();
    t.on_service_answer(0, 0, Ok(vec![h3, h2]));
    t.on_answer(0, q6(0), Ok(Vec::new()));
    t.on_answer(0, q4(0), Ok(Vec::new()));
    let hint = |n: u16| SocketAddr::new(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n).into(), 443);
    let got = timeline(&mut t, 0, 1000 * MS, &[]);
    assert_eq!(got[..2], [(0, hint(7), TCP), (250, hint(8), QUIC)], "{got:?}");
}

#[test]
fn record_h2_only_goes_to_tcp_from_the_start() {
    // No QUIC candidate: TCP's list starts at once (no branch waits for
    // QUIC to fail), its addresses 250 ms apart.
    let mut t = tree(RacingType::Failover, true, false);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["h2"])]));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(starts(&drain(&mut t)), [(addr(v6(1)), TCP)]);
    t.on_answer(5 * MS, q4(0), Ok(vec![v4(1)]));
    let got = timeline(&mut t, 5 * MS, 1000 * MS, &[]);
    assert_eq!(got, [(250, addr(v4(1)), TCP)]);
    assert!(t.attempts().all(|a| a.protocol == TCP));
}

#[test]
fn protocols_without_registered_ids_still_race_as_branches() {
    // TCP has no ids: the protocols race as branches (immediate: at once).
    let mut t = tree(RacingType::Immediate, true, true);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["h3", "h2"])]));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(starts(&drain(&mut t)), [(addr(v6(1)), QUIC), (addr(v6(1)), TCP)]);
}

#[test]
fn fallback_goes_only_to_the_default_alpn() {
    // No usable record (NODATA): the host's addresses are the fallback.
    let mut t = tree(RacingType::Immediate, true, false);
    t.on_service_answer(0, 0, Ok(Vec::new()));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(starts(&drain(&mut t)), [(addr(v6(1)), TCP)]);
    assert_eq!(t.attempt_service(0), Some(AttemptService { service: None, from_hint: false }));
}

#[test]
fn without_https_records_every_address_is_fallback() {
    let mut t = tree(RacingType::Immediate, false, false);
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(starts(&drain(&mut t)), [(addr(v6(1)), TCP)]);
    // A protocol with no ids registered races every candidate.
    let mut t = tree(RacingType::Immediate, false, true);
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(starts(&drain(&mut t)), [(addr(v6(1)), TCP)]);
}

#[test]
fn unregistered_protocol_races_every_service() {
    let mut t = tree(RacingType::Immediate, true, true);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["h3"])]));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(starts(&drain(&mut t)), [(addr(v6(1)), QUIC), (addr(v6(1)), TCP)]);
}

#[test]
fn no_branch_serves_the_record_the_race_fails_with_no_attempt() {
    let mut t = tree(RacingType::Immediate, true, false);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["spdy/3"])]));
    t.on_answer(0, q6(0), Ok(Vec::new()));
    t.on_answer(0, q4(0), Ok(vec![v4(1)]));
    // The record claims the host's address: no protocol serves it.
    let actions = drain(&mut t);
    assert_eq!(starts(&actions), []);
    assert!(matches!(actions.last(), Some(Action::Failed { error: RaceError::ResolutionFailed(_) })), "{actions:?}");
}

/// splitmix64, for the randomized schedules.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

#[test]
fn randomized_every_attempt_is_served_by_its_branch() {
    const IDS: [&str; 3] = ["h3", "h2", "http/1.1"];
    let served = |p: usize| match p {
        QUIC => Some(vec!["h3".to_string()]),
        TCP => Some(vec!["h2".to_string(), "http/1.1".to_string()]),
        _ => None,
    };
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let paths = [PathBranch {
            path: 0,
            racing: RacingType::Immediate,
            protocols: (0..3).map(|p| ProtocolBranch { protocol: p, racing: RacingType::Immediate }).collect(),
        }];
        let mut t = Tree::new(cfg(), 0, &[q6(0), q4(0)], &paths);
        t.expect_services(spec());
        t.serve_alpn(served);
        let records: Vec<ServiceRecord> = (0..1 + rng.below(3))
            .map(|_| {
                let alpn = IDS.iter().filter(|_| rng.below(2) == 0).map(|s| s.to_string()).collect();
                let params = SvcParams {
                    alpn,
                    no_default_alpn: rng.below(2) == 0,
                    ipv4hint: vec![std::net::Ipv4Addr::new(192, 0, 2, 10 + rng.below(3) as u8)],
                    ..SvcParams::default()
                };
                ServiceRecord { priority: 1 + rng.below(3) as u16, target: if rng.below(2) == 0 { ".".into() } else { "t.test".into() }, params }
            })
            .collect();
        let mut now = 0;
        let mut inputs = [0, 1, 2];
        for i in 0..3 {
            inputs.swap(i, rng.below(3) as usize);
        }
        for i in inputs {
            now += rng.below(60) * MS;
            match i {
                0 => t.on_service_answer(now, 0, Ok(records.clone())),
                1 => t.on_answer(now, q6(0), Ok(vec![v6(1 + rng.below(2) as u16)])),
                _ => t.on_answer(now, q4(0), Ok(vec![v4(1 + rng.below(2) as u8)])),
            }
        }
        let mut started = 0;
        for _ in 0..50 {
            for a in drain(&mut t) {
                if let Action::Start { attempt, protocol, .. } = a {
                    started += 1;
                    let svc = t.attempt_service(attempt).and_then(|s| s.service);
                    let ok = match (served(protocol), svc) {
                        (None, _) => true,
                        (Some(ids), Some(s)) => t.services()[s as usize].alpn.iter().any(|a| ids.iter().any(|i| **i == **a)),
                        (Some(ids), None) => ids.iter().any(|i| i == "http/1.1"),
                    };
                    assert!(ok, "seed {seed}: attempt {attempt} on protocol {protocol}, service {svc:?}: {:?}", t.services());
                    t.on_attempt_failed(now, attempt, 111);
                }
            }
            let Some(next) = t.next_deadline() else { break };
            now = now.max(next);
            t.on_timer(now);
        }
        // The unregistered protocol races every candidate: something starts.
        assert!(started > 0, "seed {seed}");
    }
}

#[test]
fn randomized_one_list_keeps_the_delay_between_any_two_starts() {
    // Both protocols with ids: one list. Whatever the records, answer
    // times and failures, two starts are never within 10 ms, and a start
    // comes before the Connection Attempt Delay only when an attempt
    // failed since the previous start or none is running (RFC 8305 §5).
    const IDS: [&str; 3] = ["h3", "h2", "http/1.1"];
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let mut t = tree(RacingType::Immediate, true, false);
        let records: Vec<ServiceRecord> = (0..1 + rng.below(3))
            .map(|_| {
                let alpn = IDS.iter().filter(|_| rng.below(2) == 0).map(|s| s.to_string()).collect();
                let params = SvcParams {
                    alpn,
                    no_default_alpn: rng.below(2) == 0,
                    ipv4hint: vec![std::net::Ipv4Addr::new(192, 0, 2, 10 + rng.below(3) as u8)],
                    ..SvcParams::default()
                };
                ServiceRecord { priority: 1 + rng.below(3) as u16, target: ".".into(), params }
            })
            .collect();
        let answers_at: Vec<Micros> = (0..3).map(|_| rng.below(80) * MS).collect();
        let (mut now, mut last, mut failed_since, mut running) = (0, None::<Micros>, false, 0usize);
        let mut inputs_done = [false; 3];
        for _ in 0..200 {
            for a in drain(&mut t) {
                if let Action::Start { attempt, protocol, .. } = a {
                    if let Some(prev) = last {
                        assert!(now >= prev + 10 * MS, "seed {seed}: start at {now} within 10 ms of {prev}");
                        assert!(failed_since || running == 0 || now >= prev + 250 * MS, "seed {seed}: attempt {attempt} ({protocol}) at {now}, previous at {prev}");
                    }
                    last = Some(now);
                    failed_since = false;
                }
            }
            running = t.running_count();
            let next_input = (0..3).filter(|&i| !inputs_done[i]).map(|i| answers_at[i]).min();
            let Some(next) = [t.next_deadline(), next_input, (running > 0).then(|| now + 1 + rng.below(400) * MS)].into_iter().flatten().min() else { break };
            now = now.max(next);
            for i in 0..3 {
                if inputs_done[i] || answers_at[i] > now {
                    continue;
                }
                inputs_done[i] = true;
                match i {
                    0 => t.on_service_answer(now, 0, Ok(records.clone())),
                    1 => t.on_answer(now, q6(0), Ok(vec![v6(1 + rng.below(2) as u16)])),
                    _ => t.on_answer(now, q4(0), Ok(vec![v4(1 + rng.below(2) as u8)])),
                }
            }
            // Sometimes the oldest running attempt fails now.
            if running > 0 && rng.below(3) == 0 {
                let oldest = t.attempts().position(|a| a.record.outcome == crate::engine::race::Outcome::Running);
                if let Some(id) = oldest {
                    t.on_attempt_failed(now, id, libc::ECONNREFUSED);
                    failed_since = true;
                }
            }
            t.on_timer(now);
            if t.is_finished() {
                break;
            }
        }
    }
}
