//! `pending_peak`, `pending_peak_loaded`, `pending_peak_stuck` and
//! `slow_destructors`: how much garbage waits while one thread retires
//! without pause and another thread keeps using the same domain (or
//! collector), or stays in one section, and what it costs to keep that
//! bounded.
//!
//! # `pending_peak`
//!
//! One thread (the bench thread) retires 1 000 000 objects of 192 bytes
//! (`objects::Obj`, which counts its drops) in groups of 16, while another
//! thread enters and leaves read sections of the same domain or collector in
//! a loop for the whole timed region. The timed region ends when all
//! 1 000 000 destructors have run (each back-end is driven until they have)
//! and checks that exactly 1 000 000 ran. Functions: `ownrcu_bounded` (a
//! domain with `max_pending(10_000)`), `ownrcu_unbounded` (`unbounded()`),
//! `crossbeam_epoch`, `sdd`, `seize`; each peer uses its fastest documented
//! path for retiring 16 objects (see the comment on each function).
//!
//! Shows: the throughput (objects/s, from the median run) and the peak
//! pending garbage of each back-end under steady retirement with a busy
//! reader. Targets (issue 10): `ownrcu_bounded` peak pending ≤ 2 × its
//! bound (20 000), its throughput within 10 % of `ownrcu_unbounded`, and a
//! lower peak than every peer at equal or better throughput.
//!
//! # `pending_peak_stuck`
//!
//! One reader enters a read section (of the domain, collector or thread
//! handle) and stays in it, asleep, for the whole run, while the bench
//! thread makes and retires 1 000 000 objects of 192 bytes one by one:
//! each object is made just before its retirement, so after the reader
//! entered, as the new nodes of a structure are, and every function builds
//! it the same way, word by word in its box (`Obj::boxed`,
//! `KovanObj::boxed`, through `objects::build_in_box`, which says why).
//! The timed region is the
//! retiring alone (nothing can wait for frees that the reader holds up);
//! then the reader leaves and, untimed, every object is freed and counted.
//! Functions: `ownrcu` (`Domain::new()`, its defaults, `Domain::retire`),
//! `ownrcu_robust` (a robust domain, its defaults otherwise: each object's
//! birth read before it is made and given to `Domain::retire_born`),
//! `crossbeam_epoch` (as in `pending_peak`), `kovan` (0.2.0: `pin()`,
//! `retire` of an object that begins with kovan's `RetiredNode`, which
//! stamps its birth epoch when it is made), `seize` (as in `pending_peak`).
//!
//! Shows: the time to retire, the peak of objects retired and not freed,
//! and how many were still unfreed when the reader left (printed as
//! `still unfreed when the reader left its section`, and in the JSON map as
//! `median_unfreed_at_leave`): what a reader that never leaves costs.
//!
//! # `slow_destructors`
//!
//! One thread retires 10 000 objects of 192 bytes whose destructor sleeps
//! 200 µs, one `Batch` of 1 per object with a `grace_period()` request after
//! each (as in `tests/domain.rs`,
//! `barrier_returns_while_another_thread_keeps_retiring`), while another
//! thread calls `barrier()` in a loop. The timed region ends when all 10 000
//! destructors have run (a final `barrier()` on the retiring thread) and
//! checks that exactly 10 000 ran. Functions: `ownrcu_default`
//! (`Domain::new()`, the default bound of 8192) and `ownrcu_unbounded`.
//! 10 000 objects, more than the default bound, so the bound is actually
//! reached (with fewer objects than the bound the peak target would hold
//! trivially); destructors of one domain run one thread at a time, so one
//! run takes at least 10 000 × 200 µs = 2 s.
//!
//! Shows: the run time and peak pending when destructors are slow, so
//! freeing, not retiring, is the bottleneck. Targets (issue 10): with the
//! default bound, peak pending ≤ 2 × the bound (16 384), and run time linear
//! in the objects retired (the bench prints the run time per object, to
//! compare with the 200 µs sleep; a single size cannot show linearity by
//! itself).
//!
//! # How garbage is counted
//!
//! Identically for every back-end, and never from a library's own
//! statistics: the retiring thread publishes how many objects it has handed
//! over (`RETIRED`, stored before the hand-over), each object's destructor
//! counts itself (`objects::DROPS`), and ONE monitor thread samples
//! `RETIRED - DROPS` every 100 µs (a fixed schedule of deadlines; the timer's
//! slack makes the real period somewhat longer, and the bench prints the
//! mean period it achieved), each sample taken at one instant
//! (`pending_now`: not inflated by what is retired while the monitor is
//! preempted between two reads). The peak printed for a function is the
//! largest sample over all its runs (warm-up included).
//!
//! # Output
//!
//! Besides Criterion's medians (`<group>/<function>/new/estimates.json`),
//! each function prints to stderr
//! `<group>/<function>: peak pending N, M objects/s; ...` (throughput from
//! its median run) and each group writes a JSON map `<function> ->
//! {peak_pending, objects_per_s, median_run_ns, peaks (every run's, in run
//! order), ...}` to `target/criterion/<group>/peaks.json` (`$CRITERION_HOME`
//! or `$CARGO_TARGET_DIR/criterion` instead of `target/criterion` when set).
//! For the ownrcu functions a second line gives the domain's own counters
//! (its peak pending, backpressure events, waits at the soft bound), for
//! diagnosis only. Before the group, a probe prints how fast one thread
//! retires in groups of 16 while it also frees and while a reader holds the
//! grace period (`pending_peak probe: ...`): how fast garbage piles up
//! behind a reader held up inside its section, what the soft bound is for.
//!
//! # Set-up and timing
//!
//! Objects are allocated before each run, outside the timing
//! (`iter_custom`: each run is set up, then timed on its own); the other
//! thread and the monitor are started, and have done their first section and
//! first sample, before the timing starts; they are stopped after it ends.
//! Both groups use 10 samples and Criterion's flat sampling mode (a run is
//! long: 1 000 000 objects, or 2 s of destructors), so that the file runs in
//! about two minutes with `--warm-up-time 1 --measurement-time 3`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::mem::size_of;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use ownrcu::{Batch, Domain};

