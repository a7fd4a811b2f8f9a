//! Backpressure: a retirement that leaves its domain (or its owner) past the
//! bound starts a grace period, frees what is complete, waits a bounded time
//! for its grace period (3 rounds under loom, which has no clock) and frees
//! again. Against a reader still holding one of its objects, and a
//! concurrent `barrier`: nothing is freed early, nothing twice, nothing lost,
//! and the throttle counters tell the path taken.
//!
//! What every model here relies on (under loom, `src/rcu/machine/state.rs`): a
//! registration of one object or more starts its grace period at once
//! (`GP_OBJECTS` = 1), unless the previous one is still running. The reader
//! never drives grace periods (leaving a section is one store; its thread's
//! exit hands over no bag), so in the two-thread models only the writer
//! completes them.

use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc as StdArc;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicPtr;
use loom::sync::atomic::Ordering::{AcqRel, Acquire};
use loom::sync::Arc;
use loom::thread;
use ownrcu::{Domain, Slot, Throttle, User};

use crate::common::{check, read_side, Objects, Shared, Tracked, THREE_THREADS, TWO_THREADS};

/// How many executions ended the throttled retirement each way (counted in
/// schedule order, outside the model), so a model can show it explored the
/// wait that runs out as well as the one that succeeds.
#[derive(Default)]
struct Outcomes {
    /// Freed inline (step 2, or step 3 after a successful wait).
    freed: StdAtomicUsize,
    /// The bounded wait ran out: went on past the bound (`exceeded`).
    exceeded: StdAtomicUsize,
    /// Returned with its objects not freed and nothing counted as exceeded:
    /// another thread (here the barrier's wait) completed the grace period
    /// between step 2's free and the check before step 3, which then returns
    /// without freeing again. Allowed by these models (the barrier frees
    /// them); reached only with 3 preemptions (`LOOM_MAX_PREEMPTIONS=3` on
    /// the barrier model: 4424 of 1.9 million executions, 5 minutes).
    left_uncounted: StdAtomicUsize,
}

impl Outcomes {
    fn record(&self, throttle: &Throttle, freed_on_return: usize) {
        let which = if throttle.exceeded > 0 {
            &self.exceeded
        } else if freed_on_return == 2 {
            &self.freed
        } else {
            &self.left_uncounted
        };
        which.fetch_add(1, SeqCst);
    }

    /// Prints the counts and, unless `LOOM_MAX_PREEMPTIONS` narrowed the
    /// search, checks that both ends of the bounded wait were explored.
    fn report(&self, name: &str) {
        let (freed, exceeded, uncounted) = (
            self.freed.load(SeqCst),
            self.exceeded.load(SeqCst),
            self.left_uncounted.load(SeqCst),
        );
        eprintln!(
            "loom model {name}: retirement freed inline in {freed}, went past the bound in \
             {exceeded}, returned unfreed and uncounted in {uncounted} executions"
        );
        if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            assert!(freed > 0, "{name}: never freed inline");
            assert!(exceeded > 0, "{name}: the bounded wait never ran out");
        }
    }
}

/// The throttle counters after one registration past the bound by a thread
/// that is not in a read section, not in a destructor and not unwinding, in
/// a domain where nobody else registers: true in every interleaving.
///
/// - `over_bound == 1`: exactly one registration, and it left 2 objects
///   pending with a bound of 1.
/// - `waits <= 1`: at most one bounded wait per throttled registration.
/// - `exceeded <= waits`: the early exits that count `exceeded` without a
///   wait are all ruled out (the writer may free, is in no section and no
///   destructor), and so is the skip behind a stalled grace period: that
///   needs `stalled != 0`, which only an earlier wait that ran out sets, and
///   there is no earlier throttled retirement. So `exceeded` only counts a
///   wait that ran out.
/// - `freed_inline <= 2`: only the batch's two objects exist.
fn assert_one_throttled_registration(t: &Throttle) {
    assert_eq!(t.over_bound, 1, "{t:?}");
    assert!(t.waits <= 1, "more than one bounded wait: {t:?}");
    assert!(
        t.exceeded <= t.waits,
        "went past the bound without waiting: {t:?}"
    );
    assert!(t.freed_inline <= 2, "{t:?}");
}

