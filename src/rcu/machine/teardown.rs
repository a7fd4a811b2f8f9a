//! The end of a user-created domain: once no handle is left, everything is
//! freed directly, with no grace period.
//!
//! # Invariants
//!
//! - Teardown runs once, when the last `Domain` handle drops: then no guard
//!   and no reader of the domain can exist, so every queued unit and every
//!   thread's bag may be freed at once (`dead`).
//! - Everything is freed when the drop returns, except for a drop inside a
//!   run of destructors (of any domain or owner): waiting there for this
//!   domain's `freeing` lock could close a cycle (two runners, each
//!   dropping the other's domain's last handle), so it leaves the freeing
//!   to the lock's holder, which does it before it moves on.
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
        // `dead` makes every queued unit free-able at once. Inside a run of
        // destructors (this domain's own up this thread's stack, or any
        // other's) this only tries the `freeing` lock: its holder, maybe
        // this very thread, frees everything left once it sees `dead`, or
        // once it lets go of the lock (`free_completed`).
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
