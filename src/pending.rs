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
//!   the queue, and `latest` (kept under the same lock) is the grace period
//!   of the last registration: what `barrier` must wait for, even when the
//!   unit that took it is in another thread's hands at that moment.
//! - Registering and freeing are separate steps: a retirement first queues
//!   everything it holds, then frees a bounded amount of older work, and
//!   only when the thread is not unwinding (module `unwind`). So a
//!   panicking destructor in that free leaves nothing unqueued.
//! - Queued units are freed by whoever holds the `freeing` lock, one thread
//!   at a time per owner: a unit is off the queue only while that lock is
//!   held (or while the owner's only user frees them directly, when no
//!   other thread can reach the owner at all). So `barrier`, which takes
//!   it, knows every unit it waited for is either freed or still queued,
//!   never half-way on another thread. Lock order: `freeing`, then
//!   `queue`, then the domain's state.
//! - Every count an owner keeps is also added to its domain's sum over
//!   its owners ([`Stats::owners`](crate::Stats::owners)), which outlives
//!   the owners.

use std::collections::VecDeque;

use crate::internal::{try_lock, Throttled, COLLECT_BUDGET};
use crate::retired::Reclaim;
use crate::stats::{OwnerCounters, OwnerStats};
use crate::sync::{Mutex, MutexGuard};
use crate::unwind::{may_free, FirstPanic};
use crate::Domain;

/// An owner's domain handle and its queue of retired objects.
pub(crate) struct Pending {
    pub(crate) domain: Domain,
    queue: Mutex<Queue>,
    /// Held by whoever frees queued units; see the module docs.
    freeing: Mutex<()>,
    /// This owner's counters; the domain keeps the sum over its owners.
    counters: OwnerCounters,
}

/// Units waiting for their grace period, oldest first.
struct Queue {
    units: VecDeque<(u64, Box<dyn Reclaim>)>,
    /// The grace period the last registration waits for (0: none yet).
    latest: u64,
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
            queue: Mutex::new(Queue {
                units: VecDeque::new(),
                latest: 0,
            }),
            freeing: Mutex::new(()),
            counters: OwnerCounters::new(),
        }
    }

    /// Counts in this owner's counters and in its domain's sum of them.
    fn count(&self, f: impl Fn(&OwnerCounters)) {
        f(&self.counters);
        f(self.domain.inner().owner_counters());
    }

    /// Queues a unit for the next grace period of the owner's domain (one
    /// registration), then frees a bounded amount of completed work, or
    /// applies backpressure if the owner is past its bound.
    pub(crate) fn register(&self, unit: Box<dyn Reclaim>, batch: bool) {
        self.enqueue(unit, batch);
        self.after_registration();
    }

    /// [`register`](Pending::register), then starts the grace period now
    /// (`call_rcu_hurry`).
    pub(crate) fn register_hurry(&self, unit: Box<dyn Reclaim>, batch: bool) {
        self.enqueue(unit, batch);
        self.domain.inner().hurry();
        self.after_registration();
    }

    /// What a registration does once its unit is queued.
    pub(crate) fn after_registration(&self) {
        if Throttled::over_bound(self) {
            self.domain.inner().throttle(Some(self));
        } else if self.domain.inner().config().retiring_threads_free {
            self.collect(COLLECT_BUDGET);
        }
    }

    /// Queues a unit for the next grace period of the owner's domain (one
    /// registration), freeing nothing: a caller that registers several
    /// units queues all but the last with this, then the last with
    /// [`register`](Pending::register), so a panicking destructor in its
    /// free cannot leave any of them unqueued.
    pub(crate) fn enqueue(&self, unit: Box<dyn Reclaim>, batch: bool) {
        let objects = unit.len();
        self.count(|c| c.retired(objects, true, batch));
        let mut queue = lock(&self.queue);
        let gp = self.domain.inner().register_owned(objects);
        queue.latest = gp;
        queue.units.push_back((gp, unit));
    }

    /// Frees up to `budget` objects whose grace period has completed, unless
    /// another thread (or a destructor up our own stack) is freeing them,
    /// or this thread is unwinding (module `unwind`).
    fn collect(&self, budget: usize) {
        if !may_free() {
            return;
        }
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
    /// period `up_to` or an earlier one; returns how many objects it freed.
    fn collect_locked(&self, budget: usize, up_to: u64) -> usize {
        let inner = self.domain.inner();
        let mut left = budget;
        let mut total = 0;
        while left > 0 {
            let (gp, unit) = {
                let mut queue = lock(&self.queue);
                match queue.units.front() {
                    Some(&(gp, _)) if gp <= up_to && inner.is_complete(gp) => {
                        queue.units.pop_front().unwrap()
                    }
                    _ => return total,
                }
            };
            // SAFETY: the unit's grace period has completed.
            let freed = unsafe { self.free(gp, unit, left, false) };
            total += freed;
            left = left.saturating_sub(freed.max(1));
        }
        total
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
            self.count(|c| c.freed(before - unit.len(), direct));
            if unit.len() > 0 {
                lock(&self.queue).units.push_front((gp, unit));
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
        let objects = unit.len();
        self.count(|c| c.retired(objects, false, false));
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
        // The latest grace period any registration before this call took
        // (see the module docs): not the back of the queue, which misses a
        // unit that another thread's collect has popped and may push back.
        let up_to = lock(&self.queue).latest;
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
        let mut first_panic = FirstPanic::default();
        while first_panic
            .catch(|| self.collect_locked(usize::MAX, up_to))
            .is_none()
        {}
        first_panic.resume();
    }

    /// Frees everything queued, directly: no reader of the owner can exist.
    /// Keeps going past panicking destructors, then resumes the first panic.
    ///
    /// # Safety
    ///
    /// No reader of the owner can exist (the last user is tearing it down,
    /// or holds it exclusively).
    pub(crate) unsafe fn free_directly(&self) {
        let mut first_panic = FirstPanic::default();
        loop {
            let Some((gp, unit)) = lock(&self.queue).units.pop_front() else {
                break;
            };
            // SAFETY: forwarded from this function's contract.
            first_panic.catch(|| unsafe { self.free(gp, unit, usize::MAX, true) });
        }
        first_panic.resume();
    }

    pub(crate) fn stats(&self) -> OwnerStats {
        self.counters.snapshot()
    }
}

impl Throttled for Pending {
    fn free_inline(&self) -> usize {
        if !self.domain.inner().config().retiring_threads_free {
            return 0;
        }
        let _freeing = lock(&self.freeing);
        let _mark = crate::local::owner_freeing(self.key());
        self.collect_locked(usize::MAX, u64::MAX)
    }

    fn over_bound(&self) -> bool {
        let bound = self.domain.inner().config().owner_max_pending;
        self.counters.snapshot().pending > bound as u64
    }
}
