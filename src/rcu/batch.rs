//! [`Batch`]: many retirements, one grace-period registration.
//!
//! # Invariant
//!
//! A batch owns every object pushed into it: each one is unlinked, came from
//! a `Box` or comes with the deleter that frees it, and is freed exactly
//! once, after a grace period of the batch's domain that started after
//! [`Batch::drain`] (or the batch's drop).

use core::ptr::NonNull;

use crate::rcu::retired::{into_pointers, Deleted, Typed, UNKNOWN_BIRTH};
use crate::rcu::robust::Birth;
use crate::Domain;

/// Objects of one type collected locally and handed to the domain as **one**
/// grace-period registration: the batch-drain that replaced one `call_rcu`
/// per VMA in the kernel.
///
/// Pushing is a plain `Vec` push with no synchronization. [`drain`](Batch::drain)
/// registers the whole batch at once: one lock, one queue node, no per-object
/// allocation. After the grace period the objects are freed in one
/// monomorphic loop, oldest first. Dropping an undrained batch drains it.
///
/// `T` may be unsized (`Batch<'_, dyn Trait>`, `Batch<'_, [u8]>`).
///
/// # Examples
///
/// ```
/// let domain = ownrcu::Domain::new();
/// let mut batch = domain.batch::<[u8; 192]>();
/// for _ in 0..1000 {
///     batch.push(Box::new([0; 192]));
/// }
/// assert_eq!(batch.len(), 1000);
/// batch.drain();
/// domain.barrier();
/// let stats = domain.stats();
/// assert_eq!((stats.freed, stats.batches), (1000, 1));
/// ```
///
/// A batch can take over a vector of boxes without copying:
///
/// ```
/// let domain = ownrcu::Domain::new();
/// let objects: Vec<Box<u64>> = (0..10).map(Box::new).collect();
/// ownrcu::Batch::from_vec(&domain, objects).drain();
/// domain.barrier();
/// assert_eq!(domain.stats().freed, 10);
/// ```
///
/// # Threads
///
/// A batch is `Send` (filled on one thread, it can be drained on another)
/// but not `Sync`: it is filled through `&mut`, and nothing is gained by
/// sharing it.
///
/// ```
/// fn is_send<T: Send>(_: &T) {}
/// let domain = ownrcu::Domain::new();
/// is_send(&domain.batch::<u64>());
/// ```
///
/// ```compile_fail,E0277
/// fn is_sync<T: Sync>(_: &T) {}
/// let domain = ownrcu::Domain::new();
/// is_sync(&domain.batch::<u64>()); // error: `NonNull<u64>` cannot be shared between threads
/// ```
///
/// # Leaking it
///
/// Forgetting a batch (`mem::forget`) leaks the objects in it: they are
/// never freed, not even by the domain's teardown or a
/// [`barrier`](Domain::barrier), and the domain's statistics never count
/// them. Nothing else is affected; never undefined behaviour.
#[must_use = "dropping the batch drains it at once; say so with `.drain()`"]
pub struct Batch<'d, T: ?Sized + Send + 'static> {
    domain: &'d Domain,
    items: Vec<NonNull<T>>,
    /// Objects with their own deleters ([`Batch::push_with`],
    /// [`Batch::push_born`]).
    deleted: Vec<Deleted<T>>,
    /// The oldest birth pushed with [`Batch::push_born`] (`u64::MAX`: none),
    /// and whether a deleter's object came without one: the unit's birth
    /// is unknown then, or if it holds a box.
    born: u64,
    unborn: bool,
}

// SAFETY: the batch owns boxed `T`s (`T: Send`) and a shared reference to a
// `Sync` domain; moving it to another thread moves that ownership.
unsafe impl<T: ?Sized + Send + 'static> Send for Batch<'_, T> {}

