//! [`Unlinked`] and [`OwnerBatch`]: objects taken out of an owner's slots,
//! on their way to that owner's queue.
//!
//! # Invariants
//!
//! - An unlinked object is owned by exactly one value (an `Unlinked`, or an
//!   `OwnerBatch` it was pushed into) until it is registered with its
//!   owner's queue; dropping that value registers it. No new reader can
//!   find it (it was unlinked), and it borrows the owner's user handle, so
//!   it is always retired while the owner is alive.
//! - A batch only holds objects of its own owner (a push from another
//!   owner panics), so one registration serves them all.

use core::ops::Deref;
use core::ptr::{self, NonNull};

use crate::owner::pending::Pending;
use crate::rcu::for_owners::{Deleted, Single, Typed};

/// An object taken out of a [`Slot`](crate::Slot): no new reader can find it, running
/// readers may still hold it. Retire it through its owner with
/// [`retire`](Unlinked::retire) or an [`OwnerBatch`]; dropping it retires it
/// too. It borrows the owner's user handle, so it is always retired while
/// the owner is alive.
///
/// # Threads
///
/// `Unlinked` is `Send` and `Sync`, like the object it owns: it can be
/// retired from another thread than the one that took it (within the user
/// handle's borrow).
///
/// # Leaking it
///
/// Forgetting it (`mem::forget`) leaks the object: it is never freed, not
/// even by the owner's teardown, and the owner's statistics never count it.
/// Nothing else is affected; never undefined behaviour.
///
/// It is `#[must_use]`: ignoring one (which retires it at once) is flagged.
///
/// ```compile_fail
/// #![deny(unused_must_use)]
/// use ownrcu::{Domain, Slot, User};
/// let domain = Domain::new();
/// let mm = User::new(&domain, Slot::new(Box::new(1_u32)));
/// mm.take(&mm); // error: unused `Option<Unlinked>` that must be used
/// ```
#[must_use = "dropping it retires the object through its owner; say so with `.retire()`"]
pub struct Unlinked<'u, T: Send + Sync + 'static> {
    /// The object, from `Box::into_raw` (made by the slot that unlinked it).
    pub(super) ptr: NonNull<T>,
    /// The queue of the owner it was unlinked from.
    pub(super) owner: &'u Pending,
}

// SAFETY: it owns a `Box<T>` (`T: Send`) and borrows a `Sync` owner queue.
unsafe impl<T: Send + Sync + 'static> Send for Unlinked<'_, T> {}
// SAFETY: shared access only reads `T` (`T: Sync`).
unsafe impl<T: Send + Sync + 'static> Sync for Unlinked<'_, T> {}

impl<'u, T: Send + Sync + 'static> Unlinked<'u, T> {
    /// Retires the object through its owner: one grace-period registration.
    pub fn retire(self) {
        drop(self);
    }

    /// [`retire`](Unlinked::retire), and start the grace period now instead
    /// of when enough work waits (`call_rcu_hurry`; see
    /// [`Domain::hurry`](crate::Domain::hurry) for the cost).
    ///
    /// # Examples
    ///
    /// ```
    /// # use ownrcu::{Domain, Slot, User};
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, Slot::new(Box::new(1_u32)));
    /// mm.take(&mm).unwrap().retire_hurry();
    /// // Its grace period has started (by the hurry, or already by pacing).
    /// assert_eq!(domain.stats().grace_periods_started, 1);
    /// ```
    pub fn retire_hurry(self) {
        core::mem::ManuallyDrop::new(self).register(true);
    }

    /// Registers the object with its owner; runs once, from `drop` or
    /// `retire_hurry`.
    fn register(&self, hurry: bool) {
        // SAFETY: unlinked, from `Box::into_raw`, read only under guards of
        // this owner (the slot was bound to it); owned by this value alone,
        // which is going away (dropped, or forgotten by `retire_hurry`).
        let unit = Box::new(unsafe { Single::new(self.ptr) });
        if hurry {
            self.owner.register_hurry(unit, false);
        } else {
            self.owner.register(unit, false);
        }
    }
}

