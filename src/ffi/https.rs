//! C ABI: HTTPS records (RFC 9460) for Happy Eyeballs v3
//! (draft-ietf-happy-happyeyeballs-v3-04 §4–§7): user resolvers that
//! answer them (`taps_https_resolver_implementation`, `taps_service_query`,
//! `taps_service_record`) and the Preconnection's settings. The rules are
//! the engine's; this file only converts.

use super::event_loop::EventLoop;
use super::handle::{try_mut, try_ok, try_ref};
use super::preconnection::Preconnection;
use super::resolver::{CResolver, ResolverQuery};
use super::{c_enum, fail, growable, guard, read_growable};
use crate::api::{self, Error};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Arc;

/// One HTTPS question of a race (HEv3 draft §4.1), asked of a user
/// resolver's `resolve_https`. Valid from `resolve_https` until the
/// resolver's taps_service_query_answer / taps_service_query_fail call for
/// it returns, or until `cancel_https` for it returns, whichever comes
/// first.
pub struct ServiceQuery {
    _opaque: [u8; 0],
}

impl ServiceQuery {
    /// The query behind a handle, for one call.
    fn api(&self) -> api::ServiceQuery {
        // SAFETY: a handle is a live query's raw handle while the C
        // contract lets the resolver use it.
        unsafe { api::ServiceQuery::from_raw(self as *const ServiceQuery as *const c_void) }
    }
}

/// A user resolver that answers HTTPS records (RFC 9460) besides A and
/// AAAA, for HEv3 (draft-ietf-happy-happyeyeballs-v3-04 §4). Set with
/// taps_event_loop_set_https_resolver, which copies it. The functions run
/// on the loop's thread with the loop locked: they must not call the
/// library, except taps_resolver_query_answer / taps_resolver_query_fail
/// and taps_service_query_answer / taps_service_query_fail, which may be
/// called from any thread, also from inside `resolve` / `resolve_https`.
///
/// A separate struct (not new members of taps_resolver_implementation,
/// which has no struct_size): a program built with an older header keeps
/// passing its taps_resolver_implementation unchanged, and its races ask
/// no HTTPS record. Initialize with designated initializers (struct_size 0:
/// this header's struct) or TAPS_HTTPS_RESOLVER_IMPLEMENTATION_INIT.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HttpsResolverImplementation {
    /// sizeof(taps_https_resolver_implementation) of the caller's header,
    /// in bytes; 0 means this header's full struct (docs/ABI.md). Functions
    /// past it are NULL to the library.
    pub struct_size: u32,
    /// Resolve `hostname` for `family` (AF_INET6 or AF_INET): a host name
    /// or an HTTPS record's TargetName. As in taps_resolver_implementation.
    /// Required.
    pub resolve: Option<
        extern "C" fn(query: *mut ResolverQuery, hostname: *const c_char, family: c_int, user_data: *mut c_void) -> c_int,
    >,
    /// The race ended before the query was answered; after it returns the
    /// handle is invalid. May be NULL.
    pub cancel: Option<extern "C" fn(query: *mut ResolverQuery, user_data: *mut c_void)>,
    /// Resolve the HTTPS records of `name` (the host name,
    /// `_PORT._https.host`, or an AliasMode record's target; lower case,
    /// no final dot). Return 0 and answer later through `query`, once; or
    /// return an error code (≠ 0) to fail it at once (the race goes on
    /// with A/AAAA, with no extra wait). NULL: every HTTPS question is
    /// refused, and races keep the RFC 8305 schedule exactly.
    pub resolve_https: Option<extern "C" fn(query: *mut ServiceQuery, name: *const c_char, user_data: *mut c_void) -> c_int>,
    /// The race ended before the HTTPS query was answered; after it returns
    /// the handle is invalid. May be NULL.
    pub cancel_https: Option<extern "C" fn(query: *mut ServiceQuery, user_data: *mut c_void)>,
    /// Passed to every function.
    pub user_data: *mut c_void,
}

growable!(HttpsResolverImplementation "taps_https_resolver_implementation" { resolve, cancel, resolve_https, cancel_https, user_data });

impl HttpsResolverImplementation {
    fn none() -> HttpsResolverImplementation {
        HttpsResolverImplementation {
            struct_size: std::mem::size_of::<HttpsResolverImplementation>() as u32,
            resolve: None,
            cancel: None,
            resolve_https: None,
            cancel_https: None,
            user_data: std::ptr::null_mut(),
        }
    }
}

