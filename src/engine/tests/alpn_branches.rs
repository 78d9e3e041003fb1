//! Protocols by ALPN (HEv3 draft §5.1, §6): each PROTOCOL branch of the
//! candidate tree races only the candidates whose HTTPS service's ALPN set
//! has one of the ids its protocol serves; the fallback (addresses no
//! record claims) goes only to protocols serving "http/1.1" or serving no
//! registered ids.

use super::support::*;
use crate::engine::race::{AttemptService, RaceError};
use crate::engine::service::{HttpsQuery, ServiceSpec};
use crate::engine::tree::{Action, PathBranch, ProtocolBranch, RacingType, Tree};
use crate::engine::Candidate;
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

#[test]
fn record_h3_h2_races_both_branches_on_its_address() {
    let mut t = tree(RacingType::Immediate, true, false);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["h3", "h2"])]));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(starts(&drain(&mut t)), [(addr(v6(1)), QUIC), (addr(v6(1)), TCP)]);
    assert_eq!(t.attempt_service(0), Some(AttemptService { service: Some(0), from_hint: false }));
    assert_eq!(t.attempt_service(1), Some(AttemptService { service: Some(0), from_hint: false }));
}

#[test]
fn record_h2_only_goes_to_tcp_and_quic_fails_over_at_once() {
    // TCP is failover: it starts once QUIC, which has no candidate, fails.
    let mut t = tree(RacingType::Failover, true, false);
    t.on_service_answer(0, 0, Ok(vec![alpn(&["h2"])]));
    t.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(starts(&drain(&mut t)), []);
    t.on_answer(5 * MS, q4(0), Ok(vec![v4(1)]));
    assert_eq!(starts(&drain(&mut t)), [(addr(v6(1)), TCP)]);
    t.on_timer(5 * MS + 250 * MS);
    assert_eq!(starts(&drain(&mut t)), [(addr(v4(1)), TCP)]);
    assert!(t.attempts().all(|a| a.protocol == TCP));
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
