//! Early frees in a robust domain: units freed before their grace period
//! completes, because no reader that could hold their objects is in a
//! section.
//!
//! # Invariants
//!
//! - A scan holds `freeing`, then the state lock, and looks only at units
//!   whose oldest birth is known and whose grace period has not completed
//!   (the others are the ordinary frees'). Every unit it looks at was
//!   registered, so its objects were unlinked, before its fence.
//! - A **fenced scan** ([`Scan::Fenced`]) runs a plain `fence(SeqCst)` and
//!   reads every record's `state` and `hi`. It takes a unit (grace period
//!   `gp`, oldest birth `b`) when every record either is in a section that
//!   began at `gp` or later (its entry read, `Acquire`, the epoch that
//!   grace period's start stored after the unit was queued, so it cannot
//!   reach the unit's objects), or reserves less than `b` (`hi < b`), or
//!   is the scanning thread's own record outside a section. A record seen
//!   outside a section may have entered one since, unseen; but robust
//!   records raise `hi` only with a full fence before any load that relies
//!   on it (module `robust`), which pairs with the scan's fence: either the
//!   scan sees the raised `hi`, or the load sees the unlink.
//! - A **barrier scan** ([`Scan::Barrier`]) starts the next grace period
//!   (even while the current one is held up: its heavy fence is the
//!   scan's), and only then reads the records. A reader whose light fence
//!   follows the heavy fence cannot reach the units' objects; one whose
//!   fence precedes it is seen with its `state` and reservation. It takes a
//!   unit when its oldest birth is younger than the reservation of every
//!   record whose section began before its grace period (`lo < gp`).
//!   Readers that enter afterwards are in a newer era than every queued
//!   unit's grace period, so once the readers that were in sections leave
//!   them, only a reader that stays still blocks those units, and only for
//!   the births it reserved; the fenced scan alone cannot get there while
//!   the era stands still behind that reader and busy readers keep
//!   reserving it.
//! - Taken units leave the queue before their objects are dropped; what a
//!   panicking destructor leaves goes back into the queue in grace-period
//!   order, before `freeing` is released. When the domain's last handle
//!   goes in one of those destructors, the scan frees everything left once
//!   it lets go of `freeing` (the teardown leaves that to the lock's
//!   holder), as every holder of that lock does.
//! - Scans are rationed, each kind on its own: none runs while no queued
//!   unit qualifies, and one that freed nothing is not repeated before a
//!   quarter of the objects then pending (at least a bag's worth for a
//!   fenced scan, the soft bound's worth for a barrier scan) have been
//!   registered since.

use core::sync::atomic::Ordering::{Relaxed, Release};

use super::counters::Path;
use super::free::Emptied;
use super::state::{lock, try_lock, Inner, State, Waiting};
use crate::rcu::record::Record;
use crate::rcu::retired::{BAG_CAP, UNKNOWN_BIRTH};
use crate::rcu::unwind::{may_free, FirstPanic};

/// How a scan learns what the readers in sections may hold (module
/// invariants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A plain fence; frees what no record reserves.
    Fenced = 0,
    /// Starts a grace period (a process-wide barrier); frees what no
    /// section older than the units' grace periods reserves.
    Barrier = 1,
}

impl Inner {
    /// Frees, without waiting for anything, the units that no reader in a
    /// section can hold (module invariants), if the domain is robust and
    /// the thread may free: a fenced scan, then, if more than `until`
    /// objects are still pending, a barrier scan; each as its rationing
    /// allows. `own` is the calling thread's record, if it has one. Returns
    /// how many objects it freed; skips if another thread is freeing;
    /// propagates a destructor's panic once the queue is consistent again.
    pub(crate) fn free_early(&self, own: Option<&Record>, until: u64) -> usize {
        let (freed, panic) = self.free_early_scans(own, until, false);
        let mut first_panic = FirstPanic::default();
        first_panic.keep(panic);
        first_panic.resume();
        freed
    }

    /// [`free_early`](Inner::free_early) for the reclaimer (no record of
    /// its own; barrier scans past the soft bound, as a registration's): a
    /// destructor's panic is stashed for the next `barrier` or the
    /// teardown.
    pub(super) fn free_early_stashing(&self) -> usize {
        self.free_early_scans(None, self.config.soft_max_pending as u64, true)
            .0
    }

    /// The scans of [`free_early`](Inner::free_early): stops at a
    /// destructor's panic, handed back unless `stash`.
    fn free_early_scans(
        &self,
        own: Option<&Record>,
        until: u64,
        stash: bool,
    ) -> (usize, Option<Box<dyn core::any::Any + Send>>) {
        let mut freed = 0;
        for scan in [Scan::Fenced, Scan::Barrier] {
            if scan == Scan::Barrier && self.pending() <= until {
                break;
            }
            let (n, panic) = self.free_early_caught(scan, own, stash);
            freed += n;
            if panic.is_some() {
                return (freed, panic);
            }
        }
        (freed, None)
    }

