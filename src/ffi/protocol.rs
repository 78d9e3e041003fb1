//! C ABI: user protocols (`ProtocolImplementation`) and user resolvers
//! (`ResolverImplementation`), and the manual clock for tests.

use super::event_loop::EventLoop;
use super::{arg, fail, guard, status};
use crate::api::{self, Error, Family, PathInfo, ProtocolConnection, ProtocolTraits};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::net::SocketAddr;
use std::sync::Arc;

/// One attempt of a user protocol. Valid from `start` until the protocol's
/// own protocol_attempt_ready / protocol_attempt_failed call for it returns,
/// or until `cancel` for it returns, whichever comes first.
pub struct ProtocolAttempt {
    _opaque: [u8; 0],
}

/// One query of a user resolver. Valid from `resolve` until the resolver's
/// resolver_query_answer / resolver_query_fail call for it returns, or
/// until `cancel` for it returns, whichever comes first.
pub struct ResolverQuery {
    _opaque: [u8; 0],
}

/// What a protocol offers, as flags for ProtocolImplementation.properties.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolFlag {
    /// Reliable data transfer (selection property reliability).
    PROTOCOL_FLAG_RELIABLE = 1,
    /// Preserves message boundaries (preserveMsgBoundaries).
    PROTOCOL_FLAG_PRESERVES_MSG_BOUNDARIES = 2,
    /// Several streams per connection (multistreaming).
    PROTOCOL_FLAG_MULTISTREAMING = 4,
}

/// A protocol the program brings (QUIC, TLS over TCP, a tunnel, a mock),
/// raced like the built-in TCP and UDP (RFC 9623 §4.1, the PROTOCOL
/// level). Copied by event_loop_add_protocol. The functions run on the
/// loop's thread with the loop locked: they must not call the library,
/// except protocol_attempt_ready / protocol_attempt_failed (any thread,
/// also from inside `start`), protocol_attempt_index and event_loop_now_us.
/// If `cancel` comes for an attempt the protocol has just reported ready
/// from another thread, the library closes that connection with `close`
/// when it sees the report: `cancel` need not.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ProtocolImplementation {
    /// Its name (copied; unique per loop; "tcp" and "udp" are taken), as
    /// AttemptInfo.protocol reports it.
    pub name: *const c_char,
    /// ProtocolFlag bits: what it offers, for the selection properties.
    pub properties: u32,
    /// Start an attempt to `address` (`interface_name` and `local_address`
    /// are the path's, NULL when the path names none). Return 0 and report
    /// the outcome later through `attempt`, once; or return an errno (> 0)
    /// to fail the attempt at once. Required.
    pub start: Option<
        extern "C" fn(
            attempt: *mut ProtocolAttempt,
            address: *const libc::sockaddr,
            address_len: libc::socklen_t,
            interface_name: *const c_char,
            local_address: *const libc::sockaddr,
            local_address_len: libc::socklen_t,
            user_data: *mut c_void,
        ) -> c_int,
    >,
    /// Stop an attempt the race no longer needs (another attempt won, or
    /// the race ended); after it returns the attempt handle is invalid and
    /// a completion for it would be ignored. May be NULL.
    pub cancel: Option<extern "C" fn(attempt: *mut ProtocolAttempt, user_data: *mut c_void)>,
    /// Close a connection this protocol reported ready (the winner when its
    /// Connection is closed or freed; a late ready after the race was
    /// decided). `fd` is what the protocol reported (-1 for none); the
    /// library never closes it. May be NULL.
    pub close: Option<extern "C" fn(protocol_connection: *mut c_void, fd: c_int, user_data: *mut c_void)>,
    /// Passed to every function.
    pub user_data: *mut c_void,
}

/// A resolver the program brings (a DNS library, a mock), asked for each
/// host name once per family (RFC 8305 §3: AAAA and A separately and at
/// once). Copied by event_loop_set_resolver. The functions run on the
/// loop's thread with the loop locked: they must not call the library,
/// except resolver_query_answer / resolver_query_fail, which may be called
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

/// Options of event_loop_new_with_options.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EventLoopOptions {
    /// A manual clock: time starts at 0 and moves only with
    /// event_loop_advance_clock, and running the loop never blocks (it does
    /// what is ready and returns). For tests that drive every delay exactly.
    pub manual_clock: bool,
}

struct CProtocol(ProtocolImplementation);

// SAFETY: the C contract: the vtable's functions may be called from the
// loop's thread, whichever thread that is; user_data is the program's.
unsafe impl Send for CProtocol {}
// SAFETY: as above; the library never calls them concurrently for one loop.
unsafe impl Sync for CProtocol {}

fn with_sockaddr<R>(addr: Option<SocketAddr>, f: impl FnOnce(*const libc::sockaddr, libc::socklen_t) -> R) -> R {
    match addr {
        Some(a) => {
            let sa = socket2::SockAddr::from(a);
            f(sa.as_ptr() as *const libc::sockaddr, sa.len())
        }
        None => f(std::ptr::null(), 0),
    }
}

