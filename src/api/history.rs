//! The loop's history of earlier races (HEv3 draft -04 §5.3, §6; RFC 8305
//! §4, §5; RFC 9623 §9.2): switch, clear, inspect, export and import. The
//! rules are in [`crate::engine::history`]; docs/guide/history.md tells
//! what is kept, under which key, for how long, and the export format.

use super::error::{Error, Result};
use super::event_loop::EventLoop;

impl EventLoop {
    /// Turn the loop's history on (the default) or off. Off, races neither
    /// consult nor feed it (what it holds is kept; see
    /// [`EventLoop::clear_history`]). Applies to every race, pool and group
    /// of the loop (every client of a shared loop) from its next answer.
    pub fn set_history(&self, enabled: bool) {
        self.shared.with_history(|h, _| h.enabled = enabled);
    }

    /// Forget everything history holds.
    pub fn clear_history(&self) {
        self.shared.with_history(|h, _| h.store.clear());
    }

    /// Entries history holds (destination × protocol × network), at most
    /// 256.
    pub fn history_len(&self) -> usize {
        self.shared.with_history(|h, _| h.store.len())
    }

    /// Bytes of memory history holds (its tables), an estimate; bounded by
    /// its 256 entries.
    pub fn history_memory(&self) -> usize {
        self.shared.with_history(|h, _| h.store.memory_bytes())
    }

    /// History as text (version 1 of the format documented in
    /// [`crate::engine::history::History::export`]): the destinations this
    /// loop connected to, with RTTs and failures. Opt in to writing it
    /// somewhere: it is a record of the hosts one reached.
    pub fn export_history(&self) -> String {
        self.shared.with_history(|h, now| {
            h.store.expire(now);
            h.store.export(now)
        })
    }

    /// Add entries exported by [`EventLoop::export_history`] (another
    /// process, an earlier run); expired ones are skipped. Returns the
    /// number of entries read.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the text is not of the format (another
    /// version, a line that cannot be read); nothing is taken then.
    pub fn import_history(&self, text: &str) -> Result<usize> {
        self.shared
            .with_history(|h, now| h.store.import(text, now))
            .map_err(|_| Error::InvalidArgument("not a taps-racing-history 1 text"))
    }
}
