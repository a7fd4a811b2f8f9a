//! [`Slot`]: an RCU-protected pointer to one object of an owner.
//!
//! # Invariants
//!
//! - A slot belongs to at most one owner: the first owner that reads or
//!   writes it through a handle binds it (`owner`), and using it through any
//!   other owner panics. Readers of a slot therefore always hold a read
//!   guard of the very owner its replaced objects are retired through, so
//!   that owner's grace periods and its teardown (which needs every user
//!   gone) both wait for them.
//! - The slot owns the object it points to; an object taken out is owned by
//!   an [`Unlinked`] until it is retired through the owner.

use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use crate::owner::handle::{Read, User};
use crate::owner::pending::Pending;
use crate::rcu::retired::{Single, Typed};
use crate::sync::AtomicPtr;

/// The owner a [`Slot`] or an [`Array`](crate::Array) belongs to: the first
/// owner that reads or writes it through a handle.
pub(crate) struct Binding(AtomicPtr<Pending>);

impl Binding {
    pub(crate) fn new() -> Self {
        Self(AtomicPtr::new(ptr::null_mut()))
    }

    /// Binds to `owner`, or checks that it is bound to it.
    ///
    /// # Panics
    ///
    /// If it is bound to another owner.
    #[inline]
    pub(crate) fn bind(&self, owner: &Pending) {
        let me = owner as *const Pending as *mut Pending;
        // Relaxed: the binding orders nothing; it only has to be one value
        // that every thread agrees on, which the single CAS from null gives.
        let bound = self.0.load(Relaxed);
        if bound != me {
            self.bind_slow(me, bound);
        }
    }

    #[cold]
    fn bind_slow(&self, me: *mut Pending, bound: *mut Pending) {
        let bound = if bound.is_null() {
            match self
                .0
                .compare_exchange(ptr::null_mut(), me, Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(now) => now,
            }
        } else {
            bound
        };
        assert!(
            bound == me,
            "ownrcu: a Slot or Array was used through an owner it does not belong to; it \
             belongs to the first owner that reads or writes it"
        );
    }
}

/// An RCU-protected pointer to an object of type `T`, kept in an owner's
/// data: readers [`load`](Slot::load) it under the owner's [`Read`] guard;
/// writers [`replace`](Slot::replace) or [`take`](Slot::take) its object,
/// which comes back [`Unlinked`] and is retired through the same owner.
///
/// # Examples
///
/// ```
/// use ownrcu::{Domain, Slot, User};
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, Slot::new(Box::new(String::from("vma 1"))));
/// {
///     let read = mm.read();
///     assert_eq!(read.load(&read).unwrap(), "vma 1");
/// }
/// let old = mm.read().replace(Some(Box::new(String::from("vma 2"))), &mm);
/// old.unwrap().retire(); // freed after a grace period, or at teardown
/// assert_eq!(mm.read().load(&mm.read()).unwrap(), "vma 2");
/// ```
///
/// # Threads
///
/// `Slot<T>` is `Send` and `Sync` (it lives in data shared by every user
/// handle, which requires both); `T` must be `Send + Sync`, because readers
/// on any thread share the object and any thread may free it.
///
/// ```
/// fn is_send_sync<T: Send + Sync>() {}
/// is_send_sync::<ownrcu::Slot<String>>();
/// is_send_sync::<ownrcu::Unlinked<'static, String>>();
/// ```
pub struct Slot<T: Send + Sync + 'static> {
    ptr: AtomicPtr<T>,
    owner: Binding,
    _owns: PhantomData<Box<T>>,
}

