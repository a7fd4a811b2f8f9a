//! Freeing units whose grace period has completed.
//!
//! # Invariants
//!
//! - Destructors of a domain run only under its `freeing` lock, with the
//!   thread marked as freeing that domain (module `freeing`): one thread at
//!   a time per domain, and `barrier` knows when frees in progress end.
//! - A unit is popped from the queue before its objects are dropped, and
//!   whatever the budget or a panicking destructor leaves goes back to the
//!   front, still tagged with its grace period: the queue stays consistent.
//! - Putting a unit back rings the reclaimer, as a registration does: while
//!   the unit was popped the queue looked empty, so the reclaimer may have
//!   parked, and without the ring the rest of the unit would be left for
//!   good to an idle writer.

use core::sync::atomic::Ordering::{Relaxed, Release};

use super::counters::Path;
use super::state::{lock, lock_within, try_lock, Inner, State, Waiting, SPARE_BAGS};
use crate::rcu::retired::{Bag, Reclaim};
use crate::rcu::unwind::FirstPanic;

/// Where the oldest queued unit's grace period stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Front {
    /// Nothing queued.
    Empty,
    /// Complete: the unit may be freed.
    Complete,
    /// Started and not complete: a reader holds it up.
    HeldUp,
    /// Not started yet (rationing and pacing decide when).
    Unstarted,
}

impl Inner {
    /// Where the oldest queued unit's grace period stands (state lock held).
    pub(super) fn front(&self, st: &State) -> Front {
        let Some(w) = st.waiting.front() else {
            return Front::Empty;
        };
        if w.gp <= self.completed.load(Relaxed) {
            Front::Complete
        } else if w.gp <= self.epoch.load(Relaxed) {
            Front::HeldUp
        } else {
            Front::Unstarted
        }
    }

    /// Frees up to `budget` objects whose grace period had completed when
    /// the run took the `freeing` lock and is no later than `up_to` (all of
    /// them once the domain is dead); returns how many. A run never chases
    /// grace periods that complete while it frees: other threads may retire
    /// as fast as it frees, and a `barrier` waiting for the lock must get it
    /// after one run. `path` says whether to wait for the `freeing` lock and whether
    /// to keep going past panicking destructors (re-raising the first panic
    /// at the end) or to stop at the first and propagate it. Once the domain
    /// is dead, also when its last handle went inside one of the
    /// destructors this run calls, it frees everything left, past the budget
    /// and past panics.
    pub(super) fn free_completed(&self, budget: usize, up_to: u64, path: Path) -> usize {
        let freeing = match path {
            Path::Barrier | Path::Teardown => {
                // Never our own caller's lock: a barrier is refused inside
                // any destructor (`Domain::barrier`), a teardown inside this
                // domain's own leaves the freeing to that run (`teardown`).
                debug_assert!(!crate::rcu::freeing::is_freeing(self.id));
                Some(lock(&self.freeing))
            }
            // A retirement waits for the freer a bounded time: its
            // destructors may wait for grace periods, which readers hold up.
            Path::Backpressure => lock_within(&self.freeing, self.config.max_wait),
            _ => try_lock(&self.freeing),
        };
        let Some(_freeing) = freeing else {
            return 0;
        };
        let up_to = up_to.min(self.completed());
        let _mark = crate::rcu::freeing::freeing(self.id);
        let mut left = budget;
        let mut total = 0;
        let mut first_panic = FirstPanic::default();
        // An emptied bag on its way back to `State::spare`, handed over under
        // the next lock we take anyway.
        let mut spare = None;
        loop {
            if self.dead.load(Relaxed) {
                // The domain is dead: its last handle went, possibly inside
                // a destructor this run called (`teardown`). Nobody else
                // will free what is left: all of it, here, past panics.
                left = usize::MAX;
            }
            if left == 0 {
                break;
            }
            let Some(Waiting { gp, unit }) = self.pop_completed(up_to, &mut spare) else {
                break;
            };
            let spare = &mut spare;
            // SAFETY: `pop_completed` only returns units whose grace period
            // has completed (or the domain is dead: no reader can exist).
            let freed =
                first_panic.catch(|| unsafe { self.free_unit(gp, unit, left, path, spare) });
            total += freed.unwrap_or(0);
            left = left.saturating_sub(freed.unwrap_or(0).max(1));
            if first_panic.caught() && !path.frees_past_panics() && !self.dead.load(Relaxed) {
                break; // propagated once the spare bag is back
            }
        }
        if spare.is_some() {
            Self::keep_spare(&mut lock(&self.state), &mut spare);
        }
        if path == Path::Reclaimer {
            // Stashed for the next `barrier` or the teardown while we still
            // hold `freeing`: both take it before they look, so neither can
            // look between our last free and the stash and miss the panic.
            if let Some(payload) = first_panic.take() {
                self.stash_panic(payload);
            }
        } else {
            first_panic.resume();
        }
        total
    }

    /// Frees up to `max` objects of `unit` (which waited for grace period
    /// `gp`), returning how many. Even if a destructor panics, the objects
    /// freed are counted and the rest go back to the front of the queue,
    /// still tagged `gp`; an emptied thread bag goes to `spare`.
    ///
    /// # Safety
    ///
    /// The unit's grace period has completed, or no reader can exist.
    pub(super) unsafe fn free_unit(
        &self,
        gp: u64,
        unit: Box<dyn Reclaim>,
        max: usize,
        path: Path,
        spare: &mut Option<Box<Bag>>,
    ) -> usize {
        let before = unit.len();
        let mut unit = scopeguard::guard(unit, |unit| {
            let freed = (before - unit.len()) as u64;
            self.counters.freed_by[path as usize].fetch_add(freed, Relaxed);
            // Release, after the destructors and the path count: a snapshot
            // whose (Acquire) `freed` includes these objects sees both.
            self.counters.freed.fetch_add(freed, Release);
            if unit.len() > 0 {
                lock(&self.state).waiting.push_front(Waiting { gp, unit });
                // Work made visible again, as a registration makes it: the
                // reclaimer may have looked while the unit was popped, found
                // nothing and parked, so ring (module `reclaimer`).
                crate::rcu::reclaimer::notify(self);
            } else if let Some(mut bag) = unit.into_bag() {
                bag.reset();
                *spare = Some(bag);
            }
        });
        // SAFETY: forwarded from this function's contract.
        unsafe { unit.free(max) };
        before - unit.len()
    }

    pub(super) fn keep_spare(st: &mut State, spare: &mut Option<Box<Bag>>) {
        if let Some(bag) = spare.take() {
            if st.spare.len() < SPARE_BAGS {
                st.spare.push(bag);
            }
        }
    }

    /// The front unit, if its grace period is no later than `up_to`, which
    /// the caller read from `completed` (any unit once the domain is dead).
    pub(super) fn pop_completed(
        &self,
        up_to: u64,
        spare: &mut Option<Box<Bag>>,
    ) -> Option<Waiting> {
        let mut st = lock(&self.state);
        Self::keep_spare(&mut st, spare);
        if !st.dead && st.waiting.front()?.gp > up_to {
            return None;
        }
        st.waiting.pop_front()
    }
}
