//! The system resolver: one getaddrinfo call per family (RFC 8305 §3: AAAA
//! and A asked separately and at once) on worker threads, answers handed to
//! the loop through its Waker.
//!
//! Each loop has its own pool (no process-wide state). Workers are started
//! on demand up to [`MAX_WORKERS`] and leave after [`IDLE_EXIT`] without
//! work. getaddrinfo cannot be interrupted: a worker busy when its loop is
//! freed finishes that call and drops the answer.
//!
//! The worker also finds the source address the kernel would use for each
//! answer (a connected UDP socket's local address, as glibc does for RFC
//! 6724), so that the loop thread makes no blocking call.

use super::cache::AnswerCache;
use crate::engine::{Candidate, Family, QueryKey};
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use super::sync::{Condvar, Mutex};
use std::sync::Arc;
use std::time::Duration;

/// Most worker threads one loop runs at once: as many lookups can wait on
/// slow DNS servers at the same time before new queries queue. More
/// threads than that make hosts-file lookups, which take µs of CPU, fight
/// over the queue's lock on a small machine.
pub(crate) const MAX_WORKERS: usize = 16;
/// How long an idle worker waits for work before it exits.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(5);

/// One query to run.
#[derive(Debug)]
pub(crate) struct Job {
    /// The race that asked.
    pub race: u64,
    /// Which endpoint and family.
    pub key: QueryKey,
    /// Host name to resolve.
    pub host: CString,
    /// Port to put on every answer.
    pub port: u16,
}

/// One finished query.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The race that asked.
    pub race: u64,
    /// Which endpoint and family.
    pub key: QueryKey,
    /// Candidates, or the getaddrinfo error code (EAI_*).
    pub result: Result<Vec<Candidate>, i32>,
}

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Job>,
    idle: usize,
    /// Workers running a query.
    busy: usize,
    workers: usize,
    shutdown: bool,
}

/// Jobs in, answers out, a waker to call when an answer is ready.
pub(crate) struct Resolver {
    /// Answers kept for later races (see [`AnswerCache`]).
    pub(crate) cache: AnswerCache,
    /// Queries handed to the workers so far.
    pub(crate) submitted: std::sync::atomic::AtomicU64,
    queue: Mutex<Queue>,
    work: Condvar,
    answers: Mutex<Outbox>,
}

/// Answers for the loop, and the loop's waker: taken at shutdown, so that
/// the loop's eventfd closes with the loop, not when the last worker leaves
/// getaddrinfo (up to the DNS timeout later).
struct Outbox {
    answers: Vec<Answer>,
    waker: Option<Arc<mio::Waker>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    pub(crate) fn new(waker: Arc<mio::Waker>) -> Arc<Resolver> {
        Arc::new(Resolver {
            cache: AnswerCache::default(),
            submitted: std::sync::atomic::AtomicU64::new(0),
            queue: Mutex::default(),
            work: Condvar::new(),
            answers: Mutex::new(Outbox { answers: Vec::new(), waker: Some(waker) }),
        })
    }

    /// Queue a race's queries (RFC 8305 §3: AAAA and A at once); workers
    /// pick them up. Every job is queued before any worker is woken: a
    /// woken worker that takes the caller's CPU then finds the whole batch,
    /// not the AAAA query alone. (Woken under the lock, which helgrind
    /// requires of a condition variable.)
    pub(crate) fn submit(self: &Arc<Self>, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let mut q = self.queue.lock();
        if q.shutdown {
            return;
        }
        let n = jobs.len();
        q.jobs.extend(jobs);
        self.submitted.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        // Idle workers, and those still starting, take queued jobs; start
        // more for the rest, up to MAX_WORKERS.
        let free = q.workers - q.busy;
        let spawn = q.jobs.len().saturating_sub(free).min(MAX_WORKERS - q.workers);
        q.workers += spawn;
        for _ in 0..q.idle.min(n) {
            self.work.notify_one();
        }
        drop(q);
        for _ in 0..spawn {
            self.spawn_worker();
        }
    }

    /// Start a worker already counted in `workers`.
    fn spawn_worker(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("taps-resolver".into()).spawn(move || me.worker());
        if let Err(e) = spawned {
            log::error!("cannot start a resolver thread: {e}");
            let mut q = self.queue.lock();
            q.workers -= 1;
            if q.workers == 0 {
                // Nobody will run the queued jobs: answer them with an error.
                let jobs: Vec<Job> = q.jobs.drain(..).collect();
                drop(q);
                for job in jobs {
                    self.deliver(Answer { race: job.race, key: job.key, result: Err(libc::EAI_SYSTEM) });
                }
            }
        }
    }

    /// Have two idle workers (a race's AAAA and A queries) before a race
    /// needs them: starting a thread takes 50–100 µs.
    pub(crate) fn prepare(self: &Arc<Self>) {
        loop {
            let mut q = self.queue.lock();
            if q.shutdown || q.workers - q.busy >= 2 || q.workers >= MAX_WORKERS {
                return;
            }
            q.workers += 1;
            drop(q);
            self.spawn_worker();
        }
    }

