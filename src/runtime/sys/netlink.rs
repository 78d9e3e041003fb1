//! The kernel's view of connectivity over rtnetlink (raw `NETLINK_ROUTE`
//! sockets through libc; the messages are built and read as bytes, as
//! `ip route get` and `ip monitor` do): route lookups per destination and
//! interface, the notifications of link, address and route changes, and
//! the RFC 8781 PREF64 option of Router Advertisements, which Linux hands
//! to user space as `RTM_NEWNDUSEROPT` (group `RTNLGRP_ND_USEROPT`) and
//! keeps no copy of. Plus a Router Solicitation (RFC 4861 §6.3.7) to get
//! an RA at once instead of waiting up to the router's interval.
//!
//! # Why netlink and not the source-address probe
//!
//! The existing probe ([`super::getaddrinfo::source_address`]: connect a
//! UDP socket, read its local address) answers "is there a route" but
//! hides which route. A `RTM_GETROUTE` lookup ([`route_get`]) returns the
//! route's type (unicast, local, unreachable, prohibit), its output
//! interface and gateway, in one request and reply, and takes the output
//! interface as a lookup key (`RTA_OIF`) without binding a socket to it.
//! That decides the case the probe gets wrong: with a path bound to `eth0`
//! and the destination 127.0.0.1, both the probe and a lookup with `oif`
//! find a route (the default route via eth0's gateway: the packet leaves
//! the host and is dropped as a martian, so the attempt hangs in SYN
//! retries), while the lookup without `oif` says the destination is
//! `local` on `lo`: [`path_route`] combines both and refuses the path at
//! once. A lookup for a destination with no route fails with the errno a
//! `connect()` would give (`ENETUNREACH`), which the report can name.
//!
//! Nothing here knows about races; the loop calls in with addresses and
//! interface indexes.
//!
//! The loop uses [`path_route`] (NAT64 synthesis: does an IPv4 literal
//! have a route) and [`check_bound_path`] (an attempt on a path bound to
//! an interface that cannot reach a local destination fails at once);
//! PREF64 discovery (src/runtime/pref64.rs) reads a [`Monitor`] on its
//! thread and sends Router Solicitations. Their tests run them against a
//! real kernel.

use crate::engine::nat64::{parse_pref64_option, Pref64Option, RaOptionError, ND_OPT_PREF64};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub(super) const NLMSG_HDRLEN: usize = 16;
const RTMSG_LEN: usize = 12;
const NDUSEROPTMSG_LEN: usize = 16;
/// The attribute of an `RTM_NEWNDUSEROPT` message carrying the router's
/// address (`NDUSEROPT_SRCADDR` in linux/neighbour.h).
const NDUSEROPT_SRCADDR: u16 = 1;
/// `RTM_F_LOOKUP_TABLE` (linux/rtnetlink.h): report the table a route
/// lookup matched.
const RTM_F_LOOKUP_TABLE: u32 = 0x1000;

/// Round up to the 4-byte alignment of netlink messages and attributes.
pub(super) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A route the kernel found for a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// The route's type: `libc::RTN_UNICAST`, `RTN_LOCAL`, ... (the kernel
    /// fails the lookup for `unreachable`, `prohibit` and `blackhole`).
    pub kind: u8,
    /// The output interface's index.
    pub oif: Option<u32>,
    /// The next hop, when the route goes through a gateway.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would pick.
    pub prefsrc: Option<IpAddr>,
    /// The routing table the route came from; 0 when no table has one
    /// (an IPv4 lookup with an output interface that matches no route:
    /// the kernel then assumes the destination is on that link).
    pub table: u32,
}

impl Route {
    /// Whether the destination is an address of this host.
    pub fn is_local(&self) -> bool {
        self.kind == libc::RTN_LOCAL
    }
}

/// Why a path cannot reach a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoRoute {
    /// The kernel has no usable route: the errno of the lookup
    /// (`ENETUNREACH`, `EHOSTUNREACH`, `EACCES` for a prohibit route, ...).
    Errno(i32),
    /// The destination is an address of this host, and the path's
    /// interface leads off it (a packet would leave and be dropped).
    LocalOffPath,
}

