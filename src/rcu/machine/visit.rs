//! What the reclaimer thread does to one domain on each visit: the time
//! bound, and freeing on behalf of writers that went idle.
//!
//! # Invariants
//!
//! - Work that was waiting at the previous visit gets its grace period on
//!   this one: a thread's buffer of single retirements that was already
//!   non-empty is taken over (as `barrier` takes buffers: announce, one
//!   heavy fence, then take), and unstarted work that was already
//!   unstarted, with the epoch unchanged since, has its grace period
//!   started. Visits come every half time bound, so retired work waits at
//!   most about one time bound before its grace period starts.
//! - A visit never waits for a reader or for another thread's frees: it
//!   frees completed units only if nobody else is freeing (`try_lock`), and
//!   only those complete when it began. It takes the `freeing` lock only
//!   for work: completed units, or a robust domain's early scan once no
//!   unit was registered since the last visit (a registration scans for
//!   itself; a reclaimer preempted while holding the lock would keep the
//!   writers' own scans out). A slow destructor of its own holds
//!   up this visit only: the reclaimer leaves it to its runner and visits
//!   the other domains meanwhile (module `reclaimer`).
//! - A destructor that panics during a visit does not stop the others
//!   (the reclaimer path frees past panics); the first panic is stashed in
//!   the domain, before the `freeing` lock is let go, and resumed by the
//!   next `barrier` or the teardown (both take that lock first), on a
//!   user's thread.

use core::any::Any;
use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering::{Acquire, Relaxed};
use core::time::Duration;

use std::sync::Weak;

use super::counters::Path;
use super::free::Front;
#[cfg(not(loom))]
use super::state::GLOBAL_INNER;
use super::state::{lock, Inner, Served};
#[cfg(not(loom))]
use crate::rcu::reclaimer::Target;
use crate::rcu::reclaimer::{ServedDomain, Visit, Visited};
use crate::rcu::record::Record;
use crate::rcu::unwind::FirstPanic;

fn address(rec: &Record) -> usize {
    rec as *const Record as usize
}

impl Inner {
    /// One visit of the reclaimer (see the module invariants).
    pub(crate) fn visit(&self, memo: &mut Visit) -> Visited {
        let (idle, complete, writers_idle) = {
            let mut st = lock(&self.state);
            if st.dead {
                return Visited::Dead;
            }
            let head = self.records.load(Acquire);
            let stale = |rec: &Record| rec.buffered() > 0 && memo.buffered.contains(&address(rec));
            let took = self.records_from(head).any(stale);
            if took {
                for rec in self.records_from(head).filter(|rec| stale(rec)) {
                    rec.raise_steal();
                }
                // One heavy fence for all records: each owner either sees
                // `steal` or is seen `busy` (see `Record::push_fast`).
                self.heavy_fence();
                for rec in self.records_from(head).filter(|rec| stale(rec)) {
                    // SAFETY: we hold the state lock and raised `steal` on
                    // this record before the heavy fence.
                    if let Some(bag) = unsafe { rec.steal_bag() } {
                        self.enqueue(&mut st, bag, false);
                    }
                    rec.lower_steal();
                }
            }
            memo.buffered.clear();
            memo.buffered.extend(
                self.records_from(head)
                    .filter(|rec| rec.buffered() > 0)
                    .map(address),
            );
            let epoch = self.epoch.load(Relaxed); // only written under this lock
            if st.unstarted_units == 0 {
                memo.unstarted = None;
                self.advance(&mut st);
            } else if took || memo.unstarted == Some(epoch) {
                memo.unstarted = None;
                self.start_locked(&mut st, &self.counters.timed);
            } else {
                memo.unstarted = Some(epoch);
                self.advance(&mut st);
            }
            let idle = st.waiting.is_empty() && st.unstarted_units == 0 && !st.running;
            let registrations = self.counters.registrations.load(Relaxed);
            let writers_idle = registrations == memo.registrations;
            memo.registrations = registrations;
            (
                idle && memo.buffered.is_empty(),
                self.front(&st) == Front::Complete,
                writers_idle,
            )
        };
        let owners = self.visit_owners(|queue| queue.visit(self));
        // Without taking `freeing` for nothing: a reclaimer preempted while
        // holding it keeps the writers' own frees and scans out.
        let mut freed = 0;
        if complete {
            freed += self.free_completed(usize::MAX, u64::MAX, Path::Reclaimer);
        }
        if writers_idle {
            freed += self.free_early_stashing();
        }
        #[cfg(not(loom))]
        self.check_stall();
        if idle && !owners && freed == 0 {
            Visited::Idle
        } else {
            Visited::Work
        }
    }