    /// Take every answer that arrived.
    pub(crate) fn take_answers(&self) -> Vec<Answer> {
        std::mem::take(&mut self.answers.lock().answers)
    }

    /// Stop the workers: queued jobs are dropped, running ones finish alone
    /// and their answers are dropped; the loop's waker is let go now.
    pub(crate) fn shutdown(&self) {
        let mut q = self.queue.lock();
        q.shutdown = true;
        q.jobs.clear();
        self.work.notify_all();
        drop(q);
        let mut out = self.answers.lock();
        out.waker = None;
        out.answers.clear();
    }

    pub(crate) fn deliver(&self, answer: Answer) {
        // Woken under the lock: once shutdown has the lock, no worker
        // holds the waker.
        let mut out = self.answers.lock();
        let Some(waker) = &out.waker else { return };
        if let Err(e) = waker.wake() {
            log::error!("cannot wake the loop: {e}");
        }
        out.answers.push(answer);
    }

    fn worker(self: Arc<Self>) {
        loop {
            let job = {
                let mut q = self.queue.lock();
                loop {
                    if q.shutdown {
                        q.workers -= 1;
                        return;
                    }
                    if let Some(job) = q.jobs.pop_front() {
                        q.busy += 1;
                        break job;
                    }
                    q.idle += 1;
                    let (guard, timeout) = self.work.wait_timeout(q, IDLE_EXIT);
                    q = guard;
                    q.idle -= 1;
                    if timeout.timed_out() && q.jobs.is_empty() {
                        q.workers -= 1;
                        return;
                    }
                }
            };
            let result = resolve(&job.host, job.port, job.key.family)
                .map(|addrs| addrs.into_iter().map(|addr| Candidate { addr, source: source_address(addr) }).collect());
            if let Ok(host) = job.host.to_str() {
                self.cache.put(host, job.key.family, &result);
            }
            let shutdown = {
                let mut q = self.queue.lock();
                q.busy -= 1;
                q.shutdown
            };
            if shutdown {
                continue;
            }
            self.deliver(Answer { race: job.race, key: job.key, result });
        }
    }
}

/// The library's side of one user-resolver query; the C `ResolverQuery *`
/// points at it.
pub(crate) struct QueryHandle {
    pub resolver: std::sync::Weak<Resolver>,
    pub race: u64,
    pub key: QueryKey,
    pub port: u16,
    pub done: std::sync::atomic::AtomicBool,
}

impl QueryHandle {
    /// Hand the answer to the loop (once; later answers are ignored).
    /// Source addresses are found here, on the caller's thread.
    pub(crate) fn answer(&self, result: Result<Vec<IpAddr>, i32>) {
        if self.done.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let want_v6 = self.key.family == Family::V6;
        let result = result.map(|ips| {
            let mut out: Vec<Candidate> = Vec::new();
            for ip in ips.into_iter().filter(|ip| ip.is_ipv6() == want_v6) {
                let addr = SocketAddr::new(ip, self.port);
                if !out.iter().any(|c| c.addr == addr) {
                    out.push(Candidate { addr, source: source_address(addr) });
                }
            }
            out
        });
        if let Some(r) = self.resolver.upgrade() {
            r.deliver(Answer { race: self.race, key: self.key, result });
        }
    }

