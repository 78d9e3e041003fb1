//! Clients of a loop: who started a race, so that one client's release
//! touches its own races and callbacks and nobody else's.
//!
//! A private loop (`EventLoop::new`) has one client, its owner. A shared
//! loop has one per handle that `EventLoop::shared` gave out. Every
//! connection remembers its client; a callback runs only while its client
//! is not released, and releasing waits for a callback of the client that
//! runs on the loop's thread, so that nothing of a client's runs after its
//! release returned.
//!
//! Lock order: the client's lock is never held with another lock.

use super::sync::{Condvar, Mutex};
use std::thread::ThreadId;

#[derive(Debug, Default)]
struct ClientState {
    released: bool,
    /// The thread inside one of this client's callbacks.
    running: Option<ThreadId>,
}

/// One client of a loop.
#[derive(Default)]
pub(crate) struct Client {
    st: Mutex<ClientState>,
    done: Condvar,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("released", &self.is_released()).finish()
    }
}

/// Leaves the callback when dropped (also when the callback panics).
pub(crate) struct InCallback<'a>(&'a Client);

impl Drop for InCallback<'_> {
    fn drop(&mut self) {
        let mut st = self.0.st.lock();
        st.running = None;
        self.0.done.notify_all();
    }
}

impl Client {
    /// A client that is not released.
    pub(crate) fn new() -> Client {
        Client::default()
    }

    /// Enter one of this client's callbacks on this thread: `None` when the
    /// client is released (do not call it).
    pub(crate) fn enter(&self) -> Option<InCallback<'_>> {
        let mut st = self.st.lock();
        if st.released {
            return None;
        }
        st.running = Some(super::sync::current_thread());
        Some(InCallback(self))
    }

    /// No callback of this client starts after this returns, and none runs
    /// on another thread (it waits for a running one to return; a callback
    /// of this client on the calling thread is not waited for).
    pub(crate) fn release(&self) {
        let me = super::sync::current_thread();
        let mut st = self.st.lock();
        st.released = true;
        while matches!(st.running, Some(t) if t != me) {
            st = self.done.wait(st);
        }
    }

    /// Whether [`Client::release`] was called.
    pub(crate) fn is_released(&self) -> bool {
        self.st.lock().released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn released_client_gets_no_callback() {
        let c = Client::new();
        assert!(c.enter().is_some());
        c.release();
        assert!(c.enter().is_none());
        assert!(c.is_released());
    }

    #[test]
    fn release_waits_for_a_callback_on_another_thread() {
        let c = Arc::new(Client::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let c2 = Arc::clone(&c);
        let t = std::thread::spawn(move || {
            let guard = c2.enter().expect("not released");
            tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            drop(guard);
        });
        rx.recv().unwrap();
        let start = Instant::now();
        c.release();
        // The callback slept 100 ms after telling us it was inside.
        assert!(start.elapsed() >= Duration::from_millis(50), "{:?}", start.elapsed());
        t.join().unwrap();
    }

    #[test]
    fn release_inside_own_callback_does_not_wait() {
        let c = Client::new();
        let _guard = c.enter().expect("not released");
        c.release();
        assert!(c.is_released());
    }
}
