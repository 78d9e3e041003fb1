//! Address parsing: the sockaddr_storage entries a resolver answers with
//! (taps_resolver_query_answer), and IP literals as host text.
//!
//! Each 128-byte chunk of the input becomes one sockaddr_storage (its first
//! byte picks the family: AF_INET6, AF_INET or another); the first byte of
//! the input splits the chunks between the AAAA and the A answer. The race
//! must attempt exactly the distinct addresses of the query's own family,
//! with the endpoint's port, nothing else; then it fails with
//! ALL_ATTEMPTS_FAILED (every start fails at once) or RESOLUTION_FAILED
//! (no usable address).
#![no_main]

mod common;
use common::*;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr::null_mut;
use taps_racing::ffi::connection::*;
use taps_racing::ffi::event_loop::*;
use taps_racing::ffi::preconnection::*;
use taps_racing::ffi::resolver::*;

const SS: usize = std::mem::size_of::<libc::sockaddr_storage>();

extern "C" fn count(_c: *mut Connection, ud: *mut std::ffi::c_void) -> std::ffi::c_int {
    unsafe { *(ud as *mut u32) += 1 };
    0
}

fuzz_target!(|data: &[u8]| {
    // Host text: an IP literal is always accepted.
    if let Ok(text) = std::str::from_utf8(data) {
        if let (Ok(c), Ok(_)) = (CString::new(text), text.parse::<IpAddr>()) {
            let ep = taps_racing::ffi::endpoint::taps_remote_endpoint_new();
            assert_eq!(taps_racing::ffi::endpoint::taps_remote_endpoint_with_hostname(ep, c.as_ptr()), 0, "{text:?}");
            taps_racing::ffi::endpoint::taps_remote_endpoint_free(ep);
        }
    }
    let Some((&split, rest)) = data.split_first() else { return };
    let mut entries: Vec<libc::sockaddr_storage> = Vec::new();
    for chunk in rest.chunks(SS).take(16) {
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let raw = unsafe { std::slice::from_raw_parts_mut(&mut ss as *mut _ as *mut u8, SS) };
        raw[..chunk.len()].copy_from_slice(chunk);
        ss.ss_family = match chunk[0] % 3 {
            0 => libc::AF_INET6 as libc::sa_family_t,
            1 => libc::AF_INET as libc::sa_family_t,
            _ => chunk[0] as libc::sa_family_t,
        };
        entries.push(ss);
    }
    let k = (split as usize) % (entries.len() + 1);
    let (aaaa, a) = entries.split_at(k);

    let lp = fz_loop();
    WORLD.with(|w| w.borrow_mut().start_errno = libc::ECONNREFUSED);
    let mut opts = taps_racing_options_default();
    opts.race_count = 1;
    let pre = fz_pre(lp, c"fuzz.test", 443, &opts);
    assert!(!pre.is_null());
    let mut calls: u32 = 0;
    let cb = ConnectionCallbacks {
        struct_size: std::mem::size_of::<ConnectionCallbacks>() as u32,
        ready: Some(count),
        establishment_error: Some(count),
        connection_error: Some(count),
        closed: Some(count),
        user_data: &mut calls as *mut u32 as *mut _,
    };
    let mut conn: *mut Connection = null_mut();
    assert_eq!(taps_preconnection_initiate_with_racing(pre, cb, &mut conn), 0);
    assert!(taps_event_loop_run(lp) == 0);
    let queries = WORLD.with(|w| std::mem::take(&mut w.borrow_mut().queries));
    assert_eq!(queries.len(), 2);
    for (q, family) in queries {
        let list = if family == libc::AF_INET6 { aaaa } else { a };
        assert_eq!(taps_resolver_query_answer(q, list.as_ptr(), list.len()), 0);
    }
    assert!(taps_event_loop_run(lp) == 0);
    // Every start is refused at once: the next comes 10 ms after the
    // previous one (RFC 8305 §5), on the manual clock.
    for _ in 0..entries.len() {
        if calls > 0 {
            break;
        }
        assert_eq!(taps_event_loop_advance_clock(lp, 10_000), 0);
        assert!(taps_event_loop_run(lp) == 0);
    }

    // The distinct addresses of each query's family, with port 443.
    let mut want: HashSet<SocketAddr> = HashSet::new();
    for (list, family) in [(aaaa, libc::AF_INET6), (a, libc::AF_INET)] {
        for ss in list {
            if ss.ss_family as i32 != family {
                continue;
            }
            let ip: IpAddr = if family == libc::AF_INET6 {
                let s = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
                Ipv6Addr::from(s.sin6_addr.s6_addr).into()
            } else {
                let s = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
                Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr)).into()
            };
            want.insert(SocketAddr::new(ip, 443));
        }
    }
    let started = WORLD.with(|w| w.borrow().started.clone());
    let got: HashSet<SocketAddr> = started.iter().copied().collect();
    assert_eq!(got.len(), started.len(), "an address started twice: {started:?}");
    assert_eq!(got, want, "attempted {started:?}");
    assert_eq!(calls, 1, "exactly one callback");
    let err = taps_connection_get_error(conn);
    if want.is_empty() {
        assert_eq!(err, -8);
    } else {
        assert_eq!(err, -9);
        assert_eq!(taps_connection_get_os_error(conn), libc::ECONNREFUSED);
    }
    assert_eq!(taps_connection_attempt_count(conn), want.len());
    taps_connection_free(conn);
    taps_preconnection_free(pre);
    taps_event_loop_free(lp);
});
