//! The DNS client against a fake server (fake.rs): what it sends, what it
//! accepts, how it retries, searches and decodes.

use super::fake::{self, FakeServer};
use super::message::{self, Question, Reply};
use super::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::svcb::{Alpn, EchConfigList, IpHint, Mandatory, SvcParamKey, SvcParamValue, Unknown, SVCB};
use hickory_proto::rr::rdata::{A as ARecord, AAAA as AaaaRecord};
use hickory_proto::rr::RecordType;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

const MS: Duration = Duration::from_millis(1);

fn client(servers: &[SocketAddr]) -> DnsClient {
    let mut conf = ResolvConf::with_servers(servers);
    conf.timeout = Duration::from_secs(2);
    conf.attempts = 1;
    DnsClient::new(conf, Hosts::default(), true)
}

/// Every answer of one lookup, in the order they were handed on.
fn lookup_all(c: &DnsClient, name: &str, kinds: &[Kind]) -> Vec<(Kind, Outcome)> {
    let mut got = Vec::new();
    c.lookup(name, kinds, &|| false, &mut |k, o| got.push((k, o)));
    got
}

fn qtype(q: &Message) -> RecordType {
    q.queries[0].query_type()
}

fn addrs(ips: &[&str]) -> Records {
    Records::Addresses(ips.iter().map(|s| s.parse().unwrap()).collect())
}

/// A server with web.test: A 192.0.2.1 (ttl 300), AAAA 2001:db8::1 (ttl
/// 200), HTTPS 1 . alpn=h2 (ttl 100).
fn web_server() -> FakeServer {
    FakeServer::start(|q, _| {
        let owner = q.queries[0].name().to_ascii();
        let rec = match qtype(q) {
            RecordType::A => fake::a(&owner, 300, "192.0.2.1"),
            RecordType::AAAA => fake::aaaa(&owner, 200, "2001:db8::1"),
            _ => fake::https(&owner, 100, SVCB::new(1, fake::name("."), vec![(SvcParamKey::Alpn, SvcParamValue::Alpn(Alpn(vec!["h2".into()])))])),
        };
        vec![fake::answer(q, vec![rec])]
    })
}

#[test]
fn asks_https_aaaa_a_back_to_back_with_edns_and_distinct_ids() {
    let s = web_server();
    let got = lookup_all(&client(&[s.addr]), "web.test", &[Kind::Https, Kind::Aaaa, Kind::A]);
    assert_eq!(got.len(), 3);
    let seen = s.seen();
    let types: Vec<_> = seen.iter().map(|q| qtype(&q.msg)).collect();
    assert_eq!(types, [RecordType::HTTPS, RecordType::AAAA, RecordType::A], "sent in HEv3 §4.1 order");
    let ids: std::collections::HashSet<u16> = seen.iter().map(|q| q.msg.metadata.id).collect();
    assert_eq!(ids.len(), 3, "one random id per query");
    for q in &seen {
        let edns = q.msg.edns.as_ref().expect("an OPT record");
        assert_eq!(edns.max_payload(), message::EDNS_PAYLOAD);
        assert!(q.msg.metadata.recursion_desired);
        assert!(!q.tcp);
    }
    let a = got.iter().find(|(k, _)| *k == Kind::A).unwrap();
    assert_eq!(a.1, Ok(Found { records: addrs(&["192.0.2.1"]), ttl: Some(Duration::from_secs(300)) }));
    let h = got.iter().find(|(k, _)| *k == Kind::Https).unwrap();
    let Ok(Found { records: Records::Services(s), ttl }) = &h.1 else { panic!("{h:?}") };
    assert_eq!((s[0].priority, s[0].params.alpn.clone(), *ttl), (1, vec!["h2".to_string()], Some(Duration::from_secs(100))));
}

#[test]
fn ids_differ_between_lookups() {
    let s = web_server();
    let c = client(&[s.addr]);
    for _ in 0..8 {
        c.lookup_addresses("web.test", Kind::A).unwrap();
    }
    let ids: std::collections::HashSet<u16> = s.seen().iter().map(|q| q.msg.metadata.id).collect();
    assert!(ids.len() >= 7, "8 random ids, {} distinct", ids.len());
}

