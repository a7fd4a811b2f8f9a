//! Retired objects, type-erased for the domain's queues.
//!
//! # Invariant
//!
//! A [`Reclaim`] unit holds only objects that are unreachable for new readers
//! and owned by nobody else: whoever frees from it may free them once the
//! grace period its registration waited for has completed (or once no reader
//! can exist at all). Freeing pops an object *before* running its destructor,
//! so a panicking destructor leaves the unit consistent: the popped object is
//! gone, the rest are still there to be freed exactly once.

use core::marker::PhantomData;
use core::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use core::ptr::NonNull;

/// Room for one `*mut T`, thin or fat (a slice or trait-object pointer).
///
/// A pointer is copied in and read back as the *same* type, so its layout
/// never needs to be known. Two separate words, not one 16-byte value: a
/// thin pointer is then written with one 8-byte store and never read back
/// through a wider load (which would defeat store-to-load forwarding).
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Slot {
    addr: MaybeUninit<*mut ()>,
    meta: MaybeUninit<usize>,
}

impl Slot {
    const EMPTY: Self = Self {
        addr: MaybeUninit::uninit(),
        meta: MaybeUninit::uninit(),
    };
}

/// Frees the objects in `slots[*next..end]`, oldest first, all of one type.
///
/// `*next` moves past each object before its destructor runs.
pub(crate) type DropRun = unsafe fn(slots: *const Slot, next: &mut usize, end: usize);

/// Stores `ptr` in a slot; read it back only with [`drop_run::<T>`].
#[inline(always)]
pub(crate) fn slot_of<T: ?Sized>(ptr: *mut T) -> Slot {
    const { assert!(size_of::<*mut T>() <= size_of::<Slot>()) };
    if size_of::<*mut T>() == size_of::<*mut ()>() {
        // A thin pointer: `drop_run::<T>` reads exactly these 8 bytes back.
        return Slot {
            addr: MaybeUninit::new(ptr.cast::<()>()),
            meta: MaybeUninit::uninit(),
        };
    }
    let mut slot = Slot::EMPTY;
    // SAFETY: the slot is large enough (asserted above) and pointer-aligned;
    // we write a whole `*mut T` into it.
    unsafe { core::ptr::addr_of_mut!(slot).cast::<*mut T>().write(ptr) };
    slot
}

/// The objects of `boxes` as pointers, in the same order, in the same
/// allocation; the caller takes over their ownership.
///
/// For sized `T` the vector is taken over as it is, with no pass over its
/// elements (a collect, even in place, reads and writes each one: it was
/// 2 % of `retire_10k/ownrcu_batch`).
pub(crate) fn into_pointers<T: ?Sized>(boxes: Vec<Box<T>>) -> Vec<NonNull<T>> {
    let same_layout = size_of::<Box<T>>() == size_of::<NonNull<T>>()
        && align_of::<Box<T>>() == align_of::<NonNull<T>>();
    if size_of::<*mut T>() == size_of::<*mut ()>() && same_layout {
        // A thin pointer: `T` is sized, so a `Box<T>` is one non-null
        // pointer (the layout `Box` guarantees for sized `T`), as is a
        // `NonNull<T>`. `boxes` will never free its allocation.
        let mut boxes = ManuallyDrop::new(boxes);
        let (ptr, len, cap) = (boxes.as_mut_ptr(), boxes.len(), boxes.capacity());
        // SAFETY: a `Vec`'s allocation of `len` initialized elements, capacity
        // `cap`, of a type with `NonNull<T>`'s size and alignment (checked); each
        // is a `Box<T>`'s non-null pointer, whose object the caller now owns.
        unsafe { Vec::from_raw_parts(ptr.cast::<NonNull<T>>(), len, cap) }
    } else {
        // Unsized `T` (`Box` documents no layout for it): an in-place
        // collect, same size and alignment, so no allocation.
        boxes
            .into_iter()
            .map(|object| NonNull::from(Box::leak(object)))
            .collect()
    }
}

