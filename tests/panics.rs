//! Panicking destructors: in a barrier, in a drained batch, in a domain's
//! teardown, and in an amortized free inside `retire`/`drain`. Every other
//! object must be freed exactly once (per-object drop counts), nothing may
//! leak, and the domain must stay usable.

use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};

use ownrcu::{Array, Batch, Domain, Slot, User};

mod common;

/// The payload of a panicking destructor: the object's id.
#[derive(Debug, PartialEq, Eq)]
struct Boom(usize);

/// Per-object drop counts.
#[derive(Clone)]
struct Tracker {
    drops: Arc<Vec<AtomicUsize>>,
    created: Arc<AtomicUsize>,
}

impl Tracker {
    fn new(capacity: usize) -> Self {
        Self {
            drops: Arc::new((0..capacity).map(|_| AtomicUsize::new(0)).collect()),
            created: Arc::default(),
        }
    }

    /// Object `id`; its destructor panics with `Boom(id)` if `panics`.
    fn obj(&self, id: usize, panics: bool) -> Box<Obj> {
        self.created.fetch_add(1, SeqCst);
        Box::new(Obj {
            id,
            panics,
            drops: self.drops.clone(),
            _bulk: [id as u64; 3],
        })
    }

    fn created(&self) -> usize {
        self.created.load(SeqCst)
    }

    /// Asserts objects `0..n` were each dropped exactly once and the others
    /// never.
    fn assert_dropped_once(&self, n: usize) {
        for (id, count) in self.drops.iter().enumerate() {
            let expected = usize::from(id < n);
            assert_eq!(count.load(SeqCst), expected, "object {id}");
        }
    }
}

struct Obj {
    id: usize,
    panics: bool,
    drops: Arc<Vec<AtomicUsize>>,
    _bulk: [u64; 3],
}

impl Drop for Obj {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, SeqCst);
        if self.panics {
            panic_any(Boom(self.id));
        }
    }
}

/// Holds a read guard of a domain on another thread until dropped. A reader
/// that entered before some retirements keeps their grace period from
/// completing, so no amortized free inside `retire`/`drain` can reach them
/// (and panic there, however small the rationing thresholds): they are
/// freed by the barrier or teardown under test, and only there.
struct Pin {
    leave: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn pin(d: &Domain) -> Pin {
    let handle = d.clone();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (leave_tx, leave_rx) = mpsc::channel::<()>();
    let thread = thread::spawn(move || {
        let guard = handle.read();
        entered_tx.send(()).unwrap();
        let _ = leave_rx.recv(); // returns when the sender is dropped
        drop(guard);
        drop(handle);
    });
    entered_rx.recv().unwrap();
    Pin {
        leave: Some(leave_tx),
        thread: Some(thread),
    }
}

impl Drop for Pin {
    /// Ends the section; the pinning thread and its handle are gone when this
    /// returns.
    fn drop(&mut self) {
        drop(self.leave.take());
        self.thread.take().unwrap().join().unwrap();
    }
}

/// Runs `f`, which must panic with a `Boom`, and returns its id.
fn boom(f: impl FnOnce()) -> usize {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    match payload.downcast::<Boom>() {
        Ok(boom) => boom.0,
        Err(other) => std::panic::resume_unwind(other),
    }
}

/// The domain still works: a reader, a retire and a barrier.
fn assert_usable(d: &Domain) {
    let before = d.stats().freed;
    let t = Tracker::new(3);
    drop(d.read());
    for id in 0..3 {
        d.retire(t.obj(id, false));
    }
    d.synchronize();
    d.barrier();
    t.assert_dropped_once(3);
    assert_eq!(d.stats().freed, before + 3);
    assert_eq!(d.stats().pending, 0);
}

#[test]
fn barrier_resumes_a_destructor_panic_and_frees_the_rest() {
    let d = common::quiet();
    let pinned = pin(&d);
    let t = Tracker::new(10);
    for id in 0..10 {
        d.retire(t.obj(id, id == 4));
    }
    drop(pinned); // from here on, grace periods can complete
    assert_eq!(boom(|| d.barrier()), 4);
    t.assert_dropped_once(10);
    let s = d.stats();
    assert_eq!((s.retired, s.freed, s.pending), (10, 10, 0));
    // Nothing left: a second barrier does not panic.
    d.barrier();
    t.assert_dropped_once(10);
    assert_usable(&d);
}

#[test]
fn barrier_with_several_panicking_destructors_across_buffers() {
    let n = if cfg!(miri) { 30 } else { 300 };
    let d = common::quiet();
    let pinned = pin(&d);
    let t = Tracker::new(n);
    let panicking = [0, 7, n / 2, n - 1];
    for id in 0..n {
        d.retire(t.obj(id, panicking.contains(&id)));
    }
    drop(pinned); // from here on, grace periods can complete
    let first = boom(|| d.barrier());
    assert!(panicking.contains(&first));
    t.assert_dropped_once(n);
    let s = d.stats();
    assert_eq!((s.freed, s.pending), (n as u64, 0));
    assert_usable(&d);
}

#[test]
fn a_panicking_deferred_closure() {
    let d = common::quiet();
    let pinned = pin(&d);
    let t = Tracker::new(4);
    d.retire(t.obj(0, false));
    d.defer(|| panic!("deferred closure panicked"));
    d.retire(t.obj(1, false));
    drop(pinned); // from here on, grace periods can complete
    let payload = catch_unwind(AssertUnwindSafe(|| d.barrier())).expect_err("expected a panic");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"deferred closure panicked")
    );
    t.assert_dropped_once(2);
    assert_usable(&d);
}