    /// Mark as ended by the library: later answers are ignored.
    pub(crate) fn end(&self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// getaddrinfo for one family, stream sockets, in the resolver's order,
/// without duplicates. No AI_ADDRCONFIG: a host with only loopback
/// addresses must still get answers; RFC 6724 rule 1 sorts unusable ones.
pub(crate) fn resolve(host: &CStr, port: u16, family: Family) -> Result<Vec<SocketAddr>, i32> {
    // RFC 6761 §6.3 and §6.4: "localhost" names are the loopback
    // addresses and ".invalid" names do not exist, without asking DNS (a
    // hosts file without "::1 localhost" would otherwise send the AAAA
    // query to the network).
    let name = host.to_str().unwrap_or("").trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        let ip: IpAddr = match family {
            Family::V6 => Ipv6Addr::LOCALHOST.into(),
            Family::V4 => Ipv4Addr::LOCALHOST.into(),
        };
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if name == "invalid" || name.ends_with(".invalid") {
        return Err(libc::EAI_NONAME);
    }
    // SAFETY: an all-zero addrinfo is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = match family {
        Family::V6 => libc::AF_INET6,
        Family::V4 => libc::AF_INET,
    };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: host is NUL-terminated, hints and res are valid pointers.
    let rc = unsafe { libc::getaddrinfo(host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        return Err(rc);
    }
    let mut out = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: cur walks the list getaddrinfo returned, freed below.
        let ai = unsafe { &*cur };
        if let Some(ip) = unsafe { sockaddr_ip(ai.ai_addr) } {
            let addr = match ip {
                IpAddr::V6(v6) => {
                    // SAFETY: AF_INET6 entries point at a sockaddr_in6.
                    let scope = unsafe { (*(ai.ai_addr as *const libc::sockaddr_in6)).sin6_scope_id };
                    SocketAddr::V6(std::net::SocketAddrV6::new(v6, port, 0, scope))
                }
                IpAddr::V4(v4) => SocketAddr::new(IpAddr::V4(v4), port),
            };
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        cur = ai.ai_next;
    }
    // SAFETY: res came from a successful getaddrinfo.
    unsafe { libc::freeaddrinfo(res) };
    Ok(out)
}

/// The IP address of a sockaddr, if it is AF_INET or AF_INET6.
///
/// # Safety
/// `sa` is NULL or points at a sockaddr of the size its family implies.
pub(crate) unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match (*sa).sa_family as i32 {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// The source address the kernel would pick for `dest` (RFC 6724 needs it;
/// glibc finds it the same way): connect a UDP socket, which sends nothing,
/// and read its local address. `None` when there is no route.
pub(crate) fn source_address(dest: SocketAddr) -> Option<IpAddr> {
    // No bind: connect binds the socket to the route's source address.
    let sock = socket2::Socket::new(socket2::Domain::for_address(dest), socket2::Type::DGRAM.cloexec(), None).ok()?;
    // Port 0 cannot be connected to; the port does not change the route.
    let mut probe = dest;
    if probe.port() == 0 {
        probe.set_port(9);
    }
    sock.connect(&probe.into()).ok()?;
    sock.local_addr().ok()?.as_socket().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_numeric_hosts_per_family() {
        let host = CString::new("127.0.0.1").unwrap();
        assert_eq!(resolve(&host, 80, Family::V4).unwrap(), vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
        assert!(resolve(&host, 80, Family::V6).is_err() || resolve(&host, 80, Family::V6).unwrap().is_empty());
    }

    #[test]
    fn localhost_and_invalid_are_answered_without_dns() {
        let lo = CString::new("LocalHost.").unwrap();
        assert_eq!(resolve(&lo, 80, Family::V6).unwrap(), vec!["[::1]:80".parse::<SocketAddr>().unwrap()]);
        assert_eq!(resolve(&lo, 80, Family::V4).unwrap(), vec!["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
        let sub = CString::new("a.b.localhost").unwrap();
        assert_eq!(resolve(&sub, 1, Family::V4).unwrap().len(), 1);
        let inv = CString::new("x.invalid").unwrap();
        assert_eq!(resolve(&inv, 80, Family::V6), Err(libc::EAI_NONAME));
    }

    #[test]
    fn unknown_host_is_an_eai_error() {
        let host = CString::new("no-such-host.invalid").unwrap();
        assert!(resolve(&host, 80, Family::V4).is_err());
    }

    #[test]
    fn shutdown_lets_go_of_the_loops_waker() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let r = Resolver::new(Arc::clone(&waker));
        r.prepare(); // idle workers hold the resolver
        let key = QueryKey { endpoint: 0, family: Family::V4 };
        r.deliver(Answer { race: 1, key, result: Err(libc::EAI_NONAME) });
        assert_eq!(r.take_answers().len(), 1);
        r.shutdown();
        // Only the loop's own reference is left: the eventfd closes with the
        // loop, whatever the workers are still doing.
        assert_eq!(Arc::strong_count(&waker), 1);
        r.deliver(Answer { race: 1, key, result: Err(libc::EAI_NONAME) });
        assert!(r.take_answers().is_empty());
    }

    #[test]
    fn a_batch_is_answered_whole_by_at_most_max_workers() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let r = Resolver::new(waker);
        let n = 3 * MAX_WORKERS + 1;
        let jobs: Vec<Job> = (0..n)
            .map(|i| Job {
                race: i as u64,
                key: QueryKey { endpoint: 0, family: if i % 2 == 0 { Family::V6 } else { Family::V4 } },
                host: CString::new("localhost").unwrap(),
                port: 80,
            })
            .collect();
        r.submit(jobs);
        assert!(r.queue.lock().workers <= MAX_WORKERS);
        let mut got = Vec::new();
        let mut events = mio::Events::with_capacity(4);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while got.len() < n && std::time::Instant::now() < deadline {
            poll.poll(&mut events, Some(Duration::from_millis(100))).unwrap();
            got.extend(r.take_answers());
        }
        let mut races: Vec<u64> = got.iter().map(|a| a.race).collect();
        races.sort_unstable();
        assert_eq!(races, (0..n as u64).collect::<Vec<_>>(), "every job answered once");
        for a in &got {
            let want: IpAddr = if a.race % 2 == 0 { Ipv6Addr::LOCALHOST.into() } else { Ipv4Addr::LOCALHOST.into() };
            assert_eq!(a.result.as_ref().unwrap()[0].addr.ip(), want);
        }
        let q = r.queue.lock();
        assert_eq!((q.busy, q.jobs.len()), (0, 0));
        assert!(q.workers <= MAX_WORKERS);
        drop(q);
        r.shutdown();
    }

    #[test]
    fn loopback_source_is_loopback() {
        assert_eq!(source_address("127.0.0.1:80".parse().unwrap()), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
