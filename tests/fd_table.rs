//! Every losing socket is closed before `ready` runs, and nothing leaks
//! over many races. One test in its own binary, so that no other test's
//! sockets move the fd count.

use socket2::{Domain, Socket, Type};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use taps_racing::api::*;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn endpoint(host: &str, port: u16) -> RemoteEndpoint {
    let mut ep = RemoteEndpoint::new();
    ep.with_hostname(host).unwrap().with_port(port).unwrap();
    ep
}

struct CountInReady(Arc<Mutex<Vec<usize>>>);

impl ConnectionHandler for CountInReady {
    fn ready(&mut self, _: &Connection) {
        self.0.lock().unwrap().push(open_fds());
    }
}

#[test]
fn losers_are_closed_before_ready_and_nothing_leaks() {
    // A blackholed [::1] listener (full accept queue) and a working IPv4 one.
    let hole = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
    hole.set_only_v6(true).unwrap();
    hole.bind(&"[::1]:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    hole.listen(0).unwrap();
    let hole_addr = hole.local_addr().unwrap().as_socket().unwrap();
    let _filler = TcpStream::connect(hole_addr).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    let lp = EventLoop::new().unwrap();
    // Every race attempts the blackholed address first: no history (it
    // would skip it after the first race).
    lp.set_history(false);
    let opts = RacingOptions { connection_attempt_delay_ms: 10, ..Default::default() };
    let racing = Preconnection::new(&lp, &[endpoint("::1", hole_addr.port()), endpoint("127.0.0.1", port)], None, Some(&opts))
        .unwrap();
    let failing = Preconnection::new(&lp, &[endpoint("127.0.0.1", refused)], None, None).unwrap();

    // Warm up: the loop's resolver, timerfd and epoll fds exist before counting.
    let before = open_fds();
    let counts = Arc::new(Mutex::new(Vec::new()));
    for i in 0..300 {
        let pre = if i % 3 == 2 { &failing } else { &racing };
        let conn = pre.initiate(Box::new(CountInReady(Arc::clone(&counts)))).unwrap();
        lp.run().unwrap();
        if i % 3 != 2 {
            let a = conn.attempts();
            assert_eq!(a[0].outcome, AttemptOutcome::Cancelled, "{a:?}");
            assert_eq!(a[1].outcome, AttemptOutcome::Won, "{a:?}");
            // In `ready`: the winner's socket is the only one the race left
            // open (the blackholed attempt's socket is already closed).
            assert_eq!(counts.lock().unwrap().pop(), Some(before + 1));
        }
        drop(conn);
        while listener.accept().is_ok() {}
    }
    assert_eq!(open_fds(), before, "fds leaked over 300 races");
}