#[allow(dead_code)] // `drop_floor`: this file has no floor function
mod objects;
use objects::{boxes, check, Obj, DROPS};

mod common;

/// Objects retired per `pending_peak` run (fixed by the issue).
const N: usize = 1_000_000;
/// Objects per retirement group in `pending_peak`.
const GROUP: usize = 16;
/// The bound of `ownrcu_bounded`.
const BOUND: usize = 10_000;
/// Objects retired per `slow_destructors` run.
const SLOW_N: usize = 10_000;
/// How long each `slow_destructors` destructor sleeps.
const SLOW_DROP: Duration = Duration::from_micros(200);
/// The monitor's sampling period.
const PERIOD: Duration = Duration::from_micros(100);

/// Objects handed to the back-end so far in the current run, published by
/// the retiring thread before each hand-over.
static RETIRED: AtomicUsize = AtomicUsize::new(0);

/// Start/stop handshake with a helper thread.
#[derive(Default)]
struct Ctl {
    ready: AtomicBool,
    stop: AtomicBool,
}

impl Ctl {
    /// Runs `step` once, reports ready, then runs it until told to stop.
    fn run(&self, mut step: impl FnMut()) {
        step();
        self.ready.store(true, Release);
        while !self.stop.load(Relaxed) {
            step();
        }
    }
}

/// Raises the helpers' stop flags when dropped, so that a panicking run
/// cannot leave the scope's join hanging.
struct StopOnDrop<'a>([&'a AtomicBool; 2]);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        for flag in self.0 {
            flag.store(true, Relaxed);
        }
    }
}

