//! HEv3 (draft-ietf-happy-happyeyeballs-v3-04 §4.2–§7) over HTTPS records
//! (RFC 9460): when racing starts with an HTTPS question open, aliases,
//! hints, ports, ALPN, SvcPriority groups, ECH required, late answers;
//! and randomized schedules checked against the rules' invariants.

use super::support::*;
use crate::engine::race::{Action, AttemptService, Race};
use crate::engine::service::{usable_alpn, HttpsQuery, QueryKind, Resolve, ServiceSpec, MAX_ALIAS_CHAIN};
use crate::engine::tree::{PathBranch, ProtocolBranch, RacingType, Tree};
use crate::engine::{tree, Candidate, Family};
use crate::vocabulary::svcb::{ServiceRecord, SvcParams};
use std::net::{IpAddr, SocketAddr};

const HOST: &str = "example.com";

/// `c` on port `port`.
fn at(c: Candidate, port: u16) -> Candidate {
    Candidate { addr: SocketAddr::new(c.addr.ip(), port), ..c }
}

/// A hint candidate as the engine makes it: its own source.
fn hint(c: Candidate, port: u16) -> Candidate {
    Candidate { addr: SocketAddr::new(c.addr.ip(), port), source: Some(c.addr.ip()) }
}

fn spec() -> ServiceSpec {
    ServiceSpec {
        queries: vec![HttpsQuery { endpoint: 0, host: HOST.into(), qname: HOST.into(), port: 443 }],
        ..ServiceSpec::default()
    }
}

fn service(priority: u16, target: &str, params: SvcParams) -> ServiceRecord {
    ServiceRecord { priority, target: target.into(), params }
}

fn alias(target: &str) -> ServiceRecord {
    ServiceRecord { priority: 0, target: target.into(), params: SvcParams::default() }
}

fn port(p: u16) -> SvcParams {
    SvcParams { port: Some(p), ..SvcParams::default() }
}

fn ip(c: Candidate) -> IpAddr {
    c.addr.ip()
}

/// A dual-stack race at 0 expecting `spec`, its first question drained.
fn race(spec: ServiceSpec) -> Race {
    let mut r = dual(cfg());
    r.expect_services(spec);
    assert_eq!(resolves(&mut r), [ask(HOST, QueryKind::Https)]);
    r
}

fn resolves(r: &mut Race) -> Vec<Resolve> {
    std::iter::from_fn(|| r.poll_resolve()).collect()
}

fn ask(name: &str, kind: QueryKind) -> Resolve {
    Resolve { endpoint: 0, name: name.into(), kind }
}

#[test]
fn without_https_records_expected_nothing_changes() {
    let mut r = dual(cfg());
    assert_eq!(r.poll_resolve(), None);
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.services(), []);
    assert_eq!(r.attempt_service(0), Some(AttemptService { service: None, from_hint: false }));
}

#[test]
fn https_late_costs_only_the_resolution_delay() {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    // Both families answered, HTTPS open: the Resolution Delay runs.
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(50 * MS));
    r.on_timer(50 * MS);
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    // HTTPS 300 ms late, with a port: the attempt in flight goes on; the
    // other address now has the record's port, the caller's is dropped.
    r.on_service_answer(300 * MS, 0, Ok(vec![service(1, "", port(8443))]));
    assert_eq!(drain(&mut r), [start(1, at(v6(1), 8443))]);
    assert_eq!(r.candidates(), [at(v6(1), 8443), at(v4(1), 8443), v6(1)]);
    r.on_timer(550 * MS);
    assert_eq!(drain(&mut r), [start(2, at(v4(1), 8443))]);
    assert_eq!(r.attempt_service(2), Some(AttemptService { service: Some(0), from_hint: false }));
}

#[test]
fn all_answers_before_the_delay_start_at_once() {
    let mut r = race(spec());
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.on_answer(5 * MS, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), []);
    r.on_service_answer(20 * MS, 0, Ok(vec![service(1, ".", port(8443))]));
    assert_eq!(drain(&mut r), [start(0, at(v6(1), 8443))]);
    assert_eq!(r.attempt(0).unwrap().started, 20 * MS);
}

#[test]
fn https_failure_ends_the_wait_with_the_callers_port() {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(10 * MS, 0, Err(3));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
}

