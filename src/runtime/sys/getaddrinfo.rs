//! The system resolver's calls into the OS, made on the resolver's worker
//! threads (src/runtime/resolver.rs): getaddrinfo for one family, and the
//! source address the kernel would use for an answer (RFC 6724).

use crate::engine::Family;
use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// getaddrinfo for one family, stream sockets, in the resolver's order,
/// without duplicates. No AI_ADDRCONFIG: a host with only loopback
/// addresses must still get answers; RFC 6724 rule 1 sorts unusable ones.
pub(crate) fn resolve(host: &CStr, port: u16, family: Family) -> Result<Vec<SocketAddr>, i32> {
    // RFC 6761 §6.3 and §6.4: "localhost" names are the loopback
    // addresses and ".invalid" names do not exist, without asking DNS (a
    // hosts file without "::1 localhost" would otherwise send the AAAA
    // query to the network).
    let name = host.to_str().unwrap_or("").trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        let ip: IpAddr = match family {
            Family::V6 => Ipv6Addr::LOCALHOST.into(),
            Family::V4 => Ipv4Addr::LOCALHOST.into(),
        };
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if name == "invalid" || name.ends_with(".invalid") {
        return Err(libc::EAI_NONAME);
    }
    // SAFETY: an all-zero addrinfo is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = match family {
        Family::V6 => libc::AF_INET6,
        Family::V4 => libc::AF_INET,
    };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: host is NUL-terminated, hints and res are valid pointers.
    let rc = unsafe { libc::getaddrinfo(host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        return Err(rc);
    }
    let mut out = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: cur walks the list getaddrinfo returned, freed below.
        let ai = unsafe { &*cur };
        if let Some(ip) = unsafe { sockaddr_ip(ai.ai_addr) } {
            let addr = match ip {
                IpAddr::V6(v6) => {
                    // SAFETY: AF_INET6 entries point at a sockaddr_in6.
                    let scope = unsafe { (*(ai.ai_addr as *const libc::sockaddr_in6)).sin6_scope_id };
                    SocketAddr::V6(std::net::SocketAddrV6::new(v6, port, 0, scope))
                }
                IpAddr::V4(v4) => SocketAddr::new(IpAddr::V4(v4), port),
            };
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        cur = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    Ok(out)
}

/// The IP address of a sockaddr, if it is AF_INET or AF_INET6.
///
/// # Safety
/// `sa` is NULL or points at a sockaddr of the size its family implies.
pub(crate) unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match (*sa).sa_family as i32 {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// The source address the kernel would pick for `dest` (RFC 6724 needs it;
/// glibc finds it the same way): connect a UDP socket, which sends nothing,
/// and read its local address. `None` when there is no route.
pub(crate) fn source_address(dest: SocketAddr) -> Option<IpAddr> {
    // No bind: connect binds the socket to the route's source address.
    let sock = socket2::Socket::new(socket2::Domain::for_address(dest), socket2::Type::DGRAM.cloexec(), None).ok()?;
    // Port 0 cannot be connected to; the port does not change the route.
    let mut probe = dest;
    if probe.port() == 0 {
        probe.set_port(9);
    }
    sock.connect(&probe.into()).ok()?;
    sock.local_addr().ok()?.as_socket().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    #[test]
    fn resolves_numeric_hosts_per_family() {
        let host = CString::new("127.0.0.1").unwrap();
        assert_eq!(resolve(&host, 80, Family::V4).unwrap(), vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
        assert!(resolve(&host, 80, Family::V6).is_err() || resolve(&host, 80, Family::V6).unwrap().is_empty());
    }

    #[test]
    fn localhost_and_invalid_are_answered_without_dns() {
        let lo = CString::new("LocalHost.").unwrap();
        assert_eq!(resolve(&lo, 80, Family::V6).unwrap(), vec!["[::1]:80".parse::<SocketAddr>().unwrap()]);
        assert_eq!(resolve(&lo, 80, Family::V4).unwrap(), vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
        let sub = CString::new("a.b.localhost").unwrap();
        assert_eq!(resolve(&sub, 1, Family::V4).unwrap().len(), 1);
        let inv = CString::new("x.invalid").unwrap();
        assert_eq!(resolve(&inv, 80, Family::V6), Err(libc::EAI_NONAME));
    }

    #[test]
    fn unknown_host_is_an_eai_error() {
        let host = CString::new("no-such-host.invalid").unwrap();
        assert!(resolve(&host, 80, Family::V4).is_err());
    }

    #[test]
    fn loopback_source_is_loopback() {
        assert_eq!(source_address("127.0.0.1:80".parse().unwrap()), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
