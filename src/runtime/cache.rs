//! The resolution cache: the system resolver's answers per host name and
//! family, kept for a lifetime, the way curl's DNS cache keeps them (60 s
//! by default there too). A long-lived client that races to the same name
//! again and again then pays neither the two getaddrinfo calls nor the
//! source-address probes per race: its races start at once, as with
//! literal addresses, and still sort and race both families (RFC 8305 §4,
//! RFC 6724).
//!
//! An answer of the DNS client ([`super::dns`]) is kept for its TTL (the
//! smallest of its records and CNAMEs; for "no such name" and "no data",
//! the SOA's negative TTL, RFC 2308 §5), capped by the loop's lifetime
//! setting ([`DEFAULT_LIFETIME`]); a TTL of zero is not kept.
//! getaddrinfo, the hosts file and RFC 6761 names report no TTL: their
//! answers are kept for the lifetime setting itself. Zero turns the cache
//! off and empties it. Kept:
//! the addresses of a family, each with its source address, and "no address
//! of this family" (an empty answer, EAI_NONAME, EAI_NODATA): without that,
//! a name with only A records would wait the Resolution Delay for its AAAA
//! query on every race. Not kept: other failures (EAI_AGAIN, EAI_FAIL,
//! EAI_SYSTEM...), which the next race asks again. A race that fails after
//! using cached answers drops them ([`AnswerCache::forget_addresses`]): the
//! name may have moved. User resolvers (`event_loop_set_resolver`) are not cached.
//!
//! One cache per loop, shared by the loop thread (lookups at race start)
//! and the resolver workers (answers); at most [`MAX_ENTRIES`] entries.

use super::sync::Mutex;
use crate::engine::{Candidate, Family};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The lifetime of a cached answer unless the loop sets another.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// The longest lifetime a loop may set (one day).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(86_400);
/// Most names × families kept; when full, expired entries go first, then
/// the one closest to expiry.
pub(crate) const MAX_ENTRIES: usize = 4096;

/// A cached answer: candidates with port 0, or the getaddrinfo code.
type Answer = Result<Vec<Candidate>, i32>;

#[derive(Debug)]
struct Entry {
    expires: Instant,
    answer: Answer,
}

/// One name's answers: AAAA, A.
#[derive(Debug, Default)]
struct Slots([Option<Entry>; 2]);

fn slot(family: Family) -> usize {
    match family {
        Family::V6 => 0,
        Family::V4 => 1,
    }
}

#[derive(Debug)]
struct Inner {
    lifetime: Duration,
    /// Entries (one per name and family) in `names`.
    count: usize,
    names: HashMap<Box<str>, Slots>,
}

/// Answers by (host name, family), for a lifetime.
pub(crate) struct AnswerCache {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache").finish_non_exhaustive()
    }
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache { inner: Mutex::new(Inner { lifetime: DEFAULT_LIFETIME, count: 0, names: HashMap::new() }) }
    }
}

/// Names compare without case (DNS) and without a final dot; no copy when
/// the name is already in that form.
fn key(host: &str) -> Cow<'_, str> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Whether a failure means "no address of this family", which is kept.
fn is_no_address(code: i32) -> bool {
    code == libc::EAI_NONAME || code == libc::EAI_NODATA
}

fn with_port(cands: &[Candidate], port: u16) -> Vec<Candidate> {
    cands
        .iter()
        .map(|c| {
            let mut c = *c;
            c.addr.set_port(port);
            c
        })
        .collect()
}

impl Inner {
    fn remove_expired(&mut self, now: Instant) {
        let mut count = 0;
        self.names.retain(|_, slots| {
            for e in &mut slots.0 {
                if e.as_ref().is_some_and(|e| e.expires <= now) {
                    *e = None;
                }
            }
            let n = slots.0.iter().flatten().count();
            count += n;
            n > 0
        });
        self.count = count;
    }

    /// Drop the entry closest to expiry.
    fn remove_first(&mut self) {
        let first = self
            .names
            .iter()
            .flat_map(|(name, slots)| slots.0.iter().enumerate().filter_map(move |(i, e)| e.as_ref().map(|e| (e.expires, name, i))))
            .min_by_key(|(expires, _, _)| *expires)
            .map(|(_, name, i)| (name.clone(), i));
        if let Some((name, i)) = first {
            if let Some(slots) = self.names.get_mut(&name) {
                slots.0[i] = None;
                self.count -= 1;
                if slots.0.iter().all(Option::is_none) {
                    self.names.remove(&name);
                }
            }
        }
    }
}

