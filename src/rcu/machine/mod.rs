//! The grace-period machine behind a [`Domain`](crate::Domain).
//!
//! # Design
//!
//! The domain counts grace periods in `epoch`: the number of grace periods
//! *started*. A reader entering its outermost section copies `epoch` into its
//! record as `epoch << 1 | 1` with a plain (release) store followed by the
//! light fence; leaving, it stores `INACTIVE`. A grace period `g` starts, under
//! the state lock, by storing `epoch = g` and running the heavy fence once. It
//! is complete when no record is active with an epoch below `g`. Why that is
//! enough, for an object unlinked before `g` started (unlink → registration
//! under the lock → start, so the unlink happens before the heavy fence):
//!
//! - a reader whose light fence comes after the heavy fence (in the fences'
//!   single total order) sees the unlink, so it cannot reach the object;
//! - otherwise the scan, which follows the heavy fence, sees the reader's
//!   entry store (or a later one). If that says "epoch ≥ g", the reader's
//!   acquire load of `epoch` read the start store, which happens after the
//!   unlink: it cannot reach the object either. If it says "epoch < g", the
//!   grace period waits until the record changes; the acquire load that sees
//!   the change synchronizes with the reader's release exit (or its next
//!   release entry, which follows the exit), so every access of the old
//!   section happens before anything freed after the grace period.
//!
//! One heavy fence per grace period suffices, because later scans only read
//! the same records again (coherence keeps them at least as new).
//!
//! Work is registered as *units* ([`Reclaim`]): a thread's bag of single
//! retirements, or one drained `Batch`. A unit registered while `epoch == e`
//! waits for grace period `e + 1`, the first one to start after it: one grace
//! period serves every unit registered before it started. Grace periods are
//! rationed: one starts only when enough work waits for it, or when someone
//! asked (`synchronize`, `barrier`, a polled cookie).
//!
//! Units whose grace period completed stay at the front of `waiting`; a
//! thread frees them while holding the `freeing` lock, which serializes
//! destructors per domain and lets `barrier` know when frees in progress have
//! finished. Lock order: `freeing`, then `state`.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool as StdAtomicBool, AtomicU64 as StdAtomicU64};
use std::collections::VecDeque;

use crossbeam_utils::CachePadded;

mod throttle;
// Only the reclaimer thread visits, and it does not exist under loom.
#[cfg_attr(loom, allow(dead_code))]
mod visit;
pub(crate) use throttle::Throttled;
#[cfg_attr(loom, allow(unused_imports))]
pub(crate) use visit::Served;

use crate::rcu::config::Config;
use crate::rcu::fence;
use crate::rcu::local::DomainState;
use crate::rcu::record::Record;
use crate::rcu::retired::{Bag, DropRun, Reclaim, Slot};
use crate::rcu::stats::{FreedBy, OwnerCounters, Stats};
use crate::rcu::unwind::{may_free, FirstPanic};
use crate::sync::{Arc, AtomicPtr, AtomicU64, AtomicUsize, Mutex, MutexGuard};

/// Work waiting for a grace period.
struct Waiting {
    /// The grace period that must complete before `unit` may be freed.
    gp: u64,
    unit: Box<dyn Reclaim>,
}

/// Everything behind the state lock.
struct State {
    /// Whether grace period `epoch` is in progress.
    running: bool,
    /// Registered units, in registration order (so `gp` never decreases).
    waiting: VecDeque<Waiting>,
    /// Objects and units waiting for grace period `epoch + 1`, not started.
    unstarted_objects: usize,
    unstarted_units: usize,
    /// The highest grace period somebody waits for.
    requested: u64,
    /// The domain was torn down: no reader can exist any more.
    dead: bool,
    /// When the last grace period started, and what starting one costs (a
    /// moving average, in nanoseconds): see `GP_COST_FACTOR`.
    #[cfg(not(loom))]
    started_at: Option<std::time::Instant>,
    #[cfg(not(loom))]
    start_cost_ns: u64,
    /// Emptied thread bags kept for reuse (at most `SPARE_BAGS`), so steady
    /// single retirement allocates nothing. Boxed: they move in and out of
    /// records as `Box<Bag>`, and a bag is too big to copy around.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Bag>>,
}

