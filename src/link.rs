//! [`Link`]: a tagged pointer that owns nothing, for structures whose
//! nodes are linked from several places (skip lists, trees with parent
//! pointers, queues' tails) and freed by the structure's own protocol.
//!
//! # Invariant
//!
//! Every object a link points to stays valid for as long as a read
//! section that could have loaded it from the link lasts. The link cannot
//! know who frees its objects, so whoever creates one promises it (the
//! contract of [`Link::null`]); given that promise every operation is safe,
//! and a [`Shared`] loaded from a link may be dereferenced for the guard's
//! lifetime.
//!
//! # Orderings
//!
//! Fixed, as for [`Atomic`](crate::Atomic), because a safe dereference
//! depends on them: loads `Acquire`, stores `Release`, read-modify-writes
//! `AcqRel` on success and `Acquire` on failure (the value returned may be
//! dereferenced). Exclusive access (`&mut`) uses `Relaxed`.

use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::shared::{cas, decompose, update_tag};
use crate::sync::AtomicPtr;
use crate::{CompareExchangeError, Guard, Shared};

/// A tagged pointer to a `T` that owns nothing: 8 bytes, no domain, no
/// `Drop`, and every operation safe once the link exists; the one
/// `unsafe` step is making it ([`Link::null`]), whose contract says who
/// frees what it points to, and when.
///
/// This is the link for structures whose nodes are linked from several
/// places and owned by none of them: a skip-list node reached from up to
/// 32 predecessors and retired by a reference count, nodes allocated with
/// a `Layout` (a header and a tower of links) and freed by the structure's
/// own deleter ([`Domain::retire_with`](crate::Domain::retire_with)). For a
/// pointer that owns one boxed object, [`Atomic`](crate::Atomic) needs no
/// `unsafe` at all.
///
/// | | [`Atomic`](crate::Atomic) | `Link` |
/// | --- | --- | --- |
/// | owns its object | yes: frees it on drop, hands it back [`Detached`](crate::Detached) | no |
/// | objects | `Box<T>` ([`Owned`](crate::Owned)) | any [`Shared`]: from a load, [`Owned::into_shared`](crate::Owned::into_shared), [`Shared::from_ptr`] |
/// | domain | checked on every use | the creator's promise |
/// | size | 16 bytes (8 with [`GlobalDomain`](crate::GlobalDomain)) | 8 bytes |
/// | `unsafe` | none (two special exchanges) | making the link |
///
/// # Layout
///
/// A `Link<T>` has the size and alignment of a `*mut T`, and a link whose
/// bytes are all zero is a null link, so links may live in memory the
/// structure allocates itself (`alloc_zeroed`, or `ptr::write` of
/// [`Link::null`]); making a link that way carries the same contract.
///
/// ```
/// use std::mem::{align_of, size_of};
/// assert_eq!(size_of::<ownrcu::Link<u64>>(), size_of::<*mut u64>());
/// assert_eq!(align_of::<ownrcu::Link<u64>>(), align_of::<*mut u64>());
/// ```
///
/// # Tags
///
/// The low bits a `T`'s alignment leaves free carry a tag, as in
/// [`Atomic`](crate::Atomic): [`fetch_or`](Link::fetch_or) marks a node's
/// links before it is unlinked (Harris), and [`Shared::tag`] reads it.
///
/// # Robust domains
///
/// `Link<T>` (that is, `Link<T, false>`) is for domains that are not
/// [robust](crate::DomainBuilder::robust): its loads and exchanges are the
/// plain atomic operations, and a use with a robust domain's guard panics.
/// A structure that may live in a robust domain uses `Link<T, true>`,
/// which works in any domain and, in a robust one, protects what it loads
/// (at the price the builder's doc gives).
///
/// ```should_panic
/// let domain = ownrcu::Domain::builder().robust(true).build();
/// // SAFETY: nothing is ever linked; only guards of `domain`.
/// let plain: ownrcu::Link<u64> = unsafe { ownrcu::Link::null() };
/// let _ = plain.load(&domain.read()); // panics: use `Link<u64, true>`
/// ```
///
/// # Thread safety
///
/// `Link<T>` is `Send` and `Sync` if `T` is `Send` and `Sync`: readers on
/// other threads share the objects, and whoever retires them may free
/// them on another thread.
///
/// ```compile_fail
/// fn is_sync<T: Sync>(_: &T) {}
/// // SAFETY: never points anywhere.
/// let link = unsafe { ownrcu::Link::<std::cell::Cell<u8>>::null() };
/// is_sync(&link); // error: `Cell<u8>` cannot be shared between threads safely
/// ```
///
/// # Examples
///
/// A node linked from two places, retired once by whoever unlinks it last:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use ownrcu::{Domain, Link, Owned, Shared};
///
/// struct Node {
///     value: u64,
///     links: AtomicUsize, // how many links point here
/// }
///
/// let domain = Domain::new();
/// // SAFETY: 1. a node is retired only when its last link is gone, below;
/// // 2. the links are loaded only under guards of `domain`.
/// let (a, b) = unsafe { (Link::<Node>::null(), Link::<Node>::null()) };
/// let guard = domain.read();
/// let node = Owned::new(Node { value: 7, links: AtomicUsize::new(2) }).into_shared(&guard);
/// a.store(node);
/// b.store(node);
/// assert_eq!(a.load(&guard).value, 7);
/// for link in [&a, &b] {
///     let old = link.swap(Shared::null(), &guard);
///     if old.links.fetch_sub(1, Ordering::AcqRel) == 1 {
///         // SAFETY: unlinked from both links, from `Box::into_raw` (via
///         // `Owned`), read only under guards of `domain`, retired once.
///         unsafe { domain.retire_raw(old.as_ptr().cast_mut()) };
///     }
/// }
/// drop(guard);
/// domain.barrier();
/// assert_eq!(domain.stats().freed, 1);
/// ```
#[repr(transparent)]
pub struct Link<T, const ROBUST: bool = false> {
    ptr: AtomicPtr<T>,
    _shares: PhantomData<*const T>,
}