/// How many times a reader yields inside its section, after reading its
/// object: a slow reader. Loom runs another thread for at least one step
/// after a yield, so a reader that leaves its section within the three steps
/// the writer's three waiting rounds hand it never lets the wait run out;
/// with these yields it can, and loom explores both outcomes.
const READER_YIELDS: usize = 3;

/// The reader's side of the domain models: `read_side` (which checks the
/// object is live and reads it through loom's cell), nested in a section
/// that stays open for `READER_YIELDS` more yields, then checks the object
/// it loaded first is still not freed.
fn slow_read_side(domain: &Domain, shared: &AtomicPtr<Tracked>, candidates: &[Shared]) {
    let guard = domain.read();
    let ptr = shared.load(Acquire);
    let object = candidates
        .iter()
        .find(|c| c.ptr == ptr)
        .expect("the shared pointer holds an object the model never stored");
    read_side(domain, shared, candidates);
    for _ in 0..READER_YIELDS {
        thread::yield_now();
    }
    assert!(
        !object.is_freed(),
        "object freed while a slow reader's section held it"
    );
    drop(guard);
}

/// The writer's side: unlink `old` (swap `new` in), then retire it together
/// with `extra` in one `Batch`: two objects pending, bound 1, so the drain
/// is throttled.
fn unlink_and_drain(
    domain: &Domain,
    shared: &AtomicPtr<Tracked>,
    new: *mut Tracked,
    extra: *mut Tracked,
) {
    let old = shared.swap(new, AcqRel);
    // SAFETY: both from `Box::into_raw`, retired once; `old` is unlinked
    // (readers reach it only under guards), `extra` was never shared.
    unsafe { drain_all(domain, &[old, extra]) };
}

/// What the domain models share: three tracked objects, `first` published
/// in `shared`, and a slow reader of the domain already spawned on it
/// (`second` is what the writer swaps in, `extra` what it retires along).
struct Scene {
    objects: Objects,
    first: Shared,
    second: Shared,
    extra: Shared,
    shared: Arc<AtomicPtr<Tracked>>,
    reader: thread::JoinHandle<()>,
}

/// Spawns a thread running `slow_read_side` on `shared`, whose every value
/// is one of `candidates`.
fn spawn_slow_reader(
    domain: &Arc<Domain>,
    shared: &Arc<AtomicPtr<Tracked>>,
    candidates: Vec<Shared>,
) -> thread::JoinHandle<()> {
    let (domain, shared) = (domain.clone(), shared.clone());
    thread::spawn(move || slow_read_side(&domain, &shared, &candidates))
}

fn scene(domain: &Arc<Domain>) -> Scene {
    let objects = Objects::new();
    let first = objects.make_shared();
    let second = objects.make_shared();
    let extra = objects.make_shared();
    let shared = Arc::new(AtomicPtr::new(first.ptr));
    let reader = spawn_slow_reader(domain, &shared, vec![first.clone(), second.clone()]);
    Scene {
        objects,
        first,
        second,
        extra,
        shared,
        reader,
    }
}

