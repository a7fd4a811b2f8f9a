//! [`Atomic`]: a safe RCU pointer for any [`Domain`], with [`Owned`],
//! [`Shared`] and [`Detached`] values.
//!
//! # Invariants
//!
//! 1. **One domain per pointer.** An `Atomic` is bound to the first domain
//!    whose guard is passed to it ([`AnyDomain`]: the domain's id, one word),
//!    or to the global domain from the start ([`GlobalDomain`]: no memory);
//!    every use with a guard of another domain panics. With
//!    [`UncheckedDomain`] (no memory, no check) the creator promised the
//!    same in the `unsafe` constructor. So every reader
//!    that loaded an object out of it was inside a section of the very
//!    domain its unlinked objects are retired into.
//! 2. **One owning link per object.** Objects enter an `Atomic` only as an
//!    [`Owned`] (a unique `Box`), and leave it only as a [`Detached`] (from a
//!    swap or a compare-and-swap that removed it), through exclusive access
//!    (`get_mut`, `into_inner`, `Drop`), or through
//!    [`insert_before`](Atomic::insert_before), which moves the link into
//!    the new object itself. The safe API therefore never lets two `Atomic`s
//!    point to one object, so a `Detached` object is unreachable for readers
//!    that start after it was detached, and retiring it is safe. The two
//!    `unsafe` exchanges ([`compare_exchange_unlink`](Atomic::compare_exchange_unlink),
//!    [`compare_exchange_alias`](Atomic::compare_exchange_alias)) install a
//!    [`Shared`] and so make a second link; their contracts give the
//!    invariant back.
//! 3. **A `Shared<'g, T>` borrows both the guard and the `Atomic` it came
//!    from.** Its object can leave that `Atomic` only as a `Detached`
//!    (retired into the bound domain, freed after a grace period that waits
//!    for the guard, or at the domain's teardown, which the guard's borrow
//!    of the domain prevents) or through exclusive access, which the borrow
//!    of the `Atomic` prevents. An `Atomic` inside an object is dropped only
//!    with the object, i.e. after the same grace period.
//! 4. **Tags** live in the pointer's low `align_of::<T>()` bits and never
//!    reach a dereference: every pointer is untagged before use.
//!
//! # Orderings
//!
//! They are fixed, not chosen by the caller, because the safety of
//! [`Shared`]'s dereference depends on them: every load is `Acquire` (the
//! object's contents, written before its publication, are visible); every
//! write is a read-modify-write with `AcqRel` on success (`Release`
//! publishes an [`Owned`]'s contents; `Acquire` makes the replaced object's
//! contents ours, since a [`Detached`] can be read and is dropped by us or a
//! reclaimer we hand it to) and `Acquire` on failure (the returned current
//! value can be dereferenced). The binding is `Relaxed`: it orders nothing,
//! every thread only has to agree on its one value. Exclusive access uses
//! `Relaxed`: `&mut` or ownership already implies happens-before.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{self, size_of, ManuallyDrop};
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use crate::shared::{cas, compose, decompose, tag_mask, update_tag};
use crate::sync::{AtomicPtr, AtomicU64};
use crate::{Batch, Birth, Domain, Guard, Shared};

/// How an [`Atomic`] knows its domain: the `D` of `Atomic<T, D>`, either
/// [`AnyDomain`] (the default: bound on first use, one word) or
/// [`GlobalDomain`] (the global domain only, no memory). Sealed.
pub trait DomainBinding: sealed::Sealed {}

mod sealed {
    use crate::Guard;

    pub trait Sealed: Sized {
        /// Not bound to any domain yet.
        fn unbound() -> Self;
        /// Binds to `guard`'s domain, or checks that it is bound to it.
        ///
        /// # Panics
        ///
        /// If it is bound to another domain.
        fn bind(&self, guard: &Guard<'_>);
        /// Whether the domain may be robust, once `bind` returned: not
        /// for [`GlobalDomain`](super::GlobalDomain), whose `bind` checked
        /// that the guard is the global domain's, which never is, nor for
        /// `UncheckedDomain<false>`, whose `bind` checks it; their loads
        /// skip the robust bit's test.
        const MAYBE_ROBUST: bool = true;
    }
}

use sealed::Sealed;

/// The default [`DomainBinding`]: an [`Atomic`] bound to the first domain
/// whose guard is used with it, any domain (8 bytes: the domain's id + 1,
/// 0 before first use).
pub struct AnyDomain(AtomicU64);

impl DomainBinding for AnyDomain {}

impl Sealed for AnyDomain {
    fn unbound() -> Self {
        Self(AtomicU64::new(0))
    }

    #[inline]
    fn bind(&self, guard: &Guard<'_>) {
        let me = guard.domain_id().wrapping_add(1);
        // Relaxed: the binding orders nothing; every thread only has to agree
        // on one value, which the single compare-and-swap from 0 gives.
        let bound = self.0.load(Relaxed);
        if bound != me {
            bind_slow(&self.0, me, bound);
        }
    }
}

#[cold]
fn bind_slow(word: &AtomicU64, me: u64, bound: u64) {
    let bound = if bound == 0 {
        // Relaxed: as in `AnyDomain::bind`.
        match word.compare_exchange(0, me, Relaxed, Relaxed) {
            Ok(_) => return,
            Err(now) => now,
        }
    } else {
        bound
    };
    assert!(
        bound == me,
        "ownrcu: an Atomic was used with a guard of another domain than the one it is bound to \
         (the domain of the first guard it was used with); objects unlinked from it are retired \
         into that domain, so only its readers are protected"
    );
}

impl fmt::Debug for AnyDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: for display only.
        match self.0.load(Relaxed) {
            0 => f.write_str("AnyDomain(unbound)"),
            id => write!(f, "AnyDomain({})", id - 1),
        }
    }
}

/// A [`DomainBinding`] for pointers used only with [`Domain::global`]: no
/// memory (an `Atomic<T, GlobalDomain>` is one word, like crossbeam-epoch's
/// `Atomic`), and a use with a guard of any other domain panics. (There is
/// no global domain under loom, so there every use panics.)
///
/// # Examples
///
/// ```
/// use ownrcu::{Atomic, Domain, GlobalDomain};
///
/// let a: Atomic<u64, GlobalDomain> = Atomic::new_global(1);
/// assert_eq!(std::mem::size_of_val(&a), 8);
/// assert_eq!(*a.load(&Domain::global().read()), 1);
/// ```
#[derive(Debug)]
pub struct GlobalDomain(());

impl DomainBinding for GlobalDomain {}

impl Sealed for GlobalDomain {
    const MAYBE_ROBUST: bool = false;

    fn unbound() -> Self {
        Self(())
    }

    #[inline]
    fn bind(&self, guard: &Guard<'_>) {
        // A bit of the guard's own word: no load on the pointer's path.
        assert!(
            guard.is_global(),
            "ownrcu: an Atomic<_, GlobalDomain> was used with a guard of a user-created domain; \
             it is for the global domain only (use `Atomic<T>` for any domain)"
        );
    }
}