/// A position in a unit that is written back when dropped, also during
/// unwinding: the loop keeps it in a register, yet a panicking destructor
/// still leaves the unit's count right.
pub(crate) struct Cursor<'a> {
    pub(crate) at: usize,
    out: &'a mut usize,
}

impl<'a> Cursor<'a> {
    /// A cursor starting at `*out`, written back to it when dropped.
    #[inline(always)]
    pub(crate) fn new(out: &'a mut usize) -> Self {
        Self { at: *out, out }
    }
}

impl Drop for Cursor<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        *self.out = self.at;
    }
}

/// A pointer and the deleter that frees it, stored together in one
/// [`Slot`] (two words): a retirement with a custom deleter allocates
/// nothing.
#[repr(C)]
struct WithFree<T> {
    ptr: *mut T,
    free: unsafe fn(*mut T),
}

/// Stores `ptr` and its deleter in a slot; read it back only with
/// [`free_run::<T>`].
#[inline(always)]
pub(crate) fn slot_with<T>(ptr: *mut T, free: unsafe fn(*mut T)) -> Slot {
    const { assert!(size_of::<WithFree<T>>() <= size_of::<Slot>()) };
    const { assert!(align_of::<WithFree<T>>() <= align_of::<Slot>()) };
    let mut slot = Slot::EMPTY;
    // SAFETY: the slot is large and aligned enough (asserted above); we
    // write a whole `WithFree<T>` into it.
    unsafe {
        core::ptr::addr_of_mut!(slot)
            .cast::<WithFree<T>>()
            .write(WithFree { ptr, free })
    };
    slot
}

/// The loop for one run of pointers with their own deleters.
///
/// # Safety
///
/// Every slot in `slots[*next..end]` was filled by [`slot_with::<T>`] with
/// a pointer that its deleter may free now (the retirement's contract),
/// freed by nobody else, and that no reader can still reach.
pub(crate) unsafe fn free_run<T>(slots: *const Slot, next: &mut usize, end: usize) {
    let mut cursor = Cursor::new(next);
    while cursor.at < end {
        let i = cursor.at;
        cursor.at += 1;
        // The cursor moved first: a panicking deleter cannot cause a second
        // free. SAFETY: by this function's contract, the slot holds a
        // `WithFree<T>` from `slot_with::<T>`, whose deleter may free it.
        unsafe {
            let WithFree { ptr, free } = slots.add(i).cast::<WithFree<T>>().read();
            free(ptr);
        }
    }
}

/// The monomorphic loop for one run of `Box<T>` pointers.
///
/// # Safety
///
/// Every slot in `slots[*next..end]` was filled by [`slot_of::<T>`] with a
/// pointer from `Box::<T>::into_raw` that is freed by nobody else and that no
/// reader can still reach.
pub(crate) unsafe fn drop_run<T: ?Sized>(slots: *const Slot, next: &mut usize, end: usize) {
    let mut cursor = Cursor::new(next);
    while cursor.at < end {
        let i = cursor.at;
        cursor.at += 1;
        // The cursor moved first: a panicking destructor cannot cause a
        // second free. SAFETY: by this function's contract, the slot holds a
        // `*mut T` from `slot_of::<T>`, a `Box<T>` nobody else frees or reads.
        drop(unsafe { Box::from_raw(slots.add(i).cast::<*mut T>().read()) });
    }
}

/// A unit of work on a domain's queues: objects freed together.
pub(crate) trait Reclaim: Send {
    /// Objects still to free.
    fn len(&self) -> usize;

    /// Frees up to `max` objects, oldest first. `len()` drops by one
    /// before each destructor runs, so after a panic the caller can still
    /// tell how many were freed, and the rest stay to be freed once.
    ///
    /// # Safety
    ///
    /// The grace period this unit was registered for has completed, or no
    /// reader of its domain can exist.
    unsafe fn free(&mut self, max: usize);

    /// An emptied thread bag, for reuse (other units are simply dropped).
    fn into_bag(self: Box<Self>) -> Option<Box<Bag>> {
        None
    }

