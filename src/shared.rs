//! [`Shared`]: a tagged pointer valid for a read section, and the tag
//! arithmetic that [`Atomic`](crate::Atomic) and [`Link`](crate::Link) share.
//!
//! # Invariant
//!
//! A `Shared<'g, T>` is null, or points to an object that stays allocated
//! and unchanged by anyone but shared references for as long as `'g`
//! lasts, which is never longer than a read section it was obtained under.
//! Each way to make one names who keeps that promise:
//!
//! - [`Atomic::load`](crate::Atomic::load) and its exchanges: the
//!   `Atomic`'s invariants (module `atomic`; `'g` also borrows the
//!   `Atomic`, whose drop frees its object);
//! - [`Link::load`](crate::Link::load) and its exchanges: the contract the
//!   creator of the link accepted ([`Link::null`](crate::Link::null));
//! - [`Owned::into_shared`](crate::Owned::into_shared): the object is
//!   leaked, so only `unsafe` code whose contract covers it can free it;
//! - [`Shared::from_ptr`]: its caller's contract.
//!
//! Tags live in the low `align_of::<T>() - 1` bits and never reach a
//! dereference: a pointer with tag bits set is untagged first, on a cold
//! path, so that an untagged pointer is dereferenced exactly as loaded.
//! Tagging and untagging keep the pointer's provenance: every raw pointer
//! handed out ([`Shared::as_ptr`], [`Shared::tagged_ptr`],
//! [`Link::peek`](crate::Link::peek), [`Link::get_mut`](crate::Link::get_mut))
//! may reach all of the allocation the stored pointer could (a node's
//! tower after its header).

use core::fmt;
use core::marker::PhantomData;
use core::mem::align_of;
use core::ops::Deref;
use core::ptr;
use core::sync::atomic::Ordering::{AcqRel, Acquire};

use crate::sync::AtomicPtr;

/// The low bits of a `*mut T` that alignment leaves free for a tag.
#[inline(always)]
pub(crate) const fn tag_mask<T>() -> usize {
    align_of::<T>() - 1
}

/// `ptr` (untagged) with `tag` in its low bits; keeps the provenance.
#[inline(always)]
pub(crate) fn compose<T>(ptr: *mut T, tag: usize) -> *mut T {
    ptr.cast::<u8>().wrapping_add(tag & tag_mask::<T>()).cast()
}

/// The untagged pointer and the tag of a tagged pointer.
#[inline(always)]
pub(crate) fn decompose<T>(raw: *mut T) -> (*mut T, usize) {
    let tag = raw as usize & tag_mask::<T>();
    (raw.cast::<u8>().wrapping_sub(tag).cast(), tag)
}

/// The untagged pointer, for a dereference: an untagged `raw` is returned
/// as it is (the test is a branch the processor predicts, not an `and` on
/// the pointer-chasing path); a tagged one is untagged out of line.
#[inline(always)]
pub(crate) fn untagged<T>(raw: *mut T) -> *mut T {
    #[cold]
    #[inline(never)]
    fn strip<T>(raw: *mut T) -> *mut T {
        decompose(raw).0
    }
    if raw as usize & tag_mask::<T>() == 0 {
        raw
    } else {
        strip(raw)
    }
}

/// The compare-and-swap of [`Atomic`](crate::Atomic) and
/// [`Link`](crate::Link), with their fixed orderings: `AcqRel` on success
/// (`Release` publishes the new object, `Acquire` makes the replaced one's
/// contents visible to whoever may dereference or free it) and `Acquire`
/// on failure (the value found may be dereferenced).
#[inline(always)]
pub(crate) fn cas<T>(
    ptr: &AtomicPtr<T>,
    current: *mut T,
    new: *mut T,
    weak: bool,
) -> Result<*mut T, *mut T> {
    if weak {
        ptr.compare_exchange_weak(current, new, AcqRel, Acquire)
    } else {
        ptr.compare_exchange(current, new, AcqRel, Acquire)
    }
}

/// Replaces the tag of `ptr`'s value with `f(tag)`, keeping the address,
/// in a compare-and-swap loop (`AtomicPtr::fetch_or` is newer than the
/// crate's minimum Rust); returns the previous tagged pointer, loaded
/// `Acquire` (it may be dereferenced).
#[inline]
pub(crate) fn update_tag<T>(ptr: &AtomicPtr<T>, f: impl Fn(usize) -> usize) -> *mut T {
    let mut now = ptr.load(Acquire);
    loop {
        let (address, tag) = decompose(now);
        match cas(ptr, now, compose(address, f(tag)), true) {
            Ok(_) => return now,
            Err(found) => now = found,
        }
    }
}