/// A [`DomainBinding`] for pointers of a structure that checks the domain
/// itself: no memory and no check per use (an `Atomic<T, UncheckedDomain>`
/// is one word), for a structure with a domain of its own. Such pointers
/// are made only by the `unsafe` [`Atomic::null_unchecked`] and
/// [`Atomic::from_owned_unchecked`], whose contract is the check the
/// binding leaves out.
///
/// # Robust domains
///
/// `UncheckedDomain` (that is, `UncheckedDomain<false>`) is for domains
/// that are not [robust](crate::DomainBuilder::robust): its loads are
/// plain loads, and a use with a robust domain's guard panics (a test of
/// a bit of the guard, which a loop does once).
/// `UncheckedDomain<true>` is for any domain: each load and exchange
/// tests whether the guard's domain is robust and, if it is, protects
/// what it reads. In a domain that is not robust that test is all it
/// costs, but it is a second path in every loop that loads, which the
/// compiler may copy the loop for.
///
/// ```should_panic
/// # use ownrcu::{Atomic, Domain, UncheckedDomain};
/// let domain = Domain::builder().robust(true).build();
/// // SAFETY: only guards of `domain` are passed.
/// let a: Atomic<u64, UncheckedDomain> = unsafe { Atomic::null_unchecked() };
/// a.load(&domain.read()); // panics: use `UncheckedDomain<true>`
/// ```
///
/// # Examples
///
/// A structure with its own domain, which checks each caller's guard once:
///
/// ```
/// use ownrcu::{Atomic, Domain, Guard, Owned, UncheckedDomain};
///
/// struct Config {
///     domain: Domain,
///     current: Atomic<String, UncheckedDomain>,
/// }
///
/// impl Config {
///     fn new(value: &str) -> Self {
///         Config {
///             domain: Domain::new(),
///             // SAFETY: every method below passes only guards of `domain`
///             // (`check`), and the field is private.
///             current: unsafe { Atomic::from_owned_unchecked(Owned::new(value.into())) },
///         }
///     }
///     fn check(&self, guard: &Guard<'_>) {
///         assert!(guard.domain() == &self.domain, "a guard of another domain");
///     }
///     fn get<'g>(&'g self, guard: &'g Guard<'_>) -> &'g str {
///         self.check(guard);
///         self.current.load(guard).as_ref().unwrap()
///     }
///     fn set(&self, value: &str) {
///         let guard = self.domain.read();
///         self.current.store(Owned::new(value.into()), &guard);
///     }
/// }
///
/// let config = Config::new("v1");
/// config.set("v2");
/// assert_eq!(config.get(&config.domain.read()), "v2");
/// ```
#[derive(Debug)]
pub struct UncheckedDomain<const ROBUST: bool = false>(());

impl<const ROBUST: bool> DomainBinding for UncheckedDomain<ROBUST> {}

impl<const ROBUST: bool> Sealed for UncheckedDomain<ROBUST> {
    const MAYBE_ROBUST: bool = ROBUST;

    fn unbound() -> Self {
        Self(())
    }

    #[inline(always)]
    fn bind(&self, guard: &Guard<'_>) {
        // The creator's contract (`Atomic::null_unchecked`) is the domain
        // check; whether it may be robust is the type's.
        if !ROBUST {
            guard.assert_not_robust("an Atomic<_, UncheckedDomain>");
        }
    }
}

/// An RCU pointer to a `T`, usable with any [`Domain`]: `rcu_dereference`
/// ([`load`](Atomic::load)) and `rcu_assign_pointer`
/// ([`store`](Atomic::store), [`swap`](Atomic::swap),
/// [`compare_exchange`](Atomic::compare_exchange)) with the protection in
/// the types.
///
/// - Readers [`load`](Atomic::load) a [`Shared<'g, T>`](Shared) under a
///   [`Guard`]; it cannot outlive the guard nor the `Atomic`.
/// - Writers put [`Owned`] values in and get what they replaced back as a
///   [`Detached`], which can only be retired into the domain whose readers
///   may still see it.
/// - The pointer owns its object: [`get_mut`](Atomic::get_mut),
///   [`into_inner`](Atomic::into_inner) and `Drop` use it directly, with no
///   guard, since `&mut` or ownership means no reader holds it.
///
/// # Which domain
///
/// An `Atomic<T>` (the default binding, [`AnyDomain`]) binds to the domain
/// of the first guard it is used with (loaded, written, or tagged), and
/// panics when used with a guard of
/// another domain afterwards, for good (also after that domain is dropped).
/// The check is one `Relaxed` load and a compare. Binding at construction
/// would need a domain to make even an empty pointer; checking only the
/// guard would let a reader of domain A load an object that a writer
/// unlinks through domain B and retires into B: a use-after-free from safe
/// code.
///
/// The price is memory: an `Atomic<T>` is 16 bytes (the pointer and the
/// binding), against crossbeam-epoch's 8. A list node holding a `u64` key, a
/// `u64` value and its `next` pointer takes 32 bytes instead of 24, which
/// glibc rounds to a 48-byte chunk instead of 32; a node of 8 bytes of data
/// fits glibc's minimal 32-byte chunk either way.
///
/// A structure that lives in the global domain pays nothing:
/// `Atomic<T, GlobalDomain>` ([`GlobalDomain`]; made with
/// [`new_global`](Atomic::new_global), [`null_global`](Atomic::null_global),
/// [`from_owned_global`](Atomic::from_owned_global)) is one word, and its
/// check is a compare of the guard's domain id with a constant.
///
/// A structure with a domain of its own can be one word too, with
/// `Atomic<T, UncheckedDomain>` ([`UncheckedDomain`]): the structure
/// checks the domain once per operation (`guard.domain() == &self.domain`)
/// instead of each pointer on each use, and makes its pointers with the
/// `unsafe` [`null_unchecked`](Atomic::null_unchecked) and
/// [`from_owned_unchecked`](Atomic::from_owned_unchecked), promising that
/// check; everything else stays safe.
///
/// ```
/// use std::mem::size_of;
/// use ownrcu::{Atomic, GlobalDomain, UncheckedDomain};
/// assert_eq!(size_of::<Atomic<u64>>(), 16);
/// assert_eq!(size_of::<Atomic<u64, GlobalDomain>>(), 8);
/// assert_eq!(size_of::<Atomic<u64, UncheckedDomain>>(), 8);
/// ```
///
/// # Tags
///
/// The low bits a `T`'s alignment leaves free carry a tag
/// (`align_of::<T>() - 1` is the mask; Harris lists mark `next` pointers
/// with it): [`Owned::with_tag`], [`Shared::with_tag`], [`fetch_or`](Atomic::fetch_or).
/// Tags beyond the mask are cut off, as crossbeam-epoch does.
///
/// # Links to one object from two pointers
///
/// The safe operations never make two `Atomic`s point to one object (see
/// [`insert_before`](Atomic::insert_before) for linking a new node in front
/// of an existing one). Unlinking a node whose successor stays in the
/// structure (a stack's pop, a list's removal, a queue's dequeue) moves the
/// successor's link out of the node, which needs
/// [`compare_exchange_unlink`](Atomic::compare_exchange_unlink); a second
/// pointer that never owns (a queue's tail) needs
/// [`compare_exchange_alias`](Atomic::compare_exchange_alias). Both are
/// `unsafe`. A node whose `next` may be left behind in an unlinked node
/// keeps it in `ManuallyDrop`, so that dropping the node after its grace
/// period does not drop the successor (`examples/stack.rs`,
/// `examples/queue.rs`, `examples/map.rs`).
///
/// Dropping an `Atomic` drops its object, which drops the `Atomic`s inside
/// it in turn: a long chain of owning links recurses once per link. The
/// examples' structures free their nodes in a loop instead (their `next`
/// links are in `ManuallyDrop` anyway).
///
/// # Unsized objects
///
/// `T: Sized`: a pointer to an unsized value is two words, and no portable
/// atomic instruction swaps two words. Put a `Box<dyn Trait>` (or
/// `Box<[T]>`) in the `Atomic` instead: `Atomic<Box<dyn Trait + Send + Sync>>`.
///
/// # Thread safety
///
/// `Atomic<T>` is `Send` if `T: Send` and `Sync` if `T: Sync`, like the
/// `Box<T>` it owns. Bounds sit only where ownership moves: operations
/// that unlink objects need `T: Send + 'static`, since the object is
/// dropped by whichever thread frees it, later;
/// [`insert_before`](Atomic::insert_before) needs `T: Send` (the new
/// object may be dropped with the pointer on another thread); loads, tag
/// operations and [`compare_exchange_alias`](Atomic::compare_exchange_alias)
/// need nothing.
///
/// ```compile_fail
/// fn is_sync<T: Sync>(_: &T) {}
/// let a = ownrcu::Atomic::new(std::rc::Rc::new(1));
/// is_sync(&a); // error: `Rc<i32>` cannot be shared between threads safely
/// ```
///
/// # Examples
///
/// ```
/// use ownrcu::{Atomic, Domain, Owned};
///
/// let domain = Domain::new();
/// let config = Atomic::new(String::from("v1"));
/// {
///     let guard = domain.read();
///     assert_eq!(*config.load(&guard), "v1");
///     // Replace it; the old value may still be read by running readers, so
///     // it comes back `Detached` and is retired into `domain`.
///     let old = config.swap(Owned::new(String::from("v2")), &guard);
///     assert_eq!(*old.unwrap(), "v1"); // dropping a `Detached` retires it
///     assert_eq!(*config.load(&guard), "v2");
/// }
/// domain.barrier(); // "v1" is freed
/// assert_eq!(config.into_inner().unwrap().into_box(), Box::new("v2".to_string()));
/// ```
pub struct Atomic<T, D = AnyDomain> {
    ptr: AtomicPtr<T>,
    domain: D,
    _owns: PhantomData<Box<T>>,
}