impl api::Protocol for CProtocol {
    fn start(&self, attempt: api::ProtocolAttempt, remote: SocketAddr, path: &PathInfo) -> Result<(), i32> {
        let Some(start) = self.0.start else { return Err(libc::ENOSYS) };
        let ptr = attempt.as_raw() as *mut ProtocolAttempt;
        let iface = path.interface.as_deref().and_then(|n| CString::new(n).ok());
        let iface_ptr = iface.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        let rc = with_sockaddr(Some(remote), |ra, rl| {
            with_sockaddr(path.local, |la, ll| start(ptr, ra, rl, iface_ptr, la, ll, self.0.user_data))
        });
        match rc {
            0 => Ok(()),
            e if e > 0 => Err(e),
            _ => Err(libc::EINVAL),
        }
    }

    fn cancel(&self, attempt: &api::ProtocolAttempt) {
        if let Some(cancel) = self.0.cancel {
            cancel(attempt.as_raw() as *mut ProtocolAttempt, self.0.user_data);
        }
    }

    fn close(&self, connection: ProtocolConnection) {
        if let Some(close) = self.0.close {
            close(connection.data as *mut c_void, connection.fd.unwrap_or(-1), self.0.user_data);
        }
    }
}

struct CResolver(ResolverImplementation);

// SAFETY: as for CProtocol.
unsafe impl Send for CResolver {}
// SAFETY: as for CProtocol.
unsafe impl Sync for CResolver {}

impl api::Resolver for CResolver {
    fn resolve(&self, query: api::ResolverQuery, host: &str, family: Family) -> Result<(), i32> {
        let Some(resolve) = self.0.resolve else { return Err(libc::EAI_SYSTEM) };
        let Ok(host) = CString::new(host) else { return Err(libc::EAI_NONAME) };
        let af = match family {
            Family::V6 => libc::AF_INET6,
            Family::V4 => libc::AF_INET,
        };
        match resolve(query.as_raw() as *mut ResolverQuery, host.as_ptr(), af, self.0.user_data) {
            0 => Ok(()),
            code => Err(code),
        }
    }

    fn cancel(&self, query: &api::ResolverQuery) {
        if let Some(cancel) = self.0.cancel {
            cancel(query.as_raw() as *mut ResolverQuery, self.0.user_data);
        }
    }
}

/// Register a user protocol with a loop (copied). Races on the loop
/// include it when the selection properties keep it (RFC 9623 §4.1, §5).
/// Returns 0, or TAPS_ERROR_NULL_ARGUMENT (loop, impl, name or start NULL),
/// TAPS_ERROR_INVALID_ARGUMENT (empty or duplicate name, unknown flag bits).
#[no_mangle]
pub extern "C" fn event_loop_add_protocol(event_loop: *mut EventLoop, protocol: *const ProtocolImplementation) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = arg!(event_loop);
        let imp = *arg!(protocol);
        if imp.name.is_null() || imp.start.is_none() {
            return fail(Error::NullArgument);
        }
        if imp.properties & !7 != 0 {
            return fail(Error::InvalidArgument("unknown ProtocolFlag bits"));
        }
        // SAFETY: a NUL-terminated string per the contract.
        let Ok(name) = unsafe { CStr::from_ptr(imp.name) }.to_str() else {
            return fail(Error::InvalidArgument("a protocol name is UTF-8"));
        };
        let traits = ProtocolTraits {
            reliable: imp.properties & 1 != 0,
            preserves_msg_boundaries: imp.properties & 2 != 0,
            multistreaming: imp.properties & 4 != 0,
        };
        status(lp.0.add_protocol(name, traits, Arc::new(CProtocol(imp))).map(|_| ()))
    })
}

/// Resolve host names of the loop's races with `resolver` (copied); NULL
/// goes back to the system resolver (getaddrinfo on worker threads).
/// Races already running keep theirs. Errors: TAPS_ERROR_NULL_ARGUMENT
/// (loop NULL, or resolve NULL).
#[no_mangle]
pub extern "C" fn event_loop_set_resolver(event_loop: *mut EventLoop, resolver: *const ResolverImplementation) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = arg!(event_loop);
        // SAFETY: NULL or valid per the contract.
        match unsafe { resolver.as_ref() } {
            None => lp.0.set_resolver(None),
            Some(r) if r.resolve.is_none() => return fail(Error::NullArgument),
            Some(r) => lp.0.set_resolver(Some(Arc::new(CResolver(*r)))),
        }
        0
    })
}

/// The attempt's connection is ready (after the protocol's own handshake):
/// the race may be won by it. `fd` (-1 for none) becomes the Connection's
/// fd; `protocol_connection` is given back to `close`. Any thread; once per
/// attempt (a second completion is ignored). Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn protocol_attempt_ready(attempt: *mut ProtocolAttempt, fd: c_int, protocol_connection: *mut c_void) -> c_int {
    guard!(fail(Error::Panic), {
        if attempt.is_null() {
            return fail(Error::NullArgument);
        }
        // SAFETY: valid until this call returns, per the contract.
        let a = unsafe { api::ProtocolAttempt::from_raw(attempt as *const c_void) };
        a.ready(if fd >= 0 { Some(fd) } else { None }, protocol_connection as usize);
        0
    })
}