/// The monitor thread: samples `RETIRED - DROPS` on a fixed schedule until
/// told to stop (one last sample after that), returning the peak and the
/// number of samples.
fn monitor(ctl: &Ctl) -> (usize, usize) {
    let (mut peak, mut samples) = (0, 0);
    let mut next = Instant::now();
    loop {
        peak = peak.max(pending_now());
        samples += 1;
        ctl.ready.store(true, Release);
        if ctl.stop.load(Relaxed) {
            return (peak, samples);
        }
        next += PERIOD;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

/// Objects retired and not yet dropped, at one instant: the retired count
/// read between two reads of the drops that agree (no drop happened in
/// between, so that count minus the drops was the pending count when it
/// was read). A monitor preempted between two plain reads would otherwise
/// add everything retired meanwhile; after 8 disagreeing tries (drops
/// going on all the time), the retired count minus the later drops, which
/// never over-counts.
fn pending_now() -> usize {
    for _ in 0..8 {
        let before = DROPS.load(Acquire);
        let retired = RETIRED.load(Acquire);
        if DROPS.load(Acquire) == before {
            return retired.saturating_sub(before);
        }
    }
    let retired = RETIRED.load(Acquire);
    retired.saturating_sub(DROPS.load(Acquire))
}

/// One timed run.
struct Run {
    time: Duration,
    peak: usize,
    samples: usize,
    /// `pending_peak_stuck` only: objects retired and not yet freed when the
    /// timing ended, while the reader was still in its section.
    unfreed: Option<usize>,
}

/// Starts `other` (the reader, or the barrier caller) and the monitor,
/// times `work(input)` on this thread, then stops both.
fn run_once<I>(input: I, other: impl Fn(&Ctl) + Sync, work: impl FnOnce(I)) -> Run {
    RETIRED.store(0, Relaxed);
    let (helper, mon) = (Ctl::default(), Ctl::default());
    thread::scope(|s| {
        let stop = StopOnDrop([&helper.stop, &mon.stop]);
        let helper_thread = s.spawn(|| other(&helper));
        let monitor_thread = s.spawn(|| monitor(&mon));
        while !(helper.ready.load(Acquire) && mon.ready.load(Acquire)) {
            assert!(
                !helper_thread.is_finished() && !monitor_thread.is_finished(),
                "a helper thread ended before the run"
            );
            thread::yield_now();
        }
        let start = Instant::now();
        work(input);
        let time = start.elapsed();
        drop(stop);
        let (peak, samples) = monitor_thread.join().unwrap();
        Run {
            time,
            peak,
            samples,
            unfreed: None,
        }
    })
}

/// What a group measured, per function, for the printout and the JSON map.
struct Report {
    group: &'static str,
    objects: usize,
    entries: Vec<(&'static str, Summary)>,
}

struct Summary {
    runs: usize,
    median: Duration,
    peak: usize,
    median_peak: usize,
    period: Duration,
    /// Every run's peak, in run order.
    peaks: Vec<usize>,
    /// The median of the runs' `unfreed`, where they have one.
    median_unfreed: Option<usize>,
}

impl Report {
    fn new(group: &'static str, objects: usize) -> Self {
        Self {
            group,
            objects,
            entries: Vec::new(),
        }
    }

    fn add(&mut self, function: &'static str, mut runs: Vec<Run>) {
        if runs.is_empty() {
            return; // filtered out
        }
        let in_order: Vec<usize> = runs.iter().map(|r| r.peak).collect();
        runs.sort_by_key(|r| r.time);
        let median = runs[runs.len() / 2].time;
        let total: Duration = runs.iter().map(|r| r.time).sum();
        let samples: usize = runs.iter().map(|r| r.samples).sum();
        let mut peaks = in_order.clone();
        peaks.sort_unstable();
        let mut unfreed: Vec<usize> = runs.iter().filter_map(|r| r.unfreed).collect();
        unfreed.sort_unstable();
        let median_unfreed = unfreed.get(unfreed.len() / 2).copied();
        let summary = Summary {
            runs: runs.len(),
            median,
            peak: *peaks.last().unwrap(),
            median_peak: peaks[peaks.len() / 2],
            period: total / samples.max(1) as u32,
            peaks: in_order,
            median_unfreed,
        };
        let rate = self.objects as f64 / median.as_secs_f64();
        eprintln!(
            "{}/{function}: peak pending {}, {rate:.0} objects/s; median run {:.1} ms \
             ({:.1} µs per object), median peak {}, {} runs, one sample per {:.0} µs",
            self.group,
            summary.peak,
            median.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e6 / self.objects as f64,
            summary.median_peak,
            summary.runs,
            summary.period.as_secs_f64() * 1e6,
        );
        if let Some(unfreed) = summary.median_unfreed {
            eprintln!(
                "  {}/{function}: still unfreed when the reader left its section: {unfreed} \
                 (median)",
                self.group
            );
        }
        self.entries.push((function, summary));
    }

    /// Writes `<criterion dir>/<group>/peaks.json`.
    fn write(&self) {
        if self.entries.is_empty() {
            return;
        }
        let mut json = String::from("{\n");
        for (i, (function, s)) in self.entries.iter().enumerate() {
            let comma = if i + 1 < self.entries.len() { "," } else { "" };
            let unfreed = s.median_unfreed.map_or(String::new(), |u| {
                format!(", \"median_unfreed_at_leave\": {u}")
            });
            let _ = writeln!(
                json,
                "  \"{function}\": {{\"peak_pending\": {}, \"median_peak_pending\": {}, \
                 \"objects_per_s\": {:.0}, \"median_run_ns\": {}, \"runs\": {}, \
                 \"objects\": {}, \"mean_sample_period_ns\": {}, \"peaks\": {:?}{unfreed}}}{comma}",
                s.peak,
                s.median_peak,
                self.objects as f64 / s.median.as_secs_f64(),
                s.median.as_nanos(),
                s.runs,
                self.objects,
                s.period.as_nanos(),
                s.peaks,
            );
        }
        json.push_str("}\n");
        common::output::write(self.group, "peaks.json", &json);
    }
}

/// Benchmarks one function: each run is set up by `setup` (untimed), then
/// `work` is timed while `other` runs on another thread and the monitor
/// samples.
fn bench<I>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    report: &mut Report,
    function: &'static str,
    mut setup: impl FnMut() -> I,
    other: impl Fn(&Ctl) + Sync,
    mut work: impl FnMut(I),
) {
    let mut runs = Vec::new();
    group.bench_function(function, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let input = setup();
                let run = run_once(input, &other, &mut work);
                total += run.time;
                runs.push(run);
            }
            total
        });
    });
    report.add(function, runs);
}

