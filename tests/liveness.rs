//! Liveness when destructors reach other domains: a destructor that waits
//! for another domain's grace period must never make a retirement wait
//! without a bound for that domain's readers.
//!
//! A hang is a failure here, never a hung `cargo test`: each scenario runs
//! on its own threads and the test waits for it with a minute's timeout
//! (only a deadlock reaches it; its duration is never the verdict).

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ownrcu::Domain;

mod common;

use common::Drops;

/// Runs `scenario` on another thread; fails if it has not returned within
/// a minute (a deadlock), resumes its panic if it panicked.
fn within_a_minute(what: &str, scenario: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let runner = thread::spawn(move || {
        scenario();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(runner.join().expect_err("it panicked"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock: {what}"),
    }
}

/// An object of domain `a` whose destructor announces itself and then
/// waits for a grace period of domain `b`.
struct WaitsForB {
    b: Domain,
    entered: mpsc::Sender<()>,
    drops: Drops,
}

impl Drop for WaitsForB {
    fn drop(&mut self) {
        self.drops.add();
        let _ = self.entered.send(());
        self.b.synchronize();
    }
}

/// Domain `a` (bound 64, short waits, no reclaimer) with a `WaitsForB`
/// queued, not freed yet (a reader of `a` held its grace period up while
/// it was registered, so the registration's own free could not run it).
fn a_with_a_destructor_waiting_for(b: &Domain, drops: &Drops) -> (Domain, mpsc::Receiver<()>) {
    let a = Domain::builder()
        .reclaimer(false)
        .max_pending(64)
        .max_wait(Duration::from_millis(10))
        .build();
    let (entered, entered_rx) = mpsc::channel();
    let (leave, reader) = common::stalled_reader(&a);
    let mut batch = a.batch();
    batch.push(Box::new(WaitsForB {
        b: b.clone(),
        entered,
        drops: drops.clone(),
    }));
    batch.drain();
    drop(leave);
    reader.join().unwrap();
    assert_eq!(drops.get(), 0, "freed too early for the test");
    (a, entered_rx)
}

/// Runs `a.barrier()` on a new thread; returns once that thread is inside
/// the destructor, waiting for `b`'s grace period (and holding `a`'s
/// freeing lock).
fn free_into_the_destructor(a: &Domain, entered: mpsc::Receiver<()>) -> thread::JoinHandle<()> {
    let a2 = a.clone();
    let freer = thread::spawn(move || a2.barrier());
    entered.recv().unwrap();
    freer
}

/// The case: a thread that holds a read guard of `b` drains a batch
/// of 100 into `a` (bound 64) while another thread (here in `a.barrier()`;
/// `collect` or the reclaimer alike) runs an `a` destructor that waits for
/// `b`'s grace period, which that guard holds up. The drain
/// must not wait for the freer (it would wait for itself).
#[test]
fn a_drain_past_the_bound_inside_another_domains_section_does_not_wait_for_its_freer() {
    within_a_minute("drainer in b's section, a's freer waiting for b", || {
        let b = Domain::builder().reclaimer(false).build();
        let drops = Drops::default();
        let (a, entered) = a_with_a_destructor_waiting_for(&b, &drops);
        let guard = b.read();
        let freer = free_into_the_destructor(&a, entered);
        let mut batch = a.batch();
        batch.extend((0..100).map(|_| drops.obj()));
        batch.drain(); // past the bound; the freer waits for our guard
        assert!(a.stats().throttle.over_bound > 0, "{:?}", a.stats());
        drop(guard);
        freer.join().unwrap();
        a.barrier();
        assert_eq!(drops.get(), 101);
    });
}

/// The same with the guard of `b` on a third thread: a retiring thread in
/// no section waits for the freer at most `max_wait`, then goes on.
#[test]
fn a_drain_past_the_bound_waits_for_a_stuck_freer_at_most_max_wait() {
    within_a_minute("drainer in no section, a's freer waiting for b", || {
        let b = Domain::builder().reclaimer(false).build();
        let drops = Drops::default();
        let (a, entered) = a_with_a_destructor_waiting_for(&b, &drops);
        let (leave, reader) = common::stalled_reader(&b);
        let freer = free_into_the_destructor(&a, entered);
        let mut batch = a.batch();
        batch.extend((0..100).map(|_| drops.obj()));
        batch.drain(); // past the bound; the freer waits for the reader
        assert!(a.stats().throttle.over_bound > 0, "{:?}", a.stats());
        drop(leave);
        reader.join().unwrap();
        freer.join().unwrap();
        a.barrier();
        assert_eq!(drops.get(), 101);
    });
}

/// The message of a panic payload.
fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default()
}

/// A destructor of `a` that calls `b.barrier()` could close a cycle with a
/// destructor of `b` calling `a.barrier()` on another thread: both would
/// wait for each other's run. So a barrier from any destructor panics, on
/// one thread and with no other thread involved: deterministic. The run
/// that called the destructor frees every other object and resumes it.
#[test]
fn a_barrier_of_another_domain_from_a_destructor_panics_at_once() {
    within_a_minute("a barrier from a destructor", || {
        let (a, b) = (common::quiet(), common::quiet());
        let drops = Drops::default();
        b.retire(drops.obj());
        a.retire(drops.obj());
        let b2 = b.clone();
        a.defer(move || b2.barrier());
        a.retire(drops.obj());
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.barrier()))
            .expect_err("the barrier in the destructor panics");
        assert!(
            message(&*payload).contains("barrier() called from a destructor"),
            "{}",
            message(&*payload)
        );
        assert_eq!(drops.get(), 2, "a's other objects were freed");
        b.barrier(); // both domains still work
        a.barrier();
        assert_eq!(drops.get(), 3);
    });
}

