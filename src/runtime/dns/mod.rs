//! The library's own DNS client: a careful stub resolver that asks the
//! name servers of /etc/resolv.conf for HTTPS (RFC 9460), AAAA and A
//! records at once, with their TTLs, which getaddrinfo cannot give.
//!
//! Which path a name takes (see docs/guide/dns.md):
//!
//! 1. RFC 6761 names: "localhost" (and names under it) are the loopback
//!    addresses, ".invalid" names do not exist; nothing is asked.
//! 2. The hosts file ([`hosts`]): a name in it is answered from it alone,
//!    both families; its HTTPS records still come from DNS.
//! 3. DNS ([`exchange`]), when nsswitch.conf's `hosts:` has the sources
//!    `files` and `dns` alone ([`nsswitch`]); with any other source the
//!    addresses come from getaddrinfo (src/runtime/resolver.rs) as they
//!    always did, and only HTTPS queries go over DNS.
//!
//! # Where the exchange runs
//!
//! On the mio loop itself (src/runtime/dns_loop.rs): a name job's
//! [`exchange::Exchange`], a state machine without I/O, has its UDP
//! sockets (one per server it asks, carrying the name's queries, each
//! with its own random id) registered on the loop's poller with tokens of
//! their own, its retransmission deadlines on the loop's timers, and its
//! replies read when epoll says a socket is readable and handed straight
//! to the exchange, whose answers go straight to their race. No thread,
//! queue or wake-up stands between a reply and its race: an answer costs
//! the system calls of its query (a share of one getrandom for the ids, a
//! socket, connect, epoll registration and close per server asked, a
//! sendto and a recvfrom per query) and nothing more. The exchange ends
//! with the loop: its sockets are the loop's and close with it.
//!
//! Exceptions, on the loop's resolver workers (src/runtime/resolver.rs):
//! the TCP retry after a truncated reply (rare: a blocking connect, write
//! and read, its reply handed back to the loop's exchange), and
//! getaddrinfo where nsswitch.conf names other sources than `files` and
//! `dns`. [`DnsClient::lookup`] drives the same state machine with
//! poll(2) on the calling thread ([`exchange::run`]), for PREF64
//! discovery's thread (its RFC 7050 AAAA query for ipv4only.arpa) and
//! tests. The source addresses of answered addresses (RFC 6724) are
//! probed on the loop, at most once a second per destination prefix
//! (src/runtime/sources.rs).
//!
//! # Configuration
//!
//! Read once per loop ([`DnsClient::load`]): /etc/resolv.conf
//! ([`conf`]), /etc/hosts, /etc/nsswitch.conf, when the first
//! Preconnection with a host name is made on it (on that thread, outside
//! the loop's lock) or, failing that, at its first name lookup. A loop
//! made after a change sees it; a running loop keeps what it read.
//!
//! Testing aid: when the environment variable `TAPS_RESOLV_CONF` names a
//! file when a loop reads its configuration, that file is its
//! resolv.conf, and the `hosts` and `nsswitch.conf` beside it (if any:
//! none means an empty hosts file and "hosts: files dns") replace the
//! system's. That lets a
//! test, in Rust or C, point a loop at a DNS server of its own on a
//! loopback port (a `nameserver` may carry a port: `127.0.0.1:5353`)
//! without root and without touching /etc. It is read per loop, not per
//! process, so one test binary may run loops with and without it.

pub(crate) mod conf;
pub(crate) mod exchange;
#[doc(hidden)]
pub mod fuzz;
pub(crate) mod hosts;
pub(crate) mod https;
pub(crate) mod message;
pub(crate) mod nsswitch;

use crate::vocabulary::svcb::ServiceRecord;
use conf::ResolvConf;
use hosts::Hosts;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

/// The environment variable naming a resolv.conf for tests (see the
/// module docs).
pub(crate) const TEST_CONF_VAR: &str = "TAPS_RESOLV_CONF";

/// A query type the client asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// HTTPS (type 65, RFC 9460 §9).
    Https,
    /// AAAA (type 28).
    Aaaa,
    /// A (type 1).
    A,
}

