//! Connectivity per path (HEv3 -04 §4.1): which address families a
//! race's paths can send with, which queries its names ask, and which
//! path × destination pairs are pruned before the race because they
//! cannot route.
//!
//! # The state and when it is read
//!
//! A loop keeps the kernel's addresses and routes as a
//! [`Reach`](super::sys::reach::Reach) (two rtnetlink dumps, see
//! [`super::sys::reach`] for what counts and why dumps rather than the
//! source-address probe). They are read at the first race, and again at
//! the next race after the kernel announced a change: an rtnetlink
//! [`Monitor`] (link, address and route groups), opened with the loop, is
//! registered on the loop's poller, and the loop marks the state stale
//! when it is readable.
//! On a steady network a race costs no system call here. Without a
//! monitor (the kernel refused the socket) the state is read again at
//! most once a second.
//!
//! # Queries (§4.1)
//!
//! AAAA is asked only with IPv6 connectivity, A only with IPv4
//! connectivity or a NAT64 prefix (the caller's, or one discovered: on an
//! IPv6-only host the race has already waited for discovery's first
//! round). When neither family has connectivity both are asked, as
//! before: nothing is lost, and a namespace with only `lo`, or a test's
//! DNS server on the loopback, keeps working. This applies to the
//! library's DNS client; a name answered by the hosts file or RFC 6761
//! (`localhost`), a loop whose addresses come from getaddrinfo (nsswitch
//! with other sources than `files dns`), and a user's resolver are asked
//! both families as before (glibc's own AI_ADDRCONFIG is not used either:
//! it counts the loopback). Pruning handles what they give.
//!
//! # Pruning (path × destination)
//!
//! A candidate is not attempted on a path when: the path's local address
//! is of the other family (`EAFNOSUPPORT`); the path is bound to an
//! interface and the kernel has no route to the destination out of it, or
//! the destination is an address of this host and the interface leads off
//! it (a route lookup with `RTA_OIF`, [`path_route`]; `ENETUNREACH`,
//! `EHOSTUNREACH`, `EACCES` for a prohibit route, `ENODEV`); or the path is
//! not bound, the family has no connectivity, and the kernel has no route
//! to the destination (so a loopback destination still races). Only in
//! races whose protocols are the library's TCP and UDP: a user protocol
//! may reach its addresses by other means than the kernel's routes. Route
//! lookups are remembered until the network changes. A candidate no path
//! of its race can take is left out of the race, and the report lists it
//! with the outcome `Pruned` and the errno as its reason; a race left
//! with nothing fails at once with `NoCandidates`. In a race over several
//! paths a candidate that only some paths can take is kept, and its
//! attempts on the others fail at their start.

use super::sys::netlink::{path_route, Monitor, NetEvent, NoRoute};
use super::sys::reach::{read_reach, Reach, V4, V6};
use super::sync::Mutex;
use crate::engine::tree::PathBranch;
use crate::engine::{Candidate, Micros};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the state is kept without a monitor.
const NO_MONITOR_KEEP: Duration = Duration::from_secs(1);
/// How many route lookups are remembered.
const ROUTE_MEMO_SIZE: usize = 64;

/// A loop's connectivity state (see the module docs).
pub(crate) struct Connectivity {
    inner: Mutex<Inner>,
    /// The kernel announced a change since the state was read.
    stale: AtomicBool,
}

#[derive(Default)]
struct Inner {
    /// `None` before the first read, or when it failed (then every
    /// family counts as connected).
    reach: Option<Reach>,
    read_at: Option<Instant>,
    monitor: Option<Monitor>,
    /// Route lookups since the state was read: destination, interface
    /// index (0: any), errno of a path that cannot route.
    routes: Vec<(IpAddr, u32, Option<i32>)>,
    /// Interface names and their indexes since the state was read.
    indexes: Vec<(String, u32)>,
}

/// What a race learns at its start: the families its names ask (`[A,
/// AAAA]`), and its pruning when any path × destination pair may be
/// pruned (`None` on a dual-stack network's default path).
pub(crate) struct RaceReach {
    pub ask: [bool; 2],
    pub pruning: Option<Box<Pruning>>,
}

