//! [`Doorbell`]: how a registration wakes the sleeping reclaimer (or starts
//! it) with no lost wake-up, while costing a registration only a plain
//! load of a shared word when the reclaimer is awake.
//!
//! # Invariants
//!
//! - The status is `RUNNING` while the reclaimer visits domains or sleeps
//!   with a timeout (it will look again by itself), `PARKED` while it may
//!   sleep without one, `STOPPED` while there is no thread (or the one
//!   there was is on its way out). Every change is made under the
//!   `sleeper` lock. It becomes `PARKED` only by the reclaimer itself, and
//!   never from `STOPPED`: a thread told to stop never parks again, and a
//!   ring after `stop` starts a new thread.
//! - No lost wake-up. A registration first makes its work visible in a
//!   lock section `W` (a domain's state lock, an owner's queue lock), then
//!   loads the status. The reclaimer, before it parks, stores `PARKED` and
//!   then looks for work under the same locks (`has_work`, section `L`).
//!   If `L` comes after `W`, the look sees the work and the reclaimer does
//!   not park. Otherwise `W` comes after `L`, so the `PARKED` store
//!   happens before the registration's load (through the lock), which
//!   therefore sees `PARKED` (or a later `RUNNING` from another
//!   registration's wake-up), and rings: under the `sleeper` lock it sets
//!   `RUNNING` and unparks the thread. An unpark that comes before the
//!   park makes the park return at once, so it is never lost either.
//!   Work that a freer popped and puts back (what a bounded free or a
//!   panicking destructor leaves) is made visible again in such a section
//!   too, and rings like a registration: while it was popped, the
//!   reclaimer's look may have found nothing.
//! - At most one ring starts a thread: `STOPPED` is seen and left under
//!   the `sleeper` lock, with the new thread's handle stored at once.
//!
//! `tests/loom/reclaimer.rs` checks this protocol with loom.

use core::sync::atomic::Ordering::Relaxed;

use crate::sync::thread::park;
use crate::sync::{AtomicU8, Mutex};

/// No thread (never started, or stopped).
const STOPPED: u8 = 0;
/// The reclaimer is awake, or sleeps with a timeout.
const RUNNING: u8 = 1;
/// The reclaimer sleeps (or is about to) until a ring wakes it.
const PARKED: u8 = 2;

/// What the doorbell wakes: the reclaimer thread's handle.
#[doc(hidden)]
pub trait Sleeper {
    /// Wakes the thread, or makes its next park return at once.
    fn wake(&self);
}

#[cfg(not(loom))]
impl Sleeper for std::thread::JoinHandle<()> {
    fn wake(&self) {
        self.thread().unpark();
    }
}

#[cfg(loom)]
impl Sleeper for loom::thread::JoinHandle<()> {
    fn wake(&self) {
        self.thread().unpark();
    }
}

/// The reclaimer's doorbell (see the module invariants). Public only in
/// loom builds, for its model.
#[doc(hidden)]
#[derive(Debug)]
pub struct Doorbell<H> {
    status: AtomicU8,
    /// The reclaimer thread, once started.
    sleeper: Mutex<Option<H>>,
}

impl<H: Sleeper> Doorbell<H> {
    /// A doorbell with no thread behind it yet.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Self {
            status: AtomicU8::new(STOPPED),
            sleeper: Mutex::new(None),
        }
    }

    /// A doorbell with no thread behind it yet.
    #[cfg(loom)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            status: AtomicU8::new(STOPPED),
            sleeper: Mutex::new(None),
        }
    }

    fn sleeper(&self) -> crate::sync::MutexGuard<'_, Option<H>> {
        // Nothing panics under this lock but `start`, which leaves the
        // state as it was.
        self.sleeper.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by a registration after the lock section that made its work
    /// visible: wakes the reclaimer if it may be parked, or starts one with
    /// `start` if there is none (`start` may fail: `None`).
    #[inline]
    pub fn ring(&self, start: impl FnOnce() -> Option<H>) {
        if self.status.load(Relaxed) != RUNNING {
            self.ring_slow(start);
        }
    }

    #[cold]
    fn ring_slow(&self, start: impl FnOnce() -> Option<H>) {
        let mut sleeper = self.sleeper();
        match self.status.load(Relaxed) {
            STOPPED => {
                if let Some(handle) = start() {
                    *sleeper = Some(handle);
                    self.status.store(RUNNING, Relaxed);
                }
            }
            PARKED => {
                self.status.store(RUNNING, Relaxed);
                if let Some(handle) = &*sleeper {
                    handle.wake();
                }
            }
            _ => {}
        }
    }

    /// Called by the reclaimer when it found nothing to do: announces that
    /// it parks, then parks unless `has_work` (which looks under the locks
    /// that registrations make their work visible in) finds some.
    /// Returns at once if the doorbell was stopped (the caller exits).
    pub fn sleep(&self, has_work: impl FnOnce() -> bool) {
        {
            let _sleeper = self.sleeper();
            if self.status.load(Relaxed) == STOPPED {
                return;
            }
            self.status.store(PARKED, Relaxed);
        }
        if !has_work() {
            park();
        }
        let _sleeper = self.sleeper();
        // Not if a ring already set it, nor if `stop` did (a new thread may
        // start then; this one is on its way out).
        if self.status.load(Relaxed) == PARKED {
            self.status.store(RUNNING, Relaxed);
        }
    }

    /// Takes the thread's handle and marks the doorbell `STOPPED` (the next
    /// ring starts a new thread); the caller makes the thread exit.
    pub fn stop(&self) -> Option<H> {
        self.stop_if(|_| true)
    }

    /// Whether the doorbell holds a thread's handle that `is_it` accepts: a
    /// reclaimer whose handle `stop` took (or a dying one replaced) exits.
    pub fn holds(&self, is_it: impl FnOnce(&H) -> bool) -> bool {
        self.sleeper().as_ref().is_some_and(is_it)
    }

    /// [`stop`](Doorbell::stop), if the doorbell holds a handle that `is_it`
    /// accepts: a dying reclaimer stops the doorbell only while it still
    /// holds that thread's own handle, never a newer thread's.
    pub fn stop_if(&self, is_it: impl FnOnce(&H) -> bool) -> Option<H> {
        let mut sleeper = self.sleeper();
        if !sleeper.as_ref().is_some_and(is_it) {
            return None;
        }
        self.status.store(STOPPED, Relaxed);
        sleeper.take()
    }
}
