//! The reclaimer's doorbell (`src/rcu/reclaimer/doorbell.rs`): registrations
//! that make work visible under a lock and then ring never leave the
//! reclaimer asleep with work waiting (no lost wake-up), and only one ring
//! starts the thread. A lost wake-up shows as a loom deadlock: the
//! reclaimer parked forever with every other thread finished.

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering::SeqCst};
use std::sync::Arc as StdArc;

use loom::sync::{Arc, Mutex};
use loom::thread::{self, JoinHandle};
use ownrcu::Doorbell;

use crate::common::{check, EXHAUSTIVE, TWO_THREADS};

type Bell = Doorbell<JoinHandle<()>>;

/// The reclaimer: takes the work (a count behind a lock, as a domain's
/// queue is), and sleeps on the doorbell until it has taken `total`.
fn reclaimer(bell: Arc<Bell>, work: Arc<Mutex<usize>>, total: usize) {
    let mut taken = 0;
    loop {
        taken += core::mem::take(&mut *work.lock().unwrap());
        if taken == total {
            return;
        }
        bell.sleep(|| *work.lock().unwrap() > 0);
    }
}

/// A registration: makes one unit of work visible under the lock, then
/// rings, starting the reclaimer if there is none.
fn register(
    bell: &Arc<Bell>,
    work: &Arc<Mutex<usize>>,
    total: usize,
    starts: &StdArc<StdAtomicUsize>,
) {
    *work.lock().unwrap() += 1;
    let (b, w) = (bell.clone(), work.clone());
    bell.ring(|| {
        starts.fetch_add(1, SeqCst);
        Some(thread::spawn(move || reclaimer(b, w, total)))
    });
}

#[test]
fn two_registrations_never_leave_the_reclaimer_asleep() {
    check("reclaimer/two registrations", EXHAUSTIVE, || {
        let bell = Arc::new(Bell::new());
        let work = Arc::new(Mutex::new(0));
        let starts = StdArc::new(StdAtomicUsize::new(0));
        let (b, w, s) = (bell.clone(), work.clone(), starts.clone());
        let other = thread::spawn(move || register(&b, &w, 2, &s));
        register(&bell, &work, 2, &starts);
        other.join().unwrap();
        // The reclaimer takes both units and exits; had a wake-up been lost
        // it would park forever, which loom reports as a deadlock.
        assert_eq!(starts.load(SeqCst), 1, "one thread started");
    });
}

#[test]
fn a_registration_after_the_reclaimer_slept_wakes_it() {
    check("reclaimer/register, sleep, register", TWO_THREADS, || {
        let bell = Arc::new(Bell::new());
        let work = Arc::new(Mutex::new(0));
        let starts = StdArc::new(StdAtomicUsize::new(0));
        // Three registrations from one thread, the reclaimer free to take
        // each and sleep in between: every ring must find it.
        for _ in 0..3 {
            register(&bell, &work, 3, &starts);
        }
        assert_eq!(starts.load(SeqCst), 1, "one thread started");
    });
}

#[test]
fn a_ring_after_stop_starts_a_new_thread() {
    check("reclaimer/stop then ring", TWO_THREADS, || {
        let bell = Arc::new(Bell::new());
        let work = Arc::new(Mutex::new(0));
        let starts = StdArc::new(StdAtomicUsize::new(0));
        register(&bell, &work, 1, &starts);
        // Stop: take the handle; the old thread exits once it took its unit
        // (it never parks again: `sleep` returns at once when stopped).
        let old = bell.stop().expect("a thread was started");
        old.join().unwrap();
        register(&bell, &work, 1, &starts);
        assert_eq!(starts.load(SeqCst), 2, "the ring after stop started one");
    });
}
