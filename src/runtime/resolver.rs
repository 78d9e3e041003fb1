//! The system resolver: one getaddrinfo call per family (RFC 8305 §3: AAAA
//! and A asked separately and at once) on worker threads, answers handed to
//! the loop through its Waker. The calls into the OS are in
//! [`super::sys::getaddrinfo`].
//!
//! Each loop has its own pool (no process-wide state). Workers are started
//! on demand up to [`MAX_WORKERS`] and leave after [`IDLE_EXIT`] without
//! work; the pool keeps every worker's join handle until it joins it (a
//! worker that left on its own is joined by the next one to leave, when
//! the pool next starts one, or at shutdown).
//!
//! # Threads at shutdown
//!
//! [`Resolver::shutdown`] (the loop's shutdown: `event_loop_free`, the
//! last handle of a shared loop, or the loop's drop) joins the workers, so
//! that a freed loop leaves none of its threads running, with one bounded
//! exception. getaddrinfo cannot be interrupted, so:
//!
//! - idle workers, and those still starting, are woken, leave at once and
//!   are joined;
//! - a worker in a lookup has up to [`SHUTDOWN_GRACE`] (100 ms) to finish
//!   it (hosts file, local cache, a DNS server that answers: µs to ms), then
//!   drops the answer, leaves and is joined;
//! - a worker still in getaddrinfo after that (a slow or silent DNS server)
//!   is handed off: its join handle is dropped and shutdown returns. It
//!   holds nothing of the loop but this pool (shutdown lets go of the loop's
//!   waker, so the eventfd closes with the loop); when getaddrinfo returns,
//!   it drops the answer and exits. Until then it is still counted in the
//!   pool's `workers`.
//!
//! Worst case: freeing a loop while a lookup is stuck on a DNS server takes
//! [`SHUTDOWN_GRACE`] longer, and that one thread outlives the loop by
//! glibc's resolver timeout (resolv.conf `timeout` × `attempts` per name
//! server: 5 s × 2 each by default); a process that exits in that window
//! shows, under valgrind, glibc's per-thread resolver context (~96 bytes)
//! as lost. Joining every worker unconditionally would make freeing a loop
//! wait for the slowest DNS server, and a process-wide reaper thread would
//! be a library thread outliving every loop: a bounded wait and a handed-off
//! thread that exits by itself is the lesser cost.
//!
//! The worker also finds the source address the kernel would use for each
//! answer (a connected UDP socket's local address, as glibc does for RFC
//! 6724; remembered a second per prefix, [`super::sources`]), so that the
//! loop thread makes no blocking call.
//!
//! # The DNS client
//!
//! When the loop's DNS client ([`super::dns`]) may answer for addresses
//! (nsswitch.conf's `hosts:` is `files dns`), a race's AAAA and A queries
//! for one name become one [`NameJob`], which the loop itself runs
//! (src/runtime/dns_loop.rs): [`Resolver::submit`] and
//! [`Resolver::submit_name`] queue it for the loop
//! ([`Resolver::take_loop_names`]), no worker is involved. Otherwise each
//! family is one getaddrinfo [`Job`] as above. A [`NameJob`] may also ask
//! the name's HTTPS records (always over DNS). The one DNS step a worker
//! takes is the TCP retry of a truncated reply ([`TcpJob`], rare): a
//! blocking exchange whose reply goes back to the loop through the
//! outbox; a worker in it sees the pool's shutdown flag within 20 ms, so
//! shutdown never hands it off: it leaves and is joined.

use super::cache::AnswerCache;
use super::dns::{DnsClient, DnsError, Found, Kind, Outcome, Records};
use crate::vocabulary::svcb::ServiceRecord;
use std::sync::atomic::Ordering;
use super::sync::{Condvar, Mutex, MutexGuard};
use crate::engine::{Candidate, Family, QueryKey};
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use super::sys::getaddrinfo::{resolve, sockaddr_ip, source_address};

/// Most worker threads one loop runs at once: as many lookups can wait on
/// slow DNS servers at the same time before new queries queue. More
/// threads than that make hosts-file lookups, which take µs of CPU, fight
/// over the queue's lock on a small machine.
pub(crate) const MAX_WORKERS: usize = 16;
/// How long an idle worker waits for work before it exits.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(5);
/// How long [`Resolver::shutdown`] waits for workers in a lookup before it
/// hands them off (see the module docs).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// The lookup a worker runs: [`resolve`], or a test's.
type Lookup = fn(&CStr, u16, Family) -> Result<Vec<SocketAddr>, i32>;

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

