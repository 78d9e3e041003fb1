//! User protocols and user resolvers (RFC 9623 §4.1: the PROTOCOL level
//! and the endpoints' resolution).
//!
//! A protocol is registered with an [`super::EventLoop`]
//! ([`super::EventLoop::add_protocol`]) and raced like TCP and UDP when
//! the selection properties keep it. Its attempt is ready only when the
//! protocol says so (after its own handshake): that is the stage at which
//! the race is won and the losers are cancelled.

use crate::runtime::callbacks::{UserProtocol, UserResolver};
use crate::runtime::protocol::{AttemptHandle, Completion};
use crate::runtime::resolver::QueryHandle;
use crate::engine::Family;
use crate::vocabulary::svcb::ServiceRecord;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::Arc;

pub use crate::engine::select::ProtocolTraits;
pub use crate::vocabulary::protocol::{PathInfo, ProtocolConnection};

/// A user protocol. Its methods run on the loop's thread with the loop's
/// lock held: they must not call back into the library, except
/// [`ProtocolAttempt::ready`] / [`ProtocolAttempt::failed`], which may be
/// called from any thread at any time.
pub trait Protocol: Send + Sync {
    /// Start an attempt to `remote` on `path`. Report the result later
    /// through `attempt` (exactly once), or return an errno to fail at once.
    fn start(&self, attempt: ProtocolAttempt, remote: SocketAddr, path: &PathInfo) -> Result<(), i32>;
    /// The race no longer needs this attempt (another won, or the race
    /// ended): stop it and release what it holds. A completion reported
    /// after this returns is ignored.
    fn cancel(&self, attempt: &ProtocolAttempt);
    /// Close a connection this protocol reported ready: the winner when its
    /// Connection is closed or freed, or an attempt that became ready after
    /// the race was decided.
    fn close(&self, connection: ProtocolConnection);
}

/// One attempt of a user protocol. Clone it freely; complete it once.
///
/// cbindgen:ignore
#[derive(Clone)]
pub struct ProtocolAttempt(pub(crate) Arc<AttemptHandle>);

impl ProtocolAttempt {
    /// The attempt's connection is ready: `fd` (if any) becomes the
    /// Connection's fd, `data` is given back to [`Protocol::close`]. Any
    /// thread; a second completion is ignored.
    pub fn ready(&self, fd: Option<RawFd>, data: usize) {
        self.0.complete(Completion::Ready(fd, data));
    }

    /// The attempt failed with `errno`. Any thread; a second completion is
    /// ignored.
    pub fn failed(&self, errno: i32) {
        self.0.complete(Completion::Failed(errno));
    }

    /// The attempt's index in its race (its AttemptInfo index).
    pub fn index(&self) -> usize {
        self.0.attempt
    }

    /// The ALPN ids (RFC 7301) the attempt is for, most preferred first
    /// (draft-ietf-happy-happyeyeballs-v3-04 §6.1): for an address that
    /// came with an HTTPS record (RFC 9460), its service's usable ids (the
    /// record's ALPN set, RFC 9460 §7.1.2, kept to the caller's ids in the
    /// caller's order when [`super::Preconnection::set_alpn`] gave some);
    /// for any other address, the Preconnection's list (empty for none).
    pub fn alpn(&self) -> &[String] {
        &self.0.security.alpn.names
    }

    /// [`ProtocolAttempt::alpn`] in the extension's wire format (each id
    /// prefixed by its length in one byte).
    pub fn alpn_wire(&self) -> &[u8] {
        &self.0.security.alpn.wire
    }

    /// [`ProtocolAttempt::alpn`] as C strings, for the C ABI.
    pub(crate) fn alpn_c(&self) -> &[std::ffi::CString] {
        &self.0.security.alpn.c_names
    }

    /// The ECHConfigList (draft-ietf-tls-esni) of the HTTPS record the
    /// attempt's address came with ("ech" SvcParam, HEv3 §6.3); `None` for
    /// an address with no record or a record without one.
    pub fn ech_config(&self) -> Option<&[u8]> {
        self.0.security.ech.as_deref()
    }

