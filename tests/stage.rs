//! Security stages (draft-ietf-happy-happyeyeballs-v3-04 §6.1): an attempt
//! wins at the end of its handshake, not when its TCP connects.
//!
//! The stage here does a tiny real handshake on loopback: it writes
//! "HELLO <alpn ids>\n" on the connected socket and waits for a one-line
//! reply from a test server thread: "OK <alpn>\n" is ready with that ALPN
//! id, anything else a failure (EPROTO). The servers answer after a delay
//! of their own, so that the first TCP to connect can be the slowest
//! handshake.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use taps_racing::api::*;

/// The tests measure times: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// What a test server does with each connection.
#[derive(Clone, Copy)]
enum Reply {
    /// "OK <first offered id>" after this long.
    Ok(Duration),
    /// "NO" at once.
    Refuse,
    /// Nothing (the handshake hangs until the client goes).
    Never,
}

/// A server on 127.0.0.1 answering each HELLO as `reply` says; its port.
fn server(reply: Reply) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_err() {
                    return;
                }
                let first = line.trim_end().strip_prefix("HELLO ").unwrap_or("").split(',').next().unwrap_or("").to_owned();
                match reply {
                    Reply::Ok(delay) => {
                        std::thread::sleep(delay);
                        let _ = stream.write_all(format!("OK {first}\n").as_bytes());
                    }
                    Reply::Refuse => {
                        let _ = stream.write_all(b"NO\n");
                    }
                    Reply::Never => {}
                }
                // Keep the connection until the client closes it.
                let mut rest = String::new();
                let _ = BufReader::new(&stream).read_line(&mut rest);
            });
        }
    });
    port
}

fn endpoint(port: u16) -> RemoteEndpoint {
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname("127.0.0.1").unwrap().with_port(port).unwrap();
    ep
}

/// The (device, inode) of an open fd: a closed fd, or one reused for
/// another file, no longer has it.
fn identity(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: fstat on any int is safe; it fails for a closed fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some((st.st_dev, st.st_ino))
}

#[derive(Default)]
struct Seen {
    /// Per attempt index: its fd's identity at start.
    started: HashMap<usize, (i32, Option<(u64, u64)>)>,
    /// Per attempt index: how many times it was cancelled.
    cancelled: HashMap<usize, usize>,
    /// Per attempt index: when its reply was read, since the race began.
    replied: HashMap<usize, Duration>,
    /// What each started attempt was given.
    offered: Vec<(Vec<String>, Option<String>, Option<usize>)>,
    /// Clones of cancelled attempts, to report after cancel.
    late: Vec<StageAttempt>,
}

/// The HELLO stage. Each attempt's bytes read so far live here.
struct HelloStage {
    seen: Arc<Mutex<Seen>>,
    buffers: Mutex<HashMap<usize, Vec<u8>>>,
    begun: Instant,
}

impl HelloStage {
    fn new(seen: &Arc<Mutex<Seen>>) -> Arc<HelloStage> {
        Arc::new(HelloStage { seen: Arc::clone(seen), buffers: Mutex::new(HashMap::new()), begun: Instant::now() })
    }
}

impl SecurityStage for HelloStage {
    fn start(&self, attempt: StageAttempt) -> std::result::Result<(), i32> {
        let fd = attempt.fd();
        {
            let mut seen = self.seen.lock().unwrap();
            seen.started.insert(attempt.index(), (fd, identity(fd)));
            seen.offered.push((attempt.alpn().to_vec(), attempt.host_name().map(str::to_owned), attempt.ech_config().map(<[u8]>::len)));
        }
        let hello = format!("HELLO {}\n", attempt.alpn().join(","));
        // SAFETY: a connected socket the library keeps open until cancel.
        let n = unsafe { libc::write(fd, hello.as_ptr().cast(), hello.len()) };
        if n != hello.len() as isize {
            return Err(libc::EIO);
        }
        self.buffers.lock().unwrap().insert(attempt.index(), Vec::new());
        attempt.want_read();
        Ok(())
    }

