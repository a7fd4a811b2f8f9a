//! Behaviour of the public API: guards, retirement of every kind of object,
//! batches, barriers across threads, thread exit (and thread-local
//! destructors), teardown, independent domains, grace-period cookies, who
//! runs destructors, misuse panics, statistics and the global domain.
//!
//! Every test that counts destructors uses its own counters, so tests can
//! run in parallel (the global-domain tests included: a barrier frees
//! everything retired before it, whoever retired it).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use ownrcu::{Batch, Domain, Stats};

mod common;

/// Objects retired in the larger tests (small under Miri, which is slow).
const N: usize = if cfg!(miri) { 24 } else { 3000 };
/// Fewer objects than any thread buffer holds (Miri's buffers hold 4).
const FEW: usize = 3;

/// A shared destructor counter.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Counter {
    fn new() -> Self {
        Self::default()
    }

    fn get(&self) -> usize {
        self.0.load(SeqCst)
    }

    fn obj(&self) -> Box<Counted> {
        Box::new(Counted(self.0.clone()))
    }
}

/// Adds one to its counter when dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// A trait for unsized retirement (`Box<dyn Shape + Send>`).
trait Shape {
    fn weight(&self) -> usize;
}

/// One counted field.
struct Small(#[allow(dead_code)] Counted);

/// Two counted fields and some bulk: a different size and destructor.
struct Large {
    _a: Counted,
    _b: Counted,
    _bulk: [u64; 16],
}

impl Shape for Small {
    fn weight(&self) -> usize {
        1
    }
}

impl Shape for Large {
    fn weight(&self) -> usize {
        2
    }
}

/// A zero-sized type with a destructor: `Box::into_raw` gives a dangling
/// (never allocated) pointer that must still be "freed" exactly once.
struct Zst;

static ZST_DROPS: AtomicUsize = AtomicUsize::new(0);

impl Drop for Zst {
    fn drop(&mut self) {
        ZST_DROPS.fetch_add(1, SeqCst);
    }
}

/// Blocks until told to go on (takes the receiver, so a scoped thread owns
/// it).
fn park(rx: mpsc::Receiver<()>) {
    rx.recv().unwrap();
}

/// Raises a stop flag when dropped, on unwinding too, so helper threads that
/// loop on it end and a failing assertion cannot hang a scope.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Runs `f` and returns whether it panicked.
fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

// ----- guards ---------------------------------------------------------------

#[test]
fn read_guards_nest() {
    let d = Domain::new();
    let outer = d.read();
    let inner = d.read();
    drop(d.read());
    let cookie = d.grace_period();
    drop(inner);
    // Still inside the outer section, which began before the cookie: its
    // grace period cannot complete, and waiting for one is refused.
    assert!(!d.poll(&cookie));
    assert!(panics(|| d.synchronize()));
    assert!(panics(|| d.barrier()));
    assert!(panics(|| d.wait(&cookie)));
    assert!(!d.poll(&cookie));
    drop(outer);
    d.wait(&cookie);
    assert!(d.poll(&cookie));
    d.synchronize();
    d.barrier();
}

#[test]
fn guard_sections_are_per_domain_and_may_end_out_of_order() {
    let a = Domain::new();
    let b = Domain::new();
    let ga = a.read();
    let gb = b.read();
    assert!(std::ptr::eq(ga.domain(), &a));
    assert!(std::ptr::eq(gb.domain(), &b));
    drop(ga); // not the last guard taken
    a.synchronize(); // no longer in a section of `a`
    a.barrier();
    assert!(panics(|| b.synchronize()));
    let cb = b.grace_period();
    assert!(!b.poll(&cb));
    drop(gb);
    b.wait(&cb);
    b.synchronize();
}

#[test]
fn retired_objects_outlive_a_reader_that_started_before_them() {
    let d = Domain::new();
    let c = Counter::new();
    let ran = Arc::new(AtomicBool::new(false));
    let barrier_done = AtomicBool::new(false);
    let (entered_tx, entered_rx) = mpsc::channel();
    thread::scope(|s| {
        // Inside the scope: a failing assertion drops the sender, which
        // releases the parked thread instead of hanging the scope.
        let (leave_tx, leave_rx) = mpsc::channel::<()>();
        s.spawn(|| {
            let _guard = d.read();
            entered_tx.send(()).unwrap();
            park(leave_rx);
        });
        entered_rx.recv().unwrap();
        // Everything below is retired while the reader is inside.
        d.retire(c.obj());
        let mut batch = d.batch();
        batch.extend((0..FEW).map(|_| c.obj()));
        batch.drain();
        let flag = ran.clone();
        d.defer(move || flag.store(true, SeqCst));
        let barrier = s.spawn(|| {
            d.barrier();
            barrier_done.store(true, SeqCst);
        });
        // Give a broken barrier the chance to free too early.
        thread::sleep(Duration::from_millis(20));
        assert_eq!(c.get(), 0, "freed while a reader could still see it");
        assert!(!ran.load(SeqCst), "a deferred closure ran too early");
        assert!(
            !barrier_done.load(SeqCst),
            "barrier did not wait for the reader"
        );
        leave_tx.send(()).unwrap();
        barrier.join().unwrap();
        assert_eq!(c.get(), 1 + FEW);
        assert!(ran.load(SeqCst));
    });
}

// ----- retiring -------------------------------------------------------------

#[test]
fn retire_sized_runs_exactly_once_after_barrier() {
    let d = Domain::new();
    let c = Counter::new();
    for _ in 0..N {
        d.retire(c.obj());
    }
    d.barrier();
    assert_eq!(c.get(), N);
    let s = d.stats();
    assert_eq!((s.retired, s.freed, s.pending), (N as u64, N as u64, 0));
    d.barrier();
    d.synchronize();
    drop(d);
    assert_eq!(c.get(), N);
}

#[test]
fn retire_unsized_and_mixed_types_run_exactly_once() {
    let d = Domain::new();
    let c = Counter::new();
    let zst_before = ZST_DROPS.load(SeqCst);
    let mut expected = 0;
    let mut objects = 0_u64;
    let mut zsts = 0;
    // Alternate between many distinct types, so consecutive retirements
    // rarely share a destructor: this exercises the buffers' type runs.
    for i in 0..N / 4 {
        let small: Box<dyn Shape + Send> = Box::new(Small(*c.obj()));
        let large: Box<dyn Shape + Send> = Box::new(Large {
            _a: *c.obj(),
            _b: *c.obj(),
            _bulk: [i as u64; 16],
        });
        expected += small.weight() + large.weight();
        d.retire(small);
        d.retire(large);
        let slice: Box<[Counted]> = (0..i % 4).map(|_| *c.obj()).collect();
        expected += slice.len();
        d.retire(slice);
        d.retire(format!("object {i}").into_boxed_str());
        d.retire(String::new().into_boxed_str()); // empty: no allocation
        d.retire(vec![i as u64; i % 3].into_boxed_slice());
        d.retire(Box::new(Zst));
        d.retire(Box::new(Zst) as Box<dyn Send>);
        zsts += 2;
        d.retire(c.obj());
        expected += 1;
        objects += 9;
    }
    d.barrier();
    assert_eq!(c.get(), expected);
    assert_eq!(ZST_DROPS.load(SeqCst) - zst_before, zsts);
    let s = d.stats();
    assert_eq!((s.retired, s.freed, s.pending), (objects, objects, 0));
    drop(d);
    assert_eq!(c.get(), expected);
    assert_eq!(ZST_DROPS.load(SeqCst) - zst_before, zsts);
}

#[test]
fn retire_raw_frees_as_a_box() {
    let d = Domain::new();
    let c = Counter::new();
    for _ in 0..FEW {
        let ptr = Box::into_raw(c.obj());
        // SAFETY: from `Box::into_raw`, never published, retired once.
        unsafe { d.retire_raw(ptr) };
        let ptr: *mut [Counted] = Box::into_raw(vec![*c.obj(), *c.obj()].into_boxed_slice());
        // SAFETY: as above.
        unsafe { d.retire_raw(ptr) };
    }
    d.barrier();
    assert_eq!(c.get(), 3 * FEW);
    assert_eq!(d.stats().freed, 2 * FEW as u64);
}

#[test]
fn defer_runs_each_closure_exactly_once() {
    let d = Domain::new();
    let runs = Counter::new();
    let captured = Counter::new();
    for _ in 0..N {
        let runs = runs.0.clone();
        let keep = captured.obj();
        d.defer(move || {
            runs.fetch_add(1, SeqCst);
            drop(keep);
        });
    }
    // A closure that is dropped by running it, capturing a boxed value.
    let held = captured.obj();
    d.defer(move || drop(held));
    d.barrier();
    assert_eq!(runs.get(), N);
    assert_eq!(captured.get(), N + 1);
    d.barrier();
    drop(d);
    assert_eq!(runs.get(), N);
    assert_eq!(captured.get(), N + 1);
}

#[test]
fn a_destructor_may_use_and_retire_into_its_own_domain() {
    let d = Domain::new();
    let c = Counter::new();
    let handle = d.clone();
    let obj = c.obj();
    d.defer(move || {
        // Runs under the domain's freeing lock, on the barrier's thread.
        drop(handle.read());
        handle.retire(obj);
        let mut batch = handle.batch();
        batch.push(Box::new(7_u32));
        batch.drain();
    });
    d.barrier();
    // The object retired by the closure was retired before this barrier.
    d.barrier();
    assert_eq!(c.get(), 1);
    let s = d.stats();
    assert_eq!((s.retired, s.freed, s.pending), (3, 3, 0));
}

// ----- batches --------------------------------------------------------------

#[test]
fn batch_push_extend_from_vec_push_raw() {
    let d = Domain::new();
    let c = Counter::new();

    let mut batch = d.batch();
    assert!(batch.is_empty());
    assert!(std::ptr::eq(batch.domain(), &d));
    for _ in 0..FEW {
        batch.push(c.obj());
    }
    batch.extend((0..FEW).map(|_| c.obj()));
    for _ in 0..FEW {
        // SAFETY: from `Box::into_raw`, never published, pushed once.
        unsafe { batch.push_raw(Box::into_raw(c.obj())) };
    }
    assert_eq!(batch.len(), 3 * FEW);
    assert!(!batch.is_empty());
    assert!(format!("{batch:?}").contains("len"));
    batch.drain();

    Batch::from_vec(&d, (0..N).map(|_| c.obj()).collect()).drain();

    let mut with_capacity = Batch::with_capacity(&d, 8);
    with_capacity.push(c.obj());
    with_capacity.drain();

    d.barrier();
    let total = 3 * FEW + N + 1;
    assert_eq!(c.get(), total);
    let s = d.stats();
    assert_eq!(
        (s.retired, s.freed, s.pending),
        (total as u64, total as u64, 0)
    );
    assert_eq!(s.batches, 3);
    drop(d);
    assert_eq!(c.get(), total);
}

#[test]
fn batch_of_unsized_objects() {
    let d = Domain::new();
    let c = Counter::new();
    let mut shapes: Batch<'_, dyn Shape + Send> = d.batch();
    shapes.push(Box::new(Small(*c.obj())));
    shapes.push(Box::new(Large {
        _a: *c.obj(),
        _b: *c.obj(),
        _bulk: [0; 16],
    }));
    shapes.drain();
    let mut slices: Batch<'_, [Counted]> = d.batch();
    slices.push(vec![*c.obj(), *c.obj()].into_boxed_slice());
    slices.push(Vec::new().into_boxed_slice());
    slices.drain();
    let mut strs: Batch<'_, str> = d.batch();
    strs.push("hello".into());
    strs.push("".into());
    strs.drain();
    d.barrier();
    assert_eq!(c.get(), 5);
    let s = d.stats();
    assert_eq!((s.retired, s.freed, s.batches), (6, 6, 3));
}

/// `Batch::from_vec` takes a vector of sized boxes over as it is and
/// converts one of unsized boxes element by element: both free every
/// object once, zero-sized ones included.
#[test]
fn batch_from_vec_of_sized_unsized_and_zero_sized_objects() {
    let d = Domain::new();
    let c = Counter::new();
    let shapes: Vec<Box<dyn Shape + Send>> = vec![
        Box::new(Small(*c.obj())),
        Box::new(Large {
            _a: *c.obj(),
            _b: *c.obj(),
            _bulk: [0; 16],
        }),
    ];
    Batch::from_vec(&d, shapes).drain();
    let slices = vec![
        vec![*c.obj()].into_boxed_slice(),
        Vec::new().into_boxed_slice(),
    ];
    Batch::from_vec(&d, slices).drain();
    // Spare capacity in the vector: freed with the right layout.
    let mut sized = Vec::with_capacity(2 * FEW);
    sized.extend((0..FEW).map(|_| c.obj()));
    Batch::from_vec(&d, sized).drain();
    let zero_sized: Vec<Box<ZeroSized>> = (0..FEW).map(|_| Box::new(ZeroSized)).collect();
    let zero_sized_drops = ZERO_SIZED_DROPS.load(SeqCst);
    Batch::from_vec(&d, zero_sized).drain();
    d.barrier();
    assert_eq!(c.get(), 4 + FEW);
    assert_eq!(ZERO_SIZED_DROPS.load(SeqCst) - zero_sized_drops, FEW);
    let s = d.stats();
    assert_eq!(s.retired, (4 + 2 * FEW) as u64);
    assert_eq!((s.pending, s.batches), (0, 4));
}

static ZERO_SIZED_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A zero-sized object whose destructor counts itself.
struct ZeroSized;

impl Drop for ZeroSized {
    fn drop(&mut self) {
        ZERO_SIZED_DROPS.fetch_add(1, SeqCst);
    }
}

#[test]
fn dropping_an_undrained_batch_drains_it() {
    let d = Domain::new();
    let c = Counter::new();
    {
        let mut batch = d.batch();
        batch.extend((0..FEW).map(|_| c.obj()));
    }
    assert_eq!(d.stats().batches, 1);
    d.barrier();
    assert_eq!(c.get(), FEW);
    assert_eq!(d.stats().freed, FEW as u64);
}

#[test]
fn an_empty_batch_registers_nothing() {
    let d = Domain::new();
    d.retire(Box::new(1_u8));
    d.barrier();
    let before = d.stats();
    d.batch::<u64>().drain();
    drop(d.batch::<dyn Send>());
    Batch::<u64>::from_vec(&d, Vec::new()).drain();
    Batch::<u64>::with_capacity(&d, 16).drain();
    let after = d.stats();
    assert_eq!(after.batches, before.batches);
    assert_eq!(after.registrations, before.registrations);
    assert_eq!(after.retired, before.retired);
    d.barrier();
    assert_eq!(d.stats().batches, before.batches);
}

#[test]
fn a_batch_can_move_to_another_thread() {
    let d = Domain::new();
    let c = Counter::new();
    let mut batch = d.batch();
    batch.extend((0..FEW).map(|_| c.obj()));
    thread::scope(|s| {
        s.spawn(move || batch.drain());
    });
    d.barrier();
    assert_eq!(c.get(), FEW);
}

#[test]
#[should_panic(expected = "null pointer")]
fn batch_push_raw_rejects_null() {
    let d = Domain::new();
    let mut batch = d.batch::<u64>();
    // SAFETY: documented to panic on null before doing anything.
    unsafe { batch.push_raw(std::ptr::null_mut()) };
}

// ----- who frees -------------------------------------------------------------

#[test]
fn synchronize_frees_nothing() {
    // Lazy: no grace period starts unasked, so no amortized free runs.
    let d = common::quiet();
    let c = Counter::new();
    for _ in 0..FEW {
        d.retire(c.obj());
    }
    let mut batch = d.batch();
    batch.push(c.obj());
    batch.drain();
    d.synchronize();
    d.synchronize();
    let cookie = d.grace_period();
    d.wait(&cookie);
    assert!(d.poll(&cookie));
    assert_eq!(c.get(), 0);
    assert_eq!(d.stats().freed, 0);
    d.barrier();
    assert_eq!(c.get(), FEW + 1);
}

/// An object whose destructor checks that no other destructor of its domain
/// runs at the same time, and records which thread ran it.
struct Exclusive {
    running: Arc<AtomicBool>,
    ran_on: Arc<std::sync::Mutex<Vec<thread::ThreadId>>>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        assert!(
            !self.running.swap(true, SeqCst),
            "two destructors of one domain ran at the same time"
        );
        self.ran_on.lock().unwrap().push(thread::current().id());
        for _ in 0..16 {
            std::hint::spin_loop();
        }
        thread::yield_now();
        self.running.store(false, SeqCst);
    }
}

