//! What a domain counts ([`Counters`], [`ThrottleCounters`]) and who frees
//! ([`Path`]).
//!
//! # Invariants
//!
//! - The counters are statistics only: never used for synchronization, so
//!   all `Relaxed`. The objects freed by each path add up to `freed`.

use core::sync::atomic::AtomicU64 as StdAtomicU64;
use core::sync::atomic::Ordering::Relaxed;

use crate::rcu::stats::{LatencyCounters, Throttle};

/// Domain-wide counters (statistics only; never used for synchronization).
#[derive(Debug)]
pub(super) struct Counters {
    /// Objects handed to the domain (registered units); objects still in a
    /// thread's bag are counted by its record.
    pub(super) retired: StdAtomicU64,
    pub(super) freed: StdAtomicU64,
    pub(super) batches: StdAtomicU64,
    pub(super) registrations: StdAtomicU64,
    /// Registrations made while the domain was crowded (module `crowd`).
    pub(super) crowded_registrations: StdAtomicU64,
    pub(super) grace_periods: StdAtomicU64,
    /// Grace periods started because somebody asked to hurry.
    pub(super) hurried: StdAtomicU64,
    /// Grace periods the reclaimer started because work waited a time bound.
    pub(super) timed: StdAtomicU64,
    /// The most objects seen pending at a registration.
    pub(super) peak_pending: StdAtomicU64,
    /// Stall warnings reported (module `stalls`).
    pub(super) stalls: StdAtomicU64,
    /// How long grace periods took (recorded by `complete`).
    pub(super) latency: LatencyCounters,
    /// Heavy fences issued (`Inner::heavy_fence`).
    pub(super) heavy_fences: StdAtomicU64,
    /// Records that grace-period starts put in fencing mode (module
    /// `fence`).
    pub(super) fencing_mode: StdAtomicU64,
    /// Objects freed, by path (they add up to `freed`).
    pub(super) freed_by: [StdAtomicU64; Path::COUNT],
    /// Backpressure events (module `throttle`).
    pub(super) throttle: ThrottleCounters,
}

/// Who frees completed units, which decides how `free_completed` takes
/// the `freeing` lock, and what it does with a destructor's panic.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// A retirement's bounded free: skips if another thread is freeing,
    /// propagates a panic at once.
    Amortized = 0,
    /// A retirement past the bound: waits for the lock at most `max_wait`,
    /// propagates.
    Backpressure = 1,
    /// `barrier`: waits for the lock, frees past panics, resumes the first.
    Barrier = 2,
    /// `collect`: skips if another thread is freeing, propagates.
    Collect = 3,
    /// The domain's teardown: as `Barrier`.
    Teardown = 4,
    /// The reclaimer thread: skips if another thread is freeing, frees past
    /// panics and stashes the first for the next `barrier` or teardown,
    /// before it lets go of the `freeing` lock.
    Reclaimer = 5,
    /// A retirement past the bound inside a read section: as `Backpressure`,
    /// but skips if another thread is freeing (it must not wait).
    BackpressureNoWait = 6,
    /// A robust domain's early free (module `early`): skips if another
    /// thread is freeing, propagates.
    Early = 7,
}

impl Path {
    pub(super) const COUNT: usize = 8;

    pub(super) fn frees_past_panics(self) -> bool {
        matches!(self, Path::Barrier | Path::Teardown | Path::Reclaimer)
    }
}

/// Backpressure events (statistics only).
#[derive(Debug, Default)]
pub(super) struct ThrottleCounters {
    pub(super) over_bound: StdAtomicU64,
    pub(super) grace_periods_started: StdAtomicU64,
    pub(super) freed_inline: StdAtomicU64,
    pub(super) waits: StdAtomicU64,
    pub(super) exceeded: StdAtomicU64,
    pub(super) yields: StdAtomicU64,
    pub(super) soft_waits: StdAtomicU64,
    pub(super) soft_exceeded: StdAtomicU64,
    pub(super) soft_freed: StdAtomicU64,
    /// Nanoseconds spent in soft and bounded waits.
    pub(super) wait_ns: StdAtomicU64,
}

impl ThrottleCounters {
    pub(super) const fn new() -> Self {
        Self {
            over_bound: StdAtomicU64::new(0),
            grace_periods_started: StdAtomicU64::new(0),
            freed_inline: StdAtomicU64::new(0),
            waits: StdAtomicU64::new(0),
            exceeded: StdAtomicU64::new(0),
            yields: StdAtomicU64::new(0),
            soft_waits: StdAtomicU64::new(0),
            soft_exceeded: StdAtomicU64::new(0),
            soft_freed: StdAtomicU64::new(0),
            wait_ns: StdAtomicU64::new(0),
        }
    }

    pub(super) fn snapshot(&self) -> Throttle {
        Throttle {
            over_bound: self.over_bound.load(Relaxed),
            grace_periods_started: self.grace_periods_started.load(Relaxed),
            freed_inline: self.freed_inline.load(Relaxed),
            waits: self.waits.load(Relaxed),
            exceeded: self.exceeded.load(Relaxed),
            yields: self.yields.load(Relaxed),
            soft_waits: self.soft_waits.load(Relaxed),
            soft_exceeded: self.soft_exceeded.load(Relaxed),
            soft_freed: self.soft_freed.load(Relaxed),
            time_waiting: core::time::Duration::from_nanos(self.wait_ns.load(Relaxed)),
        }
    }
}
