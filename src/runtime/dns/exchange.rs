//! The exchange: a name's queries (HTTPS, AAAA, A: whichever the caller
//! asks, sent back to back in that order, HEv3 -04 §4.1) run at once, as
//! a state machine without I/O ([`Exchange`]): its inputs are datagrams
//! from a server, a server's socket error, a TCP reply and the time; its
//! outputs ([`Step`]) are datagrams to send, a query to ask over TCP and
//! answers. Two drivers run it: the loop's (src/runtime/dns_loop.rs, its
//! sockets on the loop's poller, its deadlines on the loop's timers) and
//! [`run`], a blocking one with poll(2) (PREF64 discovery's thread,
//! tests).
//!
//! # Sockets and ids
//!
//! The name's queries to one server share one connected UDP socket (the
//! driver's, opened at the first datagram to that server, closed when the
//! exchange ends), as glibc's resolver does; each query, and each of its
//! tries, has its own random id, all drawn from one getrandom(2) per
//! exchange ([`Ids`]). RFC 5452 still holds: a forged reply must match
//! the source port (one random port per name and server, chosen by the
//! kernel, §9.2) and the id, QNAME, QTYPE and QCLASS of the one query it
//! claims to answer (§9.1); the name's other outstanding ids do not help
//! it, because a reply with the A query's question is read against the A
//! query's id alone. The work of a forgery per query is that of a query
//! with a socket of its own.
//!
//! # Rules
//!
//! Per query, per candidate name (the search list, [`ResolvConf::candidates`]):
//!
//! - try `t` (0, 1, ...) asks server `t mod n` with a fresh random id, and
//!   waits [`ResolvConf::timeout`]; after `attempts × n` tries it gives up
//!   ([`DnsError::Timeout`]): the give-up time of a silent setup is
//!   `timeout × attempts × servers`;
//! - a reply that is not ours (id, question) is dropped and the query
//!   keeps waiting (RFC 5452 §9.1); ICMP "port unreachable" or a server
//!   failure (SERVFAIL, REFUSED, ...) moves to the next try at once;
//! - FORMERR to a query with an OPT record: the same server is asked
//!   again without it (RFC 6891 §7), and so are later tries;
//! - a truncated reply (TC) is asked again of the same server over TCP
//!   (RFC 7766 §5), within one timeout ([`Step::Tcp`]: the driver runs
//!   it and hands the reply back with [`Exchange::on_tcp`]); the name's
//!   other queries go on meanwhile;
//! - an answer (positive, NXDOMAIN, NODATA, malformed) ends the query.
//!
//! Search (glibc's res_search, applied to the name's queries together, so
//! that addresses of one family never come from another name than the
//! other's): a candidate name "is found" once a query has records for it;
//! while none has, negative answers (NXDOMAIN, NODATA, every server
//! failing) are held, and when every query is negative, the next
//! candidate is asked. A timeout ends the search. Positive answers, and
//! every answer once the name is found or on the last candidate, are
//! handed on at once.

use super::conf::ResolvConf;
use super::message::{self, Question, Reply};
use super::{DnsError, Kind, Outcome};
use crate::engine::Micros;
use crate::runtime::sys::{dns_io, random};
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The FORMERR response code (RFC 1035 §4.1.1).
const FORMERR: u16 = 1;

/// Largest reply read over UDP (more than the EDNS payload offered, so a
/// server that ignores it is still read).
pub(crate) const UDP_BUFFER: usize = 4096;

/// What the driver is to do next.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send `bytes` to server `server` (an index in the configuration's
    /// servers) over the exchange's socket to it, opened on first use; if
    /// that fails, tell [`Exchange::on_server_error`].
    Send { server: usize, bytes: Vec<u8> },
    /// Ask `bytes` of `server` over TCP within `timeout`, then hand the
    /// reply (or `None`) to [`Exchange::on_tcp`] with `query` and `serial`.
    Tcp { query: usize, serial: u32, server: SocketAddr, bytes: Vec<u8>, timeout: Duration },
    /// A query's answer, to hand on.
    Answer(Kind, Outcome),
}

