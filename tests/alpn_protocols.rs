//! Per-attempt ALPN ids and ECH configs (draft-ietf-happy-happyeyeballs-v3-04
//! §6.1, §6.3) through the public Rust API: a user resolver answers HTTPS
//! records (RFC 9460); a security stage and a user protocol see, for each
//! attempt, the ALPN set and ECH config of the record its address came
//! with, or the Preconnection's list for an address with no record.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

/// What a protocol or stage saw at each start: (remote, ALPN ids, ECH).
type Offers = Arc<Mutex<Vec<(SocketAddr, Vec<String>, Option<Vec<u8>>)>>>;

/// A protocol that records every start and completes only when told.
#[derive(Default)]
struct Mock {
    seen: Offers,
    attempts: Mutex<Vec<ProtocolAttempt>>,
}

struct Named(Arc<Mock>);

impl Protocol for Named {
    fn start(&self, attempt: ProtocolAttempt, remote: SocketAddr, _: &PathInfo) -> std::result::Result<(), i32> {
        assert_eq!(attempt.alpn_wire().len(), attempt.alpn().iter().map(|a| a.len() + 1).sum::<usize>());
        self.0.seen.lock().unwrap().push((remote, attempt.alpn().to_vec(), attempt.ech_config().map(<[u8]>::to_vec)));
        self.0.attempts.lock().unwrap().push(attempt);
        Ok(())
    }
    fn cancel(&self, _: &ProtocolAttempt) {}
    fn close(&self, _: ProtocolConnection) {}
}

/// A resolver that records every query; the test answers them.
#[derive(Default)]
struct Dns {
    addrs: Mutex<Vec<(ResolverQuery, String)>>,
    https: Mutex<Vec<ServiceQuery>>,
}

