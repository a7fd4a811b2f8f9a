//! `structures`: the standard reclamation workloads of kaist-cp/smr-benchmark
//! (the PEBR, HP++, HP-BRCU and CIRC papers' artifact), run on every back-end
//! with one text of each algorithm.
//!
//! # What runs
//!
//! Two structures, written once, generically over a small reclamation
//! back-end trait ([`Backend`]); only the back-end's calls differ:
//!
//! - `list`: a Harris–Michael sorted linked list (Michael's variant of
//!   Harris's list: a traversal unlinks one marked node at a time and
//!   restarts when its unlink fails), keys `0..1 000`;
//! - `hashmap`: a Michael hash map, 30 000 buckets (smr-benchmark's bucket
//!   count) of that same list, keys `0..100 000`.
//!
//! And one structure that each side writes its own way, behind a smaller
//! trait ([`OrderedMap`]): `skiplist`, an ordered map of `u64` keys
//! `0..100 000` (values 8 bytes, so the nodes are a `SkipMap<u64, u64>`'s),
//! on back-ends `ownrcu_skiplist` (the map of `examples/skiplist.rs`, on its
//! default domain of its own) and `crossbeam_skiplist`
//! (`crossbeam_skiplist::SkipMap`, on crossbeam-epoch's default collector);
//! each map pins inside its own calls. `cargo bench --bench structures --
//! skiplist/` runs these rows alone.
//!
//! Back-ends (each peer at its best documented path; see each `impl`):
//! `ownrcu` (raw `AtomicPtr`, `Domain::global()` guards, `Domain::retire_raw`,
//! the crate's default settings), `ownrcu_atomic` (the same domain and
//! settings through the crate's safe pointer, `Atomic<Node, GlobalDomain>`,
//! with `Detached::retire()`), `ownrcu_atomic_domain` (the same safe-pointer
//! calls on a `Domain::new()` made fresh for each run, as a structure with
//! its own domain has it: `Atomic<Node, UncheckedDomain>` links, that
//! domain's guards and retirements), `ownrcu_atomic_robust` (the same on a
//! robust domain, `Domain::builder().robust(true)`), `crossbeam_epoch`,
//! `seize`, `sdd`. The `ownrcu_atomic...` back-ends are not peers: the
//! first shows what the safe pointer costs over raw pointers on the same
//! domain, the second what a structure's own domain costs over the global
//! one, the third what a robust domain's protected loads cost. In the
//! one-thread list and hash-map rows, `floor` is the physical floor: no
//! read sections, and each node freed the moment it is unlinked (sound
//! with one thread only), so a back-end's throughput over it is what its
//! whole reclamation costs in that row; rows of more threads have no such
//! floor (a node cannot be freed at once while another thread may read
//! it).
//!
//! Workloads as in smr-benchmark: the key range is prefilled to half (the
//! same keys, in the same order, for every back-end); mixes `write` (50 %
//! insert, 50 % remove), `read` (90 % get, 5 % insert, 5 % remove) and, for
//! the skip list, `mixed` (50 % get, 25 % insert, 25 % remove); an insert
//! inserts only an absent key (`get_or_insert` for crossbeam-skiplist); keys
//! uniform over the range; 1 and 2 worker threads, and for the list and the
//! hash map also 4 and 8 (more threads than this machine's cores: the
//! oversubscribed rows, `cargo bench --bench structures -- /4` runs those of
//! 4 alone); one operation per read section; fixed-duration runs. Each (structure, mix, threads, back-end) is
//! run 3 times, interleaved (repetition 1 of every back-end, then
//! repetition 2, ...), and the median of each figure is reported: one run is
//! mostly noise on a shared 2-core machine.
//!
//! Differences from smr-benchmark's text, the same for every back-end: the
//! list head is a bare link, not a sentinel node; insert allocates its node
//! only once it knows the key is absent (smr-benchmark allocates first and
//! frees the node when the key is present); the bucket is `key % buckets`
//! (the keys are uniform), not SipHash; the remove's logical deletion (the
//! mark) is a compare-exchange loop, not `fetch_or`, because sdd's
//! `AtomicRaw` has no `fetch_or` (the `ownrcu_atomic...` back-ends'
//! `Atomic::fetch_or` is a compare-exchange loop itself); a remove returns
//! whether it removed (it reads nothing of the node after retiring it).
//!
//! # What is measured, and how
//!
//! Per row and back-end: operations per second (all threads' operations over
//! the run's wall time), **peak garbage**, **peak heap bytes** and **bytes
//! per key** (the heap the prefilled structure holds, over its keys). On
//! stderr, each back-end's throughput over the row's garbage peer's, per
//! repetition, with their median (`print_paired`).
//!
//! - Garbage = nodes retired and not yet dropped. The algorithm counts a node
//!   as retired just before handing it to the back-end, and the node's own
//!   destructor counts its drop; never a library's statistics. The counters
//!   are per thread (one cache-padded slot each, so counting adds no shared
//!   cache line to the workload) and ONE monitor thread sums them every
//!   `PERIOD` (100 µs, a fixed schedule of deadlines, as in `churn.rs`),
//!   identically for every back-end; the peak is the largest sample. In the
//!   skip-list rows a node's value is counted instead (its drop is the
//!   node's free), and a node counts as retired when its remove returns.
//! - Heap = live bytes of the whole process, counted by a `#[global_allocator]`
//!   wrapper around the system allocator (requested sizes, per-thread slots
//!   summed by the same monitor sample). Peak heap = the largest sample minus
//!   the sample taken after the prefill, before the workers start: the
//!   back-end's garbage and bookkeeping (bags, batches, thread records) plus
//!   the structure's random-walk growth (a few nodes). sdd's nodes carry its
//!   16-byte intrusive header, so its node is 40 bytes where the others' is 24.
//!
//! Two things are the same for every back-end but worth knowing when reading
//! the figures: the monitor is a third thread on a 2-core machine, so in the
//! 2-thread rows it preempts workers, sometimes inside a read section (which
//! delays every back-end's reclamation a little, as smr-benchmark's sampling
//! thread does); and the crossbeam-epoch and seize collectors and
//! `ownrcu_atomic_domain`'s domain are fresh in every run (their bookkeeping,
//! e.g. the workers' thread records, is allocated within the run), while the
//! global domain of `ownrcu` and `ownrcu_atomic`, and sdd's collector, are
//! process-wide (ownrcu keeps up to about 87 KiB of emptied buffers for
//! reuse, so its first run shows more heap than the later ones: the medians
//! take the later ones; `ownrcu` and `ownrcu_atomic` share the global domain,
//! `ownrcu` runs first in every repetition).
//!
//! # Honesty checks (every run)
//!
//! Every worker must have completed operations. After the run (outside the
//! timing) the structure is torn down and checked: its unmarked nodes must
//! be exactly prefill + inserts − removes, and its marked-but-still-linked
//! nodes exactly the removes whose node was not yet unlinked (removes −
//! nodes retired). Then each back-end is driven until all of its garbage is
//! freed (ownrcu and ownrcu_atomic the global domain's `barrier()`;
//! ownrcu_atomic_domain its run's domain's `barrier()`, then the domain
//! dropped; crossbeam flush-and-repin, then the collector dropped; seize the
//! collector dropped; sdd new guards with `accelerate()`), and every node
//! ever allocated must have been dropped exactly once (allocated ==
//! dropped; a destructor poisons its node's key and a second drop of a
//! still-mapped node panics).
//!
//! # Output
//!
//! A Markdown table on stdout (rows: structure × mix × threads; per
//! back-end: Mops/s, peak garbage, peak heap; then ownrcu ÷ best peer
//! throughput, paired by repetition (the median over repetitions of
//! ownrcu's throughput over the fastest peer's in the same repetition: the
//! back-ends take turns within each repetition), and ownrcu ÷
//! crossbeam-epoch peak garbage) and JSON to
//! `target/criterion/structures/results.json` (`$CRITERION_HOME` or
//! `$CARGO_TARGET_DIR/criterion` instead of `target/criterion` when set),
//! which `.ci/bench-table` prints.
//!
//! # Running it
//!
//! `cargo bench --bench structures` runs every row with runs of 1 s (8 rows ×
//! 6 back-ends + 6 skip-list rows × 2 back-ends, × 3 repetitions = 180 s of
//! runs plus set-up: about 190 s on a 2-core machine). `OWNRCU_BENCH_SECS=0.2` sets the seconds per run (e.g. for
//! a smoke run), `OWNRCU_BENCH_REPS` the repetitions, and an argument keeps
//! only the rows and back-ends whose `structure/mix/threads/back-end`
//! matches it (`cargo bench --bench structures -- hashmap/write`, or
//! `-- skiplist/read/1/crossbeam` to profile one back-end): a pattern
//! matches what contains it, `^` anchors it at the start and `$` at the
//! end, and a comma separates alternatives
//! (`-- '^list/write/1/ownrcu$,^list/write/1/crossbeam_epoch$'` runs two
//! back-ends of one row; `ownrcu$` alone would not match
//! `ownrcu_atomic`). A filtered run writes the JSON too, with only the
//! cells it ran. Run without `--bench` (as `cargo test --benches` does)
//! it does a 20 ms smoke run of every row, once, and writes no JSON.
//!
//! Progress goes to stderr: each row's per-back-end medians and every run's
//! throughput, and after each run of an `ownrcu...` back-end its domain's
//! own counters over that run (grace periods, frees, throttle events; the
//! global domain's for `ownrcu` and `ownrcu_atomic`, the run's own domain's
//! for `ownrcu_atomic_domain`), for diagnosis only.
//!
//! # Adding a back-end
//!
//! Implement [`Backend`] (or, for one on raw `AtomicPtr`s, the smaller
//! [`RawReclaim`]) and add one line to [`BACKENDS`]; the table and the JSON
//! take their columns from that list. A back-end named `ownrcu...` is not a
//! peer: "best peer" is the best back-end whose name does not start with
//! `ownrcu`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::cmp::Ordering::{Equal, Greater, Less};
use std::env;
use std::fmt::Write as _;
use std::hint::black_box;
use std::mem::{self, ManuallyDrop};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize};
use std::thread;
use std::time::{Duration, Instant};

use ownrcu::{
    Atomic, Detached, Domain, DomainBinding, GlobalDomain, Owned, Shared, UncheckedDomain,
};

#[path = "common/output.rs"]
mod output;

// ---------------------------------------------------------------------------
// Counters: per-thread slots, summed by the monitor.
// ---------------------------------------------------------------------------

/// Number of counter slots; threads take them in turn (a slot is shared only
/// by threads 64 spawns apart, which never run in the same repetition).
const SLOTS: usize = 64;

