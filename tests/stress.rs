//! Stress: threads that read shared slots under guards while replacing
//! objects and retiring the old ones every way the API allows.
//!
//! Every object carries a `magic` word set to `LIVE`; its destructor counts
//! the drop and overwrites `magic` with `POISON` (a volatile write) before the
//! memory goes back to the allocator. A reader that finds anything but `LIVE`
//! saw an object freed under it. Reading freed memory is undefined behaviour,
//! so outside Miri this is a best-effort detector; under Miri the access
//! itself is reported. At the end every object ever created must have been
//! dropped exactly once.
//!
//! The last tests run barriers in a loop while threads register, retire and
//! exit around them (the buffer-stealing handshake against new and reused
//! thread records).

use std::hint;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::thread;

use ownrcu::{Domain, GracePeriod};

const LIVE: u64 = 0x11fe_11fe_11fe_11fe;
const POISON: u64 = 0xdead_dead_dead_dead;

const THREADS: usize = 4;
const OPS: usize = if cfg!(miri) { 200 } else { 200_000 };
const SLOTS: usize = if cfg!(miri) { 4 } else { 64 };

/// Counters of one stress run.
struct Counts {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counts {
    const fn new() -> Self {
        Self {
            created: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    }
}

struct Obj {
    magic: u64,
    id: u64,
    payload: [u64; 4],
    counts: &'static Counts,
}

impl Obj {
    fn new(id: u64, counts: &'static Counts) -> *mut Obj {
        counts.created.fetch_add(1, Ordering::Relaxed);
        Box::into_raw(Box::new(Obj {
            magic: LIVE,
            id,
            payload: [id ^ 1, id ^ 2, id ^ 3, id ^ 4],
            counts,
        }))
    }

    /// Checks the object is alive and intact.
    fn check(&self) -> u64 {
        // SAFETY: a valid, aligned field of a live object (if the object is
        // not live, the test is already failing).
        let magic = unsafe { ptr::read_volatile(&self.magic) };
        assert_eq!(
            magic, LIVE,
            "a reader saw a freed object (magic {magic:#x}, id {})",
            self.id
        );
        for (i, word) in self.payload.iter().enumerate() {
            assert_eq!(*word, self.id ^ (i as u64 + 1), "torn object {}", self.id);
        }
        self.payload.iter().fold(self.id, |a, w| a.wrapping_add(*w))
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // Best-effort double-drop detector.
        // SAFETY: a valid, aligned field of `self`.
        let magic = unsafe { ptr::read_volatile(&self.magic) };
        assert_eq!(magic, LIVE, "object {} dropped twice", self.id);
        self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { ptr::write_volatile(&mut self.magic, POISON) };
    }
}

/// Raises a stop flag when dropped, on unwinding too, so helper threads that
/// loop on it end and a failing assertion cannot hang a scope.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The shared table.
struct Table {
    slots: Vec<AtomicPtr<Obj>>,
    counts: &'static Counts,
}

impl Table {
    fn new(counts: &'static Counts) -> Self {
        Self {
            slots: (0..SLOTS)
                .map(|i| AtomicPtr::new(Obj::new(i as u64, counts)))
                .collect(),
            counts,
        }
    }

