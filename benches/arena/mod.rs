//! The same allocation layout for every function of a teardown-like group.
//!
//! A 100 000-object teardown with glibc's allocator measures glibc's free
//! lists as much as the code under test: how long a `free` takes depends on
//! where the chunk sits and what its neighbours are (coalescing with a free
//! neighbour, or with the top of the heap), and that depends on which
//! function ran the previous iteration and in which order it freed (Criterion
//! runs one function's samples back to back). Issue 12 measured
//! `teardown_100k/exclusive` at 1.40× `drop_floor` that way, and 1.00× when
//! the strategies were interleaved.
//!
//! [`Arena`] is the bench binary's global allocator. It forwards everything
//! to the system allocator except the objects a bench's set-up makes inside
//! [`setup`]: allocations on that thread whose size lies in the given range
//! come from one region reserved once, carved in allocation order from its
//! start on every call. So every iteration of every function lays its objects
//! out at the same addresses, contiguously, in the same order, whatever ran
//! before. Freeing one of them costs one atomic decrement (the region is
//! reused only once all of them are freed, which `setup` asserts), so the
//! timed region measures the code under test (its destructor loop, its
//! bookkeeping, its grace periods, the allocations it makes itself, which
//! still go to glibc), not the state of glibc's bins. The benches print,
//! besides, what glibc makes of the same work under a few layouts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ops::RangeInclusive;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Address space reserved for the objects (pages are touched only as used).
const CAPACITY: usize = 256 << 20;

/// Start of the region (0 until the first `setup`).
static BASE: AtomicUsize = AtomicUsize::new(0);
/// Next free offset in the region.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Objects of the region not freed yet.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Objects the current (or last) `setup` placed in the region.
static PLACED: AtomicUsize = AtomicUsize::new(0);
/// The sizes the current `setup` takes.
static MIN: AtomicUsize = AtomicUsize::new(0);
static MAX: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread is inside `setup`.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// The bench binary's global allocator (see the module docs).
pub struct Arena;

fn in_region(ptr: *mut u8) -> bool {
    let base = BASE.load(Relaxed);
    let addr = ptr as usize;
    base != 0 && addr >= base && addr < base + CAPACITY
}

// SAFETY: region blocks are disjoint (a bump pointer, reset only when none is
// live), aligned as asked and inside the mapping; every other call is
// forwarded to `System` unchanged.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        let take = ACTIVE.with(Cell::get)
            && size >= MIN.load(Relaxed)
            && size <= MAX.load(Relaxed)
            && BASE.load(Relaxed) != 0;
        if take {
            // Only the thread inside `setup` bumps (one at a time).
            let at = NEXT.load(Relaxed).next_multiple_of(layout.align());
            if at + size <= CAPACITY {
                NEXT.store(at + size, Relaxed);
                LIVE.fetch_add(1, Relaxed);
                PLACED.fetch_add(1, Relaxed);
                return (BASE.load(Relaxed) + at) as *mut u8;
            }
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ACTIVE.with(Cell::get) {
            // SAFETY: forwarded; the block is `layout.size()` bytes.
            let ptr = unsafe { self.alloc(layout) };
            if !ptr.is_null() {
                // SAFETY: as above.
                unsafe { ptr.write_bytes(0, layout.size()) };
            }
            return ptr;
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_region(ptr) {
            // Release: every use of the block happens before `setup` reuses
            // it (it acquires the count).
            LIVE.fetch_sub(1, Release);
        } else {
            // SAFETY: a block `System` allocated with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !in_region(ptr) && !ACTIVE.with(Cell::get) {
            // SAFETY: a block `System` allocated with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller's contract, forwarded to alloc/dealloc.
        unsafe {
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                new.copy_from_nonoverlapping(ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// Runs the set-up `make` with the region taking every allocation of a size
/// in `sizes` made by this thread, from the region's start, and checks that
/// exactly `expect` allocations went there (so nothing else, e.g. a
/// long-lived allocation of the library, landed in it).
///
/// # Panics
///
/// If an object of the previous set-up is still alive (the region would be
/// reused under it), or if the count differs from `expect`.
pub fn setup<R>(sizes: RangeInclusive<usize>, expect: usize, make: impl FnOnce() -> R) -> R {
    if BASE.load(Relaxed) == 0 {
        // SAFETY: a fresh anonymous private mapping; no pointers involved.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                CAPACITY,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(base != libc::MAP_FAILED, "arena: mmap failed");
        BASE.store(base as usize, Relaxed);
    }
    assert_eq!(
        LIVE.load(Acquire),
        0,
        "arena: objects of the previous set-up are still alive"
    );
    NEXT.store(0, Relaxed);
    PLACED.store(0, Relaxed);
    MIN.store(*sizes.start(), Relaxed);
    MAX.store(*sizes.end(), Relaxed);
    ACTIVE.with(|a| a.set(true));
    let made = make();
    ACTIVE.with(|a| a.set(false));
    assert_eq!(
        PLACED.load(Relaxed),
        expect,
        "arena: the set-up placed another number of objects than expected"
    );
    made
}