/// Emptied bags a domain keeps for reuse: a grace period's worth of units
/// (`GP_UNITS`, the most that wait before one starts), plus a few for the
/// bags threads are filling meanwhile. With fewer, steady single retirement
/// allocates and frees a bag (2.2 KiB) every few buffers, right among the
/// retired objects; the price is up to `SPARE_BAGS` idle bags per domain
/// (about 87 KiB) once it has seen that much single retirement.
const SPARE_BAGS: usize = GP_UNITS + 8;

/// Rationing: start a grace period once this much work waits for one.
#[cfg(not(any(loom, miri)))]
const GP_OBJECTS: usize = 4096;
#[cfg(not(any(loom, miri)))]
const GP_UNITS: usize = 32;
#[cfg(miri)]
const GP_OBJECTS: usize = 16;
#[cfg(miri)]
const GP_UNITS: usize = 4;
#[cfg(loom)]
const GP_OBJECTS: usize = 1;
#[cfg(loom)]
const GP_UNITS: usize = 1;

/// Pacing: once work waits, a grace period starts as soon as the time since
/// the last one started is `GP_COST_FACTOR` times what starting one costs
/// (a moving average of the heavy fence: 0.2 µs with no other thread
/// running, 1–10 µs with others, as it interrupts every CPU running the
/// process). Starting grace periods then takes at most about 5 % of the
/// starting thread's time while work streams in (never more than one per
/// `GP_MIN_INTERVAL`), and garbage waits no longer than it needs to.
/// Measured on `benches/structures.rs` (hash map, 50 % writes, one thread,
/// about 2 million retirements a second): with a factor of 100 the peak
/// garbage was 990–1000 objects, 30 gave 220–320, 10 gave 100–150, against
/// 140 for crossbeam-epoch, with no throughput difference above the noise.
#[cfg(not(loom))]
const GP_COST_FACTOR: u32 = 20;
#[cfg(not(loom))]
const GP_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_micros(10);
#[cfg(not(loom))]
const GP_MAX_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

/// The most objects one `retire`, `drain` or thread exit frees.
#[cfg(not(any(loom, miri)))]
pub(crate) const COLLECT_BUDGET: usize = 1024;
#[cfg(any(loom, miri))]
pub(crate) const COLLECT_BUDGET: usize = 8;

/// Domain-wide counters (statistics only; never used for synchronization).
#[derive(Debug, Default)]
struct Counters {
    /// Objects handed to the domain (registered units); objects still in a
    /// thread's bag are counted by its record.
    retired: StdAtomicU64,
    freed: StdAtomicU64,
    batches: StdAtomicU64,
    registrations: StdAtomicU64,
    grace_periods: StdAtomicU64,
    /// Grace periods started because somebody asked to hurry.
    hurried: StdAtomicU64,
    /// Grace periods the reclaimer started because work waited a time bound.
    timed: StdAtomicU64,
    /// The most objects seen pending at a registration.
    peak_pending: StdAtomicU64,
    /// Objects freed, by path (they add up to `freed`).
    freed_by: [StdAtomicU64; Path::COUNT],
    /// Backpressure events (module `throttle`).
    throttle: throttle::Counters,
}

/// Who frees completed units, which decides how `free_completed` takes
/// the `freeing` lock, and what it does with a destructor's panic.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// A retirement's bounded free: skips if another thread is freeing,
    /// propagates a panic at once.
    Amortized = 0,
    /// A retirement past the bound: waits for the lock, propagates.
    Backpressure = 1,
    /// `barrier`: waits for the lock, frees past panics, resumes the first.
    Barrier = 2,
    /// `collect`: skips if another thread is freeing, propagates.
    Collect = 3,
    /// The domain's teardown: as `Barrier`.
    Teardown = 4,
    /// The reclaimer thread: skips if another thread is freeing, frees past
    /// panics and resumes the first (its caller stashes it for the next
    /// `barrier` or teardown).
    Reclaimer = 5,
    /// A retirement past the bound inside a read section: as `Backpressure`,
    /// but skips if another thread is freeing (it must not wait).
    BackpressureNoWait = 6,
}