/// A `NETLINK_ROUTE` socket, close-on-exec, bound with `groups` (a
/// `RTMGRP_*` mask); non-blocking when `nonblocking`.
pub(super) fn route_socket(groups: u32, nonblocking: bool) -> io::Result<OwnedFd> {
    let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
    if nonblocking {
        ty |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: socket(2) with constant arguments; the fd is owned at once.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, ty, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain data; all-zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    sa.nl_groups = groups;
    let len = std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
    // SAFETY: sa is a valid sockaddr_nl of `len` bytes.
    if unsafe { libc::bind(fd.as_raw_fd(), (&sa as *const libc::sockaddr_nl).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Append a route attribute (type, payload) to `msg`.
pub(super) fn push_attr(msg: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(payload);
    msg.resize(align4(msg.len()), 0);
}

/// The `RTM_GETROUTE` request for `dst` (and output interface `oif`).
fn route_request(dst: IpAddr, oif: Option<u32>, seq: u32) -> Vec<u8> {
    let (family, bits, octets): (u8, u8, Vec<u8>) = match dst {
        IpAddr::V4(a) => (libc::AF_INET as u8, 32, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, 128, a.octets().to_vec()),
    };
    let mut msg = vec![0u8; NLMSG_HDRLEN];
    msg[4..6].copy_from_slice(&libc::RTM_GETROUTE.to_ne_bytes());
    msg[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
    // type, flags (u32): RTM_F_LOOKUP_TABLE, so that the reply names the
    // table the lookup matched (0: none).
    msg.extend_from_slice(&[family, bits, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&RTM_F_LOOKUP_TABLE.to_ne_bytes());
    push_attr(&mut msg, libc::RTA_DST, &octets);
    if let Some(oif) = oif {
        push_attr(&mut msg, libc::RTA_OIF, &oif.to_ne_bytes());
    }
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg
}

/// The attributes of a message body: `(type, payload)` pairs.
pub(super) fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff; // no NLA_F_* flags
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((ty, payload))
    })
}

pub(super) fn ip_of(payload: &[u8]) -> Option<IpAddr> {
    match payload.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(payload).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(payload).ok()?))),
        _ => None,
    }
}

/// Read the kernel's reply to a `RTM_GETROUTE`: the route, or the errno of
/// an `NLMSG_ERROR`.
fn parse_route_reply(buf: &[u8]) -> Result<Route, i32> {
    if buf.len() < NLMSG_HDRLEN {
        return Err(libc::EIO);
    }
    let len = (u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize).min(buf.len());
    let ty = u16::from_ne_bytes([buf[4], buf[5]]);
    let body = &buf[NLMSG_HDRLEN..len];
    if ty == libc::NLMSG_ERROR as u16 {
        let err = body.get(..4).map_or(-libc::EIO, |e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]));
        return Err(if err == 0 { libc::EIO } else { -err });
    }
    if ty != libc::RTM_NEWROUTE || body.len() < RTMSG_LEN {
        return Err(libc::EIO);
    }
    let mut route = Route { kind: body[7], oif: None, gateway: None, prefsrc: None, table: u32::from(body[4]) };
    for (t, p) in attrs(&body[RTMSG_LEN..]) {
        match t {
            libc::RTA_OIF if p.len() == 4 => route.oif = Some(u32::from_ne_bytes([p[0], p[1], p[2], p[3]])),
            libc::RTA_GATEWAY => route.gateway = ip_of(p),
            libc::RTA_PREFSRC => route.prefsrc = ip_of(p),
            libc::RTA_TABLE if p.len() == 4 => route.table = u32::from_ne_bytes([p[0], p[1], p[2], p[3]]),
            _ => {}
        }
    }
    Ok(route)
}

