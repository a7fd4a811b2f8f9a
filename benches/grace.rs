//! `synchronize`: the latency of one `Domain::synchronize` (a full grace
//! period), with no other thread, with one other registered thread running
//! outside read sections, with one other thread entering and leaving
//! read sections in a tight loop, and with 1 or 64 other registered
//! threads parked outside read sections (`idle_threads_1`,
//! `idle_threads_64`: what idle threads cost a grace period).
//!
//! Every function uses its own user-created domain, made before the timing.
//! The bench thread takes one guard of that domain before timing, so the
//! process is registered for the asymmetric fence in every case; it is
//! outside any section while it calls `synchronize`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

/// What the helper thread does until told to stop.
#[derive(Clone, Copy)]
enum Helper {
    /// Takes one guard (registering with the domain), then spins outside
    /// any read section.
    Running,
    /// Enters and leaves read sections in a tight loop.
    BusyReader,
}

/// Raises the helper's stop flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Benchmarks `synchronize` on a fresh domain while `helper` (if any) runs
/// on another thread, and stops that thread cleanly afterwards.
fn bench_synchronize(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    helper: Option<Helper>,
) {
    let domain = ownrcu::Domain::new();
    drop(domain.read());
    let stop = AtomicBool::new(false);
    let ready = AtomicBool::new(false);
    thread::scope(|s| {
        if let Some(helper) = helper {
            let (domain, stop, ready) = (&domain, &stop, &ready);
            s.spawn(move || match helper {
                Helper::Running => {
                    drop(domain.read());
                    ready.store(true, Ordering::Release);
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                }
                Helper::BusyReader => {
                    drop(domain.read());
                    ready.store(true, Ordering::Release);
                    while !stop.load(Ordering::Relaxed) {
                        let guard = domain.read();
                        std::hint::black_box(&guard);
                        drop(guard);
                    }
                }
            });
            while !ready.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        }
        // Tells the helper to stop even if the benchmark panics, so the
        // scope's join cannot hang.
        let _stop = StopOnDrop(&stop);
        c.bench_function(name, |b| b.iter(|| domain.synchronize()));
    });
    drop(domain);
}

/// Benchmarks `synchronize` on a fresh domain with `threads` other
/// threads registered with it and parked outside any section.
fn bench_idle_threads(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    threads: usize,
) {
    let domain = ownrcu::Domain::new();
    drop(domain.read());
    let stop = AtomicBool::new(false);
    let registered = std::sync::Barrier::new(threads + 1);
    thread::scope(|s| {
        let parked: Vec<_> = (0..threads)
            .map(|_| {
                let (domain, stop, registered) = (&domain, &stop, &registered);
                s.spawn(move || {
                    drop(domain.read());
                    registered.wait();
                    while !stop.load(Ordering::Acquire) {
                        thread::park();
                    }
                })
            })
            .collect();
        registered.wait();
        // Wakes them to stop even if the benchmark panics, so the scope's
        // join cannot hang.
        let _wake = scopeguard::guard((), |()| {
            stop.store(true, Ordering::Release);
            for thread in &parked {
                thread.thread().unpark();
            }
        });
        c.bench_function(format!("idle_threads_{threads}"), |b| {
            b.iter(|| domain.synchronize())
        });
    });
}

fn synchronize(c: &mut Criterion) {
    let mut group = c.benchmark_group("synchronize");
    bench_synchronize(&mut group, "alone", None);
    bench_synchronize(&mut group, "running_thread", Some(Helper::Running));
    bench_synchronize(&mut group, "busy_reader", Some(Helper::BusyReader));
    bench_idle_threads(&mut group, 1);
    bench_idle_threads(&mut group, 64);
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = synchronize
}
criterion_main!(benches);