/// One name's queries for the DNS client: the families a race still
/// needs (AAAA before A) and, if `https`, its HTTPS records; asked at
/// once, HTTPS first (HEv3 -04 §4.1).
#[derive(Clone, Debug)]
pub(crate) struct NameJob {
    /// The race that asked.
    pub race: u64,
    /// The race's endpoint with this name.
    pub endpoint: usize,
    /// Host name to resolve.
    pub host: CString,
    /// Port to put on every address.
    pub port: u16,
    /// Address families to ask.
    pub families: Vec<Family>,
    /// Ask the HTTPS records too.
    pub https: bool,
}

/// A truncated reply's TCP retry (RFC 7766 §5) for the loop's DNS
/// exchange `exchange`: see `Step::Tcp` in [`super::dns::exchange`].
#[derive(Debug)]
pub(crate) struct TcpJob {
    pub exchange: u64,
    pub query: usize,
    pub serial: u32,
    pub server: SocketAddr,
    pub bytes: Vec<u8>,
    pub timeout: Duration,
}

/// A [`TcpJob`]'s reply (`None`: none came in time).
#[derive(Debug)]
pub(crate) struct TcpReply {
    pub exchange: u64,
    pub query: usize,
    pub serial: u32,
    pub reply: Option<Vec<u8>>,
}

/// A worker's job.
#[derive(Debug)]
enum Work {
    Lookup(Job),
    Tcp(TcpJob),
}

/// A DNS answer of a [`NameJob`], for the loop.
#[derive(Debug)]
pub(crate) enum NameAnswer {
    /// AAAA or A.
    Addresses(Answer),
    /// HTTPS.
    Services(ServiceAnswer),
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
    /// How long the answer may be kept (the DNS client's TTL); `None`
    /// from getaddrinfo, a user resolver, the hosts file.
    pub ttl: Option<Duration>,
}

/// The answer to a name's HTTPS query, for `LoopCore::on_service_answer`:
/// the usable records (RFC 9460; AliasMode ones alone when the set has
/// one) and how long they may be kept, or why there are none.
#[derive(Debug)]
pub(crate) struct ServiceAnswer {
    /// The race that asked.
    pub race: u64,
    /// The race's endpoint with this name.
    pub endpoint: usize,
    /// Records and TTL (`None`: no TTL known), or the DNS error.
    pub result: Result<(Vec<ServiceRecord>, Option<Duration>), DnsError>,
}

#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<Work>,
    idle: usize,
    /// Workers running a query.
    busy: usize,
    /// Workers started whose loop has not returned.
    workers: usize,
    shutdown: bool,
    /// The join handles of the workers not joined yet, with their ids.
    threads: Vec<(u64, JoinHandle<()>)>,
    /// Ids of the workers that left (their loop returned), to join.
    left: Vec<u64>,
    /// The next worker's id.
    next_id: u64,
}

impl Queue {
    /// The handles of the workers that left, to join (outside the lock:
    /// they have nothing left to do but exit).
    fn take_left(&mut self) -> Vec<JoinHandle<()>> {
        if self.left.is_empty() {
            return Vec::new();
        }
        let left = std::mem::take(&mut self.left);
        let (gone, running): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.threads).into_iter().partition(|(id, _)| left.contains(id));
        self.threads = running;
        gone.into_iter().map(|(_, handle)| handle).collect()
    }
}

/// Jobs in, answers out, a waker to call when an answer is ready.
pub(crate) struct Resolver {
    /// Answers kept for later races (see [`AnswerCache`]).
    pub(crate) cache: AnswerCache,
    /// Queries handed to the workers so far.
    pub(crate) submitted: std::sync::atomic::AtomicU64,
    queue: Mutex<Queue>,
    /// Signalled when there is a job for an idle worker, or at shutdown.
    work: Condvar,
    /// Signalled when a worker leaves during shutdown.
    exited: Condvar,
    answers: Mutex<Outbox>,
    lookup: Lookup,
    /// [`IDLE_EXIT`], or a test's.
    idle_exit: Duration,
    /// The DNS client, its configuration read on first use. (A lock, not
    /// a OnceLock: helgrind sees the pthread mutex of the
    /// `taps_pthread_locks` build, not std's futex.)
    dns: Mutex<Option<Arc<DnsClient>>>,
    /// Name jobs for the loop to run (see the module docs).
    loop_names: Mutex<Vec<NameJob>>,
    /// Source addresses, a second per prefix.
    pub(crate) sources: super::sources::SourceMemo,
}

