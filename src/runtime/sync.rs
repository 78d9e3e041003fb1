//! The runtime's Mutex and Condvar: `std::sync`'s, or POSIX threads' for
//! the helgrind run, behind one small API.
//!
//! - Default build (the shipped library): `std::sync::Mutex` and
//!   `std::sync::Condvar`. Poisoning is recovered from here, once: a panic
//!   in a user callback never runs under one of these locks (callbacks run
//!   with no lock held), and the state they guard stays consistent at every
//!   unlock, so the data of a poisoned lock is used as it is.
//! - `--cfg taps_pthread_locks` (only the copy of the library that
//!   CMakeLists.txt builds for the helgrind tests `c_loop_shared_helgrind`
//!   and `c_loop_modes_helgrind`): `pthread_mutex_t` and `pthread_cond_t`.
//!   std's locks are futexes that valgrind's helgrind and DRD cannot see,
//!   so every access under one looks like a data race to them; helgrind
//!   understands the pthread ones, so that run checks the runtime's real
//!   locking (the same lock and wait calls at the same places: only what a
//!   lock is made of differs).
//!
//! Both give the same API, so call sites are identical: `lock()` returns
//! the guard, `wait` returns it again, `wait_timeout` returns it with a
//! [`WaitTimeoutResult`]; no `Result` to unwrap. `lock` is on the loop's hot
//! path: it is std's lock plus a branch on the poison flag.
//!
//! A lock must not move while it is locked or waited on; the borrow checker
//! guarantees that (a guard borrows the mutex).

pub(crate) use imp::{Condvar, Mutex, MutexGuard};

thread_local! {
    static THREAD_ID: std::thread::ThreadId = std::thread::current().id();
}

/// The calling thread's id: `std::thread::current().id()` without taking
/// and dropping a reference to the thread's handle (two atomic operations
/// on a shared count, several times per race on the loop's thread).
pub(crate) fn current_thread() -> std::thread::ThreadId {
    THREAD_ID.with(|id| *id)
}

#[cfg(not(taps_pthread_locks))]
mod imp {
    use std::sync::PoisonError;
    use std::time::Duration;

    pub(crate) use std::sync::{MutexGuard, WaitTimeoutResult};

    /// A mutual-exclusion lock: `std::sync::Mutex` that recovers from
    /// poisoning.
    pub(crate) struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// An unlocked mutex (usable in a `static`).
        pub(crate) const fn new(value: T) -> Mutex<T> {
            Mutex(std::sync::Mutex::new(value))
        }
    }

    impl<T: ?Sized> Mutex<T> {
        /// Lock, blocking until the lock is free.
        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Mutex<T> {
            Mutex::new(T::default())
        }
    }

    /// A condition variable (std's: timed waits on CLOCK_MONOTONIC).
    #[derive(Default)]
    pub(crate) struct Condvar(std::sync::Condvar);

    impl Condvar {
        /// A condition variable.
        pub(crate) const fn new() -> Condvar {
            Condvar(std::sync::Condvar::new())
        }

        /// Unlock `guard`'s mutex, wait for a notification, lock again.
        /// Spurious wake-ups happen: wait in a loop.
        #[inline]
        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
        }

        /// As [`Condvar::wait`], for at most `timeout`.
        pub(crate) fn wait_timeout<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            timeout: Duration,
        ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
            self.0.wait_timeout(guard, timeout).unwrap_or_else(PoisonError::into_inner)
        }

        /// Wake one waiter.
        #[inline]
        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        /// Wake every waiter.
        #[inline]
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(taps_pthread_locks)]
mod imp {
    use std::cell::UnsafeCell;
    use std::marker::PhantomData;
    use std::ops::{Deref, DerefMut};
    use std::time::Duration;

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
        /// Lock, blocking until the lock is free.
        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            // SAFETY: raw is an initialised mutex that does not move while borrowed.
            let rc = unsafe { libc::pthread_mutex_lock(self.raw.get()) };
            // Only EINVAL / EDEADLK (not for a default mutex) or EAGAIN
            // (recursive) can fail: none applies to a valid default mutex.
            debug_assert_eq!(rc, 0, "pthread_mutex_lock");
            MutexGuard { mutex: self, _not_send: PhantomData }
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