/// A reader holds the shared object in its section while the writer unlinks
/// it and drains it with another object: 2 objects pending, bound 1, so the
/// drain is throttled. The registration starts the grace period itself
/// (`GP_OBJECTS` = 1), so step 1 finds it started; step 2 frees both if the
/// reader is not in an older section; otherwise step 3 waits 3 rounds,
/// yielding to the reader, and frees both if the reader left meanwhile, or
/// gives up (`exceeded`) and leaves them to the `barrier`.
///
/// Asserts, in every interleaving: the reader never sees its object freed
/// (`read_side`: the `freed` flag in schedule order, and loom's cell for
/// happens-before); the counters of `assert_one_throttled_registration`,
/// and, since the writer is the only thread that completes grace periods
/// and frees, exactly one of two outcomes: both objects freed inline by
/// the time `drain` returns (`freed_inline == 2`, `exceeded == 0`), or none
/// and the wait ran out (`freed_inline == 0`, `exceeded == waits == 1`).
/// Also `grace_periods_started == 0`: the registration already started the
/// grace period, and nothing else registers, so `start_now` never starts
/// one. Then `barrier` frees whatever is left: both objects exactly once,
/// and the statistics add up.
///
/// Bounded by `TWO_THREADS` (5): the wait that runs out needs 2 preemptions
/// of the slow reader (found from bound 2 on), so 5 leaves three to spare;
/// about 12 thousand executions, a second. Exhaustive is too slow: without
/// the reader's yields it is already 850 thousand executions, 80 s.
#[test]
fn retirement_past_the_bound_waits_for_a_reader() {
    let outcomes = StdArc::new(Outcomes::default());
    let seen = outcomes.clone();
    let name = "throttle/batch past the bound vs reader";
    check(name, TWO_THREADS, move || {
        let domain = Arc::new(Domain::builder().max_pending(1).build());
        let Scene {
            objects,
            first,
            second,
            extra,
            shared,
            reader,
        } = scene(&domain);

        unlink_and_drain(&domain, &shared, second.ptr, extra.ptr);
        let t = domain.stats().throttle;
        let freed_on_return = objects.drops();
        seen.record(&t, freed_on_return);
        assert_one_throttled_registration(&t);
        assert_eq!(t.grace_periods_started, 0, "{t:?}");
        if t.exceeded == 0 {
            assert_eq!(
                t.freed_inline, 2,
                "not past the bound, yet not freed: {t:?}"
            );
        } else {
            assert_eq!(t.freed_inline, 0, "freed after the wait ran out: {t:?}");
        }
        assert_eq!(freed_on_return as u64, t.freed_inline, "{t:?}");

        domain.barrier();
        assert!(
            first.is_freed() && extra.is_freed(),
            "barrier left an object"
        );
        assert_eq!(objects.drops(), 2);

        reader.join().unwrap();
        let stats = domain.stats();
        assert_eq!((stats.retired, stats.freed, stats.pending), (2, 2, 0));
        assert_eq!(stats.freed_by.backpressure, t.freed_inline);
        assert_eq!(stats.freed_by.backpressure + stats.freed_by.barrier, 2);
        // SAFETY: the reader has finished; `second` was never retired.
        drop(unsafe { Box::from_raw(second.ptr) });
        drop(domain);
        assert_eq!(objects.drops(), 3, "an object freed twice");
    });
    outcomes.report(name);
}

/// The same throttled drain on its own thread, racing a reader and a
/// `barrier` on the main thread. The barrier takes the `freeing` lock the
/// throttled retirement also waits for, and drives grace periods too, so
/// either may free the batch.
///
/// Asserts, in every interleaving: the reader never sees its object freed;
/// when the barrier returns, the batch is freed if its drain had returned
/// before the barrier began (counted in schedule order; conservative, the
/// registration is inside `drain`); after a second barrier both objects
/// are freed exactly once; the counters of
/// `assert_one_throttled_registration`, `grace_periods_started <= 1` (the
/// barrier can start the grace period before the registration, which then
/// waits for the next one, which `start_now` may start once the reader
/// left), and the inline and barrier frees add up to the two objects.
///
/// Three threads, so bounded by `THREE_THREADS` (2 preemptions): both ends
/// of the bounded wait, and the barrier freeing the batch before, during and
/// after the throttle, are reached within 2 (16 thousand executions, about
/// 2 s); bound 3 takes 1.9 million executions and 5 minutes (it passes, and
/// adds the `left_uncounted` outcome).
#[test]
fn throttled_retirement_races_a_barrier() {
    let outcomes = StdArc::new(Outcomes::default());
    let seen = outcomes.clone();
    let name = "throttle/batch past the bound vs reader + barrier";
    check(name, THREE_THREADS, move || {
        let domain = Arc::new(Domain::builder().max_pending(1).build());
        let Scene {
            objects,
            first,
            second,
            extra,
            shared,
            reader,
        } = scene(&domain);
        let drained = StdArc::new(StdAtomicUsize::new(0));
        let writer = {
            let (domain, shared, drained) = (domain.clone(), shared.clone(), drained.clone());
            let (objects, seen) = (objects.clone(), seen.clone());
            let (new, extra) = (second.clone(), extra.clone());
            thread::spawn(move || {
                unlink_and_drain(&domain, &shared, new.ptr, extra.ptr);
                drained.store(1, SeqCst);
                seen.record(&domain.stats().throttle, objects.drops());
            })
        };

        let before = drained.load(SeqCst);
        domain.barrier();
        if before == 1 {
            assert!(
                first.is_freed() && extra.is_freed(),
                "barrier returned before freeing a batch drained before it"
            );
        }

        writer.join().unwrap();
        reader.join().unwrap();
        domain.barrier();
        assert!(first.is_freed() && extra.is_freed(), "an object was lost");
        assert_eq!(objects.drops(), 2);
        let stats = domain.stats();
        let t = stats.throttle;
        assert_one_throttled_registration(&t);
        assert!(t.grace_periods_started <= 1, "{t:?}");
        assert_eq!((stats.retired, stats.freed, stats.pending), (2, 2, 0));
        assert_eq!(stats.freed_by.backpressure, t.freed_inline, "{stats:?}");
        assert_eq!(
            stats.freed_by.backpressure + stats.freed_by.barrier,
            2,
            "{stats:?}"
        );
        // SAFETY: the reader has finished; `second` was never retired.
        drop(unsafe { Box::from_raw(second.ptr) });
        drop(domain);
        assert_eq!(objects.drops(), 3, "an object freed twice");
    });
    outcomes.report(name);
}

