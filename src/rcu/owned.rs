//! Owned read sections ([`OwnedGuard`]): a read section that belongs to a
//! value instead of a thread, for code that moves between threads while it
//! reads (an async task holding what it read across `.await`).
//!
//! # Invariants
//!
//! - An owned section has a record of its domain to itself, claimed when
//!   the section starts and released when it ends, marked `owned`
//!   meanwhile. No thread's guard ever uses that record (a thread's guards
//!   use the thread's own record), so its section never nests, and its bag
//!   stays empty (retirements go through the retiring thread's record).
//! - Grace periods check the record like any other, so they wait for the
//!   section wherever its code runs. Its entry stores the record's state
//!   and then runs a full fence (`Record::enter_owned`), instead of the
//!   light fence a thread's section relies on: the loads the section
//!   protects may run on another thread than the entry, after a hand-over
//!   that orders them after it, so the entry itself must be ordered before
//!   them, whichever thread the grace period's heavy fence interrupts.
//! - Only `repin` and `drop` touch the record, through `&mut self` or by
//!   value: one thread at a time, the hand-over between threads ordering
//!   them. A shared reference gives out only `&Guard`, whose methods read
//!   no more of the record than its immutable domain id.
//! - Bounded waits (the bound, the soft bound) never wait for a grace
//!   period that an owned section holds up (module `machine::throttle`):
//!   the waiting thread may be the one running the section's code.

use core::mem::{align_of, size_of, ManuallyDrop};

use crate::rcu::guard::Guard;
use crate::rcu::record::Record;
use crate::Domain;

/// A read section that belongs to a value instead of a thread: `Send` and
/// `Sync`, so an async task can hold it, and what it loaded, across
/// `.await` while the runtime moves the task between threads. Made by
/// [`Domain::read_owned`].
///
/// It protects exactly what a [`Guard`] protects: [`guard`](OwnedGuard::guard)
/// lends one, and everything loaded through it (an [`Atomic`](crate::Atomic)'s
/// or a [`Link`](crate::Link)'s [`Shared`](crate::Shared)) lives as long as
/// that borrow of the section. Grace periods of its domain wait for it as
/// for a thread's section, so an owned section held up (a task stalled at
/// an `.await`) holds up the domain's frees like a stalled reader; keep
/// them short, and [`repin`](OwnedGuard::repin) in long reads.
///
/// It costs more than a [`Guard`]: entering claims a record of the domain
/// for the section alone and runs a full fence, and it keeps a handle of
/// the domain (one allocation).
///
/// # Waiting for grace periods inside one
///
/// [`Domain::synchronize`], [`Domain::barrier`] and waits for a
/// [`GracePeriod`](crate::GracePeriod) of a domain wait for every section
/// of it, the owned ones included: called by code that holds an owned
/// section of that domain, they wait for ever. Inside a thread's own
/// section such calls panic, since the thread knows its sections; an owned
/// section belongs to no thread, so this cannot be detected. End the owned
/// section before waiting. The domain's bound and soft bound
/// never wait for a grace period an owned section holds up (the
/// retiring code may be the section's): such retirements go past the bound
/// as a retirement inside a thread's section does (see [the bound on
/// pending objects](crate::DomainBuilder#the-bound-on-pending-objects)).
///
/// # Stall warnings
///
/// An owned section that holds a grace period up past the domain's
/// [stall timeout](crate::DomainBuilder::stall_timeout) is reported like a
/// thread's, by where it was made ([`Stall::owned_section`](crate::Stall::owned_section),
/// the caller of [`Domain::read_owned`]) instead of a thread, with how long
/// it has held the grace period up (its age is at least that; the section
/// reads no clock).
///
/// # Leaking it
///
/// `mem::forget` of an owned section leaves its section open for good: it
/// is then a reader that never leaves, and its domain frees nothing
/// retired after it entered (the domain's handle it keeps is leaked too, so
/// the domain is never torn down). That is a leak, never undefined
/// behaviour.
///
/// # Examples
///
/// A section entered on one thread, read on another:
///
/// ```
/// use ownrcu::{Atomic, Domain};
///
/// let domain = Domain::new();
/// let config = Atomic::new(String::from("v1"));
/// let section = domain.read_owned();
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let value: &String = &config.load(section.guard());
///         assert_eq!(value, "v1");
///     });
/// });
/// drop(section);
/// ```
///
/// Held across `.await`: the task's future stays `Send`, so a
/// multi-threaded runtime may move it between polls.
///
/// ```
/// use ownrcu::{Atomic, Domain};
///
/// fn assert_send<T: Send>(_: &T) {}
/// let domain = Domain::new();
/// let routes = Atomic::new(vec!["a", "b"]);
/// let task = async {
///     let section = domain.read_owned();
///     let table: &Vec<&str> = &routes.load(section.guard());
///     std::future::ready(()).await; // the section and `table` live across it
///     table.len()
/// };
/// assert_send(&task);
/// ```
///
/// A [`Guard`] cannot be held across `.await` in such a task: it is not
/// `Send`.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: &T) {}
/// let domain = ownrcu::Domain::new();
/// let guard = domain.read();
/// assert_send(&guard);
/// ```
pub struct OwnedGuard {
    /// The section, on a record claimed for it alone, whose domain is a
    /// handle kept in that record (`Record::owned_handle`), whose address
    /// stays put when the section moves. `'static` stands for "while this
    /// section lives": it leaves this value only as a `&Guard<'_>` borrowed
    /// from it.
    guard: ManuallyDrop<Guard<'static>>,
}

