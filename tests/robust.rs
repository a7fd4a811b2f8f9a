//! Robust domains: a reader that stays in its section holds only the
//! objects born before its last load; what it loaded stays valid; births
//! change nothing elsewhere; a panicking deleter in an early free surfaces
//! once and loses nothing.

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::thread;

use common::{stalled_reader, Drops, Obj};
use ownrcu::{Birth, Domain, Link, Owned, Shared, DEFAULT_SOFT_MAX_PENDING};

/// Objects retired per test (Miri runs a few hundred).
const N: usize = if cfg!(miri) { 300 } else { 20_000 };

/// The bound of the tests' domains, and their soft bound.
const BOUND: usize = if cfg!(miri) { 64 } else { 1024 };
const SOFT: usize = if cfg!(miri) { 16 } else { 64 };

fn robust() -> Domain {
    Domain::builder()
        .robust(true)
        .reclaimer(false)
        .max_pending(BOUND)
        .soft_max_pending(SOFT)
        .build()
}

/// A node with the birth it was published with.
struct Node {
    obj: Box<Obj>,
    birth: Birth,
}

/// Frees a `Node` from `Box::into_raw`.
unsafe fn free_node(ptr: *mut Node) {
    // SAFETY: every node here comes from `Box::into_raw` and is retired once.
    drop(unsafe { Box::from_raw(ptr) });
}

/// Retires `n` objects born now, never published (unreachable for every
/// reader).
fn retire_fresh(domain: &Domain, drops: &Drops, n: usize) {
    for _ in 0..n {
        let birth = domain.birth();
        let node = Box::into_raw(Box::new(Node {
            obj: drops.obj(),
            birth,
        }));
        // SAFETY: 1-5: `free_node` frees this box once, on any thread, and
        // drops only a `Node` (`Send + 'static`); never published, so no
        // reader holds it; 6: its birth was read first; 7: no reader at all.
        unsafe { domain.retire_born(node, free_node, birth) };
    }
}

#[test]
fn a_stuck_reader_holds_only_what_was_born_before_it() {
    let drops = Drops::default();
    let domain = robust();
    let (leave, reader) = stalled_reader(&domain);
    let cookie = domain.grace_period();
    retire_fresh(&domain, &drops, N);
    let stats = domain.stats();
    assert!(stats.freed_by.early > 0, "nothing freed early: {stats:?}");
    assert!(
        stats.peak_pending <= 2 * BOUND as u64,
        "garbage grew past twice the bound behind the reader: {stats:?}"
    );
    // An early free is no grace period: the reader still holds them.
    assert!(
        !domain.poll(&cookie),
        "a grace period passed a stuck reader"
    );
    leave.send(()).unwrap();
    reader.join().unwrap();
    domain.barrier();
    assert_eq!(drops.get(), N, "every object freed exactly once");
}

/// Behind a reader that stays, objects born after it entered are freed as
/// they are registered, by scans that cost no process-wide barrier: the
/// heavy fences are those of the grace periods that started, and garbage
/// never gets past the soft bound (so no barrier scan runs).
#[test]
fn a_stuck_reader_costs_no_barrier_per_scan() {
    let drops = Drops::default();
    let domain = Domain::builder().robust(true).reclaimer(false).build();
    let (leave, reader) = stalled_reader(&domain);
    let before = domain.stats();
    retire_fresh(&domain, &drops, N);
    let after = domain.stats();
    let fences = after.heavy_fences - before.heavy_fences;
    assert!(
        fences <= 1,
        "{fences} heavy fences for {N} objects: {after:?}"
    );
    assert!(
        after.peak_pending <= DEFAULT_SOFT_MAX_PENDING as u64,
        "garbage grew past the soft bound behind the reader: {after:?}"
    );
    assert!(
        after.freed_by.early + DEFAULT_SOFT_MAX_PENDING as u64 >= N as u64,
        "not freed early: {after:?}"
    );
    leave.send(()).unwrap();
    reader.join().unwrap();
    domain.barrier();
    assert_eq!(drops.get(), N, "every object freed exactly once");
}

