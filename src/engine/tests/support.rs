//! Helpers the engine's tests share: documentation addresses, queries, the
//! default race over one endpoint's AAAA and A queries, and draining the
//! actions a race or a tree has queued at one instant of virtual time.

use crate::engine::race::{Action, Outcome, Race, RaceConfig};
use crate::engine::tree::{self, Tree};
use crate::engine::{AttemptId, Candidate, Family, Micros, QueryKey};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A state machine that queues actions: [`Race`] and [`Tree`].
pub(super) trait Actions {
    type Action;
    fn next_action(&mut self) -> Option<Self::Action>;
}

impl Actions for Race {
    type Action = Action;
    fn next_action(&mut self) -> Option<Action> {
        self.poll_action()
    }
}

impl Actions for Tree {
    type Action = tree::Action;
    fn next_action(&mut self) -> Option<tree::Action> {
        self.poll_action()
    }
}

/// Every action queued now, in order.
pub(super) fn drain<E: Actions>(e: &mut E) -> Vec<E::Action> {
    std::iter::from_fn(|| e.next_action()).collect()
}

/// One millisecond, in the engine's µs.
pub(super) const MS: Micros = 1000;
/// The errno of a refused attempt.
pub(super) const ECONNREFUSED: i32 = libc::ECONNREFUSED;
/// The errno of an attempt timeout.
pub(super) const ETIMEDOUT: i32 = libc::ETIMEDOUT;

/// Endpoint `endpoint`'s AAAA query.
pub(super) fn q6(endpoint: usize) -> QueryKey {
    QueryKey { endpoint, family: Family::V6 }
}

/// Endpoint `endpoint`'s A query.
pub(super) fn q4(endpoint: usize) -> QueryKey {
    QueryKey { endpoint, family: Family::V4 }
}

/// `[2001:db8::n]:443`, reached from 2001:db8::100.
pub(super) fn v6(n: u16) -> Candidate {
    Candidate {
        addr: SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n)), 443),
        source: Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100))),
    }
}

/// `192.0.2.n:443`, reached from 192.0.2.100.
pub(super) fn v4(n: u8) -> Candidate {
    Candidate {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)), 443),
        source: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100))),
    }
}

/// The race's action starting `attempt` to `c`.
pub(super) fn start(attempt: AttemptId, c: Candidate) -> Action {
    Action::Start { attempt, addr: c.addr }
}

/// The race's action cancelling `attempt`.
pub(super) fn cancel(attempt: AttemptId) -> Action {
    Action::Cancel { attempt }
}

/// The default configuration (250 ms attempt delay, 50 ms Resolution
/// Delay, no timeouts, one attempt at a time).
pub(super) fn cfg() -> RaceConfig {
    RaceConfig::default()
}

/// A race created at 0 over endpoint 0's AAAA and A queries.
pub(super) fn dual(config: RaceConfig) -> Race {
    Race::new(config, 0, &[q6(0), q4(0)])
}

/// Check the race is over: no deadline, nothing queued, inputs ignored.
pub(super) fn assert_over(r: &mut Race, now: Micros) {
    assert!(r.is_finished());
    assert_eq!(r.next_deadline(), None);
    assert_eq!(drain(r), []);
    r.on_timer(now + 10_000 * MS);
    r.cancel(now + 10_000 * MS);
    r.on_answer(now, q6(9), Ok(vec![v6(99)]));
    assert_eq!(drain(r), []);
    assert!(r.attempts().all(|a| a.outcome != Outcome::Running));
}
