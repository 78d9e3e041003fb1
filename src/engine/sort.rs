//! RFC 6724 §6 destination address selection and RFC 8305 §4 interleaving.
//!
//! Pure functions over [`Candidate`]s: the source address for each
//! destination was found by the driver (a connected UDP socket, as glibc
//! does).
//!
//! # Rules applied
//!
//! Destinations are compared by RFC 6724 §6 rules, in this order (the
//! rules that need data the engine does not have, 3, 4 and 7, are skipped):
//!
//! 1. avoid unusable destinations (no source address: sorted last);
//! 2. prefer matching scope (`Scope(D) == Scope(S)`);
//! 5. prefer matching label (`Label(D) == Label(S)`, policy table of
//!    RFC 6724 §2.1);
//! 6. prefer higher precedence (same table);
//! 8. prefer smaller scope;
//! 9. prefer the longest matching prefix with the source, when both
//!    destinations are of the same family. The source's prefix length is
//!    not known to the engine, so, as Go's resolver does, IPv6 compares at
//!    most the first 64 bits (the usual subnet prefix, RFC 6724 §2.2's
//!    "up to the length of S's prefix"), and IPv4 (including IPv4-mapped
//!    IPv6) compares the 32 IPv4 bits;
//! 10. otherwise keep the given order (the sort is stable).
//!
//! IPv4 addresses are looked up in the policy table as IPv4-mapped IPv6
//! (`::ffff:a.b.c.d`) and scoped by RFC 6724 §3.2 (127/8 and 169.254/16
//! link-local, everything else global). An IPv4-mapped IPv6 address is
//! treated as the IPv4 address it carries for scope and rule 9.
//!
//! Every rule above reduces to a per-candidate key (a destination with
//! precedence 35 is always IPv4 or IPv4-mapped, so two destinations tied
//! up to rule 6 are always of the same family for rule 9), so the
//! comparison is a total order.

use super::nat64::{extract, Pref64};
use super::{Candidate, Family};
use std::cmp::Reverse;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One row of the RFC 6724 §2.1 policy table.
struct Policy {
    prefix: u128,
    len: u32,
    precedence: u8,
    label: u8,
}

/// RFC 6724 §2.1 default policy table.
const POLICY_TABLE: [Policy; 9] = [
    // ::1/128
    Policy { prefix: 1, len: 128, precedence: 50, label: 0 },
    // ::/0
    Policy { prefix: 0, len: 0, precedence: 40, label: 1 },
    // ::ffff:0:0/96
    Policy { prefix: 0xffff_0000_0000, len: 96, precedence: 35, label: 4 },
    // 2002::/16 (6to4)
    Policy { prefix: 0x2002 << 112, len: 16, precedence: 30, label: 2 },
    // 2001::/32 (Teredo)
    Policy { prefix: 0x2001 << 112, len: 32, precedence: 5, label: 5 },
    // fc00::/7 (ULA)
    Policy { prefix: 0xfc00 << 112, len: 7, precedence: 3, label: 13 },
    // ::/96 (IPv4-compatible, deprecated)
    Policy { prefix: 0, len: 96, precedence: 1, label: 3 },
    // fec0::/10 (site-local, deprecated)
    Policy { prefix: 0xfec0 << 112, len: 10, precedence: 1, label: 11 },
    // 3ffe::/16 (6bone)
    Policy { prefix: 0x3ffe << 112, len: 16, precedence: 1, label: 12 },
];

/// RFC 6724 §3.1 scope values used here.
const SCOPE_LINK_LOCAL: u8 = 0x2;
const SCOPE_SITE_LOCAL: u8 = 0x5;
const SCOPE_GLOBAL: u8 = 0xe;

fn mask(len: u32) -> u128 {
    if len == 0 {
        0
    } else {
        !0u128 << (128 - len)
    }
}

/// The address as IPv6, IPv4 mapped to `::ffff:a.b.c.d`.
fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// The IPv4 address carried by `ip` (IPv4 itself or IPv4-mapped IPv6).
fn as_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    }
}

/// (precedence, label) of the longest matching prefix of the policy table.
fn policy(ip: IpAddr) -> (u8, u8) {
    let bits = u128::from(as_v6(ip));
    let mut best: Option<&Policy> = None;
    for p in &POLICY_TABLE {
        if bits & mask(p.len) == p.prefix && best.is_none_or(|b| p.len > b.len) {
            best = Some(p);
        }
    }
    // ::/0 always matches.
    let p = best.unwrap_or(&POLICY_TABLE[1]);
    (p.precedence, p.label)
}