/// The records of a positive answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Records {
    /// A or AAAA: the addresses, in the server's order, without repeats.
    Addresses(Vec<IpAddr>),
    /// HTTPS: the usable records (see [`https`]); AliasMode ones alone
    /// when the set has one (RFC 9460 §2.4.1).
    Services(Vec<ServiceRecord>),
}

/// A positive answer and how long it may be kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub records: Records,
    /// The smallest TTL of the records and CNAMEs used; `None` for the
    /// hosts file and RFC 6761 names, which have none.
    pub ttl: Option<Duration>,
}

/// Why a query has no records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DnsError {
    /// NXDOMAIN: the name does not exist; kept for `ttl` (RFC 2308).
    NxDomain { ttl: Option<Duration> },
    /// NOERROR without records of the type ("no data"); kept for `ttl`.
    NoData { ttl: Option<Duration> },
    /// Every server failed (SERVFAIL, REFUSED, unreachable...).
    ServerFailure,
    /// No reply within `timeout × attempts × servers`.
    Timeout,
    /// A reply to the question that cannot be decoded.
    Malformed(&'static str),
    /// The name cannot be a DNS name (a label over 63 bytes...).
    BadName,
    /// A system call failed (errno).
    Io(i32),
}

impl DnsError {
    /// The getaddrinfo code a race reports for it (the resolution cache
    /// keeps EAI_NONAME and EAI_NODATA ones).
    pub(crate) fn eai(&self) -> i32 {
        match self {
            DnsError::NxDomain { .. } | DnsError::BadName => libc::EAI_NONAME,
            DnsError::NoData { .. } => libc::EAI_NODATA,
            DnsError::ServerFailure | DnsError::Timeout => libc::EAI_AGAIN,
            DnsError::Malformed(_) => libc::EAI_FAIL,
            DnsError::Io(_) => libc::EAI_SYSTEM,
        }
    }

    /// How long a negative answer may be kept.
    pub(crate) fn ttl(&self) -> Option<Duration> {
        match self {
            DnsError::NxDomain { ttl } | DnsError::NoData { ttl } => *ttl,
            _ => None,
        }
    }
}

/// A query's outcome.
pub(crate) type Outcome = Result<Found, DnsError>;

/// A loop's DNS client: its configuration, read once.
#[derive(Clone, Debug)]
pub(crate) struct DnsClient {
    pub(crate) conf: ResolvConf,
    pub(crate) hosts: Hosts,
    addresses: bool,
}

/// A file's text, `None` when it cannot be read.
fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

impl DnsClient {
    /// A client with this configuration; `addresses`: whether it answers
    /// for A and AAAA (nsswitch allows), else only HTTPS.
    pub(crate) fn new(conf: ResolvConf, hosts: Hosts, addresses: bool) -> DnsClient {
        DnsClient { conf, hosts, addresses }
    }

    /// The system's configuration (or the test's, see the module docs).
    pub(crate) fn load() -> DnsClient {
        if let Some(file) = std::env::var_os(TEST_CONF_VAR) {
            let file = Path::new(&file);
            let dir = file.parent().unwrap_or(Path::new("."));
            return DnsClient::new(
                ResolvConf::parse(&read(file).unwrap_or_default()),
                Hosts::parse(&read(&dir.join("hosts")).unwrap_or_default()),
                nsswitch::dns_answers_addresses(read(&dir.join("nsswitch.conf")).as_deref()),
            );
        }
        DnsClient::new(
            ResolvConf::parse(&read(Path::new("/etc/resolv.conf")).unwrap_or_default()),
            Hosts::parse(&read(Path::new("/etc/hosts")).unwrap_or_default()),
            nsswitch::dns_answers_addresses(read(Path::new("/etc/nsswitch.conf")).as_deref()),
        )
    }

    /// Whether A and AAAA are this client's to answer (else getaddrinfo's).
    pub(crate) fn answers_addresses(&self) -> bool {
        self.addresses
    }