impl Connectivity {
    /// The families the race's `paths` have connectivity in and its
    /// pruning; reads the state again first when it is stale. `kernel`
    /// says whether a protocol id is the library's TCP or UDP: a race
    /// with a user protocol (which may not use the kernel's routes at
    /// all: a tunnel, a proxy, a test's mock) prunes nothing.
    pub(crate) fn for_race(&self, paths: &[super::race::RacePath], branches: &[PathBranch], kernel: impl Fn(usize) -> bool) -> RaceReach {
        let mut inner = self.inner.lock();
        self.refresh(&mut inner);
        // No allocation unless something may be pruned (the common case:
        // the default path on a dual-stack network).
        let (mut reach, mut prunable) = ([false; 2], false);
        for p in paths {
            let c = inner.path_check(&p.path);
            reach[V4] |= c.reach[V4];
            reach[V6] |= c.reach[V6];
            prunable |= !(c.reach == [true, true] && c.oif.is_none() && c.local.is_none());
        }
        prunable &= branches.iter().all(|b| b.protocols.iter().all(|p| kernel(p.protocol)));
        let pruning = prunable.then(|| {
            let checks = paths.iter().map(|p| inner.path_check(&p.path)).collect();
            let leaves = branches.iter().flat_map(|b| b.protocols.iter().map(move |p| (b.path, p.protocol))).collect();
            Box::new(Pruning { paths: checks, leaves, list: Vec::new() })
        });
        RaceReach { ask: if reach == [false, false] { [true, true] } else { reach }, pruning }
    }

    /// A loop's state, its monitor registered on the loop's poller now
    /// (so that no change is missed; the state itself is read at the
    /// first race).
    pub(crate) fn new(registry: &mio::Registry) -> Connectivity {
        let monitor = match Monitor::open() {
            Ok(m) => {
                let fd = m.fd();
                match registry.register(&mut mio::unix::SourceFd(&fd), super::MONITOR, mio::Interest::READABLE) {
                    Ok(()) => Some(m),
                    Err(e) => {
                        log::debug!("connectivity: cannot watch rtnetlink ({e}): the state is read once a second");
                        None
                    }
                }
            }
            Err(e) => {
                log::debug!("connectivity: no rtnetlink monitor ({e}): the state is read once a second");
                None
            }
        };
        Connectivity { inner: Mutex::new(Inner { monitor, ..Inner::default() }), stale: AtomicBool::new(false) }
    }

    /// Read the state again when it is stale, not read yet, or (without
    /// a monitor) older than [`NO_MONITOR_KEEP`].
    fn refresh(&self, inner: &mut Inner) {
        let stale = self.stale.swap(false, Ordering::AcqRel);
        let expired = inner.monitor.is_none() && inner.read_at.is_none_or(|t| t.elapsed() >= NO_MONITOR_KEEP);
        if !(stale || expired || inner.read_at.is_none()) {
            return;
        }
        inner.reach = read_reach().map_err(|e| log::debug!("connectivity: the dumps failed (errno {e})")).ok();
        inner.read_at = Some(Instant::now());
        inner.routes.clear();
        inner.indexes.clear();
        if let Some(r) = &inner.reach {
            log::debug!("connectivity (HEv3 -04 §4.1): IPv4 {}, IPv6 {}", r.host(V4), r.host(V6));
        }
    }

    /// The loop's poller says the monitor is readable: read what it has;
    /// a link, address or route change makes the state stale. Called on
    /// the loop's thread.
    pub(crate) fn on_readable(&self) {
        let inner = self.inner.lock();
        let Some(m) = &inner.monitor else { return };
        match m.read() {
            Ok(events) => {
                if events.iter().any(|e| !matches!(e, NetEvent::Pref64 { .. } | NetEvent::BadPref64 { .. })) {
                    self.stale.store(true, Ordering::Release);
                }
            }
            Err(e) => {
                log::debug!("connectivity: rtnetlink read: {e}");
                self.stale.store(true, Ordering::Release);
            }
        }
    }

