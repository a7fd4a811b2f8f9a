//! The state of one domain ([`Inner`]): its fields, its limits and its
//! locks, and how it is built. The behaviour lives in the sibling files,
//! one concern each (`records`, `register`, `grace`, `free`, `throttle`,
//! `visit`, `teardown`, `report`), all `impl Inner` blocks over this state.
//!
//! # Invariants
//!
//! - Everything that changes together is behind the state lock (`State`):
//!   the queue of waiting units, the unstarted work, the requested and
//!   running grace periods, the spare bags. `epoch` is only written under
//!   it; `completed` only grows.
//! - Lock order: `freeing`, then `state`.
//! - A poisoned lock is taken anyway ([`lock`], [`try_lock`]): every step
//!   pops before it drops, so a panicking destructor leaves the protected
//!   data consistent.

use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{AtomicBool as StdAtomicBool, AtomicU64 as StdAtomicU64};
use std::collections::VecDeque;

use crossbeam_utils::CachePadded;

use super::counters::{Counters, Path, ThrottleCounters};
use super::crowd::Crowd;
use crate::rcu::config::Config;
use crate::rcu::reclaimer::Visited;
use crate::rcu::record::Record;
use crate::rcu::retired::{Bag, Reclaim};
use crate::rcu::stall::StallHook;
use crate::rcu::stats::LatencyCounters;
use crate::rcu::stats::OwnerCounters;
use crate::sync::{Arc, AtomicPtr, AtomicU64, AtomicUsize, Mutex, MutexGuard};

/// Work waiting for a grace period.
pub(super) struct Waiting {
    /// The grace period that must complete before `unit` may be freed.
    pub(super) gp: u64,
    pub(super) unit: Box<dyn Reclaim>,
}

/// Everything behind the state lock.
pub(super) struct State {
    /// Whether grace period `epoch` is in progress.
    pub(super) running: bool,
    /// The record list as an array, for the grace-period check.
    pub(super) walk: RecordWalk,
    /// Registered units, in registration order (so `gp` never decreases).
    pub(super) waiting: VecDeque<Waiting>,
    /// Objects and units waiting for grace period `epoch + 1`, not started.
    pub(super) unstarted_objects: usize,
    pub(super) unstarted_units: usize,
    /// The highest grace period somebody waits for.
    pub(super) requested: u64,
    /// The domain was torn down: no reader can exist any more.
    pub(super) dead: bool,
    /// When the last grace period started.
    #[cfg(not(loom))]
    pub(super) started_at: Option<std::time::Instant>,
    /// The last grace period reported as stalled (module `stall`).
    #[cfg(not(loom))]
    pub(super) stall_reported: u64,
    /// What starting a grace period costs the starting thread (see
    /// `GP_COST_FACTOR`), and what the heavy fence alone costs it when a
    /// start runs one (what decides whether busy records fence their every
    /// entry instead: module `fence`, "Fencing every entry"): moving
    /// averages, in nanoseconds.
    #[cfg(not(loom))]
    pub(super) start_cost_ns: u64,
    #[cfg(not(loom))]
    pub(super) barrier_cost_ns: u64,
    /// How long grace periods take, from start to completion: a moving
    /// average (an eighth per completion), in nanoseconds.
    #[cfg(not(loom))]
    pub(super) gp_ns: u64,
    /// How long the domain's grace-period waits last, from the call to
    /// the return: a moving average (an eighth per wait), in nanoseconds.
    #[cfg(not(loom))]
    pub(super) wait_ns: u64,
    /// Emptied thread bags kept for reuse (at most `SPARE_BAGS`), so steady
    /// single retirement allocates nothing. Boxed: they move in and out of
    /// records as `Box<Bag>`, and a bag is too big to copy around.
    #[allow(clippy::vec_box)]
    pub(super) spare: Vec<Box<Bag>>,
    /// Whether more threads retire into the domain than there are
    /// processors (module `crowd`).
    pub(super) crowd: Crowd,
    /// Heavy fences that started grace periods so far: what marks of
    /// `FenceDue` are counted in (module `fence`).
    pub(super) barriers: u64,
}

/// A grace-period wait outside read sections polls before it sleeps
/// (module `poll`) only while grace periods take less than this on
/// average: a wait for a longer grace period, whose readers are
/// descheduled or slow, would only take the processor from them, which
/// with more runnable threads than cores is the processor they wait for.
#[cfg(not(loom))]
const POLL_GP_NS: u64 = 20_000;