impl<T> Atomic<T> {
    /// A pointer to `value`, moved to the heap.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = ownrcu::Atomic::new(7_u64);
    /// let guard = ownrcu::Domain::global().read();
    /// assert_eq!(*a.load(&guard), 7);
    /// ```
    pub fn new(value: T) -> Self {
        Self::from(Owned::new(value))
    }

    /// A null pointer (tag 0).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = ownrcu::Atomic::<u64>::null();
    /// let guard = ownrcu::Domain::global().read();
    /// assert!(a.load(&guard).is_null());
    /// ```
    #[must_use]
    pub fn null() -> Self {
        Self::from_raw(ptr::null_mut())
    }
}

impl<T> Atomic<T, GlobalDomain> {
    /// A pointer to `value` for the global domain only (see
    /// [`GlobalDomain`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = ownrcu::Atomic::new_global(7_u64);
    /// assert_eq!(*a.load(&ownrcu::Domain::global().read()), 7);
    /// ```
    pub fn new_global(value: T) -> Self {
        Self::from_owned_global(Owned::new(value))
    }

    /// A null pointer for the global domain only.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = ownrcu::Atomic::<u64, _>::null_global();
    /// assert!(a.load(&ownrcu::Domain::global().read()).is_null());
    /// ```
    #[must_use]
    pub fn null_global() -> Self {
        Self::from_raw(ptr::null_mut())
    }

    /// A pointer to an [`Owned`] (with its tag), for the global domain
    /// only. (`From` exists for the default binding only, so that an
    /// unannotated `Atomic::from` keeps its type.)
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Owned};
    /// let a = Atomic::from_owned_global(Owned::new(1_u32).with_tag(1));
    /// assert_eq!(a.load(&ownrcu::Domain::global().read()).tag(), 1);
    /// ```
    #[must_use]
    pub fn from_owned_global(owned: Owned<T>) -> Self {
        Self::from_raw(Owned::into_raw_or_null(Some(owned)))
    }
}

impl<T, const ROBUST: bool> Atomic<T, UncheckedDomain<ROBUST>> {
    /// A null pointer whose domain the caller checks ([`UncheckedDomain`]).
    ///
    /// # Safety
    ///
    /// 1. Every guard ever passed to this pointer's operations belongs to
    ///    one domain (the structure checks `guard.domain() == &domain`, or
    ///    makes the guards itself). Objects it unlinks are retired into
    ///    that domain, so its readers are the ones protected.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, Owned, UncheckedDomain};
    /// let domain = Domain::new();
    /// // SAFETY: 1. only guards of `domain` are passed, below.
    /// let a: Atomic<u64, UncheckedDomain> = unsafe { Atomic::null_unchecked() };
    /// a.store(Owned::new(1), &domain.read());
    /// assert_eq!(*a.load(&domain.read()), 1);
    /// ```
    #[must_use]
    pub unsafe fn null_unchecked() -> Self {
        Self::from_raw(ptr::null_mut())
    }

    /// A pointer to an [`Owned`] (with its tag) whose domain the caller
    /// checks ([`UncheckedDomain`]).
    ///
    /// # Safety
    ///
    /// As for [`null_unchecked`](Atomic::null_unchecked).
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, Owned, UncheckedDomain};
    /// let domain = Domain::new();
    /// // SAFETY: 1. only guards of `domain` are passed, below.
    /// let a: Atomic<_, UncheckedDomain> =
    ///     unsafe { Atomic::from_owned_unchecked(Owned::new(2_u32)) };
    /// assert_eq!(*a.load(&domain.read()), 2);
    /// ```
    #[must_use]
    pub unsafe fn from_owned_unchecked(owned: Owned<T>) -> Self {
        Self::from_raw(Owned::into_raw_or_null(Some(owned)))
    }
}

impl<T, D: DomainBinding> Atomic<T, D> {
    fn from_raw(raw: *mut T) -> Self {
        Self {
            ptr: AtomicPtr::new(raw),
            domain: D::unbound(),
            _owns: PhantomData,
        }
    }