#[test]
fn alias_followed_to_its_target_addresses() {
    let mut r = race(spec());
    r.on_service_answer(2 * MS, 0, Ok(vec![alias("CDN.example.net."), service(1, "ignored.example", port(1))]));
    assert_eq!(resolves(&mut r), [ask("cdn.example.net", QueryKind::Https)]);
    r.on_service_answer(5 * MS, 0, Ok(vec![service(1, ".", SvcParams::default())]));
    assert_eq!(resolves(&mut r), [ask("cdn.example.net", QueryKind::Aaaa), ask("cdn.example.net", QueryKind::A)]);
    assert_eq!(&*r.services()[0].target, "cdn.example.net");
    r.on_target_answer(10 * MS, 0, "cdn.example.net", Family::V6, Ok(vec![at(v6(7), 1)]));
    // The host's AAAA is still open: the Resolution Delay runs.
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(60 * MS));
    r.on_answer(20 * MS, q6(0), Ok(vec![v6(1)]));
    // The host's own addresses are the fallback: after the service's.
    assert_eq!(drain(&mut r), [start(0, v6(7))]);
    assert_eq!(r.candidates(), [v6(7), v6(1)]);
}

/// The host's own addresses are in (the fallback), the alias' ServiceMode
/// record too, but its TargetName has not answered: the race waits for
/// that answer (it would otherwise race, and on a fast path win, the
/// fallback ahead of the record's target); an empty answer ends the wait.
#[test]
fn fallback_waits_for_the_preferred_targets_first_answer() {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    r.on_service_answer(MS, 0, Ok(vec![alias("cdn.example.net")]));
    r.on_service_answer(2 * MS, 0, Ok(vec![service(1, ".", port(8443))]));
    assert_eq!(resolves(&mut r).len(), 3, "HTTPS for the alias, then its AAAA and A");
    assert_eq!(drain(&mut r), [], "the target's addresses are still asked");
    r.on_target_answer(3 * MS, 0, "cdn.example.net", Family::V4, Ok(vec![v4(7)]));
    assert_eq!(drain(&mut r), [start(0, at(v4(7), 8443))]);
    assert_eq!(r.attempt(0).unwrap().started, 3 * MS);

    // A target with no address at all: the fallback goes at once.
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![service(1, "gone.example", port(8443))]));
    r.on_target_answer(2 * MS, 0, "gone.example", Family::V6, Ok(vec![]));
    assert_eq!(drain(&mut r), []);
    r.on_target_answer(4 * MS, 0, "gone.example", Family::V4, Err(3));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.attempt(0).unwrap().started, 4 * MS);

    // A silent target: the Resolution Delay from the first address answer.
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![service(1, "slow.example", port(8443))]));
    assert_eq!(drain(&mut r), []);
    r.on_timer(50 * MS);
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
}

#[test]
fn alias_loop_falls_back_to_the_hosts_addresses() {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![alias("a.example")]));
    assert_eq!(resolves(&mut r), [ask("a.example", QueryKind::Https)]);
    r.on_service_answer(2 * MS, 0, Ok(vec![alias("example.com")]));
    assert_eq!(resolves(&mut r), []);
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.attempt(0).unwrap().started, 2 * MS);
}

#[test]
fn alias_chain_longer_than_the_limit_falls_back() {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    for hop in 1..=MAX_ALIAS_CHAIN {
        r.on_service_answer(hop as u64 * MS, 0, Ok(vec![alias(&format!("a{hop}.example"))]));
        assert_eq!(resolves(&mut r), [ask(&format!("a{hop}.example"), QueryKind::Https)]);
        assert_eq!(drain(&mut r), []);
    }
    r.on_service_answer(9 * MS, 0, Ok(vec![alias("a9.example")]));
    assert_eq!(resolves(&mut r), []);
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
}

#[test]
fn alias_to_root_means_no_service() {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![alias(".")]));
    assert_eq!(resolves(&mut r), []);
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
}

/// Two services with hints only, priority 2 given first.
fn two_priorities() -> Race {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![]));
    r.on_answer(0, q4(0), Ok(vec![]));
    let b = SvcParams { ipv6hint: vec![v6_ip(2)], ..SvcParams::default() };
    let a = SvcParams { ipv6hint: vec![v6_ip(1)], ..SvcParams::default() };
    r.on_service_answer(10 * MS, 0, Ok(vec![service(2, "b.example", b), service(1, "a.example", a)]));
    r
}

fn v6_ip(n: u16) -> std::net::Ipv6Addr {
    match ip(v6(n)) {
        IpAddr::V6(a) => a,
        IpAddr::V4(_) => unreachable!(),
    }
}

