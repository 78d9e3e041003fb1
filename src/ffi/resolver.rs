//! C ABI: user resolvers (`taps_resolver_implementation`) and their queries
//! (`taps_resolver_query`).

use super::event_loop::EventLoop;
use super::handle::{opt_ref, try_ref};
use super::{fail, guard};
use crate::api::{self, Error, Family};
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Arc;

/// One query of a user resolver. Valid from `resolve` until the resolver's
/// taps_resolver_query_answer / taps_resolver_query_fail call for it returns, or
/// until `cancel` for it returns, whichever comes first.
pub struct ResolverQuery {
    _opaque: [u8; 0],
}

impl ResolverQuery {
    /// The query behind a handle, for one call.
    fn api(&self) -> api::ResolverQuery {
        // SAFETY: a handle is a live query's raw handle while the C
        // contract lets the resolver use it.
        unsafe { api::ResolverQuery::from_raw(self as *const ResolverQuery as *const c_void) }
    }
}

/// A resolver the program brings (a DNS library, a mock), asked for each
/// host name once per family (RFC 8305 §3: AAAA and A separately and at
/// once). Copied by taps_event_loop_set_resolver. The functions run on the
/// loop's thread with the loop locked: they must not call the library,
/// except taps_resolver_query_answer / taps_resolver_query_fail, which may be called
/// from any thread, also from inside `resolve`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ResolverImplementation {
    /// Resolve `hostname` for `family` (AF_INET6 or AF_INET). Return 0 and
    /// answer later through `query`, once; or return an error code (≠ 0) to
    /// fail the query at once. Required.
    pub resolve: Option<
        extern "C" fn(query: *mut ResolverQuery, hostname: *const c_char, family: c_int, user_data: *mut c_void) -> c_int,
    >,
    /// The race ended before the query was answered; after it returns the
    /// handle is invalid. May be NULL.
    pub cancel: Option<extern "C" fn(query: *mut ResolverQuery, user_data: *mut c_void)>,
    /// Passed to every function.
    pub user_data: *mut c_void,
}

/// The functions of a C resolver, from a taps_resolver_implementation
/// (no HTTPS) or a taps_https_resolver_implementation.
#[derive(Clone, Copy)]
pub(super) struct CResolver {
    pub(super) resolve: Option<
        extern "C" fn(query: *mut ResolverQuery, hostname: *const c_char, family: c_int, user_data: *mut c_void) -> c_int,
    >,
    pub(super) cancel: Option<extern "C" fn(query: *mut ResolverQuery, user_data: *mut c_void)>,
    pub(super) resolve_https: Option<
        extern "C" fn(query: *mut super::https::ServiceQuery, name: *const c_char, user_data: *mut c_void) -> c_int,
    >,
    pub(super) cancel_https: Option<extern "C" fn(query: *mut super::https::ServiceQuery, user_data: *mut c_void)>,
    pub(super) user_data: *mut c_void,
}

// SAFETY: as for CProtocol.
unsafe impl Send for CResolver {}
// SAFETY: as for CProtocol.
unsafe impl Sync for CResolver {}

impl api::Resolver for CResolver {
    fn resolve(&self, query: api::ResolverQuery, host: &str, family: Family) -> Result<(), i32> {
        let Some(resolve) = self.resolve else { return Err(libc::EAI_SYSTEM) };
        let Ok(host) = CString::new(host) else { return Err(libc::EAI_NONAME) };
        let af = match family {
            Family::V6 => libc::AF_INET6,
            Family::V4 => libc::AF_INET,
        };
        match resolve(query.as_raw() as *mut ResolverQuery, host.as_ptr(), af, self.user_data) {
            0 => Ok(()),
            code => Err(code),
        }
    }

    fn cancel(&self, query: &api::ResolverQuery) {
        if let Some(cancel) = self.cancel {
            cancel(query.as_raw() as *mut ResolverQuery, self.user_data);
        }
    }

    fn resolve_https(&self, query: api::ServiceQuery, name: &str) -> Result<(), i32> {
        // No resolve_https: refused as the Rust default does, so the race
        // keeps the RFC 8305 schedule.
        let Some(resolve_https) = self.resolve_https else { return Err(libc::ENOTSUP) };
        let Ok(name) = CString::new(name) else { return Err(libc::EAI_NONAME) };
        match resolve_https(query.as_raw() as *mut super::https::ServiceQuery, name.as_ptr(), self.user_data) {
            0 => Ok(()),
            code => Err(code),
        }
    }

    fn cancel_https(&self, query: &api::ServiceQuery) {
        if let Some(cancel_https) = self.cancel_https {
            cancel_https(query.as_raw() as *mut super::https::ServiceQuery, self.user_data);
        }
    }
}

/// Resolve host names of the loop's races with `resolver` (copied); NULL
/// goes back to the system resolver (getaddrinfo on worker threads). This
/// resolver answers A/AAAA only: races ask it no HTTPS record (see
/// taps_event_loop_set_https_resolver).
/// Races already running keep theirs. Errors: TAPS_ERROR_NULL_ARGUMENT
/// (loop NULL, or resolve NULL).
#[no_mangle]
pub extern "C" fn taps_event_loop_set_resolver(event_loop: *mut EventLoop, resolver: *const ResolverImplementation) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = try_ref!(event_loop);
        match opt_ref!(resolver) {
            None => lp.0.set_resolver(None),
            Some(r) if r.resolve.is_none() => return fail(Error::NullArgument),
            Some(r) => lp.0.set_resolver(Some(Arc::new(CResolver {
                resolve: r.resolve,
                cancel: r.cancel,
                resolve_https: None,
                cancel_https: None,
                user_data: r.user_data,
            }))),
        }
        0
    })
}

/// Answer a query with `n` addresses (sockaddr_in / sockaddr_in6 in
/// `addrs`; their ports are ignored, the endpoint's is used; addresses of
/// the other family are ignored; n may be 0). Any thread; once per query.
/// Errors: TAPS_ERROR_NULL_ARGUMENT (query NULL, or addrs NULL with n > 0).
#[no_mangle]
pub extern "C" fn taps_resolver_query_answer(query: *mut ResolverQuery, addrs: *const libc::sockaddr_storage, n: usize) -> c_int {
    guard!(fail(Error::Panic), {
        let query = try_ref!(query);
        if addrs.is_null() && n > 0 {
            return fail(Error::NullArgument);
        }
        let mut ips = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: addrs holds n entries per the contract.
            if let Some(ip) = unsafe { super::sockaddr_ip(addrs.add(i) as *const libc::sockaddr) } {
                ips.push(ip);
            }
        }
        query.api().answer(&ips);
        0
    })
}

/// Fail a query with an error code (reported as the race's resolution
/// error, taps_connection_get_os_error, if no query finds an address). Any
/// thread; once per query. Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn taps_resolver_query_fail(query: *mut ResolverQuery, error: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        try_ref!(query).api().fail(error);
        0
    })
}