/// Answers for the loop, and the loop's waker: taken at shutdown, so that
/// the loop's eventfd closes with the loop, not when a handed-off worker
/// leaves getaddrinfo (up to the DNS timeout later).
struct Outbox {
    answers: Vec<Answer>,
    tcp: Vec<TcpReply>,
    waker: Option<Arc<mio::Waker>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

/// Join worker threads that left.
fn join(handles: Vec<JoinHandle<()>>) {
    for handle in handles {
        if handle.join().is_err() {
            log::error!("a resolver thread panicked");
        }
    }
}

impl Resolver {
    pub(crate) fn new(waker: Arc<mio::Waker>) -> Arc<Resolver> {
        Resolver::with_lookup(waker, resolve, IDLE_EXIT)
    }

    fn with_lookup(waker: Arc<mio::Waker>, lookup: Lookup, idle_exit: Duration) -> Arc<Resolver> {
        Arc::new(Resolver {
            cache: AnswerCache::default(),
            submitted: std::sync::atomic::AtomicU64::new(0),
            queue: Mutex::default(),
            work: Condvar::new(),
            exited: Condvar::new(),
            answers: Mutex::new(Outbox { answers: Vec::new(), tcp: Vec::new(), waker: Some(waker) }),
            lookup,
            idle_exit,
            dns: Mutex::new(None),
            loop_names: Mutex::default(),
            sources: Default::default(),
        })
    }

    /// Make `dns` this resolver's DNS client (tests).
    #[cfg(test)]
    pub(crate) fn set_dns(&self, dns: DnsClient) {
        *self.dns.lock() = Some(Arc::new(dns));
    }

    /// The loop's DNS client, its configuration read on first use.
    pub(crate) fn dns(&self) -> Arc<DnsClient> {
        let mut dns = self.dns.lock();
        Arc::clone(dns.get_or_insert_with(|| Arc::new(DnsClient::load())))
    }

    /// Whether shutdown has begun (checked by DNS exchanges between waits).
    fn stopping(&self) -> bool {
        self.queue.lock().shutdown
    }

    /// The work for `jobs`: as they are for getaddrinfo, or one
    /// [`NameJob`] per name (consecutive jobs of one race and endpoint)
    /// for the loop when the DNS client answers for addresses.
    fn plan(&self, jobs: Vec<Job>) -> (Vec<Work>, Vec<NameJob>) {
        if !self.dns().answers_addresses() {
            return (jobs.into_iter().map(Work::Lookup).collect(), Vec::new());
        }
        let mut names: Vec<NameJob> = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Some(n) = names.last_mut() {
                if n.race == job.race && n.endpoint == job.key.endpoint && n.host == job.host {
                    n.families.push(job.key.family);
                    continue;
                }
            }
            names.push(NameJob {
                race: job.race,
                endpoint: job.key.endpoint,
                host: job.host,
                port: job.port,
                families: vec![job.key.family],
                https: false,
            });
        }
        (Vec::new(), names)
    }

    /// Queue a race's queries (RFC 8305 §3: AAAA and A at once): for the
    /// workers (getaddrinfo) or for the loop (the DNS client). Every job
    /// is queued before any worker is woken: a woken worker that takes the
    /// caller's CPU then finds the whole batch, not the AAAA query alone.
    /// (Woken under the lock, which helgrind requires of a condition
    /// variable.)
    pub(crate) fn submit(self: &Arc<Self>, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        let queries = jobs.len();
        let (work, names) = self.plan(jobs);
        if names.is_empty() {
            self.queue_work(work, queries);
        } else {
            self.submitted.fetch_add(queries as u64, Ordering::Relaxed);
            self.loop_names.lock().extend(names);
        }
    }

    /// Queue one name's queries for the DNS client (its HTTPS records,
    /// and the families in `job`), whatever nsswitch.conf says of
    /// addresses: the loop runs them ([`Resolver::take_loop_names`]).
    pub(crate) fn submit_name(self: &Arc<Self>, job: NameJob) {
        let queries = job.families.len() + usize::from(job.https);
        self.dns();
        self.submitted.fetch_add(queries as u64, Ordering::Relaxed);
        self.loop_names.lock().push(job);
    }

