//! Skipping a grace period's heavy fence (`FenceDue`, module `fence`): a
//! reader whose record is armed enters two sections in a row (the first
//! finds the mark due, clears it and runs a full fence; the second runs
//! the light fence only), while a writer unlinks the object the reader may
//! hold, starts a grace period with a plain fence and, finding the record
//! armed, skips the heavy fence, waits for the sections that began before
//! it, and frees the object. Nothing the reader loaded is freed under it.
//!
//! The light fence is modelled as what it is with membarrier, a compiler
//! fence: loom sees no ordering on the reader's side beyond its own
//! release store. What loom cannot model is the heavy fence itself, so the
//! arming (a mark written before one heavy fence, armed after the next:
//! case 2 of the module docs) is argued there; the writer here stops, as
//! a real start would run the heavy fence, when the mark is not armed.
//!
//! Fencing mode ("Fencing every entry"): the reader's record fences every
//! entry and, at the end of a window (two entries under loom) that no
//! start visited, leaves the mode; its next entry runs the light fence
//! only. The writer's start finds the record armed in fencing mode and
//! skips the heavy fence, whether before, during or after the reader's
//! leaving.

use loom::cell::UnsafeCell;
use loom::sync::atomic::Ordering::{Acquire, Release, SeqCst};
use loom::sync::atomic::{fence, AtomicU64, AtomicUsize};
use loom::sync::Arc;
use loom::thread;
use ownrcu::{FenceDue, FencePolicy};

use crate::common::{check, EXHAUSTIVE, LIVE};

/// Two objects: the one linked at first (0), and its replacement (1). The
/// writer "frees" object 0 by writing its cell, which loom reports unless
/// every read of it happens before.
struct World {
    due: FenceDue,
    policy: FencePolicy,
    /// The reader's record state: `epoch << 1 | 1` in a section, else 0.
    state: AtomicU64,
    /// Grace periods started.
    epoch: AtomicU64,
    /// Which object is linked.
    link: AtomicUsize,
    objects: [UnsafeCell<usize>; 2],
}

// SAFETY: the cells are read by the reader (`with`) and written once by the
// writer (`with_mut`); whether the write happens after every read is what
// loom checks.
unsafe impl Sync for World {}

fn reader(w: &World, sections: usize) {
    for _ in 0..sections {
        // As `Record::enter`: read the epoch, publish the section with
        // the mark's fence, load.
        let e = w.epoch.load(Acquire);
        w.due.enter(&w.policy, &w.state, e << 1 | 1);
        let i = w.link.load(Acquire);
        // SAFETY: a shared read, checked by loom against the free.
        let v = w.objects[i].with(|v| unsafe { *v });
        assert_eq!(v, LIVE, "object {i} read after its free");
        // As `Record::exit`.
        w.state.store(0, Release);
    }
}

fn writer(w: &World) {
    // Unlink object 0, start grace period 1 with a plain fence.
    w.link.store(1, Release);
    w.epoch.store(1, Release);
    fence(SeqCst);
    // No heavy fence so far in this domain: armed only from birth.
    if !w.due.arm(&w.policy, 0, None).is_armed() {
        return; // a real start runs the heavy fence here
    }
    // Wait while a section that began before grace period 1 is open.
    loop {
        let s = w.state.load(Acquire);
        if s & 1 == 0 || s >> 1 >= 1 {
            break;
        }
        thread::yield_now();
    }
    // SAFETY: checked by loom against every read.
    w.objects[0].with_mut(|v| unsafe { *v = 0 });
}

fn world() -> Arc<World> {
    world_with(FenceDue::fresh())
}

fn world_with(due: FenceDue) -> Arc<World> {
    Arc::new(World {
        due,
        policy: FencePolicy::default(),
        state: AtomicU64::new(0),
        epoch: AtomicU64::new(0),
        link: AtomicUsize::new(0),
        objects: [UnsafeCell::new(LIVE), UnsafeCell::new(LIVE)],
    })
}

/// The reader's fenced entry, then an unfenced one, against a start that
/// skips the heavy fence.
#[test]
fn armed_record_lets_a_start_skip_the_heavy_fence() {
    check("fence_due/armed record, two sections", EXHAUSTIVE, || {
        let w = world();
        let r = {
            let w = w.clone();
            thread::spawn(move || reader(&w, 2))
        };
        writer(&w);
        r.join().unwrap();
    });
}

/// A record in fencing mode: two fenced entries; the third leaves the mode
/// (then fences) if the start had not visited the record when the first
/// ran, and the fourth then runs the light fence only; against a start
/// that skips the heavy fence.
#[test]
fn fencing_mode_and_leaving_it_let_a_start_skip_the_heavy_fence() {
    check("fence_due/fencing mode, four sections", EXHAUSTIVE, || {
        let w = world_with(FenceDue::fencing());
        let r = {
            let w = w.clone();
            thread::spawn(move || reader(&w, 4))
        };
        writer(&w);
        r.join().unwrap();
    });
}
