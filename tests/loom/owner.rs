//! Owners: the last user's teardown against a holder's upgrade (also
//! when the holder is dropped after it, against the only-handle fast
//! path), and exclusive access against an upgrade.

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use ownrcu::{Domain, User};

/// Owner data that counts its drops and has a cell loom watches for races.
struct Data {
    value: UnsafeCell<u64>,
    drops: Arc<AtomicUsize>,
}

// SAFETY (test): `value` is written only through `Exclusive` (which the
// owner makes exclusive) and read through `Read`; loom checks exactly that.
unsafe impl Sync for Data {}

impl Drop for Data {
    fn drop(&mut self) {
        // Teardown must be exclusive: loom flags a racing read.
        self.value.with_mut(|v| unsafe { *v = u64::MAX });
        self.drops.fetch_add(1, SeqCst);
    }
}

fn data(drops: &Arc<AtomicUsize>) -> Data {
    Data {
        value: UnsafeCell::new(7),
        drops: drops.clone(),
    }
}

/// `mmput` of the last user racing with `mmget_not_zero`: the upgrade either
/// fails, or succeeds and sees live data; the data is dropped exactly once,
/// after every reader.
#[test]
fn last_user_drop_races_with_upgrade() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Domain::new();
        let mm = User::new(&domain, data(&drops));
        let grab = mm.holder();
        let upgrader = thread::spawn(move || {
            if let Some(user) = grab.upgrade() {
                let read = user.read();
                let v = read.value.with(|v| unsafe { *v });
                assert_eq!(v, 7, "an upgraded user saw torn-down data");
                true
            } else {
                assert!(grab.is_torn_down());
                false
            }
        });
        drop(mm);
        let _ = upgrader.join().unwrap();
        assert_eq!(
            drops.load(SeqCst),
            1,
            "dropped exactly once, by the last user"
        );
    });
}

/// The last original user's drop against a holder that upgrades and is
/// dropped meanwhile: the drop may take its fast path (no other handle of
/// any kind) only if it sees no holder and no other user; a user that an
/// upgrade made keeps the data alive, and the data is dropped once, after
/// every read.
#[test]
fn only_handle_fast_path_races_with_upgrade_then_holder_drop() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Domain::new();
        let mm = User::new(&domain, data(&drops));
        let grab = mm.holder();
        let upgrader = thread::spawn(move || {
            let user = grab.upgrade();
            drop(grab);
            if let Some(user) = user {
                let read = user.read();
                let v = read.value.with(|v| unsafe { *v });
                assert_eq!(v, 7, "an upgraded user saw torn-down data");
            }
        });
        drop(mm);
        upgrader.join().unwrap();
        assert_eq!(drops.load(SeqCst), 1, "dropped exactly once");
    });
}

/// Exclusive access racing with an upgrade: an upgraded user's read never
/// overlaps the exclusive write (the upgrade waits for the `Exclusive`).
#[test]
fn exclusive_races_with_upgrade() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Domain::new();
        let mut mm = User::new(&domain, data(&drops));
        let grab = mm.holder();
        let upgrader = thread::spawn(move || {
            let user = grab.upgrade().expect("a user is alive");
            let read = user.read();
            read.value.with(|v| unsafe { *v })
        });
        let wrote = match mm.exclusive() {
            Some(ex) => {
                ex.value.with_mut(|v| unsafe { *v = 8 });
                true
            }
            None => false, // the upgrade came first: two users
        };
        let seen = upgrader.join().unwrap();
        // The write and the upgraded read never overlap: loom's cell checks
        // that in every interleaving. The read comes before or after it.
        if wrote {
            assert!(seen == 7 || seen == 8, "saw {seen}");
        } else {
            assert_eq!(seen, 7, "no exclusive access, no write");
        }
        drop(mm);
        assert_eq!(drops.load(SeqCst), 1);
    });
}

/// An object in an owner's slot that loom watches: readers read `value`,
/// the destructor writes it, so a free that races a reader is reported.
struct Obj {
    value: UnsafeCell<u64>,
    drops: Arc<AtomicUsize>,
}

// SAFETY (test): `value` is written only by the destructor, which must not
// race a reader; loom checks exactly that.
unsafe impl Sync for Obj {}