    /// The name jobs queued for the loop since the last call.
    pub(crate) fn take_loop_names(&self) -> Vec<NameJob> {
        let mut names = self.loop_names.lock();
        if names.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut *names)
    }

    /// Run a TCP retry on a worker; its reply comes back with
    /// [`Resolver::take_tcp_replies`].
    pub(crate) fn submit_tcp(self: &Arc<Self>, job: TcpJob) {
        self.queue_work(vec![Work::Tcp(job)], 0);
    }

    /// Queue getaddrinfo jobs whatever nsswitch.conf says (tests of the
    /// workers).
    #[cfg(test)]
    pub(crate) fn submit_lookups(self: &Arc<Self>, jobs: Vec<Job>) {
        let n = jobs.len();
        self.queue_work(jobs.into_iter().map(Work::Lookup).collect(), n);
    }

    /// Queue work and wake or start workers for it; `queries`: how many
    /// queries it holds (for [`Resolver::submitted`]).
    fn queue_work(self: &Arc<Self>, work: Vec<Work>, queries: usize) {
        let mut q = self.queue.lock();
        if q.shutdown {
            return;
        }
        let n = work.len();
        q.jobs.extend(work);
        self.submitted.fetch_add(queries as u64, Ordering::Relaxed);
        for _ in 0..q.idle.min(n) {
            self.work.notify_one();
        }
        // Idle workers, and those still starting, take queued jobs; start
        // more for the rest, up to MAX_WORKERS.
        let free = q.workers - q.busy;
        let spawn = q.jobs.len().saturating_sub(free).min(MAX_WORKERS - q.workers);
        if spawn == 0 {
            return;
        }
        for _ in 0..spawn {
            if !self.spawn_worker(&mut q) {
                break;
            }
        }
        // Nobody will run the queued jobs: answer them with an error.
        let orphans: Vec<Work> = if q.workers == 0 { q.jobs.drain(..).collect() } else { Vec::new() };
        let left = q.take_left();
        drop(q);
        for work in orphans {
            self.fail(work);
        }
        join(left);
    }

    /// Start a worker and count it; false when the thread cannot be made.
    /// Under the queue's lock, so that shutdown finds every handle.
    fn spawn_worker(self: &Arc<Self>, q: &mut MutexGuard<'_, Queue>) -> bool {
        let me = Arc::clone(self);
        let id = q.next_id;
        let spawned = std::thread::Builder::new().name("taps-resolver".into()).spawn(move || me.worker(id));
        match spawned {
            Ok(handle) => {
                q.next_id += 1;
                q.workers += 1;
                q.threads.push((id, handle));
                true
            }
            Err(e) => {
                log::error!("cannot start a resolver thread: {e}");
                false
            }
        }
    }

    /// Have two idle workers (a race's AAAA and A queries) before a race
    /// needs them: starting a thread takes 50–100 µs. The DNS client's
    /// configuration is read here too (once per loop): on the caller's
    /// thread, not on a race's clock nor under the loop's lock.
    pub(crate) fn prepare(self: &Arc<Self>) {
        if self.dns().answers_addresses() {
            // The loop runs the DNS client's exchanges: no worker needed.
            return;
        }
        let mut q = self.queue.lock();
        if q.shutdown || q.workers - q.busy >= 2 || q.workers >= MAX_WORKERS {
            return;
        }
        while q.workers - q.busy < 2 && q.workers < MAX_WORKERS {
            if !self.spawn_worker(&mut q) {
                break;
            }
        }
        let left = q.take_left();
        drop(q);
        join(left);
    }

    /// Answer every query of `work` with an error (no worker to run it).
    fn fail(&self, work: Work) {
        match work {
            Work::Lookup(job) => self.deliver(Answer { race: job.race, key: job.key, result: Err(libc::EAI_SYSTEM), ttl: None }),
            Work::Tcp(job) => self.deliver_tcp(TcpReply { exchange: job.exchange, query: job.query, serial: job.serial, reply: None }),
        }
    }

    /// Take every answer that arrived.
    pub(crate) fn take_answers(&self) -> Vec<Answer> {
        std::mem::take(&mut self.answers.lock().answers)
    }

    /// Take every TCP reply that arrived.
    pub(crate) fn take_tcp_replies(&self) -> Vec<TcpReply> {
        let mut out = self.answers.lock();
        if out.tcp.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut out.tcp)
    }

    /// Stop the workers and join them (see the module docs): queued jobs
    /// are dropped, running ones have [`SHUTDOWN_GRACE`] to finish, their
    /// answers are dropped; the loop's waker is let go at once. Later calls
    /// return at once.
    pub(crate) fn shutdown(&self) {
        let mut q = self.queue.lock();
        if q.shutdown {
            return;
        }
        q.shutdown = true;
        q.jobs.clear();
        self.work.notify_all();
        drop(q);
        let mut out = self.answers.lock();
        out.waker = None;
        out.answers.clear();
        out.tcp.clear();
        drop(out);

        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let mut q = self.queue.lock();
        // Idle and starting workers leave at once; those in a lookup until
        // the deadline.
        while q.workers > 0 {
            let now = Instant::now();
            let wait = match deadline.checked_duration_since(now) {
                Some(d) if !d.is_zero() => d,
                _ if q.workers > q.busy => Duration::from_millis(10),
                _ => break,
            };
            q = self.exited.wait_timeout(q, wait).0;
        }
        let handed_off = q.workers;
        let left = q.take_left();
        // The rest are in getaddrinfo: dropping their handles detaches them.
        let stuck = std::mem::take(&mut q.threads);
        drop(q);
        if handed_off > 0 {
            log::debug!(
                "{handed_off} resolver thread(s) still in getaddrinfo after {SHUTDOWN_GRACE:?}: \
                 each exits when its lookup returns"
            );
        }
        drop(stuck);
        join(left);
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

    /// Hand a TCP reply to the loop.
    fn deliver_tcp(&self, reply: TcpReply) {
        let mut out = self.answers.lock();
        let Some(waker) = &out.waker else { return };
        if let Err(e) = waker.wake() {
            log::error!("cannot wake the loop: {e}");
        }
        out.tcp.push(reply);
    }

    /// Run a getaddrinfo job: its answer is kept and handed on.
    fn run_lookup(&self, job: Job) {
        let result = (self.lookup)(&job.host, job.port, job.key.family)
            .map(|addrs| addrs.into_iter().map(|addr| Candidate { addr, source: self.sources.source(addr) }).collect());
        if let Ok(host) = job.host.to_str() {
            self.cache.put(host, job.key.family, &result, None);
        }
        if !self.stopping() {
            self.deliver(Answer { race: job.race, key: job.key, result, ttl: None });
        }
    }

    /// Run a TCP retry: its reply goes back to the loop.
    fn run_tcp(&self, job: TcpJob) {
        let stop = || self.stopping();
        let deadline = Instant::now() + job.timeout;
        let reply = super::sys::dns_io::tcp_exchange(job.server, &job.bytes, deadline, &stop).ok();
        if !self.stopping() {
            self.deliver_tcp(TcpReply { exchange: job.exchange, query: job.query, serial: job.serial, reply });
        }
    }

    /// One DNS answer of `job` for the loop: addresses become candidates
    /// (with their source addresses) and are kept in the cache for their
    /// TTL; HTTPS records are the service answer.
    pub(crate) fn name_answer(&self, job: &NameJob, host: &str, kind: Kind, outcome: Outcome) -> NameAnswer {
        let family = match kind {
            Kind::Https => {
                let result = outcome.and_then(|found| match found.records {
                    Records::Services(s) => Ok((s, found.ttl)),
                    Records::Addresses(_) => Err(DnsError::Malformed("addresses for an HTTPS query")),
                });
                return NameAnswer::Services(ServiceAnswer { race: job.race, endpoint: job.endpoint, result });
            }
            Kind::Aaaa => Family::V6,
            Kind::A => Family::V4,
        };
        let (result, ttl) = match outcome {
            Ok(Found { records: Records::Addresses(ips), ttl }) => {
                let cands = ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, job.port))
                    .map(|addr| Candidate { addr, source: self.sources.source(addr) })
                    .collect();
                (Ok(cands), ttl)
            }
            Ok(Found { records: Records::Services(_), .. }) => (Err(libc::EAI_FAIL), None),
            Err(e) => (Err(e.eai()), e.ttl()),
        };
        self.cache.put(host, family, &result, ttl);
        let key = QueryKey { endpoint: job.endpoint, family };
        NameAnswer::Addresses(Answer { race: job.race, key, result, ttl })
    }

    /// A worker's body: run jobs until shutdown, or until [`IDLE_EXIT`]
    /// passes without one.
    fn worker(self: Arc<Self>, id: u64) {
        let mut q = self.queue.lock();
        loop {
            if q.shutdown {
                break;
            }
            if let Some(work) = q.jobs.pop_front() {
                q.busy += 1;
                drop(q);
                match work {
                    Work::Lookup(job) => self.run_lookup(job),
                    Work::Tcp(job) => self.run_tcp(job),
                }
                q = self.queue.lock();
                q.busy -= 1;
                continue;
            }
            q.idle += 1;
            let (guard, timeout) = self.work.wait_timeout(q, self.idle_exit);
            q = guard;
            q.idle -= 1;
            if timeout.timed_out() && q.jobs.is_empty() {
                break;
            }
        }
        q.workers -= 1;
        // Leaving on its own: join the workers that left before (shutdown
        // joins them itself), so that at most one left worker waits to be
        // joined, with its stack.
        let before = if q.shutdown { Vec::new() } else { q.take_left() };
        q.left.push(id);
        if q.shutdown {
            self.exited.notify_all();
        }
        drop(q);
        join(before);
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
        let Some(r) = self.resolver.upgrade() else { return };
        let want_v6 = self.key.family == Family::V6;
        let result = result.map(|ips| {
            let mut out: Vec<Candidate> = Vec::new();
            for ip in ips.into_iter().filter(|ip| ip.is_ipv6() == want_v6) {
                let addr = SocketAddr::new(ip, self.port);
                if !out.iter().any(|c| c.addr == addr) {
                    out.push(Candidate { addr, source: r.sources.source(addr) });
                }
            }
            out
        });
        r.deliver(Answer { race: self.race, key: self.key, result, ttl: None });
    }

    /// Mark as ended by the library: later answers are ignored.
    pub(crate) fn end(&self) {
        self.done.store(true, std::sync::atomic::Ordering::Release);
    }
}