impl<'d, T: ?Sized + Send + 'static> Batch<'d, T> {
    /// An empty batch for `domain`.
    pub fn new(domain: &'d Domain) -> Self {
        Self::with_capacity(domain, 0)
    }

    /// An empty batch with room for `capacity` objects.
    pub fn with_capacity(domain: &'d Domain, capacity: usize) -> Self {
        Self {
            domain,
            items: Vec::with_capacity(capacity),
            deleted: Vec::new(),
            born: u64::MAX,
            unborn: false,
        }
    }

    /// A batch made of `objects`, reusing the vector's allocation.
    pub fn from_vec(domain: &'d Domain, objects: Vec<Box<T>>) -> Self {
        Self {
            domain,
            items: into_pointers(objects),
            deleted: Vec::new(),
            born: u64::MAX,
            unborn: false,
        }
    }

    /// Adds an object.
    #[inline]
    pub fn push(&mut self, object: Box<T>) {
        self.items.push(NonNull::from(Box::leak(object)));
    }

    /// Adds an object by pointer.
    ///
    /// # Safety
    ///
    /// As for [`Domain::retire_raw`]: `ptr` came from `Box::<T>::into_raw`, is
    /// retired only once, is unlinked, and readers reached it only under
    /// guards of this batch's domain.
    ///
    /// # Panics
    ///
    /// If `ptr` is null.
    #[inline]
    pub unsafe fn push_raw(&mut self, ptr: *mut T) {
        let ptr = NonNull::new(ptr).expect("ownrcu: Batch::push_raw given a null pointer");
        self.items.push(ptr);
    }

    /// Adds an object that `free` frees (see [`Domain::retire_with`]): the
    /// batch's objects of this kind are freed after its boxes, each by its
    /// own deleter, still as one registration.
    ///
    /// # Safety
    ///
    /// As for [`Domain::retire_with`], with this batch's domain: `free(ptr)`
    /// may run once, on any thread, after a grace period that starts after
    /// the batch is drained, and frees the object; `ptr` is retired only
    /// once, is unlinked, and readers reached it only under guards of this
    /// batch's domain.
    ///
    /// # Panics
    ///
    /// If `ptr` is null.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::alloc::{alloc, dealloc, Layout};
    ///
    /// unsafe fn free_pair(ptr: *mut u32) {
    ///     // SAFETY: allocated below with this layout.
    ///     unsafe { dealloc(ptr.cast(), Layout::array::<u32>(2).unwrap()) };
    /// }
    /// let domain = ownrcu::Domain::new();
    /// let mut batch = domain.batch::<u32>();
    /// batch.push(Box::new(1));
    /// for _ in 0..3 {
    ///     // SAFETY: a non-zero-sized layout.
    ///     let pair = unsafe { alloc(Layout::array::<u32>(2).unwrap()) }.cast::<u32>();
    ///     // SAFETY: `free_pair` frees exactly this allocation; never published.
    ///     unsafe { batch.push_with(pair, free_pair) };
    /// }
    /// assert_eq!(batch.len(), 4);
    /// batch.drain(); // one registration for all four
    /// domain.barrier();
    /// assert_eq!((domain.stats().freed, domain.stats().batches), (4, 1));
    /// ```
    #[inline]
    pub unsafe fn push_with(&mut self, ptr: *mut T, free: unsafe fn(*mut T)) {
        let ptr = NonNull::new(ptr).expect("ownrcu: Batch::push_with given a null pointer");
        self.deleted.push((ptr, free));
        self.unborn = true;
    }

    /// [`push_with`](Batch::push_with) for an object born at `birth`: in a
    /// [robust](crate::DomainBuilder::robust) domain, the batch may be freed
    /// before its grace period completes once no reader in a section can
    /// hold its oldest birth's objects (if every object in it came with a
    /// birth). See [`Domain::retire_born`].
    ///
    /// # Safety
    ///
    /// The obligations of [`push_with`](Batch::push_with), and 6 and 7 of
    /// [`Domain::retire_born`] with this batch's domain.
    ///
    /// # Panics
    ///
    /// If `ptr` is null.
    ///
    /// # Examples
    ///
    /// ```
    /// unsafe fn free_u64(ptr: *mut u64) {
    ///     // SAFETY: from `Box::into_raw` below.
    ///     drop(unsafe { Box::from_raw(ptr) });
    /// }
    /// let domain = ownrcu::Domain::builder().robust(true).build();
    /// let mut batch = domain.batch::<u64>();
    /// for i in 0..4 {
    ///     let birth = domain.birth();
    ///     let object = Box::into_raw(Box::new(i));
    ///     // SAFETY: `free_u64` frees this box once, on any thread; never
    ///     // published, so unreachable; its birth was read before.
    ///     unsafe { batch.push_born(object, free_u64, birth) };
    /// }
    /// batch.drain(); // one registration, with the oldest birth
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 4);
    /// ```
    #[inline]
    pub unsafe fn push_born(&mut self, ptr: *mut T, free: unsafe fn(*mut T), birth: Birth) {
        let ptr = NonNull::new(ptr).expect("ownrcu: Batch::push_born given a null pointer");
        self.deleted.push((ptr, free));
        self.born = self.born.min(birth.0);
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

    /// The batch's domain.
    #[must_use]
    pub fn domain(&self) -> &'d Domain {
        self.domain
    }

    /// Hands every object to the domain as one grace-period registration.
    /// An empty batch registers nothing.
    pub fn drain(mut self) {
        self.register(false);
    }

    /// [`drain`](Batch::drain), and start the grace period now instead of
    /// when enough work waits (`call_rcu_hurry`; see
    /// [`Domain::hurry`](crate::Domain::hurry) for the cost).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let mut batch = domain.batch();
    /// batch.push(Box::new([0_u8; 1 << 16]));
    /// batch.drain_hurry();
    /// assert_eq!(domain.stats().grace_periods_hurried, 1);
    /// ```
    pub fn drain_hurry(mut self) {
        self.register(true);
    }

    fn register(&mut self, hurry: bool) {
        if self.is_empty() {
            return;
        }
        let birth = if self.unborn || !self.items.is_empty() {
            UNKNOWN_BIRTH
        } else {
            self.born
        };
        (self.born, self.unborn) = (u64::MAX, false);
        let items = core::mem::take(&mut self.items);
        let deleted = core::mem::take(&mut self.deleted);
        // The batch's invariant: every pointer is unlinked, owned by the
        // batch alone, reached by readers only under guards of this domain,
        // and a `Box<T>` or freed by its deleter (`push_with`).
        // SAFETY: as just said; a known `birth` is no younger than any
        // object's, each pushed under `push_born`'s contract.
        let unit = Box::new(unsafe { Typed::with_deleted(items, deleted).born(birth) });
        // A robust domain's early scan passes over the thread's own
        // record while it is outside a section (module `machine::early`).
        let inner = self.domain.inner();
        let own = if inner.config().robust {
            self.domain.record()
        } else {
            None
        };
        inner.register(unit, true, hurry, own);
    }
}

impl<T: ?Sized + Send + 'static> Extend<Box<T>> for Batch<'_, T> {
    fn extend<I: IntoIterator<Item = Box<T>>>(&mut self, iter: I) {
        for object in iter {
            self.push(object);
        }
    }
}

impl<T: ?Sized + Send + 'static> Drop for Batch<'_, T> {
    /// Drains the batch.
    fn drop(&mut self) {
        self.register(false);
    }
}

impl<T: ?Sized + Send + 'static> core::fmt::Debug for Batch<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Batch").field("len", &self.len()).finish()
    }
}

/// `Domain::batch` lives here, with the batch it makes, so that `domain`
/// does not depend on this module.
impl Domain {
    /// Starts an empty batch for objects of type `T` (see [`Batch`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let mut batch = domain.batch();
    /// for i in 0..100_u64 {
    ///     batch.push(Box::new(i));
    /// }
    /// batch.drain(); // one grace-period registration for all 100
    /// domain.barrier();
    /// assert_eq!(domain.stats().batches, 1);
    /// ```
    pub fn batch<T: ?Sized + Send + 'static>(&self) -> Batch<'_, T> {
        Batch::new(self)
    }
}