#[test]
fn a_panicking_destructor_in_a_batch_freed_by_barrier() {
    let d = common::quiet();
    let pinned = pin(&d);
    let t = Tracker::new(12);
    let mut batch = d.batch();
    for id in 0..10 {
        batch.push(t.obj(id, id == 3));
    }
    batch.drain();
    // An undrained batch dropped, with a panicking object too.
    {
        let mut batch = Batch::new(&d);
        batch.push(t.obj(10, false));
        batch.push(t.obj(11, true));
    }
    drop(pinned); // from here on, grace periods can complete
    let first = boom(|| d.barrier());
    assert!(first == 3 || first == 11);
    t.assert_dropped_once(12);
    let s = d.stats();
    assert_eq!((s.retired, s.freed, s.pending, s.batches), (12, 12, 0, 2));
    assert_usable(&d);
}

#[test]
fn a_panicking_destructor_in_teardown() {
    let d = common::quiet();
    let pinned = pin(&d);
    let t = Tracker::new(40);
    // From a thread that exited.
    let handle = d.clone();
    let tt = t.clone();
    thread::spawn(move || {
        for id in 0..10 {
            handle.retire(tt.obj(id, false));
        }
    })
    .join()
    .unwrap();
    // Singles, with the panicking one among them.
    for id in 10..20 {
        d.retire(t.obj(id, id == 15));
    }
    // A batch.
    let mut batch = d.batch();
    batch.extend((20..30).map(|id| t.obj(id, false)));
    batch.drain();
    // An unrelated domain this thread also uses: unaffected throughout.
    let done = common::quiet();
    done.retire(t.obj(30, false));
    done.barrier();
    drop(pinned); // from here on, grace periods can complete
    assert_eq!(boom(move || drop(d)), 15);
    t.assert_dropped_once(31);
    assert_usable(&done);
}

#[test]
fn a_panicking_destructor_in_teardown_with_several_panics() {
    let d = common::quiet();
    let pinned = pin(&d);
    let t = Tracker::new(20);
    for id in 0..10 {
        d.retire(t.obj(id, id % 3 == 0));
    }
    let mut batch = d.batch();
    batch.extend((10..20).map(|id| t.obj(id, id == 19)));
    batch.drain();
    let clone = d.clone();
    drop(d); // not the last handle: nothing happens
    drop(pinned); // from here on, grace periods can complete
    let first = boom(move || drop(clone));
    assert!(first % 3 == 0 || first == 19);
    t.assert_dropped_once(20);
}