/// Resolve host names of the loop's races with `resolver` (copied),
/// including HTTPS records for races that ask them
/// (taps_preconnection_set_https_policy; HEv3 draft §4.1); NULL goes back
/// to the system resolver (getaddrinfo, which asks no HTTPS record).
/// Replaces a resolver set by taps_event_loop_set_resolver. Races already
/// running keep theirs. Any thread. Errors: TAPS_ERROR_NULL_ARGUMENT
/// (loop NULL, or resolve NULL), TAPS_ERROR_INVALID_ARGUMENT (struct_size,
/// as for taps_preconnection_new).
#[no_mangle]
pub extern "C" fn taps_event_loop_set_https_resolver(
    event_loop: *mut EventLoop,
    resolver: *const HttpsResolverImplementation,
) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        if resolver.is_null() {
            lp.0.set_resolver(None);
            return 0;
        }
        // SAFETY: the caller's struct, of its struct_size.
        let r = match unsafe { read_growable(resolver, HttpsResolverImplementation::none()) } {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        if r.resolve.is_none() {
            return fail(Error::NullArgument);
        }
        lp.0.set_resolver(Some(Arc::new(CResolver {
            resolve: r.resolve,
            cancel: r.cancel,
            resolve_https: r.resolve_https,
            cancel_https: r.cancel_https,
            user_data: r.user_data,
        })));
        0
    })
}

/// One HTTPS resource record (RFC 9460 §2.2) for
/// taps_service_query_answer; everything is copied before it returns.
/// Start from zero (`{.priority = 1}`; struct_size 0 means this header's
/// struct) or TAPS_SERVICE_RECORD_INIT. Every element of one array has the
/// same struct_size (the array's stride).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ServiceRecordInfo {
    /// sizeof(taps_service_record) of the caller's header, in bytes; 0
    /// means this header's full struct (docs/ABI.md).
    pub struct_size: u32,
    /// SvcPriority: 0 is AliasMode (RFC 9460 §2.4.2: the target is asked
    /// next), ≥ 1 ServiceMode, lower preferred (HEv3 draft §5).
    pub priority: u16,
    /// The "port" SvcParam (§7.2), replacing the caller's; 0: none.
    pub port: u16,
    /// TargetName (any case, final dot optional); NULL, "" or "." is the
    /// owner name (in AliasMode: no service).
    pub target: *const c_char,
    /// The "alpn" ids (§7.1), `alpn_count` non-empty C strings; NULL when
    /// alpn_count is 0.
    pub alpn: *const *const c_char,
    /// Number of `alpn` ids.
    pub alpn_count: usize,
    /// The "no-default-alpn" key (§7.1.1): "http/1.1" is not in the set.
    pub no_default_alpn: bool,
    /// The "mandatory" keys (§8), SvcParamKey numbers; a record listing a
    /// key the library does not know is skipped. NULL when
    /// mandatory_count is 0.
    pub mandatory: *const u16,
    /// Number of `mandatory` keys.
    pub mandatory_count: usize,
    /// The "ipv4hint" addresses (§7.3); NULL when ipv4hint_count is 0.
    pub ipv4hint: *const libc::in_addr,
    /// Number of `ipv4hint` addresses.
    pub ipv4hint_count: usize,
    /// The "ipv6hint" addresses (§7.3); NULL when ipv6hint_count is 0.
    pub ipv6hint: *const libc::in6_addr,
    /// Number of `ipv6hint` addresses.
    pub ipv6hint_count: usize,
    /// The "ech" ECHConfigList bytes; NULL when ech_len is 0 (no ECH).
    pub ech: *const u8,
    /// Bytes of `ech`; 0: the record has no ECH config.
    pub ech_len: usize,
}

growable!(ServiceRecordInfo "taps_service_record" {
    priority, port, target, alpn, alpn_count, no_default_alpn, mandatory, mandatory_count,
    ipv4hint, ipv4hint_count, ipv6hint, ipv6hint_count, ech, ech_len,
});

impl ServiceRecordInfo {
    fn zero() -> ServiceRecordInfo {
        ServiceRecordInfo {
            struct_size: std::mem::size_of::<ServiceRecordInfo>() as u32,
            priority: 0,
            port: 0,
            target: std::ptr::null(),
            alpn: std::ptr::null(),
            alpn_count: 0,
            no_default_alpn: false,
            mandatory: std::ptr::null(),
            mandatory_count: 0,
            ipv4hint: std::ptr::null(),
            ipv4hint_count: 0,
            ipv6hint: std::ptr::null(),
            ipv6hint_count: 0,
            ech: std::ptr::null(),
            ech_len: 0,
        }
    }
}

/// `n` elements at `p`, or an empty slice; NULL with n > 0 is an error.
///
/// # Safety
/// A non-NULL `p` points at `n` readable elements.
unsafe fn slice<'a, T>(p: *const T, n: usize) -> Result<&'a [T], Error> {
    match (p.is_null(), n) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(Error::NullArgument),
        (false, _) => Ok(std::slice::from_raw_parts(p, n)),
    }
}

