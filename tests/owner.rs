//! Owners through the public API: user and holder counts, reads bounded by a
//! user handle, exclusive access, and direct teardown by the last user.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use ownrcu::{Domain, User};

mod common;

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

// ----- slots, retirement through the owner, teardown of pending objects ------

use ownrcu::Slot;

fn slots(n: usize, drops: &Arc<AtomicUsize>) -> Vec<Slot<Counted>> {
    (0..n)
        .map(|_| Slot::new(Box::new(Counted(drops.clone()))))
        .collect()
}

/// Holds a read guard of `user` on another thread until the returned sender
/// is dropped, so no grace period of the domain can complete meanwhile.
fn hold_reader<'s, D: Send + Sync + 'static>(
    s: &'s thread::Scope<'s, '_>,
    user: &'s User<D>,
) -> mpsc::Sender<()> {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (leave_tx, leave_rx) = mpsc::channel::<()>();
    s.spawn(move || {
        let _read = user.read();
        entered_tx.send(()).unwrap();
        let _ = leave_rx.recv();
    });
    entered_rx.recv().unwrap();
    leave_tx
}

#[test]
fn teardown_frees_live_and_pending_objects_directly_while_another_owner_reads() {
    let domain = Domain::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let other_drops = Arc::new(AtomicUsize::new(0));
    let a = User::new(&domain, slots(100, &drops));
    let b = User::new(&domain, slots(10, &other_drops));
    thread::scope(|s| {
        let leave = hold_reader(s, &b); // a reader of ANOTHER owner, same domain
                                        // Replace half of A's objects: the old ones wait for a grace period
                                        // that B's reader holds up.
        let mut batch = a.batch();
        for slot in a.read().iter().take(50) {
            batch.extend(slot.replace(Some(Box::new(Counted(drops.clone()))), &a));
        }
        batch.drain();
        a.read()[50].take(&a).unwrap().retire();
        let stats = a.stats();
        assert_eq!((stats.retired, stats.pending), (51, 51));
        assert_eq!(drops.load(SeqCst), 0, "nothing freed under a live reader");
        let grace_periods = domain.stats().grace_periods;
        drop(a); // the last user: 150 created, every one freed right here
        assert_eq!(drops.load(SeqCst), 150, "every object A ever had is freed");
        assert_eq!(
            domain.stats().grace_periods,
            grace_periods,
            "no grace period was waited for"
        );
        assert_eq!(other_drops.load(SeqCst), 0, "B's objects are untouched");
        drop(leave);
    });
    assert_eq!(
        b.read()
            .iter()
            .filter(|s| s.load(&b.read()).is_some())
            .count(),
        10
    );
    drop(b);
    assert_eq!(other_drops.load(SeqCst), 10);
}

#[test]
fn retired_objects_wait_for_readers_then_a_barrier_frees_them() {
    let domain = Domain::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let mm = User::new(&domain, slots(4, &drops));
    thread::scope(|s| {
        let leave = hold_reader(s, &mm);
        let mut batch = mm.batch();
        for slot in mm.read().iter() {
            batch.extend(slot.take(&mm));
        }
        assert_eq!(batch.len(), 4);
        batch.drain();
        assert_eq!(
            drops.load(SeqCst),
            0,
            "a reader that may hold them is running"
        );
        drop(leave);
    });
    mm.barrier();
    assert_eq!(drops.load(SeqCst), 4);
    let stats = mm.stats();
    assert_eq!(stats.freed_after_grace_period, 4);
    assert_eq!(stats.freed_directly, 0);
    assert_eq!(
        (stats.batches, stats.registrations, stats.pending),
        (1, 1, 0)
    );
}

#[test]
fn exclusive_access_frees_pending_objects_directly() {
    let domain = Domain::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut mm = User::new(&domain, slots(3, &drops));
    for slot in mm.read().iter() {
        slot.take(&mm).unwrap().retire();
    }
    mm.exclusive().expect("the only user").free_pending();
    assert_eq!(drops.load(SeqCst), 3);
    assert_eq!(mm.stats().freed_directly, 3);
}

