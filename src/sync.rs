//! The one place that chooses between `std` and `loom`.
//!
//! Everything in the crate that takes part in a concurrency protocol imports
//! its atomics, fences, cells, mutexes and thread-locals from here, so that a
//! `--cfg loom` build model-checks exactly the code that ships. Code that is
//! not part of a protocol (statistics, id counters) may use `core` directly.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use std::sync::TryLockError;

/// The crate's full fence: `fence(SeqCst)`, which every ordering argument
/// in the crate assumes where it says "full fence".
///
/// On x86-64 it is a locked no-op on the thread's own stack, as the Linux
/// kernel's `smp_mb()` is: the processor orders a locked instruction with
/// every earlier and later load and store of ordinary (write-back) memory,
/// as it does `mfence`, and it costs less than `mfence` on current
/// processors (the kernel's reason; a reader's entry in fencing mode runs
/// one).
#[inline(always)]
pub(crate) fn full_fence() {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    {
        // Why it is a fence: a locked instruction is ordered with every load
        // and store before and after it (Intel SDM vol. 3, "Memory Ordering
        // in P6 and More Recent Processor Families"), and an `asm!` block
        // without `nomem` is a compiler barrier.
        // SAFETY: it reads and writes back, atomically and unchanged, four
        // bytes of this thread's stack just below the stack pointer, which an
        // `asm!` block without `nostack` may use; it changes only the flags.
        unsafe {
            core::arch::asm!("lock or dword ptr [rsp - 8], 0");
        }
    }
    #[cfg(all(not(all(target_arch = "x86_64", not(miri))), not(loom)))]
    std::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    #[cfg(loom)]
    loom::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// Parking a thread.
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::park;
    #[cfg(not(loom))]
    pub(crate) use std::thread::park;
}

/// One step of a wait loop: spin, then yield (loom must always be told).
pub(crate) fn snooze(backoff: &crossbeam_utils::Backoff) {
    #[cfg(loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    backoff.snooze();
}

/// Yields the processor (loom must be told explicitly).
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// An `UnsafeCell` whose accesses loom can check for data races.
///
/// The API is closure-based, like loom's: `with` for shared access and
/// `with_mut` for exclusive access. Callers uphold the aliasing rules.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(
    #[cfg(not(loom))] core::cell::UnsafeCell<T>,
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        return Self(core::cell::UnsafeCell::new(value));
        #[cfg(loom)]
        return Self(loom::cell::UnsafeCell::new(value));
    }

    /// Runs `f` with a shared pointer to the contents.
    ///
    /// Nobody may write to the contents for the duration of `f`.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.0.get());
        #[cfg(loom)]
        return self.0.with(f);
    }

    /// Runs `f` with a mutable pointer to the contents.
    ///
    /// The caller must have exclusive access for the duration of `f`.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.0.get());
        #[cfg(loom)]
        return self.0.with_mut(f);
    }
}
