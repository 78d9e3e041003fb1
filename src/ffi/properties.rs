//! C ABI: taps_transport_properties and its selection properties (RFC 9622
//! §6.2).

use super::handle::{free_handle, into_handle, try_mut, try_ok, try_str, Boxed};
use super::{c_enum, fail, guard, status};
use crate::api::{self, Error, InterfaceMatch};
use std::ffi::{c_char, c_int};

/// Transport properties of a taps_preconnection (RFC 9622 §6). Today every race
/// uses TCP, which the defaults ask for; taps_preconnection_new copies them.
///
/// Threads: as taps_remote_endpoint: set on one thread at a time, then read
/// (taps_preconnection_new) by any number at once.
pub struct TransportProperties(pub(crate) api::TransportProperties);

impl Boxed for TransportProperties {}

/// The boolean selection properties (RFC 9622 §6.2) that
/// taps_transport_properties_set takes.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectionProperty {
    /// reliability (§6.2.1): default TAPS_PREFERENCE_REQUIRE.
    TAPS_SELECTION_PROPERTY_RELIABILITY = 0,
    /// preserveMsgBoundaries (§6.2.2): default TAPS_PREFERENCE_NO_PREFERENCE.
    TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES = 1,
    /// multistreaming (§6.2.8): default TAPS_PREFERENCE_PREFER.
    TAPS_SELECTION_PROPERTY_MULTISTREAMING = 2,
}

c_enum!(SelectionProperty, "not a taps_selection_property", [
    TAPS_SELECTION_PROPERTY_RELIABILITY,
    TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES,
    TAPS_SELECTION_PROPERTY_MULTISTREAMING,
]);

/// A selection property's preference (RFC 9622 §6.2).
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preference {
    /// Only branches that have the property.
    Require,
    /// Branches that have it first.
    Prefer,
    /// The property does not matter.
    NoPreference,
    /// Branches that have it last, as failover.
    Avoid,
    /// Never a branch that has it.
    Prohibit,
}

c_enum!(Preference <=> api::Preference, "not a taps_preference (TAPS_PREFERENCE_REQUIRE .. TAPS_PREFERENCE_PROHIBIT)", [
    Require,
    Prefer,
    NoPreference,
    Avoid,
    Prohibit,
]);

/// Kinds of interface a path can be on.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterfaceType {
    /// The loopback interface.
    Loopback,
    /// Ethernet and other wired links.
    Wired,
    /// Wi-Fi and other wireless links.
    Wireless,
    /// Anything else (tunnels, virtual links, veth pairs, ...).
    Other,
}

c_enum!(InterfaceType <=> api::InterfaceType, "not a taps_interface_type", [Loopback, Wired, Wireless, Other]);

/// Transport properties with the defaults (a reliable, ordered byte
/// stream: TCP). Free with taps_transport_properties_free.
#[no_mangle]
pub extern "C" fn taps_transport_properties_new() -> *mut TransportProperties {
    guard!(std::ptr::null_mut(), { into_handle(TransportProperties(api::TransportProperties::new())) })
}

/// Free transport properties. NULL is fine.
#[no_mangle]
pub extern "C" fn taps_transport_properties_free(props: *mut TransportProperties) {
    // SAFETY: NULL, or from taps_transport_properties_new and freed once.
    guard!((), { unsafe { free_handle(props) } })
}

/// Set a boolean selection property (`property`: a taps_selection_property) to a
/// taps_preference (`preference`). Branches are pruned by Prohibit and Require
/// and ordered by Prefer and Avoid, in that order; a branch that hits an
/// Avoid races as failover behind the others. Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT (a value out of
/// its enum; nothing changes).
#[no_mangle]
pub extern "C" fn taps_transport_properties_set(props: *mut TransportProperties, property: c_int, preference: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        let props = try_mut!(props);
        let p = try_ok!(Preference::try_from(preference)).into();
        match try_ok!(SelectionProperty::try_from(property)) {
            SelectionProperty::TAPS_SELECTION_PROPERTY_RELIABILITY => props.0.set_reliability(p),
            SelectionProperty::TAPS_SELECTION_PROPERTY_PRESERVE_MSG_BOUNDARIES => props.0.set_preserve_msg_boundaries(p),
            SelectionProperty::TAPS_SELECTION_PROPERTY_MULTISTREAMING => props.0.set_multistreaming(p),
        };
        0
    })
}

/// Set the interface preference (RFC 9622 §6.2.11) for the interface
/// named `name` ("eth0"; copied). With an interface preference set, the
/// race's paths are the system's interfaces that are up (loopback only if
/// a preference asks for it), bound with SO_BINDTODEVICE (needs
/// CAP_NET_RAW). TAPS_PREFERENCE_NO_PREFERENCE removes it. Several Require
/// entries are alternatives. Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_ARGUMENT (empty or longer than 15 bytes, a bad
/// preference, more than 64 entries).
#[no_mangle]
pub extern "C" fn taps_transport_properties_set_interface(
    props: *mut TransportProperties,
    name: *const c_char,
    preference: c_int,
) -> c_int {
    guard!(fail(Error::Panic), {
        let props = try_mut!(props);
        let name = try_str!(name, Error::InvalidArgument("an interface name is UTF-8"));
        let p = try_ok!(Preference::try_from(preference)).into();
        status(props.0.set_interface(InterfaceMatch::Name(name.to_string()), p).map(|_| ()))
    })
}

/// Set the interface preference for every interface of a type
/// (`interface_type`: a taps_interface_type). Errors as
/// taps_transport_properties_set_interface.
#[no_mangle]
pub extern "C" fn taps_transport_properties_set_interface_type(
    props: *mut TransportProperties,
    interface_type: c_int,
    preference: c_int,
) -> c_int {
    guard!(fail(Error::Panic), {
        let props = try_mut!(props);
        let t = try_ok!(InterfaceType::try_from(interface_type)).into();
        let p = try_ok!(Preference::try_from(preference)).into();
        status(props.0.set_interface(InterfaceMatch::Type(t), p).map(|_| ()))
    })
}