#[test]
fn destructors_run_one_at_a_time_and_never_in_guards() {
    let d = Domain::new();
    let running = Arc::new(AtomicBool::new(false));
    let ran_on = Arc::new(std::sync::Mutex::new(Vec::new()));
    let per_thread = if cfg!(miri) { 12 } else { 3000 };
    let stop = AtomicBool::new(false);
    let exclusive = || Exclusive {
        running: running.clone(),
        ran_on: ran_on.clone(),
    };
    let reader_id = thread::scope(|s| {
        let _stop = StopOnDrop(&stop); // also on unwinding: no hang
                                       // A thread that only reads: guards never run destructors.
        let reader = s.spawn(|| {
            while !stop.load(SeqCst) {
                let _outer = d.read();
                drop(d.read());
                thread::yield_now();
            }
            thread::current().id()
        });
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let exclusive = &exclusive;
                let d = &d;
                s.spawn(move || {
                    for i in 0..per_thread {
                        match (i + t) % 7 {
                            0 => {
                                let mut batch = d.batch();
                                batch.push(Box::new(exclusive()));
                                batch.push(Box::new(exclusive()));
                                batch.drain();
                            }
                            1 if i % 50 == 1 => d.barrier(),
                            _ => d.retire(Box::new(exclusive())),
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, SeqCst);
        reader.join().unwrap()
    });
    d.barrier();
    let ran_on = ran_on.lock().unwrap();
    assert!(!ran_on.is_empty());
    assert!(!ran_on.contains(&reader_id), "a guard ran a destructor");
    let s = d.stats();
    assert_eq!(s.pending, 0);
    assert_eq!(s.freed, ran_on.len() as u64);
}

// ----- threads ----------------------------------------------------------------

#[test]
fn barrier_frees_what_an_idle_live_thread_retired() {
    for count in [FEW, N] {
        let d = Domain::new();
        let c = Counter::new();
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::scope(|s| {
            // Inside the scope: a failing assertion drops the sender, which
            // releases the parked thread instead of hanging the scope.
            let (go_tx, go_rx) = mpsc::channel::<()>();
            s.spawn(|| {
                for _ in 0..count {
                    d.retire(c.obj());
                }
                let mut batch = d.batch();
                batch.push(c.obj());
                drop(batch);
                ready_tx.send(()).unwrap();
                park(go_rx); // parked, alive, never calls in again
            });
            ready_rx.recv().unwrap();
            d.barrier();
            assert_eq!(c.get(), count + 1);
            let s = d.stats();
            assert_eq!(
                (s.retired, s.freed, s.pending),
                ((count + 1) as u64, (count + 1) as u64, 0)
            );
            go_tx.send(()).unwrap();
        });
        d.barrier();
        assert_eq!(c.get(), count + 1);
    }
}

#[test]
fn an_exiting_thread_hands_its_retirements_over() {
    let d = Domain::new();
    let c = Counter::new();
    let threads = if cfg!(miri) { 3 } else { 8 };
    for t in 0..threads {
        // One thread at a time, so records are handed from thread to thread.
        thread::scope(|s| {
            s.spawn(|| {
                drop(d.read());
                for _ in 0..(if t % 2 == 0 { FEW } else { N }) {
                    d.retire(c.obj());
                }
            });
        });
    }
    // Joined: their buffers were handed over as they exited.
    let expected: usize = (0..threads).map(|t| if t % 2 == 0 { FEW } else { N }).sum();
    d.barrier();
    assert_eq!(c.get(), expected);
    let s = d.stats();
    assert_eq!(
        (s.retired, s.freed, s.pending),
        (expected as u64, expected as u64, 0)
    );
}

#[test]
fn an_exited_threads_buffer_is_freed_by_an_amortized_drain() {
    // The exiting thread hands its buffer to the domain (no barrier needed
    // to find it): once its grace period is over, a `drain` frees it.
    let d = common::quiet();
    let c = Counter::new();
    let handle = d.clone();
    let cc = c.clone();
    thread::spawn(move || {
        for _ in 0..FEW {
            handle.retire(cc.obj());
        }
    })
    .join()
    .unwrap(); // returns once the thread has exited, its destructors run
    d.synchronize();
    assert_eq!(c.get(), 0, "synchronize frees nothing");
    let mut batch = d.batch();
    batch.push(Box::new(0_u8));
    batch.drain();
    assert_eq!(c.get(), FEW);
}

/// Uses a domain (and the global one) from a thread-local destructor, when
/// this thread's own registration may already be gone.
struct UsesDomainInExit {
    domain: Domain,
    counter: Counter,
}

impl Drop for UsesDomainInExit {
    fn drop(&mut self) {
        let d = &self.domain;
        let outer = d.read();
        drop(d.read());
        d.retire(self.counter.obj());
        drop(outer);
        let mut batch = d.batch();
        batch.push(self.counter.obj());
        batch.drain();
        d.synchronize();
        let cookie = d.grace_period();
        d.wait(&cookie);
        let global = Domain::global();
        drop(global.read());
        global.retire(self.counter.obj());
    }
}

std::thread_local! {
    static USES_DOMAIN_IN_EXIT: std::cell::RefCell<Option<UsesDomainInExit>> =
        const { std::cell::RefCell::new(None) };
}

/// `register_first`: whether the thread uses the domains before the
/// thread-local is initialized (which changes the order in which the
/// thread's locals are destroyed).
fn thread_local_destructor_uses_the_domain(register_first: bool) {
    let d = Domain::new();
    let c = Counter::new();
    let (handle, cc) = (d.clone(), c.clone());
    thread::spawn(move || {
        if register_first {
            drop(handle.read());
            drop(Domain::global().read());
            handle.retire(cc.obj());
        }
        USES_DOMAIN_IN_EXIT.with(|slot| {
            *slot.borrow_mut() = Some(UsesDomainInExit {
                domain: handle.clone(),
                counter: cc.clone(),
            });
        });
        if !register_first {
            drop(handle.read());
            drop(Domain::global().read());
            handle.retire(cc.obj());
        }
    })
    .join()
    .unwrap();
    d.barrier();
    Domain::global().barrier();
    assert_eq!(c.get(), 4);
    drop(d);
    assert_eq!(c.get(), 4);
}

#[test]
fn a_thread_local_destructor_may_use_a_domain_registered_before() {
    thread_local_destructor_uses_the_domain(true);
}

#[test]
fn a_thread_local_destructor_may_use_a_domain_registered_after() {
    thread_local_destructor_uses_the_domain(false);
}

#[test]
fn dropping_the_last_handle_frees_everything_pending() {
    let d = Domain::new();
    let c = Counter::new();
    let mut expected = 0;

    // A thread that retires through a clone and exits.
    let exited = d.clone();
    let cc = c.clone();
    thread::spawn(move || {
        for _ in 0..N {
            exited.retire(cc.obj());
        }
        exited.retire(cc.obj());
    })
    .join()
    .unwrap();
    expected += N + 1;

    // A thread that retires through a clone, drops it, and stays alive.
    let alive = d.clone();
    let cc = c.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let parked = thread::spawn(move || {
        drop(alive.read());
        for _ in 0..FEW {
            alive.retire(cc.obj());
        }
        let mut batch = alive.batch();
        batch.push(cc.obj());
        batch.drain();
        drop(alive);
        ready_tx.send(()).unwrap();
        park(go_rx);
    });
    ready_rx.recv().unwrap();
    expected += FEW + 1;

    // This thread, through a clone and through the original.
    let clone = d.clone();
    clone.retire(c.obj());
    clone.defer({
        let c = c.clone();
        move || drop(c.obj())
    });
    drop(clone);
    for _ in 0..N {
        d.retire(c.obj());
    }
    let mut batch = d.batch();
    batch.extend((0..FEW).map(|_| c.obj()));
    batch.drain();
    expected += 2 + N + FEW;

    drop(d);
    assert_eq!(c.get(), expected, "teardown must free everything at once");

    go_tx.send(()).unwrap();
    parked.join().unwrap();
    assert_eq!(c.get(), expected);
}

#[test]
fn the_last_handle_may_be_a_clone() {
    let c = Counter::new();
    let d = Domain::new();
    let clone = d.clone();
    for _ in 0..FEW {
        d.retire(c.obj());
    }
    drop(d);
    // The clone is a full handle to the same domain.
    for _ in 0..FEW {
        clone.retire(c.obj());
    }
    drop(clone.read());
    clone.barrier();
    assert_eq!(c.get(), 2 * FEW);
    clone.retire(c.obj());
    drop(clone);
    assert_eq!(c.get(), 2 * FEW + 1);
}

#[test]
fn a_domain_dropped_while_a_thread_that_used_it_runs() {
    let c = Counter::new();
    let d = Domain::new();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let handle = d.clone();
    let cc = c.clone();
    let worker = thread::spawn(move || {
        drop(handle.read());
        for _ in 0..FEW {
            handle.retire(cc.obj());
        }
        drop(handle);
        ready_tx.send(()).unwrap();
        park(go_rx);
        // The domain is gone; this thread still holds its registration.
        // It keeps working with other domains, then exits.
        let other = Domain::new();
        drop(other.read());
        for _ in 0..FEW {
            other.retire(cc.obj());
        }
        other.barrier();
        let global = Domain::global();
        drop(global.read());
        global.retire(cc.obj());
        global.barrier();
        cc.get()
    });
    ready_rx.recv().unwrap();
    d.retire(c.obj());
    drop(d);
    assert_eq!(c.get(), FEW + 1);
    go_tx.send(()).unwrap();
    let seen = worker.join().unwrap();
    assert!(seen >= 2 * FEW + 2);
    assert_eq!(c.get(), 2 * FEW + 2);
}

#[test]
fn one_thread_many_short_lived_domains() {
    let c = Counter::new();
    let rounds = if cfg!(miri) { 4 } else { 64 };
    let keep = Domain::new();
    for i in 0..rounds {
        let d = Domain::new();
        drop(d.read());
        // Switch back and forth between domains on this thread.
        keep.retire(c.obj());
        d.retire(c.obj());
        keep.retire(c.obj());
        if i % 2 == 0 {
            d.barrier();
            assert_eq!(d.stats().freed, 1);
        }
        drop(d);
    }
    keep.barrier();
    assert_eq!(c.get(), 3 * rounds);
    assert_eq!(keep.stats().freed, 2 * rounds as u64);
}

// ----- independent domains ---------------------------------------------------

#[test]
fn a_guard_on_one_domain_does_not_block_another() {
    let a = Domain::new();
    let b = Domain::new();
    let c = Counter::new();
    let (entered_tx, entered_rx) = mpsc::channel();
    let cookie_a = thread::scope(|s| {
        // Inside the scope: a failing assertion drops the sender, which
        // releases the parked thread instead of hanging the scope.
        let (leave_tx, leave_rx) = mpsc::channel::<()>();
        s.spawn(|| {
            let _guard = a.read();
            entered_tx.send(()).unwrap();
            park(leave_rx);
        });
        entered_rx.recv().unwrap();
        let cookie_a = a.grace_period();
        // `b` is unaffected by the reader of `a`: all of these return.
        b.retire(c.obj());
        b.synchronize();
        b.barrier();
        assert_eq!(c.get(), 1);
        let cookie_b = b.grace_period();
        b.wait(&cookie_b);
        assert!(b.poll(&cookie_b));
        // `a` really is blocked by its reader.
        a.retire(c.obj());
        assert!(!a.poll(&cookie_a));
        leave_tx.send(()).unwrap();
        cookie_a
    });
    a.wait(&cookie_a);
    a.barrier();
    assert_eq!(c.get(), 2);
}

#[test]
fn a_guard_on_one_domain_allows_waiting_on_another_on_the_same_thread() {
    let a = Domain::new();
    let b = Domain::new();
    let c = Counter::new();
    let _a = a.read();
    b.retire(c.obj());
    b.synchronize();
    b.barrier();
    let cookie = b.grace_period();
    b.wait(&cookie);
    assert_eq!(c.get(), 1);
    // The global domain is independent of both.
    Domain::global().synchronize();
}

#[test]
fn a_global_reader_does_not_block_a_user_domain() {
    let d = Domain::new();
    let c = Counter::new();
    let (entered_tx, entered_rx) = mpsc::channel();
    thread::scope(|s| {
        // Inside the scope: a failing assertion drops the sender, which
        // releases the parked thread instead of hanging the scope.
        let (leave_tx, leave_rx) = mpsc::channel::<()>();
        s.spawn(|| {
            let _guard = Domain::global().read();
            entered_tx.send(()).unwrap();
            park(leave_rx);
        });
        entered_rx.recv().unwrap();
        d.retire(c.obj());
        d.barrier();
        assert_eq!(c.get(), 1);
        leave_tx.send(()).unwrap();
    });
}

// ----- waiting ----------------------------------------------------------------

/// Runs `wait` on this thread while another thread holds a guard taken
/// before it; the reader raises a flag just before leaving. `wait` must not
/// return before the flag is up.
fn waits_for_an_earlier_reader(d: &Domain, wait: impl FnOnce(&Domain)) {
    let left = AtomicBool::new(false);
    let (entered_tx, entered_rx) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            let guard = d.read();
            entered_tx.send(()).unwrap();
            // Give a broken wait the chance to return early.
            thread::sleep(Duration::from_millis(20));
            left.store(true, SeqCst);
            drop(guard);
        });
        entered_rx.recv().unwrap();
        wait(d);
        assert!(
            left.load(SeqCst),
            "returned while an earlier reader was inside"
        );
    });
}

