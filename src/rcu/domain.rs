//! [`Domain`]: where readers enter and objects are retired.
//!
//! # Invariants
//!
//! - A user-created domain counts its handles (`Domain` values). When the
//!   last one drops, no [`Guard`](crate::Guard) can exist (every guard borrows a handle), so
//!   everything still retired is freed directly, with no grace period.
//! - The global domain is never torn down.

use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use core::sync::atomic::Ordering::{AcqRel, Relaxed};

use crate::rcu::config::{Config, DomainBuilder};
use crate::rcu::local;
#[cfg(not(loom))]
use crate::rcu::machine::GLOBAL_INNER;
use crate::rcu::machine::{Inner, ROBUST_ID_BIT};
use crate::rcu::record::Record;
use crate::rcu::retired::{drop_run, free_run, slot_of, slot_with, DropRun, Slot, UNKNOWN_BIRTH};
use crate::rcu::robust::Birth;
use crate::rcu::stall::StallHook;
use crate::sync::Arc;
use crate::Stats;

/// An RCU domain: read-side critical sections, and reclamation of objects
/// retired while readers may still see them.
///
/// Readers call [`read`](Domain::read) and hold the [`Guard`](crate::Guard) while they use
/// shared objects. Writers unlink an object so no *new* reader can find it,
/// then retire it ([`retire`](Domain::retire), [`retire_raw`](Domain::retire_raw),
/// [`defer`](Domain::defer), or a [`Batch`](crate::Batch)); it is freed only after a grace
/// period, once every reader that could have seen it has left its section.
///
/// There is a process-wide [`Domain::global`], and any number of independent
/// domains made with [`Domain::new`]: a long reader in one never delays
/// reclamation in another. Threads register with a domain on first use.
///
/// # Who runs destructors, and when
///
/// Destructors run on threads that call into the domain: a
/// [`retire`](Domain::retire) that fills its thread's buffer (one call in
/// 8 to 128: each thread's buffer adapts to its rate) and a
/// [`Batch::drain`](crate::Batch::drain) each free at most 1024 objects whose grace
/// period has completed; [`collect`](Domain::collect) frees what is ready
/// without blocking; [`barrier`](Domain::barrier) frees everything it
/// waited for; dropping the last handle of a user-created domain frees
/// everything left. And on one process-wide background thread, the
/// [`Reclaimer`]: work that waits gets its grace period within the [time
/// bound](crate::DomainBuilder::time_bound) (100 ms by default), and the
/// reclaimer frees it, so a writer that retires and then goes idle leaves
/// nothing behind for long. Guards never run destructors. Destructors of
/// one domain run one thread at a time.
///
/// Grace periods are rationed: one starts when 4096 objects or 32 buffers
/// and batches wait for one or pacing allows (both subject to the start
/// floor: [who runs destructors, and
/// when](crate#who-runs-destructors-and-when)), when work has waited a
/// time bound, or when someone waits ([`synchronize`], [`barrier`],
/// [`GracePeriod`] polling) or hurries ([`hurry`],
/// [`retire_hurry`](Domain::retire_hurry),
/// [`Batch::drain_hurry`](crate::Batch::drain_hurry)).
///
/// [`Reclaimer`]: crate::Reclaimer
///
/// Pending objects are bounded (8192 by default; [`DomainBuilder`]): a
/// retirement that leaves more pending starts a grace period at once, frees
/// inline, and waits for the grace period for a bounded time (see [the
/// bound](DomainBuilder#the-bound-on-pending-objects)).
///
/// [`hurry`]: Domain::hurry
/// [`DomainBuilder`]: crate::DomainBuilder
/// Emptied buffers are kept for reuse, up to 40 per domain (a grace
/// period's worth, plus a few): steady single retirement then allocates no
/// buffers, at the price of up to about 85 KiB (2.1 KiB a buffer) that a
/// domain which has seen that much single retirement keeps until it is
/// dropped (the global domain: for the life of the process).
///
/// [`synchronize`]: Domain::synchronize
/// [`barrier`]: Domain::barrier
///
/// # Thread safety
///
/// `Domain` is `Send` and `Sync`: a handle may be shared or sent to any
/// thread, and every method takes `&self`. What stays on one thread is the
/// read section: a [`Guard`](crate::Guard) is neither `Send` nor `Sync`.
///
/// ```
/// fn is_send_sync<T: Send + Sync>(_: &T) {}
/// is_send_sync(&ownrcu::Domain::new());
/// ```
///
/// # Dropping a domain
///
/// A user-created domain may be cloned; clones are handles to the same
/// domain. Dropping it while a guard is alive does not compile, because a
/// guard borrows the domain:
///
/// ```compile_fail,E0505
/// let domain = ownrcu::Domain::new();
/// let guard = domain.read();
/// drop(domain); // error: cannot move out of `domain` because it is borrowed
/// drop(guard);
/// ```
///
/// Dropping it while other threads have used it is safe: their registrations
/// only keep the domain's memory, and the last handle's drop frees every
/// object still retired, directly, because no reader can exist any more.
/// When that drop returns, every one is freed, except for a drop inside a
/// destructor that ownrcu runs (of this domain or another, or of an
/// owner): there, if another thread is running this domain's destructors
/// at that moment, the drop does not wait for it (the two could wait for
/// each other), and that thread frees the rest before it moves on.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicPtr, Ordering};
/// use ownrcu::Domain;
///
/// let domain = Domain::new();
/// let shared = AtomicPtr::new(Box::into_raw(Box::new(1_u32)));
///
/// // Reader: the object stays valid while the guard lives.
/// {
///     let _guard = domain.read();
///     // SAFETY: only freed through `domain`, after a grace period.
///     let value = unsafe { *shared.load(Ordering::Acquire) };
///     assert_eq!(value, 1);
/// }
///
/// // Writer: unlink, then retire; freed once no reader can still see it.
/// let old = shared.swap(Box::into_raw(Box::new(2)), Ordering::AcqRel);
/// // SAFETY: `old` came from `Box::into_raw` and is unreachable now.
/// unsafe { domain.retire_raw(old) };
/// domain.barrier(); // frees `old`
/// # let last = shared.load(Ordering::Relaxed);
/// # unsafe { domain.retire_raw(last) };
/// ```
pub struct Domain {
    repr: Repr,
}