// The domain handle fits the record's room for it.
const _: () = assert!(
    size_of::<Domain>() <= size_of::<[usize; 2]>()
        && align_of::<Domain>() <= align_of::<[usize; 2]>()
);

// SAFETY: the section's record is its own, tied to no thread's locals
// (module invariants): it may end, or be renewed, on any thread. The domain
// handle is `Send`.
unsafe impl Send for OwnedGuard {}
// SAFETY: `&OwnedGuard` reaches only `&Guard` (whose `&self` methods read
// its domain and the record's immutable domain id, never its state or bag:
// module invariants) and `&Domain`, which is `Sync`.
unsafe impl Sync for OwnedGuard {}

impl OwnedGuard {
    /// The section as a [`Guard`], for loads: what is loaded through it
    /// lives as long as this borrow of the section.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let a = ownrcu::Atomic::new(7_u32);
    /// let section = domain.read_owned();
    /// assert_eq!(*a.load(section.guard()), 7);
    /// ```
    #[inline]
    pub fn guard(&self) -> &Guard<'_> {
        &self.guard
    }

    /// The domain this section belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let section = domain.read_owned();
    /// assert!(section.domain() == &domain);
    /// ```
    #[inline]
    pub fn domain(&self) -> &Domain {
        self.guard.domain()
    }

    /// Ends the section and starts a new one, so that grace periods waiting
    /// for it can complete (as [`Guard::repin`]; an owned section never
    /// nests, so it always renews). `&mut self`: nothing loaded under the
    /// old section can be used afterwards.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let mut section = domain.read_owned();
    /// let cookie = domain.grace_period();
    /// assert!(!domain.poll(&cookie)); // waits for our section
    /// section.repin();
    /// assert!(domain.poll(&cookie));
    /// ```
    pub fn repin(&mut self) {
        let record = self.guard.record();
        let paused = record.pause();
        debug_assert!(paused, "an owned section never nests");
        // `&mut self`: nothing loaded under the old section is in use.
        record.reset_reservation();
        record.enter_owned(&self.guard.domain().inner().epoch);
    }
}

impl Drop for OwnedGuard {
    fn drop(&mut self) {
        let record = self.guard.record();
        let release = record.exit();
        debug_assert!(!release, "an owned section's record is not temporary");
        // SAFETY: written by `read_owned` and read only here, once; the
        // guard, which borrows it, is not used again. Taken out before the
        // record is released, after which another section may write there.
        let domain = unsafe { record.owned_handle().cast::<Domain>().read() };
        // SAFETY: the record was claimed for this section alone
        // (`read_owned`), whose section has just ended; nothing uses it
        // again.
        unsafe { domain.inner().release_owned(record) };
    }
}

impl core::fmt::Debug for OwnedGuard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnedGuard")
            .field("domain", self.domain())
            .finish()
    }
}

/// `Domain::read_owned` lives here, with the section it makes.
impl Domain {
    /// Enters a read section owned by the returned value instead of this
    /// thread: it may move to other threads, and be held across `.await`
    /// (see [`OwnedGuard`]). Costs more than [`read`](Domain::read): a
    /// record claimed for the section, a full fence, a handle of the domain.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let a = ownrcu::Atomic::new(1_u64);
    /// let section = domain.read_owned();
    /// let one = std::thread::scope(|s| s.spawn(|| *a.load(section.guard())).join().unwrap());
    /// assert_eq!(one, 1);
    /// ```
    #[must_use = "the read section ends when the owned guard is dropped"]
    #[track_caller]
    pub fn read_owned(&self) -> OwnedGuard {
        let inner = self.inner();
        // SAFETY: records live as long as the domain, which the handle
        // written into this one keeps alive until the section's drop, the
        // last use of the record by this section.
        let record: &'static Record = unsafe { &*(inner.claim() as *const Record) };
        record.set_owned(true);
        #[cfg(not(loom))]
        record.set_owned_at(core::panic::Location::caller());
        let slot = record.owned_handle().cast::<Domain>();
        // SAFETY: the record is ours alone (claimed); its room fits and
        // aligns a `Domain` (checked above); nothing is in it (a previous
        // section took its handle out before releasing the record).
        unsafe { slot.write(self.clone()) };
        // SAFETY: just written; taken out only by `OwnedGuard::drop`, after
        // the guard that borrows it is done.
        let handle: &'static Domain = unsafe { &*slot };
        record.enter_owned(&inner.epoch);
        OwnedGuard {
            guard: ManuallyDrop::new(Guard::of_owned(handle, record)),
        }
    }
}