    /// The attempt's address, stable while any clone of it lives: the
    /// handle the C ABI gives to a protocol's `start` and `cancel`.
    pub fn as_raw(&self) -> *const std::ffi::c_void {
        Arc::as_ptr(&self.0) as *const std::ffi::c_void
    }

    /// A clone of the attempt whose address [`ProtocolAttempt::as_raw`]
    /// gave.
    ///
    /// # Safety
    /// `raw` came from `as_raw` of an attempt that is still alive (the
    /// library holds it until the attempt is completed or cancelled).
    pub unsafe fn from_raw(raw: *const std::ffi::c_void) -> ProtocolAttempt {
        let ptr = raw as *const AttemptHandle;
        Arc::increment_strong_count(ptr);
        ProtocolAttempt(Arc::from_raw(ptr))
    }
}

impl std::fmt::Debug for ProtocolAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolAttempt").field("race", &self.0.race).field("attempt", &self.0.attempt).finish()
    }
}

/// A user resolver: answers the per-family queries of host names
/// (RFC 8305 §3: AAAA and A separately). Its methods run on the loop's
/// thread with the loop's lock held: they must not call back into the
/// library, except [`ResolverQuery::answer`] / [`ResolverQuery::fail`],
/// which may be called from any thread at any time.
pub trait Resolver: Send + Sync {
    /// Resolve `host` for `family`; answer later through `query` (exactly
    /// once), or return an error code to fail the query at once.
    fn resolve(&self, query: ResolverQuery, host: &str, family: Family) -> Result<(), i32>;
    /// The race ended before the query was answered. An answer after this
    /// returns is ignored.
    fn cancel(&self, query: &ResolverQuery) {
        let _ = query;
    }
    /// Resolve the HTTPS records (RFC 9460) of `name` for a race that asks
    /// them (HEv3, see [`super::Preconnection::set_https_policy`]): the
    /// host name, `_PORT._https.host`, or an AliasMode target. Answer
    /// later through `query` (exactly once), or return an error code to
    /// fail it at once. The default refuses (`ENOTSUP`): the race goes on
    /// with A/AAAA alone, after no extra wait. The TargetNames' addresses
    /// are then asked through [`Resolver::resolve`] like any host's.
    fn resolve_https(&self, query: ServiceQuery, name: &str) -> Result<(), i32> {
        let _ = (query, name);
        Err(libc::ENOTSUP)
    }
    /// The race ended before the HTTPS query was answered.
    fn cancel_https(&self, query: &ServiceQuery) {
        let _ = query;
    }
}

/// One HTTPS query of a race (RFC 9460). Clone it freely; answer it once,
/// from any thread.
///
/// cbindgen:ignore
#[derive(Clone)]
pub struct ServiceQuery(pub(crate) Arc<crate::runtime::https::ServiceQueryHandle>);

impl ServiceQuery {
    /// The records found (an empty list for none), and their TTL in
    /// seconds. AliasMode records are followed, ServiceMode records used
    /// (HEv3 draft §4.2.1). Any thread.
    pub fn answer(&self, records: Vec<ServiceRecord>, ttl: u32) {
        self.0.answer(Ok((records, ttl)));
    }

    /// The query failed with an error code: the race goes on without
    /// HTTPS records. Any thread.
    pub fn fail(&self, code: i32) {
        self.0.answer(Err(code));
    }

    /// Index of the remote endpoint in the Preconnection.
    pub fn endpoint(&self) -> usize {
        self.0.endpoint
    }

    /// The name asked.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The query's address, stable while any clone of it lives: the handle
    /// the C ABI gives to a resolver's `resolve_https` and `cancel_https`.
    pub fn as_raw(&self) -> *const std::ffi::c_void {
        Arc::as_ptr(&self.0) as *const std::ffi::c_void
    }