    /// The monitor's descriptor, for tests.
    #[cfg(test)]
    fn monitor_fd(&self) -> Option<i32> {
        self.inner.lock().monitor.as_ref().map(|m| m.fd())
    }

    /// Leave out of `candidates` what no path of the race can route,
    /// recorded in `pruning` at `at` (µs since the race started); nothing
    /// to do without a pruning.
    pub(crate) fn prune(&self, pruning: Option<&mut Pruning>, candidates: &mut Vec<Candidate>, at: Micros) {
        if let Some(p) = pruning {
            p.filter(candidates, at, |ip, oif| self.route(ip, oif));
        }
    }

    /// Why a path out of `oif` (any: `None`) cannot reach `ip`, `None`
    /// when it can; remembered until the state is read again.
    pub(crate) fn route(&self, ip: IpAddr, oif: Option<u32>) -> Option<i32> {
        let mut inner = self.inner.lock();
        let key = oif.unwrap_or(0);
        if let Some(&(_, _, why)) = inner.routes.iter().find(|(a, o, _)| *a == ip && *o == key) {
            return why;
        }
        let why = match path_route(ip, oif) {
            Ok(_) => None,
            Err(NoRoute::LocalOffPath) => Some(libc::ENETUNREACH),
            Err(NoRoute::Errno(e)) if is_no_route(e) => Some(e),
            Err(NoRoute::Errno(_)) => None, // the lookup itself failed: leave it to the attempt
        };
        if inner.routes.len() >= ROUTE_MEMO_SIZE {
            inner.routes.remove(0);
        }
        inner.routes.push((ip, key, why));
        why
    }
}

/// The errnos of a route lookup that mean the path cannot route.
fn is_no_route(e: i32) -> bool {
    matches!(e, libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EPERM | libc::ENODEV)
}

impl Inner {
    /// What one path can send with.
    fn path_check(&mut self, path: &super::paths::Path) -> PathCheck {
        let oif = path.interface.as_deref().map(|name| self.index(name));
        let local = path.local.map(|l| if l.is_ipv6() { V6 } else { V4 });
        let mut reach = match (&self.reach, oif) {
            (None, _) => [true, true],
            (Some(r), Some(Some(i))) => [r.via(i, V4), r.via(i, V6)],
            (Some(_), Some(None)) => [false, false],
            (Some(r), None) => [r.host(V4), r.host(V6)],
        };
        if let Some(f) = local {
            reach[1 - f] = false;
        }
        PathCheck { oif: oif.map(|i| i.unwrap_or(0)), local, reach }
    }

    /// The index of interface `name`, `None` when it does not exist.
    fn index(&mut self, name: &str) -> Option<u32> {
        if let Some(&(_, i)) = self.indexes.iter().find(|(n, _)| n == name) {
            return (i != 0).then_some(i);
        }
        let i = std::ffi::CString::new(name).map_or(0, |c| {
            // SAFETY: a NUL-terminated name.
            unsafe { libc::if_nametoindex(c.as_ptr()) }
        });
        self.indexes.push((name.to_owned(), i));
        (i != 0).then_some(i)
    }
}

/// What a path of a race can send with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PathCheck {
    /// The index of the interface it is bound to (0: one that does not
    /// exist); `None` when it is not bound to one.
    pub oif: Option<u32>,
    /// The family of its local address, when it has one.
    pub local: Option<usize>,
    /// Connectivity per family (`[IPv4, IPv6]`, §4.1).
    pub reach: [bool; 2],
}

impl PathCheck {
    /// Why this path cannot take `addr` (an errno), `None` when it may;
    /// `route` looks up the kernel's route (see [`Connectivity::route`]).
    pub(crate) fn why_not(&self, addr: SocketAddr, route: &mut impl FnMut(IpAddr, Option<u32>) -> Option<i32>) -> Option<i32> {
        let family = if addr.is_ipv6() { V6 } else { V4 };
        if self.local.is_some_and(|f| f != family) {
            return Some(libc::EAFNOSUPPORT);
        }
        match self.oif {
            Some(0) => Some(libc::ENODEV),
            Some(oif) => route(addr.ip(), Some(oif)),
            None if self.reach[family] => None,
            None => route(addr.ip(), None),
        }
    }
}

