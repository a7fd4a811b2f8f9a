//! `barrier` returns only after every retirement made before it ran,
//! including those buffered by other threads (idle or busy).

use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::Ordering::{Acquire, Release};
use loom::sync::Arc;
use loom::thread;
use ownrcu::Domain;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc as StdArc;

use crate::common::{check, Objects, EXHAUSTIVE, THREE_THREADS, TWO_THREADS};

fn spin_until(flag: &AtomicBool) {
    while !flag.load(Acquire) {
        thread::yield_now();
    }
}

/// Another thread retires three objects (bag capacity is 2 under loom: the
/// first two fill its bag, the third hands the full bag to the domain and
/// starts a new one), then stays alive and idle. `barrier` in the main
/// thread, after retiring one object of its own, must free all four: the
/// idle thread's bag is stolen, the registered bag is waited for.
#[test]
fn barrier_frees_idle_threads_bag() {
    check("barrier/idle thread's bag", EXHAUSTIVE, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();
        let parked = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));

        let other = {
            let (domain, objects) = (domain.clone(), objects.clone());
            let (parked, done) = (parked.clone(), done.clone());
            thread::spawn(move || {
                for _ in 0..3 {
                    // SAFETY: fresh object, never shared.
                    unsafe { domain.retire_raw(objects.make()) };
                }
                parked.store(true, Release);
                // Alive and idle until the main thread's barrier is over.
                spin_until(&done);
            })
        };

        spin_until(&parked);
        // SAFETY: fresh object, never shared.
        unsafe { domain.retire_raw(objects.make()) };
        domain.barrier();
        assert_eq!(
            objects.drops(),
            4,
            "barrier returned before everything retired before it was freed"
        );
        done.store(true, Release);
        other.join().unwrap();
    });
}

/// Another thread retires while the main thread calls `barrier` (from its
/// first use of the domain on, so its registration races the barrier's scan
/// of the records too). Whatever it retired before the barrier started (in
/// the schedule's order, as counted by the `std` counter it bumps after each
/// retirement) must be freed when `barrier` returns; after joining it, a
/// second barrier frees the rest, each object exactly once.
#[test]
fn barrier_races_retiring_thread() {
    check("barrier/concurrent retirements", TWO_THREADS, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();
        let retired = StdArc::new(StdAtomicUsize::new(0));

        let other = {
            let (domain, objects, retired) = (domain.clone(), objects.clone(), retired.clone());
            thread::spawn(move || {
                for _ in 0..3 {
                    // SAFETY: fresh object, never shared.
                    unsafe { domain.retire_raw(objects.make()) };
                    retired.fetch_add(1, SeqCst);
                }
            })
        };

        let before = retired.load(SeqCst);
        domain.barrier();
        let freed = objects.drops();
        assert!(
            freed >= before,
            "barrier returned with {freed} freed, but {before} were retired before it"
        );

        other.join().unwrap();
        domain.barrier();
        assert_eq!(objects.drops(), 3, "an object was lost");
    });
}

/// Three threads: a reader holding the object, a thread retiring objects of
/// its own, and the writer, which unlinks the reader's object, retires it
/// and calls `barrier`. The barrier's steal and grace period overlap both:
/// the reader must never see its object freed, the barrier must free the
/// writer's object and whatever the other thread retired before it began,
/// and nothing may be lost.
///
/// Three threads, so bounded by `THREE_THREADS`.
#[test]
fn barrier_with_reader_and_retirer() {
    check("barrier/reader + retirer + writer", THREE_THREADS, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();
        let first = objects.make_shared();
        let second = objects.make_shared();
        let shared = Arc::new(loom::sync::atomic::AtomicPtr::new(first.ptr));
        let candidates = vec![first.clone(), second.clone()];
        let retired = StdArc::new(StdAtomicUsize::new(0));

        let reader = {
            let (domain, shared) = (domain.clone(), shared.clone());
            thread::spawn(move || crate::common::read_side(&domain, &shared, &candidates))
        };
        let retirer = {
            let (domain, objects, retired) = (domain.clone(), objects.clone(), retired.clone());
            thread::spawn(move || {
                for _ in 0..2 {
                    // SAFETY: fresh object, never shared.
                    unsafe { domain.retire_raw(objects.make()) };
                    retired.fetch_add(1, SeqCst);
                }
            })
        };

        let old = shared.swap(second.ptr, loom::sync::atomic::Ordering::AcqRel);
        let before = retired.load(SeqCst);
        // SAFETY: from `Box::into_raw`, unlinked, read only under guards.
        unsafe { domain.retire_raw(old) };
        domain.barrier();
        assert!(first.is_freed(), "barrier left the writer's object");
        let freed = objects.drops();
        assert!(
            freed > before,
            "barrier returned with {freed} freed, but {before} + 1 were retired before it"
        );

        reader.join().unwrap();
        retirer.join().unwrap();
        domain.barrier();
        assert_eq!(objects.drops(), 3, "an object was lost");
        // SAFETY: the reader has finished; `second` was never retired.
        drop(unsafe { Box::from_raw(second.ptr) });
    });
}
