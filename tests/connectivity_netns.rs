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

/// A fake DNS server on 127.0.0.1 (in the namespace of the thread that
/// calls this): every name under taps.test has AAAA ::1 and A 127.0.0.1,
/// and `_PORT._https.svc.taps.test` the HTTPS record `1 tgt.taps.test.`;
/// the address queries it read, as (name, AAAA?) pairs.
fn dns_server() -> std::sync::Arc<std::sync::Mutex<Vec<(String, bool)>>> {
    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::rr::rdata::{svcb::SVCB, A, AAAA, HTTPS};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("connectivity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = format!("nameserver {}\noptions timeout:2 attempts:1\n", udp.local_addr().unwrap());
    std::fs::write(dir.join("resolv.conf"), conf).unwrap();
    std::fs::write(dir.join("nsswitch.conf"), "hosts: files dns\n").unwrap();
    std::fs::write(dir.join("hosts"), "::1 from-hosts.taps.test\n127.0.0.1 from-hosts.taps.test\n").unwrap();
    std::env::set_var("TAPS_RESOLV_CONF", dir.join("resolv.conf"));
    let seen = std::sync::Arc::clone(&asked);
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = udp.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            let question = q.queries[0].clone();
            let name = question.name().to_ascii().to_ascii_lowercase();
            if question.query_type() != RecordType::HTTPS {
                seen.lock().unwrap().push((name.clone(), question.query_type() == RecordType::AAAA));
            }
            let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            m.metadata.recursion_available = true;
            m.add_queries(q.queries.iter().cloned());
            let qname = question.name().clone();
            match question.query_type() {
                RecordType::AAAA => m.add_answer(Record::from_rdata(qname, 60, RData::AAAA(AAAA("::1".parse().unwrap())))),
                RecordType::A => m.add_answer(Record::from_rdata(qname, 60, RData::A(A("127.0.0.1".parse().unwrap())))),
                RecordType::HTTPS if name.ends_with("._https.svc.taps.test.") => {
                    let svcb = SVCB::new(1, Name::from_ascii("tgt.taps.test.").unwrap(), Vec::new());
                    m.add_answer(Record::from_rdata(qname, 60, RData::HTTPS(HTTPS(svcb))))
                }
                _ => &mut m,
            };
            let _ = udp.send_to(&m.to_vec().unwrap(), from);
        }
    });
    asked
}

/// HEv3 -04 §4.1 in a namespace whose one link `qn0` changes: IPv6 only
/// (a global address and its on-link route): AAAA alone; with a NAT64
/// prefix set, A too; IPv4 added (seen through the loop's rtnetlink
/// monitor): both; IPv6 taken away: A alone. A name in the hosts file asks
/// nothing of DNS.
#[test]
fn names_ask_the_families_the_namespace_has_connectivity_in() {
    let ran = std::thread::spawn(|| {
        // SAFETY: unshare affects only this thread.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return false;
        }
        let setup = ["link set lo up", "link add qn0 type veth peer name qn1", "-6 addr add 2001:db8:1::2/64 dev qn0 nodad",
            "link set qn0 up", "link set qn1 up"];
        if !setup.iter().all(|a| ip(a)) {
            return false;
        }
        asks_in_namespace();
        true
    })
    .join()
    .unwrap();
    if !ran {
        eprintln!("skipped: no CAP_SYS_ADMIN (unshare CLONE_NEWNET) or no ip(8)");
    }
}

fn asks_in_namespace() {
    let asked = dns_server();
    let listener = TcpListener::bind("[::1]:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let count = |name: &str| {
        let a = asked.lock().unwrap();
        let of = |aaaa: bool| a.iter().filter(|(n, q)| n == &format!("{name}.") && *q == aaaa).count();
        (of(true), of(false))
    };
    let race_with = |name: &str, https: HttpsPolicy| {
        let mut ep = RemoteEndpoint::new();
        ep.with_hostname(name).unwrap().with_port(port).unwrap();
        let mut pre = Preconnection::new(&lp, &[ep], None, None).unwrap();
        pre.set_https_policy(https);
        let conn = pre.initiate(Box::new(Quiet)).unwrap();
        lp.run().unwrap();
        // The server's thread may still be taking a query the race did
        // not wait for.
        std::thread::sleep(Duration::from_millis(100));
        (conn.error(), count(name))
    };
    let race = |name: &str| race_with(name, HttpsPolicy::Auto);
    // Let the loop take what the kernel announces (the monitor's events).
    let settle = || {
        let _ = lp.run_once(Some(Duration::from_millis(100)));
    };
    assert_eq!(race("v6only.taps.test"), (None, (1, 0)), "IPv6 only, no NAT64 prefix: AAAA alone");
    // An HTTPS record's TargetName follows the same rule.
    assert_eq!(race_with("svc.taps.test", HttpsPolicy::On), (None, (1, 0)), "the host: AAAA alone");
    assert_eq!(count("tgt.taps.test"), (1, 0), "its TargetName: AAAA alone");
    lp.set_pref64(Some(taps_racing::api::nat64::parse_pref64("2001:db8:64::/96").unwrap()));
    assert_eq!(race("nat64.taps.test"), (None, (1, 1)), "IPv6 only with a NAT64 prefix: A too");
    lp.set_pref64(None);
    assert!(ip("addr add 192.0.2.2/24 dev qn0"));
    settle();
    assert_eq!(race("dual.taps.test"), (None, (1, 1)), "dual-stack: both");
    assert!(ip("-6 addr del 2001:db8:1::2/64 dev qn0"));
    settle();
    assert_eq!(race("v4only.taps.test").1, (0, 1), "IPv4 only: A alone");
    assert_eq!(race("from-hosts.taps.test"), (None, (0, 0)), "the hosts file: no DNS, both families from it");
}