    /// Retires whatever is left in the slots (no thread may use the table
    /// any more).
    fn retire_all(&self, domain: &Domain) {
        for slot in &self.slots {
            let old = slot.swap(ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: from `Box::into_raw`, unlinked by the swap, read only
            // under guards of `domain`.
            unsafe { domain.retire_raw(old) };
        }
    }
}

/// One worker: mostly reads, sometimes replaces an object and retires the
/// old one in one of several ways.
fn worker(domain: &Domain, table: &Table, seed: u64, ops: usize) -> u64 {
    let mut rng = Rng::new(seed);
    let mut batch = domain.batch::<Obj>();
    // Polled grace periods: objects freed directly once their cookie is
    // complete (`get_state_synchronize_rcu` + `poll_state_synchronize_rcu`).
    let mut polled: Vec<(GracePeriod, *mut Obj)> = Vec::new();
    let mut sum = 0_u64;
    for op in 0..ops {
        let r = rng.below(100);
        if r < 70 {
            let guard = domain.read();
            let p = table.slots[rng.below(SLOTS)].load(Ordering::Acquire);
            // SAFETY: loaded under the guard; only freed after a grace
            // period of `domain` that started after it was unlinked.
            let obj = unsafe { &*p };
            sum = sum.wrapping_add(obj.check());
            if r < 10 {
                // A nested section, and a longer look at the first object.
                let inner = domain.read();
                let q = table.slots[rng.below(SLOTS)].load(Ordering::Acquire);
                // SAFETY: as above.
                sum = sum.wrapping_add(unsafe { &*q }.check());
                drop(inner);
                for _ in 0..rng.below(64) {
                    hint::spin_loop();
                }
                if r < 2 {
                    thread::yield_now();
                }
                sum = sum.wrapping_add(obj.check());
            }
            drop(guard);
            continue;
        }
        let id = (seed << 40) | op as u64;
        let new = Obj::new(id, table.counts);
        let old = table.slots[rng.below(SLOTS)].swap(new, Ordering::AcqRel);
        match r {
            70..=81 => {
                // SAFETY: from `Box::into_raw`, unlinked by the swap, read
                // only under guards of `domain`.
                unsafe { domain.retire_raw(old) };
            }
            82..=91 => {
                // SAFETY: as above.
                unsafe { batch.push_raw(old) };
                if batch.len() > rng.below(16) {
                    std::mem::replace(&mut batch, domain.batch()).drain();
                }
            }
            92..=94 => {
                // Every reader that could have loaded `old` is done after
                // this; free it here.
                domain.synchronize();
                // SAFETY: unlinked, and a full grace period has passed.
                drop(unsafe { Box::from_raw(old) });
            }
            95..=96 => {
                polled.push((domain.grace_period(), old));
            }
            97 => {
                let cookie = domain.grace_period();
                domain.wait(&cookie);
                // SAFETY: unlinked before the cookie, whose grace period
                // has completed.
                drop(unsafe { Box::from_raw(old) });
            }
            _ => {
                // SAFETY: as for `retire_raw` above.
                unsafe { domain.retire_raw(old) };
                domain.barrier();
            }
        }
        while let Some((cookie, _)) = polled.first() {
            if !domain.poll(cookie) {
                break;
            }
            let (_, p) = polled.remove(0);
            // SAFETY: unlinked before the cookie was taken; its grace period
            // has completed.
            drop(unsafe { Box::from_raw(p) });
        }
    }
    batch.drain();
    for (cookie, p) in polled {
        domain.wait(&cookie);
        // SAFETY: as above.
        drop(unsafe { Box::from_raw(p) });
    }
    sum
}

fn run(domain: &Domain, counts: &'static Counts) {
    let table = Table::new(counts);
    thread::scope(|s| {
        for t in 0..THREADS {
            let table = &table;
            s.spawn(move || worker(domain, table, t as u64 + 1, OPS));
        }
    });
    table.retire_all(domain);
    domain.barrier();
    let created = counts.created.load(Ordering::Relaxed);
    let dropped = counts.dropped.load(Ordering::Relaxed);
    assert_eq!(dropped, created, "objects leaked or dropped twice");
    assert!(created > SLOTS);
}

#[test]
fn stress_global_domain() {
    static COUNTS: Counts = Counts::new();
    run(Domain::global(), &COUNTS);
}

#[test]
fn stress_user_domain() {
    static COUNTS: Counts = Counts::new();
    let domain = Domain::new();
    run(&domain, &COUNTS);
    let s = domain.stats();
    assert_eq!(s.pending, 0);
    assert_eq!(s.retired, s.freed);
    drop(domain);
    assert_eq!(
        COUNTS.dropped.load(Ordering::Relaxed),
        COUNTS.created.load(Ordering::Relaxed)
    );
}

/// Two long-lived workers, and short-lived ones that come and go (records
/// are handed from exiting threads to new ones while others read); at the
/// end the domain is torn down instead of barriered.
#[test]
fn stress_thread_churn_and_teardown() {
    static COUNTS: Counts = Counts::new();
    let domain = Domain::new();
    let table = Table::new(&COUNTS);
    let waves = if cfg!(miri) { 2 } else { 20 };
    thread::scope(|s| {
        for t in 0..2 {
            let (domain, table) = (&domain, &table);
            s.spawn(move || worker(domain, table, t + 1, OPS));
        }
        for wave in 0..waves {
            thread::scope(|s| {
                for t in 0..2 {
                    let (domain, table) = (&domain, &table);
                    let seed = 100 + wave * 2 + t;
                    s.spawn(move || worker(domain, table, seed, OPS / waves as usize));
                }
            });
        }
    });
    table.retire_all(&domain);
    drop(domain);
    let created = COUNTS.created.load(Ordering::Relaxed);
    assert_eq!(COUNTS.dropped.load(Ordering::Relaxed), created);
}

/// Barriers and synchronizes in a loop while short-lived threads register
/// with the domain (publishing new records or reusing released ones),
/// retire into their buffers and exit, handing them over. Every object is
/// freed exactly once.
#[test]
fn barriers_while_threads_come_and_go() {
    static COUNTS: Counts = Counts::new();
    let domain = Domain::new();
    let waves = if cfg!(miri) { 3 } else { 200 };
    let per_thread = if cfg!(miri) { 6 } else { 100 };
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let _stop = StopOnDrop(&stop); // also on unwinding: no hang
        s.spawn(|| {
            let mut i = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                if i % 2 == 0 {
                    domain.barrier();
                } else {
                    domain.synchronize();
                }
                i += 1;
            }
        });
        for wave in 0..waves {
            thread::scope(|s| {
                for t in 0..3 {
                    let domain = &domain;
                    s.spawn(move || {
                        for i in 0..per_thread {
                            let id = (wave << 32) | (t << 16) | i;
                            let obj = Obj::new(id, &COUNTS);
                            if i % 5 == 4 {
                                let mut batch = domain.batch();
                                // SAFETY: from `Box::into_raw`, never
                                // published.
                                unsafe { batch.push_raw(obj) };
                                batch.drain();
                            } else {
                                // SAFETY: as above.
                                unsafe { domain.retire_raw(obj) };
                            }
                        }
                    });
                }
            });
        }
        stop.store(true, Ordering::Relaxed);
    });
    domain.barrier();
    let created = COUNTS.created.load(Ordering::Relaxed);
    assert_eq!(COUNTS.dropped.load(Ordering::Relaxed), created);
    assert_eq!(created as u64, domain.stats().freed);
}

