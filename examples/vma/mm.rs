//! A miniature address space: an `Mm` owner holding VMAs in an RCU-replaced
//! array ordered by address, page faults that take a per-VMA lock with no
//! address-space lock, and mmap/munmap/exit under the address-space lock.
//!
//! Shared by the `vma` example (`main.rs`), its benches (`benches/vma.rs`)
//! and its tests (`tests/vma.rs`).
//!
//! # Why a fault can unlock a VMA that a writer is freeing
//!
//! A fault finds its VMA under a read guard of the mm (`rcu_read_lock`),
//! read-locks the VMA's own lock, handles the fault, and unlocks it *before
//! it leaves the read section*. munmap write-locks each VMA it removes
//! (`vma_start_write`), so it waits for the faults that hold it; but a
//! reader's unlock still touches the lock *after* releasing it (here: it
//! counts a wake-up for a waiting writer, as `up_read` wakes waiters). The
//! writer may get the lock in between, unlink the VMA and retire it. If it
//! freed the VMA right away, that last touch would be a use after free (the
//! hazard Jann Horn pointed out). It cannot happen here: the VMA is freed
//! only after a grace period, and the reader is still inside its read
//! section until its unlock has returned. `tests/vma.rs` stops a reader
//! inside that window and checks it.
//!
//! At exit the last user handle goes: no fault can be running (each one
//! borrows a user handle), so every VMA is freed directly, with no grace
//! period (`exit_mmap`).
//!
//! # The capped list (patch 39)
//!
//! The seed patch throttled `call_rcu` by keeping a per-mm list of freed
//! VMAs and issuing one `call_rcu` per 32 of them. [`Retire::Capped`] and
//! [`Exit::Capped`] register one grace period per `cap` VMAs of one commit
//! ([`Removed::retire_capped`]). The cap counts within one munmap or one
//! exit: the patch's list carried VMAs over from one munmap to the next,
//! which this example does not model, so a munmap of no more than `cap`
//! VMAs is one registration, as with [`Retire::Batch`].

// Each user of this module (example, bench, test) uses a different part.
#![allow(dead_code)]

use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::RwLock;

use ownrcu::{Array, Domain, OwnerStats, Removed, User};

pub const PAGE: u64 = 4096;
/// VMAs per registration in the capped modes unless told otherwise: the
/// seed patch's 32.
pub const DEFAULT_CAP: usize = 32;
const LIVE: u64 = 0x7a11_7a11_7a11_7a11;
const POISON: u64 = 0xdead_dead_dead_dead;

/// VMAs ever created and freed, counted by their constructor and destructor.
pub static CREATED: AtomicU64 = AtomicU64::new(0);
pub static FREED: AtomicU64 = AtomicU64::new(0);

/// A VMA's own read/write lock (the kernel's per-VMA lock): faults
/// read-lock it without the address-space lock; munmap write-locks each VMA
/// it removes and never unlocks it (the VMA is freed instead).
pub struct VmaLock {
    /// Readers in units of `READER`, plus the `WRITER` and `WAITING` bits.
    state: AtomicU32,
    /// Wake-ups counted by readers that left while a writer waited: the
    /// part of an unlock that runs after the lock was released.
    wakeups: AtomicU32,
}

const WRITER: u32 = 1;
const WAITING: u32 = 2;
const READER: u32 = 4;

#[cfg(test)]
thread_local! {
    /// Test hook: runs in `read_unlock`, between the release and the touch
    /// that follows it.
    pub static AFTER_RELEASE: std::cell::Cell<Option<fn()>> = const { std::cell::Cell::new(None) };
}

impl VmaLock {
    fn new() -> Self {
        Self {
            state: AtomicU32::new(0),
            wakeups: AtomicU32::new(0),
        }
    }

    /// `vma_start_read`: fails if a writer holds or waits for the lock.
    pub fn try_read(&self) -> bool {
        let s = self.state.load(Relaxed);
        // Acquire: what the last writer wrote is visible to the reader.
        s & (WRITER | WAITING) == 0
            && self
                .state
                .compare_exchange(s, s + READER, Acquire, Relaxed)
                .is_ok()
    }

    /// `vma_end_read`: releases, then wakes a waiting writer, which touches
    /// the lock after the release (see the module docs).
    pub fn read_unlock(&self) {
        // Release: the fault's accesses happen before the writer's.
        let prev = self.state.fetch_sub(READER, Release);
        #[cfg(test)]
        if let Some(hook) = AFTER_RELEASE.with(|h| h.get()) {
            hook();
        }
        if prev & WAITING != 0 && prev >> 2 == 1 {
            self.wakeups.fetch_add(1, Relaxed);
        }
    }

    /// Whether a writer waits for the readers to leave.
    pub fn writer_waiting(&self) -> bool {
        self.state.load(Relaxed) & WAITING != 0
    }

    /// How many unlocks woke a waiting writer.
    pub fn wakeups(&self) -> u32 {
        self.wakeups.load(Relaxed)
    }

