//! DNS messages on the wire, through hickory-proto: the query the client
//! sends (RFC 1035 §4.1, RD set, an EDNS(0) OPT record of RFC 6891
//! offering [`EDNS_PAYLOAD`] bytes), and the reading of a reply: matched
//! to its question (RFC 5452 §9.1: id, QNAME without case, QTYPE, QCLASS;
//! anything else is not ours and is dropped), then its answer: the records
//! of the asked type at the end of the CNAME chain (RFC 1034 §3.6.2), with
//! the smallest TTL met on the way, or a negative answer with the TTL of
//! RFC 2308 §5.
//!
//! Hostile or broken bytes give [`Reply::NotOurs`] (when the header or
//! the question cannot be read) or [`DnsError::Malformed`], never a panic.

use super::https;
use super::{DnsError, Found, Kind, Outcome, Records};
use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::net::IpAddr;
use std::time::Duration;

/// The UDP payload the client offers in its OPT record: the size that
/// avoids IP fragmentation on the Internet (DNS Flag Day 2020).
pub(crate) const EDNS_PAYLOAD: u16 = 1232;
/// Longest CNAME chain followed inside one answer.
pub(crate) const MAX_CNAME_CHAIN: usize = 16;
/// The lifetime of a negative answer without an SOA record to bound it
/// (RFC 2308 §5 leaves it to the resolver; small, so a name that appears
/// is seen soon).
pub(crate) const NEGATIVE_TTL_DEFAULT: Duration = Duration::from_secs(10);

/// One question: a name (absolute) and a type, class IN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Question {
    pub name: Name,
    pub kind: Kind,
}

impl Kind {
    fn record_type(self) -> RecordType {
        match self {
            Kind::Https => RecordType::from(crate::vocabulary::svcb::HTTPS_RR_TYPE),
            Kind::Aaaa => RecordType::AAAA,
            Kind::A => RecordType::A,
        }
    }
}

impl Question {
    /// The question for `name` (absolute, without the final dot), or
    /// [`DnsError::BadName`] when it is not a valid DNS name (a label over
    /// 63 bytes, a name over 255).
    pub(crate) fn new(name: &str, kind: Kind) -> Result<Question, DnsError> {
        let mut n = Name::from_ascii(name).map_err(|_| DnsError::BadName)?;
        n.set_fqdn(true);
        Ok(Question { name: n, kind })
    }
}

/// The query for `q` with message id `id`: one question, RD set, and
/// with `edns` an OPT record offering [`EDNS_PAYLOAD`] bytes (without
/// it only for a server that answered FORMERR to one, RFC 6891 §7).
pub(crate) fn query(id: u16, q: &Question, edns: bool) -> Result<Vec<u8>, DnsError> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(q.name.clone(), q.kind.record_type()));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(EDNS_PAYLOAD);
        m.set_edns(opt);
    }
    m.to_vec().map_err(|_| DnsError::BadName)
}

/// What a datagram (or TCP message) is to the query that waits.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Not a reply to this query (wrong id, question, not a response,
    /// unreadable header or question): dropped, the query keeps waiting.
    NotOurs,
    /// TC set: ask again over TCP (RFC 7766 §5).
    Truncated,
    /// The server could not answer (SERVFAIL, REFUSED, NOTIMP, FORMERR,
    /// ...): the next server is asked.
    ServerFailed(u16),
    /// The answer, positive or negative, or Malformed.
    Answer(Outcome),
}