/// ownrcu's path: a `Batch` of 16 drained, then `barrier()` until all are
/// freed.
#[allow(clippy::vec_box)] // one allocation per object, as retired
fn ownrcu_churn(domain: &Domain, objects: Vec<Box<Obj>>) {
    let mut objects = objects.into_iter();
    let mut retired = 0;
    while objects.len() > 0 {
        let mut batch = Batch::with_capacity(domain, GROUP);
        batch.extend(objects.by_ref().take(GROUP));
        retired += batch.len();
        RETIRED.store(retired, Release);
        batch.drain();
    }
    domain.barrier();
    check(N);
}

/// For diagnosis only (the peaks above come from the objects' own
/// counters): what the domain's own counters say, summed over all runs.
fn ownrcu_diagnosis(group: &str, function: &str, domain: &Domain) {
    let s = domain.stats();
    let t = s.throttle;
    let l = s.grace_period_latency;
    let q = |q: f64| l.quantile(q).map_or("-".into(), |d| format!("{d:.1?}"));
    eprintln!(
        "  {group}/{function}, ownrcu's own counters over all runs: peak_pending {}, \
         grace periods {} (latency median {}, 99th {}, 99.9th {}, max {}), heavy fences {}, \
         fencing-mode switches {}, \
         throttle: over_bound {}, early grace periods {}, freed inline {}, \
         waits {}, exceeded {}; soft bound: waits {}, exceeded {}, freed {}; time waiting {:.1?}; \
         freed by: amortized {}, backpressure {}, barrier {}, collect {}, reclaimer {}, early {}",
        s.peak_pending,
        s.grace_periods,
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0),
        s.heavy_fences,
        s.fencing_mode_entered,
        t.over_bound,
        t.grace_periods_started,
        t.freed_inline,
        t.waits,
        t.exceeded,
        t.soft_waits,
        t.soft_exceeded,
        t.soft_freed,
        t.time_waiting,
        s.freed_by.amortized,
        s.freed_by.backpressure,
        s.freed_by.barrier,
        s.freed_by.collect,
        s.freed_by.reclaimer,
        s.freed_by.early,
    );
}

/// The reader of an ownrcu domain: enters and leaves read sections.
fn ownrcu_reader(domain: &Domain, ctl: &Ctl) {
    ctl.run(|| {
        let guard = domain.read();
        black_box(&guard);
        drop(guard);
    });
}

