//! Grace periods: starting them (rationed, paced), completing them, and
//! waiting for them (`synchronize`, cookies, `barrier`).
//!
//! # Invariants
//!
//! - A grace period starts only under the state lock: store `epoch = g`
//!   (release), then one heavy fence; it completes when no record is
//!   active with an epoch below `g` (see the machine's design notes).
//! - One grace period is in flight at a time, except in a robust domain,
//!   whose early frees start the next one while the current one is held
//!   up (module `early`): then `completed` moves up to the oldest active
//!   section's epoch as sections end, and the newest completes as usual.
//! - One starts only when somebody asked (`requested`), or, no sooner
//!   than the start floor after the last one (`GP_FLOOR_FACTOR`), when
//!   enough work waits (`GP_OBJECTS`, `GP_UNITS`; `CROWDED_GP_OBJECTS`
//!   while crowded, module `crowd`) or pacing allows (neither lazy nor
//!   crowded).

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::counters::Path;
use super::state::{lock, try_lock, Inner, State, CROWDED_GP_OBJECTS, GP_OBJECTS, GP_UNITS};
#[cfg(not(loom))]
use super::state::{
    GP_BUSY_OBJECTS, GP_COST_FACTOR, GP_COST_FACTOR_BUSY, GP_FLOOR_COST_FACTOR, GP_FLOOR_FACTOR,
    GP_FLOOR_MAX, GP_MAX_INTERVAL, GP_MIN_INTERVAL, START_COST_FLOOR_NS,
};
use crate::rcu::config::Config;
use crate::rcu::fence;
use crate::rcu::stats::OwnerCounters;

/// What the fence that started a grace period did ([`Inner::start_fence`]).
struct StartFence {
    /// What the heavy fence took, if one ran (nanoseconds).
    #[cfg_attr(loom, allow(dead_code))] // only pacing reads it
    barrier_ns: Option<u64>,
    /// If the start skipped the heavy fence: whether a record holds the
    /// new grace period up, read in the scan that found every record armed.
    blocks: Option<bool>,
}

impl Inner {
    /// Moves the machine forward as far as it can without waiting.
    pub(super) fn advance(&self, st: &mut State) {
        #[cfg(not(loom))]
        st.crowd.expire();
        let epoch = self.epoch.load(Relaxed); // only written under this lock
        if st.running {
            if self.any_blocks(st, epoch) {
                self.complete_older(st, epoch);
                return;
            }
            self.complete(st, epoch);
        }
        let wanted = st.requested > epoch
            || ((st.unstarted_objects >= self.gp_objects(st)
                || st.unstarted_units >= GP_UNITS
                || (!self.rations_only(st) && Self::paced(st)))
                && Self::past_floor(st));
        if !wanted {
            return;
        }
        let gp = epoch + 1;
        // Release: a reader that reads `gp` sees every unlink registered so
        // far (see the module docs).
        self.epoch.store(gp, Release);
        #[cfg(not(loom))]
        let start = std::time::Instant::now();
        let fenced = self.start_fence(st, gp);
        #[cfg(not(loom))]
        {
            let ns = crate::rcu::stats::nanos(start.elapsed());
            average_cost(&mut st.start_cost_ns, ns);
            if let Some(ns) = fenced.barrier_ns {
                average_cost(&mut st.barrier_cost_ns, ns);
            }
            st.started_at = Some(start);
        }
        st.running = true;
        st.unstarted_objects = 0;
        st.unstarted_units = 0;
        if !fenced.blocks.unwrap_or_else(|| self.any_blocks(st, gp)) {
            self.complete(st, gp);
        }
    }

    /// Whether grace periods start by rationing alone, without pacing: the
    /// domain is lazy, or crowded (module `crowd`).
    fn rations_only(&self, st: &State) -> bool {
        self.config.lazy || st.crowd.crowded()
    }

    /// The unstarted objects at which rationing starts a grace period.
    fn gp_objects(&self, st: &State) -> usize {
        if st.crowd.crowded() && !self.config.lazy {
            CROWDED_GP_OBJECTS
        } else {
            GP_OBJECTS
        }
    }

    /// Whether the start floor (`GP_FLOOR_FACTOR`) has passed since the
    /// last grace period started.
    fn past_floor(st: &State) -> bool {
        #[cfg(not(loom))]
        if let Some(last) = st.started_at {
            let floor = st
                .gp_ns
                .saturating_mul(GP_FLOOR_FACTOR)
                .min(st.start_cost_ns.saturating_mul(GP_FLOOR_COST_FACTOR));
            return last.elapsed() >= std::time::Duration::from_nanos(floor).min(GP_FLOOR_MAX);
        }
        #[cfg(loom)]
        let _ = st;
        true
    }

