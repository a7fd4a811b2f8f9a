//! Counters a domain and its owners keep about their work.
//!
//! Statistics only: never used for synchronization, so every counter is a
//! relaxed atomic, and a snapshot taken while other threads work is
//! approximate.

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::time::Duration;

/// A snapshot of a domain's counters, from [`Domain::stats`](crate::Domain::stats).
///
/// The counters are read one after another while other threads keep working,
/// so a snapshot taken during concurrent activity is approximate; one taken
/// after [`Domain::barrier`](crate::Domain::barrier) with no other activity is
/// exact.
///
/// # Examples
///
/// ```
/// let domain = ownrcu::Domain::new();
/// domain.retire(Box::new(7_u64));
/// domain.barrier();
/// let stats = domain.stats();
/// assert_eq!((stats.retired, stats.freed, stats.pending), (1, 1, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Objects retired into the domain (singly or in batches; objects
    /// retired through owners are in [`owners`](Stats::owners)).
    pub retired: u64,
    /// Objects whose destructor has run, after a grace period or at the
    /// domain's teardown. An object whose destructor panicked counts as
    /// freed: it is never dropped again.
    ///
    /// The counters are read one at a time, so a snapshot taken while
    /// other threads retire or free is not one instant; but once `freed`
    /// counts an object, what its destructor did is visible to the thread
    /// that took the snapshot, and [`freed_by`](Stats::freed_by) already
    /// counts it too (its paths add up to at least `freed`).
    pub freed: u64,
    /// Objects retired but not freed yet.
    pub pending: u64,
    /// Batches drained into the domain.
    pub batches: u64,
    /// Units of work registered for a grace period: drained batches plus the
    /// per-thread buffers of single retirements (one per 128 objects).
    pub registrations: u64,
    /// Of those, registrations made while more threads retired into the
    /// domain than the process has processors, when it rations grace
    /// periods instead of pacing them (see the
    /// [crate docs](crate#who-runs-destructors-and-when)).
    pub crowded_registrations: u64,
    /// Grace periods completed.
    pub grace_periods: u64,
    /// Grace periods started. A teardown that frees everything directly
    /// starts none, which this shows.
    pub grace_periods_started: u64,
    /// Of those, grace periods started early because somebody asked to
    /// hurry ([`Domain::retire_hurry`](crate::Domain::retire_hurry),
    /// [`Domain::collect`](crate::Domain::collect), ...).
    pub grace_periods_hurried: u64,
    /// Of those, grace periods the [`Reclaimer`](crate::Reclaimer) started
    /// because work had waited for one for a
    /// [time bound](crate::DomainBuilder::time_bound).
    pub grace_periods_timed: u64,
    /// The most objects seen pending in the domain at a registration (not
    /// counting owners' objects).
    pub peak_pending: u64,
    /// Stall warnings: readers reported for holding a grace period up past
    /// the [stall timeout](crate::DomainBuilder::stall_timeout).
    pub stalls: u64,
    /// How long grace periods took, from start to completion.
    pub grace_period_latency: Latency,
    /// Process-wide memory barriers the domain issued (`membarrier` where
    /// the kernel has it, else its fallback): one per grace period
    /// started, except those started while each other thread of the
    /// domain had either entered no read section since its last two
    /// barriers or was fencing its every entry (see
    /// [How the read side stays cheap](crate#how-the-read-side-stays-cheap);
    /// with the fallback, every start counts), and one per takeover of
    /// thread buffers (`barrier`, the reclaimer).
    pub heavy_fences: u64,
    /// Times a grace-period start switched a thread that enters read
    /// sections between every two grace periods to fencing its every entry
    /// itself, so that later starts skip the barrier for it (see
    /// [How the read side stays cheap](crate#how-the-read-side-stays-cheap));
    /// a start does so only where the barrier is dear and pacing decides
    /// when grace periods start. Always 0 without membarrier.
    pub fencing_mode_entered: u64,
    /// How the domain's own objects were freed, by path.
    pub freed_by: FreedBy,
    /// Backpressure: retirements that found the domain, or one of its
    /// owners, past its bound, and what they did about it.
    pub throttle: Throttle,
    /// Thread records the domain has allocated (one per thread that used
    /// it at the same time; a record handed back by an exited thread is
    /// reused by the next one). Every grace period scans them all.
    pub records: u64,
    /// Everything retired through the owners whose readers use this domain
    /// ([`User`](crate::User)s made with it), summed over all of them,
    /// torn-down ones included. The fields above do not count these objects:
    /// they wait in their owners' queues, which
    /// [`Domain::barrier`](crate::Domain::barrier) does not free
    /// ([`User::barrier`](crate::User::barrier) and the owners' teardowns
    /// do). Their registrations do count toward starting grace periods.
    pub owners: OwnerStats,
}

impl Stats {
    /// Objects retired into the domain directly and through its owners.
    #[must_use]
    pub fn retired_total(&self) -> u64 {
        self.retired + self.owners.retired
    }

    /// Objects retired into the domain directly or through its owners and
    /// not freed yet.
    #[must_use]
    pub fn pending_total(&self) -> u64 {
        self.pending + self.owners.pending
    }
}

