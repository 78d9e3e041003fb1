//! HTTPS records (RFC 9460) from hickory-proto's SVCB data to the
//! library's [`ServiceRecord`]. hickory-proto has already refused what is
//! malformed on the wire (a value running past its RDATA, keys out of
//! order or repeated, §2.2; an address hint whose length is not a whole
//! number of addresses of its family): such a reply is not decoded at
//! all. Here, a record that reads but cannot be used is dropped alone
//! (the others of its set stay):
//!
//! - "port" 0 (no service listens there);
//! - an empty "alpn", "ipv4hint" or "ipv6hint" (§7.1, §7.3);
//! - "no-default-alpn" without "alpn" (§7.1.1: not self-consistent);
//! - "mandatory" naming key 0, or a key the record does not carry (§8).
//!
//! Keys the library does not know are kept by number
//! ([`SvcParams::unknown_keys`]) for the engine's "mandatory" check.

use crate::vocabulary::svcb::{key, ServiceRecord, SvcParams};
use hickory_proto::rr::rdata::svcb::{SvcParamValue, SVCB};
use std::sync::Arc;

/// The record `svcb` as the library reads it, or `None` when it cannot be
/// used (see the module docs).
pub(crate) fn decode(svcb: &SVCB) -> Option<ServiceRecord> {
    let target = svcb.target_name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let mut record = ServiceRecord { priority: svcb.svc_priority, target, params: SvcParams::default() };
    if record.is_alias() {
        // RFC 9460 §2.4.2: an AliasMode record's SvcParams are ignored.
        return Some(record);
    }
    let p = &mut record.params;
    let mut present: Vec<u16> = Vec::with_capacity(svcb.svc_params.len());
    for (key, value) in &svcb.svc_params {
        present.push(u16::from(*key));
        match value {
            SvcParamValue::Mandatory(m) => p.mandatory = m.0.iter().map(|k| u16::from(*k)).collect(),
            SvcParamValue::Alpn(a) if a.0.is_empty() => return None,
            SvcParamValue::Alpn(a) => p.alpn = a.0.clone(),
            SvcParamValue::NoDefaultAlpn => p.no_default_alpn = true,
            SvcParamValue::Port(0) => return None,
            SvcParamValue::Port(port) => p.port = Some(*port),
            SvcParamValue::Ipv4Hint(h) if h.0.is_empty() => return None,
            SvcParamValue::Ipv4Hint(h) => p.ipv4hint = h.0.iter().map(|a| a.0).collect(),
            SvcParamValue::Ipv6Hint(h) if h.0.is_empty() => return None,
            SvcParamValue::Ipv6Hint(h) => p.ipv6hint = h.0.iter().map(|a| a.0).collect(),
            SvcParamValue::EchConfigList(e) => p.ech = Some(Arc::from(e.0.as_slice())),
            SvcParamValue::Unknown(_) => p.unknown_keys.push(u16::from(*key)),
        }
    }
    if p.no_default_alpn && p.alpn.is_empty() {
        return None;
    }
    if p.mandatory.iter().any(|k| *k == key::MANDATORY || !present.contains(k)) {
        return None;
    }
    Some(record)
}