/// Read `bytes` as the reply to query `id` for `q`.
pub(crate) fn read_reply(bytes: &[u8], id: u16, q: &Question) -> Reply {
    let mut d = BinDecoder::new(bytes);
    let Ok(header) = Header::read(&mut d) else { return Reply::NotOurs };
    let meta = header.metadata;
    if meta.id != id || meta.message_type != MessageType::Response || meta.op_code != OpCode::Query {
        return Reply::NotOurs;
    }
    if header.counts.queries != 1 {
        return Reply::NotOurs;
    }
    let Ok(asked) = Query::read(&mut d) else { return Reply::NotOurs };
    if asked.name() != &q.name || asked.query_type() != q.kind.record_type() || asked.query_class() != DNSClass::IN {
        return Reply::NotOurs;
    }
    if meta.truncation {
        return Reply::Truncated;
    }
    let Ok(msg) = Message::from_vec(bytes) else {
        return Reply::Answer(Err(DnsError::Malformed("the reply cannot be decoded")));
    };
    match msg.metadata.response_code {
        ResponseCode::NoError => Reply::Answer(answer(&msg, q)),
        ResponseCode::NXDomain => Reply::Answer(Err(DnsError::NxDomain { ttl: Some(negative_ttl(&msg, u32::MAX)) })),
        other => Reply::ServerFailed(u16::from(other)),
    }
}

/// RFC 2308 §5: a negative answer lives the smaller of its SOA record's
/// TTL and the SOA MINIMUM field (and of `cap`, the CNAME chain's TTL);
/// [`NEGATIVE_TTL_DEFAULT`] without an SOA.
fn negative_ttl(msg: &Message, cap: u32) -> Duration {
    let soa = msg.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
        _ => None,
    });
    match soa {
        Some(ttl) => Duration::from_secs(ttl.min(cap) as u64),
        None => NEGATIVE_TTL_DEFAULT.min(Duration::from_secs(cap as u64)),
    }
}

/// The records of `q`'s type at the end of its CNAME chain in `msg`'s
/// answer section, or "no data".
fn answer(msg: &Message, q: &Question) -> Outcome {
    let wanted = q.kind.record_type();
    let mut owner = &q.name;
    let mut ttl = u32::MAX;
    for _ in 0..=MAX_CNAME_CHAIN {
        let in_class = |r: &&Record| r.dns_class == DNSClass::IN && &r.name == owner;
        let rrset: Vec<&Record> = msg.answers.iter().filter(in_class).filter(|r| r.record_type() == wanted).collect();
        if !rrset.is_empty() {
            let ttl = rrset.iter().map(|r| r.ttl).fold(ttl, u32::min);
            let records = records(q.kind, &rrset)?;
            return Ok(Found { records, ttl: Some(Duration::from_secs(ttl as u64)) });
        }
        let cname = msg.answers.iter().filter(in_class).find_map(|r| match &r.data {
            RData::CNAME(target) => Some((r.ttl, &target.0)),
            _ => None,
        });
        match cname {
            Some((t, target)) => {
                ttl = ttl.min(t);
                owner = target;
            }
            None => return Err(DnsError::NoData { ttl: Some(negative_ttl(msg, ttl)) }),
        }
    }
    Err(DnsError::Malformed("CNAME chain too long"))
}

/// The data of an RRset of `kind`.
fn records(kind: Kind, rrset: &[&Record]) -> Result<Records, DnsError> {
    match kind {
        Kind::A | Kind::Aaaa => {
            let mut addrs: Vec<IpAddr> = Vec::with_capacity(rrset.len());
            for r in rrset {
                let ip = match &r.data {
                    RData::A(a) => IpAddr::V4(a.0),
                    RData::AAAA(a) => IpAddr::V6(a.0),
                    _ => return Err(DnsError::Malformed("an address record without an address")),
                };
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
            Ok(Records::Addresses(addrs))
        }
        Kind::Https => {
            let mut services = Vec::with_capacity(rrset.len());
            for r in rrset {
                let RData::HTTPS(h) = &r.data else {
                    return Err(DnsError::Malformed("an HTTPS record without HTTPS data"));
                };
                services.extend(https::decode(&h.0));
            }
            // RFC 9460 §2.4.1: with an AliasMode record in the set, the
            // ServiceMode ones are ignored.
            if services.iter().any(|s: &crate::vocabulary::svcb::ServiceRecord| s.is_alias()) {
                services.retain(|s| s.is_alias());
            }
            Ok(Records::Services(services))
        }
    }
}