/// For the README's account of `pending_peak` (not a Criterion function):
/// how fast one thread retires `N` objects in groups of `GROUP` into an
/// unbounded domain when it also frees them (no reader: each grace period
/// completes as it starts) and when it cannot (a reader holds the first
/// grace period for the whole drain). The gap is how fast garbage piles up
/// while a reader is held up inside its section, which the soft bound
/// exists for. Three of each, printed as a range (about a second in all).
fn retire_rate_probe() {
    let rate = |held: bool| -> f64 {
        let domain = Domain::builder().unbounded().reclaimer(false).build();
        let objects = boxes(N);
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (leave, leave_rx) = std::sync::mpsc::channel::<()>();
        let rate = thread::scope(|s| {
            if held {
                let domain = &domain;
                s.spawn(move || {
                    let _guard = domain.read();
                    entered_tx.send(()).unwrap();
                    let _ = leave_rx.recv();
                });
                entered.recv().unwrap();
            }
            let start = Instant::now();
            let mut objects = objects.into_iter();
            while objects.len() > 0 {
                let mut batch = Batch::with_capacity(&domain, GROUP);
                batch.extend(objects.by_ref().take(GROUP));
                batch.drain();
            }
            let time = start.elapsed();
            drop(leave);
            N as f64 / time.as_secs_f64()
        });
        drop(domain); // frees what the held grace period kept
        check(N);
        rate
    };
    let range = |held: bool| {
        let rates: Vec<f64> = (0..3).map(|_| rate(held) / 1e6).collect();
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}-{hi:.0} M objects/s")
    };
    let freeing = range(false);
    let held = range(true);
    eprintln!(
        "pending_peak probe: one thread draining {N} objects in groups of {GROUP} into an \
         unbounded domain retires {freeing} while it frees them, {held} while a reader holds \
         the grace period (nothing freed)"
    );
}

fn pending_peak(c: &mut Criterion) {
    retire_rate_probe();
    pending_peak_group(c, "pending_peak");
}

/// `pending_peak` with one more runnable thread than the two the bench
/// runs: a busy loop at normal priority for the whole group, so that on a
/// 2-core machine the retiring thread, the reader and the monitor compete
/// with it for the cores (readers get preempted inside their sections).
fn pending_peak_loaded(c: &mut Criterion) {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Relaxed) {
                std::hint::spin_loop();
            }
        });
        // Stops the busy loop even if the group panics, so the scope's
        // join cannot hang.
        let _stop = scopeguard::guard((), |()| stop.store(true, Relaxed));
        pending_peak_group(c, "pending_peak_loaded");
    });
}

