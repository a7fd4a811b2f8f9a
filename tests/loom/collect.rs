//! An owner's amortized collect (a registration frees at most
//! `COLLECT_BUDGET` objects, then puts the rest back at the front of the
//! queue) racing the owner's barrier.

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use ownrcu::{Domain, Slot, User};

/// `COLLECT_BUDGET` under loom (`src/rcu/machine/state.rs`, crate-private, so copied:
/// keep the two in step): the most objects one registration's collect frees.
const COLLECT_BUDGET: usize = 8;

/// One more than a collect frees, so the batch's collect leaves one behind.
const OBJECTS: usize = COLLECT_BUDGET + 1;

/// A retired object that counts its drops; the first one of the batch also
/// raises `started` from its destructor.
struct Counted {
    drops: Arc<AtomicUsize>,
    started: Option<Arc<AtomicBool>>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
        if let Some(started) = &self.started {
            started.store(true, SeqCst);
        }
    }
}

/// Thread A drains one batch of `COLLECT_BUDGET + 1` objects: under loom its
/// registration starts a grace period at once (`GP_OBJECTS` = 1), which
/// completes (no reader), so the registration's collect pops the unit, frees
/// `COLLECT_BUDGET` objects and puts the last one back at the front of the
/// queue. Thread B calls the owner's barrier once the batch's first
/// destructor has run, i.e. while the unit is in A's hands, off the queue.
/// The barrier must still wait for, and free, all of it: the batch was
/// registered before the barrier was called.
#[test]
fn owner_barrier_waits_for_a_concurrent_partial_collect() {
    // The race needs one preemption: A is preempted right after the first
    // destructor raises `started`, and B's barrier looks at the queue while
    // the unit is popped (B then blocks on the `freeing` lock: a switch, not
    // a preemption). No bound: with B parked on `yield_now` until then, and
    // on the locks after, the whole search is a few hundred executions (280
    // with the barrier fixed, in milliseconds).
    crate::common::check(
        "collect::owner_barrier_waits_for_a_concurrent_partial_collect",
        crate::common::EXHAUSTIVE,
        || {
            let drops = Arc::new(AtomicUsize::new(0));
            let started = Arc::new(AtomicBool::new(false));
            let domain = Domain::new();
            let slots: Vec<Slot<Counted>> = (0..OBJECTS)
                .map(|i| {
                    Slot::new(Box::new(Counted {
                        drops: drops.clone(),
                        started: (i == 0).then(|| started.clone()),
                    }))
                })
                .collect();
            let mm = User::new(&domain, slots);
            let a = {
                let mm = mm.clone();
                thread::spawn(move || {
                    let mut batch = mm.batch_with_capacity(OBJECTS);
                    // Batches free oldest first: slot 0's object, which
                    // raises `started`, is the first destructor to run.
                    batch.extend(mm.iter().map(|slot| slot.take(&mm).unwrap()));
                    batch.drain();
                })
            };
            let b = {
                let mm = mm.clone();
                let drops = drops.clone();
                thread::spawn(move || {
                    while !started.load(SeqCst) {
                        thread::yield_now();
                    }
                    // The batch was registered before this call.
                    mm.barrier();
                    assert_eq!(
                        drops.load(SeqCst),
                        OBJECTS,
                        "the owner's barrier returned with objects of a batch registered \
                         before it still pending"
                    );
                })
            };
            a.join().unwrap();
            b.join().unwrap();
            assert_eq!(drops.load(SeqCst), OBJECTS, "every object dropped once");
            drop(mm);
            assert_eq!(drops.load(SeqCst), OBJECTS, "no object dropped twice");
        },
    );
}