#[cfg(test)]
impl Resolver {
    /// (workers alive, their join handles kept), for tests of the thread
    /// accounting.
    pub(crate) fn thread_counts(&self) -> (usize, usize) {
        let q = self.queue.lock();
        (q.workers, q.threads.len())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn waker(poll: &mio::Poll) -> Arc<mio::Waker> {
        Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap())
    }

    /// `r`, with addresses from its lookup function (getaddrinfo or a
    /// test's) whatever nsswitch.conf says.
    fn gai_only(r: Arc<Resolver>) -> Arc<Resolver> {
        let dns = DnsClient::new(Default::default(), Default::default(), false);
        *r.dns.lock() = Some(Arc::new(dns));
        r
    }

    pub(crate) fn job(race: u64, family: Family) -> Job {
        Job { race, key: QueryKey { endpoint: 0, family }, host: CString::new("localhost").unwrap(), port: 80 }
    }

    /// Wait (at most 10 s) until `done` holds for the queue.
    fn wait_for(r: &Resolver, done: impl Fn(&Queue) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&r.queue.lock()) {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn shutdown_lets_go_of_the_loops_waker() {
        let poll = mio::Poll::new().unwrap();
        let waker = waker(&poll);
        let r = Resolver::new(Arc::clone(&waker));
        r.prepare(); // idle workers hold the resolver
        let key = QueryKey { endpoint: 0, family: Family::V4 };
        r.deliver(Answer { race: 1, key, result: Err(libc::EAI_NONAME), ttl: None });
        assert_eq!(r.take_answers().len(), 1);
        r.shutdown();
        // Only the loop's own reference is left: the eventfd closes with the
        // loop, whatever the workers are still doing.
        assert_eq!(Arc::strong_count(&waker), 1);
        r.deliver(Answer { race: 1, key, result: Err(libc::EAI_NONAME), ttl: None });
        assert!(r.take_answers().is_empty());
    }

    #[test]
    fn a_batch_is_answered_whole_by_at_most_max_workers() {
        let mut poll = mio::Poll::new().unwrap();
        let r = gai_only(Resolver::new(waker(&poll)));
        let n = 3 * MAX_WORKERS + 1;
        let jobs: Vec<Job> =
            (0..n).map(|i| job(i as u64, if i % 2 == 0 { Family::V6 } else { Family::V4 })).collect();
        r.submit(jobs);
        assert!(r.queue.lock().workers <= MAX_WORKERS);
        let mut got = Vec::new();
        let mut events = mio::Events::with_capacity(4);
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < n && Instant::now() < deadline {
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
        // A worker hands its answer on before it is counted idle.
        wait_for(&r, |q| q.busy == 0);
        let q = r.queue.lock();
        assert_eq!((q.busy, q.jobs.len()), (0, 0));
        assert!(q.workers <= MAX_WORKERS);
        drop(q);
        r.shutdown();
    }

    /// A lookup that ends within the grace period is waited for and its
    /// worker joined; one that does not is handed off, still counted, and
    /// leaves by itself when its lookup returns.
    #[test]
    fn shutdown_waits_for_a_short_lookup_and_hands_off_a_stuck_one() {
        static GATE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
        static OPENED: std::sync::Condvar = std::sync::Condvar::new();
        fn short(host: &CStr, port: u16, family: Family) -> Result<Vec<SocketAddr>, i32> {
            std::thread::sleep(SHUTDOWN_GRACE / 5);
            resolve(host, port, family)
        }
        fn stuck(host: &CStr, port: u16, family: Family) -> Result<Vec<SocketAddr>, i32> {
            let mut open = GATE.lock().unwrap();
            while !*open {
                open = OPENED.wait(open).unwrap();
            }
            resolve(host, port, family)
        }
        let poll = mio::Poll::new().unwrap();
        let r = gai_only(Resolver::with_lookup(waker(&poll), short, IDLE_EXIT));
        r.submit(vec![job(1, Family::V4)]);
        wait_for(&r, |q| q.busy == 1);
        r.shutdown();
        let q = r.queue.lock();
        assert_eq!((q.workers, q.threads.len()), (0, 0), "the short lookup's worker was joined");
        drop(q);
        assert_eq!(Arc::strong_count(&r), 1);
        assert!(r.take_answers().is_empty(), "its answer was dropped");

        let poll = mio::Poll::new().unwrap(); // one Waker per Poll
        let r = gai_only(Resolver::with_lookup(waker(&poll), stuck, IDLE_EXIT));
        r.submit(vec![job(1, Family::V6), job(1, Family::V4)]);
        r.prepare();
        wait_for(&r, |q| q.busy == 2);
        let started = Instant::now();
        r.shutdown();
        let took = started.elapsed();
        assert!(took >= SHUTDOWN_GRACE && took < SHUTDOWN_GRACE + Duration::from_secs(5), "{took:?}");
        let q = r.queue.lock();
        assert_eq!((q.workers, q.busy, q.threads.len()), (2, 2, 0), "two handed off, the idle ones joined");
        drop(q);
        *GATE.lock().unwrap() = true;
        OPENED.notify_all();
        wait_for(&r, |q| q.workers == 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&r) > 1 {
            assert!(Instant::now() < deadline, "the handed-off workers let go of the resolver");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(r.take_answers().is_empty());
        r.shutdown(); // again: returns at once
    }

    /// Workers that leave after their idle time are joined by the next to
    /// leave, by the next start, or at shutdown: one at most waits.
    #[test]
    fn idle_workers_that_left_are_joined() {
        let poll = mio::Poll::new().unwrap();
        let r = gai_only(Resolver::with_lookup(waker(&poll), resolve, Duration::from_millis(100)));
        r.prepare();
        assert_eq!(r.queue.lock().threads.len(), 2);
        wait_for(&r, |q| q.workers == 0);
        assert_eq!(r.queue.lock().threads.len(), 1, "the first to leave was joined by the second");
        r.prepare();
        let q = r.queue.lock();
        assert_eq!((q.workers, q.threads.len(), q.left.len()), (2, 2, 0), "the second was joined at the start");
        drop(q);
        r.shutdown();
        assert!(r.queue.lock().threads.is_empty());
        assert_eq!(Arc::strong_count(&r), 1);
    }

    #[test]
    fn workers_that_left_are_handed_back_to_join() {
        let mut q = Queue::default();
        for id in 0..3 {
            q.threads.push((id, std::thread::spawn(|| {})));
        }
        assert!(q.take_left().is_empty());
        q.left = vec![0, 2];
        let gone = q.take_left();
        assert_eq!(gone.len(), 2);
        join(gone);
        assert_eq!(q.threads.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![1]);
        assert!(q.left.is_empty());
        join(q.take_left());
        q.left.push(1);
        join(q.take_left());
        assert!(q.threads.is_empty());
    }
}
