//! The sans-IO racing core.
//!
//! Pure: the engine takes events and the current time (µs on the loop's
//! clock) and returns actions. It never makes a syscall, reads a clock or
//! spawns a thread, so every schedule can be tested in virtual time.
//!
//! - [`history`]: what earlier races taught, per network (RTTs, use,
//!   failures), the HEv3 §5.3 sort rules and the attempt delay from RTT.
//! - [`sort`]: RFC 6724 §6 destination address selection and RFC 8305 §4
//!   family interleaving.
//! - [`race`]: one race over endpoints, RFC 8305 §3 (Resolution Delay),
//!   §5 (Connection Attempt Delay), first ready wins.
//! - [`tree`]: the candidate tree ROOT → PATH → PROTOCOL → ENDPOINT of
//!   RFC 9623 §4.1, with immediate, delayed and failover branch racing
//!   (§4.3); each leaf is a [`race::Race`].
//! - [`pool`]: the policy of a warm connection pool (when to race, how
//!   many attempts, where a ready connection goes, backoff).
//! - [`service`]: HTTPS records in a race (HEv3 draft §4.2–§7: aliases,
//!   hints, ports, ALPN, SvcPriority groups), the questions the engine
//!   asks the runtime.
//! - [`select`]: selection properties (RFC 9622 §6.2) pruning and ordering
//!   path and protocol branches.
//! - [`group`]: the policy of a connection group (which member carries the
//!   next stream: round robin, least loaded, weighted; capacity, failover,
//!   per-member metrics).
//! - [`nat64`]: NAT64 prefixes (PREF64): RFC 6052 synthesis and
//!   de-synthesis, RFC 7050 discovery from an `ipv4only.arpa` answer,
//!   the RFC 8781 PREF64 option of Router Advertisements.

pub mod group;
pub mod nat64;
pub mod history;
pub mod pool;
pub mod race;
pub mod select;
pub mod service;
pub mod sort;
pub mod tree;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

// Time on the loop's clock, in µs: a vocabulary type, since the runtime
// and the api count in it too.
pub use crate::vocabulary::time::Micros;

/// An address family, in the order RFC 8305 prefers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv6 (AAAA records).
    V6,
    /// IPv4 (A records).
    V4,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V6(_) => Family::V6,
            SocketAddr::V4(_) => Family::V4,
        }
    }
}

/// One destination to attempt: a remote address and port, with the source
/// address the system would use to reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Remote address and port.
    pub addr: SocketAddr,
    /// The source address the kernel picked for `addr` (glibc's trick: a
    /// connected UDP socket's local address), or `None` when there is no
    /// route: RFC 6724 rule 1 ("avoid unusable destinations") sorts those
    /// last.
    pub source: Option<IpAddr>,
}

/// Which DNS query an answer belongs to: remote endpoint `endpoint`'s AAAA
/// ([`Family::V6`]) or A ([`Family::V4`]) query. A literal address is
/// given to the race as an answer too, at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryKey {
    /// Index of the remote endpoint in the Preconnection.
    pub endpoint: usize,
    /// The record type asked for.
    pub family: Family,
}

/// Index of an attempt in [`race::Race::attempts`], in start order.
pub type AttemptId = usize;

/// Push onto `v`, allocating room for exactly one element the first time:
/// most races make one attempt, and a race in flight should not hold
/// room for four. Later pushes grow as usual.
pub(crate) fn push_first_exact<T>(v: &mut Vec<T>, item: T) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(item);
}

/// Free a drained action queue's buffer: a race in flight spends most of
/// its life waiting with nothing queued, and many races wait at once.
pub(crate) fn release_queue<T>(q: &mut VecDeque<T>) {
    if q.is_empty() && q.capacity() > 0 {
        *q = VecDeque::new();
    }
}

/// An action queue that holds its first action inline: most of the time a
/// race queues one action at a time (its start, then its win), which then
/// costs no allocation; more spill over into a `VecDeque`, freed when
/// drained (a race in flight mostly waits with nothing queued).
#[derive(Debug)]
pub(crate) struct Queue<T> {
    /// The front, when the queue holds one action or was empty when it
    /// was pushed (then every action in `rest` came after it).
    first: Option<T>,
    rest: VecDeque<T>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue { first: None, rest: VecDeque::new() }
    }
}

impl<T> Queue<T> {
    pub(crate) fn push_back(&mut self, item: T) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if let Some(item) = self.first.take() {
            return Some(item);
        }
        let item = self.rest.pop_front();
        if item.is_none() {
            release_queue(&mut self.rest);
        }
        item
    }
}