/// As above, but each wave uses a fresh domain, so every registration publishes a new
/// record while a barrier may be taking the buffers of the others. Every
/// object is freed exactly once.
#[test]
fn barriers_while_threads_register_with_fresh_domains() {
    static COUNTS: Counts = Counts::new();
    let waves = if cfg!(miri) { 4 } else { 100 };
    let per_thread = if cfg!(miri) { 6 } else { 100 };
    for wave in 0..waves {
        let domain = Domain::new();
        let stop = AtomicBool::new(false);
        thread::scope(|s| {
            let _stop = StopOnDrop(&stop); // also on unwinding: no hang
            s.spawn(|| {
                let mut i = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    if i % 3 == 2 {
                        domain.synchronize();
                    } else {
                        domain.barrier();
                    }
                    i += 1;
                }
            });
            let workers: Vec<_> = (0..3)
                .map(|t| {
                    let domain = &domain;
                    s.spawn(move || {
                        for i in 0..per_thread {
                            let id = (wave << 32) | (t << 16) | i;
                            let obj = Obj::new(id, &COUNTS);
                            if i % 5 == 4 {
                                let mut batch = domain.batch();
                                // SAFETY: from `Box::into_raw`, never
                                // published.
                                unsafe { batch.push_raw(obj) };
                                batch.drain();
                            } else {
                                // SAFETY: as above.
                                unsafe { domain.retire_raw(obj) };
                            }
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            stop.store(true, Ordering::Relaxed);
        });
        domain.barrier();
        let s = domain.stats();
        assert_eq!(
            (s.retired, s.freed, s.pending),
            (3 * per_thread, 3 * per_thread, 0)
        );
        drop(domain);
        let created = COUNTS.created.load(Ordering::Relaxed);
        assert_eq!(COUNTS.dropped.load(Ordering::Relaxed), created);
    }
}

/// Barriers in a loop while new threads keep registering and retiring. The
/// threads stay alive until the end, so every registration publishes a new
/// record, possibly while a barrier is between announcing its steal to the
/// records it knows and taking their buffers.
#[test]
fn barriers_while_new_threads_register() {
    static COUNTS: Counts = Counts::new();
    let threads = if cfg!(miri) { 12 } else { 64 };
    let domain = Domain::new();
    let stop = AtomicBool::new(false);
    let all_registered = std::sync::Barrier::new(threads as usize);
    thread::scope(|s| {
        let _stop = StopOnDrop(&stop); // also on unwinding: no hang
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                domain.barrier();
            }
        });
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (domain, all_registered) = (&domain, &all_registered);
                s.spawn(move || {
                    for i in 0..3 {
                        let obj = Obj::new((t << 8) | i, &COUNTS);
                        // SAFETY: from `Box::into_raw`, never published.
                        unsafe { domain.retire_raw(obj) };
                    }
                    // Stay registered until every worker has registered.
                    all_registered.wait();
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    domain.barrier();
    let created = COUNTS.created.load(Ordering::Relaxed);
    assert_eq!(created, 3 * threads as usize);
    assert_eq!(COUNTS.dropped.load(Ordering::Relaxed), created);
}