enum Repr {
    #[cfg(not(loom))]
    Global,
    /// A domain's state, from `Arc::into_raw`: the handles together own
    /// that one strong reference, so a handle's clone and drop change only
    /// `Inner::handles`, and the last handle's drop, after the teardown,
    /// gives the reference back. The id is copied out of `Inner` so the hot
    /// path compares it without following the pointer.
    Owned(NonNull<Inner>, u64),
}

// SAFETY: a handle is a shared reference to the domain's state, kept alive
// by the handles' strong reference (`Repr::Owned`), as an `Arc<Inner>`
// would be; `Inner` is `Send + Sync`.
unsafe impl Send for Domain {}
// SAFETY: as above.
unsafe impl Sync for Domain {}

impl Domain {
    /// Creates an independent domain.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let guard = domain.read();
    /// drop(guard);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_config(Config::DEFAULT, None)
    }

    /// A builder for a domain with other limits than the defaults (see
    /// [`DomainBuilder`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::builder().max_pending(100_000).build();
    /// # drop(domain);
    /// ```
    pub fn builder() -> DomainBuilder {
        DomainBuilder::new()
    }

    pub(crate) fn with_config(config: Config, stall_hook: Option<StallHook>) -> Self {
        Self {
            repr: {
                let inner = Inner::new(config, stall_hook);
                let id = inner.id;
                // The handles' strong reference (`Repr::Owned`).
                let inner = NonNull::new(Arc::into_raw(inner).cast_mut()).expect("not null");
                Repr::Owned(inner, id)
            },
        }
    }

    /// The process-wide domain. It is never torn down.
    ///
    /// # Examples
    ///
    /// ```
    /// let guard = ownrcu::Domain::global().read();
    /// drop(guard);
    /// ```
    #[cfg(not(loom))]
    #[inline]
    #[must_use]
    pub fn global() -> &'static Domain {
        // A constant, not a `static`: every caller sees that the handle is
        // the global one, so `read()` on it compiles to the global path
        // alone. (All the handles are equal; the state is `GLOBAL_INNER`.)
        const GLOBAL: &Domain = &Domain { repr: Repr::Global };
        GLOBAL
    }

    /// The domain's id (0 for the global domain), without following the
    /// `Arc`: what a pointer's domain check compares on every access.
    #[inline(always)]
    pub(crate) fn id(&self) -> u64 {
        match &self.repr {
            #[cfg(not(loom))]
            Repr::Global => 0,
            Repr::Owned(_, id) => *id,
        }
    }

    #[inline(always)]
    pub(crate) fn inner(&self) -> &Inner {
        match &self.repr {
            #[cfg(not(loom))]
            Repr::Global => &GLOBAL_INNER,
            // SAFETY: the handles' strong reference keeps it alive while
            // this handle exists (`Repr::Owned`).
            Repr::Owned(inner, _) => unsafe { inner.as_ref() },
        }
    }

    /// What a guard of this domain records of it (module `guard`): the
    /// bits `robust` for a robust domain, `global` for the global one,
    /// neither otherwise; from the handle alone, in one match.
    #[inline(always)]
    #[cfg_attr(loom, allow(unused_variables))] // no global domain under loom
    pub(crate) fn kind(&self, robust: usize, global: usize) -> usize {
        match &self.repr {
            #[cfg(not(loom))]
            Repr::Global => global,
            Repr::Owned(_, id) => {
                if id & ROBUST_ID_BIT != 0 {
                    robust
                } else {
                    0
                }
            }
        }
    }

    /// This thread's record, registering on first use; `None` while the
    /// thread's locals are being destroyed.
    #[inline(always)]
    pub(crate) fn record(&self) -> Option<&Record> {
        match &self.repr {
            #[cfg(not(loom))]
            Repr::Global => local::global_record(&GLOBAL_INNER),
            Repr::Owned(inner, id) => {
                let rec = local::record(*id, || {
                    // SAFETY: from `Arc::into_raw`, alive while this handle
                    // exists (`Repr::Owned`); lent, never dropped.
                    ManuallyDrop::new(unsafe { Arc::from_raw(inner.as_ptr().cast_const()) })
                });
                // SAFETY: null or a record of this domain, which lives as
                // long as the domain, which this handle, borrowed for the
                // result's lifetime, keeps alive.
                unsafe { rec.as_ref() }
            }
        }
    }

    /// Retires a boxed object: it is dropped after a grace period.
    ///
    /// Works for unsized objects too (`Box<dyn Trait>`, `Box<[T]>`, `Box<str>`).
    /// The object is buffered in the calling thread and handed to the domain
    /// 8 to 128 at a time, about 100 µs of the thread's retirements (see [who
    /// runs destructors](Domain#who-runs-destructors-and-when)).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// domain.retire(Box::new([0_u8; 192]));
    /// domain.retire(Box::new("unsized") as Box<dyn std::fmt::Debug + Send>);
    /// domain.retire(vec![1, 2, 3].into_boxed_slice());
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 3);
    /// ```
    #[inline]
    pub fn retire<T: ?Sized + Send + 'static>(&self, object: Box<T>) {
        // SAFETY: a `Box` is a unique owner: no reader can hold a reference.
        unsafe { self.retire_raw(Box::into_raw(object)) }
    }

    /// Retires an object by pointer: it is dropped (as a `Box<T>`) after a
    /// grace period.
    ///
    /// This is the entry point for objects published to readers through raw
    /// pointers. The pointer is never turned into a `Box` (a claim of unique
    /// ownership) before the grace period has passed.
    ///
    /// # Safety
    ///
    /// 1. `ptr` came from `Box::<T>::into_raw` and is retired only once.
    /// 2. It is unlinked: no reader that enters a section from now on can
    ///    reach it.
    /// 3. Every reader that may still hold it got it under a guard of *this*
    ///    domain.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicPtr, Ordering};
    ///
    /// let domain = ownrcu::Domain::new();
    /// let slot = AtomicPtr::new(Box::into_raw(Box::new(String::from("old"))));
    /// let old = slot.swap(Box::into_raw(Box::new(String::from("new"))), Ordering::AcqRel);
    /// // SAFETY: from `Box::into_raw`, unlinked by the swap, read only under
    /// // guards of `domain`.
    /// unsafe { domain.retire_raw(old) };
    /// # unsafe { domain.retire_raw(slot.load(Ordering::Relaxed)) };
    /// ```
    #[inline]
    pub unsafe fn retire_raw<T: ?Sized + Send + 'static>(&self, ptr: *mut T) {
        // SAFETY: the caller's obligations 1-3 make `drop_run::<T>` a sound
        // way to free the slot's pointer after a grace period of this domain.
        unsafe { self.push(slot_of(ptr), drop_run::<T>, UNKNOWN_BIRTH) }
    }

    /// Retires an object that `free` frees: `free(ptr)` runs after a grace
    /// period, for objects that are not a `Box<T>` (allocated with a
    /// `Layout`, from a pool, with a header of their own) or that need
    /// more than a drop (a reference count to release). The pointer and
    /// the deleter share the slot a boxed object takes: no allocation.
    ///
    /// For a structure generic over types that need not be `Send +
    /// 'static`, see [`retire_with_unchecked`](Domain::retire_with_unchecked).
    ///
    /// # Safety
    ///
    /// 1. `free(ptr)` may run once, on any thread, at any time after a
    ///    grace period (its domain's teardown at the latest), and frees the
    ///    object; `ptr` is retired only once.
    /// 2. It is unlinked: no reader that enters a section from now on can
    ///    reach it.
    /// 3. Every reader that may still hold it got it under a guard of *this*
    ///    domain.
    ///
    /// # Examples
    ///
    /// A node allocated with a `Layout`, freed with the same `Layout`:
    ///
    /// ```
    /// use std::alloc::{alloc, dealloc, Layout};
    ///
    /// unsafe fn free_block(ptr: *mut u64) {
    ///     // SAFETY: allocated below with this layout.
    ///     unsafe { dealloc(ptr.cast(), Layout::array::<u64>(4).unwrap()) };
    /// }
    /// let domain = ownrcu::Domain::new();
    /// let layout = Layout::array::<u64>(4).unwrap();
    /// // SAFETY: a non-zero-sized layout.
    /// let block = unsafe { alloc(layout) }.cast::<u64>();
    /// assert!(!block.is_null());
    /// // SAFETY: 1. `free_block` frees exactly this allocation, on any
    /// // thread; 2. never published; 3. no reader at all.
    /// unsafe { domain.retire_with(block, free_block) };
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 1);
    /// ```
    #[inline]
    pub unsafe fn retire_with<T: Send + 'static>(&self, ptr: *mut T, free: unsafe fn(*mut T)) {
        // SAFETY: the caller's obligations are `retire_with_unchecked`'s,
        // with 4 and 5 given by `T: Send + 'static`.
        unsafe { self.retire_with_unchecked(ptr, free) }
    }

    /// [`retire_with`](Domain::retire_with) without the `Send + 'static`
    /// bounds, so that a structure generic over `K` and `V` needs them only
    /// where values are inserted, not on every search that may help unlink
    /// (crossbeam-epoch's `defer_unchecked`).
    ///
    /// # Safety
    ///
    /// Obligations 1–3 of [`retire_with`](Domain::retire_with), and:
    ///
    /// 4. `free(ptr)` may run on another thread than this one: what it
    ///    drops or touches may be sent there (as if `T: Send`).
    /// 5. Everything `free` touches lives until it runs, which may be as
    ///    late as the domain's teardown (for [`Domain::global`]: never, if
    ///    the process exits first), not just until this call returns. (A
    ///    structure whose contents borrow data, on a domain of its own,
    ///    calls [`barrier`](Domain::barrier) in its `Drop`: a caller may
    ///    hold a clone of the domain, made through a guard's
    ///    [`domain`](crate::Guard::domain), that delays the teardown.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc; // neither `Send` nor freed here
    ///
    /// unsafe fn free_count(ptr: *mut u64) {
    ///     // SAFETY: from `Box::into_raw` below.
    ///     drop(unsafe { Box::from_raw(ptr) });
    /// }
    /// fn generic<T>(domain: &ownrcu::Domain, _value: &T) {
    ///     let object = Box::into_raw(Box::new(1_u64));
    ///     // SAFETY: 1-3 as for `retire_with`; 4, 5: `free_count` drops a
    ///     // `u64`, nothing of `T`'s.
    ///     unsafe { domain.retire_with_unchecked(object, free_count) };
    /// }
    /// let domain = ownrcu::Domain::new();
    /// generic(&domain, &Rc::new(0));
    /// domain.barrier();
    /// assert_eq!(domain.stats().freed, 1);
    /// ```
    #[inline]
    pub unsafe fn retire_with_unchecked<T>(&self, ptr: *mut T, free: unsafe fn(*mut T)) {
        // SAFETY: the caller's obligations 1-5 make `free_run::<T>`, which
        // calls `free(ptr)`, a sound way to free the slot after a grace
        // period of this domain, on whichever thread frees it.
        unsafe { self.push(slot_with(ptr, free), free_run::<T>, UNKNOWN_BIRTH) }
    }

    /// The era an object published now is born in, for
    /// [`retire_born`](Domain::retire_born): read it before the object
    /// becomes reachable. See [robust domains](crate::DomainBuilder::robust).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::builder().robust(true).build();
    /// let birth = domain.birth();
    /// assert!(domain.birth() >= birth);
    /// ```
    #[inline]
    #[must_use]
    pub fn birth(&self) -> Birth {
        // Relaxed: the publication that follows is a `Release` store, which
        // keeps this load before it.
        Birth(crate::rcu::robust::era_of(self.inner().epoch.load(Relaxed)))
    }

    /// [`retire_with_unchecked`](Domain::retire_with_unchecked) for an
    /// object born at `birth`: in a [robust](crate::DomainBuilder::robust)
    /// domain it may be freed before its grace period completes, once no
    /// reader in a section can hold it (in other domains `birth` changes
    /// nothing).
    ///
    /// # Safety
    ///
    /// Obligations 1–5 of
    /// [`retire_with_unchecked`](Domain::retire_with_unchecked), and:
    ///
    /// 6. `birth` was read from this domain ([`Domain::birth`]) before the
    ///    object first became reachable: the read happens before every
    ///    store that published it.
    /// 7. Every reader that may hold it got it in a section of this domain
    ///    from a load or an exchange of a [`Link`](crate::Link) or an
    ///    [`Atomic`](crate::Atomic) (and from the `Shared` such a load
    ///    returned, or [`Shared::from_ptr`](crate::Shared::from_ptr) of its
    ///    address in that section): not through a raw `AtomicPtr`, an
    ///    owner's [`Slot`](crate::Slot) or [`Array`](crate::Array), nor a
    ///    pointer kept from an earlier section.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Link, Owned, Shared};
    ///
    /// unsafe fn free_node(ptr: *mut (u64, ownrcu::Birth)) {
    ///     // SAFETY: from `Box::into_raw` (through `Owned`).
    ///     drop(unsafe { Box::from_raw(ptr) });
    /// }
    /// let domain = Domain::builder().robust(true).build();
    /// // SAFETY: its objects are retired into `domain` once unlinked, and
    /// // read only under its guards.
    /// // `Link<_, true>`: a link of a robust domain's structure.
    /// let head: Link<_, true> = unsafe { Link::null() };
    /// let guard = domain.read();
    /// let birth = domain.birth(); // kept in the object, read before publishing
    /// head.store(Owned::new((7_u64, birth)).into_shared(&guard));
    /// let old = head.swap(Shared::null(), &guard);
    /// let (value, birth) = *old.as_ref().unwrap();
    /// assert_eq!(value, 7);
    /// // SAFETY: 1-5: `free_node` frees this box, once, on any thread; it
    /// // is unlinked and `u64` is `Send + 'static`; 6: its birth was read
    /// // before the `store` published it; 7: read only through `head`.
    /// unsafe { domain.retire_born(old.as_ptr().cast_mut(), free_node, birth) };
    /// ```
    #[inline]
    pub unsafe fn retire_born<T>(&self, ptr: *mut T, free: unsafe fn(*mut T), birth: Birth) {
        // SAFETY: obligations 1-5 as in `retire_with_unchecked`; 6 and 7 are
        // what freeing it ahead of its grace period relies on (module
        // `robust`).
        unsafe { self.push(slot_with(ptr, free), free_run::<T>, birth.0) }
    }

    /// Puts a retired object in this thread's buffer, or hands it to the
    /// domain's slow path.
    ///
    /// # Safety
    ///
    /// `drop` may free `slot`'s object on any thread once a grace period of
    /// this domain has passed ([`Bag::push`](crate::rcu::retired::Bag::push)),
    /// or earlier if `birth` is not [`UNKNOWN_BIRTH`] and the contract of
    /// [`retire_born`](Domain::retire_born) holds.
    #[inline(always)]
    unsafe fn push(&self, slot: Slot, drop: DropRun, birth: u64) {
        let rec = self.record();
        if let Some(rec) = rec {
            // SAFETY: we are the record's owner; `slot`, `drop` and `birth`
            // as this function's contract says.
            if unsafe { rec.push_fast(slot, drop, birth) } {
                return;
            }
        }
        self.inner().retire_slow(rec, slot, drop, birth);
    }

    /// Retires a boxed object and starts its grace period now
    /// (`call_rcu_hurry`): [`retire`](Domain::retire), then
    /// [`hurry`](Domain::hurry).
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// domain.retire_hurry(Box::new([0_u8; 4096]));
    /// assert_eq!(domain.stats().grace_periods_hurried, 1);
    /// ```
    pub fn retire_hurry<T: ?Sized + Send + 'static>(&self, object: Box<T>) {
        self.retire(object);
        self.hurry();
    }

    /// Starts a grace period now for everything retired so far, instead of
    /// when enough work waits (`call_rcu_hurry`, for what is already
    /// retired): hands this thread's buffer of single retirements to the
    /// domain, and starts the grace period they and every registered batch
    /// wait for, unless it is running. Never blocks on readers and frees
    /// nothing itself; the objects are freed by the next retirement,
    /// [`collect`](Domain::collect) or [`barrier`](Domain::barrier) after
    /// the readers have left.
    ///
    /// Costs one process-wide barrier (about a microsecond) when it starts a
    /// grace period; rationing exists to save exactly that.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// domain.retire(Box::new(1_u32));
    /// domain.hurry(); // its grace period starts (and, with no reader, ends)
    /// assert_eq!(domain.collect(), 1); // so it can be freed without waiting
    /// ```
    pub fn hurry(&self) {
        let inner = self.inner();
        inner.flush(self.record());
        inner.hurry();
    }

    /// Frees what can be freed now, without waiting for anything: hands this
    /// thread's buffer to the domain, starts a grace period if work waits
    /// for one (as [`hurry`](Domain::hurry)), and runs the destructors of
    /// every object whose grace period has completed. Returns how many it
    /// freed: 0 if another thread is freeing this domain's objects right
    /// now (it does not wait for that thread), or if the calling thread is
    /// unwinding from a panic.
    ///
    /// May be called inside a read section (it never waits); a destructor
    /// that panics propagates from here, and the rest stay queued.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// for i in 0..10_u64 {
    ///     domain.retire(Box::new(i));
    /// }
    /// assert_eq!(domain.collect(), 10); // no reader: freed at once
    /// assert_eq!(domain.stats().freed_by.collect, 10);
    /// ```
    pub fn collect(&self) -> usize {
        self.inner().collect(self.record())
    }

    /// Runs `f` after a grace period: `call_rcu` with a closure.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let domain = ownrcu::Domain::new();
    /// let ran = Arc::new(AtomicBool::new(false));
    /// let flag = ran.clone();
    /// domain.defer(move || flag.store(true, Ordering::Relaxed));
    /// domain.barrier();
    /// assert!(ran.load(Ordering::Relaxed));
    /// ```
    pub fn defer<F: FnOnce() + Send + 'static>(&self, f: F) {
        struct Deferred<F: FnOnce()>(Option<F>);
        impl<F: FnOnce()> Drop for Deferred<F> {
            fn drop(&mut self) {
                if let Some(f) = self.0.take() {
                    f();
                }
            }
        }
        self.retire(Box::new(Deferred(Some(f))));
    }

    /// Blocks until a full grace period has passed: every read section that
    /// was running when it was called has ended (`synchronize_rcu`).
    ///
    /// It does not free anything; see [`barrier`](Domain::barrier).
    ///
    /// # Panics
    ///
    /// If the calling thread is inside a read section of this domain: the
    /// grace period would wait for that section, which waits for this call.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// domain.synchronize();
    /// assert!(domain.stats().grace_periods >= 1);
    /// ```
    pub fn synchronize(&self) {
        self.assert_not_reading("synchronize");
        let inner = self.inner();
        inner.wait_for(inner.snapshot());
    }

    /// Blocks until every object retired, every closure deferred and every
    /// batch drained *before* the call has been freed (`rcu_barrier`).
    ///
    /// It takes the buffered retirements of every thread (idle ones too),
    /// drives a grace period, and runs the destructors itself; it never waits
    /// for another thread to happen to call in.
    ///
    /// Objects retired through an owner ([`Unlinked`](crate::Unlinked),
    /// [`OwnerBatch`](crate::OwnerBatch)) stay in that owner's queue; wait
    /// for them with [`User::barrier`](crate::User::barrier).
    ///
    /// # Panics
    ///
    /// 1. If the calling thread is inside a read section of this domain (it
    ///    would wait for itself).
    /// 2. If it is running a destructor, of any domain or owner (the
    ///    kernel's rule for `rcu_barrier()` in a callback): a barrier waits
    ///    for the frees in progress on other threads, and one of those may
    ///    be waiting for this destructor's run (another destructor calling
    ///    this run's domain's barrier: a cycle). Always, whatever the other
    ///    threads do, so the mistake shows in the first test.
    ///    [`synchronize`](Domain::synchronize), [`collect`](Domain::collect)
    ///    and retirements are allowed in destructors.
    /// 3. If destructors panic: every other object is still freed, then the
    ///    first panic is resumed here.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// for i in 0..10_u32 {
    ///     domain.retire(Box::new(i));
    /// }
    /// domain.barrier();
    /// assert_eq!(domain.stats().pending, 0);
    /// ```
    pub fn barrier(&self) {
        self.assert_not_reading("barrier");
        assert!(
            !crate::rcu::freeing::is_freeing_any(),
            "{BARRIER_IN_DESTRUCTOR}"
        );
        self.inner().barrier();
    }

    /// Takes a grace-period cookie: a later [`poll`](Domain::poll) returns
    /// true once every read section running now has ended
    /// (`get_state_synchronize_rcu`). Taking it never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let cookie = domain.grace_period();
    /// while !domain.poll(&cookie) {
    ///     std::thread::yield_now(); // or do other work
    /// }
    /// ```
    pub fn grace_period(&self) -> GracePeriod {
        let inner = self.inner();
        GracePeriod {
            domain: inner.id,
            gp: inner.snapshot(),
        }
    }

    /// Whether the cookie's grace period has completed; drives it forward
    /// without blocking (`poll_state_synchronize_rcu`).
    ///
    /// # Panics
    ///
    /// If the cookie was taken from another domain.
    #[must_use]
    pub fn poll(&self, cookie: &GracePeriod) -> bool {
        self.check_cookie(cookie);
        self.inner().poll(cookie.gp)
    }

    /// Blocks until the cookie's grace period has completed, returning at
    /// once if it already has (`cond_synchronize_rcu`).
    ///
    /// # Panics
    ///
    /// If the cookie was taken from another domain, or the thread is inside
    /// a read section of this domain while the grace period is incomplete.
    ///
    /// # Examples
    ///
    /// ```
    /// let domain = ownrcu::Domain::new();
    /// let cookie = domain.grace_period();
    /// domain.wait(&cookie);
    /// assert!(domain.poll(&cookie));
    /// ```
    pub fn wait(&self, cookie: &GracePeriod) {
        self.check_cookie(cookie);
        let inner = self.inner();
        if !inner.is_complete(cookie.gp) {
            self.assert_not_reading("wait");
            inner.wait_for(cookie.gp);
        }
    }

    /// A snapshot of the domain's counters: its own retirements, and in
    /// [`Stats::owners`] the sum of what its owners retired.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Slot, User};
    ///
    /// let domain = Domain::new();
    /// domain.retire(Box::new(1_u32));
    /// let mm = User::new(&domain, Slot::new(Box::new(2_u32)));
    /// mm.replace(None, &mm).unwrap().retire();
    /// drop(mm); // exit: frees directly what still waits for a grace period
    /// domain.barrier();
    /// let stats = domain.stats();
    /// assert_eq!((stats.retired, stats.freed), (1, 1));
    /// assert_eq!(stats.owners.retired, 1);
    /// assert_eq!((stats.retired_total(), stats.pending_total()), (2, 0));
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.inner().stats()
    }

    fn check_cookie(&self, cookie: &GracePeriod) {
        assert!(
            cookie.domain == self.inner().id,
            "ownrcu: a GracePeriod cookie from another domain was used with this one"
        );
    }

    fn assert_not_reading(&self, what: &str) {
        assert!(
            !local::in_section(self.inner().id),
            "ownrcu: Domain::{what}() called inside a read-side critical section of the same \
             domain; it would wait for that section, which waits for it: drop the guard first"
        );
    }
}

