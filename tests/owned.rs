//! Owned read sections (`Domain::read_owned`, `OwnedGuard`): grace periods
//! wait for them wherever they are, what they loaded stays alive across
//! threads, the bounds never wait for them, and tasks polled on changing
//! threads read safely while a writer retires.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use ownrcu::{Array, Atomic, Domain, Owned, Slot, User};

mod common;

use common::{Drops, Obj};

/// A grace period started while an owned section is open waits for it,
/// also once the section has moved to another thread, and completes when
/// that thread ends it.
#[test]
fn a_grace_period_waits_for_an_owned_section_wherever_it_is() {
    let domain = Domain::new();
    let section = domain.read_owned();
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie));
    thread::scope(|s| {
        s.spawn(|| {
            assert!(!domain.poll(&cookie), "the moved section still holds it");
            drop(section);
            assert!(domain.poll(&cookie));
        });
    });
}

/// An object loaded under an owned section stays alive after the writer
/// unlinks and retires it, until the section ends, and is read on another
/// thread meanwhile; the writer's `barrier` waits for the section.
#[test]
fn what_an_owned_section_loaded_outlives_its_retirement() {
    let domain = Domain::new();
    let drops = Drops::default();
    let atomic: Arc<Atomic<Obj>> = Arc::new(Atomic::null());
    atomic.store(Owned::from(drops.obj()), &domain.read());
    let section = domain.read_owned();
    let obj: &Obj = atomic.load(section.guard()).as_ref().expect("stored");
    let (retired_tx, retired_rx) = mpsc::channel();
    let writer = {
        let (domain, drops, atomic) = (domain.clone(), drops.clone(), atomic.clone());
        thread::spawn(move || {
            drop(atomic.swap(None, &domain.read())); // retires it
            retired_tx.send(()).unwrap();
            domain.barrier(); // waits for the owned section
            assert_eq!(drops.get(), 1);
        })
    };
    retired_rx.recv().unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            obj.check();
            assert_eq!(drops.get(), 0, "freed under an owned section");
        });
    });
    drop(section);
    writer.join().unwrap();
    assert_eq!(drops.get(), 1);
}

/// Code that holds an owned section and retires past the bound does not
/// wait for the grace period that section holds up (it may be the one
/// running the section's code): the retirement goes past the bound at once
/// and is counted, where a thread outside any section would wait up to a
/// minute for it.
#[test]
fn the_bound_never_waits_for_an_owned_section() {
    let domain = Domain::builder()
        .reclaimer(false)
        .max_pending(4)
        .max_wait(Duration::from_secs(60))
        .build();
    let drops = Drops::default();
    let section = domain.read_owned();
    let mut batch = domain.batch();
    batch.extend((0..10).map(|_| drops.obj()));
    batch.drain(); // past the bound; its grace period waits for `section`
    let throttle = domain.stats().throttle;
    assert_eq!(
        (throttle.over_bound, throttle.waits, throttle.exceeded),
        (1, 0, 1)
    );
    assert_eq!(drops.get(), 0);
    drop(section);
    domain.barrier();
    assert_eq!(drops.get(), 10);
}

/// Nor does the soft bound wait for a grace period an owned section holds
/// up.
#[test]
fn the_soft_bound_never_waits_for_an_owned_section() {
    let domain = Domain::builder()
        .reclaimer(false)
        .soft_max_pending(2)
        .soft_max_wait(Duration::from_secs(60))
        .build();
    let drops = Drops::default();
    let section = domain.read_owned();
    let drain = |n| {
        let mut batch = domain.batch();
        batch.extend((0..n).map(|_| drops.obj()));
        batch.drain();
    };
    drain(4);
    domain.hurry(); // their grace period starts, held up by `section`
    drain(4); // past the soft bound, the oldest held up: no wait
    let throttle = domain.stats().throttle;
    assert_eq!((throttle.soft_waits, throttle.soft_exceeded), (0, 0));
    assert_eq!(drops.get(), 0);
    drop(section);
    domain.barrier();
    assert_eq!(drops.get(), 8);
}

/// A task cancelled while it holds an owned section (its future dropped
/// between two polls, as a timeout or `select!` does) ends the section:
/// the grace period it held up completes.
#[test]
fn a_cancelled_task_ends_its_owned_section() {
    let domain = Domain::new();
    let task = async {
        let section = domain.read_owned();
        Yield(1).await; // cancelled here
        drop(section);
    };
    let mut task = Box::pin(task);
    let waker = Waker::from(Arc::new(Noop));
    assert!(task
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie), "held up by the task's section");
    drop(task);
    assert!(domain.poll(&cookie), "the cancelled task's section ended");
}

/// `repin` ends the section for the grace periods that started before it.
#[test]
fn repin_lets_a_grace_period_complete() {
    let domain = Domain::new();
    let mut section = domain.read_owned();
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie));
    section.repin();
    assert!(domain.poll(&cookie));
    let later = domain.grace_period();
    assert!(!domain.poll(&later), "the renewed section holds later ones");
    drop(section);
    assert!(domain.poll(&later));
}