    /// `vma_start_write`: waits until the readers have left, and keeps new
    /// ones out meanwhile.
    pub fn write_lock(&self) {
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            let s = self.state.load(Relaxed);
            if s & !WAITING == 0 {
                // Acquire: every reader's accesses happen before ours.
                if self
                    .state
                    .compare_exchange(s, WRITER, Acquire, Relaxed)
                    .is_ok()
                {
                    return;
                }
            } else if s & WAITING == 0 {
                self.state.fetch_or(WAITING, Relaxed);
            }
            backoff.snooze();
        }
    }
}

/// A mapping of `[start, end)`: about the size of the kernel's
/// `vm_area_struct` (192 bytes).
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub flags: u64,
    pub lock: VmaLock,
    /// Set by munmap once the VMA is write-locked, before it is unlinked.
    detached: AtomicBool,
    /// `LIVE` while alive, `POISON` once dropped: readers check it.
    magic: AtomicU64,
    /// Faults served through this VMA.
    pub faults: AtomicU64,
    _payload: [u64; 16],
}

impl Vma {
    pub fn new(start: u64, end: u64) -> Box<Self> {
        CREATED.fetch_add(1, Relaxed);
        Box::new(Self {
            start,
            end,
            flags: 0x73, // read | write | may*
            lock: VmaLock::new(),
            detached: AtomicBool::new(false),
            magic: AtomicU64::new(LIVE),
            faults: AtomicU64::new(0),
            _payload: [0; 16],
        })
    }

    /// Panics if the VMA was freed: a reader got to freed memory.
    pub fn check(&self) {
        assert_eq!(
            self.magic.load(Relaxed),
            LIVE,
            "a fault reached a freed VMA"
        );
    }

    fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

impl Drop for Vma {
    fn drop(&mut self) {
        let was = self.magic.swap(POISON, Relaxed);
        assert_eq!(was, LIVE, "a VMA was freed twice");
        FREED.fetch_add(1, Relaxed);
    }
}

/// The address space (`mm_struct`): the VMA array and the address-space
/// lock (`mmap_lock`), which writers take for writing and faults take for
/// reading only when the per-VMA path fails.
pub struct Mm {
    pub vmas: Array<Vma>,
    pub mmap_lock: RwLock<()>,
}

/// A user handle on an address space (`mm_users`).
pub type MmUser = User<Mm>;

/// How munmap hands the VMAs it removes to the grace-period machinery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retire {
    /// One registration for everything one call removed (the batch).
    Batch,
    /// One registration per VMA (the per-VMA `call_rcu` flood).
    PerObject,
    /// Wait for a grace period in the call itself, then free directly.
    Synchronize,
    /// One registration per this many VMAs (at least 1) that one call
    /// removed, rounded up (patch 39's list; see the module docs).
    Capped(usize),
}

impl Retire {
    /// Every way, with `cap` for [`Retire::Capped`].
    pub fn all(cap: usize) -> [Retire; 4] {
        [
            Retire::Batch,
            Retire::PerObject,
            Retire::Synchronize,
            Retire::Capped(cap),
        ]
    }

    pub fn name(self) -> &'static str {
        match self {
            Retire::Batch => "batch",
            Retire::PerObject => "per-object",
            Retire::Synchronize => "synchronize",
            Retire::Capped(_) => "capped",
        }
    }

    /// The way called `name`, with `cap` if it is `capped`.
    pub fn parse(name: &str, cap: usize) -> Option<Self> {
        Self::all(cap).into_iter().find(|r| r.name() == name)
    }

    fn apply(self, removed: Removed<'_, Vma>) {
        match self {
            Retire::Batch => removed.retire(),
            Retire::Capped(cap) => removed.retire_capped(cap),
            Retire::PerObject => removed.retire_each(),
            Retire::Synchronize => removed.synchronize(),
        }
    }
}

/// Builds an address space of `count` VMAs of `pages` pages each, with a
/// one-page hole after each.
pub fn new_mm(domain: &Domain, count: u64, pages: u64) -> MmUser {
    let vmas = (0..count)
        .map(|i| {
            let start = i * (pages + 1) * PAGE;
            Vma::new(start, start + pages * PAGE)
        })
        .collect();
    User::new(
        domain,
        Mm {
            vmas: Array::from_vec(vmas),
            mmap_lock: RwLock::new(()),
        },
    )
}

/// How a fault was served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Under the per-VMA lock, with no address-space lock.
    PerVma,
    /// Under the address-space lock, because the VMA was being changed.
    Locked,
    /// No VMA covers the address (SIGSEGV).
    Unmapped,
}