/// A pointer loaded under a [`Guard`](crate::Guard) from an
/// [`Atomic`](crate::Atomic) or a [`Link`](crate::Link): the object stays
/// valid for `'g` (the guard's borrow, and for an `Atomic` the `Atomic`'s
/// too). Possibly null, possibly tagged; `Copy`.
///
/// Like `&'g T`, it is `Send` and `Sync` when `T` is `Sync`: it cannot
/// outlive `'g`, so the section that protects it (its thread's, or an
/// [`OwnedGuard`](crate::OwnedGuard)'s) is open while any thread uses it.
/// A `Shared` of a type that is not `Sync` stays on its thread:
///
/// ```compile_fail
/// fn is_send<T: Send>(_: T) {}
/// let domain = ownrcu::Domain::new();
/// let a = ownrcu::Atomic::new(std::cell::Cell::new(1_u32));
/// let guard = domain.read();
/// is_send(a.load(&guard)); // error: `Cell<u32>` cannot be shared between threads
/// ```
///
/// # Raw pointers
///
/// [`tagged_ptr`](Shared::tagged_ptr) gives the pointer as stored (the tag
/// in its low bits), [`as_ptr`](Shared::as_ptr) the untagged address, and
/// `unsafe` [`from_ptr`](Shared::from_ptr) makes a `Shared` of either, for
/// objects allocated by hand (a header and a variable-length tail) that
/// enter a [`Link`](crate::Link).
///
/// # Examples
///
/// ```
/// use ownrcu::{Atomic, Domain, Owned};
///
/// let domain = Domain::new();
/// let a = Atomic::from(Owned::new(10_u32).with_tag(1));
/// let guard = domain.read();
/// let shared = a.load(&guard);
/// assert_eq!((*shared, shared.tag()), (10, 1));
/// let value: &u32 = shared.as_ref().unwrap(); // lives as long as the guard
/// assert_eq!(*value, 10);
/// ```
pub struct Shared<'g, T> {
    /// Tagged; null or a live object while `'g` lasts (module invariant).
    raw: *mut T,
    _guard: PhantomData<&'g T>,
}

impl<T> Clone for Shared<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Shared<'_, T> {}

// A `Shared` is a tagged shared reference to a `T` that stays valid for
// `'g` (module invariant), and nothing reached through it moves or drops
// the `T` (retiring takes a `Detached`, which asks for `T: Send`).
// SAFETY: sending a `Shared` is sending a `&'g T`: sound when `T: Sync`.
unsafe impl<T: Sync> Send for Shared<'_, T> {}
// SAFETY: sharing a `Shared` is sharing a `&'g T`: sound when `T: Sync`.
unsafe impl<T: Sync> Sync for Shared<'_, T> {}

impl<'g, T> Shared<'g, T> {
    /// A `Shared` of a tagged pointer that one of the module invariant's
    /// sources vouches for.
    #[inline(always)]
    pub(crate) fn from_raw(raw: *mut T) -> Self {
        Self {
            raw,
            _guard: PhantomData,
        }
    }

    /// The tagged pointer, as stored.
    #[inline(always)]
    pub(crate) fn raw(self) -> *mut T {
        self.raw
    }

    /// A null pointer, tag 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ownrcu::Shared::<u32>::null().is_null());
    /// ```
    #[must_use]
    pub fn null() -> Self {
        Self::from_raw(ptr::null_mut())
    }

