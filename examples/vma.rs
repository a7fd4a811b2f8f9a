//! PLACEHOLDER for the flagship VMA example (owners, page faults, munmap and
//! exit_mmap arrive with the owners issue). For now this is a small, honest
//! demo of the domain alone:
//!
//! - "fault" threads look up a VMA in a table of RCU-published pointers under
//!   a read guard, with no lock, and check it was not freed under them;
//! - a "munmap" thread replaces a range of VMAs and retires the old ones as
//!   ONE batch (one grace-period registration), or one by one;
//! - at the end, `barrier()` frees everything, and the drop counter proves
//!   that every VMA ever created was freed exactly once.
//!
//! Run: `cargo run --release --example vma [-- --threads N --ops N --range N]`

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::time::Instant;

use ownrcu::{Batch, Domain};

const LIVE: u64 = 0x5afe_5afe_5afe_5afe;
const POISON: u64 = 0xdead_dead_dead_dead;
const SLOTS: usize = 4096;

static CREATED: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// A miniature VMA, about the size of the kernel's (192 bytes).
struct Vma {
    magic: u64,
    start: u64,
    end: u64,
    _payload: [u64; 21],
}

impl Vma {
    fn new(slot: usize) -> *mut Vma {
        CREATED.fetch_add(1, Ordering::Relaxed);
        let start = slot as u64 * 4096;
        Box::into_raw(Box::new(Vma {
            magic: LIVE,
            start,
            end: start + 4096,
            _payload: [0; 21],
        }))
    }
}

impl Drop for Vma {
    fn drop(&mut self) {
        FREED.fetch_add(1, Ordering::Relaxed);
        // Poison before the memory goes back, so a reader that should not
        // be here would see it.
        // SAFETY: `self.magic` is a valid, aligned field of `self`.
        unsafe { std::ptr::write_volatile(&mut self.magic, POISON) };
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v:?}"))
        })
        .unwrap_or(default)
}

fn main() {
    let threads = arg("--threads", 2).max(1);
    let ops = arg("--ops", 2_000);
    let range = arg("--range", 64).clamp(1, SLOTS);

    let domain = Domain::new();
    let table: Vec<AtomicPtr<Vma>> = (0..SLOTS).map(|i| AtomicPtr::new(Vma::new(i))).collect();
    let stop = AtomicBool::new(false);
    let faults = AtomicU64::new(0);

    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (domain, table, stop, faults) = (&domain, &table, &stop, &faults);
            s.spawn(move || {
                let mut addr = t as u64 * 7919;
                let mut served = 0;
                while !stop.load(Ordering::Relaxed) {
                    addr = addr.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let slot = (addr >> 33) as usize % SLOTS;
                    let guard = domain.read();
                    // SAFETY: table entries are freed only through `domain`,
                    // after a grace period; we hold a guard.
                    let vma = unsafe { &*table[slot].load(Ordering::Acquire) };
                    assert_eq!(vma.magic, LIVE, "a fault found a freed VMA");
                    assert!(vma.start <= slot as u64 * 4096 && slot as u64 * 4096 < vma.end);
                    drop(guard);
                    served += 1;
                }
                faults.fetch_add(served, Ordering::Relaxed);
            });
        }

        // munmap+mmap: replace `range` VMAs, retire the old ones.
        let (mut batches, mut singles) = (0, 0);
        for op in 0..ops {
            let first = (op * range) % SLOTS;
            let slots = first..(first + range).min(SLOTS);
            if op % 2 == 0 {
                let mut batch = Batch::with_capacity(&domain, range);
                for i in slots {
                    let old = table[i].swap(Vma::new(i), Ordering::AcqRel);
                    // SAFETY: unlinked by the swap, from `Box::into_raw`,
                    // read only under guards of `domain`.
                    unsafe { batch.push_raw(old) };
                }
                batch.drain();
                batches += 1;
            } else {
                for i in slots {
                    let old = table[i].swap(Vma::new(i), Ordering::AcqRel);
                    // SAFETY: as above.
                    unsafe { domain.retire_raw(old) };
                }
                singles += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        println!("munmap: {batches} ranges retired as one batch each, {singles} VMA by VMA");
    });

    // "exit": retire what is left, then wait for everything to be freed.
    let mut last = Batch::with_capacity(&domain, SLOTS);
    for slot in &table {
        // SAFETY: no reader is left; from `Box::into_raw`.
        unsafe { last.push_raw(slot.swap(std::ptr::null_mut(), Ordering::AcqRel)) };
    }
    last.drain();
    domain.barrier();
    let elapsed = started.elapsed();

    let stats = domain.stats();
    let created = CREATED.load(Ordering::Relaxed);
    let freed = FREED.load(Ordering::Relaxed);
    println!(
        "faults served: {} by {threads} threads in {:.2?}",
        faults.load(Ordering::Relaxed),
        elapsed
    );
    println!(
        "VMAs created {created}, freed {freed}; {} grace periods, {} registrations for {} retired",
        stats.grace_periods, stats.registrations, stats.retired
    );
    println!(
        "summary: placeholder=1 faults={} created={created} freed={freed} retired={} \
         registrations={} batches={} grace_periods={} membarrier={} leaked={}",
        faults.load(Ordering::Relaxed),
        stats.retired,
        stats.registrations,
        stats.batches,
        stats.grace_periods,
        u8::from(ownrcu::uses_membarrier()),
        created - freed
    );
    assert_eq!(created, freed, "leaked VMAs");
}
