//! PREF64 discovery for a loop (RFC 8781, RFC 7050, HEv3 -04 §8): the
//! NAT64 prefix the loop synthesizes under when the caller set none.
//!
//! # Where the prefix comes from, in this order
//!
//! 1. The caller's ([`super::LoopCore::set_pref64`]): an explicit setting
//!    wins over anything learnt from the network. It is the caller's
//!    statement about its network, and it lets a caller pin the prefix
//!    against a spoofed DNS answer (RFC 7050 is not authenticated).
//! 2. A Router Advertisement's PREF64 option (RFC 8781), for its lifetime.
//!    Linux hands the option to user space as `RTM_NEWNDUSEROPT` and keeps
//!    no copy, so the discovery thread listens on an rtnetlink
//!    [`Monitor`] and sends a Router Solicitation on every interface that
//!    is up (needs `CAP_NET_RAW`; without it only the routers' periodic
//!    RAs teach the prefix).
//! 3. RFC 7050: an AAAA query for `ipv4only.arpa` through the loop's DNS
//!    client, read by [`discover_rfc7050`]; kept for the answer's TTL.
//!    Asked at the same time as the Router Solicitation, so that a network
//!    without RAs learns its prefix in one DNS round trip; when both
//!    answer, the RA's prefix is used (RFC 8781 over RFC 7050: the router
//!    speaks for the link it is on, the DNS64 answer may come from a
//!    resolver elsewhere, and RFC 7050 is not authenticated). A prefix
//!    learnt this way is used for synthesis (and for recognizing DNS64
//!    answers when sorting), never as a route.
//!
//! # When
//!
//! Discovery starts the first time a race needs a prefix (an IPv4
//! destination the host has no IPv4 route to) and none is known: a loop on
//! a dual-stack network never starts it. That race waits for the first
//! round to give a prefix, at most [`FIRST_ROUND_WAIT`] (in the bed, under
//! a ms: the router answers the solicitation at once). Its own thread
//! sends the solicitation and reads the RA from the monitor, while the
//! discovery thread starts and asks RFC 7050; the monitor then goes to
//! that thread. From then on the thread of the loop
//! (`taps-pref64`) keeps listening: a PREF64 option updates or (lifetime
//! 0) withdraws the RA prefix; a link, address or route change, or the
//! expiry of the prefix, starts a new round (at most one a second). The
//! thread is joined when the loop is dropped (it looks at its stop flag at
//! least every [`POLL_STEP`]).

use crate::engine::nat64::{discover_rfc7050, Pref64};
use super::dns::{DnsClient, Kind, Records};
use super::sys::netlink::{links, send_router_solicitation, Monitor, NetEvent};
use super::sync::{Condvar, Mutex};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the loop's NAT64 prefix came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pref64Source {
    /// Set by the caller (`set_pref64`).
    Caller,
    /// A Router Advertisement's PREF64 option (RFC 8781).
    RouterAdvertisement,
    /// The DNS64 answer for `ipv4only.arpa` (RFC 7050).
    Dns,
}

/// How long a round waits for an RA after its Router Solicitation (the
/// RFC 7050 query runs meanwhile).
pub(crate) const RA_WAIT: Duration = Duration::from_millis(300);
/// How long the first race that needs a prefix waits for the first round.
pub(crate) const FIRST_ROUND_WAIT: Duration = Duration::from_secs(2);
/// How often the thread looks at its stop flag.
pub(crate) const POLL_STEP: Duration = Duration::from_millis(100);
/// The least time between two rounds started by network changes.
const MIN_ROUND_GAP: Duration = Duration::from_secs(1);
/// How long an RFC 7050 prefix is kept when the answer has no TTL (a
/// hosts-file entry): RFC 7050 §4 asks to re-query; an hour.
const NO_TTL_LIFETIME: Duration = Duration::from_secs(3600);

/// A learnt prefix and until when it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Learnt {
    pub prefix: Pref64,
    pub until: Instant,
}

