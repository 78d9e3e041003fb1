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
