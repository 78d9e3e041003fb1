//! The DNS client's exchanges on the loop itself (see "Where the exchange
//! runs" in src/runtime/dns/mod.rs): per name job ([`NameJob`]), one
//! [`Exchange`] whose UDP sockets (one per server it asks) are registered
//! on the loop's poller with tokens of their own (`Watched::Dns`), whose
//! next deadline is a loop timer ([`TimerOwner::Dns`]), and whose answers
//! go straight to their race, as the resolver's answers do
//! (`LoopCore::feed_answer`), without a thread, a queue or a wake-up.
//!
//! A job starts where the loop next settles its timers (`sync_wake_timer`,
//! which every change to the loop's state ends with): [`Resolver::submit`]
//! and [`Resolver::submit_name`] queue it there, so that the callers (a
//! race's start, its HTTPS rules) need not hold more of the loop's state.
//! The rare TCP retry of a truncated reply runs on a resolver worker
//! ([`TcpJob`]): a blocking connect, write and read whose reply comes back
//! to [`LoopCore::on_tcp_replies`]; on the loop it would need a
//! connection state machine for a path that almost never runs.
//!
//! Deadlines are on the loop's clock: under a manual clock (tests), a
//! silent server's try times out when the clock is moved past it.
//!
//! A socket is closed when its exchange ends, without a deregistration:
//! closing the last descriptor of a socket removes it from the epoll set.
//! An exchange outlives its race (as a worker's lookup did): its answers
//! still fill the resolution cache and, late, the race's report.
//!
//! [`Resolver::submit`]: super::resolver::Resolver::submit
//! [`Resolver::submit_name`]: super::resolver::Resolver::submit_name

use super::dns::exchange::{Exchange, Step, UDP_BUFFER};
use super::dns::Kind;
use super::resolver::{NameAnswer, NameJob, TcpJob, TcpReply};
use super::sys::dns_io;
use super::timers::TimerOwner;
use super::{LoopCore, LoopState};
use crate::engine::{Family, Micros};
use mio::{Interest, Token};
use std::collections::HashMap;

/// One name's exchange on the loop.
struct LoopExchange {
    x: Exchange,
    job: NameJob,
    /// Per server: its socket and token, once asked.
    socks: Vec<Option<(mio::net::UdpSocket, Token)>>,
    /// The deadline its timer is armed for.
    armed: Option<Micros>,
}

/// The loop's DNS exchanges, by id.
#[derive(Default)]
pub(crate) struct LoopExchanges {
    running: HashMap<u64, LoopExchange>,
    next: u64,
}

impl LoopExchanges {
    /// Whether exchange `id`'s timer is armed for `at`.
    pub(crate) fn is_armed_at(&self, id: u64, at: Micros) -> bool {
        self.running.get(&id).is_some_and(|e| e.armed == Some(at))
    }

    /// How many exchanges run.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.running.len()
    }
}

impl LoopCore {
    /// Start the name jobs queued for the loop (and those their answers
    /// queue in turn).
    pub(super) fn start_name_jobs(&self, st: &mut LoopState) {
        loop {
            let jobs = self.resolver.take_loop_names();
            if jobs.is_empty() {
                return;
            }
            let now = self.clock.now();
            for job in jobs {
                self.start_name_job(st, job, now);
            }
        }
    }

    /// Start one name job: the answers known without DNS at once, the
    /// rest asked.
    fn start_name_job(&self, st: &mut LoopState, job: NameJob, now: Micros) {
        let host = job.host.to_str().map(str::to_owned);
        let mut kinds = Vec::with_capacity(3);
        if job.https {
            kinds.push(Kind::Https);
        }
        kinds.extend(job.families.iter().map(|f| if *f == Family::V6 { Kind::Aaaa } else { Kind::A }));
        let Ok(host) = host else {
            // Not UTF-8: no DNS name.
            for kind in kinds {
                self.name_answer(st, &job, kind, Err(super::dns::DnsError::BadName), now);
            }
            return;
        };
        let dns = self.resolver.dns();
        let (known, ask) = dns.begin(&host, &kinds);
        for (kind, outcome) in known {
            self.name_answer(st, &job, kind, outcome, now);
        }
        if ask.is_empty() {
            return;
        }
        let x = Exchange::new(&dns.conf, &host, &ask, now);
        let id = st.exchanges.next;
        st.exchanges.next += 1;
        let socks = (0..x.servers().len()).map(|_| None).collect();
        st.exchanges.running.insert(id, LoopExchange { x, job, socks, armed: None });
        self.exchange_steps(st, id, now);
    }