impl Path {
    const COUNT: usize = 7;

    fn waits_for_lock(self) -> bool {
        matches!(self, Path::Backpressure | Path::Barrier | Path::Teardown)
    }

    fn frees_past_panics(self) -> bool {
        matches!(self, Path::Barrier | Path::Teardown | Path::Reclaimer)
    }
}

pub(crate) struct Inner {
    /// Grace periods started; readers copy it on entry.
    pub(crate) epoch: CachePadded<AtomicU64>,
    /// The last grace period known complete.
    completed: CachePadded<AtomicU64>,
    /// Head of the append-only list of thread records.
    records: AtomicPtr<Record>,
    state: Mutex<State>,
    /// Held by whoever runs destructors; see the module docs.
    freeing: Mutex<()>,
    counters: Counters,
    /// The sum of the counters of the owners that use this domain.
    owners: OwnerCounters,
    /// Limits, fixed at creation.
    config: Config,
    /// A grace period that a retirement past the bound waited for in vain
    /// (module `throttle`); until it completes, others do not wait.
    stalled: StdAtomicU64,
    /// Unique among all domains ever created; 0 is the global domain.
    pub(crate) id: u64,
    /// Set once torn down; lets thread-locals drop their registration early.
    pub(crate) dead: StdAtomicBool,
    /// `Domain` handles alive (user-created domains only). A loom atomic:
    /// the last handle's drop must see every other handle's retirements.
    pub(crate) handles: AtomicUsize,
    /// Whether the reclaimer knows this domain (module `reclaimer`).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) served: StdAtomicBool,
    /// This domain, for the reclaimer's list (dangling for the global one).
    #[cfg(not(loom))]
    pub(crate) this: std::sync::Weak<Inner>,
    /// A destructor's panic caught on the reclaimer thread, for the next
    /// `barrier` or the teardown to resume on a user's thread.
    panicked: Mutex<Option<Box<dyn core::any::Any + Send>>>,
    /// The owner queues the reclaimer visits along with this domain.
    served_owners: Mutex<Vec<std::sync::Weak<dyn Served>>>,
}

/// The global domain's state, built at compile time, never torn down.
#[cfg(not(loom))]
pub(crate) static GLOBAL_INNER: Inner = Inner::new_global();

// SAFETY: the raw record pointers are to records owned by this domain and
// only shared through the atomic list; all other state is atomics or behind
// mutexes, and the queued units are `Send`.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A destructor that panicked while a lock was held left the protected
    // data consistent (every step pops before it drops), so poisoning is
    // ignored.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `try_lock`, ignoring poisoning (see `lock`); `None` if the lock is held.
pub(crate) fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(crate::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(crate::sync::TryLockError::WouldBlock) => None,
    }
}

macro_rules! inner_new {
    ($id:expr, $config:expr, $this:expr) => {
        Inner {
            epoch: CachePadded::new(AtomicU64::new(0)),
            completed: CachePadded::new(AtomicU64::new(0)),
            records: AtomicPtr::new(core::ptr::null_mut()),
            state: Mutex::new(State {
                running: false,
                waiting: VecDeque::new(),
                unstarted_objects: 0,
                unstarted_units: 0,
                requested: 0,
                dead: false,
                #[cfg(not(loom))]
                started_at: None,
                #[cfg(not(loom))]
                start_cost_ns: 0,
                spare: Vec::new(),
            }),
            freeing: Mutex::new(()),
            counters: Counters {
                retired: StdAtomicU64::new(0),
                freed: StdAtomicU64::new(0),
                batches: StdAtomicU64::new(0),
                registrations: StdAtomicU64::new(0),
                grace_periods: StdAtomicU64::new(0),
                hurried: StdAtomicU64::new(0),
                timed: StdAtomicU64::new(0),
                peak_pending: StdAtomicU64::new(0),
                freed_by: [const { StdAtomicU64::new(0) }; Path::COUNT],
                throttle: throttle::Counters::new(),
            },
            owners: OwnerCounters::new(),
            config: $config,
            stalled: StdAtomicU64::new(0),
            id: $id,
            dead: StdAtomicBool::new(false),
            handles: AtomicUsize::new(1),
            served: StdAtomicBool::new(false),
            #[cfg(not(loom))]
            this: $this,
            panicked: Mutex::new(None),
            served_owners: Mutex::new(Vec::new()),
        }
    };
}