#[test]
fn a_panicking_destructor_in_an_amortized_retire() {
    // Single retirements, with a grace period completed every few of them
    // (`synchronize` frees nothing itself): once the panicking object's
    // buffer has been handed over and its grace period is over, a later
    // `retire` that fills a buffer frees it and the panic surfaces there.
    let n = if cfg!(miri) { 120 } else { 20_000 };
    let d = common::quiet();
    let t = Tracker::new(n);
    let result = catch_unwind(AssertUnwindSafe(|| {
        for id in 0..n {
            d.retire(t.obj(id, id == 2));
            if id % 16 == 15 {
                d.synchronize();
            }
        }
    }));
    let payload = result.expect_err("an amortized free inside retire should have panicked");
    assert_eq!(payload.downcast_ref::<Boom>(), Some(&Boom(2)));
    let created = t.created();
    assert!(created < n, "the panic should have stopped the loop");
    // The object being retired when the panic surfaced was retired; nothing
    // was lost and nothing is freed twice.
    d.barrier();
    t.assert_dropped_once(created);
    let s = d.stats();
    assert_eq!(
        (s.retired, s.freed, s.pending),
        (created as u64, created as u64, 0)
    );
    assert_usable(&d);
}

#[test]
fn a_panicking_destructor_in_an_amortized_drain() {
    let d = common::quiet();
    let t = Tracker::new(6);
    let mut first = d.batch();
    for id in 0..5 {
        first.push(t.obj(id, id == 2));
    }
    first.drain();
    d.synchronize(); // the first batch's grace period is over
    t.assert_dropped_once(0); // and `synchronize` freed nothing
                              // Draining another batch frees (a budget of) what is ready: the first
                              // batch, whose panicking destructor surfaces from this `drain`.
    let mut second = d.batch();
    second.push(t.obj(5, false));
    assert_eq!(boom(|| second.drain()), 2);
    // The rest stayed queued; the barrier frees it, each object once.
    d.barrier();
    t.assert_dropped_once(6);
    let s = d.stats();
    assert_eq!((s.retired, s.freed, s.pending, s.batches), (6, 6, 0, 2));
    assert_usable(&d);
}

#[test]
fn a_panicking_destructor_in_a_large_drain() {
    // A batch large enough to start a grace period by itself (rationing):
    // with no reader it completes at once and the drain frees a budget of
    // it, reaching the panicking objects at both ends.
    let n = if cfg!(miri) { 40 } else { 20_000 };
    let d = common::quiet();
    let t = Tracker::new(n);
    let mut batch = d.batch();
    for id in 0..n {
        batch.push(t.obj(id, id == 0 || id == n - 1));
    }
    let first = boom(|| batch.drain());
    assert!(first == 0 || first == n - 1);
    let _ = catch_unwind(AssertUnwindSafe(|| d.barrier()));
    d.barrier();
    t.assert_dropped_once(n);
    let s = d.stats();
    assert_eq!(
        (s.retired, s.freed, s.pending, s.batches),
        (n as u64, n as u64, 0, 1)
    );
    assert_usable(&d);
}

#[test]
fn a_panicking_destructor_while_other_threads_retire() {
    let per_thread = if cfg!(miri) { 20 } else { 2000 };
    let threads = 3;
    let d = common::quiet();
    let t = Tracker::new(per_thread * threads);
    thread::scope(|s| {
        for k in 0..threads {
            let (d, t) = (&d, &t);
            s.spawn(move || {
                for i in 0..per_thread {
                    let id = k * per_thread + i;
                    // Only thread 0's objects panic, so the others' retire
                    // calls may free them too: catch there as well.
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        d.retire(t.obj(id, k == 0 && i % 97 == 5));
                    }));
                }
            });
        }
    });
    // One barrier frees everything still pending, resuming at most one
    // payload; the next has nothing left to free.
    let _ = catch_unwind(AssertUnwindSafe(|| d.barrier()));
    d.barrier();
    t.assert_dropped_once(per_thread * threads);
    let s = d.stats();
    assert_eq!(s.pending, 0);
    assert_eq!(s.freed, (per_thread * threads) as u64);
    assert_usable(&d);
}

