//! Sorting, RFC 8305 §4 and RFC 6724 §6: destination address selection
//! (rules 1, 2, 5, 6, 8, 9, 10), then family interleaving starting with the
//! preferred family, First Address Family Count in a row, in the sorter and
//! in a race. The policy table, scope and common prefix helpers keep their
//! own unit tests in sort.rs.

use super::support::*;
use crate::engine::race::RaceConfig;
use crate::engine::sort::{order, rfc6724_sort};
use crate::engine::Candidate;
use std::net::{IpAddr, SocketAddr};

fn c(addr: &str, source: Option<&str>) -> Candidate {
    let ip: IpAddr = addr.parse().unwrap();
    Candidate {
        addr: SocketAddr::new(ip, 443),
        source: source.map(|s| s.parse().unwrap()),
    }
}

fn ips(v: &[Candidate]) -> Vec<String> {
    v.iter().map(|c| c.addr.ip().to_string()).collect()
}

#[test]
fn loopback_v6_before_v4() {
    // Rule 6: ::1 has precedence 50, 127.0.0.1 (as ::ffff:127.0.0.1) 35.
    let v = order(&[c("127.0.0.1", Some("127.0.0.1")), c("::1", Some("::1"))], 1);
    assert_eq!(ips(&v), ["::1", "127.0.0.1"]);
}

#[test]
fn rule1_unusable_last() {
    let v = rfc6724_sort(&[
        c("2001:db8::1", None),
        c("192.0.2.1", Some("192.0.2.100")),
        c("2001:db8::2", Some("2001:db8::100")),
    ]);
    assert_eq!(ips(&v), ["2001:db8::2", "192.0.2.1", "2001:db8::1"]);
    // With interleaving the unusable v6 is still after the usable ones.
    let v = order(&[c("2001:db8::1", None), c("192.0.2.1", Some("192.0.2.100"))], 1);
    assert_eq!(ips(&v), ["192.0.2.1", "2001:db8::1"]);
}

#[test]
fn rule2_matching_scope() {
    // A link-local v6 destination reached from a global source does not
    // match scope; the global v4 from a global source does.
    let v = rfc6724_sort(&[
        c("fe80::1", Some("2001:db8::100")),
        c("198.51.100.1", Some("192.0.2.100")),
    ]);
    assert_eq!(ips(&v), ["198.51.100.1", "fe80::1"]);
}

#[test]
fn rule5_matching_label() {
    // 2001:db8::1 (label 1) from a 6to4 source (label 2) loses to IPv4
    // with an IPv4 source (label 4 both), despite higher precedence.
    let v = rfc6724_sort(&[
        c("2001:db8::1", Some("2002:c000:201::1")),
        c("198.51.100.1", Some("192.0.2.100")),
    ]);
    assert_eq!(ips(&v), ["198.51.100.1", "2001:db8::1"]);
}

#[test]
fn rule6_ula_vs_global_precedence() {
    // ULA (precedence 3) after global IPv6 (40) and IPv4 (35), when
    // labels match on every side.
    let v = rfc6724_sort(&[
        c("fd00::1", Some("fd00::100")),
        c("198.51.100.1", Some("192.0.2.100")),
        c("2001:db8::1", Some("2001:db8::100")),
    ]);
    assert_eq!(ips(&v), ["2001:db8::1", "198.51.100.1", "fd00::1"]);
    // RFC 6724 §10.2 example: global source only, so the ULA does not
    // match label; global destination first.
    let v = rfc6724_sort(&[
        c("fd00::1", Some("2001:db8::100")),
        c("2001:db8:1::1", Some("2001:db8::100")),
    ]);
    assert_eq!(ips(&v), ["2001:db8:1::1", "fd00::1"]);
}

#[test]
fn rule8_smaller_scope() {
    // Both match scope, label and precedence: link-local (2) before
    // global (14).
    let v = rfc6724_sort(&[
        c("10.0.0.1", Some("10.0.0.100")),
        c("169.254.0.1", Some("169.254.0.100")),
    ]);
    assert_eq!(ips(&v), ["169.254.0.1", "10.0.0.1"]);
}

#[test]
fn rule9_longest_prefix() {
    let v = rfc6724_sort(&[
        c("2001:db8:ffff::1", Some("2001:db8:1::100")),
        c("2001:db8:1::1", Some("2001:db8:1::100")),
    ]);
    assert_eq!(ips(&v), ["2001:db8:1::1", "2001:db8:ffff::1"]);
    let v = rfc6724_sort(&[
        c("203.0.113.1", Some("192.0.2.100")),
        c("192.0.2.1", Some("192.0.2.100")),
    ]);
    assert_eq!(ips(&v), ["192.0.2.1", "203.0.113.1"]);
    // Beyond 64 bits IPv6 ties, so the order given stays.
    let v = rfc6724_sort(&[
        c("2001:db8::ffff", Some("2001:db8::1")),
        c("2001:db8::2", Some("2001:db8::1")),
    ]);
    assert_eq!(ips(&v), ["2001:db8::ffff", "2001:db8::2"]);
}

