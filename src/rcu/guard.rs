//! [`Guard`]: a read-side critical section.
//!
//! # Invariants
//!
//! - While a guard is alive its thread's record in the guard's domain is
//!   active, so no grace period that started after the section began can
//!   complete, and nothing a reader could reach from inside it is freed.
//! - A guard stays on the thread that made it (`!Send`), because the record
//!   it activates belongs to that thread.

use core::marker::PhantomData;

use crate::rcu::record::Record;
use crate::Domain;

/// A read-side critical section of a [`Domain`], from [`Domain::read`].
///
/// Objects that were reachable when the section began stay valid until the
/// guard drops. Guards nest, cost no atomic read-modify-write or fence
/// instruction to make or drop, and never run destructors.
///
/// A guard cannot outlive its domain, and cannot be sent to another thread:
///
/// ```compile_fail,E0277
/// fn is_send<T: Send>(_: T) {}
/// let domain = ownrcu::Domain::new();
/// is_send(domain.read()); // error: `*const ()` cannot be sent between threads
/// ```
///
/// # Threads
///
/// `Guard` is neither `Send` nor `Sync`: the section it holds open belongs to
/// the thread's record in the domain, so the guard stays on that thread, and
/// so does a reference to it:
///
/// ```compile_fail,E0277
/// fn is_sync<T: Sync>(_: &T) {}
/// let domain = ownrcu::Domain::new();
/// is_sync(&domain.read()); // error: `*const ()` cannot be shared between threads
/// ```
///
/// The same holds for an owner's [`Read`](crate::Read), which holds a guard:
///
/// ```compile_fail,E0277
/// fn is_send<T: Send>(_: T) {}
/// let domain = ownrcu::Domain::new();
/// let mm = ownrcu::User::new(&domain, 1_u64);
/// is_send(mm.read()); // error: `*const ()` cannot be sent between threads
/// ```
///
/// # Leaking it
///
/// Forgetting a guard (`mem::forget`) is never undefined behaviour, but it
/// leaves its thread inside the section for good: no grace period of the
/// domain completes again, so nothing retired into the domain (or its
/// owners) after that is freed until the domain's teardown, which frees it
/// all directly; waiting for a grace period ([`Domain::synchronize`],
/// [`Domain::barrier`], [`User::barrier`](crate::User::barrier)) blocks on
/// other threads and panics on this one, and the thread's record is never
/// reused. Retiring never blocks.
///
/// # Examples
///
/// ```
/// let domain = ownrcu::Domain::new();
/// let guard = domain.read();
/// assert!(std::ptr::eq(guard.domain(), &domain));
/// ```
#[must_use = "the read section ends when the guard is dropped"]
pub struct Guard<'d> {
    /// The domain, its address tagged with what kind of domain it is
    /// ([`ROBUST`], module `robust`; [`GLOBAL`]): loads test those bits of
    /// the address, which a guard kept in a register has at hand, instead
    /// of loading anything.
    domain: *const Domain,
    /// Also gives the domain's id to pointers' domain checks (an immutable
    /// field on the line the entry wrote), so the guard is two words: when
    /// its address escapes, entering and leaving store and reload only
    /// these.
    record: &'d Record,
    _not_send: PhantomData<(*const (), &'d Domain)>,
}

/// The bit of `Guard::domain` that says the domain is robust.
const ROBUST: usize = 1;
/// The bit of `Guard::domain` that says the domain is the global one (which
/// is never robust): what a `GlobalDomain` pointer checks on every use.
const GLOBAL: usize = 2;
/// Both tag bits (a `Domain` is aligned to 8).
const KIND: usize = ROBUST | GLOBAL;
const _: () = assert!(core::mem::align_of::<Domain>() > KIND);

