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
use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use crate::owner::binding::Binding;
use crate::owner::handle::{OwnerSection, User};
use crate::owner::unlinked::Unlinked;
use crate::sync::AtomicPtr;

/// An RCU-protected pointer to an object of type `T`, kept in an owner's
/// data: readers [`load`](Slot::load) it in a read section of the owner
/// ([`Read`](crate::Read) or [`OwnedRead`](crate::OwnedRead));
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
    #[must_use]
    pub fn new(object: Box<T>) -> Self {
        Self::from_ptr(Box::into_raw(object))
    }

    /// An empty slot.
    #[must_use]
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

    /// The object, for as long as the read section (and the slot) are
    /// borrowed.
    ///
    /// # Panics
    ///
    /// If the slot belongs to another owner than the section's.
    #[inline]
    pub fn load<'r, S: OwnerSection>(&'r self, read: &'r S) -> Option<&'r T> {
        self.owner.bind(read.user().pending());
        // Acquire: pairs with the publishing swap, so the object's contents
        // are visible.
        let ptr = self.ptr.load(Acquire);
        // A non-null pointer came from `Box::into_raw` and is freed only (a)
        // once replaced: after a grace period of this owner's domain, which
        // `read`'s section blocks, or at this owner's teardown, which `read`'s
        // user handle prevents (both live while `read` does: `OwnerSection`'s
        // guarantee; the slot is bound to that owner: checked above); or
        // (b) when the slot drops, which our borrow prevents.
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
