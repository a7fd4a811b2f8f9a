//! Backpressure, hurry and collect: the calls that make a domain's grace
//! periods and frees happen sooner than rationing alone would.
//!
//! # Invariants
//!
//! - A retirement that leaves its domain (or its owner) past the bound
//!   ([`Config`](crate::rcu::config::Config)) pays in the documented steps:
//!   start a grace period now, free completed work inline (waiting at most
//!   `max_wait` for a thread that is freeing: its destructors may wait for
//!   grace periods of any domain, which readers hold up), then wait for that
//!   grace period for at most `max_wait` and free again. It never waits for
//!   a reader without a bound: a grace period that ran out is remembered in
//!   `Inner::stalled`, and until it completes nobody waits for it again.
//! - A thread that cannot free without risking an abort or a lock cycle
//!   (unwinding, or inside a destructor of any domain or owner: it holds
//!   that one's `freeing` lock, and waiting for another's could close a
//!   cycle with a thread doing the converse) goes past the bound at once.
//!   A thread inside a read section of the domain, or of any other, must not
//!   wait (the grace period waits for its section; a freer may be waiting
//!   for a grace period of the other domain, which waits for it), but it
//!   does steps 1 and 2 without waiting: it starts the grace period and
//!   frees what is complete unless another thread is freeing. Were it to
//!   skip the free too, a writer that retires inside its read sections, as
//!   lock-free structures do, would never free anything once past the
//!   bound. If it freed nothing, it yields the processor once and tries
//!   again: the thread that is freeing, or the reader that holds the oldest
//!   grace period up, may be waiting for a processor (more runnable threads
//!   than cores), and while it waits every retiring thread goes past the
//!   bound; a yield is bounded, unlike a wait.
//! - The soft bound's wait ([`Inner::pace`]) is for a grace period that
//!   has started; a thread inside a read section of the domain waits only
//!   for one that started before its oldest open section did (its section
//!   epoch is at least that grace period's number), which therefore does
//!   not wait for it. So a waiter never waits for itself, and a chain of
//!   waiters (each held up only by readers whose sections are older than
//!   the grace period it waits for) waits for strictly older grace periods
//!   at each step: it cannot close a cycle, and each wait is bounded by
//!   `soft_max_wait` in any case. Lock-free structures retire inside their
//!   read sections: without this, a writer preempted inside its section
//!   let the other writers' garbage grow unchecked.
//! - Neither wait is for a grace period that an owned section (module
//!   `owned`) holds up: such a section belongs to no thread, so the waiting
//!   thread may be the one running its code; the bound counts it as
//!   exceeded, the soft bound just goes on.
//! - Every path is counted, so `Stats::throttle` tells what backpressure
//!   cost.

use core::sync::atomic::AtomicU64 as StdAtomicU64;
use core::sync::atomic::Ordering::Relaxed;
use core::time::Duration;

use super::counters::Path;
use super::state::{lock, Inner, State, COLLECT_BUDGET};
use crate::rcu::record::Record;
use crate::rcu::unwind::may_free;

/// Where a throttled registration went: the domain's own queue, or an
/// owner's.
pub(crate) trait Throttled {
    /// Frees completed objects of the queue: all of them, waiting at most
    /// `max_wait` for a thread that is freeing, if `wait`; else at most
    /// `COLLECT_BUDGET`,
    /// and none if another thread is freeing (a thread inside a read
    /// section: its section holds every other writer's grace periods, so
    /// it must stay short). Returns how many it freed.
    fn free_inline(&self, wait: bool) -> usize;
    /// Whether the queue is past its bound.
    fn over_bound(&self) -> bool;
    /// The grace period its oldest unit waits for, if it holds any.
    fn oldest(&self) -> Option<u64>;
    /// Its objects registered and not freed yet.
    fn pending(&self) -> u64;
    /// The amortized free: at most `COLLECT_BUDGET` completed objects, none
    /// if another thread is freeing; returns how many it freed.
    fn free_amortized(&self) -> usize;
}

/// The domain's own queue, as a [`Throttled`].
struct Own<'a>(&'a Inner);

impl Throttled for Own<'_> {
    fn free_inline(&self, wait: bool) -> usize {
        if !self.0.config.retiring_threads_free {
            return 0;
        }
        if wait {
            self.0
                .free_completed(usize::MAX, u64::MAX, Path::Backpressure)
        } else {
            self.0
                .free_completed(COLLECT_BUDGET, u64::MAX, Path::BackpressureNoWait)
        }
    }
    fn over_bound(&self) -> bool {
        self.0.pending() > self.0.config.max_pending as u64
    }
    fn oldest(&self) -> Option<u64> {
        lock(&self.0.state).waiting.front().map(|w| w.gp)
    }
    fn pending(&self) -> u64 {
        self.0.pending()
    }
    fn free_amortized(&self) -> usize {
        self.0
            .free_completed(COLLECT_BUDGET, u64::MAX, Path::Amortized)
    }
}