    /// A `Shared` of a raw pointer: `ptr` may carry a tag in its low
    /// `align_of::<T>() - 1` bits, as [`tagged_ptr`](Shared::tagged_ptr)
    /// gives it (so an untagged `ptr` must be aligned for `T`).
    ///
    /// # Safety
    ///
    /// Safe code may dereference the result for all of `'g`, so:
    ///
    /// 1. The untagged `ptr` is null, or points to a live, initialized `T`
    ///    that nothing mutates except through shared references (atomics,
    ///    cells) and nothing frees until `'g` ends: typically an object
    ///    reachable when a read section began, retired only after being
    ///    unlinked, into the domain of that section, and `'g` no longer
    ///    than the section's guard.
    /// 2. If it goes into a [`Link`](crate::Link), that link's contract
    ///    ([`Link::null`](crate::Link::null)) then covers it.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Shared};
    ///
    /// let domain = Domain::new();
    /// let object = Box::into_raw(Box::new(7_u64));
    /// let guard = domain.read();
    /// // SAFETY: 1. a live object, freed below, after the last use of `shared`.
    /// let shared = unsafe { Shared::<u64>::from_ptr(object) }.with_tag(1);
    /// assert_eq!((*shared, shared.tag()), (7, 1));
    /// assert_eq!(shared.as_ptr(), object.cast_const());
    /// // SAFETY: as above.
    /// assert_eq!(unsafe { Shared::<u64>::from_ptr(shared.tagged_ptr()) }, shared);
    /// drop(guard);
    /// // SAFETY: from `Box::into_raw`, no longer used.
    /// drop(unsafe { Box::from_raw(object) });
    /// ```
    #[must_use]
    pub unsafe fn from_ptr(ptr: *const T) -> Self {
        Self::from_raw(ptr.cast_mut())
    }

    /// Whether the pointer is null (whatever its tag).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ownrcu::Shared::<u64>::null().with_tag(1).is_null());
    /// ```
    #[inline]
    #[must_use]
    pub fn is_null(&self) -> bool {
        self.raw as usize & !tag_mask::<T>() == 0
    }

    /// The object, for as long as the guard: `None` if null.
    ///
    /// An untagged pointer is dereferenced exactly as it was loaded; a
    /// tagged one is untagged first.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let a = ownrcu::Atomic::new(1_u8);
    /// let guard = domain.read();
    /// assert_eq!(a.load(&guard).as_ref(), Some(&1));
    /// ```
    #[inline]
    #[must_use]
    pub fn as_ref(&self) -> Option<&'g T> {
        // The null test is `is_null`'s, on the pointer as loaded, so that
        // the compiler merges it with a caller's own `is_null` before this.
        if self.is_null() {
            return None;
        }
        // SAFETY: not null, so an object valid for `'g` (module invariant);
        // only shared references are ever made while readers may exist.
        Some(unsafe { &*untagged(self.raw) })
    }

    /// The tag.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ownrcu::Shared::<u32>::null().with_tag(3).tag(), 3);
    /// ```
    #[inline]
    #[must_use]
    pub fn tag(&self) -> usize {
        decompose(self.raw).1
    }

    /// The same pointer with tag `tag & (align_of::<T>() - 1)`.
    ///
    /// # Examples
    ///
    /// ```
    /// // `u32` leaves two tag bits.
    /// assert_eq!(ownrcu::Shared::<u32>::null().with_tag(5).tag(), 1);
    /// ```
    #[inline]
    #[must_use]
    pub fn with_tag(&self, tag: usize) -> Self {
        Self::from_raw(compose(decompose(self.raw).0, tag))
    }

    /// The untagged address (crossbeam-epoch's `as_raw`): to compare, to
    /// print, to reach memory the object's allocation holds past `T` (a
    /// tower after a header), or to hand to a deleter once the object is
    /// unlinked. As for [`as_ref`](Shared::as_ref), an untagged pointer
    /// comes back exactly as it was loaded.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ownrcu::Shared::<u32>::null().with_tag(1).as_ptr().is_null());
    /// ```
    #[inline]
    #[must_use]
    pub fn as_ptr(&self) -> *const T {
        untagged(self.raw)
    }

    /// The pointer as stored, with the tag in its low bits; [`from_ptr`]
    /// takes it back.
    ///
    /// [`from_ptr`]: Shared::from_ptr
    ///
    /// # Examples
    ///
    /// ```
    /// let tagged = ownrcu::Shared::<u64>::null().with_tag(5);
    /// assert_eq!(tagged.tagged_ptr() as usize, 5);
    /// ```
    #[inline]
    #[must_use]
    pub fn tagged_ptr(&self) -> *const T {
        self.raw
    }
}

impl<T> Deref for Shared<'_, T> {
    type Target = T;

    /// The object.
    ///
    /// # Panics
    ///
    /// If the pointer is null; use [`as_ref`](Shared::as_ref) for an `Option`.
    #[inline]
    fn deref(&self) -> &T {
        self.as_ref()
            .expect("ownrcu: dereferenced a null Shared pointer")
    }
}

impl<T> PartialEq for Shared<'_, T> {
    /// Same address and same tag.
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<T> Eq for Shared<'_, T> {}

impl<T> fmt::Debug for Shared<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("ptr", &self.as_ptr())
            .field("tag", &self.tag())
            .finish()
    }
}
