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
//! # The same layout for every function
//!
//! The objects of every function (sdd's own allocations of them included)
//! come from the bench's arena (`benches/arena`): every iteration of every
//! function places them at the same addresses, contiguously, in allocation
//! order, and freeing one costs an atomic decrement, whatever ran before.
//! With glibc's free lists instead, the figure of one function depended on
//! the previous iteration's frees (issue 12: `exclusive` measured 1.40× the
//! floor back to back and 1.00× interleaved). Everything the functions
//! allocate themselves while timed (crossbeam's bags, seize's batches, the
//! per-object units, ownrcu's queue nodes) still goes to glibc, and is
//! part of their cost. The objects are freed in allocation order
//! (oldest first) by every function whose order is fixed by its code:
//! `drop_floor` (the vector's drop), `exclusive` (the array's drop),
//! `batch` (the retired unit's free loop).
//!
//! Before the Criterion group, `cargo bench` runs (not under `--test`) the
//! layout table: `drop_floor`, `exclusive` and `batch` interleaved round by
//! round, with glibc and with the arena, the objects freed oldest-first,
//! newest-first and shuffled, plus each strategy run back to back as
//! Criterion does (glibc and arena). It prints each median and ratio to stderr and
//! writes them to `target/criterion/teardown_100k/layouts.json` (read by
//! `.ci/bench-report`).
//!
//! The group uses 20 samples (Criterion's default is 100) so that the whole
//! file runs in about two minutes with `--warm-up-time 1 --measurement-time 3`:
//! every iteration also pays the set-up (100 000 allocations) outside the
//! timing.

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ownrcu::{Array, Domain, User};

const N: usize = 100_000;

mod arena;
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena;

#[allow(dead_code)] // `drop_floor`: this file has its own, with the arena
mod objects;
use objects::{boxes, check, Obj, DROPS};

/// The sizes the arena takes in set-up: the 192-byte objects, and sdd's
/// allocations of them (the object behind its header).
const SIZES: RangeInclusive<usize> = 192..=256;

/// Set-up: `make` (which allocates the `N` objects) with the objects in the
/// arena, at the same addresses in the same order as in every other
/// iteration and function.
fn in_arena<R>(make: impl FnOnce() -> R) -> R {
    arena::setup(SIZES, N, make)
}

/// The owner of the ownrcu functions: an `Array` of `N` objects (the
/// crate's RCU-replaced index, as in the VMA example).
type Owner = User<Array<Obj>>;

/// Set-up: resets the drop counter and builds an owner of `N` objects,
/// allocated in the arena in the same order as `boxes`.
fn owner(domain: &Domain) -> Owner {
    User::new(domain, Array::from_vec(in_arena(|| boxes(N))))
}

mod common;

fn teardown_100k(c: &mut Criterion) {
    // A user-created domain, made once outside the timing.
    let domain = Domain::new();
    if is_bench_run() {
        layouts(&domain);
    }
    let mut group = c.benchmark_group("teardown_100k");
    group.sample_size(20);

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
                (in_arena(|| boxes(N)), collector, handle)
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
                let v = in_arena(|| {
                    DROPS.store(0, Relaxed);
                    (0..N)
                        .map(|i| sdd::Owned::new(Obj::new(i)))
                        .collect::<Vec<_>>()
                });
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
            || (in_arena(|| boxes(N)), seize::Collector::new()),
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

    // The floor: dropping the vector of boxes (oldest first).
    group.bench_function("drop_floor", |b| {
        b.iter_batched(
            || in_arena(|| boxes(N)),
            |v| {
                drop(v);
                check(N);
            },
            BatchSize::PerIteration,
        );
    });

    group.finish();
    drop(domain);
}

/// Where the objects are, relative to the order they are freed in.
#[derive(Clone, Copy)]
enum Order {
    /// In allocation order (what every function of the group does).
    OldestFirst,
    NewestFirst,
    /// A fixed pseudo-random permutation.
    Shuffled,
}

impl Order {
    fn name(self) -> &'static str {
        match self {
            Order::OldestFirst => "oldest-first",
            Order::NewestFirst => "newest-first",
            Order::Shuffled => "shuffled",
        }
    }

    fn arrange(self, v: &mut [Box<Obj>]) {
        match self {
            Order::OldestFirst => {}
            Order::NewestFirst => v.reverse(),
            Order::Shuffled => {
                let mut x = 0x9e37_79b9_7f4a_7c15_u64;
                for i in (1..v.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    v.swap(i, (x % (i as u64 + 1)) as usize);
                }
            }
        }
    }
}

/// The strategies of the layout table, in the order of its columns.
const STRATEGIES: [&str; 3] = ["drop_floor", "exclusive", "batch"];