#[test]
fn spoofed_ids_and_wrong_questions_are_dropped_then_the_answer_accepted() {
    let s = FakeServer::start(|q, _| {
        let mut spoof = q.clone();
        spoof.metadata.id = q.metadata.id.wrapping_add(1);
        let mut other_name = q.clone();
        other_name.queries[0].set_name(fake::name("evil.test"));
        let mut other_type = q.clone();
        other_type.queries[0].set_query_type(RecordType::MX);
        let mut no_question = q.clone();
        no_question.queries.clear();
        let lie = |m: &Message| fake::answer(m, vec![fake::a("web.test", 300, "203.0.113.66")]);
        vec![lie(&spoof), lie(&other_name), lie(&other_type), lie(&no_question), vec![1, 2, 3], fake::answer(q, vec![fake::a("WEB.test", 60, "192.0.2.1")])]
    });
    let mut c = client(&[s.addr]);
    c.conf.timeout = Duration::from_secs(3);
    let started = Instant::now();
    let got = c.lookup_addresses("web.test", Kind::A);
    assert_eq!(got, Ok((vec!["192.0.2.1".parse().unwrap()], Some(Duration::from_secs(60)))), "QNAME matched without case");
    assert!(started.elapsed() < Duration::from_secs(2), "the real answer ended the wait: {:?}", started.elapsed());
    assert_eq!(s.seen().len(), 1, "no retransmission");
}

#[test]
fn a_truncated_reply_is_asked_again_over_tcp() {
    let s = FakeServer::start(|q, tcp| {
        if tcp {
            vec![fake::answer(q, vec![fake::aaaa("big.test", 30, "2001:db8::5")])]
        } else {
            let mut m = fake::response(q);
            m.metadata.truncation = true;
            vec![m.to_vec().unwrap()]
        }
    });
    let got = client(&[s.addr]).lookup_addresses("big.test", Kind::Aaaa);
    assert_eq!(got, Ok((vec!["2001:db8::5".parse().unwrap()], Some(Duration::from_secs(30)))));
    let tcp: Vec<bool> = s.seen().iter().map(|q| q.tcp).collect();
    assert_eq!(tcp, [false, true]);
}

#[test]
fn silent_servers_get_exactly_attempts_tries_each_then_timeout() {
    let (s1, s2) = (FakeServer::start(|_, _| vec![]), FakeServer::start(|_, _| vec![]));
    let mut c = client(&[s1.addr, s2.addr]);
    c.conf.timeout = 100 * MS;
    c.conf.attempts = 2;
    let started = Instant::now();
    let got = c.lookup_addresses("silent.test", Kind::A);
    let took = started.elapsed();
    assert_eq!(got, Err(DnsError::Timeout));
    // timeout × attempts × servers = 400 ms.
    assert!(took >= 400 * MS && took < 3000 * MS, "{took:?}");
    std::thread::sleep(50 * MS);
    assert_eq!((s1.seen().len(), s2.seen().len()), (2, 2), "two rounds over both servers");
    let order: Vec<SocketAddr> = {
        let mut all: Vec<(Instant, SocketAddr)> =
            s1.seen().iter().map(|q| (q.at, s1.addr)).chain(s2.seen().iter().map(|q| (q.at, s2.addr))).collect();
        all.sort();
        all.into_iter().map(|(_, a)| a).collect()
    };
    assert_eq!(order, [s1.addr, s2.addr, s1.addr, s2.addr]);
    let ids: std::collections::HashSet<u16> = s1.seen().iter().chain(&s2.seen()).map(|q| q.msg.metadata.id).collect();
    assert!(ids.len() >= 3, "each try has its own id");
}