/// Objects born before a new domain's first grace period started are
/// freed early like any others: no birth is the mark of an object retired
/// without one.
#[test]
fn objects_born_before_the_first_grace_period_are_freed_early() {
    let drops = Drops::default();
    let domain = robust();
    let (leave, reader) = stalled_reader(&domain);
    retire_fresh(&domain, &drops, 10);
    domain.collect();
    let stats = domain.stats();
    assert_eq!(stats.freed_by.early, 10, "{stats:?}");
    assert_eq!(drops.get(), 10);
    leave.send(()).unwrap();
    reader.join().unwrap();
}

/// A reader in a section that began in an older era loads a node born in
/// the current one and stays; the writer unlinks and retires it, then
/// retires many more and collects: the node is never freed under the
/// reader (its load reserved the node's era), and is freed once it leaves.
fn loaded_node_stays(exchange: bool) {
    let drops = Drops::default();
    let node_drops = Drops::default();
    let domain = robust();
    // SAFETY: its nodes come from `Box::into_raw` and are retired once
    // unlinked, into `domain`, whose guards are the only ones used.
    let link: Link<Node, true> = unsafe { Link::null() };
    let (entered_tx, entered_rx) = mpsc::channel();
    let (load_tx, load_rx) = mpsc::channel::<()>();
    let (loaded_tx, loaded_rx) = mpsc::channel();
    let (check_tx, check_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        // Dropped if an assertion below fails, so the reader leaves.
        let check_tx = check_tx;
        let (domain, link) = (&domain, &link);
        s.spawn(move || {
            let guard = domain.read();
            entered_tx.send(()).unwrap();
            load_rx.recv().unwrap();
            let node = if exchange {
                link.fetch_or(0, &guard)
            } else {
                link.load(&guard)
            };
            let node = node.as_ref().expect("published before the load");
            node.obj.check();
            loaded_tx.send(()).unwrap();
            let _ = check_rx.recv();
            node.obj.check();
            drop(guard);
        });
        entered_rx.recv().unwrap();
        // A grace period starts and the reader holds it: a newer era.
        retire_fresh(domain, &drops, 1);
        domain.hurry();
        let birth = domain.birth();
        let guard = domain.read();
        let node = Owned::new(Node {
            obj: node_drops.obj(),
            birth,
        });
        link.store(node.into_shared(&guard));
        drop(guard);
        load_tx.send(()).unwrap();
        loaded_rx.recv().unwrap();
        let guard = domain.read();
        let old = link.swap(Shared::null(), &guard);
        let (old, birth) = (old.as_ptr().cast_mut(), old.as_ref().unwrap().birth);
        drop(guard);
        // SAFETY: 1-5 as in `retire_fresh`, unlinked by the swap; 6: its
        // birth was read before the store published it; 7: read only
        // through `link`.
        unsafe { domain.retire_born(old, free_node, birth) };
        retire_fresh(domain, &drops, N);
        domain.collect();
        assert_eq!(node_drops.get(), 0, "freed under the reader that loaded it");
        check_tx.send(()).unwrap();
    });
    domain.barrier();
    assert_eq!(node_drops.get(), 1, "the node freed exactly once");
    assert_eq!(drops.get(), N + 1, "every object freed exactly once");
}

#[test]
fn what_a_stuck_reader_loaded_stays_valid() {
    loaded_node_stays(false);
}

#[test]
fn what_a_stuck_reader_got_from_an_exchange_stays_valid() {
    loaded_node_stays(true);
}

#[test]
fn births_change_nothing_in_a_domain_that_is_not_robust() {
    let drops = Drops::default();
    let domain = Domain::builder()
        .reclaimer(false)
        .max_pending(BOUND)
        .soft_max_pending(SOFT)
        .build();
    nothing_freed_behind_a_stuck_reader(&domain, &drops, |domain| {
        retire_fresh(domain, &drops, N / 10);
    });
}