/// A blocking rtnetlink socket for one request and its reply (or dump),
/// with a 1 s receive timeout so that a kernel that never answers cannot
/// hold the caller.
pub(super) fn query_socket() -> io::Result<OwnedFd> {
    let fd = route_socket(0, false)?;
    let tv = libc::timeval { tv_sec: 1, tv_usec: 0 };
    // SAFETY: a timeval of the size given, on a socket we own.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    Ok(fd)
}

/// Ask the kernel for its route to `dst`, out of interface `oif` when
/// given (`ip route get DST [oif IF]`): the route, or the errno of the
/// failed lookup (`ENETUNREACH` when nothing routes there; `ENODEV` for an
/// interface index that does not exist). A blocking round trip to the
/// kernel (no network traffic), with a 1 s receive timeout.
pub(crate) fn route_get(dst: IpAddr, oif: Option<u32>) -> Result<Route, i32> {
    let fd = query_socket().map_err(super::errno)?;
    let req = route_request(dst, oif, 1);
    // SAFETY: req is a valid buffer of req.len() bytes; the kernel is the
    // default destination of an unconnected netlink socket (send = sendto 0).
    if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(super::errno(io::Error::last_os_error()));
    }
    let mut buf = [0u8; 4096];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(super::errno(io::Error::last_os_error()));
    }
    parse_route_reply(&buf[..n as usize])
}

/// The interfaces the kernel knows, by one `RTM_GETLINK` dump: each one's
/// index and flags (`libc::IFF_UP`, `IFF_LOOPBACK`, ...). One round trip
/// to the kernel instead of a file read per interface and attribute under
/// /sys/class/net; a 1 s receive timeout.
pub(crate) fn links() -> io::Result<Vec<(u32, u32)>> {
    let fd = query_socket()?;
    // nlmsghdr, then struct ifinfomsg (16 bytes, all zero: every family).
    let mut req = [0u8; NLMSG_HDRLEN + IFINFOMSG_LEN];
    req[0..4].copy_from_slice(&((NLMSG_HDRLEN + IFINFOMSG_LEN) as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&libc::RTM_GETLINK.to_ne_bytes());
    req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // SAFETY: req is a valid buffer of its length; the kernel is the
    // default destination of an unconnected netlink socket.
    if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse_links(&buf[..n as usize], &mut out)? {
            return Ok(out);
        }
    }
}

/// The length of struct ifinfomsg.
const IFINFOMSG_LEN: usize = 16;

/// One datagram of an `RTM_GETLINK` dump into `out` (index, flags);
/// whether the dump is over (`NLMSG_DONE`).
fn parse_links(mut b: &[u8], out: &mut Vec<(u32, u32)>) -> io::Result<bool> {
    while b.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        if len < NLMSG_HDRLEN || len > b.len() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let body = &b[NLMSG_HDRLEN..len];
        match ty {
            t if t == libc::NLMSG_DONE as u16 => return Ok(true),
            t if t == libc::NLMSG_ERROR as u16 => {
                let err = body.get(..4).map_or(-libc::EIO, |e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]));
                return Err(io::Error::from_raw_os_error(if err == 0 { libc::EIO } else { -err }));
            }
            libc::RTM_NEWLINK if body.len() >= IFINFOMSG_LEN => {
                let index = u32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
                let flags = u32::from_ne_bytes([body[8], body[9], body[10], body[11]]);
                out.push((index, flags));
            }
            _ => {}
        }
        b = &b[align4(len).min(b.len())..];
    }
    Ok(false)
}

/// Whether a path out of interface `oif` (any interface when `None`)
/// reaches `dst`: the route, or why not. A destination that is local to
/// this host is reached only through the lookup's own interface (`lo`):
/// the kernel would otherwise route it off the host via the path's
/// gateway ([`NoRoute::LocalOffPath`]).
pub(crate) fn path_route(dst: IpAddr, oif: Option<u32>) -> Result<Route, NoRoute> {
    let route = route_get(dst, oif).map_err(NoRoute::Errno)?;
    if oif.is_some() && route.table == 0 && !route.is_local() {
        // IPv4 with an output interface and no route: the kernel assumed
        // the destination on that link (net/ipv4/route.c, "routing tables
        // are wrong"); a connect would wait for ARP to give up.
        return Err(NoRoute::Errno(libc::ENETUNREACH));
    }
    if oif.is_some() && !route.is_local() {
        if let Ok(free) = route_get(dst, None) {
            if free.is_local() && free.oif != oif {
                return Err(NoRoute::LocalOffPath);
            }
        }
    }
    Ok(route)
}