/// How a domain's own objects were freed, by path (part of [`Stats`]).
///
/// The fields add up to [`Stats::freed`] once no free is in progress (while
/// one is, to at least it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FreedBy {
    /// By the amortized free of a retirement (at most 1024 per call).
    pub amortized: u64,
    /// Inline by a retirement past the bound (backpressure).
    pub backpressure: u64,
    /// By [`Domain::barrier`](crate::Domain::barrier).
    pub barrier: u64,
    /// By [`Domain::collect`](crate::Domain::collect).
    pub collect: u64,
    /// Directly by the domain's teardown (its last handle's drop).
    pub teardown: u64,
    /// By the [`Reclaimer`](crate::Reclaimer) thread.
    pub reclaimer: u64,
    /// Before their grace period completed, in a
    /// [robust](crate::DomainBuilder::robust) domain, because no reader in
    /// a section could hold them.
    pub early: u64,
}

/// Backpressure events of a domain and its owners (part of [`Stats`]); see
/// [the bound on pending objects](crate::DomainBuilder#the-bound-on-pending-objects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Throttle {
    /// Registrations that left the domain, or an owner, past its bound.
    pub over_bound: u64,
    /// Grace periods they started early (step 1).
    pub grace_periods_started: u64,
    /// Objects they freed inline (steps 2 and 3; the domain's own objects
    /// are also in [`FreedBy::backpressure`]).
    pub freed_inline: u64,
    /// Bounded waits for a grace period (step 3).
    pub waits: u64,
    /// Registrations that went on past the bound: the bounded wait ran out
    /// (or was skipped, its grace period having run out before), the
    /// thread could not wait (inside a read section or a destructor, or
    /// unwinding), or retiring threads do not free
    /// ([`DomainBuilder::retiring_threads_free`](crate::DomainBuilder::retiring_threads_free)).
    pub exceeded: u64,
    /// Registrations past the bound, inside a read section, that found
    /// nothing to free (another thread was freeing, or a reader held up the
    /// oldest grace period) and yielded the processor once before trying
    /// again: that thread may have been waiting for one.
    pub yields: u64,
    /// Waits at the [soft bound](crate::DomainBuilder#the-soft-bound): a
    /// registration past it found nothing to free while a reader held up
    /// the grace period of its oldest pending objects.
    pub soft_waits: u64,
    /// Those of them that ran out
    /// ([`soft_max_wait`](crate::DomainBuilder::soft_max_wait)); until that
    /// grace period completes, the soft bound waits again only once the
    /// pending objects have doubled.
    pub soft_exceeded: u64,
    /// Objects freed right after a soft wait that ended with the grace
    /// period complete (also in [`FreedBy::amortized`] for the domain's own
    /// objects).
    pub soft_freed: u64,
    /// Time retiring threads spent in those waits, soft and bounded
    /// together.
    pub time_waiting: Duration,
}

/// Buckets of a [`Latency`] histogram: bucket `i` holds durations of
/// `2^i` to `2^(i+1)` nanoseconds (the first also shorter ones, the last
/// also longer ones: about 18 minutes and more).
pub(crate) const LATENCY_BUCKETS: usize = 40;

/// A histogram of durations in power-of-two buckets (part of [`Stats`]):
/// how long a domain's grace periods took, from the moment one started
/// (its epoch published and the heavy fence issued) to the moment a thread
/// found that no reader held it any more. Recording costs a clock read per
/// grace period, none on the read path.
///
/// Quantiles are upper bounds: the end of the bucket they fall in (at most
/// twice the true value), except [`max`](Latency::max), which is exact.
///
/// # Examples
///
/// ```
/// let domain = ownrcu::Domain::new();
/// for _ in 0..10 {
///     domain.synchronize();
/// }
/// let latency = domain.stats().grace_period_latency;
/// assert_eq!(latency.count(), 10);
/// let median = latency.quantile(0.5).unwrap();
/// assert!(median <= latency.quantile(0.99).unwrap());
/// assert!(latency.max().unwrap() <= latency.quantile(1.0).unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    buckets: [u64; LATENCY_BUCKETS],
    max_ns: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            buckets: [0; LATENCY_BUCKETS],
            max_ns: 0,
        }
    }
}

