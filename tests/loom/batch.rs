//! Batches: one registration for many objects, freed exactly once.

use loom::sync::Arc;
use loom::thread;
use ownrcu::Domain;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc as StdArc;

use crate::common::{check, Objects, Tracked, TWO_THREADS};

/// Another thread drains a batch of two objects, then retires one object
/// singly, while the main thread drains a batch of its own and calls
/// `barrier`. `barrier` frees its own batch and everything the other thread
/// had handed over before it started (counted in schedule order); after
/// joining, a second barrier frees the rest. Each object exactly once.
#[test]
fn batches_race_barrier() {
    check("batch/drains vs barrier", TWO_THREADS, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();
        let handed = StdArc::new(StdAtomicUsize::new(0));

        let other = {
            let (domain, objects, handed) = (domain.clone(), objects.clone(), handed.clone());
            thread::spawn(move || {
                let mut batch = domain.batch::<Tracked>();
                // SAFETY (all): fresh objects, never shared.
                unsafe { batch.push_raw(objects.make()) };
                unsafe { batch.push_raw(objects.make()) };
                batch.drain();
                handed.fetch_add(2, SeqCst);
                unsafe { domain.retire_raw(objects.make()) };
                handed.fetch_add(1, SeqCst);
            })
        };

        let mut batch = domain.batch::<Tracked>();
        // SAFETY: fresh object, never shared.
        unsafe { batch.push_raw(objects.make()) };
        drop(batch); // dropping an undrained batch drains it
        let before = handed.load(SeqCst) + 1;
        domain.barrier();
        let freed = objects.drops();
        assert!(
            freed >= before,
            "barrier returned with {freed} freed, but {before} were retired before it"
        );

        other.join().unwrap();
        domain.barrier();
        assert_eq!(objects.drops(), 4, "an object was lost");
    });
}