/// A candidate left out of a race: the address, the path and protocol ids
/// of the branch that would have attempted it, why (an errno), and when
/// (µs since the race started).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub addr: SocketAddr,
    pub path: usize,
    pub protocol: usize,
    pub errno: i32,
    pub at: Micros,
}

/// A race's pruning: its paths' checks, its branches, and what it left out.
#[derive(Debug)]
pub(crate) struct Pruning {
    paths: Vec<PathCheck>,
    /// (path id, protocol id) of each branch.
    leaves: Vec<(usize, usize)>,
    pub(crate) list: Vec<Pruned>,
}

impl Pruning {
    /// A pruning over these paths (by path id) and branches (for tests).
    #[cfg(test)]
    pub(crate) fn new(paths: Vec<PathCheck>, leaves: Vec<(usize, usize)>) -> Pruning {
        Pruning { paths, leaves, list: Vec::new() }
    }

    /// Take out of `candidates` those no path can take, each recorded per
    /// branch with its path's reason, at `at` (µs since the race started).
    pub(crate) fn filter(&mut self, candidates: &mut Vec<Candidate>, at: Micros, mut route: impl FnMut(IpAddr, Option<u32>) -> Option<i32>) {
        let Pruning { paths, leaves, list } = self;
        candidates.retain(|c| {
            let why: Vec<Option<i32>> = paths.iter().map(|p| p.why_not(c.addr, &mut route)).collect();
            if why.is_empty() || why.iter().any(Option::is_none) {
                return true;
            }
            for &(path, protocol) in leaves.iter() {
                let errno = why.get(path).copied().flatten().unwrap_or(libc::ENETUNREACH);
                log::info!("{} not attempted on path {path}: {}", c.addr, std::io::Error::from_raw_os_error(errno));
                list.push(Pruned { addr: c.addr, path, protocol, errno, at });
            }
            false
        });
    }
}

/// The families to ask for a name (`[A, AAAA]`, HEv3 -04 §4.1): AAAA with
/// IPv6 connectivity, A with IPv4 connectivity or a NAT64 prefix; both
/// when `reach` has neither (see [`Connectivity::for_race`]).
pub(crate) fn ask_families(reach: [bool; 2], pref64: bool) -> [bool; 2] {
    if reach == [false, false] {
        return [true, true];
    }
    [reach[V4] || pref64, reach[V6]]
}