impl Latency {
    /// How many durations it holds.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The duration below which a fraction `q` (0 to 1) of them fell,
    /// rounded up to its bucket's end (the longest, for 1); `None` if it
    /// holds none.
    ///
    /// # Panics
    ///
    /// If `q` is not between 0 and 1.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        assert!(
            (0.0..=1.0).contains(&q),
            "ownrcu: Latency::quantile({q}): the fraction must be between 0 and 1"
        );
        let count = self.count();
        if count == 0 {
            return None;
        }
        // The rank of the duration asked for, 1-based: at least the first.
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank && i + 1 < LATENCY_BUCKETS {
                let end = Duration::from_nanos(1 << (i + 1));
                return Some(end.min(Duration::from_nanos(self.max_ns)));
            }
        }
        self.max() // in the last bucket, which has no end
    }

    /// The longest one; `None` if it holds none.
    #[must_use]
    pub fn max(&self) -> Option<Duration> {
        (self.count() > 0).then(|| Duration::from_nanos(self.max_ns))
    }

    /// Each bucket's range and how many durations fell in it, shortest
    /// first, empty buckets included (the last one's range ends at
    /// `Duration::MAX`).
    pub fn buckets(&self) -> impl Iterator<Item = (core::ops::Range<Duration>, u64)> + '_ {
        self.buckets.iter().enumerate().map(|(i, &n)| {
            let start = if i == 0 { 0 } else { 1 << i };
            let end = if i + 1 < LATENCY_BUCKETS {
                Duration::from_nanos(1 << (i + 1))
            } else {
                Duration::MAX
            };
            (Duration::from_nanos(start)..end, n)
        })
    }
}

/// The counters behind a [`Latency`].
#[derive(Debug)]
pub(crate) struct LatencyCounters {
    buckets: [AtomicU64; LATENCY_BUCKETS],
    max_ns: AtomicU64,
}

impl LatencyCounters {
    pub(crate) const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS],
            max_ns: AtomicU64::new(0),
        }
    }

    /// Counts one duration.
    #[cfg_attr(loom, allow(dead_code))] // durations are not measured under loom
    pub(crate) fn record(&self, time: Duration) {
        let ns = nanos(time);
        let bucket = (ns.max(1).ilog2() as usize).min(LATENCY_BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Latency {
        Latency {
            buckets: core::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            max_ns: self.max_ns.load(Relaxed),
        }
    }
}

/// A snapshot of an owner's counters, from [`User::stats`](crate::User::stats)
/// and [`Holder::stats`](crate::Holder::stats), or of all the owners of a
/// domain summed ([`Stats::owners`]).
///
/// # Examples
///
/// ```
/// use ownrcu::{Domain, Slot, User};
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, Slot::new(Box::new(1_u32)));
/// mm.replace(Some(Box::new(2)), &mm).unwrap().retire();
/// mm.barrier();
/// let stats = mm.stats();
/// assert_eq!((stats.retired, stats.freed_after_grace_period, stats.pending), (1, 1, 0));
/// assert_eq!(domain.stats().owners, stats); // the only owner of the domain
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OwnerStats {
    /// Objects retired through the owner.
    pub retired: u64,
    /// Retired objects freed after a grace period.
    pub freed_after_grace_period: u64,
    /// Retired objects freed directly, with no grace period, because no
    /// reader could exist (teardown or exclusive access).
    pub freed_directly: u64,
    /// Retired objects not freed yet.
    pub pending: u64,
    /// Batches drained through the owner.
    pub batches: u64,
    /// Grace-period registrations: one per batch or single retirement.
    pub registrations: u64,
}

/// The counters behind [`OwnerStats`]: kept by each owner, and summed over
/// a domain's owners by the domain.
#[derive(Debug, Default)]
pub(crate) struct OwnerCounters {
    retired: AtomicU64,
    freed_after: AtomicU64,
    freed_direct: AtomicU64,
    batches: AtomicU64,
    registrations: AtomicU64,
}

impl OwnerCounters {
    pub(crate) const fn new() -> Self {
        Self {
            retired: AtomicU64::new(0),
            freed_after: AtomicU64::new(0),
            freed_direct: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            registrations: AtomicU64::new(0),
        }
    }

    /// `objects` retired, in one registration unless `registration` is
    /// false (freed right away after waiting for a grace period).
    pub(crate) fn retired(&self, objects: usize, registration: bool, batch: bool) {
        self.retired.fetch_add(objects as u64, Relaxed);
        if registration {
            self.registrations.fetch_add(1, Relaxed);
        }
        if batch {
            self.batches.fetch_add(1, Relaxed);
        }
    }

    /// `objects` freed, `direct`ly or after a grace period.
    pub(crate) fn freed(&self, objects: usize, direct: bool) {
        let counter = if direct {
            &self.freed_direct
        } else {
            &self.freed_after
        };
        // Release, after the destructors: a snapshot that counts these
        // objects (Acquire) sees what the destructors did.
        counter.fetch_add(objects as u64, Release);
    }

    pub(crate) fn snapshot(&self) -> OwnerStats {
        let retired = self.retired.load(Relaxed);
        let after = self.freed_after.load(Acquire);
        let direct = self.freed_direct.load(Acquire);
        OwnerStats {
            retired,
            freed_after_grace_period: after,
            freed_directly: direct,
            pending: retired.saturating_sub(after + direct),
            batches: self.batches.load(Relaxed),
            registrations: self.registrations.load(Relaxed),
        }
    }
}

/// `time` in nanoseconds, saturating at `u64::MAX` (what the latency
/// histograms, the counters and the machine's moving averages take).
#[cfg_attr(loom, allow(dead_code))] // durations are not measured under loom
pub(crate) fn nanos(time: Duration) -> u64 {
    u64::try_from(time.as_nanos()).unwrap_or(u64::MAX)
}