#[test]
fn lower_priority_first_second_wins_when_first_fails() {
    let mut r = two_priorities();
    assert_eq!(
        resolves(&mut r),
        [
            ask("b.example", QueryKind::Aaaa),
            ask("b.example", QueryKind::A),
            ask("a.example", QueryKind::Aaaa),
            ask("a.example", QueryKind::A)
        ]
    );
    assert_eq!(drain(&mut r), [start(0, hint(v6(1), 443))]);
    assert_eq!(r.attempt_service(0), Some(AttemptService { service: Some(1), from_hint: true }));
    assert_eq!(r.services()[1].priority, 1);
    assert_eq!(r.service_order(), [1, 0]);
    r.on_attempt_failed(40 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), [start(1, hint(v6(2), 443))]);
    r.on_attempt_ready(60 * MS, 1);
    assert_eq!(drain(&mut r), [Action::Won { attempt: 1 }]);
}

#[test]
fn hints_replaced_by_the_targets_answers() {
    let mut r = race(spec());
    let params = SvcParams { ipv6hint: vec![v6_ip(9)], ipv4hint: vec![[192, 0, 2, 9].into()], ..SvcParams::default() };
    r.on_service_answer(0, 0, Ok(vec![service(1, ".", params)]));
    // Hints are an address answer, but AAAA is open: the delay runs.
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(50 * MS));
    r.on_answer(10 * MS, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.candidates(), [v6(1), hint(v4(9), 443)]);
    // The A answer does not confirm 192.0.2.9: not attempted, dropped.
    r.on_answer(20 * MS, q4(0), Ok(vec![v4(1)]));
    assert_eq!(r.candidates(), [v6(1), v4(1)]);
    r.on_timer(260 * MS);
    assert_eq!(drain(&mut r), [start(1, v4(1))]);
    assert_eq!(r.attempt_service(1), Some(AttemptService { service: Some(0), from_hint: false }));
}

#[test]
fn hint_attempted_before_the_answer_keeps_running() {
    let mut r = race(spec());
    r.on_answer(0, q4(0), Ok(vec![]));
    let params = SvcParams { ipv6hint: vec![v6_ip(9)], ..SvcParams::default() };
    r.on_service_answer(0, 0, Ok(vec![service(1, ".", params)]));
    r.on_timer(50 * MS);
    assert_eq!(drain(&mut r), [start(0, hint(v6(9), 443))]);
    r.on_answer(60 * MS, q6(0), Ok(vec![v6(1)]));
    assert_eq!(drain(&mut r), []);
    // Attempted: kept in the list (sorted within its group), not cancelled.
    assert_eq!(r.candidates(), [hint(v6(9), 443), v6(1)]);
    assert_eq!(r.attempt(0).unwrap().outcome, crate::engine::race::Outcome::Running);
    r.on_timer(300 * MS);
    assert_eq!(drain(&mut r), [start(1, v6(1))]);
}

#[test]
fn no_default_alpn_and_the_callers_list() {
    let h3_only = service(1, ".", SvcParams { alpn: vec!["h3".into()], no_default_alpn: true, ..SvcParams::default() });
    assert_eq!(usable_alpn(&h3_only, &[] as &[&str]), Some(vec!["h3".to_string()]));
    assert_eq!(usable_alpn(&h3_only, &["h2", "http/1.1"]), None);
    let h2 = service(1, ".", SvcParams { alpn: vec!["h2".into()], ..SvcParams::default() });
    assert_eq!(usable_alpn(&h2, &[] as &[&str]), Some(vec!["h2".to_string(), "http/1.1".to_string()]));
    assert_eq!(usable_alpn(&h2, &["http/1.1", "h2"]), Some(vec!["http/1.1".to_string(), "h2".to_string()]));
}

#[test]
fn alpn_mismatch_skips_the_record() {
    let mut r = race(ServiceSpec { alpn: vec!["h2".into()], ..spec() });
    let params = SvcParams { alpn: vec!["h3".into()], no_default_alpn: true, port: Some(8443), ..SvcParams::default() };
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![service(1, "h3.example", params)]));
    assert_eq!(resolves(&mut r), []);
    assert_eq!(r.services(), []);
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
}

#[test]
fn unknown_mandatory_key_skips_the_record() {
    let mut r = race(spec());
    let params = SvcParams { mandatory: vec![7], unknown_keys: vec![7], port: Some(8443), ..SvcParams::default() };
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![service(1, ".", params)]));
    assert_eq!(r.services(), []);
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
}

