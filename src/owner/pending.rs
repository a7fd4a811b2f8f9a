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
//! - The queue lives in its own allocation ([`OwnerQueue`]), without the
//!   domain handle, so the reclaimer thread can hold it weakly and free
//!   its completed units (module `reclaimer`): holding it never keeps the
//!   domain alive, and the owner's teardown still frees everything before
//!   it returns, because the direct free takes the `freeing` lock too
//!   (unless this thread already holds it, freeing this owner's objects).
//!   Inside any destructor run it only tries the lock (waiting could close
//!   a cycle of two such runs); then the queue is marked `dead`, and every
//!   holder of `freeing`, once it lets go, frees what a dead queue holds.
//! - That allocation is made by the owner's first retirement, and never
//!   replaced: an owner that retires nothing costs one allocation and its
//!   teardown only drops its data. With no queue there is nothing to wait
//!   for, free or resume.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use crate::rcu::for_owners::{
    lock_within, may_free, try_lock, FirstPanic, Inner, OwnerCounters, OwnerStats, Reclaim, Served,
    Throttled, Visited, COLLECT_BUDGET,
};
use crate::sync::{AtomicPtr, Mutex, MutexGuard};
use crate::Domain;

/// An owner's domain handle and its queue of retired objects.
pub(crate) struct Pending {
    pub(crate) domain: Domain,
    /// Null until the first retirement, then an `Arc<OwnerQueue>` (from
    /// `Arc::into_raw`) that this owner holds until it is dropped; shared
    /// with the reclaimer (weakly). See the module docs.
    queue: AtomicPtr<OwnerQueue>,
}

/// An owner's retired objects, and who is freeing them.
pub(crate) struct OwnerQueue {
    queue: Mutex<Queue>,
    /// Held by whoever frees queued units; see the module docs.
    freeing: Mutex<()>,
    /// This owner's counters; the domain keeps the sum over its owners.
    counters: OwnerCounters,
    /// Whether the reclaimer knows this queue.
    served: AtomicBool,
    /// A destructor's panic caught on the reclaimer thread, for the next
    /// `barrier` or direct free to resume on a user's thread.
    panicked: Mutex<Option<Box<dyn Any + Send>>>,
}