    /// Loads the pointer (`rcu_dereference`): the object stays valid for as
    /// long as both the guard and this pointer are borrowed.
    ///
    /// `Acquire`: pairs with the `Release` of the write that published the
    /// object, so its contents are visible through the [`Shared`].
    ///
    /// # Panics
    ///
    /// If the pointer is bound to another domain than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let a = ownrcu::Atomic::new([1_u8; 4]);
    /// let guard = domain.read();
    /// let shared = a.load(&guard);
    /// assert_eq!(shared.as_ref(), Some(&[1; 4]));
    /// ```
    ///
    /// The [`Shared`] cannot outlive the guard:
    ///
    /// ```compile_fail,E0597
    /// let domain = ownrcu::Domain::new();
    /// let a = ownrcu::Atomic::new(1_u32);
    /// let shared = {
    ///     let guard = domain.read();
    ///     a.load(&guard) // error: `guard` does not live long enough
    /// };
    /// # drop(shared);
    /// ```
    ///
    /// nor the `Atomic` (whose drop frees the object):
    ///
    /// ```compile_fail,E0505
    /// let domain = ownrcu::Domain::new();
    /// let a = ownrcu::Atomic::new(1_u32);
    /// let guard = domain.read();
    /// let shared = a.load(&guard);
    /// drop(a); // error: cannot move out of `a` because it is borrowed
    /// # drop(shared);
    /// ```
    #[inline]
    pub fn load<'g>(&'g self, guard: &'g Guard<'_>) -> Shared<'g, T> {
        self.domain.bind(guard);
        // Acquire: see the doc above; protected in a robust domain.
        Shared::from_raw(self.load_protected(guard))
    }

    /// The pointer, loaded as [`Guard::protect`] does (the robust domains'
    /// protocol, module `robust` of the core) when the binding allows a
    /// robust domain; a plain load otherwise.
    #[inline(always)]
    fn load_protected(&self, guard: &Guard<'_>) -> *mut T {
        // Acquire: see `load`.
        guard.protect(D::MAYBE_ROBUST, || self.ptr.load(Acquire))
    }

    /// `op`, a read-modify-write whose previous value the section may
    /// dereference, run as [`Guard::exchange`] does (as above).
    #[inline(always)]
    fn exchange_protected<R>(&self, guard: &Guard<'_>, op: impl FnOnce() -> R) -> R {
        guard.exchange(D::MAYBE_ROBUST, op)
    }

    /// The untagged address and the tag, without a guard: for a null or
    /// tag test. It yields no reference (dereferencing needs a guard and
    /// [`load`](Atomic::load)). `Acquire`, as a load.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = ownrcu::Atomic::from(ownrcu::Owned::new(1_u64).with_tag(2));
    /// let (ptr, tag) = a.peek();
    /// assert!(!ptr.is_null() && tag == 2);
    /// ```
    #[inline]
    #[must_use]
    pub fn peek(&self) -> (*const T, usize) {
        // Acquire: as `load`.
        let (ptr, tag) = decompose(self.ptr.load(Acquire));
        (ptr, tag)
    }

    /// The object, for exclusive access: `&mut self` means no reader holds
    /// it, so no guard is needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut a = ownrcu::Atomic::new(1_u32);
    /// *a.get_mut().unwrap() += 1;
    /// assert_eq!(*a.into_inner().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut T> {
        // Relaxed: `&mut self` already orders us after every writer.
        let (ptr, _) = decompose(self.ptr.load(Relaxed));
        // SAFETY: the pointer owns its object (module invariant 2), and
        // `&mut self` excludes every `Shared` of it (invariant 3), so the
        // object is valid and not aliased for the borrow.
        unsafe { ptr.as_mut() }
    }

    /// The object (with its tag), taken out: ownership of the pointer means
    /// no reader holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = ownrcu::Atomic::from(ownrcu::Owned::new(5_u64).with_tag(1));
    /// let owned = a.into_inner().unwrap();
    /// assert_eq!((*owned, owned.tag()), (5, 1));
    /// ```
    pub fn into_inner(self) -> Option<Owned<T>> {
        let this = ManuallyDrop::new(self);
        // Relaxed: ownership already orders us after every writer.
        let (ptr, tag) = decompose(this.ptr.load(Relaxed));
        // SAFETY: as in `get_mut`, and the `Atomic` is gone (not dropped), so
        // the object has no other owner.
        NonNull::new(ptr).map(|ptr| unsafe { Owned::from_non_null(ptr, tag) })
    }
}

impl<T, D: DomainBinding> Atomic<T, D> {
    /// The compare-and-swap itself (`shared::cas`). `AcqRel`/`Acquire`:
    /// see [`swap`](Atomic::swap) and [`compare_exchange`](Atomic::compare_exchange).
    #[inline]
    fn cas(&self, current: *mut T, new: *mut T, weak: bool) -> Result<*mut T, *mut T> {
        cas(&self.ptr, current, new, weak)
    }