#[test]
fn servfail_and_unreachable_servers_move_to_the_next_at_once() {
    let failing = FakeServer::start(|q, _| vec![fake::rcode(q, ResponseCode::ServFail)]);
    let good = web_server();
    let mut c = client(&[fake::closed_udp(), failing.addr, good.addr]);
    c.conf.timeout = Duration::from_secs(3);
    let started = Instant::now();
    assert_eq!(c.lookup_addresses("web.test", Kind::A).unwrap().0, vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]);
    assert!(started.elapsed() < Duration::from_secs(2), "no timeout waited: {:?}", started.elapsed());
    assert_eq!((failing.seen().len(), good.seen().len()), (1, 1));
    let all_fail = client(&[failing.addr]);
    assert_eq!(all_fail.lookup_addresses("web.test", Kind::A), Err(DnsError::ServerFailure));
}

#[test]
fn search_list_order_follows_ndots_and_stops_at_the_first_name_found() {
    let s = FakeServer::start(|q, _| {
        let owner = q.queries[0].name().to_ascii();
        match (owner.as_str(), qtype(q)) {
            ("host.b.test.", RecordType::A) => vec![fake::answer(q, vec![fake::a(&owner, 50, "192.0.2.9")])],
            ("host.b.test.", _) => vec![fake::answer(q, vec![])],
            _ => vec![fake::rcode(q, ResponseCode::NXDomain)],
        }
    });
    let mut c = client(&[s.addr]);
    c.conf.search = vec!["a.test".into(), "b.test".into(), "c.test".into()];
    let got = lookup_all(&c, "host", &[Kind::Aaaa, Kind::A]);
    let names: Vec<String> = s.asked().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["host.a.test.", "host.a.test.", "host.b.test.", "host.b.test."], "c.test and the bare name not asked");
    assert!(got.contains(&(Kind::A, Ok(Found { records: addrs(&["192.0.2.9"]), ttl: Some(Duration::from_secs(50)) }))));
    assert!(matches!(got.iter().find(|(k, _)| *k == Kind::Aaaa), Some((_, Err(DnsError::NoData { .. })))));

    s.seen.lock().unwrap().clear();
    let got = c.lookup_addresses("x.y", Kind::A);
    let names: Vec<String> = s.asked().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["x.y.", "x.y.a.test.", "x.y.b.test.", "x.y.c.test."], "dots >= ndots: as is first");
    assert!(matches!(got, Err(DnsError::NxDomain { .. })));
    s.seen.lock().unwrap().clear();
    let _ = c.lookup_addresses("abs.test.", Kind::A);
    assert_eq!(s.asked().len(), 1, "a final dot: no search");
}

