//! A fake DNS server for the client's tests: UDP and TCP on one
//! 127.0.0.1 port, in threads, answering with a test's function and
//! keeping every query it read (with when, and over which transport).

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, HTTPS, NULL, SOA, SVCB};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One query the server read.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub at: Instant,
    pub msg: Message,
    pub tcp: bool,
    /// Where it came from (its source port).
    pub from: SocketAddr,
}

/// What the server does with a query (and whether it came over TCP): the
/// datagrams (or TCP messages) to send back, in order.
pub(crate) type Handler = Arc<dyn Fn(&Message, bool) -> Vec<Vec<u8>> + Send + Sync>;

pub(crate) struct FakeServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    pub(crate) fn start(handler: impl Fn(&Message, bool) -> Vec<Vec<u8>> + Send + Sync + 'static) -> FakeServer {
        let handler: Handler = Arc::new(handler);
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (h, s, st) = (Arc::clone(&handler), Arc::clone(&seen), Arc::clone(&stop));
        let u = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = udp.recv_from(&mut buf) else { continue };
                let Ok(msg) = Message::from_vec(&buf[..n]) else { continue };
                s.lock().unwrap().push(Seen { at: Instant::now(), msg: msg.clone(), tcp: false, from });
                for reply in h(&msg, false) {
                    let _ = udp.send_to(&reply, from);
                }
            }
        });
        let (h, s, st) = (handler, Arc::clone(&seen), Arc::clone(&stop));
        let t = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let Ok((mut c, from)) = tcp.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut len = [0u8; 2];
                if c.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                if c.read_exact(&mut q).is_err() {
                    continue;
                }
                let Ok(msg) = Message::from_vec(&q) else { continue };
                s.lock().unwrap().push(Seen { at: Instant::now(), msg: msg.clone(), tcp: true, from });
                for reply in h(&msg, true) {
                    let _ = c.write_all(&(reply.len() as u16).to_be_bytes());
                    let _ = c.write_all(&reply);
                }
            }
        });
        FakeServer { addr, seen, stop, threads: vec![u, t] }
    }

    /// The queries read so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// (name, type) of the queries read so far, in order.
    pub(crate) fn asked(&self) -> Vec<(String, RecordType)> {
        self.seen().iter().map(|s| (s.msg.queries[0].name().to_ascii(), s.msg.queries[0].query_type())).collect()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A port nobody listens on (UDP): queries there get ICMP unreachable.
pub(crate) fn closed_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

pub(crate) fn name(s: &str) -> Name {
    let mut n = Name::from_ascii(s).unwrap();
    n.set_fqdn(true);
    n
}

/// A response to `q` with its id and question, RA set.
pub(crate) fn response(q: &Message) -> Message {
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_queries(q.queries.iter().cloned());
    m
}

/// `q`'s response with `rcode` and no records.
pub(crate) fn rcode(q: &Message, rcode: ResponseCode) -> Vec<u8> {
    let mut m = response(q);
    m.metadata.response_code = rcode;
    m.to_vec().unwrap()
}

/// `q`'s response with these answer records.
pub(crate) fn answer(q: &Message, records: Vec<Record>) -> Vec<u8> {
    let mut m = response(q);
    m.add_answers(records);
    m.to_vec().unwrap()
}

pub(crate) fn a(owner: &str, ttl: u32, ip: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::A(A(ip.parse().unwrap())))
}

pub(crate) fn aaaa(owner: &str, ttl: u32, ip: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::AAAA(AAAA(ip.parse().unwrap())))
}

pub(crate) fn cname(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
}

pub(crate) fn soa(zone: &str, ttl: u32, minimum: u32) -> Record {
    let soa = SOA::new(name(&format!("ns.{zone}")), name(&format!("admin.{zone}")), 1, 3600, 600, 86400, minimum);
    Record::from_rdata(name(zone), ttl, RData::SOA(soa))
}

pub(crate) fn https(owner: &str, ttl: u32, svcb: SVCB) -> Record {
    Record::from_rdata(name(owner), ttl, RData::HTTPS(HTTPS(svcb)))
}

/// An HTTPS record with this RDATA, as bytes (for malformed ones).
pub(crate) fn https_raw(owner: &str, ttl: u32, rdata: Vec<u8>) -> Record {
    Record::from_rdata(name(owner), ttl, RData::Unknown { code: RecordType::HTTPS, rdata: NULL::with(rdata) })
}
