//! The library's DNS client end to end, through the public Rust API: a
//! race by name resolved against a fake DNS server on a loopback port
//! (the loop reads its resolv.conf from `TAPS_RESOLV_CONF`, the testing
//! aid of docs/guide/dns.md), connecting to a loopback listener, and the
//! resolution cache keeping the answers for their TTL.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{svcb::SvcParamKey, svcb::SvcParamValue, svcb::SVCB, A, HTTPS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use taps_racing::api::*;

/// The fake server: the queries it read (name, type).
struct Server {
    asked: Mutex<Vec<(String, RecordType)>>,
}

impl Server {
    /// How many queries of `rtype` for `name` (lower case, final dot) it read.
    fn count(&self, name: &str, rtype: RecordType) -> usize {
        self.asked.lock().unwrap().iter().filter(|(n, t)| n == name && *t == rtype).count()
    }

    /// (AAAA, A) queries for `name`.
    fn both(&self, name: &str) -> (usize, usize) {
        (self.count(name, RecordType::AAAA), self.count(name, RecordType::A))
    }
}

fn name(s: &str) -> Name {
    let mut n = Name::from_ascii(s).unwrap();
    n.set_fqdn(true);
    n
}

/// The port the HTTPS records of svc.taps.test name (a test's listener).
static SERVICE_PORT: AtomicU16 = AtomicU16::new(0);

/// The names with A 127.0.0.1 (TTL 1 s) and no AAAA (SOA minimum 1 s).
const NAMES: [&str; 3] = ["ttl1.taps.test", "svc.taps.test", "alias.taps.test"];

/// The reply to `q`: the [`NAMES`] have A 127.0.0.1; svc.taps.test has
/// the HTTPS record `1 . port=SERVICE_PORT`, alias.taps.test `0
/// svc.taps.test.`; every other name is NXDOMAIN.
fn reply(q: &Message) -> Vec<u8> {
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_available = true;
    m.add_queries(q.queries.iter().cloned());
    let question = &q.queries[0];
    let qname = question.name().clone();
    if !NAMES.iter().any(|n| qname == name(n)) {
        m.metadata.response_code = ResponseCode::NXDomain;
    } else if question.query_type() == RecordType::A {
        m.add_answer(Record::from_rdata(qname, 1, RData::A(A("127.0.0.1".parse().unwrap()))));
    } else if question.query_type() == RecordType::HTTPS && qname == name("svc.taps.test") {
        let port = SERVICE_PORT.load(Ordering::Relaxed);
        let svcb = SVCB::new(1, Name::root(), vec![(SvcParamKey::Port, SvcParamValue::Port(port))]);
        m.add_answer(Record::from_rdata(qname, 1, RData::HTTPS(HTTPS(svcb))));
    } else if question.query_type() == RecordType::HTTPS && qname == name("alias.taps.test") {
        let svcb = SVCB::new(0, name("svc.taps.test"), Vec::new());
        m.add_answer(Record::from_rdata(qname, 1, RData::HTTPS(HTTPS(svcb))));
    }
    if m.answers.is_empty() {
        let soa = SOA::new(name("ns.taps.test"), name("admin.taps.test"), 1, 60, 60, 60, 1);
        m.add_authority(Record::from_rdata(name("taps.test"), 1, RData::SOA(soa)));
    }
    m.to_vec().unwrap()
}

/// Start the fake server once and point every loop of this test binary
/// at it.
fn server() -> &'static Server {
    static SERVER: OnceLock<&'static Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server: &'static Server = Box::leak(Box::new(Server { asked: Mutex::new(Vec::new()) }));
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dns-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = format!("nameserver {}\noptions timeout:2 attempts:1\n", udp.local_addr().unwrap());
        std::fs::write(dir.join("resolv.conf"), conf).unwrap();
        std::fs::write(dir.join("nsswitch.conf"), "hosts: files dns\n").unwrap();
        std::fs::write(dir.join("hosts"), "127.0.0.1 from-hosts.taps.test\n").unwrap();
        std::env::set_var("TAPS_RESOLV_CONF", dir.join("resolv.conf"));
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            loop {
                let Ok((n, from)) = udp.recv_from(&mut buf) else { continue };
                let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
                let asked = (q.queries[0].name().to_ascii().to_ascii_lowercase(), q.queries[0].query_type());
                server.asked.lock().unwrap().push(asked);
                let _ = udp.send_to(&reply(&q), from);
            }
        });
        server
    })
}

