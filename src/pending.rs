//! What every owner keeps besides its data: its domain, and the objects
//! retired through it that still wait for a grace period.
//!
//! # Invariants
//!
//! - Objects retired through an owner stay in the owner's own queue, each
//!   unit tagged with the grace period of the owner's domain it waits for;
//!   the domain never holds work for an owner. So the owner alone decides
//!   when they are freed: after their grace period (`collect`, `barrier`),
//!   or directly once no reader of the owner can exist (the last user's
//!   teardown, or exclusive access), with no grace period at all.
//! - Units are queued in registration order, and each takes its grace
//!   period under the queue's lock, so grace periods never decrease along
//!   the queue.
//! - Queued units are freed by whoever holds the `freeing` lock, one thread
//!   at a time per owner: a unit is off the queue only while that lock is
//!   held (or while the owner's only user frees them directly, when no
//!   other thread can reach the owner at all). So `barrier`, which takes it, knows every unit it waited for is
//!   either freed or still queued, never half-way on another thread. Lock
//!   order: `freeing`, then `pending`, then the domain's state.

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};

use crate::internal::{try_lock, COLLECT_BUDGET};
use crate::retired::Reclaim;
use crate::sync::{Mutex, MutexGuard};
use crate::Domain;

/// A snapshot of an owner's counters, from [`User::stats`](crate::User::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnerStats {
    /// Objects retired through the owner.
    pub retired: u64,
    /// Retired objects freed after a grace period.
    pub freed_after_grace_period: u64,
    /// Retired objects freed directly, with no grace period, because no
    /// reader could exist (teardown or exclusive access).
    pub freed_directly: u64,
    /// Retired objects not freed yet.
    pub pending: u64,
    /// Batches drained through the owner.
    pub batches: u64,
    /// Grace-period registrations: one per batch or single retirement.
    pub registrations: u64,
}

/// An owner's domain handle and its queue of retired objects.
pub(crate) struct Pending {
    pub(crate) domain: Domain,
    pending: Mutex<VecDeque<(u64, Box<dyn Reclaim>)>>,
    /// Held by whoever frees queued units; see the module docs.
    freeing: Mutex<()>,
    retired: AtomicU64,
    freed_after: AtomicU64,
    freed_direct: AtomicU64,
    batches: AtomicU64,
    registrations: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every step pops before it frees, so a panicking destructor leaves the
    // queue consistent: poisoning is ignored.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pending {
    pub(crate) fn new(domain: &Domain) -> Self {
        Self {
            domain: domain.clone(),
            pending: Mutex::new(VecDeque::new()),
            freeing: Mutex::new(()),
            retired: AtomicU64::new(0),
            freed_after: AtomicU64::new(0),
            freed_direct: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            registrations: AtomicU64::new(0),
        }
    }

    /// Queues a unit for the next grace period of the owner's domain (one
    /// registration), then frees a bounded amount of completed work.
    pub(crate) fn register(&self, unit: Box<dyn Reclaim>, batch: bool) {
        self.retired.fetch_add(unit.len() as u64, Relaxed);
        self.registrations.fetch_add(1, Relaxed);
        if batch {
            self.batches.fetch_add(1, Relaxed);
        }
        {
            let mut pending = lock(&self.pending);
            let gp = self.domain.inner().register_owned(unit.len());
            pending.push_back((gp, unit));
        }
        self.collect(COLLECT_BUDGET);
    }

    /// Frees up to `budget` objects whose grace period has completed, unless
    /// another thread (or a destructor up our own stack) is freeing them.
    fn collect(&self, budget: usize) {
        if let Some(_freeing) = try_lock(&self.freeing) {
            let _mark = crate::local::owner_freeing(self.key());
            self.collect_locked(budget, u64::MAX);
        }
    }

    /// This owner's key for `local::owner_freeing`: its queue's address.
    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// `collect`, with the `freeing` lock held, of units that wait for grace
    /// period `up_to` or an earlier one.
    fn collect_locked(&self, budget: usize, up_to: u64) {
        let inner = self.domain.inner();
        let mut left = budget;
        while left > 0 {
            let (gp, unit) = {
                let mut pending = lock(&self.pending);
                match pending.front() {
                    Some(&(gp, _)) if gp <= up_to && inner.is_complete(gp) => {
                        pending.pop_front().unwrap()
                    }
                    _ => return,
                }
            };
            // SAFETY: the unit's grace period has completed.
            left = left.saturating_sub(unsafe { self.free(gp, unit, left, false) }.max(1));
        }
    }

