//! Owners: the last user's teardown against a holder's upgrade, and
//! exclusive access against an upgrade.

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