/// Message ids: one getrandom(2) for 16 of them, more when spent.
struct Ids {
    pool: [u8; 32],
    used: usize,
}

impl Ids {
    fn next(&mut self) -> std::io::Result<u16> {
        if self.used >= self.pool.len() {
            random::fill(&mut self.pool)?;
            self.used = 0;
        }
        let id = u16::from_ne_bytes([self.pool[self.used], self.pool[self.used + 1]]);
        self.used += 2;
        Ok(id)
    }
}

/// A try in flight.
struct Asking {
    id: u16,
    server: usize,
    deadline: Micros,
    /// Over TCP, with this serial ([`Step::Tcp`]).
    tcp: Option<u32>,
}

/// One query of the exchange.
struct Pending {
    kind: Kind,
    question: Option<Question>,
    /// Tries made for the current name.
    tries: usize,
    /// One of them timed out (else the failures were the servers').
    timed_out: bool,
    /// A server answered FORMERR to the OPT record: ask without it.
    plain: bool,
    asking: Option<Asking>,
    done: Option<Outcome>,
    delivered: bool,
}

/// Whether a negative outcome lets the search go on to the next name.
fn continues_search(o: &Outcome) -> bool {
    matches!(o, Err(DnsError::NxDomain { .. } | DnsError::NoData { .. } | DnsError::ServerFailure | DnsError::BadName))
}

/// The exchange of one name's queries (see the module docs).
pub(crate) struct Exchange {
    servers: Vec<SocketAddr>,
    timeout: Duration,
    attempts: usize,
    names: Vec<String>,
    index: usize,
    found: bool,
    queries: Vec<Pending>,
    ids: Ids,
    steps: VecDeque<Step>,
    serial: u32,
}

impl Exchange {
    /// Ask `kinds` for `name` at `now` (µs on the driver's clock): the
    /// first datagrams are the first steps.
    pub(crate) fn new(conf: &ResolvConf, name: &str, kinds: &[Kind], now: Micros) -> Exchange {
        let queries = kinds
            .iter()
            .map(|&kind| Pending { kind, question: None, tries: 0, timed_out: false, plain: false, asking: None, done: None, delivered: false })
            .collect();
        let names = conf.candidates(name);
        let mut x = Exchange {
            servers: conf.nameservers.clone(),
            timeout: conf.timeout,
            attempts: conf.attempts as usize,
            found: names.len() == 1,
            names,
            index: 0,
            queries,
            ids: Ids { pool: [0; 32], used: 32 },
            steps: VecDeque::new(),
            serial: 0,
        };
        x.start(now);
        x.settle(now);
        x
    }

    /// The servers, by the indexes of [`Step::Send`].
    pub(crate) fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// The next thing to do, if any.
    pub(crate) fn step(&mut self) -> Option<Step> {
        self.steps.pop_front()
    }

    /// Every answer is handed on (or to be, in the steps).
    pub(crate) fn is_done(&self) -> bool {
        self.queries.iter().all(|q| q.delivered)
    }

    /// The earliest deadline of a try in flight.
    pub(crate) fn deadline(&self) -> Option<Micros> {
        self.queries.iter().filter_map(|q| q.asking.as_ref()).map(|a| a.deadline).min()
    }

