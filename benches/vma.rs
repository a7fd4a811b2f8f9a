//! The VMA workload of `examples/vma` (its `mm.rs` is shared):
//!
//! - `vma_exit`: exit of an mm with 10 000 VMAs of 192 bytes, timed until
//!   every VMA is freed: `direct` (the last user handle drops: no grace
//!   period), `batch` (all VMAs retired as one registration, then
//!   `barrier`), `per_object` (one registration per VMA, then `barrier`).
//!   The mm is built in set-up, outside the timing; the timed routine checks
//!   that exactly 10 000 VMAs were freed. The VMAs come from the bench's
//!   arena (`benches/arena`): every iteration of every function places them
//!   at the same addresses in the same order, and freeing one costs an
//!   atomic decrement, so the figures do not depend on what glibc's free
//!   lists were left with by the previous iteration (issue 12: `direct`
//!   measured slower than `batch` although it does strictly less). Before
//!   the group, `cargo bench` (not `--test`) prints `direct` and `batch`
//!   interleaved round by round and back to back, with glibc and with the
//!   arena, and writes them to
//!   `target/criterion/vma_exit/layouts.json`.
//! - `vma_churn`: the time of one page fault (lookup under a read guard, the
//!   per-VMA lock, the fallback to `mmap_lock`) on the bench thread while
//!   another thread munmaps and mmaps VMAs in a loop; the three functions
//!   are how munmap hands over what it removes: `batch` (one registration
//!   per call), `per_object` (one per VMA), `direct` (munmap waits for a
//!   grace period itself, `synchronize`, then frees directly). The churn is
//!   running before the timing starts; afterwards the routine checks that
//!   every fault was served, that munmap ran, and, after exit, that every
//!   VMA created was freed.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ownrcu::Domain;

#[path = "../examples/vma/mm.rs"]
mod mm;
use mm::{Exit, Retire, CREATED, FREED, PAGE};

mod common;

mod arena;
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena;

const VMAS: u64 = 10_000;
const PAGES: u64 = 4;
const STRIDE: u64 = (PAGES + 1) * PAGE;

/// Set-up: an mm of `VMAS` VMAs, each in the arena (at the same address as
/// in every other iteration and function) or from glibc.
fn new_mm(domain: &Domain, in_arena: bool) -> mm::MmUser {
    if in_arena {
        let size = std::mem::size_of::<mm::Vma>();
        arena::setup(size..=size, VMAS as usize, || {
            mm::new_mm(domain, VMAS, PAGES)
        })
    } else {
        mm::new_mm(domain, VMAS, PAGES)
    }
}

/// One untimed set-up and one timed exit; checks every VMA was freed.
fn exit_once(domain: &Domain, how: Exit, in_arena: bool) -> Duration {
    let mm = new_mm(domain, in_arena);
    let freed = FREED.load(Relaxed);
    let started = Instant::now();
    mm::exit_mmap(mm, how);
    let elapsed = started.elapsed();
    assert_eq!(FREED.load(Relaxed) - freed, VMAS, "not every VMA was freed");
    elapsed
}

/// `direct` and `batch` round by round (alternating which goes first), with
/// glibc and with the arena, then back to back as Criterion runs them:
/// how much of the difference is the allocator's history.
fn exit_layouts(domain: &Domain) {
    const ROUNDS: usize = 31;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut rows = Vec::new();
    for (allocator, in_arena) in [("glibc", false), ("arena", true)] {
        let (mut direct, mut batch) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            if round % 2 == 0 {
                direct.push(exit_once(domain, Exit::Direct, in_arena));
                batch.push(exit_once(domain, Exit::Batch, in_arena));
            } else {
                batch.push(exit_once(domain, Exit::Batch, in_arena));
                direct.push(exit_once(domain, Exit::Direct, in_arena));
            }
        }
        rows.push((allocator, "interleaved", direct, batch));
    }
    for (allocator, in_arena) in [("glibc", false), ("arena", true)] {
        let direct = (0..ROUNDS)
            .map(|_| exit_once(domain, Exit::Direct, in_arena))
            .collect();
        let batch = (0..ROUNDS)
            .map(|_| exit_once(domain, Exit::Batch, in_arena))
            .collect();
        rows.push((allocator, "back to back", direct, batch));
    }
    eprintln!("vma_exit layouts ({VMAS} VMAs, medians of {ROUNDS} rounds):");
    let mut json = format!("{{\"vmas\": {VMAS}, \"rounds\": {ROUNDS}, \"rows\": [\n");
    for (i, (allocator, mode, direct, batch)) in rows.into_iter().enumerate() {
        // Each round's batch over its direct (paired: a change of load
        // between rounds cancels out), median.
        let mut ratios: Vec<f64> = batch
            .iter()
            .zip(&direct)
            .map(|(b, d): (&Duration, &Duration)| b.as_secs_f64() / d.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        let (direct, batch) = (median(direct), median(batch));
        eprintln!(
            "  {allocator:5} {mode:12} direct {:7.1} µs, batch {:7.1} µs, batch ÷ direct {ratio:.2} \
             (median of the rounds' ratios)",
            direct.as_secs_f64() * 1e6,
            batch.as_secs_f64() * 1e6,
        );
        let comma = if i == 0 { "" } else { ",\n" };
        let _ = write!(
            json,
            "{comma}  {{\"allocator\": \"{allocator}\", \"mode\": \"{mode}\", \"direct_ns\": {}, \"batch_ns\": {}, \"batch_ratio\": {ratio:.4}}}",
            direct.as_nanos(),
            batch.as_nanos()
        );
    }
    json.push_str("\n]}\n");
    common::output::write("vma_exit", "layouts.json", &json);
}

