//! HEv3 (draft-ietf-happy-happyeyeballs-v3-04 §4–§7) through the public
//! Rust API: a user resolver answers HTTPS records (RFC 9460) under the
//! manual clock; a mock protocol records every start to the ms; one test
//! connects to a real loopback listener on the record's port.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

/// A protocol that records every call and completes only when told.
#[derive(Default)]
struct Mock {
    log: Mutex<Vec<String>>,
    attempts: Mutex<Vec<ProtocolAttempt>>,
    clock: Mutex<Option<Arc<EventLoop>>>,
}

impl Mock {
    fn at(&self) -> u64 {
        self.clock.lock().unwrap().as_ref().map_or(0, |l| l.now_us() / 1000)
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn attempt(&self, i: usize) -> ProtocolAttempt {
        self.attempts.lock().unwrap()[i].clone()
    }
}

struct Named(Arc<Mock>);

impl Protocol for Named {
    fn start(&self, attempt: ProtocolAttempt, remote: SocketAddr, _: &PathInfo) -> std::result::Result<(), i32> {
        let m = &self.0;
        m.log.lock().unwrap().push(format!("start {} at {}", remote, m.at()));
        m.attempts.lock().unwrap().push(attempt);
        Ok(())
    }
    fn cancel(&self, attempt: &ProtocolAttempt) {
        self.0.log.lock().unwrap().push(format!("cancel #{}", attempt.index()));
    }
    fn close(&self, _: ProtocolConnection) {}
}

/// A resolver that records every query; the test answers them.
#[derive(Default)]
struct Dns {
    addrs: Mutex<Vec<(ResolverQuery, String)>>,
    https: Mutex<Vec<ServiceQuery>>,
    cancelled: Mutex<Vec<String>>,
}

impl Dns {
    /// The address query for `name` of `family`.
    fn addr(&self, name: &str, family: Family) -> ResolverQuery {
        let q = self.addrs.lock().unwrap();
        q.iter().find(|(q, n)| n == name && q.family() == family).unwrap_or_else(|| panic!("no {family:?} query for {name}")).0.clone()
    }
    /// The HTTPS query for `name`.
    fn https(&self, name: &str) -> ServiceQuery {
        self.https.lock().unwrap().iter().find(|q| q.name() == name).unwrap_or_else(|| panic!("no HTTPS query for {name}")).clone()
    }
    fn asked(&self) -> Vec<String> {
        let mut v: Vec<String> = self.https.lock().unwrap().iter().map(|q| format!("HTTPS {}", q.name())).collect();
        v.extend(self.addrs.lock().unwrap().iter().map(|(q, n)| format!("{:?} {n}", q.family())));
        v
    }
}

impl Resolver for Dns {
    fn resolve(&self, query: ResolverQuery, host: &str, _: Family) -> std::result::Result<(), i32> {
        self.addrs.lock().unwrap().push((query, host.to_string()));
        Ok(())
    }
    fn resolve_https(&self, query: ServiceQuery, _: &str) -> std::result::Result<(), i32> {
        self.https.lock().unwrap().push(query);
        Ok(())
    }
    fn cancel(&self, query: &ResolverQuery) {
        let name = self.addrs.lock().unwrap().iter().find(|(q, _)| q.as_raw() == query.as_raw()).map(|(_, n)| n.clone());
        self.cancelled.lock().unwrap().push(format!("{:?} {}", query.family(), name.unwrap_or_default()));
    }
    fn cancel_https(&self, query: &ServiceQuery) {
        self.cancelled.lock().unwrap().push(format!("HTTPS {}", query.name()));
    }
}

fn ep(host: &str, port: u16) -> RemoteEndpoint {
    let mut e = RemoteEndpoint::new();
    e.with_hostname(host).unwrap().with_port(port).unwrap();
    e
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn service(priority: u16, target: &str, params: SvcParams) -> ServiceRecord {
    ServiceRecord { priority, target: target.into(), params }
}

struct Nop;
impl ConnectionHandler for Nop {}

/// A manual-clock loop with the mock protocol (required through the
/// multistreaming property) and the resolver; a Preconnection to
/// `host`:443.
fn setup(host: &str) -> (Arc<EventLoop>, Arc<Mock>, Arc<Dns>, Preconnection) {
    let lp = Arc::new(EventLoop::with_manual_clock().unwrap());
    let mock = Arc::new(Mock::default());
    *mock.clock.lock().unwrap() = Some(Arc::clone(&lp));
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    lp.add_protocol("mock", traits, Arc::new(Named(Arc::clone(&mock)))).unwrap();
    let dns = Arc::new(Dns::default());
    lp.set_resolver(Some(Arc::clone(&dns) as Arc<dyn Resolver>));
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    let pre = Preconnection::new(&lp, &[ep(host, 443)], Some(&props), None).unwrap();
    (lp, mock, dns, pre)
}

fn done(mock: &Arc<Mock>) {
    mock.clock.lock().unwrap().take();
}

fn advance(lp: &EventLoop, us: u64) {
    lp.advance_clock(us).unwrap();
    lp.run().unwrap();
}

#[test]
fn late_https_costs_only_the_resolution_delay() {
    let (lp, mock, dns, pre) = setup("svc.test");
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    assert_eq!(dns.asked(), ["HTTPS svc.test", "V6 svc.test", "V4 svc.test"]);
    dns.addr("svc.test", Family::V6).answer(&ips(&["::1"]));
    dns.addr("svc.test", Family::V4).answer(&ips(&["127.0.0.1"]));
    lp.run().unwrap();
    assert_eq!(mock.log(), Vec::<String>::new(), "HTTPS open: the Resolution Delay runs");
    advance(&lp, 49_999);
    assert_eq!(mock.log(), Vec::<String>::new());
    advance(&lp, 1);
    assert_eq!(mock.log(), ["start [::1]:443 at 50"]);
    // HTTPS late (at 299 ms), with a port: the attempt in flight goes on;
    // the next (at the Connection Attempt Delay) uses the record's port.
    advance(&lp, 249_000);
    dns.https("svc.test").answer(vec![service(1, ".", SvcParams { port: Some(8443), ..SvcParams::default() })], 60);
    lp.run().unwrap();
    assert_eq!(mock.log(), ["start [::1]:443 at 50"]);
    advance(&lp, 1_000);
    assert_eq!(mock.log(), ["start [::1]:443 at 50", "start [::1]:8443 at 300"]);
    let a = conn.attempts();
    assert_eq!((a[0].svc_priority, a[1].svc_priority), (None, Some(1)));
    assert_eq!(a[1].alpn, ["http/1.1"]);
    let report = conn.dns_report();
    let answers: Vec<(RecordType, u64, std::result::Result<usize, i32>)> = report.answers.iter().map(|d| (d.record, d.at_us, d.result)).collect();
    assert_eq!(answers, [(RecordType::Aaaa, 0, Ok(1)), (RecordType::A, 0, Ok(1)), (RecordType::Https, 299_000, Ok(1))]);
    assert_eq!(report.services[0].port, Some(8443));
    assert_eq!(report.services[0].target, "svc.test");
    drop(conn);
    done(&mock);
}

#[test]
fn alias_followed_to_the_target_addresses() {
    let (lp, mock, dns, pre) = setup("alias.test");
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    dns.addr("alias.test", Family::V6).answer(&[]);
    dns.addr("alias.test", Family::V4).answer(&[]);
    dns.https("alias.test").answer(vec![service(0, "cdn.test", SvcParams::default())], 60);
    lp.run().unwrap();
    dns.https("cdn.test").answer(vec![service(1, ".", SvcParams { alpn: vec!["h2".into()], ..SvcParams::default() })], 60);
    lp.run().unwrap();
    assert_eq!(dns.asked(), ["HTTPS alias.test", "HTTPS cdn.test", "V6 alias.test", "V4 alias.test", "V6 cdn.test", "V4 cdn.test"]);
    advance(&lp, 5_000);
    dns.addr("cdn.test", Family::V4).answer(&ips(&["127.0.0.2"]));
    lp.run().unwrap();
    assert_eq!(mock.log(), ["start 127.0.0.2:443 at 5"]);
    mock.attempt(0).ready(None, 1);
    lp.run().unwrap();
    let a = conn.attempts();
    assert_eq!((a[0].outcome, a[0].alpn.clone(), a[0].from_hint), (AttemptOutcome::Won, vec!["h2".to_string(), "http/1.1".to_string()], false));
    assert_eq!(conn.dns_report().services[0].target, "cdn.test");
    drop(conn);
    done(&mock);
}

#[test]
fn two_priorities_from_hints_the_second_wins_when_the_first_fails() {
    let (lp, mock, dns, pre) = setup("two.test");
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    dns.addr("two.test", Family::V6).answer(&[]);
    dns.addr("two.test", Family::V4).answer(&[]);
    let hint = |a: &str| SvcParams { ipv4hint: vec![a.parse().unwrap()], ..SvcParams::default() };
    dns.https("two.test").answer(vec![service(2, "b.test", hint("127.0.0.3")), service(1, "a.test", hint("127.0.0.2"))], 60);
    lp.run().unwrap();
    assert_eq!(mock.log(), ["start 127.0.0.2:443 at 0"]);
    advance(&lp, 20_000);
    mock.attempt(0).failed(libc::ECONNREFUSED);
    lp.run().unwrap();
    assert_eq!(mock.log(), ["start 127.0.0.2:443 at 0", "start 127.0.0.3:443 at 20"]);
    // A's own A answer does not confirm its hint: nothing more to try there.
    dns.addr("a.test", Family::V4).answer(&ips(&["127.0.0.4"]));
    advance(&lp, 10_000);
    mock.attempt(1).ready(None, 2);
    lp.run().unwrap();
    let a = conn.attempts();
    let got: Vec<_> = a.iter().map(|a| (a.address.to_string(), a.svc_priority, a.from_hint, a.outcome)).collect();
    assert_eq!(
        got,
        [
            ("127.0.0.2:443".to_string(), Some(1), true, AttemptOutcome::Failed),
            ("127.0.0.3:443".to_string(), Some(2), true, AttemptOutcome::Won),
        ]
    );
    let report = conn.dns_report();
    assert_eq!(report.services.iter().map(|s| (s.priority, s.target.as_str())).collect::<Vec<_>>(), [(1, "a.test"), (2, "b.test")]);
    assert!(report.answers.iter().any(|d| d.record == RecordType::A && d.name == "a.test" && d.at_us == 30_000));
    // HEv3 §6: answers keep coming into the report for 1 s after the win
    // (at 30 ms), starting nothing; then the open questions are cancelled.
    advance(&lp, 500_000);
    dns.addr("b.test", Family::V4).answer(&ips(&["127.0.0.5"]));
    lp.run().unwrap();
    let last = conn.dns_report().answers.last().cloned().unwrap();
    assert_eq!((last.record, last.name.as_str(), last.at_us, last.result), (RecordType::A, "b.test", 530_000, Ok(1)));
    assert_eq!(mock.log().len(), 2);
    assert_eq!(*dns.cancelled.lock().unwrap(), Vec::<String>::new());
    advance(&lp, 499_999);
    assert_eq!(*dns.cancelled.lock().unwrap(), Vec::<String>::new());
    advance(&lp, 1);
    let mut cancelled = dns.cancelled.lock().unwrap().clone();
    cancelled.sort();
    assert_eq!(cancelled, ["V6 a.test", "V6 b.test"]);
    dns.addr("a.test", Family::V6).answer(&ips(&["::1"]));
    lp.run().unwrap();
    assert_eq!(conn.dns_report().answers.len(), report.answers.len() + 1);
    drop(conn);
    done(&mock);
}

#[test]
fn a_resolver_without_https_keeps_the_rfc_8305_schedule() {
    #[derive(Default)]
    struct Plain(Mutex<Vec<ResolverQuery>>);
    impl Resolver for Plain {
        fn resolve(&self, query: ResolverQuery, _: &str, _: Family) -> std::result::Result<(), i32> {
            self.0.lock().unwrap().push(query);
            Ok(())
        }
    }
    let (lp, mock, _, pre) = setup("plain.test");
    let r = Arc::new(Plain::default());
    lp.set_resolver(Some(Arc::clone(&r) as Arc<dyn Resolver>));
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    r.0.lock().unwrap()[1].answer(&ips(&["127.0.0.1"]));
    lp.run().unwrap();
    advance(&lp, 50_000);
    assert_eq!(mock.log(), ["start 127.0.0.1:443 at 50"]);
    assert_eq!(conn.dns_report().answers.iter().map(|d| d.record).collect::<Vec<_>>(), [RecordType::Https, RecordType::A]);
    drop(conn);
    done(&mock);
}

#[test]
fn https_off_asks_nothing_and_other_ports_follow_the_policy() {
    let (lp, mock, dns, mut pre) = setup("off.test");
    pre.set_https_policy(HttpsPolicy::Off);
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    assert_eq!(dns.asked(), ["V6 off.test", "V4 off.test"]);
    drop(conn);
    assert_eq!(HttpsPolicy::Auto.qname("Example.COM.", 8443), None);
    assert_eq!(HttpsPolicy::On.qname("example.com", 8443).as_deref(), Some("_8443._https.example.com"));
    assert_eq!(HttpsPolicy::On.qname("example.com", 443).as_deref(), Some("example.com"));
    done(&mock);
}

#[test]
fn alpn_mismatch_skips_the_record_and_keeps_the_callers_port() {
    let (lp, mock, dns, mut pre) = setup("h3.test");
    pre.set_alpn(&["h2", "http/1.1"]).unwrap();
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    let h3 = SvcParams { alpn: vec!["h3".into()], no_default_alpn: true, port: Some(8443), ..SvcParams::default() };
    dns.https("h3.test").answer(vec![service(1, ".", h3)], 60);
    dns.addr("h3.test", Family::V6).answer(&ips(&["::1"]));
    lp.run().unwrap();
    assert_eq!(mock.log(), ["start [::1]:443 at 0"]);
    assert_eq!(conn.dns_report().services, []);
    assert_eq!(conn.attempts()[0].alpn, Vec::<String>::new());
    drop(conn);
    done(&mock);
}

#[test]
fn record_port_reaches_a_real_loopback_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::with_manual_clock().unwrap();
    let dns = Arc::new(Dns::default());
    lp.set_resolver(Some(Arc::clone(&dns) as Arc<dyn Resolver>));
    let pre = Preconnection::new(&lp, &[ep("real.test", 443)], None, None).unwrap();
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    dns.https("real.test").answer(vec![service(1, ".", SvcParams { port: Some(port), ..SvcParams::default() })], 60);
    dns.addr("real.test", Family::V6).answer(&[]);
    dns.addr("real.test", Family::V4).answer(&ips(&["127.0.0.1"]));
    for _ in 0..400 {
        lp.run().unwrap();
        if conn.state() != ConnectionState::Establishing {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(conn.state(), ConnectionState::Established);
    assert_eq!(conn.remote_address(), Some(listener.local_addr().unwrap()));
    assert_eq!(conn.attempts()[0].svc_priority, Some(1));
}
