//! Owners through the public API: user and holder counts, reads bounded by a
//! user handle, exclusive access, and direct teardown by the last user.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use ownrcu::{Domain, User};

/// Counts its drops in a shared counter.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counted(n: usize) -> (Vec<Counted>, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    ((0..n).map(|_| Counted(drops.clone())).collect(), drops)
}

#[test]
fn the_last_user_drops_the_data_directly() {
    let domain = Domain::new();
    let (objects, drops) = counted(100);
    let mm = User::new(&domain, objects);
    let users: Vec<_> = (0..3).map(|_| mm.clone()).collect();
    assert_eq!(mm.users(), 4);
    drop(users);
    assert_eq!(drops.load(SeqCst), 0, "users remain: nothing is freed");
    let before = domain.stats();
    drop(mm);
    assert_eq!(
        drops.load(SeqCst),
        100,
        "every object freed when drop returns"
    );
    let after = domain.stats();
    assert_eq!(
        after.grace_periods, before.grace_periods,
        "no grace period was waited for"
    );
    assert_eq!(
        after.registrations, before.registrations,
        "nothing deferred"
    );
}

#[test]
fn teardown_does_not_wait_for_readers_of_another_owner() {
    let domain = Domain::new();
    let (a_objects, a_drops) = counted(50);
    let (b_objects, b_drops) = counted(50);
    let a = User::new(&domain, a_objects);
    let b = User::new(&domain, b_objects);
    let (entered_tx, entered_rx) = mpsc::channel();
    let (leave_tx, leave_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let b = &b;
        s.spawn(move || {
            let read = b.read(); // a reader of B, in the same domain
            entered_tx.send(()).unwrap();
            leave_rx.recv().unwrap();
            assert_eq!(read.len(), 50, "B's data is intact");
        });
        entered_rx.recv().unwrap();
        drop(a); // A's teardown must not wait for B's reader
        assert_eq!(a_drops.load(SeqCst), 50);
        assert_eq!(b_drops.load(SeqCst), 0);
        leave_tx.send(()).unwrap();
    });
    drop(b);
    assert_eq!(b_drops.load(SeqCst), 50);
}

#[test]
fn holders_upgrade_only_while_a_user_lives() {
    let domain = Domain::new();
    let (objects, drops) = counted(10);
    let mm = User::new(&domain, objects);
    let grab = mm.holder();
    let grab2 = grab.clone();
    assert!(!grab.is_torn_down());
    let user = grab.upgrade().expect("a user is alive");
    assert_eq!(user.read().len(), 10);
    drop(mm);
    assert_eq!(drops.load(SeqCst), 0, "the upgraded user keeps the data");
    drop(user);
    assert_eq!(drops.load(SeqCst), 10);
    assert!(grab.is_torn_down());
    assert!(grab.upgrade().is_none());
    assert!(
        grab2.upgrade().is_none(),
        "fails for good, from every holder"
    );
    drop(grab);
    drop(grab2); // frees the allocation (Miri checks it)
}

#[test]
fn the_last_holder_may_outlive_every_user_and_free_the_memory() {
    let domain = Domain::new();
    let (objects, drops) = counted(3);
    let grab = {
        let mm = User::new(&domain, objects);
        mm.holder()
    };
    assert_eq!(drops.load(SeqCst), 3);
    assert!(grab.upgrade().is_none());
    thread::spawn(move || drop(grab)).join().unwrap();
}

#[test]
fn exclusive_access_only_for_the_only_user() {
    let domain = Domain::new();
    let mut mm = User::new(&domain, vec![1_u32]);
    mm.exclusive().expect("the only user").push(2);
    let other = mm.clone();
    assert!(mm.exclusive().is_none());
    let grab = mm.holder();
    drop(other);
    {
        let mut ex = mm.exclusive().expect("the only user again");
        ex.push(3);
        assert!(!grab.is_torn_down(), "exclusive access is not a teardown");
    }
    assert_eq!(*mm.read(), [1, 2, 3]);
    let user = grab.upgrade().expect("released: upgrades work again");
    assert_eq!(user.users(), 2);
}

#[test]
fn an_upgrade_racing_with_exclusive_access_waits_for_it() {
    let domain = Domain::new();
    let mut mm = User::new(&domain, 0_u64);
    let grab = mm.holder();
    let upgraded = AtomicBool::new(false);
    let start = Barrier::new(2);
    thread::scope(|s| {
        let mut ex = mm.exclusive().expect("the only user");
        s.spawn(|| {
            start.wait();
            let user = grab.upgrade().expect("the owner is alive");
            upgraded.store(true, SeqCst);
            assert_eq!(*user.read(), 42, "the upgrade sees what exclusive wrote");
        });
        start.wait();
        thread::sleep(Duration::from_millis(20));
        assert!(
            !upgraded.load(SeqCst),
            "an upgrade completed while exclusive access was held"
        );
        *ex = 42;
        drop(ex);
    });
    assert!(upgraded.load(SeqCst));
}

#[test]
fn users_cross_threads_and_the_last_one_anywhere_tears_down() {
    let domain = Domain::new();
    let (objects, drops) = counted(64);
    let mm = User::new(&domain, objects);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let user = mm.clone();
            thread::spawn(move || {
                for _ in 0..100 {
                    let read = user.read();
                    assert_eq!(read.len(), 64);
                }
                user
            })
        })
        .collect();
    drop(mm);
    let users: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(drops.load(SeqCst), 0);
    let last = thread::spawn(move || drop(users));
    last.join().unwrap();
    assert_eq!(drops.load(SeqCst), 64);
}

#[test]
fn an_owner_outlives_its_domain_handle() {
    let (objects, drops) = counted(5);
    let mm = {
        let domain = Domain::new();
        User::new(&domain, objects)
    }; // the owner holds its own handle to the domain
    assert_eq!(mm.read().len(), 5);
    drop(mm);
    assert_eq!(drops.load(SeqCst), 5);
}