/// Units waiting for their grace period, oldest first.
struct Queue {
    units: VecDeque<(u64, Box<dyn Reclaim>)>,
    /// The grace period the last registration waits for (0: none yet).
    latest: u64,
    /// The last user is gone: no reader can exist, every unit may be freed
    /// directly (by the teardown, or by the holder of `freeing` it found).
    dead: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every step pops before it frees, so a panicking destructor leaves the
    // queue consistent: poisoning is ignored.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pending {
    #[inline]
    pub(crate) fn new(domain: &Domain) -> Self {
        Self {
            domain: domain.clone(),
            queue: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// The queue, if a retirement made it.
    #[inline]
    fn queue(&self) -> Option<&OwnerQueue> {
        // Acquire: pairs with the publishing CAS in `queue_or_make`.
        let queue = self.queue.load(Acquire);
        // SAFETY: non-null, it came from `Arc::into_raw` and this owner
        // holds that reference until it is dropped (`Drop`), which the
        // borrow of `self` rules out until then.
        unsafe { queue.as_ref() }
    }

    /// The queue, made now if no retirement made it yet.
    fn queue_or_make(&self) -> &OwnerQueue {
        if let Some(queue) = self.queue() {
            return queue;
        }
        self.make_queue()
    }

    #[cold]
    fn make_queue(&self) -> &OwnerQueue {
        let made = Arc::into_raw(Arc::new(OwnerQueue {
            queue: Mutex::new(Queue {
                units: VecDeque::new(),
                latest: 0,
                dead: false,
            }),
            freeing: Mutex::new(()),
            counters: OwnerCounters::new(),
            served: AtomicBool::new(false),
            panicked: Mutex::new(None),
        }))
        .cast_mut();
        // AcqRel: publishes the new queue (Release), or sees the one that
        // another first retirement published (Acquire).
        let queue = match self
            .queue
            .compare_exchange(core::ptr::null_mut(), made, AcqRel, Acquire)
        {
            Ok(_) => made,
            Err(theirs) => {
                // SAFETY: `made` came from `Arc::into_raw` above and was
                // never published: this is its only reference.
                drop(unsafe { Arc::from_raw(made) });
                theirs
            }
        };
        // SAFETY: as in `queue`: published, held until the owner drops.
        unsafe { &*queue }
    }

    /// The reclaimer's weak reference to the queue, which a retirement
    /// made.
    fn weak_queue(&self) -> std::sync::Weak<dyn Served> {
        // The pointer `Arc::into_raw` returned, not one derived from a
        // reference to the queue: `from_raw` reaches the counts before it.
        let queue = self.queue.load(Acquire);
        debug_assert!(!queue.is_null(), "called after a retirement made it");
        // SAFETY: non-null, it came from `Arc::into_raw` and this owner
        // holds that reference (see `queue`); `ManuallyDrop` leaves it held.
        let arc = core::mem::ManuallyDrop::new(unsafe { Arc::from_raw(queue) });
        Arc::downgrade(&*arc) as _
    }

    fn inner(&self) -> &Inner {
        self.domain.inner()
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
        self.inner().hurry();
        self.after_registration();
    }

    /// What a registration does once its unit is queued.
    pub(crate) fn after_registration(&self) {
        if Throttled::over_bound(self) {
            self.inner().throttle(Some(self));
        } else if self.inner().config().retiring_threads_free && self.collect(COLLECT_BUDGET) == 0 {
            let soft = self.inner().config().soft_max_pending;
            if Throttled::pending(self) > soft as u64 {
                self.inner().pace(Some(self));
            }
        }
    }

    /// Queues a unit for the next grace period of the owner's domain (one
    /// registration), freeing nothing: a caller that registers several
    /// units queues all but the last with this, then the last with
    /// [`register`](Pending::register), so a panicking destructor in its
    /// free cannot leave any of them unqueued.
    pub(crate) fn enqueue(&self, unit: Box<dyn Reclaim>, batch: bool) {
        let inner = self.inner();
        let q = self.queue_or_make();
        // Served only while the reclaimer is on: a queue registered with a
        // domain while it is off would sit in the domain's list unvisited.
        if inner.config().reclaimer
            && crate::Reclaimer::is_enabled()
            && !q.served.swap(true, Relaxed)
        {
            inner.serve(self.weak_queue());
        }
        let objects = unit.len();
        q.count(inner, |c| c.retired(objects, true, batch));
        {
            let mut queue = lock(&q.queue);
            let gp = inner.register_owned(objects);
            queue.latest = gp;
            queue.units.push_back((gp, unit));
        }
        // After the push, outside the queue lock (module `reclaimer`).
        crate::rcu::for_owners::notify(inner);
    }

    /// Frees up to `budget` objects whose grace period has completed, unless
    /// another thread (or a destructor up our own stack) is freeing them,
    /// or this thread is unwinding (module `unwind`); returns how many.
    fn collect(&self, budget: usize) -> usize {
        if !may_free() {
            return 0;
        }
        let Some(q) = self.queue() else {
            return 0;
        };
        let Some(freeing) = try_lock(&q.freeing) else {
            return 0;
        };
        let inner = self.inner();
        q.run_locked(inner, freeing, || q.collect_locked(inner, budget, u64::MAX))
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
        let (q, inner) = (self.queue_or_make(), self.inner());
        q.count(inner, |c| c.retired(objects, false, false));
        // SAFETY: forwarded; grace period 0 is complete from the start.
        unsafe { q.free(inner, 0, unit, usize::MAX, false) };
    }

    /// Waits for the grace period of everything queued, then frees it.
    /// Keeps going past panicking destructors, then resumes the first panic
    /// (or one the reclaimer caught).
    ///
    /// # Panics
    ///
    /// If called from a destructor of any domain or owner
    /// ([`Domain::barrier`]'s rule).
    pub(crate) fn barrier(&self) {
        assert!(
            !crate::rcu::for_owners::is_freeing_any(),
            "{}",
            crate::rcu::for_owners::BARRIER_IN_DESTRUCTOR
        );
        let Some(q) = self.queue() else {
            return; // nothing was ever retired through this owner
        };
        let inner = self.inner();
        // The latest grace period any registration before this call took
        // (see the module docs): not the back of the queue, which misses a
        // unit that another thread's collect has popped and may push back.
        let up_to = lock(&q.queue).latest;
        if up_to > 0 {
            inner.wait_for(up_to);
        }
        // Taking `freeing` waits for frees in progress on other threads, so
        // everything queued before the call is now either freed or still
        // queued, and complete. `collect_locked` returns once its front is
        // a later registration (or the queue is empty): it does not chase
        // what other threads keep retiring. A panicking destructor's unit
        // goes back to the front, still complete, and the next round goes on
        // with it.
        q.run_locked(inner, lock(&q.freeing), || {
            let mut first_panic = FirstPanic::default();
            while first_panic
                .catch(|| q.collect_locked(inner, usize::MAX, up_to))
                .is_none()
            {}
            first_panic.resume();
        });
        q.resume_stashed();
    }

    /// Frees everything queued, directly: no reader of the owner can exist.
    /// Keeps going past panicking destructors, then resumes the first panic
    /// (or one the reclaimer caught), unless a panic is already unwinding
    /// (then theirs are dropped): safe to call from a drop during an unwind.
    ///
    /// # Safety
    ///
    /// No reader of the owner can exist (the last user is tearing it down,
    /// or holds it exclusively); `last` says whether it is the teardown.
    #[inline]
    pub(crate) unsafe fn free_directly(&self, last: bool) {
        if let Some(q) = self.queue() {
            // SAFETY: forwarded from this function's contract.
            unsafe { self.free_queue_directly(q, last) };
        }
        // Without a queue, nothing was ever retired through this owner.
    }

    /// [`free_directly`](Pending::free_directly) of the owner's queue.
    ///
    /// # Safety
    ///
    /// As for `free_directly`.
    #[cold]
    unsafe fn free_queue_directly(&self, q: &OwnerQueue, last: bool) {
        let inner = self.inner();
        if last {
            lock(&q.queue).dead = true;
        }
        let first_panic = if crate::rcu::for_owners::is_owner_freeing(q.key()) {
            // This thread is the one freeing, up its stack (a destructor of
            // this owner, or of another freed nested in it, dropped its
            // last user): it holds `freeing`.
            // SAFETY: forwarded from this function's contract.
            unsafe { q.free_all_directly(inner) }
        } else {
            // Wait for the free in progress elsewhere, if any, so everything
            // is freed when this returns; but inside a run of destructors
            // (of any domain or owner) only try: the holder may wait for a
            // lock this thread holds. It frees what the teardown leaves
            // once it lets go (`free_left_by_teardown`); exclusive access
            // leaves it to its later frees.
            let freeing = if crate::rcu::for_owners::is_freeing_any() {
                try_lock(&q.freeing)
            } else {
                Some(lock(&q.freeing))
            };
            let Some(freeing) = freeing else {
                return;
            };
            // SAFETY: forwarded from this function's contract.
            q.run_locked(inner, freeing, || unsafe { q.free_all_directly(inner) })
        };
        first_panic.resume();
        q.resume_stashed();
    }

    pub(crate) fn stats(&self) -> OwnerStats {
        self.queue()
            .map_or_else(OwnerStats::default, |q| q.counters.snapshot())
    }
}

impl Drop for Pending {
    #[inline]
    fn drop(&mut self) {
        let queue = self.queue.load(Acquire);
        if !queue.is_null() {
            // SAFETY: the reference `make_queue` published, given up once.
            drop(unsafe { Arc::from_raw(queue) });
        }
    }
}

impl OwnerQueue {
    /// This owner's key for `local::owner_freeing`: the queue's address.
    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Counts in this owner's counters and in its domain's sum of them.
    fn count(&self, inner: &Inner, f: impl Fn(&OwnerCounters)) {
        f(&self.counters);
        f(inner.owner_counters());
    }

    /// Runs `run` holding `freeing` (`guard`), marked as freeing this
    /// owner; then lets go and frees what a teardown left to it meanwhile
    /// (`free_left_by_teardown`). A panic of `run` goes on after that.
    fn run_locked<R: Default>(
        &self,
        inner: &Inner,
        guard: MutexGuard<'_, ()>,
        run: impl FnOnce() -> R,
    ) -> R {
        let mut first_panic = FirstPanic::default();
        let done = first_panic.catch(|| crate::rcu::for_owners::owner_freeing(self.key(), run));
        drop(guard);
        // SAFETY: a dead queue's owner has no user left: no reader.
        first_panic.keep(unsafe { self.free_left_by_teardown(inner) }.take());
        first_panic.resume();
        done.unwrap_or_default()
    }

    /// Run by every holder of `freeing` right after it lets go: frees what
    /// the owner's teardown, finding the lock held, left behind. Either
    /// this look, under the queue lock, comes after the teardown marked the
    /// queue dead and sees it, or it comes before, and then the lock was
    /// free when the teardown tried it (or another holder took it, and
    /// looks in turn when it lets go). Returns the first panic.
    ///
    /// # Safety
    ///
    /// Once `dead` is set, no reader of the owner exists (its last user is
    /// gone).
    unsafe fn free_left_by_teardown(&self, inner: &Inner) -> FirstPanic {
        let mut first_panic = FirstPanic::default();
        loop {
            {
                let queue = lock(&self.queue);
                if !queue.dead || queue.units.is_empty() {
                    return first_panic;
                }
            }
            let Some(_freeing) = try_lock(&self.freeing) else {
                return first_panic; // its holder looks when it lets go
            };
            // SAFETY: the queue is dead (the contract).
            let free = || unsafe { self.free_all_directly(inner) }.take();
            first_panic.keep(crate::rcu::for_owners::owner_freeing(self.key(), free));
        }
    }

    /// Frees every queued unit directly, past panicking destructors;
    /// returns the first panic. The caller holds `freeing` (or runs this
    /// owner's destructors up its stack) and is marked as freeing it.
    ///
    /// # Safety
    ///
    /// No reader of the owner can exist.
    unsafe fn free_all_directly(&self, inner: &Inner) -> FirstPanic {
        let mut first_panic = FirstPanic::default();
        loop {
            let Some((gp, unit)) = lock(&self.queue).units.pop_front() else {
                return first_panic;
            };
            // SAFETY: forwarded from this function's contract.
            first_panic.catch(|| unsafe { self.free(inner, gp, unit, usize::MAX, true) });
        }
    }

    /// Frees, with the `freeing` lock held, up to `budget` objects of
    /// units that wait for grace period `up_to` or an earlier one, which
    /// had completed when it began (it never chases grace periods that
    /// complete while it frees: see the domain's `free_completed`); returns
    /// how many objects it freed.
    fn collect_locked(&self, inner: &Inner, budget: usize, up_to: u64) -> usize {
        let up_to = up_to.min(inner.completed());
        let mut left = budget;
        let mut total = 0;
        while left > 0 {
            let (gp, unit) = {
                let mut queue = lock(&self.queue);
                match queue.units.front() {
                    Some(&(gp, _)) if gp <= up_to => queue.units.pop_front().unwrap(),
                    _ => return total,
                }
            };
            // SAFETY: the unit's grace period has completed.
            let freed = unsafe { self.free(inner, gp, unit, left, false) };
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
    unsafe fn free(
        &self,
        inner: &Inner,
        gp: u64,
        unit: Box<dyn Reclaim>,
        max: usize,
        direct: bool,
    ) -> usize {
        let before = unit.len();
        let mut unit = scopeguard::guard(unit, |unit| {
            self.count(inner, |c| c.freed(before - unit.len(), direct));
            if unit.len() > 0 {
                lock(&self.queue).units.push_front((gp, unit));
                // Visible again: ring, as a registration does (the
                // reclaimer may have parked while the unit was popped).
                crate::rcu::for_owners::notify(inner);
            }
        });
        // SAFETY: forwarded from this function's contract.
        unsafe { unit.free(max) };
        before - unit.len()
    }

    /// Resumes a panic the reclaimer caught in one of this owner's
    /// destructors, unless this thread is already unwinding.
    fn resume_stashed(&self) {
        let mut stashed = FirstPanic::default();
        stashed.keep(lock(&self.panicked).take());
        stashed.resume();
    }
}

impl Served for OwnerQueue {
    fn visit(&self, inner: &Inner) -> Visited {
        let Some(freeing) = try_lock(&self.freeing) else {
            return Visited::Work;
        };
        // Kept for the next `barrier` or direct free of this owner, while
        // `freeing` is held: both take it before they look.
        let stash = |first_panic: FirstPanic| {
            if let Some(payload) = first_panic.take() {
                lock(&self.panicked).get_or_insert(payload);
            }
        };
        let mut left_by_teardown = FirstPanic::default();
        left_by_teardown.catch(|| {
            self.run_locked(inner, freeing, || {
                let mut first_panic = FirstPanic::default();
                while first_panic
                    .catch(|| self.collect_locked(inner, usize::MAX, u64::MAX))
                    .is_none()
                {}
                stash(first_panic);
            })
        });
        // Nobody resumes these (the owner is gone): as on the reclaimer.
        stash(left_by_teardown);
        self.has_work()
    }

    fn has_work(&self) -> Visited {
        if lock(&self.queue).units.is_empty() {
            Visited::Idle
        } else {
            Visited::Work
        }
    }
}

impl Throttled for Pending {
    fn free_inline(&self, wait: bool) -> usize {
        if !self.inner().config().retiring_threads_free {
            return 0;
        }
        let Some(q) = self.queue() else {
            return 0;
        };
        let (_freeing, budget) = if wait {
            // A bounded wait for the freer: its destructors may wait for
            // grace periods, which readers hold up.
            match lock_within(&q.freeing, self.inner().config().max_wait) {
                Some(freeing) => (freeing, usize::MAX),
                None => return 0,
            }
        } else {
            match try_lock(&q.freeing) {
                Some(freeing) => (freeing, COLLECT_BUDGET),
                None => return 0,
            }
        };
        crate::rcu::for_owners::owner_freeing(q.key(), || {
            q.collect_locked(self.inner(), budget, u64::MAX)
        })
    }

    fn over_bound(&self) -> bool {
        let bound = self.inner().config().owner_max_pending;
        Throttled::pending(self) > bound as u64
    }

    fn oldest(&self) -> Option<u64> {
        let q = self.queue()?;
        lock(&q.queue).units.front().map(|(gp, _)| *gp)
    }

    fn pending(&self) -> u64 {
        self.stats().pending
    }

    fn free_amortized(&self) -> usize {
        self.collect(COLLECT_BUDGET)
    }
}