impl<T: Send + Sync + 'static> Slot<T> {
    /// A slot holding `object`.
    pub fn new(object: Box<T>) -> Self {
        Self::from_ptr(Box::into_raw(object))
    }

    /// An empty slot.
    pub fn empty() -> Self {
        Self::from_ptr(ptr::null_mut())
    }

    fn from_ptr(ptr: *mut T) -> Self {
        Self {
            ptr: AtomicPtr::new(ptr),
            owner: Binding::new(),
            _owns: PhantomData,
        }
    }

    /// The object, for as long as the read guard (and the slot) are
    /// borrowed.
    ///
    /// # Panics
    ///
    /// If the slot belongs to another owner than the guard's.
    #[inline]
    pub fn load<'r, D: Send + Sync + 'static>(&'r self, read: &'r Read<'_, D>) -> Option<&'r T> {
        self.owner.bind(read.pending());
        // Acquire: pairs with the publishing swap, so the object's contents
        // are visible.
        let ptr = self.ptr.load(Acquire);
        // A non-null pointer came from `Box::into_raw` and is freed only (a)
        // once replaced: after a grace period of this owner's domain, which
        // `read`'s section blocks, or at this owner's teardown, which `read`'s
        // user handle prevents (the slot is bound to that owner: checked
        // above); or (b) when the slot drops, which our borrow prevents.
        // SAFETY: so it stays valid for `'r`.
        unsafe { ptr.as_ref() }
    }

    /// Publishes `new` and returns the previous object, unlinked: readers
    /// that start now cannot find it, readers already running may still
    /// hold it, so it must be retired through the owner.
    ///
    /// # Panics
    ///
    /// If the slot belongs to another owner than `user`'s.
    #[must_use = "the old object comes back `Unlinked`: dropping it retires it"]
    pub fn replace<'u, D: Send + Sync + 'static>(
        &self,
        new: Option<Box<T>>,
        user: &'u User<D>,
    ) -> Option<Unlinked<'u, T>> {
        let owner = user.pending();
        self.owner.bind(owner);
        let new = new.map_or(ptr::null_mut(), Box::into_raw);
        // AcqRel: Release publishes `new`'s contents to readers; Acquire
        // makes the old object's contents ours.
        let old = self.ptr.swap(new, AcqRel);
        NonNull::new(old).map(|ptr| Unlinked { ptr, owner })
    }

    /// Takes the object out (leaving the slot empty), unlinked.
    ///
    /// # Panics
    ///
    /// If the slot belongs to another owner than `user`'s.
    #[must_use = "the object comes back `Unlinked`: dropping it retires it"]
    pub fn take<'u, D: Send + Sync + 'static>(&self, user: &'u User<D>) -> Option<Unlinked<'u, T>> {
        self.replace(None, user)
    }
}

impl<T: Send + Sync + 'static> Default for Slot<T> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<T: Send + Sync + 'static> Drop for Slot<T> {
    fn drop(&mut self) {
        let ptr = self.ptr.load(Relaxed);
        if !ptr.is_null() {
            // SAFETY: the slot owns its object; `&mut self` means no reader
            // holds a reference from `load` (those borrow the slot), so it is
            // freed directly, once.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

impl<T: Send + Sync + 'static> core::fmt::Debug for Slot<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slot")
            .field("empty", &self.ptr.load(Relaxed).is_null())
            .finish()
    }
}

/// An object taken out of a [`Slot`]: no new reader can find it, running
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
    ptr: NonNull<T>,
    owner: &'u Pending,
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
/// registration of that owner (the munmap batch). From [`User::batch`].
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
}

// SAFETY: it owns boxed `T`s (`T: Send`) and borrows a `Sync` owner queue.
unsafe impl<T: Send + Sync + 'static> Send for OwnerBatch<'_, T> {}

impl<'u, T: Send + Sync + 'static> OwnerBatch<'u, T> {
    pub(crate) fn with_capacity(owner: &'u Pending, capacity: usize) -> Self {
        Self {
            owner,
            items: Vec::with_capacity(capacity),
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

    /// Objects in the batch.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
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
        if self.items.is_empty() {
            return;
        }
        let items = core::mem::take(&mut self.items);
        // SAFETY: every pointer is an unlinked `Box<T>` of this owner, owned
        // by the batch alone.
        let unit = Box::new(unsafe { Typed::new(items) });
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
            .field("len", &self.items.len())
            .finish()
    }
}
