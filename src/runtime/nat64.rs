//! NAT64 synthesis for a race (RFC 8305 §7.1, HEv3 -04 §8): an IPv4
//! literal becomes an IPv6 destination under the loop's NAT64 prefix
//! (RFC 6052) when the host has no route to it over IPv4, and races as
//! IPv6; the race remembers which IPv4 address each synthesized
//! destination came from, for its report.
//!
//! The prefix is the one the caller set on the loop
//! (`EventLoop::set_pref64`); nothing is learnt from the network here yet.
//! Without a prefix nothing changes, and no route is looked up.

use crate::engine::nat64::{is_host_or_link_scoped, synthesize, Pref64};
use crate::engine::Candidate;
use super::sys::netlink::{path_route, NoRoute};
use crate::vocabulary::endpoint::{Host, RemoteEndpoint};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// The destinations a race synthesized: each IPv6 address with the IPv4
/// address it carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Synthesized {
    pairs: Vec<(Ipv6Addr, Ipv4Addr)>,
}

impl Synthesized {
    /// The IPv4 address `addr` was synthesized from, `None` for an
    /// address the race did not synthesize.
    pub(crate) fn source_of(&self, addr: SocketAddr) -> Option<Ipv4Addr> {
        let SocketAddr::V6(a) = addr else { return None };
        self.pairs.iter().find(|(v6, _)| v6 == a.ip()).map(|&(_, v4)| v4)
    }

    /// Whether nothing was synthesized.
    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Whether the kernel has a route to `v4` (a route lookup over rtnetlink;
/// a lookup that fails for another reason than "no route" counts as a
/// route, so that synthesis only replaces what cannot work).
pub(crate) fn has_ipv4_route(v4: Ipv4Addr) -> bool {
    has_route(IpAddr::V4(v4))
}

/// Whether the kernel has a route to `ip` (as [`has_ipv4_route`]).
pub(crate) fn has_route(ip: IpAddr) -> bool {
    !matches!(path_route(ip, None), Err(NoRoute::Errno(libc::ENETUNREACH | libc::EHOSTUNREACH)))
}

/// How long a route lookup is remembered by a [`RouteMemo`].
const ROUTE_MEMO: std::time::Duration = std::time::Duration::from_secs(1);
/// How many destinations a [`RouteMemo`] remembers.
const ROUTE_MEMO_SIZE: usize = 16;

/// [`has_ipv4_route`] remembered for [`ROUTE_MEMO`] per destination: a
/// loop that races many connections (a race per connection, to the same
/// few destinations) pays one rtnetlink round trip a second, not one per
/// race. A route that appears or goes is seen within that second.
#[derive(Default)]
pub(crate) struct RouteMemo(super::sync::Mutex<Vec<(IpAddr, std::time::Instant, bool)>>);

impl RouteMemo {
    /// Whether the host has a route to `ip`, as looked up at most
    /// [`ROUTE_MEMO`] ago.
    pub(crate) fn routed(&self, ip: IpAddr) -> bool {
        let now = std::time::Instant::now();
        let mut memo = self.0.lock();
        memo.retain(|(_, at, _)| now.duration_since(*at) < ROUTE_MEMO);
        if let Some((_, _, routed)) = memo.iter().find(|(a, _, _)| *a == ip) {
            return *routed;
        }
        let routed = has_route(ip);
        if memo.len() >= ROUTE_MEMO_SIZE {
            memo.remove(0);
        }
        memo.push((ip, now, routed));
        routed
    }
}

/// A global IPv4 address whose route says whether the host has IPv4
/// connectivity (a route lookup only: nothing is sent to it).
pub(crate) const IPV4_PROBE: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);
/// A global IPv6 address whose route says whether the host has IPv6
/// connectivity beyond its links (a route lookup only).
pub(crate) const IPV6_PROBE: Ipv6Addr = Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888);

/// Whether `remotes` may need a prefix: an IPv4 literal that is not host-
/// or link-scoped and that `routed` says the host has no route to, or a
/// host name (its A answers) on an IPv6-only host: no route to a global
/// IPv4 address ([`IPV4_PROBE`]) but one to a global IPv6 address
/// ([`IPV6_PROBE`]). A host with neither (links only, as in a test
/// namespace) is not IPv6-only: its names' races do not wait for
/// discovery (HEv3 -04 §8: these features only on IPv6-only or
/// IPv6-mostly networks).
pub(crate) fn needs_prefix(remotes: &[RemoteEndpoint], routed: impl Fn(IpAddr) -> bool) -> bool {
    let mut names = false;
    let literal = remotes.iter().any(|ep| match ep.host() {
        Some(Host::Ip(IpAddr::V4(v4))) => !is_host_or_link_scoped(*v4) && !routed(IpAddr::V4(*v4)),
        Some(Host::Name(_)) => {
            names = true;
            false
        }
        _ => false,
    });
    literal || (names && !routed(IpAddr::V4(IPV4_PROBE)) && routed(IpAddr::V6(IPV6_PROBE)))
}

