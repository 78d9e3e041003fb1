//! Local paths: the system's interfaces (getifaddrs) and the local
//! endpoints a Preconnection names (RFC 9623 §4.1, the PATH level).

use crate::vocabulary::endpoint::LocalEndpoint;
use crate::engine::select::{InterfaceType, PathTraits};
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::net::{IpAddr, SocketAddr};

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

/// An interface that is up, with its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Interface {
    pub name: String,
    pub kind: InterfaceType,
    pub addrs: Vec<IpAddr>,
}

/// The interfaces that are up and have at least one address, in name order.
pub(crate) fn interfaces() -> Vec<Interface> {
    let mut by_name: BTreeMap<String, (bool, Vec<IpAddr>)> = BTreeMap::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        log::warn!("getifaddrs failed: {}", std::io::Error::last_os_error());
        return Vec::new();
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: cur walks the list from getifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_flags & libc::IFF_UP as u32 == 0 || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name from getifaddrs.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        let loopback = ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0;
        // SAFETY: ifa_addr is NULL or a valid sockaddr of its family.
        if let Some(ip) = unsafe { super::resolver::sockaddr_ip(ifa.ifa_addr) } {
            let e = by_name.entry(name).or_insert((loopback, Vec::new()));
            e.1.push(ip);
        }
    }
    // SAFETY: list came from getifaddrs.
    unsafe { libc::freeifaddrs(list) };
    by_name
        .into_iter()
        .map(|(name, (loopback, addrs))| Interface { kind: interface_type(&name, loopback), name, addrs })
        .collect()
}

/// Loopback by flag; wireless when sysfs has a `wireless` entry; wired for
/// Ethernet-type links backed by a device; anything else (veth, bridges,
/// tunnels) is Other.
fn interface_type(name: &str, loopback: bool) -> InterfaceType {
    if loopback {
        return InterfaceType::Loopback;
    }
    let sys = std::path::Path::new("/sys/class/net").join(name);
    if sys.join("wireless").exists() || sys.join("phy80211").exists() {
        return InterfaceType::Wireless;
    }
    let ether = std::fs::read_to_string(sys.join("type")).map(|t| t.trim() == "1").unwrap_or(false);
    if ether && sys.join("device").exists() {
        return InterfaceType::Wired;
    }
    InterfaceType::Other
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
    fn loopback_is_found_and_typed() {
        let ifs = interfaces();
        let lo = ifs.iter().find(|i| i.name == "lo").expect("lo is up");
        assert_eq!(lo.kind, InterfaceType::Loopback);
        assert!(lo.addrs.contains(&IpAddr::from([127, 0, 0, 1])));
    }

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
