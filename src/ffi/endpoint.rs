//! C ABI: taps_remote_endpoint and taps_local_endpoint.

use super::handle::{free_handle, into_handle, try_mut, try_str, Boxed};
use super::{fail, guard, status};
use crate::api;
use crate::api::Error;
use std::ffi::{c_char, c_int};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A remote endpoint under construction: a host (name or IP address) and a
/// port. taps_preconnection_new copies it; free it with taps_remote_endpoint_free.
///
/// Threads: build it on one thread at a time; once built, several threads
/// may pass it to taps_preconnection_new at once.
pub struct RemoteEndpoint(pub(crate) api::RemoteEndpoint);

impl Boxed for RemoteEndpoint {}

/// A local endpoint (RFC 9622 §6.1) under construction: interface,
/// address, port. taps_preconnection_add_local_endpoint copies it; free it with
/// taps_local_endpoint_free.
pub struct LocalEndpoint(pub(crate) api::LocalEndpoint);

impl Boxed for LocalEndpoint {}

/// A new, empty remote endpoint (no host, no port). Free it with
/// taps_remote_endpoint_free. NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn taps_remote_endpoint_new() -> *mut RemoteEndpoint {
    guard!(std::ptr::null_mut(), { into_handle(RemoteEndpoint(api::RemoteEndpoint::new())) })
}

/// Set the host: a DNS name (letters, digits, '-', '_', '.', at most 253
/// characters, labels of at most 63) or an IPv4/IPv6 literal (IPv6 may be
/// in brackets); a literal skips DNS. `hostname` is copied.
///
/// IPv4 literals are those inet_pton takes: four decimal parts
/// ("127.0.0.1"). The inet_aton shorthands "127.1", "0x7f.0.0.1",
/// "2130706433" are refused (TAPS_ERROR_INVALID_HOSTNAME, "not a
/// dotted-quad IPv4 address"), as is any name whose last label is a
/// number: getaddrinfo would read such a "name" as an address the caller
/// never wrote, and no real host name ends in a numeric label (RFC 1123
/// §2.1).
///
/// Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_HOSTNAME (the
/// reason in taps_last_error_message; the endpoint is unchanged).
#[no_mangle]
pub extern "C" fn taps_remote_endpoint_with_hostname(ep: *mut RemoteEndpoint, hostname: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        let text = try_str!(hostname, Error::InvalidHostname("not UTF-8"));
        status(ep.0.with_hostname(text).map(|_| ()))
    })
}

/// Set the port (host byte order). Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_PORT for 0 (the endpoint is unchanged).
#[no_mangle]
pub extern "C" fn taps_remote_endpoint_with_port(ep: *mut RemoteEndpoint, port: u16) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        status(ep.0.with_port(port).map(|_| ()))
    })
}

/// Set the port from a service: decimal digits only ("443") or a name from
/// the services database ("https"). No spaces and no sign: " 80" and "+80"
/// are refused, though getaddrinfo would take them.
///
/// Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_PORT, with the
/// reason in taps_last_error_message: port 0, a number past 65535 ("port
/// out of range: the largest is 65535"), spaces or a sign, "unknown
/// service". The endpoint is unchanged.
#[no_mangle]
pub extern "C" fn taps_remote_endpoint_with_service(ep: *mut RemoteEndpoint, service: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        let text = try_str!(service, Error::InvalidPort("not UTF-8"));
        status(ep.0.with_service(text).map(|_| ()))
    })
}

/// Set the host to an IPv4 address (network byte order, as in struct
/// in_addr). Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_remote_endpoint_with_ipv4(ep: *mut RemoteEndpoint, addr: libc::in_addr) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        ep.0.with_ipv4(Ipv4Addr::from(u32::from_be(addr.s_addr)));
        0
    })
}

/// Set the host to an IPv6 address. Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_remote_endpoint_with_ipv6(ep: *mut RemoteEndpoint, addr: libc::in6_addr) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        ep.0.with_ipv6(Ipv6Addr::from(addr.s6_addr));
        0
    })
}

/// Free an endpoint. NULL is fine. Preconnections made from it keep their
/// own copy.
#[no_mangle]
pub extern "C" fn taps_remote_endpoint_free(ep: *mut RemoteEndpoint) {
    // SAFETY: NULL, or from taps_remote_endpoint_new and freed once.
    guard!((), { unsafe { free_handle(ep) } })
}

/// A new local endpoint with nothing set. Free with taps_local_endpoint_free.
#[no_mangle]
pub extern "C" fn taps_local_endpoint_new() -> *mut LocalEndpoint {
    guard!(std::ptr::null_mut(), { into_handle(LocalEndpoint(api::LocalEndpoint::new())) })
}

/// Bind attempts on this path to interface `name` (SO_BINDTODEVICE, needs
/// CAP_NET_RAW; copied). Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_ARGUMENT (empty, over 15 bytes, '/' or spaces).
#[no_mangle]
pub extern "C" fn taps_local_endpoint_with_interface(ep: *mut LocalEndpoint, name: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        let name = try_str!(name, Error::InvalidArgument("an interface name is UTF-8"));
        status(ep.0.with_interface(name).map(|_| ()))
    })
}

/// Bind attempts on this path to an IPv4 address (network byte order).
/// Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_local_endpoint_with_ipv4(ep: *mut LocalEndpoint, addr: libc::in_addr) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        ep.0.with_address(Ipv4Addr::from(u32::from_be(addr.s_addr)).into());
        0
    })
}

/// Bind attempts on this path to an IPv6 address. Errors:
/// TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_local_endpoint_with_ipv6(ep: *mut LocalEndpoint, addr: libc::in6_addr) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        ep.0.with_address(Ipv6Addr::from(addr.s6_addr).into());
        0
    })
}

/// Bind attempts on this path to a local port (with an address; 0 lets
/// the system choose). Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_local_endpoint_with_port(ep: *mut LocalEndpoint, port: u16) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = try_mut!(ep);
        ep.0.with_port(port);
        0
    })
}

/// Free a local endpoint. NULL is fine.
#[no_mangle]
pub extern "C" fn taps_local_endpoint_free(ep: *mut LocalEndpoint) {
    // SAFETY: NULL, or from taps_local_endpoint_new and freed once.
    guard!((), { unsafe { free_handle(ep) } })
}
