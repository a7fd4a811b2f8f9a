//! Shared pieces of the loom models.
//!
//! # Detecting a use-after-free
//!
//! Every test object is a [`Tracked`]: a `loom::cell::UnsafeCell` that
//! readers read (`with`) and the destructor writes (`with_mut`), so loom
//! reports any free that does not *happen after* a reader's access, plus a
//! `freed` flag kept outside the object (so checking it never touches freed
//! memory), set by the destructor.
//!
//! The flag and the drop counter are `std` atomics on purpose: loom runs every
//! modelled thread on one OS thread, one at a time, so a `std` atomic reads
//! what the explored schedule wrote last, i.e. it observes the schedule's
//! real-time order, and it adds no interleavings to explore. "Freed while a
//! reader holds the pointer" is then a plain assertion, and the cell catches
//! frees that are late in the schedule but not ordered by happens-before.

#![allow(dead_code)]

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicUsize as StdAtomicUsize};
use std::sync::Arc as StdArc;
use std::time::Instant;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicPtr;
use ownrcu::Domain;

/// What a live object's cell holds.
pub const LIVE: usize = 0x5EED;

/// A retired object whose destruction the models watch.
pub struct Tracked {
    value: UnsafeCell<usize>,
    freed: StdArc<StdAtomicBool>,
    drops: StdArc<StdAtomicUsize>,
}

impl Tracked {
    /// Reads the object's cell: a read loom checks against the destructor's
    /// write.
    pub fn value(&self) -> usize {
        // SAFETY: a shared read; the destructor's write is the only write,
        // and loom reports it if it does not happen after this read.
        self.value.with(|v| unsafe { *v })
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // A write: loom flags it if a reader's `with` does not happen before.
        self.value.with_mut(|v| {
            // SAFETY: `&mut self`, and loom checks the claim.
            unsafe { *v = 0 }
        });
        assert!(!self.freed.swap(true, SeqCst), "object freed twice");
        self.drops.fetch_add(1, SeqCst);
    }
}

/// A set of tracked objects and their destruction count.
#[derive(Clone, Default)]
pub struct Objects {
    drops: StdArc<StdAtomicUsize>,
}

/// An object shared with readers: its pointer, and its `freed` flag, kept
/// outside the object so it can be read after the object is gone. (Looking
/// flags up by address would be wrong: a freed object's address is reused by
/// the next allocation.)
#[derive(Clone)]
pub struct Shared {
    pub ptr: *mut Tracked,
    freed: StdArc<StdAtomicBool>,
}

// SAFETY: only the address and the `std` flag cross threads; the object is
// accessed under the crate's protocol, which is what the models check.
unsafe impl Send for Shared {}

impl Shared {
    /// Whether the object was destroyed (in schedule order).
    pub fn is_freed(&self) -> bool {
        self.freed.load(SeqCst)
    }
}

impl Objects {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new object, as `Box::into_raw` gives it.
    pub fn make(&self) -> *mut Tracked {
        self.make_shared().ptr
    }

    /// A new object, with its `freed` flag.
    pub fn make_shared(&self) -> Shared {
        let freed = StdArc::new(StdAtomicBool::new(false));
        let ptr = Box::into_raw(Box::new(Tracked {
            value: UnsafeCell::new(LIVE),
            freed: freed.clone(),
            drops: self.drops.clone(),
        }));
        Shared { ptr, freed }
    }

    /// Objects destroyed so far (in schedule order).
    pub fn drops(&self) -> usize {
        self.drops.load(SeqCst)
    }
}

/// The reader's side of every use-after-free model: inside one section, load
/// the shared pointer, check the object is alive, read it (a loom-tracked
/// read), load the pointer again (a scheduling point, so the writer may run
/// while the section still holds the object), and check again.
///
/// `candidates` are every object ever stored in `shared`; they were all
/// allocated before any of them could be freed, so their addresses differ.
pub fn read_side(domain: &Domain, shared: &AtomicPtr<Tracked>, candidates: &[Shared]) {
    use loom::sync::atomic::Ordering::Acquire;
    let guard = domain.read();
    let ptr = shared.load(Acquire);
    let object = candidates
        .iter()
        .find(|c| c.ptr == ptr)
        .expect("the shared pointer holds an object the model never stored");
    assert!(
        !object.is_freed(),
        "reader reached an object that was already freed"
    );
    // SAFETY: the object is alive (checked just above, and no modelled thread
    // runs between the check and this access); the guard keeps it alive, which
    // is what the model checks.
    let value = unsafe { (*ptr).value() };
    assert_eq!(value, LIVE);
    let _ = shared.load(Acquire);
    assert!(
        !object.is_freed(),
        "object freed while a reader's guard protected it"
    );
    drop(guard);
}

/// No preemption bound: loom explores every execution. Used where that
/// finishes in seconds (the slowest, `reader/retire_raw+barrier`, takes
/// about a minute: 870 thousand executions).
pub const EXHAUSTIVE: Option<usize> = None;

/// Preemption bound of the two-thread models that are too big to explore
/// exhaustively (`barrier/concurrent retirements` alone takes 3.2 million
/// executions and 3.5 minutes without a bound; `steal/fast path vs barrier`
/// and `batch/drains vs barrier` do not finish in 7 minutes). The races found
/// while writing these models needed 3 preemptions (see
/// `steal::exit_and_barrier_both_steal`); 5 leaves two to spare and keeps each
/// of these models under about 25 s.
pub const TWO_THREADS: Option<usize> = Some(5);

/// Preemption bound of the three-thread model: executions grow about
/// twentyfold per extra preemption with three threads (2: 62 thousand, about
/// 10 s; 3: 1.2 million, about 2 minutes, also passes).
pub const THREE_THREADS: Option<usize> = Some(2);

/// Runs `f` as a loom model with the given preemption bound (unless
/// `LOOM_MAX_PREEMPTIONS` sets one), and prints the executions explored.
pub fn check<F>(name: &str, preemption_bound: Option<usize>, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let iterations = StdArc::new(StdAtomicUsize::new(0));
    let counter = iterations.clone();
    let mut builder = loom::model::Builder::new();
    let from_env = std::env::var_os("LOOM_MAX_PREEMPTIONS").is_some();
    if !from_env {
        builder.preemption_bound = preemption_bound;
    }
    let bound = builder.preemption_bound;
    let start = Instant::now();
    let model = move || {
        counter.fetch_add(1, SeqCst);
        f();
    };
    if std::env::var_os("LOOM_LOG").is_some() {
        // Only `loom::model` installs the `LOOM_LOG` trace subscriber; it
        // reads its bound from the environment.
        if let (false, Some(bound)) = (from_env, preemption_bound) {
            std::env::set_var("LOOM_MAX_PREEMPTIONS", bound.to_string());
        }
        loom::model(model);
    } else {
        builder.check(model);
    }
    eprintln!(
        "loom model {name}: {} executions, preemption bound {bound:?}, {:.2?}",
        iterations.load(SeqCst),
        start.elapsed()
    );
}