#[test]
#[should_panic(expected = "does not belong to")]
fn a_slot_used_through_another_owner_panics() {
    let domain = Domain::new();
    let a = User::new(&domain, Slot::new(Box::new(1_u32)));
    let b = User::new(&domain, ());
    let read = a.read();
    assert_eq!(read.load(&read), Some(&1)); // binds the slot to A
    let _ = read.replace(Some(Box::new(2)), &b); // through B: refused
}

/// `User::barrier` waits for frees in progress on other threads: another
/// user keeps retiring through the owner, so its `retire` keeps freeing the
/// completed units it finds; a slow object retired just before the barrier
/// may be in that thread's hands when the barrier looks, and must still be
/// freed when the barrier returns.
#[test]
fn user_barrier_waits_for_a_free_in_progress_on_another_thread() {
    /// Sets its flag when its destructor has finished; a slow one sleeps first.
    struct Flagged(Arc<AtomicBool>, bool);
    impl Drop for Flagged {
        fn drop(&mut self) {
            if self.1 {
                thread::sleep(Duration::from_millis(2));
            }
            self.0.store(true, SeqCst);
        }
    }
    let rounds = if cfg!(miri) { 3 } else { 50 };
    let domain = Domain::new();
    let mm = User::new(&domain, [Slot::<Flagged>::empty(), Slot::empty()]);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let other = mm.clone();
        let stop = &stop;
        s.spawn(move || {
            while !stop.load(SeqCst) {
                let new = Box::new(Flagged(Arc::default(), false));
                if let Some(old) = other[0].replace(Some(new), &other) {
                    old.retire();
                }
            }
        });
        // Stops the other user also if an assertion below fails.
        let _stop = scopeguard_stop(stop);
        for round in 0..rounds {
            let freed = Arc::new(AtomicBool::new(false));
            drop(mm[1].replace(Some(Box::new(Flagged(freed.clone(), true))), &mm));
            mm[1].take(&mm).unwrap().retire();
            thread::sleep(Duration::from_millis(1));
            mm.barrier();
            assert!(freed.load(SeqCst), "round {round}: barrier returned early");
        }
    });
}

/// Sets `stop` when dropped, also while unwinding.
fn scopeguard_stop(stop: &AtomicBool) -> impl Drop + '_ {
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    Stop(stop)
}

/// `User::barrier` from a destructor the same owner is running would wait
/// for itself: it panics with a message instead.
#[test]
fn user_barrier_from_a_destructor_of_the_same_owner_panics() {
    struct Reentrant(User<Slot<Reentrant>>);
    impl Drop for Reentrant {
        fn drop(&mut self) {
            self.0.barrier();
        }
    }
    // Lazy: no grace period starts at the retirement, so no amortized free
    // runs the destructor there; the barrier does.
    let domain = common::quiet();
    let mm = User::new(&domain, Slot::empty());
    assert!(mm
        .replace(Some(Box::new(Reentrant(mm.clone()))), &mm)
        .is_none());
    mm.take(&mm).unwrap().retire();
    let payload = std::panic::catch_unwind(AssertUnwindSafe(|| mm.barrier())).unwrap_err();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or_default();
    assert!(
        message.contains("barrier() called from a destructor"),
        "{message}"
    );
    assert_eq!(mm.users(), 1, "the destructor's handle was dropped too");
    mm.barrier(); // usable afterwards
}

/// A guard from another domain: the slot belongs to an owner of domain X;
/// a read guard of an owner of domain Y would not hold off X's grace
/// periods, so loading the slot under it is refused with a message.
#[test]
#[should_panic(expected = "does not belong to")]
fn a_slot_loaded_under_a_guard_of_another_domain_panics() {
    let (x, y) = (Domain::new(), Domain::new());
    let a = User::new(&x, Slot::new(Box::new(1_u32)));
    let b = User::new(&y, ());
    a.take(&a).unwrap().retire(); // binds the slot to A (domain X)
    let read_y = b.read();
    let _ = a.load(&read_y); // a guard of domain Y: refused
}

