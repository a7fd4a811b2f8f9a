//! A thread's record in one domain: its read-side state and its retire bag.
//!
//! # Invariants
//!
//! - A record is *claimed* by at most one thread at a time (`in_use`), its
//!   owner. Only the owner writes `state` and `exit_work`, and only the owner
//!   touches `bag` outside the domain's state lock.
//! - `state` is [`INACTIVE`] outside read sections, and `epoch << 1 | 1`
//!   inside one, where `epoch` is the domain's epoch the owner read on entry.
//! - Another thread takes the bag ("steals" it) only while holding the
//!   domain's state lock, after raising `steal`, running the heavy fence and
//!   seeing `busy` false: the asymmetric-fence handshake in
//!   [`Record::steal_bag`]. The owner's fast path raises `busy`, runs the
//!   light fence and checks `steal` before touching the bag.
//! - Records are never freed before their domain, so a pointer to one stays
//!   valid as long as the domain does.
//! - A bag holds at most the record's `limit` objects, which the owner
//!   adapts to its retirement rate each time a bag fills (`adapt_limit`):
//!   halved (down to `MIN_BAG`) when filling took longer than `FILL_TIME`,
//!   doubled (up to `BAG_CAP`) when it took less than a quarter of it. So
//!   a slow writer's objects do not sit in a half-empty bag (they count as
//!   garbage the whole time), and a fast one registers 128 at a time.

use core::cell::Cell;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
#[cfg(not(loom))]
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::rcu::fence::{self, FenceDue, FencePolicy};
use crate::rcu::retired::{Bag, DropRun, Reclaim, Slot, BAG_CAP};
use crate::sync::{AtomicBool, AtomicU64, UnsafeCell};
use core::sync::atomic::AtomicUsize as StdAtomicUsize;

/// The smallest bag limit (module invariants).
#[cfg(not(loom))] // used by `adapt_limit`, which loom builds leave out
const MIN_BAG: usize = if BAG_CAP < 8 { BAG_CAP } else { 8 };

/// A new record's bag limit: a fast writer reaches `BAG_CAP` after two bags.
const FIRST_LIMIT: usize = if BAG_CAP < 32 { BAG_CAP } else { 32 };

/// How long a bag should take to fill (module invariants): objects wait in
/// a bag, unregistered, for about this long, which is about a grace
/// period's length when readers are short (tens to hundreds of
/// microseconds), so a bag adds at most about one grace period to its
/// objects' wait. Each registration costs a lock of the domain's state,
/// for which every retiring thread contends: a shorter fill time makes a
/// writer that shares its core with others (and so retires slowly in
/// wall-clock time) register bags of a few objects, and the lock, not the
/// grace periods, then limits how fast garbage is registered and freed.
#[cfg(not(loom))]
const FILL_TIME: Duration = Duration::from_micros(100);

/// The `state` of a thread outside any read section.
pub(crate) const INACTIVE: u64 = 0;

/// `exit_work`'s flag: the record was claimed for one guard alone.
const TEMPORARY: usize = 1;

/// `exit_work`'s unit: one guard alive beyond the first.
const EXTRA_GUARD: usize = 2;