/// The cycle itself, which can no longer form: a destructor of `a` and one
/// of `b`, on two threads, each calling the other domain's barrier. Each
/// panics at once and its run goes on; nothing hangs.
#[test]
fn two_destructors_calling_each_others_barriers_do_not_hang() {
    within_a_minute("crossed barriers in destructors", || {
        let (a, b) = (common::quiet(), common::quiet());
        let (a2, b2) = (a.clone(), b.clone());
        a.defer(move || b2.barrier());
        b.defer(move || a2.barrier());
        let (a3, b3) = (a.clone(), b.clone());
        let t1 = thread::spawn(move || std::panic::catch_unwind(|| a3.barrier()).is_err());
        let t2 = thread::spawn(move || std::panic::catch_unwind(|| b3.barrier()).is_err());
        assert!(
            t1.join().unwrap(),
            "a's barrier resumed the destructor's panic"
        );
        assert!(
            t2.join().unwrap(),
            "b's barrier resumed the destructor's panic"
        );
    });
}

/// A free run frees what was complete when it began, never what completes
/// while it frees: here every object's destructor registers a successor
/// and waits for its grace period, so a run that chased completed work
/// would free the whole chain (and, with writers that retire as fast as
/// it frees, never end, keeping a `barrier` waiting for its lock). Each
/// `collect` frees exactly one link of the chain.
#[test]
fn a_free_run_does_not_chase_grace_periods_that_complete_meanwhile() {
    /// Registers the next link (unless the chain is complete) and waits
    /// for its grace period.
    struct Link {
        domain: Domain,
        left: usize,
        drops: Drops,
    }
    impl Drop for Link {
        fn drop(&mut self) {
            self.drops.add();
            if self.left > 0 {
                let mut batch = self.domain.batch();
                batch.push(Box::new(Link {
                    domain: self.domain.clone(),
                    left: self.left - 1,
                    drops: self.drops.clone(),
                }));
                batch.drain();
                self.domain.synchronize();
            }
        }
    }
    const LINKS: usize = 5;
    let drops = Drops::default();
    let domain = Domain::builder()
        .reclaimer(false)
        .retiring_threads_free(false)
        .build();
    let mut batch = domain.batch();
    batch.push(Box::new(Link {
        domain: domain.clone(),
        left: LINKS - 1,
        drops: drops.clone(),
    }));
    batch.drain();
    domain.synchronize();
    for freed in 1..=LINKS {
        assert_eq!(domain.collect(), 1, "one link per collect");
        assert_eq!(drops.get(), freed);
    }
    assert_eq!(domain.collect(), 0);
    assert_eq!(domain.stats().pending_total(), 0);
}
