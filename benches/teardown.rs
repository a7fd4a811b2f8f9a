//! `teardown_100k`: free 100 000 objects of 192 bytes owned by one owner (or,
//! for the peers, by one private collector), single-threaded, and wait until
//! every one of them has been dropped.
//!
//! The objects and the owner (or collector) are built in set-up, outside the
//! timing (`iter_batched(.., PerIteration)`); the timed routine tears them
//! down, drives reclamation to the end, and checks that exactly 100 000
//! destructors ran before it returns. Whatever a routine returns is dropped
//! by Criterion after the measurement (an emptied owner, for `batch` and
//! `per_object`). `drop_floor` drops a vector of the same boxes directly.
//!
//! The group uses 20 samples (Criterion's default is 100) so that the whole
//! file runs in about two minutes with `--warm-up-time 1 --measurement-time 3`:
//! every iteration also pays the set-up (100 000 allocations) outside the
//! timing.

use std::sync::atomic::Ordering::Relaxed;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ownrcu::{Array, Domain, User};

const N: usize = 100_000;

mod objects;
use objects::{boxes, check, Obj, DROPS};

/// The owner of the ownrcu functions: an `Array` of `N` objects (the
/// crate's RCU-replaced index, as in the VMA example).
type Owner = User<Array<Obj>>;

/// Set-up: resets the drop counter and builds an owner of `N` objects,
/// allocated in the same order as `boxes`.
fn owner(domain: &Domain) -> Owner {
    DROPS.store(0, Relaxed);
    User::new(domain, Array::from_vec(boxes(N)))
}

mod common;

fn teardown_100k(c: &mut Criterion) {
    let mut group = c.benchmark_group("teardown_100k");
    group.sample_size(20);
    // A user-created domain, made once outside the timing.
    let domain = Domain::new();

    // Dropping the last user handle: no reader can exist, so the data (the
    // slots and their objects) is dropped right there, with no grace period.
    group.bench_function("exclusive", |b| {
        b.iter_batched(
            || owner(&domain),
            |user| {
                drop(user);
                check(N);
            },
            BatchSize::PerIteration,
        );
    });

    // One writer removes every object and publishes the empty version; what
    // it removed (all objects and the old version's slice) is retired as one
    // registration, then `barrier` waits for its grace period and frees all
    // of them. The emptied owner is returned, so Criterion drops it after
    // the timing.
    group.bench_function("batch", |b| {
        b.iter_batched(
            || owner(&domain),
            |user| {
                let mut writer = user.write(&user);
                writer.clear();
                writer.commit().retire();
                user.barrier();
                check(N);
                user
            },
            BatchSize::PerIteration,
        );
    });

    // The same removal, but each object retired with a registration of its
    // own (the per-VMA `call_rcu` flood), then `barrier`.
    group.bench_function("per_object", |b| {
        b.iter_batched(
            || owner(&domain),
            |user| {
                let mut writer = user.write(&user);
                writer.clear();
                writer.commit().retire_each();
                user.barrier();
                check(N);
                user
            },
            BatchSize::PerIteration,
        );
    });

    // crossbeam-epoch at its best for teardown: a private `Collector` with a
    // `LocalHandle` registered in set-up, one pin for all 100 000
    // `defer_destroy` calls (bags of 64 deferred functions), then dropping
    // the handle and the collector: the last reference to the collector's
    // global state drops its queue of sealed bags, which runs every deferred
    // destructor with no epoch advance.
    group.bench_function("crossbeam_epoch", |b| {
        b.iter_batched(
            || {
                let collector = crossbeam_epoch::Collector::new();
                let handle = collector.register();
                (boxes(N), collector, handle)
            },
            |(v, collector, handle)| {
                {
                    let guard = handle.pin();
                    for object in v {
                        let ptr = crossbeam_epoch::Shared::from(Box::into_raw(object).cast_const());
                        // SAFETY: the object came from a `Box` (crossbeam's
                        // `Owned<T>` for a sized `T` is a `Box<T>`), is
                        // reachable by nobody else, and is destroyed once.
                        unsafe { guard.defer_destroy(ptr) };
                    }
                }
                drop(handle);
                drop(collector);
                check(N);
            },
            BatchSize::PerIteration,
        );
    });

    // sdd at its best for teardown: objects are sdd allocations (`Owned`,
    // with sdd's intrusive header, made in set-up), handed to a
    // `PrivateCollector` with `collect_owned` under one guard, then the
    // collector is dropped, which frees everything it collected at once
    // (its "aggressive reclamation", with no epoch advance).
    group.bench_function("sdd", |b| {
        b.iter_batched(
            || {
                DROPS.store(0, Relaxed);
                let v = (0..N)
                    .map(|i| sdd::Owned::new(Obj::new(i)))
                    .collect::<Vec<_>>();
                (v, sdd::PrivateCollector::new())
            },
            |(v, collector)| {
                {
                    let guard = sdd::Guard::new();
                    for object in v {
                        // SAFETY: nothing points to the object (it was never
                        // shared), `Obj: Send`, and the collector is dropped
                        // only after the guard.
                        unsafe { collector.collect_owned(object, &guard) };
                    }
                }
                drop(collector);
                check(N);
            },
            BatchSize::PerIteration,
        );
    });

    // seize 0.5.1 at its best for teardown: a private `Collector` (made in
    // set-up, default batch size of 32), `retire` with `reclaim::boxed`
    // outside any guard, then dropping the collector, which calls its
    // `reclaim_all` (safe here: dropping needs the collector by value, so no
    // guard exists) and frees whatever is left.
    group.bench_function("seize", |b| {
        b.iter_batched(
            || (boxes(N), seize::Collector::new()),
            |(v, collector)| {
                for object in v {
                    // SAFETY: the object came from a `Box`, is reachable by
                    // nobody else, and is retired once.
                    unsafe { collector.retire(Box::into_raw(object), seize::reclaim::boxed) };
                }
                drop(collector);
                check(N);
            },
            BatchSize::PerIteration,
        );
    });

    objects::drop_floor(&mut group, N);

    group.finish();
    drop(domain);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = teardown_100k
}
criterion_main!(benches);