    /// Carry out exchange `id`'s steps: send, hand TCP retries to a
    /// worker, hand answers on; then arm its timer, or end it.
    fn exchange_steps(&self, st: &mut LoopState, id: u64, now: Micros) {
        let mut answers = Vec::new();
        let LoopState { exchanges, tokens, timers, .. } = &mut *st;
        let Some(e) = exchanges.running.get_mut(&id) else { return };
        while let Some(step) = e.x.step() {
            match step {
                Step::Send { server, bytes } => {
                    if e.socks[server].is_none() {
                        e.socks[server] = open(&self.registry, tokens, id, server, e.x.servers()[server]);
                    }
                    if !e.socks[server].as_ref().is_some_and(|(s, _)| s.send(&bytes).is_ok()) {
                        e.x.on_server_error(server, now);
                    }
                }
                Step::Tcp { query, serial, server, bytes, timeout } => {
                    self.resolver.submit_tcp(TcpJob { exchange: id, query, serial, server, bytes, timeout });
                }
                Step::Answer(kind, outcome) => answers.push((kind, outcome)),
            }
        }
        let job = if e.x.is_done() {
            let e = exchanges.running.remove(&id).expect("running");
            for (_, token) in e.socks.into_iter().flatten() {
                tokens.forget(token);
            }
            e.job
        } else {
            let deadline = e.x.deadline();
            if deadline.is_some() && deadline != e.armed {
                timers.push(deadline.unwrap_or_default(), TimerOwner::Dns(id));
            }
            e.armed = deadline;
            if answers.is_empty() {
                return;
            }
            e.job.clone()
        };
        for (kind, outcome) in answers {
            self.name_answer(st, &job, kind, outcome, now);
        }
    }

    /// Exchange `id`'s socket to server `server` is readable: its
    /// datagrams (or its error) to the exchange.
    pub(super) fn exchange_readable(&self, st: &mut LoopState, id: u64, server: usize, now: Micros) {
        let Some(e) = st.exchanges.running.get_mut(&id) else { return };
        let mut buf = [0u8; UDP_BUFFER];
        // Until the socket has nothing more, or the exchange has every
        // answer (its sockets close: no need for the last, empty read).
        while let (Some((sock, _)), false) = (&e.socks[server], e.x.is_done()) {
            match sock.recv(&mut buf) {
                Ok(n) => e.x.on_datagram(server, &buf[..n], now),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                // ICMP unreachable (ECONNREFUSED) and the like: next server.
                Err(_) => {
                    e.x.on_server_error(server, now);
                    break;
                }
            }
        }
        self.exchange_steps(st, id, now);
    }

    /// Exchange `id`'s timer fired for `at`.
    pub(super) fn exchange_timer(&self, st: &mut LoopState, id: u64, at: Micros, now: Micros) {
        let Some(e) = st.exchanges.running.get_mut(&id) else { return };
        if e.armed != Some(at) {
            return;
        }
        e.armed = None;
        e.x.on_time(now);
        self.exchange_steps(st, id, now);
    }

    /// TCP retries' replies from the workers, to their exchanges.
    pub(super) fn on_tcp_replies(&self, st: &mut LoopState, replies: Vec<TcpReply>, now: Micros) {
        for r in replies {
            let Some(e) = st.exchanges.running.get_mut(&r.exchange) else { continue };
            e.x.on_tcp(r.query, r.serial, r.reply.as_deref(), now);
            self.exchange_steps(st, r.exchange, now);
        }
    }