/// Handles a page fault at `addr` (`lock_vma_under_rcu`, then the
/// `mmap_lock` fallback).
pub fn fault(mm: &MmUser, addr: u64) -> Fault {
    {
        let read = mm.read(); // rcu_read_lock
        let vmas = read.vmas.load(&read);
        let i = vmas.partition_point(|vma| vma.end <= addr);
        if let Some(vma) = vmas.get(i).filter(|vma| vma.contains(addr)) {
            if vma.lock.try_read() {
                // Locked: munmap cannot have detached it since (it takes the
                // write lock first); check it was not detached before.
                let served = !vma.detached.load(Acquire);
                if served {
                    vma.check();
                    vma.faults.fetch_add(1, Relaxed);
                }
                // Unlocked inside the read section: see the module docs.
                vma.lock.read_unlock();
                if served {
                    return Fault::PerVma;
                }
            }
        }
    } // rcu_read_unlock
    let _mmap = mm.mmap_lock.read().unwrap_or_else(|e| e.into_inner());
    let read = mm.read();
    let vmas = read.vmas.load(&read);
    let i = vmas.partition_point(|vma| vma.end <= addr);
    match vmas.get(i).filter(|vma| vma.contains(addr)) {
        Some(vma) => {
            vma.check();
            vma.faults.fetch_add(1, Relaxed);
            Fault::Locked
        }
        None => Fault::Unmapped,
    }
}

/// munmap of `[start, end)`: removes every VMA that overlaps it (whole; this
/// model does not split VMAs), under the address-space write lock, and
/// retires them with `how`. Returns how many it removed.
pub fn munmap(mm: &MmUser, start: u64, end: u64, how: Retire) -> usize {
    let removed = {
        let _mmap = mm.mmap_lock.write().unwrap_or_else(|e| e.into_inner());
        let mut writer = mm.vmas.write(mm);
        let items = writer.items();
        let first = items.partition_point(|vma| vma.end <= start);
        let last = first + items[first..].partition_point(|vma| vma.start < end);
        for vma in &items[first..last] {
            vma.lock.write_lock(); // vma_start_write: waits for its faults
            vma.detached.store(true, Release);
        }
        writer.remove(first..last);
        writer.commit()
    };
    let n = removed.len();
    how.apply(removed);
    n
}

/// mmap of `[start, end)` if no VMA overlaps it; returns whether it mapped.
pub fn mmap(mm: &MmUser, start: u64, end: u64) -> bool {
    let _mmap = mm.mmap_lock.write().unwrap_or_else(|e| e.into_inner());
    let at = {
        // The write lock keeps the array as it is: look before copying it.
        let read = mm.read();
        let vmas = read.vmas.load(&read);
        let at = vmas.partition_point(|vma| vma.end <= start);
        if vmas.get(at).is_some_and(|vma| vma.start < end) {
            return false;
        }
        at
    };
    let mut writer = mm.vmas.write(mm);
    writer.insert(at, Vma::new(start, end));
    writer.commit().retire();
    true
}

/// How exit frees the VMAs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The last user handle drops: every VMA freed directly (Linux 6.4).
    Direct,
    /// Every VMA unlinked and retired as one batch, then waited for
    /// (Michal Hocko's proposal).
    Batch,
    /// Every VMA retired on its own, then waited for (Linux 6.3).
    PerObject,
    /// One registration per this many VMAs (at least 1), rounded up, then
    /// waited for (the seed patch 39's per-mm list of 32; see the module
    /// docs).
    Capped(usize),
}

impl Exit {
    /// Every strategy, with `cap` for [`Exit::Capped`].
    pub fn all(cap: usize) -> [Exit; 4] {
        [
            Exit::Direct,
            Exit::Batch,
            Exit::PerObject,
            Exit::Capped(cap),
        ]
    }

    pub fn name(self) -> &'static str {
        match self {
            Exit::Direct => "direct",
            Exit::Batch => "batch",
            Exit::PerObject => "per-object",
            Exit::Capped(_) => "capped",
        }
    }

    /// The strategy called `name`, with `cap` if it is `capped`.
    pub fn parse(name: &str, cap: usize) -> Option<Self> {
        Self::all(cap).into_iter().find(|e| e.name() == name)
    }
}

/// `exit_mmap`: frees every VMA of `mm`, whose handle must be the last
/// user, with the given strategy, and returns only once all of them are
/// freed. Returns the owner's counters as they were just before the last
/// user handle dropped.
///
/// [`Exit::Capped`] makes `ceil(n / cap)` registrations for `n` VMAs (one
/// if `n` is 0, for the replaced array, as [`Exit::Batch`] does).
///
/// # Panics
///
/// If `mm` is not the last user handle, or the cap is 0.
pub fn exit_mmap(mut mm: MmUser, how: Exit) -> OwnerStats {
    assert!(
        mm.exclusive().is_some(),
        "exit_mmap needs the last user handle"
    );
    match how {
        Exit::Direct => {}
        Exit::Batch | Exit::PerObject => {
            let removed = {
                let mut writer = mm.vmas.write(&mm);
                writer.clear();
                writer.commit()
            };
            if how == Exit::Batch {
                removed.retire();
            } else {
                removed.retire_each();
            }
            // Waits for the grace period, and frees everything retired.
            mm.barrier();
        }
        Exit::Capped(cap) => {
            let removed = {
                let mut writer = mm.vmas.write(&mm);
                writer.clear();
                writer.commit()
            };
            removed.retire_capped(cap); // one registration per `cap` VMAs
            mm.barrier();
        }
    }
    let stats = mm.stats();
    drop(mm); // mmput: the last user; what is left is freed directly
    stats
}