    /// A datagram from server `server`: the answer of the query it
    /// matches (id and question), else dropped.
    pub(crate) fn on_datagram(&mut self, server: usize, bytes: &[u8], now: Micros) {
        for i in 0..self.queries.len() {
            let q = &mut self.queries[i];
            let (Some(a), Some(question)) = (&q.asking, &q.question) else { continue };
            if a.server != server || a.tcp.is_some() {
                continue;
            }
            match message::read_reply(bytes, a.id, question) {
                Reply::NotOurs => continue,
                Reply::Answer(o) => {
                    q.asking = None;
                    q.done = Some(o);
                }
                Reply::ServerFailed(FORMERR) if !q.plain => {
                    // RFC 6891 §7: a server without EDNS; ask it again,
                    // without the OPT record, as the same try.
                    q.plain = true;
                    q.tries -= 1;
                    self.next_try(i, now);
                }
                Reply::ServerFailed(rcode) => {
                    log::debug!("DNS server {} failed ({rcode}) for {}", self.servers[server], question.name);
                    self.next_try(i, now);
                }
                Reply::Truncated => self.over_tcp(i, now),
            }
            break;
        }
        self.settle(now);
    }

    /// Server `server`'s socket failed (ICMP unreachable, no socket, a
    /// send that failed): its queries move to their next tries.
    pub(crate) fn on_server_error(&mut self, server: usize, now: Micros) {
        for i in 0..self.queries.len() {
            if self.queries[i].asking.as_ref().is_some_and(|a| a.server == server && a.tcp.is_none()) {
                self.next_try(i, now);
            }
        }
        self.settle(now);
    }

    /// The reply of a [`Step::Tcp`] (`None`: none came); ignored when the
    /// query has moved on since.
    pub(crate) fn on_tcp(&mut self, query: usize, serial: u32, reply: Option<&[u8]>, now: Micros) {
        let Some(q) = self.queries.get_mut(query) else { return };
        let (Some(a), Some(question)) = (&q.asking, &q.question) else { return };
        if a.tcp != Some(serial) {
            return;
        }
        match reply.map(|bytes| message::read_reply(bytes, a.id, question)) {
            Some(Reply::Answer(o)) => {
                q.asking = None;
                q.done = Some(o);
            }
            _ => self.next_try(query, now),
        }
        self.settle(now);
    }

    /// The time is `now`: tries whose deadline passed move on.
    pub(crate) fn on_time(&mut self, now: Micros) {
        for i in 0..self.queries.len() {
            if self.queries[i].asking.as_ref().is_some_and(|a| a.deadline <= now) {
                self.queries[i].timed_out = true;
                self.next_try(i, now);
            }
        }
        self.settle(now);
    }

    /// Hand on what may be (see the search rules), and ask the next
    /// candidate name when every query of this one is negative.
    fn settle(&mut self, now: Micros) {
        loop {
            let found = self.queries.iter().any(|q| q.done.as_ref().is_some_and(|o| o.is_ok() || !continues_search(o)));
            self.found |= found;
            if self.found || self.index + 1 == self.names.len() {
                for q in self.queries.iter_mut().filter(|q| !q.delivered) {
                    if let Some(o) = q.done.take() {
                        q.delivered = true;
                        self.steps.push_back(Step::Answer(q.kind, o));
                    }
                }
            }
            if self.is_done() || !self.queries.iter().all(|q| q.done.is_some()) {
                return;
            }
            self.index += 1;
            self.start(now);
        }
    }

    /// Ask every query for the current name afresh, back to back.
    fn start(&mut self, now: Micros) {
        let name = self.names[self.index].clone();
        for i in 0..self.queries.len() {
            let q = &mut self.queries[i];
            q.tries = 0;
            q.timed_out = false;
            q.done = None;
            q.asking = None;
            match Question::new(&name, q.kind) {
                Ok(question) => q.question = Some(question),
                Err(e) => {
                    q.question = None;
                    q.done = Some(Err(e));
                    continue;
                }
            }
            self.next_try(i, now);
        }
    }