    /// The oldest birth of its objects (module `robust`), or
    /// [`UNKNOWN_BIRTH`]: then only its grace period frees it.
    fn birth(&self) -> u64 {
        UNKNOWN_BIRTH
    }
}

/// The birth of an object retired without one (module `robust`): older
/// than every reservation, so only a grace period frees it.
pub(crate) const UNKNOWN_BIRTH: u64 = 0;

/// An object and the deleter that frees it (`Batch::push_with`).
pub(crate) type Deleted<T> = (NonNull<T>, unsafe fn(*mut T));

/// Objects of one (possibly unsized) type, as collected by a `Batch`:
/// boxes, then objects with their own deleters.
pub(crate) struct Typed<T: ?Sized> {
    items: Vec<NonNull<T>>,
    /// Freed after `items`, each by its deleter.
    deleted: Vec<Deleted<T>>,
    /// The first `freed` objects (`items`, then `deleted`) are freed
    /// already: freeing goes oldest first, which is the order the
    /// allocator handed the memory out.
    freed: usize,
    /// The oldest birth of its objects ([`UNKNOWN_BIRTH`] unless
    /// [`born`](Typed::born) says otherwise).
    birth: u64,
    _owns: PhantomData<Box<T>>,
}

impl<T: ?Sized> Typed<T> {
    /// # Safety
    ///
    /// Every pointer came from `Box::<T>::into_raw`, is unreachable for new
    /// readers, and is owned by this unit alone from now on.
    pub(crate) unsafe fn new(items: Vec<NonNull<T>>) -> Self {
        // SAFETY: forwarded; no object with a deleter.
        unsafe { Self::with_deleted(items, Vec::new()) }
    }

    /// # Safety
    ///
    /// As for [`Typed::new`] for `items`; each pointer of `deleted` is one
    /// its deleter may free once no reader can reach it (the contract of
    /// `Batch::push_with`), unreachable for new readers, and owned by this
    /// unit alone from now on.
    pub(crate) unsafe fn with_deleted(items: Vec<NonNull<T>>, deleted: Vec<Deleted<T>>) -> Self {
        Self {
            items,
            deleted,
            freed: 0,
            birth: UNKNOWN_BIRTH,
            _owns: PhantomData,
        }
    }

    /// The unit with `birth` as its objects' oldest birth.
    ///
    /// # Safety
    ///
    /// Unless `birth` is [`UNKNOWN_BIRTH`], every object was retired under
    /// the contract of `Domain::retire_born` with a birth no older.
    pub(crate) unsafe fn born(mut self, birth: u64) -> Self {
        self.birth = birth;
        self
    }
}

// SAFETY: the unit owns boxed `T`s and drops them on whichever thread frees
// it, which is exactly what `Box<T>: Send` (i.e. `T: Send`) permits.
unsafe impl<T: ?Sized + Send> Send for Typed<T> {}

impl<T: ?Sized + Send> Reclaim for Typed<T> {
    fn len(&self) -> usize {
        self.items.len() + self.deleted.len() - self.freed
    }

    fn birth(&self) -> u64 {
        self.birth
    }

    unsafe fn free(&mut self, max: usize) {
        let end = self.freed + max.min(self.len());
        let boxes = self.items.len();
        let items = &self.items[self.freed.min(boxes)..end.min(boxes)];
        let deleted = &self.deleted[self.freed.max(boxes) - boxes..end.max(boxes) - boxes];
        let mut cursor = Cursor::new(&mut self.freed);
        for &ptr in items {
            cursor.at += 1;
            // The cursor moved past it first: freed once even on a panic.
            // SAFETY: `new`'s contract: the only owner of a `Box<T>`; `free`'s
            // contract: no reader can reach it any more.
            drop(unsafe { Box::from_raw(ptr.as_ptr()) });
        }
        for &(ptr, free) in deleted {
            cursor.at += 1;
            // As above. SAFETY: `with_deleted`'s contract: its deleter may
            // free it now; `free`'s contract: no reader can reach it.
            unsafe { free(ptr.as_ptr()) };
        }
    }
}