#[test]
fn synchronize_waits_for_an_earlier_reader() {
    let d = Domain::new();
    waits_for_an_earlier_reader(&d, |d| d.synchronize());
    waits_for_an_earlier_reader(Domain::global(), |d| d.synchronize());
}

/// `Stats::grace_period_latency` counts every grace period, from its
/// start: one started while a reader was inside, which the reader then
/// held for 20 ms more, took at least that long.
#[test]
fn grace_period_latency_counts_each_grace_period_from_its_start() {
    let d = Domain::builder().reclaimer(false).build();
    for _ in 0..5 {
        d.synchronize();
    }
    let before = d.stats();
    assert_eq!(before.grace_period_latency.count(), before.grace_periods);
    assert_eq!(before.grace_period_latency.count(), 5);
    let (entered_tx, entered) = mpsc::channel();
    let (leave, leave_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let d = &d;
        s.spawn(move || {
            let _guard = d.read();
            entered_tx.send(()).unwrap();
            leave_rx.recv().unwrap();
            thread::sleep(Duration::from_millis(20));
        });
        entered.recv().unwrap();
        let cookie = d.grace_period();
        assert!(!d.poll(&cookie), "started, and held by the reader");
        leave.send(()).unwrap();
        d.wait(&cookie);
    });
    let latency = d.stats().grace_period_latency;
    assert_eq!(latency.count(), d.stats().grace_periods);
    assert!(
        latency.max().unwrap() >= Duration::from_millis(20),
        "{latency:?}"
    );
    assert!(latency.quantile(1.0).unwrap() >= Duration::from_millis(20));
    assert!(latency.quantile(0.5).unwrap() < Duration::from_millis(20));
    let counted: u64 = latency.buckets().map(|(_, n)| n).sum();
    assert_eq!(counted, latency.count());
}