#[test]
fn unlinked_objects_are_readable_and_retired_when_dropped() {
    let domain = Domain::new();
    let mm = User::new(&domain, Slot::new(Box::new(String::from("old"))));
    let old = mm.read().replace(Some(Box::new(String::from("new"))), &mm);
    let old = old.expect("there was an object");
    assert_eq!(&*old, "old");
    drop(old); // retires it
    mm.barrier();
    assert_eq!(mm.stats().freed_after_grace_period, 1);
    assert_eq!(mm.read().load(&mm.read()).map(String::as_str), Some("new"));
}

// ----- a forgotten Exclusive -------------------------------------------------

use std::panic::catch_unwind;

/// Defect: a forgotten `Exclusive` left the user count "locked" for good.
/// Forgetting one (`mem::forget`) is safe code, and the `Exclusive` borrowed
/// the handle mutably, so once the handle is usable again it must behave
/// normally: `users()` counts handles, a clone adds one (it used to wrap the
/// count and panic with "too many user handles") and its drop removes it,
/// exclusive access is granted again, a holder's upgrade succeeds, and the
/// last user's drop tears down.
#[test]
fn a_forgotten_exclusive_leaves_the_handle_usable() {
    let domain = Domain::new();
    let (objects, drops) = counted(3);
    let mut mm = User::new(&domain, objects);
    let grab = mm.holder();
    std::mem::forget(mm.exclusive().expect("the only user"));
    assert_eq!(mm.users(), 1);
    assert_eq!(mm.read().len(), 3);
    let other = mm.clone();
    assert_eq!(mm.users(), 2, "a clone adds a user");
    assert_eq!(other.users(), 2);
    drop(other);
    assert_eq!(mm.users(), 1, "the clone's drop removes it");
    assert_eq!(drops.load(SeqCst), 0, "a user remains: nothing torn down");
    assert_eq!(
        mm.exclusive().expect("the only user again").len(),
        3,
        "exclusive access after the clone is gone"
    );
    let user = grab
        .upgrade()
        .expect("the handle was used again: upgrades work");
    assert_eq!(mm.users(), 2);
    drop(user);
    drop(mm);
    assert_eq!(drops.load(SeqCst), 3, "the last user's drop tears down");
    assert!(grab.is_torn_down());
    assert!(grab.upgrade().is_none());
}

/// Defect: cloning the handle of a forgotten `Exclusive` wrapped the user
/// count and panicked (a catchable panic, which then left the count at
/// zero with two handles alive). The clone must succeed; the original and
/// the clone are then ordinary users, and the clone, dropped last on
/// another thread, tears down.
#[test]
fn a_clone_after_a_forgotten_exclusive_does_not_panic() {
    let domain = Domain::new();
    let (objects, drops) = counted(4);
    let mut mm = User::new(&domain, objects);
    let grab = mm.holder();
    std::mem::forget(mm.exclusive().expect("the only user"));
    let other = catch_unwind(AssertUnwindSafe(|| mm.clone()))
        .expect("cloning the handle of a forgotten Exclusive panicked");
    assert_eq!(other.users(), 2);
    drop(mm); // not the last user
    assert_eq!(drops.load(SeqCst), 0, "the clone keeps the data");
    assert_eq!(other.users(), 1);
    assert!(!grab.is_torn_down());
    thread::spawn(move || drop(other)).join().unwrap();
    assert_eq!(drops.load(SeqCst), 4, "the last user's drop tears down");
    assert!(grab.is_torn_down());
    assert!(grab.upgrade().is_none());
}