/// Owner teardown: the last user's drop frees the array's live objects and
/// everything retired through the owner that still waits (pinned by a
/// reader of the domain), directly. Panicking destructors among both: every
/// other object is freed exactly once, the first panic reaches the dropping
/// caller, the owner is gone for good, and the domain stays usable.
#[test]
fn a_panicking_destructor_in_an_owner_teardown() {
    let d = common::quiet();
    let pinned = pin(&d); // what the owner retires stays pending
    let t = Tracker::new(30);
    // Objects 0..20 live in the array; 3 and 17 panic.
    let objects = (0..20).map(|id| t.obj(id, id == 3 || id == 17)).collect();
    let mm = User::new(&d, Array::from_vec(objects));
    let holder = mm.holder();
    // Remove 0..10 (with 3): one registration, pending behind the reader.
    let mut writer = mm.write(&mm);
    writer.remove(..10);
    writer.commit().retire();
    // Replace 10..15 one by one with 20..25 (22 panics), each retired alone.
    for (i, id) in (20..25).enumerate() {
        let mut writer = mm.write(&mm);
        writer.replace(i, t.obj(id, id == 22));
        writer.commit().retire_each();
    }
    assert_eq!(mm.stats().pending, 15, "nothing freed behind the reader");
    let first = boom(move || drop(mm));
    assert!([3, 17, 22].contains(&first), "panic {first}");
    t.assert_dropped_once(25);
    assert!(holder.upgrade().is_none(), "torn down for good");
    let stats = holder.stats();
    assert_eq!(stats.pending, 0);
    assert_eq!(stats.freed_after_grace_period, 0, "no grace period waited");
    drop(pinned);
    assert_usable(&d);
}

/// `User::barrier` frees what was retired through the owner; panicking
/// destructors among them (two in one unit) do not stop it: everything else
/// is freed, the first panic is resumed, and the owner stays usable (more
/// retirements, another barrier, teardown).
#[test]
fn a_panicking_destructor_in_an_owner_barrier() {
    let d = common::quiet();
    let t = Tracker::new(20);
    let objects = (0..10).map(|id| t.obj(id, id == 4 || id == 6)).collect();
    let mm = User::new(&d, Array::from_vec(objects));
    {
        let pinned = pin(&d); // keeps amortized collection away from them
        let mut writer = mm.write(&mm);
        writer.remove(..8);
        writer.commit().retire(); // one unit: 4 and 6 panic inside it
        drop(pinned);
    }
    // Freed oldest first: 4 panics first; 6 panics too, and 7 is still freed.
    assert_eq!(boom(|| mm.barrier()), 4);
    t.assert_dropped_once(8);
    assert_eq!(mm.stats().pending, 0);
    let mut writer = mm.write(&mm);
    writer.push(t.obj(10, false));
    writer.remove(..1);
    writer.commit().retire();
    mm.barrier();
    assert_eq!(mm.stats().pending, 0);
    drop(mm);
    // 0..11, but not 8 and 9 twice: the array held 8, 9 and 10 until now.
    t.assert_dropped_once(11);
    assert_usable(&d);
}

/// `Exclusive::free_pending` with a panicking destructor: the rest is freed
/// directly, the panic is resumed, and the owner is released (another user
/// can be made afterwards).
#[test]
fn a_panicking_destructor_in_free_pending() {
    let d = common::quiet();
    let pinned = pin(&d);
    let t = Tracker::new(10);
    let objects = (0..10).map(|id| t.obj(id, id == 5)).collect();
    let mut mm = User::new(&d, Array::from_vec(objects));
    for _ in 0..2 {
        let mut writer = mm.write(&mm);
        writer.remove(..3);
        writer.commit().retire_each();
    }
    assert_eq!(boom(|| mm.exclusive().unwrap().free_pending()), 5);
    t.assert_dropped_once(6);
    let other = mm.clone(); // the exclusive access was released
    drop(mm);
    drop(other);
    t.assert_dropped_once(10);
    drop(pinned);
    assert_usable(&d);
}