/// One thread's counters, on its own cache lines.
#[repr(align(128))]
struct Slot {
    /// Live heap bytes allocated minus freed by this thread (may be negative:
    /// a block is often freed by another thread than the one that made it).
    heap: AtomicIsize,
    /// Nodes allocated.
    allocated: AtomicUsize,
    /// Nodes handed to a back-end's retire.
    retired: AtomicUsize,
    /// Nodes freed at once without a retire (never published, or torn down
    /// with exclusive access), counted here before their drop.
    freed_now: AtomicUsize,
    /// Skip-list removes that returned an entry another remove had already
    /// returned (a peer's defect; never counted as removals).
    repeated_removes: AtomicUsize,
    /// Node destructors run.
    dropped: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only the array initialiser uses it
const SLOT: Slot = Slot {
    heap: AtomicIsize::new(0),
    allocated: AtomicUsize::new(0),
    retired: AtomicUsize::new(0),
    freed_now: AtomicUsize::new(0),
    repeated_removes: AtomicUsize::new(0),
    dropped: AtomicUsize::new(0),
};

static COUNTERS: [Slot; SLOTS] = [SLOT; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const`, no destructor: usable inside the allocator, during thread
    // start-up and tear-down, without allocating.
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's counter slot.
#[inline]
fn slot() -> &'static Slot {
    let i = MY_SLOT.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SLOT.fetch_add(1, Relaxed) % SLOTS;
            s.set(i);
        }
        i
    });
    &COUNTERS[i]
}

/// The sums of every slot, read drops first: a node is counted as retired
/// (Release) before it is handed over, and its drop (Release) happens after
/// the back-end's hand-over, so a sample that sees a drop (Acquire) also sees
/// its retirement; reading in this order can over-count garbage (by what is
/// retired between the loads), never under-count.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    heap: isize,
    allocated: usize,
    retired: usize,
    freed_now: usize,
    repeated_removes: usize,
    dropped: usize,
}

impl Totals {
    fn now() -> Self {
        let mut t = Totals::default();
        for s in &COUNTERS {
            t.dropped += s.dropped.load(Acquire);
        }
        for s in &COUNTERS {
            t.retired += s.retired.load(Acquire);
            t.freed_now += s.freed_now.load(Acquire);
            t.repeated_removes += s.repeated_removes.load(Relaxed);
            t.allocated += s.allocated.load(Acquire);
            t.heap += s.heap.load(Relaxed);
        }
        t
    }

    /// Nodes retired and not yet dropped (`freed_now` nodes are dropped at
    /// once, so they cancel out).
    fn garbage(&self) -> usize {
        (self.retired + self.freed_now).saturating_sub(self.dropped)
    }
}

/// The system allocator, counting live bytes per thread.
struct Counting;

#[inline]
fn count_heap(bytes: isize) {
    slot().heap.fetch_add(bytes, Relaxed);
}

// SAFETY: every call is forwarded to `System` with the caller's arguments,
// so `System`'s guarantees are passed on unchanged; the counting touches
// only atomics and a `const` thread-local (no allocation, no re-entry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count_heap(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is `System`'s.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count_heap(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, i.e. by `System`,
        // with `layout` (the caller's contract).
        unsafe { System.dealloc(ptr, layout) };
        count_heap(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`, and the
        // caller upholds `realloc`'s contract for `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count_heap(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Same allocator behaviour for every back-end (as `benches/common`): no heap
/// trimming, no mmap-backed allocations.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's tuning parameters; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
    }
}

// ---------------------------------------------------------------------------
// The node and the back-end trait.
// ---------------------------------------------------------------------------

/// A key no run ever uses: a dropped node's key is set to it.
const POISON: usize = usize::MAX;

/// A list node: 24 bytes with a raw link (as smr-benchmark's `Node<usize,
/// usize>`).
struct Node<B: Backend> {
    key: usize,
    value: usize,
    /// The successor, with the low bit as Harris's mark (logically deleted).
    next: B::Link,
}

impl<B: Backend> Node<B> {
    fn new(key: usize) -> Self {
        slot().allocated.fetch_add(1, Relaxed);
        Self {
            key,
            value: key,
            next: B::null_link(),
        }
    }
}

impl<B: Backend> Drop for Node<B> {
    fn drop(&mut self) {
        assert_ne!(self.key, POISON, "a node was dropped twice");
        self.key = POISON;
        slot().dropped.fetch_add(1, Release);
    }
}

/// A reclamation back-end: how a thread protects the nodes it reads, how an
/// unlinked node is retired, and how a node link is represented.
///
/// The algorithm only ever calls these. A back-end on raw `AtomicPtr`s
/// implements [`RawReclaim`] instead and gets the link half from the blanket
/// `impl`; one with its own pointer type (sdd's `AtomicRaw`, or ownrcu's safe
/// pointer) implements this trait directly.
///
/// The link operations are the three writes of the algorithm, not a general
/// compare-exchange, so that a safe pointer type (ownrcu's `Atomic`, whose
/// new objects are owned values and whose unlinks hand the object back) can
/// implement them: [`insert_before`](Backend::insert_before) publishes a
/// [`New`](Backend::New) node in front of the current one,
/// [`unlink`](Backend::unlink) swings a link past a marked node and returns
/// the node to retire, [`mark`](Backend::mark) sets a node's mark; after the
/// run, [`pop`](Backend::pop) takes the linked nodes out with exclusive
/// access. On raw pointers each is the compare-exchange (or store) it always
/// was.
trait Backend: Sized + Sync + 'static {
    /// The column name in the table and the JSON.
    const NAME: &'static str;
    /// Per-thread state, made once per worker thread (crossbeam's
    /// `LocalHandle`).
    type Handle<'s>;
    /// A read-side critical section.
    type Guard<'h>;
    /// An atomic link to a node, with a mark bit. Dropping a link (inside a
    /// dropped node, or the structure's heads) never drops the node it
    /// points to: nodes are freed by [`retire`](Backend::retire) or
    /// [`free_now`](Backend::free_now) only.
    type Link: Send + Sync;
    /// A link's value loaded under a guard: valid (if not null) while the
    /// guard lives.
    type Ptr<'g>: Copy + PartialEq;
    /// A node owned by the caller: allocated and not yet published, or taken
    /// out of the structure by [`pop`](Backend::pop).
    type New;
    /// A node an [`unlink`](Backend::unlink) took out, to be retired.
    type Unlinked<'g>;

    /// The shared state of one run (a fresh collector, where the back-end
    /// has private ones).
    fn new() -> Self;
    fn handle(&self) -> Self::Handle<'_>;
    fn pin<'h>(handle: &'h Self::Handle<'_>) -> Self::Guard<'h>;

    fn is_null(p: Self::Ptr<'_>) -> bool;
    fn is_marked(p: Self::Ptr<'_>) -> bool;
    fn unmarked(p: Self::Ptr<'_>) -> Self::Ptr<'_>;
    /// A new null link.
    ///
    /// A back-end may rely on this: the links of a run (its structure's
    /// heads, its nodes' links, and the placeholders `pop` swaps in) are
    /// passed only guards that [`pin`](Backend::pin) made on handles from
    /// that run's one back-end value (`run_once` makes one back-end value
    /// and one structure per run; no link outlives its run).
    fn null_link() -> Self::Link;
    /// Allocates a node, not yet published.
    fn alloc(node: Node<Self>) -> Self::New;

    /// Loads a link (Acquire, or what the back-end requires for protection).
    fn load<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Self::Ptr<'g>;
    /// Publishes `new` in front of `current`: stores `current` into `new`'s
    /// own link (Relaxed: nobody else sees it yet), then compare-exchanges
    /// `link` from `current` to `new` (Release on success, Relaxed on
    /// failure). On failure `new` comes back, still unpublished.
    fn insert_before<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        new: Self::New,
        guard: &'g Self::Guard<'_>,
    ) -> Result<(), Self::New>;
    /// Compare-exchanges `link` from `current` to `next` (Release on
    /// success, Relaxed on failure): the unlink of a marked node. Returns the
    /// node it unlinked (`current`'s), or `None` if the link had changed.
    ///
    /// # Safety
    /// `current` is not null and was loaded from `link` under `guard`; its
    /// node is marked (its own link never changes again) and `next` is that
    /// link's successor, unmarked; `link` is the only live link to
    /// `current`'s node (so on success no new reader can reach it).
    unsafe fn unlink<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        next: Self::Ptr<'g>,
        guard: &'g Self::Guard<'_>,
    ) -> Option<Self::Unlinked<'g>>;
    /// Sets the mark of an unmarked link (AcqRel), returning its value; `None`
    /// if it was already marked.
    fn mark<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Option<Self::Ptr<'g>>;

    /// # Safety
    /// `p` is not null, and was loaded under `'g`'s guard (or is owned).
    unsafe fn deref<'g>(p: Self::Ptr<'g>) -> &'g Node<Self>;
    /// # Safety
    /// `p` came from [`unlink`](Backend::unlink) (no new reader can reach
    /// it), is retired once, and every reader that may hold it is in a
    /// section of this back-end.
    unsafe fn retire(p: Self::Unlinked<'_>, guard: &Self::Guard<'_>);
    /// Frees a node at once.
    ///
    /// # Safety
    /// No other thread can reach `p`: it was never published, or it was taken
    /// out by [`pop`](Backend::pop).
    unsafe fn free_now(p: Self::New);
    /// With exclusive access: takes the node `link` points to out of the
    /// structure, moving the node's own link (its successor) into `link`;
    /// returns the node and whether it was marked, or `None` if `link` is
    /// null.
    ///
    /// # Safety
    /// No other thread uses the structure any more, and every node still
    /// linked is linked from exactly one link reachable from the heads (an
    /// unlink moves the successor's link out of the marked node, which is no
    /// longer reachable).
    unsafe fn pop(link: &mut Self::Link, guard: &Self::Guard<'_>) -> Option<(Self::New, bool)>;

    /// After the run, with no other thread in the back-end: drives it until
    /// `all_dropped()` holds (every retired node dropped), or panics after
    /// `DRAIN_LIMIT`.
    fn drain(self, all_dropped: &dyn Fn() -> bool);
}

/// How long `drain` may take before the bench declares garbage lost.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

fn drain_deadline(start: Instant, name: &str) {
    assert!(
        start.elapsed() < DRAIN_LIMIT,
        "{name}: garbage still not freed after {DRAIN_LIMIT:?}"
    );
}

/// The reclamation half of a back-end whose links are raw
/// `AtomicPtr<Node<Self>>` with the mark in the low bit.
trait RawReclaim: Sized + Sync + 'static {
    const NAME: &'static str;
    type Handle<'s>;
    type Guard<'h>;
    fn new() -> Self;
    fn handle(&self) -> Self::Handle<'_>;
    fn pin<'h>(handle: &'h Self::Handle<'_>) -> Self::Guard<'h>;
    /// Loads a link under a guard; Acquire unless the back-end needs more.
    #[inline]
    fn load(link: &AtomicPtr<Node<Self>>, _guard: &Self::Guard<'_>) -> *mut Node<Self> {
        link.load(Acquire)
    }
    /// # Safety
    /// As [`Backend::retire`]; `p` came from `Box::into_raw`.
    unsafe fn retire(p: *mut Node<Self>, guard: &Self::Guard<'_>);
    fn drain(self, all_dropped: &dyn Fn() -> bool);
}

const MARK: usize = 1;

impl<R: RawReclaim> Backend for R {
    const NAME: &'static str = R::NAME;
    type Handle<'s> = R::Handle<'s>;
    type Guard<'h> = R::Guard<'h>;
    type Link = AtomicPtr<Node<R>>;
    type Ptr<'g> = *mut Node<R>;
    type New = Box<Node<R>>;
    type Unlinked<'g> = *mut Node<R>;