impl<T: Send + Sync + 'static> Deref for Unlinked<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the object stays allocated until it is retired, which
        // consumes this value.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Send + Sync + 'static> Drop for Unlinked<'_, T> {
    /// Retires the object.
    fn drop(&mut self) {
        self.register(false);
    }
}

impl<T: Send + Sync + 'static> core::fmt::Debug for Unlinked<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Unlinked").finish_non_exhaustive()
    }
}

/// Objects unlinked from one owner's slots, retired as **one** grace-period
/// registration of that owner (the munmap batch). From [`User::batch`](crate::User::batch).
///
/// # Examples
///
/// ```
/// use ownrcu::{Domain, Slot, User};
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, (0..4).map(|i| Slot::new(Box::new(i))).collect::<Vec<_>>());
/// let mut batch = mm.batch();
/// for slot in mm.read().iter() {
///     batch.extend(slot.take(&mm));
/// }
/// batch.drain(); // one registration for four objects
/// mm.barrier();
/// assert_eq!(mm.stats().freed_after_grace_period, 4);
/// assert_eq!(mm.stats().registrations, 1);
/// ```
///
/// # Threads
///
/// An owner batch is `Send`, not `Sync` (it is filled through `&mut`):
///
/// ```
/// fn is_send<T: Send>(_: &T) {}
/// let domain = ownrcu::Domain::new();
/// let mm = ownrcu::User::new(&domain, ownrcu::Slot::new(Box::new(1_u64)));
/// is_send(&mm.batch::<u64>());
/// ```
///
/// ```compile_fail,E0277
/// fn is_sync<T: Sync>(_: &T) {}
/// let domain = ownrcu::Domain::new();
/// let mm = ownrcu::User::new(&domain, ownrcu::Slot::new(Box::new(1_u64)));
/// is_sync(&mm.batch::<u64>()); // error: `NonNull<u64>` cannot be shared between threads
/// ```
///
/// # Leaking it
///
/// Forgetting it (`mem::forget`) leaks the objects in it: they are never
/// freed, not even by the owner's teardown, and the owner's statistics
/// never count them. Nothing else is affected; never undefined behaviour.
#[must_use = "dropping the batch retires its objects at once; say so with `.drain()`"]
pub struct OwnerBatch<'u, T: Send + Sync + 'static> {
    owner: &'u Pending,
    items: Vec<NonNull<T>>,
    /// Objects with their own deleters ([`OwnerBatch::push_with`]).
    deleted: Vec<Deleted<T>>,
}

// SAFETY: it owns boxed `T`s (`T: Send`) and borrows a `Sync` owner queue.
unsafe impl<T: Send + Sync + 'static> Send for OwnerBatch<'_, T> {}