/// Data for the teardown test: its own drop counter, and a slot whose
/// objects are retired through the owner.
struct Owned {
    _data: Counted,
    slot: Slot<Counted>,
}

/// Defect: the last user's drop after a forgotten `Exclusive` did not tear
/// down: the count went from "locked" to "locked minus one", so the data
/// and the objects retired through the owner leaked, and a holder could
/// even upgrade afterwards. The drop must tear down once: the data is
/// dropped exactly once, the retired object is freed, and upgrades fail at
/// once.
#[test]
fn the_last_user_drop_after_a_forgotten_exclusive_tears_down() {
    let domain = Domain::new();
    let data_drops = Arc::new(AtomicUsize::new(0));
    let object_drops = Arc::new(AtomicUsize::new(0));
    let mut mm = User::new(
        &domain,
        Owned {
            _data: Counted(data_drops.clone()),
            slot: Slot::new(Box::new(Counted(object_drops.clone()))),
        },
    );
    let grab = mm.holder();
    mm.slot.take(&mm).unwrap().retire(); // through the owner
    std::mem::forget(mm.exclusive().expect("the only user"));
    drop(mm);
    assert_eq!(
        data_drops.load(SeqCst),
        1,
        "the last user's drop after a forgotten Exclusive must drop the data once"
    );
    assert_eq!(
        object_drops.load(SeqCst),
        1,
        "the object retired through the owner is freed"
    );
    assert!(grab.is_torn_down());
    assert_eq!(grab.stats().pending, 0);
    assert!(
        grab.upgrade().is_none(),
        "torn down: an upgrade fails at once"
    );
    assert_eq!(data_drops.load(SeqCst), 1, "dropped exactly once");
}

/// Defect: after a forgotten `Exclusive`, `exclusive()` on the only handle
/// failed (the count stayed "locked", not 1). It must succeed again; once
/// that second `Exclusive` is dropped, a holder upgrades normally.
#[test]
fn exclusive_access_again_after_a_forgotten_exclusive() {
    let domain = Domain::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let mut mm = User::new(&domain, slots(2, &drops));
    let grab = mm.holder();
    mm.read()[0].take(&mm).unwrap().retire();
    std::mem::forget(mm.exclusive().expect("the only user"));
    {
        let mut ex = mm
            .exclusive()
            .expect("exclusive access to the only handle after a forgotten Exclusive");
        ex.free_pending();
    }
    assert_eq!(drops.load(SeqCst), 1, "free_pending freed the retired one");
    let user = grab.upgrade().expect("released: a holder upgrades again");
    assert_eq!(user.users(), 2);
    drop(user);
    drop(mm);
    assert_eq!(drops.load(SeqCst), 2);
    assert!(grab.upgrade().is_none());
}

/// Defect: an upgrade that found a forgotten `Exclusive` waited for a
/// release that never came (or, on the old code, failed once a clone had
/// wrapped the count). An upgrade running on another thread may wait while
/// the handle is unused, but must succeed once the handle is cloned.
#[test]
fn an_upgrade_waiting_on_a_forgotten_exclusive_succeeds_after_a_clone() {
    let domain = Domain::new();
    let (objects, drops) = counted(2);
    let mut mm = User::new(&domain, objects);
    let grab = mm.holder();
    std::mem::forget(mm.exclusive().expect("the only user"));
    let start = Barrier::new(2);
    thread::scope(|s| {
        let upgrader = s.spawn(|| {
            start.wait();
            let user = grab
                .upgrade()
                .expect("a user is alive: the upgrade must succeed");
            assert_eq!(user.read().len(), 2);
        });
        start.wait();
        thread::sleep(Duration::from_millis(5)); // usually finds it waiting
        let other = mm.clone();
        upgrader.join().unwrap();
        assert_eq!(other.users(), 2, "the upgraded handle was dropped");
    });
    drop(mm);
    assert_eq!(drops.load(SeqCst), 2);
    assert!(grab.upgrade().is_none());
}

