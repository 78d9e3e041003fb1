//! The ways to run an EventLoop (run, run_once, embedded fd + process, a
//! thread of its own) and shared loops, through the Rust API on loopback.

use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use taps_racing::api::*;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_may_be_shared_by_threads() {
    assert_send_sync::<EventLoop>();
    assert_send_sync::<Preconnection>();
    assert_send_sync::<Connection>();
    assert_send_sync::<RemoteEndpoint>();
}

/// What one handler saw, and on which thread.
#[derive(Default, Debug)]
struct Seen {
    ready: usize,
    failed: usize,
    closed: usize,
    error: Option<Error>,
    threads: Vec<Option<String>>,
}

struct Recorder(Arc<Mutex<Seen>>);

impl Recorder {
    fn note(&self) -> std::sync::MutexGuard<'_, Seen> {
        let mut s = self.0.lock().unwrap();
        s.threads.push(std::thread::current().name().map(str::to_owned));
        s
    }
}

impl ConnectionHandler for Recorder {
    fn ready(&mut self, _: &Connection) {
        self.note().ready += 1;
    }
    fn establishment_error(&mut self, c: &Connection) {
        let mut s = self.note();
        s.failed += 1;
        s.error = c.error();
    }
    fn closed(&mut self, _: &Connection) {
        self.note().closed += 1;
    }
}

fn recorder() -> (Box<Recorder>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    (Box::new(Recorder(Arc::clone(&seen))), seen)
}

fn endpoint(port: u16) -> RemoteEndpoint {
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname("127.0.0.1").unwrap().with_port(port).unwrap();
    ep
}

/// A listener whose accept queue is full: a connect to it hangs.
struct Blackhole {
    _listener: Socket,
    _filler: TcpStream,
    port: u16,
}

fn blackhole() -> Blackhole {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&addr.into()).unwrap();
    l.listen(0).unwrap();
    let local = l.local_addr().unwrap().as_socket().unwrap();
    let filler = TcpStream::connect(local).unwrap();
    Blackhole { _listener: l, _filler: filler, port: local.port() }
}

fn race(lp: &EventLoop, port: u16) -> (Connection, Arc<Mutex<Seen>>) {
    let pre = Preconnection::new(lp, &[endpoint(port)], None, None).unwrap();
    let (h, seen) = recorder();
    (pre.initiate(h).unwrap(), seen)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn embedded_in_a_poll_loop() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let lp = EventLoop::new().unwrap();
    let (conn, seen) = race(&lp, l.local_addr().unwrap().port());
    let fd = lp.fd().unwrap();
    let mut turns = 0;
    while lp.has_work() {
        turns += 1;
        assert!(turns < 1000, "the loop does not finish");
        let ms = lp.timeout().unwrap().map_or(-1, |d| d.as_millis().min(5000) as i32);
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        lp.process().unwrap();
    }
    let s = seen.lock().unwrap();
    assert_eq!((s.ready, s.failed), (1, 0));
    // The callback ran inside process, on this thread.
    assert_eq!(s.threads, vec![std::thread::current().name().map(str::to_owned)]);
    assert_eq!(conn.state(), ConnectionState::Established);
    // Nothing left: the fd is quiet and no timer is pending.
    assert_eq!(lp.timeout().unwrap(), None);
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 0, "the fd stays readable after process");
}

#[test]
fn timeout_reports_the_next_timer() {
    let bh = blackhole();
    let lp = EventLoop::new().unwrap();
    let opts = RacingOptions { total_timeout_ms: 3000, ..RacingOptions::default() };
    let pre = Preconnection::new(&lp, &[endpoint(bh.port)], None, Some(&opts)).unwrap();
    let (h, _seen) = recorder();
    let _conn = pre.initiate(h).unwrap();
    let t = lp.timeout().unwrap().expect("the total timeout is a timer");
    assert!(t > Duration::from_millis(1000) && t <= Duration::from_millis(3000), "{t:?}");
}

#[test]
fn run_once_waits_at_most_its_timeout() {
    let bh = blackhole();
    let lp = EventLoop::new().unwrap();
    let (conn, seen) = race(&lp, bh.port);
    let start = Instant::now();
    assert_eq!(lp.run_once(Some(Duration::from_millis(60))).unwrap(), 0);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(50) && took < Duration::from_secs(10), "{took:?}");
    assert_eq!(conn.state(), ConnectionState::Establishing);
    // Nothing pending: returns at once even without a timeout.
    drop(conn);
    let start = Instant::now();
    assert_eq!(lp.run_once(None).unwrap(), 0);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(seen.lock().unwrap().threads.len(), 0);
}

