//! C ABI: what a race learnt from DNS when it asked HTTPS records (HEv3,
//! draft-ietf-happy-happyeyeballs-v3-04 §4–§7): per attempt (ALPN,
//! SvcPriority, from a hint) and per race (the HTTPS records used, every
//! DNS answer). Only converts `Connection::attempt` and
//! `Connection::dns_report`.
//!
//! Strings returned are the library's: each connection keeps one copy of
//! every string it handed out, freed with the connection
//! (taps_connection_free).

use super::connection::Connection;
use super::handle::{try_mut, try_ok, try_ref};
use super::{fail, growable, guard, write_growable};
use crate::api::{Error, RecordType};
use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_int, CString};
use std::sync::Mutex;

/// The C strings handed out per connection id, kept until
/// taps_connection_free.
static STRINGS: once_cell::sync::Lazy<Mutex<HashMap<u64, HashSet<CString>>>> =
    once_cell::sync::Lazy::new(|| Mutex::new(HashMap::new()));

/// A C string equal to `s` (NULs dropped) that lives until the connection
/// `id` is freed; one copy per distinct string.
fn intern(id: u64, s: &str) -> *const c_char {
    let c = CString::new(s.replace('\0', "")).unwrap_or_default();
    let mut map = STRINGS.lock().unwrap_or_else(|p| p.into_inner());
    let set = map.entry(id).or_default();
    if let Some(have) = set.get(&c) {
        return have.as_ptr();
    }
    // The heap buffer of a CString does not move when the set grows.
    let ptr = c.as_ptr();
    set.insert(c);
    ptr
}

/// Free the strings handed out for connection `id` (taps_connection_free).
pub(super) fn forget(id: u64) {
    STRINGS.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
}

/// Number of ALPN ids attempt `index` (start order) could negotiate: those
/// of its HTTPS record usable with the caller's list, in the caller's
/// order (HEv3 draft §6.2), kept to the ids its protocol serves
/// (taps_preconnection_set_protocol_alpn) as its protocol or stage got
/// them (§6.1); 0 for an address no HTTPS record gave, for NULL, or for
/// an index past the end.
#[no_mangle]
pub extern "C" fn taps_connection_get_attempt_alpn_count(c: *const Connection, index: usize) -> usize {
    guard!(0, {
        try_ref!(c, else 0).api().attempt(index).map_or(0, |a| a.alpn.len())
    })
}

/// ALPN id `j` of attempt `index` (see taps_connection_get_attempt_alpn_count),
/// or NULL (NULL connection, an index past the end). The string is the
/// library's, valid until taps_connection_free.
#[no_mangle]
pub extern "C" fn taps_connection_get_attempt_alpn(c: *const Connection, index: usize, j: usize) -> *const c_char {
    guard!(std::ptr::null(), {
        let conn = try_ref!(c, else std::ptr::null()).api();
        match conn.attempt(index).ok().and_then(|a| a.alpn.get(j).cloned()) {
            Some(id) => intern(conn.id(), &id),
            None => std::ptr::null(),
        }
    })
}

/// Whether attempt `index` (start order) went to an address of an HTTPS
/// ServiceMode record: 1, with its SvcPriority (≥ 1; HEv3 draft §5) into
/// `*out`; 0 for an address no record gave (`*out` unchanged). Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_OUT_OF_RANGE (index ≥
/// taps_connection_attempt_count).
#[no_mangle]
pub extern "C" fn taps_connection_get_attempt_service_priority(c: *const Connection, index: usize, out: *mut u16) -> c_int {
    guard!(fail(Error::Panic), {
        let c = try_ref!(c);
        let out = try_mut!(out);
        match try_ok!(c.api().attempt(index)).svc_priority {
            Some(p) => {
                *out = p;
                1
            }
            None => 0,
        }
    })
}

/// Whether attempt `index` (start order) went to an address an HTTPS
/// record's ipv4hint/ipv6hint gave before the TargetName's A/AAAA answer
/// (HEv3 draft §7): 1 or 0. Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_OUT_OF_RANGE.
#[no_mangle]
pub extern "C" fn taps_connection_get_attempt_from_hint(c: *const Connection, index: usize) -> c_int {
    guard!(fail(Error::Panic), {
        let c = try_ref!(c);
        try_ok!(c.api().attempt(index)).from_hint as c_int
    })
}

/// One HTTPS ServiceMode record a race used (RFC 9460 §2.4.3), for
/// taps_connection_get_https_record. Set struct_size (or
/// TAPS_HTTPS_RECORD_INFO_INIT; 0 means this header's struct): the library
/// writes only the fields that fit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HttpsRecordInfo {
    /// sizeof(taps_https_record_info) of the caller's header, in bytes; 0
    /// means this header's full struct (docs/ABI.md).
    pub struct_size: u32,
    /// SvcPriority (≥ 1).
    pub priority: u16,
    /// The "port" SvcParam (RFC 9460 §7.2); 0: none (the caller's).
    pub port: u16,
    /// Index of the remote endpoint in the Preconnection.
    pub endpoint: usize,
    /// The effective TargetName (the owner name for "."), lower case; the
    /// library's, valid until taps_connection_free.
    pub target: *const c_char,
    /// Number of usable ALPN ids (taps_connection_get_https_record_alpn).
    pub alpn_count: usize,
    /// Whether the record carried an ECH config.
    pub ech: bool,
}

