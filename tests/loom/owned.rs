//! An owned read section that migrates between threads: entered and used to
//! load on one thread, handed to another that reads what was loaded, while
//! the writer unlinks and retires the object and runs `barrier`. The object
//! is never freed while the section is alive, wherever it is, and is freed
//! exactly once.

use loom::sync::atomic::AtomicPtr;
use loom::sync::atomic::Ordering::{AcqRel, Acquire};
use loom::sync::Arc;
use loom::thread;
use ownrcu::{Domain, OwnedGuard};

use crate::common::{check, Objects, Shared, LIVE};

/// What the first reader thread hands to the second: the section and what
/// it loaded under it.
struct HandOver {
    section: OwnedGuard,
    object: Shared,
}

/// Reads `object` (which `section` protects) and checks it is alive.
fn read(object: &Shared) {
    assert!(!object.is_freed(), "object freed under an owned section");
    // SAFETY: alive (checked above, and no modelled thread runs between the
    // check and this access); the owned section keeps it alive, which is
    // what the model checks.
    let value = unsafe { (*object.ptr).value() };
    assert_eq!(value, LIVE);
}

/// Three threads, but short ones: four preemptions explore about eight
/// thousand executions in under a second (`common::THREE_THREADS` is two).
const PREEMPTIONS: Option<usize> = Some(4);

#[test]
fn owned_section_migrates_during_barrier() {
    check("owned/migrates+barrier", PREEMPTIONS, || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();
        let first = objects.make_shared();
        let second = objects.make_shared();
        let shared = Arc::new(AtomicPtr::new(first.ptr));
        let candidates = vec![first.clone(), second.clone()];

        let reader = {
            let (domain, shared) = (domain.clone(), shared.clone());
            thread::spawn(move || {
                let section = domain.read_owned();
                let ptr = shared.load(Acquire);
                let object = candidates
                    .into_iter()
                    .find(|c| c.ptr == ptr)
                    .expect("the shared pointer holds an object the model stored");
                read(&object);
                // The section moves to another thread, which reads again.
                let hand_over = HandOver { section, object };
                thread::spawn(move || {
                    read(&hand_over.object);
                    let _ = hand_over.section.domain(); // a scheduling point
                    read(&hand_over.object);
                    drop(hand_over.section);
                })
                .join()
                .unwrap();
            })
        };

        let old = shared.swap(second.ptr, AcqRel);
        assert_eq!(old, first.ptr);
        // SAFETY: from `Box::into_raw`, unlinked, read only under sections.
        unsafe { domain.retire_raw(old) };
        domain.barrier();
        assert!(first.is_freed(), "not freed when barrier returned");

        reader.join().unwrap();
        // SAFETY: the readers have finished; `second` was never retired.
        drop(unsafe { Box::from_raw(second.ptr) });
        let domain = Arc::try_unwrap(domain).unwrap_or_else(|_| panic!("a handle is left"));
        drop(domain);
        assert_eq!(objects.drops(), 2, "the unlinked object was lost");
    });
}
