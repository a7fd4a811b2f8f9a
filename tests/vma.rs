//! The VMA example's address space (`examples/vma/mm.rs`) under test: the
//! unlock-after-free hazard of the per-VMA lock, faults racing with munmap
//! for every retirement strategy, and the four exit strategies, each with
//! every VMA counted.

#[path = "../examples/vma/mm.rs"]
mod mm;

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Mutex, MutexGuard};
use std::thread;

use mm::{Exit, Fault, Retire, CREATED, FREED, PAGE};
use ownrcu::Domain;

#[path = "common/mod.rs"]
mod common;

/// The VMA counters are process-wide: tests that count take turns.
fn counting() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn counts() -> (u64, u64) {
    (CREATED.load(SeqCst), FREED.load(SeqCst))
}

const PAGES: u64 = 4;
const STRIDE: u64 = (PAGES + 1) * PAGE;

/// Jann Horn's hazard, stopped in its window: a fault has released its VMA
/// lock but not yet finished its unlock when munmap, which was waiting for
/// that lock, takes it, unlinks the VMA and retires it. The unlock's last
/// touch must find the VMA alive: it is freed only after the fault leaves
/// its read section.
#[test]
fn a_fault_unlocking_a_vma_that_munmap_just_took_touches_live_memory() {
    static RELEASED: AtomicBool = AtomicBool::new(false);
    static MUNMAP_RETURNED: AtomicBool = AtomicBool::new(false);
    fn in_the_window() {
        RELEASED.store(true, SeqCst);
        while !MUNMAP_RETURNED.load(SeqCst) {
            thread::yield_now();
        }
    }

    for how in [Retire::Batch, Retire::PerObject, Retire::Capped(1)] {
        let _turn = counting();
        RELEASED.store(false, SeqCst);
        MUNMAP_RETURNED.store(false, SeqCst);
        let domain = Domain::new();
        let mm = mm::new_mm(&domain, 4, PAGES);
        let (_, freed) = counts();
        let holding = AtomicBool::new(false);
        thread::scope(|s| {
            let fault = s.spawn(|| {
                let read = mm.read(); // rcu_read_lock
                let vmas = read.vmas.load(&read);
                let vma = vmas[1];
                assert!(vma.lock.try_read(), "no writer yet");
                holding.store(true, SeqCst);
                // Hold the lock until munmap waits for it.
                while !vma.lock.writer_waiting() {
                    thread::yield_now();
                }
                mm::AFTER_RELEASE.with(|hook| hook.set(Some(in_the_window)));
                vma.lock.read_unlock(); // munmap runs to completion inside
                mm::AFTER_RELEASE.with(|hook| hook.set(None));
                assert_eq!(
                    vma.lock.wakeups(),
                    1,
                    "the unlock touched the lock after munmap took it"
                );
                vma.check(); // still alive: freed only after rcu_read_unlock
                drop(read);
            });
            let munmap = s.spawn(|| {
                while !holding.load(SeqCst) {
                    thread::yield_now();
                }
                let removed = mm::munmap(&mm, STRIDE, 2 * STRIDE, how);
                assert_eq!(removed, 1);
                assert!(RELEASED.load(SeqCst), "munmap took the lock in the window");
                assert_eq!(
                    FREED.load(SeqCst),
                    freed,
                    "not freed while the fault is inside"
                );
                MUNMAP_RETURNED.store(true, SeqCst);
            });
            munmap.join().unwrap();
            fault.join().unwrap();
        });
        mm.barrier();
        assert_eq!(
            FREED.load(SeqCst),
            freed + 1,
            "freed once the fault left ({how:?})"
        );
        mm::exit_mmap(mm, Exit::Direct);
    }
}

/// Faults race with munmap and mmap, for every way munmap retires; then the
/// mm exits, for every strategy. Every VMA created is freed exactly once
/// (the destructor asserts "once"), none while a fault could see it (faults
/// check the poison word).
#[test]
fn faults_race_with_munmap_then_exit_frees_every_vma() {
    let ops = if cfg!(miri) { 6 } else { 400 };
    let vmas = if cfg!(miri) { 8 } else { 256 };
    for (how, exit) in [
        (Retire::Batch, Exit::Direct),
        (Retire::PerObject, Exit::Batch),
        (Retire::Synchronize, Exit::PerObject),
        // Three VMAs a munmap in chunks of two; exit in chunks of three.
        (Retire::Capped(2), Exit::Capped(3)),
    ] {
        let _turn = counting();
        let (created, freed) = counts();
        let domain = Domain::new();
        let mm = mm::new_mm(&domain, vmas, PAGES);
        let stop = AtomicBool::new(false);
        let mut mapped = 0;
        let served = thread::scope(|s| {
            let faults: Vec<_> = (0..2_u64)
                .map(|t| {
                    let (mm, stop) = (mm.clone(), &stop);
                    s.spawn(move || {
                        let mut served = [0_u64; 3];
                        let mut addr = t * 7919;
                        // At least a few faults each, however fast munmap is.
                        while served.iter().sum::<u64>() < 50 || !stop.load(Relaxed) {
                            addr = addr
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407)
                                >> 1;
                            served[mm::fault(&mm, addr % (vmas * STRIDE)) as usize] += 1;
                        }
                        served
                    })
                })
                .collect();
            for op in 0..ops {
                let first = (op * 37) % vmas;
                let end = (first + 3).min(vmas);
                mm::munmap(&mm, first * STRIDE, end * STRIDE, how);
                for vma in first..end {
                    assert!(mm::mmap(&mm, vma * STRIDE, vma * STRIDE + PAGES * PAGE));
                    mapped += 1;
                }
            }
            stop.store(true, Relaxed);
            faults
                .into_iter()
                .map(|f| f.join().unwrap())
                .fold([0; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]])
        });
        assert!(
            served[Fault::PerVma as usize] > 0,
            "some faults took the VMA lock alone"
        );
        mm::exit_mmap(mm, exit);
        let (now_created, now_freed) = counts();
        assert_eq!(now_created - created, vmas + mapped);
        assert_eq!(
            now_freed - freed,
            now_created - created,
            "{how:?}/{exit:?}: leaked"
        );
    }
}

