//! The end of a user-created domain: once no handle is left, everything is
//! freed directly, with no grace period.
//!
//! # Invariants
//!
//! - Teardown runs once, when the last `Domain` handle drops: then no guard
//!   and no reader of the domain can exist, so every queued unit and every
//!   thread's bag may be freed at once (`dead`).
//! - The records themselves are freed only with the state (`Drop`), after
//!   every thread's registration has let go of it.

use core::sync::atomic::Ordering::{Acquire, Relaxed};

use super::counters::Path;
use super::state::{lock, Inner, Waiting};
use crate::rcu::retired::Reclaim;

impl Inner {
    /// Frees everything directly: called once no handle to the domain is
    /// left, so no guard and no reader can exist.
    pub(crate) fn teardown(&self) {
        {
            let mut st = lock(&self.state);
            st.dead = true;
            self.dead.store(true, Relaxed);
            for rec in self.records() {
                // SAFETY: no handle exists, so no owner is in its fast path;
                // exiting owners take the state lock we hold and then see
                // `dead`.
                if let Some(bag) = unsafe { rec.steal_bag() } {
                    self.counters.retired.fetch_add(bag.len() as u64, Relaxed);
                    st.waiting.push_back(Waiting { gp: 0, unit: bag });
                }
            }
        }
        if crate::rcu::freeing::is_freeing(self.id) {
            // The last handle went inside a run of this domain's own
            // destructors, up this thread's stack (held by its garbage, or
            // by another domain's garbage freed nested in that run): this
            // thread holds the `freeing` lock, and that run frees
            // everything left once it sees `dead` (`free_completed`). Its
            // caller handles the panics of that run as it handles any.
            return;
        }
        // `dead` makes every queued unit free-able at once.
        self.free_completed(usize::MAX, u64::MAX, Path::Teardown);
        self.resume_stashed();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Everything was freed by `teardown`; the records remain.
        let mut cur = self.records.load(Acquire);
        while !cur.is_null() {
            // SAFETY: records were made by `Box::into_raw` in `claim`, and
            // the last reference to the domain is going away.
            let rec = unsafe { Box::from_raw(cur) };
            cur = rec.next.cast_mut();
        }
    }
}