/// Each record has its own cache lines (no false sharing between threads),
/// and `repr(C)` keeps `busy` in a word of its own among the fields the
/// fast path reads (`steal`, `light_compiler_only`): a load right after the
/// store to `busy` must not look like a partial overlap to the CPU's store
/// forwarding.
#[repr(C, align(128))]
pub(crate) struct Record {
    /// `INACTIVE`, or `epoch << 1 | 1` while in a read section.
    pub(crate) state: AtomicU64,
    /// What leaving a section must do beyond storing `INACTIVE`, in one
    /// word so that the common exit tests one value (owner-only): the
    /// guards alive beyond the first, in units of [`EXTRA_GUARD`] (see
    /// `enter`), and [`TEMPORARY`] if the record was claimed for one guard
    /// alone (its thread's locals were being destroyed) and is released
    /// with it.
    exit_work: Cell<usize>,
    /// Raised by the owner around every fast-path bag access.
    busy: AtomicBool,
    /// Single retirements not yet handed to the domain.
    bag: UnsafeCell<Option<Box<Bag>>>,
    /// Objects in the current bag, for statistics only: a plain store on the
    /// fast path (no counter chained through memory), reset when the bag is
    /// handed over, when the domain's counters take the objects over.
    buffered: StdAtomicUsize,
    /// Next record in the domain's list (immutable once published).
    pub(crate) next: *const Record,
    /// The id of the record's domain (immutable): what a guard's section
    /// gives to pointers' domain checks, read from the line its entry
    /// wrote.
    pub(crate) domain_id: u64,
    /// Whether the owner's next entry runs a full fence (module `fence`):
    /// read by every entry, so on the line the entry writes.
    pub(crate) fence_due: FenceDue,
    /// Raised by a thread that wants to take the bag.
    steal: AtomicBool,
    /// Whether a thread has claimed this record.
    pub(crate) in_use: AtomicBool,
    /// [`fence::light_is_compiler_only`], read when the record was made
    /// (the strategy never changes afterwards), so the retire fast path's
    /// fence reads this cache line only. Not in `busy`'s word: a load right
    /// after the store to `busy` must not touch the stored bytes' word.
    light_compiler_only: bool,
    /// The most objects the next bag takes (module invariants); changed
    /// under the state lock only.
    limit: Cell<usize>,
    /// How grace-period starts choose `fence_due`'s mode: written by
    /// starts, on a line of its own away from the one entries write.
    pub(crate) fence_policy: FencePolicy,
    /// The last crowding window the owner registered work in (module
    /// `machine::crowd`); under the state lock only.
    #[cfg(not(loom))]
    crowd_stamp: Cell<u64>,

    /// When the last bag filled; under the state lock only.
    #[cfg(not(loom))]
    filled: Cell<Option<Instant>>,
    /// The thread that registered with this record (for stall warnings;
    /// set by the owner at registration, read by whoever reports a stall).
    #[cfg(not(loom))]
    thread: std::sync::Mutex<Option<std::thread::Thread>>,
    // Owned sections' fields, last: away from the lines the fast paths read.
    /// Whether an owned section (module `owned`) holds this record, rather
    /// than a thread: set by its claimer before the section starts, cleared
    /// when it is released.
    owned: AtomicBool,
    /// Room for an owned section's handle of its domain, written and read
    /// by that section alone (module `owned`, which checks that the handle
    /// fits; this module cannot name its type). In the record because a
    /// record's address is stable for the domain's life: the section's
    /// guard borrows the handle from here.
    owned_handle: core::cell::UnsafeCell<core::mem::MaybeUninit<[usize; 2]>>,
    /// Where the owned section holding this record was made, for stall
    /// warnings: stored before its section starts (which publishes it), and
    /// read by a stall report, which may see the next section's if the
    /// record changes hands meanwhile (only the report would be off).
    #[cfg(not(loom))]
    owned_at: core::sync::atomic::AtomicPtr<core::panic::Location<'static>>,
    // A robust domain's fields (module `robust`), last too: read only by
    // its protected loads, which a guard of another domain never runs.
    /// The newest epoch whose objects the section may hold.
    pub(crate) hi: AtomicU64,
    /// The newest epoch the owner thread's sections may load in without
    /// fencing again: a value of `hi` that was fenced (never raised by an
    /// owned section, whose threads do not see each other's fences).
    pub(crate) trusted: AtomicU64,
    /// The domain's epoch (immutable): the domain outlives its records.
    pub(crate) epoch: *const AtomicU64,
}

// Shared fields are atomics; `exit_work` and the fast-path use of `bag` are
// confined to the owning thread (see the module invariants), and so are
// `fence_due`'s cells (module `fence`; its starts-side policy is atomics).
// SAFETY: every other access to `bag` holds the state lock after the steal
// handshake.
unsafe impl Sync for Record {}
// SAFETY: as above; a record moves between threads only through the domain's
// list, and the bag's contents are `Send`.
unsafe impl Send for Record {}