/// How many of the domain's average grace periods a wait polls for before
/// it sleeps: most grace periods complete within a few times the average,
/// and a sleep outlasts such a grace period by the timer slack (module
/// `poll`). A writer pacing itself at the soft bound would otherwise idle
/// past each grace period it waits for, and, since nobody drives that
/// grace period meanwhile, its recorded latency, which sets the start
/// floor (`GP_FLOOR_FACTOR`), would grow by the oversleep.
#[cfg(not(loom))]
const POLL_GP_FACTOR: u64 = 4;

/// About what a sleep outlasts its request by (the kernel's timer slack,
/// module `poll`): polling this long costs a waiter at most what one sleep
/// would have idled it.
#[cfg(not(loom))]
const OVERSLEEP_NS: u64 = 64_000;

/// A wait outside read sections for a longer grace period (past
/// `POLL_GP_NS`) still polls for `OVERSLEEP_NS` while the domain's waits
/// take less than this on average: then what holds them up is a reader
/// that is running and about to leave, or the start's own heavy fence,
/// and a sleep would idle the processor past the end of the wait; worse,
/// another runnable thread may take the idle processor and, its cache
/// there, keep waking on it, preempting the waiter long after the wait.
/// Waits that take longer are for readers off their processors: a
/// waiter that polls keeps its processor from them, and one that sleeps
/// lets the scheduler move a waiting reader onto it.
#[cfg(not(loom))]
const POLL_WAIT_NS: u64 = 2 * OVERSLEEP_NS;

impl State {
    /// How long a wait for a grace period polls before it sleeps (module
    /// `poll`): a few average grace periods while those are short, else
    /// `OVERSLEEP_NS` while the domain's waits are short (`POLL_WAIT_NS`),
    /// else not at all; at least `OVERSLEEP_NS` for a wait `in_section`
    /// (inside a read section of the domain). Such a waiter holds up every
    /// grace period started since its section began, so every other writer
    /// that waits meanwhile waits for it: a sleep there would stretch their
    /// waits by its oversleep, and their waits inside their own sections
    /// stretch others' in turn.
    pub(super) fn poll_window(&self, in_section: bool) -> Option<core::time::Duration> {
        #[cfg(not(loom))]
        {
            let window = if self.gp_ns < POLL_GP_NS {
                Some(self.gp_ns * POLL_GP_FACTOR)
            } else {
                (self.wait_ns < POLL_WAIT_NS).then_some(OVERSLEEP_NS)
            };
            let window = if in_section {
                Some(window.unwrap_or(0).max(OVERSLEEP_NS))
            } else {
                window
            };
            window.map(core::time::Duration::from_nanos)
        }
        #[cfg(loom)]
        {
            let _ = in_section;
            Some(core::time::Duration::ZERO)
        }
    }
}

/// Moves `average` an eighth of the way to `sample` (the moving averages
/// of `State`).
#[cfg(not(loom))]
pub(super) fn eighth_average(average: &mut u64, sample: u64) {
    *average = *average - *average / 8 + sample / 8;
}

/// Emptied bags a domain keeps for reuse: a grace period's worth of units
/// (`GP_UNITS`, the most that wait before one starts), plus a few for the
/// bags threads are filling meanwhile. With fewer, steady single retirement
/// allocates and frees a bag (2.1 KiB) every few buffers, right among the
/// retired objects; the price is up to `SPARE_BAGS` idle bags per domain
/// (about 85 KiB) once it has seen that much single retirement.
pub(super) const SPARE_BAGS: usize = GP_UNITS + 8;

/// Rationing: start a grace period once this much work waits for one.
#[cfg(not(any(loom, miri)))]
pub(super) const GP_OBJECTS: usize = 4096;
#[cfg(not(any(loom, miri)))]
pub(super) const GP_UNITS: usize = 32;
#[cfg(miri)]
pub(super) const GP_OBJECTS: usize = 16;
#[cfg(miri)]
pub(super) const GP_UNITS: usize = 4;
#[cfg(loom)]
pub(super) const GP_OBJECTS: usize = 1;
#[cfg(loom)]
pub(super) const GP_UNITS: usize = 1;
/// Rationing in a crowded domain (module `crowd`), which does not pace:
/// a quarter of `GP_OBJECTS`, since threads there retire into buffers of
/// `BAG_CAP` objects each and grace periods last a scheduler slice.
pub(super) const CROWDED_GP_OBJECTS: usize = GP_OBJECTS / 4;

