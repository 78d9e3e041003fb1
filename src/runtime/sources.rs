//! Source addresses (RFC 6724 §5: the source the kernel would use for a
//! destination, which destination sorting needs) remembered a short
//! while per destination prefix, so that a loop racing many connections
//! to the same few hosts pays one probe ([`source_address`]: a UDP
//! socket, a connect, a getsockname, a close) per prefix and
//! [`SOURCE_MEMO`], not two per race.
//!
//! The prefix is a /64 for IPv6: the kernel picks a source by the route
//! to the destination and by RFC 6724 §5's rules, whose longest-match
//! rule (rule 8) compares at most the source's prefix length, a /64 on
//! every SLAAC network, and routes longer than /64 are a rarity; every
//! address of one /64 gets the same source. For IPv4 it is the address
//! itself (/32): IPv4 has no usual subnet size (a /24 would put the two
//! ends of /30 point-to-point links, or a VPN's host route, under one
//! entry), and what the memo is for, many races to the same hosts, repeats
//! whole addresses anyway.
//!
//! Entries live [`SOURCE_MEMO`] (1 s, as the NAT64 route memo in
//! src/runtime/nat64.rs): a network change (an address that goes, a route
//! that moves) is seen within that second. Nothing else drops them: the
//! loop has no network-change notification of its own (PREF64 discovery's
//! netlink monitor runs on its thread only while it looks for a prefix).
//! The sorting is unchanged: it gets what the probe gave, at most a second
//! old.

use super::sync::Mutex;
use super::sys::getaddrinfo::source_address;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How long a source address is remembered.
pub(crate) const SOURCE_MEMO: Duration = Duration::from_secs(1);
/// How many prefixes are remembered (the oldest goes first).
const SOURCE_MEMO_SIZE: usize = 64;

/// The prefix `ip` is remembered under: its /64 (IPv6) or itself (IPv4).
fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// Source addresses per destination prefix, a second each (see the
/// module docs).
#[derive(Default)]
pub(crate) struct SourceMemo(Mutex<Vec<(IpAddr, Instant, Option<IpAddr>)>>);

impl std::fmt::Debug for SourceMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMemo").finish_non_exhaustive()
    }
}

impl SourceMemo {
    /// The source address for `dest` (`None`: no route), probed at most
    /// [`SOURCE_MEMO`] ago for its prefix.
    pub(crate) fn source(&self, dest: SocketAddr) -> Option<IpAddr> {
        self.source_with(dest, source_address)
    }

    fn source_with(&self, dest: SocketAddr, probe: impl FnOnce(SocketAddr) -> Option<IpAddr>) -> Option<IpAddr> {
        let key = prefix(dest.ip());
        let now = Instant::now();
        {
            let mut memo = self.0.lock();
            memo.retain(|(_, at, _)| now.duration_since(*at) < SOURCE_MEMO);
            if let Some((_, _, source)) = memo.iter().find(|(k, _, _)| *k == key) {
                return *source;
            }
        }
        // Probed outside the lock (a few system calls).
        let source = probe(dest);
        let mut memo = self.0.lock();
        if !memo.iter().any(|(k, _, _)| *k == key) {
            if memo.len() >= SOURCE_MEMO_SIZE {
                memo.remove(0);
            }
            memo.push((key, now, source));
        }
        source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn one_probe_per_ipv6_64_and_per_ipv4_address() {
        let memo = SourceMemo::default();
        let probes = Cell::new(0);
        let probe = |d: SocketAddr| {
            probes.set(probes.get() + 1);
            Some(d.ip())
        };
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(memo.source_with(sa("[2001:db8:1:2::5]:443"), probe), Some(sa("[2001:db8:1:2::5]:0").ip()));
        // Same /64, another port and interface id: the memo's answer.
        assert_eq!(memo.source_with(sa("[2001:db8:1:2::9]:80"), probe), Some(sa("[2001:db8:1:2::5]:0").ip()));
        memo.source_with(sa("[2001:db8:1:3::5]:443"), probe);
        memo.source_with(sa("192.0.2.1:443"), probe);
        memo.source_with(sa("192.0.2.1:80"), probe);
        memo.source_with(sa("192.0.2.2:443"), probe);
        assert_eq!(probes.get(), 4, "2001:db8:1:2::/64, 2001:db8:1:3::/64, 192.0.2.1, 192.0.2.2");
    }

    #[test]
    fn no_route_is_remembered_too_and_entries_expire() {
        let memo = SourceMemo::default();
        let probes = Cell::new(0);
        let none = |_| {
            probes.set(probes.get() + 1);
            None
        };
        let d: SocketAddr = "198.51.100.7:1".parse().unwrap();
        assert_eq!(memo.source_with(d, none), None);
        assert_eq!(memo.source_with(d, none), None);
        assert_eq!(probes.get(), 1);
        memo.0.lock()[0].1 -= SOURCE_MEMO;
        memo.source_with(d, none);
        assert_eq!(probes.get(), 2, "a second later it is probed again");
        assert_eq!(memo.source("127.0.0.1:80".parse().unwrap()), Some(IpAddr::from([127, 0, 0, 1])));
    }
}