impl Record {
    pub(crate) fn new(next: *const Record, domain_id: u64, epoch: *const AtomicU64) -> Self {
        Self {
            state: AtomicU64::new(INACTIVE),
            domain_id,
            hi: AtomicU64::new(0),
            trusted: AtomicU64::new(0),
            epoch,
            exit_work: Cell::new(0),
            busy: AtomicBool::new(false),
            light_compiler_only: fence::light_is_compiler_only(),
            fence_due: FenceDue::new(),
            steal: AtomicBool::new(false),
            bag: UnsafeCell::new(None),
            buffered: StdAtomicUsize::new(0),
            in_use: AtomicBool::new(true),
            owned: AtomicBool::new(false),
            owned_handle: core::cell::UnsafeCell::new(core::mem::MaybeUninit::uninit()),
            #[cfg(not(loom))]
            owned_at: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
            next,
            limit: Cell::new(FIRST_LIMIT),
            fence_policy: FencePolicy::default(),
            #[cfg(not(loom))]
            crowd_stamp: Cell::new(0),
            #[cfg(not(loom))]
            filled: Cell::new(None),
            #[cfg(not(loom))]
            thread: std::sync::Mutex::new(None),
        }
    }

    /// Remembers the calling thread as the record's owner (at registration:
    /// the thread's locals are alive then, so `thread::current` works).
    #[cfg(not(loom))]
    pub(crate) fn set_thread(&self) {
        let thread = std::thread::current();
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
    }

