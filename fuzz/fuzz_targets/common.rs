//! Shared by the fuzz targets: a manual-clock loop with a mock protocol
//! ("fz", reliable and multistreaming; the properties require
//! multistreaming, so the built-in TCP and UDP never race and no packet
//! leaves the process) and a mock resolver, all through the C ABI.
#![allow(dead_code)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::ptr::{null, null_mut};
use taps_racing::ffi::endpoint::*;
use taps_racing::ffi::event_loop::*;
use taps_racing::ffi::preconnection::*;
use taps_racing::ffi::properties::*;
use taps_racing::ffi::protocol::*;
use taps_racing::ffi::resolver::*;

#[derive(Default)]
pub struct World {
    /// Live attempt handles (started, not completed, not cancelled), with
    /// the address started.
    pub attempts: Vec<(*mut ProtocolAttempt, std::net::SocketAddr)>,
    /// Every address started, in order.
    pub started: Vec<std::net::SocketAddr>,
    /// Live queries (asked, not answered, not cancelled) with their family.
    pub queries: Vec<(*mut ResolverQuery, c_int)>,
    /// When > 0, `start` fails at once with it.
    pub start_errno: c_int,
}

thread_local! {
    pub static WORLD: RefCell<World> = RefCell::new(World::default());
}

pub fn sockaddr_to_std(sa: *const libc::sockaddr, len: libc::socklen_t) -> Option<std::net::SocketAddr> {
    unsafe {
        match (*sa).sa_family as c_int {
            libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
                let s = &*(sa as *const libc::sockaddr_in);
                Some(std::net::SocketAddr::new(
                    std::net::Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr)).into(),
                    u16::from_be(s.sin_port),
                ))
            }
            libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let s = &*(sa as *const libc::sockaddr_in6);
                Some(std::net::SocketAddr::new(
                    std::net::Ipv6Addr::from(s.sin6_addr.s6_addr).into(),
                    u16::from_be(s.sin6_port),
                ))
            }
            _ => None,
        }
    }
}

extern "C" fn fz_start(
    attempt: *mut ProtocolAttempt,
    address: *const libc::sockaddr,
    address_len: libc::socklen_t,
    _interface: *const c_char,
    _local: *const libc::sockaddr,
    _local_len: libc::socklen_t,
    _ud: *mut c_void,
) -> c_int {
    let addr = sockaddr_to_std(address, address_len).expect("start with a bad address");
    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        w.started.push(addr);
        if w.start_errno > 0 {
            return w.start_errno;
        }
        w.attempts.push((attempt, addr));
        0
    })
}

extern "C" fn fz_cancel(attempt: *mut ProtocolAttempt, _ud: *mut c_void) {
    WORLD.with(|w| w.borrow_mut().attempts.retain(|a| a.0 != attempt));
}

extern "C" fn fz_close(_pc: *mut c_void, _fd: c_int, _ud: *mut c_void) {}

extern "C" fn fz_resolve(query: *mut ResolverQuery, _host: *const c_char, family: c_int, _ud: *mut c_void) -> c_int {
    WORLD.with(|w| w.borrow_mut().queries.push((query, family)));
    0
}

extern "C" fn fz_resolver_cancel(query: *mut ResolverQuery, _ud: *mut c_void) {
    WORLD.with(|w| w.borrow_mut().queries.retain(|q| q.0 != query));
}

/// A manual-clock loop with protocol "fz" and the mock resolver.
pub fn fz_loop() -> *mut EventLoop {
    WORLD.with(|w| *w.borrow_mut() = World::default());
    let opts = EventLoopOptions { struct_size: std::mem::size_of::<EventLoopOptions>() as u32, manual_clock: true };
    let lp = taps_event_loop_new_with_options(&opts);
    assert!(!lp.is_null());
    let imp = ProtocolImplementation {
        name: c"fz".as_ptr(),
        properties: 1 | 4,
        start: Some(fz_start),
        cancel: Some(fz_cancel),
        close: Some(fz_close),
        user_data: null_mut(),
    };
    assert_eq!(taps_event_loop_add_protocol(lp, &imp), 0);
    let res = ResolverImplementation { resolve: Some(fz_resolve), cancel: Some(fz_resolver_cancel), user_data: null_mut() };
    assert_eq!(taps_event_loop_set_resolver(lp, &res), 0);
    lp
}

/// Properties that leave only "fz" in the race.
pub fn fz_props() -> *mut TransportProperties {
    let p = taps_transport_properties_new();
    assert_eq!(taps_transport_properties_set(p, 2, 0), 0); // multistreaming: Require
    p
}

/// A taps_preconnection to `host`:`port` on `lp` with `opts` (NULL: defaults).
pub fn fz_pre(lp: *mut EventLoop, host: &std::ffi::CStr, port: u16, opts: *const RacingOptions) -> *mut Preconnection {
    let ep = taps_remote_endpoint_new();
    assert_eq!(taps_remote_endpoint_with_hostname(ep, host.as_ptr()), 0);
    assert_eq!(taps_remote_endpoint_with_port(ep, port), 0);
    let props = fz_props();
    let eps = [ep as *const RemoteEndpoint];
    let p = taps_preconnection_new(lp, eps.as_ptr(), 1, props, opts);
    taps_remote_endpoint_free(ep);
    taps_transport_properties_free(props);
    let _ = null::<u8>();
    p
}