/// One visit of the reclaimer to a domain, for the loom models (loom has
/// no reclaimer thread): it holds the domain's state, not a handle, as the
/// reclaimer does, so the last handle may drop while it visits.
#[cfg(loom)]
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct ReclaimerVisit(Arc<Inner>);

#[cfg(loom)]
impl Domain {
    /// The reclaimer's hold on this domain.
    #[doc(hidden)]
    pub fn reclaimer_visit(&self) -> ReclaimerVisit {
        match &self.repr {
            Repr::Owned(inner, _) => {
                let ptr = inner.as_ptr().cast_const();
                // SAFETY: `ptr` is from `Arc::into_raw` and its strong
                // reference is alive (this handle's); the count taken here
                // is the visit's own.
                ReclaimerVisit(unsafe {
                    Arc::increment_strong_count(ptr);
                    Arc::from_raw(ptr)
                })
            }
        }
    }
}

#[cfg(loom)]
impl ReclaimerVisit {
    /// One visit, exactly as the reclaimer thread makes it.
    pub fn visit(&self) {
        let mut memo = crate::rcu::reclaimer::Visit::default();
        crate::rcu::reclaimer::visit_once(&*self.0, &mut memo);
    }
}

/// The panic of a barrier called from a destructor (`Domain::barrier`,
/// `User::barrier`).
pub(crate) const BARRIER_IN_DESTRUCTOR: &str =
    "ownrcu: barrier() called from a destructor (of a domain or an owner); a barrier waits for \
     the frees running on other threads, which may wait for this one: call it after the \
     destructor returns (synchronize() is allowed there)";

