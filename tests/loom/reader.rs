//! A reader inside its section never sees its object freed while a writer
//! unlinks it and retires it concurrently, for each way of retiring.

use loom::sync::atomic::AtomicPtr;
use loom::sync::atomic::Ordering::AcqRel;
use loom::sync::Arc;
use loom::thread;
use ownrcu::Domain;

use crate::common::{check, read_side, Objects, Tracked, EXHAUSTIVE, TWO_THREADS};

/// One reader thread and the writer (the model's main thread): the writer
/// swaps a new object in, hands the old one to `retire_and_free`, and asserts
/// it is gone afterwards when `freed_after` says it must be.
fn unlink_model(name: &'static str, retire_and_free: fn(&Domain, *mut Tracked), freed_after: bool) {
    check(name, EXHAUSTIVE, move || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();
        let first = objects.make_shared();
        let second = objects.make_shared();
        let shared = Arc::new(AtomicPtr::new(first.ptr));
        let candidates = vec![first.clone(), second.clone()];

        let reader = {
            let (domain, shared) = (domain.clone(), shared.clone());
            thread::spawn(move || read_side(&domain, &shared, &candidates))
        };

        let old = shared.swap(second.ptr, AcqRel);
        assert_eq!(old, first.ptr);
        retire_and_free(&domain, old);
        if freed_after {
            assert!(first.is_freed(), "{name}: not freed when it returned");
            assert_eq!(objects.drops(), 1);
        }

        reader.join().unwrap();
        // SAFETY: the reader has finished; `second` was never retired.
        drop(unsafe { Box::from_raw(second.ptr) });
        // The reader's handle went with its closure: this is the last one,
        // and dropping it frees whatever is still retired.
        let domain = Arc::try_unwrap(domain).unwrap_or_else(|_| panic!("a handle is left"));
        drop(domain);
        assert_eq!(objects.drops(), 2, "{name}: the unlinked object was lost");
    });
}

/// `retire_raw` then `barrier`: the object is freed by the time `barrier`
/// returns, never while the reader holds it.
#[test]
fn retire_raw_then_barrier() {
    unlink_model(
        "reader/retire_raw+barrier",
        |domain, old| {
            // SAFETY: from `Box::into_raw`, unlinked, read only under guards.
            unsafe { domain.retire_raw(old) };
            domain.barrier();
        },
        true,
    );
}

/// A `Batch` (`push_raw`, `drain`) then `barrier`.
#[test]
fn batch_drain_then_barrier() {
    unlink_model(
        "reader/batch+barrier",
        |domain, old| {
            let mut batch = domain.batch::<Tracked>();
            // SAFETY: as for `retire_raw`.
            unsafe { batch.push_raw(old) };
            batch.drain();
            domain.barrier();
        },
        true,
    );
}

/// A `Batch` drained, then `synchronize`: the drain itself may free (its
/// collect step) only after the grace period; `synchronize` frees nothing,
/// so the object may be left to the domain's teardown (checked at the end).
#[test]
fn batch_drain_then_synchronize() {
    unlink_model(
        "reader/batch+synchronize",
        |domain, old| {
            let mut batch = domain.batch::<Tracked>();
            // SAFETY: as for `retire_raw`.
            unsafe { batch.push_raw(old) };
            batch.drain();
            domain.synchronize();
        },
        false,
    );
}

/// `synchronize`, then the writer frees the object itself.
#[test]
fn synchronize_then_free() {
    unlink_model(
        "reader/synchronize+free",
        |domain, old| {
            domain.synchronize();
            // SAFETY: unlinked before a full grace period.
            drop(unsafe { Box::from_raw(old) });
        },
        true,
    );
}

/// The reader runs two sections back to back while the writer unlinks,
/// retires and calls `barrier`. The second entry may read a stale epoch or
/// the new one; either way a grace period that sees the second entry must
/// also order the first section's accesses before the free (the entry store
/// is a release, see `Record::enter`).
#[test]
fn reader_reenters_during_barrier() {
    check(
        "reader/two sections vs retire_raw+barrier",
        TWO_THREADS,
        || {
            let domain = Arc::new(Domain::new());
            let objects = Objects::new();
            let first = objects.make_shared();
            let second = objects.make_shared();
            let shared = Arc::new(AtomicPtr::new(first.ptr));
            let candidates = vec![first.clone(), second.clone()];

            let reader = {
                let (domain, shared) = (domain.clone(), shared.clone());
                thread::spawn(move || {
                    read_side(&domain, &shared, &candidates);
                    read_side(&domain, &shared, &candidates);
                })
            };

            let old = shared.swap(second.ptr, AcqRel);
            // SAFETY: from `Box::into_raw`, unlinked, read only under guards.
            unsafe { domain.retire_raw(old) };
            domain.barrier();
            assert!(
                first.is_freed(),
                "barrier returned before freeing the object"
            );
            assert_eq!(objects.drops(), 1);

            reader.join().unwrap();
            // SAFETY: the reader has finished; `second` was never retired.
            drop(unsafe { Box::from_raw(second.ptr) });
        },
    );
}