/// Before a socket bound to interface `name` connects to `dst`: the
/// errno ENETUNREACH when `dst` is an address of this host and `name`
/// leads off it ([`NoRoute::LocalOffPath`]: the connect would send its SYN
/// away and wait out the kernel's retries, about two minutes). One route
/// lookup for a destination that is not local, two for one that is.
/// Other failures are left to the connect, which reports them at once
/// (and sees source-address routing rules this lookup does not); so is a
/// lookup that fails, or an unknown interface.
pub(crate) fn check_bound_path(dst: IpAddr, name: &str) -> Result<(), i32> {
    match route_get(dst, None) {
        Ok(free) if free.is_local() => {}
        _ => return Ok(()),
    }
    let Ok(cname) = std::ffi::CString::new(name) else { return Ok(()) };
    // SAFETY: a NUL-terminated name.
    let oif = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if oif == 0 {
        return Ok(());
    }
    match route_get(dst, Some(oif)) {
        Ok(r) if !r.is_local() => {
            log::info!("{dst} is an address of this host and interface {name} leads off it: not attempted (ENETUNREACH)");
            Err(libc::ENETUNREACH)
        }
        _ => Ok(()),
    }
}

/// What changed, from the notifications a [`Monitor`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NetEvent {
    /// A Router Advertisement with a PREF64 option arrived on interface
    /// `ifindex` from `router` (RFC 8781).
    Pref64 { ifindex: i32, router: Option<Ipv6Addr>, option: Pref64Option },
    /// A PREF64 option that RFC 8781 §4 says to ignore, and why.
    BadPref64 { ifindex: i32, error: RaOptionError },
    /// A link appeared, went, or changed state.
    Link,
    /// An address was added or removed (`family`: `AF_INET`, `AF_INET6`).
    Addr { family: u8 },
    /// A route was added or removed.
    Route { family: u8 },
    /// The socket's buffer overran (`ENOBUFS`): notifications were lost,
    /// so the caller re-probes whatever it keeps.
    Overrun,
}

/// The PREF64 options of one `RTM_NEWNDUSEROPT` body: struct
/// nduseroptmsg (family, pad, opts_len, ifindex, icmp type and code, pad),
/// the ND options (`opts_len` bytes), then attributes (the router's
/// address). Other ND options (RDNSS, DNSSL, captive portal) are skipped.
fn parse_nduseropt(body: &[u8], out: &mut Vec<NetEvent>) {
    if body.len() < NDUSEROPTMSG_LEN {
        return;
    }
    let opts_len = usize::from(u16::from_ne_bytes([body[2], body[3]]));
    let ifindex = i32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
    let Some(opts) = body.get(NDUSEROPTMSG_LEN..NDUSEROPTMSG_LEN + opts_len) else {
        return;
    };
    let router = attrs(&body[align4(NDUSEROPTMSG_LEN + opts_len).min(body.len())..])
        .find(|&(t, _)| t == NDUSEROPT_SRCADDR)
        .and_then(|(_, p)| match ip_of(p) {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        });
    let mut rest = opts;
    while rest.len() >= 2 && rest[1] != 0 {
        let len = (usize::from(rest[1]) * 8).min(rest.len());
        if rest[0] == ND_OPT_PREF64 {
            out.push(match parse_pref64_option(&rest[..len]) {
                Ok(option) => NetEvent::Pref64 { ifindex, router, option },
                Err(error) => NetEvent::BadPref64 { ifindex, error },
            });
        }
        rest = &rest[len..];
    }
}