/// The destination to race for the literal `addr`: `addr` itself, or,
/// when it is IPv4, `prefix` is set and `routed(v4)` says the host has no
/// IPv4 route to it, its RFC 6052 synthesis under `prefix` (same port),
/// recorded in `out`. A host- or link-scoped address (HEv3 -04 §8.1:
/// 0/8, 127/8, 169.254/16, 255.255.255.255) is never synthesized, and an
/// IPv4 address the Well-Known Prefix may not carry (RFC 6052 §3.1) stays
/// IPv4 (and fails as it would have), with a warning in the log.
pub(crate) fn literal_destination(
    prefix: Option<&Pref64>,
    addr: SocketAddr,
    out: &mut Synthesized,
    routed: impl Fn(Ipv4Addr) -> bool,
) -> SocketAddr {
    let (Some(prefix), SocketAddr::V4(a)) = (prefix, addr) else { return addr };
    let v4 = *a.ip();
    if is_host_or_link_scoped(v4) || routed(v4) {
        return addr;
    }
    match synthesize(prefix, v4) {
        Ok(v6) => {
            log::debug!("{v4} has no IPv4 route: synthesized {v6} under the NAT64 prefix {prefix} (RFC 6052)");
            if !out.pairs.iter().any(|&(s, _)| s == v6) {
                out.pairs.push((v6, v4));
            }
            SocketAddr::V6(SocketAddrV6::new(v6, a.port(), 0, 0))
        }
        Err(e) => {
            log::warn!("{v4} has no IPv4 route and is not synthesized: {e}");
            addr
        }
    }
}

/// An A answer's candidates on a host without an IPv4 route to them
/// (HEv3 -04 §8.2: "such translation also applies to any IPv4 addresses
/// received in A records"): each candidate the resolver found no source
/// address for (no route, RFC 6724 rule 1) and that `routed` confirms has
/// none becomes its synthesis under `prefix`, as [`literal_destination`]
/// does, with its source looked up again by `source_of`. Candidates with a
/// source (a dual-stack host) are left alone without any lookup.
pub(crate) fn synthesize_answer(
    prefix: &Pref64,
    candidates: &mut [Candidate],
    out: &mut Synthesized,
    routed: impl Fn(Ipv4Addr) -> bool,
    source_of: impl Fn(SocketAddr) -> Option<IpAddr>,
) {
    for c in candidates.iter_mut().filter(|c| c.source.is_none() && c.addr.is_ipv4()) {
        let addr = literal_destination(Some(prefix), c.addr, out, &routed);
        if addr != c.addr {
            c.addr = addr;
            c.source = source_of(addr);
        }
    }
}

/// A race's answer, with the loop's prefix (`None`: nothing to do): an A
/// answer goes through [`synthesize_answer`] with the kernel's routes and
/// source addresses, what it synthesized into the race's report; an AAAA
/// answer's addresses inside the prefix (DNS64) are logged, as the race
/// sorts them as IPv4 (see [`crate::engine::sort::order_with_pref64`]).
pub(super) fn on_answer(
    prefix: Option<Pref64>,
    entry: &mut super::race::RaceEntry,
    key: &crate::engine::QueryKey,
    result: &mut Result<Vec<Candidate>, i32>,
) {
    let (Some(prefix), Ok(candidates)) = (prefix, result) else { return };
    if key.family == crate::engine::Family::V6 {
        for c in candidates.iter() {
            if let (SocketAddr::V6(a), true) = (c.addr, log::log_enabled!(log::Level::Debug)) {
                if let Some(v4) = crate::engine::nat64::extract(&prefix, *a.ip()) {
                    log::debug!("{} is inside the NAT64 prefix {prefix} (DNS64): sorted as IPv4 {v4}", a.ip());
                }
            }
        }
        return;
    }
    if candidates.iter().all(|c| c.source.is_some()) {
        return;
    }
    let out = entry.nat64.get_or_insert_with(Default::default);
    synthesize_answer(&prefix, candidates, out, has_ipv4_route, super::resolver::source_address);
    if out.is_empty() {
        entry.nat64 = None;
    }
}