/// The attempt failed with `os_error` (an errno, > 0). Any thread; once per
/// attempt. Errors: TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_ARGUMENT
/// (os_error ≤ 0: the attempt is failed with EIO).
#[no_mangle]
pub extern "C" fn protocol_attempt_failed(attempt: *mut ProtocolAttempt, os_error: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        if attempt.is_null() {
            return fail(Error::NullArgument);
        }
        // SAFETY: valid until this call returns, per the contract.
        let a = unsafe { api::ProtocolAttempt::from_raw(attempt as *const c_void) };
        if os_error <= 0 {
            a.failed(libc::EIO);
            return fail(Error::InvalidArgument("os_error must be an errno > 0"));
        }
        a.failed(os_error);
        0
    })
}

/// The index of the attempt in its race (its connection_get_attempt index).
/// -1 for NULL.
#[no_mangle]
pub extern "C" fn protocol_attempt_index(attempt: *const ProtocolAttempt) -> c_int {
    guard!(-1, {
        // SAFETY: NULL or valid per the contract.
        if attempt.is_null() {
            return -1;
        }
        // SAFETY: valid per the contract.
        unsafe { api::ProtocolAttempt::from_raw(attempt as *const c_void) }.index() as c_int
    })
}

/// Answer a query with `n` addresses (sockaddr_in / sockaddr_in6 in
/// `addrs`; their ports are ignored, the endpoint's is used; addresses of
/// the other family are ignored; n may be 0). Any thread; once per query.
/// Errors: TAPS_ERROR_NULL_ARGUMENT (query NULL, or addrs NULL with n > 0).
#[no_mangle]
pub extern "C" fn resolver_query_answer(query: *mut ResolverQuery, addrs: *const libc::sockaddr_storage, n: usize) -> c_int {
    guard!(fail(Error::Panic), {
        if query.is_null() || (addrs.is_null() && n > 0) {
            return fail(Error::NullArgument);
        }
        let mut ips = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: addrs holds n entries per the contract.
            if let Some(ip) = unsafe { super::sockaddr_ip(addrs.add(i) as *const libc::sockaddr) } {
                ips.push(ip);
            }
        }
        // SAFETY: valid until this call returns, per the contract.
        unsafe { api::ResolverQuery::from_raw(query as *const c_void) }.answer(&ips);
        0
    })
}

/// Fail a query with an error code (reported as the race's resolution
/// error, connection_get_os_error, if no query finds an address). Any
/// thread; once per query. Errors: TAPS_ERROR_NULL_ARGUMENT.
#[no_mangle]
pub extern "C" fn resolver_query_fail(query: *mut ResolverQuery, error: c_int) -> c_int {
    guard!(fail(Error::Panic), {
        if query.is_null() {
            return fail(Error::NullArgument);
        }
        // SAFETY: valid until this call returns, per the contract.
        unsafe { api::ResolverQuery::from_raw(query as *const c_void) }.fail(error);
        0
    })
}

/// A new loop with options (NULL: the defaults, as event_loop_new). NULL
/// on failure, with taps_last_error(). Free with event_loop_free.
#[no_mangle]
pub extern "C" fn event_loop_new_with_options(options: *const EventLoopOptions) -> *mut EventLoop {
    guard!(std::ptr::null_mut(), {
        // SAFETY: NULL or valid per the contract.
        let opts = unsafe { options.as_ref() }.copied().unwrap_or_default();
        let made = if opts.manual_clock { api::EventLoop::with_manual_clock() } else { api::EventLoop::new() };
        match made {
            Ok(lp) => Box::into_raw(Box::new(EventLoop(lp))),
            Err(e) => {
                fail(e);
                std::ptr::null_mut()
            }
        }
    })
}

/// Move a manual clock forward by `us` µs; what falls due runs at the next
/// event_loop_run (or run_once / process) on the loop's thread. Errors:
/// TAPS_ERROR_NULL_ARGUMENT, TAPS_ERROR_INVALID_STATE (not a manual clock).
#[no_mangle]
pub extern "C" fn event_loop_advance_clock(event_loop: *mut EventLoop, us: u64) -> c_int {
    guard!(fail(Error::Panic), {
        let lp = arg!(event_loop);
        status(lp.0.advance_clock(us))
    })
}

/// The loop's clock in µs since the loop was created (a manual clock's
/// value); 0 for NULL.
#[no_mangle]
pub extern "C" fn event_loop_now_us(event_loop: *const EventLoop) -> u64 {
    guard!(0, {
        // SAFETY: NULL or valid per the contract.
        unsafe { event_loop.as_ref() }.map_or(0, |lp| lp.0.now_us())
    })
}