    fn new() -> Self {
        R::new()
    }
    fn handle(&self) -> Self::Handle<'_> {
        R::handle(self)
    }
    #[inline]
    fn pin<'h>(handle: &'h Self::Handle<'_>) -> Self::Guard<'h> {
        R::pin(handle)
    }
    #[inline]
    fn is_null(p: Self::Ptr<'_>) -> bool {
        p.is_null()
    }
    #[inline]
    fn is_marked(p: Self::Ptr<'_>) -> bool {
        p as usize & MARK != 0
    }
    #[inline]
    fn unmarked(p: Self::Ptr<'_>) -> Self::Ptr<'_> {
        // `wrapping_*` on the pointer keeps its provenance.
        p.cast::<u8>().wrapping_sub(p as usize & MARK).cast()
    }
    fn null_link() -> Self::Link {
        AtomicPtr::new(std::ptr::null_mut())
    }
    #[inline]
    fn alloc(node: Node<Self>) -> Self::New {
        Box::new(node)
    }
    #[inline]
    fn load<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Self::Ptr<'g> {
        R::load(link, guard)
    }
    #[inline]
    fn insert_before<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        new: Self::New,
        _guard: &'g Self::Guard<'_>,
    ) -> Result<(), Self::New> {
        new.next.store(current, Relaxed);
        let new = Box::into_raw(new);
        match link.compare_exchange(current, new, Release, Relaxed) {
            Ok(_) => Ok(()),
            // SAFETY: from `Box::into_raw` just above, and the exchange
            // failed, so it was never published: the box is ours again.
            Err(_) => Err(unsafe { Box::from_raw(new) }),
        }
    }
    #[inline]
    unsafe fn unlink<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        next: Self::Ptr<'g>,
        _guard: &'g Self::Guard<'_>,
    ) -> Option<Self::Unlinked<'g>> {
        link.compare_exchange(current, next, Release, Relaxed).ok()
    }
    #[inline]
    fn mark<'g>(link: &'g Self::Link, _guard: &'g Self::Guard<'_>) -> Option<Self::Ptr<'g>> {
        link.fetch_update(AcqRel, Acquire, |p| {
            (p as usize & MARK == 0).then(|| p.cast::<u8>().wrapping_add(MARK).cast())
        })
        .ok()
    }
    #[inline]
    unsafe fn deref<'g>(p: Self::Ptr<'g>) -> &'g Node<Self> {
        // SAFETY: the caller's contract: `p` is a live node (from
        // `Box::into_raw`) protected for `'g`.
        unsafe { &*p }
    }
    #[inline]
    unsafe fn retire(p: Self::Unlinked<'_>, guard: &Self::Guard<'_>) {
        // SAFETY: the caller's contract, and every node of a raw back-end
        // comes from `insert_before`'s `Box::into_raw`.
        unsafe { R::retire(p, guard) }
    }
    unsafe fn free_now(p: Self::New) {
        drop(p);
    }
    unsafe fn pop(link: &mut Self::Link, _guard: &Self::Guard<'_>) -> Option<(Self::New, bool)> {
        let p = Self::unmarked(*link.get_mut());
        if p.is_null() {
            return None;
        }
        // SAFETY: every linked node comes from `insert_before`'s
        // `Box::into_raw`, and `link` is its only link still reachable, used
        // by no other thread (the caller's contract): the box is ours.
        let mut node = unsafe { Box::from_raw(p) };
        let next = *node.next.get_mut();
        *link.get_mut() = next;
        Some((node, Self::is_marked(next)))
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        R::drain(self, all_dropped);
    }
}

// ---------------------------------------------------------------------------
// The back-ends.
// ---------------------------------------------------------------------------

/// ownrcu: `Domain::global()` with the crate's default settings (no
/// tuning); a guard is `Domain::global().read()` (the handle a constant, so
/// the guard's code is the global domain's alone), a retirement
/// `Domain::retire_raw` of the `Box::into_raw` pointer; after the run
/// `barrier()` frees everything. Holds the domain's counters at the run's
/// start, for the diagnosis line `drain` prints (never used for the figures).
struct Ownrcu(ownrcu::Stats);

impl RawReclaim for Ownrcu {
    const NAME: &'static str = "ownrcu";
    type Handle<'s> = ();
    type Guard<'h> = ownrcu::Guard<'static>;
    fn new() -> Self {
        Ownrcu(Domain::global().stats())
    }
    fn handle(&self) -> Self::Handle<'_> {}
    #[inline]
    fn pin<'h>((): &'h Self::Handle<'_>) -> Self::Guard<'h> {
        Domain::global().read()
    }
    #[inline]
    unsafe fn retire(p: *mut Node<Self>, _guard: &Self::Guard<'_>) {
        // SAFETY: (1) from `Box::into_raw`, retired once; (2) unlinked by
        // the caller; (3) every reader reads under a guard of the global
        // domain (the caller's contract).
        unsafe { Domain::global().retire_raw(p) }
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        ownrcu_drain(
            <Self as RawReclaim>::NAME,
            Domain::global(),
            self.0,
            all_dropped,
        );
    }
}

/// The drain of the ownrcu back-ends, on the global domain or on a run's own
/// one: prints `domain`'s own counters since `a` (diagnosis only), then
/// `domain.barrier()` until every node is dropped.
fn ownrcu_drain(name: &str, domain: &Domain, a: ownrcu::Stats, all_dropped: &dyn Fn() -> bool) {
    let b = domain.stats();
    let (t, u) = (a.throttle, b.throttle);
    let (which, since) = if domain == Domain::global() {
        ("the global domain's", "start-up")
    } else {
        ("the run's domain's", "the run's start")
    };
    // Latency since start-up (the histogram is not reset per run).
    let l = b.grace_period_latency;
    let q = |q: f64| l.quantile(q).map_or("-".into(), |d| format!("{d:.1?}"));
    eprintln!(
        "  {name}: {which} own counters over the run (diagnosis only): retired {}, freed {} \
         (amortized {}, backpressure {}), pending at the end {}, registrations {}, \
         heavy fences {}, fencing-mode switches {}, grace periods {} (started {}; latency since {since}: median {}, 99th {}, 99.9th {}, max {}), \
         throttle: over_bound {}, early grace periods {}, freed inline {}, \
         waits {}, exceeded {}; soft bound: waits {}, exceeded {}; time waiting {:.1?}; \
         peak_pending since {since} {}",
        b.retired - a.retired,
        b.freed - a.freed,
        b.freed_by.amortized - a.freed_by.amortized,
        b.freed_by.backpressure - a.freed_by.backpressure,
        b.pending,
        b.registrations - a.registrations,
        b.heavy_fences - a.heavy_fences,
        b.fencing_mode_entered - a.fencing_mode_entered,
        b.grace_periods - a.grace_periods,
        b.grace_periods_started - a.grace_periods_started,
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0),
        u.over_bound - t.over_bound,
        u.grace_periods_started - t.grace_periods_started,
        u.freed_inline - t.freed_inline,
        u.waits - t.waits,
        u.exceeded - t.exceeded,
        u.soft_waits - t.soft_waits,
        u.soft_exceeded - t.soft_exceeded,
        u.time_waiting - t.time_waiting,
        b.peak_pending,
    );
    let start = Instant::now();
    while !all_dropped() {
        domain.barrier();
        drain_deadline(start, name);
    }
}

/// ownrcu's safe RCU pointer: links are `Atomic<Node, GlobalDomain>` (one
/// word, like the raw back-ends' `AtomicPtr`, so the node is 24 bytes too;
/// bound to `Domain::global()`, default settings), in `ManuallyDrop`, as in
/// `examples/map.rs` (after an unlink the successor's link has moved to the
/// predecessor, so a node's drop must not drop its successor). Guards as
/// `ownrcu`. A new node is an `Owned`, published by `Atomic::insert_before`;
/// the mark is `Atomic::fetch_or`; an unlink is the `unsafe`
/// `Atomic::compare_exchange_unlink`, whose `Detached` is retired with
/// `Detached::retire()` (which is `Domain::retire_raw` on the global domain);
/// the teardown takes nodes out with `Atomic::into_inner` (exclusive access,
/// no `unsafe`). Drained as `ownrcu`.
///
/// What the pointer type costs over `ownrcu`, by design: its orderings are
/// fixed, so its compare-exchanges are AcqRel/Acquire where the raw
/// back-ends use Release/Relaxed (the same instruction on x86-64), and the
/// mark is a compare-exchange loop that also writes when the node is already
/// marked; every operation checks that the guard is of the global domain (a
/// test of a bit of the guard); `insert_before` checks that the
/// node's link lies inside the node and is null.
struct OwnrcuAtomic(ownrcu::Stats);

impl Backend for OwnrcuAtomic {
    const NAME: &'static str = "ownrcu_atomic";
    type Handle<'s> = ();
    type Guard<'h> = ownrcu::Guard<'static>;
    type Link = ManuallyDrop<Atomic<Node<Self>, GlobalDomain>>;
    type Ptr<'g> = Shared<'g, Node<Self>>;
    type New = Owned<Node<Self>>;
    type Unlinked<'g> = Detached<'static, Node<Self>>;

    fn new() -> Self {
        OwnrcuAtomic(Domain::global().stats())
    }
    fn handle(&self) -> Self::Handle<'_> {}
    #[inline]
    fn pin<'h>((): &'h Self::Handle<'_>) -> Self::Guard<'h> {
        Domain::global().read()
    }
    #[inline]
    fn is_null(p: Self::Ptr<'_>) -> bool {
        p.is_null()
    }
    #[inline]
    fn is_marked(p: Self::Ptr<'_>) -> bool {
        p.tag() & MARK != 0
    }
    #[inline]
    fn unmarked(p: Self::Ptr<'_>) -> Self::Ptr<'_> {
        p.with_tag(0)
    }
    fn null_link() -> Self::Link {
        ManuallyDrop::new(Atomic::null_global())
    }
    #[inline]
    fn alloc(node: Node<Self>) -> Self::New {
        Owned::new(node)
    }
    #[inline]
    fn load<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Self::Ptr<'g> {
        link.load(guard)
    }
    #[inline]
    fn insert_before<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        new: Self::New,
        guard: &'g Self::Guard<'_>,
    ) -> Result<(), Self::New> {
        link.insert_before(current, new, |n| &n.next, guard)
            .map_err(|err| err.new)
    }
    #[inline]
    unsafe fn unlink<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        next: Self::Ptr<'g>,
        guard: &'g Self::Guard<'_>,
    ) -> Option<Self::Unlinked<'g>> {
        // SAFETY: forwarded: `safe_unlink`'s contract is ours.
        unsafe { safe_unlink(link, current, next, guard) }
    }
    #[inline]
    fn mark<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Option<Self::Ptr<'g>> {
        safe_mark(link, guard)
    }
    #[inline]
    unsafe fn deref<'g>(p: Self::Ptr<'g>) -> &'g Node<Self> {
        // No `unsafe` needed: a `Shared` is valid for its guard and link.
        p.as_ref().expect("deref of a null link")
    }
    #[inline]
    unsafe fn retire(p: Self::Unlinked<'_>, _guard: &Self::Guard<'_>) {
        p.retire();
    }
    unsafe fn free_now(p: Self::New) {
        drop(p);
    }
    unsafe fn pop(link: &mut Self::Link, guard: &Self::Guard<'_>) -> Option<(Self::New, bool)> {
        let mut node = mem::take(&mut **link).into_inner()?;
        let was_marked = Self::is_marked(node.next.load(guard));
        **link = mem::take(&mut *node.next);
        Some((node, was_marked))
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        ownrcu_drain(Self::NAME, Domain::global(), self.0, all_dropped);
    }
}

/// ownrcu's safe RCU pointer on a domain of the structure's own, as a
/// structure that owns its `Domain` would use it: a fresh `Domain::new()`
/// per run (the crate's default settings), like crossbeam-epoch's private
/// collector; links are `Atomic<Node, UncheckedDomain>` in `ManuallyDrop`
/// (one word, so the node is 24 bytes, as with `GlobalDomain`), made by the
/// `unsafe` `Atomic::null_unchecked` on the promise that only guards of the
/// run's domain reach them; guards are that domain's `read()`. Otherwise the
/// very calls of `ownrcu_atomic` (`insert_before`, `fetch_or`,
/// `compare_exchange_unlink`, `Detached::retire()` into the run's domain,
/// `into_inner`). Drained by the domain's `barrier()`, then the domain is
/// dropped.
///
/// Against `ownrcu_atomic` it shows what a structure's own domain costs over
/// the global one (a guard looks up the thread's record for a user-created
/// domain instead of the global domain's dedicated one; retirements go to
/// that domain's buffers and grace periods), with no domain check per use
/// (the binding checks only that the guard's domain is not robust, a bit
/// of the guard, as `ownrcu_atomic`'s tests the guard's global-domain bit).
///
/// With `ROBUST`, the domain is a robust one (`DomainBuilder::robust`,
/// back-end `ownrcu_atomic_robust`) and the links `Atomic<Node,
/// UncheckedDomain<true>>`: every load and exchange is protected,
/// while the retirements (without births) wait for their grace periods as
/// before, so against `ownrcu_atomic_domain` it shows what the robust read
/// path costs.
struct OwnrcuAtomicDomain<const ROBUST: bool> {
    domain: Domain,
    /// The domain's counters at the run's start, for the diagnosis line.
    start: ownrcu::Stats,
}

