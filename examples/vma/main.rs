//! The flagship example: VMAs, page faults, munmap and exit_mmap.
//!
//! A miniature address space (`mm.rs`): an `Mm` owner holds VMAs in an
//! RCU-replaced array ordered by address. Fault threads look up the VMA
//! covering an address under a read guard, with no address-space lock, and
//! take the VMA's own read lock; a writer thread munmaps ranges (by default
//! every VMA a call removes is retired as ONE batch) and mmaps them again.
//! Then the process exits, in one of the four ways the kernel thread
//! weighed, side by side:
//!
//! - `direct`: the last user handle drops; no fault can exist, so every VMA
//!   is freed right there, with no grace period (Linux 6.4's `exit_mmap`);
//! - `batch`: every VMA retired as one batch, then waited for (the proposal
//!   to batch the callbacks);
//! - `per-object`: every VMA retired on its own (Linux 6.3's flood);
//! - `capped`: one registration per `--cap` VMAs (32), then waited for (the
//!   seed patch 39's per-mm list). The array's commits are split into
//!   chunks of `--cap` VMAs, each retired as one registration (a commit's
//!   removed VMAs cannot be split afterwards), so each chunk also copies the
//!   remaining array.
//!
//! Every VMA ever created is counted, and so is every one freed: the last
//! line says `leaked=0` only if the two agree.
//!
//! Run: `cargo run --release --example vma [-- OPTIONS]` (`-- --help` lists
//! them; they are defined in `options.rs`):
//!
//! - `--teardown direct|batch|per-object|capped|all` (default `all`)
//! - `--munmap batch|per-object|synchronize|capped` (default `batch`): how
//!   munmap retires what it removes
//! - `--cap N` (default 32): VMAs per registration for `capped`, within one
//!   munmap or one exit (a munmap of no more than N VMAs is one
//!   registration, like `batch`)
//! - `--threads N` fault threads (default 2), `--vmas N` (default 10000),
//!   `--ops N` munmap+mmap pairs (default 2000), `--seed N`
//! - `--reader-us N` (default 100): during exit, another mm of the same
//!   domain is read in sections of N µs (0: single faults), which every
//!   grace period must wait for

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};

use ownrcu::Domain;

mod mm;
mod options;
use mm::{Exit, Fault, Retire, CREATED, FREED, PAGE};
use options::{Command, Options};

/// Pages per VMA; each VMA is followed by a one-page hole.
const PAGES: u64 = 4;

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match options::parse(&args) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{}", options::usage());
            std::process::exit(0)
        }
        Err(problem) => {
            eprintln!("error: {problem}");
            eprint!("{}", options::usage());
            std::process::exit(2)
        }
    }
}

/// splitmix64: a small, seeded, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one run (one exit strategy) did.
#[derive(Default)]
struct Run {
    faults: [u64; 3],
    munmaps: u64,
    unmapped_vmas: u64,
    munmap_registrations: u64,
    mmaps: u64,
    churn: Duration,
    retired: u64,
    registrations: u64,
    at_exit: u64,
    exit: Duration,
    exit_registrations: u64,
    exit_grace_periods: u64,
    other_sections: u64,
    freed_after: u64,
    created: u64,
    freed: u64,
}

fn run(o: &Options, how: Exit) -> Run {
    let (created, freed) = (CREATED.load(Relaxed), FREED.load(Relaxed));
    let domain = Domain::new();
    let mm = mm::new_mm(&domain, o.vmas, PAGES);
    // A fault lands on a page of a VMA's range: a process faults on what it
    // mapped; it finds no VMA only when munmap got there first.
    let mapped_page = |rng: &mut Rng, vmas: u64| {
        rng.below(vmas) * (PAGES + 1) * PAGE + rng.below(PAGES) * PAGE + rng.below(PAGE)
    };
    let holder = mm.holder(); // mmgrab: like a /proc reader of this mm
    let stop = AtomicBool::new(false);
    let mut r = Run::default();

    std::thread::scope(|s| {
        let faulters: Vec<_> = (0..o.threads as u64)
            .map(|t| {
                let (mm, stop) = (mm.clone(), &stop); // mmget: one per thread
                let mut rng = Rng(o.seed ^ (t + 1).wrapping_mul(0x5851_f42d_4c95_7f2d));
                s.spawn(move || {
                    let mut served = [0_u64; 3];
                    while !stop.load(Relaxed) {
                        let kind = mm::fault(&mm, mapped_page(&mut rng, o.vmas));
                        served[kind as usize] += 1;
                    }
                    served // the thread's handle drops here (mmput)
                })
            })
            .collect();

        // munmap a few VMAs at a time, then map the same range again.
        let started = Instant::now();
        let mut rng = Rng(o.seed);
        for _ in 0..o.ops {
            let first = rng.below(o.vmas);
            let count = 1 + rng.below(8);
            let start = first * (PAGES + 1) * PAGE;
            let end = (first + count).min(o.vmas) * (PAGES + 1) * PAGE;
            let registrations = mm.stats().registrations;
            r.unmapped_vmas += mm::munmap(&mm, start, end, o.munmap) as u64;
            r.munmap_registrations += mm.stats().registrations - registrations;
            r.munmaps += 1;
            for vma in first..(first + count).min(o.vmas) {
                let start = vma * (PAGES + 1) * PAGE;
                r.mmaps += u64::from(mm::mmap(&mm, start, start + PAGES * PAGE));
            }
        }
        r.churn = started.elapsed();
        stop.store(true, Relaxed);
        for f in faulters {
            let served = f.join().expect("fault thread");
            for (total, n) in r.faults.iter_mut().zip(served) {
                *total += n;
            }
        }
    });

    let before = mm.stats();
    r.at_exit = mm.read().vmas.load(&mm.read()).len() as u64;
    // Another process's mm, in the same domain, keeps being read while this
    // one exits: its read sections are what a grace period waits for, as
    // every CPU's readers are for the kernel's RCU. Each section is a fault,
    // or, with `--reader-us N`, a /proc/<pid>/maps reader that walks the
    // VMAs for N µs under one read section (a long reader).
    let other = mm::new_mm(&domain, 64, PAGES);
    let other_stop = AtomicBool::new(false);
    let other_faults = AtomicU64::new(0);
    let hold = Duration::from_micros(o.reader_us);
    let (last, grace_periods) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut rng = Rng(o.seed.wrapping_add(0x0743));
            while !other_stop.load(Relaxed) {
                if hold.is_zero() {
                    mm::fault(&other, mapped_page(&mut rng, 64));
                } else {
                    let read = other.read();
                    let started = Instant::now();
                    while started.elapsed() < hold {
                        read.vmas.load(&read).iter().for_each(|vma| vma.check());
                    }
                }
                other_faults.fetch_add(1, Relaxed);
            }
        });
        while other_faults.load(Relaxed) == 0 {
            std::thread::yield_now(); // the other process is faulting
        }
        let grace_periods = domain.stats().grace_periods;
        let faults = other_faults.load(Relaxed);
        let started = Instant::now();
        let last = mm::exit_mmap(mm, how);
        r.exit = started.elapsed();
        r.other_sections = other_faults.load(Relaxed) - faults;
        let grace_periods = domain.stats().grace_periods - grace_periods;
        other_stop.store(true, Relaxed);
        (last, grace_periods)
    });
    drop(other);
    assert!(
        holder.upgrade().is_none(),
        "mmget_not_zero must fail after exit"
    );

    r.retired = before.retired;
    r.registrations = before.registrations;
    r.freed_after = before.freed_after_grace_period;
    r.exit_registrations = last.registrations - before.registrations;
    r.exit_grace_periods = grace_periods;
    r.created = CREATED.load(Relaxed) - created;
    r.freed = FREED.load(Relaxed) - freed;
    r
}

