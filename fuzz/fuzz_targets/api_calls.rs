//! A sequence of C API calls decoded from the input, on a manual-clock
//! loop with the mock protocol and resolver: initiate, close, free, run,
//! advance the clock, complete attempts (ready, failed, with bad errnos),
//! answer or fail queries, read reports, new Preconnections with random
//! (also invalid) options. Checked: nothing crashes; each connection gets
//! at most one of ready / establishment_error, `closed` at most once, and
//! no callback after taps_connection_free; attempt reports stay consistent.
#![no_main]

mod common;
use common::*;
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use taps_racing::ffi::connection::*;
use taps_racing::ffi::event_loop::*;
use taps_racing::ffi::preconnection::*;
use taps_racing::ffi::protocol::*;
use taps_racing::ffi::resolver::*;

const SLOTS: usize = 8;

#[derive(Default, Clone, Copy)]
struct Seen {
    ready: u32,
    error: u32,
    conn_error: u32,
    closed: u32,
    freed: bool,
}

thread_local! {
    static SEEN: std::cell::RefCell<Vec<Seen>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn bump(ud: *mut c_void, f: impl FnOnce(&mut Seen)) -> c_int {
    let id = ud as usize;
    SEEN.with(|s| {
        let mut s = s.borrow_mut();
        let e = &mut s[id];
        assert!(!e.freed, "callback after connection_free");
        f(e);
        assert!(e.ready + e.error <= 1, "ready and establishment_error: {} + {}", e.ready, e.error);
        assert!(e.closed <= 1 && e.conn_error <= 1);
    });
    0
}
extern "C" fn on_ready(_c: *mut Connection, ud: *mut c_void) -> c_int {
    bump(ud, |e| e.ready += 1)
}
extern "C" fn on_error(_c: *mut Connection, ud: *mut c_void) -> c_int {
    bump(ud, |e| e.error += 1)
}
extern "C" fn on_conn_error(_c: *mut Connection, ud: *mut c_void) -> c_int {
    bump(ud, |e| e.conn_error += 1)
}
extern "C" fn on_closed(_c: *mut Connection, ud: *mut c_void) -> c_int {
    bump(ud, |e| e.closed += 1)
}

struct Input<'a>(&'a [u8]);
impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([self.byte()?, self.byte()?, self.byte()?, self.byte()?]))
    }
}

