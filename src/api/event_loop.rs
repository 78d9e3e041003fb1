//! EventLoop: one mio loop that runs races and calls their callbacks.

use super::error::Result;
use crate::driver::LoopShared;
use std::sync::Arc;

/// One event loop: a mio Poll, its timers, sockets and resolver threads.
/// No process-wide state: loops are independent. Run it with
/// [`EventLoop::run`]; callbacks run on the thread that runs it.
///
/// cbindgen:ignore
pub struct EventLoop {
    pub(crate) shared: Arc<LoopShared>,
}

impl EventLoop {
    /// A new loop.
    ///
    /// # Errors
    /// [`super::Error::Io`] when the system refuses an epoll instance,
    /// eventfd or timerfd.
    pub fn new() -> Result<EventLoop> {
        Ok(EventLoop { shared: LoopShared::new()? })
    }

    /// Run until no race is pending and every callback was called.
    ///
    /// # Errors
    /// [`super::Error::Io`] when polling fails.
    pub fn run(&self) -> Result<()> {
        self.shared.run()
    }

    /// Whether a race or a callback is pending.
    pub fn has_work(&self) -> bool {
        self.shared.has_work()
    }
}

impl Drop for EventLoop {
    /// Cancels every pending race with no callback; connections made on the
    /// loop stay valid handles to free.
    fn drop(&mut self) {
        self.shared.shutdown();
    }
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop").finish_non_exhaustive()
    }
}