/// The events in a buffer of netlink messages as the kernel sends them
/// to a [`Monitor`].
pub(crate) fn parse_notifications(mut buf: &[u8]) -> Vec<NetEvent> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        let body = &buf[NLMSG_HDRLEN..len];
        let family = body.first().copied().unwrap_or(0);
        match ty {
            libc::RTM_NEWNDUSEROPT => parse_nduseropt(body, &mut out),
            libc::RTM_NEWLINK | libc::RTM_DELLINK => out.push(NetEvent::Link),
            libc::RTM_NEWADDR | libc::RTM_DELADDR => out.push(NetEvent::Addr { family }),
            libc::RTM_NEWROUTE | libc::RTM_DELROUTE => out.push(NetEvent::Route { family }),
            _ => {}
        }
        buf = &buf[align4(len).min(buf.len())..];
    }
    out
}

/// A non-blocking rtnetlink socket subscribed to link, IPv4 and IPv6
/// address and route changes and to ND user options (PREF64 from RAs):
/// register [`fd`](Self::fd) for readability on the loop and call
/// [`read`](Self::read) when it is readable. Needs no privilege.
pub(crate) struct Monitor {
    fd: OwnedFd,
}

impl Monitor {
    /// Open and subscribe; an io error when the kernel refuses the socket.
    pub(crate) fn open() -> io::Result<Monitor> {
        let groups = libc::RTMGRP_LINK
            | libc::RTMGRP_IPV4_IFADDR
            | libc::RTMGRP_IPV4_ROUTE
            | libc::RTMGRP_IPV6_IFADDR
            | libc::RTMGRP_IPV6_ROUTE;
        let fd = route_socket(groups as u32, true)?;
        let group = libc::RTNLGRP_ND_USEROPT;
        // SAFETY: a u32 group number of the size given, on a socket we own.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_ADD_MEMBERSHIP,
                (&group as *const libc::c_uint).cast(),
                std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Monitor { fd })
    }

    /// The socket, to poll for readability.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Every notification queued now (empty when none): reads until the
    /// socket would block. An overrun is reported as [`NetEvent::Overrun`].
    pub(crate) fn read(&self) -> io::Result<Vec<NetEvent>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16384];
        loop {
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(out),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => out.push(NetEvent::Overrun),
                    _ => return Err(e),
                }
                continue;
            }
            out.extend(parse_notifications(&buf[..n as usize]));
        }
    }
}

