//! `read_guard`: the cost of entering and leaving one read-side critical
//! section, single-threaded, against the peers' fastest guards and a
//! thread-local floor.
//!
//! Each routine makes a guard and drops it at once; the guards have side
//! effects (stores to shared state, fences) so the compiler cannot elide
//! them, and every function uses the same shape so the loop overhead is the
//! same for all (the `_escaped` pair also lets the guard's address escape,
//! so the guard lives in memory).

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{compiler_fence, Ordering::SeqCst};

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

thread_local! {
    static NEST: Cell<usize> = const { Cell::new(0) };
}

fn read_guard(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_guard");

    // The process-wide domain, named inside the loop as a user names it
    // (`Domain::global()` is a constant, so the compiler takes the global
    // path alone); the thread registers during warm-up.
    group.bench_function("ownrcu", |b| {
        b.iter(|| {
            let guard = ownrcu::Domain::global().read();
            drop(guard);
        });
    });

    // A user-created domain, made (and registered with) before timing.
    let own = ownrcu::Domain::new();
    drop(own.read());
    group.bench_function("ownrcu_own_domain", |b| {
        b.iter(|| {
            let guard = own.read();
            drop(guard);
        });
    });
    drop(own);

    // Two user-created domains read in turn (a structure per domain, as in
    // seize's model): one guard per iteration, alternating, so the time is
    // per guard like the functions above. The domain is picked by index
    // (no branch); the per-thread lookup must find either one at once.
    let two = [ownrcu::Domain::new(), ownrcu::Domain::new()];
    drop(two[0].read());
    drop(two[1].read());
    group.bench_function("ownrcu_two_domains", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for i in 0..iters {
                let guard = black_box(&two[(i & 1) as usize]).read();
                drop(guard);
            }
            start.elapsed()
        });
    });
    drop(two);

    // crossbeam-epoch's fastest pin: a `LocalHandle` registered once with a
    // collector and held for the whole run, then `handle.pin()` (no
    // thread-local lookup, unlike `crossbeam_epoch::pin()`).
    let collector = crossbeam_epoch::Collector::new();
    let handle = collector.register();
    group.bench_function("crossbeam_epoch", |b| {
        b.iter(|| {
            let guard = handle.pin();
            drop(guard);
        });
    });
    drop(handle);
    drop(collector);

    // sdd's only guard: `sdd::Guard::new()` on the thread-local collector.
    group.bench_function("sdd", |b| {
        b.iter(|| {
            let guard = sdd::Guard::new();
            drop(guard);
        });
    });

    // seize 0.5.1: a `Collector` and its `enter()` (a `LocalGuard`, cheaper
    // than `enter_owned()`).
    let seize = seize::Collector::new();
    drop(seize.enter());
    group.bench_function("seize", |b| {
        b.iter(|| {
            let guard = seize.enter();
            drop(guard);
        });
    });

    // kovan 0.2.0's `pin()` (its thread-local handle; the guard is a
    // zero-sized token whose drop goes back to the thread-local).
    drop(kovan::pin());
    group.bench_function("kovan", |b| {
        b.iter(|| {
            let guard = kovan::pin();
            drop(guard);
        });
    });

    // The guard's address escapes (`black_box(&guard)`), as when a guard is
    // passed by reference to a function that is not inlined: the guard then
    // lives in memory, so what it holds is stored on entry and read back
    // on exit. ownrcu's global-domain guard against kovan's.
    group.bench_function("ownrcu_escaped", |b| {
        b.iter(|| {
            let guard = ownrcu::Domain::global().read();
            black_box(&guard);
            drop(guard);
        });
    });
    group.bench_function("kovan_escaped", |b| {
        b.iter(|| {
            let guard = kovan::pin();
            black_box(&guard);
            drop(guard);
        });
    });

    // Owned sections, `Send` and not tied to a thread (held across
    // `.await`): ownrcu's `read_owned()` on the user-created domain above's
    // kind, and seize's `enter_owned()` on the same collector.
    let own = ownrcu::Domain::new();
    drop(own.read_owned());
    group.bench_function("ownrcu_owned", |b| {
        b.iter(|| {
            let section = own.read_owned();
            drop(section);
        });
    });
    drop(own);
    drop(seize.enter_owned());
    group.bench_function("seize_owned", |b| {
        b.iter(|| {
            let guard = seize.enter_owned();
            drop(guard);
        });
    });
    drop(seize);

    // The physical floor: a thread-local counter incremented and
    // decremented, with a compiler fence in between (as a reader's nesting
    // count with no shared store and no fence). `black_box` hides where the
    // counter lives so the compiler cannot fold the pair away; the counter
    // is then reached through a register, as a guard reaches its record.
    // (Addressed directly off `%fs`, the same pair costs ~3.4 ns on this
    // machine's CPU: the store-to-load dependency is not renamed away.)
    group.bench_function("tls_floor", |b| {
        b.iter(|| {
            NEST.with(|nest| {
                let nest = black_box(nest);
                nest.set(nest.get() + 1);
                compiler_fence(SeqCst);
                nest.set(nest.get() - 1);
            });
        });
    });

    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = read_guard
}
criterion_main!(benches);