/// An object in an owner's slot that loom watches (as `common::Tracked`,
/// but `Sync`, as a slot requires): readers read `value`, the destructor
/// writes it, so a free not ordered after a reader's access is reported;
/// `freed` is kept outside the object, in schedule order.
struct Obj {
    value: UnsafeCell<usize>,
    freed: StdArc<std::sync::atomic::AtomicBool>,
    drops: StdArc<StdAtomicUsize>,
}

// SAFETY (test): `value` is written only by the destructor, which must not
// race a reader; loom checks exactly that.
unsafe impl Sync for Obj {}

impl Drop for Obj {
    fn drop(&mut self) {
        self.value.with_mut(|v| {
            // SAFETY: `&mut self`, and loom checks the claim.
            unsafe { *v = 0 }
        });
        assert!(!self.freed.swap(true, SeqCst), "object freed twice");
        self.drops.fetch_add(1, SeqCst);
    }
}

/// The owner variant: a reader of the owner holds the object of slot 0 while
/// the writer takes slots 0 and 1 and retires both in one `OwnerBatch`: 2
/// objects pending in the owner, `owner_max_pending(1)`, so the drain
/// applies backpressure with the owner's queue as the throttled queue (its
/// own `freeing` lock and `collect_locked`). The reader's section blocks the
/// domain's grace period exactly as before.
///
/// Asserts what the domain model does, with the owner's counters: the
/// reader's object is never freed while it holds it; the throttle counters
/// (shared with the domain's `Stats::throttle`) show one registration past
/// the bound with the same two outcomes; the domain's own queue holds
/// nothing; the owner's barrier frees what is left, each object once.
///
/// Bounded by `TWO_THREADS`, as the domain model.
#[test]
fn owner_retirement_past_the_bound_waits_for_a_reader() {
    let outcomes = StdArc::new(Outcomes::default());
    let seen = outcomes.clone();
    let name = "throttle/owner batch past the bound vs reader";
    check(name, TWO_THREADS, move || {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let freed: Vec<_> = (0..2)
            .map(|_| StdArc::new(std::sync::atomic::AtomicBool::new(false)))
            .collect();
        let obj = |i: usize| {
            Box::new(Obj {
                value: UnsafeCell::new(crate::common::LIVE),
                freed: freed[i].clone(),
                drops: drops.clone(),
            })
        };
        let domain = Domain::builder().owner_max_pending(1).build();
        let mm = Arc::new(User::new(&domain, [Slot::new(obj(0)), Slot::new(obj(1))]));

        let reader = {
            let (mm, freed) = (mm.clone(), freed[0].clone());
            thread::spawn(move || {
                let read = mm.read();
                if let Some(o) = read[0].load(&read) {
                    assert!(!freed.load(SeqCst), "reader reached a freed object");
                    assert_eq!(o.value.with(|v| unsafe { *v }), crate::common::LIVE);
                    let _ = read[1].load(&read); // a scheduling point
                    for _ in 0..READER_YIELDS {
                        thread::yield_now();
                    }
                    assert!(
                        !freed.load(SeqCst),
                        "object freed while a reader's section held it"
                    );
                }
            })
        };

        let mut batch = mm.batch();
        batch.extend(mm[0].take(&mm));
        batch.extend(mm[1].take(&mm));
        batch.drain();
        let t = domain.stats().throttle;
        let freed_on_return = drops.load(SeqCst);
        seen.record(&t, freed_on_return);
        assert_one_throttled_registration(&t);
        assert_eq!(t.grace_periods_started, 0, "{t:?}");
        if t.exceeded == 0 {
            assert_eq!(
                t.freed_inline, 2,
                "not past the bound, yet not freed: {t:?}"
            );
        } else {
            assert_eq!(t.freed_inline, 0, "freed after the wait ran out: {t:?}");
        }
        assert_eq!(freed_on_return as u64, t.freed_inline, "{t:?}");

        mm.barrier();
        assert_eq!(drops.load(SeqCst), 2, "the owner's barrier left an object");
        reader.join().unwrap();
        let stats = domain.stats();
        assert_eq!(stats.pending, 0, "nothing in the domain's own queue");
        assert_eq!(stats.freed_by.backpressure, 0, "{stats:?}");
        let owner = mm.stats();
        assert_eq!((owner.retired, owner.pending), (2, 0), "{owner:?}");
        assert_eq!(owner.freed_after_grace_period, 2, "{owner:?}");
        drop(mm);
        assert_eq!(drops.load(SeqCst), 2, "an object freed twice");
    });
    outcomes.report(name);
}