impl<'u, T: Send + Sync + 'static> OwnerBatch<'u, T> {
    pub(crate) fn with_capacity(owner: &'u Pending, capacity: usize) -> Self {
        Self {
            owner,
            items: Vec::with_capacity(capacity),
            deleted: Vec::new(),
        }
    }

    /// Adds an object unlinked from this owner.
    ///
    /// # Panics
    ///
    /// If it was unlinked from another owner.
    pub fn push(&mut self, object: Unlinked<'u, T>) {
        assert!(
            ptr::eq(object.owner, self.owner),
            "ownrcu: an object unlinked from one owner was pushed into another owner's batch"
        );
        let object = core::mem::ManuallyDrop::new(object);
        self.items.push(object.ptr);
    }

    /// Adds an object that `free` frees, reached by readers through this
    /// owner: a node of a structure the owner holds, linked with
    /// [`Link`](crate::Link)s, allocated by hand. Freed after a grace
    /// period of the owner, or directly at its teardown (its last user's
    /// drop), like the owner's other objects; after the batch's boxes.
    ///
    /// # Safety
    ///
    /// 1. `free(ptr)` may run once, on any thread, after a grace period that
    ///    starts after the batch is drained, or at the owner's teardown,
    ///    and frees the object; `ptr` is retired only once.
    /// 2. It is unlinked: no reader that enters a section from now on can
    ///    reach it.
    /// 3. Every reader that may hold it holds a user handle of this owner
    ///    for as long as it does: it loaded it under the guard of one of
    ///    the owner's [`Read`](crate::Read)s ([`Read::guard`](crate::Read::guard)),
    ///    never under a guard of the domain alone (the owner's teardown
    ///    frees without a grace period, once no user handle is left).
    ///
    /// # Panics
    ///
    /// If `ptr` is null.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link, Shared, User};
    ///
    /// unsafe fn free_node(ptr: *mut u64) {
    ///     // SAFETY: from `Box::into_raw` below.
    ///     drop(unsafe { Box::from_raw(ptr) });
    /// }
    /// let domain = Domain::new();
    /// // SAFETY: 1. a node is retired below once unlinked, through the
    /// // owner; 2. only guards of `domain` (the owner's) are used.
    /// let mm = User::new(&domain, unsafe { Link::<u64>::null() });
    /// let read = mm.read();
    /// // SAFETY: a live box, freed only through the owner once unlinked.
    /// read.store(unsafe { Shared::from_ptr(Box::into_raw(Box::new(5))) });
    /// let old = read.swap(Shared::null(), read.guard());
    /// assert_eq!(*old, 5);
    /// let mut batch = mm.batch::<u64>();
    /// // SAFETY: 1. `free_node` frees this box; 2. unlinked by the swap;
    /// // 3. read only through `mm`.
    /// unsafe { batch.push_with(old.as_ptr().cast_mut(), free_node) };
    /// drop(read);
    /// batch.drain();
    /// drop(mm); // the last user: freed directly
    /// ```
    #[inline]
    pub unsafe fn push_with(&mut self, ptr: *mut T, free: unsafe fn(*mut T)) {
        let ptr = NonNull::new(ptr).expect("ownrcu: OwnerBatch::push_with given a null pointer");
        self.deleted.push((ptr, free));
    }

    /// Objects in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len() + self.deleted.len()
    }

    /// Whether the batch is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.deleted.is_empty()
    }

    /// Retires every object as one registration (none if empty).
    pub fn drain(mut self) {
        self.register(false);
    }

    /// [`drain`](OwnerBatch::drain), and start the grace period now instead
    /// of when enough work waits (`call_rcu_hurry`).
    pub fn drain_hurry(mut self) {
        self.register(true);
    }

    fn register(&mut self, hurry: bool) {
        if self.is_empty() {
            return;
        }
        let items = core::mem::take(&mut self.items);
        let deleted = core::mem::take(&mut self.deleted);
        // SAFETY: every pointer is an unlinked object of this owner, owned
        // by the batch alone: a `Box<T>`, or one its deleter frees
        // (`push_with`'s contract).
        let unit = Box::new(unsafe { Typed::with_deleted(items, deleted) });
        if hurry {
            self.owner.register_hurry(unit, true);
        } else {
            self.owner.register(unit, true);
        }
    }
}

impl<'u, T: Send + Sync + 'static> Extend<Unlinked<'u, T>> for OwnerBatch<'u, T> {
    fn extend<I: IntoIterator<Item = Unlinked<'u, T>>>(&mut self, iter: I) {
        for object in iter {
            self.push(object);
        }
    }
}

impl<T: Send + Sync + 'static> Drop for OwnerBatch<'_, T> {
    /// Drains the batch.
    fn drop(&mut self) {
        self.register(false);
    }
}

impl<T: Send + Sync + 'static> core::fmt::Debug for OwnerBatch<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnerBatch")
            .field("len", &self.len())
            .finish()
    }
}