#[test]
fn barrier_waits_for_an_earlier_reader() {
    let d = Domain::new();
    let c = Counter::new();
    waits_for_an_earlier_reader(&d, |d| {
        d.retire(c.obj());
        d.barrier();
        assert_eq!(c.get(), 1);
    });
}

#[test]
fn wait_waits_for_an_earlier_reader() {
    let d = Domain::new();
    waits_for_an_earlier_reader(&d, |d| {
        let cookie = d.grace_period();
        d.wait(&cookie);
        assert!(d.poll(&cookie));
    });
}

#[test]
fn cookies() {
    let d = Domain::new();
    // No reader: polling alone drives the grace period to completion.
    let cookie = d.grace_period();
    let copy = cookie; // `Copy`
    while !d.poll(&cookie) {
        thread::yield_now();
    }
    assert!(d.poll(&copy));
    d.wait(&copy); // complete: returns at once
    assert!(format!("{cookie:?}").contains("GracePeriod"));

    // A synchronize after the cookie completes it.
    let cookie = d.grace_period();
    d.synchronize();
    assert!(d.poll(&cookie));

    // A completed cookie may be waited on inside a read section.
    let cookie = d.grace_period();
    d.wait(&cookie);
    {
        let _guard = d.read();
        d.wait(&cookie);
        assert!(d.poll(&cookie));
    }

    // An old cookie stays complete.
    d.barrier();
    assert!(d.poll(&copy));
}