#[test]
fn follows_a_cname_chain_with_the_smallest_ttl() {
    let s = FakeServer::start(|q, _| {
        vec![fake::answer(
            q,
            vec![
                fake::cname("www.test", 300, "cdn.test"),
                fake::a("other.test", 1, "203.0.113.1"),
                fake::cname("cdn.test", 60, "edge.test"),
                fake::a("edge.test", 120, "192.0.2.1"),
                fake::a("edge.test", 90, "192.0.2.2"),
            ],
        )]
    });
    let got = client(&[s.addr]).lookup_addresses("www.test", Kind::A);
    assert_eq!(got, Ok((vec!["192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()], Some(Duration::from_secs(60)))));
}

#[test]
fn a_cname_loop_is_malformed() {
    let s = FakeServer::start(|q, _| vec![fake::answer(q, vec![fake::cname("a.test", 60, "b.test"), fake::cname("b.test", 60, "a.test")])]);
    assert!(matches!(client(&[s.addr]).lookup_addresses("a.test", Kind::A), Err(DnsError::Malformed(_))));
}

#[test]
fn negative_answers_carry_the_soa_ttl_or_a_small_default() {
    let s = FakeServer::start(|q, _| {
        let owner = q.queries[0].name().to_ascii();
        let mut m = fake::response(q);
        if owner.starts_with("gone") {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(fake::soa("test", 600, 45));
        } else if owner.starts_with("soa") {
            m.add_authority(fake::soa("test", 20, 3600));
        }
        vec![m.to_vec().unwrap()]
    });
    let c = client(&[s.addr]);
    assert_eq!(c.lookup_addresses("gone.test", Kind::A), Err(DnsError::NxDomain { ttl: Some(Duration::from_secs(45)) }));
    assert_eq!(c.lookup_addresses("soa.test", Kind::A), Err(DnsError::NoData { ttl: Some(Duration::from_secs(20)) }));
    assert_eq!(c.lookup_addresses("bare.test", Kind::Aaaa), Err(DnsError::NoData { ttl: Some(message::NEGATIVE_TTL_DEFAULT) }));
    assert_eq!(DnsError::NxDomain { ttl: None }.eai(), libc::EAI_NONAME);
    assert_eq!(DnsError::NoData { ttl: None }.eai(), libc::EAI_NODATA);
}

#[test]
fn the_hosts_file_answers_first_and_dns_is_not_asked() {
    let s = web_server();
    let mut c = client(&[s.addr]);
    c.hosts = Hosts::parse("192.0.2.7 web.test\n");
    let got = lookup_all(&c, "Web.Test", &[Kind::Https, Kind::Aaaa, Kind::A]);
    assert!(got.contains(&(Kind::A, Ok(Found { records: addrs(&["192.0.2.7"]), ttl: None }))));
    assert!(got.contains(&(Kind::Aaaa, Err(DnsError::NoData { ttl: None }))));
    assert!(got.contains(&(Kind::Https, Err(DnsError::NoData { ttl: None }))), "the file pins the name: no HTTPS");
    assert!(s.asked().is_empty(), "nothing went to DNS: {:?}", s.asked());
}

#[test]
fn localhost_and_invalid_are_answered_without_dns() {
    let s = web_server();
    let c = client(&[s.addr]);
    assert_eq!(c.lookup_addresses("a.LOCALHOST.", Kind::Aaaa).unwrap().0, vec![std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)]);
    assert_eq!(c.lookup_addresses("localhost", Kind::A).unwrap().0, vec![std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)]);
    assert!(matches!(c.lookup_https("x.invalid"), Err(DnsError::NxDomain { .. })));
    assert!(s.seen().is_empty());
}

#[test]
fn a_stop_request_ends_the_wait_on_a_silent_server() {
    let s = FakeServer::start(|_, _| vec![]);
    let mut c = client(&[s.addr]);
    c.conf.timeout = Duration::from_secs(5);
    let started = Instant::now();
    let mut got = 0;
    c.lookup("silent.test", &[Kind::A], &|| started.elapsed() > 50 * MS, &mut |_, _| got += 1);
    assert_eq!(got, 0);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

/// The HTTPS answer for a server that answers with `records`.
fn https_answer(records: Vec<hickory_proto::rr::Record>) -> Result<(Vec<ServiceRecord>, Option<Duration>), DnsError> {
    let records = Arc::new(records);
    let s = FakeServer::start(move |q, _| vec![fake::answer(q, records.to_vec())]);
    client(&[s.addr]).lookup_https("svc.test")
}

#[test]
fn https_alias_mode_keeps_only_the_alias() {
    let got = https_answer(vec![
        fake::https("svc.test", 300, SVCB::new(0, fake::name("Pool.Example.NET."), vec![])),
        fake::https("svc.test", 200, SVCB::new(1, fake::name("."), vec![])),
    ])
    .unwrap();
    assert_eq!(got.0, vec![ServiceRecord { priority: 0, target: "pool.example.net".into(), params: Default::default() }]);
    assert_eq!(got.1, Some(Duration::from_secs(200)));
}

#[test]
fn https_service_mode_decodes_every_known_key_and_unknown_numbers() {
    let params = vec![
        (SvcParamKey::Mandatory, SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::Alpn, SvcParamKey::Port]))),
        (SvcParamKey::Alpn, SvcParamValue::Alpn(Alpn(vec!["h3".into(), "h2".into()]))),
        (SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn),
        (SvcParamKey::Port, SvcParamValue::Port(8443)),
        (SvcParamKey::Ipv4Hint, SvcParamValue::Ipv4Hint(IpHint(vec![ARecord("192.0.2.1".parse().unwrap())]))),
        (SvcParamKey::EchConfigList, SvcParamValue::EchConfigList(EchConfigList(vec![0xfe, 0x0d, 0, 1]))),
        (SvcParamKey::Ipv6Hint, SvcParamValue::Ipv6Hint(IpHint(vec![AaaaRecord("2001:db8::1".parse().unwrap())]))),
        (SvcParamKey::Unknown(9), SvcParamValue::Unknown(Unknown(vec![1, 2]))),
        (SvcParamKey::Key(65001), SvcParamValue::Unknown(Unknown(vec![]))),
    ];
    let got = https_answer(vec![fake::https("svc.test", 60, SVCB::new(2, fake::name("svc.example.net."), params))]).unwrap();
    let want = ServiceRecord {
        priority: 2,
        target: "svc.example.net".into(),
        params: crate::vocabulary::svcb::SvcParams {
            mandatory: vec![1, 3],
            alpn: vec!["h3".into(), "h2".into()],
            no_default_alpn: true,
            port: Some(8443),
            ipv4hint: vec!["192.0.2.1".parse().unwrap()],
            ipv6hint: vec!["2001:db8::1".parse().unwrap()],
            ech: Some(Arc::from(&[0xfe, 0x0d, 0, 1][..])),
            unknown_keys: vec![9, 65001],
        },
    };
    assert_eq!(got, (vec![want], Some(Duration::from_secs(60))));
}

