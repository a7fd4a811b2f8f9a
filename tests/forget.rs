//! `mem::forget` of every guard-like value: what leaks, what blocks, and
//! that nothing is undefined behaviour (run under Miri by `.ci/run`).
//!
//! Each type documents these consequences under "Leaking it"; each test
//! here shows them. Tests that leak on purpose are ignored under Miri's
//! default leak check and run by `.ci/run` with `-Zmiri-ignore-leaks`.

use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

use ownrcu::{Array, Domain, Slot, User};

/// Counts its drops.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

impl Drops {
    fn obj(&self) -> Box<Counted> {
        Box::new(Counted(self.0.clone()))
    }
    fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn panics(f: impl FnOnce()) -> bool {
    panic::catch_unwind(AssertUnwindSafe(f)).is_err()
}

/// A forgotten `Guard` keeps its thread in the section: no grace period
/// completes (a cookie never polls complete, from any thread), waiting on
/// that thread panics instead of hanging, retiring still never blocks, and
/// the domain's teardown frees everything directly.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_guard_blocks_grace_periods_until_teardown() {
    let drops = Drops::default();
    let domain = Domain::new();
    let d2 = domain.clone();
    let retired = drops.clone();
    // On a thread of its own: its record is leaked with the section.
    thread::spawn(move || {
        mem::forget(d2.read());
        let cookie = d2.grace_period();
        assert!(!d2.poll(&cookie), "a grace period passed a forgotten guard");
        assert!(panics(|| d2.synchronize()), "synchronize in the section");
        assert!(panics(|| d2.barrier()), "barrier in the section");
        for _ in 0..10 {
            d2.retire(retired.obj()); // never blocks
        }
        let mut batch = d2.batch();
        batch.push(retired.obj());
        batch.drain();
    })
    .join()
    .unwrap();
    // The thread is gone, its section is not.
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie));
    assert_eq!(drops.get(), 0, "nothing freed past the open section");
    assert_eq!(domain.stats().pending, 11);
    drop(domain); // the last handle: no guard can be used, all freed
    assert_eq!(drops.get(), 11);
}

/// A forgotten `Read` is a forgotten guard of the owner's domain; the
/// owner's teardown still frees everything directly.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_read_blocks_grace_periods_not_teardown() {
    let drops = Drops::default();
    let domain = Domain::new();
    let mm = User::new(&domain, Slot::new(drops.obj()));
    let handle = mm.clone();
    thread::spawn(move || {
        mem::forget(handle.read());
        assert!(panics(|| handle.barrier()), "User::barrier in the section");
    })
    .join()
    .unwrap();
    mm.replace(Some(drops.obj()), &mm).unwrap().retire();
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie));
    assert_eq!(drops.get(), 0);
    drop(mm); // the last user: the slot's object and the retired one
    assert_eq!(drops.get(), 2);
}

/// A forgotten `Exclusive` leaks nothing: the handle clones, counts, drops
/// and becomes exclusive again as usual, and its last drop tears down.
#[test]
fn a_forgotten_exclusive_leaks_nothing() {
    let drops = Drops::default();
    let domain = Domain::new();
    let mut mm = User::new(&domain, Slot::new(drops.obj()));
    let grab = mm.holder();
    mem::forget(mm.exclusive().unwrap());
    assert_eq!(mm.users(), 1);
    let other = mm.clone();
    assert_eq!(mm.users(), 2);
    let upgraded = grab.upgrade().expect("a user is alive");
    assert_eq!(mm.users(), 3);
    drop((other, upgraded));
    mem::forget(mm.exclusive().expect("the only user again"));
    mm.exclusive().expect("and again").free_pending();
    drop(mm);
    assert_eq!(drops.get(), 1, "the last user's drop tore the owner down");
    assert!(grab.is_torn_down());
    assert!(grab.upgrade().is_none());
}

/// A forgotten `ArrayWriter` keeps the writer lock: `try_write` says so at
/// once; readers go on; what it staged leaks, the current version does not.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_array_writer_keeps_the_lock() {
    let drops = Drops::default();
    let domain = Domain::new();
    let mm = User::new(&domain, Array::from_vec(vec![drops.obj(), drops.obj()]));
    let mut writer = mm.write(&mm);
    writer.remove(0..1);
    writer.push(drops.obj());
    mem::forget(writer);
    assert!(mm.try_write(&mm).is_none(), "the writer lock is still held");
    {
        let read = mm.read();
        assert_eq!(mm.load(&read).len(), 2, "readers see the current version");
    }
    drop(mm);
    // The current version's two objects were freed by the teardown, the
    // removed one among them; the inserted one leaked with the writer.
    assert_eq!(drops.get(), 2);
}