/// Defect: `Removed::retire_each` registers its objects one at a time, and
/// each registration runs an amortized free of older completed work. When
/// one of those older destructors panicked, the objects not registered yet
/// leaked (and `stats().pending` did not count them). The panic may reach
/// the caller, but every removed object must stay queued and be freed later,
/// exactly once; the panicking destructor is not run again.
#[test]
fn retire_each_keeps_the_rest_queued_when_an_older_destructor_panics() {
    let n = 10;
    let d = common::quiet();
    let t = Tracker::new(n + 1);
    // Object 0 panics; 1..=n are removed and retired one by one below.
    let objects = (0..=n).map(|id| t.obj(id, id == 0)).collect();
    let mm = User::new(&d, Array::from_vec(objects));
    let mut writer = mm.write(&mm);
    writer.remove(..1);
    writer.commit().retire();
    mm.domain().synchronize(); // object 0's grace period is over
    t.assert_dropped_once(0); // and nothing freed it yet

    // What `retire_each` registers waits behind this reader: it can only be
    // pending afterwards, whatever the rationing thresholds.
    let pinned = pin(&d);
    let mut writer = mm.write(&mm);
    writer.remove(..);
    let removed = writer.commit();
    assert_eq!(removed.len(), n);
    assert_eq!(boom(|| removed.retire_each()), 0);
    t.assert_dropped_once(1);
    assert_eq!(
        mm.stats().pending,
        n as u64,
        "every object retire_each was given must be queued after the panic"
    );
    drop(pinned);
    mm.barrier();
    t.assert_dropped_once(n + 1);
    assert_eq!(mm.stats().pending, 0);
    drop(mm);
    t.assert_dropped_once(n + 1);
    assert_usable(&d);
}

// ----- a value dropped while unwinding from an unrelated panic -----------------
//
// Defect: `Unlinked`, `Batch`, `OwnerBatch`, `Removed` and `ArrayWriter`
// register what they hold in their `Drop`, which runs an amortized free of
// older completed retirements. Dropped while the thread unwinds from an
// unrelated panic, a panicking older destructor there was a panic during
// unwinding: the process aborted. Each test below sets up an older object
// (0) with a panicking destructor whose grace period has completed but
// which is not freed yet, then unwinds past a value holding a fresh object
// (1). The unrelated panic must reach `catch_unwind`; the older object is
// not freed during the unwinding (still pending), the fresh one is
// registered; a later barrier frees both, once each, resuming object 0's
// panic.

/// Runs `f`, which must panic with the payload "unrelated".
fn unrelated(f: impl FnOnce()) {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected the unrelated panic");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"unrelated"),
        "the unrelated panic reaches the caller"
    );
}

/// A domain whose queue holds object 0 (panicking destructor) in a drained
/// batch, its grace period completed but not freed.
fn domain_with_a_ripe_panicking_object(t: &Tracker) -> Domain {
    let d = common::quiet();
    let mut batch = d.batch();
    batch.push(t.obj(0, true));
    batch.drain();
    d.synchronize(); // frees nothing
    t.assert_dropped_once(0);
    assert_eq!(d.stats().pending, 1);
    d
}

/// An owner's data: a slot and an array of objects.
type Owned = (Slot<Obj>, Array<Obj>);

/// An owner whose queue holds object 0 (panicking destructor), retired
/// through an `Unlinked`, its grace period completed but not freed. Object
/// 1, fresh, is in the array if `in_array`, else in the slot.
fn owner_with_a_ripe_panicking_object(d: &Domain, t: &Tracker, in_array: bool) -> User<Owned> {
    let array = if in_array {
        Array::from_vec(vec![t.obj(1, false)])
    } else {
        Array::new()
    };
    let mm = User::new(d, (Slot::new(t.obj(0, true)), array));
    mm.0.take(&mm).unwrap().retire();
    mm.domain().synchronize(); // frees nothing
    if !in_array {
        assert!(mm.0.replace(Some(t.obj(1, false)), &mm).is_none());
    }
    t.assert_dropped_once(0);
    assert_eq!(mm.stats().pending, 1);
    mm
}

/// After the unwinding, for an owner: both objects pending, none freed; a
/// barrier frees both and resumes object 0's panic; the owner tears down.
fn assert_owner_recovers(d: &Domain, t: &Tracker, mm: User<Owned>) {
    t.assert_dropped_once(0);
    assert_eq!(
        mm.stats().pending,
        2,
        "the older object stays queued, the fresh one was registered"
    );
    assert_eq!(boom(|| mm.barrier()), 0);
    t.assert_dropped_once(2);
    assert_eq!(mm.stats().pending, 0);
    drop(mm);
    t.assert_dropped_once(2);
    assert_usable(d);
}

