//! C ABI: selection properties, local endpoints, branch racing types.

use super::endpoint::TransportProperties;
use super::preconnection::Preconnection;
use super::{arg, fail, guard, status};
use crate::api::{self, BranchKind, Error, InterfaceMatch, InterfaceType, Preference, RacingType};
use std::ffi::{c_char, c_int, CStr};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The boolean selection properties (RFC 9622 §6.2) that
/// transport_properties_set takes.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectionProperty {
    /// reliability (§6.2.1): default PREFERENCE_REQUIRE.
    SELECTION_PROPERTY_RELIABILITY = 0,
    /// preserveMsgBoundaries (§6.2.2): default PREFERENCE_NO_PREFERENCE.
    SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES = 1,
    /// multistreaming (§6.2.8): default PREFERENCE_PREFER.
    SELECTION_PROPERTY_MULTISTREAMING = 2,
}

/// How the branches of one level race (RFC 9623 §4.3), for
/// preconnection_set_racing_type.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RacingTypeCode {
    /// All branches start at once.
    RACING_TYPE_IMMEDIATE = 0,
    /// Each branch starts a delay after the previous one, or at once when
    /// the previous one failed (the default).
    RACING_TYPE_DELAYED = 1,
    /// A branch starts only when every earlier branch failed.
    RACING_TYPE_FAILOVER = 2,
}

/// A local endpoint (RFC 9622 §6.1) under construction: interface,
/// address, port. preconnection_add_local_endpoint copies it; free it with
/// local_endpoint_free.
pub struct LocalEndpoint(pub(crate) api::LocalEndpoint);

fn preference(p: c_int) -> Result<Preference, Error> {
    Ok(match p {
        0 => Preference::Require,
        1 => Preference::Prefer,
        2 => Preference::NoPreference,
        3 => Preference::Avoid,
        4 => Preference::Prohibit,
        _ => return Err(Error::InvalidArgument("not a Preference (PREFERENCE_REQUIRE .. PREFERENCE_PROHIBIT)")),
    })
}

fn interface_type(t: c_int) -> Result<InterfaceType, Error> {
    Ok(match t {
        0 => InterfaceType::Loopback,
        1 => InterfaceType::Wired,
        2 => InterfaceType::Wireless,
        3 => InterfaceType::Other,
        _ => return Err(Error::InvalidArgument("not an InterfaceType")),
    })
}

/// Set a boolean selection property (`property`: a SelectionProperty) to a
/// Preference (`preference`). Branches are pruned by Prohibit and Require
/// and ordered by Prefer and Avoid, in that order; a branch that hits an
/// Avoid races as failover behind the others. Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (a value out of
/// its enum; nothing changes).
#[no_mangle]
pub extern "C" fn transport_properties_set(props: *mut TransportProperties, property: c_int, preference: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        let props = arg!(mut props);
        let p = match self::preference(preference) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        match property {
            0 => props.0.set_reliability(p),
            1 => props.0.set_preserve_msg_boundaries(p),
            2 => props.0.set_multistreaming(p),
            _ => return fail(Error::InvalidArgument("not a SelectionProperty")),
        };
        0
    })
}

/// Set the interface preference (RFC 9622 §6.2.11) for the interface
/// named `name` ("eth0"; copied). With an interface preference set, the
/// race's paths are the system's interfaces that are up (loopback only if
/// a preference asks for it), bound with SO_BINDTODEVICE (needs
/// CAP_NET_RAW). PREFERENCE_NO_PREFERENCE removes it. Several Require
/// entries are alternatives. Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_ARGUMENT (empty or longer than 15 bytes, a bad
/// preference, more than 64 entries).
#[no_mangle]
pub extern "C" fn transport_properties_set_interface(
    props: *mut TransportProperties,
    name: *const c_char,
    preference: c_int,
) -> c_int {
    guard!(fail(Error::Panic), {
        let props = arg!(mut props);
        let name = arg!(name);
        // SAFETY: a NUL-terminated string per the contract.
        let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() else {
            return fail(Error::InvalidArgument("an interface name is UTF-8"));
        };
        let p = match self::preference(preference) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        status(props.0.set_interface(InterfaceMatch::Name(name.to_string()), p).map(|_| ()))
    })
}