    /// A clone of the query whose address [`ServiceQuery::as_raw`] gave.
    ///
    /// # Safety
    /// `raw` came from `as_raw` of a query that is still alive (the library
    /// holds it until the race ends).
    pub unsafe fn from_raw(raw: *const std::ffi::c_void) -> ServiceQuery {
        let ptr = raw as *const crate::runtime::https::ServiceQueryHandle;
        Arc::increment_strong_count(ptr);
        ServiceQuery(Arc::from_raw(ptr))
    }
}

impl std::fmt::Debug for ServiceQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceQuery").field("race", &self.0.race).field("endpoint", &self.0.endpoint).field("name", &self.0.name).finish()
    }
}

/// One DNS query of a race. Clone it freely; answer it once.
///
/// cbindgen:ignore
#[derive(Clone)]
pub struct ResolverQuery(pub(crate) Arc<QueryHandle>);

impl ResolverQuery {
    /// The addresses found (possibly none); the endpoint's port is used.
    /// Addresses of the other family are ignored. Any thread.
    pub fn answer(&self, addrs: &[IpAddr]) {
        self.0.answer(Ok(addrs.to_vec()));
    }

    /// The query failed with an error code (reported as the race's
    /// resolution error if no query finds an address). Any thread.
    pub fn fail(&self, code: i32) {
        self.0.answer(Err(code));
    }

    /// The family asked for.
    pub fn family(&self) -> Family {
        self.0.key.family
    }

    /// The query's address, stable while any clone of it lives: the handle
    /// the C ABI gives to a resolver's `resolve` and `cancel`.
    pub fn as_raw(&self) -> *const std::ffi::c_void {
        Arc::as_ptr(&self.0) as *const std::ffi::c_void
    }

    /// A clone of the query whose address [`ResolverQuery::as_raw`] gave.
    ///
    /// # Safety
    /// `raw` came from `as_raw` of a query that is still alive (the library
    /// holds it until the race ends).
    pub unsafe fn from_raw(raw: *const std::ffi::c_void) -> ResolverQuery {
        let ptr = raw as *const QueryHandle;
        Arc::increment_strong_count(ptr);
        ResolverQuery(Arc::from_raw(ptr))
    }
}

impl std::fmt::Debug for ResolverQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolverQuery").field("race", &self.0.race).field("key", &self.0.key).finish()
    }
}

/// A user protocol as the runtime calls it: its attempts become
/// [`ProtocolAttempt`] handles.
pub(crate) struct ProtocolAdapter(pub(crate) Arc<dyn Protocol>);

impl UserProtocol for ProtocolAdapter {
    fn start(&self, attempt: Arc<AttemptHandle>, remote: SocketAddr, path: &PathInfo) -> Result<(), i32> {
        self.0.start(ProtocolAttempt(attempt), remote, path)
    }

    fn cancel(&self, attempt: Arc<AttemptHandle>) {
        self.0.cancel(&ProtocolAttempt(attempt));
    }

    fn close(&self, connection: ProtocolConnection) {
        self.0.close(connection);
    }
}

/// A user resolver as the runtime calls it: its queries become
/// [`ResolverQuery`] handles.
pub(crate) struct ResolverAdapter(pub(crate) Arc<dyn Resolver>);

impl UserResolver for ResolverAdapter {
    fn resolve(&self, query: Arc<QueryHandle>, host: &str, family: Family) -> Result<(), i32> {
        self.0.resolve(ResolverQuery(query), host, family)
    }

    fn cancel(&self, query: Arc<QueryHandle>) {
        self.0.cancel(&ResolverQuery(query));
    }

    fn resolve_https(&self, query: Arc<crate::runtime::https::ServiceQueryHandle>, name: &str) -> Result<(), i32> {
        self.0.resolve_https(ServiceQuery(query), name)
    }

    fn cancel_https(&self, query: Arc<crate::runtime::https::ServiceQueryHandle>) {
        self.0.cancel_https(&ServiceQuery(query));
    }
}