impl Dns {
    fn addr(&self, name: &str, family: Family) -> ResolverQuery {
        let q = self.addrs.lock().unwrap();
        q.iter().find(|(q, n)| n == name && q.family() == family).unwrap_or_else(|| panic!("no {family:?} query for {name}")).0.clone()
    }
    fn https(&self, name: &str) -> ServiceQuery {
        self.https.lock().unwrap().iter().find(|q| q.name() == name).unwrap_or_else(|| panic!("no HTTPS query for {name}")).clone()
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
}

fn ep(host: &str, port: u16) -> RemoteEndpoint {
    let mut e = RemoteEndpoint::new();
    e.with_hostname(host).unwrap().with_port(port).unwrap();
    e
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

struct Nop;
impl ConnectionHandler for Nop {}

/// An ECHConfigList's bytes (opaque to the library).
const ECH: &[u8] = &[0x00, 0x08, 0xfe, 0x0d, 0x00, 0x04, 1, 2, 3, 4];

/// alpn=h2 (no default ALPN), an ECH config, the hint `hint`, TargetName
/// `target`.
fn h2_record(target: &str, hint: Option<&str>, port: Option<u16>) -> ServiceRecord {
    let params = SvcParams {
        alpn: vec!["h2".into()],
        no_default_alpn: true,
        ech: Some(ECH.into()),
        ipv4hint: hint.map(|h| vec![h.parse().unwrap()]).unwrap_or_default(),
        port,
        ..SvcParams::default()
    };
    ServiceRecord { priority: 1, target: target.into(), params }
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn user_protocol_gets_the_records_alpn_and_ech_and_the_fallback_the_callers_list() {
    let lp = Arc::new(EventLoop::with_manual_clock().unwrap());
    let mock = Arc::new(Mock::default());
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    lp.add_protocol("mock", traits, Arc::new(Named(Arc::clone(&mock)))).unwrap();
    let dns = Arc::new(Dns::default());
    lp.set_resolver(Some(Arc::clone(&dns) as Arc<dyn Resolver>));
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    let mut pre = Preconnection::new(&lp, &[ep("svc.test", 443)], Some(&props), None).unwrap();
    pre.set_alpn(&["h2", "http/1.1"]).unwrap();
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    // The record's service is a.test (hint 127.0.0.2); the host's own
    // address 127.0.0.1 is the fallback.
    dns.https("svc.test").answer(vec![h2_record("a.test", Some("127.0.0.2"), None)], 60);
    dns.addr("svc.test", Family::V6).answer(&[]);
    dns.addr("svc.test", Family::V4).answer(&ips(&["127.0.0.1"]));
    lp.run().unwrap();
    lp.advance_clock(300_000).unwrap();
    lp.run().unwrap();
    let seen = mock.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("127.0.0.2:443".parse().unwrap(), strings(&["h2"]), Some(ECH.to_vec())),
            ("127.0.0.1:443".parse().unwrap(), strings(&["h2", "http/1.1"]), None),
        ]
    );
    drop(conn);
}

/// A stage that records what each attempt offers and is ready at once.
struct Recorder(Offers);

impl SecurityStage for Recorder {
    fn start(&self, attempt: StageAttempt) -> std::result::Result<(), i32> {
        self.0.lock().unwrap().push((attempt.remote(), attempt.alpn().to_vec(), attempt.ech_config().map(<[u8]>::to_vec)));
        attempt.ready(attempt.alpn().first().map(String::as_str));
        Ok(())
    }
    fn io(&self, _: &StageAttempt, _: bool, _: bool) {}
    fn cancel(&self, _: &StageAttempt) {}
}

/// A staged race to a real loopback listener: `answer` answers the
/// HTTPS question; what the stage saw.
fn staged(answer: impl FnOnce(&ServiceQuery, u16)) -> (Vec<(SocketAddr, Vec<String>, Option<Vec<u8>>)>, Option<String>) {
    staged_with(&["h2", "http/1.1"], &[], answer)
}

/// [`staged`] with the caller's ALPN ids `caller` and TCP serving the ALPN
/// ids `tcp_ids` (none: every candidate).
fn staged_with(caller: &[&str], tcp_ids: &[&str], answer: impl FnOnce(&ServiceQuery, u16)) -> (Vec<(SocketAddr, Vec<String>, Option<Vec<u8>>)>, Option<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::with_manual_clock().unwrap();
    let dns = Arc::new(Dns::default());
    lp.set_resolver(Some(Arc::clone(&dns) as Arc<dyn Resolver>));
    let mut pre = Preconnection::new(&lp, &[ep("tls.test", port)], None, None).unwrap();
    pre.set_https_policy(HttpsPolicy::On);
    pre.set_alpn(caller).unwrap();
    pre.set_protocol_alpn("tcp", tcp_ids).unwrap();
    let seen: Offers = Arc::default();
    pre.set_security_stage(Some(Arc::new(Recorder(Arc::clone(&seen)))));
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    answer(&dns.https(&format!("_{port}._https.tls.test")), port);
    dns.addr("tls.test", Family::V6).answer(&[]);
    dns.addr("tls.test", Family::V4).answer(&ips(&["127.0.0.1"]));
    for _ in 0..400 {
        lp.run().unwrap();
        if conn.state() != ConnectionState::Establishing {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(conn.state(), ConnectionState::Established);
    let seen = seen.lock().unwrap().clone();
    (seen, conn.alpn())
}

#[test]
fn stage_gets_the_records_alpn_and_ech() {
    let (seen, alpn) = staged(|q, port| q.answer(vec![h2_record(".", None, Some(port))], 60));
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].1.clone(), seen[0].2.clone()), (strings(&["h2"]), Some(ECH.to_vec())));
    assert_eq!(alpn.as_deref(), Some("h2"));
}

#[test]
fn stage_gets_only_the_ids_its_protocol_serves() {
    // The record offers h3 and h2 (and http/1.1, its default), the caller
    // all three; TCP serves h2 and http/1.1: its stage offers those, in
    // the caller's order.
    let h3_h2 = |port| {
        let params = SvcParams { alpn: vec!["h3".into(), "h2".into()], port: Some(port), ..SvcParams::default() };
        ServiceRecord { priority: 1, target: ".".into(), params }
    };
    let (seen, alpn) = staged_with(&["h3", "h2", "http/1.1"], &["http/1.1", "h2"], |q, port| q.answer(vec![h3_h2(port)], 60));
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, strings(&["h2", "http/1.1"]));
    assert_eq!(alpn.as_deref(), Some("h2"));
}

#[test]
fn stage_without_a_record_gets_the_callers_list_and_no_ech() {
    let (seen, _) = staged(|q, _| q.answer(Vec::new(), 60));
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].1.clone(), seen[0].2.clone()), (strings(&["h2", "http/1.1"]), None));
}

/// A manual-clock loop with a mock "quic" protocol serving "h3" beside
/// the built-in TCP serving "h2" and "http/1.1": one list of (address,
/// protocol) candidates (HEv3 §5–§6); a Preconnection to `host`:443. The
/// test answers HTTPS with `records` (an empty list: NODATA) and A with
/// 127.0.0.1 (TCP to 127.0.0.1:443 is refused or connects: either way an
/// attempt), then lets 250 ms pass (the mock never completes); which
/// (address, protocol) pairs were attempted, and what "quic" was given.
fn by_alpn(host: &str, records: Vec<ServiceRecord>) -> (Vec<(String, String)>, Vec<Vec<String>>) {
    let (got, offered, _) = by_alpn_report(host, records);
    (got, offered)
}