/// How many executions ended the soft-bound model each way (schedule order,
/// outside the model).
#[derive(Default)]
struct SoftOutcomes {
    /// The grace period completed within the registration (the reader was
    /// not in an older section): freed by the amortized free, no wait.
    no_wait: StdAtomicUsize,
    /// Waited, the reader left, both objects freed after the wait.
    waited_and_freed: StdAtomicUsize,
    /// Waited, and the wait ran out: nothing freed, counted.
    ran_out: StdAtomicUsize,
}

impl SoftOutcomes {
    /// Classifies one registration past the soft bound by the throttle
    /// counters when it returned, checking each outcome against the
    /// objects it freed by then (`freed_on_return`): all `freeable` (those
    /// whose grace period the reader held up) with no wait or after a wait
    /// that ended in time, none after a wait that ran out. Also checks that
    /// the bound was never involved and that there was at most one wait.
    fn record(&self, t: &Throttle, freed_on_return: usize, freeable: usize) {
        assert_eq!(t.over_bound, 0, "{t:?}");
        assert!(t.soft_waits <= 1, "more than one soft wait: {t:?}");
        assert!(t.soft_exceeded <= t.soft_waits, "{t:?}");
        let which = match (t.soft_waits, t.soft_exceeded) {
            (0, _) => {
                assert_eq!(freed_on_return, freeable, "no wait, yet not freed: {t:?}");
                &self.no_wait
            }
            (_, 0) => {
                assert_eq!(
                    t.soft_freed, freeable as u64,
                    "waited, yet not freed: {t:?}"
                );
                assert_eq!(freed_on_return, freeable, "{t:?}");
                &self.waited_and_freed
            }
            _ => {
                assert_eq!(t.soft_freed, 0, "freed after the wait ran out: {t:?}");
                assert_eq!(freed_on_return, 0, "{t:?}");
                &self.ran_out
            }
        };
        which.fetch_add(1, SeqCst);
    }

    /// Prints the counts and, unless `LOOM_MAX_PREEMPTIONS` narrowed the
    /// search, checks that the outcomes were explored: all three, or the
    /// first two if `!can_run_out`.
    fn report(&self, name: &str, can_run_out: bool) {
        let (no_wait, waited, ran_out) = (
            self.no_wait.load(SeqCst),
            self.waited_and_freed.load(SeqCst),
            self.ran_out.load(SeqCst),
        );
        eprintln!(
            "loom model {name}: no wait in {no_wait}, waited and freed in {waited}, the wait ran \
             out in {ran_out} executions"
        );
        if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
            assert!(no_wait > 0, "{name}: never a run without a soft wait");
            assert!(waited > 0, "{name}: never freed after a soft wait");
            assert!(
                ran_out > 0 || !can_run_out,
                "{name}: the soft wait never ran out"
            );
        }
    }
}