// Two words (see `record`).
const _: () = assert!(core::mem::size_of::<Guard<'static>>() == 2 * core::mem::size_of::<usize>());

impl<'d> Guard<'d> {
    #[inline(always)]
    pub(crate) fn enter(domain: &'d Domain) -> Self {
        let record = match domain.record() {
            Some(record) => record,
            None => crate::rcu::local::temporary_record(domain.inner()),
        };
        record.enter(&domain.inner().epoch);
        Self::with(domain, record)
    }

    /// The guard of `record`'s section, of `domain`.
    #[inline(always)]
    fn with(domain: &'d Domain, record: &'d Record) -> Self {
        let kind = domain.kind(ROBUST, GLOBAL);
        Self {
            domain: core::ptr::from_ref(domain)
                .cast::<u8>()
                .wrapping_add(kind)
                .cast(),
            record,
            _not_send: PhantomData,
        }
    }

    /// Whether the domain is robust (module `robust`).
    #[inline(always)]
    pub(crate) fn is_robust(&self) -> bool {
        self.domain as usize & ROBUST != 0
    }

    /// Whether the domain is the global one.
    #[inline(always)]
    pub(crate) fn is_global(&self) -> bool {
        self.domain as usize & GLOBAL != 0
    }

    /// The guard of an owned section (module `owned`): `record` is claimed
    /// for that section alone and entered. Its owner never drops it as a
    /// `Guard` (it ends the section itself).
    pub(crate) fn of_owned(domain: &'d Domain, record: &'d Record) -> Self {
        Self::with(domain, record)
    }

    /// The record this section is entered on.
    pub(crate) fn record(&self) -> &'d Record {
        self.record
    }

    /// The id of the domain this section belongs to (0: the global one).
    #[inline(always)]
    pub(crate) fn domain_id(&self) -> u64 {
        self.record.domain_id
    }

    /// The domain this section belongs to; compare it with a handle
    /// (`guard.domain() == &domain`) to check that a caller's guard
    /// protects a structure's domain.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let guard = domain.read();
    /// assert!(guard.domain() == &domain);
    /// assert!(guard.domain() != &ownrcu::Domain::new());
    /// ```
    #[must_use]
    pub fn domain(&self) -> &'d Domain {
        let tag = self.domain as usize & KIND;
        // SAFETY: the `&'d Domain` this guard was made with (`with`), moved
        // back by the bytes `with` added for its kind.
        unsafe { &*self.domain.cast::<u8>().wrapping_sub(tag).cast::<Domain>() }
    }

    /// Ends the section and starts a new one, so that grace periods
    /// waiting for it can complete: what a long iteration calls every so
    /// many steps (crossbeam-epoch's name; seize calls it `refresh`).
    /// `&mut self`: nothing loaded under the old section can be used
    /// afterwards.
    ///
    /// Guards of one domain on one thread share one section. If other
    /// guards share this one's section (this one is nested in an outer
    /// one, or the other way round), the section cannot end: `repin` does
    /// nothing and returns false. It returns true when it renewed the
    /// section. (Assigning a new guard, `*guard = domain.read()`, never
    /// repins: the new guard is made while the old one is alive, so it
    /// nests.)
    ///
    /// A grace period that started before the repin no longer waits for
    /// this thread; one that starts after it waits for the new section.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let mut guard = domain.read();
    /// let cookie = domain.grace_period(); // starts a grace period
    /// assert!(!domain.poll(&cookie)); // which waits for our section
    /// assert!(guard.repin());
    /// assert!(domain.poll(&cookie)); // and no longer does
    ///
    /// let inner = domain.read();
    /// assert!(!guard.repin()); // nested: the section stays open
    /// drop(inner);
    /// ```
    #[inline]
    pub fn repin(&mut self) -> bool {
        if !self.record.pause() {
            return false;
        }
        self.record.enter(&self.domain().inner().epoch);
        true
    }

    /// Leaves the section while `f` runs and enters a new one afterwards
    /// (also when `f` panics): for a blocking call in the middle of a long
    /// read (crossbeam-epoch's `repin_after`). Nested guards keep the
    /// section open as for [`repin`](Guard::repin); then `f` just runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let mut guard = domain.read();
    /// let waited = guard.repin_after(|| {
    ///     domain.synchronize(); // allowed: this thread is outside its section
    ///     true
    /// });
    /// assert!(waited);
    /// ```
    pub fn repin_after<R>(&mut self, f: impl FnOnce() -> R) -> R {
        if !self.record.pause() {
            return f();
        }
        let (record, epoch) = (self.record, &self.domain().inner().epoch);
        let _reenter = scopeguard::guard((), move |()| record.enter(epoch));
        f()
    }
}

