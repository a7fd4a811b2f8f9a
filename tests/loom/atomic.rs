//! The safe pointer: a reader holding what it loaded from an `Atomic` never
//! sees it freed while a writer swaps or compare-exchanges it out and
//! retires the `Detached` value (singly or in a batch), and two poppers
//! racing to unlink nodes each detach a different one.
//!
//! The objects are checked as in `common`: a loom cell that the reader
//! reads and the destructor writes (loom reports a free that does not happen
//! after the read), and a `freed` flag outside the object.
//!
//! Weakening `Atomic::load`'s `Acquire` to `Relaxed`, or the `Release` half
//! of `swap`'s or `compare_exchange`'s `AcqRel`, makes the first two models
//! fail with a causality violation (tried by hand).

use std::mem::ManuallyDrop;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicUsize as StdAtomicUsize};
use std::sync::Arc as StdArc;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use ownrcu::{Atomic, Domain, Owned};

use crate::common::{check, LIVE, TWO_THREADS};

/// A watched object (see `common::Tracked`), with an optional link.
struct Obj {
    value: UnsafeCell<usize>,
    freed: StdArc<StdAtomicBool>,
    drops: StdArc<StdAtomicUsize>,
    next: ManuallyDrop<Atomic<Obj>>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        self.value.with_mut(|v| {
            // SAFETY: `&mut self`, and loom checks the claim.
            unsafe { *v = 0 }
        });
        assert!(!self.freed.swap(true, SeqCst), "object freed twice");
        self.drops.fetch_add(1, SeqCst);
    }
}

/// A new object and its `freed` flag.
fn make(drops: &StdArc<StdAtomicUsize>) -> (Owned<Obj>, StdArc<StdAtomicBool>) {
    let freed = StdArc::new(StdAtomicBool::new(false));
    let obj = Owned::new(Obj {
        value: UnsafeCell::new(LIVE),
        freed: freed.clone(),
        drops: drops.clone(),
        next: ManuallyDrop::new(Atomic::null()),
    });
    // A tracked write after construction (loom does not treat a cell's
    // creation as one), so a reader's read must happen after the
    // publication: weakening the `Acquire` of `Atomic::load` is caught.
    obj.value.with_mut(|v| {
        // SAFETY: the object is ours alone, unpublished.
        unsafe { *v = LIVE }
    });
    (obj, freed)
}

/// Inside one section: load, check alive, read (loom-tracked), load again
/// (a scheduling point, so the writer may run meanwhile), check again.
fn read_side(domain: &Domain, shared: &Atomic<Obj>) {
    let guard = domain.read();
    let obj = shared.load(&guard);
    let obj = obj.as_ref().expect("never null");
    assert!(!obj.freed.load(SeqCst), "reader reached a freed object");
    // SAFETY: a shared read; loom checks it against the destructor's write.
    assert_eq!(obj.value.with(|v| unsafe { *v }), LIVE);
    let _ = shared.load(&guard);
    assert!(
        !obj.freed.load(SeqCst),
        "object freed while a reader's guard protected it"
    );
    // SAFETY: as above.
    assert_eq!(obj.value.with(|v| unsafe { *v }), LIVE);
    drop(guard);
}

/// One reader thread; the writer (main) replaces the object with
/// `replace_and_retire` and, if `freed_after`, checks the old one is freed
/// when it returns. The writer makes the new object with `make_new` after
/// entering its section: under loom a section's entry is a `SeqCst` fence,
/// which would otherwise order the new object's contents before the
/// reader's read by itself, and hide a missing `Release` on the exchange.
fn replace_model(
    name: &'static str,
    replace_and_retire: fn(&Domain, &Atomic<Obj>, &dyn Fn() -> Owned<Obj>),
    freed_after: bool,
) {
    check(name, TWO_THREADS, move || {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let domain = Arc::new(Domain::new());
        let (first, first_freed) = make(&drops);
        let shared = Arc::new(Atomic::from(first));

        let reader = {
            let (domain, shared) = (domain.clone(), shared.clone());
            thread::spawn(move || read_side(&domain, &shared))
        };
        // Made after the spawn (and the writer's section entry): only the
        // exchange's `Release` and the load's `Acquire` order its contents
        // before the reader's read.
        let make_new = || make(&drops).0;
        replace_and_retire(&domain, &shared, &make_new);
        if freed_after {
            assert!(
                first_freed.load(SeqCst),
                "{name}: not freed when it returned"
            );
        }

        reader.join().unwrap();
        // The reader's handles went with its closure.
        let shared = Arc::try_unwrap(shared).unwrap_or_else(|_| panic!("a handle is left"));
        drop(shared); // frees `second`, directly
        let domain = Arc::try_unwrap(domain).unwrap_or_else(|_| panic!("a handle is left"));
        drop(domain); // frees whatever is still retired
        assert_eq!(drops.load(SeqCst), 2, "{name}: an object was lost");
    });
}

