//! The entry point of the `dns_message` fuzz target (fuzz/): arbitrary
//! bytes read as a reply by the matcher, the message decoder, the CNAME
//! chain walk and the HTTPS decoder. Not a stable API.

use super::message::{self, Question, Reply};
use super::{Found, Kind, Records};
use hickory_proto::op::{Header, Query};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// The id and question `bytes` carry, when they can be read: the fuzzer
/// then reaches past the matcher.
pub(crate) fn carried(bytes: &[u8]) -> Option<(u16, Question)> {
    let mut d = BinDecoder::new(bytes);
    let header = Header::read(&mut d).ok()?;
    let q = Query::read(&mut d).ok()?;
    let kind = match q.query_type() {
        RecordType::A => Kind::A,
        RecordType::AAAA => Kind::Aaaa,
        _ => Kind::Https,
    };
    Some((header.metadata.id, Question { name: q.name().clone(), kind }))
}

/// Read `bytes` as a reply (to the question they carry, and to others);
/// panics only when a decoded answer breaks the client's promises (an
/// address of the wrong family, a usable HTTPS record with port 0...).
pub fn reply(bytes: &[u8]) {
    let mut questions = vec![(0, Question::new("fuzz.example", Kind::Https).expect("a valid name"))];
    if let Some((id, q)) = carried(bytes) {
        for kind in [Kind::Https, Kind::Aaaa, Kind::A] {
            questions.push((id, Question { name: q.name.clone(), kind }));
        }
        questions.push((id.wrapping_add(1), q));
    }
    for (id, q) in &questions {
        if let Reply::Answer(Ok(found)) = message::read_reply(bytes, *id, q) {
            check(q.kind, &found);
        }
    }
}

fn check(kind: Kind, found: &Found) {
    assert!(found.ttl.is_some(), "a DNS answer has a TTL");
    match &found.records {
        Records::Addresses(ips) => {
            assert!(!ips.is_empty(), "a positive answer has records");
            assert!(ips.iter().all(|ip| ip.is_ipv6() == (kind == Kind::Aaaa)), "addresses of the asked family");
            assert!(kind != Kind::Https);
        }
        Records::Services(services) => {
            assert_eq!(kind, Kind::Https);
            let alias = services.iter().any(|s| s.is_alias());
            for s in services {
                assert!(!alias || s.is_alias(), "AliasMode records alone when the set has one");
                let p = &s.params;
                if s.is_alias() {
                    assert_eq!(*p, Default::default(), "AliasMode SvcParams are ignored");
                }
                assert_ne!(p.port, Some(0), "port 0 makes a record unusable");
                assert!(!p.no_default_alpn || !p.alpn.is_empty());
                assert!(!p.mandatory.contains(&0));
                assert!(!s.target.ends_with('.'));
            }
        }
    }
}