impl Default for Domain {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Domain {
    /// Another handle to the same domain.
    #[inline]
    fn clone(&self) -> Self {
        match &self.repr {
            #[cfg(not(loom))]
            Repr::Global => Self { repr: Repr::Global },
            Repr::Owned(inner, id) => {
                let count = self.inner().handles.fetch_add(1, Relaxed);
                crate::rcu::unwind::check_count(count);
                Self {
                    repr: Repr::Owned(*inner, *id),
                }
            }
        }
    }
}

impl Drop for Domain {
    #[inline]
    fn drop(&mut self) {
        #[allow(irrefutable_let_patterns)] // under loom there is no global domain
        if let Repr::Owned(inner, _) = &self.repr {
            // AcqRel: the last handle sees everything every other handle did
            // (their retirements) before tearing down.
            if self.inner().handles.fetch_sub(1, AcqRel) == 1 {
                // SAFETY: from `Arc::into_raw` (`Repr::Owned`); this was the
                // last handle, so the handles' strong reference is ours to
                // give back, after the teardown (also if it panics).
                let inner = unsafe { Arc::from_raw(inner.as_ptr().cast_const()) };
                inner.teardown();
            }
        }
    }
}

impl PartialEq for Domain {
    /// Whether both handles are of the same domain: what a structure that
    /// holds its own domain checks of a caller's guard
    /// (`guard.domain() == &self.domain`), like crossbeam-epoch's
    /// `guard.collector() == Some(&collector)`. One compare of the ids,
    /// which no two domains of a process share.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::Domain;
    ///
    /// let (a, b) = (Domain::new(), Domain::new());
    /// assert!(a == a.clone() && a != b);
    /// assert!(a.read().domain() == &a);
    /// assert!(Domain::global() == Domain::global());
    /// assert!(Domain::global() != &a);
    /// ```
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Domain {}

impl core::fmt::Debug for Domain {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Domain")
            .field("id", &self.inner().id)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A grace-period cookie from [`Domain::grace_period`].
///
/// # Examples
///
/// ```
/// let domain = ownrcu::Domain::new();
/// let cookie = domain.grace_period();
/// // ... unlink something, do other work ...
/// domain.wait(&cookie); // blocks only if the grace period is not over
/// ```
///
/// A cookie is two integers (its domain's id and a grace-period number):
/// it is `Copy`, and two cookies compare equal when they name the same
/// grace period of the same domain, so they can key a map of work waiting
/// for it.
///
/// ```
/// let domain = ownrcu::Domain::new();
/// let first = domain.grace_period();
/// let copy = first; // `Copy`
/// assert_eq!(first, copy);
/// domain.wait(&first);
/// domain.wait(&copy); // done already: returns at once
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GracePeriod {
    domain: u64,
    gp: u64,
}

/// The builder's last step lives here, next to the handle it makes, so that
/// `config` (the builder) does not depend on this module.
impl DomainBuilder {
    /// The domain.
    #[must_use]
    pub fn build(self) -> Domain {
        Domain::with_config(self.config, self.stall_hook)
    }
}
