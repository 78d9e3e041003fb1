//! HEv3 -04 §8 (a MUST in the editors' copy): on a network with NAT64, an
//! address inside the NAT64 prefix (a DNS64 answer, or an A answer the
//! runtime synthesized) is sorted and interleaved as the IPv4 address it
//! carries, so native IPv6 interleaves with translated IPv4; without a
//! prefix nothing changes.

use super::support::*;
use crate::engine::nat64::Pref64;
use crate::engine::race::{Race, RaceConfig};
use crate::engine::sort::{order, order_with_pref64};
use crate::engine::Candidate;
use std::net::SocketAddr;

const SRC: &str = "2001:db8:46:1::2";

fn c(addr: &str) -> Candidate {
    Candidate { addr: SocketAddr::new(addr.parse().unwrap(), 443), source: Some(SRC.parse().unwrap()) }
}

fn nsp() -> Pref64 {
    "2001:db8:64::/96".parse().unwrap()
}

fn ips(v: &[Candidate]) -> Vec<String> {
    v.iter().map(|c| c.addr.ip().to_string()).collect()
}

/// Two native IPv6 and two DNS64 addresses (10.64.0.2, 10.64.0.3), as one
/// AAAA answer gives them.
fn answer() -> Vec<Candidate> {
    vec![c("2001:db8:64::a40:2"), c("2001:db8:64::a40:3"), c("2001:db8:46:9::1"), c("2001:db8:46:9::2")]
}

#[test]
fn dns64_answers_interleave_with_native_ipv6_as_ipv4() {
    // Without the prefix all four are IPv6: sorted by RFC 6724 rule 9
    // (longest prefix with the source), no interleaving.
    let plain = order(&answer(), 1);
    assert_eq!(ips(&plain), ["2001:db8:46:9::1", "2001:db8:46:9::2", "2001:db8:64::a40:2", "2001:db8:64::a40:3"]);
    assert_eq!(order_with_pref64(&answer(), 1, None), plain);
    // With it, the DNS64 ones are IPv4 (precedence 35 after native 40) and
    // alternate with the native ones.
    let v = order_with_pref64(&answer(), 1, Some(&nsp()));
    assert_eq!(ips(&v), ["2001:db8:46:9::1", "2001:db8:64::a40:2", "2001:db8:46:9::2", "2001:db8:64::a40:3"]);
    // First Address Family Count 2.
    let v = order_with_pref64(&answer(), 2, Some(&nsp()));
    assert_eq!(ips(&v), ["2001:db8:46:9::1", "2001:db8:46:9::2", "2001:db8:64::a40:2", "2001:db8:64::a40:3"]);
    // A prefix none of them is inside: exactly `order`.
    let other: Pref64 = "2001:db8:99::/96".parse().unwrap();
    assert_eq!(order_with_pref64(&answer(), 1, Some(&other)), plain);
}

#[test]
fn translated_ipv4_keeps_rfc6724_among_itself() {
    // Rule 1 on the embedded address: one without a source sorts last, as
    // an IPv4 address without a route would.
    let mut unusable = c("2001:db8:64::a40:4");
    unusable.source = None;
    let v = order_with_pref64(&[unusable, c("2001:db8:64::a40:5"), c("2001:db8:46:9::1")], 1, Some(&nsp()));
    assert_eq!(ips(&v), ["2001:db8:46:9::1", "2001:db8:64::a40:5", "2001:db8:64::a40:4"]);
    // Only translated addresses: their answer order, one family.
    let v = order_with_pref64(&answer()[..2], 1, Some(&nsp()));
    assert_eq!(ips(&v), ["2001:db8:64::a40:2", "2001:db8:64::a40:3"]);
}

#[test]
fn a_race_attempts_native_and_dns64_addresses_alternately() {
    let config = RaceConfig { connection_attempt_delay: 10 * MS, ..cfg() };
    let mut r = Race::new(config, 0, &[q6(0)]);
    r.set_pref64(Some(nsp()));
    r.on_answer(0, q6(0), Ok(answer()));
    let mut actions = drain(&mut r);
    for t in 1..4 {
        r.on_timer(t * 10 * MS);
        actions.extend(drain(&mut r));
    }
    let a = answer();
    assert_eq!(actions, [start(0, a[2]), start(1, a[0]), start(2, a[3]), start(3, a[1])]);
}