/// An HTTPS answer's ipv4hints, with the loop's prefix (`None`: nothing
/// to do; HEv3 -04 §8.2, "such translation also applies to ... the
/// ipv4hint"): each hint that is not host- or link-scoped and that
/// `routed` says the host has no route to is recorded in `out` with its
/// synthesis under `prefix`, as [`literal_destination`] does; the prefix
/// the race's engine then synthesizes its IPv4 hints under (see
/// [`crate::engine::race::Race::set_hint_synthesis`], the same RFC 6052
/// rules), `None` when no hint needs it (a dual-stack host: one route
/// lookup per hint, remembered by the loop's [`RouteMemo`]).
pub(crate) fn hint_synthesis(
    prefix: Option<Pref64>,
    records: &[crate::vocabulary::svcb::ServiceRecord],
    out: &mut Synthesized,
    routed: impl Fn(Ipv4Addr) -> bool,
) -> Option<Pref64> {
    let prefix = prefix?;
    let mut any = false;
    for v4 in records.iter().flat_map(|r| r.params.ipv4hint.iter()) {
        let addr = SocketAddr::V4(std::net::SocketAddrV4::new(*v4, 0));
        any |= literal_destination(Some(&prefix), addr, out, &routed) != addr;
    }
    any.then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn route_lookups_are_remembered_and_bounded() {
        let memo = RouteMemo::default();
        assert!(memo.routed(Ipv4Addr::LOCALHOST.into()));
        assert!(memo.routed(Ipv4Addr::LOCALHOST.into()));
        assert_eq!(memo.0.lock().len(), 1, "the second answer came from the memo");
        for i in 0..20 {
            memo.routed(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i + 2)));
        }
        assert_eq!(memo.0.lock().len(), ROUTE_MEMO_SIZE);
    }

    #[test]
    fn ipv4_literal_without_route_is_synthesized_under_the_prefix() {
        let nsp: Pref64 = "2001:db8:64::/96".parse().unwrap();
        let mut out = Synthesized::default();
        let got = literal_destination(Some(&nsp), sa("10.64.0.2:7101"), &mut out, |_| false);
        assert_eq!(got, sa("[2001:db8:64::a40:2]:7101"));
        assert_eq!(out.source_of(got), Some(Ipv4Addr::new(10, 64, 0, 2)));
        assert_eq!(out.source_of(sa("[2001:db8:64::a40:3]:7101")), None);
        assert_eq!(out.source_of(sa("10.64.0.2:7101")), None);
        // A /48 prefix keeps the u octet.
        let p48: Pref64 = "2001:db8:122::/48".parse().unwrap();
        let got = literal_destination(Some(&p48), sa("192.0.2.33:80"), &mut out, |_| false);
        assert_eq!(got, sa("[2001:db8:122:c000:2:2100::]:80"));
    }

    #[test]
    fn nothing_changes_with_a_route_without_a_prefix_or_for_ipv6() {
        let nsp: Pref64 = "2001:db8:64::/96".parse().unwrap();
        let mut out = Synthesized::default();
        assert_eq!(literal_destination(Some(&nsp), sa("10.0.0.1:80"), &mut out, |_| true), sa("10.0.0.1:80"));
        let asked = std::cell::Cell::new(false);
        let probe = |_| {
            asked.set(true);
            false
        };
        assert_eq!(literal_destination(None, sa("10.0.0.1:80"), &mut out, probe), sa("10.0.0.1:80"));
        assert!(!asked.get(), "no route lookup without a prefix");
        assert_eq!(literal_destination(Some(&nsp), sa("[2001:db8::1]:80"), &mut out, probe), sa("[2001:db8::1]:80"));
        assert!(!asked.get(), "no route lookup for IPv6");
        // Host- and link-scoped literals never (HEv3 -04 §8.1).
        for a in ["127.0.0.1:80", "169.254.9.9:80", "0.0.0.1:80", "255.255.255.255:80"] {
            assert_eq!(literal_destination(Some(&nsp), sa(a), &mut out, probe), sa(a));
        }
        assert!(!asked.get(), "no route lookup for a host- or link-scoped literal");
        assert!(out.is_empty());
    }

    #[test]
    fn well_known_prefix_never_carries_a_private_literal() {
        let mut out = Synthesized::default();
        let wkp = Pref64::WELL_KNOWN;
        assert_eq!(literal_destination(Some(&wkp), sa("10.0.0.1:80"), &mut out, |_| false), sa("10.0.0.1:80"));
        assert!(out.is_empty());
        assert_eq!(literal_destination(Some(&wkp), sa("8.8.8.8:53"), &mut out, |_| false), sa("[64:ff9b::808:808]:53"));
    }

    #[test]
    fn a_prefix_is_needed_only_for_an_unrouted_global_or_private_ipv4_literal() {
        let ep = |ip: &str| {
            let mut e = RemoteEndpoint::new();
            match ip.parse::<IpAddr>().unwrap() {
                IpAddr::V4(a) => e.with_ipv4(a),
                IpAddr::V6(a) => e.with_ipv6(a),
            };
            e
        };
        let mut name = RemoteEndpoint::new();
        name.with_hostname("example.com").unwrap();
        assert!(needs_prefix(&[ep("10.64.0.2")], |_| false));
        assert!(!needs_prefix(&[ep("10.64.0.2")], |_| true), "routed");
        assert!(!needs_prefix(&[ep("127.0.0.1"), ep("169.254.1.1"), ep("2001:db8::1")], |_| false));
        // A name: only without IPv4 connectivity.
        let v6_only = |ip: IpAddr| ip == IpAddr::V6(IPV6_PROBE);
        assert!(needs_prefix(std::slice::from_ref(&name), v6_only), "IPv6-only: a name waits");
        assert!(!needs_prefix(std::slice::from_ref(&name), |_| false), "links only: not IPv6-only");
        assert!(!needs_prefix(std::slice::from_ref(&name), |_| true), "dual-stack");
    }

    #[test]
    fn a_answers_without_a_source_are_synthesized_with_a_new_source() {
        let nsp: Pref64 = "2001:db8:64::/96".parse().unwrap();
        let src: IpAddr = "2001:db8:46:1::2".parse().unwrap();
        let mut answer = vec![
            Candidate { addr: sa("10.64.0.2:80"), source: None },
            Candidate { addr: sa("192.0.2.7:80"), source: Some("192.0.2.1".parse().unwrap()) },
            Candidate { addr: sa("127.0.0.1:80"), source: None },
        ];
        let mut out = Synthesized::default();
        let looked = std::cell::Cell::new(0);
        synthesize_answer(&nsp, &mut answer, &mut out, |_| false, |a| {
            looked.set(looked.get() + 1);
            assert_eq!(a, sa("[2001:db8:64::a40:2]:80"));
            Some(src)
        });
        assert_eq!(answer[0], Candidate { addr: sa("[2001:db8:64::a40:2]:80"), source: Some(src) });
        assert_eq!(out.source_of(answer[0].addr), Some(Ipv4Addr::new(10, 64, 0, 2)));
        assert_eq!(answer[1].addr, sa("192.0.2.7:80"), "a candidate with a source is routed");
        assert_eq!(answer[2].addr, sa("127.0.0.1:80"), "host-scoped: never");
        assert_eq!(looked.get(), 1);
        // The route lookup has the last word: a route, no synthesis.
        let mut answer = vec![Candidate { addr: sa("10.64.0.2:80"), source: None }];
        synthesize_answer(&nsp, &mut answer, &mut out, |_| true, |_| unreachable!());
        assert_eq!(answer[0].addr, sa("10.64.0.2:80"));
    }

    #[test]
    fn unrouted_ipv4_hints_turn_on_hint_synthesis_and_are_reported() {
        use crate::vocabulary::svcb::{ServiceRecord, SvcParams};
        let nsp: Pref64 = "2001:db8:64::/96".parse().unwrap();
        let rec = |hints: &[&str]| ServiceRecord {
            priority: 1,
            target: ".".into(),
            params: SvcParams { ipv4hint: hints.iter().map(|h| h.parse().unwrap()).collect(), ..SvcParams::default() },
        };
        let mut out = Synthesized::default();
        let records = [rec(&["10.64.0.2"]), rec(&["127.0.0.1", "10.64.0.3"])];
        assert_eq!(hint_synthesis(Some(nsp), &records, &mut out, |_| false), Some(nsp));
        assert_eq!(out.source_of(sa("[2001:db8:64::a40:2]:443")), Some(Ipv4Addr::new(10, 64, 0, 2)));
        assert_eq!(out.source_of(sa("[2001:db8:64::a40:3]:8443")), Some(Ipv4Addr::new(10, 64, 0, 3)));
        assert_eq!(out.pairs.len(), 2, "the loopback hint is not synthesized");
        // Routed (dual-stack), no prefix, scoped or refused hints only: none.
        let mut out = Synthesized::default();
        assert_eq!(hint_synthesis(Some(nsp), &records, &mut out, |_| true), None);
        assert_eq!(hint_synthesis(None, &records, &mut out, |_| false), None);
        assert_eq!(hint_synthesis(Some(nsp), &[rec(&["127.0.0.1"])], &mut out, |_| false), None);
        assert_eq!(hint_synthesis(Some(Pref64::WELL_KNOWN), &[rec(&["10.0.0.1"])], &mut out, |_| false), None);
        assert!(out.is_empty());
    }

    #[test]
    fn loopback_has_an_ipv4_route() {
        assert!(has_ipv4_route(Ipv4Addr::LOCALHOST));
    }
}