/// The prefix a race uses: the caller's, else an RA's that has not
/// expired, else an RFC 7050 one that has not expired.
pub(crate) fn choose(
    caller: Option<Pref64>,
    ra: Option<Learnt>,
    dns: Option<Learnt>,
    now: Instant,
) -> Option<(Pref64, Pref64Source)> {
    let live = |l: Option<Learnt>| l.filter(|l| l.until > now).map(|l| l.prefix);
    caller
        .map(|p| (p, Pref64Source::Caller))
        .or_else(|| live(ra).map(|p| (p, Pref64Source::RouterAdvertisement)))
        .or_else(|| live(dns).map(|p| (p, Pref64Source::Dns)))
}

#[derive(Default)]
struct Known {
    ra: Option<Learnt>,
    dns: Option<Learnt>,
    /// Rounds finished since the thread started.
    rounds: u64,
    started: bool,
    /// The monitor, handed from the first race's thread (which waited for
    /// the first RA on it) to the discovery thread.
    handoff: Option<Monitor>,
    /// A network change seen during that wait: a new round is due.
    changed: bool,
}

/// A loop's discovery: what it learnt and its thread.
#[derive(Default)]
pub(crate) struct Discovery {
    known: Mutex<Known>,
    round_done: Condvar,
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Discovery {
    /// The discovered prefix (RA, else RFC 7050) that holds now.
    pub(crate) fn current(&self) -> Option<(Pref64, Pref64Source)> {
        let k = self.known.lock();
        choose(None, k.ra, k.dns, Instant::now())
    }

    /// Start the thread unless it runs, then wait until its first round
    /// has a prefix (from an RA or RFC 7050, whichever comes first) or has
    /// ended, at most `wait`; the prefix known then.
    pub(crate) fn ensure(
        self: &Arc<Self>,
        dns: impl FnOnce() -> Arc<DnsClient> + Send + 'static,
        wait: Duration,
    ) -> Option<(Pref64, Pref64Source)> {
        let deadline = Instant::now() + wait;
        let mut k = self.known.lock();
        if !k.started {
            k.started = true;
            // The monitor and the first Router Solicitation on the caller's
            // thread, which then waits for the RA on the monitor itself
            // while the discovery thread starts and asks RFC 7050: neither
            // the thread's start nor a wake-up between threads delays the
            // RA's prefix.
            let monitor = Monitor::open().map_err(|e| log::warn!("PREF64: no rtnetlink monitor ({e}): RFC 7050 only")).ok();
            let solicited = monitor.is_some() && solicit();
            // The DNS client (resolv.conf, hosts) is made on the thread.
            let wake = if solicited { event_fd().map(Arc::new).ok() } else { None };
            let me = Arc::clone(self);
            let spawned = match (monitor, wake) {
                (Some(m), Some(wake)) => {
                    let w = Arc::clone(&wake);
                    let spawned = std::thread::Builder::new().name("taps-pref64".into()).spawn(move || me.run_after_first_query(&dns(), &w));
                    if let Ok(h) = spawned {
                        *self.thread.lock() = Some(h);
                        drop(k);
                        self.first_ra_wait(&m, &wake, deadline);
                        let mut k = self.known.lock();
                        k.handoff = Some(m);
                        self.round_done.notify_all();
                        drop(k);
                        return self.current();
                    }
                    spawned.map(drop)
                }
                (monitor, _) => std::thread::Builder::new()
                    .name("taps-pref64".into())
                    .spawn(move || me.run(&dns(), monitor, solicited, false))
                    .map(|h| *self.thread.lock() = Some(h)),
            };
            if let Err(e) = spawned {
                log::warn!("no PREF64 discovery: cannot start its thread: {e}");
            }
        }
        let now = Instant::now();
        while k.rounds == 0 && choose(None, k.ra, k.dns, now).is_none() && self.thread.lock().is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            k = self.round_done.wait_timeout(k, left).0;
        }
        drop(k);
        self.current()
    }