#[test]
fn cookie_is_not_complete_while_an_earlier_reader_is_inside() {
    let d = Domain::new();
    let (entered_tx, entered_rx) = mpsc::channel();
    thread::scope(|s| {
        // Inside the scope: a failing assertion drops the sender, which
        // releases the parked thread instead of hanging the scope.
        let (leave_tx, leave_rx) = mpsc::channel::<()>();
        s.spawn(|| {
            let _guard = d.read();
            entered_tx.send(()).unwrap();
            park(leave_rx);
        });
        entered_rx.recv().unwrap();
        let cookie = d.grace_period();
        for _ in 0..10 {
            assert!(!d.poll(&cookie));
        }
        leave_tx.send(()).unwrap();
        d.wait(&cookie);
        assert!(d.poll(&cookie));
    });
}

#[test]
#[should_panic(expected = "another domain")]
fn poll_with_a_cookie_from_another_domain_panics() {
    let a = Domain::new();
    let b = Domain::new();
    let cookie = a.grace_period();
    let _ = b.poll(&cookie);
}

#[test]
#[should_panic(expected = "another domain")]
fn wait_with_a_cookie_from_another_domain_panics() {
    let a = Domain::new();
    let b = Domain::new();
    let cookie = a.grace_period();
    a.synchronize(); // complete in `a`: still refused by `b`
    b.wait(&cookie);
}

