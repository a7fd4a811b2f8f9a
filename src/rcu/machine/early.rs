//! Early frees in a robust domain: units freed before their grace period
//! completes, because no reader that holds it up can hold their objects.
//!
//! # Invariants
//!
//! - A scan holds `freeing`, then the state lock, starts the next grace
//!   period (even while the current one is held up: its heavy fence is the
//!   scan's), and only then reads the records: every unit it looks at was
//!   registered (so its objects were unlinked) before that fence. A reader
//!   whose light fence follows the fence cannot reach those objects; one
//!   whose fence precedes it is seen with its reservation (module
//!   `robust`). Readers that enter afterwards are in a newer era than
//!   every queued unit's grace period, so once the readers that were in
//!   sections leave them, only a reader that stays still blocks those
//!   units, and only for the births it reserved.
//! - A unit is taken when its oldest birth is known and younger than the
//!   reservation of every record whose section began before its grace
//!   period (`lo < gp`): the others entered after its objects were
//!   unlinked. Units whose grace period completed are left to the ordinary
//!   frees.
//! - Taken units leave the queue before their objects are dropped; what a
//!   panicking destructor leaves goes back into the queue in grace-period
//!   order, before `freeing` is released.
//! - Scans are rationed: none runs while no queued unit has a known birth,
//!   and one that freed nothing is not repeated before a quarter of the
//!   objects then pending (at least the soft bound's worth) have been
//!   registered since.

use core::sync::atomic::Ordering::{Relaxed, Release};

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
            || self.counters.retired.load(Relaxed) < self.early_next.load(Relaxed)
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
            // Nothing to scan for: no barrier.
            let completed = self.completed.load(Relaxed); // written under this lock
            let born = |w: &Waiting| w.gp > completed && w.unit.birth() != UNKNOWN_BIRTH;
            if !st.waiting.iter().any(born) {
                return (0, None);
            }
            self.start_for_scan(&mut st);
            let taken = self.take_early(&mut st);
            self.advance(&mut st);
            taken
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
            // After a quarter of what is pending more has been registered
            // (at least the soft bound's worth): a reader that stopped
            // blocking is noticed soon, and a scan that can free nothing
            // costs a barrier per that many objects at most.
            let step = (self.pending() / 4).max(self.config.soft_max_pending as u64);
            self.counters.retired.load(Relaxed).saturating_add(step)
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

    /// Starts the next grace period for a scan (state lock held), even if
    /// the current one is held up: its heavy fence is the scan's, and the
    /// readers that enter from now on are in a newer era than every unit
    /// queued, so they hold none of them up (module invariants). The start
    /// time stays the oldest one in flight's, which stall warnings and
    /// latencies count from.
    fn start_for_scan(&self, st: &mut State) {
        let gp = self.epoch.load(Relaxed) + 1; // only written under this lock
                                               // Release: as in `advance`.
        self.epoch.store(gp, Release);
        self.heavy_fence();
        if !st.running {
            st.running = true;
            #[cfg(not(loom))]
            {
                st.started_at = Some(std::time::Instant::now());
            }
        }
        st.unstarted_objects = 0;
        st.unstarted_units = 0;
    }

    /// The units a scan may free (module invariants), taken off the queue
    /// (state lock held, after the heavy fence).
    fn take_early(&self, st: &mut State) -> Vec<Waiting> {
        // (lo, reservation) of every record in a section.
        let blockers: Vec<(u64, u64)> = self
            .records()
            .filter_map(|rec| rec.active_epoch().map(|lo| (lo, rec.reservation(lo))))
            .collect();
        let reserved = |gp: u64| {
            blockers
                .iter()
                .filter(|&&(lo, _)| lo < gp)
                .map(|&(_, res)| res)
                .max()
        };
        let completed = self.completed.load(Relaxed); // written under this lock
        let mut taken = Vec::new();
        st.waiting.retain_mut(|w| {
            let birth = w.unit.birth();
            let free = birth != UNKNOWN_BIRTH
                && w.gp > completed
                && reserved(w.gp).map_or(true, |res| birth > res);
            if free {
                let unit = core::mem::replace(&mut w.unit, Box::new(Placeholder));
                taken.push(Waiting { gp: w.gp, unit });
            }
            !free
        });
        taken
    }

    /// Puts a unit an early free could not finish back into the queue, in
    /// grace-period order (its grace period started with the scan).
    fn put_back(&self, w: Waiting) {
        let mut st = lock(&self.state);
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