fuzz_target!(|data: &[u8]| {
    SEEN.with(|s| s.borrow_mut().clear());
    let lp = fz_loop();
    let hosts = [c"127.0.0.1", c"::1", c"name.test", c"127.0.0.2"];
    let mut pres: Vec<*mut Preconnection> = hosts.iter().map(|h| fz_pre(lp, h, 443, std::ptr::null())).collect();
    let mut conns: [*mut Connection; SLOTS] = [null_mut(); SLOTS];
    let mut ids: [usize; SLOTS] = [0; SLOTS];
    let mut input = Input(data);
    let mut steps = 0;
    while let Some(op) = input.byte() {
        steps += 1;
        if steps > 400 {
            break;
        }
        let arg = input.byte().unwrap_or(0) as usize;
        match op % 14 {
            0 => {
                let slot = arg % SLOTS;
                if conns[slot].is_null() {
                    let id = SEEN.with(|s| {
                        let mut s = s.borrow_mut();
                        s.push(Seen::default());
                        s.len() - 1
                    });
                    let cb = ConnectionCallbacks {
                        struct_size: std::mem::size_of::<ConnectionCallbacks>() as u32,
                        ready: Some(on_ready),
                        establishment_error: Some(on_error),
                        connection_error: Some(on_conn_error),
                        closed: Some(on_closed),
                        user_data: id as *mut c_void,
                    };
                    let p = pres[(arg / SLOTS) % pres.len()];
                    let rc = taps_preconnection_initiate_with_racing(p, cb, &mut conns[slot]);
                    assert!(rc == 0 && !conns[slot].is_null(), "initiate: {rc}");
                    ids[slot] = id;
                }
            }
            1 => {
                let slot = arg % SLOTS;
                if !conns[slot].is_null() {
                    taps_connection_free(conns[slot]);
                    conns[slot] = null_mut();
                    SEEN.with(|s| s.borrow_mut()[ids[slot]].freed = true);
                }
            }
            2 => taps_connection_close(conns[arg % SLOTS]),
            3 => assert_eq!(taps_event_loop_advance_clock(lp, (arg as u64) * (arg as u64) * 100), 0),
            4 => assert_eq!(taps_event_loop_run(lp), 0),
            5 => assert!(taps_event_loop_process(lp) >= 0),
            6 => {
                let a = WORLD.with(|w| {
                    let mut w = w.borrow_mut();
                    let n = w.attempts.len();
                    (n > 0).then(|| w.attempts.remove(arg % n))
                });
                if let Some((h, _)) = a {
                    assert_eq!(taps_protocol_attempt_ready(h, -1, arg as *mut c_void), 0);
                }
            }
            7 => {
                let a = WORLD.with(|w| {
                    let mut w = w.borrow_mut();
                    let n = w.attempts.len();
                    (n > 0).then(|| w.attempts.remove(arg % n))
                });
                if let Some((h, _)) = a {
                    let errno = input.byte().unwrap_or(0) as c_int - 8;
                    let rc = taps_protocol_attempt_failed(h, errno);
                    assert_eq!(rc, if errno > 0 { 0 } else { -2 });
                }
            }
            8 | 9 => {
                let q = WORLD.with(|w| {
                    let mut w = w.borrow_mut();
                    let n = w.queries.len();
                    (n > 0).then(|| w.queries.remove(arg % n))
                });
                if let Some((q, family)) = q {
                    if op % 14 == 8 {
                        let n = (arg % 3) + if arg % 7 == 0 { 0 } else { 1 };
                        let mut list: Vec<libc::sockaddr_storage> = Vec::new();
                        for i in 0..n {
                            let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
                            if family == libc::AF_INET6 {
                                let s = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
                                s.sin6_family = libc::AF_INET6 as _;
                                s.sin6_addr.s6_addr[15] = 1 + i as u8;
                            } else {
                                let s = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
                                s.sin_family = libc::AF_INET as _;
                                s.sin_addr.s_addr = u32::to_be(0x7f00_0001 + i as u32);
                            }
                            list.push(ss);
                        }
                        assert_eq!(taps_resolver_query_answer(q, list.as_ptr(), list.len()), 0);
                    } else {
                        assert_eq!(taps_resolver_query_fail(q, -(arg as c_int)), 0);
                    }
                }
            }
            10 => {
                let c = conns[arg % SLOTS];
                let n = taps_connection_attempt_count(c);
                for i in 0..=n {
                    let mut info: AttemptInfo = unsafe { std::mem::zeroed() };
                    let rc = taps_connection_get_attempt(c, i, &mut info);
                    if c.is_null() {
                        assert_eq!(rc, -1);
                    } else if i == n {
                        assert_eq!(rc, -7);
                    } else {
                        assert_eq!(rc, 0);
                        assert!(info.ended_us == 0 || info.ended_us >= info.started_us);
                        assert!(!info.protocol.is_null());
                    }
                }
                let _ = taps_connection_get_error(c);
                let _ = taps_connection_get_fd(c);
            }
            11 => {
                let mut o = taps_racing_options_default();
                o.connection_attempt_delay_ms = input.u32().unwrap_or(0) % 3000;
                o.resolution_delay_ms = input.u32().unwrap_or(0) % 2500;
                o.first_address_family_count = input.byte().unwrap_or(1) as u32 % 70;
                o.attempt_timeout_ms = input.u32().unwrap_or(0) % 5000;
                o.total_timeout_ms = input.u32().unwrap_or(0) % 5000;
                o.race_count = input.byte().unwrap_or(1) as u32 % 70;
                let p = fz_pre(lp, hosts[arg % hosts.len()], 443, &o);
                let valid = o.resolution_delay_ms <= 2000
                    && (1..=64).contains(&o.first_address_family_count)
                    && (1..=64).contains(&o.race_count);
                assert_eq!(!p.is_null(), valid);
                if !p.is_null() && pres.len() < 16 {
                    pres.push(p);
                } else {
                    taps_preconnection_free(p);
                }
            }
            12 => {
                let _ = taps_event_loop_run_once(lp, 0);
            }
            _ => {
                let _ = taps_event_loop_get_timeout_ms(lp);
                let _ = taps_event_loop_now_us(lp);
            }
        }
    }
    for slot in 0..SLOTS {
        if !conns[slot].is_null() {
            taps_connection_free(conns[slot]);
            SEEN.with(|s| s.borrow_mut()[ids[slot]].freed = true);
        }
    }
    for p in pres {
        taps_preconnection_free(p);
    }
    taps_event_loop_free(lp);
});
