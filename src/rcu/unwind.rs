//! What the crate does when user code panics, or a handle count would
//! overflow.
//!
//! # Invariants
//!
//! - A loop that runs several user destructors which it must all run (a
//!   barrier, a teardown) catches each panic, keeps going, and resumes the
//!   first one at the end ([`FirstPanic`]), unless the thread is already
//!   unwinding: a second panic would abort the process, so the caught one is
//!   dropped instead (the panic hook has already reported it).
//! - Amortized frees (the "free some older work" step of a retirement) never
//!   run while the thread is unwinding ([`may_free`]): what is being
//!   dropped is registered, and nothing else is freed, so an unrelated
//!   panicking destructor cannot turn one panic into an abort.
//! - Handle counts never wrap: an increment that finds the count past
//!   `isize::MAX` aborts, as `Arc` does (so many handles can only come from
//!   `mem::forget` in a loop; no program can hold them).

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// Whether an amortized free may run on this thread now: not while it is
/// unwinding from a panic.
#[inline]
pub(crate) fn may_free() -> bool {
    !std::thread::panicking()
}

/// The first panic caught while running a sequence of destructors.
#[derive(Default)]
pub(crate) struct FirstPanic(Option<Box<dyn Any + Send>>);

impl FirstPanic {
    /// Runs `f`, keeping its panic if it is the first one. Returns `f`'s
    /// value, or `None` if it panicked.
    pub(crate) fn catch<R>(&mut self, f: impl FnOnce() -> R) -> Option<R> {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Some(value),
            Err(payload) => {
                self.0.get_or_insert(payload);
                None
            }
        }
    }

    /// Whether a panic was caught.
    pub(crate) fn caught(&self) -> bool {
        self.0.is_some()
    }

    /// Keeps `payload` if no panic was caught yet (a panic caught
    /// elsewhere, e.g. on the reclaimer thread, resumed from here).
    pub(crate) fn keep(&mut self, payload: Option<Box<dyn Any + Send>>) {
        if let Some(payload) = payload {
            self.0.get_or_insert(payload);
        }
    }

    /// The first panic caught, to be resumed elsewhere.
    pub(crate) fn take(self) -> Option<Box<dyn Any + Send>> {
        self.0
    }

    /// Resumes the first panic caught, if any, unless the thread is already
    /// unwinding (see the module invariants).
    pub(crate) fn resume(self) {
        if let Some(payload) = self.0 {
            if std::thread::panicking() {
                drop(payload);
            } else {
                panic::resume_unwind(payload);
            }
        }
    }
}

/// Aborts if a handle count read `old` before an increment: past
/// `isize::MAX`, it could wrap before every racing increment has checked.
#[inline]
pub(crate) fn check_count(old: usize) {
    if old > isize::MAX as usize {
        count_overflow();
    }
}

#[cold]
#[inline(never)]
fn count_overflow() -> ! {
    eprintln!("ownrcu: a handle count overflowed (handles leaked with mem::forget?); aborting");
    std::process::abort();
}