fn main() {
    let o = options();
    let munmap = match o.munmap {
        Retire::Capped(cap) => format!("capped, {cap} VMAs a registration"),
        how => how.name().to_string(),
    };
    println!(
        "ownrcu VMA demo: {} VMAs of {PAGES} pages, {} fault threads, {} munmap+mmap pairs \
         (munmap retires: {}), seed {}; during exit another mm's readers hold sections of {}; \
         membarrier: {}",
        o.vmas,
        o.threads,
        o.ops,
        munmap,
        o.seed,
        if o.reader_us == 0 {
            "one fault".to_string()
        } else {
            format!("{} µs", o.reader_us)
        },
        if ownrcu::uses_membarrier() {
            "yes"
        } else {
            "no"
        }
    );
    let mut summary = String::new();
    let mut leaked_total = 0;
    let mut totals = [0_u64; 3];
    for &how in &o.teardown {
        let r = run(&o, how);
        let faults: u64 = r.faults.iter().sum();
        let pct = |n: u64| 100.0 * n as f64 / faults.max(1) as f64;
        match how {
            Exit::Capped(_) => println!("\n--teardown capped --cap {}", o.cap),
            _ => println!("\n--teardown {}", how.name()),
        }
        println!(
            "  faults   {faults} served: {:.2}% under the VMA lock alone, {} under mmap_lock \
             (the VMA was being changed), {} unmapped (munmap got there first)",
            pct(r.faults[Fault::PerVma as usize]),
            r.faults[Fault::Locked as usize],
            r.faults[Fault::Unmapped as usize],
        );
        println!(
            "  faults/s {:.1} M per thread while munmap ran",
            faults as f64 / r.churn.as_secs_f64() / o.threads as f64 / 1e6
        );
        println!(
            "  munmap   {} calls removed {} VMAs: {} grace-period registrations ({}); \
             {} mmaps registered {} replaced arrays",
            r.munmaps,
            r.unmapped_vmas,
            r.munmap_registrations,
            munmap,
            r.mmaps,
            r.registrations - r.munmap_registrations
        );
        let leaked = r.created as i64 - r.freed as i64;
        println!(
            "  exit     {} VMAs freed in {:.2?}: {} registrations, {} grace periods \
             waited for{}; another mm's readers ran {} sections meanwhile",
            r.at_exit,
            r.exit,
            r.exit_registrations,
            r.exit_grace_periods,
            if how == Exit::Direct {
                " (freed directly)"
            } else {
                ""
            },
            r.other_sections
        );
        println!(
            "  VMAs     {} created, {} freed, {leaked} leaked",
            r.created, r.freed
        );
        leaked_total += leaked;
        for (t, n) in totals.iter_mut().zip(r.faults) {
            *t += n;
        }
        summary.push_str(&format!(
            " exit_{}_us={}",
            how.name().replace('-', "_"),
            r.exit.as_micros()
        ));
    }
    let (created, freed) = (CREATED.load(Relaxed), FREED.load(Relaxed));
    println!(
        "\nsummary: faults={} per_vma={} locked={} unmapped={} created={created} \
         freed={freed}{summary} leaked={leaked_total}",
        totals.iter().sum::<u64>(),
        totals[0],
        totals[1],
        totals[2],
    );
    assert_eq!(leaked_total, 0, "VMAs leaked or freed twice");
}