    fn io(&self, attempt: &StageAttempt, readable: bool, _writable: bool) {
        assert!(readable, "only readability was asked for");
        let mut buffers = self.buffers.lock().unwrap();
        let buf = buffers.get_mut(&attempt.index()).expect("io after start");
        let mut chunk = [0u8; 256];
        loop {
            // SAFETY: as in start.
            let n = unsafe { libc::read(attempt.fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
            if n > 0 {
                buf.extend_from_slice(&chunk[..n as usize]);
                continue;
            }
            if n == 0 {
                attempt.failed(libc::ECONNRESET);
                return;
            }
            break; // EAGAIN: the socket is non-blocking.
        }
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            attempt.want_read();
            return;
        };
        let line = String::from_utf8_lossy(&buf[..end]).into_owned();
        self.seen.lock().unwrap().replied.insert(attempt.index(), self.begun.elapsed());
        match line.strip_prefix("OK ") {
            Some(alpn) => {
                attempt.ready(Some(alpn));
                // A second report is ignored.
                attempt.ready(Some("ignored"));
                attempt.failed(libc::EPIPE);
            }
            None => attempt.failed(libc::EPROTO),
        }
    }

    fn cancel(&self, attempt: &StageAttempt) {
        let mut seen = self.seen.lock().unwrap();
        *seen.cancelled.entry(attempt.index()).or_default() += 1;
        seen.late.push(attempt.clone());
        // The socket is still open during cancel.
        let (fd, id) = seen.started[&attempt.index()];
        assert_eq!(identity(fd), id, "the fd is open until cancel returns");
    }
}

#[derive(Default)]
struct Calls {
    ready: usize,
    failed: usize,
}

struct Count(Arc<Mutex<Calls>>);

impl ConnectionHandler for Count {
    fn ready(&mut self, c: &Connection) {
        assert!(c.fd().is_some());
        self.0.lock().unwrap().ready += 1;
    }
    fn establishment_error(&mut self, _: &Connection) {
        self.0.lock().unwrap().failed += 1;
    }
}

/// Race `ports` (in that order) with the HELLO stage offering h2 and
/// http/1.1; the connection, the loop, what the stage saw, the callbacks.
fn race(ports: &[u16], opts: RacingOptions) -> (Connection, EventLoop, Arc<Mutex<Seen>>, Arc<Mutex<Calls>>, Duration) {
    let lp = EventLoop::new().unwrap();
    let remotes: Vec<RemoteEndpoint> = ports.iter().map(|&p| endpoint(p)).collect();
    let mut pre = Preconnection::new(&lp, &remotes, None, Some(&opts)).unwrap();
    pre.set_alpn(&["h2", "http/1.1"]).unwrap();
    assert_eq!(pre.alpn(), ["h2", "http/1.1"]);
    let seen = Arc::new(Mutex::new(Seen::default()));
    pre.set_security_stage(Some(HelloStage::new(&seen)));
    let calls = Arc::new(Mutex::new(Calls::default()));
    let begun = Instant::now();
    let conn = pre.initiate(Box::new(Count(Arc::clone(&calls)))).unwrap();
    drop(pre);
    lp.run().unwrap();
    (conn, lp, seen, calls, begun.elapsed())
}

/// Every started attempt but `winner` was cancelled once at most and its
/// socket is closed now; late reports of cancelled attempts are ignored.
fn check_losers_closed(seen: &Arc<Mutex<Seen>>, winner: Option<usize>, lp: &EventLoop) {
    let late = {
        let seen = seen.lock().unwrap();
        for (index, (fd, id)) in &seen.started {
            assert!(seen.cancelled.get(index).copied().unwrap_or(0) <= 1, "attempt {index} cancelled twice");
            if Some(*index) != winner {
                assert_ne!(identity(*fd), *id, "attempt {index}'s socket is still open");
            }
        }
        seen.late.clone()
    };
    for a in &late {
        a.ready(Some("late"));
        a.want_read();
    }
    lp.run().unwrap();
}

#[test]
fn first_tcp_to_connect_loses_to_the_first_handshake_to_finish() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let slow = server(Reply::Ok(Duration::from_millis(400)));
    let fast = server(Reply::Ok(Duration::ZERO));
    let opts = RacingOptions { connection_attempt_delay_ms: 50, total_timeout_ms: 5000, ..Default::default() };
    let (conn, lp, seen, calls, took) = race(&[slow, fast], opts);
    assert_eq!(conn.state(), ConnectionState::Established);
    assert_eq!(conn.remote_address(), Some(SocketAddr::from(([127, 0, 0, 1], fast))));
    assert_eq!(conn.alpn().as_deref(), Some("h2"));
    let a = conn.attempts();
    assert_eq!(a.len(), 2, "{a:?}");
    let (first, second) = (&a[0], &a[1]);
    assert_eq!(first.address.port(), slow);
    assert_eq!(first.outcome, AttemptOutcome::Cancelled, "{a:?}");
    assert_eq!(second.outcome, AttemptOutcome::Won, "{a:?}");
    // The slow server's TCP connected first; its handshake had not ended
    // when the second attempt started (the attempt delay ran on it).
    let first_connected = first.connected_us.expect("the first attempt connected");
    let second_connected = second.connected_us.expect("the winner connected");
    assert!(first_connected < second.started_us, "{a:?}");
    assert!(second.started_us >= 50_000, "the Connection Attempt Delay counts the handshake: {a:?}");
    assert!(second_connected <= second.ended_us.unwrap(), "{a:?}");
    assert!(took < Duration::from_millis(400), "the slow handshake did not hold the race: {took:?}");
    eprintln!(
        "loopback: winner TCP connected after {} µs, handshake done after {} µs more",
        second_connected - second.started_us,
        second.ended_us.unwrap() - second_connected
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.cancelled.get(&0), Some(&1));
        assert_eq!(seen.cancelled.get(&1), None, "the winner is not cancelled");
        for (alpn, host, ech) in &seen.offered {
            assert_eq!(alpn, &["h2", "http/1.1"]);
            assert_eq!(host, &None, "literal addresses have no host name");
            assert_eq!(ech, &None);
        }
        // The winner's socket is the connection's.
        let (fd, id) = seen.started[&1];
        assert_eq!(conn.fd(), Some(fd));
        assert_eq!(identity(fd), id);
    }
    check_losers_closed(&seen, Some(1), &lp);
    let calls = calls.lock().unwrap();
    assert_eq!((calls.ready, calls.failed), (1, 0));
    assert_eq!(conn.alpn().as_deref(), Some("h2"), "late reports change nothing");
}