#[test]
fn rule10_stable() {
    let input = [
        c("192.0.2.3", Some("10.0.0.1")),
        c("192.0.2.1", Some("10.0.0.1")),
        c("192.0.2.2", Some("10.0.0.1")),
    ];
    assert_eq!(ips(&order(&input, 1)), ips(&input));
}

#[test]
fn interleave_default_count() {
    let input = [
        c("2001:db8::1", Some("2001:db8::100")),
        c("2001:db8::2", Some("2001:db8::100")),
        c("2001:db8::3", Some("2001:db8::100")),
        c("192.0.2.1", Some("192.0.2.100")),
        c("192.0.2.2", Some("192.0.2.100")),
    ];
    let v = order(&input, 1);
    assert_eq!(
        ips(&v),
        ["2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2", "2001:db8::3"]
    );
    // 0 behaves as 1.
    assert_eq!(order(&input, 0), v);
}

#[test]
fn interleave_first_family_count_two() {
    let input = [
        c("192.0.2.1", Some("192.0.2.100")),
        c("192.0.2.2", Some("192.0.2.100")),
        c("192.0.2.3", Some("192.0.2.100")),
        c("2001:db8::1", Some("2001:db8::100")),
        c("2001:db8::2", Some("2001:db8::100")),
        c("2001:db8::3", Some("2001:db8::100")),
        c("2001:db8::4", Some("2001:db8::100")),
    ];
    let v = order(&input, 2);
    assert_eq!(
        ips(&v),
        [
            "2001:db8::1",
            "2001:db8::2",
            "192.0.2.1",
            "2001:db8::3",
            "192.0.2.2",
            "2001:db8::4",
            "192.0.2.3"
        ]
    );
    // A count larger than the family takes the whole family first.
    let v = order(&input, 10);
    assert_eq!(
        ips(&v),
        [
            "2001:db8::1",
            "2001:db8::2",
            "2001:db8::3",
            "2001:db8::4",
            "192.0.2.1",
            "192.0.2.2",
            "192.0.2.3"
        ]
    );
}

#[test]
fn interleave_starts_with_preferred_v4() {
    // v6 only reachable via a mismatched-label source: IPv4 sorts first
    // and leads the interleaving.
    let input = [
        c("2001:db8::1", Some("2002:c000:201::1")),
        c("2001:db8::2", Some("2002:c000:201::1")),
        c("198.51.100.1", Some("192.0.2.100")),
    ];
    let v = order(&input, 1);
    assert_eq!(ips(&v), ["198.51.100.1", "2001:db8::1", "2001:db8::2"]);
}

#[test]
fn single_family_and_empty() {
    assert!(order(&[], 1).is_empty());
    let input = [c("192.0.2.1", Some("10.0.0.1")), c("192.0.2.2", Some("10.0.0.1"))];
    assert_eq!(order(&input, 1), input.to_vec());
}

#[test]
fn is_a_permutation() {
    // Simple LCG over a pool of addresses: output is a permutation.
    let pool = [
        c("::1", Some("::1")),
        c("127.0.0.1", Some("127.0.0.1")),
        c("2001:db8::1", None),
        c("2001:db8::2", Some("2001:db8::100")),
        c("fd00::1", Some("2001:db8::100")),
        c("fe80::1", Some("fe80::2")),
        c("192.0.2.1", Some("192.0.2.100")),
        c("198.51.100.1", None),
        c("::ffff:192.0.2.9", Some("::ffff:192.0.2.100")),
        c("2002::1", Some("2002::2")),
    ];
    let mut seed: u64 = 12345;
    let mut next = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for _ in 0..500 {
        let n = next() % (pool.len() + 1);
        let input: Vec<Candidate> = (0..n).map(|_| pool[next() % pool.len()]).collect();
        let fafc = next() % 3;
        let out = order(&input, fafc);
        let mut a = ips(&input);
        let mut b = ips(&out);
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
}

#[test]
fn first_address_family_count_two() {
    let config = RaceConfig { first_address_family_count: 2, connection_attempt_delay: 10 * MS, ..cfg() };
    let mut r = dual(config);
    r.on_answer(0, q4(0), Ok(vec![v4(1), v4(2)]));
    r.on_answer(0, q6(0), Ok(vec![v6(1), v6(2), v6(3)]));
    let mut actions = drain(&mut r);
    for t in 1..5 {
        r.on_timer(t * 10 * MS);
        actions.extend(drain(&mut r));
    }
    assert_eq!(
        actions,
        [
            start(0, v6(1)),
            start(1, v6(2)),
            start(2, v4(1)),
            start(3, v6(3)),
            start(4, v4(2))
        ]
    );
}