    /// Ask `kinds` for `name` (host name as the user gave it), handing each
    /// answer to `deliver` as it is known (see [`exchange::run`]); RFC 6761
    /// names and hosts-file names are answered here without DNS. Returns
    /// when all are handed on, or when `stop` returns true. (The loop runs
    /// its exchanges itself: src/runtime/dns_loop.rs.)
    pub(crate) fn lookup(&self, name: &str, kinds: &[Kind], stop: &dyn Fn() -> bool, deliver: &mut dyn FnMut(Kind, Outcome)) {
        let (known, ask) = self.begin(name, kinds);
        for (kind, outcome) in known {
            deliver(kind, outcome);
        }
        if !ask.is_empty() {
            exchange::run(&self.conf, name, &ask, stop, deliver);
        }
    }

    /// The answers known without DNS (RFC 6761 names, the hosts file), in
    /// `kinds` order, and the kinds left to ask a server.
    pub(crate) fn begin(&self, name: &str, kinds: &[Kind]) -> (Vec<(Kind, Outcome)>, Vec<Kind>) {
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        if lower == "invalid" || lower.ends_with(".invalid") {
            return (kinds.iter().map(|&k| (k, Err(DnsError::NxDomain { ttl: None }))).collect(), Vec::new());
        }
        let local = lower == "localhost" || lower.ends_with(".localhost");
        let hosts = if local { None } else { self.hosts.lookup(&lower) };
        let (mut known, mut ask) = (Vec::new(), Vec::with_capacity(kinds.len()));
        for &kind in kinds {
            let found: Option<Vec<IpAddr>> = match kind {
                // A name the hosts file answers is not asked HTTPS either:
                // the file pins its addresses, and a record from DNS must not
                // send its races elsewhere (another port, a TargetName).
                Kind::Https if local || hosts.is_some() => {
                    known.push((kind, Err(DnsError::NoData { ttl: None })));
                    continue;
                }
                Kind::Https => None,
                Kind::Aaaa if local => Some(vec![Ipv6Addr::LOCALHOST.into()]),
                Kind::A if local => Some(vec![Ipv4Addr::LOCALHOST.into()]),
                _ => hosts.map(|h| h.iter().copied().filter(|ip| ip.is_ipv6() == (kind == Kind::Aaaa)).collect()),
            };
            match found {
                Some(ips) if ips.is_empty() => known.push((kind, Err(DnsError::NoData { ttl: None }))),
                Some(ips) => known.push((kind, Ok(Found { records: Records::Addresses(ips), ttl: None }))),
                None => ask.push(kind),
            }
        }
        (known, ask)
    }

    /// The HTTPS records of `name` and how long they may be kept, or why
    /// there are none (a blocking call: a worker's, or a test's). The
    /// worker pool asks HTTPS through [`DnsClient::lookup`]; this is the
    /// one-query form, for the HEv3 rules to come and for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn lookup_https(&self, name: &str) -> Result<(Vec<ServiceRecord>, Option<Duration>), DnsError> {
        let mut out = Err(DnsError::Timeout);
        self.lookup(name, &[Kind::Https], &|| false, &mut |_, o| {
            out = o.and_then(|f| match f.records {
                Records::Services(s) => Ok((s, f.ttl)),
                Records::Addresses(_) => Err(DnsError::Malformed("addresses for an HTTPS query")),
            })
        });
        out
    }

    /// The addresses of `name` of one kind (A or AAAA) and their TTL (a
    /// blocking call, for tests).
    #[cfg(test)]
    pub(crate) fn lookup_addresses(&self, name: &str, kind: Kind) -> Result<(Vec<IpAddr>, Option<Duration>), DnsError> {
        let mut out = Err(DnsError::Timeout);
        self.lookup(name, &[kind], &|| false, &mut |_, o| {
            out = o.and_then(|f| match f.records {
                Records::Addresses(a) => Ok((a, f.ttl)),
                Records::Services(_) => Err(DnsError::Malformed("services for an address query")),
            })
        });
        out
    }
}

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