#[test]
fn synthesized_a_answers_race_as_ipv4_after_the_resolution_delay() {
    // The runtime turned the A answer 10.64.0.2 into 2001:db8:64::a40:2
    // (no IPv4 route). It arrives first: the Resolution Delay (50 ms)
    // waits for AAAA as for any A answer; the AAAA's native address then
    // goes first, the synthesized one second.
    let config = RaceConfig { connection_attempt_delay: 10 * MS, ..cfg() };
    let mut r = dual(config);
    r.set_pref64(Some(nsp()));
    let synthesized = c("2001:db8:64::a40:2");
    r.on_answer(0, q4(0), Ok(vec![synthesized]));
    assert_eq!(drain(&mut r), []);
    let native = c("2001:db8:46:9::1");
    r.on_answer(20 * MS, q6(0), Ok(vec![native]));
    let mut actions = drain(&mut r);
    r.on_timer(30 * MS);
    actions.extend(drain(&mut r));
    assert_eq!(actions, [start(0, native), start(1, synthesized)]);
    // An A-only name (AAAA: no data): the synthesized address starts as
    // soon as the AAAA query has answered.
    let mut r = dual(config);
    r.set_pref64(Some(nsp()));
    r.on_answer(0, q4(0), Ok(vec![synthesized]));
    r.on_answer(MS, q6(0), Err(0));
    assert_eq!(drain(&mut r), [start(0, synthesized)]);
}

/// HEv3 -04 §8.2 with HTTPS records: ipv4hints on a path without IPv4.
mod hints {
    use super::*;
    use crate::engine::service::{HttpsQuery, ServiceSpec};
    use crate::engine::tree::Tree;
    use crate::vocabulary::svcb::{ServiceRecord, SvcParams};
    use std::net::IpAddr;

    /// A race at 0 over example.com's AAAA and A, expecting its HTTPS
    /// records, hints synthesized under `prefix` (`None`: not).
    fn race(prefix: Option<Pref64>) -> Race {
        let mut r = dual(cfg());
        r.expect_services(ServiceSpec {
            queries: vec![HttpsQuery { endpoint: 0, host: "example.com".into(), qname: "example.com".into(), port: 443 }],
            ..ServiceSpec::default()
        });
        while r.poll_resolve().is_some() {}
        r.set_pref64(prefix);
        r.set_hint_synthesis(prefix);
        r
    }

    /// One ServiceMode record for the host with these ipv4hints.
    fn record(hints: &[&str]) -> Vec<ServiceRecord> {
        let params = SvcParams { ipv4hint: hints.iter().map(|h| h.parse().unwrap()).collect(), ..SvcParams::default() };
        vec![ServiceRecord { priority: 1, target: ".".into(), params }]
    }

    /// A hint candidate as the engine makes it: `ip` on 443, its own source.
    fn hint(ip: &str) -> Candidate {
        let ip: IpAddr = ip.parse().unwrap();
        Candidate { addr: SocketAddr::new(ip, 443), source: Some(ip) }
    }

