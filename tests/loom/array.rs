//! `Array`: readers scanning a version while the writer publishes the next
//! one and retires what it removed (one batch, or `synchronize` and a direct
//! free); two writers taking turns.

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use ownrcu::{Array, Domain, User};

/// An object loom watches: readers read `value`, the destructor writes it,
/// so a free that races a reader is reported.
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

fn value(o: &Obj) -> u64 {
    o.value.with(|v| unsafe { *v })
}

/// A reader scans the array while the writer removes one object, keeps the
/// other, appends a new one (made after the reader started, so reading it
/// needs the publication's Release), publishes, and retires the removed one
/// with the old version as one registration, then waits with the owner's
/// barrier.
#[test]
fn reader_races_commit_and_batch_retire() {
    crate::common::check(
        "array::reader_races_commit_and_batch_retire",
        crate::common::TWO_THREADS,
        || {
            let drops = Arc::new(AtomicUsize::new(0));
            let domain = Domain::new();
            let mm = Arc::new(User::new(
                &domain,
                Array::from_vec(vec![obj(&drops, 1), obj(&drops, 2)]),
            ));
            let reader = {
                let mm = mm.clone();
                thread::spawn(move || {
                    let read = mm.read();
                    let items = read.load(&read);
                    assert_eq!(items.len(), 2);
                    for o in items {
                        let v = value(o);
                        assert!((1..=3).contains(&v), "read a freed object: {v}");
                    }
                })
            };
            let mut writer = mm.write(&mm);
            writer.remove(0..1);
            writer.push(obj(&drops, 3));
            writer.commit().retire();
            mm.barrier();
            assert_eq!(
                drops.load(SeqCst),
                1,
                "the removed object freed by the barrier"
            );
            reader.join().unwrap();
            drop(mm);
            assert_eq!(drops.load(SeqCst), 3);
        },
    );
}

/// The same race, but the writer waits for the grace period itself
/// (`Removed::synchronize`) and frees directly.
#[test]
fn reader_races_commit_and_synchronize() {
    crate::common::check(
        "array::reader_races_commit_and_synchronize",
        crate::common::TWO_THREADS,
        || {
            let drops = Arc::new(AtomicUsize::new(0));
            let domain = Domain::new();
            let mm = Arc::new(User::new(&domain, Array::from_vec(vec![obj(&drops, 1)])));
            let reader = {
                let mm = mm.clone();
                thread::spawn(move || {
                    let read = mm.read();
                    if let Some(o) = read.load(&read).first() {
                        assert_eq!(value(o), 1, "read a freed object");
                    }
                })
            };
            let mut writer = mm.write(&mm);
            writer.clear();
            writer.commit().synchronize();
            assert_eq!(drops.load(SeqCst), 1, "freed when synchronize returns");
            reader.join().unwrap();
        },
    );
}

/// Two writers insert concurrently: they take turns, so neither insertion
/// is lost, and the version each one edits is the one it copied.
#[test]
fn writers_take_turns() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let domain = Domain::new();
        let mm = Arc::new(User::new(&domain, Array::new()));
        let other = {
            let (mm, drops) = (mm.clone(), drops.clone());
            thread::spawn(move || {
                let mut writer = mm.write(&mm);
                writer.push(obj(&drops, 1));
                writer.commit().retire();
            })
        };
        {
            let mut writer = mm.write(&mm);
            writer.push(obj(&drops, 2));
            writer.commit().retire();
        }
        other.join().unwrap();
        let read = mm.read();
        let mut seen: Vec<u64> = read.load(&read).iter().map(|o| value(o)).collect();
        seen.sort_unstable();
        assert_eq!(seen, [1, 2], "no insertion lost");
        drop(read);
        drop(mm); // the last handle: the other thread's clone is gone
        assert_eq!(drops.load(SeqCst), 2);
    });
}
