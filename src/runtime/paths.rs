//! Local paths (RFC 9623 §4.1, the PATH level): the default path, the
//! local endpoints a Preconnection names, or the system's interfaces
//! (from [`super::sys::interfaces`]) when interface preferences are set.

use crate::vocabulary::endpoint::LocalEndpoint;
use crate::engine::select::{InterfaceType, PathTraits};
use super::sys::interfaces::interfaces;
use std::net::SocketAddr;

/// One path an attempt can take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Path {
    /// Interface to bind to (SO_BINDTODEVICE); `None`: the system routes.
    pub interface: Option<String>,
    /// Interface type, for the selection properties.
    pub kind: InterfaceType,
    /// Local address (and port) to bind to, if a local endpoint gave one.
    pub local: Option<SocketAddr>,
}

impl Path {
    /// The default path: no interface named, nothing bound.
    pub(crate) fn default_path() -> Path {
        Path { interface: None, kind: InterfaceType::Other, local: None }
    }

    pub(crate) fn traits(&self) -> PathTraits {
        PathTraits { name: self.interface.clone(), kind: self.kind }
    }
}

/// The candidate paths of a race, before selection: one per local endpoint
/// when some are given; else every interface that is up (loopback only
/// when an interface preference names it) when there are interface
/// preferences; else the default path alone.
pub(crate) fn candidate_paths(locals: &[LocalEndpoint], interface_prefs: bool, names_loopback: bool) -> Vec<Path> {
    if !locals.is_empty() {
        let ifs = interfaces();
        return locals
            .iter()
            .map(|l| {
                let name = l.interface().map(str::to_string).or_else(|| {
                    l.address().and_then(|a| ifs.iter().find(|i| i.addrs.contains(&a)).map(|i| i.name.clone()))
                });
                let kind = name
                    .as_deref()
                    .and_then(|n| ifs.iter().find(|i| i.name == n))
                    .map_or(InterfaceType::Other, |i| i.kind);
                Path {
                    // Bind to the device only when the endpoint named it.
                    interface: l.interface().map(str::to_string),
                    kind,
                    local: l.address().map(|a| SocketAddr::new(a, l.port().unwrap_or(0))),
                }
            })
            .collect();
    }
    if interface_prefs {
        return interfaces()
            .into_iter()
            .filter(|i| i.kind != InterfaceType::Loopback || names_loopback)
            .map(|i| Path { interface: Some(i.name), kind: i.kind, local: None })
            .collect();
    }
    vec![Path::default_path()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_come_from_locals_then_preferences_then_default() {
        assert_eq!(candidate_paths(&[], false, false), vec![Path::default_path()]);
        let with_lo = candidate_paths(&[], true, true);
        assert!(with_lo.iter().any(|p| p.interface.as_deref() == Some("lo")));
        let without_lo = candidate_paths(&[], true, false);
        assert!(without_lo.iter().all(|p| p.kind != InterfaceType::Loopback));
        let mut l = LocalEndpoint::new();
        l.with_address("127.0.0.1".parse().unwrap());
        let p = candidate_paths(&[l], false, false);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, InterfaceType::Loopback);
        assert_eq!(p[0].interface, None);
        assert_eq!(p[0].local, Some("127.0.0.1:0".parse().unwrap()));
    }
}