/// A C string as UTF-8 text.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn text(p: *const c_char, what: &'static str) -> Result<String, Error> {
    if p.is_null() {
        return Ok(String::new());
    }
    CStr::from_ptr(p).to_str().map(str::to_owned).map_err(|_| Error::InvalidArgument(what))
}

/// The library's copy of one C record.
///
/// # Safety
/// The record's pointers follow its documented contract.
unsafe fn convert(r: &ServiceRecordInfo) -> Result<api::ServiceRecord, Error> {
    let target = text(r.target, "taps_service_record.target is not UTF-8")?;
    let mut alpn = Vec::with_capacity(r.alpn_count);
    for &id in slice(r.alpn, r.alpn_count)? {
        if id.is_null() {
            return Err(Error::NullArgument);
        }
        let id = text(id, "taps_service_record.alpn: an id is not UTF-8")?;
        if id.is_empty() || id.len() > 255 {
            return Err(Error::InvalidArgument("taps_service_record.alpn: an id is empty or longer than 255 bytes"));
        }
        alpn.push(id);
    }
    let ipv4hint = slice(r.ipv4hint, r.ipv4hint_count)?.iter().map(|a| u32::from_be(a.s_addr).into()).collect();
    let ipv6hint = slice(r.ipv6hint, r.ipv6hint_count)?.iter().map(|a| a.s6_addr.into()).collect();
    let ech = slice(r.ech, r.ech_len)?;
    Ok(api::ServiceRecord {
        priority: r.priority,
        target: target.trim_end_matches('.').to_ascii_lowercase(),
        params: api::SvcParams {
            mandatory: slice(r.mandatory, r.mandatory_count)?.to_vec(),
            alpn,
            no_default_alpn: r.no_default_alpn,
            port: (r.port != 0).then_some(r.port),
            ipv4hint,
            ipv6hint,
            ech: (!ech.is_empty()).then(|| Arc::from(ech)),
            unknown_keys: Vec::new(),
        },
    })
}

/// The records of a C array (stride: the first element's struct_size).
///
/// # Safety
/// `records` points at `n` records of that size.
unsafe fn convert_all(records: *const ServiceRecordInfo, n: usize) -> Result<Vec<api::ServiceRecord>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if records.is_null() {
        return Err(Error::NullArgument);
    }
    let first = std::ptr::read_unaligned(records as *const u32);
    let stride = if first == 0 { std::mem::size_of::<ServiceRecordInfo>() } else { first as usize };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let at = (records as *const u8).add(i * stride) as *const ServiceRecordInfo;
        if std::ptr::read_unaligned(at as *const u32) != first {
            return Err(Error::InvalidArgument("taps_service_record.struct_size differs between elements of one array"));
        }
        let r = read_growable(at, ServiceRecordInfo::zero())?;
        out.push(convert(&r)?);
    }
    Ok(out)
}

/// Answer an HTTPS query with `n` records (n may be 0: NODATA) and their
/// TTL in seconds (RFC 9460; HEv3 draft §4.2: AliasMode records are
/// followed, ServiceMode records used). Everything is copied before it
/// returns. Any thread; once per query (later answers are ignored).
/// Errors: TAPS_ERROR_NULL_ARGUMENT (query NULL, records NULL with n > 0,
/// an array field NULL with a count > 0, an alpn id NULL),
/// TAPS_ERROR_INVALID_ARGUMENT (struct_size, text not UTF-8, an empty
/// alpn id): the query is then not answered.
#[no_mangle]
pub extern "C" fn taps_service_query_answer(
    query: *mut ServiceQuery,
    records: *const ServiceRecordInfo,
    n: usize,
    ttl_s: u32,
) -> c_int {
    guard!(fail(Error::Panic), {
        let query = try_ref!(query);
        // SAFETY: the C contract: n records, each per its documentation.
        match unsafe { convert_all(records, n) } {
            Ok(records) => {
                query.api().answer(records, ttl_s);
                0
            }
            Err(e) => fail(e),
        }
    })
}

/// Fail an HTTPS query with an error code: the race goes on without HTTPS
/// records (HEv3 draft §4.2). Any thread; once per query. Errors:
/// TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_service_query_fail(query: *mut ServiceQuery, error: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        try_ref!(query).api().fail(error);
        0
    })
}

/// When a race asks HTTPS records for its host names (HEv3 draft §4.1),
/// for taps_preconnection_set_https_policy.
///
/// cbindgen:prefix-with-name
/// cbindgen:rename-all=ScreamingSnakeCase
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpsPolicyCode {
    /// Port 443: ask the host name (the default); other ports: do not ask.
    Auto,
    /// Any port: the host name for 443, `_PORT._https.host` for others
    /// (RFC 9460 §9.1).
    On,
    /// Never ask.
    Off,
}

