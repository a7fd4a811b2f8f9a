//! Registering work: single retirements (the slow path, once a thread's
//! bag is full), drained batches, owners' units.
//!
//! # Invariants
//!
//! - A unit registered while `epoch == e` waits for grace period `e + 1`,
//!   the first one to start after it (units are queued in registration
//!   order, so their grace periods never decrease along the queue).
//! - Every registration is followed, outside the state lock, by a
//!   reclaimer notification and by backpressure (past the bound), or a
//!   bounded free (`COLLECT_BUDGET` objects) if the oldest unit is
//!   complete, or, past the soft bound, a robust domain's early free and
//!   the soft bound's wait (with the oldest unit's grace period held up by
//!   a reader, and the domain not crowded), as the registration found the
//!   queue's front and the crowding under the lock.

use core::sync::atomic::Ordering::Relaxed;

use super::counters::Path;
use super::free::Front;
use super::state::{lock, Inner, State, Waiting, COLLECT_BUDGET};
use crate::rcu::record::Record;
use crate::rcu::retired::{Bag, DropRun, Reclaim, Slot};
use crate::rcu::unwind::may_free;

impl Inner {
    /// Adds a unit to the waiting queue (state lock held).
    pub(super) fn enqueue(&self, st: &mut State, unit: Box<dyn Reclaim>, batch: bool) {
        let gp = self.epoch.load(Relaxed) + 1;
        #[cfg(not(loom))]
        st.crowd.expire();
        self.counters.retired.fetch_add(unit.len() as u64, Relaxed);
        let pending = self.pending();
        // Only written under the state lock, which we hold: no RMW needed.
        if pending > self.counters.peak_pending.load(Relaxed) {
            self.counters.peak_pending.store(pending, Relaxed);
        }
        st.unstarted_objects += unit.len();
        st.unstarted_units += 1;
        st.waiting.push_back(Waiting { gp, unit });
        self.counters.registrations.fetch_add(1, Relaxed);
        if st.crowd.crowded() {
            self.counters.crowded_registrations.fetch_add(1, Relaxed);
        }
        if batch {
            self.counters.batches.fetch_add(1, Relaxed);
        }
    }

    /// Registers a drained batch (or a lone object) as one unit, starting
    /// its grace period now if `hurry`, then does a bounded amount of
    /// reclamation, or applies backpressure if the domain is past its bound.
    /// `own` is the calling thread's record, if it has one.
    pub(crate) fn register(
        &self,
        unit: Box<dyn Reclaim>,
        batch: bool,
        hurry: bool,
        own: Option<&Record>,
    ) {
        let seen = {
            let mut st = lock(&self.state);
            assert!(!st.dead, "ownrcu: retired into a domain that was torn down");
            self.enqueue(&mut st, unit, batch);
            if hurry {
                self.start_locked(&mut st, &self.counters.hurried);
            } else {
                self.advance(&mut st);
            }
            (self.front(&st), st.crowd.crowded())
        };
        crate::rcu::reclaimer::notify(self);
        self.after_registration(seen, own);
    }

    /// What a registration does once its unit is queued, given the queue's
    /// front as it left it and whether the domain was crowded then (module
    /// `crowd`): backpressure past the bound, else the amortized free if
    /// work is complete, else the soft bound's wait if past it, a reader
    /// holds the front's grace period up, and the domain is not crowded.
    /// In a robust domain, a fenced scan also frees what no reader reserves
    /// (module `early`), before the soft bound's wait; `own` is the
    /// registering thread's record.
    pub(super) fn after_registration(&self, (front, crowded): (Front, bool), own: Option<&Record>) {
        let pending = self.pending();
        let soft = self.config.soft_max_pending as u64;
        if pending > self.config.max_pending as u64 {
            self.throttle(None);
        } else if front == Front::Complete {
            if may_free() && self.config.retiring_threads_free {
                self.free_completed(COLLECT_BUDGET, u64::MAX, Path::Amortized);
            }
            if self.config.robust {
                // Units behind a complete front may be free to go too.
                self.free_early(own, u64::MAX);
            }
        } else {
            if self.config.robust {
                // A robust domain frees what no reader can hold first
                // (module `early`), whatever the front: a reader that stays
                // holds only older objects, and the front may be one of
                // those. Barrier scans only past the soft bound.
                self.free_early(own, if pending > soft { soft } else { u64::MAX });
            }
            if front == Front::HeldUp && !crowded && self.pending() > soft {
                self.pace(None);
            }
        }
    }

    /// Registered objects not freed yet (the bound's measure).
    pub(super) fn pending(&self) -> u64 {
        let retired = self.counters.retired.load(Relaxed);
        retired.saturating_sub(self.counters.freed.load(Relaxed))
    }

    /// The slow path of a single retirement: the record's bag is full (or
    /// absent, or being stolen), or the thread has no record.
    #[cold]
    pub(crate) fn retire_slow(&self, rec: Option<&Record>, slot: Slot, drop: DropRun, birth: u64) {
        let Some(rec) = rec else {
            let mut bag = Bag::with_capacity(1);
            // SAFETY: forwarded from the caller (`Domain::retire_raw`); an
            // empty bag always accepts.
            let len = unsafe { bag.push(slot, drop, birth) };
            debug_assert_eq!(len, 1);
            return self.register(bag, false, false, None);
        };
        let seen = {
            let mut st = lock(&self.state);
            #[cfg(not(loom))]
            st.crowd.note(rec.crowd_stamp());
            let adapt = !self.config.lazy && !st.crowd.crowded();
            let spare = &mut st.spare;
            let new_bag = |cap| {
                let class = Bag::class(cap);
                match spare.iter().rposition(|bag| bag.capacity() == class) {
                    Some(at) => spare.swap_remove(at),
                    None => Bag::with_capacity(class),
                }
            };
            // SAFETY: we hold the state lock and are the owner.
            if let Some(full) = unsafe { rec.push_locked(slot, drop, birth, adapt, new_bag) } {
                self.enqueue(&mut st, full, false);
            }
            self.advance(&mut st);
            (self.front(&st), st.crowd.crowded())
        };
        crate::rcu::reclaimer::notify(self);
        self.after_registration(seen, Some(rec));
    }
}
