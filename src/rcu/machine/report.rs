//! What a domain reports: the [`Stats`] snapshot.
//!
//! # Invariants
//!
//! - A snapshot only reads counters (`Relaxed`) and walks the records: it
//!   takes no lock and never changes the machine.

use core::sync::atomic::Ordering::{Acquire, Relaxed};

use super::counters::Path;
use super::state::Inner;
use crate::rcu::record::Record;
use crate::rcu::stats::{FreedBy, Stats};

impl Inner {
    pub(super) fn freed_by(&self, path: Path) -> u64 {
        self.counters.freed_by[path as usize].load(Relaxed)
    }

    pub(crate) fn stats(&self) -> Stats {
        let in_bags: u64 = self.records().map(Record::buffered).sum();
        let retired = self.counters.retired.load(Relaxed) + in_bags;
        // Acquire, before the path counts: see `free_unit`.
        let freed = self.counters.freed.load(Acquire);
        Stats {
            retired,
            freed,
            pending: retired.saturating_sub(freed),
            batches: self.counters.batches.load(Relaxed),
            registrations: self.counters.registrations.load(Relaxed),
            crowded_registrations: self.counters.crowded_registrations.load(Relaxed),
            grace_periods: self.counters.grace_periods.load(Relaxed),
            grace_periods_started: self.epoch.load(Relaxed),
            grace_periods_hurried: self.counters.hurried.load(Relaxed),
            grace_periods_timed: self.counters.timed.load(Relaxed),
            peak_pending: self.counters.peak_pending.load(Relaxed),
            stalls: self.counters.stalls.load(Relaxed),
            grace_period_latency: self.counters.latency.snapshot(),
            heavy_fences: self.counters.heavy_fences.load(Relaxed),
            fencing_mode_entered: self.counters.fencing_mode.load(Relaxed),
            freed_by: FreedBy {
                amortized: self.freed_by(Path::Amortized),
                backpressure: self.freed_by(Path::Backpressure)
                    + self.freed_by(Path::BackpressureNoWait),
                barrier: self.freed_by(Path::Barrier),
                collect: self.freed_by(Path::Collect),
                teardown: self.freed_by(Path::Teardown),
                reclaimer: self.freed_by(Path::Reclaimer),
                early: self.freed_by(Path::Early),
            },
            throttle: self.counters.throttle.snapshot(),
            records: self.records().count() as u64,
            owners: self.owners.snapshot(),
        }
    }
}
