//! Counters a domain keeps about its own work.

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
    /// Objects retired so far (singly or in batches).
    pub retired: u64,
    /// Objects whose destructor has run.
    pub freed: u64,
    /// Objects retired but not freed yet.
    pub pending: u64,
    /// Batches drained into the domain.
    pub batches: u64,
    /// Units of work registered for a grace period: drained batches plus the
    /// per-thread buffers of single retirements (one per 128 objects).
    pub registrations: u64,
    /// Grace periods completed.
    pub grace_periods: u64,
}