impl AnswerCache {
    /// The lifetime of new entries; zero turns the cache off. Entries
    /// already kept expire at their own time, except that turning the cache
    /// off empties it.
    pub(crate) fn set_lifetime(&self, lifetime: Duration) {
        let mut inner = self.inner.lock();
        inner.lifetime = lifetime;
        if lifetime.is_zero() {
            inner.names.clear();
            inner.count = 0;
        }
    }

    /// The kept answers for `host`, AAAA then A, with `port` on every
    /// address; `None` where there is none or it expired.
    pub(crate) fn get(&self, host: &str, port: u16) -> [Option<Answer>; 2] {
        let mut inner = self.inner.lock();
        if inner.count == 0 {
            return [None, None];
        }
        let k = key(host);
        let Some(slots) = inner.names.get_mut(&*k) else { return [None, None] };
        let now = Instant::now();
        let mut out = [None, None];
        let mut expired = 0;
        for (i, e) in slots.0.iter_mut().enumerate() {
            match e {
                Some(entry) if entry.expires > now => {
                    out[i] = Some(entry.answer.as_ref().map(|c| with_port(c, port)).map_err(|e| *e));
                }
                Some(_) => {
                    *e = None;
                    expired += 1;
                }
                None => {}
            }
        }
        let empty = slots.0.iter().all(Option::is_none);
        if empty {
            inner.names.remove(&*k);
        }
        inner.count -= expired;
        out
    }

    /// Keep an answer the system resolver gave for min(`ttl`, the
    /// lifetime), or the lifetime when it has no TTL (failures other than
    /// "no address" are not kept).
    pub(crate) fn put(&self, host: &str, family: Family, answer: &Answer, ttl: Option<Duration>) {
        let answer = match answer {
            Ok(cands) => Ok(with_port(cands, 0)),
            Err(code) if is_no_address(*code) => Err(*code),
            Err(_) => return,
        };
        let mut inner = self.inner.lock();
        let lifetime = ttl.map_or(inner.lifetime, |ttl| ttl.min(inner.lifetime));
        if lifetime.is_zero() {
            return;
        }
        let now = Instant::now();
        let k = key(host);
        let new = inner.names.get(&*k).is_none_or(|s| s.0[slot(family)].is_none());
        if new && inner.count >= MAX_ENTRIES {
            inner.remove_expired(now);
            if inner.count >= MAX_ENTRIES {
                inner.remove_first();
            }
        }
        let expires = now + lifetime;
        let slots = inner.names.entry(k.into_owned().into_boxed_str()).or_default();
        slots.0[slot(family)] = Some(Entry { expires, answer });
        if new {
            inner.count += 1;
        }
    }

    /// Drop every name with an answer holding one of `addrs` (ports
    /// ignored): after a race failed with them, the next one asks again.
    pub(crate) fn forget_addresses(&self, addrs: &[std::net::IpAddr]) {
        let mut inner = self.inner.lock();
        let before = inner.names.len();
        inner.names.retain(|_, slots| {
            !slots.0.iter().flatten().any(|e| e.answer.as_ref().is_ok_and(|c| c.iter().any(|c| addrs.contains(&c.addr.ip()))))
        });
        if inner.names.len() != before {
            let count = inner.names.values().map(|s| s.0.iter().flatten().count()).sum();
            inner.count = count;
        }
    }
}