// The point of `UncheckedDomain`: the node is as small as the raw ones'.
const _: () = assert!(mem::size_of::<Node<OwnrcuAtomicDomain<false>>>() == 24);

impl<const ROBUST: bool> Backend for OwnrcuAtomicDomain<ROBUST> {
    const NAME: &'static str = if ROBUST {
        "ownrcu_atomic_robust"
    } else {
        "ownrcu_atomic_domain"
    };
    type Handle<'s> = &'s Domain;
    type Guard<'h> = ownrcu::Guard<'h>;
    type Link = ManuallyDrop<Atomic<Node<Self>, UncheckedDomain<ROBUST>>>;
    type Ptr<'g> = Shared<'g, Node<Self>>;
    type New = Owned<Node<Self>>;
    type Unlinked<'g> = Detached<'g, Node<Self>>;

    fn new() -> Self {
        let domain = Domain::builder().robust(ROBUST).build();
        let start = domain.stats();
        OwnrcuAtomicDomain { domain, start }
    }
    fn handle(&self) -> Self::Handle<'_> {
        &self.domain
    }
    #[inline]
    fn pin<'h>(handle: &'h Self::Handle<'_>) -> Self::Guard<'h> {
        handle.read()
    }
    #[inline]
    fn is_null(p: Self::Ptr<'_>) -> bool {
        p.is_null()
    }
    #[inline]
    fn is_marked(p: Self::Ptr<'_>) -> bool {
        p.tag() & MARK != 0
    }
    #[inline]
    fn unmarked(p: Self::Ptr<'_>) -> Self::Ptr<'_> {
        p.with_tag(0)
    }
    fn null_link() -> Self::Link {
        // SAFETY: 1. every guard ever passed to this link is of one domain,
        // its run's: the links of a run are passed only guards that `pin`
        // made on handles of that run's one back-end value (`null_link`'s
        // doc in `Backend`: `run_once` makes one back-end value and one
        // structure, and gives the prefill, the workers and the teardown
        // handles from that value's `handle()`), and `handle()` is
        // `&self.domain`, so every guard is `self.domain.read()`. The nodes
        // this link unlinks are therefore retired (`Detached::retire`, into
        // the guard's domain) into the domain whose readers loaded them.
        ManuallyDrop::new(unsafe { Atomic::null_unchecked() })
    }
    #[inline]
    fn alloc(node: Node<Self>) -> Self::New {
        Owned::new(node)
    }
    #[inline]
    fn load<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Self::Ptr<'g> {
        link.load(guard)
    }
    #[inline]
    fn insert_before<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        new: Self::New,
        guard: &'g Self::Guard<'_>,
    ) -> Result<(), Self::New> {
        link.insert_before(current, new, |n| &n.next, guard)
            .map_err(|err| err.new)
    }
    #[inline]
    unsafe fn unlink<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        next: Self::Ptr<'g>,
        guard: &'g Self::Guard<'_>,
    ) -> Option<Self::Unlinked<'g>> {
        // SAFETY: forwarded: `safe_unlink`'s contract is ours.
        unsafe { safe_unlink(link, current, next, guard) }
    }
    #[inline]
    fn mark<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Option<Self::Ptr<'g>> {
        safe_mark(link, guard)
    }
    #[inline]
    unsafe fn deref<'g>(p: Self::Ptr<'g>) -> &'g Node<Self> {
        // No `unsafe` needed: a `Shared` is valid for its guard and link.
        p.as_ref().expect("deref of a null link")
    }
    #[inline]
    unsafe fn retire(p: Self::Unlinked<'_>, _guard: &Self::Guard<'_>) {
        p.retire();
    }
    unsafe fn free_now(p: Self::New) {
        drop(p);
    }
    unsafe fn pop(link: &mut Self::Link, guard: &Self::Guard<'_>) -> Option<(Self::New, bool)> {
        // No `Default` for an `UncheckedDomain` link (its constructor is
        // `unsafe`): the placeholders swapped in are `null_link()`s, whose
        // contract covers them (they live in this run's structure, or in a
        // node about to be freed).
        let mut node =
            ManuallyDrop::into_inner(mem::replace(link, Self::null_link())).into_inner()?;
        let was_marked = Self::is_marked(node.next.load(guard));
        *link = mem::replace(&mut node.next, Self::null_link());
        Some((node, was_marked))
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        ownrcu_drain(Self::NAME, &self.domain, self.start, all_dropped);
        // The domain is dropped here, after the last of its garbage.
    }
}

/// [`Backend::unlink`] of the two safe-pointer back-ends
/// ([`OwnrcuAtomic`], [`OwnrcuAtomicDomain`]), written once.
///
/// # Safety
///
/// As for [`Backend::unlink`].
#[inline]
unsafe fn safe_unlink<'g, 'd, N: Send + 'static, D: DomainBinding>(
    link: &'g Atomic<N, D>,
    current: Shared<'g, N>,
    next: Shared<'g, N>,
    guard: &'g ownrcu::Guard<'d>,
) -> Option<Detached<'d, N>> {
    // SAFETY: `compare_exchange_unlink`'s contract, from ours: 1. the
    // other link to `next`'s node is the `next` of `current`'s node,
    // which is in `ManuallyDrop` (`Link`) and marked, so no exchange on
    // it succeeds again (every exchange expects an unmarked value, and
    // the mark is never cleared) and `pop` never reaches it once
    // `current` is unlinked; 2. `link` is the only live link to
    // `current`'s node, so once it points past the node no reader that
    // starts now can reach it.
    match unsafe { link.compare_exchange_unlink(current, next, guard) } {
        Ok(unlinked) => Some(unlinked.expect("`current` is not null")),
        Err(_) => None,
    }
}

/// [`Backend::mark`] of the two safe-pointer back-ends: `Atomic::fetch_or`.
#[inline]
fn safe_mark<'g, N, D: DomainBinding>(
    link: &'g Atomic<N, D>,
    guard: &'g ownrcu::Guard<'_>,
) -> Option<Shared<'g, N>> {
    let before = link.fetch_or(MARK, guard);
    (before.tag() & MARK == 0).then_some(before)
}

/// crossbeam-epoch at its best: a private `Collector` per run, a
/// `LocalHandle` registered once per worker thread (`pin` without the
/// thread-local lookup of `crossbeam_epoch::pin()`), `Guard::defer_destroy`
/// (bags of 64 deferred functions, no allocation per object). Drained by
/// `pin().flush()` on a fresh handle until everything is dropped, then the
/// collector is dropped.
struct Crossbeam(crossbeam_epoch::Collector);

impl RawReclaim for Crossbeam {
    const NAME: &'static str = "crossbeam_epoch";
    type Handle<'s> = crossbeam_epoch::LocalHandle;
    type Guard<'h> = crossbeam_epoch::Guard;
    fn new() -> Self {
        Crossbeam(crossbeam_epoch::Collector::new())
    }
    fn handle(&self) -> Self::Handle<'_> {
        self.0.register()
    }
    #[inline]
    fn pin<'h>(handle: &'h Self::Handle<'_>) -> Self::Guard<'h> {
        handle.pin()
    }
    #[inline]
    unsafe fn retire(p: *mut Node<Self>, guard: &Self::Guard<'_>) {
        let shared = crossbeam_epoch::Shared::from(p.cast_const());
        // SAFETY: `p` came from a `Box` (crossbeam's `Owned<T>` for a sized
        // `T` is a `Box<T>`), is unlinked and destroyed once, and every
        // reader pins this collector (the caller's contract).
        unsafe { guard.defer_destroy(shared) };
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        let start = Instant::now();
        let handle = self.0.register();
        while !all_dropped() {
            handle.pin().flush();
            drain_deadline(start, <Self as RawReclaim>::NAME);
        }
        drop(handle);
        drop(self);
    }
}

/// seize 0.5 at its best: a private `Collector` per run at its default
/// (recommended) batch size, `LocalGuard`s from `Collector::enter`, loads
/// through `Guard::protect` (the load seize requires), retirement by
/// `Guard::defer_retire` with `reclaim::boxed` (the guard's cached thread id,
/// no thread-local lookup). Drained by dropping the collector, which frees
/// every batch (the partial batches of exited workers are freed only then).
struct Seize(seize::Collector);

impl RawReclaim for Seize {
    const NAME: &'static str = "seize";
    type Handle<'s> = &'s seize::Collector;
    type Guard<'h> = seize::LocalGuard<'h>;
    fn new() -> Self {
        Seize(seize::Collector::new())
    }
    fn handle(&self) -> Self::Handle<'_> {
        &self.0
    }
    #[inline]
    fn pin<'h>(handle: &'h Self::Handle<'_>) -> Self::Guard<'h> {
        handle.enter()
    }
    #[inline]
    fn load(link: &AtomicPtr<Node<Self>>, guard: &Self::Guard<'_>) -> *mut Node<Self> {
        use seize::Guard as _;
        guard.protect(link, Acquire)
    }
    #[inline]
    unsafe fn retire(p: *mut Node<Self>, guard: &Self::Guard<'_>) {
        use seize::Guard as _;
        // SAFETY: `p` came from `Box::into_raw` (so `reclaim::boxed` frees
        // it), is unlinked (no thread entering from now on can reach it) and
        // retired once; the caller does not touch it afterwards.
        unsafe { guard.defer_retire(p, seize::reclaim::boxed) };
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        drop(self);
        assert!(
            all_dropped(),
            "seize: garbage left after the collector's drop"
        );
    }
}

/// The floor of the one-thread rows: no read sections at all, and a node
/// is freed the moment it is unlinked. That is sound only while one thread
/// uses the structure (no reader can hold the node it unlinks), so `main`
/// runs it in the one-thread rows alone and [`run_once`] refuses it
/// elsewhere. What a back-end costs over it in a row is everything its
/// reclamation adds: sections, retirement, grace periods, deferred frees.
struct Floor;

/// [`Floor`]'s name.
const FLOOR: &str = "floor";

impl RawReclaim for Floor {
    const NAME: &'static str = FLOOR;
    type Handle<'s> = ();
    type Guard<'h> = ();
    fn new() -> Self {
        Floor
    }
    fn handle(&self) -> Self::Handle<'_> {}
    #[inline]
    fn pin<'h>((): &'h Self::Handle<'_>) -> Self::Guard<'h> {}
    #[inline]
    unsafe fn retire(p: *mut Node<Self>, (): &Self::Guard<'_>) {
        // SAFETY: `p` came from `Box::into_raw` and is retired once (the
        // caller's contract); it is unlinked, and the only thread that
        // could hold it is this one, which is done with it: `run_once` runs
        // this back-end with one worker thread only.
        drop(unsafe { Box::from_raw(p) });
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        assert!(all_dropped(), "floor: a retired node was not dropped");
    }
}

