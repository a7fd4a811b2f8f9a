//! What the reclaimer needs of a domain it serves: the [`ServedDomain`]
//! trait (implemented by the grace-period machine), and what the reclaimer
//! remembers of a domain between two visits.
//!
//! # Invariants
//!
//! - The reclaimer never names a domain's concrete state: it holds served
//!   domains as [`Target`]s, weakly for user-created ones (so it never
//!   keeps a domain's state alive past its last `Arc`), and by a `'static`
//!   reference for the global one (never torn down).
//! - Everything here is plain data and traits: no locks, no threads.

use core::any::Any;
use core::sync::atomic::AtomicBool;
use core::time::Duration;

/// A domain the reclaimer serves.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) trait ServedDomain: Send + Sync {
    /// Unique among all domains ever created; 0 is the global domain.
    fn id(&self) -> u64;
    /// Whether the domain was built to be served by the reclaimer.
    fn wants_reclaimer(&self) -> bool;
    /// Whether the reclaimer knows this domain (set once, by the reclaimer).
    fn served(&self) -> &AtomicBool;
    /// How the reclaimer holds this domain ([`Target`]).
    #[cfg(not(loom))]
    fn target(&self) -> Target;
    /// The domain's time bound: the reclaimer visits it every half bound
    /// while work waits there.
    fn time_bound(&self) -> Duration;
    /// Whether the domain was torn down.
    fn is_dead(&self) -> bool;
    /// One visit of the reclaimer; `memo` is what it remembered of the
    /// previous one.
    fn visit(&self, memo: &mut Visit) -> Visited;
    /// Whether the domain has work the reclaimer would act on, decided
    /// under the domain's state lock (what makes the reclaimer's sleep
    /// race-free).
    fn has_work(&self) -> bool;
    /// Keeps a destructor's panic caught on the reclaimer thread for the
    /// domain's next `barrier` or its teardown.
    fn stash_panic(&self, payload: Box<dyn Any + Send>);
}

/// One visit of `domain`, as the reclaimer makes it: a panic that escapes
/// the visit (one not already stashed inside it) is stashed in the domain.
/// Returns what the visit found, or `None` if it panicked.
pub(crate) fn visit_once(domain: &dyn ServedDomain, memo: &mut Visit) -> Option<Visited> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| domain.visit(memo))) {
        Ok(visited) => Some(visited),
        Err(payload) => {
            domain.stash_panic(payload);
            None
        }
    }
}

/// A served domain, as the reclaimer holds it.
#[derive(Clone)]
#[cfg(not(loom))]
pub(crate) enum Target {
    /// The global domain.
    Global(&'static dyn ServedDomain),
    /// A user-created domain, held weakly.
    Owned(std::sync::Weak<dyn ServedDomain>),
}

/// A served domain's state, kept alive for one visit.
#[cfg(not(loom))]
pub(crate) enum Alive {
    Global(&'static dyn ServedDomain),
    Owned(std::sync::Arc<dyn ServedDomain>),
}

#[cfg(not(loom))]
impl Target {
    /// The domain's state, unless it is gone.
    pub(crate) fn upgrade(&self) -> Option<Alive> {
        match self {
            Target::Global(inner) => Some(Alive::Global(*inner)),
            Target::Owned(weak) => weak.upgrade().map(Alive::Owned),
        }
    }
}

#[cfg(not(loom))]
impl core::ops::Deref for Alive {
    type Target = dyn ServedDomain;
    fn deref(&self) -> &(dyn ServedDomain + 'static) {
        match self {
            Alive::Global(inner) => *inner,
            Alive::Owned(inner) => &**inner,
        }
    }
}

/// What the reclaimer remembers of a domain between two visits (filled in
/// by the domain's `visit`).
#[derive(Debug, Default)]
pub(crate) struct Visit {
    /// Addresses of the records whose buffer was non-empty.
    pub(crate) buffered: Vec<usize>,
    /// The epoch, if work waited unstarted for grace period `epoch + 1`.
    pub(crate) unstarted: Option<u64>,
    /// The domain's registrations counted at the visit.
    pub(crate) registrations: u64,
}

/// What a visit found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visited {
    /// Work still waits (buffers, unstarted or running grace periods, or
    /// units not freed yet): come back after half a time bound.
    Work,
    /// Nothing waits: the reclaimer may sleep until the next registration.
    Idle,
    /// The domain was torn down: forget it.
    Dead,
}
