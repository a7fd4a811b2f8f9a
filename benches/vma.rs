//! The VMA workload of `examples/vma` (its `mm.rs` is shared):
//!
//! - `vma_exit`: exit of an mm with 10 000 VMAs of 192 bytes, timed until
//!   every VMA is freed: `direct` (the last user handle drops: no grace
//!   period), `batch` (all VMAs retired as one registration, then
//!   `barrier`), `per_object` (one registration per VMA, then `barrier`).
//!   The mm is built in set-up, outside the timing; the timed routine checks
//!   that exactly 10 000 VMAs were freed.
//! - `vma_churn`: the time of one page fault (lookup under a read guard, the
//!   per-VMA lock, the fallback to `mmap_lock`) on the bench thread while
//!   another thread munmaps and mmaps VMAs in a loop; the three functions
//!   are how munmap hands over what it removes: `batch` (one registration
//!   per call), `per_object` (one per VMA), `direct` (munmap waits for a
//!   grace period itself, `synchronize`, then frees directly). The churn is
//!   running before the timing starts; afterwards the routine checks that
//!   every fault was served, that munmap ran, and, after exit, that every
//!   VMA created was freed.

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

const VMAS: u64 = 10_000;
const PAGES: u64 = 4;
const STRIDE: u64 = (PAGES + 1) * PAGE;

fn vma_exit(c: &mut Criterion) {
    let mut group = c.benchmark_group("vma_exit");
    group.sample_size(30);
    let domain = Domain::new();
    for (name, how) in [
        ("direct", Exit::Direct),
        ("batch", Exit::Batch),
        ("per_object", Exit::PerObject),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let mm = mm::new_mm(&domain, VMAS, PAGES);
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