/// sdd at its best: nodes are sdd allocations (`Owned::new`, with sdd's
/// intrusive header) linked by `AtomicRaw`, sdd's raw link for structures
/// that manage lifetimes themselves; a guard is `Guard::new()`; a retirement
/// drops the unlinked node's `Owned` (from `Owned::from_raw`), which pushes
/// it on the thread's own garbage list with no atomics. The Harris–Michael
/// unlink fits this model directly: the unlinking thread owns the node it
/// unlinked (no reference counts, unlike `AtomicShared`). sdd has one global
/// collector (`PrivateCollector` frees without regard to readers: a teardown
/// tool, not a retire path). Drained by new guards with `accelerate()` until
/// everything is dropped (an exited thread's garbage is freed by the others'
/// scans).
struct Sdd;

impl Backend for Sdd {
    const NAME: &'static str = "sdd";
    type Handle<'s> = ();
    type Guard<'h> = sdd::Guard;
    type Link = sdd::AtomicRaw<Node<Sdd>>;
    type Ptr<'g> = sdd::RawPtr<'g, Node<Sdd>>;
    type New = sdd::Owned<Node<Sdd>>;
    type Unlinked<'g> = sdd::RawPtr<'g, Node<Sdd>>;

    fn new() -> Self {
        Sdd
    }
    fn handle(&self) -> Self::Handle<'_> {}
    #[inline]
    fn pin<'h>(_handle: &'h Self::Handle<'_>) -> Self::Guard<'h> {
        sdd::Guard::new()
    }
    #[inline]
    fn is_null(p: Self::Ptr<'_>) -> bool {
        p.is_null()
    }
    #[inline]
    fn is_marked(p: Self::Ptr<'_>) -> bool {
        p.tag() != sdd::Tag::None
    }
    #[inline]
    fn unmarked(p: Self::Ptr<'_>) -> Self::Ptr<'_> {
        p.without_tag()
    }
    fn null_link() -> Self::Link {
        sdd::AtomicRaw::null()
    }
    #[inline]
    fn alloc(node: Node<Self>) -> Self::New {
        sdd::Owned::new(node)
    }
    #[inline]
    fn load<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Self::Ptr<'g> {
        link.load(Acquire, guard)
    }
    #[inline]
    fn insert_before<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        new: Self::New,
        guard: &'g Self::Guard<'_>,
    ) -> Result<(), Self::New> {
        new.next.store(current, Relaxed);
        let new = new.into_raw();
        match link.compare_exchange(current, new, Release, Relaxed, guard) {
            Ok(_) => Ok(()),
            // SAFETY: from `Owned::into_raw` just above, and the exchange
            // failed, so it was never published: this `Owned` is unique.
            Err(_) => Err(unsafe { sdd::Owned::from_raw(new) }.expect("a new node is not null")),
        }
    }
    #[inline]
    unsafe fn unlink<'g>(
        link: &'g Self::Link,
        current: Self::Ptr<'g>,
        next: Self::Ptr<'g>,
        guard: &'g Self::Guard<'_>,
    ) -> Option<Self::Unlinked<'g>> {
        link.compare_exchange(current, next, Release, Relaxed, guard)
            .ok()
            .map(|_| current)
    }
    #[inline]
    fn mark<'g>(link: &'g Self::Link, guard: &'g Self::Guard<'_>) -> Option<Self::Ptr<'g>> {
        link.fetch_update(
            AcqRel,
            Acquire,
            |p| (p.tag() == sdd::Tag::None).then(|| p.with_tag(sdd::Tag::First)),
            guard,
        )
        .ok()
    }
    #[inline]
    unsafe fn deref<'g>(p: Self::Ptr<'g>) -> &'g Node<Self> {
        // SAFETY: the caller's contract: `p` is a live, unmarked sdd node
        // protected for `'g` (a node is freed only by sdd after every guard
        // that could have loaded it is dropped, or with exclusive access).
        let ptr = unsafe { p.into_ptr() };
        ptr.as_ref().expect("deref of a null link")
    }
    #[inline]
    unsafe fn retire(p: Self::Unlinked<'_>, _guard: &Self::Guard<'_>) {
        // SAFETY: `p` came from `Owned::into_raw` and is unlinked by the
        // caller, who retires it once: this `Owned` is unique, and dropping
        // it hands the node to sdd's collector, which frees it once no guard
        // that could have loaded it is alive.
        drop(unsafe { sdd::Owned::from_raw(p) });
    }
    unsafe fn free_now(p: Self::New) {
        // SAFETY: unreachable by any other thread and by any `Ptr` still in
        // use (never published, or taken out by `pop` with exclusive access:
        // the caller's contract), so the `Owned` may be dropped in place
        // instead of being handed to the collector.
        unsafe { p.drop_in_place() };
    }
    unsafe fn pop(link: &mut Self::Link, guard: &Self::Guard<'_>) -> Option<(Self::New, bool)> {
        // Relaxed: the workers were joined, which orders their writes before.
        let p = link.load(Relaxed, guard).without_tag();
        // SAFETY: from `Owned::into_raw` (`insert_before`), and `link` is its
        // only link still reachable, used by no other thread (the caller's
        // contract): this `Owned` is unique.
        let node = unsafe { sdd::Owned::from_raw(p) }?;
        let next = node.next.load(Relaxed, guard);
        link.store(next, Relaxed);
        Some((node, Self::is_marked(next)))
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        let start = Instant::now();
        while !all_dropped() {
            let guard = sdd::Guard::new();
            guard.accelerate();
            drop(guard);
            drain_deadline(start, Self::NAME);
        }
    }
}

// ---------------------------------------------------------------------------
// The algorithm, written once: Harris–Michael list and Michael hash map.
// ---------------------------------------------------------------------------

/// Counts a node as retired, then hands it to the back-end.
///
/// # Safety
/// As [`Backend::retire`].
#[inline]
unsafe fn retire<B: Backend>(p: B::Unlinked<'_>, guard: &B::Guard<'_>) {
    slot().retired.fetch_add(1, Release);
    // SAFETY: the caller's contract.
    unsafe { B::retire(p, guard) }
}

/// Counts a node as freed at once, then frees it.
///
/// # Safety
/// As [`Backend::free_now`].
unsafe fn free_now<B: Backend>(p: B::New) {
    slot().freed_now.fetch_add(1, Release);
    // SAFETY: the caller's contract.
    unsafe { B::free_now(p) }
}

/// Where a search stopped: `curr` is the first unmarked node with a key not
/// below the searched key (or null), and `prev` the link that pointed to it.
struct Cursor<'g, B: Backend> {
    prev: &'g B::Link,
    curr: B::Ptr<'g>,
}

/// A set of `usize` keys: `buckets` Harris–Michael lists (one for the list,
/// smr-benchmark's 30 000 for the Michael hash map).
struct Set<B: Backend> {
    heads: Box<[B::Link]>,
}

impl<B: Backend> Set<B> {
    fn new(buckets: usize) -> Self {
        Self {
            heads: (0..buckets).map(|_| B::null_link()).collect(),
        }
    }

    #[inline]
    fn head(&self, key: usize) -> &B::Link {
        &self.heads[key % self.heads.len()]
    }

    /// Michael's search: walks from `head`, unlinking (and retiring) each
    /// marked node it meets; `Err` when an unlink fails (the caller restarts).
    #[inline]
    fn find<'g>(
        head: &'g B::Link,
        key: usize,
        guard: &'g B::Guard<'_>,
    ) -> Result<(bool, Cursor<'g, B>), ()> {
        let mut prev = head;
        let mut curr = B::load(head, guard);
        loop {
            if B::is_null(curr) {
                return Ok((false, Cursor { prev, curr }));
            }
            // SAFETY: `curr` is not null, unmarked, and was loaded under
            // `guard` from a link of a node (or the head) that was reachable
            // then, so it is not freed before `guard` drops.
            let node = unsafe { B::deref(curr) };
            let next = B::load(&node.next, guard);
            if B::is_marked(next) {
                // `curr` is logically deleted: unlink it from `prev`.
                let next = B::unmarked(next);
                // SAFETY: `curr` is not null and was loaded from `prev`
                // under `guard`; its node is marked (a marked node's link
                // never changes again: every exchange expects an unmarked
                // value, and the mark is never cleared) and `next` is its
                // successor, unmarked; `prev` is the only live link to it
                // (insertions link a node from one link, unlinks move that
                // link on).
                let Some(unlinked) = (unsafe { B::unlink(prev, curr, next, guard) }) else {
                    return Err(());
                };
                // SAFETY: our unlink took `curr` out (nobody can link it
                // back, see above), exactly once; all readers use this
                // back-end's guards.
                unsafe { retire::<B>(unlinked, guard) };
                curr = next;
                continue;
            }
            match node.key.cmp(&key) {
                Less => {
                    prev = &node.next;
                    curr = next;
                }
                Equal => return Ok((true, Cursor { prev, curr })),
                Greater => return Ok((false, Cursor { prev, curr })),
            }
        }
    }

    fn get(&self, key: usize, guard: &B::Guard<'_>) -> bool {
        loop {
            match Self::find(self.head(key), key, guard) {
                Ok((true, cursor)) => {
                    // SAFETY: found, so not null; loaded under `guard`.
                    let node = unsafe { B::deref(cursor.curr) };
                    black_box(node.value);
                    return true;
                }
                Ok((false, _)) => return false,
                Err(()) => continue,
            }
        }
    }

    fn insert(&self, key: usize, guard: &B::Guard<'_>) -> bool {
        let head = self.head(key);
        // Allocated once the key is known to be absent, kept across retries.
        let mut new = None;
        loop {
            let (found, cursor) = match Self::find(head, key, guard) {
                Ok(found) => found,
                Err(()) => continue,
            };
            if found {
                if let Some(node) = new {
                    // SAFETY: `node` was never published.
                    unsafe { free_now::<B>(node) };
                }
                return false;
            }
            let node = new.take().unwrap_or_else(|| B::alloc(Node::new(key)));
            match B::insert_before(cursor.prev, cursor.curr, node, guard) {
                Ok(()) => return true,
                Err(node) => new = Some(node),
            }
        }
    }

    fn remove(&self, key: usize, guard: &B::Guard<'_>) -> bool {
        let head = self.head(key);
        loop {
            let (found, cursor) = match Self::find(head, key, guard) {
                Ok(found) => found,
                Err(()) => continue,
            };
            if !found {
                return false;
            }
            // SAFETY: found, so not null; loaded under `guard`.
            let node = unsafe { B::deref(cursor.curr) };
            // Logical deletion; if another remove marked it first, search
            // again (that search unlinks it and then does not find the key).
            let Some(next) = B::mark(&node.next, guard) else {
                continue;
            };
            // SAFETY: `cursor.curr` is not null (found) and was loaded from
            // `cursor.prev` under `guard`; we just marked its node, and
            // `next` is the successor we marked over, unmarked; `cursor.prev`
            // is its only live link (as in `find`).
            if let Some(unlinked) = unsafe { B::unlink(cursor.prev, cursor.curr, next, guard) } {
                // SAFETY: our unlink took the node we marked out, once; it
                // is not touched afterwards.
                unsafe { retire::<B>(unlinked, guard) };
            }
            // Otherwise a later search unlinks and retires it.
            return true;
        }
    }

    /// With exclusive access (no worker left): frees every node still
    /// linked, returning (unmarked, marked) counts.
    fn teardown(mut self, handle: &B::Handle<'_>) -> (usize, usize) {
        let (mut live, mut marked) = (0, 0);
        let guard = B::pin(handle);
        for head in self.heads.iter_mut() {
            // SAFETY: no other thread uses the structure any more (the
            // workers were joined), and each linked node is linked from one
            // link reachable from the heads (insertions link a node from one
            // link; unlinks move the successor's link out of the marked node,
            // which is then unreachable from here).
            while let Some((node, was_marked)) = unsafe { B::pop(head, &guard) } {
                if was_marked {
                    marked += 1;
                } else {
                    live += 1;
                }
                // SAFETY: `pop` took it out with exclusive access.
                unsafe { free_now::<B>(node) };
            }
        }
        (live, marked)
    }
}