#[test]
#[should_panic(expected = "another domain")]
fn a_global_cookie_is_refused_by_a_user_domain() {
    let d = Domain::new();
    let cookie = Domain::global().grace_period();
    let _ = d.poll(&cookie);
}

#[test]
#[should_panic(expected = "another domain")]
fn a_user_cookie_is_refused_by_the_global_domain() {
    let d = Domain::new();
    let cookie = d.grace_period();
    Domain::global().wait(&cookie);
}

// ----- misuse inside a read section -------------------------------------------

#[test]
#[should_panic(expected = "read-side critical section")]
fn synchronize_inside_a_read_section_panics() {
    let d = Domain::new();
    let _guard = d.read();
    d.synchronize();
}

#[test]
#[should_panic(expected = "read-side critical section")]
fn barrier_inside_a_read_section_panics() {
    let d = Domain::new();
    d.retire(Box::new(0_u64));
    let _guard = d.read();
    d.barrier();
}

#[test]
#[should_panic(expected = "read-side critical section")]
fn barrier_inside_a_nested_read_section_panics() {
    let d = Domain::new();
    let _outer = d.read();
    drop(d.read());
    d.barrier();
}

#[test]
#[should_panic(expected = "read-side critical section")]
fn wait_for_an_incomplete_cookie_inside_a_read_section_panics() {
    let d = Domain::new();
    let _guard = d.read();
    let cookie = d.grace_period();
    d.wait(&cookie);
}

