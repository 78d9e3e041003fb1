//! Shared loops: one loop per key, on its own thread, for the independent
//! components of one process (the shared-instance pattern: the first user
//! of a key creates it, later users join it, the last one to leave stops
//! it).
//!
//! The registry of keys is the library's only process-wide state. Every
//! handle [`EventLoop::shared`] returns is a client of its own: the races
//! it initiates, their callbacks and user data are its own; dropping the
//! handle cancels its pending races (and silences its connections'
//! callbacks) and nobody else's. The last handle of a key stops the loop's
//! thread and joins it.

use super::error::Result;
use super::event_loop::EventLoop;
use crate::runtime::client::Client;
use crate::runtime::sync::Mutex;
use crate::runtime::LoopCore;
use std::collections::BTreeMap;
use std::sync::Arc;

struct Entry {
    lp: Arc<LoopCore>,
    handles: usize,
}

/// Key → shared loop and its number of live handles. A mutex
/// initialised at compile time (no lazy initialisation to race on).
static REGISTRY: Mutex<BTreeMap<String, Entry>> = Mutex::new(BTreeMap::new());

impl EventLoop {
    /// A handle on the shared loop of `key` (any string, "" included). The
    /// first call for a key creates the loop and starts its thread; later
    /// calls get the same loop until its last handle is dropped, after
    /// which the key starts afresh. Each handle is a client of its own (see
    /// the module docs); use it as a loop for Preconnections. It cannot be
    /// run, embedded, started or stopped: those calls fail with
    /// [`Error::InvalidState`](super::Error::InvalidState).
    ///
    /// # Errors
    /// [`Error::Io`](super::Error::Io) when the first call cannot create the loop or its
    /// thread.
    pub fn shared(key: &str) -> Result<EventLoop> {
        let mut registry = REGISTRY.lock();
        let lp = match registry.get_mut(key) {
            Some(entry) => {
                entry.handles += 1;
                Arc::clone(&entry.lp)
            }
            None => {
                let lp = LoopCore::new(false)?;
                if let Err(e) = lp.start_thread() {
                    lp.shutdown();
                    return Err(e);
                }
                registry.insert(key.to_owned(), Entry { lp: Arc::clone(&lp), handles: 1 });
                log::debug!("shared loop {key:?} started");
                lp
            }
        };
        Ok(EventLoop { shared: lp, client: Arc::new(Client::new()), key: Some(key.to_owned()) })
    }

    /// Drop this handle (the same as `drop`): see [`EventLoop`]'s Drop.
    pub fn release(self) {}

    /// The number of live handles on the shared loop of `key` (0 when there
    /// is none). For tests and diagnostics.
    pub fn shared_handle_count(key: &str) -> usize {
        REGISTRY.lock().get(key).map_or(0, |e| e.handles)
    }
}

/// A handle of `key` on `lp` was dropped (its client already released):
/// the last one removes the key, stops the loop's thread, joins it, and
/// frees the loop.
pub(crate) fn release(key: &str, lp: &Arc<LoopCore>) {
    let last = {
        let mut registry = REGISTRY.lock();
        match registry.get_mut(key) {
            Some(entry) if Arc::ptr_eq(&entry.lp, lp) => {
                entry.handles -= 1;
                if entry.handles == 0 {
                    registry.remove(key);
                    true
                } else {
                    false
                }
            }
            _ => {
                log::error!("shared loop {key:?}: released a handle the registry does not know");
                false
            }
        }
    };
    if last {
        // Outside the registry lock: joining can take as long as the
        // callback that runs now, and other keys must not wait for it.
        if let Err(e) = lp.stop_thread() {
            log::error!("shared loop {key:?}: cannot stop its thread: {e}");
        }
        lp.shutdown();
        log::debug!("shared loop {key:?} stopped");
    }
}