#[test]
fn unusable_https_records_are_dropped_alone() {
    let port0 = SVCB::new(1, fake::name("."), vec![(SvcParamKey::Port, SvcParamValue::Port(0))]);
    let missing = SVCB::new(2, fake::name("."), vec![(SvcParamKey::Mandatory, SvcParamValue::Mandatory(Mandatory(vec![SvcParamKey::Port])))]);
    let lonely = SVCB::new(3, fake::name("."), vec![(SvcParamKey::NoDefaultAlpn, SvcParamValue::NoDefaultAlpn)]);
    let empty_hint = SVCB::new(4, fake::name("."), vec![(SvcParamKey::Ipv4Hint, SvcParamValue::Ipv4Hint(IpHint(vec![])))]);
    let good = SVCB::new(5, fake::name("."), vec![(SvcParamKey::Port, SvcParamValue::Port(443))]);
    let records = [port0, missing, lonely, empty_hint, good].into_iter().map(|r| fake::https("svc.test", 60, r)).collect();
    let got = https_answer(records).unwrap().0;
    assert_eq!(got.iter().map(|r| r.priority).collect::<Vec<_>>(), [5]);
}

/// RDATA: priority 1, target ".", then `params` as raw bytes.
fn raw_https(params: &[u8]) -> Vec<u8> {
    let mut r = vec![0, 1, 0];
    r.extend_from_slice(params);
    r
}

#[test]
fn malformed_https_rdata_is_an_error() {
    let cases: [(&str, Vec<u8>); 5] = [
        ("duplicate key", raw_https(&[0, 3, 0, 2, 1, 187, 0, 3, 0, 2, 1, 188])),
        ("keys out of order", raw_https(&[0, 3, 0, 2, 1, 187, 0, 1, 0, 3, 2, b'h', b'2'])),
        ("ipv6hint of 4 bytes", raw_https(&[0, 6, 0, 4, 192, 0, 2, 1])),
        ("value past the rdata", raw_https(&[0, 3, 0, 9, 1])),
        ("truncated key", raw_https(&[0, 3, 0])),
    ];
    for (what, rdata) in cases {
        let got = https_answer(vec![fake::https_raw("svc.test", 60, rdata)]);
        assert!(matches!(got, Err(DnsError::Malformed(_))), "{what}: {got:?}");
    }
}