#[test]
fn ech_required_waits_for_https() {
    let mut r = race(ServiceSpec { ech_required: true, ..spec() });
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_answer(0, q4(0), Ok(vec![v4(1)]));
    assert_eq!(r.next_deadline(), None);
    r.on_timer(400 * MS);
    assert_eq!(drain(&mut r), []);
    let ech = SvcParams { ech: Some(vec![1, 2, 3].into()), ..SvcParams::default() };
    r.on_service_answer(500 * MS, 0, Ok(vec![service(2, ".", ech), service(1, "plain.example", port(1))]));
    // ECH services first despite SvcPriority.
    assert_eq!(drain(&mut r), [start(0, v6(1))]);
    assert_eq!(r.service_order(), [0, 1]);
    assert_eq!(r.attempt(0).unwrap().started, 500 * MS);
}

#[test]
fn fallback_addresses_keep_the_callers_port() {
    let mut r = race(spec());
    let params = SvcParams { port: Some(8443), ipv6hint: vec![v6_ip(5)], alpn: vec!["h2".into()], ..SvcParams::default() };
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![service(1, "svc.example", params)]));
    assert_eq!(r.candidates(), [hint(v6(5), 8443), v6(1)]);
    assert_eq!(drain(&mut r), [start(0, hint(v6(5), 8443))]);
    r.on_attempt_failed(2 * MS, 0, ECONNREFUSED);
    // svc.example's own AAAA/A are still asked: the fallback waits for
    // them, at most until racing's start plus the attempt delay.
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(251 * MS));
    r.on_target_answer(3 * MS, 0, "svc.example", Family::V6, Ok(vec![]));
    assert_eq!(drain(&mut r), []);
    r.on_target_answer(4 * MS, 0, "svc.example", Family::V4, Err(3));
    // Released; RFC 8305 §5: not within 10 ms of the previous start.
    assert_eq!(drain(&mut r), []);
    assert_eq!(r.next_deadline(), Some(11 * MS));
    r.on_timer(11 * MS);
    assert_eq!(drain(&mut r), [start(1, v6(1))]);
    assert_eq!(r.attempt_service(1), Some(AttemptService { service: None, from_hint: false }));

    // A silent target: the fallback starts when the hold ends.
    let mut r = race(spec());
    let params = SvcParams { port: Some(8443), ipv6hint: vec![v6_ip(5)], ..SvcParams::default() };
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![service(1, "svc.example", params)]));
    assert_eq!(drain(&mut r), [start(0, hint(v6(5), 8443))]);
    r.on_attempt_failed(2 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), []);
    r.on_timer(251 * MS);
    assert_eq!(drain(&mut r), [start(1, v6(1))]);
}

/// Two services whose targets are asked after the HTTPS answer: the
/// first (SvcPriority 1) fails at once, the second's target has not
/// answered yet: its answer, not the host's own addresses, gets the next
/// attempt (HEv3 §6: groups in order, fallback last).
#[test]
fn a_failed_first_service_goes_on_to_the_second_not_the_fallback() {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![v6(1)]));
    r.on_service_answer(MS, 0, Ok(vec![service(1, "one.example", port(8446)), service(2, "two.example", SvcParams::default())]));
    r.on_target_answer(2 * MS, 0, "one.example", Family::V6, Ok(vec![v6(11)]));
    assert_eq!(drain(&mut r), [start(0, at(v6(11), 8446))]);
    r.on_attempt_failed(3 * MS, 0, ECONNREFUSED);
    assert_eq!(drain(&mut r), [], "two.example is still asked");
    r.on_target_answer(5 * MS, 0, "two.example", Family::V6, Ok(vec![v6(22)]));
    // RFC 8305 §5: not within 10 ms of the previous start (2 ms).
    assert_eq!(drain(&mut r), []);
    r.on_timer(12 * MS);
    assert_eq!(drain(&mut r), [start(1, at(v6(22), 443))]);
    r.on_attempt_ready(16 * MS, 1);
    assert_eq!(drain(&mut r), [Action::Won { attempt: 1 }]);
}

#[test]
fn equal_priorities_shuffled_by_the_seed() {
    let first = |seed: u64| {
        let mut r = race(ServiceSpec { seed, ..spec() });
        r.on_answer(0, q6(0), Ok(vec![]));
        let a = SvcParams { ipv6hint: vec![v6_ip(1)], ..SvcParams::default() };
        let b = SvcParams { ipv6hint: vec![v6_ip(2)], ..SvcParams::default() };
        r.on_service_answer(0, 0, Ok(vec![service(1, "a.example", a), service(1, "b.example", b)]));
        r.candidates()[0]
    };
    let seen: Vec<Candidate> = (0..16).map(first).collect();
    assert!(seen.contains(&hint(v6(1), 443)) && seen.contains(&hint(v6(2), 443)));
    assert_eq!((0..16).map(first).collect::<Vec<_>>(), seen);
}

