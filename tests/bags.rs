//! Steady single retirement reuses the domain's thread bags: once warm, a
//! thread that retires and frees at the same pace allocates nothing but
//! the objects it retires (the buffers its retirements fill are emptied by
//! the amortized frees and handed back, however many one free empties).
//!
//! Its own test binary: the counting allocator sees every allocation of
//! the process, so no other test may run beside it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use ownrcu::Domain;

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; counting has no effect
// on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
#[cfg_attr(miri, ignore = "a million retirements")]
fn steady_single_retirement_allocates_only_the_objects() {
    // No reclaimer: its thread would allocate, and frees are the retiring
    // thread's amortized ones alone.
    let domain = Domain::builder().reclaimer(false).build();
    let retire = |n: usize| {
        for i in 0..n {
            domain.retire(Box::new(i));
        }
    };
    retire(500_000); // warm: bags, spare bags, the queue's buffer
    let objects = 500_000;
    let before = ALLOCATIONS.load(Relaxed);
    retire(objects);
    let extra = ALLOCATIONS.load(Relaxed) - before - objects;
    let stats = domain.stats();
    // A bag holds at most 128 objects: a bag allocated per registration
    // would be thousands here.
    assert!(
        extra < 100,
        "{extra} allocations beyond the {objects} objects ({} registrations, peak pending {})",
        stats.registrations,
        stats.peak_pending
    );
    domain.barrier();
    assert_eq!(domain.stats().freed, 1_000_000);
}