    /// One answer of `job`, to its race (through the cache).
    fn name_answer(&self, st: &mut LoopState, job: &NameJob, kind: Kind, outcome: super::dns::Outcome, now: Micros) {
        let host = job.host.to_str().unwrap_or_default();
        match self.resolver.name_answer(job, host, kind, outcome) {
            NameAnswer::Addresses(answer) => self.feed_answer(st, answer, now),
            NameAnswer::Services(answer) => self.system_service_answer(st, answer),
        }
    }
}

/// A non-blocking UDP socket connected to `server`, registered for
/// reading with a token of exchange `id`; `None` when it cannot be made.
fn open(
    registry: &mio::Registry,
    tokens: &mut super::tokens::SocketTokens,
    id: u64,
    server: usize,
    addr: std::net::SocketAddr,
) -> Option<(mio::net::UdpSocket, Token)> {
    let mut sock = mio::net::UdpSocket::from_std(dns_io::udp_to(addr).ok()?);
    let token = tokens.dns(id, server);
    if let Err(e) = registry.register(&mut sock, token, Interest::READABLE) {
        log::debug!("cannot watch a DNS socket: {e}");
        tokens.forget(token);
        return None;
    }
    Some((sock, token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::dns::conf::ResolvConf;
    use crate::runtime::dns::fake::{self, FakeServer};
    use crate::runtime::dns::DnsClient;
    use crate::runtime::resolver::Job;
    use crate::runtime::{lock, LoopCore};
    use hickory_proto::rr::RecordType;
    use std::ffi::CString;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A loop whose DNS client asks `servers` (`timeout` per try, `attempts`
    /// rounds) and answers for addresses.
    fn loop_with(servers: &[std::net::SocketAddr], timeout: Duration, attempts: u32) -> Arc<LoopCore> {
        let lp = LoopCore::new(false).unwrap();
        let mut conf = ResolvConf::with_servers(servers);
        conf.timeout = timeout;
        conf.attempts = attempts;
        lp.resolver.set_dns(DnsClient::new(conf, Default::default(), true));
        lp
    }

    /// AAAA and A of `host` for race 7 (no such race: the answers fill
    /// the cache).
    fn ask(lp: &LoopCore, host: &str) {
        let host = CString::new(host).unwrap();
        let jobs = [Family::V6, Family::V4]
            .map(|family| Job { race: 7, key: crate::engine::QueryKey { endpoint: 0, family }, host: host.clone(), port: 443 });
        lp.resolver.submit(jobs.into());
        let mut st = lock(&lp.state);
        lp.sync_wake_timer(&mut st);
    }

    /// Run the loop until its exchanges end (at most 10 s); how long it took.
    fn run_until_done(lp: &LoopCore) -> Duration {
        let started = Instant::now();
        while lock(&lp.state).exchanges.len() > 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "timed out");
            lp.poll_once(Some(Duration::from_millis(50))).unwrap();
        }
        started.elapsed()
    }

    #[test]
    fn a_names_queries_run_on_the_loop_over_one_socket_and_fill_the_cache() {
        let s = FakeServer::start(|q, _| {
            let rec = match q.queries[0].query_type() {
                RecordType::AAAA => fake::aaaa("web.test", 30, "::1"),
                _ => fake::a("web.test", 40, "127.0.0.1"),
            };
            vec![fake::answer(q, vec![rec])]
        });
        let lp = loop_with(&[s.addr], Duration::from_secs(2), 1);
        ask(&lp, "web.test");
        assert_eq!(lock(&lp.state).exchanges.len(), 1, "started where the loop settles its timers");
        run_until_done(&lp);
        let [v6, v4] = lp.resolver.cache.get("web.test", 443);
        let v6 = v6.unwrap().unwrap();
        assert_eq!((v6[0].addr, v6[0].source), ("[::1]:443".parse().unwrap(), Some("::1".parse().unwrap())));
        assert_eq!(v4.unwrap().unwrap()[0].addr, "127.0.0.1:443".parse().unwrap());
        let seen = s.seen();
        assert_eq!(seen.iter().map(|q| q.msg.queries[0].query_type()).collect::<Vec<_>>(), [RecordType::AAAA, RecordType::A]);
        assert_eq!(seen[0].from, seen[1].from, "one socket for the name's queries to the server");
        assert_ne!(seen[0].msg.metadata.id, seen[1].msg.metadata.id, "each query its own id");
        assert_eq!(lp.resolver.thread_counts(), (0, 0), "no worker");
    }

    #[test]
    fn silent_servers_time_out_on_the_loops_timers_after_every_try() {
        let (s1, s2) = (FakeServer::start(|_, _| vec![]), FakeServer::start(|_, _| vec![]));
        let lp = loop_with(&[s1.addr, s2.addr], Duration::from_millis(60), 2);
        ask(&lp, "silent.test");
        let took = run_until_done(&lp);
        // timeout × attempts × servers = 240 ms.
        assert!(took >= Duration::from_millis(230) && took < Duration::from_secs(3), "{took:?}");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!((s1.seen().len(), s2.seen().len()), (4, 4), "AAAA and A, two rounds over both servers");
        let [v6, v4] = lp.resolver.cache.get("silent.test", 443);
        assert!(v6.is_none() && v4.is_none(), "a timeout is not kept");
        assert_eq!(lp.resolver.thread_counts(), (0, 0));
    }

    #[test]
    fn an_unreachable_server_is_left_for_the_next_at_once() {
        let good = FakeServer::start(|q, _| {
            let rec = match q.queries[0].query_type() {
                RecordType::AAAA => fake::aaaa("web.test", 30, "::1"),
                _ => fake::a("web.test", 30, "127.0.0.1"),
            };
            vec![fake::answer(q, vec![rec])]
        });
        // ICMP port unreachable: an error event on the loop's socket.
        let lp = loop_with(&[fake::closed_udp(), good.addr], Duration::from_secs(3), 1);
        ask(&lp, "web.test");
        let took = run_until_done(&lp);
        assert!(took < Duration::from_secs(2), "no timeout waited: {took:?}");
        let [v6, v4] = lp.resolver.cache.get("web.test", 443);
        assert!(v6.unwrap().is_ok() && v4.unwrap().is_ok());
        assert_eq!(good.seen().len(), 2);
    }

    #[test]
    fn a_loop_freed_with_an_exchange_running_waits_for_nothing() {
        let silent = FakeServer::start(|_, _| vec![]);
        let lp = loop_with(&[silent.addr], Duration::from_secs(5), 2);
        ask(&lp, "silent.test");
        lp.poll_once(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(lock(&lp.state).exchanges.len(), 1);
        let resolver = Arc::clone(&lp.resolver);
        let started = Instant::now();
        drop(lp);
        assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
        assert_eq!(resolver.thread_counts(), (0, 0), "no thread ran it");
        assert_eq!(Arc::strong_count(&resolver), 1);
    }

    #[test]
    fn a_truncated_reply_is_asked_again_over_tcp_by_a_worker() {
        let s = FakeServer::start(|q, tcp| {
            if tcp {
                vec![fake::answer(q, vec![fake::aaaa("big.test", 30, "::1")])]
            } else if q.queries[0].query_type() == RecordType::A {
                vec![fake::answer(q, vec![fake::a("big.test", 30, "127.0.0.1")])]
            } else {
                let mut m = fake::response(q);
                m.metadata.truncation = true;
                vec![m.to_vec().unwrap()]
            }
        });
        let lp = loop_with(&[s.addr], Duration::from_secs(2), 1);
        ask(&lp, "big.test");
        run_until_done(&lp);
        let [v6, v4] = lp.resolver.cache.get("big.test", 443);
        assert_eq!(v6.unwrap().unwrap()[0].addr, "[::1]:443".parse().unwrap());
        assert!(v4.unwrap().is_ok());
        let tcp: Vec<(RecordType, bool)> = s.seen().iter().map(|q| (q.msg.queries[0].query_type(), q.tcp)).collect();
        assert!(tcp.contains(&(RecordType::AAAA, true)) && !tcp.contains(&(RecordType::A, true)), "{tcp:?}");
        lp.resolver.shutdown();
    }
}