#[test]
fn direct_exit_waits_for_no_grace_period_and_registers_nothing() {
    let _turn = counting();
    // Quiet: nothing but this test starts or completes a grace period.
    let domain = common::quiet();
    let mm = mm::new_mm(&domain, 100, PAGES);
    mm::munmap(&mm, 0, 10 * STRIDE, Retire::Batch); // ten pending
    let (created, freed) = counts();
    let grace_periods = domain.stats().grace_periods;
    let stats = mm::exit_mmap(mm, Exit::Direct);
    assert_eq!(stats.registrations, 1, "only munmap's batch");
    assert_eq!(domain.stats().grace_periods, grace_periods);
    assert_eq!(
        counts(),
        (created, freed + 100),
        "90 live and 10 pending, freed directly"
    );
}

#[test]
fn batch_exit_is_one_registration_and_per_object_one_per_vma() {
    let _turn = counting();
    for (exit, registrations) in [(Exit::Batch, 1), (Exit::PerObject, 50 + 1)] {
        let domain = Domain::new();
        let mm = mm::new_mm(&domain, 50, PAGES);
        let (_, freed) = counts();
        let stats = mm::exit_mmap(mm, exit);
        assert_eq!(stats.registrations, registrations, "{exit:?}");
        assert_eq!(stats.freed_after_grace_period, 50, "{exit:?}");
        assert_eq!(FREED.load(SeqCst), freed + 50);
    }
}

/// Patch 39's list at exit: one registration per `cap` VMAs, rounded up
/// (the replaced arrays ride along, one per chunk), and every VMA freed
/// after its grace period.
#[test]
fn capped_exit_is_one_registration_per_cap_vmas() {
    let _turn = counting();
    let cases: &[(u64, usize)] = if cfg!(miri) {
        &[(10, 4), (8, 4), (3, 32)]
    } else {
        &[(50, 32), (64, 32), (50, 8), (50, 1), (5, 32), (1000, 32)]
    };
    for &(vmas, cap) in cases {
        let domain = Domain::new();
        let (created, freed) = counts();
        let mm = mm::new_mm(&domain, vmas, PAGES);
        let stats = mm::exit_mmap(mm, Exit::Capped(cap));
        let chunks = (vmas as usize).div_ceil(cap) as u64;
        assert_eq!(stats.registrations, chunks, "{vmas} VMAs, cap {cap}");
        assert_eq!(stats.batches, chunks, "{vmas} VMAs, cap {cap}");
        assert_eq!(stats.freed_after_grace_period, vmas);
        assert_eq!(stats.pending, 0, "exit_mmap waited for every chunk");
        assert_eq!(
            counts(),
            (created + vmas, freed + vmas),
            "{vmas} VMAs, cap {cap}: leaked"
        );
    }
}

/// munmap capped: one registration per `cap` VMAs of one call, rounded up;
/// a call of no more than `cap` VMAs is one registration, like the batch.
/// Everything it retires is freed after a grace period; exit frees the
/// rest.
#[test]
fn capped_munmap_is_one_registration_per_cap_vmas_of_a_call() {
    let _turn = counting();
    let domain = Domain::new();
    let (created, freed) = counts();
    let mm = mm::new_mm(&domain, 40, PAGES);
    let mut unmapped = 0;
    for (first, count, cap, registrations) in [
        (0, 10, 4, 3),  // 4 + 4 + 2
        (10, 8, 4, 2),  // 4 + 4
        (20, 3, 32, 1), // under the cap: one, as a batch
        (30, 5, 1, 5),  // one per VMA
    ] {
        let before = mm.stats().registrations;
        let removed = mm::munmap(
            &mm,
            first * STRIDE,
            (first + count) * STRIDE,
            Retire::Capped(cap),
        );
        assert_eq!(removed as u64, count);
        assert_eq!(
            mm.stats().registrations - before,
            registrations,
            "{count} VMAs, cap {cap}"
        );
        unmapped += count;
    }
    // A fault finds none of them.
    for vma in (0..10).chain(10..18).chain(20..23).chain(30..35) {
        assert_eq!(mm::fault(&mm, vma * STRIDE), Fault::Unmapped);
    }
    assert_eq!(mm::fault(&mm, 18 * STRIDE), Fault::PerVma);
    mm.barrier();
    assert_eq!(mm.stats().freed_after_grace_period, unmapped);
    assert_eq!(FREED.load(SeqCst), freed + unmapped);
    let stats = mm::exit_mmap(mm, Exit::Direct);
    assert_eq!(stats.registrations, 3 + 2 + 1 + 5);
    assert_eq!(counts(), (created + 40, freed + 40), "leaked");
}

#[test]
fn exit_and_retire_parse_their_names() {
    for exit in Exit::all(7) {
        assert_eq!(Exit::parse(exit.name(), 7), Some(exit));
    }
    assert_eq!(Exit::parse("capped", 32), Some(Exit::Capped(32)));
    assert_eq!(Exit::parse("lazy", 32), None);
    for retire in Retire::all(7) {
        assert_eq!(Retire::parse(retire.name(), 7), Some(retire));
    }
    assert_eq!(Retire::parse("capped", 8), Some(Retire::Capped(8)));
    assert_eq!(Retire::parse("lazy", 8), None);
}
