//! [`Reclaimer`]: one process-wide thread that gives retired work its grace
//! period within the time bound and frees it, for writers that went idle.
//!
//! # Invariants
//!
//! - There is at most one reclaimer thread. It runs no user code: its
//!   visits run on runner threads (module `runners`), so that a destructor
//!   that takes seconds holds up its own domain only. It starts on the first
//!   registration of work in a served domain (a thread's first single
//!   retirement, a batch drain, an owner's retirement), never earlier, and
//!   never when the process-wide switch is off ([`Reclaimer::disable`]; off
//!   by default under Miri, and the thread does not exist under loom).
//! - It holds domains weakly: it never keeps a domain's state alive past
//!   the last `Arc` of it, and a torn-down domain is forgotten. It never
//!   holds a `Domain` handle of its own: a domain's teardown (and the
//!   destructors it runs) happens where the last handle drops, on a user's
//!   thread, or on the reclaimer when that handle belongs to an object the
//!   reclaimer frees (garbage of the same domain or of another one). A
//!   teardown inside a destructor run never waits for a `freeing` lock:
//!   two runners may each drop the other's domain's last handle, and the
//!   lock's holder frees what the teardown leaves once it lets go
//!   (`machine/free.rs`).
//! - It sleeps without a timeout only when no served domain has any work,
//!   and that is decided race-free ([`Doorbell`](doorbell::Doorbell)): it
//!   first announces that it parks, then looks at every domain under that
//!   domain's state lock (and its owners' queue locks). A registration
//!   takes the same lock and only then reads the status, so either the
//!   look sees the work, or the registration sees the announcement and
//!   wakes the thread.
//! - It is never needed for correctness: every object it would free is
//!   also freed by `barrier`, `collect`, later retirements, or the
//!   teardown. It only makes "later" come within the time bound.

mod doorbell;
#[cfg(not(loom))]
mod runners;
mod served;
#[cfg(not(loom))]
mod thread;

#[cfg(loom)]
pub use doorbell::{Doorbell, Sleeper};
#[cfg(loom)]
pub(crate) use served::visit_once;
#[cfg(not(loom))]
pub(crate) use served::Target;
pub(crate) use served::{ServedDomain, Visit, Visited};

/// The process-wide reclaimer thread: the switch that real-time and
/// embedded users (and tests that need exact counts) turn it off with.
///
/// One thread serves every domain built with
/// [`reclaimer(true)`](crate::DomainBuilder::reclaimer) (the default, and
/// [`Domain::global`](crate::Domain::global)): it is started lazily, by the
/// first retirement in such a domain, visits each domain every half
/// [time bound](crate::DomainBuilder::time_bound) while work waits there,
/// and sleeps while none does. On each visit it takes over buffers of single
/// retirements that were already non-empty on its previous visit, starts
/// the grace period of work that was already waiting, and frees every
/// object whose grace period has completed (unless another thread is
/// freeing that domain's objects right then). So objects retired by a
/// thread that then goes idle are freed within about 150 ms by default
/// (one and a half time bounds of 100 ms; the guarantee we document is one
/// second), plus however long readers stay in their sections.
///
/// It runs no destructor itself: it hands its visits to *runner* threads
/// (one, normally) and waits for them at most a quarter of the shortest
/// time bound without progress. A visit that takes longer (a destructor
/// that sleeps, blocks, or waits for a grace period) is left to its runner,
/// and that domain is not visited again until it returns, while another
/// runner makes the other visits: a slow destructor holds up its own domain
/// only, and every other domain keeps its time bound. There are at most 16
/// runners (16 domains inside destructors that do not return: the others
/// wait); one that has been idle for a second exits, but the last.
///
/// It never keeps the process from exiting, and is never needed for
/// correctness: with it off, objects are freed by retirements, `collect`,
/// `barrier` and teardowns as before, only later. A destructor that panics
/// on the reclaimer thread does not stop it; the other objects are freed,
/// and the panic is resumed by the next [`Domain::barrier`] of that domain
/// (or its last handle's drop), on that caller's thread. When the domain's
/// last handle was itself garbage of that domain, dropped by one of its
/// destructors on the reclaimer, no caller is left: a panic of its
/// destructors from then on is reported by the panic hook only, as for a
/// thread nobody joins.
///
/// Under Miri the switch starts off (Miri reports threads still running at
/// exit), so a test that wants the reclaimer calls [`Reclaimer::enable`]
/// and, at its end, [`Reclaimer::disable`], which stops the thread.
///
/// [`Domain::barrier`]: crate::Domain::barrier
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use ownrcu::{Domain, Reclaimer};
///
/// # if !Reclaimer::is_enabled() { return; }
/// let domain = Domain::new();
/// domain.retire(Box::new([0_u8; 192]));
/// // Nobody calls anything else, and yet:
/// let start = Instant::now();
/// while domain.stats().freed == 0 {
///     assert!(start.elapsed() < Duration::from_secs(60));
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// assert_eq!(domain.stats().freed_by.reclaimer, 1);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Reclaimer;

impl Reclaimer {
    /// Turns the reclaimer off for the whole process: stops its thread and
    /// its runners, waiting for the visits in progress to finish, and keeps
    /// it from starting again until [`enable`](Reclaimer::enable). Called
    /// from a destructor that the reclaimer runs, it cannot wait for the
    /// runners (that destructor's own thread is one): they exit once their
    /// visits end, and no new reclaimer starts before then, even if it is
    /// enabled again meanwhile (a retirement after that starts it).
    ///
    /// # Examples
    ///
    /// ```
    /// ownrcu::Reclaimer::disable();
    /// assert!(!ownrcu::Reclaimer::is_enabled());
    /// # ownrcu::Reclaimer::enable();
    /// ```
    pub fn disable() {
        #[cfg(not(loom))]
        thread::disable();
    }

    /// Turns the reclaimer back on (it is on by default, except under
    /// Miri). Its thread starts at the next registration of work in a
    /// served domain.
    ///
    /// # Examples
    ///
    /// ```
    /// ownrcu::Reclaimer::enable();
    /// assert!(ownrcu::Reclaimer::is_enabled());
    /// ```
    pub fn enable() {
        #[cfg(not(loom))]
        thread::enable();
    }

    /// Whether the process-wide switch is on.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(not(miri))]
    /// assert!(ownrcu::Reclaimer::is_enabled()); // the default
    /// ```
    #[must_use]
    pub fn is_enabled() -> bool {
        #[cfg(not(loom))]
        return thread::is_enabled();
        #[cfg(loom)]
        return false;
    }
}

/// Called after a registration of work in `inner`, outside its state lock:
/// starts or wakes the reclaimer if it serves `inner` and is not running.
#[inline]
pub(crate) fn notify<D: ServedDomain + ?Sized>(inner: &D) {
    #[cfg(not(loom))]
    if inner.wants_reclaimer() {
        thread::notify(inner);
    }
    #[cfg(loom)]
    let _ = inner;
}
