//! A thread's exit hands over what it retired, and dropping the last
//! `Domain` handle frees everything directly.
//!
//! Note on loom: a loom `JoinHandle::join` returns once the thread's closure
//! returned, *before* loom runs the thread's thread-local destructors. So in
//! these models the exiting thread's hand-over (`Registry::drop` →
//! `Inner::release`) runs concurrently with whatever the main thread does
//! after `join`: a stronger test than with `std`, where it precedes `join`.

use loom::sync::Arc;
use loom::thread;
use ownrcu::Domain;

use crate::common::{check, Objects, EXHAUSTIVE};

/// A thread retires two objects (both stay in its bag: the first makes the
/// bag on the slow path, the second goes in on the fast path) and exits.
/// After joining it, `barrier` frees both.
#[test]
fn exit_hands_over_bag() {
    check("exit/hand-over then barrier", EXHAUSTIVE, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();

        let other = {
            let (domain, objects) = (domain.clone(), objects.clone());
            thread::spawn(move || {
                // SAFETY (both): fresh objects, never shared.
                unsafe { domain.retire_raw(objects.make()) };
                unsafe { domain.retire_raw(objects.make()) };
            })
        };

        other.join().unwrap();
        assert_eq!(objects.drops(), 0, "freed without a grace period");
        domain.barrier();
        assert_eq!(objects.drops(), 2, "the exited thread's bag was lost");
    });
}

/// A thread with its own `Domain` handle retires two objects, drops the
/// handle and exits. The main thread joins it, retires one object itself
/// and drops the last handle: the drop frees all three before returning,
/// with no grace period and no barrier.
#[test]
fn last_handle_drop_frees_everything() {
    check("exit/last handle drop", EXHAUSTIVE, || {
        let domain = Domain::new();
        let objects = Objects::new();

        let other = {
            let (domain, objects) = (domain.clone(), objects.clone());
            thread::spawn(move || {
                // SAFETY (both): fresh objects, never shared.
                unsafe { domain.retire_raw(objects.make()) };
                unsafe { domain.retire_raw(objects.make()) };
                drop(domain);
            })
        };

        other.join().unwrap();
        // SAFETY: fresh object, never shared.
        unsafe { domain.retire_raw(objects.make()) };
        drop(domain);
        assert_eq!(objects.drops(), 3, "dropping the last handle left objects");
    });
}

/// Two threads each retire an object into their own bag and drop their own
/// handle, concurrently: whichever drop is last tears the domain down and
/// must free both (the other thread's bag included). Checked after joining.
#[test]
fn concurrent_handle_drops() {
    check("exit/concurrent handle drops", EXHAUSTIVE, || {
        let domain = Domain::new();
        let objects = Objects::new();

        let other = {
            let (domain, objects) = (domain.clone(), objects.clone());
            thread::spawn(move || {
                // SAFETY (both): fresh objects, never shared.
                unsafe { domain.retire_raw(objects.make()) };
                unsafe { domain.retire_raw(objects.make()) };
                drop(domain);
            })
        };

        // SAFETY (both): fresh objects, never shared.
        unsafe { domain.retire_raw(objects.make()) };
        unsafe { domain.retire_raw(objects.make()) };
        drop(domain);
        other.join().unwrap();
        assert_eq!(objects.drops(), 4, "a torn-down domain left objects");
    });
}

/// The hand-over itself, with no barrier to steal the bag instead: a thread
/// retires two objects (both stay in its bag) and exits; its exit registers
/// the bag with the domain. Then the main thread's `synchronize` completes a
/// grace period and its own first retirement (slow path) collects: both of
/// the exited thread's objects are freed by that, and only that.
///
/// A loom `join` returns before the exiting thread's thread-locals are
/// destroyed, so the main thread first waits (yielding) until the domain's
/// statistics show the registration; if the exit never hands the bag over,
/// the wait never ends and loom fails the model.
#[test]
fn exit_registers_bag_without_barrier() {
    check("exit/hand-over, freed by collect", EXHAUSTIVE, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();

        let other = {
            let (domain, objects) = (domain.clone(), objects.clone());
            thread::spawn(move || {
                // SAFETY (both): fresh objects, never shared.
                unsafe { domain.retire_raw(objects.make()) };
                unsafe { domain.retire_raw(objects.make()) };
            })
        };

        other.join().unwrap();
        while domain.stats().registrations == 0 {
            thread::yield_now();
        }
        assert_eq!(objects.drops(), 0, "freed without a grace period");
        domain.synchronize();
        // SAFETY: fresh object, never shared.
        unsafe { domain.retire_raw(objects.make()) };
        assert_eq!(
            objects.drops(),
            2,
            "the exited thread's objects were not collected"
        );
        domain.barrier();
        assert_eq!(objects.drops(), 3);
    });
}