impl<T: ?Sized> Drop for Typed<T> {
    fn drop(&mut self) {
        // A unit is only dropped once emptied; anything else is a bug in the
        // domain, and leaking is the safe answer to it.
        debug_assert!(
            self.freed == self.items.len() + self.deleted.len(),
            "ownrcu: a retired batch was dropped unfreed"
        );
    }
}

/// One object, as retired through an owner: a single allocation for the
/// unit, none for a vector.
pub(crate) struct Single<T: ?Sized>(Option<NonNull<T>>);

impl<T: ?Sized> Single<T> {
    /// # Safety
    ///
    /// As for [`Typed::new`], for one pointer.
    pub(crate) unsafe fn new(ptr: NonNull<T>) -> Self {
        Self(Some(ptr))
    }
}

// SAFETY: as for `Typed`: it owns one boxed `T`.
unsafe impl<T: ?Sized + Send> Send for Single<T> {}

impl<T: ?Sized + Send> Reclaim for Single<T> {
    fn len(&self) -> usize {
        usize::from(self.0.is_some())
    }

    unsafe fn free(&mut self, max: usize) {
        if max > 0 {
            if let Some(ptr) = self.0.take() {
                // SAFETY: `new`'s contract, and `free`'s: the grace period
                // has passed; taken out first, so freed once.
                drop(unsafe { Box::from_raw(ptr.as_ptr()) });
            }
        }
    }
}

/// The most objects a thread buffers before handing them to its domain
/// (each record adapts its own limit below this: module `record`).
#[cfg(not(any(loom, miri)))]
pub(crate) const BAG_CAP: usize = 128;
#[cfg(miri)]
pub(crate) const BAG_CAP: usize = 4;
#[cfg(loom)]
pub(crate) const BAG_CAP: usize = 2;

/// How many runs of distinct types one bag holds.
const RUNS: usize = if BAG_CAP < 8 { BAG_CAP } else { 8 };

// A run's start, a slot index below `BAG_CAP`, fits `Bag::run_start`'s byte.
const _: () = assert!(BAG_CAP <= 1 << u8::BITS);

/// A thread's buffer of single retirements: thin pointers grouped in runs of
/// one type each, so freeing is one monomorphic loop per run.
///
/// Bags come in sizes (powers of two up to `BAG_CAP`): a thread that
/// retires slowly fills small ones (module `record`), so a bag in flight
/// never costs much more memory than the objects it holds.
pub(crate) struct Bag {
    /// Slots filled.
    len: usize,
    /// The address of the last run's destructor (`run_drop[runs - 1]`), or 0
    /// before the first run: the push fast path compares against this one
    /// field instead of indexing `run_drop`.
    last_drop: usize,
    /// Slots freed (oldest first); `head <= len`.
    head: usize,
    /// The run `head` is in.
    head_run: usize,
    runs: usize,
    /// The slots, in their own allocation, so the bag's size is its
    /// capacity's (the push fast path reads the pointer and length from
    /// the bag's first cache line).
    slots: Box<[Slot]>,
    run_drop: [Option<DropRun>; RUNS],
    /// Where each run starts: a slot index, below `BAG_CAP`, so a byte
    /// (the bag's header is what a spare or a thread's idle bag costs
    /// beyond its slots).
    run_start: [u8; RUNS],
    /// The oldest birth of its objects (`u64::MAX` while empty).
    birth: u64,
}

// SAFETY: it owns its objects, retired with `T: Send` or with the promise of
// `Domain::retire_with_unchecked` that the deleter may run on any thread.
unsafe impl Send for Bag {}

impl Bag {
    /// An empty bag with room for [`class(cap)`](Bag::class) objects.
    pub(crate) fn with_capacity(cap: usize) -> Box<Self> {
        Box::new(Self {
            len: 0,
            last_drop: 0,
            head: 0,
            head_run: 0,
            runs: 0,
            slots: vec![Slot::EMPTY; Self::class(cap)].into_boxed_slice(),
            run_drop: [None; RUNS],
            run_start: [0; RUNS],
            birth: u64::MAX,
        })
    }

