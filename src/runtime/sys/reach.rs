//! Which address families this host can send with, from the kernel's
//! address and route tables: two rtnetlink dumps (`RTM_GETADDR`,
//! `RTM_GETROUTE`, as `ip addr` and `ip route show table all` read them).
//!
//! HEv3 -04 §4.1: a family has connectivity when the host has "at least
//! one local address of the family from which to send packets" and "at
//! least one non-link-local route" for it. Here:
//!
//! - an address counts when its scope is wider than the link (not a
//!   link-local or host-scoped address), it did not fail duplicate
//!   address detection, and it is not on the loopback interface;
//! - a route counts when it is a unicast route whose destination is not
//!   link-local, multicast or loopback, out of an interface other than
//!   the loopback. An on-link prefix (10.0.0.0/24, fd00::/64) counts, as
//!   does a default route; `fe80::/64` does not.
//!
//! The loopback interface is the one carrying 127.0.0.0/8 or ::1: its
//! addresses and routes never count (a host with only `lo` has no
//! connectivity in either family).
//!
//! # Why dumps and not the source-address probe
//!
//! The probe (connect a UDP socket to an address, read the local address)
//! answers for one destination, and needs a destination to ask about:
//! which one stands for "the family" is a guess (a global address has no
//! route on a host whose routes are on-link only, as in a test bed), and
//! it cannot tell an interface's routes apart from another's. The two
//! dumps give every address and route at once, per interface, in about
//! ten system calls, and are only read again when the kernel says that
//! something changed (the loop's rtnetlink monitor).

use super::netlink::{align4, attrs, ip_of, query_socket, NLMSG_HDRLEN};
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// Index of IPv4 in the per-family arrays.
pub(crate) const V4: usize = 0;
/// Index of IPv6 in the per-family arrays.
pub(crate) const V6: usize = 1;