impl Inner {
    /// Backpressure on a registration that left `queue` (the domain's own
    /// queue if `None`) past its bound; see the module invariants.
    #[cold]
    pub(crate) fn throttle(&self, queue: Option<&dyn Throttled>) {
        let own = Own(self);
        let is_own = queue.is_none();
        let queue = queue.unwrap_or(&own);
        let c = &self.counters.throttle;
        c.over_bound.fetch_add(1, Relaxed);
        if !may_free() || crate::rcu::freeing::is_freeing_any() {
            c.exceeded.fetch_add(1, Relaxed);
            return;
        }
        // 1. The grace period that everything registered so far waits for,
        //    started now if it was not.
        let gp = self.start_now(&c.grace_periods_started);
        // A robust domain first frees what no reader can hold (module
        // `early`): a reader that stays holds only older objects.
        if is_own
            && self.free_early(None, self.config.max_pending as u64) > 0
            && !queue.over_bound()
        {
            return;
        }
        // Inside a read section of the domain it must not wait (for a
        // freeing thread, nor for a grace period that waits for this very
        // section), but it frees what is complete, as an amortized free
        // would: without that, a writer that always retires inside its
        // sections would never free anything once past the bound. Nor inside
        // a section of another domain: the thread freeing this one may be
        // in a destructor waiting for that domain's grace period.
        if crate::rcu::local::in_section(self.id) || crate::rcu::local::in_any_section() {
            let mut freed = queue.free_inline(false);
            if freed == 0 && queue.over_bound() {
                c.yields.fetch_add(1, Relaxed);
                crate::sync::yield_now();
                freed = queue.free_inline(false);
            }
            c.freed_inline.fetch_add(freed as u64, Relaxed);
            if queue.over_bound() {
                c.exceeded.fetch_add(1, Relaxed);
            }
            return;
        }
        // 2. Free what is complete, past the amortized budget.
        c.freed_inline
            .fetch_add(queue.free_inline(true) as u64, Relaxed);
        if !queue.over_bound() {
            return;
        }
        // 3. Wait for it a bounded time (unless another thread completed it
        //    meanwhile), but not if a grace period that ran out before has
        //    still not completed (the same stalled reader); then free again.
        if !self.is_complete(gp) {
            // Held up by an owned section: this thread may be running its
            // code (module `owned`), so it must not wait for it.
            if self.owned_section_holds(gp) {
                c.exceeded.fetch_add(1, Relaxed);
                return;
            }
            let stalled = self.stalled.load(Relaxed);
            if stalled != 0 && !self.is_complete(stalled) {
                c.exceeded.fetch_add(1, Relaxed);
                return;
            }
            c.waits.fetch_add(1, Relaxed);
            if !self.timed_wait(gp, self.config.max_wait, false) {
                self.stalled.fetch_max(gp, Relaxed);
                c.exceeded.fetch_add(1, Relaxed);
                return;
            }
        }
        c.freed_inline
            .fetch_add(queue.free_inline(true) as u64, Relaxed);
        if !self.config.retiring_threads_free {
            // Nothing was freed: the retirement goes on past the bound.
            c.exceeded.fetch_add(1, Relaxed);
        }
    }

    /// The soft bound: a registration that left `queue` (the domain's own
    /// queue if `None`) past it and found nothing to free waits a bounded
    /// time for the grace period its oldest unit needs, if a reader holds
    /// that one up; see [`DomainBuilder`](crate::DomainBuilder)'s section on
    /// the soft bound. Starts no grace period.
    #[cold]
    pub(crate) fn pace(&self, queue: Option<&dyn Throttled>) {
        let own = Own(self);
        let queue = queue.unwrap_or(&own);
        if !self.config.retiring_threads_free
            || !may_free()
            || crate::rcu::freeing::is_freeing_any()
        {
            return;
        }
        // Not started: rationing and pacing decide when it starts, no reader
        // holds it up. Complete: the amortized free takes it (next time).
        let Some(gp) = queue.oldest() else { return };
        if gp > self.epoch.load(Relaxed) || self.is_complete(gp) {
            return;
        }
        // Inside a read section of the domain, only a grace period that
        // started before the section did: that one does not wait for this
        // thread (module invariants).
        let in_section = crate::rcu::local::section_epoch(self.id);
        if in_section.is_some_and(|e| e < gp) {
            return;
        }
        // Nor one that an owned section holds up: this thread may be
        // running its code (module `owned`).
        if self.owned_section_holds(gp) {
            return;
        }
        // The same hold-up as a soft wait that already ran out: wait again
        // only once the pending objects have doubled since, so a stalled
        // reader costs a writer one wait per doubling.
        let pending = queue.pending();
        let stalled = self.soft_stalled.load(Relaxed);
        if stalled != 0 && !self.is_complete(stalled) && pending < self.soft_resume.load(Relaxed) {
            return;
        }
        let c = &self.counters.throttle;
        c.soft_waits.fetch_add(1, Relaxed);
        if !self.timed_wait(gp, self.config.soft_max_wait, in_section.is_some()) {
            let resume = pending.saturating_mul(2);
            if self.soft_stalled.fetch_max(gp, Relaxed) < gp {
                self.soft_resume.store(resume, Relaxed); // a new hold-up
            } else {
                self.soft_resume.fetch_max(resume, Relaxed);
            }
            c.soft_exceeded.fetch_add(1, Relaxed);
            return;
        }
        c.soft_freed
            .fetch_add(queue.free_amortized() as u64, Relaxed);
    }