/// The soft bound (`soft_max_pending(1)`, the bound itself far away): a
/// reader holds the shared object in a slow section while the writer
/// unlinks it and drains it with another object, 2 objects pending. The
/// registration starts the grace period at once (`GP_OBJECTS` = 1); if the
/// reader is in a section older than it, nothing is complete and the writer
/// waits at the soft bound, 3 rounds under loom, then frees what completed.
///
/// Asserts, in every interleaving: the reader never sees its object freed;
/// the bound is never involved (`over_bound == 0`); at most one soft wait;
/// exactly one of three outcomes when `drain` returns: no wait and both
/// objects freed by the amortized free; a wait that ended with the grace
/// period complete and both freed right after it (`soft_freed == 2`); or a
/// wait that ran out (`soft_exceeded == 1`) with nothing freed. Then
/// `barrier` frees whatever is left, each object exactly once, and the
/// statistics add up. Unless `LOOM_MAX_PREEMPTIONS` narrows the search,
/// checks that all three outcomes were explored.
///
/// Bounded by `TWO_THREADS`, as the bound's model.
#[test]
fn retirement_past_the_soft_bound_waits_for_a_reader() {
    let outcomes = StdArc::new(SoftOutcomes::default());
    let seen = outcomes.clone();
    let name = "throttle/batch past the soft bound vs reader";
    check(name, TWO_THREADS, move || {
        let domain = Arc::new(Domain::builder().soft_max_pending(1).build());
        let Scene {
            objects,
            first,
            second,
            extra,
            shared,
            reader,
        } = scene(&domain);

        unlink_and_drain(&domain, &shared, second.ptr, extra.ptr);
        seen.record(&domain.stats().throttle, objects.drops(), 2);

        domain.barrier();
        assert!(
            first.is_freed() && extra.is_freed(),
            "barrier left an object"
        );
        assert_eq!(objects.drops(), 2);

        reader.join().unwrap();
        let stats = domain.stats();
        assert_eq!((stats.retired, stats.freed, stats.pending), (2, 2, 0));
        assert_eq!(stats.freed_by.amortized + stats.freed_by.barrier, 2);
        // SAFETY: the reader has finished; `second` was never retired.
        drop(unsafe { Box::from_raw(second.ptr) });
        drop(domain);
        assert_eq!(objects.drops(), 3, "an object freed twice");
    });
    outcomes.report(name, true);
}

/// Drains `objects` as one batch: one registration.
///
/// # Safety
///
/// Each object comes from `Box::into_raw`, is retired only here, and is
/// unlinked (readers reach it only under guards of `domain`) or was never
/// shared.
unsafe fn drain_all(domain: &Domain, objects: &[*mut Tracked]) {
    let mut batch = domain.batch::<Tracked>();
    for &object in objects {
        // SAFETY: forwarded from the caller.
        unsafe { batch.push_raw(object) };
    }
    batch.drain();
}

/// The soft bound for a writer inside its own read section, as lock-free
/// structures retire (`soft_max_pending(2)`). Outside any section the
/// writer unlinks the shared object and retires it alone: its grace period
/// starts at once (`GP_OBJECTS` = 1), and the slow reader may hold it. Then
/// the writer opens a section, younger than that grace period, unlinks the
/// object it swapped in and retires it with another: 3 pending, so if the
/// first is still held up the writer waits for it (that grace period does
/// not wait for the writer's section), 3 rounds, and frees what completed.
///
/// Asserts, in every interleaving: the reader never sees its object freed;
/// what the writer retired inside its section is not freed while that
/// section is open (its grace period waits for the section); the bound is
/// never involved; at most one soft wait; exactly one of three outcomes
/// when the drain returns: no wait (the first object was freed before, so
/// nothing was past the soft bound), a wait that ended with the first
/// object freed right after it (`soft_freed == 1`), or a wait that ran out
/// with nothing freed. Then the section ends, `barrier` frees the rest,
/// each object exactly once, and the statistics add up. Unless
/// `LOOM_MAX_PREEMPTIONS` narrows the search, checks that all three
/// outcomes were explored.
///
/// Bounded by `TWO_THREADS`, as the other models here.
#[test]
fn writer_inside_its_section_waits_at_the_soft_bound_for_an_older_reader() {
    let outcomes = StdArc::new(SoftOutcomes::default());
    let seen = outcomes.clone();
    let name = "throttle/in-section batch past the soft bound vs older reader";
    check(name, TWO_THREADS, move || {
        let domain = Arc::new(Domain::builder().soft_max_pending(2).build());
        let objects = Objects::new();
        let [first, second, third] = [(); 3].map(|()| objects.make_shared());
        let extra = objects.make();
        let shared = Arc::new(AtomicPtr::new(first.ptr));
        let candidates = vec![first.clone(), second.clone(), third.clone()];
        let reader = spawn_slow_reader(&domain, &shared, candidates);

        let old = shared.swap(second.ptr, AcqRel);
        // SAFETY: from `Box::into_raw`, retired once, unlinked just above.
        unsafe { drain_all(&domain, &[old]) };
        let guard = domain.read();
        let old = shared.swap(third.ptr, AcqRel);
        // SAFETY: as above; `extra` was never shared.
        unsafe { drain_all(&domain, &[old, extra]) };
        let t = domain.stats().throttle;
        assert!(
            !second.is_freed(),
            "freed inside the section that retired it"
        );
        seen.record(&t, objects.drops(), 1);
        drop(guard);

        domain.barrier();
        assert!(
            first.is_freed() && second.is_freed(),
            "barrier left an object"
        );
        assert_eq!(objects.drops(), 3);
        reader.join().unwrap();
        let stats = domain.stats();
        assert_eq!((stats.retired, stats.freed, stats.pending), (3, 3, 0));
        // SAFETY: the reader has finished; `third` was never retired.
        drop(unsafe { Box::from_raw(third.ptr) });
        drop(domain);
        assert_eq!(objects.drops(), 4, "an object freed twice");
    });
    outcomes.report(name, true);
}