#[test]
fn a_call_from_another_thread_wakes_a_blocked_loop() {
    let bh = blackhole();
    let lp = EventLoop::new().unwrap();
    let (conn, seen) = race(&lp, bh.port);
    let conn = Arc::new(conn);
    let c2 = Arc::clone(&conn);
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        // Cancels the race and queues `closed`: only the Waker can tell
        // the loop, which waits on no timer and no socket that will fire.
        c2.close();
    });
    let start = Instant::now();
    let delivered = lp.run_once(None).unwrap();
    closer.join().unwrap();
    assert_eq!(delivered, 1, "the closed callback");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(seen.lock().unwrap().closed, 1);
}

#[test]
fn a_thread_of_its_own() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let bh = blackhole();
    let lp = EventLoop::new().unwrap();
    lp.start_thread().unwrap();
    assert!(lp.has_thread());
    assert_eq!(lp.start_thread(), Err(Error::InvalidState));
    // Only the loop's thread runs it.
    assert_eq!(lp.run(), Err(Error::InvalidState));
    assert_eq!(lp.run_once(Some(Duration::ZERO)), Err(Error::InvalidState));
    assert_eq!(lp.process(), Err(Error::InvalidState));
    assert_eq!(lp.fd(), Err(Error::InvalidState));

    let (won, won_seen) = race(&lp, l.local_addr().unwrap().port());
    wait_for("ready", || won_seen.lock().unwrap().ready == 1);
    assert_eq!(won.state(), ConnectionState::Established);
    assert_eq!(won_seen.lock().unwrap().threads, vec![Some("taps-loop".to_string())]);

    // Stopping ends the pending race with a clear error, on the loop's thread.
    let (stuck, stuck_seen) = race(&lp, bh.port);
    lp.stop_thread().unwrap();
    {
        let s = stuck_seen.lock().unwrap();
        assert_eq!((s.ready, s.failed), (0, 1));
        assert_eq!(s.error, Some(Error::LoopStopped));
        assert_eq!(s.threads, vec![Some("taps-loop".to_string())]);
    }
    assert_eq!(stuck.state(), ConnectionState::Failed);
    assert_eq!(stuck.error(), Some(Error::LoopStopped));
    assert_eq!(won.state(), ConnectionState::Established);
    assert!(!lp.has_thread());
    assert_eq!(lp.stop_thread(), Err(Error::InvalidState));

    // The caller may run it again, or start another thread.
    let (again, again_seen) = race(&lp, l.local_addr().unwrap().port());
    lp.run().unwrap();
    assert_eq!(again_seen.lock().unwrap().ready, 1);
    lp.start_thread().unwrap();
    drop((won, stuck, again));
    drop(lp); // stops and joins the thread
}

/// Runs the loop from inside its own callback.
struct Reenter {
    lp: Arc<Mutex<Option<Arc<EventLoop>>>>,
    got: Arc<Mutex<Vec<Result<()>>>>,
}

impl ConnectionHandler for Reenter {
    fn ready(&mut self, _: &Connection) {
        let lp = self.lp.lock().unwrap().clone().unwrap();
        let mut got = self.got.lock().unwrap();
        got.push(lp.run());
        got.push(lp.process().map(|_| ()));
    }
}

#[test]
fn the_loop_cannot_be_run_from_its_own_callback() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let lp = Arc::new(EventLoop::new().unwrap());
    let slot = Arc::new(Mutex::new(Some(Arc::clone(&lp))));
    let got = Arc::new(Mutex::new(Vec::new()));
    let pre = Preconnection::new(&lp, &[endpoint(l.local_addr().unwrap().port())], None, None).unwrap();
    let conn = pre.initiate(Box::new(Reenter { lp: Arc::clone(&slot), got: Arc::clone(&got) })).unwrap();
    lp.run().unwrap();
    assert_eq!(*got.lock().unwrap(), vec![Err(Error::InvalidState), Err(Error::InvalidState)]);
    slot.lock().unwrap().take();
    drop(conn);
}

