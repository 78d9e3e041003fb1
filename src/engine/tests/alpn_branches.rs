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