    /// Links `new` in front of `current`: sets `new`'s own link (which
    /// `next` points out inside `new`) to `current`, then replaces `current`
    /// with `new` here if the pointer still equals it. The link to
    /// `current` moves from this pointer into `new`, so no object gets a
    /// second link: a stack's push, a sorted list's insertion, safely. On
    /// failure `new`'s link is null again and `new` comes back.
    ///
    /// The link is set with a `Relaxed` store (the `Release` of the exchange
    /// publishes it with the rest of `new`); the exchange is `AcqRel`/`Acquire`
    /// as in [`compare_exchange`](Atomic::compare_exchange).
    ///
    /// # Panics
    ///
    /// If `next` returns a pointer that does not lie inside `new`'s object,
    /// or one that is not null; if either pointer is bound to another domain
    /// than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::ManuallyDrop;
    /// use ownrcu::{Atomic, Domain, Owned};
    ///
    /// struct Node {
    ///     value: u32,
    ///     next: ManuallyDrop<Atomic<Node>>,
    /// }
    /// let domain = Domain::new();
    /// let head = Atomic::null();
    /// let guard = domain.read();
    /// for value in 0..3 {
    ///     let mut node = Owned::new(Node { value, next: ManuallyDrop::new(Atomic::null()) });
    ///     loop {
    ///         let current = head.load(&guard);
    ///         match head.insert_before(current, node, |n| &n.next, &guard) {
    ///             Ok(()) => break,
    ///             Err(err) => node = err.new,
    ///         }
    ///     }
    /// }
    /// let top = head.load(&guard);
    /// assert_eq!(top.value, 2);
    /// assert_eq!(top.next.load(&guard).value, 1);
    /// # drop(guard);
    /// # let mut link = head.into_inner();
    /// # while let Some(node) = link {
    /// #     link = ManuallyDrop::into_inner(node.into_box().next).into_inner();
    /// # }
    /// ```
    pub fn insert_before<'g>(
        &'g self,
        current: Shared<'_, T>,
        new: Owned<T>,
        next: impl FnOnce(&T) -> &Atomic<T, D>,
        guard: &'g Guard<'_>,
    ) -> Result<(), CompareExchangeError<'g, T, Owned<T>>>
    where
        // The object moves into a pointer that another thread may drop.
        T: Send,
    {
        self.domain.bind(guard);
        let link: *const Atomic<T, D> = next(&new);
        let start = new.ptr.as_ptr() as usize;
        let at = link as usize;
        assert!(
            at >= start && at + size_of::<Atomic<T, D>>() <= start + size_of::<T>(),
            "ownrcu: Atomic::insert_before: `next` must point to an Atomic inside the new object"
        );
        // SAFETY: the `Atomic` lies inside `new`'s object (checked just
        // above), which we own and which stays allocated and unmoved (it is
        // boxed) until we return it.
        let link = unsafe { &*link };
        link.domain.bind(guard);
        // Relaxed: `new` is ours alone until the exchange publishes it.
        assert!(
            decompose(link.ptr.load(Relaxed)).0.is_null(),
            "ownrcu: Atomic::insert_before: the new object's link must be null"
        );
        link.ptr.store(current.raw(), Relaxed);
        match self.exchange_protected(guard, || self.cas(current.raw(), new.as_raw(), false)) {
            Ok(_) => {
                // The link to `current` moved into `new`, now owned here.
                mem::forget(new);
                Ok(())
            }
            Err(now) => {
                // Relaxed: unpublished, as above.
                link.ptr.store(ptr::null_mut(), Relaxed);
                Err(CompareExchangeError {
                    current: Shared::from_raw(now),
                    new,
                })
            }
        }
    }

    /// Sets tag bits: the tag becomes `tag | value` (masked), the object
    /// stays. Returns the previous value.
    ///
    /// A compare-and-swap loop (`AtomicPtr::fetch_or` is newer than the
    /// crate's minimum Rust), `AcqRel`/`Acquire`: the returned value may be
    /// dereferenced. No object changes hands, so nothing is detached.
    ///
    /// # Panics
    ///
    /// If the pointer is bound to another domain than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let next = ownrcu::Atomic::new(1_u64); // `u64`: three tag bits
    /// let guard = domain.read();
    /// let before = next.fetch_or(1, &guard); // mark it, Harris-style
    /// assert_eq!((before.tag(), next.load(&guard).tag()), (0, 1));
    /// ```
    pub fn fetch_or<'g>(&'g self, tag: usize, guard: &'g Guard<'_>) -> Shared<'g, T> {
        self.fetch_tag(guard, |t| t | tag)
    }

    /// Clears tag bits: the tag becomes `tag & value`. As
    /// [`fetch_or`](Atomic::fetch_or).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let next = ownrcu::Atomic::from(ownrcu::Owned::new(1_u64).with_tag(3));
    /// let guard = domain.read();
    /// next.fetch_and(!1, &guard);
    /// assert_eq!(next.load(&guard).tag(), 2);
    /// ```
    pub fn fetch_and<'g>(&'g self, tag: usize, guard: &'g Guard<'_>) -> Shared<'g, T> {
        self.fetch_tag(guard, |t| t & tag)
    }

    /// Flips tag bits: the tag becomes `tag ^ value`. As
    /// [`fetch_or`](Atomic::fetch_or).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let next = ownrcu::Atomic::<u64>::null();
    /// let guard = domain.read();
    /// next.fetch_xor(1, &guard);
    /// assert_eq!(next.load(&guard).tag(), 1);
    /// assert!(next.load(&guard).is_null()); // a tagged null
    /// ```
    pub fn fetch_xor<'g>(&'g self, tag: usize, guard: &'g Guard<'_>) -> Shared<'g, T> {
        self.fetch_tag(guard, |t| t ^ tag)
    }

    fn fetch_tag<'g>(&'g self, guard: &'g Guard<'_>, f: impl Fn(usize) -> usize) -> Shared<'g, T> {
        self.domain.bind(guard);
        Shared::from_raw(self.exchange_protected(guard, || update_tag(&self.ptr, f)))
    }

    /// Replaces `current` with `new` in a pointer that never owns what it
    /// points to (a queue's tail, a hint): nothing is detached. On failure,
    /// gives back the value found and `new`. Orderings as
    /// [`compare_exchange`](Atomic::compare_exchange).
    ///
    /// # Safety
    ///
    /// 1. This pointer never owns: it sits in `ManuallyDrop`, and it is
    ///    only ever loaded or changed by this method (never `store`, `swap`,
    ///    `compare_exchange`, `insert_before`, `compare_exchange_unlink`,
    ///    `get_mut` or `into_inner`).
    /// 2. `new`'s object stays linked from its owning pointer for as long as
    ///    this one points to it: whoever unlinks it first moves this pointer
    ///    away (a queue's dequeue first helps the tail past the head).
    ///
    /// # Panics
    ///
    /// If the pointer is bound to another domain than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::ManuallyDrop;
    /// use ownrcu::{Atomic, Domain, Shared};
    ///
    /// let domain = Domain::new();
    /// let head = Atomic::new(1_u32);
    /// let tail = ManuallyDrop::new(Atomic::null());
    /// let guard = domain.read();
    /// let first = head.load(&guard);
    /// // SAFETY: 1. `tail` is in `ManuallyDrop` and changed only here; 2.
    /// // `head` keeps its object while `tail` points to it.
    /// unsafe { tail.compare_exchange_alias(Shared::null(), first, &guard) }.unwrap();
    /// assert_eq!(*tail.load(&guard), 1);
    /// ```
    pub unsafe fn compare_exchange_alias<'g, 'n>(
        &'g self,
        current: Shared<'_, T>,
        new: Shared<'n, T>,
        guard: &'g Guard<'_>,
    ) -> Result<(), CompareExchangeError<'g, T, Shared<'n, T>>> {
        self.domain.bind(guard);
        match self.exchange_protected(guard, || self.cas(current.raw(), new.raw(), false)) {
            Ok(_) => Ok(()),
            Err(now) => Err(CompareExchangeError {
                current: Shared::from_raw(now),
                new,
            }),
        }
    }
}