/// `swap`, `Detached::retire`, `barrier`.
#[test]
fn swap_retire_barrier() {
    replace_model(
        "atomic/swap+retire+barrier",
        |domain, shared, make_new| {
            let guard = domain.read();
            let old = shared.swap(make_new(), &guard);
            drop(guard);
            old.expect("the first object").retire();
            domain.barrier();
        },
        true,
    );
}

/// `compare_exchange`, `retire_into` a batch, `drain`, `synchronize`: the
/// drain may free only after the grace period; what it leaves is freed by
/// the domain's teardown (checked at the end).
#[test]
fn compare_exchange_batch_synchronize() {
    replace_model(
        "atomic/compare_exchange+batch+synchronize",
        |domain, shared, make_new| {
            let mut batch = domain.batch();
            {
                let guard = domain.read();
                let current = shared.load(&guard);
                let old = match shared.compare_exchange(current, make_new(), &guard) {
                    Ok(old) => old.expect("the first object"),
                    Err(_) => unreachable!("only this thread writes"),
                };
                old.retire_into(&mut batch);
            }
            batch.drain();
            domain.synchronize();
        },
        false,
    );
}

/// Two threads pop from a two-node stack at once (load head, load its
/// `next`, `compare_exchange_unlink`), each retiring what it detached: each
/// node is detached exactly once and freed only after both are done with
/// it (the other popper may still hold it; loom checks the read).
#[test]
fn two_poppers_unlink() {
    check("atomic/two poppers", TWO_THREADS, || {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let domain = Arc::new(Domain::new());
        let (bottom, _) = make(&drops);
        let (top, _) = make(&drops);
        // Link `top` in front of `bottom` before publishing anything.
        let head = Atomic::from(bottom);
        {
            let guard = domain.read();
            let current = head.load(&guard);
            if head
                .insert_before(current, top, |n| &n.next, &guard)
                .is_err()
            {
                unreachable!("nobody else runs yet");
            }
        }
        let head = Arc::new(head);

        let pop = |domain: &Domain, head: &Atomic<Obj>| -> bool {
            let guard = domain.read();
            loop {
                let current = head.load(&guard);
                let Some(node) = current.as_ref() else {
                    return false;
                };
                let next = node.next.load(&guard);
                // SAFETY: a shared read; loom checks it against the free.
                assert_eq!(node.value.with(|v| unsafe { *v }), LIVE);
                // SAFETY: `next`'s link was `node.next`, in `ManuallyDrop` and
                // never changed after publication; `node` was linked only
                // from `head`.
                match unsafe { head.compare_exchange_unlink(current, next, &guard) } {
                    Ok(old) => {
                        old.expect("the popped node").retire();
                        return true;
                    }
                    Err(_) => continue,
                }
            }
        };

        let other = {
            let (domain, head) = (domain.clone(), head.clone());
            thread::spawn(move || pop(&domain, &head))
        };
        let mine = pop(&domain, &head);
        let theirs = other.join().unwrap();
        assert!(mine && theirs, "each popper finds a node");
        domain.barrier();
        assert_eq!(drops.load(SeqCst), 2, "both popped nodes freed");
        let head = Arc::try_unwrap(head).unwrap_or_else(|_| panic!("a handle is left"));
        assert!(head.into_inner().is_none());
    });
}