/// Runs `retire` (which retires `N / 10` objects counted by `drops`)
/// behind a reader that stays, checks that none of them was freed, early
/// or not, and that all are once the reader leaves.
fn nothing_freed_behind_a_stuck_reader(
    domain: &Domain,
    drops: &Drops,
    retire: impl FnOnce(&Domain),
) {
    let (leave, reader) = stalled_reader(domain);
    retire(domain);
    let stats = domain.stats();
    assert_eq!((stats.freed, stats.freed_by.early), (0, 0), "{stats:?}");
    leave.send(()).unwrap();
    reader.join().unwrap();
    domain.barrier();
    assert_eq!(drops.get(), N / 10);
}

#[test]
fn objects_retired_without_a_birth_wait_for_their_grace_period() {
    let drops = Drops::default();
    let domain = robust();
    nothing_freed_behind_a_stuck_reader(&domain, &drops, |domain| {
        for _ in 0..N / 10 {
            domain.retire(drops.obj());
        }
    });
}

/// An owned section reserves what it loads like a thread's section; after
/// an exchange it holds everything until it repins.
#[test]
fn an_owned_section_that_exchanged_holds_everything_until_it_repins() {
    let drops = Drops::default();
    let domain = robust();
    // SAFETY: nothing non-null is ever stored.
    let link: Link<u64, true> = unsafe { Link::null() };
    let mut section = domain.read_owned();
    let _ = link.load(section.guard());
    retire_fresh(&domain, &drops, N / 4);
    let loaded = domain.stats().freed_by.early;
    assert!(
        loaded > 0,
        "an owned section that only loaded held everything"
    );
    let _ = link.fetch_or(1, section.guard());
    retire_fresh(&domain, &drops, N / 4);
    assert_eq!(
        domain.stats().freed_by.early,
        loaded,
        "freed early behind an owned section that exchanged"
    );
    section.repin();
    retire_fresh(&domain, &drops, N / 4);
    assert!(
        domain.stats().freed_by.early > loaded,
        "repin did not reset it"
    );
    drop(section);
    domain.barrier();
    assert_eq!(drops.get(), 3 * (N / 4));
}

static PANIC_ARMED: AtomicBool = AtomicBool::new(false);
static PANICKED: AtomicUsize = AtomicUsize::new(0);

/// Frees a `Node`, then panics once while armed.
unsafe fn free_node_panicking(ptr: *mut Node) {
    // SAFETY: as for `free_node`.
    drop(unsafe { Box::from_raw(ptr) });
    if PANIC_ARMED.swap(false, SeqCst) {
        PANICKED.fetch_add(1, SeqCst);
        panic!("deleter panicked");
    }
}

#[test]
fn a_panicking_deleter_in_an_early_free_surfaces_once() {
    let drops = Drops::default();
    let domain = robust();
    let (leave, reader) = stalled_reader(&domain);
    let mut caught = 0;
    for i in 0..N {
        if i == N / 2 {
            PANIC_ARMED.store(true, SeqCst);
        }
        let birth = domain.birth();
        let node = Box::into_raw(Box::new(Node {
            obj: drops.obj(),
            birth,
        }));
        let retire = AssertUnwindSafe(|| {
            // SAFETY: as in `retire_fresh`; the deleter frees the box
            // before it panics.
            unsafe { domain.retire_born(node, free_node_panicking, birth) }
        });
        caught += usize::from(panic::catch_unwind(retire).is_err());
    }
    leave.send(()).unwrap();
    reader.join().unwrap();
    let last = panic::catch_unwind(AssertUnwindSafe(|| domain.barrier()));
    caught += usize::from(last.is_err());
    assert_eq!(PANICKED.load(SeqCst), 1);
    assert_eq!(caught, 1, "the panic surfaced {caught} times");
    assert!(domain.stats().freed_by.early > 0);
    assert_eq!(drops.get(), N, "every object freed exactly once");
}