/// Set the interface preference for every interface of a type
/// (`interface_type`: an InterfaceType). Errors as
/// transport_properties_set_interface.
#[no_mangle]
pub extern "C" fn transport_properties_set_interface_type(
    props: *mut TransportProperties,
    interface_type: c_int,
    preference: c_int,
) -> c_int {
    guard!(fail(Error::Panic), {
        let props = arg!(mut props);
        let t = match self::interface_type(interface_type) {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        let p = match self::preference(preference) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        status(props.0.set_interface(InterfaceMatch::Type(t), p).map(|_| ()))
    })
}

/// A new local endpoint with nothing set. Free with local_endpoint_free.
#[no_mangle]
pub extern "C" fn local_endpoint_new() -> *mut LocalEndpoint {
    guard!(std::ptr::null_mut(), { Box::into_raw(Box::new(LocalEndpoint(api::LocalEndpoint::new()))) })
}

/// Bind attempts on this path to interface `name` (SO_BINDTODEVICE, needs
/// CAP_NET_RAW; copied). Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_ARGUMENT (empty, over 15 bytes, '/' or spaces).
#[no_mangle]
pub extern "C" fn local_endpoint_with_interface(ep: *mut LocalEndpoint, name: *const c_char) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        let name = arg!(name);
        // SAFETY: a NUL-terminated string per the contract.
        let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() else {
            return fail(Error::InvalidArgument("an interface name is UTF-8"));
        };
        status(ep.0.with_interface(name).map(|_| ()))
    })
}

/// Bind attempts on this path to an IPv4 address (network byte order).
/// Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn local_endpoint_with_ipv4(ep: *mut LocalEndpoint, addr: libc::in_addr) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        ep.0.with_address(Ipv4Addr::from(u32::from_be(addr.s_addr)).into());
        0
    })
}

/// Bind attempts on this path to an IPv6 address. Errors:
/// TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn local_endpoint_with_ipv6(ep: *mut LocalEndpoint, addr: libc::in6_addr) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        ep.0.with_address(Ipv6Addr::from(addr.s6_addr).into());
        0
    })
}

/// Bind attempts on this path to a local port (with an address; 0 lets
/// the system choose). Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn local_endpoint_with_port(ep: *mut LocalEndpoint, port: u16) -> c_int {
    guard!(fail(Error::Panic), {
        let ep = arg!(mut ep);
        ep.0.with_port(port);
        0
    })
}

/// Free a local endpoint. NULL is fine.
#[no_mangle]
pub extern "C" fn local_endpoint_free(ep: *mut LocalEndpoint) {
    guard!((), {
        if !ep.is_null() {
            // SAFETY: from local_endpoint_new, freed once.
            drop(unsafe { Box::from_raw(ep) });
        }
    })
}

/// Add a local endpoint (copied) to a Preconnection: each is one path
/// branch of the race (RFC 9623 §4.1). Call before initiating. Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (over 64).
#[no_mangle]
pub extern "C" fn preconnection_add_local_endpoint(p: *mut Preconnection, local: *const LocalEndpoint) -> c_int {
    guard!(fail(Error::Panic), {
        let p = arg!(mut p);
        let local = arg!(local);
        status(p.0.add_local_endpoint(&local.0))
    })
}

/// How the branches of one level of the candidate tree race each other
/// (RFC 9623 §4.3). `kind`: a BranchKind; `racing_type`: a RacingTypeCode;
/// `delay_ms`: for RACING_TYPE_DELAYED, the delay between branches (0: the
/// Connection Attempt Delay; else clamped to [10, 2000]). Defaults: delayed
/// at every level with the Connection Attempt Delay. At the endpoint
/// level, RACING_TYPE_IMMEDIATE starts every address at once and
/// RACING_TYPE_FAILOVER the next address only when an attempt failed.
/// Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (a value
/// out of its enum; nothing changes).
#[no_mangle]
pub extern "C" fn preconnection_set_racing_type(p: *mut Preconnection, kind: c_int, racing_type: c_int, delay_ms: u32) -> c_int {
    guard!(fail(Error::Panic), {
        let p = arg!(mut p);
        let kind = match kind {
            0 => BranchKind::Path,
            1 => BranchKind::Protocol,
            2 => BranchKind::Endpoint,
            _ => return fail(Error::InvalidArgument("not a BranchKind")),
        };
        let racing = match racing_type {
            0 => RacingType::Immediate,
            1 => RacingType::Delayed(delay_ms as u64 * 1000),
            2 => RacingType::Failover,
            _ => return fail(Error::InvalidArgument("not a RacingTypeCode")),
        };
        p.0.set_racing_type(kind, racing);
        0
    })
}