#[test]
#[should_panic(expected = "read-side critical section")]
fn global_synchronize_inside_a_global_read_section_panics() {
    let _guard = Domain::global().read();
    Domain::global().synchronize();
}

#[test]
fn a_refused_wait_leaves_the_domain_usable() {
    let d = Domain::new();
    let c = Counter::new();
    {
        let _guard = d.read();
        d.retire(c.obj());
        assert!(panics(|| d.barrier()));
        assert!(panics(|| d.synchronize()));
    }
    d.barrier();
    assert_eq!(c.get(), 1);
}

// ----- statistics -------------------------------------------------------------

#[test]
fn stats_are_exact() {
    let d = common::quiet();
    assert_eq!(d.stats(), Stats::default());

    // Few enough that no grace period is started by rationing.
    for _ in 0..FEW {
        d.retire(Box::new(0_u64));
    }
    let mut batch = d.batch();
    batch.extend((0..5).map(|i| Box::new(i as u32)));
    batch.drain();
    d.defer(|| {});
    let s = d.stats();
    assert_eq!(s.retired, FEW as u64 + 6);
    assert_eq!(s.freed, 0);
    assert_eq!(s.pending, FEW as u64 + 6);
    assert_eq!(s.batches, 1);
    assert_eq!(s.grace_periods, 0);

    d.barrier();
    let s = d.stats();
    assert_eq!(s.retired, FEW as u64 + 6);
    assert_eq!(s.freed, FEW as u64 + 6);
    assert_eq!(s.pending, 0);
    assert_eq!(s.batches, 1);
    assert_eq!(s.registrations, 2); // this thread's buffer and the batch
    assert_eq!(s.grace_periods, 1);

    // With nothing else going on, each wait takes exactly one grace period.
    d.synchronize();
    assert_eq!(d.stats().grace_periods, 2);
    d.barrier();
    assert_eq!(d.stats().grace_periods, 3);
    let cookie = d.grace_period();
    d.wait(&cookie);
    assert_eq!(d.stats().grace_periods, 4);
    assert!(d.poll(&cookie));
    assert_eq!(d.stats().grace_periods, 4);

    // Many objects from several threads, with rationed grace periods.
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..N {
                    d.retire(Box::new([0_u8; 24]));
                }
                Batch::from_vec(&d, (0..N).map(|_| Box::new([1_u8; 24])).collect()).drain();
            });
        }
    });
    d.barrier();
    let s = d.stats();
    let total = FEW as u64 + 6 + 4 * N as u64;
    assert_eq!((s.retired, s.freed, s.pending), (total, total, 0));
    assert_eq!(s.batches, 3);
    assert!(s.grace_periods >= 5);
    assert!(format!("{d:?}").contains("Domain"));
}

// ----- miscellany -------------------------------------------------------------

#[test]
fn uses_membarrier_is_callable_and_stable() {
    let first = ownrcu::uses_membarrier();
    drop(Domain::new().read());
    assert_eq!(ownrcu::uses_membarrier(), first);
    let switched_off =
        std::env::var_os("OWNRCU_NO_MEMBARRIER").is_some_and(|v| !v.is_empty() && v != "0");
    if cfg!(miri) || switched_off || !cfg!(target_os = "linux") {
        assert!(!first);
    }
}

#[test]
fn default_debug_and_guard_domain() {
    let d = Domain::default();
    let guard = d.read();
    assert!(std::ptr::eq(guard.domain(), &d));
    assert!(format!("{guard:?}").contains("Guard"));
    drop(guard);
    assert!(format!("{:?}", d.stats()).contains("retired"));
}

