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
use core::mem::{size_of, MaybeUninit};
use core::ptr::NonNull;

/// Room for one `*mut T`, thin or fat (a slice or trait-object pointer).
///
/// A pointer is copied in and read back as the *same* type, so its layout
/// never needs to be known.
pub(crate) type Slot = MaybeUninit<[usize; 2]>;

/// Frees the objects in `slots[stop..*len]`, newest first, all of one type.
///
/// `*len` is lowered before each destructor runs.
pub(crate) type DropRun = unsafe fn(slots: *const Slot, len: &mut usize, stop: usize);

/// Stores `ptr` in `slot`; read it back only with [`drop_run::<T>`].
#[inline(always)]
pub(crate) fn slot_of<T: ?Sized>(ptr: *mut T) -> Slot {
    const { assert!(size_of::<*mut T>() <= size_of::<Slot>()) };
    let mut slot = Slot::uninit();
    // SAFETY: the slot is large enough (asserted above) and aligned for any
    // pointer; we write a whole `*mut T` into it.
    unsafe { slot.as_mut_ptr().cast::<*mut T>().write(ptr) };
    slot
}

/// The monomorphic loop for one run of `Box<T>` pointers.
///
/// # Safety
///
/// Every slot in `slots[stop..*len]` was filled by [`slot_of::<T>`] with a
/// pointer from `Box::<T>::into_raw` that is freed by nobody else and that no
/// reader can still reach.
pub(crate) unsafe fn drop_run<T: ?Sized>(slots: *const Slot, len: &mut usize, stop: usize) {
    while *len > stop {
        *len -= 1;
        // SAFETY: by this function's contract, the slot holds a `*mut T`
        // written by `slot_of::<T>`, from a `Box<T>` nobody else frees and no
        // reader can reach; lowering `len` first means a panic in the
        // destructor cannot lead to a second free.
        drop(unsafe { Box::from_raw(slots.add(*len).cast::<*mut T>().read()) });
    }
}

/// A unit of work on a domain's queues: objects freed together.
pub(crate) trait Reclaim: Send {
    /// Objects still to free.
    fn len(&self) -> usize;

    /// Frees up to `max` objects, newest first. `len()` drops by one
    /// before each destructor runs, so after a panic the caller can still
    /// tell how many were freed, and the rest stay to be freed once.
    ///
    /// # Safety
    ///
    /// The grace period this unit was registered for has completed, or no
    /// reader of its domain can exist.
    unsafe fn free(&mut self, max: usize);
}

/// Objects of one (possibly unsized) type, as collected by a `Batch`.
pub(crate) struct Typed<T: ?Sized> {
    items: Vec<NonNull<T>>,
    _owns: PhantomData<Box<T>>,
}

impl<T: ?Sized> Typed<T> {
    /// # Safety
    ///
    /// Every pointer came from `Box::<T>::into_raw`, is unreachable for new
    /// readers, and is owned by this unit alone from now on.
    pub(crate) unsafe fn new(items: Vec<NonNull<T>>) -> Self {
        Self {
            items,
            _owns: PhantomData,
        }
    }
}

// SAFETY: the unit owns boxed `T`s and drops them on whichever thread frees
// it, which is exactly what `Box<T>: Send` (i.e. `T: Send`) permits.
unsafe impl<T: ?Sized + Send> Send for Typed<T> {}

impl<T: ?Sized + Send> Reclaim for Typed<T> {
    fn len(&self) -> usize {
        self.items.len()
    }

    unsafe fn free(&mut self, max: usize) {
        for _ in 0..max {
            let Some(ptr) = self.items.pop() else { return };
            // SAFETY: `new`'s contract makes this the only owner of a
            // `Box<T>` allocation, and `free`'s contract says no reader can
            // reach it any more; it was popped, so it is freed once.
            drop(unsafe { Box::from_raw(ptr.as_ptr()) });
        }
    }
}

impl<T: ?Sized> Drop for Typed<T> {
    fn drop(&mut self) {
        // A unit is only dropped once emptied; anything else is a bug in the
        // domain, and leaking is the safe answer to it.
        debug_assert!(
            self.items.is_empty(),
            "ownrcu: a retired batch was dropped unfreed"
        );
    }
}

/// How many objects a thread buffers before handing them to its domain.
#[cfg(not(any(loom, miri)))]
pub(crate) const BAG_CAP: usize = 64;
#[cfg(miri)]
pub(crate) const BAG_CAP: usize = 4;
#[cfg(loom)]
pub(crate) const BAG_CAP: usize = 2;

/// How many runs of distinct types one bag holds.
const RUNS: usize = if BAG_CAP < 8 { BAG_CAP } else { 8 };

/// A thread's buffer of single retirements: thin pointers grouped in runs of
/// one type each, so freeing is one monomorphic loop per run.
pub(crate) struct Bag {
    pub(crate) len: usize,
    runs: usize,
    slots: [Slot; BAG_CAP],
    run_drop: [Option<DropRun>; RUNS],
    run_start: [usize; RUNS],
}

// SAFETY: a bag only ever holds objects retired through `Domain::retire`-like
// entry points, which require `T: Send`; the raw pointers are owned.
unsafe impl Send for Bag {}

impl Bag {
    pub(crate) fn new() -> Box<Self> {
        Box::new(Self {
            len: 0,
            runs: 0,
            slots: [Slot::uninit(); BAG_CAP],
            run_drop: [None; RUNS],
            run_start: [0; RUNS],
        })
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == BAG_CAP
    }

    /// Adds an object; returns false (and adds nothing) when full.
    ///
    /// # Safety
    ///
    /// `drop` frees the pointer in `slot` once no reader can reach it, and the
    /// object is owned by the bag from now on.
    #[inline]
    pub(crate) unsafe fn push(&mut self, slot: Slot, drop: DropRun) -> bool {
        if self.len == BAG_CAP {
            return false;
        }
        // Identical addresses mean identical code, so equal pointers are
        // always interchangeable; unequal ones only cost a new run.
        let same = self.runs > 0
            && self.run_drop[self.runs - 1].map(|f| f as usize) == Some(drop as usize);
        if !same {
            if self.runs == RUNS {
                return false;
            }
            self.run_drop[self.runs] = Some(drop);
            self.run_start[self.runs] = self.len;
            self.runs += 1;
        }
        self.slots[self.len] = slot;
        self.len += 1;
        true
    }
}

impl Reclaim for Bag {
    fn len(&self) -> usize {
        self.len
    }

    unsafe fn free(&mut self, max: usize) {
        let stop_all = self.len.saturating_sub(max);
        while self.runs > 0 && self.len > stop_all {
            let run = self.runs - 1;
            let start = self.run_start[run];
            let drop = self.run_drop[run].expect("ownrcu: bag run without destructor");
            // SAFETY: the run holds pointers pushed with this very `drop`
            // (push's contract) and the grace period has passed (free's
            // contract); `drop_run` lowers `self.len` before each destructor.
            unsafe { drop(self.slots.as_ptr(), &mut self.len, start.max(stop_all)) };
            if self.len == start {
                self.runs -= 1;
            }
        }
    }
}

impl Drop for Bag {
    fn drop(&mut self) {
        debug_assert!(self.len == 0, "ownrcu: a retired bag was dropped unfreed");
    }
}
