//! The log callback end to end (a test binary of its own: `log::set_logger`
//! is once per process, and no other test may log into these records).
//! One test function, so that its steps do not race each other for the
//! process-wide callback.

use std::ffi::{c_char, c_void, CStr};
use std::net::TcpListener;
use std::sync::Mutex;
use taps_racing::api::*;
use taps_racing::ffi::log::{taps_log_level, taps_set_log_callback};
use taps_racing::ffi::TapsError;

/// The records the callback received: level, target, message.
static RECORDS: Mutex<Vec<(taps_log_level, String, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn record(level: taps_log_level, target: *const c_char, message: *const c_char, user_data: *mut c_void) {
    assert_eq!(user_data as usize, 0x5eed, "user_data is passed as given");
    let text = |p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    RECORDS.lock().unwrap().push((level, text(target), text(message)));
}

fn endpoint(port: u16) -> RemoteEndpoint {
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname("127.0.0.1").unwrap().with_port(port).unwrap();
    ep
}

struct Quiet;
impl ConnectionHandler for Quiet {}

/// Race `port` on loopback to its end; the messages logged meanwhile.
fn race(port: u16) -> Vec<String> {
    RECORDS.lock().unwrap().clear();
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint(port)], None, None).unwrap();
    let _conn = pre.initiate(Box::new(Quiet)).unwrap();
    lp.run().unwrap();
    RECORDS.lock().unwrap().drain(..).map(|(_, _, m)| m).collect()
}

fn has(lines: &[String], want: &[&str]) -> bool {
    lines.iter().any(|l| want.iter().all(|w| l.contains(w)))
}

#[test]
fn a_callback_sees_attempts_start_and_end_until_it_is_turned_off() {
    let user_data = 0x5eed as *mut c_void;
    let invalid = TapsError::TAPS_ERROR_INVALID_ARGUMENT as i32;
    assert_eq!(taps_set_log_callback(6, Some(record), user_data), invalid);
    assert_eq!(taps_set_log_callback(-1, Some(record), user_data), invalid);
    assert_eq!(taps_set_log_callback(taps_log_level::TAPS_LOG_LEVEL_DEBUG as i32, Some(record), user_data), 0);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let lines = race(port);
    let addr = format!("127.0.0.1:{port}");
    assert!(has(&lines, &["race ", "started: 1 candidate(s) known", "attempt delay 250.00 ms"]), "{lines:#?}");
    assert!(has(&lines, &["attempt 0 started at 0.", &addr, "tcp", "the default path"]), "{lines:#?}");
    assert!(has(&lines, &["attempt 0 (", &addr, ") won at ", "connected in "]), "{lines:#?}");
    assert!(has(&lines, &["won at ", "by attempt 0", "0 failed, 0 cancelled"]), "{lines:#?}");

    drop(listener);
    let lines = race(port);
    assert!(has(&lines, &["attempt 0 (", &addr, ") failed at ", "refused"]), "{lines:#?}");
    assert!(has(&lines, &["failed at ", "after 1 attempt(s): every connection attempt failed"]), "{lines:#?}");

    // At INFO: the race's start and end, not its attempts; targets name
    // the library's modules.
    assert_eq!(taps_set_log_callback(taps_log_level::TAPS_LOG_LEVEL_INFO as i32, Some(record), user_data), 0);
    RECORDS.lock().unwrap().clear();
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint(port)], None, None).unwrap();
    let _conn = pre.initiate(Box::new(Quiet)).unwrap();
    lp.run().unwrap();
    let records = std::mem::take(&mut *RECORDS.lock().unwrap());
    assert!(records.iter().all(|(level, _, _)| *level as i32 <= taps_log_level::TAPS_LOG_LEVEL_INFO as i32));
    assert!(records.iter().all(|(_, target, _)| target.starts_with("taps_racing::")), "{records:#?}");
    assert!(records.iter().any(|(_, _, m)| m.contains("failed at ")), "{records:#?}");
    assert!(!records.iter().any(|(_, _, m)| m.contains("attempt 0 started")), "{records:#?}");

    // A pool at DEBUG: "racing 3", the win, the spares buffered.
    assert_eq!(taps_set_log_callback(taps_log_level::TAPS_LOG_LEVEL_DEBUG as i32, Some(record), user_data), 0);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    RECORDS.lock().unwrap().clear();
    let lp = EventLoop::new().unwrap();
    let pre = Preconnection::new(&lp, &[endpoint(port)], None, None).unwrap();
    let pool = ConnectionPool::new(&pre, &PoolOptions { race_count: 3, ..PoolOptions::default() }, None).unwrap();
    let conn = pool.acquire(Box::new(Quiet)).unwrap();
    while conn.state() != ConnectionState::Established || pool.buffered() < 2 {
        lp.run_once(Some(std::time::Duration::from_secs(5))).unwrap();
    }
    let lines: Vec<String> = RECORDS.lock().unwrap().drain(..).map(|(_, _, m)| m).collect();
    assert!(has(&lines, &["pool ", ": racing 3"]), "{lines:#?}");
    assert!(has(&lines, &["pool ", ": race won at "]), "{lines:#?}");
    assert!(has(&lines, &["pool ", ": a connection buffered"]), "{lines:#?}");
    drop(conn);
    drop(pool);
    drop(listener);

    // NULL: no more records.
    assert_eq!(taps_set_log_callback(taps_log_level::TAPS_LOG_LEVEL_TRACE as i32, None, std::ptr::null_mut()), 0);
    assert!(race(port).is_empty());
    assert_eq!(log::max_level(), log::LevelFilter::Off, "logging off costs one comparison");
}