#[test]
fn target_answer_error_keeps_the_hints() {
    let mut r = two_priorities();
    resolves(&mut r);
    r.on_target_answer(20 * MS, 0, "a.example", Family::V6, Err(2));
    assert_eq!(r.candidates()[0], hint(v6(1), 443));
    r.on_target_answer(20 * MS, 0, "unknown.example", Family::V6, Ok(vec![v6(3)]));
    assert!(!r.candidates().contains(&v6(3)));
}

#[test]
fn resolution_fails_when_every_question_ends_empty() {
    let mut r = race(spec());
    r.on_answer(0, q6(0), Ok(vec![]));
    r.on_answer(0, q4(0), Err(-2));
    r.on_service_answer(MS, 0, Ok(vec![service(1, "t.example", SvcParams::default())]));
    assert_eq!(drain(&mut r), []);
    r.on_target_answer(2 * MS, 0, "t.example", Family::V6, Ok(vec![]));
    r.on_target_answer(3 * MS, 0, "t.example", Family::V4, Ok(vec![]));
    assert_eq!(drain(&mut r), [Action::Failed { error: crate::engine::race::RaceError::ResolutionFailed(-2) }]);
}

#[test]
fn tree_of_two_protocols_asks_once_and_races_the_service() {
    let paths = [PathBranch {
        path: 0,
        racing: RacingType::Immediate,
        protocols: vec![
            ProtocolBranch { protocol: 0, racing: RacingType::Immediate },
            ProtocolBranch { protocol: 1, racing: RacingType::Failover },
        ],
    }];
    for mut t in [Tree::new(cfg(), 0, &[q6(0), q4(0)], &paths[..1]), Tree::new(cfg(), 0, &[q6(0), q4(0)], &[PathBranch { protocols: paths[0].protocols[..1].to_vec(), ..paths[0].clone() }])] {
        t.expect_services(spec());
        assert_eq!(std::iter::from_fn(|| t.poll_resolve()).collect::<Vec<_>>(), [ask(HOST, QueryKind::Https)]);
        t.on_answer(0, q6(0), Ok(vec![v6(1)]));
        t.on_service_answer(MS, 0, Ok(vec![service(1, ".", port(8443))]));
        let actions = drain(&mut t);
        assert_eq!(actions[0], tree::Action::Start { attempt: 0, addr: at(v6(1), 8443).addr, path: 0, protocol: 0 });
        assert_eq!(t.services().len(), 1);
        assert_eq!(t.attempt_service(0), Some(AttemptService { service: Some(0), from_hint: false }));
    }
}

/// splitmix64, for the randomized schedules.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One input of a randomized schedule.
enum Input {
    Host(Family, Result<Vec<Candidate>, i32>),
    Https(Result<Vec<ServiceRecord>, i32>),
    Target(String, Family, Result<Vec<Candidate>, i32>),
    Attempt(usize, bool),
}

/// The addresses a scenario may give: a few of each family.
fn pool(rng: &mut Rng) -> Vec<Candidate> {
    let n = rng.below(3) as usize;
    (0..n).map(|_| if rng.below(2) == 0 { v6(1 + rng.below(4) as u16) } else { v4(1 + rng.below(4) as u8) }).collect()
}

fn answer(rng: &mut Rng, family: Family) -> Result<Vec<Candidate>, i32> {
    if rng.below(6) == 0 {
        return Err(-2);
    }
    Ok(pool(rng).into_iter().filter(|c| Family::of(&c.addr) == family).collect())
}

/// Random ServiceMode records; "h3only.example" (never usable by an h2
/// caller) has its own addresses, 2001:db8::99 and 192.0.2.99.
fn records(rng: &mut Rng) -> Vec<ServiceRecord> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let target = ["", "t1.example", "t2.example", "h3only.example"][rng.below(4) as usize];
        let mut p = SvcParams::default();
        if target == "h3only.example" {
            p.alpn = vec!["h3".into()];
            p.no_default_alpn = true;
            p.ipv6hint = vec![v6_ip(0x99)];
        } else {
            p.ipv6hint = (0..rng.below(2)).map(|_| v6_ip(1 + rng.below(4) as u16)).collect();
        }
        p.port = (rng.below(2) == 0).then_some(8443);
        out.push(service(1 + rng.below(3) as u16, target, p));
    }
    out
}