/// The `pending_peak` functions, as group `name`.
fn pending_peak_group(c: &mut Criterion, name: &'static str) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(N as u64));
    let mut report = Report::new(name, N);

    // User-created domains, made once outside the timing.
    let bounded = Domain::builder().max_pending(BOUND).build();
    bench(
        &mut group,
        &mut report,
        "ownrcu_bounded",
        || boxes(N),
        |ctl| ownrcu_reader(&bounded, ctl),
        |v| ownrcu_churn(&bounded, v),
    );
    ownrcu_diagnosis(name, "ownrcu_bounded", &bounded);
    drop(bounded);

    let unbounded = Domain::builder().unbounded().build();
    bench(
        &mut group,
        &mut report,
        "ownrcu_unbounded",
        || boxes(N),
        |ctl| ownrcu_reader(&unbounded, ctl),
        |v| ownrcu_churn(&unbounded, v),
    );
    ownrcu_diagnosis(name, "ownrcu_unbounded", &unbounded);
    drop(unbounded);

    // crossbeam-epoch at its best: a private `Collector` with a
    // `LocalHandle` registered once for the retiring thread (no
    // thread-local lookup); one `pin` per 16 `defer_destroy` calls (bags of
    // 64 deferred functions, no allocation per object; pinning collects
    // every 128 pins); then flush and re-pin until every object has been
    // dropped. The reader registers its own handle with the same collector.
    let collector = crossbeam_epoch::Collector::new();
    let handle = collector.register();
    bench(
        &mut group,
        &mut report,
        "crossbeam_epoch",
        || boxes(N),
        |ctl| {
            let reader = collector.register();
            ctl.run(|| {
                let guard = reader.pin();
                black_box(&guard);
                drop(guard);
            });
        },
        |v| {
            let mut objects = v.into_iter();
            let mut retired = 0;
            while objects.len() > 0 {
                retired += objects.len().min(GROUP);
                RETIRED.store(retired, Release);
                let guard = handle.pin();
                for object in objects.by_ref().take(GROUP) {
                    let ptr = crossbeam_epoch::Shared::from(Box::into_raw(object).cast_const());
                    // SAFETY: the object came from a `Box` (crossbeam's
                    // `Owned<T>` for a sized `T` is a `Box<T>`), is reachable
                    // by nobody else, and is destroyed once.
                    unsafe { guard.defer_destroy(ptr) };
                }
                drop(guard);
            }
            while DROPS.load(Relaxed) < N {
                handle.pin().flush();
            }
            check(N);
        },
    );
    drop(handle);
    drop(collector);

    // sdd: its retire path is dropping an `Owned<T>` (an sdd allocation with
    // sdd's intrusive header, made in set-up), which pushes it on the
    // thread's garbage list with no atomics; 16 are dropped under one
    // `Guard` (sdd rotates its garbage lists and frees the thread's own
    // garbage when guards are created and dropped). sdd has one global
    // collector (its `PrivateCollector` frees without regard to readers, a
    // teardown tool, not a retire path), so the reader's `Guard`s are of
    // that collector. Then new guards with `accelerate()` until every object
    // has been dropped.
    bench(
        &mut group,
        &mut report,
        "sdd",
        || {
            DROPS.store(0, Relaxed);
            (0..N)
                .map(|i| sdd::Owned::new(Obj::new(i)))
                .collect::<Vec<_>>()
        },
        |ctl| {
            ctl.run(|| {
                let guard = sdd::Guard::new();
                black_box(&guard);
                drop(guard);
            });
        },
        |v| {
            let mut objects = v.into_iter();
            let mut retired = 0;
            while objects.len() > 0 {
                retired += objects.len().min(GROUP);
                RETIRED.store(retired, Release);
                let guard = sdd::Guard::new();
                for object in objects.by_ref().take(GROUP) {
                    drop(object);
                }
                drop(guard);
            }
            while DROPS.load(Relaxed) < N {
                let guard = sdd::Guard::new();
                guard.accelerate();
                drop(guard);
            }
            check(N);
        },
    );

    // seize 0.5.1: a private `Collector` (default batch size), 16
    // `Collector::retire` calls with `reclaim::boxed` outside any guard (the
    // fast path: a full batch is handed to the threads active at that
    // moment, one membarrier per batch, and the last of them to leave frees
    // it; freed at once if none is active); then one guard's `flush()` at a
    // time until every object has been dropped. The reader enters and leaves
    // `LocalGuard`s of the same collector.
    let seize = seize::Collector::new();
    bench(
        &mut group,
        &mut report,
        "seize",
        || boxes(N),
        |ctl| {
            ctl.run(|| {
                let guard = seize.enter();
                black_box(&guard);
                drop(guard);
            });
        },
        |v| {
            let mut objects = v.into_iter();
            let mut retired = 0;
            while objects.len() > 0 {
                retired += objects.len().min(GROUP);
                RETIRED.store(retired, Release);
                for object in objects.by_ref().take(GROUP) {
                    // SAFETY: the object came from a `Box`, is reachable by
                    // nobody else, and is retired once.
                    unsafe { seize.retire(Box::into_raw(object), seize::reclaim::boxed) };
                }
            }
            while DROPS.load(Relaxed) < N {
                use seize::Guard as _;
                seize.enter().flush();
            }
            check(N);
        },
    );
    drop(seize);

    group.finish();
    report.write();
}

/// Objects retired and not yet freed when the last `pending_peak_stuck`
/// run's retiring ended (its reader still inside its section).
static UNFREED_AT_END: AtomicUsize = AtomicUsize::new(0);

/// The end of a `pending_peak_stuck` run's retiring: notes what is still
/// unfreed.
fn note_unfreed() {
    let dropped = DROPS.load(Acquire);
    UNFREED_AT_END.store(RETIRED.load(Acquire).saturating_sub(dropped), Relaxed);
}

/// `pending_peak_stuck`'s reader: enters a section with `enter` and stays in
/// it, asleep, until the run ends; then leaves and runs `after` (what the
/// back-end needs for a thread to give up what it holds).
fn stuck_reader<G>(ctl: &Ctl, enter: impl FnOnce() -> G, after: impl FnOnce()) {
    let guard = enter();
    ctl.ready.store(true, Release);
    while !ctl.stop.load(Relaxed) {
        thread::sleep(Duration::from_micros(200));
    }
    drop(guard);
    after();
}

/// Runs `step` until every object of the run has been dropped (untimed,
/// after the reader left); panics rather than hang if that takes a minute.
fn drain_until_freed(mut step: impl FnMut()) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while DROPS.load(Relaxed) < N {
        assert!(
            Instant::now() < deadline,
            "objects still unfreed a minute after the reader left"
        );
        step();
    }
    check(N);
}

