//! Early frees in a robust domain: units freed before their grace period
//! completes, because no reader that holds it up can hold their objects.
//!
//! # Invariants
//!
//! - A scan holds `freeing`, then the state lock, runs one heavy fence,
//!   and only then reads the records: every unit it looks at was
//!   registered (so its objects were unlinked) before that fence. A reader
//!   whose light fence follows the fence cannot reach those objects; one
//!   whose fence precedes it is seen with its reservation (module
//!   `robust`).
//! - A unit is taken when its oldest birth is known and younger than the
//!   reservation of every record whose section began before its grace
//!   period (`lo < gp`): the others entered after its objects were
//!   unlinked. Units whose grace period completed are left to the ordinary
//!   frees.
//! - Taken units leave the queue (and the unstarted counts, if their grace
//!   period had not started) before their objects are dropped; what a
//!   panicking destructor leaves goes back into the queue in grace-period
//!   order, before `freeing` is released.
//! - Scans are rationed: one that freed nothing is not repeated before the
//!   domain's pending objects have doubled.

use core::sync::atomic::Ordering::{Acquire, Relaxed};

use super::counters::Path;
use super::state::{lock, try_lock, Inner, State, Waiting};
use crate::rcu::retired::UNKNOWN_BIRTH;
use crate::rcu::unwind::{may_free, FirstPanic};

impl Inner {
    /// Frees, without waiting for anything, the units that no reader in a
    /// section can hold (module invariants), if the domain is robust, the
    /// thread may free, and the last scan's rationing allows; returns how
    /// many objects it freed. Skips if another thread is freeing;
    /// propagates a destructor's panic once the queue is consistent again.
    pub(crate) fn free_early(&self) -> usize {
        let (freed, panic) = self.free_early_caught(false);
        let mut first_panic = FirstPanic::default();
        first_panic.keep(panic);
        first_panic.resume();
        freed
    }

    /// [`free_early`](Inner::free_early) for the reclaimer: a destructor's
    /// panic is stashed for the next `barrier` or the teardown.
    pub(super) fn free_early_stashing(&self) -> usize {
        self.free_early_caught(true).0
    }

    /// The early free, its first destructor panic handed back, or stashed
    /// while `freeing` is still held if `stash` (so a `barrier`, which
    /// takes that lock first, cannot miss it).
    fn free_early_caught(&self, stash: bool) -> (usize, Option<Box<dyn core::any::Any + Send>>) {
        if !self.config.robust
            || !self.config.retiring_threads_free
            || !may_free()
            || self.pending() < self.early_next.load(Relaxed)
        {
            return (0, None);
        }
        let Some(_freeing) = try_lock(&self.freeing) else {
            return (0, None);
        };
        let taken = {
            let mut st = lock(&self.state);
            if st.dead {
                return (0, None); // the teardown frees everything
            }
            self.heavy_fence();
            self.take_early(&mut st)
        };
        let _mark = crate::rcu::freeing::freeing(self.id);
        let mut first_panic = FirstPanic::default();
        let (mut total, mut spare) = (0, None);
        let mut taken = taken.into_iter();
        for Waiting { gp, unit } in taken.by_ref() {
            let mut rest = None;
            // SAFETY: no reader can hold the unit's objects (`take_early`,
            // and the contract of `Domain::retire_born` for its births).
            let freed = first_panic.catch(|| unsafe {
                self.free_unit(unit, usize::MAX, Path::Early, &mut spare, &mut rest)
            });
            total += freed.unwrap_or(0);
            if let Some(unit) = rest {
                self.put_back(Waiting { gp, unit });
            }
            if first_panic.caught() {
                break;
            }
        }
        for w in taken {
            self.put_back(w);
        }
        Self::keep_spare(&mut lock(&self.state), &mut spare);
        let next = if total == 0 {
            self.pending().saturating_mul(2)
        } else {
            0
        };
        self.early_next.store(next, Relaxed);
        let panic = first_panic.take();
        if stash {
            if let Some(payload) = panic {
                self.stash_panic(payload);
            }
            return (total, None);
        }
        (total, panic)
    }

    /// The units a scan may free (module invariants), taken off the queue
    /// (state lock held, after the heavy fence).
    fn take_early(&self, st: &mut State) -> Vec<Waiting> {
        // (lo, reservation) of every record in a section.
        let blockers: Vec<(u64, u64)> = self
            .records()
            .filter_map(|rec| {
                // Acquire: as in `Record::blocks`.
                let s = rec.state.load(Acquire);
                (s & 1 == 1).then(|| (s >> 1, rec.reservation(s >> 1)))
            })
            .collect();
        let reserved = |gp: u64| {
            blockers
                .iter()
                .filter(|&&(lo, _)| lo < gp)
                .map(|&(_, res)| res)
                .max()
        };
        let completed = self.completed.load(Relaxed);
        let epoch = self.epoch.load(Relaxed); // only written under this lock
        let mut taken = Vec::new();
        let (mut objects, mut units) = (0, 0);
        st.waiting.retain_mut(|w| {
            let birth = w.unit.birth();
            let free = birth != UNKNOWN_BIRTH
                && w.gp > completed
                && reserved(w.gp).map_or(true, |res| birth > res);
            if free {
                if w.gp > epoch {
                    objects += w.unit.len();
                    units += 1;
                }
                let unit = core::mem::replace(&mut w.unit, Box::new(Placeholder));
                taken.push(Waiting { gp: w.gp, unit });
            }
            !free
        });
        st.unstarted_objects = st.unstarted_objects.saturating_sub(objects);
        st.unstarted_units = st.unstarted_units.saturating_sub(units);
        taken
    }

    /// Puts a unit an early free could not finish back into the queue, in
    /// grace-period order, counted as unstarted again if its grace period
    /// has not started.
    fn put_back(&self, w: Waiting) {
        let mut st = lock(&self.state);
        if w.gp > self.epoch.load(Relaxed) {
            st.unstarted_objects += w.unit.len();
            st.unstarted_units += 1;
        }
        let at = st.waiting.partition_point(|q| q.gp <= w.gp);
        st.waiting.insert(at, w);
    }
}

/// What stands in a queue entry for a unit taken out of it, for the moment
/// `retain_mut` drops the entry.
struct Placeholder;

impl crate::rcu::retired::Reclaim for Placeholder {
    fn len(&self) -> usize {
        0
    }
    unsafe fn free(&mut self, _max: usize) {}
}