/// One untimed set-up and one timed teardown of `strategy` (an index into
/// `STRATEGIES`), with the objects in the arena or from glibc, freed in
/// `order`; checks that `N` destructors ran.
fn once(domain: &Domain, strategy: usize, order: Order, in_arena_too: bool) -> Duration {
    let mut v = if in_arena_too {
        in_arena(|| boxes(N))
    } else {
        boxes(N)
    };
    order.arrange(&mut v);
    match strategy {
        0 => {
            let started = Instant::now();
            drop(v);
            check(N);
            started.elapsed()
        }
        1 => {
            let user = User::new(domain, Array::from_vec(v));
            let started = Instant::now();
            drop(user);
            check(N);
            started.elapsed()
        }
        _ => {
            let user = User::new(domain, Array::from_vec(v));
            let started = Instant::now();
            let mut writer = user.write(&user);
            writer.clear();
            writer.commit().retire();
            user.barrier();
            check(N);
            let elapsed = started.elapsed();
            drop(user);
            elapsed
        }
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The layout table (see the module docs): how much of a teardown figure
/// is the allocator's layout and history rather than the code.
fn layouts(domain: &Domain) {
    const ROUNDS: usize = 21;
    let mut rows = Vec::new();
    for (allocator, arena_too) in [("glibc", false), ("arena", true)] {
        for order in [Order::OldestFirst, Order::NewestFirst, Order::Shuffled] {
            // Round by round, the strategies in a rotating order, so that
            // each is preceded by each of the others equally often.
            let mut times = vec![Vec::new(); STRATEGIES.len()];
            for round in 0..ROUNDS {
                for k in 0..STRATEGIES.len() {
                    let strategy = (round + k) % STRATEGIES.len();
                    times[strategy].push(once(domain, strategy, order, arena_too));
                }
            }
            rows.push((allocator, order.name(), "interleaved", times));
        }
    }
    // What Criterion does: one strategy's rounds back to back, then the next.
    for (allocator, arena_too) in [("glibc", false), ("arena", true)] {
        let mut times = vec![Vec::new(); STRATEGIES.len()];
        for (strategy, times) in times.iter_mut().enumerate() {
            once(domain, strategy, Order::OldestFirst, arena_too); // warm-up
            for _ in 0..ROUNDS {
                times.push(once(domain, strategy, Order::OldestFirst, arena_too));
            }
        }
        rows.push((allocator, Order::OldestFirst.name(), "back to back", times));
    }

    let mut json = format!("{{\"objects\": {N}, \"rounds\": {ROUNDS}, \"rows\": [\n");
    eprintln!(
        "teardown_100k layouts ({N} objects, medians of {ROUNDS} rounds; in brackets the median \
         of each round's ratio to drop_floor):"
    );
    for (i, (allocator, order, mode, times)) in rows.into_iter().enumerate() {
        // Each strategy's time over the floor's of the same round (paired,
        // so that a change of load between rounds cancels out), median.
        let ratios: Vec<f64> = times
            .iter()
            .map(|t| {
                let mut r: Vec<f64> = t
                    .iter()
                    .zip(&times[0])
                    .map(|(t, floor)| t.as_secs_f64() / floor.as_secs_f64())
                    .collect();
                r.sort_by(f64::total_cmp);
                r[r.len() / 2]
            })
            .collect();
        let medians: Vec<Duration> = times.into_iter().map(median).collect();
        let mut line = format!("  {allocator:5} freed {order:12} {mode:12}");
        let comma = if i == 0 { "" } else { ",\n" };
        let _ = write!(
            json,
            "{comma}  {{\"allocator\": \"{allocator}\", \"order\": \"{order}\", \"mode\": \"{mode}\""
        );
        for ((name, m), ratio) in STRATEGIES.iter().zip(&medians).zip(&ratios) {
            let ns = m.as_secs_f64() * 1e9 / N as f64;
            let _ = write!(line, " {name} {ns:6.1} ns/object ({ratio:.2}×)");
            let _ = write!(
                json,
                ", \"{name}_ns\": {}, \"{name}_ratio\": {ratio:.4}",
                m.as_nanos()
            );
        }
        json.push('}');
        eprintln!("{line}");
    }
    json.push_str("\n]}\n");
    common::output::write("teardown_100k", "layouts.json", &json);
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = teardown_100k
}
criterion_main!(benches);

/// Whether this is a measuring `cargo bench` run (not `--test`, `--list`, or
/// a `cargo test` of the bench target): the layout tables run only then.
fn is_bench_run() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|arg| arg == "--bench")
        && !args.iter().any(|arg| arg == "--test" || arg == "--list")
}