    /// The pacing interval for starts that cost `cost_ns` (see
    /// `GP_COST_FACTOR`).
    #[cfg(not(loom))]
    fn pacing_interval(cost_ns: u64, factor: u32) -> std::time::Duration {
        (std::time::Duration::from_nanos(cost_ns) * factor).clamp(GP_MIN_INTERVAL, GP_MAX_INTERVAL)
    }

    /// Whether busy records should fence their every entry (module
    /// `fence`, "Fencing every entry"): if heavy fences interrupt other
    /// processors (or count as if they did: `fence::fencing_forced`) and
    /// pacing decides when grace periods start (not a lazy
    /// or crowded domain, where rationing alone does and the mode would
    /// let none start sooner), the pacing interval of starts that run a
    /// heavy fence, busy (in nanoseconds).
    pub(super) fn fencing_pays(&self, st: &State) -> Option<u64> {
        #[cfg(not(loom))]
        {
            let dear =
                st.barrier_cost_ns >= fence::FENCING_MIN_BARRIER_NS || fence::fencing_forced();
            if dear && !self.rations_only(st) {
                let interval = Self::pacing_interval(st.barrier_cost_ns, GP_COST_FACTOR_BUSY);
                return Some(crate::rcu::stats::nanos(interval));
            }
        }
        #[cfg(loom)]
        let _ = (self, st);
        None
    }

    /// Whether unstarted work waits and the pacing interval has passed
    /// since the last grace period started (see `GP_COST_FACTOR` and
    /// `GP_COST_FACTOR_BUSY`).
    pub(super) fn paced(st: &State) -> bool {
        #[cfg(not(loom))]
        if st.unstarted_units > 0 {
            let Some(last) = st.started_at else {
                return true;
            };
            let factor = if st.unstarted_objects >= GP_BUSY_OBJECTS {
                GP_COST_FACTOR_BUSY
            } else {
                GP_COST_FACTOR
            };
            return last.elapsed() >= Self::pacing_interval(st.start_cost_ns, factor);
        }
        #[cfg(loom)]
        let _ = st;
        false
    }

    pub(super) fn complete(&self, st: &mut State, gp: u64) {
        st.running = false;
        #[cfg(not(loom))]
        if let Some(started) = st.started_at {
            let took = started.elapsed();
            self.counters.latency.record(took);
            let ns = crate::rcu::stats::nanos(took);
            super::state::eighth_average(&mut st.gp_ns, ns);
        }
        self.set_completed(gp);
    }

    /// Completes the older of several grace periods in flight (a robust
    /// domain starts one while another is held up: module `early`): grace
    /// period `g` is complete once no record in a section began before it,
    /// so everything up to the oldest section's epoch is (state lock held;
    /// the newest, `epoch`, is still held up). Nothing to do with one in
    /// flight, the only case outside robust domains.
    fn complete_older(&self, st: &mut State, epoch: u64) {
        let completed = self.completed.load(Relaxed); // written under this lock
        if epoch <= completed + 1 {
            return;
        }
        let done = self.oldest_section(st).map_or(epoch, |lo| lo.min(epoch));
        if done > completed {
            self.set_completed(done);
            // The oldest one still in flight started between the start of
            // the one just completed and now: timed from now, a stall
            // warning for it may come late, never early.
            #[cfg(not(loom))]
            {
                st.started_at = Some(std::time::Instant::now());
            }
        }
    }

    /// Publishes `gp` as the last grace period completed (state lock held).
    fn set_completed(&self, gp: u64) {
        // Relaxed: written under this lock only.
        let before = self.completed.load(Relaxed);
        // Release: pairs with the Acquire in `is_complete`.
        self.completed.store(gp, Release);
        self.counters.grace_periods.fetch_add(gp - before, Relaxed);
    }

    /// Registers work that an owner keeps in its own queue: returns the
    /// grace period it waits for, and counts it toward starting one, exactly
    /// like a unit in the domain's queue.
    pub(crate) fn register_owned(&self, objects: usize) -> u64 {
        let mut st = lock(&self.state);
        let gp = self.epoch.load(Relaxed) + 1;
        st.unstarted_objects += objects;
        st.unstarted_units += 1;
        self.advance(&mut st);
        drop(st);
        crate::rcu::reclaimer::notify(self);
        gp
    }