/// struct ifaddrmsg: family, prefixlen, flags, scope, index.
const IFADDRMSG_LEN: usize = 8;
const RTMSG_LEN: usize = 12;
/// `IFA_F_DADFAILED` (linux/if_addr.h).
const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_FLAGS` (linux/if_addr.h): the address's flags as a u32.
const IFA_FLAGS: u16 = 8;
/// `RT_SCOPE_LINK` (linux/rtnetlink.h).
const RT_SCOPE_LINK: u8 = 253;

/// What one interface gives each family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkReach {
    /// The interface's index.
    pub ifindex: u32,
    /// It carries 127.0.0.0/8 or ::1.
    pub loopback: bool,
    /// An address of the family that counts (see the module docs).
    pub addr: [bool; 2],
    /// A route of the family out of it that counts.
    pub route: [bool; 2],
}

/// The host's addresses and routes, per interface and family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reach {
    /// One entry per interface that has an address or a route.
    pub links: Vec<LinkReach>,
    /// A counting route with several next hops (no single output
    /// interface), per family.
    pub multipath: [bool; 2],
}

fn family_of(ip: &IpAddr) -> usize {
    if ip.is_ipv6() {
        V6
    } else {
        V4
    }
}

/// Whether `ip` (a destination of `len` bits) lies in a link-local,
/// multicast or loopback range, for an address or a route's destination.
fn local_only(ip: IpAddr, len: u8) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            (len >= 16 && o[0] == 169 && o[1] == 254) || (len >= 4 && o[0] >= 224) || (len >= 8 && o[0] == 127)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            (len >= 10 && s[0] & 0xffc0 == 0xfe80) || (len >= 8 && s[0] & 0xff00 == 0xff00) || (len == 128 && a.is_loopback())
        }
    }
}

impl Reach {
    /// HEv3 -04 §4.1 for the host: an address of `family` (V4, V6) and a
    /// route for it, off the loopback.
    pub(crate) fn host(&self, family: usize) -> bool {
        let on = |f: fn(&LinkReach) -> bool| self.links.iter().any(|l| !l.loopback && f(l));
        match family {
            V4 => on(|l| l.addr[V4]) && (self.multipath[V4] || on(|l| l.route[V4])),
            _ => on(|l| l.addr[V6]) && (self.multipath[V6] || on(|l| l.route[V6])),
        }
    }

    /// §4.1 for a path bound to interface `ifindex`: a route of `family`
    /// out of it, and an address of the family on the host (Linux picks
    /// the source address among all interfaces').
    pub(crate) fn via(&self, ifindex: u32, family: usize) -> bool {
        let routed = self.links.iter().any(|l| l.ifindex == ifindex && !l.loopback && l.route[family]);
        routed && self.links.iter().any(|l| !l.loopback && l.addr[family])
    }

    fn link(&mut self, ifindex: u32) -> &mut LinkReach {
        match self.links.iter().position(|l| l.ifindex == ifindex) {
            Some(i) => &mut self.links[i],
            None => {
                self.links.push(LinkReach { ifindex, ..LinkReach::default() });
                self.links.last_mut().expect("just pushed")
            }
        }
    }

    /// An address of interface `ifindex` with its scope and flags.
    pub(crate) fn add_address(&mut self, ifindex: u32, ip: IpAddr, scope: u8, flags: u32) {
        let link = self.link(ifindex);
        if ip.is_loopback() {
            link.loopback = true;
            return;
        }
        if scope < RT_SCOPE_LINK && flags & IFA_F_DADFAILED == 0 && !local_only(ip, 128) {
            link.addr[family_of(&ip)] = true;
        }
    }

    /// A route of `family` to `dst`/`len` (`None`: the default route) of
    /// type `kind` (`RTN_*`) out of `oif` (`None`: several next hops).
    pub(crate) fn add_route(&mut self, family: usize, dst: Option<IpAddr>, len: u8, kind: u8, oif: Option<u32>) {
        if kind != libc::RTN_UNICAST || dst.is_some_and(|d| local_only(d, len)) {
            return;
        }
        match oif {
            Some(i) => self.link(i).route[family] = true,
            None => self.multipath[family] = true,
        }
    }

    /// Read one dump's messages into `self`: `Some(Ok)` at its end,
    /// `Some(Err(errno))` when the kernel refused it, `None` when more
    /// follows.
    fn take(&mut self, mut buf: &[u8]) -> Option<Result<(), i32>> {
        while buf.len() >= NLMSG_HDRLEN {
            let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len < NLMSG_HDRLEN || len > buf.len() {
                return Some(Err(libc::EIO));
            }
            let ty = u16::from_ne_bytes([buf[4], buf[5]]);
            let body = &buf[NLMSG_HDRLEN..len];
            match ty {
                t if t == libc::NLMSG_DONE as u16 => return Some(Ok(())),
                t if t == libc::NLMSG_ERROR as u16 => {
                    let e = body.get(..4).map_or(-libc::EIO, |e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]));
                    return Some(if e == 0 { Ok(()) } else { Err(-e) });
                }
                libc::RTM_NEWADDR => self.take_address(body),
                libc::RTM_NEWROUTE => self.take_route(body),
                _ => {}
            }
            buf = &buf[align4(len).min(buf.len())..];
        }
        None
    }

    fn take_address(&mut self, body: &[u8]) {
        if body.len() < IFADDRMSG_LEN {
            return;
        }
        let (mut flags, scope) = (u32::from(body[2]), body[3]);
        let ifindex = u32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
        let (mut local, mut address) = (None, None);
        for (t, p) in attrs(&body[IFADDRMSG_LEN..]) {
            match t {
                libc::IFA_LOCAL => local = ip_of(p),
                libc::IFA_ADDRESS => address = ip_of(p),
                IFA_FLAGS if p.len() == 4 => flags = u32::from_ne_bytes([p[0], p[1], p[2], p[3]]),
                _ => {}
            }
        }
        if let Some(ip) = local.or(address) {
            self.add_address(ifindex, ip, scope, flags);
        }
    }

    fn take_route(&mut self, body: &[u8]) {
        if body.len() < RTMSG_LEN {
            return;
        }
        let family = match i32::from(body[0]) {
            libc::AF_INET => V4,
            libc::AF_INET6 => V6,
            _ => return,
        };
        let (len, kind) = (body[1], body[7]);
        let (mut dst, mut oif) = (None, None);
        for (t, p) in attrs(&body[RTMSG_LEN..]) {
            match t {
                libc::RTA_DST => dst = ip_of(p),
                libc::RTA_OIF if p.len() == 4 => oif = Some(u32::from_ne_bytes([p[0], p[1], p[2], p[3]])),
                _ => {}
            }
        }
        self.add_route(family, dst, len, kind, oif);
    }
}

/// Dump the kernel's addresses and routes (all families, all tables) into
/// a [`Reach`]; the errno of a dump that fails. About ten system calls
/// (a socket, two requests, their replies); no network traffic.
pub(crate) fn read_reach() -> Result<Reach, i32> {
    let fd = query_socket().map_err(super::errno)?;
    let mut reach = Reach::default();
    let mut buf = vec![0u8; 32 * 1024];
    for (seq, (ty, body_len)) in [(libc::RTM_GETADDR, IFADDRMSG_LEN), (libc::RTM_GETROUTE, RTMSG_LEN)].into_iter().enumerate() {
        let mut req = vec![0u8; NLMSG_HDRLEN + body_len];
        let n = req.len() as u32;
        req[0..4].copy_from_slice(&n.to_ne_bytes());
        req[4..6].copy_from_slice(&ty.to_ne_bytes());
        req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
        req[8..12].copy_from_slice(&(seq as u32 + 1).to_ne_bytes());
        // The body's family stays AF_UNSPEC (0): every family.
        // SAFETY: req is a valid buffer of req.len() bytes.
        if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
            return Err(super::errno(io::Error::last_os_error()));
        }
        loop {
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(super::errno(io::Error::last_os_error()));
            }
            match reach.take(&buf[..n as usize]) {
                Some(Ok(())) => break,
                Some(Err(e)) => return Err(e),
                None if n == 0 => return Err(libc::EIO),
                None => {}
            }
        }
    }
    Ok(reach)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A dual-stack interface 2, the loopback 1.
    fn dual_stack() -> Reach {
        let mut r = Reach::default();
        r.add_address(1, ip("127.0.0.1"), 254, 0);
        r.add_address(1, ip("::1"), 254, 0);
        r.add_address(2, ip("192.0.2.2"), 0, 0);
        r.add_address(2, ip("fd00::2"), 0, 0);
        r.add_address(2, ip("fe80::2"), RT_SCOPE_LINK, 0);
        r.add_route(V4, Some(ip("192.0.2.0")), 24, libc::RTN_UNICAST, Some(2));
        r.add_route(V6, Some(ip("fd00::")), 64, libc::RTN_UNICAST, Some(2));
        r.add_route(V6, Some(ip("fe80::")), 64, libc::RTN_UNICAST, Some(2));
        r
    }

    #[test]
    fn on_link_routes_and_addresses_give_both_families() {
        let r = dual_stack();
        assert!(r.host(V4) && r.host(V6));
        assert!(r.via(2, V4) && r.via(2, V6));
        assert!(!r.via(1, V4) && !r.via(1, V6), "the loopback leads nowhere");
    }

    #[test]
    fn link_local_loopback_and_non_unicast_do_not_count() {
        let mut r = Reach::default();
        r.add_address(1, ip("127.0.0.1"), 254, 0);
        r.add_address(1, ip("::1"), 254, 0);
        // A global address on lo and a route via lo: still the loopback.
        r.add_address(1, ip("203.0.113.9"), 0, 0);
        r.add_route(V4, Some(ip("203.0.113.0")), 24, libc::RTN_UNICAST, Some(1));
        assert!(!r.host(V4) && !r.host(V6), "only lo: {r:?}");
        // IPv6 with a link-local address and route only.
        r.add_address(2, ip("fe80::2"), RT_SCOPE_LINK, 0);
        r.add_route(V6, Some(ip("fe80::")), 64, libc::RTN_UNICAST, Some(2));
        r.add_route(V6, Some(ip("ff00::")), 8, libc::RTN_MULTICAST, Some(2));
        r.add_route(V6, None, 0, libc::RTN_UNREACHABLE, None);
        assert!(!r.host(V6));
        // An address that failed DAD, and IPv4 link-local.
        r.add_address(2, ip("2001:db8::2"), 0, IFA_F_DADFAILED);
        r.add_address(2, ip("169.254.7.7"), 0, 0);
        r.add_route(V4, Some(ip("169.254.0.0")), 16, libc::RTN_UNICAST, Some(2));
        r.add_route(V6, None, 0, libc::RTN_UNICAST, Some(2));
        assert!(!r.host(V6) && !r.host(V4), "{r:?}");
        // A usable address: IPv6 has connectivity via the default route.
        r.add_address(2, ip("2001:db8::3"), 0, 0);
        assert!(r.host(V6) && !r.host(V4));
    }

    #[test]
    fn an_ipv6_only_host_and_a_multipath_route() {
        let mut r = Reach::default();
        r.add_address(3, ip("2001:db8:46:1::2"), 0, 0);
        r.add_route(V6, None, 0, libc::RTN_UNICAST, Some(3));
        assert!(r.host(V6) && !r.host(V4));
        r.add_address(3, ip("10.0.0.2"), 0, 0);
        assert!(!r.host(V4), "an address without a route");
        r.add_route(V4, None, 0, libc::RTN_UNICAST, None);
        assert!(r.host(V4), "a route with several next hops");
        assert!(!r.via(3, V4), "not out of interface 3 in particular");
    }

    #[test]
    fn dump_messages_are_read() {
        let mut r = Reach::default();
        let mut buf = Vec::new();
        let msg = |buf: &mut Vec<u8>, ty: u16, body: &[u8], attrs: &[(u16, &[u8])]| {
            let start = buf.len();
            buf.extend_from_slice(&[0u8; NLMSG_HDRLEN]);
            buf[start + 4..start + 6].copy_from_slice(&ty.to_ne_bytes());
            buf.extend_from_slice(body);
            for (t, p) in attrs {
                super::super::netlink::push_attr(buf, *t, p);
            }
            let len = (buf.len() - start) as u32;
            buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        };
        let mut addr = [libc::AF_INET6 as u8, 64, 0, 0, 0, 0, 0, 0];
        addr[4..8].copy_from_slice(&4u32.to_ne_bytes());
        msg(&mut buf, libc::RTM_NEWADDR, &addr, &[(libc::IFA_ADDRESS, &ip_octets("2001:db8::4"))]);
        let route = [libc::AF_INET6 as u8, 0, 0, 0, 254, 0, 0, libc::RTN_UNICAST, 0, 0, 0, 0];
        msg(&mut buf, libc::RTM_NEWROUTE, &route, &[(libc::RTA_OIF, &4u32.to_ne_bytes())]);
        assert_eq!(r.take(&buf), None, "no end yet");
        assert!(r.host(V6) && r.via(4, V6));
        let mut done = Vec::new();
        msg(&mut done, libc::NLMSG_DONE as u16, &[0, 0, 0, 0], &[]);
        assert_eq!(r.take(&done), Some(Ok(())));
        let mut err = Vec::new();
        msg(&mut err, libc::NLMSG_ERROR as u16, &(-libc::EPERM).to_ne_bytes(), &[]);
        assert_eq!(r.take(&err), Some(Err(libc::EPERM)));
    }

    fn ip_octets(s: &str) -> Vec<u8> {
        match ip(s) {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    #[test]
    fn this_host_is_read() {
        let r = read_reach().expect("the kernel answers the dumps");
        assert!(r.links.iter().any(|l| l.loopback), "lo is seen: {r:?}");
    }
}
