//! Selection properties (RFC 9622 §6.2) applied to branches (RFC 9623
//! §4.1, §5): Prohibit and Require prune, Prefer and Avoid order, in that
//! order. A branch that hits an Avoid is a last resort: it races as
//! failover behind the branches that do not.

/// A selection property's preference (RFC 9622 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// What a protocol offers, for the selection properties.
///
/// cbindgen:ignore
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtocolTraits {
    /// Reliable data transfer (RFC 9622 §6.2.1).
    pub reliable: bool,
    /// Preserves message boundaries (§6.2.2).
    pub preserves_msg_boundaries: bool,
    /// Multistream connections (§6.2.8).
    pub multistreaming: bool,
}

impl ProtocolTraits {
    /// TCP: reliable, a byte stream, one stream.
    pub const TCP: ProtocolTraits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: false };
    /// UDP: unreliable datagrams.
    pub const UDP: ProtocolTraits = ProtocolTraits { reliable: false, preserves_msg_boundaries: true, multistreaming: false };
}

/// Kinds of interface a path can be on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// Which interfaces an interface preference names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InterfaceMatch {
    /// One interface by name ("eth0").
    Name(String),
    /// Every interface of a type.
    Type(InterfaceType),
}

/// A path as the selection properties see it. `name` is `None` for the
/// default path (the system routes; no interface is named).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTraits {
    /// The interface name, if the path is bound to one.
    pub name: Option<String>,
    /// Its type (`Other` for the default path).
    pub kind: InterfaceType,
}

impl InterfaceMatch {
    /// Whether a path matches.
    pub fn matches(&self, path: &PathTraits) -> bool {
        match self {
            InterfaceMatch::Name(n) => path.name.as_deref() == Some(n.as_str()),
            InterfaceMatch::Type(t) => path.name.is_some() && path.kind == *t,
        }
    }
}

/// The selection properties of a Preconnection, with RFC 9622's defaults:
/// reliability Require, preserve message boundaries No Preference,
/// multistreaming Prefer, no interface preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectionProperties {
    /// reliability (§6.2.1).
    pub reliability: Preference,
    /// preserveMsgBoundaries (§6.2.2).
    pub preserve_msg_boundaries: Preference,
    /// multistreaming (§6.2.8).
    pub multistreaming: Preference,
    /// interface (§6.2.11): preferences for interfaces by name or type.
    pub interfaces: Vec<(InterfaceMatch, Preference)>,
}

impl Default for SelectionProperties {
    fn default() -> Self {
        SelectionProperties {
            reliability: Preference::Require,
            preserve_msg_boundaries: Preference::NoPreference,
            multistreaming: Preference::Prefer,
            interfaces: Vec::new(),
        }
    }
}

/// A branch kept by the selection: its index in the input, and whether an
/// Avoid made it a last resort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected {
    /// Index in the list given.
    pub index: usize,
    /// Hit an Avoid: race it as failover behind the others.
    pub avoided: bool,
}

/// Prune and order branches. `hits(i)` lists, for branch `i`, each
/// property as (whether the branch has it, the preference for it).
/// Prohibit: a branch that has it is dropped. Require: a branch that lacks
/// it is dropped. Prefer: more preferred properties first. Avoid: a branch
/// with any avoided property goes last and is marked `avoided`. Equal
/// branches keep their order.
pub fn select(n: usize, hits: impl Fn(usize) -> Vec<(bool, Preference)>) -> Vec<Selected> {
    let mut kept: Vec<(usize, bool, usize)> = Vec::new();
    for i in 0..n {
        let h = hits(i);
        if h.iter().any(|&(has, p)| has && p == Preference::Prohibit) {
            continue;
        }
        if h.iter().any(|&(has, p)| !has && p == Preference::Require) {
            continue;
        }
        let prefer = h.iter().filter(|&&(has, p)| has && p == Preference::Prefer).count();
        let avoid = h.iter().any(|&(has, p)| has && p == Preference::Avoid);
        kept.push((i, avoid, prefer));
    }
    kept.sort_by_key(|&(_, avoid, prefer)| (avoid, std::cmp::Reverse(prefer)));
    kept.into_iter().map(|(index, avoided, _)| Selected { index, avoided }).collect()
}

/// Select protocols by reliability, message boundaries and multistreaming.
pub fn select_protocols(props: &SelectionProperties, protocols: &[ProtocolTraits]) -> Vec<Selected> {
    select(protocols.len(), |i| {
        let t = protocols[i];
        vec![
            (t.reliable, props.reliability),
            (t.preserves_msg_boundaries, props.preserve_msg_boundaries),
            (t.multistreaming, props.multistreaming),
        ]
    })
}

/// Select paths by the interface preferences. Several Require entries
/// name alternatives: a path must match one of them.
pub fn select_paths(props: &SelectionProperties, paths: &[PathTraits]) -> Vec<Selected> {
    let required: Vec<&InterfaceMatch> =
        props.interfaces.iter().filter(|(_, p)| *p == Preference::Require).map(|(m, _)| m).collect();
    select(paths.len(), |i| {
        let path = &paths[i];
        let mut h: Vec<(bool, Preference)> = props
            .interfaces
            .iter()
            .filter(|(_, p)| *p != Preference::Require)
            .map(|(m, p)| (m.matches(path), *p))
            .collect();
        if !required.is_empty() {
            h.push((required.iter().any(|m| m.matches(path)), Preference::Require));
        }
        h
    })
}