    /// The thread that registered with this record, if one did.
    #[cfg(not(loom))]
    pub(crate) fn thread(&self) -> Option<std::thread::Thread> {
        self.thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Enters a read section (owner only).
    ///
    /// The live guards of a record number the extra ones counted in
    /// `exit_work`, plus one if `state` is active. Guards are
    /// interchangeable, so dropping them in any order is right: each drop
    /// removes an extra one if there is any, else ends the section. The
    /// common single-guard case stores `state` only, and feeds no value
    /// through memory from one section to the next.
    #[inline(always)]
    pub(crate) fn enter(&self, epoch: &AtomicU64) {
        // Relaxed: only this thread writes `state`.
        if self.state.load(Relaxed) & 1 == 1 {
            self.exit_work.set(self.exit_work.get() + EXTRA_GUARD);
            return;
        }
        // Acquire: if we read the epoch a grace period stored when it
        // started, everything unlinked before that start is visible to this
        // section, so that grace period need not wait for us.
        let e = epoch.load(Acquire);
        // Publishes the section, then the light fence, or a full one if a
        // grace period asked (module `fence`, "Skipping the heavy fence").
        self.fence_due
            .enter(&self.fence_policy, &self.state, e << 1 | 1);
    }

    /// Enters the read section of an owned section (module `owned`): as
    /// [`enter`](Record::enter), but with a full fence, since the loads the
    /// section protects may run on another thread than this one.
    #[inline]
    pub(crate) fn enter_owned(&self, epoch: &AtomicU64) {
        debug_assert!(self.is_owned() && !self.in_section());
        // Acquire, Release: as in `enter`.
        let e = epoch.load(Acquire);
        self.state.store(e << 1 | 1, Release);
        // Orders the store before every load of the section, on whichever
        // thread it runs, as the heavy fence's pair (module `fence`).
        crate::sync::full_fence();
    }

    /// Marks the record as held by an owned section, or not (its claimer),
    /// before the section starts or after it ended.
    pub(crate) fn set_owned(&self, owned: bool) {
        self.owned.store(owned, Relaxed);
        self.reset_reservation();
    }

    /// Whether an owned section holds the record.
    pub(crate) fn is_owned(&self) -> bool {
        self.owned.load(Relaxed)
    }

    /// Records where the owned section about to hold this record was made.
    #[cfg(not(loom))]
    pub(crate) fn set_owned_at(&self, at: &'static core::panic::Location<'static>) {
        self.owned_at
            .store(core::ptr::from_ref(at).cast_mut(), Relaxed);
    }

    /// Where the owned section holding this record was made, if one does.
    #[cfg(not(loom))]
    pub(crate) fn owned_at(&self) -> Option<&'static core::panic::Location<'static>> {
        if !self.is_owned() {
            return None;
        }
        // SAFETY: null or from a `&'static Location` (`set_owned_at`).
        unsafe { self.owned_at.load(Relaxed).as_ref() }
    }

    /// Where the owned section holding this record keeps its domain handle
    /// (see `owned_handle`): two words, aligned as `usize`.
    pub(crate) fn owned_handle(&self) -> *mut [usize; 2] {
        self.owned_handle.get().cast()
    }

    /// Leaves a read section (owner only). Returns true if the caller must
    /// now release the record: the section ended and the record was
    /// claimed for one guard alone.
    ///
    /// The common case (one guard, a registered record) tests one word and
    /// stores `state`; the rest is out of line.
    #[inline(always)]
    pub(crate) fn exit(&self) -> bool {
        let work = self.exit_work.get();
        if work == 0 {
            // Release: a grace period that reads this (Acquire) happens
            // after every access this section made.
            self.state.store(INACTIVE, Release);
            return false;
        }
        self.exit_with(work)
    }

    /// Ends the section for a moment, if the caller's guard is the only
    /// one alive (owner only): returns false and changes nothing if other
    /// guards of this record are alive, since they keep the section open.
    /// After true, the caller [`enter`](Record::enter)s again before its
    /// guard drops (the record stays claimed meanwhile, temporary or not).
    #[inline]
    pub(crate) fn pause(&self) -> bool {
        if self.exit_work.get() >= EXTRA_GUARD {
            return false;
        }
        // Release: as in `exit`.
        self.state.store(INACTIVE, Release);
        true
    }

    /// [`Record::exit`] when a guard beyond the first is alive, or the
    /// record is temporary.
    #[cold]
    fn exit_with(&self, work: usize) -> bool {
        if work >= EXTRA_GUARD {
            self.exit_work.set(work - EXTRA_GUARD);
            return false;
        }
        // As in `exit`.
        self.state.store(INACTIVE, Release);
        work & TEMPORARY != 0
    }

    /// Marks the record as one to release when its last section ends, or
    /// not (owner only). Guards alive now stay counted: a registry's record
    /// becomes temporary while its sections are still open.
    pub(crate) fn set_temporary(&self, temporary: bool) {
        let work = self.exit_work.get() & !TEMPORARY;
        self.exit_work
            .set(if temporary { work | TEMPORARY } else { work });
    }

    /// Whether the owner is inside a read section (owner only).
    pub(crate) fn in_section(&self) -> bool {
        self.state.load(Relaxed) & 1 == 1
    }

    /// The epoch the owner's outermost open section read on entry, if it is
    /// inside one (owner only): that section holds up exactly the grace
    /// periods after it.
    pub(crate) fn section_epoch(&self) -> Option<u64> {
        let s = self.state.load(Relaxed);
        (s & 1 == 1).then_some(s >> 1)
    }

    /// The epoch its section began in, if it is in one (any thread; as
    /// seen by a grace period's check).
    #[inline]
    pub(crate) fn active_epoch(&self) -> Option<u64> {
        // Acquire: pairs with the Release stores in `enter`/`exit`.
        let s = self.state.load(Acquire);
        (s & 1 == 1).then_some(s >> 1)
    }

    /// Whether this record still holds up grace period number `gp`.
    #[inline]
    pub(crate) fn blocks(&self, gp: u64) -> bool {
        self.active_epoch().is_some_and(|lo| lo < gp)
    }

    /// Owner fast path: puts an object in the bag without synchronization.
    /// Returns false when the slow path must run (bag absent or full, or a
    /// steal in progress); nothing was pushed then.
    ///
    /// # Safety
    ///
    /// Called by the owner, with `slot`/`drop`/`birth` as [`Bag::push`]
    /// requires.
    #[inline]
    pub(crate) unsafe fn push_fast(&self, slot: Slot, drop: DropRun, birth: u64) -> bool {
        self.busy.store(true, Relaxed);
        // Pairs with the heavy fence in `steal_bag`: either the stealer sees
        // `busy`, or we see `steal`.
        fence::light_with(self.light_compiler_only);
        if self.steal.load(Acquire) {
            return self.fast_path_fails();
        }
        let len = self.bag.with_mut(|bag| {
            // SAFETY: we are the owner, and a stealer either raised `steal`
            // before our fence (we saw it and returned above) or will see
            // `busy` and wait until we lower it: exclusive.
            match unsafe { &mut *bag } {
                // SAFETY: forwarded from this function's contract.
                Some(bag) => unsafe { bag.push(slot, drop, birth) },
                None => 0,
            }
        });
        if len == 0 {
            return self.fast_path_fails();
        }
        self.buffered.store(len, Relaxed);
        // Release: a stealer that sees `busy` false sees our push.
        self.busy.store(false, Release);
        true
    }

    /// The end of a fast path that pushed nothing (cold, so the common case
    /// falls through).
    #[cold]
    #[inline(never)]
    fn fast_path_fails(&self) -> bool {
        // Release: as at the end of `push_fast`.
        self.busy.store(false, Release);
        false
    }

    /// Slow path, under the domain's state lock: pushes, handing back a full
    /// bag to register first.
    ///
    /// # Safety
    ///
    /// The caller holds the domain's state lock (so no stealer runs) and is
    /// the owner or the owner cannot run (it exited); `slot`/`drop` as
    /// [`Bag::push`] requires. `new_bag(n)` gives an empty bag of
    /// [`Bag::class(n)`](Bag::class) slots: with `adapt`, `n` is the
    /// record's adaptive limit, else `BAG_CAP`.
    pub(crate) unsafe fn push_locked(
        &self,
        slot: Slot,
        drop: DropRun,
        birth: u64,
        adapt: bool,
        mut new_bag: impl FnMut(usize) -> Box<Bag>,
    ) -> Option<Box<Bag>> {
        let mut new_bag = || new_bag(if adapt { self.limit.get() } else { BAG_CAP });
        let (full, len) = self.bag.with_mut(|cell| {
            // SAFETY: exclusive by this function's contract.
            let cell = unsafe { &mut *cell };
            let full = match cell {
                Some(bag) if !bag.is_full() => None,
                Some(_) => {
                    self.adapt_limit();
                    cell.take()
                }
                None => None,
            };
            let bag = cell.get_or_insert_with(&mut new_bag);
            // SAFETY: forwarded; a fresh or non-full bag has room unless its
            // runs are exhausted, handled below.
            match unsafe { bag.push(slot, drop, birth) } {
                0 => {
                    let mut fresh = new_bag();
                    // SAFETY: forwarded; an empty bag always accepts.
                    let len = unsafe { fresh.push(slot, drop, birth) };
                    debug_assert_eq!(len, 1);
                    (Some(core::mem::replace(bag, fresh)), len)
                }
                len => (full, len),
            }
        });
        self.buffered.store(len, Relaxed);
        full.filter(|b| b.len() > 0)
    }

    /// A bag just filled: adapts the limit to how long it took (module
    /// invariants). Under the state lock.
    fn adapt_limit(&self) {
        #[cfg(not(loom))]
        {
            let now = Instant::now();
            if let Some(then) = self.filled.replace(Some(now)) {
                let took = now.saturating_duration_since(then);
                let limit = self.limit.get();
                if took > FILL_TIME {
                    self.limit.set((limit / 2).max(MIN_BAG));
                } else if took < FILL_TIME / 4 {
                    self.limit.set((limit * 2).min(BAG_CAP));
                }
            }
        }
    }

    /// Takes the bag (owner under the state lock, or a stealer after
    /// [`Record::raise_steal`] and the heavy fence).
    ///
    /// # Safety
    ///
    /// The caller holds the domain's state lock, and either is the owner, or
    /// raised `steal` on this record before running [`fence::heavy`].
    pub(crate) unsafe fn steal_bag(&self) -> Option<Box<Bag>> {
        let backoff = Backoff::new();
        // Acquire: pairs with the owner's Release when it lowers `busy`.
        while self.busy.load(Acquire) {
            crate::sync::snooze(&backoff);
        }
        // SAFETY: the owner is outside its fast path and, until we lower
        // `steal`, will not enter it (it sees `steal` and takes the lock we
        // hold), or the owner is us; other takers hold the same lock.
        let bag = self.bag.with_mut(|cell| unsafe { (*cell).take() });
        self.buffered.store(0, Relaxed);
        bag.filter(|b| b.len() > 0)
    }

    /// First half of a steal: announce it. Follow with one heavy fence for
    /// all records, then [`Record::steal_bag`] and [`Record::lower_steal`].
    pub(crate) fn raise_steal(&self) {
        self.steal.store(true, Relaxed);
    }

    pub(crate) fn lower_steal(&self) {
        // Release: the owner's next fast path (Acquire) sees the bag gone.
        self.steal.store(false, Release);
    }

    /// The record's crowding stamp (module `machine::crowd`); used under
    /// the domain's state lock only.
    #[cfg(not(loom))]
    pub(crate) fn crowd_stamp(&self) -> &Cell<u64> {
        &self.crowd_stamp
    }

    /// Objects in this record's bag, not yet handed to the domain.
    pub(crate) fn buffered(&self) -> u64 {
        self.buffered.load(Relaxed) as u64
    }
}