/// Send a Router Solicitation (RFC 4861 §4.1, §6.3.7) to all routers
/// (ff02::2) out of interface `ifindex`, so that routers answer with an
/// RA (and its PREF64 option) now. Needs `CAP_NET_RAW` (an ICMPv6 raw
/// socket; EPERM otherwise); the kernel fills in the checksum.
pub(crate) fn send_router_solicitation(ifindex: u32) -> io::Result<()> {
    let sock = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::RAW.cloexec(),
        Some(socket2::Protocol::ICMPV6),
    )?;
    sock.set_multicast_hops_v6(255)?; // RFC 4861 §6.1.1: hop limit 255
    sock.set_multicast_if_v6(ifindex)?;
    // Type 133, code 0, checksum (kernel), reserved.
    let rs = [133u8, 0, 0, 0, 0, 0, 0, 0];
    let all_routers = std::net::SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2), 0, 0, ifindex);
    sock.send_to(&rs, &all_routers.into())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_dump_is_read_to_its_end_and_errors_are_errors() {
        let msg = |ty: u16, body: &[u8]| {
            let mut m = ((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes().to_vec();
            m.extend_from_slice(&ty.to_ne_bytes());
            m.extend_from_slice(&[0; 10]);
            m.extend_from_slice(body);
            m
        };
        let mut link = [0u8; IFINFOMSG_LEN];
        link[4..8].copy_from_slice(&7u32.to_ne_bytes());
        link[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        let mut out = Vec::new();
        assert!(!parse_links(&msg(libc::RTM_NEWLINK, &link), &mut out).unwrap(), "more to come");
        let mut two = msg(libc::RTM_NEWLINK, &link);
        two.extend(msg(libc::NLMSG_DONE as u16, &[0; 4]));
        assert!(parse_links(&two, &mut out).unwrap());
        assert_eq!(out, [(7, libc::IFF_UP as u32), (7, libc::IFF_UP as u32)]);
        let err = parse_links(&msg(libc::NLMSG_ERROR as u16, &(-libc::EPERM).to_ne_bytes()), &mut out).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert!(parse_links(&msg(libc::RTM_NEWLINK, &link)[..20], &mut out).is_err(), "a cut message");
    }

    #[test]
    fn the_link_dump_has_the_loopback_up() {
        let links = links().unwrap();
        assert!(links.iter().any(|&(i, f)| i > 0 && f & libc::IFF_LOOPBACK as u32 != 0), "{links:?}");
        let mut seen = links.iter().map(|l| l.0).collect::<Vec<_>>();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), links.len(), "each interface once");
    }
    use crate::engine::nat64::{encode_pref64_option, Pref64};
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn lo_index() -> u32 {
        // SAFETY: a NUL-terminated name.
        unsafe { libc::if_nametoindex(c"lo".as_ptr()) }
    }

    #[test]
    fn loopback_destinations_are_local_on_lo() {
        for dst in ["127.0.0.1", "::1"] {
            let route = route_get(dst.parse().unwrap(), None).unwrap();
            assert!(route.is_local(), "{dst}: {route:?}");
            assert_eq!(route.oif, Some(lo_index()), "{dst}");
            assert_eq!(path_route(dst.parse().unwrap(), Some(lo_index())), Ok(route), "{dst}");
        }
    }

    #[test]
    fn a_missing_interface_fails_the_lookup() {
        assert_eq!(route_get("127.0.0.1".parse().unwrap(), Some(999_999)), Err(libc::ENODEV));
    }

    #[test]
    fn reply_parsing_reads_errors_and_attributes() {
        let mut err = vec![0u8; NLMSG_HDRLEN + 4];
        let n = err.len() as u32;
        err[0..4].copy_from_slice(&n.to_ne_bytes());
        err[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::ENETUNREACH).to_ne_bytes());
        assert_eq!(parse_route_reply(&err), Err(libc::ENETUNREACH));
        let mut msg = vec![0u8; NLMSG_HDRLEN];
        msg[4..6].copy_from_slice(&libc::RTM_NEWROUTE.to_ne_bytes());
        msg.extend_from_slice(&[libc::AF_INET as u8, 32, 0, 0, 254, 0, 0, libc::RTN_UNICAST, 0, 0, 0, 0]);
        push_attr(&mut msg, libc::RTA_OIF, &7u32.to_ne_bytes());
        push_attr(&mut msg, libc::RTA_GATEWAY, &[192, 0, 2, 1]);
        push_attr(&mut msg, libc::RTA_PREFSRC, &[192, 0, 2, 2]);
        let n = msg.len() as u32;
        msg[0..4].copy_from_slice(&n.to_ne_bytes());
        let route = parse_route_reply(&msg).unwrap();
        assert_eq!(route.kind, libc::RTN_UNICAST);
        assert_eq!(route.oif, Some(7));
        assert_eq!(route.gateway, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(route.prefsrc, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(parse_route_reply(&msg[..8]), Err(libc::EIO));
    }

    /// An RTM_NEWNDUSEROPT message as the kernel builds it
    /// (net/ipv6/ndisc.c ndisc_ra_useropt): header, nduseroptmsg, the
    /// options, the router's address.
    fn nduseropt_msg(ifindex: i32, opts: &[u8], router: Ipv6Addr) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN];
        m[4..6].copy_from_slice(&libc::RTM_NEWNDUSEROPT.to_ne_bytes());
        let mut hdr = [0u8; NDUSEROPTMSG_LEN];
        hdr[0] = libc::AF_INET6 as u8;
        hdr[2..4].copy_from_slice(&(opts.len() as u16).to_ne_bytes());
        hdr[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        hdr[8] = 134;
        m.extend_from_slice(&hdr);
        m.extend_from_slice(opts);
        m.resize(align4(m.len()), 0);
        push_attr(&mut m, NDUSEROPT_SRCADDR, &router.octets());
        let n = m.len() as u32;
        m[0..4].copy_from_slice(&n.to_ne_bytes());
        m
    }

    #[test]
    fn nduseropt_messages_carry_pref64_and_skip_other_options() {
        let prefix: Pref64 = "2001:db8:64::/96".parse().unwrap();
        let router: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut opts = vec![25u8, 3, 0, 0, 0, 0, 0x0e, 0x10]; // RDNSS, one server
        opts.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        opts.extend_from_slice(&encode_pref64_option(&prefix, 1800));
        let mut bad = encode_pref64_option(&prefix, 1800);
        bad[3] |= 7; // PLC 7
        opts.extend_from_slice(&bad);
        let mut buf = nduseropt_msg(3, &opts, router);
        // A second message in the same read: a link change.
        let mut link = vec![0u8; NLMSG_HDRLEN + 16];
        let n = link.len() as u32;
        link[0..4].copy_from_slice(&n.to_ne_bytes());
        link[4..6].copy_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
        buf.extend_from_slice(&link);
        let events = parse_notifications(&buf);
        assert_eq!(
            events,
            vec![
                NetEvent::Pref64 {
                    ifindex: 3,
                    router: Some(router),
                    option: Pref64Option { prefix, lifetime_s: 1800 }
                },
                NetEvent::BadPref64 { ifindex: 3, error: RaOptionError::Plc(7) },
                NetEvent::Link,
            ]
        );
        // A truncated message yields nothing rather than garbage.
        assert_eq!(parse_notifications(&buf[..20]), vec![]);
    }

    fn ip(args: &str) {
        let ok = Command::new("ip").args(args.split(' ')).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "ip {args}");
    }

    fn sysctl(kv: &str) {
        let ok = Command::new("sysctl").args(["-qw", kv]).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "sysctl {kv}");
    }

    fn index(name: &str) -> u32 {
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: a NUL-terminated name.
        unsafe { libc::if_nametoindex(c.as_ptr()) }
    }

    /// Read the monitor until `want` matches an event or 5 s pass.
    fn wait_for(mon: &Monitor, want: impl Fn(&NetEvent) -> bool) -> Option<NetEvent> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(e) = mon.read().unwrap().into_iter().find(|e| want(e)) {
                return Some(e);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// In a network namespace of its own (a thread that unshares it; the
    /// `ip` and `sysctl` children inherit it): lookups with no route, a
    /// path whose interface leads off the host for a local destination,
    /// link notifications, and a real Router Advertisement with a PREF64
    /// option delivered as RTM_NEWNDUSEROPT. Skipped without
    /// CAP_SYS_ADMIN or without `ip`.
    #[test]
    fn namespace_routes_notifications_and_pref64_from_a_real_ra() {
        let ran = std::thread::spawn(|| {
            // SAFETY: unshare affects only this thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return false;
            }
            if Command::new("ip").arg("-V").output().is_err() {
                return false;
            }
            in_namespace();
            true
        })
        .join()
        .unwrap();
        if !ran {
            eprintln!("skipped: no CAP_SYS_ADMIN (unshare CLONE_NEWNET) or no ip(8)");
        }
    }

    fn in_namespace() {
        // lo is down: nothing routes.
        assert_eq!(route_get("203.0.113.1".parse().unwrap(), None), Err(libc::ENETUNREACH));
        let mon = Monitor::open().unwrap();
        ip("link set lo up");
        assert!(wait_for(&mon, |e| *e == NetEvent::Link).is_some());
        assert!(route_get("127.0.0.1".parse().unwrap(), None).unwrap().is_local());
        assert_eq!(route_get("203.0.113.1".parse().unwrap(), None), Err(libc::ENETUNREACH));
        sysctl("net.ipv6.conf.all.accept_dad=0");
        sysctl("net.ipv6.conf.default.accept_dad=0");
        ip("link add n64a type veth peer name n64b");
        ip("addr add 192.0.2.2/24 dev n64a");
        ip("link set n64a up");
        ip("link set n64b up");
        let a = index("n64a");
        // No route out of n64a but its link: the kernel's on-link guess
        // (a route from no table) is no route.
        assert_eq!(path_route("203.0.113.1".parse().unwrap(), Some(a)), Err(NoRoute::Errno(libc::ENETUNREACH)));
        assert_eq!(path_route("192.0.2.9".parse().unwrap(), Some(a)).map(|r| r.table), Ok(254));
        ip("route add default via 192.0.2.1");
        assert!(wait_for(&mon, |e| *e == NetEvent::Route { family: libc::AF_INET as u8 }).is_some());
        // 127.0.0.1 out of n64a: the kernel routes it via the gateway.
        assert!(!route_get("127.0.0.1".parse().unwrap(), Some(a)).unwrap().is_local());
        assert_eq!(path_route("127.0.0.1".parse().unwrap(), Some(a)), Err(NoRoute::LocalOffPath));
        assert_eq!(check_bound_path("127.0.0.1".parse().unwrap(), "n64a"), Err(libc::ENETUNREACH));
        assert_eq!(check_bound_path("127.0.0.1".parse().unwrap(), "lo"), Ok(()));
        // n64a's own address through n64a is local delivery: fine.
        assert_eq!(check_bound_path("192.0.2.2".parse().unwrap(), "n64a"), Ok(()));
        assert_eq!(check_bound_path("203.0.113.1".parse().unwrap(), "n64a"), Ok(()));
        assert_eq!(check_bound_path("127.0.0.1".parse().unwrap(), "nosuchif"), Ok(()));
        let r = path_route("203.0.113.1".parse().unwrap(), Some(a)).unwrap();
        assert_eq!((r.oif, r.gateway), (Some(a), Some("192.0.2.1".parse().unwrap())));
        // No IPv6 route but the link's own prefix: a global one fails.
        assert_eq!(path_route("2001:db8::1".parse().unwrap(), Some(a)), Err(NoRoute::Errno(libc::ENETUNREACH)));
        ip("route add unreachable 198.51.100.0/24");
        assert_eq!(route_get("198.51.100.1".parse().unwrap(), None), Err(libc::EHOSTUNREACH));
        // A Router Advertisement from n64b with a PREF64 option.
        mon.read().unwrap();
        let prefix: Pref64 = "2001:db8:64::/96".parse().unwrap();
        send_ra(index("n64b"), &encode_pref64_option(&prefix, 600));
        let got = wait_for(&mon, |e| matches!(e, NetEvent::Pref64 { .. }));
        match got {
            Some(NetEvent::Pref64 { ifindex, router, option }) => {
                assert_eq!(ifindex as u32, a);
                assert!(router.is_some_and(|r| r.segments()[0] == 0xfe80), "{router:?}");
                assert_eq!(option, Pref64Option { prefix, lifetime_s: 600 });
            }
            other => panic!("no PREF64 from the RA: {other:?}"),
        }
        // And a Router Solicitation goes out (a raw socket: root here).
        send_router_solicitation(a).unwrap();
    }

    /// A Router Advertisement (RFC 4861 §4.2; router lifetime 0: not a
    /// default router) with the ND option `opt`, to all nodes out of
    /// `ifindex`.
    fn send_ra(ifindex: u32, opt: &[u8]) {
        let sock = socket2::Socket::new(
            socket2::Domain::IPV6,
            socket2::Type::RAW,
            Some(socket2::Protocol::ICMPV6),
        )
        .unwrap();
        sock.set_multicast_hops_v6(255).unwrap();
        sock.set_multicast_if_v6(ifindex).unwrap();
        // No copy back to the sender's own interface.
        sock.set_multicast_loop_v6(false).unwrap();
        let mut ra = vec![134u8, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ra.extend_from_slice(opt);
        let all_nodes = std::net::SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifindex);
        // The link-local address may still be coming up: retry briefly.
        let deadline = Instant::now() + Duration::from_secs(3);
        while sock.send_to(&ra, &all_nodes.into()).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