// ----- User::barrier against another thread's amortized collect ---------------

use ownrcu::Array;
use std::sync::Mutex;

/// What every `Slow` object shares.
struct SlowShared {
    drops: AtomicUsize,
    /// Taken by the first object dropped, which signals and then naps.
    first: Mutex<Option<mpsc::Sender<()>>>,
    nap: Duration,
}

/// Counts its drops; the first one dropped signals through `first`, then
/// naps, holding up the collect that frees it.
struct Slow(Arc<SlowShared>);

impl Drop for Slow {
    fn drop(&mut self) {
        self.0.drops.fetch_add(1, SeqCst);
        let first = self.0.first.lock().unwrap().take();
        if let Some(signal) = first {
            let _ = signal.send(());
            thread::sleep(self.0.nap);
        }
    }
}

/// Defect: `User::barrier` took the grace period to wait for from the back
/// of the owner's queue. Thread A drains a unit big enough to start (and,
/// with no reader, complete) a grace period by itself, so A's `retire` runs
/// an amortized collect: it pops the unit, frees one budget of it (the
/// first destructor signals B, then naps), and pushes the rest back. B's
/// barrier, called meanwhile, found the queue empty and returned with most
/// objects still pending. A barrier must free everything retired before it
/// was called, wherever the unit is.
#[test]
fn user_barrier_waits_for_a_unit_another_threads_collect_pushes_back() {
    let n = if cfg!(miri) { 40 } else { 6000 };
    // Also under Miri: its clock is virtual, and skips ahead while every
    // thread waits; a shorter nap there ends before B is even scheduled.
    let nap = Duration::from_millis(50);
    let (signal, signalled) = mpsc::channel();
    let shared = Arc::new(SlowShared {
        drops: AtomicUsize::new(0),
        first: Mutex::new(Some(signal)),
        nap,
    });
    let objects = (0..n).map(|_| Box::new(Slow(shared.clone()))).collect();
    let domain = Domain::new();
    let mm = User::new(&domain, Array::from_vec(objects));
    thread::scope(|s| {
        let a = mm.clone();
        let shared = &shared;
        s.spawn(move || {
            let mut writer = a.write(&a);
            writer.remove(..);
            writer.commit().retire(); // one unit of n objects
                                      // If nothing was freed here, B must not wait for a signal.
            drop(shared.first.lock().unwrap().take());
        });
        // B: once A is inside its collect (or done).
        let b = mm.clone();
        let _ = signalled.recv();
        b.barrier();
        assert_eq!(
            shared.drops.load(SeqCst),
            n,
            "User::barrier returned before every object retired earlier was freed"
        );
        assert_eq!(b.stats().pending, 0);
    });
}

/// The domain's counters sum what its owners retired (`Stats::owners`; an
/// exit that made thousands of owner registrations used to show none of
/// them), and show started grace periods: a direct teardown starts none.
#[test]
fn domain_stats_sum_the_owners_and_count_started_grace_periods() {
    let domain = Domain::new();
    let mm = User::new(
        &domain,
        vec![Slot::new(Box::new(1_u32)), Slot::new(Box::new(2_u32))],
    );
    let mut batch = mm.batch();
    for slot in mm.iter() {
        batch.extend(slot.take(&mm));
    }
    batch.drain();
    let before = domain.stats();
    assert_eq!(
        (
            before.owners.retired,
            before.owners.registrations,
            before.owners.batches
        ),
        (2, 1, 1)
    );
    assert_eq!(before.retired, 0, "the domain's own counters stay its own");
    assert_eq!(before.retired_total(), 2);
    drop(mm); // the last user: frees the two directly
    let after = domain.stats();
    assert_eq!(
        after.grace_periods_started, before.grace_periods_started,
        "the teardown started no grace period"
    );
    assert_eq!(
        after.owners.freed_directly + after.owners.freed_after_grace_period,
        2
    );
    assert_eq!(after.pending_total(), 0);
}