    /// The fence that starts a grace period: a plain full fence, and the
    /// heavy fence only if a record is not armed (module `fence`,
    /// "Skipping the heavy fence"; the fallback runs the heavy fence, a
    /// plain fence itself, every time, and counts it as no heavy fence).
    fn start_fence(&self, st: &mut State, gp: u64) -> StartFence {
        if !fence::uses_membarrier() {
            self.heavy_fence();
            return StartFence {
                barrier_ns: None,
                blocks: None,
            };
        }
        crate::sync::full_fence();
        if let Some(blocks) = self.all_armed(st, gp) {
            return StartFence {
                barrier_ns: None,
                blocks: Some(blocks),
            };
        }
        #[cfg(not(loom))]
        let start = std::time::Instant::now();
        self.heavy_fence();
        st.barriers += 1;
        #[cfg(not(loom))]
        let barrier_ns = crate::rcu::stats::nanos(start.elapsed());
        #[cfg(loom)]
        let barrier_ns = 0;
        StartFence {
            barrier_ns: Some(barrier_ns),
            blocks: None,
        }
    }

    /// The process-wide heavy fence (module `fence`), counted.
    pub(super) fn heavy_fence(&self) {
        fence::heavy();
        self.counters.heavy_fences.fetch_add(1, Relaxed);
    }

    /// The domain's limits.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The sum of the counters of the owners that use this domain.
    pub(crate) fn owner_counters(&self) -> &OwnerCounters {
        &self.owners
    }

    /// The grace period that a cookie taken now must wait for.
    pub(crate) fn snapshot(&self) -> u64 {
        let mut st = lock(&self.state);
        let gp = self.epoch.load(Relaxed) + 1;
        st.requested = st.requested.max(gp);
        gp
    }

    pub(crate) fn is_complete(&self, gp: u64) -> bool {
        self.completed() >= gp
    }

    /// The latest completed grace period.
    pub(crate) fn completed(&self) -> u64 {
        // Acquire: pairs with `complete`, so the caller sees every reader's
        // exit that the grace period waited for.
        self.completed.load(Acquire)
    }

    /// Moves the machine forward without blocking; returns whether `gp` is
    /// complete.
    pub(crate) fn poll(&self, gp: u64) -> bool {
        if self.is_complete(gp) {
            return true;
        }
        if let Some(mut st) = try_lock(&self.state) {
            st.requested = st.requested.max(gp);
            self.advance(&mut st);
        }
        self.is_complete(gp)
    }

    /// Blocks until grace period `gp` has completed, driving it.
    pub(crate) fn wait_for(&self, gp: u64) {
        self.wait_until(gp, None, false);
    }

    /// Takes every thread's bag into the waiting queue (state lock held).
    pub(super) fn steal_all(&self, st: &mut State) {
        // Both passes walk one snapshot of the list. A record published
        // after it did not see `steal` raised before the fence, so it must
        // not be taken (its owner may be in its fast path); it holds nothing
        // to take anyway: it was claimed after this barrier began, and a bag
        // is only created under the state lock, which we hold.
        let head = self.records.load(Acquire);
        for rec in self.records_from(head) {
            rec.raise_steal();
        }
        // One heavy fence for all records: each owner either sees `steal`
        // or is seen `busy` (see `Record::push_fast`).
        self.heavy_fence();
        for rec in self.records_from(head) {
            // SAFETY: we hold the state lock and raised `steal` before the
            // heavy fence.
            if let Some(bag) = unsafe { rec.steal_bag() } {
                self.enqueue(st, bag, false);
            }
            rec.lower_steal();
        }
    }

    /// `rcu_barrier`: frees everything retired before the call.
    pub(crate) fn barrier(&self) {
        let gp = {
            let mut st = lock(&self.state);
            self.steal_all(&mut st);
            let gp = self.epoch.load(Relaxed) + 1;
            st.requested = st.requested.max(gp);
            gp
        };
        self.wait_for(gp);
        // Everything registered before the call now waits for a completed
        // grace period. Taking `freeing` waits for frees in progress; then we
        // free the rest ourselves, up to `gp`: not what other threads keep
        // retiring meanwhile, which could keep us here forever.
        self.free_completed(usize::MAX, gp, Path::Barrier);
        self.resume_stashed();
    }
}

/// Adds a start's cost sample (nanoseconds) to a moving average (an eighth
/// per sample). A sample counts for at most twice the average (or
/// `START_COST_FLOOR_NS`): a fence during which the thread was preempted
/// measures the preemption, not the fence, and would stretch the pacing
/// interval for the next several grace periods. A real rise in cost still
/// moves the average up by an eighth per start.
#[cfg(not(loom))]
fn average_cost(average: &mut u64, sample: u64) {
    let sample = sample.min(average.saturating_mul(2).max(START_COST_FLOOR_NS));
    *average = (*average * 7 + sample) / 8;
}
