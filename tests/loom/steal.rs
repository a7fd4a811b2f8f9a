//! The busy/steal handshake between a bag's owner (fast path, no lock) and a
//! thread stealing the bag under the state lock (`barrier`).

use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::Ordering::{Acquire, Release};
use loom::sync::Arc;
use loom::thread;
use ownrcu::Domain;

use crate::common::{check, Objects, EXHAUSTIVE, TWO_THREADS};

/// The owner has a bag already (its first retirement went through the slow
/// path, which makes one); it then retires twice more (the second fills the
/// bag on the fast path, the third finds it full and goes slow) while the
/// main thread runs `barrier`, whose steal can land before, between or inside
/// any of them. Every object must be freed exactly once (`Tracked` asserts
/// against a second drop; loom flags unsynchronized bag accesses), and none
/// lost: a final barrier after joining frees all three.
///
/// The race that matters needs a preemption between the owner's `busy`
/// store and its fence, another between its `steal` load and its bag
/// access, and one on the stealer's side: 3 of the `TWO_THREADS` bound.
#[test]
fn fast_path_races_steal() {
    check("steal/fast path vs barrier", TWO_THREADS, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();
        let ready = Arc::new(AtomicBool::new(false));

        let owner = {
            let (domain, objects, ready) = (domain.clone(), objects.clone(), ready.clone());
            thread::spawn(move || {
                // SAFETY (all three): fresh objects, never shared.
                unsafe { domain.retire_raw(objects.make()) };
                ready.store(true, Release);
                unsafe { domain.retire_raw(objects.make()) };
                unsafe { domain.retire_raw(objects.make()) };
            })
        };

        while !ready.load(Acquire) {
            thread::yield_now();
        }
        domain.barrier();
        // The first retirement happened before the barrier started.
        assert!(
            objects.drops() >= 1,
            "a retirement before barrier survived it"
        );

        owner.join().unwrap();
        domain.barrier();
        assert_eq!(objects.drops(), 3, "an object was lost");
    });
}

/// Two stealers and one owner: both the owner's exit hand-over and a
/// barrier in the main thread take the bag; the owner keeps retiring on its
/// fast path until then. Exactly-once and none lost, as above.
#[test]
fn exit_and_barrier_both_steal() {
    check("steal/exit hand-over vs barrier", EXHAUSTIVE, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();

        let owner = {
            let (domain, objects) = (domain.clone(), objects.clone());
            thread::spawn(move || {
                // SAFETY (both): fresh objects, never shared.
                unsafe { domain.retire_raw(objects.make()) };
                unsafe { domain.retire_raw(objects.make()) };
                // Exits: its thread-local hands the bag over, possibly while
                // the main thread's barrier steals it.
            })
        };

        domain.barrier();
        owner.join().unwrap();
        domain.barrier();
        assert_eq!(objects.drops(), 2, "an object was lost");
    });
}