    /// One early free, its first destructor panic handed back, or stashed
    /// while `freeing` is still held if `stash` (so a `barrier`, which
    /// takes that lock first, cannot miss it).
    fn free_early_caught(
        &self,
        scan: Scan,
        own: Option<&Record>,
        stash: bool,
    ) -> (usize, Option<Box<dyn core::any::Any + Send>>) {
        let next = &self.early_next[scan as usize];
        if !self.config.robust
            || !self.config.retiring_threads_free
            || !may_free()
            || self.counters.retired.load(Relaxed) < next.load(Relaxed)
        {
            return (0, None);
        }
        let scanned = {
            let Some(_freeing) = try_lock(&self.freeing) else {
                return (0, None);
            };
            self.scan_locked(scan, own).map(|(total, mut first_panic)| {
                if stash {
                    // While `freeing` is held: a barrier takes it first.
                    self.stash_first(core::mem::take(&mut first_panic));
                }
                (total, first_panic)
            })
        };
        let mut first_panic = FirstPanic::default();
        let scanned = scanned.map(|(total, panic)| {
            first_panic.keep(panic.take());
            total
        });
        // A teardown that found `freeing` held left the rest to us.
        self.free_left_by_teardown(&mut first_panic);
        let Some(total) = scanned else {
            return self.early_panic(first_panic, stash, 0);
        };
        let next_at = if total == 0 {
            // After a quarter of what is pending more has been registered
            // (at least a bag's or the soft bound's worth): a reader that
            // stopped blocking is noticed soon, and a scan that can free
            // nothing costs a fence or a barrier per that many objects at
            // most.
            let least = match scan {
                Scan::Fenced => BAG_CAP as u64,
                Scan::Barrier => self.config.soft_max_pending as u64,
            };
            let step = (self.pending() / 4).max(least);
            self.counters.retired.load(Relaxed).saturating_add(step)
        } else {
            0
        };
        next.store(next_at, Relaxed);
        self.early_panic(first_panic, stash, total)
    }

    /// An early free's result: `freed`, and its first panic handed back,
    /// or stashed if `stash`.
    fn early_panic(
        &self,
        first_panic: FirstPanic,
        stash: bool,
        freed: usize,
    ) -> (usize, Option<Box<dyn core::any::Any + Send>>) {
        if stash {
            self.stash_first(first_panic);
            return (freed, None);
        }
        (freed, first_panic.take())
    }

    /// One scan and its frees, `freeing` held: how many objects it freed,
    /// and the first destructor panic; `None` if there was nothing to scan
    /// for (no fence, and no rationing).
    fn scan_locked(&self, scan: Scan, own: Option<&Record>) -> Option<(usize, FirstPanic)> {
        let taken = {
            let mut st = lock(&self.state);
            if st.dead {
                // The teardown frees everything (or left it to this holder,
                // which frees it once it lets go of `freeing`).
                return None;
            }
            // Nothing to scan for: no fence.
            let completed = self.completed.load(Relaxed); // written under this lock
            let born = |w: &Waiting| w.gp > completed && w.unit.birth() != UNKNOWN_BIRTH;
            if !st.waiting.iter().any(born) {
                return None;
            }
            match scan {
                Scan::Fenced => {
                    crate::sync::full_fence();
                    let reserved = self.reserved_fenced(own);
                    self.take_early(&mut st, reserved)
                }
                Scan::Barrier => {
                    self.start_for_scan(&mut st);
                    let reserved = self.reserved_barrier();
                    let taken = self.take_early(&mut st, reserved);
                    self.advance(&mut st);
                    taken
                }
            }
        };
        Some(crate::rcu::freeing::freeing(self.id, || {
            self.free_taken(taken)
        }))
    }

    /// Frees the units a scan took (`freeing` held, the thread marked as
    /// freeing this domain), up to the first destructor that panics; puts
    /// back what is left. Returns how many objects it freed, and the panic.
    fn free_taken(&self, taken: Vec<Waiting>) -> (usize, FirstPanic) {
        let mut first_panic = FirstPanic::default();
        let (mut total, mut spare) = (0, Emptied::new());
        let mut taken = taken.into_iter();
        for Waiting { gp, unit } in taken.by_ref() {
            if !spare.has_room() {
                Self::keep_spare(&mut lock(&self.state), &mut spare);
            }
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
        (total, first_panic)
    }

    /// Starts the next grace period for a barrier scan (state lock held),
    /// even if the current one is held up: its heavy fence is the scan's,
    /// and the readers that enter from now on are in a newer era than
    /// every unit queued, so they hold none of them up (module invariants).
    /// The start time stays the oldest one in flight's, which stall
    /// warnings and latencies count from.
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

    /// For a fenced scan, after its fence: what the records that may hold
    /// a grace period's units reserve at most (`None`: no such record), as
    /// a function of that grace period (module invariants). Every record
    /// counts but one in a section that began at the grace period or
    /// later, and our own outside a section.
    fn reserved_fenced(&self, own: Option<&Record>) -> impl Fn(u64) -> Option<u64> {
        let is_own_outside =
            |rec: &Record| own.is_some_and(|own| core::ptr::eq(own, rec) && !own.in_section());
        // A record outside a section counts for every grace period (all
        // are past 0).
        max_reserved(
            self.records()
                .filter(|rec| !is_own_outside(rec))
                .map(|rec| (rec.active_epoch().unwrap_or(0), rec.reserved()))
                .collect(),
        )
    }

    /// For a barrier scan, after its heavy fence: as
    /// [`reserved_fenced`](Self::reserved_fenced), from the records in a
    /// section that began before that grace period (module invariants).
    fn reserved_barrier(&self) -> impl Fn(u64) -> Option<u64> {
        max_reserved(
            self.records()
                .filter_map(|rec| rec.active_epoch().map(|lo| (lo, rec.reservation(lo))))
                .collect(),
        )
    }

    /// Takes off the queue the units a scan may free (state lock held):
    /// those whose oldest birth is known and younger than what `reserved`
    /// says the records that may hold them reserve.
    fn take_early(&self, st: &mut State, reserved: impl Fn(u64) -> Option<u64>) -> Vec<Waiting> {
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

/// Given `(lo, reservation)` per record, the most that the records with
/// `lo` before a grace period reserve, as a function of that grace period.
fn max_reserved(records: Vec<(u64, u64)>) -> impl Fn(u64) -> Option<u64> {
    move |gp| {
        records
            .iter()
            .filter(|&&(lo, _)| lo < gp)
            .map(|&(_, reserved)| reserved)
            .max()
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