    /// Whether the domain has work the reclaimer would act on; taken under
    /// the state lock, which is what makes the reclaimer's sleep race-free
    /// (module `reclaimer`).
    pub(crate) fn has_work(&self) -> bool {
        let mine = {
            let st = lock(&self.state);
            if st.dead {
                return false;
            }
            !st.waiting.is_empty()
                || st.unstarted_units > 0
                || st.running
                || self.records().any(|rec| rec.buffered() > 0)
        };
        mine || self.visit_owners(|queue| queue.has_work())
    }

    /// Keeps a destructor's panic caught on the reclaimer thread for the
    /// next `barrier` or the teardown (the first one; later ones are
    /// dropped: their hook already reported them).
    pub(crate) fn stash_panic(&self, payload: Box<dyn Any + Send>) {
        lock(&self.panicked).get_or_insert(payload);
    }

    /// Stashes the first panic caught, if any, as [`stash_panic`](Inner::stash_panic).
    pub(super) fn stash_first(&self, first_panic: FirstPanic) {
        if let Some(payload) = first_panic.take() {
            self.stash_panic(payload);
        }
    }

    /// Resumes a panic the reclaimer caught in one of this domain's
    /// destructors, unless this thread is already unwinding.
    pub(super) fn resume_stashed(&self) {
        let mut stashed = FirstPanic::default();
        stashed.keep(lock(&self.panicked).take());
        stashed.resume();
    }

    /// Has the reclaimer visit `queue` (an owner's) with this domain.
    pub(crate) fn serve(&self, queue: Weak<dyn Served>) {
        let mut owners = lock(&self.served_owners);
        // Forget owners that are gone whenever the list doubles, so it stays
        // within twice the live owners even if the reclaimer never visits
        // (a `Weak` keeps its allocation), at amortized O(1) per owner.
        if owners.len() >= 16 && owners.len().is_power_of_two() {
            owners.retain(|q| q.strong_count() > 0);
        }
        owners.push(queue);
    }

    /// Visits the owner queues the reclaimer serves in this domain,
    /// forgetting those that are gone; returns whether any has work.
    fn visit_owners(&self, visit: impl Fn(&dyn Served) -> Visited) -> bool {
        let queues: Vec<_> = {
            let mut owners = lock(&self.served_owners);
            owners.retain(|q| q.strong_count() > 0);
            owners.iter().filter_map(Weak::upgrade).collect()
        };
        let mut work = false;
        for queue in queues {
            work |= visit(&*queue) == Visited::Work;
        }
        work
    }
}

/// The reclaimer (module `reclaimer`) serves a domain through this.
impl ServedDomain for Inner {
    fn id(&self) -> u64 {
        self.id
    }
    #[inline]
    fn wants_reclaimer(&self) -> bool {
        self.config().reclaimer
    }
    #[inline]
    fn served(&self) -> &AtomicBool {
        &self.served
    }
    #[cfg(not(loom))]
    fn target(&self) -> Target {
        if self.id == 0 {
            Target::Global(&GLOBAL_INNER)
        } else {
            Target::Owned(self.this.clone())
        }
    }
    fn time_bound(&self) -> Duration {
        self.config().time_bound
    }
    fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }
    fn visit(&self, memo: &mut Visit) -> Visited {
        Inner::visit(self, memo)
    }
    fn has_work(&self) -> bool {
        Inner::has_work(self)
    }
    fn stash_panic(&self, payload: Box<dyn Any + Send>) {
        Inner::stash_panic(self, payload)
    }
}
