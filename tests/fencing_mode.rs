//! Stress in fencing mode: readers that enter sections between every two
//! grace periods, switched to fencing their every entry themselves (crate
//! docs, "How the read side stays cheap"), while a writer replaces and
//! retires objects they read.
//!
//! A start puts a busy reader in that mode only where the barrier is dear,
//! which depends on the machine; this test sets
//! `OWNRCU_FORCE_FENCING_MODE=1` before its domain's first use, so every
//! barrier counts as dear, and checks that the mode was entered. In it, the
//! starts skip the barrier for those readers and the readers' own fences
//! are all that orders their sections against the writer's unlinks: a
//! reader that finds a poisoned object saw it freed under it. With
//! membarrier off (`OWNRCU_NO_MEMBARRIER=1`, Miri) every entry fences
//! anyway and no start enters the mode.
//!
//! One test in the binary: the variable is read once per process.

mod common;

use std::hint;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::thread;

use common::{Drops, Obj};
use ownrcu::Domain;

const READERS: usize = 2;
const SLOTS: usize = if cfg!(miri) { 4 } else { 64 };
const RETIREMENTS: usize = if cfg!(miri) { 300 } else { 300_000 };

/// Raises a stop flag when dropped, on unwinding too, so the readers end
/// and a failing assertion cannot hang the scope.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sections of one to three loads, some with a short spin inside, until
/// `stop`; counts itself in `entered` after its first section.
fn reader(
    domain: &Domain,
    slots: &[AtomicPtr<Obj>],
    seed: usize,
    entered: &AtomicUsize,
    stop: &AtomicBool,
) {
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        let guard = domain.read();
        for i in 0..1 + n % 3 {
            let p = slots[(n * 7 + i) % SLOTS].load(Ordering::Acquire);
            // SAFETY: loaded under the guard; the writer retires an object
            // only after unlinking it, into this domain.
            unsafe { &*p }.check();
        }
        if n % 8 == 0 {
            for _ in 0..n % 64 {
                hint::spin_loop();
            }
        }
        drop(guard);
        if n == seed {
            entered.fetch_add(1, Ordering::Release);
        }
        n = n.wrapping_add(1);
    }
}

#[test]
fn readers_in_fencing_mode_never_see_a_freed_object() {
    // Before the process's first registration with any domain, which reads
    // it; no other thread exists yet that could read the environment.
    std::env::set_var("OWNRCU_FORCE_FENCING_MODE", "1");
    let domain = Domain::new();
    let drops = Drops::default();
    let slots: Vec<AtomicPtr<Obj>> = (0..SLOTS)
        .map(|_| AtomicPtr::new(Box::into_raw(drops.obj())))
        .collect();
    let entered = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for r in 0..READERS {
            let (domain, slots, entered, stop) = (&domain, &slots[..], &entered, &stop);
            s.spawn(move || reader(domain, slots, r * 1_000_003, entered, stop));
        }
        let _stop = StopOnDrop(&stop);
        // The readers' records exist and have cleared their first due
        // marks: from the next start on, they can be put in the mode.
        while entered.load(Ordering::Acquire) < READERS {
            thread::yield_now();
        }
        for i in 0..RETIREMENTS {
            let new = Box::into_raw(drops.obj());
            let old = slots[i * 13 % SLOTS].swap(new, Ordering::AcqRel);
            // SAFETY: from `Box::into_raw`, unlinked by the swap, read only
            // under guards of `domain`.
            unsafe { domain.retire_raw(old) };
            if i % 4096 == 0 {
                // Starts that do not wait for pacing, too.
                domain.synchronize();
            }
        }
    });
    for slot in &slots {
        let old = slot.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as above; no thread reads the slots any more.
        unsafe { domain.retire_raw(old) };
    }
    domain.barrier();
    assert_eq!(
        drops.get(),
        SLOTS + RETIREMENTS,
        "objects leaked or dropped twice"
    );
    let stats = domain.stats();
    assert_eq!(stats.pending, 0);
    if ownrcu::uses_membarrier() {
        assert!(
            stats.fencing_mode_entered > 0,
            "no start put a reader in fencing mode: {stats:?}"
        );
    } else {
        assert_eq!(stats.fencing_mode_entered, 0, "no mode without membarrier");
    }
}