// SAFETY: a link hands `&T` to readers on any thread (`T: Sync`), and what
// it points to may be freed by whichever thread retires it (`T: Send`).
unsafe impl<T: Send + Sync, const ROBUST: bool> Send for Link<T, ROBUST> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync, const ROBUST: bool> Sync for Link<T, ROBUST> {}

impl<T, const ROBUST: bool> Link<T, ROBUST> {
    /// A null link (tag 0).
    ///
    /// # Safety
    ///
    /// A link cannot know who frees what it points to; by making one the
    /// caller promises, for every object the link will ever point to:
    ///
    /// 1. **Valid while handed out.** The link hands its object out as a
    ///    [`Shared`] through [`load`](Link::load),
    ///    [`load_untagged`](Link::load_untagged) (only when untagged),
    ///    [`swap`](Link::swap), the exchanges and
    ///    [`fetch_or`](Link::fetch_or)/`fetch_and`/`fetch_xor`. The object
    ///    is retired only once no read section starting from then on can
    ///    obtain it from this link that way: the link no longer points to
    ///    it, or the link can no longer be reached (it lies in a node that
    ///    is unlinked), or it is tagged and from then on only used by
    ///    operations that hand out nothing for a tagged value
    ///    ([`peek`](Link::peek), [`fetch_or_tag`](Link::fetch_or_tag),
    ///    [`load_untagged`](Link::load_untagged), [`store`](Link::store),
    ///    [`get_mut`](Link::get_mut)). It is freed directly, without a
    ///    grace period, only once no read section that obtained it can
    ///    still be running (the structure is owned exclusively, as in its
    ///    `Drop`).
    /// 2. **One domain.** Retirements of the object go into the domain
    ///    whose guards are passed to this link's operations (directly, or
    ///    through an owner of it: [`OwnerBatch::push_with`](crate::OwnerBatch::push_with)),
    ///    and only guards of that domain are passed.
    ///
    /// A structure typically discharges both at once: it holds its domain
    /// (or uses [`Domain::global`](crate::Domain::global)), checks that
    /// each caller's guard belongs to it ([`Guard::domain`] compared with
    /// `==`), and retires a node when the last link to it is gone (a
    /// reference count, or the node's unlinking from its one list).
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link};
    ///
    /// // SAFETY: 1. nothing is ever linked; 2. no guard is ever passed.
    /// let link = unsafe { Link::<u64>::null() };
    /// assert!(link.peek().0.is_null());
    /// ```
    ///
    /// Links inside a structure's own allocation, all null at once:
    ///
    /// ```
    /// use ownrcu::Link;
    /// struct Head {
    ///     tower: [Link<u64>; 32],
    /// }
    /// // SAFETY: as above.
    /// let head = Head { tower: std::array::from_fn(|_| unsafe { Link::null() }) };
    /// assert!(head.tower.iter().all(|l| l.peek().0.is_null()));
    /// ```
    #[must_use]
    pub unsafe fn null() -> Self {
        Self {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
            _shares: PhantomData,
        }
    }

    /// Loads the pointer (`rcu_dereference`): the object stays valid for
    /// as long as the guard is borrowed (the link's contract), whatever
    /// happens to the link. `Acquire`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link, Owned};
    /// let domain = Domain::new();
    /// // SAFETY: its object is retired below once unlinked, into `domain`,
    /// // whose guards are the only ones used.
    /// let link = unsafe { Link::<u32>::null() };
    /// let guard = domain.read();
    /// link.store(Owned::new(5_u32).into_shared(&guard));
    /// assert_eq!(*link.load(&guard), 5);
    /// let old = link.swap(ownrcu::Shared::null(), &guard);
    /// // SAFETY: unlinked, from `Box::into_raw`, retired once into `domain`.
    /// unsafe { domain.retire_raw(old.as_ptr().cast_mut()) };
    /// ```
    #[inline]
    pub fn load<'g>(&self, guard: &'g Guard<'_>) -> Shared<'g, T> {
        // Acquire: pairs with the Release of the write that published the
        // object, so its contents are visible through the `Shared`.
        // Protected in a robust domain.
        Shared::from_raw(self.protect(guard, || self.ptr.load(Acquire)))
    }

    /// Stores `new` (`rcu_assign_pointer`); needs no guard, since it hands
    /// out nothing. `Release`: publishes the object's contents.
    ///
    /// Initializing the links of a node that is not yet published is a
    /// `store` too.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Link, Shared};
    /// // SAFETY: nothing non-null is ever stored.
    /// let link = unsafe { Link::<u64>::null() };
    /// link.store(Shared::<u64>::null().with_tag(1));
    /// assert_eq!(link.peek().1, 1);
    /// ```
    #[inline]
    pub fn store(&self, new: Shared<'_, T>) {
        // Release: as in the doc above.
        self.ptr.store(new.raw(), Release);
    }

    /// Stores `new` and returns the previous value. `AcqRel`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link, Shared};
    /// let domain = Domain::new();
    /// // SAFETY: nothing non-null is ever stored.
    /// let link = unsafe { Link::<u64>::null() };
    /// let guard = domain.read();
    /// let old = link.swap(Shared::<u64>::null().with_tag(1), &guard);
    /// assert!(old.is_null() && old.tag() == 0);
    /// ```
    #[inline]
    pub fn swap<'g>(&self, new: Shared<'_, T>, guard: &'g Guard<'_>) -> Shared<'g, T> {
        // AcqRel: Release publishes `new`, Acquire makes the old object's
        // contents visible to the caller, who may dereference it.
        // Protected in a robust domain.
        Shared::from_raw(self.protect_exchange(guard, || self.ptr.swap(new.raw(), AcqRel)))
    }

    /// If the link equals `current` (address and tag), replaces it with
    /// `new` and returns `current`; otherwise returns the value found, and
    /// `new` back. `AcqRel` on success, `Acquire` on failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link, Owned, Shared};
    /// let domain = Domain::new();
    /// // SAFETY: its object is retired below once unlinked, into `domain`.
    /// let link = unsafe { Link::<u32>::null() };
    /// let guard = domain.read();
    /// let node = Owned::new(1_u32).into_shared(&guard);
    /// assert!(link.compare_exchange(Shared::null(), node, &guard).is_ok());
    /// let err = link.compare_exchange(Shared::null(), node, &guard).unwrap_err();
    /// assert_eq!(err.current, node);
    /// let old = link.swap(Shared::null(), &guard);
    /// // SAFETY: unlinked, from `Box::into_raw`, retired once into `domain`.
    /// unsafe { domain.retire_raw(old.as_ptr().cast_mut()) };
    /// ```
    #[inline]
    pub fn compare_exchange<'g, 'n>(
        &self,
        current: Shared<'_, T>,
        new: Shared<'n, T>,
        guard: &'g Guard<'_>,
    ) -> Result<Shared<'g, T>, CompareExchangeError<'g, T, Shared<'n, T>>> {
        self.exchange(current, new, guard, false)
    }

    /// [`compare_exchange`](Link::compare_exchange) that may fail even when
    /// the link equals `current` (cheaper in a retry loop on some
    /// processors); same orderings.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link, Shared};
    /// let domain = Domain::new();
    /// // SAFETY: nothing non-null is ever stored.
    /// let link = unsafe { Link::<u64>::null() };
    /// let guard = domain.read();
    /// let marked = Shared::<u64>::null().with_tag(1);
    /// while link.compare_exchange_weak(Shared::null(), marked, &guard).is_err() {}
    /// assert_eq!(link.load(&guard), marked);
    /// ```
    #[inline]
    pub fn compare_exchange_weak<'g, 'n>(
        &self,
        current: Shared<'_, T>,
        new: Shared<'n, T>,
        guard: &'g Guard<'_>,
    ) -> Result<Shared<'g, T>, CompareExchangeError<'g, T, Shared<'n, T>>> {
        self.exchange(current, new, guard, true)
    }

    #[inline]
    fn exchange<'g, 'n>(
        &self,
        current: Shared<'_, T>,
        new: Shared<'n, T>,
        guard: &'g Guard<'_>,
        weak: bool,
    ) -> Result<Shared<'g, T>, CompareExchangeError<'g, T, Shared<'n, T>>> {
        match self.protect_exchange(guard, || self.cas(current.raw(), new.raw(), weak)) {
            Ok(old) => Ok(Shared::from_raw(old)),
            Err(now) => Err(CompareExchangeError {
                current: Shared::from_raw(now),
                new,
            }),
        }
    }

    /// A load whose value the section may dereference, as [`Guard::protect`]
    /// runs it for a link of this kind (`ROBUST`: whether its domain may
    /// be robust; a plain link checks that it is not).
    #[inline(always)]
    fn protect<P>(&self, guard: &Guard<'_>, load: impl Fn() -> P) -> P {
        if !ROBUST {
            guard.assert_not_robust("a Link<T>");
        }
        guard.protect(ROBUST, load)
    }

    /// A read-modify-write whose previous value the section may
    /// dereference, as [`Guard::exchange`] runs it (as `protect`).
    #[inline(always)]
    fn protect_exchange<R>(&self, guard: &Guard<'_>, op: impl FnOnce() -> R) -> R {
        if !ROBUST {
            guard.assert_not_robust("a Link<T>");
        }
        guard.exchange(ROBUST, op)
    }

    /// The compare-and-swap itself (`shared::cas`): `AcqRel`/`Acquire`
    /// (module docs).
    #[inline]
    fn cas(&self, current: *mut T, new: *mut T, weak: bool) -> Result<*mut T, *mut T> {
        cas(&self.ptr, current, new, weak)
    }

    /// Sets tag bits: the tag becomes `tag | value` (masked), the object
    /// stays; returns the previous value (a Harris mark: `fetch_or(1)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link};
    /// let domain = Domain::new();
    /// // SAFETY: nothing non-null is ever stored.
    /// let next = unsafe { Link::<u64>::null() }; // `u64`: three tag bits
    /// let guard = domain.read();
    /// assert_eq!(next.fetch_or(1, &guard).tag(), 0);
    /// assert_eq!(next.load(&guard).tag(), 1);
    /// ```
    #[inline]
    pub fn fetch_or<'g>(&self, tag: usize, guard: &'g Guard<'_>) -> Shared<'g, T> {
        self.fetch_tag(guard, |t| t | tag)
    }

    /// Clears tag bits: the tag becomes `tag & value`. As
    /// [`fetch_or`](Link::fetch_or).
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link, Shared};
    /// let domain = Domain::new();
    /// // SAFETY: nothing non-null is ever stored.
    /// let next = unsafe { Link::<u64>::null() };
    /// next.store(Shared::<u64>::null().with_tag(3));
    /// next.fetch_and(!1, &domain.read());
    /// assert_eq!(next.peek().1, 2);
    /// ```
    #[inline]
    pub fn fetch_and<'g>(&self, tag: usize, guard: &'g Guard<'_>) -> Shared<'g, T> {
        self.fetch_tag(guard, |t| t & tag)
    }

    /// Flips tag bits: the tag becomes `tag ^ value`. As
    /// [`fetch_or`](Link::fetch_or).
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link};
    /// let domain = Domain::new();
    /// // SAFETY: nothing non-null is ever stored.
    /// let next = unsafe { Link::<u64>::null() };
    /// next.fetch_xor(1, &domain.read());
    /// assert_eq!(next.peek().1, 1);
    /// ```
    #[inline]
    pub fn fetch_xor<'g>(&self, tag: usize, guard: &'g Guard<'_>) -> Shared<'g, T> {
        self.fetch_tag(guard, |t| t ^ tag)
    }

    /// Sets tag bits like [`fetch_or`](Link::fetch_or) but returns only the
    /// previous tag, and needs no guard: for marking a link that may point
    /// to an object nobody protects any more (a skip-list tower's levels
    /// above those the node was linked at, whose successors were only
    /// proposals). `AcqRel`/`Acquire`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::Link;
    /// // SAFETY: nothing non-null is ever stored.
    /// let next = unsafe { Link::<u64>::null() };
    /// assert_eq!(next.fetch_or_tag(1), 0); // marked by us
    /// assert_eq!(next.fetch_or_tag(1), 1); // already marked
    /// ```
    #[inline]
    pub fn fetch_or_tag(&self, tag: usize) -> usize {
        decompose(update_tag(&self.ptr, |t| t | tag)).1
    }

    /// Loads the pointer and hands it out only if its tag is 0: `Ok` with
    /// the `Shared`, or `Err` with the tag. For links whose tag means "no
    /// longer maintained" (a removed node's marked links, which may point
    /// to freed objects): the contract of [`Link::null`] then asks
    /// nothing of the objects behind tagged values. `Acquire`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link, Owned, Shared};
    /// let domain = Domain::new();
    /// // SAFETY: its object is retired below once unlinked, into `domain`.
    /// let next = unsafe { Link::<u64>::null() };
    /// let guard = domain.read();
    /// next.store(Owned::new(3_u64).into_shared(&guard));
    /// assert_eq!(*next.load_untagged(&guard).unwrap(), 3);
    /// let node = next.fetch_or(1, &guard); // marked: handed out no more
    /// assert_eq!(next.load_untagged(&guard), Err(1));
    /// next.store(Shared::null());
    /// // SAFETY: unlinked, from `Box::into_raw`, retired once into `domain`.
    /// unsafe { domain.retire_raw(node.as_ptr().cast_mut()) };
    /// ```
    #[inline]
    pub fn load_untagged<'g>(&self, guard: &'g Guard<'_>) -> Result<Shared<'g, T>, usize> {
        // Acquire, protected: as `load`.
        let raw = self.protect(guard, || self.ptr.load(Acquire));
        match decompose(raw).1 {
            0 => Ok(Shared::from_raw(raw)),
            tag => Err(tag),
        }
    }

    /// The tag operations' loop (`shared::update_tag`), its previous value
    /// handed out: `AcqRel`/`Acquire`.
    #[inline]
    fn fetch_tag<'g>(&self, guard: &'g Guard<'_>, f: impl Fn(usize) -> usize) -> Shared<'g, T> {
        Shared::from_raw(self.protect_exchange(guard, || update_tag(&self.ptr, f)))
    }

    /// The untagged address and the tag, without a guard: for a null or tag
    /// test, or to compare addresses. It yields no reference; dereferencing
    /// the address needs the guarantees of [`Shared::from_ptr`]. `Acquire`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Link, Shared};
    /// // SAFETY: nothing non-null is ever stored.
    /// let link = unsafe { Link::<u64>::null() };
    /// link.store(Shared::<u64>::null().with_tag(1));
    /// let (ptr, tag) = link.peek();
    /// assert!(ptr.is_null() && tag == 1);
    /// ```
    #[inline]
    #[must_use]
    pub fn peek(&self) -> (*const T, usize) {
        // Acquire: as `load`, so that a caller who then proves the object
        // protected sees its contents.
        let (ptr, tag) = decompose(self.ptr.load(Acquire));
        (ptr, tag)
    }

    /// The untagged address and the tag, through exclusive access: what a
    /// structure's `Drop` or `into_iter` reads to free its nodes directly.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::Link;
    /// // SAFETY: its object is freed below, with exclusive access.
    /// let mut link = unsafe { Link::<u64>::null() };
    /// // SAFETY: a live box; the link's contract as above.
    /// link.store(unsafe { ownrcu::Shared::from_ptr(Box::into_raw(Box::new(1))) });
    /// let (ptr, tag) = link.get_mut();
    /// assert_eq!(tag, 0);
    /// // SAFETY: from `Box::into_raw`; `&mut` means no reader loads it.
    /// drop(unsafe { Box::from_raw(ptr) });
    /// ```
    #[inline]
    #[must_use]
    pub fn get_mut(&mut self) -> (*mut T, usize) {
        // Relaxed: `&mut self` already orders us after every writer.
        decompose(self.ptr.load(Relaxed))
    }
}

impl<T, const ROBUST: bool> fmt::Debug for Link<T, ROBUST> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: only the address and tag are shown, never the object.
        let (ptr, tag) = decompose(self.ptr.load(Relaxed));
        f.debug_struct("Link")
            .field("ptr", &ptr)
            .field("tag", &tag)
            .finish()
    }
}