#[test]
fn a_stage_failure_starts_the_next_attempt_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let refusing = server(Reply::Refuse);
    let fast = server(Reply::Ok(Duration::ZERO));
    let opts = RacingOptions { connection_attempt_delay_ms: 2000, total_timeout_ms: 5000, ..Default::default() };
    let (conn, lp, seen, calls, took) = race(&[refusing, fast], opts);
    let a = conn.attempts();
    assert_eq!(conn.state(), ConnectionState::Established, "{a:?}");
    assert_eq!(a[0].outcome, AttemptOutcome::Failed, "{a:?}");
    assert_eq!(a[0].os_error, libc::EPROTO);
    assert!(a[0].connected_us.is_some());
    assert_eq!(a[1].outcome, AttemptOutcome::Won);
    // Not after the 2 s Connection Attempt Delay: at the failure.
    assert!(a[1].started_us < 1_000_000 && took < Duration::from_secs(1), "{a:?}");
    assert!(a[1].started_us >= a[0].ended_us.unwrap());
    assert_eq!(seen.lock().unwrap().cancelled.len(), 0, "a stage that failed is not cancelled");
    check_losers_closed(&seen, Some(1), &lp);
    assert_eq!(calls.lock().unwrap().ready, 1);
}

#[test]
fn the_attempt_timeout_covers_the_stage() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let silent = server(Reply::Never);
    let opts = RacingOptions { attempt_timeout_ms: 200, total_timeout_ms: 5000, ..Default::default() };
    let (conn, lp, seen, calls, took) = race(&[silent], opts);
    let a = conn.attempts();
    assert_eq!(conn.state(), ConnectionState::Failed, "{a:?}");
    assert_eq!(conn.error(), Some(Error::AllAttemptsFailed(libc::ETIMEDOUT)));
    assert_eq!(a[0].outcome, AttemptOutcome::Failed);
    assert_eq!(a[0].os_error, libc::ETIMEDOUT);
    let connected = a[0].connected_us.expect("TCP connected");
    assert!(connected < 100_000 && a[0].ended_us.unwrap() >= 200_000, "{a:?}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "{took:?}");
    assert_eq!(seen.lock().unwrap().cancelled.get(&0), Some(&1), "the timed-out stage is cancelled once");
    check_losers_closed(&seen, None, &lp);
    let calls = calls.lock().unwrap();
    assert_eq!((calls.ready, calls.failed), (0, 1));
    assert_eq!(conn.alpn(), None);
}