/// Two writers that both retire inside their read sections, past the soft
/// bound (`soft_max_pending(2)`): each opens a section, retires one object,
/// then two more. A writer waits at the soft bound only for a grace period
/// that started before its section did, which only the *other* writer's
/// older section can hold up, and that other writer never waits for it: so
/// at most one soft wait per execution, and the two never wait for each
/// other (a cycle would show as two waits that ran out).
///
/// Asserts, in every interleaving: at most one soft wait, no object freed
/// while the section that retired it is open, each object freed exactly
/// once after the `barrier`, the statistics add up. Unless
/// `LOOM_MAX_PREEMPTIONS` narrows the search, checks that some executions
/// had no wait and some a wait that freed. None has a wait that runs out:
/// the older writer never yields inside its section, and loom runs another
/// thread after each of the waiter's yields, so the older section always
/// ends within the waiter's 3 rounds (that the wait can run out is the
/// single-writer model's part).
///
/// Bounded by `TWO_THREADS`, as the other models here.
#[test]
fn two_writers_inside_their_sections_never_wait_for_each_other() {
    let outcomes = StdArc::new(SoftOutcomes::default());
    let seen = outcomes.clone();
    let name = "throttle/two in-section writers past the soft bound";
    check(name, TWO_THREADS, move || {
        let domain = Arc::new(Domain::builder().soft_max_pending(2).build());
        let objects = Arc::new(Objects::new());
        let write = |domain: &Domain, objects: &Objects| {
            let [a, b, c] = [(); 3].map(|()| objects.make_shared());
            let guard = domain.read();
            // SAFETY: made just above, never shared, retired once each.
            unsafe {
                drain_all(domain, &[a.ptr]);
                drain_all(domain, &[b.ptr, c.ptr]);
            }
            assert!(
                !b.is_freed() && !c.is_freed(),
                "freed inside the section that retired it"
            );
            drop(guard);
        };
        let other = {
            let (domain, objects) = (domain.clone(), objects.clone());
            thread::spawn(move || write(&domain, &objects))
        };
        write(&domain, &objects);
        other.join().unwrap();
        let t = domain.stats().throttle;
        assert_eq!(t.over_bound, 0, "{t:?}");
        assert!(t.soft_waits <= 1, "both writers waited: {t:?}");
        let which = match (t.soft_waits, t.soft_exceeded) {
            (0, _) => &seen.no_wait,
            (_, 0) => &seen.waited_and_freed,
            _ => &seen.ran_out,
        };
        which.fetch_add(1, SeqCst);
        domain.barrier();
        assert_eq!(objects.drops(), 6);
        let stats = domain.stats();
        assert_eq!((stats.retired, stats.freed, stats.pending), (6, 6, 0));
        drop(domain);
        assert_eq!(objects.drops(), 6, "an object freed twice");
    });
    outcomes.report(name, false);
}