impl Guard<'_> {
    /// A load of a pointer that this section may dereference: `load`
    /// reads the link (`Acquire`); in a robust domain, step 1 of module
    /// `robust`'s invariant around it. `maybe_robust` is what the
    /// pointer's type says of its domain (a constant): `false` when it is
    /// never robust (checked once, by [`assert_not_robust`](Self::assert_not_robust)
    /// or the domain check), which leaves the load alone; `true` tests one
    /// bit of the guard.
    #[inline(always)]
    pub(crate) fn protect<P>(&self, maybe_robust: bool, load: impl Fn() -> P) -> P {
        let value = load();
        if !(maybe_robust && self.is_robust()) {
            return value;
        }
        self.record().protect_robust(value, load)
    }

    /// A read-modify-write whose previous value this section may
    /// dereference: in a robust domain, step 2 of module `robust`'s invariant
    /// around `op`, which must be `Acquire` at least. `maybe_robust` as in
    /// [`protect`](Self::protect).
    #[inline(always)]
    pub(crate) fn exchange<R>(&self, maybe_robust: bool, op: impl FnOnce() -> R) -> R {
        // `op` once in the code, between two calls in a robust domain.
        let lower = maybe_robust && self.is_robust() && self.record().begin_exchange();
        let result = op();
        if lower {
            self.record().end_exchange();
        }
        result
    }

    /// Panics if the domain is robust: the check of a pointer type whose
    /// loads are never protected (`pointer`, named in the message). A
    /// test of a bit the guard has at hand, which the compiler hoists out
    /// of a loop.
    #[inline(always)]
    pub(crate) fn assert_not_robust(&self, pointer: &'static str) {
        if self.is_robust() {
            robust_guard_for_plain_pointer(pointer);
        }
    }
}

#[cold]
#[inline(never)]
fn robust_guard_for_plain_pointer(pointer: &str) -> ! {
    panic!(
        "ownrcu: {pointer} was used with a guard of a robust domain; its loads do not protect what \
         they read, which a robust domain's early frees rely on (use {pointer}'s robust form: \
         `Link<T, true>`, `UncheckedDomain<true>`)"
    )
}

impl Drop for Guard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if self.record.exit() {
            // SAFETY: the record is this thread's, kept outside its registry
            // for the sections this guard was the last of, which has just
            // ended.
            unsafe { crate::rcu::local::release_temporary(self.domain().inner(), self.record) };
        }
    }
}

impl core::fmt::Debug for Guard<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Guard")
            .field("domain", self.domain())
            .finish()
    }
}

/// `Domain::read` lives here, with the guard it makes, so that `domain`
/// does not depend on this module.
impl Domain {
    /// Enters a read-side critical section.
    ///
    /// Objects reachable when the section starts stay valid until the guard
    /// drops. Sections nest; entering and leaving is wait-free and allocates
    /// nothing after the thread's first use of the domain.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let outer = domain.read();
    /// let inner = domain.read(); // nested
    /// drop(inner);
    /// drop(outer);
    /// ```
    #[inline]
    #[must_use = "the read section ends when the guard is dropped"]
    pub fn read(&self) -> Guard<'_> {
        Guard::enter(self)
    }
}