    /// Send query `i`'s next try, or end it when the tries are spent.
    fn next_try(&mut self, i: usize, now: Micros) {
        let q = &mut self.queries[i];
        q.asking = None;
        let Some(question) = &q.question else { return };
        let n = self.servers.len();
        if q.tries >= self.attempts * n {
            q.done = Some(Err(if q.timed_out { DnsError::Timeout } else { DnsError::ServerFailure }));
            return;
        }
        let server = q.tries % n;
        q.tries += 1;
        let id = match self.ids.next() {
            Ok(id) => id,
            Err(e) => {
                q.done = Some(Err(DnsError::Io(crate::runtime::sys::errno(e))));
                return;
            }
        };
        match message::query(id, question, !q.plain) {
            Ok(bytes) => {
                let deadline = now + self.timeout.as_micros() as Micros;
                q.asking = Some(Asking { id, server, deadline, tcp: None });
                self.steps.push_back(Step::Send { server, bytes });
            }
            Err(e) => q.done = Some(Err(e)),
        }
    }

    /// Ask query `i` again over TCP, of the server that sent TC.
    fn over_tcp(&mut self, i: usize, now: Micros) {
        let q = &mut self.queries[i];
        let (Some(a), Some(question)) = (&mut q.asking, &q.question) else { return };
        let Ok(bytes) = message::query(a.id, question, !q.plain) else { return self.next_try(i, now) };
        self.serial += 1;
        a.tcp = Some(self.serial);
        a.deadline = now + self.timeout.as_micros() as Micros;
        let server = self.servers[a.server];
        self.steps.push_back(Step::Tcp { query: i, serial: self.serial, server, bytes, timeout: self.timeout });
    }
}

/// Ask `kinds` for `name` on the calling thread (see the module docs),
/// handing each answer to `deliver` as it is known; returns when all are
/// handed on, or at once when `stop` returns true (checked at least every
/// [`dns_io::STOP_SLICE`]). The TCP retry runs here too, blocking.
pub(crate) fn run(conf: &ResolvConf, name: &str, kinds: &[Kind], stop: &dyn Fn() -> bool, deliver: &mut dyn FnMut(Kind, Outcome)) {
    let start = Instant::now();
    let now = || start.elapsed().as_micros() as Micros;
    let mut x = Exchange::new(conf, name, kinds, now());
    let mut socks: Vec<Option<UdpSocket>> = (0..x.servers().len()).map(|_| None).collect();
    let mut buf = vec![0; UDP_BUFFER];
    loop {
        while let Some(step) = x.step() {
            match step {
                Step::Send { server, bytes } => {
                    if socks[server].is_none() {
                        socks[server] = dns_io::udp_to(x.servers()[server]).ok();
                    }
                    if !socks[server].as_ref().is_some_and(|s| s.send(&bytes).is_ok()) {
                        x.on_server_error(server, now());
                    }
                }
                Step::Tcp { query, serial, server, bytes, timeout } => {
                    let reply = dns_io::tcp_exchange(server, &bytes, Instant::now() + timeout, stop).ok();
                    x.on_tcp(query, serial, reply.as_deref(), now());
                }
                Step::Answer(kind, outcome) => deliver(kind, outcome),
            }
        }
        if x.is_done() || stop() {
            return;
        }
        let Some(deadline) = x.deadline() else { return };
        let open: Vec<(usize, &UdpSocket)> = socks.iter().enumerate().filter_map(|(i, s)| Some((i, s.as_ref()?))).collect();
        let fds: Vec<_> = open.iter().map(|(_, s)| s.as_raw_fd()).collect();
        let wait = Duration::from_micros(deadline.saturating_sub(now())).min(dns_io::STOP_SLICE);
        let ready = dns_io::poll_readable(&fds, wait).unwrap_or_else(|_| vec![true; fds.len()]);
        for ((server, sock), ready) in open.into_iter().zip(ready) {
            while ready {
                match sock.recv(&mut buf) {
                    Ok(n) => x.on_datagram(server, &buf[..n], now()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // ICMP unreachable (ECONNREFUSED) and the like: next server.
                    Err(_) => {
                        x.on_server_error(server, now());
                        break;
                    }
                }
            }
        }
        x.on_time(now());
    }
}