#[test]
fn hostile_bytes_are_never_ours_or_are_malformed() {
    let q = Question::new("web.test", Kind::A).unwrap();
    let query = message::query(7, &q, true).unwrap();
    assert!(matches!(message::read_reply(&query, 7, &q), Reply::NotOurs), "a query is not a reply");
    for n in 0..query.len() {
        assert!(matches!(message::read_reply(&query[..n], 7, &q), Reply::NotOurs), "{n} bytes");
    }
    let msg = Message::from_vec(&query).unwrap();
    let good = fake::answer(&msg, vec![fake::a("web.test", 60, "192.0.2.1")]);
    assert!(matches!(message::read_reply(&good, 7, &q), Reply::Answer(Ok(_))));
    assert!(matches!(message::read_reply(&good, 8, &q), Reply::NotOurs), "a spoofed id");
    let other = Question::new("web.test", Kind::Aaaa).unwrap();
    assert!(matches!(message::read_reply(&good, 7, &other), Reply::NotOurs), "a reply to a question not asked");
    // Cut inside the answer record: the header and question match, the
    // body cannot be read.
    assert!(matches!(message::read_reply(&good[..good.len() - 2], 7, &q), Reply::Answer(Err(DnsError::Malformed(_)))));
    // An answer count far larger than the records present.
    let mut lying = good.clone();
    lying[7] = 200;
    assert!(matches!(message::read_reply(&lying, 7, &q), Reply::Answer(Err(DnsError::Malformed(_)))));
}

#[test]
fn resolv_conf_text_makes_the_client() {
    let conf = ResolvConf::parse("nameserver 127.0.0.1:5353\nsearch corp.test\noptions ndots:2 timeout:1 attempts:3\n");
    let c = DnsClient::new(conf, Hosts::default(), nsswitch::dns_answers_addresses(Some("hosts: files mdns4 dns\n")));
    assert!(!c.answers_addresses());
    assert_eq!(c.conf.nameservers, vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]);
    assert_eq!((c.conf.ndots, c.conf.timeout, c.conf.attempts), (2, Duration::from_secs(1), 3));
}

#[test]
fn the_fuzz_corpus_reaches_the_decoders() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/dns_message");
    let mut answered = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        super::fuzz::reply(&bytes);
        let (id, q) = super::fuzz::carried(&bytes).expect("each seed carries a question");
        match message::read_reply(&bytes, id, &q) {
            Reply::Answer(_) => answered += 1,
            Reply::Truncated => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(answered >= 5, "{answered}");
    let https = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/dns_message/https")).unwrap();
    let (id, q) = super::fuzz::carried(&https).unwrap();
    let Reply::Answer(Ok(Found { records: Records::Services(s), .. })) = message::read_reply(&https, id, &q) else { panic!() };
    assert_eq!((s[0].params.port, s[0].params.unknown_keys.clone()), (Some(8443), vec![65001]));
}

#[test]
fn a_silent_first_server_is_left_for_the_second_after_one_timeout() {
    let silent = FakeServer::start(|_, _| vec![]);
    let good = web_server();
    let mut c = client(&[silent.addr, good.addr]);
    c.conf.timeout = 150 * MS;
    let started = Instant::now();
    assert!(c.lookup_addresses("web.test", Kind::Aaaa).is_ok());
    let took = started.elapsed();
    assert!(took >= 150 * MS && took < 2000 * MS, "{took:?}");
    assert_eq!((silent.seen().len(), good.seen().len()), (1, 1));
}

#[test]
fn each_answer_is_handed_on_as_it_arrives() {
    let s = FakeServer::start(|q, _| {
        let owner = q.queries[0].name().to_ascii();
        let rec = match qtype(q) {
            RecordType::A => {
                std::thread::sleep(600 * MS);
                fake::a(&owner, 60, "192.0.2.1")
            }
            _ => fake::aaaa(&owner, 60, "2001:db8::1"),
        };
        vec![fake::answer(q, vec![rec])]
    });
    let mut c = client(&[s.addr]);
    c.conf.timeout = Duration::from_secs(3);
    let started = Instant::now();
    let mut at = Vec::new();
    c.lookup("slow-a.test", &[Kind::Aaaa, Kind::A], &|| false, &mut |k, o| {
        assert!(o.is_ok());
        at.push((k, started.elapsed()));
    });
    assert_eq!(at.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [Kind::Aaaa, Kind::A]);
    assert!(at[0].1 < 450 * MS, "AAAA did not wait for A: {:?}", at[0].1);
    assert!(at[1].1 >= 600 * MS, "{:?}", at[1].1);
}