/// Batches of born objects are freed early as one unit; a batch holding one
/// object without a birth waits for its grace period.
#[test]
fn batches_of_born_objects_are_freed_early() {
    let drops = Drops::default();
    let domain = robust();
    let (leave, reader) = stalled_reader(&domain);
    let batches = N / 64;
    for _ in 0..batches {
        let mut batch = domain.batch::<Node>();
        for _ in 0..64 {
            let birth = domain.birth();
            let node = Box::into_raw(Box::new(Node {
                obj: drops.obj(),
                birth,
            }));
            // SAFETY: as in `retire_fresh`, into the batch's domain.
            unsafe { batch.push_born(node, free_node, birth) };
        }
        batch.drain();
    }
    let stats = domain.stats();
    assert!(stats.freed_by.early > 0, "{stats:?}");
    assert!(stats.peak_pending <= 2 * BOUND as u64, "{stats:?}");
    let early = stats.freed_by.early;
    let mut mixed = domain.batch::<Node>();
    mixed.push(Box::new(Node {
        obj: drops.obj(),
        birth: domain.birth(),
    }));
    mixed.drain();
    domain.collect();
    assert_eq!(
        domain.stats().freed_by.early,
        early,
        "a box without a birth freed early"
    );
    leave.send(()).unwrap();
    reader.join().unwrap();
    domain.barrier();
    assert_eq!(drops.get(), batches * 64 + 1);
}

/// A robust domain's scans start grace periods while one is held up; an
/// older one completes once the readers that entered before it leave, even
/// while a reader that entered later still holds the newest.
#[test]
fn older_grace_periods_complete_while_a_newer_one_is_held_up() {
    let drops = Drops::default();
    let domain = robust();
    let (leave_old, old_reader) = stalled_reader(&domain);
    let cookie = domain.grace_period();
    retire_fresh(&domain, &drops, 1);
    domain.collect(); // starts the cookie's grace period, then a scan starts one more
    let (leave_new, new_reader) = stalled_reader(&domain);
    retire_fresh(&domain, &drops, 1);
    domain.collect(); // a scan starts another, which the new reader holds up
    assert!(!domain.poll(&cookie), "completed under the old reader");
    leave_old.send(()).unwrap();
    old_reader.join().unwrap();
    assert!(
        domain.poll(&cookie),
        "held up by a reader that entered after it"
    );
    let newest = domain.grace_period();
    assert!(!domain.poll(&newest), "completed under the new reader");
    leave_new.send(()).unwrap();
    new_reader.join().unwrap();
    domain.barrier();
    assert!(domain.poll(&newest));
    assert_eq!(drops.get(), 2);
}

/// Readers that keep entering and leaving do not stop a robust domain
/// from freeing early behind one that stays: scans start grace periods,
/// so the busy readers' new sections are younger than the queued units.
#[test]
fn busy_readers_do_not_block_early_frees_behind_a_stuck_one() {
    let drops = Drops::default();
    let domain = robust();
    // SAFETY: its nodes come from `Box::into_raw` and are retired once
    // unlinked, into `domain`, whose guards are the only ones used.
    let link: Link<Node, true> = unsafe { Link::null() };
    let (leave, reader) = stalled_reader(&domain);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let (domain, link, stop) = (&domain, &link, &stop);
        for _ in 0..2 {
            s.spawn(move || {
                while !stop.load(SeqCst) {
                    let guard = domain.read();
                    if let Some(node) = link.load(&guard).as_ref() {
                        node.obj.check();
                    }
                }
            });
        }
        for _ in 0..N {
            let birth = domain.birth();
            let guard = domain.read();
            let new = Owned::new(Node {
                obj: drops.obj(),
                birth,
            });
            let old = link.swap(new.into_shared(&guard), &guard);
            let old = old
                .as_ref()
                .map(|node| (old.as_ptr().cast_mut(), node.birth));
            drop(guard);
            if let Some((old, birth)) = old {
                // SAFETY: 1-5 as in `retire_fresh`, unlinked by the swap;
                // 6: its birth was read before the swap published it; 7:
                // read only through `link`.
                unsafe { domain.retire_born(old, free_node, birth) };
            }
        }
        stop.store(true, SeqCst);
    });
    let stats = domain.stats();
    assert!(stats.freed_by.early > N as u64 / 2, "{stats:?}");
    assert!(stats.peak_pending <= 2 * BOUND as u64, "{stats:?}");
    leave.send(()).unwrap();
    reader.join().unwrap();
    let guard = domain.read();
    let last = link.swap(Shared::null(), &guard);
    let (last, birth) = (last.as_ptr().cast_mut(), last.as_ref().unwrap().birth);
    drop(guard);
    // SAFETY: as above.
    unsafe { domain.retire_born(last, free_node, birth) };
    domain.barrier();
    assert_eq!(drops.get(), N, "every node freed exactly once");
}