impl<T: Send + 'static, D: DomainBinding> Atomic<T, D> {
    /// Publishes `new` (or null) and retires what it replaces into the
    /// guard's domain (`rcu_assign_pointer` then `call_rcu`): [`swap`](Atomic::swap)
    /// with the old value retired.
    ///
    /// # Panics
    ///
    /// If the pointer is bound to another domain than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, Owned};
    ///
    /// let domain = Domain::new();
    /// let a = Atomic::new(1_u32);
    /// a.store(Owned::new(2), &domain.read());
    /// a.store(None, &domain.read());
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 2);
    /// ```
    pub fn store(&self, new: impl Into<Option<Owned<T>>>, guard: &Guard<'_>) {
        if let Some(old) = self.swap(new, guard) {
            old.retire();
        }
    }

    /// Publishes `new` (or null) and returns what it replaces, detached:
    /// readers that start now cannot find it, running readers may still
    /// hold it. A replaced tagged null comes back as `None`.
    ///
    /// `AcqRel`: `Release` publishes `new`'s contents to readers that load
    /// it (`Acquire`); `Acquire` makes the replaced object's contents ours.
    ///
    /// # Panics
    ///
    /// If the pointer is bound to another domain than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, Owned};
    ///
    /// let domain = Domain::new();
    /// let a = Atomic::null();
    /// let guard = domain.read();
    /// assert!(a.swap(Owned::new(1_u32), &guard).is_none());
    /// let old = a.swap(Owned::new(2), &guard).unwrap();
    /// assert_eq!(*old, 1);
    /// old.retire_hurry(); // start its grace period now
    /// ```
    #[must_use = "the old object comes back `Detached`: dropping it retires it"]
    pub fn swap<'d>(
        &self,
        new: impl Into<Option<Owned<T>>>,
        guard: &Guard<'d>,
    ) -> Option<Detached<'d, T>> {
        self.domain.bind(guard);
        let new = Owned::into_raw_or_null(new.into());
        // AcqRel: see the doc above.
        let old = self.ptr.swap(new, AcqRel);
        Detached::from_raw(old, guard.domain())
    }

    /// If the pointer equals `current` (address and tag), replaces it with
    /// `new` and returns `current`'s object detached (`None` if `current` is
    /// null); otherwise gives back the value found and `new`.
    ///
    /// `AcqRel` on success, as [`swap`](Atomic::swap); `Acquire` on failure:
    /// the current value returned may be dereferenced.
    ///
    /// # Panics
    ///
    /// If the pointer is bound to another domain than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, Owned, Shared};
    ///
    /// let domain = Domain::new();
    /// let a = Atomic::null();
    /// let guard = domain.read();
    /// // Install only if still empty.
    /// assert!(a.compare_exchange(Shared::null(), Owned::new(1_u32), &guard).is_ok());
    /// let err = a.compare_exchange(Shared::null(), Owned::new(2), &guard).unwrap_err();
    /// assert_eq!(*err.current, 1);
    /// assert_eq!(*err.new.unwrap(), 2); // `new` comes back
    /// ```
    pub fn compare_exchange<'g, 'd>(
        &'g self,
        current: Shared<'_, T>,
        new: impl Into<Option<Owned<T>>>,
        guard: &'g Guard<'d>,
    ) -> Result<Option<Detached<'d, T>>, CompareExchangeError<'g, T>> {
        self.exchange(current, new.into(), guard, false)
    }

    /// [`compare_exchange`](Atomic::compare_exchange) that may fail even
    /// when the pointer equals `current` (cheaper in a retry loop on some
    /// processors); same orderings.
    ///
    /// # Panics
    ///
    /// If the pointer is bound to another domain than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, Owned};
    ///
    /// let domain = Domain::new();
    /// let counter = Atomic::new(0_u64);
    /// let guard = domain.read();
    /// let mut new = Owned::new(0);
    /// loop {
    ///     let current = counter.load(&guard);
    ///     *new = *current + 1;
    ///     match counter.compare_exchange_weak(current, new, &guard) {
    ///         Ok(old) => break old.unwrap().retire(),
    ///         Err(err) => new = err.new.unwrap(),
    ///     }
    /// }
    /// assert_eq!(*counter.load(&guard), 1);
    /// ```
    pub fn compare_exchange_weak<'g, 'd>(
        &'g self,
        current: Shared<'_, T>,
        new: impl Into<Option<Owned<T>>>,
        guard: &'g Guard<'d>,
    ) -> Result<Option<Detached<'d, T>>, CompareExchangeError<'g, T>> {
        self.exchange(current, new.into(), guard, true)
    }

    fn exchange<'g, 'd>(
        &'g self,
        current: Shared<'_, T>,
        new: Option<Owned<T>>,
        guard: &'g Guard<'d>,
        weak: bool,
    ) -> Result<Option<Detached<'d, T>>, CompareExchangeError<'g, T>> {
        self.domain.bind(guard);
        let new_raw = new.as_ref().map_or(ptr::null_mut(), Owned::as_raw);
        match self.exchange_protected(guard, || self.cas(current.raw(), new_raw, weak)) {
            Ok(old) => {
                // Installed: the `Atomic` owns the object now.
                mem::forget(new);
                Ok(Detached::from_raw(old, guard.domain()))
            }
            Err(now) => Err(CompareExchangeError {
                current: Shared::from_raw(now),
                new,
            }),
        }
    }

    /// Replaces `current` with `new`, an object linked from another pointer
    /// whose link moves here, and returns `current`'s object detached: the
    /// unlink of a node whose successor stays (a stack's pop, a list's
    /// removal, a queue's dequeue). On failure, gives back the value found
    /// and `new`. Orderings as [`compare_exchange`](Atomic::compare_exchange).
    ///
    /// # Safety
    ///
    /// The safe operations keep every object linked from at most one
    /// pointer that may change, take or drop it (module invariant 2); this
    /// call makes a second link to `new`'s object. The caller promises, for
    /// a successful exchange:
    ///
    /// 1. Every other pointer to `new`'s object (typically the `next` of
    ///    `current`'s node) is from now on never used to detach, take out or
    ///    drop it: it is kept in `ManuallyDrop`, and no exchange on it can
    ///    succeed any more (the node is marked, or its link never changes
    ///    again), or it is changed only by calls whose own contracts hold.
    /// 2. `current`'s object is unlinked: no pointer that a reader starting
    ///    after this call can reach still points to it, so retiring the
    ///    returned [`Detached`] after a grace period is safe.
    ///
    /// # Panics
    ///
    /// If the pointer is bound to another domain than the guard's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::mem::ManuallyDrop;
    /// use ownrcu::{Atomic, Domain, Owned};
    ///
    /// struct Node {
    ///     value: u32,
    ///     next: ManuallyDrop<Atomic<Node>>,
    /// }
    /// let domain = Domain::new();
    /// let second = Owned::new(Node { value: 2, next: ManuallyDrop::new(Atomic::null()) });
    /// let first = Owned::new(Node { value: 1, next: ManuallyDrop::new(Atomic::from(second)) });
    /// let head = Atomic::from(first);
    /// let guard = domain.read();
    /// let top = head.load(&guard);
    /// let next = top.next.load(&guard);
    /// // SAFETY: 1. `next` was linked only from `top`'s `next`, which sits in
    /// // `ManuallyDrop` and is never changed again; 2. `top` was linked only
    /// // from `head`.
    /// let popped = unsafe { head.compare_exchange_unlink(top, next, &guard) };
    /// let popped = popped.ok().flatten().unwrap();
    /// assert_eq!((popped.value, head.load(&guard).value), (1, 2));
    /// popped.retire();
    /// # drop(guard);
    /// # let node = head.into_inner().unwrap().into_box();
    /// # assert!(ManuallyDrop::into_inner(node.next).into_inner().is_none());
    /// ```
    pub unsafe fn compare_exchange_unlink<'g, 'd, 'n>(
        &'g self,
        current: Shared<'_, T>,
        new: Shared<'n, T>,
        guard: &'g Guard<'d>,
    ) -> Result<Option<Detached<'d, T>>, CompareExchangeError<'g, T, Shared<'n, T>>> {
        self.domain.bind(guard);
        match self.exchange_protected(guard, || self.cas(current.raw(), new.raw(), false)) {
            Ok(old) => Ok(Detached::from_raw(old, guard.domain())),
            Err(now) => Err(CompareExchangeError {
                current: Shared::from_raw(now),
                new,
            }),
        }
    }
}

impl<T, D> Drop for Atomic<T, D> {
    /// Drops the object, directly: dropping the pointer means no reader
    /// holds it (a [`Shared`] borrows the pointer).
    fn drop(&mut self) {
        // Relaxed: `&mut self` already orders us after every writer.
        let (ptr, _) = decompose(self.ptr.load(Relaxed));
        if !ptr.is_null() {
            // SAFETY: the pointer owns the object (module invariant 2), from
            // `Box::into_raw`, and no `Shared` of it is alive (invariant 3).
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

impl<T> Default for Atomic<T> {
    /// A null pointer.
    fn default() -> Self {
        Self::null()
    }
}

impl<T> Default for Atomic<T, GlobalDomain> {
    /// A null pointer for the global domain only.
    fn default() -> Self {
        Self::null_global()
    }
}

impl<T> From<Owned<T>> for Atomic<T> {
    fn from(owned: Owned<T>) -> Self {
        Self::from_raw(Owned::into_raw_or_null(Some(owned)))
    }
}

impl<T> From<Box<T>> for Atomic<T> {
    fn from(boxed: Box<T>) -> Self {
        Self::from(Owned::from(boxed))
    }
}

impl<T, D: fmt::Debug> fmt::Debug for Atomic<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: only the address and tag are shown, never the object.
        let (ptr, tag) = decompose(self.ptr.load(Relaxed));
        f.debug_struct("Atomic")
            .field("ptr", &ptr)
            .field("tag", &tag)
            .field("domain", &self.domain)
            .finish()
    }
}

/// An object of the caller's, boxed, with a tag, to be put into an
/// [`Atomic`] (crossbeam-epoch's `Owned`).
///
/// # Examples
///
/// ```
/// let mut owned = ownrcu::Owned::new(1_u64).with_tag(2);
/// *owned += 1;
/// assert_eq!((*owned, owned.tag()), (2, 2));
/// assert_eq!(*owned.into_box(), 2);
/// ```
pub struct Owned<T> {
    /// From `Box::into_raw`, owned; untagged.
    ptr: NonNull<T>,
    tag: usize,
    _owns: PhantomData<Box<T>>,
}

// SAFETY: it is a `Box<T>` and a number.
unsafe impl<T: Send> Send for Owned<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Owned<T> {}

impl<T> Owned<T> {
    /// `value`, moved to the heap, tag 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(*ownrcu::Owned::new(3_u8), 3);
    /// ```
    pub fn new(value: T) -> Self {
        Self::from(Box::new(value))
    }