    /// The capacity of a bag for `cap` objects: `cap` rounded up to a power
    /// of two, at most `BAG_CAP`.
    pub(crate) fn class(cap: usize) -> usize {
        cap.clamp(1, BAG_CAP).next_power_of_two().min(BAG_CAP)
    }

    /// Slots in this bag.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Makes an emptied bag ready for reuse.
    pub(crate) fn reset(&mut self) {
        debug_assert!(self.head == self.len, "ownrcu: reusing a bag not yet freed");
        self.len = 0;
        self.last_drop = 0;
        self.head = 0;
        self.head_run = 0;
        self.runs = 0;
        self.birth = u64::MAX;
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.slots.len()
    }

    /// Adds an object born at `birth` ([`UNKNOWN_BIRTH`] if not known);
    /// returns the new number of objects, or 0 (and adds nothing) when
    /// full.
    ///
    /// # Safety
    ///
    /// `drop` frees the pointer in `slot` once no reader can reach it, and the
    /// object is owned by the bag from now on.
    #[inline]
    pub(crate) unsafe fn push(&mut self, slot: Slot, drop: DropRun, birth: u64) -> usize {
        let len = self.len;
        // Identical addresses mean identical code, so equal pointers are
        // always interchangeable; unequal ones only cost a new run. (A
        // function's address is never 0, the value before the first run.)
        if len >= self.slots.len() {
            return 0;
        }
        if drop as usize != self.last_drop {
            // SAFETY: forwarded from this function's contract.
            return unsafe { self.push_new_run(slot, drop, birth) };
        }
        self.birth = self.birth.min(birth);
        // `len < slots.len()` was just checked: no bounds check, and `len`
        // is not read back from memory after the slot store.
        self.slots[len] = slot;
        self.len = len + 1;
        len + 1
    }

    /// [`Bag::push`] when `drop` starts a new run. Cold: taken once per bag
    /// and per change of type, so the caller's common case falls through.
    ///
    /// # Safety
    ///
    /// As for [`Bag::push`].
    #[cold]
    #[inline(never)]
    unsafe fn push_new_run(&mut self, slot: Slot, drop: DropRun, birth: u64) -> usize {
        let len = self.len;
        if len >= self.slots.len() || self.runs == RUNS {
            return 0;
        }
        self.birth = self.birth.min(birth);
        self.run_drop[self.runs] = Some(drop);
        // Fits: `len < slots.len() <= BAG_CAP <= 256` (checked above and at
        // compile time).
        self.run_start[self.runs] = len as u8;
        self.runs += 1;
        self.last_drop = drop as usize;
        self.slots[len] = slot;
        self.len = len + 1;
        len + 1
    }
}

impl Reclaim for Bag {
    fn len(&self) -> usize {
        self.len - self.head
    }

    unsafe fn free(&mut self, max: usize) {
        let stop = self.head + max.min(self.len());
        while self.head < stop {
            let run = self.head_run;
            let run_end = if run + 1 < self.runs {
                usize::from(self.run_start[run + 1])
            } else {
                self.len
            };
            let drop = self.run_drop[run].expect("ownrcu: bag run without destructor");
            // SAFETY: the run holds pointers pushed with this very `drop`
            // (push's contract) and the grace period has passed (free's
            // contract); `drop_run` moves `head` past each object first.
            unsafe { drop(self.slots.as_ptr(), &mut self.head, run_end.min(stop)) };
            if self.head == run_end {
                self.head_run += 1;
            }
        }
    }

    fn into_bag(self: Box<Self>) -> Option<Box<Bag>> {
        Some(self)
    }

    fn birth(&self) -> u64 {
        self.birth
    }
}

impl Drop for Bag {
    fn drop(&mut self) {
        debug_assert!(
            self.head == self.len,
            "ownrcu: a retired bag was dropped unfreed"
        );
    }
}