#[test]
fn a_server_without_edns_is_asked_again_without_the_opt_record() {
    let s = FakeServer::start(|q, _| match q.edns {
        Some(_) => vec![fake::rcode(q, ResponseCode::FormErr)],
        None => vec![fake::answer(q, vec![fake::a("old.test", 60, "192.0.2.3")])],
    });
    let got = client(&[s.addr]).lookup_addresses("old.test", Kind::A);
    assert_eq!(got.unwrap().0, vec!["192.0.2.3".parse::<std::net::IpAddr>().unwrap()]);
    let edns: Vec<bool> = s.seen().iter().map(|q| q.msg.edns.is_some()).collect();
    assert_eq!(edns, [true, false], "attempts 1: the retry without OPT is the same try");
}

#[test]
fn the_exchange_is_a_state_machine_driven_without_io() {
    use super::exchange::{Exchange, Step};
    let servers: Vec<SocketAddr> = vec!["192.0.2.53:53".parse().unwrap(), "192.0.2.54:53".parse().unwrap()];
    let mut conf = ResolvConf::with_servers(&servers);
    conf.timeout = Duration::from_secs(1);
    conf.attempts = 1;
    let steps = |x: &mut Exchange| std::iter::from_fn(|| x.step()).collect::<Vec<_>>();
    let sent = |steps: Vec<Step>, to: usize| -> Vec<Message> {
        steps
            .into_iter()
            .map(|s| match s {
                Step::Send { server, bytes } if server == to => Message::from_vec(&bytes).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let mut x = Exchange::new(&conf, "web.test", &[Kind::Aaaa, Kind::A], 0);
    let first = sent(steps(&mut x), 0);
    assert_eq!(first.iter().map(qtype).collect::<Vec<_>>(), [RecordType::AAAA, RecordType::A]);
    assert_eq!(x.deadline(), Some(1_000_000));
    // The AAAA question under the A query's id: nobody's.
    let mut forged = first[0].clone();
    forged.metadata.id = first[1].metadata.id;
    x.on_datagram(0, &fake::answer(&forged, vec![fake::aaaa("web.test", 5, "2001:db8::66")]), 10);
    assert!(steps(&mut x).is_empty(), "dropped, both keep waiting");
    // SERVFAIL to A: server 1 at once, a new id.
    x.on_datagram(0, &fake::rcode(&first[1], ResponseCode::ServFail), 20);
    let a = sent(steps(&mut x), 1).remove(0);
    assert_ne!(a.metadata.id, first[1].metadata.id);
    // AAAA's try times out at 1 s: server 1; its old id's late answer is dropped.
    x.on_time(999_999);
    assert!(steps(&mut x).is_empty());
    x.on_time(1_000_000);
    let aaaa = sent(steps(&mut x), 1).remove(0);
    x.on_datagram(0, &fake::answer(&first[0], vec![fake::aaaa("web.test", 5, "2001:db8::1")]), 1_000_001);
    assert!(steps(&mut x).is_empty());
    x.on_datagram(1, &fake::answer(&aaaa, vec![fake::aaaa("web.test", 7, "2001:db8::2")]), 1_000_002);
    let got = steps(&mut x);
    assert!(matches!(&got[..], [Step::Answer(Kind::Aaaa, Ok(Found { records: Records::Addresses(ips), .. }))] if ips == &["2001:db8::2".parse::<IpAddr>().unwrap()]));
    assert!(!x.is_done());
    // Server 1's socket fails: A has no try left.
    x.on_server_error(1, 1_000_003);
    assert!(matches!(&steps(&mut x)[..], [Step::Answer(Kind::A, Err(DnsError::ServerFailure))]));
    assert!(x.is_done() && x.deadline().is_none());
}
