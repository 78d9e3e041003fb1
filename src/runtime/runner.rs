//! The ways to run a loop.
//!
//! - `run`: on the caller's thread until no race is pending;
//! - `run_once`: one turn that waits at most a timeout;
//! - `process` + `poll_fd` + `next_timeout`: embedded in the caller's own
//!   event loop (libuv, epoll): watch one fd, process without blocking;
//! - `start_thread` / `stop_thread`: a thread of the loop's own.
//!
//! One thread runs the loop at a time (`LoopState::runner`); a loop with a
//! thread of its own refuses to be run by any other. Every turn delivers
//! the queued callbacks, fires due timers and polls once; callbacks run on
//! the running thread with no lock held.

use super::{io_err, lock, LoopCore, LoopState};
use crate::vocabulary::error::{Error, Result};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

/// How long one turn may block in poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all.
    No,
    /// At most this long.
    UpTo(Duration),
    /// Until something happens (or the next timer).
    Forever,
}

/// The calling thread runs the loop until this is dropped.
pub(crate) struct Running<'a> {
    lp: &'a LoopCore,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.lp.state).runner = None;
    }
}

impl LoopCore {
    /// Become the thread that runs the loop.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when another thread runs it or owns it (a
    /// loop with a thread of its own), or when called from one of its own
    /// callbacks.
    fn enter(&self) -> Result<Running<'_>> {
        let me = super::sync::current_thread();
        let mut st = lock(&self.state);
        if st.runner.is_some() || st.owner.is_some_and(|t| t != me) {
            return Err(Error::InvalidState);
        }
        st.runner = Some(me);
        Ok(Running { lp: self })
    }

    /// Whether a race or a callback is pending.
    pub(crate) fn has_work(&self) -> bool {
        let st = lock(&self.state);
        !st.races.is_empty()
            || !st.callbacks.is_empty()
            || !st.queued_events.is_empty()
            || st.pools.any_pending()
    }

    /// Call the queued callbacks in order, with no lock held, until none is
    /// left (callbacks may queue more); how many were called.
    fn deliver(&self) -> usize {
        let mut n = 0;
        loop {
            // Pool and group events first, then callbacks: one lock for both.
            let (event, next) = {
                let mut st = lock(&self.state);
                match st.queued_events.pop_front() {
                    Some(event) => (Some(event), None),
                    None => (None, st.callbacks.pop_front()),
                }
            };
            if let Some((_, call)) = event {
                call();
                n += 1;
                continue;
            }
            match next {
                Some((conn, cb)) => {
                    conn.invoke(cb);
                    n += 1;
                }
                None => return n,
            }
        }
    }

    /// The poll timeout that wakes the loop for its next timer; `None` when
    /// no timer is pending. The timerfd wakes the loop on time; this is a
    /// backstop (1 ms late).
    fn timer_backstop(&self, st: &LoopState) -> Option<Duration> {
        let now = self.clock.now();
        st.timers.peek().map(|at| Duration::from_micros(at.saturating_sub(now)) + Duration::from_millis(1))
    }

    /// One turn: deliver queued callbacks, fire due timers, poll once and
    /// handle what it returned, deliver the callbacks that produced. Polls
    /// without waiting when a callback was delivered or is queued, and when
    /// nothing is pending unless `block_when_idle`. Returns the number of
    /// callbacks delivered.
    fn turn(&self, wait: Wait, block_when_idle: bool) -> Result<usize> {
        let mut delivered = self.deliver();
        let timeout = {
            let mut st = lock(&self.state);
            st.wake_ahead = if wait == Wait::No { 0 } else { self.wake_ahead };
            let now = self.clock.now();
            self.fire_timers(&mut st, now);
            self.sync_wake_timer(&mut st);
            let idle = st.races.is_empty();
            if delivered > 0 || !st.callbacks.is_empty() || !st.queued_events.is_empty() || (idle && !block_when_idle) || st.stop_requested {
                Some(Duration::ZERO)
            } else {
                let timer = self.timer_backstop(&st);
                let close = st.timers.peek().is_some_and(|at| at <= now + st.wake_ahead);
                match wait {
                    // Inside the wake-ahead window: poll without sleeping.
                    _ if close => Some(Duration::ZERO),
                    Wait::No => Some(Duration::ZERO),
                    Wait::UpTo(d) => Some(timer.map_or(d, |t| t.min(d))),
                    Wait::Forever => timer,
                }
            }
        };
        self.poll_once(timeout)?;
        delivered += self.deliver();
        Ok(delivered)
    }

    /// Run on the calling thread until no race is pending and every
    /// callback was delivered.
    pub(crate) fn run(&self) -> Result<()> {
        let _running = self.enter()?;
        if self.clock.is_manual() {
            // Time stands still: do everything that is ready, then return
            // (advance the clock and run again for what comes later).
            loop {
                let before = self.progress.load(std::sync::atomic::Ordering::Acquire);
                let delivered = self.turn(Wait::No, false)?;
                let after = self.progress.load(std::sync::atomic::Ordering::Acquire);
                if !self.has_work() || (delivered == 0 && after == before) {
                    return Ok(());
                }
            }
        }
        while self.has_work() {
            self.turn(Wait::Forever, false)?;
        }
        Ok(())
    }

    /// Turns on the calling thread until at least one callback was
    /// delivered, `timeout` passed (`None`: no limit) or nothing is pending
    /// any more. The number of callbacks delivered (0: timeout or idle).
    pub(crate) fn run_once(&self, timeout: Option<Duration>) -> Result<usize> {
        let _running = self.enter()?;
        if self.clock.is_manual() {
            // Time stands still: waiting for a timer would never end.
            return self.turn(Wait::No, false);
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let wait = match deadline {
                None => Wait::Forever,
                Some(d) => Wait::UpTo(d.saturating_duration_since(std::time::Instant::now())),
            };
            let delivered = self.turn(wait, false)?;
            if delivered > 0 || !self.has_work() || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(delivered);
            }
        }
    }

    /// Everything that is due, without blocking: callbacks, timers, socket
    /// events, resolver answers. The number of callbacks delivered.
    pub(crate) fn process(&self) -> Result<usize> {
        let _running = self.enter()?;
        self.turn(Wait::No, false)
    }

    /// The fd that becomes readable when the loop has work: its epoll
    /// instance, in which every socket, the timerfd and the Waker are
    /// registered.
    pub(crate) fn poll_fd(&self) -> RawFd {
        self.registry.as_raw_fd()
    }

    /// How long until the loop needs processing although its fd stays
    /// quiet: zero when callbacks are queued or a timer is due, the time to
    /// the next timer, `None` when no timer is pending.
    pub(crate) fn next_timeout(&self) -> Option<Duration> {
        let mut st = lock(&self.state);
        if !st.callbacks.is_empty() || !st.queued_events.is_empty() {
            return Some(Duration::ZERO);
        }
        self.sync_wake_timer(&mut st);
        let now = self.clock.now();
        // On a manual clock this is the clock's own time to the next timer
        // (what a test advances it by), not a wait in real time.
        st.timers.peek().map(|at| Duration::from_micros(at.saturating_sub(now)))
    }

    /// Whether the loop runs on a thread of its own.
    pub(crate) fn has_thread(&self) -> bool {
        lock(&self.state).owner.is_some()
    }

    /// Start a thread that runs the loop until [`LoopCore::stop_thread`].
    ///
    /// # Errors
    /// [`Error::InvalidState`] when the loop already has a thread, another
    /// thread runs it, or it was freed; [`Error::Io`] when no thread can be
    /// started.
    pub(crate) fn start_thread(self: &Arc<Self>) -> Result<()> {
        let mut st = lock(&self.state);
        if st.shut_down || st.owner.is_some() || st.runner.is_some() || st.stop_requested {
            return Err(Error::InvalidState);
        }
        let lp = Arc::clone(self);
        let handle = std::thread::Builder::new()
            .name("taps-loop".into())
            .spawn(move || lp.thread_main())
            .map_err(io_err)?;
        // Set before the thread can look (it waits for the state lock):
        // from now on only it runs the loop, and calls from any other
        // thread wake it.
        st.owner = Some(handle.thread().id());
        st.runner = st.owner;
        *lock(&self.thread) = Some(handle);
        Ok(())
    }

    /// Stop the loop's thread: pending races end with `establishment_error`
    /// ([`Error::LoopStopped`]) delivered on that thread, then it exits and
    /// is joined. From a callback on the loop's own thread it cannot be
    /// joined: the thread stops after the callback returns.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when the loop has no thread.
    pub(crate) fn stop_thread(&self) -> Result<()> {
        let me = super::sync::current_thread();
        let handle = {
            let mut st = lock(&self.state);
            let Some(owner) = st.owner else { return Err(Error::InvalidState) };
            st.stop_requested = true;
            if owner == me {
                // Detach: the thread finishes on its own.
                drop(lock(&self.thread).take());
                return Ok(());
            }
            self.wake_loop(&st);
            lock(&self.thread).take()
        };
        if let Some(handle) = handle {
            if handle.join().is_err() {
                log::error!("the event loop's thread panicked");
            }
        }
        // Another caller may hold the handle: wait until the thread is done.
        let mut st = lock(&self.state);
        while st.owner.is_some() {
            st = self.stopped.wait(st);
        }
        Ok(())
    }

    /// The body of the loop's own thread.
    fn thread_main(self: Arc<Self>) {
        loop {
            if lock(&self.state).stop_requested {
                break;
            }
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.turn(Wait::Forever, true))) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    log::error!("event loop thread: poll failed ({e}); the thread stops");
                    break;
                }
                Err(_) => log::error!("event loop thread: a callback panicked; the loop goes on"),
            }
        }
        {
            let mut st = lock(&self.state);
            st.stop_requested = true;
            self.stop_races(&mut st);
            self.sync_wake_timer(&mut st);
        }
        // Last callbacks on this thread; new races are refused meanwhile.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.deliver())).is_err() {
            log::error!("event loop thread: a callback panicked while stopping");
        }
        let mut st = lock(&self.state);
        st.owner = None;
        st.runner = None;
        st.stop_requested = false;
        self.stopped.notify_all();
    }
}