    /// The first race's wait on its own thread: the RA on `m` (at most
    /// [`RA_WAIT`] once the RFC 7050 query ended, which `wake` says) or a
    /// prefix from either, at most until `deadline`.
    fn first_ra_wait(&self, m: &Monitor, wake: &OwnedFd, deadline: Instant) {
        let ra_deadline = deadline.min(Instant::now() + RA_WAIT);
        let mut queried = false;
        while self.current().is_none() && !self.stopped() {
            let until = if queried { ra_deadline } else { deadline };
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut pfd = [
                libc::pollfd { fd: m.fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            ];
            let ms = left.as_micros().div_ceil(1000).clamp(1, 1000) as libc::c_int;
            // SAFETY: two pollfds, valid for the call.
            if unsafe { libc::poll(pfd.as_mut_ptr(), 2, ms) } <= 0 {
                continue;
            }
            if pfd[0].revents != 0 && self.take_events(m) {
                self.known.lock().changed = true;
            }
            queried |= pfd[1].revents != 0;
        }
    }

    /// The discovery thread after a first race waited for the RA itself:
    /// the first RFC 7050 query (`wake` told when it ends), then the
    /// monitor from that race and [`Discovery::run`].
    fn run_after_first_query(&self, dns: &DnsClient, wake: &OwnedFd) {
        // A failed query keeps a prefix that has not expired; not asked
        // when the RA came while the thread started.
        if self.current_ra().is_none() {
            if let Some(learnt) = rfc7050(dns, &|| self.stopped() || self.current_ra().is_some()) {
                self.known.lock().dns = Some(learnt);
                self.round_done.notify_all();
            }
        }
        let one = 1u64;
        // SAFETY: 8 bytes from a live u64 to an eventfd the Arc keeps open.
        unsafe { libc::write(wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        let mut k = self.known.lock();
        let monitor = loop {
            if let Some(m) = k.handoff.take() {
                break m;
            }
            if self.stopped() {
                return;
            }
            k = self.round_done.wait_timeout(k, POLL_STEP).0;
        };
        k.rounds += 1;
        let changed = std::mem::take(&mut k.changed);
        self.round_done.notify_all();
        drop(k);
        self.run(dns, Some(monitor), false, !changed);
    }

    /// Stop the thread and wait for it.
    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn set_ra(&self, prefix: Pref64, lifetime_s: u32) {
        let mut k = self.known.lock();
        if lifetime_s == 0 {
            if k.ra.is_some_and(|l| l.prefix == prefix) {
                log::info!("NAT64 prefix {prefix} withdrawn by a Router Advertisement (RFC 8781)");
                k.ra = None;
            }
            return;
        }
        if k.ra.map(|l| l.prefix) != Some(prefix) {
            log::info!("NAT64 prefix {prefix} learnt from a Router Advertisement for {lifetime_s} s (RFC 8781)");
        }
        let until = Instant::now() + Duration::from_secs(u64::from(lifetime_s));
        k.ra = Some(Learnt { prefix, until });
        self.round_done.notify_all();
    }

    /// The thread: rounds, and listening between them. `solicited`: the
    /// first round's Router Solicitation was sent already; `first_done`:
    /// the first round is over (no round until the network changes or a
    /// prefix expires).
    fn run(&self, dns: &DnsClient, monitor: Option<Monitor>, mut solicited: bool, first_done: bool) {
        let mut last_round = first_done.then(Instant::now);
        let mut pending = !first_done;
        while !self.stopped() {
            let now = Instant::now();
            let expired = {
                let k = self.known.lock();
                [k.ra, k.dns].iter().flatten().any(|l| l.until <= now)
            };
            if (pending || expired) && last_round.is_none_or(|t| now.duration_since(t) >= MIN_ROUND_GAP) {
                pending = false;
                last_round = Some(now);
                self.round(monitor.as_ref(), dns, std::mem::take(&mut solicited));
                continue;
            }
            match &monitor {
                Some(m) => pending |= self.listen(m, POLL_STEP),
                None => std::thread::sleep(POLL_STEP),
            }
        }
    }

    /// One round: a Router Solicitation and, at the same time, the RFC
    /// 7050 query; the RA is waited for at most [`RA_WAIT`] (less once it
    /// came). The waiting race is told as soon as either gives a prefix
    /// (see [`Discovery::ensure`]), and again at the round's end. With
    /// both, the RA's is used (see [`choose`]).
    /// `solicited`: the solicitation was sent already (the first round).
    fn round(&self, monitor: Option<&Monitor>, dns: &DnsClient, solicited: bool) {
        {
            // What expired is forgotten: a round that learns nothing
            // leaves nothing to expire again (no round a second).
            let mut k = self.known.lock();
            let now = Instant::now();
            k.ra = k.ra.filter(|l| l.until > now);
            k.dns = k.dns.filter(|l| l.until > now);
        }
        // The solicitation first: the router's answer is on its way while
        // the query's thread starts.
        let solicited = monitor.is_some() && (solicited || solicit());
        std::thread::scope(|scope| {
            // RFC 7050 on a thread of the round's own: a network without
            // RAs learns the prefix in one DNS round trip, not RA_WAIT
            // plus one. An RA that arrives first ends the wait for it.
            let asked = std::thread::Builder::new().name("taps-pref64-dns".into()).spawn_scoped(scope, || {
                // A failed query keeps a prefix that has not expired.
                if let Some(learnt) = rfc7050(dns, &|| self.stopped() || self.current_ra().is_some()) {
                    self.known.lock().dns = Some(learnt);
                    self.round_done.notify_all();
                }
            });
            if let Err(e) = &asked {
                log::debug!("PREF64: no thread for RFC 7050 ({e}): asked after the RA wait");
            }
            if let (Some(m), true) = (monitor, solicited) {
                let deadline = Instant::now() + RA_WAIT;
                while !self.stopped() && self.current_ra().is_none() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.listen(m, left.min(POLL_STEP));
                }
            }
            if asked.is_err() && self.current_ra().is_none() && !self.stopped() {
                if let Some(learnt) = rfc7050(dns, &|| self.stopped()) {
                    self.known.lock().dns = Some(learnt);
                }
            }
        });
        let mut k = self.known.lock();
        k.rounds += 1;
        self.round_done.notify_all();
    }

    fn current_ra(&self) -> Option<Pref64> {
        let k = self.known.lock();
        k.ra.filter(|l| l.until > Instant::now()).map(|l| l.prefix)
    }

    /// Read the monitor for at most `wait`: PREF64 options are taken;
    /// whether the network changed (a new round is due).
    fn listen(&self, m: &Monitor, wait: Duration) -> bool {
        let mut pfd = libc::pollfd { fd: m.fd(), events: libc::POLLIN, revents: 0 };
        let ms = wait.as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: one pollfd, valid for the call.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            return false;
        }
        self.take_events(m)
    }

    /// Read what the monitor has: PREF64 options are taken; whether the
    /// network changed.
    fn take_events(&self, m: &Monitor) -> bool {
        let mut changed = false;
        match m.read() {
            Ok(events) => {
                for e in events {
                    match e {
                        NetEvent::Pref64 { option, .. } => self.set_ra(option.prefix, option.lifetime_s),
                        NetEvent::BadPref64 { error, .. } => log::debug!("PREF64 option ignored: {error}"),
                        NetEvent::Link => {
                            // A link change may take the router away: its
                            // prefix holds only until an RA says it again.
                            self.known.lock().ra = None;
                            changed = true;
                        }
                        NetEvent::Addr { .. } | NetEvent::Route { .. } | NetEvent::Overrun => changed = true,
                    }
                }
            }
            Err(e) => log::debug!("PREF64: rtnetlink read: {e}"),
        }
        changed
    }
}

/// A non-blocking eventfd.
fn event_fd() -> std::io::Result<OwnedFd> {
    // SAFETY: no pointers; the fd is checked before it is owned.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Send a Router Solicitation on every interface that is up and not the
/// loopback (one rtnetlink dump lists them); whether one was sent.
fn solicit() -> bool {
    let links = match links() {
        Ok(links) => links,
        Err(e) => {
            log::debug!("no Router Solicitation: cannot list the interfaces: {e}");
            return false;
        }
    };
    let mut sent = false;
    let up = |flags: u32| flags & libc::IFF_UP as u32 != 0 && flags & libc::IFF_LOOPBACK as u32 == 0;
    for (index, _) in links.into_iter().filter(|&(_, flags)| up(flags)) {
        match send_router_solicitation(index) {
            Ok(()) => sent = true,
            Err(e) => log::debug!("no Router Solicitation on interface {index}: {e}"),
        }
    }
    sent
}

/// RFC 7050 §3: the AAAA records of `ipv4only.arpa` through `dns`, the
/// first prefix they reveal (§3.1: a host uses one; the others are
/// logged), kept for the answer's TTL.
fn rfc7050(dns: &DnsClient, stop: &dyn Fn() -> bool) -> Option<Learnt> {
    let mut got = None;
    dns.lookup("ipv4only.arpa.", &[Kind::Aaaa], stop, &mut |_, outcome| got = Some(outcome));
    let found = match got? {
        Ok(found) => found,
        Err(e) => {
            log::debug!("RFC 7050: no AAAA for ipv4only.arpa: {e:?}");
            return None;
        }
    };
    let Records::Addresses(ips) = found.records else { return None };
    let v6: Vec<_> = ips.iter().filter_map(|ip| if let IpAddr::V6(a) = ip { Some(*a) } else { None }).collect();
    learnt_from_answer(&v6, found.ttl, Instant::now())
}

/// The prefix an RFC 7050 answer reveals, kept for its TTL.
pub(crate) fn learnt_from_answer(answers: &[std::net::Ipv6Addr], ttl: Option<Duration>, now: Instant) -> Option<Learnt> {
    let prefixes = discover_rfc7050(answers);
    let prefix = *prefixes.first()?;
    if prefixes.len() > 1 {
        log::info!("RFC 7050: several NAT64 prefixes {prefixes:?}; using {prefix}");
    }
    let ttl = ttl.unwrap_or(NO_TTL_LIFETIME);
    log::info!("NAT64 prefix {prefix} learnt from the DNS64 answer for ipv4only.arpa for {} s (RFC 7050)", ttl.as_secs());
    Some(Learnt { prefix, until: now + ttl })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pref64 {
        s.parse().unwrap()
    }

    #[test]
    fn the_caller_wins_then_an_ra_then_dns_each_until_it_expires() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let ra = Some(Learnt { prefix: p("2001:db8:1::/96"), until: later });
        let dns = Some(Learnt { prefix: p("2001:db8:2::/64"), until: later });
        assert_eq!(choose(Some(p("2001:db8:3::/48")), ra, dns, now), Some((p("2001:db8:3::/48"), Pref64Source::Caller)));
        assert_eq!(choose(None, ra, dns, now), Some((p("2001:db8:1::/96"), Pref64Source::RouterAdvertisement)));
        assert_eq!(choose(None, None, dns, now), Some((p("2001:db8:2::/64"), Pref64Source::Dns)));
        // Expired ones are not used.
        assert_eq!(choose(None, ra, dns, later), None);
        let fresh = Some(Learnt { prefix: p("2001:db8:2::/64"), until: later + Duration::from_secs(1) });
        assert_eq!(choose(None, ra, fresh, later), Some((p("2001:db8:2::/64"), Pref64Source::Dns)));
    }

    #[test]
    fn an_rfc7050_answer_is_kept_for_its_ttl() {
        let now = Instant::now();
        let answers = ["2001:db8:64::c000:aa".parse().unwrap(), "2001:db8:64::c000:ab".parse().unwrap()];
        let l = learnt_from_answer(&answers, Some(Duration::from_secs(60)), now).unwrap();
        assert_eq!(l, Learnt { prefix: p("2001:db8:64::/96"), until: now + Duration::from_secs(60) });
        // No TTL (a hosts file entry): an hour.
        let l = learnt_from_answer(&answers[..1], None, now).unwrap();
        assert_eq!(l.until, now + NO_TTL_LIFETIME);
        // A non-DNS64 resolver's real AAAA reveals nothing.
        assert_eq!(learnt_from_answer(&["2001:db8::1".parse().unwrap()], Some(Duration::from_secs(60)), now), None);
        assert_eq!(learnt_from_answer(&[], None, now), None);
    }

    #[test]
    fn an_ra_sets_and_lifetime_zero_withdraws() {
        let d = Discovery::default();
        d.set_ra(p("2001:db8:64::/96"), 1800);
        assert_eq!(d.current(), Some((p("2001:db8:64::/96"), Pref64Source::RouterAdvertisement)));
        d.set_ra(p("2001:db8:65::/96"), 0); // another prefix's withdrawal
        assert_eq!(d.current(), Some((p("2001:db8:64::/96"), Pref64Source::RouterAdvertisement)));
        d.set_ra(p("2001:db8:64::/96"), 0);
        assert_eq!(d.current(), None);
    }

    #[test]
    fn a_round_forgets_what_expired_and_keeps_what_holds() {
        use crate::runtime::dns::fake::{self, FakeServer};
        let server = FakeServer::start(|q, _| vec![fake::answer(q, vec![])]); // no data: no prefix
        let mut conf = crate::runtime::dns::conf::ResolvConf::with_servers(&[server.addr]);
        conf.timeout = Duration::from_secs(2);
        conf.attempts = 1;
        let client = DnsClient::new(conf, Default::default(), true);
        let d = Discovery::default();
        let now = Instant::now();
        let gone = Some(Learnt { prefix: p("2001:db8:1::/96"), until: now });
        let live = Some(Learnt { prefix: p("2001:db8:2::/96"), until: now + Duration::from_secs(60) });
        {
            let mut k = d.known.lock();
            (k.ra, k.dns) = (gone, live);
        }
        d.round(None, &client, false);
        let k = d.known.lock();
        assert_eq!((k.ra, k.dns, k.rounds), (None, live, 1), "the failed query keeps the live RFC 7050 prefix");
    }

    #[test]
    fn discovery_asks_rfc7050_and_its_thread_stops() {
        use crate::runtime::dns::fake::{self, FakeServer};
        let server = FakeServer::start(|q, _| vec![fake::answer(q, vec![fake::aaaa("ipv4only.arpa", 60, "2001:db8:64::c000:aa")])]);
        let mut conf = crate::runtime::dns::conf::ResolvConf::with_servers(&[server.addr]);
        conf.timeout = Duration::from_secs(2);
        conf.attempts = 1;
        let client = Arc::new(DnsClient::new(conf, Default::default(), true));
        let d = Arc::new(Discovery::default());
        let t = Instant::now();
        let got = d.ensure(|| client, Duration::from_secs(5));
        assert_eq!(got, Some((p("2001:db8:64::/96"), Pref64Source::Dns)));
        // Asked beside the Router Solicitation (sent when the test may):
        // the answer ends the wait, not the RA_WAIT for a router.
        assert!(t.elapsed() < RA_WAIT - Duration::from_millis(50), "took {:?}", t.elapsed());
        let t = Instant::now();
        d.shutdown();
        assert!(t.elapsed() < Duration::from_secs(1), "joined in {:?}", t.elapsed());
        assert!(d.thread.lock().is_none());
    }
}