/// For api's end-to-end test of the cache.
#[cfg(test)]
impl super::LoopCore {
    /// Queries submitted to the system resolver so far.
    pub(crate) fn resolver_queries(&self) -> u64 {
        self.resolver.submitted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn cand(s: &str) -> Candidate {
        let addr: SocketAddr = s.parse().unwrap();
        Candidate { addr, source: Some(addr.ip()) }
    }

    #[test]
    fn keeps_answers_per_family_with_the_asked_port() {
        let c = AnswerCache::default();
        c.put("Example.COM.", Family::V6, &Ok(vec![cand("[2001:db8::1]:80")]), None);
        c.put("example.com", Family::V4, &Err(libc::EAI_NONAME), None);
        assert_eq!(c.get("example.com", 443), [Some(Ok(vec![cand("[2001:db8::1]:443")])), Some(Err(libc::EAI_NONAME))]);
        assert_eq!(c.get("EXAMPLE.com.", 443)[1], Some(Err(libc::EAI_NONAME)));
        assert_eq!(c.get("other.example", 443), [None, None]);
    }

    #[test]
    fn transient_failures_are_not_kept() {
        let c = AnswerCache::default();
        c.put("a.example", Family::V4, &Err(libc::EAI_AGAIN), None);
        assert_eq!(c.get("a.example", 1), [None, None]);
    }

    #[test]
    fn expires_after_the_lifetime_and_zero_turns_it_off() {
        let c = AnswerCache::default();
        c.set_lifetime(Duration::from_millis(30));
        c.put("a.example", Family::V4, &Ok(vec![cand("192.0.2.1:1")]), None);
        assert!(c.get("a.example", 1)[1].is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("a.example", 1), [None, None]);
        assert_eq!(c.inner.lock().count, 0);
        c.set_lifetime(DEFAULT_LIFETIME);
        c.put("a.example", Family::V4, &Ok(vec![cand("192.0.2.1:1")]), None);
        c.set_lifetime(Duration::ZERO);
        assert_eq!(c.get("a.example", 1), [None, None]);
        c.put("a.example", Family::V4, &Ok(vec![cand("192.0.2.1:1")]), None);
        assert_eq!(c.get("a.example", 1), [None, None]);
    }

    #[test]
    fn a_ttl_shortens_the_lifetime_never_lengthens_it() {
        let c = AnswerCache::default();
        c.set_lifetime(Duration::from_millis(300));
        c.put("short.example", Family::V4, &Ok(vec![cand("192.0.2.1:1")]), Some(Duration::from_millis(30)));
        c.put("long.example", Family::V4, &Ok(vec![cand("192.0.2.2:1")]), Some(Duration::from_secs(3600)));
        c.put("none.example", Family::V6, &Err(libc::EAI_NODATA), Some(Duration::from_millis(30)));
        c.put("zero.example", Family::V4, &Ok(vec![cand("192.0.2.3:1")]), Some(Duration::ZERO));
        assert!(c.get("short.example", 1)[1].is_some());
        assert_eq!(c.get("none.example", 1)[0], Some(Err(libc::EAI_NODATA)));
        assert_eq!(c.get("zero.example", 1), [None, None], "a TTL of zero is not kept");
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(c.get("short.example", 1), [None, None], "gone after its TTL");
        assert_eq!(c.get("none.example", 1), [None, None], "a negative answer too");
        assert!(c.get("long.example", 1)[1].is_some(), "the lifetime caps a long TTL, not yet passed");
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(c.get("long.example", 1), [None, None], "gone after the lifetime cap");
    }

    #[test]
    fn forgetting_an_address_drops_its_names() {
        let c = AnswerCache::default();
        c.put("a.example", Family::V4, &Ok(vec![cand("192.0.2.1:1")]), None);
        c.put("a.example", Family::V6, &Ok(vec![cand("[2001:db8::1]:1")]), None);
        c.put("b.example", Family::V4, &Ok(vec![cand("192.0.2.2:1")]), None);
        c.forget_addresses(&["192.0.2.1".parse().unwrap()]);
        assert_eq!(c.get("a.example", 1), [None, None]);
        assert!(c.get("b.example", 1)[1].is_some());
        assert_eq!(c.inner.lock().count, 1);
    }

    #[test]
    fn stays_bounded() {
        let c = AnswerCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            c.put(&format!("h{i}.example"), Family::V4, &Ok(vec![cand("192.0.2.1:1")]), None);
        }
        assert_eq!(c.inner.lock().count, MAX_ENTRIES);
        assert_eq!(c.inner.lock().names.len(), MAX_ENTRIES);
        assert!(c.get(&format!("h{}.example", MAX_ENTRIES + 9), 1)[1].is_some());
        assert_eq!(c.get("h0.example", 1), [None, None], "the oldest went first");
    }
}
