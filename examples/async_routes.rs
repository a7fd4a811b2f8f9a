//! A routing table read by async tasks on a multi-threaded tokio runtime:
//! `cargo run --release --example async_routes`.
//!
//! Each task looks up a route in the current table and keeps using the
//! table it found across `.await`s (here a `yield_now` and, now and then, a
//! short sleep), while a writer task swaps in new tables and retires the old
//! ones. A task holds an [`OwnedGuard`] for that: a read section that is
//! `Send`, so the runtime may resume the task on another worker thread, and
//! the table it loaded stays alive until the section ends. A thread's
//! [`Guard`](ownrcu::Guard) could not be held across the `.await` (it is
//! not `Send`); without a section, the task would have to copy the route
//! out or clone an `Arc` of the table for every lookup.
//!
//! Every table counts its drops and poisons itself when dropped: a task
//! that reads a freed table panics (`route` checks the poison), and the run
//! checks that every retired table was freed exactly once. It prints what
//! it did and exits 0 only if both hold.
//!
//! Options: `--tasks N` (default 64), `--lookups N` per task (200),
//! `--swaps N` (2 000), `--workers N` (4).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ownrcu::{Atomic, Domain, Owned, OwnedGuard};

const LIVE: u64 = 0x7ab1_e7ab_1e7a_b1e0;
const POISON: u64 = 0xdead_7ab1_dead_7ab1;

/// A routing table: the next hop of each destination, for one version.
pub struct Table {
    magic: u64,
    version: u64,
    hops: Vec<u32>,
    drops: Arc<AtomicUsize>,
}

impl Table {
    fn new(version: u64, drops: &Arc<AtomicUsize>) -> Self {
        let hops = (0..64)
            .map(|dest| (dest * 7 + version as u32) % 16)
            .collect();
        Table {
            magic: LIVE,
            version,
            hops,
            drops: drops.clone(),
        }
    }

    /// The next hop to `dest`; panics if this table was freed.
    fn route(&self, dest: u32) -> u32 {
        assert_eq!(self.magic, LIVE, "a task read a freed routing table");
        self.hops[dest as usize % self.hops.len()]
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        assert_eq!(self.magic, LIVE, "a routing table freed twice");
        self.magic = POISON;
        self.drops.fetch_add(1, Relaxed);
    }
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub lookups: usize,
    /// Lookups whose task resumed on another worker thread than the one
    /// that loaded the table, and used the table there.
    pub moved: usize,
    pub swaps: usize,
    /// Tables dropped once the run (and its `barrier`) ended: every table
    /// retired by a swap.
    pub freed_after_run: usize,
    /// Tables dropped in all, the last one included.
    pub freed_in_all: usize,
    pub elapsed: Duration,
}

/// One lookup: load the table under an owned section, hold both across
/// `.await`s, and check the table is still the one it was.
async fn lookup(domain: &Domain, table: &Atomic<Table>, dest: u32, sleep: bool) -> bool {
    let section: OwnedGuard = domain.read_owned();
    let current: &Table = table.load(section.guard()).as_ref().expect("never empty");
    let (version, hop) = (current.version, current.route(dest));
    let before = std::thread::current().id();
    tokio::task::yield_now().await;
    if sleep {
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
    // The writer may have swapped and retired `current` meanwhile: it is
    // still alive, and unchanged, while `section` lives.
    assert_eq!((current.version, current.route(dest)), (version, hop));
    std::thread::current().id() != before
}

/// Runs `tasks` reader tasks of `lookups` lookups each beside a writer that
/// swaps the table `swaps` times, on `workers` worker threads.
pub fn run(tasks: usize, lookups: usize, swaps: usize, workers: usize) -> Report {
    let start = Instant::now();
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    let table = Arc::new(Atomic::new(Table::new(0, &drops)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let moved = runtime.block_on(async {
        let writer = {
            let (domain, table, drops) = (domain.clone(), table.clone(), drops.clone());
            tokio::spawn(async move {
                for version in 1..=swaps as u64 {
                    let new = Owned::new(Table::new(version, &drops));
                    {
                        // A thread's guard is fine in a block with no
                        // `.await` (the block ends it; `drop(guard)` would
                        // not, for the compiler's `Send` check).
                        let guard = domain.read();
                        drop(table.swap(new, &guard)); // retires the old table
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let readers: Vec<_> = (0..tasks)
            .map(|task| {
                let (domain, table) = (domain.clone(), table.clone());
                tokio::spawn(async move {
                    let mut moved = 0;
                    for i in 0..lookups {
                        let sleep = (task + i) % 16 == 0;
                        moved += usize::from(lookup(&domain, &table, i as u32, sleep).await);
                    }
                    moved
                })
            })
            .collect();
        writer.await.expect("the writer task");
        let mut moved = 0;
        for reader in readers {
            moved += reader.await.expect("a reader task");
        }
        moved
    });
    drop(runtime);
    domain.barrier();
    let freed_after_run = drops.load(Relaxed);
    drop(Arc::into_inner(table).expect("the tasks are gone"));
    Report {
        lookups: tasks * lookups,
        moved,
        swaps,
        freed_after_run,
        freed_in_all: drops.load(Relaxed),
        elapsed: start.elapsed(),
    }
}

/// Every retired table freed exactly once (the poison check ran on every
/// use: a task that read a freed table panicked).
pub fn check(r: &Report) {
    assert_eq!(r.freed_after_run, r.swaps, "a retired table was not freed");
    assert_eq!(r.freed_in_all, r.swaps + 1, "a table was lost");
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter().position(|a| a == name).map_or(default, |at| {
        let value = args
            .get(at + 1)
            .unwrap_or_else(|| panic!("{name} needs a value"));
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} takes a number, not {value:?}"))
    })
}

pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help") {
        println!("async_routes [--tasks N] [--lookups N] [--swaps N] [--workers N]");
        return;
    }
    // Under Miri (`tests/examples.rs` runs `main`) a few of each.
    let (tasks, lookups, swaps) = if cfg!(miri) {
        (3, 3, 4)
    } else {
        (64, 200, 2_000)
    };
    let r = run(
        arg(&args, "--tasks", tasks),
        arg(&args, "--lookups", lookups),
        arg(&args, "--swaps", swaps),
        arg(&args, "--workers", 4).max(1),
    );
    check(&r);
    println!(
        "{} lookups held across .await ({} resumed on another worker), {} table swaps; \
         {} retired tables freed exactly once, none read after it was freed; {:.2?}",
        r.lookups, r.moved, r.swaps, r.freed_after_run, r.elapsed
    );
}