    #[test]
    fn ipv4_hints_race_as_their_synthesis_until_the_a_answer() {
        let mut r = race(Some(nsp()));
        r.on_service_answer(2 * MS, 0, Ok(record(&["10.64.0.2", "10.64.0.4"])));
        // The hints are the first address answer: the Resolution Delay
        // (50 ms) runs from 2 ms, AAAA still open.
        assert_eq!(drain(&mut r), []);
        assert_eq!(r.next_deadline(), Some(52 * MS));
        r.on_timer(52 * MS);
        assert_eq!(drain(&mut r), [start(0, hint("2001:db8:64::a40:2"))]);
        assert_eq!(r.attempt(0).unwrap().started, 52 * MS);
        assert_eq!(r.candidates(), [hint("2001:db8:64::a40:2"), hint("2001:db8:64::a40:4")]);
        // The A answer (synthesized by the runtime) replaces the hints: the
        // attempt in flight goes on, the hint not attempted is dropped, the
        // next attempt is the answer's, 250 ms after the first.
        let answered = Candidate { addr: "[2001:db8:64::a40:3]:443".parse().unwrap(), source: Some(SRC.parse().unwrap()) };
        r.on_answer(60 * MS, q4(0), Ok(vec![answered]));
        assert_eq!(drain(&mut r), []);
        assert_eq!(r.candidates(), [hint("2001:db8:64::a40:2"), answered]);
        r.on_timer(302 * MS);
        assert_eq!(drain(&mut r), [start(1, answered)]);
    }

    #[test]
    fn the_well_known_prefix_keeps_a_private_hint_and_scoped_hints_stay_ipv4() {
        let mut r = race(Some(Pref64::WELL_KNOWN));
        r.on_service_answer(0, 0, Ok(record(&["10.0.0.1", "8.8.8.8", "127.0.0.1"])));
        r.on_answer(MS, q6(0), Ok(vec![]));
        let got = r.candidates();
        assert_eq!(got.len(), 3);
        assert!(got.contains(&hint("64:ff9b::808:808")), "{got:?}");
        assert!(got.contains(&hint("10.0.0.1")), "RFC 6052 §3.1: {got:?}");
        // Host- and link-scoped hints are never synthesized (HEv3 -04 §8.1).
        assert!(got.contains(&hint("127.0.0.1")), "{got:?}");
        let mut r = race(Some(nsp()));
        r.on_service_answer(0, 0, Ok(record(&["169.254.0.9", "10.0.0.1"])));
        r.on_answer(MS, q6(0), Ok(vec![]));
        let got = r.candidates();
        assert!(got.contains(&hint("169.254.0.9")) && got.contains(&hint("2001:db8:64::a00:1")), "{got:?}");
    }

    #[test]
    fn without_hint_synthesis_hints_stay_ipv4() {
        let mut r = race(None);
        r.on_service_answer(0, 0, Ok(record(&["10.64.0.2"])));
        r.on_answer(MS, q6(0), Ok(vec![]));
        assert_eq!(drain(&mut r), [start(0, hint("10.64.0.2"))]);
    }

    #[test]
    fn a_tree_synthesizes_hints_in_every_leaf() {
        use crate::engine::tree::{self, PathBranch, ProtocolBranch, RacingType};
        let two = PathBranch {
            path: 0,
            racing: RacingType::Immediate,
            protocols: vec![
                ProtocolBranch { protocol: 0, racing: RacingType::Immediate },
                ProtocolBranch { protocol: 1, racing: RacingType::Immediate },
            ],
        };
        let one = PathBranch { protocols: two.protocols[..1].to_vec(), ..two.clone() };
        for (paths, leaves) in [(one, 1), (two, 2)] {
            let mut t = Tree::new(cfg(), 0, &[q6(0), q4(0)], &[paths]);
            t.expect_services(ServiceSpec {
                queries: vec![HttpsQuery { endpoint: 0, host: "h".into(), qname: "h".into(), port: 443 }],
                ..ServiceSpec::default()
            });
            while t.poll_resolve().is_some() {}
            t.set_hint_synthesis(Some(nsp()));
            t.on_service_answer(0, 0, Ok(record(&["10.64.0.2"])));
            t.on_answer(MS, q6(0), Ok(vec![]));
            let want: SocketAddr = "[2001:db8:64::a40:2]:443".parse().unwrap();
            let started: Vec<_> = drain(&mut t)
                .into_iter()
                .filter_map(|a| match a {
                    tree::Action::Start { addr, protocol, .. } => Some((addr, protocol)),
                    _ => None,
                })
                .collect();
            let expected: Vec<_> = (0..leaves).map(|p| (want, p)).collect();
            assert_eq!(started, expected);
        }
    }
}
