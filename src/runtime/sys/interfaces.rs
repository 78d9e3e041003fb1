//! The system's interfaces that are up, with their addresses (getifaddrs)
//! and their types (loopback by flag; wireless or wired from sysfs).

use crate::engine::select::InterfaceType;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::net::IpAddr;

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
        if let Some(ip) = unsafe { crate::runtime::resolver::sockaddr_ip(ifa.ifa_addr) } {
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
}