/// Pacing: once work waits, a grace period starts as soon as the time since
/// the last one started is `GP_COST_FACTOR` times what starting one costs
/// (a moving average: 0.2 µs with no other thread running, 1–20 µs with
/// others, as the heavy fence interrupts every CPU running the process;
/// starts that skip it, module `fence`, cost a fraction of a
/// microsecond). Starting grace periods then takes at most about 1.25 % of the
/// starting thread's time while work streams in (never more than one per
/// `GP_MIN_INTERVAL`), and garbage waits no longer than it needs to; once
/// `GP_BUSY_OBJECTS` wait, the factor is `GP_COST_FACTOR_BUSY` (2.5 %, on
/// that many objects at least). The starting thread's measure misses most
/// of what a start costs: each processor the fence interrupts loses about
/// half as much again, and on a machine full of the process's threads
/// that is every processor. A lower factor starts more grace periods and
/// slows write-heavy workloads of several threads by those interruptions;
/// a higher one lets a single fast writer's garbage grow past the peers'.
/// So the factor is 80 while few objects wait and 40 once 64 do, and each
/// start's measured cost counts for at most twice the average
/// (`START_COST_FLOOR_NS`), so that a start during which the thread was
/// preempted does not stretch the interval (measurements in
/// `notes/oversubscription.md` and `notes/benchmarks-history.md`).
#[cfg(not(loom))]
pub(super) const GP_COST_FACTOR: u32 = 80;
/// The pacing factor once `GP_BUSY_OBJECTS` wait (see `GP_COST_FACTOR`).
#[cfg(not(loom))]
pub(super) const GP_COST_FACTOR_BUSY: u32 = 40;
/// Unstarted objects past which pacing uses `GP_COST_FACTOR_BUSY`.
#[cfg(not(loom))]
pub(super) const GP_BUSY_OBJECTS: usize = 64;
/// The cost sample a start always counts in full (`average_cost`): samples
/// above twice the average count as twice the average, or as this.
#[cfg(not(loom))]
pub(super) const START_COST_FLOOR_NS: u64 = 1_000;
/// The start floor: a grace period nobody asked for (rationing, pacing)
/// starts no sooner after the last one started than `GP_FLOOR_FACTOR`
/// times the recent grace-period latency (a moving average), and never
/// later for it than `GP_FLOOR_MAX`. The heavy fence of a start interrupts
/// every processor that runs a thread of the process, a cost the starting
/// thread does not see in its own measure (pacing), and one grace period
/// in flight at a time means the next one would otherwise start as soon as
/// the last completes, back to back. So while readers leave their sections
/// promptly the floor is tens of microseconds (rationing and pacing
/// decide); when a grace period takes long (a reader preempted inside its
/// section, typical with more runnable threads than processors) starts
/// come at most a quarter as often as grace periods could complete, so
/// fewer fences interrupt the threads doing the work, and fewer started
/// grace periods are held up for writers to wait on at the soft bound
/// (measurements in `notes/oversubscription.md`).
/// Requested grace periods (`synchronize`, `barrier`, `collect`, a
/// retirement past the bound, the reclaimer's visit of work already
/// waiting) ignore it.
#[cfg(not(loom))]
pub(super) const GP_FLOOR_FACTOR: u64 = 4;
/// The start floor is also at most this many times what a start costs the
/// starting thread (`start_cost_ns`): a fence that interrupts nobody (no
/// other thread of the process is running: about 0.2 µs) costs nobody
/// else either, and then the floor is a few microseconds, so a lone
/// thread's garbage (whose grace periods wait for its own next
/// registration) is as before. With other threads running, a start costs
/// microseconds and the latency term decides.
#[cfg(not(loom))]
pub(super) const GP_FLOOR_COST_FACTOR: u64 = 40;
/// The longest the start floor delays a grace period (see
/// `GP_FLOOR_FACTOR`).
#[cfg(not(loom))]
pub(super) const GP_FLOOR_MAX: std::time::Duration = std::time::Duration::from_millis(1);
#[cfg(not(loom))]
pub(super) const GP_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_micros(10);
#[cfg(not(loom))]
pub(super) const GP_MAX_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