/// [`by_alpn`], with each attempt's protocol, report ALPN ids and start
/// (µs), in start order.
fn by_alpn_report(host: &str, records: Vec<ServiceRecord>) -> (Vec<(String, String)>, Vec<Vec<String>>, Vec<(String, Vec<String>, u64)>) {
    let lp = Arc::new(EventLoop::with_manual_clock().unwrap());
    let quic = Arc::new(Mock::default());
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: true, multistreaming: true };
    lp.add_protocol("quic", traits, Arc::new(Named(Arc::clone(&quic)))).unwrap();
    let dns = Arc::new(Dns::default());
    lp.set_resolver(Some(Arc::clone(&dns) as Arc<dyn Resolver>));
    let mut pre = Preconnection::new(&lp, &[ep(host, 443)], None, None).unwrap();
    pre.set_racing_type(BranchKind::Protocol, RacingType::Immediate);
    pre.set_protocol_alpn("quic", &["h3"]).unwrap();
    pre.set_protocol_alpn("tcp", &["h2", "http/1.1"]).unwrap();
    assert_eq!(pre.protocol_alpn("quic"), ["h3"]);
    let conn = pre.initiate(Box::new(Nop)).unwrap();
    lp.run().unwrap();
    dns.https(host).answer(records, 60);
    dns.addr(host, Family::V6).answer(&[]);
    dns.addr(host, Family::V4).answer(&ips(&["127.0.0.1"]));
    lp.run().unwrap();
    lp.advance_clock(250_000).unwrap();
    lp.run().unwrap();
    let mut got: Vec<(String, String)> = conn.attempts().iter().map(|a| (a.address.to_string(), a.protocol.to_string_lossy().into_owned())).collect();
    got.sort();
    let offered = quic.seen.lock().unwrap().iter().map(|(_, alpn, _)| alpn.clone()).collect();
    let reported = conn.attempts().iter().map(|a| (a.protocol.to_string_lossy().into_owned(), a.alpn.clone(), a.started_us)).collect();
    drop(conn);
    (got, offered, reported)
}

fn record(ids: &[&str]) -> ServiceRecord {
    let params = SvcParams { alpn: ids.iter().map(|s| s.to_string()).collect(), no_default_alpn: true, ..SvcParams::default() };
    ServiceRecord { priority: 1, target: ".".into(), params }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, p)| (a.to_string(), p.to_string())).collect()
}

#[test]
fn record_h3_h2_attempts_on_both_protocols_one_list() {
    // One list (HEv3 §5–§6): QUIC for h3 at 0, TCP for h2 on the same
    // address after the Connection Attempt Delay.
    let (got, offered, reported) = by_alpn_report("both.test", vec![record(&["h3", "h2"])]);
    assert_eq!(got, pairs(&[("127.0.0.1:443", "quic"), ("127.0.0.1:443", "tcp")]));
    assert_eq!(offered, [strings(&["h3"])]);
    let starts: Vec<(String, u64)> = reported.into_iter().map(|(p, _, at)| (p, at)).collect();
    assert_eq!(starts, [("quic".to_string(), 0), ("tcp".to_string(), 250_000)]);
}

#[test]
fn report_alpn_is_what_each_protocol_was_given() {
    // alpn=h3,h2 (with the default http/1.1): the QUIC attempt got "h3",
    // the TCP one "h2" and "http/1.1", and the report says so, not the
    // service's whole set on both.
    let params = SvcParams { alpn: vec!["h3".into(), "h2".into()], ..SvcParams::default() };
    let (_, offered, reported) = by_alpn_report("report.test", vec![ServiceRecord { priority: 1, target: ".".into(), params }]);
    assert_eq!(offered, [strings(&["h3"])]);
    let reported: Vec<(String, Vec<String>)> = reported.into_iter().map(|(p, alpn, _)| (p, alpn)).collect();
    assert_eq!(reported, [("quic".to_string(), strings(&["h3"])), ("tcp".to_string(), strings(&["h2", "http/1.1"]))]);
}

