//! `retire_10k`: retire 10 000 objects of 192 bytes and wait until every one
//! of them has been dropped, single-threaded.
//!
//! The objects are allocated in set-up, outside the timing
//! (`iter_batched(.., PerIteration)`); the timed routine retires them,
//! drives reclamation to the end, and checks that exactly 10 000 destructors
//! ran before it returns. `drop_floor` drops the same vector directly.

use std::sync::atomic::Ordering::Relaxed;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const N: usize = 10_000;

mod objects;
use objects::{boxes, check, Obj, DROPS};

mod common;

fn retire_10k(c: &mut Criterion) {
    let mut group = c.benchmark_group("retire_10k");
    // A user-created domain, made once outside the timing.
    let domain = ownrcu::Domain::new();

    // One `Batch` takes over the vector (no copy), one registration, then
    // `barrier` waits for the grace period and frees everything.
    group.bench_function("ownrcu_batch", |b| {
        b.iter_batched(
            || boxes(N),
            |v| {
                ownrcu::Batch::from_vec(&domain, v).drain();
                domain.barrier();
                check(N);
            },
            BatchSize::PerIteration,
        );
    });

    // One `retire` per object (buffered 64 at a time), then `barrier`.
    group.bench_function("ownrcu_single", |b| {
        b.iter_batched(
            || boxes(N),
            |v| {
                for object in v {
                    domain.retire(object);
                }
                domain.barrier();
                check(N);
            },
            BatchSize::PerIteration,
        );
    });

    // crossbeam-epoch at its best: a `LocalHandle` registered once (no
    // thread-local lookup), one pin for all 10 000 `defer_destroy` calls
    // (bags of 64 deferred functions, no allocation per object), then flush
    // and re-pin until every object has been dropped.
    let collector = crossbeam_epoch::Collector::new();
    let handle = collector.register();
    group.bench_function("crossbeam_epoch", |b| {
        b.iter_batched(
            || boxes(N),
            |v| {
                {
                    let guard = handle.pin();
                    for object in v {
                        let ptr = crossbeam_epoch::Shared::from(Box::into_raw(object).cast_const());
                        // SAFETY: the object came from a `Box` (crossbeam's
                        // `Owned<T>` for a sized `T` is a `Box<T>`), is
                        // reachable by nobody else, and is destroyed once.
                        unsafe { guard.defer_destroy(ptr) };
                    }
                    guard.flush();
                }
                while DROPS.load(Relaxed) < N {
                    handle.pin().flush();
                }
                check(N);
            },
            BatchSize::PerIteration,
        );
    });
    drop(handle);
    drop(collector);

    // sdd: its retire path is dropping an `Owned<T>` (an sdd allocation,
    // carrying sdd's intrusive header, made in set-up), which pushes it on
    // the thread's garbage list with no atomics; then new guards with
    // `accelerate()` rotate the epochs until every object has been dropped.
    group.bench_function("sdd", |b| {
        b.iter_batched(
            || {
                DROPS.store(0, Relaxed);
                (0..N)
                    .map(|i| sdd::Owned::new(Obj::new(i)))
                    .collect::<Vec<_>>()
            },
            |v| {
                drop(v);
                while DROPS.load(Relaxed) < N {
                    let guard = sdd::Guard::new();
                    guard.accelerate();
                    drop(guard);
                }
                check(N);
            },
            BatchSize::PerIteration,
        );
    });

    // seize 0.5.1: `Collector::retire` with `reclaim::boxed`, outside any
    // guard (a full batch of 32 is freed at once when no thread is active;
    // one membarrier per batch), then one guard's `flush()` for the partial
    // last batch, which is freed when that guard leaves. Default batch size.
    let seize = seize::Collector::new();
    group.bench_function("seize", |b| {
        b.iter_batched(
            || boxes(N),
            |v| {
                for object in v {
                    // SAFETY: the object came from a `Box`, is reachable by
                    // nobody else, and is retired once.
                    unsafe { seize.retire(Box::into_raw(object), seize::reclaim::boxed) };
                }
                while DROPS.load(Relaxed) < N {
                    use seize::Guard as _;
                    seize.enter().flush();
                }
                check(N);
            },
            BatchSize::PerIteration,
        );
    });
    drop(seize);

    objects::drop_floor(&mut group, N);

    group.finish();
    drop(domain);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = retire_10k
}
criterion_main!(benches);