/// The most objects one `retire`, `drain` or thread exit frees.
#[cfg(not(any(loom, miri)))]
pub(crate) const COLLECT_BUDGET: usize = 1024;
#[cfg(any(loom, miri))]
pub(crate) const COLLECT_BUDGET: usize = 8;

/// One domain's state: what a `Domain` handle shares (the global domain's
/// is [`GLOBAL_INNER`]; a user-created domain's is behind an `Arc`).
pub(crate) struct Inner {
    /// Grace periods started; readers copy it on entry.
    pub(crate) epoch: CachePadded<AtomicU64>,
    /// The last grace period known complete.
    pub(super) completed: CachePadded<AtomicU64>,
    /// Head of the append-only list of thread records.
    pub(super) records: AtomicPtr<Record>,
    pub(super) state: Mutex<State>,
    /// Held by whoever runs destructors; see the module docs.
    pub(super) freeing: Mutex<()>,
    pub(super) counters: Counters,
    /// The sum of the counters of the owners that use this domain.
    pub(super) owners: OwnerCounters,
    /// Limits, fixed at creation.
    pub(super) config: Config,
    /// A grace period that a retirement past the bound waited for in vain
    /// (module `throttle`); until it completes, others do not wait.
    pub(super) stalled: StdAtomicU64,
    /// The same for a wait at the soft bound (kept apart, so that a soft
    /// wait that ran out does not cancel the bound's longer one), and the
    /// pending objects past which the soft bound waits again meanwhile
    /// (twice what there were when the last soft wait ran out).
    pub(super) soft_stalled: StdAtomicU64,
    pub(super) soft_resume: StdAtomicU64,
    /// Per kind of scan (`early::Scan`), the objects retired
    /// (`counters.retired`) below which it does not run (module `early`:
    /// its rationing).
    pub(super) early_next: [StdAtomicU64; 2],
    /// Unique among all domains ever created; 0 is the global domain;
    /// odd ([`ROBUST_ID_BIT`]) for a robust one.
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
    pub(super) panicked: Mutex<Option<Box<dyn core::any::Any + Send>>>,
    /// Where stall warnings go (module `stall`; `None`: stderr).
    #[cfg(not(loom))]
    pub(super) stall_hook: Option<StallHook>,
    /// The owner queues the reclaimer visits along with this domain.
    pub(super) served_owners: Mutex<Vec<std::sync::Weak<dyn Served>>>,
}

/// The bit of a domain's id that says it is robust (module `robust`).
pub(crate) const ROBUST_ID_BIT: u64 = 1;

/// The global domain's state, built at compile time, never torn down.
#[cfg(not(loom))]
pub(crate) static GLOBAL_INNER: Inner = Inner::new_global();

// SAFETY: the raw record pointers are to records owned by this domain and
// only shared through the atomic list; all other state is atomics or behind
// mutexes, and the queued units are `Send`.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

/// The domain's records as an array of pointers, rebuilt from the list's
/// head whenever it changed (the list only ever grows at its head), so
/// that the grace-period check loads every record's state independently
/// instead of following `next` from record to record (module `records`).
pub(super) struct RecordWalk {
    /// The list's head when the array was last brought up to date.
    pub(super) head: *mut Record,
    /// Every record from `head` on, in list order.
    pub(super) records: Vec<core::ptr::NonNull<Record>>,
}

// SAFETY: the pointers are to records, which are `Sync` and live as long as
// the domain that owns this state; the walk is only used under the state
// lock.
unsafe impl Send for RecordWalk {}