impl Drop for Obj {
    fn drop(&mut self) {
        self.value.with_mut(|v| unsafe { *v = u64::MAX });
        self.drops.fetch_add(1, SeqCst);
    }
}

fn obj(drops: &Arc<AtomicUsize>, value: u64) -> Box<Obj> {
    Box::new(Obj {
        value: UnsafeCell::new(value),
        drops: drops.clone(),
    })
}

/// A reader of an owner's slot races the owner's writer, who replaces the
/// object, retires the old one as a one-object batch and waits with the
/// owner's barrier: the reader never sees its object freed, and every object
/// is freed exactly once.
#[test]
fn slot_reader_races_owner_batch_and_barrier() {
    // Bounded like the other two-thread models with a barrier (see
    // `common::TWO_THREADS`): exhaustive takes over a minute.
    crate::common::check(
        "owner::slot_reader_races_owner_batch_and_barrier",
        crate::common::TWO_THREADS,
        || {
            let drops = Arc::new(AtomicUsize::new(0));
            let domain = Domain::new();
            let mm = Arc::new(User::new(&domain, ownrcu::Slot::new(obj(&drops, 1))));
            let reader = {
                let mm = mm.clone();
                thread::spawn(move || {
                    let read = mm.read();
                    if let Some(o) = read.load(&read) {
                        let v = o.value.with(|v| unsafe { *v });
                        assert!(v == 1 || v == 2, "read a freed object: {v}");
                    }
                })
            };
            let mut batch = mm.batch();
            batch.extend(mm.read().replace(Some(obj(&drops, 2)), &mm));
            batch.drain();
            mm.barrier();
            assert_eq!(
                drops.load(SeqCst),
                1,
                "the old object was freed by the barrier"
            );
            reader.join().unwrap();
            drop(mm);
            assert_eq!(drops.load(SeqCst), 2);
        },
    );
}

/// Owner A is torn down (its retired objects freed directly) while a reader
/// of owner B, in the same domain, reads B's slot: B's object is untouched.
#[test]
fn teardown_of_one_owner_races_a_reader_of_another() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Domain::new();
        let a = User::new(&domain, ownrcu::Slot::new(obj(&drops, 1)));
        let b = Arc::new(User::new(&domain, ownrcu::Slot::new(obj(&drops, 7))));
        let reader = {
            let b = b.clone();
            thread::spawn(move || {
                let read = b.read();
                let o = read.load(&read).expect("B's object");
                assert_eq!(o.value.with(|v| unsafe { *v }), 7);
            })
        };
        a.read().replace(Some(obj(&drops, 2)), &a).unwrap().retire();
        drop(a); // frees A's live and pending objects directly
        assert_eq!(drops.load(SeqCst), 2);
        reader.join().unwrap();
        drop(b);
        assert_eq!(drops.load(SeqCst), 3);
    });
}

/// `User::barrier` on one thread while another user's retirement frees the
/// owner's completed units: an object retired before the barrier may be in
/// the other thread's hands, half-way through its free, when the barrier
/// looks at the queue; the barrier must still return only after it is
/// freed.
#[test]
fn owner_barrier_waits_for_a_free_on_another_thread() {
    crate::common::check(
        "owner::owner_barrier_waits_for_a_free_on_another_thread",
        crate::common::TWO_THREADS,
        || {
            let (drops, ours) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let domain = Domain::new();
            let slots = [
                ownrcu::Slot::new(obj(&drops, 1)),
                ownrcu::Slot::new(obj(&ours, 2)),
            ];
            let mm = Arc::new(User::new(&domain, slots));
            let other = {
                let mm = mm.clone();
                thread::spawn(move || {
                    // Retiring registers, then frees what has completed,
                    // possibly the main thread's object too.
                    mm[0].take(&mm).unwrap().retire();
                })
            };
            mm[1].take(&mm).unwrap().retire();
            mm.barrier();
            assert_eq!(
                ours.load(SeqCst),
                1,
                "barrier returned before our object was freed"
            );
            other.join().unwrap();
            mm.barrier();
            assert_eq!(drops.load(SeqCst), 1);
        },
    );
}