    /// Frees `max` objects of `unit`, counting them; what is left (also after
    /// a panicking destructor) goes back to the front of the queue.
    ///
    /// # Safety
    ///
    /// The unit's grace period has completed, or (`direct`) no reader of the
    /// owner can exist.
    unsafe fn free(&self, gp: u64, unit: Box<dyn Reclaim>, max: usize, direct: bool) -> usize {
        let before = unit.len();
        let mut unit = scopeguard::guard(unit, |unit| {
            let freed = (before - unit.len()) as u64;
            let counter = if direct {
                &self.freed_direct
            } else {
                &self.freed_after
            };
            counter.fetch_add(freed, Relaxed);
            if unit.len() > 0 {
                lock(&self.pending).push_front((gp, unit));
            }
        });
        // SAFETY: forwarded from this function's contract.
        unsafe { unit.free(max) };
        before - unit.len()
    }

    /// Frees a unit right here, counting it as retired and freed after a
    /// grace period: the caller waited for one itself (`synchronize`). No
    /// registration. Objects left by a panicking destructor are queued as
    /// complete, for the next collection.
    ///
    /// # Safety
    ///
    /// Every object in the unit was unlinked before a grace period of the
    /// owner's domain that has completed.
    pub(crate) unsafe fn free_synchronized(&self, unit: Box<dyn Reclaim>) {
        self.retired.fetch_add(unit.len() as u64, Relaxed);
        // SAFETY: forwarded; grace period 0 is complete from the start.
        unsafe { self.free(0, unit, usize::MAX, false) };
    }

    /// Waits for the grace period of everything queued, then frees it.
    /// Keeps going past panicking destructors, then resumes the first panic.
    ///
    /// # Panics
    ///
    /// If called from a destructor this owner is running (it would wait for
    /// itself).
    pub(crate) fn barrier(&self) {
        assert!(
            !crate::local::is_owner_freeing(self.key()),
            "ownrcu: User::barrier() called from a destructor that the same owner is \
             running; it would wait for itself: call it after the destructor returns"
        );
        // The back unit has the latest grace period (see the module docs).
        // (None: nothing queued; a unit may still be in another thread's
        // hands, which the `freeing` lock below waits for.)
        let up_to = lock(&self.pending).back().map_or(0, |&(gp, _)| gp);
        if up_to > 0 {
            self.domain.inner().wait_for(up_to);
        }
        // Taking `freeing` waits for frees in progress on other threads, so
        // everything queued before the call is now either freed or still
        // queued, and complete. `collect_locked` returns once its front is
        // a later registration (or the queue is empty): it does not chase
        // what other threads keep retiring. A panicking destructor's unit
        // goes back to the front, still complete, and the next round goes on
        // with it.
        let _freeing = lock(&self.freeing);
        let _mark = crate::local::owner_freeing(self.key());
        let mut first_panic = None;
        while let Err(payload) =
            panic::catch_unwind(AssertUnwindSafe(|| self.collect_locked(usize::MAX, up_to)))
        {
            first_panic.get_or_insert(payload);
        }
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }

    /// Frees everything queued, directly: no reader of the owner can exist.
    /// Keeps going past panicking destructors, then resumes the first panic.
    ///
    /// # Safety
    ///
    /// No reader of the owner can exist (the last user is tearing it down,
    /// or holds it exclusively).
    pub(crate) unsafe fn free_directly(&self) {
        let mut first_panic = None;
        loop {
            let Some((gp, unit)) = lock(&self.pending).pop_front() else {
                break;
            };
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: forwarded from this function's contract.
                unsafe { self.free(gp, unit, usize::MAX, true) }
            }));
            if let Err(payload) = result {
                first_panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }

    pub(crate) fn stats(&self) -> OwnerStats {
        let retired = self.retired.load(Relaxed);
        let after = self.freed_after.load(Relaxed);
        let direct = self.freed_direct.load(Relaxed);
        OwnerStats {
            retired,
            freed_after_grace_period: after,
            freed_directly: direct,
            pending: retired.saturating_sub(after + direct),
            batches: self.batches.load(Relaxed),
            registrations: self.registrations.load(Relaxed),
        }
    }
}
