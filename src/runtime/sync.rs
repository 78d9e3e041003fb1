//! Mutex and Condvar on POSIX threads, with the interface of the std ones
//! that the driver uses.
//!
//! Why not `std::sync`: std's locks are futexes that race checkers working
//! on the binary (valgrind's helgrind and DRD) cannot see, so every access
//! under such a lock looks like a data race to them. These locks are
//! `pthread_mutex_t` and `pthread_cond_t`, which helgrind understands, so the
//! concurrency test (`c_loop_threads_helgrind`) checks the driver's real
//! locking. Native cost is the same (glibc's mutex is a futex too).
//!
//! `lock` and `wait` return [`LockResult`] like std's, never poisoned (the
//! driver recovers from poisoning anyway), so code written for std's locks
//! compiles unchanged.
//!
//! A lock must not move while it is locked or waited on; the borrow checker
//! guarantees that (a guard borrows the mutex). The driver's locks live in
//! `Arc`s and statics and do not move after their first use.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::LockResult;
use std::time::Duration;

thread_local! {
    static THREAD_ID: std::thread::ThreadId = std::thread::current().id();
}

/// The calling thread's id: `std::thread::current().id()` without taking
/// and dropping a reference to the thread's handle (two atomic operations
/// on a shared count, several times per race on the loop's thread).
pub(crate) fn current_thread() -> std::thread::ThreadId {
    THREAD_ID.with(|id| *id)
}

/// A mutual-exclusion lock on a `pthread_mutex_t`.
pub(crate) struct Mutex<T: ?Sized> {
    raw: UnsafeCell<libc::pthread_mutex_t>,
    data: UnsafeCell<T>,
}

// SAFETY: the pthread mutex serialises access to `data`, as std's Mutex.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above: `&Mutex<T>` hands out `&mut T` only under the lock.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex (usable in a `static`).
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex { raw: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER), data: UnsafeCell::new(value) }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Lock, blocking until the lock is free. Never poisoned: always `Ok`.
    pub(crate) fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        // SAFETY: raw is an initialised mutex that does not move while borrowed.
        let rc = unsafe { libc::pthread_mutex_lock(self.raw.get()) };
        // Only EINVAL / EDEADLK (not for a default mutex) or EAGAIN
        // (recursive) can fail: none applies to a valid default mutex.
        debug_assert_eq!(rc, 0, "pthread_mutex_lock");
        Ok(MutexGuard { mutex: self, _not_send: PhantomData })
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized> Drop for Mutex<T> {
    fn drop(&mut self) {
        // SAFETY: not locked (we have &mut self); destroying tells race
        // checkers that the address may be reused.
        unsafe { libc::pthread_mutex_destroy(self.raw.get()) };
    }
}

/// Holds a [`Mutex`] locked; unlocks when dropped. Not `Send`: a pthread
/// mutex is unlocked by the thread that locked it.
pub(crate) struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    _not_send: PhantomData<*mut ()>,
}

// SAFETY: sharing `&MutexGuard` shares `&T`, as std's guard.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held, and the guard is borrowed mutably.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this thread holds the lock.
        unsafe { libc::pthread_mutex_unlock(self.mutex.raw.get()) };
    }
}

/// Whether [`Condvar::wait_timeout`] returned because the time ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True when the wait ended by timeout.
    pub(crate) fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable on a `pthread_cond_t` waiting on CLOCK_MONOTONIC.
pub(crate) struct Condvar {
    // Boxed: initialised in place by pthread_cond_init, never moved.
    raw: Box<UnsafeCell<libc::pthread_cond_t>>,
}

// SAFETY: pthread condition variables are made to be shared by threads.
unsafe impl Send for Condvar {}
// SAFETY: as above.
unsafe impl Sync for Condvar {}

impl Condvar {
    /// A condition variable whose timed waits use CLOCK_MONOTONIC.
    pub(crate) fn new() -> Condvar {
        let raw = Box::new(UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER));
        // SAFETY: attr is initialised before use and destroyed after;
        // raw is a valid, boxed (non-moving) condition variable.
        unsafe {
            let mut attr: libc::pthread_condattr_t = std::mem::zeroed();
            if libc::pthread_condattr_init(&mut attr) == 0 {
                libc::pthread_condattr_setclock(&mut attr, libc::CLOCK_MONOTONIC);
                libc::pthread_cond_init(raw.get(), &attr);
                libc::pthread_condattr_destroy(&mut attr);
            }
        }
        Condvar { raw }
    }

    /// Unlock `guard`'s mutex, wait for a notification, lock again.
    /// Spurious wake-ups happen: wait in a loop. Always `Ok`.
    pub(crate) fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        // SAFETY: the guard proves this thread holds the mutex.
        unsafe { libc::pthread_cond_wait(self.raw.get(), guard.mutex.raw.get()) };
        Ok(guard)
    }

    /// As [`Condvar::wait`], for at most `timeout`. Always `Ok`.
    pub(crate) fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let ns = now.tv_nsec as u128 + timeout.as_nanos();
        let secs = (now.tv_sec as u128 + ns / 1_000_000_000).min(libc::time_t::MAX as u128);
        let deadline = libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long };
        // SAFETY: the guard proves this thread holds the mutex.
        let rc = unsafe { libc::pthread_cond_timedwait(self.raw.get(), guard.mutex.raw.get(), &deadline) };
        Ok((guard, WaitTimeoutResult(rc == libc::ETIMEDOUT)))
    }

    /// Wake one waiter.
    pub(crate) fn notify_one(&self) {
        // SAFETY: valid condition variable.
        unsafe { libc::pthread_cond_signal(self.raw.get()) };
    }

    /// Wake every waiter.
    pub(crate) fn notify_all(&self) {
        // SAFETY: valid condition variable.
        unsafe { libc::pthread_cond_broadcast(self.raw.get()) };
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl Drop for Condvar {
    fn drop(&mut self) {
        // SAFETY: nobody waits (we have &mut self).
        unsafe { libc::pthread_cond_destroy(self.raw.get()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn mutex_serialises_threads() {
        let m = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 40_000);
    }

    #[test]
    fn condvar_wakes_a_waiter_and_times_out() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p = Arc::clone(&pair);
        let t = std::thread::spawn(move || {
            *p.0.lock().unwrap() = true;
            p.1.notify_all();
        });
        let mut ready = pair.0.lock().unwrap();
        while !*ready {
            ready = pair.1.wait(ready).unwrap();
        }
        drop(ready);
        t.join().unwrap();

        let start = Instant::now();
        let g = pair.0.lock().unwrap();
        let (_g, r) = pair.1.wait_timeout(g, Duration::from_millis(20)).unwrap();
        assert!(r.timed_out());
        assert!(start.elapsed() >= Duration::from_millis(19));
    }
}