// ---------------------------------------------------------------------------
// Skip lists: two ordered maps behind one small trait.
// ---------------------------------------------------------------------------

/// The skip-list map of `examples/skiplist.rs`, compiled into this bench as
/// it is into the example (its demo and test helpers go unused here).
#[allow(dead_code)]
#[path = "../examples/skiplist.rs"]
mod skiplist;

/// A skip-list row's value: a `u64` (so both maps' nodes are those of a
/// `SkipMap<u64, u64>`: 24-byte header and tower) whose drop is counted.
/// The low bits are a number unique per value made, which tells whether an
/// insert went in; the top bit is set by the first remove that returns it.
struct Val(AtomicU64);

/// The top bit of a [`Val`]: a remove returned it.
const REMOVED: u64 = 1 << 63;

impl Val {
    fn new() -> Self {
        /// Threads so far (a thread's number, in the top bits, keeps serials
        /// apart; counter slots are reused, so they cannot).
        static THREADS_SEEN: AtomicU64 = AtomicU64::new(0);
        thread_local! {
            /// This thread's next serial.
            static NEXT: Cell<u64> = const { Cell::new(0) };
        }
        slot().allocated.fetch_add(1, Relaxed);
        let serial = NEXT.with(|n| {
            let mut next = n.get();
            if next == 0 {
                next = (THREADS_SEEN.fetch_add(1, Relaxed) + 1) << 40;
            }
            n.set(next + 1);
            next
        });
        Val(AtomicU64::new(serial))
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        slot().dropped.fetch_add(1, Release);
    }
}

/// An ordered map of `u64` keys under a skip-list row. Its operations count
/// what the list rows count: a successful `remove` counts its node as
/// retired (before the removed entry's handle drops, so before the node can
/// be freed); an insert that finds its key counts its value as freed at once
/// (after the call, which dropped it: a sample may miss up to one such value
/// per thread, which the garbage figure's saturating subtraction absorbs).
trait OrderedMap: Sized + Sync {
    const NAME: &'static str;
    fn new() -> Self;
    fn get(&self, key: u64) -> bool;
    /// Inserts `key` if absent (smr-benchmark's insert); whether it did.
    fn insert(&self, key: u64) -> bool;
    fn remove(&self, key: u64) -> bool;
    fn len(&self) -> usize;
    /// Drops the map and frees everything it retired, until `all_dropped`.
    fn drain(self, all_dropped: &dyn Fn() -> bool);
}

/// Counts an insert that found its key: its value was dropped at once.
fn insert_outcome(inserted: bool) -> bool {
    if !inserted {
        slot().freed_now.fetch_add(1, Release);
    }
    inserted
}

/// Counts a removed node as retired, then drops the handle to it; a remove
/// that returns a value some remove returned already (crossbeam-skiplist
/// 0.1.3 returns the entry even when another thread's remove won) is
/// counted apart and is not a removal.
fn remove_outcome<E>(removed: Option<E>, value: impl Fn(&E) -> &Val) -> bool {
    let Some(entry) = removed else {
        return false;
    };
    let first = value(&entry).0.fetch_or(REMOVED, Relaxed) & REMOVED == 0;
    if first {
        slot().retired.fetch_add(1, Release);
    } else {
        slot().repeated_removes.fetch_add(1, Relaxed);
    }
    drop(entry);
    first
}

/// `examples/skiplist.rs`'s map with its default, a domain of its own:
/// nodes allocated with a `Layout`, non-owning `Link`s, reference counts,
/// `Domain::retire_with_unchecked` with the node's deleter. Drained by the
/// map's `barrier()`, then its drop.
impl OrderedMap for skiplist::SkipMap<u64, Val> {
    const NAME: &'static str = "ownrcu_skiplist";
    fn new() -> Self {
        skiplist::SkipMap::new()
    }
    fn get(&self, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        insert_outcome(self.insert_new(key, Val::new()).is_ok())
    }
    fn remove(&self, key: u64) -> bool {
        remove_outcome(self.remove(&key), |e| e.value())
    }
    fn len(&self) -> usize {
        self.len()
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        self.barrier();
        drop(self);
        assert!(all_dropped(), "{}: a value outlived the map", Self::NAME);
    }
}

/// `crossbeam_skiplist::SkipMap` as its users have it: on crossbeam-epoch's
/// default collector (`epoch::pin()` inside each call). An insert is
/// `get_or_insert` (its value went in if the entry holds it). Drained by
/// dropping the map, then `pin().flush()` until every value is dropped.
impl OrderedMap for crossbeam_skiplist::SkipMap<u64, Val> {
    const NAME: &'static str = "crossbeam_skiplist";
    fn new() -> Self {
        crossbeam_skiplist::SkipMap::new()
    }
    fn get(&self, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn insert(&self, key: u64) -> bool {
        let value = Val::new();
        let serial = value.0.load(Relaxed);
        insert_outcome(self.get_or_insert(key, value).value().0.load(Relaxed) & !REMOVED == serial)
    }
    fn remove(&self, key: u64) -> bool {
        remove_outcome(self.remove(&key), |e| e.value())
    }
    fn len(&self) -> usize {
        self.len()
    }
    fn drain(self, all_dropped: &dyn Fn() -> bool) {
        drop(self);
        let start = Instant::now();
        while !all_dropped() {
            crossbeam_epoch::pin().flush();
            drain_deadline(start, Self::NAME);
        }
    }
}

/// One skip-list run, as [`run_once`]: a fresh map prefilled to half (the
/// same keys in the same order), `threads` workers, the monitor, then the
/// checks (the map's length is prefill + inserts − removes; every value
/// made is dropped once by the end of the drain, and was removed, refused
/// by an insert, or left in the map).
fn run_map<M: OrderedMap>(shape: Shape, mix: Mix, threads: usize, secs: Duration) -> Run {
    let empty = Totals::now();
    assert_eq!(empty.garbage(), 0, "garbage left from an earlier run");
    let map = M::new();
    let prefilled = prefill_with(shape.keys, |key| assert!(map.insert(key as u64)));
    let before = Totals::now();
    let timed = run_workers(threads, secs, |ctl, seed| {
        let mut rng = Rng(seed);
        work(ctl, |tally| {
            let key = rng.below(shape.keys) as u64;
            let op = (rng.next() % 100) as u32;
            if op < mix.get {
                black_box(map.get(key));
            } else if op < mix.get + mix.insert {
                tally.inserted += map.insert(key) as usize;
            } else {
                tally.removed += map.remove(key) as usize;
            }
        })
    });
    assert_eq!(
        map.len(),
        prefilled + timed.inserted() - timed.removed(),
        "{}: lost keys",
        M::NAME
    );
    // The keys left are freed with the map, at once.
    slot().freed_now.fetch_add(map.len(), Release);
    map.drain(&all_dropped);
    let after = Totals::now();
    assert_eq!(after.dropped, after.allocated, "{}: drop count", M::NAME);
    assert_eq!(
        after.retired + after.freed_now,
        after.allocated,
        "{}: every value is removed or freed at once",
        M::NAME
    );
    let repeated_removes = after.repeated_removes - before.repeated_removes;
    assert!(
        repeated_removes == 0 || !M::NAME.starts_with(OURS),
        "{}: {repeated_removes} removes returned an entry another remove returned",
        M::NAME
    );
    Run {
        repeated_removes,
        ..timed.run(&before, &empty, prefilled)
    }
}

// ---------------------------------------------------------------------------
// Workloads and runs.
// ---------------------------------------------------------------------------

/// splitmix64: a tiny, good-enough generator (no `rand` dependency).
struct Rng(u64);

impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift on the high bits).
    #[inline]
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
}

#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    keys: usize,
    /// Hash buckets (1: one list; 0: not a hash structure).
    buckets: usize,
    mixes: &'static [Mix],
    /// Worker thread counts (more than the cores: oversubscribed rows).
    threads: &'static [usize],
    /// The back-ends, in column order.
    backends: &'static [(&'static str, RunFn)],
    /// The back-end measured against the peers (names that start with its
    /// family's prefix, `ownrcu`, are not peers), and the peer its peak
    /// garbage is compared with.
    subject: &'static str,
    garbage_peer: &'static str,
    /// The subject's throughput target over the best peer (for the table).
    target: &'static str,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "list",
        keys: 1_000,
        buckets: 1,
        mixes: &[WRITE, READ],
        threads: &[1, 2, 4, 8],
        backends: &SET_BACKENDS,
        subject: "ownrcu",
        garbage_peer: "crossbeam_epoch",
        target: "≥ 0.90",
    },
    Shape {
        name: "hashmap",
        keys: 100_000,
        buckets: 30_000,
        mixes: &[WRITE, READ],
        threads: &[1, 2, 4, 8],
        backends: &SET_BACKENDS,
        subject: "ownrcu",
        garbage_peer: "crossbeam_epoch",
        target: "≥ 0.90",
    },
    Shape {
        name: "skiplist",
        keys: 100_000,
        buckets: 0,
        mixes: &[READ, MIXED, WRITE],
        threads: &[1, 2],
        backends: &MAP_BACKENDS,
        subject: "ownrcu_skiplist",
        garbage_peer: "crossbeam_skiplist",
        target: "≥ 1.0",
    },
];

#[derive(Clone, Copy)]
struct Mix {
    name: &'static str,
    /// Percent of operations that are gets, then inserts (the rest removes).
    get: u32,
    insert: u32,
}

const WRITE: Mix = Mix {
    name: "write",
    get: 0,
    insert: 50,
};
const READ: Mix = Mix {
    name: "read",
    get: 90,
    insert: 5,
};
const MIXED: Mix = Mix {
    name: "mixed",
    get: 50,
    insert: 25,
};

/// The monitor's sampling period (as `churn.rs`).
const PERIOD: Duration = Duration::from_micros(100);

/// What one run measured.
#[derive(Clone, Copy, Debug)]
struct Run {
    ops_per_s: f64,
    peak_garbage: usize,
    peak_heap: isize,
    /// Heap bytes the prefilled structure holds per key (its nodes, links
    /// and heads; taken before the workers start).
    entry_bytes: f64,
    /// Removes that returned an entry already returned by another (see
    /// [`remove_outcome`]); always 0 for ownrcu's back-ends (checked).
    repeated_removes: usize,
    ops: u64,
    samples: usize,
}

/// Start/stop handshake of a run's workers and monitor.
#[derive(Default)]
struct Ctl {
    /// Workers and the monitor that are ready (the monitor after its first
    /// sample).
    ready: AtomicUsize,
    /// The workers start.
    go: AtomicBool,
    /// Workers that have done their first batch of operations.
    working: AtomicUsize,
    /// The workers stop.
    stop: AtomicBool,
    /// The monitor takes one last sample and stops (after the workers).
    monitor_stop: AtomicBool,
}

/// One worker's tally.
#[derive(Default)]
struct Tally {
    ops: u64,
    inserted: usize,
    removed: usize,
    end: Option<Instant>,
}

/// Inserts half of `0..keys` with `insert`, the same keys in the same order
/// for every back-end; returns how many.
fn prefill_with(keys: usize, mut insert: impl FnMut(usize)) -> usize {
    let mut order: Vec<usize> = (0..keys).collect();
    let mut rng = Rng(0x5EED ^ keys as u64);
    for i in (1..keys).rev() {
        order.swap(i, rng.below(i + 1));
    }
    for &key in &order[..keys / 2] {
        insert(key);
    }
    keys / 2
}