/// RFC 6724 §3.1 / §3.2 scope of an address.
fn scope(ip: IpAddr) -> u8 {
    if let Some(v4) = as_v4(ip) {
        return if v4.is_loopback() || v4.is_link_local() {
            SCOPE_LINK_LOCAL
        } else {
            SCOPE_GLOBAL
        };
    }
    let v6 = as_v6(ip);
    let first = v6.segments()[0];
    if first & 0xff00 == 0xff00 {
        // Multicast: the scope field is the low 4 bits of the second byte.
        (first & 0x000f) as u8
    } else if v6.is_loopback() || first & 0xffc0 == 0xfe80 {
        SCOPE_LINK_LOCAL
    } else if first & 0xffc0 == 0xfec0 {
        SCOPE_SITE_LOCAL
    } else {
        SCOPE_GLOBAL
    }
}

/// RFC 6724 §2.2 CommonPrefixLen, for rule 9: IPv4 on its 32 bits, IPv6 on
/// at most 64 bits, 0 across families.
fn common_prefix_len(source: IpAddr, dest: IpAddr) -> u32 {
    match (as_v4(source), as_v4(dest)) {
        (Some(s), Some(d)) => (u32::from(s) ^ u32::from(d)).leading_zeros(),
        (None, None) => {
            let x = u128::from(as_v6(source)) ^ u128::from(as_v6(dest));
            x.leading_zeros().min(64)
        }
        _ => 0,
    }
}

/// The sort key of one destination: smaller sorts first. Fields in rule
/// order: 1, 2, 5, 6, 8, 9.
type Key = (bool, bool, bool, Reverse<u8>, u8, Reverse<u32>);

fn key(c: &Candidate) -> Key {
    let dest = c.addr.ip();
    let (precedence, label) = policy(dest);
    let dscope = scope(dest);
    match c.source {
        None => (true, true, true, Reverse(precedence), dscope, Reverse(0)),
        Some(src) => (
            false,
            scope(src) != dscope,
            policy(src).1 != label,
            Reverse(precedence),
            dscope,
            Reverse(common_prefix_len(src, dest)),
        ),
    }
}

/// The sort key with the history rules of HEv3 draft -04 §5.3 (see
/// [`super::history`]): a destination that `failed` recently is known
/// unreachable (rule 1); between rules 8 and 9, a lower smoothed RTT
/// (`srtt`, µs; known before unknown), then a destination `used` before.
pub(crate) fn key_with_history(c: &Candidate, failed: bool, srtt: Option<u32>, used: bool) -> impl Ord {
    let k = key(c);
    (k.0 || failed, k.1, k.2, k.3, k.4, (srtt.is_none(), srtt), !used, k.5)
}

/// Sort candidates by RFC 6724 §6 rules 1, 2, 5, 6, 8, 9 only (stable),
/// without interleaving. See the module documentation for the details.
pub fn rfc6724_sort(candidates: &[Candidate]) -> Vec<Candidate> {
    let mut v = candidates.to_vec();
    v.sort_by_cached_key(key);
    v
}