#[test]
fn randomized_hev3_invariants() {
    for seed in 0..2000u64 {
        let mut rng = Rng(seed);
        let ech_required = rng.below(4) == 0;
        let mut r = dual(cfg());
        r.expect_services(ServiceSpec { alpn: vec!["h2".into()], ech_required, seed, ..spec() });
        assert_eq!(resolves(&mut r), [ask(HOST, QueryKind::Https)]);
        let mut events: Vec<(u64, Input)> = vec![
            (rng.below(400) * MS, Input::Host(Family::V6, answer(&mut rng, Family::V6))),
            (rng.below(400) * MS, Input::Host(Family::V4, answer(&mut rng, Family::V4))),
        ];
        let https_at = rng.below(600) * MS;
        let https = if rng.below(5) == 0 { Err(2) } else { Ok(records(&mut rng)) };
        events.push((https_at, Input::Https(https)));
        let (mut first_input, mut https_done_at, mut ended) = (None::<u64>, None::<u64>, false);
        let mut started: Vec<SocketAddr> = Vec::new();
        let mut now = 0;
        loop {
            events.sort_by_key(|(t, _)| *t);
            let next_event = events.first().map(|(t, _)| *t);
            let deadline = r.next_deadline();
            let at = match (next_event, deadline) {
                (None, None) => break,
                (e, d) => e.unwrap_or(u64::MAX).min(d.unwrap_or(u64::MAX)),
            };
            assert!(at >= now, "seed {seed}: time goes forward");
            now = at;
            if deadline == Some(at) && next_event != Some(at) {
                r.on_timer(now);
            } else {
                let (_, input) = events.remove(0);
                first_input.get_or_insert(now);
                match input {
                    Input::Host(f, a) => r.on_answer(now, if f == Family::V6 { q6(0) } else { q4(0) }, a),
                    Input::Https(a) => {
                        https_done_at = Some(now);
                        r.on_service_answer(now, 0, a)
                    }
                    Input::Target(name, f, a) => r.on_target_answer(now, 0, &name, f, a),
                    // Reports for attempts the end cancelled would get a
                    // Cancel (close the socket): not what this checks.
                    Input::Attempt(..) if ended => {}
                    Input::Attempt(i, true) => r.on_attempt_ready(now, i),
                    Input::Attempt(i, false) => r.on_attempt_failed(now, i, ECONNREFUSED),
                }
            }
            for q in resolves(&mut r) {
                let family = match q.kind {
                    QueryKind::Aaaa => Family::V6,
                    QueryKind::A => Family::V4,
                    QueryKind::Https => unreachable!("seed {seed}: no alias was given"),
                };
                assert_ne!(q.name, "h3only.example", "seed {seed}: a skipped record's TargetName is not asked");
                let a = answer(&mut rng, family);
                events.push((now + rng.below(300) * MS, Input::Target(q.name, family, a)));
            }
            let actions = drain(&mut r);
            for (k, action) in actions.iter().enumerate() {
                assert!(!ended, "seed {seed}: nothing after the end");
                match *action {
                    Action::Start { attempt, addr } => {
                        if started.is_empty() && https_done_at.is_none() {
                            assert!(!ech_required, "seed {seed}: ECH required never races before HTTPS");
                            assert!(now >= first_input.unwrap() + 50 * MS, "seed {seed}: HTTPS open: the Resolution Delay first");
                        }
                        assert!(!started.contains(&addr), "seed {seed}: {addr} attempted twice");
                        assert!(!matches!(addr.ip(), IpAddr::V6(a) if a == v6_ip(0x99)), "seed {seed}: a skipped record's hint");
                        assert!([443, 8443].contains(&addr.port()));
                        assert_eq!(attempt, started.len());
                        started.push(addr);
                        let ok = rng.below(4) == 0;
                        events.push((now + (1 + rng.below(400)) * MS, Input::Attempt(attempt, ok)));
                    }
                    Action::Cancel { .. } => assert!(
                        actions[k..].iter().any(|a| matches!(a, Action::Won { .. } | Action::Failed { .. })),
                        "seed {seed}: an answer never cancels an attempt"
                    ),
                    Action::Won { .. } | Action::Failed { .. } => ended = true,
                    Action::Spare { .. } => unreachable!(),
                }
            }
        }
        assert!(r.is_finished(), "seed {seed}: every input given, the race ends");
    }
}