/// One worker's loop: the start handshake, then `op` (one operation,
/// counting what it did in the tally) until told to stop.
fn work(ctl: &Ctl, mut op: impl FnMut(&mut Tally)) -> Tally {
    let mut tally = Tally::default();
    ctl.ready.fetch_add(1, Release);
    while !ctl.go.load(Acquire) {
        thread::yield_now();
    }
    while !ctl.stop.load(Relaxed) {
        for _ in 0..16 {
            op(&mut tally);
        }
        if tally.ops == 0 {
            ctl.working.fetch_add(1, Relaxed);
        }
        tally.ops += 16;
    }
    tally.end = Some(Instant::now());
    tally
}

/// The monitor: samples garbage and heap every `PERIOD` until told to stop
/// (one last sample after that); returns (peak garbage, peak heap, samples).
fn monitor(ctl: &Ctl) -> (usize, isize, usize) {
    let (mut garbage, mut heap, mut samples) = (0, isize::MIN, 0);
    let mut next = Instant::now();
    loop {
        let t = Totals::now();
        garbage = garbage.max(t.garbage());
        heap = heap.max(t.heap);
        samples += 1;
        if samples == 1 {
            ctl.ready.fetch_add(1, Release);
        }
        if ctl.monitor_stop.load(Acquire) {
            return (garbage, heap, samples);
        }
        next += PERIOD;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

/// What [`run_workers`] measured.
struct Timed {
    tallies: Vec<Tally>,
    ops_per_s: f64,
    /// The monitor's (peak garbage, peak heap, samples).
    peaks: (usize, isize, usize),
}

/// How long a run waits past its time for a worker that has not done any
/// work yet before it reports the worker as stuck.
const STALL: Duration = Duration::from_secs(10);

/// Runs `threads` workers (`worker(ctl, seed)`, which calls [`work`]) for
/// `secs`, and on until every worker has done some work, while the monitor
/// samples; checks that every worker did work.
fn run_workers<W>(threads: usize, secs: Duration, worker: W) -> Timed
where
    W: Fn(&Ctl, u64) -> Tally + Sync,
{
    let ctl = Ctl::default();
    let (tallies, start, peaks) = thread::scope(|s| {
        let mon = s.spawn(|| monitor(&ctl));
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (ctl, worker) = (&ctl, &worker);
                s.spawn(move || worker(ctl, 0xC0FFEE + 7919 * t as u64))
            })
            .collect();
        while ctl.ready.load(Acquire) < threads + 1 {
            thread::yield_now();
        }
        let start = Instant::now();
        ctl.go.store(true, Release);
        thread::sleep(secs);
        // With more workers than processors, a short run (the smoke run's
        // 20 ms) can end before the scheduler has run every worker once:
        // the run lasts until each has done a batch (its time counts), or
        // until `STALL` has passed, when the check below reports it.
        let stalled = Instant::now() + STALL;
        while ctl.working.load(Relaxed) < threads && Instant::now() < stalled {
            thread::sleep(Duration::from_millis(1));
        }
        ctl.stop.store(true, Relaxed);
        let tallies: Vec<Tally> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        ctl.monitor_stop.store(true, Release);
        (tallies, start, mon.join().unwrap())
    });
    let end = tallies.iter().filter_map(|t| t.end).max().unwrap();
    assert!(tallies.iter().all(|t| t.ops > 0), "a worker did no work");
    let ops: u64 = tallies.iter().map(|t| t.ops).sum();
    Timed {
        ops_per_s: ops as f64 / (end - start).as_secs_f64(),
        tallies,
        peaks,
    }
}

impl Timed {
    fn inserted(&self) -> usize {
        self.tallies.iter().map(|t| t.inserted).sum()
    }

    fn removed(&self) -> usize {
        self.tallies.iter().map(|t| t.removed).sum()
    }

    /// The run's figures; `before` is the sample taken after the prefill,
    /// `empty` the one before the structure was made.
    fn run(&self, before: &Totals, empty: &Totals, prefilled: usize) -> Run {
        let (peak_garbage, peak_heap, samples) = self.peaks;
        Run {
            ops_per_s: self.ops_per_s,
            peak_garbage,
            peak_heap: peak_heap - before.heap,
            entry_bytes: (before.heap - empty.heap) as f64 / prefilled as f64,
            repeated_removes: 0,
            ops: self.tallies.iter().map(|t| t.ops).sum(),
            samples,
        }
    }
}

/// The drain's check: every node (or value) ever allocated is dropped.
fn all_dropped() -> bool {
    let t = Totals::now();
    t.dropped >= t.allocated
}

/// One run: fresh back-end state and structure, prefill, `threads` workers
/// for `secs` while the monitor samples, then the checks and the drain.
fn run_once<B: Backend>(shape: Shape, mix: Mix, threads: usize, secs: Duration) -> Run {
    assert!(
        B::NAME != FLOOR || threads == 1,
        "the floor frees at once, which is sound with one thread only"
    );
    let backend = B::new();
    let empty = Totals::now();
    let set = Set::<B>::new(shape.buckets);
    let prefilled = {
        let handle = backend.handle();
        prefill_with(shape.keys, |key| {
            assert!(set.insert(key, &B::pin(&handle)));
        })
    };
    let before = Totals::now();
    assert_eq!(before.garbage(), 0, "garbage left from an earlier run");

    let timed = run_workers(threads, secs, |ctl, seed| {
        let handle = backend.handle();
        let mut rng = Rng(seed);
        work(ctl, |tally| {
            let key = rng.below(shape.keys);
            let op = (rng.next() % 100) as u32;
            let guard = B::pin(&handle);
            if op < mix.get {
                black_box(set.get(key, &guard));
            } else if op < mix.get + mix.insert {
                tally.inserted += set.insert(key, &guard) as usize;
            } else {
                tally.removed += set.remove(key, &guard) as usize;
            }
        })
    });
    let retired = Totals::now().retired - before.retired;

    // The structure is what the operations left, and every removed node was
    // either retired or is still linked, marked.
    let (live, marked) = set.teardown(&backend.handle());
    assert_eq!(
        live,
        prefilled + timed.inserted() - timed.removed(),
        "{}: lost keys",
        B::NAME
    );
    assert_eq!(
        marked + retired,
        timed.removed(),
        "{}: lost removals",
        B::NAME
    );

    // Every node ever allocated is dropped, once.
    backend.drain(&all_dropped);
    let after = Totals::now();
    assert_eq!(after.dropped, after.allocated, "{}: drop count", B::NAME);
    assert_eq!(
        after.retired + after.freed_now,
        after.allocated,
        "{}: every node is retired or freed at once",
        B::NAME
    );
    timed.run(&before, &empty, prefilled)
}

/// One back-end's run function.
type RunFn = fn(Shape, Mix, usize, Duration) -> Run;

/// The list and hash-map back-ends, in column order: add a back-end here.
/// `ownrcu` is the subject; `ownrcu_atomic` and `ownrcu_atomic_domain`
/// (named `ownrcu...`) are not peers; `floor` (one-thread rows only) is
/// the floor; the others are the peers its ratios compare with.
const SET_BACKENDS: [(&str, RunFn); 8] = [
    (<Ownrcu as Backend>::NAME, run_once::<Ownrcu>),
    (<OwnrcuAtomic as Backend>::NAME, run_once::<OwnrcuAtomic>),
    (
        <OwnrcuAtomicDomain<false> as Backend>::NAME,
        run_once::<OwnrcuAtomicDomain<false>>,
    ),
    (
        <OwnrcuAtomicDomain<true> as Backend>::NAME,
        run_once::<OwnrcuAtomicDomain<true>>,
    ),
    (<Crossbeam as Backend>::NAME, run_once::<Crossbeam>),
    (<Seize as Backend>::NAME, run_once::<Seize>),
    (<Sdd as Backend>::NAME, run_once::<Sdd>),
    (FLOOR, run_once::<Floor>),
];

/// The skip-list back-ends: the map of `examples/skiplist.rs`, the subject,
/// and crossbeam-skiplist's.
const MAP_BACKENDS: [(&str, RunFn); 2] = [
    (
        <skiplist::SkipMap<u64, Val> as OrderedMap>::NAME,
        run_map::<skiplist::SkipMap<u64, Val>>,
    ),
    (
        <crossbeam_skiplist::SkipMap<u64, Val> as OrderedMap>::NAME,
        run_map::<crossbeam_skiplist::SkipMap<u64, Val>>,
    ),
];

/// Back-ends whose name starts with this are ownrcu's, never peers.
const OURS: &str = "ownrcu";

/// One row: a structure, a mix and a thread count, every back-end's runs.
struct Row {
    shape: Shape,
    mix: Mix,
    threads: usize,
    runs: Vec<(&'static str, Vec<Run>)>,
}

/// Prints, for every back-end of `row` but its garbage peer, the ratio of
/// its throughput to the peer's in each repetition (the two ran in the
/// same round of the interleaving, a few runs apart) and their median: on
/// a machine whose speed changes from one moment to the next, the spread
/// of these ratios shows how far a row's ratio of medians can be trusted.
fn print_paired(row: &Row) {
    let peer = row.shape.garbage_peer;
    let Some((_, peer_runs)) = row.runs.iter().find(|(n, _)| *n == peer) else {
        return;
    };
    if peer_runs.len() < 2 {
        return;
    }
    for (name, runs) in row.runs.iter().filter(|(n, _)| *n != peer) {
        let ratios: Vec<f64> = runs
            .iter()
            .zip(peer_runs)
            .map(|(r, p)| r.ops_per_s / p.ops_per_s)
            .collect();
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        eprintln!(
            "{}/{name} ÷ {peer}, paired by repetition: {} (median {:.2})",
            row.label(),
            each.join(", "),
            median_ratio(ratios)
        );
    }
}

/// The median of per-repetition ratios (one per repetition, at least one).
fn median_ratio(mut ratios: Vec<f64>) -> f64 {
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// A row's name: `structure/mix/threads`.
fn label(shape: Shape, mix: Mix, threads: usize) -> String {
    format!("{}/{}/{threads}", shape.name, mix.name)
}

/// The median of a figure over runs.
fn median<T: Copy + PartialOrd>(runs: &[Run], f: impl Fn(&Run) -> T) -> T {
    let mut v: Vec<T> = runs.iter().map(f).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Medians of one back-end in one row.
#[derive(Clone, Copy)]
struct Medians {
    ops_per_s: f64,
    peak_garbage: usize,
    peak_heap: isize,
    entry_bytes: f64,
}

impl Row {
    fn label(&self) -> String {
        label(self.shape, self.mix, self.threads)
    }

    fn medians(&self, backend: &str) -> Option<Medians> {
        let (_, runs) = self.runs.iter().find(|(name, _)| *name == backend)?;
        Some(Medians {
            ops_per_s: median(runs, |r| r.ops_per_s),
            peak_garbage: median(runs, |r| r.peak_garbage),
            peak_heap: median(runs, |r| r.peak_heap),
            entry_bytes: median(runs, |r| r.entry_bytes),
        })
    }

    /// `backend`'s throughput over the best peer's, paired by repetition:
    /// the median over repetitions of its throughput over the fastest
    /// peer's in the same repetition. The back-ends of a row take turns
    /// within each repetition, so a machine whose speed changes from one
    /// second to the next moves both sides of each ratio alike, where a
    /// ratio of medians would compare runs made at different speeds.
    fn over_best_peer(&self, backend: &str) -> Option<f64> {
        let (_, runs) = self.runs.iter().find(|(name, _)| *name == backend)?;
        let peers: Vec<&Vec<Run>> = self
            .runs
            .iter()
            .filter(|(name, _)| !name.starts_with(OURS) && *name != FLOOR)
            .map(|(_, runs)| runs)
            .collect();
        if peers.is_empty() {
            return None;
        }
        let ratios: Vec<f64> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let best = peers
                    .iter()
                    .map(|p| p[i].ops_per_s)
                    .fold(f64::NAN, f64::max);
                r.ops_per_s / best
            })
            .collect();
        Some(median_ratio(ratios))
    }

    /// `backend`'s throughput over the floor's, paired by repetition as in
    /// [`Row::over_best_peer`]; `None` where the floor did not run.
    fn over_floor(&self, backend: &str) -> Option<f64> {
        let (_, runs) = self.runs.iter().find(|(name, _)| *name == backend)?;
        let (_, floor) = self.runs.iter().find(|(name, _)| *name == FLOOR)?;
        let ratios = runs
            .iter()
            .zip(floor)
            .map(|(r, f)| r.ops_per_s / f.ops_per_s);
        Some(median_ratio(ratios.collect()))
    }

    /// The subject's throughput over the best peer's (paired, see
    /// [`Row::over_best_peer`]).
    fn ops_ratio(&self) -> Option<f64> {
        self.over_best_peer(self.shape.subject)
    }

    /// The subject's median peak garbage over its garbage peer's.
    fn garbage_ratio(&self) -> Option<f64> {
        let subject = self.medians(self.shape.subject)?.peak_garbage as f64;
        let peer = self.medians(self.shape.garbage_peer)?.peak_garbage as f64;
        Some(subject / peer)
    }
}

/// ", repeated removes 3, 0, 5" when any run had some (a peer's defect).
fn repeated(runs: &[Run]) -> String {
    if runs.iter().all(|r| r.repeated_removes == 0) {
        return String::new();
    }
    let each: Vec<String> = runs
        .iter()
        .map(|r| r.repeated_removes.to_string())
        .collect();
    format!(", repeated removes {}", each.join(", "))
}

/// `1 234 567`.
fn spaced(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn kib(bytes: isize) -> String {
    format!("{:+.0} KiB", bytes as f64 / 1024.0)
}

fn ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}"),
        _ => "n/a".into(),
    }
}