c_enum!(HttpsPolicyCode <=> api::HttpsPolicy, "not a taps_https_policy", [Auto, On, Off]);

/// When the Preconnection's races ask HTTPS records (HEv3 draft §4.1),
/// asked only of a resolver set with taps_event_loop_set_https_resolver.
/// Races already started keep theirs. Not while another call uses the
/// Preconnection. Errors: TAPS_ERROR_NULL_ARGUMENT,
/// TAPS_ERROR_INVALID_ARGUMENT (not a taps_https_policy).
#[no_mangle]
pub extern "C" fn taps_preconnection_set_https_policy(pre: *mut Preconnection, policy: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        let pre = try_mut!(pre);
        let policy = try_ok!(HttpsPolicyCode::try_from(policy));
        pre.0.set_https_policy(policy.into());
        0
    })
}

/// ECH required (HEv3 draft §6.3, RFC 9460 §5.1): racing never starts
/// before every HTTPS question has ended, and records with an ECH config
/// are tried first. Default false. Not while another call uses the
/// Preconnection. Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_preconnection_set_ech_required(pre: *mut Preconnection, required: bool) -> c_int {
    guard!(fail(Error::Panic), {
        try_mut!(pre).0.set_ech_required(required);
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(a: [u8; 4]) -> libc::in_addr {
        libc::in_addr { s_addr: u32::from_ne_bytes(a) }
    }

    #[test]
    fn records_are_converted_and_normalized() {
        let ids = [c"h2".as_ptr(), c"h3".as_ptr()];
        let v4 = [hint([127, 0, 0, 2])];
        let v6 = [libc::in6_addr { s6_addr: std::net::Ipv6Addr::LOCALHOST.octets() }];
        let keys = [3u16];
        let ech = [1u8, 2, 3];
        let mut r = ServiceRecordInfo::zero();
        r.priority = 2;
        r.target = c"CDN.Example.".as_ptr();
        r.alpn = ids.as_ptr();
        r.alpn_count = 2;
        r.no_default_alpn = true;
        r.mandatory = keys.as_ptr();
        r.mandatory_count = 1;
        r.ipv4hint = v4.as_ptr();
        r.ipv4hint_count = 1;
        r.ipv6hint = v6.as_ptr();
        r.ipv6hint_count = 1;
        r.ech = ech.as_ptr();
        r.ech_len = 3;
        // The array's stride: both sizeof(taps_service_record).
        let alias = ServiceRecordInfo::zero();
        let recs = [r, alias];
        // SAFETY: two valid records.
        let got = unsafe { convert_all(recs.as_ptr(), 2) }.unwrap();
        assert_eq!(got[0].priority, 2);
        assert_eq!(got[0].target, "cdn.example");
        assert_eq!(got[0].params.alpn, ["h2", "h3"]);
        assert!(got[0].params.no_default_alpn);
        assert_eq!(got[0].params.port, None);
        assert_eq!(got[0].params.mandatory, [3]);
        assert_eq!(got[0].params.ipv4hint, ["127.0.0.2".parse::<std::net::Ipv4Addr>().unwrap()]);
        assert_eq!(got[0].params.ipv6hint, [std::net::Ipv6Addr::LOCALHOST]);
        assert_eq!(got[0].params.ech.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(got.len(), 2);
        assert_eq!((got[1].priority, got[1].target.as_str(), got[1].params.ech.is_none()), (0, "", true));
    }

    #[test]
    fn bad_records_are_refused() {
        let mut r = ServiceRecordInfo::zero();
        r.alpn_count = 1;
        // SAFETY: the arrays are NULL with a count: refused before reading.
        assert_eq!(unsafe { convert_all(&r, 1) }.err(), Some(Error::NullArgument));
        r.alpn_count = 0;
        r.ech_len = 4;
        assert_eq!(unsafe { convert_all(&r, 1) }.err(), Some(Error::NullArgument));
        r.ech_len = 0;
        let empty = [c"".as_ptr()];
        r.alpn = empty.as_ptr();
        r.alpn_count = 1;
        assert!(matches!(unsafe { convert_all(&r, 1) }, Err(Error::InvalidArgument(_))));
        r.alpn_count = 0;
        // Elements of one array with different struct_sizes.
        let mut other = r;
        other.struct_size = 0;
        let two = [r, other];
        assert!(matches!(unsafe { convert_all(two.as_ptr(), 2) }, Err(Error::InvalidArgument(_))));
        assert_eq!(unsafe { convert_all(std::ptr::null(), 1) }.err(), Some(Error::NullArgument));
        assert_eq!(unsafe { convert_all(std::ptr::null(), 0) }.unwrap(), vec![]);
    }
}
