//! Steady single retirement reuses the domain's thread bags: once warm, a
//! thread that retires and frees at the same pace allocates nothing but
//! the objects it retires (the buffers its retirements fill are emptied by
//! the amortized frees and handed back, however many one free empties),
//! even after the domain's spare bags were filled with bags of another
//! size.
//!
//! Its own test binary: the counting allocator sees every allocation of
//! the process, so no other test may run beside it, and the tests here
//! take turns (`ONE_AT_A_TIME`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

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

/// Held by each test for its whole run, so that one test's allocations are
/// never counted by another.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Retires `n` small objects into `domain` on this thread, then counts
/// the allocations of `n` more beyond the objects themselves.
fn extra_allocations(domain: &Domain, n: usize) -> usize {
    let retire = |n: usize| {
        for i in 0..n {
            domain.retire(Box::new(i));
        }
    };
    retire(n); // warm: bags, spare bags, the queue's buffer
    let before = ALLOCATIONS.load(Relaxed);
    retire(n);
    ALLOCATIONS.load(Relaxed) - before - n
}

#[test]
#[cfg_attr(miri, ignore = "a million retirements")]
fn steady_single_retirement_allocates_only_the_objects() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // No reclaimer: its thread would allocate, and frees are the retiring
    // thread's amortized ones alone.
    let domain = Domain::builder().reclaimer(false).build();
    let objects = 500_000;
    let extra = extra_allocations(&domain, objects);
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
    assert_eq!(domain.stats().freed, 2 * objects as u64);
}

#[test]
#[cfg_attr(miri, ignore = "a million retirements")]
fn spare_bags_of_another_size_make_room() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let domain = Domain::builder().reclaimer(false).build();
    // A slow writer, whose bags shrink to the smallest size (a bag that
    // takes long to fill is halved), while a reader holds every grace
    // period up: once it leaves, all those bags are freed together, and
    // the emptied bags fill the domain's spare bags.
    let slow = 600;
    let reader = domain.read();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..slow {
                domain.retire(Box::new(i));
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
        });
    });
    drop(reader);
    domain.barrier();
    // Enough small bags to fill the spare bags (at most 40): else this
    // test would not test the case.
    let small_bags = domain.stats().registrations;
    assert!(
        small_bags >= 40,
        "the slow writer registered {small_bags} bags of {slow} objects: its bags did not shrink"
    );
    // A fast writer then fills full-size bags: were the spare bags kept
    // for the small size nobody asks for any more, each of its
    // registrations would allocate a bag.
    let objects = 500_000;
    let extra = extra_allocations(&domain, objects);
    assert!(
        extra < 100,
        "{extra} allocations beyond the {objects} objects after small bags filled the spares \
         ({} registrations)",
        domain.stats().registrations
    );
    domain.barrier();
    assert_eq!(domain.stats().freed, slow as u64 + 2 * objects as u64);
}