fn vma_exit(c: &mut Criterion) {
    let domain = Domain::new();
    if is_bench_run() {
        exit_layouts(&domain);
    }
    let mut group = c.benchmark_group("vma_exit");
    group.sample_size(30);
    for (name, how) in [
        ("direct", Exit::Direct),
        ("batch", Exit::Batch),
        ("per_object", Exit::PerObject),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mm = new_mm(&domain, true);
                    (mm, FREED.load(Relaxed))
                },
                |(mm, freed)| {
                    mm::exit_mmap(mm, how);
                    assert_eq!(FREED.load(Relaxed) - freed, VMAS, "not every VMA was freed");
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// munmaps and mmaps back `count` VMAs at a time, round the address space,
/// until `stop`; counts the pairs in `pairs`.
fn churn(mm: &mm::MmUser, how: Retire, stop: &AtomicBool, pairs: &AtomicU64) {
    let mut first = 0;
    while !stop.load(Relaxed) {
        let end = (first + 4).min(VMAS);
        mm::munmap(mm, first * STRIDE, end * STRIDE, how);
        for vma in first..end {
            assert!(mm::mmap(mm, vma * STRIDE, vma * STRIDE + PAGES * PAGE));
        }
        pairs.fetch_add(1, Relaxed);
        first = (first + 997) % VMAS;
    }
}

fn vma_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("vma_churn");
    for (name, how) in [
        ("direct", Retire::Synchronize),
        ("batch", Retire::Batch),
        ("per_object", Retire::PerObject),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (created, freed) = (CREATED.load(Relaxed), FREED.load(Relaxed));
                let domain = Domain::new();
                let mm = mm::new_mm(&domain, VMAS, PAGES);
                let stop = AtomicBool::new(false);
                let pairs = AtomicU64::new(0);
                let (elapsed, served) = std::thread::scope(|s| {
                    s.spawn(|| churn(&mm, how, &stop, &pairs));
                    while pairs.load(Relaxed) == 0 {
                        std::thread::yield_now(); // the churn is under way
                    }
                    let mut served = [0_u64; 3];
                    let mut addr = 0x9e37_79b9_u64;
                    let started = Instant::now();
                    for _ in 0..iters {
                        addr = addr.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        // A page of some VMA's range (not the holes).
                        let vma = (addr >> 24) % VMAS;
                        let page = (addr >> 16) % PAGES;
                        let fault = mm::fault(&mm, vma * STRIDE + page * PAGE);
                        served[black_box(fault) as usize] += 1;
                    }
                    let elapsed = started.elapsed();
                    stop.store(true, Relaxed);
                    (elapsed, served)
                });
                assert_eq!(served.iter().sum::<u64>(), iters, "every fault served");
                assert!(pairs.load(Relaxed) > 0, "munmap ran");
                mm::exit_mmap(mm, Exit::Direct);
                assert_eq!(
                    FREED.load(Relaxed) - freed,
                    CREATED.load(Relaxed) - created,
                    "every VMA created was freed"
                );
                elapsed.max(Duration::from_nanos(1))
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = vma_exit, vma_churn
}
criterion_main!(benches);

/// Whether this is a measuring `cargo bench` run (not `--test`, `--list`, or
/// a `cargo test` of the bench target): the layout tables run only then.
fn is_bench_run() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|arg| arg == "--bench")
        && !args.iter().any(|arg| arg == "--test" || arg == "--list")
}