    /// A backpressure wait: [`wait_until`](Inner::wait_until) `gp` for at
    /// most `max`, its time counted in the throttle's `wait_ns`;
    /// `in_section` if the waiting thread is inside a read section of the
    /// domain.
    fn timed_wait(&self, gp: u64, max: Duration, in_section: bool) -> bool {
        #[cfg(not(loom))]
        let start = std::time::Instant::now();
        let done = self.wait_until(gp, Some(max), in_section);
        #[cfg(not(loom))]
        {
            let ns = crate::rcu::stats::nanos(start.elapsed());
            self.counters.throttle.wait_ns.fetch_add(ns, Relaxed);
        }
        done
    }

    /// Starts the grace period that everything registered so far waits for,
    /// if it has not started, and returns it; counts it in `started` if
    /// this call started it.
    pub(crate) fn start_now(&self, started: &StdAtomicU64) -> u64 {
        self.start_locked(&mut lock(&self.state), started)
    }

    /// [`start_now`](Inner::start_now), with the state lock held.
    pub(super) fn start_locked(&self, st: &mut State, started: &StdAtomicU64) -> u64 {
        let epoch = self.epoch.load(Relaxed); // only written under this lock
        let gp = epoch + u64::from(st.unstarted_units > 0);
        st.requested = st.requested.max(gp);
        self.advance(st);
        if self.epoch.load(Relaxed) > epoch {
            started.fetch_add(1, Relaxed);
        }
        gp
    }

    /// `call_rcu_hurry`: starts the grace period that everything registered
    /// so far waits for, now.
    pub(crate) fn hurry(&self) {
        self.start_now(&self.counters.hurried);
    }

    /// Hands this thread's buffer of single retirements to the domain, so
    /// the next grace period covers it.
    pub(crate) fn flush(&self, rec: Option<&Record>) {
        let Some(rec) = rec else { return };
        let mut st = lock(&self.state);
        if st.dead {
            return;
        }
        // SAFETY: we hold the state lock and own the record.
        if let Some(bag) = unsafe { rec.steal_bag() } {
            self.enqueue(&mut st, bag, false);
        }
    }

    /// `Domain::collect`: hands over this thread's buffer, starts a grace
    /// period if work waits for one, and frees what is complete, without
    /// waiting for anything; returns how many objects it freed.
    pub(crate) fn collect(&self, rec: Option<&Record>) -> usize {
        self.flush(rec);
        self.hurry();
        if !may_free() {
            return 0;
        }
        self.free_completed(usize::MAX, u64::MAX, Path::Collect) + self.free_early(rec, 0)
    }

    /// Blocks until grace period `gp` has completed, driving it, for at most
    /// `max` (forever if `None`); returns whether it completed. The caller
    /// says whether it waits `in_section` (inside a read section of the
    /// domain: `State::poll_window`). A wait that found `gp` incomplete
    /// counts its length in `State::wait_ns`.
    pub(crate) fn wait_until(&self, gp: u64, max: Option<Duration>, in_section: bool) -> bool {
        // Drives `gp` once; returns whether it is complete.
        let drive = |st: &mut State| {
            st.requested = st.requested.max(gp);
            self.advance(st);
            self.is_complete(gp)
        };
        let window = {
            let mut st = lock(&self.state);
            if drive(&mut st) {
                return true;
            }
            st.poll_window(in_section)
        };
        #[cfg(not(loom))]
        let start = std::time::Instant::now();
        let done = super::poll::poll_until(max, window, || {
            let done = drive(&mut lock(&self.state));
            #[cfg(not(loom))]
            if !done {
                self.check_stall();
            }
            done
        });
        #[cfg(not(loom))]
        {
            let ns = crate::rcu::stats::nanos(start.elapsed());
            super::state::eighth_average(&mut lock(&self.state).wait_ns, ns);
        }
        done
    }
}
