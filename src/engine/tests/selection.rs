//! Selection properties (RFC 9622 §6.2, RFC 9623 §4.1): Prohibit, Require,
//! Prefer and Avoid prune and order protocol and path branches.

use crate::engine::select::*;

fn order(sel: &[Selected]) -> Vec<(usize, bool)> {
    sel.iter().map(|s| (s.index, s.avoided)).collect()
}

const QUIC: ProtocolTraits = ProtocolTraits { reliable: true, preserves_msg_boundaries: true, multistreaming: true };

fn path(name: &str, kind: InterfaceType) -> PathTraits {
    PathTraits { name: Some(name.into()), kind }
}

#[test]
fn defaults_keep_reliable_protocols_and_prefer_multistreaming() {
    let p = SelectionProperties::default();
    // tcp, udp, quic: UDP is not reliable (Require), QUIC multistreams (Prefer).
    assert_eq!(order(&select_protocols(&p, &[ProtocolTraits::TCP, ProtocolTraits::UDP, QUIC])), vec![(2, false), (0, false)]);
}

#[test]
fn prohibit_then_require_then_prefer_then_avoid() {
    let p = SelectionProperties {
        reliability: Preference::NoPreference,
        preserve_msg_boundaries: Preference::Prohibit,
        ..Default::default()
    };
    assert_eq!(order(&select_protocols(&p, &[ProtocolTraits::TCP, ProtocolTraits::UDP, QUIC])), vec![(0, false)]);
    let p = SelectionProperties { reliability: Preference::Avoid, multistreaming: Preference::NoPreference, ..Default::default() };
    assert_eq!(
        order(&select_protocols(&p, &[ProtocolTraits::TCP, ProtocolTraits::UDP, QUIC])),
        vec![(1, false), (0, true), (2, true)]
    );
    let p = SelectionProperties { reliability: Preference::Prohibit, ..Default::default() };
    assert_eq!(order(&select_protocols(&p, &[ProtocolTraits::TCP, ProtocolTraits::UDP])), vec![(1, false)]);
    let p = SelectionProperties { reliability: Preference::Require, multistreaming: Preference::Require, ..Default::default() };
    assert_eq!(order(&select_protocols(&p, &[ProtocolTraits::TCP, QUIC])), vec![(1, false)]);
}

#[test]
fn interfaces_by_name_and_type() {
    let paths = [path("eth0", InterfaceType::Wired), path("wlan0", InterfaceType::Wireless), path("eth1", InterfaceType::Wired)];
    let mut p = SelectionProperties::default();
    p.interfaces.push((InterfaceMatch::Type(InterfaceType::Wireless), Preference::Prefer));
    assert_eq!(order(&select_paths(&p, &paths)), vec![(1, false), (0, false), (2, false)]);
    p.interfaces = vec![(InterfaceMatch::Name("eth0".into()), Preference::Require), (InterfaceMatch::Name("eth1".into()), Preference::Require)];
    assert_eq!(order(&select_paths(&p, &paths)), vec![(0, false), (2, false)]);
    p.interfaces = vec![(InterfaceMatch::Type(InterfaceType::Wired), Preference::Prohibit)];
    assert_eq!(order(&select_paths(&p, &paths)), vec![(1, false)]);
    p.interfaces = vec![(InterfaceMatch::Name("eth0".into()), Preference::Avoid)];
    assert_eq!(order(&select_paths(&p, &paths)), vec![(1, false), (2, false), (0, true)]);
}

#[test]
fn the_default_path_matches_no_interface() {
    let default = PathTraits { name: None, kind: InterfaceType::Other };
    assert!(!InterfaceMatch::Type(InterfaceType::Other).matches(&default));
    let p = SelectionProperties::default();
    assert_eq!(order(&select_paths(&p, &[default])), vec![(0, false)]);
}