impl Inner {
    /// The global domain's state, built at compile time.
    #[cfg(not(loom))]
    pub(crate) const fn new_global() -> Self {
        inner_new!(0, Config::DEFAULT, std::sync::Weak::new())
    }

    /// A user-created domain's state.
    pub(crate) fn new(config: Config) -> Arc<Self> {
        static NEXT_ID: StdAtomicU64 = StdAtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, Relaxed);
        #[cfg(not(loom))]
        return Arc::new_cyclic(|this| inner_new!(id, config, this.clone()));
        #[cfg(loom)]
        return Arc::new(inner_new!(id, config, ()));
    }

    // ----- records -------------------------------------------------------

    /// Claims a free record, or adds a new one. The caller owns it until
    /// [`Inner::release`].
    #[cold]
    pub(crate) fn claim(&self) -> &Record {
        fence::init();
        let mut cur = self.records.load(Acquire);
        while !cur.is_null() {
            // SAFETY: records are never freed before the domain, which the
            // caller borrows.
            let rec = unsafe { &*cur };
            if !rec.in_use.load(Relaxed)
                && rec
                    .in_use
                    .compare_exchange(false, true, Acquire, Relaxed)
                    .is_ok()
            {
                return rec;
            }
            cur = rec.next.cast_mut();
        }
        let rec = Box::into_raw(Box::new(Record::new(core::ptr::null())));
        let mut head = self.records.load(Relaxed);
        loop {
            // SAFETY: `rec` is ours until the CAS below publishes it.
            unsafe { (*rec).next = head };
            // Release: a scanner that finds `rec` sees it initialized.
            match self
                .records
                .compare_exchange_weak(head, rec, Release, Relaxed)
            {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        // SAFETY: published above, lives as long as the domain.
        unsafe { &*rec }
    }

    /// Hands over a record's bag and, unless a read section of it is still
    /// alive, frees the record for another thread: returns whether it did.
    /// A record kept must be released again once its last section ends.
    ///
    /// # Safety
    ///
    /// Called by the record's owner, which will not use it again (except to
    /// end the sections still alive, and then release it).
    pub(crate) unsafe fn release(&self, rec: &Record) -> bool {
        let mut st = lock(&self.state);
        if !st.dead {
            // SAFETY: we hold the state lock and own the record.
            if let Some(bag) = unsafe { rec.steal_bag() } {
                self.enqueue(&mut st, bag, false);
                // Nobody may call in again for this work: its grace period
                // starts now (one barrier per exiting thread that retired).
                self.start_locked(&mut st, &self.counters.hurried);
            }
        }
        drop(st);
        // A guard still alive (e.g. kept in a thread-local destroyed after
        // the thread's registry) keeps the record: reusing it would corrupt
        // its state.
        if rec.in_section() {
            return false;
        }
        rec.set_temporary(false);
        // Release: the next owner sees the record as we left it.
        rec.in_use.store(false, Release);
        true
    }

    fn records(&self) -> impl Iterator<Item = &Record> {
        self.records_from(self.records.load(Acquire))
    }

    /// The records from `head` (a value `self.records` had) on.
    fn records_from(&self, head: *mut Record) -> impl Iterator<Item = &Record> {
        let mut cur = head;
        core::iter::from_fn(move || {
            // SAFETY: records live as long as the domain, which `self`
            // borrows; `next` is immutable once published.
            let rec = unsafe { cur.as_ref()? };
            cur = rec.next.cast_mut();
            Some(rec)
        })
    }

    // ----- registering work ----------------------------------------------

    /// Adds a unit to the waiting queue (state lock held).
    fn enqueue(&self, st: &mut State, unit: Box<dyn Reclaim>, batch: bool) {
        let gp = self.epoch.load(Relaxed) + 1;
        self.counters.retired.fetch_add(unit.len() as u64, Relaxed);
        let pending = self.pending();
        // Only written under the state lock, which we hold: no RMW needed.
        if pending > self.counters.peak_pending.load(Relaxed) {
            self.counters.peak_pending.store(pending, Relaxed);
        }
        st.unstarted_objects += unit.len();
        st.unstarted_units += 1;
        st.waiting.push_back(Waiting { gp, unit });
        self.counters.registrations.fetch_add(1, Relaxed);
        if batch {
            self.counters.batches.fetch_add(1, Relaxed);
        }
    }

    /// Registers a drained batch (or a lone object) as one unit, starting
    /// its grace period now if `hurry`, then does a bounded amount of
    /// reclamation, or applies backpressure if the domain is past its bound.
    pub(crate) fn register(&self, unit: Box<dyn Reclaim>, batch: bool, hurry: bool) {
        let ready = {
            let mut st = lock(&self.state);
            assert!(!st.dead, "ownrcu: retired into a domain that was torn down");
            self.enqueue(&mut st, unit, batch);
            if hurry {
                self.start_locked(&mut st, &self.counters.hurried);
            } else {
                self.advance(&mut st);
            }
            self.has_completed(&st)
        };
        crate::rcu::reclaimer::notify(self);
        self.after_registration(ready);
    }

    /// What a registration does once its unit is queued: backpressure past
    /// the bound, else the amortized free.
    fn after_registration(&self, ready: bool) {
        if self.pending() > self.config.max_pending as u64 {
            self.throttle(None);
        } else if ready && may_free() && self.config.retiring_threads_free {
            self.free_completed(COLLECT_BUDGET, u64::MAX, Path::Amortized);
        }
    }

    /// Registered objects not freed yet (the bound's measure).
    fn pending(&self) -> u64 {
        let retired = self.counters.retired.load(Relaxed);
        retired.saturating_sub(self.counters.freed.load(Relaxed))
    }

    /// The slow path of a single retirement: the record's bag is full (or
    /// absent, or being stolen), or the thread has no record.
    #[cold]
    pub(crate) fn retire_slow(&self, rec: Option<&Record>, slot: Slot, drop: DropRun) {
        let Some(rec) = rec else {
            let mut bag = Bag::with_capacity(1);
            // SAFETY: forwarded from the caller (`Domain::retire_raw`); an
            // empty bag always accepts.
            let len = unsafe { bag.push(slot, drop) };
            debug_assert_eq!(len, 1);
            return self.register(bag, false, false);
        };
        let ready = {
            let mut st = lock(&self.state);
            let spare = &mut st.spare;
            let new_bag = |cap| {
                let class = Bag::class(cap);
                match spare.iter().rposition(|bag| bag.capacity() == class) {
                    Some(at) => spare.swap_remove(at),
                    None => Bag::with_capacity(class),
                }
            };
            let adapt = !self.config.lazy;
            // SAFETY: we hold the state lock and are the owner.
            if let Some(full) = unsafe { rec.push_locked(slot, drop, adapt, new_bag) } {
                self.enqueue(&mut st, full, false);
            }
            self.advance(&mut st);
            self.has_completed(&st)
        };
        crate::rcu::reclaimer::notify(self);
        self.after_registration(ready);
    }

    // ----- grace periods -------------------------------------------------

    fn any_blocks(&self, gp: u64) -> bool {
        self.records().any(|rec| rec.blocks(gp))
    }

    /// Moves the machine forward as far as it can without waiting.
    fn advance(&self, st: &mut State) {
        let epoch = self.epoch.load(Relaxed); // only written under this lock
        if st.running {
            if self.any_blocks(epoch) {
                return;
            }
            self.complete(st, epoch);
        }
        let wanted = st.requested > epoch
            || st.unstarted_objects >= GP_OBJECTS
            || st.unstarted_units >= GP_UNITS
            || (!self.config.lazy && Self::paced(st));
        if !wanted {
            return;
        }
        let gp = epoch + 1;
        // Release: a reader that reads `gp` sees every unlink registered so
        // far (see the module docs).
        self.epoch.store(gp, Release);
        #[cfg(not(loom))]
        let start = std::time::Instant::now();
        fence::heavy();
        #[cfg(not(loom))]
        {
            let cost = start.elapsed().as_nanos().min(u64::MAX.into()) as u64;
            st.start_cost_ns = (st.start_cost_ns * 7 + cost) / 8;
            st.started_at = Some(start);
        }
        st.running = true;
        st.unstarted_objects = 0;
        st.unstarted_units = 0;
        if !self.any_blocks(gp) {
            self.complete(st, gp);
        }
    }

    /// Whether unstarted work waits and the pacing interval has passed
    /// since the last grace period started (see `GP_COST_FACTOR`).
    fn paced(st: &State) -> bool {
        #[cfg(not(loom))]
        if st.unstarted_units > 0 {
            let Some(last) = st.started_at else {
                return true;
            };
            let cost = std::time::Duration::from_nanos(st.start_cost_ns);
            let interval = (cost * GP_COST_FACTOR).clamp(GP_MIN_INTERVAL, GP_MAX_INTERVAL);
            return last.elapsed() >= interval;
        }
        #[cfg(loom)]
        let _ = st;
        false
    }

    fn complete(&self, st: &mut State, gp: u64) {
        st.running = false;
        // Release: pairs with the Acquire in `is_complete`.
        self.completed.store(gp, Release);
        self.counters.grace_periods.fetch_add(1, Relaxed);
    }

    /// Registers work that an owner keeps in its own queue: returns the
    /// grace period it waits for, and counts it toward starting one, exactly
    /// like a unit in the domain's queue.
    pub(crate) fn register_owned(&self, objects: usize) -> u64 {
        let mut st = lock(&self.state);
        let gp = self.epoch.load(Relaxed) + 1;
        st.unstarted_objects += objects;
        st.unstarted_units += 1;
        self.advance(&mut st);
        drop(st);
        crate::rcu::reclaimer::notify(self);
        gp
    }

    /// The domain's limits.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The sum of the counters of the owners that use this domain.
    pub(crate) fn owner_counters(&self) -> &OwnerCounters {
        &self.owners
    }

    /// The grace period that a cookie taken now must wait for.
    pub(crate) fn snapshot(&self) -> u64 {
        let mut st = lock(&self.state);
        let gp = self.epoch.load(Relaxed) + 1;
        st.requested = st.requested.max(gp);
        gp
    }

    pub(crate) fn is_complete(&self, gp: u64) -> bool {
        // Acquire: pairs with `complete`, so the caller sees every reader's
        // exit that the grace period waited for.
        self.completed.load(Acquire) >= gp
    }

    /// Moves the machine forward without blocking; returns whether `gp` is
    /// complete.
    pub(crate) fn poll(&self, gp: u64) -> bool {
        if self.is_complete(gp) {
            return true;
        }
        if let Some(mut st) = try_lock(&self.state) {
            st.requested = st.requested.max(gp);
            self.advance(&mut st);
        }
        self.is_complete(gp)
    }

    /// Blocks until grace period `gp` has completed, driving it.
    pub(crate) fn wait_for(&self, gp: u64) {
        self.wait_until(gp, None);
    }

    /// Takes every thread's bag into the waiting queue (state lock held).
    fn steal_all(&self, st: &mut State) {
        // Both passes walk one snapshot of the list. A record published
        // after it did not see `steal` raised before the fence, so it must
        // not be taken (its owner may be in its fast path); it holds nothing
        // to take anyway: it was claimed after this barrier began, and a bag
        // is only created under the state lock, which we hold.
        let head = self.records.load(Acquire);
        for rec in self.records_from(head) {
            rec.raise_steal();
        }
        // One heavy fence for all records: each owner either sees `steal`
        // or is seen `busy` (see `Record::push_fast`).
        fence::heavy();
        for rec in self.records_from(head) {
            // SAFETY: we hold the state lock and raised `steal` before the
            // heavy fence.
            if let Some(bag) = unsafe { rec.steal_bag() } {
                self.enqueue(st, bag, false);
            }
            rec.lower_steal();
        }
    }

    /// `rcu_barrier`: frees everything retired before the call.
    pub(crate) fn barrier(&self) {
        let gp = {
            let mut st = lock(&self.state);
            self.steal_all(&mut st);
            let gp = self.epoch.load(Relaxed) + 1;
            st.requested = st.requested.max(gp);
            gp
        };
        self.wait_for(gp);
        // Everything registered before the call now waits for a completed
        // grace period. Taking `freeing` waits for frees in progress; then we
        // free the rest ourselves, up to `gp`: not what other threads keep
        // retiring meanwhile, which could keep us here forever.
        self.free_completed(usize::MAX, gp, Path::Barrier);
        self.resume_stashed();
    }

    // ----- freeing -------------------------------------------------------

    /// Whether some queued unit may be freed now (state lock held).
    fn has_completed(&self, st: &State) -> bool {
        st.waiting
            .front()
            .is_some_and(|w| w.gp <= self.completed.load(Relaxed))
    }

    /// Frees up to `budget` objects whose grace period completed and is no
    /// later than `up_to` (all of them once the domain is dead); returns how
    /// many. `path` says whether to wait for the `freeing` lock and whether
    /// to keep going past panicking destructors (re-raising the first panic
    /// at the end) or to propagate one at once.
    fn free_completed(&self, budget: usize, up_to: u64, path: Path) -> usize {
        let _freeing = if path.waits_for_lock() {
            // We would wait for the `freeing` lock our own caller holds.
            assert!(
                !crate::rcu::freeing::is_freeing(self.id),
                "ownrcu: Domain::barrier() called from a destructor that the same domain is \
                 running; it would wait for itself: call it after the destructor returns"
            );
            lock(&self.freeing)
        } else {
            match try_lock(&self.freeing) {
                Some(g) => g,
                None => return 0,
            }
        };
        let _mark = crate::rcu::freeing::freeing(self.id);
        let mut left = budget;
        let mut total = 0;
        let mut first_panic = FirstPanic::default();
        // An emptied bag on its way back to `State::spare`, handed over under
        // the next lock we take anyway.
        let mut spare = None;
        while left > 0 {
            let Some(Waiting { gp, unit }) = self.pop_completed(up_to, &mut spare) else {
                break;
            };
            let spare = &mut spare;
            let freed = if path.frees_past_panics() {
                // SAFETY: `pop_completed` only returns units whose grace
                // period has completed.
                let freed =
                    first_panic.catch(|| unsafe { self.free_unit(gp, unit, left, path, spare) });
                freed.unwrap_or(0)
            } else {
                // SAFETY: as above.
                unsafe { self.free_unit(gp, unit, left, path, spare) }
            };
            total += freed;
            left = left.saturating_sub(freed.max(1));
        }
        if spare.is_some() {
            Self::keep_spare(&mut lock(&self.state), &mut spare);
        }
        first_panic.resume();
        total
    }

    /// Frees up to `max` objects of `unit` (which waited for grace period
    /// `gp`), returning how many. Even if a destructor panics, the objects
    /// freed are counted and the rest go back to the front of the queue,
    /// still tagged `gp`; an emptied thread bag goes to `spare`.
    ///
    /// # Safety
    ///
    /// The unit's grace period has completed, or no reader can exist.
    unsafe fn free_unit(
        &self,
        gp: u64,
        unit: Box<dyn Reclaim>,
        max: usize,
        path: Path,
        spare: &mut Option<Box<Bag>>,
    ) -> usize {
        let before = unit.len();
        let mut unit = scopeguard::guard(unit, |unit| {
            let freed = (before - unit.len()) as u64;
            self.counters.freed.fetch_add(freed, Relaxed);
            self.counters.freed_by[path as usize].fetch_add(freed, Relaxed);
            if unit.len() > 0 {
                lock(&self.state).waiting.push_front(Waiting { gp, unit });
            } else if let Some(mut bag) = unit.into_bag() {
                bag.reset();
                *spare = Some(bag);
            }
        });
        // SAFETY: forwarded from this function's contract.
        unsafe { unit.free(max) };
        before - unit.len()
    }

    fn keep_spare(st: &mut State, spare: &mut Option<Box<Bag>>) {
        if let Some(bag) = spare.take() {
            if st.spare.len() < SPARE_BAGS {
                st.spare.push(bag);
            }
        }
    }

    /// The front unit, if its grace period has completed and is no later
    /// than `up_to` (any unit once the domain is dead).
    fn pop_completed(&self, up_to: u64, spare: &mut Option<Box<Bag>>) -> Option<Waiting> {
        let completed = self.completed.load(Acquire);
        let mut st = lock(&self.state);
        Self::keep_spare(&mut st, spare);
        if !st.dead && st.waiting.front()?.gp > completed.min(up_to) {
            return None;
        }
        st.waiting.pop_front()
    }

    // ----- teardown ------------------------------------------------------

    /// Frees everything directly: called once no handle to the domain is
    /// left, so no guard and no reader can exist.
    pub(crate) fn teardown(&self) {
        {
            let mut st = lock(&self.state);
            st.dead = true;
            self.dead.store(true, Relaxed);
            for rec in self.records() {
                // SAFETY: no handle exists, so no owner is in its fast path;
                // exiting owners take the state lock we hold and then see
                // `dead`.
                if let Some(bag) = unsafe { rec.steal_bag() } {
                    self.counters.retired.fetch_add(bag.len() as u64, Relaxed);
                    st.waiting.push_back(Waiting { gp: 0, unit: bag });
                }
            }
        }
        // `dead` makes every queued unit free-able at once.
        self.free_completed(usize::MAX, u64::MAX, Path::Teardown);
        self.resume_stashed();
    }

    // ----- statistics ----------------------------------------------------

    fn freed_by(&self, path: Path) -> u64 {
        self.counters.freed_by[path as usize].load(Relaxed)
    }

    pub(crate) fn stats(&self) -> Stats {
        let in_bags: u64 = self.records().map(Record::buffered).sum();
        let retired = self.counters.retired.load(Relaxed) + in_bags;
        let freed = self.counters.freed.load(Relaxed);
        Stats {
            retired,
            freed,
            pending: retired.saturating_sub(freed),
            batches: self.counters.batches.load(Relaxed),
            registrations: self.counters.registrations.load(Relaxed),
            grace_periods: self.counters.grace_periods.load(Relaxed),
            grace_periods_started: self.epoch.load(Relaxed),
            grace_periods_hurried: self.counters.hurried.load(Relaxed),
            grace_periods_timed: self.counters.timed.load(Relaxed),
            peak_pending: self.counters.peak_pending.load(Relaxed),
            freed_by: FreedBy {
                amortized: self.freed_by(Path::Amortized),
                backpressure: self.freed_by(Path::Backpressure)
                    + self.freed_by(Path::BackpressureNoWait),
                barrier: self.freed_by(Path::Barrier),
                collect: self.freed_by(Path::Collect),
                teardown: self.freed_by(Path::Teardown),
                reclaimer: self.freed_by(Path::Reclaimer),
            },
            throttle: self.counters.throttle.snapshot(),
            records: self.records().count() as u64,
            owners: self.owners.snapshot(),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Everything was freed by `teardown`; the records remain.
        let mut cur = self.records.load(Acquire);
        while !cur.is_null() {
            // SAFETY: records were made by `Box::into_raw` in `claim`, and
            // the last reference to the domain is going away.
            let rec = unsafe { Box::from_raw(cur) };
            cur = rec.next.cast_mut();
        }
    }
}

/// Per-thread registration (module `local`) claims and releases records
/// through this.
impl DomainState for Inner {
    #[inline(always)]
    fn id(&self) -> u64 {
        self.id
    }
    fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }
    fn claim(&self) -> &Record {
        Inner::claim(self)
    }
    unsafe fn release(&self, rec: &Record) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { Inner::release(self, rec) }
    }
}

/// `Domain` shares its `Inner` between threads.
const _: () = {
    const fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Inner>()
};