/// A reader that stays is reported once by the stall warnings, however
/// many grace periods the early frees start behind it.
#[test]
#[cfg_attr(miri, ignore = "waits for a real-time stall timeout")]
fn a_stuck_reader_is_reported_once_while_early_frees_go_on() {
    let drops = Drops::default();
    let reports = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = reports.clone();
    let domain = Domain::builder()
        .robust(true)
        .reclaimer(false)
        .max_pending(BOUND)
        .soft_max_pending(SOFT)
        .stall_timeout(Some(std::time::Duration::from_millis(20)))
        .on_stall(move |_| {
            counted.fetch_add(1, SeqCst);
        })
        .build();
    let (leave, reader) = stalled_reader(&domain);
    let cookie = domain.grace_period();
    let mut retired = N;
    thread::scope(|s| {
        let waiter = s.spawn(|| domain.wait(&cookie)); // looks for stalls
        common::eventually("the stuck reader reported", || {
            retire_fresh(&domain, &drops, 1_000);
            retired += 1_000;
            reports.load(SeqCst) > 0
        });
        retire_fresh(&domain, &drops, N);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(reports.load(SeqCst), 1, "reported more than once");
        assert!(domain.stats().freed_by.early > 0);
        leave.send(()).unwrap();
        waiter.join().unwrap();
    });
    reader.join().unwrap();
    domain.barrier();
    assert_eq!(drops.get(), retired, "every object freed exactly once");
}

#[test]
fn pointers_for_plain_domains_refuse_a_robust_guard() {
    use ownrcu::{Atomic, UncheckedDomain};
    let domain = robust();
    let guard = domain.read();
    // SAFETY: nothing is ever linked; only guards of `domain` are passed.
    let plain: Link<u64> = unsafe { Link::null() };
    let message = |r: std::thread::Result<_>| match r {
        Ok(()) => String::from("no panic"),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    let load = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = plain.load(&guard);
    }));
    assert!(message(load).contains("a Link<T> was used with a guard of a robust domain"));
    let mark = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = plain.fetch_or(1, &guard);
    }));
    assert!(message(mark).contains("robust"));
    // SAFETY: as above.
    let unchecked: Atomic<u64, UncheckedDomain> = unsafe { Atomic::null_unchecked() };
    let load = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = unchecked.load(&guard);
    }));
    assert!(message(load).contains("UncheckedDomain"));
    // Their robust forms work in any domain.
    // SAFETY: as above.
    let robust_link: Link<u64, true> = unsafe { Link::null() };
    assert!(robust_link.load(&guard).is_null());
    let plain_domain = Domain::new();
    // SAFETY: nothing is ever linked; only guards of `plain_domain`.
    let any: Link<u64, true> = unsafe { Link::null() };
    assert!(any.load(&plain_domain.read()).is_null());
    // SAFETY: as above.
    let robust_atomic: Atomic<u64, UncheckedDomain<true>> = unsafe { Atomic::null_unchecked() };
    assert!(robust_atomic.load(&guard).is_null());
}