/// An owner's data read through an owned read section: the section's own
/// user handle keeps the owner alive after every other handle is gone and
/// while the section is on another thread; its slot and array load there;
/// the owner is torn down, directly, when that thread drops the section.
#[test]
fn an_owned_read_keeps_its_owner_alive_on_another_thread() {
    struct Mm {
        vma: Slot<Obj>,
        vmas: Array<Obj>,
    }
    let domain = Domain::new();
    let drops = Drops::default();
    let mm = User::new(
        &domain,
        Mm {
            vma: Slot::new(drops.obj()),
            vmas: Array::from_vec((0..3).map(|_| drops.obj()).collect()),
        },
    );
    let read = mm.read_owned();
    assert_eq!(mm.users(), 2, "the section holds a user handle");
    drop(mm);
    let teardown = thread::spawn({
        let drops = drops.clone();
        move || {
            read.vma.load(&read).expect("stored").check();
            let vmas = read.vmas.load(&read);
            assert_eq!(vmas.len(), 3);
            vmas.iter().for_each(|vma| vma.check());
            assert_eq!(drops.get(), 0, "the owner lives while the section does");
            drop(read); // the last user: torn down here
            drops.get()
        }
    });
    assert_eq!(teardown.join().unwrap(), 4, "every object freed once");
}

/// What an owned read of an owner loaded from a slot stays alive after a
/// writer replaces it and retires it through the owner, until the section
/// ends; the owner's `barrier` waits for the section.
#[test]
fn an_owned_read_holds_what_it_loaded_across_a_replacement() {
    let domain = Domain::new();
    let drops = Drops::default();
    let mm = User::new(&domain, Slot::new(drops.obj()));
    let read = mm.read_owned();
    let old: &Obj = read.load(&read).expect("stored");
    let (retired_tx, retired_rx) = mpsc::channel();
    let writer = thread::spawn({
        let (mm, drops) = (mm.clone(), drops.clone());
        move || {
            mm.replace(Some(drops.obj()), &mm).expect("stored").retire();
            retired_tx.send(()).unwrap();
            mm.barrier(); // waits for the owned read
            assert_eq!(drops.get(), 1, "the replaced object freed after the read");
        }
    });
    retired_rx.recv().unwrap();
    old.check();
    assert_eq!(drops.get(), 0, "freed under an owned read");
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie), "the owned read holds grace periods");
    drop(read);
    writer.join().unwrap();
    assert!(domain.poll(&cookie));
    drop(mm);
    assert_eq!(drops.get(), 2);
}

/// A waker that does nothing: the test's executor polls every task again.
struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

/// Returns `Pending` `times` times before it completes, so its task is
/// requeued and polled again, often on another thread.
struct Yield(u32);

impl Future for Yield {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        Poll::Pending
    }
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Tasks, each holding an owned section across several `.await`s and
/// checking what it loaded after each, are polled by several threads from
/// one queue (so they change threads between polls), while a writer swaps
/// the shared object and retires the old one. No task sees a freed object;
/// every retired object is freed exactly once.
#[test]
fn tasks_moving_between_threads_read_safely_while_a_writer_retires() {
    const POLLERS: usize = 3;
    let (tasks, swaps): (usize, usize) = if cfg!(miri) { (8, 20) } else { (2_000, 20_000) };
    let domain = Domain::new();
    let drops = Drops::default();
    let atomic: Arc<Atomic<Obj>> = Arc::new(Atomic::null());
    atomic.store(Owned::from(drops.obj()), &domain.read());
    let queue: Mutex<VecDeque<Task>> = Mutex::new(
        (0..tasks)
            .map(|i| {
                let (domain, atomic) = (domain.clone(), atomic.clone());
                Box::pin(async move {
                    let section = domain.read_owned();
                    let obj: &Obj = atomic.load(section.guard()).as_ref().expect("never null");
                    for _ in 0..4 {
                        obj.check();
                        Yield(i as u32 % 3 + 1).await;
                    }
                    obj.check();
                }) as Task
            })
            .collect(),
    );
    let finished = AtomicUsize::new(0);
    thread::scope(|s| {
        let writer = s.spawn(|| {
            for _ in 0..swaps {
                let guard = domain.read();
                drop(atomic.swap(Owned::from(drops.obj()), &guard)); // retires
            }
        });
        let pollers: Vec<_> = (0..POLLERS)
            .map(|_| {
                s.spawn(|| {
                    let waker = Waker::from(Arc::new(Noop));
                    let mut cx = Context::from_waker(&waker);
                    loop {
                        let task = queue.lock().unwrap().pop_front();
                        let Some(mut task) = task else {
                            if finished.load(SeqCst) == tasks {
                                return;
                            }
                            thread::yield_now();
                            continue;
                        };
                        if task.as_mut().poll(&mut cx).is_pending() {
                            queue.lock().unwrap().push_back(task);
                        } else {
                            finished.fetch_add(1, SeqCst);
                        }
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        for poller in pollers {
            poller.join().unwrap();
        }
    });
    domain.barrier();
    assert_eq!(drops.get(), swaps, "every retired object freed once");
    drop(Arc::into_inner(atomic).expect("the tasks are gone"));
    assert_eq!(drops.get(), swaps + 1);
}