/// RFC 8305 §4 interleaving of an already sorted list: the family of the
/// first candidate first, `first_address_family_count` (at least 1) of it
/// in a row, then one of the other family, one of the first, and so on;
/// when a family runs out, the rest of the other follows in order. The
/// family of a candidate is its socket family ([`Family::of`]).
pub fn interleave(sorted: &[Candidate], first_address_family_count: usize) -> Vec<Candidate> {
    let Some(first) = sorted.first() else {
        return Vec::new();
    };
    let first_family = Family::of(&first.addr);
    let (a, b): (Vec<Candidate>, Vec<Candidate>) =
        sorted.iter().partition(|c| Family::of(&c.addr) == first_family);
    let mut out = Vec::with_capacity(sorted.len());
    let mut a = a.into_iter();
    let mut b = b.into_iter();
    out.extend(a.by_ref().take(first_address_family_count.max(1)));
    loop {
        match (b.next(), a.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    out
}

/// Sort candidates by RFC 6724 §6 rules 1, 2, 5, 6, 8, 9 (stable: rule 10
/// keeps the order of equals), then interleave the families as RFC 8305 §4
/// says: the family of the first sorted candidate first,
/// `first_address_family_count` of it in a row, then alternating one of
/// each family while both last, then the rest.
pub fn order(candidates: &[Candidate], first_address_family_count: usize) -> Vec<Candidate> {
    interleave(&rfc6724_sort(candidates), first_address_family_count)
}

/// [`order`] on a network with NAT64 (HEv3 -04 §8, the editors' copy's
/// MUST): a candidate inside `pref64` (a DNS64 answer, or an address the
/// race synthesized) is sorted as the IPv4 address it carries (RFC 6724 §6
/// on that address, RFC 6052 extraction; its source stays the IPv6 one, so
/// it sorts after native IPv6 by rules 5 and 6) and counts as IPv4 when
/// the families are interleaved, so that native IPv6 interleaves with
/// translated IPv4. Without a prefix, or with no candidate inside it,
/// exactly [`order`].
pub fn order_with_pref64(candidates: &[Candidate], first_address_family_count: usize, pref64: Option<&Pref64>) -> Vec<Candidate> {
    let view = |c: &Candidate| match (pref64, c.addr) {
        (Some(p), SocketAddr::V6(a)) => extract(p, *a.ip()).map(|v4| Candidate {
            addr: SocketAddr::new(IpAddr::V4(v4), a.port()),
            source: c.source,
        }),
        _ => None,
    };
    let views: Vec<Option<Candidate>> = candidates.iter().map(view).collect();
    if views.iter().all(Option::is_none) {
        return order(candidates, first_address_family_count);
    }
    let seen = |i: usize| views[i].as_ref().unwrap_or(&candidates[i]);
    let mut idx: Vec<usize> = (0..candidates.len()).collect();
    idx.sort_by_cached_key(|&i| key(seen(i)));
    let Some(&first) = idx.first() else { return Vec::new() };
    let first_family = Family::of(&seen(first).addr);
    let (a, b): (Vec<usize>, Vec<usize>) = idx.iter().partition(|&&i| Family::of(&seen(i).addr) == first_family);
    let mut out = Vec::with_capacity(candidates.len());
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    out.extend(a.by_ref().take(first_address_family_count.max(1)));
    loop {
        match (b.next(), a.next()) {
            (None, None) => break,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
    out.into_iter().map(|i| candidates[i]).collect()
}

#[cfg(test)]
mod tests {
    //! Unit tests of the private RFC 6724 helpers; the sorting rules and
    //! interleaving are tested in `engine::tests::sorting`.
    use super::*;

    #[test]
    fn policy_table_lookup() {
        let p = |s: &str| policy(s.parse().unwrap());
        assert_eq!(p("::1"), (50, 0));
        assert_eq!(p("2001:db8::1"), (40, 1));
        assert_eq!(p("192.0.2.1"), (35, 4));
        assert_eq!(p("::ffff:192.0.2.1"), (35, 4));
        assert_eq!(p("2002:c000:201::1"), (30, 2));
        assert_eq!(p("2001:0:1::1"), (5, 5));
        assert_eq!(p("fd00::1"), (3, 13));
        assert_eq!(p("fc00::1"), (3, 13));
        assert_eq!(p("::192.0.2.1"), (1, 3));
        assert_eq!(p("::"), (1, 3));
        assert_eq!(p("fec0::1"), (1, 11));
        assert_eq!(p("3ffe::1"), (1, 12));
    }

    #[test]
    fn scopes() {
        let s = |a: &str| scope(a.parse().unwrap());
        assert_eq!(s("::1"), 2);
        assert_eq!(s("fe80::1"), 2);
        assert_eq!(s("febf::1"), 2);
        assert_eq!(s("fec0::1"), 5);
        assert_eq!(s("2001:db8::1"), 14);
        assert_eq!(s("fd00::1"), 14);
        assert_eq!(s("ff02::1"), 2);
        assert_eq!(s("ff05::1"), 5);
        assert_eq!(s("ff0e::1"), 14);
        assert_eq!(s("ff01::1"), 1);
        assert_eq!(s("127.0.0.1"), 2);
        assert_eq!(s("169.254.1.1"), 2);
        assert_eq!(s("10.0.0.1"), 14);
        assert_eq!(s("192.0.2.1"), 14);
        assert_eq!(s("::ffff:127.0.0.1"), 2);
    }

    #[test]
    fn prefix_len() {
        let l = |a: &str, b: &str| common_prefix_len(a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(l("10.0.0.1", "10.0.0.1"), 32);
        assert_eq!(l("10.0.0.1", "10.0.1.1"), 23);
        assert_eq!(l("10.0.0.1", "::ffff:10.0.0.1"), 32);
        assert_eq!(l("2001:db8::1", "2001:db8::1"), 64);
        assert_eq!(l("2001:db8::1", "2001:db8:0:0:8000::1"), 64);
        assert_eq!(l("2001:db8::1", "2001:db8:0:1::1"), 63);
        assert_eq!(l("2001:db8::1", "10.0.0.1"), 0);
    }
}