#[test]
fn record_h2_attempts_only_on_tcp() {
    let (got, offered) = by_alpn("h2.test", vec![record(&["h2"])]);
    assert_eq!(got, pairs(&[("127.0.0.1:443", "tcp")]));
    assert!(offered.is_empty());
}

#[test]
fn fallback_attempts_only_on_tcp() {
    let (got, _) = by_alpn("none.test", Vec::new());
    assert_eq!(got, pairs(&[("127.0.0.1:443", "tcp")]));
}

#[test]
fn set_protocol_alpn_errors() {
    let lp = EventLoop::with_manual_clock().unwrap();
    let mut pre = Preconnection::new(&lp, &[ep("x.test", 443)], None, None).unwrap();
    assert!(matches!(pre.set_protocol_alpn("quic", &["h3"]), Err(Error::InvalidArgument(_))));
    assert!(matches!(pre.set_protocol_alpn("tcp", &[""]), Err(Error::InvalidArgument(_))));
    assert_eq!(pre.protocol_alpn("tcp"), Vec::<String>::new());
    pre.set_protocol_alpn("tcp", &["h2"]).unwrap();
    assert_eq!(pre.protocol_alpn("tcp"), ["h2"]);
    pre.set_protocol_alpn("tcp", &[]).unwrap();
    assert_eq!(pre.protocol_alpn("tcp"), Vec::<String>::new());
}

/// A manual-clock loop with the mock protocol and the resolver; a
/// Preconnection to `host`:443.
fn mock_setup(host: &str) -> (Arc<EventLoop>, Arc<Mock>, Arc<Dns>, Preconnection) {
    let lp = Arc::new(EventLoop::with_manual_clock().unwrap());
    let mock = Arc::new(Mock::default());
    let traits = ProtocolTraits { reliable: true, preserves_msg_boundaries: false, multistreaming: true };
    lp.add_protocol("mock", traits, Arc::new(Named(Arc::clone(&mock)))).unwrap();
    let dns = Arc::new(Dns::default());
    lp.set_resolver(Some(Arc::clone(&dns) as Arc<dyn Resolver>));
    let mut props = TransportProperties::new();
    props.set_multistreaming(Preference::Require);
    let pre = Preconnection::new(&lp, &[ep(host, 443)], Some(&props), None).unwrap();
    (lp, mock, dns, pre)
}

/// Answer `host`'s HTTPS question with a record on port 8443 (hint
/// 127.0.0.2, alpn h2 and an ECH config) and its addresses with nothing;
/// where the mock was asked to connect, and with what.
fn answer_and_starts(lp: &EventLoop, mock: &Mock, dns: &Dns, host: &str) -> Vec<(SocketAddr, Vec<String>, Option<Vec<u8>>)> {
    lp.run().unwrap();
    dns.https(host).answer(vec![h2_record(".", Some("127.0.0.2"), Some(8443))], 60);
    dns.addr(host, Family::V6).answer(&[]);
    lp.run().unwrap();
    mock.seen.lock().unwrap().clone()
}

#[test]
fn pool_races_ask_https_records() {
    let (lp, mock, dns, pre) = mock_setup("pool.test");
    let opts = PoolOptions { buffer_size: 1, race_count: 1, ..Default::default() };
    let pool = ConnectionPool::new(&pre, &opts, None).unwrap();
    let seen = answer_and_starts(&lp, &mock, &dns, "pool.test");
    assert_eq!(seen, [("127.0.0.2:8443".parse().unwrap(), strings(&["h2"]), Some(ECH.to_vec()))]);
    drop(pool);
}

#[test]
fn group_races_ask_https_records() {
    let (lp, mock, dns, pre) = mock_setup("group.test");
    let opts = GroupOptions { size: 1, ..Default::default() };
    let group = ConnectionGroup::new(&pre, &opts, None).unwrap();
    let seen = answer_and_starts(&lp, &mock, &dns, "group.test");
    assert_eq!(seen, [("127.0.0.2:8443".parse().unwrap(), strings(&["h2"]), Some(ECH.to_vec()))]);
    drop(group);
}

#[test]
fn pool_with_https_off_asks_nothing() {
    let (lp, _mock, dns, mut pre) = mock_setup("off.test");
    pre.set_https_policy(HttpsPolicy::Off);
    let pool = ConnectionPool::new(&pre, &PoolOptions { buffer_size: 1, race_count: 1, ..Default::default() }, None).unwrap();
    lp.run().unwrap();
    assert!(dns.https.lock().unwrap().is_empty());
    assert_eq!(dns.addrs.lock().unwrap().len(), 2);
    drop(pool);
}