/// Whether the DNS client answers `host` without DNS (RFC 6761
/// `localhost`, `.invalid`, or the hosts file): such names ask both
/// families whatever the connectivity.
pub(crate) fn answered_locally(dns: &super::dns::DnsClient, host: &str) -> bool {
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    lower == "localhost" || lower.ends_with(".localhost") || lower == "invalid" || lower.ends_with(".invalid") || dns.hosts.lookup(&lower).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn cand(s: &str) -> Candidate {
        Candidate { addr: sa(s), source: None }
    }

    #[test]
    fn queries_follow_connectivity_and_nat64() {
        // [A, AAAA] for [IPv4, IPv6] connectivity.
        assert_eq!(ask_families([true, true], false), [true, true]);
        assert_eq!(ask_families([true, false], false), [true, false], "IPv4-only: no AAAA");
        assert_eq!(ask_families([false, true], false), [false, true], "IPv6-only without a prefix: no A");
        assert_eq!(ask_families([false, true], true), [true, true], "IPv6-only with NAT64: A too");
        assert_eq!(ask_families([false, false], false), [true, true], "neither: both, as before");
    }

    #[test]
    fn an_unbound_path_with_connectivity_looks_nothing_up() {
        let p = PathCheck { oif: None, local: None, reach: [true, true] };
        let mut route = |_: IpAddr, _: Option<u32>| -> Option<i32> { panic!("no lookup") };
        assert_eq!(p.why_not(sa("192.0.2.1:80"), &mut route), None);
        assert_eq!(p.why_not(sa("[2001:db8::1]:80"), &mut route), None);
    }

    #[test]
    fn a_family_without_connectivity_asks_the_kernel_per_destination() {
        let p = PathCheck { oif: None, local: None, reach: [true, false] };
        let mut asked = Vec::new();
        let mut route = |ip: IpAddr, oif: Option<u32>| {
            asked.push((ip, oif));
            (!ip.is_loopback()).then_some(libc::ENETUNREACH)
        };
        assert_eq!(p.why_not(sa("[2001:db8::1]:80"), &mut route), Some(libc::ENETUNREACH));
        assert_eq!(p.why_not(sa("[::1]:80"), &mut route), None, "the loopback still races");
        assert_eq!(p.why_not(sa("192.0.2.1:80"), &mut route), None);
        assert_eq!(asked.len(), 2);
    }

    #[test]
    fn a_bound_path_asks_out_of_its_interface_and_a_local_address_keeps_its_family() {
        let p = PathCheck { oif: Some(7), local: None, reach: [true, true] };
        let mut route = |ip: IpAddr, oif: Option<u32>| {
            assert_eq!(oif, Some(7));
            ip.is_loopback().then_some(libc::ENETUNREACH)
        };
        assert_eq!(p.why_not(sa("127.0.0.1:80"), &mut route), Some(libc::ENETUNREACH));
        assert_eq!(p.why_not(sa("192.0.2.1:80"), &mut route), None);
        let gone = PathCheck { oif: Some(0), local: None, reach: [false, false] };
        assert_eq!(gone.why_not(sa("192.0.2.1:80"), &mut route), Some(libc::ENODEV));
        let v4 = PathCheck { oif: None, local: Some(V4), reach: [true, false] };
        assert_eq!(v4.why_not(sa("[2001:db8::1]:80"), &mut route), Some(libc::EAFNOSUPPORT));
    }

    #[test]
    fn a_candidate_is_pruned_only_when_no_path_takes_it_with_each_branch_reported() {
        let bound = PathCheck { oif: Some(3), local: None, reach: [true, true] };
        let other = PathCheck { oif: Some(4), local: None, reach: [true, true] };
        // Path 0 (interface 3) with two protocols, path 1 (interface 4).
        let mut p = Pruning::new(vec![bound, other], vec![(0, 0), (0, 1), (1, 0)]);
        let route = |ip: IpAddr, oif: Option<u32>| match (ip.to_string().as_str(), oif) {
            ("127.0.0.1", _) => Some(libc::ENETUNREACH),
            ("192.0.2.9", Some(3)) => Some(libc::EHOSTUNREACH),
            _ => None,
        };
        let mut answer = vec![cand("127.0.0.1:80"), cand("192.0.2.9:80"), cand("192.0.2.1:80")];
        p.filter(&mut answer, 40, route);
        assert_eq!(answer, vec![cand("192.0.2.9:80"), cand("192.0.2.1:80")], "192.0.2.9 is still routed by path 1");
        let want: Vec<_> = [(0, 0), (0, 1), (1, 0)]
            .iter()
            .map(|&(path, protocol)| Pruned { addr: sa("127.0.0.1:80"), path, protocol, errno: libc::ENETUNREACH, at: 40 })
            .collect();
        assert_eq!(p.list, want);
    }

    #[test]
    fn the_state_is_read_once_and_again_after_a_change() {
        let poll = mio::Poll::new().unwrap();
        let c = Connectivity::new(poll.registry());
        let default = [super::super::race::RacePath::new(super::super::paths::Path::default_path())];
        let first = c.for_race(&default, &[], |_| true);
        let read_at = c.inner.lock().read_at;
        assert!(read_at.is_some());
        assert!(c.monitor_fd().is_some(), "the monitor is open");
        let again = c.for_race(&default, &[], |_| true);
        assert_eq!(first.ask, again.ask);
        assert_eq!(c.inner.lock().read_at, read_at, "a steady network: not read again");
        c.stale.store(true, Ordering::Release);
        c.for_race(&default, &[], |_| true);
        assert_ne!(c.inner.lock().read_at, read_at, "read again after a change");
    }
}