    /// # Safety
    ///
    /// `ptr` came from `Box::<T>::into_raw`, and the new value owns it.
    unsafe fn from_non_null(ptr: NonNull<T>, tag: usize) -> Self {
        Self {
            ptr,
            tag,
            _owns: PhantomData,
        }
    }

    /// The tag.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ownrcu::Owned::new(3_u32).tag(), 0);
    /// ```
    #[must_use]
    pub fn tag(&self) -> usize {
        self.tag
    }

    /// The same object with tag `tag & (align_of::<T>() - 1)`.
    ///
    /// # Examples
    ///
    /// ```
    /// // `u16` leaves one tag bit.
    /// assert_eq!(ownrcu::Owned::new(3_u16).with_tag(3).tag(), 1);
    /// ```
    #[must_use]
    pub fn with_tag(self, tag: usize) -> Self {
        let this = ManuallyDrop::new(self);
        Self {
            ptr: this.ptr,
            tag: tag & tag_mask::<T>(),
            _owns: PhantomData,
        }
    }

    /// Gives the object up to a [`Shared`] for the guard's lifetime: it is
    /// leaked, owned by no one, to be linked into a [`Link`](crate::Link)
    /// (whose contract then says who frees it) or into an `Atomic` with an
    /// `unsafe` exchange. Crossbeam-epoch's `Owned::into_shared`.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let guard = domain.read();
    /// let shared = ownrcu::Owned::new(3_u64).with_tag(1).into_shared(&guard);
    /// assert_eq!((*shared, shared.tag()), (3, 1));
    /// let ptr = shared.as_ptr().cast_mut();
    /// drop(guard);
    /// // SAFETY: from `Box::into_raw` (via `Owned`), never linked: freed once.
    /// drop(unsafe { Box::from_raw(ptr) });
    /// ```
    #[must_use]
    pub fn into_shared<'g>(self, _guard: &'g Guard<'_>) -> Shared<'g, T> {
        // Leaked: nothing but `unsafe` code can free it, so it stays valid
        // for `'g` (module `shared`'s invariant).
        Shared::from_raw(ManuallyDrop::new(self).as_raw())
    }

    /// The object, as a `Box` (the tag is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// let boxed: Box<String> = ownrcu::Owned::new(String::from("x")).into_box();
    /// assert_eq!(*boxed, "x");
    /// ```
    #[must_use]
    pub fn into_box(self) -> Box<T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: the pointer came from `Box::into_raw`, and this value, now
        // forgotten, was its only owner.
        unsafe { Box::from_raw(this.ptr.as_ptr()) }
    }

    /// The tagged pointer; the object stays owned by `self`.
    fn as_raw(&self) -> *mut T {
        compose(self.ptr.as_ptr(), self.tag)
    }

    /// The tagged pointer (or null), ownership passed to the caller.
    fn into_raw_or_null(owned: Option<Self>) -> *mut T {
        owned.map_or(ptr::null_mut(), |owned| ManuallyDrop::new(owned).as_raw())
    }
}

impl<T> From<Box<T>> for Owned<T> {
    fn from(boxed: Box<T>) -> Self {
        // SAFETY: from `Box::into_raw`, owned by the new value alone.
        unsafe { Self::from_non_null(NonNull::from(Box::leak(boxed)), 0) }
    }
}

impl<T> Deref for Owned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: an owned, live `Box<T>`; shared for the borrow of `self`.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for Owned<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: an owned, live `Box<T>`; unique for the borrow of `self`.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: an owned `Box<T>`, dropped once, here.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

impl<T> fmt::Debug for Owned<T> {
    /// The address and the tag (like [`Shared`]'s), so that results holding
    /// an `Owned` can be unwrapped whatever `T` is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Owned")
            .field("ptr", &self.ptr)
            .field("tag", &self.tag)
            .finish()
    }
}

/// An object an exchange on an [`Atomic`] took out: no reader that starts
/// now can find it, readers already running may still hold it. It can only
/// be retired into the domain of the guard the exchange used, which is the
/// one the `Atomic` is bound to: singly ([`retire`](Detached::retire),
/// [`retire_hurry`](Detached::retire_hurry); dropping it retires it too) or
/// into a [`Batch`] of that domain ([`retire_into`](Detached::retire_into)).
/// It borrows that domain, so it is always retired while the domain lives.
///
/// The domain is a run-time property (all domains have one type), checked
/// by [`retire_into`](Detached::retire_into); a `Detached` cannot outlive
/// the domain:
///
/// ```compile_fail,E0597
/// let a = ownrcu::Atomic::new(1_u32);
/// let old = {
///     let domain = ownrcu::Domain::new();
///     let guard = domain.read();
///     a.swap(None, &guard) // error: `domain` does not live long enough
/// };
/// ```
///
/// # Leaking it
///
/// Forgetting it (`mem::forget`) leaks the object; never undefined
/// behaviour.
///
/// # Examples
///
/// ```
/// use ownrcu::{Atomic, Domain, Owned};
///
/// let domain = Domain::new();
/// let a = Atomic::new(String::from("old"));
/// let old = a.swap(Owned::new(String::from("new")), &domain.read()).unwrap();
/// assert_eq!(*old, "old"); // still readable until retired
/// old.retire();
/// domain.barrier();
/// assert_eq!(domain.stats().freed, 1);
/// ```
#[must_use = "dropping it retires the object; say so with `.retire()`"]
pub struct Detached<'d, T: Send + 'static> {
    /// From `Box::into_raw`, unlinked, untagged; owned by this value.
    ptr: NonNull<T>,
    tag: usize,
    domain: &'d Domain,
}

// SAFETY: it owns a `Box<T>` (`T: Send`) that readers on other threads may
// still share (`T: Sync`), and borrows a `Sync` domain.
unsafe impl<T: Send + Sync + 'static> Send for Detached<'_, T> {}
// SAFETY: shared access only reads `T` (`T: Sync`).
unsafe impl<T: Send + Sync + 'static> Sync for Detached<'_, T> {}