#[test]
fn without_a_stage_tcp_wins_at_connect_and_has_no_alpn() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let silent = server(Reply::Never);
    let lp = EventLoop::new().unwrap();
    let mut pre = Preconnection::new(&lp, &[endpoint(silent)], None, None).unwrap();
    pre.set_alpn(&["h2"]).unwrap();
    let calls = Arc::new(Mutex::new(Calls::default()));
    let conn = pre.initiate(Box::new(Count(Arc::clone(&calls)))).unwrap();
    lp.run().unwrap();
    assert_eq!(conn.state(), ConnectionState::Established);
    assert_eq!(conn.alpn(), None);
    assert_eq!(conn.attempt(0).unwrap().connected_us, None);
    assert!(pre.set_alpn(&[""]).is_err());
    assert!(pre.set_alpn(&["a\0b"]).is_err());
    assert!(pre.set_alpn(&[&"x".repeat(256)]).is_err());
    assert_eq!(pre.alpn(), ["h2"], "a refused list changes nothing");
    pre.set_alpn(&[]).unwrap();
    assert!(pre.alpn().is_empty());
}

/// A stage that fails every attempt at once from `start`.
struct Refuse(Arc<Mutex<usize>>);

impl SecurityStage for Refuse {
    fn start(&self, _: StageAttempt) -> std::result::Result<(), i32> {
        *self.0.lock().unwrap() += 1;
        Err(libc::EACCES)
    }
    fn io(&self, _: &StageAttempt, _: bool, _: bool) {
        panic!("no io after a refused start");
    }
    fn cancel(&self, _: &StageAttempt) {
        panic!("no cancel after a refused start");
    }
}

#[test]
fn a_start_that_fails_fails_the_attempt() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (one, two) = (server(Reply::Ok(Duration::ZERO)), server(Reply::Ok(Duration::ZERO)));
    let lp = EventLoop::new().unwrap();
    let mut pre = Preconnection::new(&lp, &[endpoint(one), endpoint(two)], None, None).unwrap();
    let starts = Arc::new(Mutex::new(0));
    pre.set_security_stage(Some(Arc::new(Refuse(Arc::clone(&starts)))));
    let calls = Arc::new(Mutex::new(Calls::default()));
    let conn = pre.initiate(Box::new(Count(Arc::clone(&calls)))).unwrap();
    lp.run().unwrap();
    assert_eq!(conn.error(), Some(Error::AllAttemptsFailed(libc::EACCES)));
    assert_eq!(*starts.lock().unwrap(), 2);
    assert!(conn.attempts().iter().all(|a| a.os_error == libc::EACCES && a.connected_us.is_some()));
    assert_eq!(calls.lock().unwrap().failed, 1);
}