growable!(HttpsRecordInfo "taps_https_record_info" { priority, port, endpoint, target, alpn_count, ech });

/// The record type of a DNS answer in the race report.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsType {
    /// HTTPS (RFC 9460, type 65).
    Https,
    /// AAAA.
    Aaaa,
    /// A.
    A,
}

/// One DNS answer a race got (HEv3 draft §4.2), for
/// taps_connection_get_dns_answer. Set struct_size (or
/// TAPS_DNS_ANSWER_INFO_INIT; 0 means this header's struct): the library
/// writes only the fields that fit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DnsAnswerInfo {
    /// sizeof(taps_dns_answer_info) of the caller's header, in bytes; 0
    /// means this header's full struct (docs/ABI.md).
    pub struct_size: u32,
    /// The record type asked.
    pub record_type: DnsType,
    /// Index of the remote endpoint in the Preconnection.
    pub endpoint: usize,
    /// The name asked (the host, an alias target or a TargetName); the
    /// library's, valid until taps_connection_free.
    pub name: *const c_char,
    /// Arrival, µs since taps_preconnection_initiate_with_racing.
    pub at_us: u64,
    /// The number of records (addresses, or HTTPS records) when `error` is
    /// 0.
    pub count: usize,
    /// The resolver's error code, or 0 for an answer.
    pub error: c_int,
}

growable!(DnsAnswerInfo "taps_dns_answer_info" { record_type, endpoint, name, at_us, count, error });

/// Number of HTTPS ServiceMode records the race used (0 for a race that
/// asked none, and for NULL). Any thread.
#[no_mangle]
pub extern "C" fn taps_connection_get_https_record_count(c: *const Connection) -> usize {
    guard!(0, {
        try_ref!(c, else 0).api().dns_report().services.len()
    })
}

/// HTTPS record `index` the race used (in the order tried, HEv3 draft §5)
/// into `*out` (its struct_size set by the caller). Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_OUT_OF_RANGE (index ≥
/// taps_connection_get_https_record_count), TAPS_ERROR_INVALID_ARGUMENT
/// (out->struct_size below its smallest layout or inside a field).
#[no_mangle]
pub extern "C" fn taps_connection_get_https_record(c: *const Connection, index: usize, out: *mut HttpsRecordInfo) -> c_int {
    guard!(fail(Error::Panic), {
        let conn = try_ref!(c).api();
        try_mut!(out);
        let report = conn.dns_report();
        let Some(s) = report.services.get(index) else { return fail(Error::OutOfRange) };
        let info = HttpsRecordInfo {
            struct_size: 0,
            priority: s.priority,
            port: s.port.unwrap_or(0),
            endpoint: s.endpoint,
            target: intern(conn.id(), &s.target),
            alpn_count: s.alpn.len(),
            ech: s.ech,
        };
        // SAFETY: out is the caller's struct of its struct_size.
        try_ok!(unsafe { write_growable(out, info) });
        0
    })
}

/// ALPN id `j` of HTTPS record `index` (taps_connection_get_https_record),
/// or NULL (NULL connection, an index past the end). The string is the
/// library's, valid until taps_connection_free.
#[no_mangle]
pub extern "C" fn taps_connection_get_https_record_alpn(c: *const Connection, index: usize, j: usize) -> *const c_char {
    guard!(std::ptr::null(), {
        let conn = try_ref!(c, else std::ptr::null()).api();
        match conn.dns_report().services.get(index).and_then(|s| s.alpn.get(j)) {
            Some(id) => intern(conn.id(), id),
            None => std::ptr::null(),
        }
    })
}

/// Number of DNS answers of a race that asked HTTPS records, including
/// those taken up to 1 s after the win (HEv3 draft §6; they start
/// nothing); 0 for a race that asked none, and for NULL. Any thread.
#[no_mangle]
pub extern "C" fn taps_connection_get_dns_answer_count(c: *const Connection) -> usize {
    guard!(0, {
        try_ref!(c, else 0).api().dns_report().answers.len()
    })
}

/// DNS answer `index` (arrival order) into `*out` (its struct_size set by
/// the caller). Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_OUT_OF_RANGE
/// (index ≥ taps_connection_get_dns_answer_count),
/// TAPS_ERROR_INVALID_ARGUMENT (out->struct_size).
#[no_mangle]
pub extern "C" fn taps_connection_get_dns_answer(c: *const Connection, index: usize, out: *mut DnsAnswerInfo) -> c_int {
    guard!(fail(Error::Panic), {
        let conn = try_ref!(c).api();
        try_mut!(out);
        let report = conn.dns_report();
        let Some(a) = report.answers.get(index) else { return fail(Error::OutOfRange) };
        let info = DnsAnswerInfo {
            struct_size: 0,
            record_type: match a.record {
                RecordType::Https => DnsType::Https,
                RecordType::Aaaa => DnsType::Aaaa,
                RecordType::A => DnsType::A,
            },
            endpoint: a.endpoint,
            name: intern(conn.id(), &a.name),
            at_us: a.at_us,
            count: *a.result.as_ref().unwrap_or(&0),
            error: a.result.err().unwrap_or(0),
        };
        // SAFETY: out is the caller's struct of its struct_size.
        try_ok!(unsafe { write_growable(out, info) });
        0
    })
}

