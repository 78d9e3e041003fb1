//! Connectivity per path (HEv3 -04 §4.1) against a real kernel, in a
//! network namespace of the test's own (a thread that unshares it; the
//! `ip` children inherit it). Skipped without CAP_SYS_ADMIN or `ip`.
//!
//! The namespace has `lo` and a veth pair `cn0`/`cn1` with 192.0.2.2/24 on
//! `cn0` and no default route: a race bound to `cn0` cannot reach
//! 127.0.0.1 (an address of this host, which `cn0` leads off) nor
//! 198.51.100.7 (no route out of `cn0`): each fails at once with
//! `NoCandidates` and the candidate reported as pruned (ENETUNREACH),
//! with no attempt made. The same race on `lo` connects.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};
use taps_racing::api::*;

fn ip(args: &str) -> bool {
    Command::new("ip").args(args.split(' ')).status().map(|s| s.success()).unwrap_or(false)
}

struct Quiet;
impl ConnectionHandler for Quiet {}

/// Race `dst`:`port` bound to interface `ifname`: the connection's error,
/// its report, and the time the loop took.
fn race(ifname: &str, dst: Ipv4Addr, port: u16) -> (Option<Error>, Vec<AttemptReport>, Duration) {
    let lp = EventLoop::new().unwrap();
    let mut ep = RemoteEndpoint::new();
    ep.with_ipv4(dst).with_port(port).unwrap();
    let mut pre = Preconnection::new(&lp, &[ep], None, None).unwrap();
    let mut local = LocalEndpoint::new();
    local.with_interface(ifname).unwrap();
    pre.add_local_endpoint(&local).unwrap();
    let t = Instant::now();
    let conn = pre.initiate(Box::new(Quiet)).unwrap();
    lp.run().unwrap();
    (conn.error(), conn.attempts(), t.elapsed())
}

#[test]
fn a_bound_path_that_cannot_route_fails_at_once_with_the_candidate_pruned() {
    let ran = std::thread::spawn(|| {
        // SAFETY: unshare affects only this thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return false;
        }
        let setup = ["link set lo up", "link add cn0 type veth peer name cn1", "addr add 192.0.2.2/24 dev cn0",
            "link set cn0 up", "link set cn1 up"];
        if !setup.iter().all(|a| ip(a)) {
            return false;
        }
        in_namespace();
        true
    })
    .join()
    .unwrap();
    if !ran {
        eprintln!("skipped: no CAP_SYS_ADMIN (unshare CLONE_NEWNET) or no ip(8)");
    }
}

fn in_namespace() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for dst in [Ipv4Addr::LOCALHOST, Ipv4Addr::new(198, 51, 100, 7)] {
        let (error, report, took) = race("cn0", dst, port);
        assert_eq!(error, Some(Error::NoCandidates), "{dst}: {report:?}");
        assert!(error.unwrap().to_string().contains("no path has a route"));
        assert!(took < Duration::from_secs(1), "{dst}: at once, not after ARP or SYN retries: {took:?}");
        assert_eq!(report.len(), 1, "{report:?}");
        let r = &report[0];
        assert_eq!((r.address.ip(), r.outcome, r.os_error), (IpAddr::V4(dst), AttemptOutcome::Pruned, libc::ENETUNREACH));
        assert_eq!(r.interface.as_deref().map(|s| s.to_str().unwrap()), Some("cn0"));
    }
    // The loopback reaches 127.0.0.1: nothing pruned.
    let (error, report, _) = race("lo", Ipv4Addr::LOCALHOST, port);
    assert_eq!(error, None, "{report:?}");
    assert_eq!(report[0].outcome, AttemptOutcome::Won);
}
