//! C ABI: RemoteEndpoint and TransportProperties.

use super::{arg, fail, guard, status};
use crate::api;
use crate::api::Error;
use std::ffi::{c_char, c_int, CStr};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A remote endpoint under construction: a host (name or IP address) and a
/// port. preconnection_new copies it; free it with remote_endpoint_free.
///
/// Threads: build it on one thread at a time; once built, several threads
/// may pass it to preconnection_new at once.
pub struct RemoteEndpoint(pub(crate) api::RemoteEndpoint);

/// Transport properties of a Preconnection (RFC 9622 §6). Today every race
/// uses TCP, which the defaults ask for; preconnection_new copies them.
///
/// Threads: as RemoteEndpoint: set on one thread at a time, then read
/// (preconnection_new) by any number at once.
pub struct TransportProperties(pub(crate) api::TransportProperties);

/// A new, empty remote endpoint (no host, no port). Free it with
/// remote_endpoint_free. NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn remote_endpoint_new() -> *mut RemoteEndpoint {
    guard!(std::ptr::null_mut(), { Box::into_raw(Box::new(RemoteEndpoint(api::RemoteEndpoint::new()))) })
}

/// Set the host: a DNS name (letters, digits, '-', '_', '.', at most 253
/// characters, labels of at most 63) or an IPv4/IPv6 literal (IPv6 may be
/// in brackets); a literal skips DNS. `hostname` is copied.
/// Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_HOSTNAME (the
/// endpoint is unchanged).
#[no_mangle]
pub extern "C" fn remote_endpoint_with_hostname(ep: *mut RemoteEndpoint, hostname: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        if hostname.is_null() {
            return fail(Error::NullArgument);
        }
        // SAFETY: a non-NULL, NUL-terminated string per the contract.
        let Ok(text) = unsafe { CStr::from_ptr(hostname) }.to_str() else {
            return fail(Error::InvalidHostname);
        };
        status(ep.0.with_hostname(text).map(|_| ()))
    })
}

/// Set the port (host byte order). Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_PORT for 0 (the endpoint is unchanged).
#[no_mangle]
pub extern "C" fn remote_endpoint_with_port(ep: *mut RemoteEndpoint, port: u16) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        status(ep.0.with_port(port).map(|_| ()))
    })
}

/// Set the port from a service: decimal ("443") or a name from the
/// services database ("https"). Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_PORT (0, unknown name; the endpoint is unchanged).
#[no_mangle]
pub extern "C" fn remote_endpoint_with_service(ep: *mut RemoteEndpoint, service: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        if service.is_null() {
            return fail(Error::NullArgument);
        }
        // SAFETY: a non-NULL, NUL-terminated string per the contract.
        let Ok(text) = unsafe { CStr::from_ptr(service) }.to_str() else {
            return fail(Error::InvalidPort);
        };
        status(ep.0.with_service(text).map(|_| ()))
    })
}

/// Set the host to an IPv4 address (network byte order, as in struct
/// in_addr). Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn remote_endpoint_with_ipv4(ep: *mut RemoteEndpoint, addr: libc::in_addr) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        ep.0.with_ipv4(Ipv4Addr::from(u32::from_be(addr.s_addr)));
        0
    })
}

/// Set the host to an IPv6 address. Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn remote_endpoint_with_ipv6(ep: *mut RemoteEndpoint, addr: libc::in6_addr) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        ep.0.with_ipv6(Ipv6Addr::from(addr.s6_addr));
        0
    })
}

/// Free an endpoint. NULL is fine. Preconnections made from it keep their
/// own copy.
#[no_mangle]
pub extern "C" fn remote_endpoint_free(ep: *mut RemoteEndpoint) {
    guard!((), {
        if !ep.is_null() {
            // SAFETY: from remote_endpoint_new, freed once.
            drop(unsafe { Box::from_raw(ep) });
        }
    })
}

/// Transport properties with the defaults (a reliable, ordered byte
/// stream: TCP). Free with transport_properties_free.
#[no_mangle]
pub extern "C" fn transport_properties_new() -> *mut TransportProperties {
    guard!(std::ptr::null_mut(), { Box::into_raw(Box::new(TransportProperties(api::TransportProperties::new()))) })
}

/// Free transport properties. NULL is fine.
#[no_mangle]
pub extern "C" fn transport_properties_free(props: *mut TransportProperties) {
    guard!((), {
        if !props.is_null() {
            // SAFETY: from transport_properties_new, freed once.
            drop(unsafe { Box::from_raw(props) });
        }
    })
}