impl<'d, T: Send + 'static> Detached<'d, T> {
    /// The object an exchange removed (tagged, possibly null), now owned by
    /// the caller until retired into `domain`.
    fn from_raw(raw: *mut T, domain: &'d Domain) -> Option<Self> {
        let (ptr, tag) = decompose(raw);
        NonNull::new(ptr).map(|ptr| Self { ptr, tag, domain })
    }

    /// The tag it had in the pointer.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, Owned};
    /// let domain = Domain::new();
    /// let a = Atomic::from(Owned::new(1_u32).with_tag(2));
    /// assert_eq!(a.swap(None, &domain.read()).unwrap().tag(), 2);
    /// ```
    #[must_use]
    pub fn tag(&self) -> usize {
        self.tag
    }

    /// The domain it will be retired into.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain};
    /// let domain = Domain::new();
    /// let a = Atomic::new(1_u32);
    /// let old = a.swap(None, &domain.read()).unwrap();
    /// assert!(std::ptr::eq(old.domain(), &domain));
    /// ```
    #[must_use]
    pub fn domain(&self) -> &'d Domain {
        self.domain
    }

    /// Retires the object: it is dropped after a grace period of its
    /// domain (`call_rcu`), like [`Domain::retire`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain};
    /// let domain = Domain::new();
    /// let a = Atomic::new(1_u32);
    /// a.swap(None, &domain.read()).unwrap().retire();
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 1);
    /// ```
    pub fn retire(self) {
        drop(self);
    }

    /// [`retire`](Detached::retire), and start the grace period now
    /// (`call_rcu_hurry`; see [`Domain::hurry`] for the cost).
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain};
    /// let domain = Domain::new();
    /// let a = Atomic::new(1_u32);
    /// a.swap(None, &domain.read()).unwrap().retire_hurry();
    /// assert_eq!(domain.stats().grace_periods_hurried, 1);
    /// ```
    pub fn retire_hurry(self) {
        let domain = self.domain;
        drop(self);
        domain.hurry();
    }

    /// [`retire`](Detached::retire) for an object born at `birth`: in a
    /// [robust](crate::DomainBuilder::robust) domain it may be freed before
    /// its grace period completes, once no reader in a section can hold it
    /// ([`Domain::retire_born`]).
    ///
    /// # Safety
    ///
    /// 1. `birth` was read from the object's domain ([`Domain::birth`])
    ///    before the object was first stored where a reader could load it.
    /// 2. Readers reached it only through loads and exchanges of
    ///    [`Atomic`]s in their sections (what the safe API allows), not
    ///    through a [`Shared::from_ptr`] of an address kept otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Birth, Domain, Owned};
    ///
    /// let domain = Domain::builder().robust(true).build();
    /// let birth = domain.birth();
    /// let a = Atomic::new((1_u32, birth)); // the birth kept in the object
    /// let old = a.swap(Owned::new((2, domain.birth())), &domain.read()).unwrap();
    /// let birth: Birth = old.1;
    /// // SAFETY: 1. read before `Atomic::new` published it; 2. only `a`'s
    /// // loads reached it.
    /// unsafe { old.retire_born(birth) };
    /// ```
    pub unsafe fn retire_born(self, birth: Birth) {
        let this = ManuallyDrop::new(self);
        // SAFETY: obligations 1-5 of `Domain::retire_born` as in `Drop`
        // (`free_box` frees the `Box<T>` it came from, `T: Send + 'static`);
        // 6 and 7 are this function's.
        unsafe {
            this.domain
                .retire_born(this.ptr.as_ptr(), free_box::<T>, birth)
        };
    }

    /// Adds the object to `batch`, retired with it as one grace-period
    /// registration.
    ///
    /// # Panics
    ///
    /// If the batch belongs to another domain than the object's.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, Owned};
    ///
    /// let domain = Domain::new();
    /// let slots: Vec<_> = (0..4_u32).map(Atomic::new).collect();
    /// let mut batch = domain.batch();
    /// let guard = domain.read();
    /// for slot in &slots {
    ///     slot.swap(Owned::new(0), &guard).unwrap().retire_into(&mut batch);
    /// }
    /// drop(guard);
    /// batch.drain(); // one registration for four objects
    /// domain.barrier();
    /// assert_eq!((domain.stats().freed, domain.stats().batches), (4, 1));
    /// ```
    ///
    /// ```should_panic
    /// use ownrcu::{Atomic, Domain};
    ///
    /// let (a, b) = (Domain::new(), Domain::new());
    /// let slot = Atomic::new(1_u32);
    /// let old = slot.swap(None, &a.read()).unwrap();
    /// old.retire_into(&mut b.batch()); // panics: `b`'s readers never saw it
    /// ```
    pub fn retire_into(self, batch: &mut Batch<'_, T>) {
        assert!(
            ptr::eq(batch.domain().inner(), self.domain.inner()),
            "ownrcu: a Detached object was retired into a Batch of another domain than the one \
             its readers used"
        );
        let this = ManuallyDrop::new(self);
        // From `Box::into_raw` (via `Owned`), owned by this value, which is
        // forgotten: pushed once. Unlinked (invariant 2); readers loaded it
        // under guards of the domain the `Atomic` is bound to.
        // SAFETY: as just said; that domain is this batch's (checked above).
        unsafe { batch.push_raw(this.ptr.as_ptr()) };
    }
}

/// Frees a `Box<T>` by pointer: the deleter of [`Detached::retire_born`].
///
/// # Safety
///
/// `ptr` came from `Box::<T>::into_raw` and is freed once.
unsafe fn free_box<T>(ptr: *mut T) {
    // SAFETY: this function's contract.
    drop(unsafe { Box::from_raw(ptr) });
}

impl<T: Send + 'static> Deref for Detached<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the object stays allocated until it is retired, which
        // consumes this value; readers only share it.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Send + 'static> Drop for Detached<'_, T> {
    /// Retires the object.
    fn drop(&mut self) {
        // From `Box::into_raw` (via `Owned`), owned by this value, which is
        // going away: retired once. Unlinked (module invariant 2).
        // SAFETY: as just said; readers got it under guards of the domain
        // the `Atomic` is bound to (invariant 1), which is `domain`.
        unsafe { self.domain.retire_raw(self.ptr.as_ptr()) };
    }
}

impl<T: Send + 'static> fmt::Debug for Detached<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detached")
            .field("ptr", &self.ptr)
            .field("tag", &self.tag)
            .finish()
    }
}

/// A failed compare-and-swap: the value found, and the new value given
/// back (an [`Owned`], or a [`Shared`] for the `unsafe` exchanges).
///
/// # Examples
///
/// ```
/// use ownrcu::{Atomic, Domain, Owned, Shared};
///
/// let domain = Domain::new();
/// let a = Atomic::new(1_u32);
/// let guard = domain.read();
/// let err = a.compare_exchange(Shared::null(), Owned::new(2), &guard).unwrap_err();
/// assert_eq!((*err.current, *err.new.unwrap()), (1, 2));
/// ```
///
/// It is an error type like any other ([`Display`](fmt::Display),
/// [`Error`](std::error::Error)), so `?` can pass it on; what the message
/// cannot carry (the new value) is dropped with it.
///
/// ```
/// # use ownrcu::{Atomic, Domain, Owned, Shared};
/// let domain = Domain::new();
/// let a = Atomic::new(1_u32);
/// let guard = domain.read();
/// let err = a.compare_exchange(Shared::null(), Owned::new(2), &guard).unwrap_err();
/// assert_eq!(err.to_string(), "compare_exchange failed: the pointer held another value");
/// let _: &dyn std::error::Error = &err;
/// ```
pub struct CompareExchangeError<'g, T, N = Option<Owned<T>>> {
    /// The value found in the pointer.
    pub current: Shared<'g, T>,
    /// The new value, not installed.
    pub new: N,
}

impl<T, N: fmt::Debug> fmt::Debug for CompareExchangeError<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompareExchangeError")
            .field("current", &self.current)
            .field("new", &self.new)
            .finish()
    }
}

impl<T, N> fmt::Display for CompareExchangeError<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("compare_exchange failed: the pointer held another value")
    }
}

impl<T, N: fmt::Debug> std::error::Error for CompareExchangeError<'_, T, N> {}
