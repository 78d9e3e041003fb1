//! The exchange: a name's queries (HTTPS, AAAA, A: whichever the caller
//! asks, sent back to back in that order, HEv3 -04 §4.1) run at once, each
//! from its own connected UDP socket, on the calling thread, with poll(2)
//! over the sockets and deadlines computed here.
//!
//! Per query, per candidate name (the search list, [`ResolvConf::candidates`]):
//!
//! - try `t` (0, 1, ...) asks server `t mod n` with a fresh socket and a
//!   fresh random id, and waits [`ResolvConf::timeout`]; after
//!   `attempts × n` tries it gives up ([`DnsError::Timeout`]): the
//!   give-up time of a silent setup is `timeout × attempts × servers`;
//! - a reply that is not ours (id, question) is dropped and the socket
//!   keeps waiting (RFC 5452 §9.1); ICMP "port unreachable" or a server
//!   failure (SERVFAIL, REFUSED, ...) moves to the next try at once;
//! - FORMERR to a query with an OPT record: the same server is asked
//!   again without it (RFC 6891 §7), and so are later tries;
//! - a truncated reply (TC) is asked again of the same server over TCP
//!   (RFC 7766 §5), within one timeout; that wait holds the name's other
//!   queries (their replies queue in their sockets);
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
//!
//! `stop` is checked at least every [`dns_io::STOP_SLICE`]: when it
//! returns true, the exchange returns and hands nothing more on.

use super::conf::ResolvConf;
use super::message::{self, Question, Reply};
use super::{DnsError, Kind, Outcome};
use crate::runtime::sys::{dns_io, random};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Instant;

/// The FORMERR response code (RFC 1035 §4.1.1).
const FORMERR: u16 = 1;

/// Largest reply read over UDP (more than the EDNS payload offered, so a
/// server that ignores it is still read).
const UDP_BUFFER: usize = 4096;

/// A try in flight.
struct Asking {
    sock: UdpSocket,
    id: u16,
    server: SocketAddr,
    deadline: Instant,
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

/// The exchange of one name's queries.
struct Exchange<'a> {
    conf: &'a ResolvConf,
    stop: &'a dyn Fn() -> bool,
    queries: Vec<Pending>,
    buf: Vec<u8>,
}

/// Ask `kinds` for `name` (see the module docs), handing each answer to
/// `deliver` as it is known; returns when all are handed on, or at once
/// when `stop` returns true.
pub(crate) fn run(conf: &ResolvConf, name: &str, kinds: &[Kind], stop: &dyn Fn() -> bool, deliver: &mut dyn FnMut(Kind, Outcome)) {
    let names = conf.candidates(name);
    let queries = kinds
        .iter()
        .map(|&kind| Pending { kind, question: None, tries: 0, timed_out: false, plain: false, asking: None, done: None, delivered: false })
        .collect();
    let mut x = Exchange { conf, stop, queries, buf: vec![0; UDP_BUFFER] };
    let mut index = 0;
    x.start(&names[0]);
    let mut found = names.len() == 1;
    loop {
        found |= x.queries.iter().any(|q| q.done.as_ref().is_some_and(|o| o.is_ok() || !continues_search(o)));
        if found || index + 1 == names.len() {
            for q in x.queries.iter_mut().filter(|q| !q.delivered) {
                if let Some(o) = q.done.take() {
                    q.delivered = true;
                    deliver(q.kind, o);
                }
            }
        }
        if x.queries.iter().all(|q| q.delivered) || (x.stop)() {
            return;
        }
        if x.queries.iter().all(|q| q.done.is_some()) {
            index += 1;
            x.start(&names[index]);
            continue;
        }
        x.wait();
    }
}