    /// A condition variable on a `pthread_cond_t`, waiting on
    /// CLOCK_MONOTONIC (CLOCK_REALTIME if its attribute cannot be set).
    pub(crate) struct Condvar {
        // Boxed: initialised in place by pthread_cond_init, never moved.
        raw: Box<UnsafeCell<libc::pthread_cond_t>>,
        /// The clock `raw`'s timed waits measure their deadline on.
        clock: libc::clockid_t,
    }

    // SAFETY: pthread condition variables are made to be shared by threads.
    unsafe impl Send for Condvar {}
    // SAFETY: as above.
    unsafe impl Sync for Condvar {}

    impl Condvar {
        /// A condition variable whose timed waits use CLOCK_MONOTONIC, or
        /// CLOCK_REALTIME (the default of a statically initialised one)
        /// when the attribute cannot be made: then deadlines are computed
        /// on that clock, so timeouts stay right (only a change of the
        /// wall clock can move them).
        pub(crate) fn new() -> Condvar {
            let raw = Box::new(UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER));
            // SAFETY: attr is used only after a successful init and is
            // destroyed after; raw is a valid, boxed (non-moving) condition
            // variable, set back to the static initialiser if init fails.
            let clock = unsafe {
                let mut attr = std::mem::MaybeUninit::<libc::pthread_condattr_t>::uninit();
                if libc::pthread_condattr_init(attr.as_mut_ptr()) != 0 {
                    libc::CLOCK_REALTIME
                } else {
                    let monotonic = libc::pthread_condattr_setclock(attr.as_mut_ptr(), libc::CLOCK_MONOTONIC) == 0
                        && libc::pthread_cond_init(raw.get(), attr.as_ptr()) == 0;
                    libc::pthread_condattr_destroy(attr.as_mut_ptr());
                    if monotonic {
                        libc::CLOCK_MONOTONIC
                    } else {
                        *raw.get() = libc::PTHREAD_COND_INITIALIZER;
                        libc::CLOCK_REALTIME
                    }
                }
            };
            Condvar { raw, clock }
        }

        /// Unlock `guard`'s mutex, wait for a notification, lock again.
        /// Spurious wake-ups happen: wait in a loop.
        #[inline]
        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            // SAFETY: the guard proves this thread holds the mutex.
            unsafe { libc::pthread_cond_wait(self.raw.get(), guard.mutex.raw.get()) };
            guard
        }

        /// As [`Condvar::wait`], for at most `timeout`.
        pub(crate) fn wait_timeout<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            timeout: Duration,
        ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
            let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: valid out-pointer.
            unsafe { libc::clock_gettime(self.clock, &mut now) };
            let ns = now.tv_nsec as u128 + timeout.as_nanos();
            let secs = (now.tv_sec as u128 + ns / 1_000_000_000).min(libc::time_t::MAX as u128);
            let deadline =
                libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: (ns % 1_000_000_000) as libc::c_long };
            // SAFETY: the guard proves this thread holds the mutex.
            let rc = unsafe { libc::pthread_cond_timedwait(self.raw.get(), guard.mutex.raw.get(), &deadline) };
            (guard, WaitTimeoutResult(rc == libc::ETIMEDOUT))
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn mutex_serialises_threads() {
        let m = Arc::new(Mutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 40_000);
    }

    #[test]
    fn condvar_wakes_a_waiter_and_times_out() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p = Arc::clone(&pair);
        let t = std::thread::spawn(move || {
            *p.0.lock() = true;
            p.1.notify_all();
        });
        let mut ready = pair.0.lock();
        while !*ready {
            ready = pair.1.wait(ready);
        }
        drop(ready);
        t.join().unwrap();

        let start = Instant::now();
        let g = pair.0.lock();
        let (_g, r) = pair.1.wait_timeout(g, Duration::from_millis(20));
        assert!(r.timed_out());
        assert!(start.elapsed() >= Duration::from_millis(19));
    }

    #[test]
    fn a_poisoned_lock_is_used_as_it_is() {
        let m = Arc::new(Mutex::new(1u32));
        let m2 = Arc::clone(&m);
        let panicked = std::thread::spawn(move || {
            let mut g = m2.lock();
            *g = 2;
            panic!("poison the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(*m.lock(), 2);
    }
}