/// Benchmarks one `pending_peak_stuck` function: `work` (timed) retires while
/// `other` holds a section; then, untimed, the reader has left and `drain`
/// frees the rest.
fn bench_stuck(
    group: &mut BenchmarkGroup<'_, WallTime>,
    report: &mut Report,
    function: &'static str,
    other: impl Fn(&Ctl) + Sync,
    mut work: impl FnMut(),
    mut drain: impl FnMut(),
) {
    let mut runs = Vec::new();
    group.bench_function(function, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                DROPS.store(0, Relaxed);
                let mut run = run_once((), &other, |()| {
                    work();
                    note_unfreed();
                });
                run.unfreed = Some(UNFREED_AT_END.load(Relaxed));
                drain();
                total += run.time;
                runs.push(run);
            }
            total
        });
    });
    report.add(function, runs);
}

/// A 192-byte object for kovan, whose `retire` needs a `RetiredNode` first
/// in a `#[repr(C)]` object (stamped with the object's birth epoch when it
/// is made); counts its drops like `Obj`.
#[repr(C)]
struct KovanObj {
    node: kovan::RetiredNode,
    payload: [u64; 19],
}

const _: () = assert!(size_of::<KovanObj>() == 192);

impl KovanObj {
    /// A boxed object numbered `i`, written in its box as `Obj::boxed`.
    #[inline]
    fn boxed(i: usize) -> Box<Self> {
        // SAFETY: the closure writes both fields (the payload's 19 words).
        unsafe {
            objects::build_in_box(|p: *mut Self| {
                std::ptr::addr_of_mut!((*p).node).write(kovan::RetiredNode::new());
                objects::fill_words(std::ptr::addr_of_mut!((*p).payload).cast(), 19, i as u64);
            })
        }
    }
}

impl Drop for KovanObj {
    fn drop(&mut self) {
        black_box(&self.payload);
        DROPS.fetch_add(1, Relaxed);
    }
}

/// One reader enters a section and never leaves it while one thread retires
/// `N` objects of 192 bytes, each made just before it is retired (so after
/// the reader entered, as a structure's new nodes are).
fn pending_peak_stuck(c: &mut Criterion) {
    let name = "pending_peak_stuck";
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(N as u64));
    let mut report = Report::new(name, N);

    // ownrcu with its defaults (a user-created domain, the default bound),
    // `Domain::retire` per object.
    let domain = Domain::new();
    bench_stuck(
        &mut group,
        &mut report,
        "ownrcu",
        |ctl| stuck_reader(ctl, || domain.read(), || ()),
        || {
            for i in 0..N {
                RETIRED.store(i + 1, Release);
                domain.retire(Obj::boxed(i));
            }
        },
        || drain_until_freed(|| domain.barrier()),
    );
    ownrcu_diagnosis(name, "ownrcu", &domain);
    drop(domain);

    // ownrcu with a robust domain (its defaults otherwise): each object's
    // birth is read just before it is made, and given back with
    // `retire_born` (its deleter frees the box).
    unsafe fn free_obj(object: *mut Obj) {
        // SAFETY: from `Box::into_raw` below, retired once.
        drop(unsafe { Box::from_raw(object) });
    }
    let domain = Domain::builder().robust(true).build();
    bench_stuck(
        &mut group,
        &mut report,
        "ownrcu_robust",
        |ctl| stuck_reader(ctl, || domain.read(), || ()),
        || {
            for i in 0..N {
                RETIRED.store(i + 1, Release);
                let birth = domain.birth();
                let object = Box::into_raw(Obj::boxed(i));
                // Never published: no reader holds it, its birth came first.
                // SAFETY: 1-5: `free_obj` frees this box once, on any thread
                // (`Obj` is `Send + 'static`), no reader; 6, 7: as just said.
                unsafe { domain.retire_born(object, free_obj, birth) };
            }
        },
        || drain_until_freed(|| domain.barrier()),
    );
    ownrcu_diagnosis(name, "ownrcu_robust", &domain);
    drop(domain);

    // crossbeam-epoch as in `pending_peak`: a private collector, a handle
    // registered once, one `pin` per 16 `defer_destroy`; the reader pins a
    // handle of its own.
    let collector = crossbeam_epoch::Collector::new();
    let handle = collector.register();
    bench_stuck(
        &mut group,
        &mut report,
        "crossbeam_epoch",
        |ctl| {
            let reader = collector.register();
            stuck_reader(ctl, || reader.pin(), || ());
        },
        || {
            let mut i = 0;
            while i < N {
                let guard = handle.pin();
                for _ in 0..GROUP.min(N - i) {
                    RETIRED.store(i + 1, Release);
                    let object = Box::into_raw(Obj::boxed(i));
                    // SAFETY: from a `Box` (crossbeam's `Owned<T>` of a sized
                    // `T` is one), reachable by nobody else, destroyed once.
                    unsafe {
                        guard.defer_destroy(crossbeam_epoch::Shared::from(object.cast_const()))
                    };
                    i += 1;
                }
                drop(guard);
            }
        },
        || drain_until_freed(|| handle.pin().flush()),
    );
    drop(handle);
    drop(collector);

    // kovan 0.2.0: `pin()` on the reader; `retire` per object (its fast
    // path: a thread-local batch, submitted every 64); the reader flushes
    // when it leaves (its slot stays active until then, kovan's docs say),
    // and the drain flushes this thread.
    bench_stuck(
        &mut group,
        &mut report,
        "kovan",
        |ctl| stuck_reader(ctl, kovan::pin, kovan::flush),
        || {
            for i in 0..N {
                RETIRED.store(i + 1, Release);
                let object = Box::into_raw(KovanObj::boxed(i));
                // SAFETY: from a `Box`, with a `RetiredNode` first in a
                // `#[repr(C)]` type as `retire` requires, reachable by
                // nobody else, retired once; `KovanObj` is `Send`.
                unsafe { kovan::retire(object) };
            }
        },
        || drain_until_freed(kovan::flush),
    );

    // seize 0.5.1 as in `pending_peak`: `Collector::retire` with
    // `reclaim::boxed` outside any guard; the reader holds a `LocalGuard`.
    let seize = seize::Collector::new();
    bench_stuck(
        &mut group,
        &mut report,
        "seize",
        |ctl| stuck_reader(ctl, || seize.enter(), || ()),
        || {
            for i in 0..N {
                RETIRED.store(i + 1, Release);
                let object = Box::into_raw(Obj::boxed(i));
                // SAFETY: from a `Box`, reachable by nobody else, retired
                // once.
                unsafe { seize.retire(object, seize::reclaim::boxed) };
            }
        },
        || {
            drain_until_freed(|| {
                use seize::Guard as _;
                seize.enter().flush();
            });
        },
    );
    drop(seize);

    group.finish();
    report.write();
}