#[derive(Default, Debug)]
struct Seen {
    ready: usize,
    error: Option<Error>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl ConnectionHandler for Recorder {
    fn ready(&mut self, _: &Connection) {
        self.0.lock().unwrap().ready += 1;
    }
    fn establishment_error(&mut self, c: &Connection) {
        self.0.lock().unwrap().error = c.error();
    }
}

/// Race to `host`:`port` on `lp` until it ends: what the handler saw and
/// the connection.
fn race(lp: &EventLoop, host: &str, port: u16) -> (Seen, Connection) {
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname(host).unwrap().with_port(port).unwrap();
    let pre = Preconnection::new(lp, &[ep], None, None).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let conn = pre.initiate(Box::new(Recorder(Arc::clone(&seen)))).unwrap();
    lp.run().unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    (seen, conn)
}

#[test]
fn a_race_by_name_uses_the_dns_client_and_the_cache_honours_a_short_ttl() {
    let s = server();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    const NAME: &str = "ttl1.taps.test.";

    let (seen, conn) = race(&lp, "ttl1.taps.test", port);
    assert_eq!(seen.ready, 1, "{:?} {:?}", seen.error, conn.attempts());
    assert_eq!(conn.remote_address().unwrap(), format!("127.0.0.1:{port}").parse().unwrap());
    assert_eq!(s.both(NAME), (1, 1), "AAAA and A asked once each");
    drop(conn);

    // Within the TTL: from the cache, nothing asked.
    let started = Instant::now();
    let (seen, _conn) = race(&lp, "TTL1.taps.test", port);
    assert_eq!(seen.ready, 1);
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(s.both(NAME), (1, 1), "answered from the cache");
    }

    // After the 1 s TTL (the cache's lifetime cap is 60 s): asked again.
    std::thread::sleep(Duration::from_millis(1200));
    let (seen, _conn) = race(&lp, "ttl1.taps.test", port);
    assert_eq!(seen.ready, 1);
    assert_eq!(s.both(NAME), (2, 2), "the TTL ended the cache entry");
    assert_eq!(s.count(NAME, RecordType::HTTPS), 0, "a port other than 443 asks no HTTPS records (HttpsPolicy::Auto)");
}

#[test]
fn a_name_that_does_not_exist_fails_resolution() {
    let s = server();
    let lp = EventLoop::new().unwrap();
    let (seen, conn) = race(&lp, "nowhere.taps.test", 80);
    assert!(matches!(seen.error, Some(Error::ResolutionFailed(_))), "{:?}", seen.error);
    assert_eq!(conn.attempt_count(), 0);
    assert_eq!(s.both("nowhere.taps.test."), (1, 1), "the fake server was asked");
}

#[test]
fn a_name_in_the_hosts_file_beside_the_test_resolv_conf_is_not_asked() {
    let s = server();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lp = EventLoop::new().unwrap();
    let (seen, _conn) = race(&lp, "from-hosts.taps.test", port);
    assert_eq!(seen.ready, 1);
    assert_eq!(s.both("from-hosts.taps.test."), (0, 0), "the hosts file answered");
    let (_seen, _conn) = race(&lp, "from-hosts.taps.test", 443);
    assert_eq!(s.count("from-hosts.taps.test.", RecordType::HTTPS), 0, "a hosts-file name is not asked HTTPS");
}

/// HEv3 over the DNS client: a race to port 443 asks the name's HTTPS
/// records; the record's port replaces the caller's, and an AliasMode
/// record is followed to its target (asked HTTPS, then A/AAAA).
#[test]
fn https_records_over_the_dns_client_give_the_port_and_follow_an_alias() {
    let s = server();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    SERVICE_PORT.store(port, Ordering::Relaxed);
    let lp = EventLoop::new().unwrap();

    let (seen, conn) = race(&lp, "svc.taps.test", 443);
    assert_eq!(seen.ready, 1, "{:?} {:?}", seen.error, conn.attempts());
    assert_eq!(conn.remote_address().unwrap().port(), port, "the record's port, not 443");
    assert_eq!(s.count("svc.taps.test.", RecordType::HTTPS), 1);
    let report = conn.dns_report();
    assert_eq!(report.services.len(), 1, "{report:?}");
    assert_eq!(report.services[0].port, Some(port));
    assert!(report.answers.iter().any(|a| a.record == taps_racing::api::RecordType::Https), "{report:?}");
    drop(conn);

    let (seen, conn) = race(&lp, "alias.taps.test", 443);
    assert_eq!(seen.ready, 1, "{:?} {:?}", seen.error, conn.attempts());
    assert_eq!(conn.remote_address().unwrap().port(), port, "the alias target's record");
    assert_eq!(s.count("alias.taps.test.", RecordType::HTTPS), 1);
    assert!(s.count("svc.taps.test.", RecordType::HTTPS) >= 2, "the alias target was asked HTTPS");
}
