//! The loop's history (see [`crate::engine::history`] for the rules): each
//! answer's candidates get what history knows of them on their network
//! before the race sees them, and each race's attempts are recorded when
//! it ends. A loop's races, pools and groups share one store (and so do
//! the handles of a shared loop, which share the loop).
//!
//! The network of a candidate is its path's interface (its name; none for
//! the system's routing) and its source address's prefix (/64, /24): the
//! source is what the system picked for that destination on this network,
//! so another attachment (another prefix, another interface) is another
//! network, and history is never consulted across them (HEv3 draft -04
//! §5.3). Two attachments with the same interface name and the same
//! private IPv4 /24 look alike; aging and convergence bound what that can
//! cost.

use crate::engine::history::{interface_id, EntryKey, History, Hint, NetworkKey, Observation};
use crate::engine::race::{Outcome, RaceError};
use crate::engine::tree::Tree;
use crate::engine::{AttemptId, Candidate, Micros};
use super::protocol::{AttemptIo, ProtocolEntry};
use super::race::{RaceEntry, RacePath};
use super::timers::RaceId;
use std::sync::Arc;

/// Loop clock times are moved this far forward in the store (µs, about 11
/// days), so that ages imported from another process count back from a
/// young clock without saturating at zero.
const EPOCH: Micros = 1_000_000_000_000;

/// A loop's history and its switch.
pub(crate) struct LoopHistory {
    /// The store.
    pub(crate) store: History,
    /// On by default; off: races neither consult nor feed it.
    pub(crate) enabled: bool,
}

impl Default for LoopHistory {
    fn default() -> Self {
        LoopHistory { store: History::default(), enabled: true }
    }
}

/// The store's time for the loop clock's `now`.
pub(crate) fn store_time(now: Micros) -> Micros {
    now.saturating_add(EPOCH)
}

/// The key of `c` reached on `path` with `protocol`; `None` without a
/// source address (no route: nothing to learn).
fn key(paths: &[RacePath], protocols: &[Arc<ProtocolEntry>], path: usize, protocol: usize, c: &Candidate) -> Option<EntryKey> {
    let source = c.source?;
    if source == c.addr.ip() && !source.is_loopback() {
        // A lone literal's source is not looked up (it stands in for it):
        // its network is unknown.
        return None;
    }
    let interface = interface_id(paths.get(path)?.path.interface.as_deref().map(str::as_bytes));
    let protocol = interface_id(Some(protocols.get(protocol)?.name.to_bytes()));
    Some(EntryKey { network: NetworkKey::new(interface, source), addr: c.addr, protocol })
}

impl LoopHistory {
    /// Give race `id`'s tree what history knows of `candidates` (an answer
    /// about to be given to it).
    pub(super) fn hint_answer(
        &mut self,
        tree: &mut Tree,
        id: RaceId,
        paths: &[RacePath],
        protocols: &[Arc<ProtocolEntry>],
        candidates: &[Candidate],
        now: Micros,
    ) {
        if !self.enabled || candidates.is_empty() {
            return;
        }
        let t = store_time(now);
        let store = &mut self.store;
        tree.add_history(candidates, |path, protocol, c| -> Option<Hint> {
            let key = key(paths, protocols, path, protocol, c)?;
            store.consult(key.network, id);
            store.hint(&key, t)
        });
    }

    /// Record what race `id`'s attempts did, when it ended with `end`. The
    /// RTT of a connection is its handshake time, or for a TCP winner the
    /// kernel's smoothed RTT (`TCP_INFO`), which leaves out the loop's own
    /// latency.
    pub(super) fn record_end(
        &mut self,
        entry: &RaceEntry,
        id: RaceId,
        protocols: &[Arc<ProtocolEntry>],
        end: Result<AttemptId, RaceError>,
        now: Micros,
    ) {
        if !self.enabled || end == Err(RaceError::Cancelled) {
            return;
        }
        let (tree, paths) = (&entry.tree, &entry.paths[..]);
        let winner_start = end.ok().and_then(|w| tree.attempts().nth(w)).map(|a| a.record.started);
        let winner_srtt = end.ok().and_then(|w| match entry.io.get(w) {
            Some(AttemptIo::Tcp(_, stream)) => super::sys::tcp::smoothed_rtt_us(stream),
            _ => None,
        });
        let mut observations = Vec::new();
        for (i, a) in tree.attempts().enumerate() {
            let r = &a.record;
            let Some(key) = key(paths, protocols, a.path, a.protocol, &r.candidate) else { continue };
            let observation = match r.outcome {
                Outcome::Won | Outcome::Spare => {
                    let handshake = r.ended.unwrap_or(now).saturating_sub(r.started);
                    let rtt = winner_srtt.filter(|_| end == Ok(i)).map_or(handshake, Micros::from);
                    Observation::Connected { rtt }
                }
                Outcome::Failed(errno) => Observation::Failed(errno),
                // Overtaken: started before the winner, no answer yet.
                Outcome::Cancelled if winner_start.is_some_and(|w| r.started < w) => {
                    Observation::Failed(libc::ETIMEDOUT)
                }
                // Unanswered when the race timed out.
                Outcome::Cancelled if end == Err(RaceError::TimedOut) => Observation::Failed(libc::ETIMEDOUT),
                Outcome::Cancelled | Outcome::Running => Observation::NotAttempted,
            };
            observations.push((key, observation));
        }
        self.store.record_race_of(store_time(now), id, &observations);
        log_hints(tree, id);
    }
}

/// Log (debug) what history told race `id` of each attempt's destination,
/// as "[2001:db8::1]:443 sorted by history: 12.0 ms RTT, used, 3 race(s)
/// ago".
fn log_hints(tree: &Tree, id: RaceId) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    for (i, a) in tree.attempts().enumerate() {
        if let Some(h) = tree.history_hint(i) {
            log::debug!("race {id}: attempt {i} to {} sorted by history: {}", a.record.candidate.addr, describe(&h));
        }
    }
}

/// A hint in words: "failed recently (errno 110), 1 race(s) ago", "12.0 ms
/// RTT, used, 3 race(s) ago".
pub(crate) fn describe(h: &Hint) -> String {
    note(h).to_string()
}

/// A hint as the race report says it.
pub(crate) fn note(h: &Hint) -> crate::vocabulary::report::HistoryNote {
    crate::vocabulary::report::HistoryNote { srtt_us: h.srtt, used: h.used, failed: h.failed, races_ago: h.races_ago }
}

impl super::LoopCore {
    /// Run `f` on the loop's history with the store's time for now.
    pub(crate) fn with_history<R>(&self, f: impl FnOnce(&mut LoopHistory, Micros) -> R) -> R {
        let mut st = super::lock(&self.state);
        let now = store_time(self.clock.now());
        f(&mut st.history, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_read_as_the_race_report_says_them() {
        let h = Hint { srtt: Some(12_000), used: true, failed: None, races_ago: 3, age: 0 };
        assert_eq!(describe(&h), "12.0 ms RTT, used, 3 race(s) ago");
        let f = Hint { srtt: None, used: false, failed: Some(libc::ETIMEDOUT), races_ago: 1, age: 0 };
        assert_eq!(describe(&f), format!("failed recently (errno {}), 1 race(s) ago", libc::ETIMEDOUT));
    }

    #[test]
    fn the_store_time_leaves_room_to_count_back() {
        assert_eq!(store_time(0), EPOCH);
        assert!(store_time(0) > 30 * 60 * 1_000_000);
    }
}
