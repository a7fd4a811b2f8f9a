//! The reclaimer's doorbell (`src/rcu/reclaimer/doorbell.rs`): registrations
//! that make work visible under a lock and then ring never leave the
//! reclaimer asleep with work waiting (no lost wake-up), and only one ring
//! starts the thread; nor does a thread that pops work, frees part of it
//! and puts the rest back (src/rcu/machine/free.rs). A lost wake-up shows
//! as a loom deadlock: the reclaimer parked forever with every other thread
//! finished.

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

/// Work as the partial-free model sees it: units queued (what the
/// reclaimer's look sees) and units freed, by anyone.
#[derive(Default)]
struct Queue {
    queued: usize,
    freed: usize,
}

/// The reclaimer of the partial-free model: frees whatever is queued, and
/// sleeps until all `total` units are freed (by it or by the freer).
fn freeing_reclaimer(bell: Arc<Doorbell<JoinHandle<()>>>, queue: Arc<Mutex<Queue>>, total: usize) {
    loop {
        {
            let mut q = queue.lock().unwrap();
            q.freed += core::mem::take(&mut q.queued);
            if q.freed == total {
                return;
            }
        }
        bell.sleep(|| queue.lock().unwrap().queued > 0);
    }
}

/// The liveness bug Miri found (issue 10): a writer's amortized free pops
/// a unit of three objects, frees one (its budget) and puts the other two
/// back. While the unit was popped, the queue looked empty, so the
/// reclaimer may have looked, found nothing and parked; putting work back
/// must ring as a registration does, or the two objects wait for good
/// (here: a loom deadlock). Without the ring in `putting_back`, loom finds
/// that schedule.
#[test]
fn work_put_back_after_a_partial_free_wakes_the_reclaimer() {
    check("reclaimer/partial free puts work back", EXHAUSTIVE, || {
        const TOTAL: usize = 3;
        let bell = Arc::new(Bell::new());
        let queue = Arc::new(Mutex::new(Queue::default()));
        // The registration: three objects as one unit, starting the
        // reclaimer.
        queue.lock().unwrap().queued = TOTAL;
        let (b, q) = (bell.clone(), queue.clone());
        bell.ring(|| Some(thread::spawn(move || freeing_reclaimer(b, q, TOTAL))));
        // The writer's amortized free, on another thread: pop everything
        // queued, free one object, put the rest back, ring.
        let (b, q) = (bell.clone(), queue.clone());
        let writer = thread::spawn(move || {
            let popped = core::mem::take(&mut q.lock().unwrap().queued);
            if popped > 0 {
                let mut locked = q.lock().unwrap();
                locked.freed += 1;
                locked.queued += popped - 1;
                drop(locked);
                // putting_back: the ring (`None`: a thread is running or
                // parked, never stopped, in this model).
                b.ring(|| None);
            }
        });
        writer.join().unwrap();
        // The reclaimer exits once all three are freed; with a lost
        // wake-up it would park forever (a deadlock loom reports).
    });
}

/// A destructor's panic caught by the reclaimer while the domain's last
/// handle drops on another thread: resumed exactly once, by that drop,
/// whichever frees the object (the reclaimer's visit or the teardown) and
/// however the two interleave. The reclaimer stashes the panic before it
/// lets go of the `freeing` lock, which the teardown takes before it looks
/// for a stashed panic. (The old code stashed it after the unwinding had
/// let go of the lock; loom does not switch threads while one unwinds, so
/// it cannot reach that schedule: this model checks the protocol as it is
/// now, with no unwinding between the free and the stash.)
#[test]
fn a_panic_on_the_reclaimer_racing_the_last_handle_is_resumed_once() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("a destructor panics on the reclaimer");
        }
    }
    check("reclaimer/panic vs last handle", TWO_THREADS, || {
        // Only the reclaimer frees (and the teardown).
        let domain = ownrcu::Domain::builder()
            .retiring_threads_free(false)
            .build();
        let mut batch = domain.batch();
        batch.push(Box::new(Bomb));
        batch.drain();
        domain.synchronize(); // the bomb's grace period is over
        let visit = domain.reclaimer_visit();
        let reclaimer = thread::spawn(move || visit.visit());
        let resumed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(domain))).is_err();
        reclaimer.join().unwrap();
        assert!(resumed, "the destructor's panic was lost");
    });
}

/// Two domains whose last handles each sit in the other's garbage, freed by
/// two reclaimer runners at once: each runner's destructor drops the other
/// domain's last handle while the other runner may hold that domain's
/// `freeing` lock. A teardown inside a destructor run does not wait for the
/// lock (that wait closes the cycle, a deadlock loom reports); the runner
/// holding it frees what is left once it lets go
/// (`src/rcu/machine/teardown.rs`). Every object is dropped exactly once.
///
/// Not reached here: a teardown that lands between the holder's last look
/// at the queue and its release of `freeing` (what `free_left_by_teardown`
/// is for). Loom makes no thread switch at a lock's release, and no other
/// operation separates the two; the argument is in that function's docs.
#[test]
fn two_runners_each_dropping_the_others_last_handle() {
    /// Garbage of one domain: maybe the other domain's handle, and a
    /// counter.
    struct Holds(
        #[allow(dead_code)] Option<ownrcu::Domain>,
        StdArc<StdAtomicUsize>,
    );
    impl Drop for Holds {
        fn drop(&mut self) {
            self.1.fetch_add(1, SeqCst);
        }
    }
    check(
        "reclaimer/two runners, crossed last handles",
        TWO_THREADS,
        || {
            let drops = StdArc::new(StdAtomicUsize::new(0));
            // Only the runners free (and the teardowns).
            let build = || {
                ownrcu::Domain::builder()
                    .retiring_threads_free(false)
                    .build()
            };
            let (a, b) = (build(), build());
            for (into, other) in [(&a, &b), (&b, &a)] {
                let mut batch = into.batch();
                batch.push(Box::new(Holds(Some(other.clone()), drops.clone())));
                batch.drain();
                into.synchronize(); // complete: the visits free it
                                    // In this thread's buffer: only a teardown frees it.
                into.retire(Box::new(Holds(None, drops.clone())));
            }
            let (visit_a, visit_b) = (a.reclaimer_visit(), b.reclaimer_visit());
            drop((a, b)); // the last handles are each other's garbage now
            let runner = thread::spawn(move || visit_a.visit());
            visit_b.visit();
            drop(visit_b);
            runner.join().unwrap();
            assert_eq!(drops.load(SeqCst), 4, "an object was not freed");
        },
    );
}