/// A forgotten `Batch` leaks its objects: no barrier and no teardown frees
/// them, and the domain never counted them.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_batch_leaks_its_objects() {
    let drops = Drops::default();
    let domain = Domain::new();
    let mut batch = domain.batch();
    batch.push(drops.obj());
    batch.push(drops.obj());
    mem::forget(batch);
    domain.retire(drops.obj());
    domain.barrier();
    assert_eq!(drops.get(), 1, "only the object retired singly");
    let stats = domain.stats();
    assert_eq!((stats.retired, stats.pending, stats.batches), (1, 0, 0));
    drop(domain);
    assert_eq!(drops.get(), 1);
}

/// A forgotten `OwnerBatch` leaks its objects, even past the owner's
/// teardown; the owner never counted them.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_owner_batch_leaks_its_objects() {
    let drops = Drops::default();
    let domain = Domain::new();
    let mm = User::new(
        &domain,
        vec![Slot::new(drops.obj()), Slot::new(drops.obj())],
    );
    let mut batch = mm.batch();
    batch.extend(mm[0].take(&mm));
    mem::forget(batch);
    mm.barrier();
    assert_eq!(mm.stats().retired, 0);
    let grab = mm.holder();
    drop(mm);
    assert_eq!(drops.get(), 1, "the slot's object only");
    assert_eq!(grab.stats().pending, 0);
}

/// A forgotten `Unlinked` leaks its object, even past the owner's teardown.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_unlinked_leaks_its_object() {
    let drops = Drops::default();
    let domain = Domain::new();
    let mm = User::new(&domain, Slot::new(drops.obj()));
    mem::forget(mm.replace(Some(drops.obj()), &mm));
    let grab = mm.holder();
    drop(mm);
    assert_eq!(drops.get(), 1, "the slot's new object only");
    assert_eq!(grab.stats().retired, 0);
}

/// A forgotten `Removed` leaks the removed objects and the old version,
/// even past the owner's teardown.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_removed_leaks_its_objects() {
    let drops = Drops::default();
    let domain = Domain::new();
    let mm = User::new(&domain, Array::from_vec(vec![drops.obj(), drops.obj()]));
    let mut writer = mm.write(&mm);
    writer.remove(..1);
    mem::forget(writer.commit());
    assert!(mm.try_write(&mm).is_some(), "the commit released the lock");
    let grab = mm.holder();
    drop(mm);
    assert_eq!(drops.get(), 1, "the object still in the array only");
    assert_eq!(grab.stats().retired, 0);
}

/// A forgotten owned section is a reader that never leaves: nothing retired
/// after it entered is freed, and nothing is freed early or twice. It
/// keeps its domain's handle, so the domain is never torn down (leaked).
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_owned_section_holds_grace_periods_for_good() {
    let domain = Domain::builder().reclaimer(false).build();
    let drops = Drops::default();
    mem::forget(domain.read_owned());
    domain.retire(drops.obj());
    domain.collect();
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie), "the forgotten section holds it");
    drop(domain); // not the last handle: the forgotten section has one
    assert_eq!(drops.get(), 0, "nothing freed under the open section");
}

/// A forgotten owned read of an owner leaks its section (as a forgotten
/// owned section does) and its user handle: the owner is never torn down,
/// so its data is never dropped, and nothing is freed early or twice.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose: run with -Zmiri-ignore-leaks")]
fn a_forgotten_owned_read_keeps_its_owner_for_good() {
    let domain = Domain::builder().reclaimer(false).build();
    let drops = Drops::default();
    let mm = User::new(&domain, Slot::new(drops.obj()));
    mem::forget(mm.read_owned());
    mm.replace(Some(drops.obj()), &mm).unwrap().retire();
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie), "the forgotten section holds it");
    assert_eq!(mm.users(), 2, "the forgotten read's handle stays counted");
    drop(mm); // not the last user: no teardown
    assert_eq!(drops.get(), 0, "nothing freed under the open section");
}