#[test]
fn shared_loops_keep_clients_apart() {
    let key = "event_loops.rs shared_loops_keep_clients_apart";
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let bh = blackhole();
    let a = EventLoop::shared(key).unwrap();
    let b = EventLoop::shared(key).unwrap();
    assert_eq!(EventLoop::shared_handle_count(key), 2);
    assert!(a.is_shared() && a.has_thread());

    // Neither handle may run, embed, start or stop the loop.
    for h in [&a, &b] {
        assert_eq!(h.run(), Err(Error::InvalidState));
        assert_eq!(h.run_once(None), Err(Error::InvalidState));
        assert_eq!(h.process(), Err(Error::InvalidState));
        assert_eq!(h.fd(), Err(Error::InvalidState));
        assert_eq!(h.timeout(), Err(Error::InvalidState));
        assert_eq!(h.start_thread(), Err(Error::InvalidState));
        assert_eq!(h.stop_thread(), Err(Error::InvalidState));
    }

    let (a_stuck, a_seen) = race(&a, bh.port);
    let (b_stuck, b_stuck_seen) = race(&b, bh.port);
    let (b_won, b_seen) = race(&b, l.local_addr().unwrap().port());
    wait_for("b's ready", || b_seen.lock().unwrap().ready == 1);
    assert_ne!(a_stuck.id(), b_stuck.id());

    // A leaves: its race is cancelled, silently; B's goes on.
    drop(a);
    assert_eq!(EventLoop::shared_handle_count(key), 1);
    assert_eq!(a_stuck.state(), ConnectionState::Failed);
    assert_eq!(a_stuck.error(), Some(Error::Cancelled));
    assert_eq!(b_stuck.state(), ConnectionState::Establishing);
    assert_eq!(b_won.state(), ConnectionState::Established);
    // A race of a released handle's Preconnection is refused.
    // (Its Preconnection was dropped with `race`; make one on b instead.)
    let (b_more, b_more_seen) = race(&b, l.local_addr().unwrap().port());
    wait_for("b's second ready", || b_more_seen.lock().unwrap().ready == 1);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(a_seen.lock().unwrap().threads.len(), 0, "no callback for a released client");
    assert_eq!(b_stuck_seen.lock().unwrap().threads.len(), 0);

    // The last handle stops the loop; the key starts afresh.
    drop(b);
    assert_eq!(EventLoop::shared_handle_count(key), 0);
    assert_eq!(b_stuck.error(), Some(Error::Cancelled));
    assert_eq!(b_stuck_seen.lock().unwrap().threads.len(), 0);
    let c = EventLoop::shared(key).unwrap();
    assert_eq!(EventLoop::shared_handle_count(key), 1);
    let (c_won, c_seen) = race(&c, l.local_addr().unwrap().port());
    wait_for("c's ready", || c_seen.lock().unwrap().ready == 1);
    c.release();
    assert_eq!(EventLoop::shared_handle_count(key), 0);
    drop((a_stuck, b_stuck, b_won, b_more, c_won));
}

#[test]
fn initiate_after_release_is_refused() {
    let key = "event_loops.rs initiate_after_release_is_refused";
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let keep = EventLoop::shared(key).unwrap();
    let a = EventLoop::shared(key).unwrap();
    let pre = Preconnection::new(&a, &[endpoint(l.local_addr().unwrap().port())], None, None).unwrap();
    drop(a);
    let (h, _) = recorder();
    assert_eq!(pre.initiate(h).err(), Some(Error::InvalidState));
    drop(keep);
}

/// Releases its own shared handle inside `ready`.
struct ReleaseInCallback {
    handle: Arc<Mutex<Option<EventLoop>>>,
    done: Arc<Mutex<bool>>,
}

impl ConnectionHandler for ReleaseInCallback {
    fn ready(&mut self, _: &Connection) {
        drop(self.handle.lock().unwrap().take());
        *self.done.lock().unwrap() = true;
    }
}

#[test]
fn the_last_handle_may_be_released_inside_a_callback() {
    let key = "event_loops.rs release_inside_a_callback";
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let handle = Arc::new(Mutex::new(Some(EventLoop::shared(key).unwrap())));
    let done = Arc::new(Mutex::new(false));
    let conn = {
        let guard = handle.lock().unwrap();
        let lp = guard.as_ref().unwrap();
        let pre = Preconnection::new(lp, &[endpoint(l.local_addr().unwrap().port())], None, None).unwrap();
        pre.initiate(Box::new(ReleaseInCallback { handle: Arc::clone(&handle), done: Arc::clone(&done) })).unwrap()
    };
    wait_for("release in ready", || *done.lock().unwrap());
    assert_eq!(EventLoop::shared_handle_count(key), 0);
    drop(conn);
}