fn print_table(rows: &[Row], secs: Duration, reps: usize) {
    println!();
    println!(
        "Each cell: Mops/s · peak garbage (nodes retired, not yet dropped) · peak heap above \
         the post-prefill baseline · heap bytes per key after the prefill; medians of {reps} \
         run(s) of {:.2} s; list 1 000 keys, hashmap 100 000 keys (30 000 buckets), skiplist \
         100 000 keys, prefilled to half; write = 50 % insert / 50 % remove, mixed = 50 % get / \
         25 % / 25 %, read = 90 % get / 5 % / 5 %.",
        secs.as_secs_f64()
    );
    for shape in SHAPES {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.shape.name == shape.name).collect();
        if mine.is_empty() {
            continue;
        }
        println!();
        let mut header = String::from("| structure | mix | threads |");
        let mut rule = String::from("| --- | --- | --- |");
        for (name, _) in shape.backends {
            let _ = write!(header, " {name} |");
            rule.push_str(" --- |");
        }
        let _ = write!(
            header,
            " {} ÷ best peer (ops/s; target {}) | {} ÷ {} (peak garbage) |",
            shape.subject, shape.target, shape.subject, shape.garbage_peer
        );
        rule.push_str(" --- | --- |");
        let has_floor = shape.backends.iter().any(|(n, _)| *n == FLOOR);
        if has_floor {
            let _ = write!(header, " {} ÷ floor (ops/s) |", shape.subject);
            rule.push_str(" --- |");
        }
        println!("{header}");
        println!("{rule}");
        for row in mine {
            let mut line = format!(
                "| {} | {} | {} |",
                row.shape.name, row.mix.name, row.threads
            );
            for (name, _) in shape.backends {
                match row.medians(name) {
                    Some(m) => {
                        let _ = write!(
                            line,
                            " {:.2} · {} · {} · {:.1} B |",
                            m.ops_per_s / 1e6,
                            spaced(m.peak_garbage),
                            kib(m.peak_heap),
                            m.entry_bytes
                        );
                    }
                    None => line.push_str(" n/a |"),
                }
            }
            let _ = write!(
                line,
                " {} | {} |",
                ratio(row.ops_ratio()),
                ratio(row.garbage_ratio())
            );
            if has_floor {
                let _ = write!(line, " {} |", ratio(row.over_floor(row.shape.subject)));
            }
            println!("{line}");
        }
    }
}

fn json_number(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.4}"),
        _ => "null".into(),
    }
}

/// Writes `<criterion dir>/structures/results.json`.
fn write_json(rows: &[Row], secs: Duration, reps: usize, wall: Duration) {
    let mut json = String::from("{\n");
    let _ = writeln!(
        json,
        "  \"secs\": {}, \"reps\": {reps}, \"sample_period_ns\": {}, \"wall_s\": {:.1},",
        secs.as_secs_f64(),
        PERIOD.as_nanos(),
        wall.as_secs_f64()
    );
    let names: Vec<String> = SHAPES
        .iter()
        .flat_map(|s| s.backends.iter())
        .map(|(n, _)| format!("\"{n}\""))
        .fold(Vec::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        });
    let _ = writeln!(json, "  \"backends\": [{}],", names.join(", "));
    json.push_str("  \"rows\": [\n");
    for (i, row) in rows.iter().enumerate() {
        let _ = writeln!(
            json,
            "    {{\"structure\": \"{}\", \"keys\": {}, \"buckets\": {}, \"mix\": \"{}\", \
             \"threads\": {}, \"subject\": \"{}\", \"garbage_peer\": \"{}\", \
             \"subject_over_best_peer_ops\": {}, \"subject_over_garbage_peer\": {}, \
             \"subject_over_floor_ops\": {}, \"results\": {{",
            row.shape.name,
            row.shape.keys,
            row.shape.buckets,
            row.mix.name,
            row.threads,
            row.shape.subject,
            row.shape.garbage_peer,
            json_number(row.ops_ratio()),
            json_number(row.garbage_ratio()),
            json_number(row.over_floor(row.shape.subject)),
        );
        for (j, (name, runs)) in row.runs.iter().enumerate() {
            let m = row.medians(name).unwrap();
            let each: Vec<String> = runs
                .iter()
                .map(|r| {
                    format!(
                        "{{\"ops_per_s\": {:.0}, \"peak_garbage\": {}, \"peak_heap_bytes\": {}, \
                         \"bytes_per_entry\": {:.1}, \"repeated_removes\": {}, \"ops\": {}, \
                         \"samples\": {}}}",
                        r.ops_per_s,
                        r.peak_garbage,
                        r.peak_heap,
                        r.entry_bytes,
                        r.repeated_removes,
                        r.ops,
                        r.samples
                    )
                })
                .collect();
            let comma = if j + 1 < row.runs.len() { "," } else { "" };
            let _ = writeln!(
                json,
                "      \"{name}\": {{\"ops_per_s\": {:.0}, \"over_best_peer\": {}, \
                 \"over_floor\": {}, \"peak_garbage\": {}, \"peak_heap_bytes\": {}, \"bytes_per_entry\": {:.1}, \
                 \"runs\": [{}]}}{comma}",
                m.ops_per_s,
                json_number(row.over_best_peer(name)),
                json_number(row.over_floor(name)),
                m.peak_garbage,
                m.peak_heap,
                m.entry_bytes,
                each.join(", ")
            );
        }
        let comma = if i + 1 < rows.len() { "," } else { "" };
        let _ = writeln!(json, "    }}}}{comma}");
    }
    json.push_str("  ]\n}\n");
    output::write("structures", "results.json", &json);
}

/// A positive number from the environment, or `default`.
fn env_number(name: &str, default: f64) -> f64 {
    match env::var(name) {
        Ok(v) => match v.parse::<f64>() {
            Ok(x) if x > 0.0 => x,
            _ => panic!("{name}={v}: expected a positive number"),
        },
        Err(_) => default,
    }
}

/// Whether `cell` (`structure/mix/threads/back-end`) matches the command
/// line's `filter` (see "Running it" in the module docs): any of its
/// comma-separated patterns, each a substring, `^` anchoring it at the
/// start and `$` at the end.
fn matches(filter: &str, cell: &str) -> bool {
    filter.split(',').filter(|p| !p.is_empty()).any(|pattern| {
        let (start, rest) = match pattern.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let (end, needle) = match rest.strip_suffix('$') {
            Some(needle) => (true, needle),
            None => (false, rest),
        };
        match (start, end) {
            (true, true) => cell == needle,
            (true, false) => cell.starts_with(needle),
            (false, true) => cell.ends_with(needle),
            (false, false) => cell.contains(needle),
        }
    })
}

fn main() {
    tune_malloc();
    let args: Vec<String> = env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`)
    // this is a smoke run: every row once, briefly, and no JSON.
    let bench = args.iter().any(|a| a == "--bench");
    // An optional filter on `structure/mix/threads/back-end`, e.g.
    // `list/write` or `skiplist/read/1/crossbeam`.
    let filter = args.iter().find(|a| !a.starts_with('-')).cloned();
    let (default_secs, default_reps) = if bench { (1.0, 3.0) } else { (0.02, 1.0) };
    let secs = Duration::from_secs_f64(env_number("OWNRCU_BENCH_SECS", default_secs));
    let reps = env_number("OWNRCU_BENCH_REPS", default_reps) as usize;
    assert!(reps > 0, "OWNRCU_BENCH_REPS must be at least 1");

    let wall = Instant::now();
    let mut rows = Vec::new();
    for shape in SHAPES {
        for &mix in shape.mixes {
            for &threads in shape.threads {
                let label = label(shape, mix, threads);
                // The back-ends whose `structure/mix/threads/back-end`
                // matches the filter, in column order.
                let chosen: Vec<(&str, RunFn)> = shape
                    .backends
                    .iter()
                    .copied()
                    .filter(|(n, _)| *n != FLOOR || threads == 1)
                    .filter(|(n, _)| {
                        filter
                            .as_ref()
                            .map_or(true, |f| matches(f, &format!("{label}/{n}")))
                    })
                    .collect();
                if chosen.is_empty() {
                    continue;
                }
                let mut row = Row {
                    shape,
                    mix,
                    threads,
                    runs: chosen.iter().map(|(n, _)| (*n, Vec::new())).collect(),
                };
                // Interleaved: repetition 1 of every back-end, then 2, ...
                for _ in 0..reps {
                    for (i, (_, run)) in chosen.iter().enumerate() {
                        row.runs[i].1.push(run(shape, mix, threads, secs));
                    }
                }
                for (name, runs) in &row.runs {
                    let m = row.medians(name).unwrap();
                    let each: Vec<String> = runs
                        .iter()
                        .map(|r| format!("{:.2}", r.ops_per_s / 1e6))
                        .collect();
                    eprintln!(
                        "{}/{name}: {:.2} Mops/s (runs {}), peak garbage {}, peak heap {}{}",
                        row.label(),
                        m.ops_per_s / 1e6,
                        each.join(", "),
                        m.peak_garbage,
                        kib(m.peak_heap),
                        repeated(runs)
                    );
                }
                print_paired(&row);
                rows.push(row);
            }
        }
    }
    let wall = wall.elapsed();
    print_table(&rows, secs, reps);
    eprintln!("total {:.1} s", wall.as_secs_f64());
    if bench {
        write_json(&rows, secs, reps, wall);
    }
}