/// Defect: a `Batch` dropped while unwinding ran an amortized free whose
/// panicking older destructor aborted the process (see the section comment).
#[test]
fn a_batch_dropped_while_unwinding_does_not_abort() {
    let t = Tracker::new(2);
    let d = domain_with_a_ripe_panicking_object(&t);
    unrelated(|| {
        let mut batch = d.batch();
        batch.push(t.obj(1, false));
        panic!("unrelated");
    });
    t.assert_dropped_once(0);
    assert_eq!(
        d.stats().pending,
        2,
        "the older object stays queued, the fresh one was registered"
    );
    assert_eq!(boom(|| d.barrier()), 0);
    t.assert_dropped_once(2);
    assert_eq!(d.stats().pending, 0);
    assert_usable(&d);
}

/// Defect: an `Unlinked` dropped while unwinding ran an amortized free whose
/// panicking older destructor aborted the process (see the section comment).
#[test]
fn an_unlinked_dropped_while_unwinding_does_not_abort() {
    let d = common::quiet();
    let t = Tracker::new(2);
    let mm = owner_with_a_ripe_panicking_object(&d, &t, false);
    unrelated(|| {
        let _unlinked = mm.0.take(&mm).unwrap();
        panic!("unrelated");
    });
    assert_owner_recovers(&d, &t, mm);
}

/// Defect: an `OwnerBatch` dropped while unwinding ran an amortized free
/// whose panicking older destructor aborted the process (see the section
/// comment).
#[test]
fn an_owner_batch_dropped_while_unwinding_does_not_abort() {
    let d = common::quiet();
    let t = Tracker::new(2);
    let mm = owner_with_a_ripe_panicking_object(&d, &t, false);
    unrelated(|| {
        let mut batch = mm.batch();
        batch.push(mm.0.take(&mm).unwrap());
        panic!("unrelated");
    });
    assert_owner_recovers(&d, &t, mm);
}

/// Defect: a `Removed` dropped while unwinding ran an amortized free whose
/// panicking older destructor aborted the process (see the section comment).
#[test]
fn a_removed_dropped_while_unwinding_does_not_abort() {
    let d = common::quiet();
    let t = Tracker::new(2);
    let mm = owner_with_a_ripe_panicking_object(&d, &t, true);
    unrelated(|| {
        let mut writer = mm.1.write(&mm);
        writer.remove(..);
        let _removed = writer.commit();
        panic!("unrelated");
    });
    assert_owner_recovers(&d, &t, mm);
}

/// Defect: an uncommitted `ArrayWriter` dropped while unwinding (its drop
/// commits and retires what it removed) ran an amortized free whose
/// panicking older destructor aborted the process (see the section comment).
#[test]
fn an_array_writer_dropped_while_unwinding_does_not_abort() {
    let d = common::quiet();
    let t = Tracker::new(2);
    let mm = owner_with_a_ripe_panicking_object(&d, &t, true);
    unrelated(|| {
        let mut writer = mm.1.write(&mm);
        writer.remove(..);
        panic!("unrelated");
    });
    assert!(
        mm.read().1.load(&mm.read()).is_empty(),
        "the drop committed"
    );
    assert_owner_recovers(&d, &t, mm);
}

#[test]
fn a_panicking_destructor_in_a_teardown_run_by_another_domains_destructor() {
    // Domain `a`'s garbage holds `b`'s last handle: `b` is torn down where
    // that object is dropped, inside `a`'s barrier, and `b`'s panicking
    // destructor, a panic of an `a` destructor, comes out of that barrier.
    let (a, b) = (common::quiet(), common::quiet());
    let t = Tracker::new(21);
    let pinned = pin(&b); // none of `b`'s objects is freed before the teardown
    for id in 0..20 {
        b.retire(t.obj(id, id == 7));
    }
    drop(pinned);
    a.retire(t.obj(20, false));
    a.retire(Box::new(b));
    assert_eq!(boom(|| a.barrier()), 7);
    t.assert_dropped_once(21);
    assert_usable(&a);
}