#[test]
fn the_global_domain_works() {
    let g = Domain::global();
    assert!(std::ptr::eq(g, Domain::global()));
    let c = Counter::new();
    {
        let outer = g.read();
        let _inner = g.read();
        assert!(std::ptr::eq(outer.domain(), g));
    }
    for _ in 0..N {
        g.retire(c.obj());
    }
    let mut batch = g.batch();
    batch.extend((0..FEW).map(|_| c.obj()));
    batch.drain();
    let cc = c.clone();
    g.defer(move || drop(cc.obj()));
    // A thread that retires into the global domain and exits.
    let cc = c.clone();
    thread::spawn(move || {
        for _ in 0..FEW {
            Domain::global().retire(cc.obj());
        }
    })
    .join()
    .unwrap();
    g.barrier();
    assert_eq!(c.get(), N + 2 * FEW + 1);
    let s = g.stats();
    assert!(s.freed >= (N + 2 * FEW + 1) as u64);
    assert!(s.batches >= 1);

    // A clone of the global handle is the global domain; dropping it tears
    // nothing down.
    let clone = g.clone();
    clone.retire(c.obj());
    drop(clone);
    g.synchronize();
    let cookie = g.grace_period();
    g.wait(&cookie);
    assert!(g.poll(&cookie));
    g.barrier();
    assert_eq!(c.get(), N + 2 * FEW + 2);
}

#[test]
fn the_global_domain_frees_what_an_idle_live_thread_retired() {
    let c = Counter::new();
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::scope(|s| {
        // Inside the scope: a failing assertion drops the sender, which
        // releases the parked thread instead of hanging the scope.
        let (go_tx, go_rx) = mpsc::channel::<()>();
        s.spawn(|| {
            for _ in 0..FEW {
                Domain::global().retire(c.obj());
            }
            ready_tx.send(()).unwrap();
            park(go_rx);
        });
        ready_rx.recv().unwrap();
        Domain::global().barrier();
        assert_eq!(c.get(), FEW);
        go_tx.send(()).unwrap();
    });
}

/// A destructor run by a domain that calls that domain's `barrier` would
/// wait for itself; it panics with a message instead, and the outer barrier
/// still frees everything and then resumes that panic.
#[test]
fn barrier_from_a_destructor_of_the_same_domain_panics() {
    let d = Domain::new();
    let inner = d.clone();
    let c = Counter::new();
    d.retire(c.obj());
    d.defer(move || inner.barrier());
    d.retire(c.obj());
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.barrier()))
        .expect_err("a nested barrier must panic");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains("barrier() called from a destructor"),
        "unexpected message: {message}"
    );
    assert_eq!(c.get(), 2, "every other object was still freed");
    d.retire(c.obj());
    d.barrier(); // the domain is still usable
    assert_eq!(c.get(), 3);
}

/// A barrier frees what was retired before it while another thread keeps
/// retiring slow objects (one registration each) and asking for grace
/// periods: it returns, with its own objects freed, and the other thread's
/// are all freed by the domain's drop. The producer retires faster than the
/// destructors run; the default bound on pending objects makes it free
/// inline past 8192, so the backlog (and the run time) stays bounded
/// whatever the machine's load (it once took 177 s without the bound).
#[test]
fn barrier_returns_while_another_thread_keeps_retiring() {
    struct Slow(Counter);
    impl Drop for Slow {
        fn drop(&mut self) {
            thread::sleep(Duration::from_micros(200));
            self.0 .0.fetch_add(1, SeqCst);
        }
    }
    let barriers = if cfg!(miri) { 1 } else { 4 };
    let d = Domain::new();
    let stop = AtomicBool::new(false);
    let (c, slow) = (Counter::new(), Counter::new());
    let produced = thread::scope(|s| {
        let producer = s.spawn(|| {
            let mut produced = 0;
            while !stop.load(SeqCst) {
                d.batch().extend([Box::new(Slow(slow.clone()))]);
                d.grace_period(); // requests a grace period, as a poller would
                produced += 1;
                thread::sleep(Duration::from_micros(20));
            }
            produced
        });
        for round in 1..=barriers {
            d.retire(c.obj());
            d.barrier();
            assert_eq!(
                c.get(),
                round,
                "the barrier freed what was retired before it"
            );
        }
        stop.store(true, SeqCst);
        producer.join().unwrap()
    });
    drop(d);
    assert_eq!(slow.get(), produced, "every slow object freed once");
}

/// A grace period interrupts no other thread while every other thread
/// stays out of its read sections: after two barriers, the others' next
/// entries fence themselves instead. A thread that enters a section
/// between every two grace periods costs one barrier each (or, without
/// membarrier, every start runs the fallback fence). The domain is lazy:
/// elsewhere, when the barrier measures dear (other processors busy), a
/// start may switch that thread to fencing its every entry, and later
/// starts skip the barrier for it too, so the count would depend on the
/// machine's load.
#[test]
#[cfg_attr(miri, ignore = "counts process-wide barriers; Miri has none")]
fn grace_periods_skip_the_barrier_while_other_threads_stay_out() {
    const ROUNDS: u64 = 20;
    let d = Domain::builder().lazy(true).build();
    let (enter, entries) = mpsc::channel::<()>();
    let (entered, done) = mpsc::channel();
    let other = {
        let d = d.clone();
        thread::spawn(move || {
            drop(d.read()); // registers
            entered.send(()).unwrap();
            for () in entries {
                drop(d.read());
                entered.send(()).unwrap();
            }
        })
    };
    done.recv().unwrap();
    d.synchronize();
    d.synchronize();
    let before = d.stats().heavy_fences;
    for _ in 0..ROUNDS {
        d.synchronize();
    }
    let idle = d.stats().heavy_fences - before;
    for _ in 0..ROUNDS {
        enter.send(()).unwrap();
        done.recv().unwrap();
        d.synchronize();
    }
    let busy = d.stats().heavy_fences - before - idle;
    drop(enter);
    other.join().unwrap();
    if ownrcu::uses_membarrier() {
        assert_eq!(idle, 0, "the other thread stayed out of its sections");
    } else {
        assert_eq!(idle, ROUNDS, "the fallback fences every start");
    }
    assert_eq!(busy, ROUNDS, "one barrier per grace period after an entry");
}