impl Exchange<'_> {
    /// Ask every query for `name` afresh, back to back.
    fn start(&mut self, name: &str) {
        for i in 0..self.queries.len() {
            let q = &mut self.queries[i];
            q.tries = 0;
            q.timed_out = false;
            q.done = None;
            q.asking = None;
            match Question::new(name, q.kind) {
                Ok(question) => q.question = Some(question),
                Err(e) => {
                    q.question = None;
                    q.done = Some(Err(e));
                    continue;
                }
            }
            self.next_try(i);
        }
    }

    /// Send query `i`'s next try, or end it when the tries are spent.
    fn next_try(&mut self, i: usize) {
        let conf = self.conf;
        let q = &mut self.queries[i];
        q.asking = None;
        let Some(question) = &q.question else { return };
        let total = conf.attempts as usize * conf.nameservers.len();
        while q.tries < total {
            let server = conf.nameservers[q.tries % conf.nameservers.len()];
            q.tries += 1;
            let id = match random::random_u16() {
                Ok(id) => id,
                Err(e) => {
                    q.done = Some(Err(DnsError::Io(crate::runtime::sys::errno(e))));
                    return;
                }
            };
            let query = match message::query(id, question, !q.plain) {
                Ok(b) => b,
                Err(e) => {
                    q.done = Some(Err(e));
                    return;
                }
            };
            let Ok(sock) = dns_io::udp_to(server) else { continue };
            if sock.send(&query).is_err() {
                continue;
            }
            q.asking = Some(Asking { sock, id, server, deadline: Instant::now() + conf.timeout });
            return;
        }
        q.done = Some(Err(if q.timed_out { DnsError::Timeout } else { DnsError::ServerFailure }));
    }

    /// Wait for replies until the first deadline (at most a stop slice),
    /// then read them and move the late tries on.
    fn wait(&mut self) {
        let asking: Vec<usize> = (0..self.queries.len()).filter(|&i| self.queries[i].asking.is_some()).collect();
        let now = Instant::now();
        let first = asking.iter().filter_map(|&i| self.queries[i].asking.as_ref()).map(|a| a.deadline).min();
        let Some(first) = first else { return };
        let wait = first.saturating_duration_since(now).min(dns_io::STOP_SLICE);
        let fds: Vec<_> = asking.iter().filter_map(|&i| self.queries[i].asking.as_ref()).map(|a| a.sock.as_raw_fd()).collect();
        let ready = dns_io::poll_readable(&fds, wait).unwrap_or_else(|_| vec![true; fds.len()]);
        for (&i, ready) in asking.iter().zip(ready) {
            if ready {
                self.read(i);
            }
        }
        let now = Instant::now();
        for i in asking {
            if self.queries[i].asking.as_ref().is_some_and(|a| a.deadline <= now) {
                self.queries[i].timed_out = true;
                self.next_try(i);
            }
        }
    }

    /// Read query `i`'s socket until it has nothing more.
    fn read(&mut self, i: usize) {
        loop {
            let q = &mut self.queries[i];
            let (Some(a), Some(question)) = (&q.asking, &q.question) else { return };
            let n = match a.sock.recv(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // ICMP unreachable (ECONNREFUSED) and the like: next server.
                Err(_) => return self.next_try(i),
            };
            match message::read_reply(&self.buf[..n], a.id, question) {
                Reply::NotOurs => continue,
                Reply::Answer(o) => {
                    q.asking = None;
                    q.done = Some(o);
                    return;
                }
                Reply::ServerFailed(FORMERR) if !q.plain => {
                    // RFC 6891 §7: a server without EDNS; ask it again,
                    // without the OPT record, as the same try.
                    q.plain = true;
                    q.tries -= 1;
                    return self.next_try(i);
                }
                Reply::ServerFailed(rcode) => {
                    log::debug!("DNS server {} failed ({rcode}) for {}", a.server, question.name);
                    return self.next_try(i);
                }
                Reply::Truncated => return self.over_tcp(i),
            }
        }
    }

    /// Ask query `i` again over TCP, of the server that sent TC.
    fn over_tcp(&mut self, i: usize) {
        let q = &mut self.queries[i];
        let (Some(a), Some(question)) = (q.asking.take(), &q.question) else { return };
        let deadline = Instant::now() + self.conf.timeout;
        let reply = message::query(a.id, question, !q.plain)
            .ok()
            .and_then(|query| dns_io::tcp_exchange(a.server, &query, deadline, self.stop).ok());
        match reply.map(|bytes| message::read_reply(&bytes, a.id, question)) {
            Some(Reply::Answer(o)) => q.done = Some(o),
            _ => self.next_try(i),
        }
    }
}