impl RecordWalk {
    pub(super) const fn new() -> Self {
        Self {
            head: core::ptr::null_mut(),
            records: Vec::new(),
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A destructor that panicked while a lock was held left the protected
    // data consistent (every step pops before it drops), so poisoning is
    // ignored.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `lock`, waiting at most `max` for the thread that holds it; `None` if it
/// still does then. For the locks whose holder runs destructors (`freeing`):
/// a destructor may wait for a grace period, which any reader can hold up,
/// and a retirement must never wait for a reader without a bound.
pub(crate) fn lock_within<T>(
    mutex: &Mutex<T>,
    max: core::time::Duration,
) -> Option<MutexGuard<'_, T>> {
    let mut guard = None;
    // The backoff's few microseconds, then sleeps: a freer runs up to a
    // budget of destructors.
    super::poll::poll_until(Some(max), Some(core::time::Duration::ZERO), || {
        guard = try_lock(mutex);
        guard.is_some()
    });
    guard
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
    ($id:expr, $config:expr, $this:expr, $hook:expr) => {
        Inner {
            epoch: CachePadded::new(AtomicU64::new(0)),
            completed: CachePadded::new(AtomicU64::new(0)),
            records: AtomicPtr::new(core::ptr::null_mut()),
            state: Mutex::new(State {
                running: false,
                walk: RecordWalk::new(),
                waiting: VecDeque::new(),
                unstarted_objects: 0,
                unstarted_units: 0,
                requested: 0,
                dead: false,
                #[cfg(not(loom))]
                started_at: None,
                #[cfg(not(loom))]
                stall_reported: 0,
                #[cfg(not(loom))]
                start_cost_ns: 0,
                #[cfg(not(loom))]
                barrier_cost_ns: 0,
                #[cfg(not(loom))]
                gp_ns: 0,
                #[cfg(not(loom))]
                wait_ns: 0,
                spare: Vec::new(),
                crowd: Crowd::new(),
                barriers: 0,
            }),
            freeing: Mutex::new(()),
            counters: Counters {
                retired: StdAtomicU64::new(0),
                freed: StdAtomicU64::new(0),
                batches: StdAtomicU64::new(0),
                registrations: StdAtomicU64::new(0),
                crowded_registrations: StdAtomicU64::new(0),
                grace_periods: StdAtomicU64::new(0),
                hurried: StdAtomicU64::new(0),
                timed: StdAtomicU64::new(0),
                peak_pending: StdAtomicU64::new(0),
                stalls: StdAtomicU64::new(0),
                latency: LatencyCounters::new(),
                heavy_fences: StdAtomicU64::new(0),
                fencing_mode: StdAtomicU64::new(0),
                freed_by: [const { StdAtomicU64::new(0) }; Path::COUNT],
                throttle: ThrottleCounters::new(),
            },
            owners: OwnerCounters::new(),
            config: $config,
            stalled: StdAtomicU64::new(0),
            soft_stalled: StdAtomicU64::new(0),
            soft_resume: StdAtomicU64::new(0),
            early_next: [const { StdAtomicU64::new(0) }; 2],
            id: $id,
            dead: StdAtomicBool::new(false),
            handles: AtomicUsize::new(1),
            served: StdAtomicBool::new(false),
            #[cfg(not(loom))]
            this: $this,
            panicked: Mutex::new(None),
            served_owners: Mutex::new(Vec::new()),
            #[cfg(not(loom))]
            stall_hook: $hook,
        }
    };
}

impl Inner {
    /// The global domain's state, built at compile time.
    #[cfg(not(loom))]
    pub(crate) const fn new_global() -> Self {
        inner_new!(0, Config::DEFAULT, std::sync::Weak::new(), None)
    }

    /// A user-created domain's state.
    pub(crate) fn new(config: Config, stall_hook: Option<StallHook>) -> Arc<Self> {
        // Even ids, robust domains' one more (`ROBUST_ID_BIT`), so a
        // handle tells a guard whether its domain is robust without a load.
        static NEXT_ID: StdAtomicU64 = StdAtomicU64::new(2);
        let robust = if config.robust { ROBUST_ID_BIT } else { 0 };
        let id = NEXT_ID.fetch_add(2, Relaxed) | robust;
        #[cfg(not(loom))]
        return Arc::new_cyclic(|this| inner_new!(id, config, this.clone(), stall_hook));
        #[cfg(loom)]
        {
            let _ = stall_hook; // loom builds look for no stalls
            Arc::new(inner_new!(id, config, (), ()))
        }
    }
}

/// An owner's queue of retired objects, which the reclaimer visits along
/// with the owner's domain (implemented by the owner layer).
pub(crate) trait Served: Send + Sync {
    /// Frees the queue's completed units, unless another thread is freeing
    /// them; a destructor's panic is kept for the owner's next `barrier`
    /// or direct free. Never waits for a reader.
    fn visit(&self, inner: &Inner) -> Visited;
    /// Whether units wait in the queue (`Work`) or not (`Idle`).
    fn has_work(&self) -> Visited;
}

/// `Domain` shares its `Inner` between threads.
const _: () = {
    const fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Inner>()
};
