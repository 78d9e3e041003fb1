//! The operating system's side of the loop, as mio keeps its `sys`: TCP
//! and UDP sockets (socket2, bound to a path), the interfaces that are up
//! (getifaddrs), the clock with its timerfd, and the system resolver
//! (getaddrinfo on worker threads; the source address of a destination;
//! the DNS client's sockets and random query ids). Nothing here knows about
//! races, pools or groups; the loop calls in with plain values (addresses,
//! interface names, times).

pub(crate) mod clock;
pub(crate) mod dns_io;
pub(crate) mod getaddrinfo;
pub(crate) mod interfaces;
pub(crate) mod netlink;
pub(crate) mod random;
pub(crate) mod reach;
pub(crate) mod tcp;
pub(crate) mod udp;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// The errno of an io::Error (EIO when it has none).
pub(crate) fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// A non-blocking, close-on-exec socket of `ty` for `addr`, bound to the
/// device `interface` (SO_BINDTODEVICE) and to `local` when given; an
/// errno when that fails (EAFNOSUPPORT when `local` is of the other
/// family; ENETUNREACH, before any socket, when `addr` is an address of
/// this host and `interface` leads off it: [`netlink::check_bound_path`]).
fn bound_socket(
    addr: SocketAddr,
    ty: Type,
    proto: Protocol,
    interface: Option<&str>,
    local: Option<SocketAddr>,
) -> Result<Socket, i32> {
    if let Some(name) = interface {
        netlink::check_bound_path(addr.ip(), name)?;
    }
    let socket = Socket::new(Domain::for_address(addr), ty.nonblocking().cloexec(), Some(proto)).map_err(errno)?;
    if let Some(name) = interface {
        socket.bind_device(Some(name.as_bytes())).map_err(errno)?;
    }
    if let Some(local) = local {
        if local.is_ipv6() != addr.is_ipv6() {
            return Err(libc::EAFNOSUPPORT);
        }
        socket.bind(&SockAddr::from(local)).map_err(errno)?;
    }
    Ok(socket)
}
