//! The loop's clock and its precise wake-up timer.
//!
//! Time is µs on CLOCK_MONOTONIC since the loop was created. The wake-up is
//! a timerfd armed at the absolute time of the earliest deadline, so attempt
//! starts are not rounded up to the millisecond the way an epoll timeout is.

use crate::engine::Micros;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// How long before a deadline the loop stops sleeping when the library
/// itself waits (run, run_once, its own thread), in µs. A timer that wakes
/// an idle CPU fires 50–100 µs late on a virtual machine, and the code and
/// data the attempt needs are cold; polling without sleeping for the last
/// 200 µs starts the attempt within a few µs of its deadline. It costs at
/// most that much CPU per deadline, only when the loop has nothing else to
/// do. Embedded loops (event_loop_process) sleep until the deadline itself.
pub(crate) const WAKE_AHEAD: Micros = 200;

/// Monotonic time in ns.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// µs since the clock's creation on CLOCK_MONOTONIC, or a manual clock
/// that only moves when told to (for tests that drive time exactly).
#[derive(Debug)]
pub(crate) struct Clock {
    base_ns: u64,
    manual: Option<std::sync::atomic::AtomicU64>,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock { base_ns: monotonic_ns(), manual: None }
    }

    /// A clock at 0 that moves only with [`Clock::advance`].
    pub(crate) fn manual() -> Clock {
        Clock { base_ns: 0, manual: Some(std::sync::atomic::AtomicU64::new(0)) }
    }

    pub(crate) fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Move a manual clock forward by `us`; no effect on a real one.
    pub(crate) fn advance(&self, us: Micros) {
        if let Some(m) = &self.manual {
            // Saturating: the clock never runs backwards.
            let _ = m.fetch_update(std::sync::atomic::Ordering::AcqRel, std::sync::atomic::Ordering::Acquire, |t| {
                Some(t.saturating_add(us))
            });
        }
    }

    /// Now, in µs since the clock's creation.
    pub(crate) fn now(&self) -> Micros {
        match &self.manual {
            Some(m) => m.load(std::sync::atomic::Ordering::Acquire),
            None => (monotonic_ns() - self.base_ns) / 1000,
        }
    }

    fn to_timespec(&self, at: Micros) -> libc::timespec {
        let ns = self.base_ns + at * 1000;
        libc::timespec { tv_sec: (ns / 1_000_000_000) as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long }
    }
}

/// A timerfd on CLOCK_MONOTONIC, armed at absolute times.
#[derive(Debug)]
pub(crate) struct WakeTimer {
    fd: OwnedFd,
    armed: Option<Micros>,
}

impl WakeTimer {
    pub(crate) fn new() -> io::Result<WakeTimer> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(WakeTimer { fd: unsafe { OwnedFd::from_raw_fd(fd) }, armed: None })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Where it is armed (absolute), if it is.
    pub(crate) fn armed(&self) -> Option<Micros> {
        self.armed
    }

    /// Arm at `at` (absolute, on `clock`), or disarm with `None`. No syscall
    /// when nothing changes.
    pub(crate) fn arm(&mut self, clock: &Clock, at: Option<Micros>) {
        // A manual clock's deadlines fire when the clock is advanced.
        let at = if clock.is_manual() { None } else { at };
        if self.armed == at {
            return;
        }
        self.armed = at;
        let value = match at {
            // An all-zero it_value disarms; the earliest real time is 1 ns.
            Some(t) => {
                let ts = clock.to_timespec(t);
                if ts.tv_sec == 0 && ts.tv_nsec == 0 { libc::timespec { tv_sec: 0, tv_nsec: 1 } } else { ts }
            }
            None => libc::timespec { tv_sec: 0, tv_nsec: 0 },
        };
        let spec = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: value };
        // SAFETY: valid fd and itimerspec; failure only leaves the poll timeout as the backstop.
        let rc = unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut()) };
        if rc != 0 {
            log::warn!("timerfd_settime failed: {}", io::Error::last_os_error());
        }
    }

    /// Consume an expiry so that the fd stops being readable.
    pub(crate) fn acknowledge(&mut self) {
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into a local buffer from a nonblocking fd.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        self.armed = None;
    }
}