/// A 192-byte object whose destructor sleeps, then counts itself (in
/// `Obj`'s destructor).
struct Slow(#[allow(dead_code)] Obj);

const _: () = assert!(size_of::<Slow>() == 192);

impl Drop for Slow {
    fn drop(&mut self) {
        thread::sleep(SLOW_DROP);
    }
}

/// Set-up: resets the drop counter and allocates the slow objects.
#[allow(clippy::vec_box)] // one allocation per object, as retired
fn slow_boxes() -> Vec<Box<Slow>> {
    DROPS.store(0, Relaxed);
    (0..SLOW_N).map(|i| Box::new(Slow(Obj::new(i)))).collect()
}

/// One `Batch` of 1 per object and a grace-period request after each, then
/// `barrier()` until all are freed.
#[allow(clippy::vec_box)] // one allocation per object, as retired
fn slow_churn(domain: &Domain, objects: Vec<Box<Slow>>) {
    for (i, object) in objects.into_iter().enumerate() {
        RETIRED.store(i + 1, Release);
        let mut batch = Batch::with_capacity(domain, 1);
        batch.push(object);
        batch.drain();
        let _cookie = domain.grace_period();
    }
    domain.barrier();
    check(SLOW_N);
}

fn slow_destructors(c: &mut Criterion) {
    let mut group = c.benchmark_group("slow_destructors");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(SLOW_N as u64));
    let mut report = Report::new("slow_destructors", SLOW_N);

    for (function, domain) in [
        ("ownrcu_default", Domain::new()),
        ("ownrcu_unbounded", Domain::builder().unbounded().build()),
    ] {
        bench(
            &mut group,
            &mut report,
            function,
            slow_boxes,
            |ctl| ctl.run(|| domain.barrier()),
            |v| slow_churn(&domain, v),
        );
        ownrcu_diagnosis("slow_destructors", function, &domain);
        drop(domain);
    }

    group.finish();
    report.write();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = pending_peak, pending_peak_loaded, pending_peak_stuck, slow_destructors
}
criterion_main!(benches);
