//! The public API of `Link`, `Shared`'s raw pointers, custom deleters
//! (`Domain::retire_with`, `retire_with_unchecked`, `Batch::push_with`),
//! `Guard::repin`/`repin_after`, and `Domain`'s identity (`==`).
//!
//! Every object is poisoned when freed: its deleter or destructor checks it
//! is still `LIVE` (freed once), counts the free in a per-object tally and
//! overwrites the magic with `POISON` (a volatile write) before the memory
//! goes back to the allocator, so a reader that finds anything but `LIVE`
//! saw an object freed under it (under Miri the access itself is reported).
//! Counts are checked exactly, per object where objects have ids.
//!
//! Deleters are plain `fn`s, so each test keeps its counts in a `static`
//! [`Tally`] of its own (tests run in parallel).

use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use std::marker::PhantomData;
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::ptr::{self, addr_of, addr_of_mut};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, SeqCst};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ownrcu::{Atomic, Domain, Guard, Link, Owned, Shared};

mod common;

const LIVE: u64 = 0x11fe_11fe_11fe_11fe;
const POISON: u64 = 0xdead_dead_dead_dead;

/// Ids per tally.
const IDS: usize = 64;

/// Per-object counts of one test.
struct Tally {
    /// Runs of a custom deleter, per id.
    deleted: [AtomicUsize; IDS],
    /// Runs of `Drop`, per id.
    dropped: [AtomicUsize; IDS],
    /// Ids in the order their deleter or destructor ran.
    order: Mutex<Vec<usize>>,
}

impl Tally {
    const fn new() -> Self {
        Self {
            deleted: [const { AtomicUsize::new(0) }; IDS],
            dropped: [const { AtomicUsize::new(0) }; IDS],
            order: Mutex::new(Vec::new()),
        }
    }

    fn deleted(&self, id: usize) -> usize {
        self.deleted[id].load(SeqCst)
    }

    fn dropped(&self, id: usize) -> usize {
        self.dropped[id].load(SeqCst)
    }

    fn deleted_total(&self) -> usize {
        (0..IDS).map(|id| self.deleted(id)).sum()
    }

    fn dropped_total(&self) -> usize {
        (0..IDS).map(|id| self.dropped(id)).sum()
    }

    fn order(&self) -> Vec<usize> {
        self.order.lock().unwrap().clone()
    }

    fn record(&self, id: usize) {
        self.order.lock().unwrap().push(id);
    }
}

/// Reads a magic number for real (volatile) and checks it is `LIVE`.
fn check_live(magic: *const u64, what: &str) {
    // SAFETY: the callers pass a field of an object they may read (one a
    // guard protects, or one they own); volatile so the read is done.
    let magic = unsafe { ptr::read_volatile(magic) };
    assert_eq!(magic, LIVE, "{what}: read an object that was freed");
}

// ---------------------------------------------------------------------------
// A skip-list node allocated by hand: a header and a tower of links.
// ---------------------------------------------------------------------------

const MAX_HEIGHT: usize = 32;

/// The header of a node allocated with a `Layout`: `height` links
/// (`Link<Tower>`) follow it in the same allocation.
#[repr(C)]
struct Tower {
    magic: u64,
    key: usize,
    height: usize,
    /// How many links point here: whoever drops it to zero retires it.
    links: AtomicUsize,
    tally: &'static Tally,
}

/// The layout of a node with `height` links, and where its links start
/// (the same offset for every height).
fn tower_layout(height: usize) -> (Layout, usize) {
    let tower = Layout::array::<Link<Tower>>(height).unwrap();
    let (layout, offset) = Layout::new::<Tower>().extend(tower).unwrap();
    (layout.pad_to_align(), offset)
}

/// Allocates a node: zeroed memory (a link of zero bytes is null) for even
/// heights, links written with `Link::null` for odd ones.
///
/// The links' contract (`Link::null`), for the skip lists of the tests
/// that call this: a node is retired, once, by whoever unlinks its last
/// link (its `links` count), into the domain whose guards the test uses
/// with these links and no other; from then on no section can reach it
/// (its predecessors no longer point to it, and a removed node's own links
/// are reachable only from it).
fn new_tower(key: usize, height: usize, tally: &'static Tally) -> *mut Tower {
    assert!((1..=MAX_HEIGHT).contains(&height) && key < IDS);
    let (layout, offset) = tower_layout(height);
    let zeroed = height % 2 == 0;
    // SAFETY: the layout is not zero-sized (it has a header). Zeroed links
    // are null links, made under the contract in this function's doc.
    let raw = unsafe {
        if zeroed {
            alloc_zeroed(layout)
        } else {
            alloc(layout)
        }
    };
    assert!(!raw.is_null(), "out of memory");
    if !zeroed {
        for l in 0..height {
            // SAFETY: link `l` lies inside the allocation (`offset` plus
            // `height` links is within `layout`) and is aligned for a link
            // (`Layout::extend` aligned `offset`); the null link is made
            // under the contract in this function's doc.
            unsafe {
                raw.add(offset)
                    .cast::<Link<Tower>>()
                    .add(l)
                    .write(Link::null())
            };
        }
    }
    let node = raw.cast::<Tower>();
    // SAFETY: the allocation starts with room for a header, aligned for it
    // (the layout's alignment is at least the header's).
    unsafe {
        node.write(Tower {
            magic: LIVE,
            key,
            height,
            links: AtomicUsize::new(height),
            tally,
        })
    };
    node
}

/// Link `l` of `node`'s tower.
///
/// # Safety
///
/// `node` came from [`new_tower`], with `l` below its height, and stays
/// allocated for `'a` (it is protected by a guard borrowed for `'a`, or
/// owned). The pointer must carry the whole allocation's provenance: take
/// it from `Shared::as_ptr`, never from a `&Tower`.
unsafe fn level<'a>(node: *const Tower, l: usize) -> &'a Link<Tower> {
    // SAFETY: by the contract, the node is alive; its header is readable.
    debug_assert!(l < unsafe { (*node).height });
    let offset = tower_layout(0).1;
    // SAFETY: link `l` lies inside the node's allocation and was
    // initialized by `new_tower` (zeroed or written).
    unsafe { &*node.cast::<u8>().add(offset).cast::<Link<Tower>>().add(l) }
}

/// The deleter of a [`Tower`] node: counts it, poisons it and frees it
/// with the layout it was allocated with.
///
/// # Safety
///
/// `node` came from [`new_tower`], is freed once, and nobody reads it any
/// more (the retirement's grace period has passed).
unsafe fn free_tower(node: *mut Tower) {
    check_live(
        // SAFETY: the node is still allocated (the contract).
        unsafe { addr_of!((*node).magic) },
        "free_tower (freed twice?)",
    );
    // SAFETY: as above; nobody else reads or writes it any more.
    let (key, height, tally) = unsafe { ((*node).key, (*node).height, (*node).tally) };
    tally.deleted[key].fetch_add(1, SeqCst);
    tally.record(key);
    // SAFETY: as above: a write to our own, still allocated, node; then
    // it goes back to the allocator with the layout it came from.
    unsafe {
        ptr::write_volatile(addr_of_mut!((*node).magic), POISON);
        dealloc(node.cast(), tower_layout(height).0);
    }
}

/// The key of `node` at the end of each list level, from `head`, after
/// checking each node is alive.
fn keys_at<'g>(head: &'g Link<Tower>, l: usize, guard: &'g Guard<'_>) -> Vec<usize> {
    let mut keys = Vec::new();
    let mut curr = head.load(guard);
    while let Some(node) = curr.as_ref() {
        check_live(&node.magic, "keys_at");
        assert!(l < node.height, "a node linked above its height");
        keys.push(node.key);
        // SAFETY: a node of `new_tower`, reached under `guard`, which keeps
        // it allocated (the links' contract); `l` is below its height.
        curr = unsafe { level(curr.as_ptr(), l) }.load(guard);
    }
    keys
}

/// The link at level `l` (the head's, or a node's) that points to `target`.
fn pred_of<'g>(
    head: &'g [Link<Tower>; MAX_HEIGHT],
    l: usize,
    target: Shared<'_, Tower>,
    guard: &'g Guard<'_>,
) -> &'g Link<Tower> {
    let mut pred = &head[l];
    loop {
        let curr = pred.load(guard);
        assert!(!curr.is_null(), "level {l} does not reach the node");
        if curr.as_ptr() == target.as_ptr() {
            return pred;
        }
        // SAFETY: as in `keys_at`: a live node reached under `guard`.
        pred = unsafe { level(curr.as_ptr(), l) };
    }
}

/// Heights 1..=32, each once, over keys 1..=32 (7 is prime to 32).
fn height_of(key: usize) -> usize {
    key * 7 % MAX_HEIGHT + 1
}

#[test]
fn a_layout_node_linked_from_many_links_is_retired_once() {
    static TALLY: Tally = Tally::new();
    let domain = common::quiet();
    let keys: Vec<usize> = (1..=MAX_HEIGHT).collect();
    let mut heights: Vec<usize> = keys.iter().map(|&k| height_of(k)).collect();
    heights.sort_unstable();
    assert_eq!(heights, keys, "every height from 1 to 32 once");

    // SAFETY: the contract of `new_tower`'s doc: a node is retired once,
    // by whoever unlinks its last link, into `domain`, whose guards are
    // the only ones used with these links.
    let head: [Link<Tower>; MAX_HEIGHT] = std::array::from_fn(|_| unsafe { Link::null() });
    let reader = domain.read();
    let guard = domain.read();

    // Build: append each node (in key order) at every level of its tower.
    {
        let mut last: [&Link<Tower>; MAX_HEIGHT] = std::array::from_fn(|l| &head[l]);
        for &key in &keys {
            let height = height_of(key);
            let node = new_tower(key, height, &TALLY);
            // SAFETY: a live node, freed only by the protocol below, after
            // `guard` (and `reader`) are gone.
            let shared = unsafe { Shared::from_ptr(node) };
            for (l, last) in last.iter_mut().enumerate().take(height) {
                last.store(shared);
                // SAFETY: `l` below its height; the node lives until the
                // end of the test's sections.
                *last = unsafe { level(node, l) };
            }
        }
    }
    for (l, link) in head.iter().enumerate() {
        let expected: Vec<usize> = keys.iter().copied().filter(|&k| height_of(k) > l).collect();
        assert_eq!(expected.len(), MAX_HEIGHT - l);
        assert_eq!(keys_at(link, l, &reader), expected, "level {l}");
    }
    // What a reader holds from before the removals.
    let held: Vec<Shared<'_, Tower>> = {
        let mut held = Vec::new();
        let mut curr = head[0].load(&reader);
        while !curr.is_null() {
            held.push(curr);
            // SAFETY: as in `keys_at`.
            curr = unsafe { level(curr.as_ptr(), 0) }.load(&reader);
        }
        held
    };
    assert_eq!(held.len(), MAX_HEIGHT);

    // Remove every node, in a scrambled order: mark its tower top-down
    // (Harris), then unlink it at each level top-down; the last unlink
    // (level 0) retires it.
    let mut retired = 0;
    for i in 0..MAX_HEIGHT {
        let key = i * 13 % MAX_HEIGHT + 1;
        let node = *held.iter().find(|n| n.key == key).unwrap();
        let height = node.height;
        for l in (0..height).rev() {
            // SAFETY: `node` is protected by `guard` and `reader`.
            let prev = unsafe { level(node.as_ptr(), l) }.fetch_or(1, &guard);
            assert_eq!(prev.tag(), 0, "marked once");
        }
        // A marked node takes no insertion after it.
        // SAFETY: as above.
        let next0 = unsafe { level(node.as_ptr(), 0) };
        let succ = next0.load(&guard);
        assert_eq!(succ.tag(), 1);
        let err = next0
            .compare_exchange(succ.with_tag(0), Shared::null(), &guard)
            .unwrap_err();
        assert_eq!(err.current, succ);
        assert!(err.new.is_null());
        for l in (0..height).rev() {
            let pred = pred_of(&head, l, node, &guard);
            // SAFETY: as above.
            let succ = unsafe { level(node.as_ptr(), l) }.load(&guard);
            assert_eq!(succ.tag(), 1, "the node's links stay marked");
            let succ = succ.with_tag(0);
            // A stale `current` (the right node, another tag) fails and
            // changes nothing.
            let err = pred
                .compare_exchange(node.with_tag(1), succ, &guard)
                .unwrap_err();
            assert_eq!((err.current, err.new), (node, succ));
            if l % 2 == 0 {
                let old = pred.compare_exchange(node, succ, &guard).unwrap();
                assert_eq!(old, node);
            } else {
                while let Err(err) = pred.compare_exchange_weak(node, succ, &guard) {
                    assert_eq!(err.current, node, "only spurious failures");
                }
            }
            assert_eq!(pred.load(&guard), succ);
            if node.links.fetch_sub(1, AcqRel) == 1 {
                assert_eq!(l, 0, "the last link unlinked is level 0");
                retired += 1;
                // SAFETY: 1. `free_tower` frees exactly this allocation, on
                // any thread, and the node is retired once (its count hit
                // zero once); 2. unlinked at every level from live nodes
                // (what still points to it is a removed node's link, which
                // no new section can reach); 3. read only under guards of
                // `domain`.
                unsafe { domain.retire_with(node.as_ptr().cast_mut(), free_tower) };
            }
        }
    }
    assert_eq!(retired, MAX_HEIGHT);
    for (l, link) in head.iter().enumerate() {
        assert!(link.peek().0.is_null(), "level {l} is empty");
    }
    // The reader still holds every node: retired, not freed.
    assert_eq!(TALLY.deleted_total(), 0, "freed while a reader held it");
    for (i, node) in held.iter().enumerate() {
        check_live(&node.magic, "held node");
        assert_eq!(node.key, i + 1);
        // SAFETY: as above.
        assert_eq!(unsafe { level(node.as_ptr(), 0) }.load(&reader).tag(), 1);
    }
    drop(held);
    drop((guard, reader));
    domain.barrier();
    for key in 0..IDS {
        let expected = usize::from((1..=MAX_HEIGHT).contains(&key));
        assert_eq!(TALLY.deleted(key), expected, "node {key}");
    }
    let stats = domain.stats();
    assert_eq!((stats.retired, stats.freed, stats.pending), (32, 32, 0));
}

// ---------------------------------------------------------------------------
// `retire_with_unchecked` in generic code, with no bound on the parameter.
// ---------------------------------------------------------------------------

/// Neither `Send` nor `'static`; counts its drops in a counter it borrows.
struct Local<'a> {
    drops: &'a AtomicUsize,
    _not_send: PhantomData<*const ()>,
}

impl Drop for Local<'_> {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

struct Boxed<V> {
    magic: u64,
    value: V,
}

/// The deleter of a [`Boxed`].
///
/// # Safety
///
/// `ptr` came from `Box::into_raw`, is freed once, and nobody reads it any
/// more.
unsafe fn free_boxed<V>(ptr: *mut Boxed<V>) {
    // SAFETY: the contract.
    let boxed = unsafe { Box::from_raw(ptr) };
    check_live(&boxed.magic, "free_boxed (freed twice?)");
    drop(boxed);
}

/// Unlinks what `link` holds and retires it: generic over `V` with no
/// bound at all, as a structure's search that helps unlink would be.
///
/// # Safety
///
/// `link`'s contract: its objects came from `Box::into_raw`, `link` was
/// their only link, and `guard` is of `domain`, the link's domain. What a
/// `V` borrows outlives `domain`'s frees, and dropping a `V` on another
/// thread is sound (its drop touches only `Sync` data).
unsafe fn unlink_and_retire<V>(domain: &Domain, link: &Link<Boxed<V>>, guard: &Guard<'_>) -> bool {
    let old = link.swap(Shared::null(), guard);
    if old.is_null() {
        return false;
    }
    // SAFETY: 1-3: unlinked from its only link, from `Box::into_raw`,
    // retired once, read only under guards of `domain` (this function's
    // contract); 4, 5: the contract too.
    unsafe { domain.retire_with_unchecked(old.as_ptr().cast_mut(), free_boxed::<V>) };
    true
}

#[test]
fn retire_with_unchecked_in_generic_code() {
    let drops = AtomicUsize::new(0); // borrowed: dropped after `domain`
    let domain = common::quiet();
    // SAFETY: its objects are retired by `unlink_and_retire`, into
    // `domain`, whose guards are the only ones used with it.
    let link = unsafe { Link::<Boxed<Local<'_>>>::null() };
    let guard = domain.read();
    for _ in 0..5 {
        let boxed = Box::new(Boxed {
            magic: LIVE,
            value: Local {
                drops: &drops,
                _not_send: PhantomData,
            },
        });
        // SAFETY: a live box, only freed once unlinked (below).
        link.store(unsafe { Shared::from_ptr(Box::into_raw(boxed)) });
        let stored = link.load(&guard);
        check_live(&stored.magic, "stored box");
        assert!(ptr::eq(stored.value.drops, &drops));
        // SAFETY: `link`'s objects are boxes linked only from it, and
        // `guard` is of `domain`; `drops` outlives `domain` (declared
        // before it), and `Local`'s drop only touches an `AtomicUsize`.
        assert!(unsafe { unlink_and_retire(&domain, &link, &guard) });
    }
    // SAFETY: as above.
    assert!(!unsafe { unlink_and_retire(&domain, &link, &guard) });
    assert_eq!(drops.load(SeqCst), 0, "freed while the guard is alive");
    drop(guard);
    domain.barrier();
    assert_eq!(drops.load(SeqCst), 5);
    let stats = domain.stats();
    assert_eq!((stats.retired, stats.freed), (5, 5));
    drop(domain);
    assert_eq!(drops.load(SeqCst), 5);
}

/// A domain's teardown runs deleters retired with `retire_with_unchecked`
/// too, before what they borrow is gone.
#[test]
fn teardown_runs_unchecked_deleters() {
    let drops = AtomicUsize::new(0);
    {
        let domain = common::quiet(); // no grace period starts unasked
        for _ in 0..3 {
            let boxed = Box::new(Boxed {
                magic: LIVE,
                value: Local {
                    drops: &drops,
                    _not_send: PhantomData,
                },
            });
            // SAFETY: 1. `free_boxed` frees this box, once; 2. never
            // published; 3. no reader at all; 4. `Local`'s drop touches an
            // `AtomicUsize` only; 5. `drops` outlives `domain`.
            unsafe { domain.retire_with_unchecked(Box::into_raw(boxed), free_boxed::<Local<'_>>) };
        }
        assert_eq!(drops.load(SeqCst), 0, "nothing frees before the teardown");
    }
    assert_eq!(drops.load(SeqCst), 3);
}

// ---------------------------------------------------------------------------
// Deleters in batches, and panicking deleters.
// ---------------------------------------------------------------------------

/// The payload of a panicking deleter: the object's id.
#[derive(Debug, PartialEq, Eq)]
struct Boom(usize);

/// An object freed by `Drop` (`Batch::push`) or by [`free_item`].
struct Item {
    magic: u64,
    id: usize,
    /// Whether [`free_item`] panics (after freeing it).
    panics: bool,
    tally: &'static Tally,
}

impl Drop for Item {
    fn drop(&mut self) {
        check_live(&self.magic, "Item::drop (dropped twice?)");
        self.tally.dropped[self.id].fetch_add(1, SeqCst);
        self.tally.record(self.id);
        // SAFETY: a write to our own field.
        unsafe { ptr::write_volatile(&mut self.magic, POISON) };
    }
}

fn item(id: usize, panics: bool, tally: &'static Tally) -> Box<Item> {
    assert!(id < IDS);
    Box::new(Item {
        magic: LIVE,
        id,
        panics,
        tally,
    })
}

/// The deleter of an [`Item`]: counts itself, drops the box (which counts
/// the drop too), then panics with `Boom(id)` if the item says so.
///
/// # Safety
///
/// `ptr` came from `Box::into_raw`, is freed once, and nobody reads it any
/// more.
unsafe fn free_item(ptr: *mut Item) {
    // SAFETY: the contract.
    let item = unsafe { Box::from_raw(ptr) };
    check_live(&item.magic, "free_item (freed twice?)");
    item.tally.deleted[item.id].fetch_add(1, SeqCst);
    let (id, panics) = (item.id, item.panics);
    drop(item);
    if panics {
        panic_any(Boom(id));
    }
}

/// Runs `f`, which must panic with a `Boom`, and returns its id.
fn boom(f: impl FnOnce()) -> usize {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    match payload.downcast::<Boom>() {
        Ok(boom) => boom.0,
        Err(other) => std::panic::resume_unwind(other),
    }
}

#[test]
fn batch_push_with_and_push_share_one_registration() {
    static TALLY: Tally = Tally::new();
    let domain = common::quiet();
    let (leave, reader) = common::stalled_reader(&domain);
    let mut batch = domain.batch::<Item>();
    let boxed = |id: usize| id % 3 == 0;
    for id in 0..12 {
        if boxed(id) {
            batch.push(item(id, false, &TALLY));
        } else {
            // SAFETY: `free_item` frees this box, once, on any thread;
            // never published; retired once.
            unsafe { batch.push_with(Box::into_raw(item(id, false, &TALLY)), free_item) };
        }
    }
    assert_eq!(batch.len(), 12);
    assert!(!batch.is_empty());
    assert!(batch.domain() == &domain);
    batch.drain();
    drop(leave);
    reader.join().unwrap();
    assert_eq!(TALLY.dropped_total(), 0, "freed before a grace period");
    domain.barrier();
    for id in 0..IDS {
        let expected = usize::from(id < 12);
        assert_eq!(TALLY.dropped(id), expected, "item {id} dropped");
        let by_deleter = usize::from(id < 12 && !boxed(id));
        assert_eq!(TALLY.deleted(id), by_deleter, "item {id} deleted");
    }
    // Boxes first, then the deleters', each in push order.
    assert_eq!(TALLY.order(), [0, 3, 6, 9, 1, 2, 4, 5, 7, 8, 10, 11]);
    let stats = domain.stats();
    assert_eq!(
        (stats.retired, stats.freed, stats.pending, stats.batches),
        (12, 12, 0, 1)
    );
    assert_eq!(stats.registrations, 1, "one registration for the batch");

    // A batch of deleters alone, dropped undrained: registered on drop.
    {
        let mut batch = domain.batch::<Item>();
        for id in 12..15 {
            // SAFETY: as above.
            unsafe { batch.push_with(Box::into_raw(item(id, false, &TALLY)), free_item) };
        }
    }
    domain.barrier();
    for id in 12..15 {
        assert_eq!((TALLY.deleted(id), TALLY.dropped(id)), (1, 1), "item {id}");
    }
    let stats = domain.stats();
    assert_eq!((stats.retired, stats.freed, stats.batches), (15, 15, 2));
}

/// Live slices freed by [`free_words`].
static WORDS_FREED: AtomicUsize = AtomicUsize::new(0);

/// The deleter of a slice allocated with `Layout::array::<u64>(len)`, every
/// word of which holds `len`: a fat pointer through a deleter.
///
/// # Safety
///
/// `ptr` is such a slice, freed once, that nobody reads any more.
unsafe fn free_words(ptr: *mut [u64]) {
    let len = ptr.len();
    // SAFETY: the contract: allocated, initialized, ours alone.
    let words = unsafe { &*ptr };
    assert!(words.iter().all(|&w| w == len as u64), "a freed slice");
    WORDS_FREED.fetch_add(1, SeqCst);
    // SAFETY: allocated with this layout, no reference to it left.
    unsafe { dealloc(ptr.cast(), Layout::array::<u64>(len).unwrap()) };
}

#[test]
fn batch_push_with_unsized_objects() {
    let domain = common::quiet();
    let mut batch = domain.batch::<[u64]>();
    batch.push(vec![7_u64; 5].into_boxed_slice());
    for len in 1..=4_usize {
        let layout = Layout::array::<u64>(len).unwrap();
        // SAFETY: not zero-sized.
        let words = unsafe { alloc(layout) }.cast::<u64>();
        assert!(!words.is_null());
        for i in 0..len {
            // SAFETY: inside the allocation.
            unsafe { words.add(i).write(len as u64) };
        }
        let slice = ptr::slice_from_raw_parts_mut(words, len);
        // SAFETY: `free_words` frees exactly this slice, once, on any
        // thread; never published.
        unsafe { batch.push_with(slice, free_words) };
    }
    assert_eq!(batch.len(), 5);
    batch.drain();
    domain.barrier();
    assert_eq!(WORDS_FREED.load(SeqCst), 4);
    let stats = domain.stats();
    assert_eq!((stats.retired, stats.freed, stats.batches), (5, 5, 1));
}

#[test]
fn a_panicking_deleter_in_a_batch() {
    static TALLY: Tally = Tally::new();
    let domain = common::quiet();
    let (leave, reader) = common::stalled_reader(&domain);
    let mut batch = domain.batch::<Item>();
    for id in 0..10 {
        if id < 4 {
            batch.push(item(id, false, &TALLY));
        } else {
            // SAFETY: `free_item` frees this box, once; never published.
            unsafe { batch.push_with(Box::into_raw(item(id, id == 6, &TALLY)), free_item) };
        }
    }
    batch.drain();
    drop(leave); // from here on, grace periods can complete
    reader.join().unwrap();
    assert_eq!(boom(|| domain.barrier()), 6);
    for id in 0..IDS {
        assert_eq!(TALLY.dropped(id), usize::from(id < 10), "item {id}");
        let deleted = usize::from((4..10).contains(&id));
        assert_eq!(TALLY.deleted(id), deleted, "item {id}");
    }
    let stats = domain.stats();
    assert_eq!(
        (stats.retired, stats.freed, stats.pending, stats.batches),
        (10, 10, 0, 1)
    );
    // Surfaced once: nothing is left to panic.
    domain.barrier();
    assert_eq!(TALLY.dropped_total(), 10);
    assert_usable(&domain);
}

#[test]
fn a_panicking_deleter_in_retire_with() {
    static TALLY: Tally = Tally::new();
    let domain = common::quiet();
    let (leave, reader) = common::stalled_reader(&domain);
    for id in 0..10 {
        let ptr = Box::into_raw(item(id, id == 3, &TALLY));
        // SAFETY: 1. `free_item` frees this box, once, on any thread;
        // 2. never published; 3. no reader at all.
        unsafe { domain.retire_with(ptr, free_item) };
    }
    drop(leave); // from here on, grace periods can complete
    reader.join().unwrap();
    assert_eq!(boom(|| domain.barrier()), 3);
    for id in 0..IDS {
        let expected = usize::from(id < 10);
        assert_eq!(
            (TALLY.deleted(id), TALLY.dropped(id)),
            (expected, expected),
            "item {id}"
        );
    }
    let stats = domain.stats();
    assert_eq!((stats.retired, stats.freed, stats.pending), (10, 10, 0));
    domain.barrier();
    assert_eq!(TALLY.dropped_total(), 10);
    assert_usable(&domain);
}

#[test]
fn panicking_deleters_in_a_batch_and_singles_surface_once() {
    static TALLY: Tally = Tally::new();
    let domain = common::quiet();
    let (leave, reader) = common::stalled_reader(&domain);
    let mut batch = domain.batch::<Item>();
    for id in 0..5 {
        // SAFETY: as in the tests above.
        unsafe { batch.push_with(Box::into_raw(item(id, id == 2, &TALLY)), free_item) };
    }
    batch.drain();
    for id in 5..10 {
        // SAFETY: as in the tests above.
        unsafe { domain.retire_with(Box::into_raw(item(id, id == 8, &TALLY)), free_item) };
    }
    drop(leave);
    reader.join().unwrap();
    let first = boom(|| domain.barrier());
    assert!(first == 2 || first == 8, "{first}");
    for id in 0..IDS {
        let expected = usize::from(id < 10);
        assert_eq!(
            (TALLY.deleted(id), TALLY.dropped(id)),
            (expected, expected),
            "item {id}"
        );
    }
    domain.barrier(); // the other panic is not resumed later
    assert_eq!(domain.stats().freed, 10);
    assert_usable(&domain);
}

/// The domain still works after a deleter panicked: a retirement with a
/// deleter and a barrier.
fn assert_usable(domain: &Domain) {
    static USABLE: AtomicUsize = AtomicUsize::new(0);
    unsafe fn count(ptr: *mut u64) {
        USABLE.fetch_add(1, SeqCst);
        // SAFETY: from `Box::into_raw` below, freed once.
        drop(unsafe { Box::from_raw(ptr) });
    }
    let before = (domain.stats().freed, USABLE.load(SeqCst));
    // SAFETY: `count` frees this box, once; never published.
    unsafe { domain.retire_with(Box::into_raw(Box::new(1_u64)), count) };
    domain.barrier();
    assert_eq!(domain.stats().freed, before.0 + 1);
    // Other tests may count here too; ours is among them.
    assert!(USABLE.load(SeqCst) > before.1);
}

// ---------------------------------------------------------------------------
// `Guard::repin` and `Guard::repin_after`.
// ---------------------------------------------------------------------------

#[test]
fn repin_ends_the_section_unless_nested() {
    let domain = common::quiet();
    let mut guard = domain.read();
    // Our section began before the cookie: it holds the grace period up
    // (the poll starts it).
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie));
    assert!(guard.repin());
    // The new section read the started grace period's epoch: it does not
    // hold it up.
    assert!(domain.poll(&cookie));

    // Nested: the section cannot end.
    let mut inner = domain.read();
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie));
    assert!(!guard.repin());
    assert!(!inner.repin());
    assert!(!domain.poll(&cookie), "a refused repin left the section");
    drop(inner);
    assert!(guard.repin());
    assert!(domain.poll(&cookie));

    // A guard of another domain does not count.
    let other = Domain::new();
    let other_guard = other.read();
    let cookie = domain.grace_period();
    assert!(!domain.poll(&cookie));
    assert!(guard.repin());
    assert!(domain.poll(&cookie));
    drop(other_guard);

    // The guard still works after all that.
    // SAFETY: its object is freed below, directly, once no guard is left.
    let link = unsafe { Link::<u64>::null() };
    link.store(Owned::new(9).into_shared(&guard));
    assert_eq!(*link.load(&guard), 9);
    drop(guard);
    let mut link = link;
    let (ptr, _) = link.get_mut();
    // SAFETY: from `Box::into_raw` (via `Owned`); no section is left.
    drop(unsafe { Box::from_raw(ptr) });
}

/// A thread in a long read section repins while another thread waits for
/// grace periods (`synchronize`, then `barrier`): they complete, and the
/// object retired while the section held it is freed only after a repin.
#[test]
fn repin_lets_another_threads_grace_period_complete() {
    static TALLY: Tally = Tally::new();
    let domain = Domain::new();
    // SAFETY: its objects are retired with `retire_with` once swapped out,
    // into `domain`, whose guards are the only ones used with it.
    let link = unsafe { Link::<Item>::null() };
    let mut guard = domain.read();
    link.store(Owned::from(item(0, false, &TALLY)).into_shared(&guard));
    {
        let first = link.load(&guard);
        let old = link.swap(
            Owned::from(item(1, false, &TALLY)).into_shared(&guard),
            &guard,
        );
        assert_eq!(old, first);
        // SAFETY: 1. `free_item` frees this box, once, on any thread;
        // 2. swapped out of its only link; 3. read under `domain`'s guards.
        unsafe { domain.retire_with(old.as_ptr().cast_mut(), free_item) };
        let (done_tx, done_rx) = mpsc::channel();
        let waiter = {
            let domain = domain.clone();
            thread::spawn(move || {
                domain.synchronize();
                domain.barrier();
                done_tx.send(()).unwrap();
            })
        };
        // Our section holds `first` up: no grace period that could free it
        // can complete before we repin.
        check_live(&first.magic, "first, before the repin");
        assert_eq!(first.id, 0);
        assert_eq!(TALLY.deleted(0), 0);
        let start = Instant::now();
        loop {
            match done_rx.try_recv() {
                Ok(()) => break,
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => panic!("the waiter died"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the grace periods did not complete in a minute of repins"
            );
            assert!(guard.repin(), "not nested: the repin ends the section");
            thread::yield_now();
        }
        waiter.join().unwrap();
    }
    assert_eq!(
        (TALLY.deleted(0), TALLY.dropped(0)),
        (1, 1),
        "freed by the barrier"
    );
    let now = link.load(&guard);
    check_live(&now.magic, "second");
    assert_eq!(now.id, 1);
    // `repin_after` leaves the section while it waits.
    guard.repin_after(|| domain.synchronize());
    let old = link.swap(Shared::null(), &guard);
    // SAFETY: as above.
    unsafe { domain.retire_with(old.as_ptr().cast_mut(), free_item) };
    drop(guard);
    domain.barrier();
    assert_eq!((TALLY.deleted(1), TALLY.dropped(1)), (1, 1));
    assert_eq!(TALLY.dropped_total(), 2);
}

#[test]
fn repin_after_reenters_after_a_panic() {
    let domain = common::quiet();
    // SAFETY: its object is freed below, directly, once no guard is left.
    let mut link = unsafe { Link::<u64>::null() };
    let mut guard = domain.read();
    link.store(Owned::new(5).into_shared(&guard));
    // `f` runs outside the section (`synchronize` would panic inside it),
    // and its result comes back.
    let (value, outside) = guard.repin_after(|| {
        let outside = catch_unwind(AssertUnwindSafe(|| domain.synchronize())).is_ok();
        (42, outside)
    });
    assert_eq!(value, 42);
    assert!(outside, "f ran inside the section");
    // A panic in `f`: the guard enters again on the way out.
    let payload = catch_unwind(AssertUnwindSafe(|| {
        guard.repin_after(|| {
            domain.synchronize();
            panic!("inside repin_after");
        })
    }))
    .expect_err("the panic comes through");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"inside repin_after"));
    let inside = catch_unwind(AssertUnwindSafe(|| domain.synchronize())).is_err();
    assert!(inside, "the guard did not enter again after the panic");
    let cookie = domain.grace_period();
    assert!(
        !domain.poll(&cookie),
        "the section holds grace periods up again"
    );
    assert_eq!(*link.load(&guard), 5, "the guard is usable");
    assert!(guard.repin());
    assert!(domain.poll(&cookie));
    // Nested: `f` just runs, inside the section.
    let inner = domain.read();
    let inside =
        guard.repin_after(|| catch_unwind(AssertUnwindSafe(|| domain.synchronize())).is_err());
    assert!(inside, "a nested guard's section was left");
    drop(inner);
    drop(guard);
    domain.synchronize(); // outside now
    let (ptr, tag) = link.get_mut();
    assert_eq!(tag, 0);
    // SAFETY: from `Box::into_raw` (via `Owned`); no section is left.
    drop(unsafe { Box::from_raw(ptr) });
}

// ---------------------------------------------------------------------------
// Domain identity.
// ---------------------------------------------------------------------------

#[test]
fn domain_identity() {
    let a = Domain::new();
    let b = Domain::new();
    let a2 = a.clone();
    assert!(a == a2);
    assert!(a != b);
    assert_eq!(a, a);
    assert!(Domain::global() == Domain::global());
    assert!(Domain::global() == &Domain::global().clone());
    assert!(Domain::global() != &a && &b != Domain::global());
    assert!(a.read().domain() == &a);
    assert!(a.read().domain() == &a2);
    assert!(a.read().domain() != &b);
    assert!(Domain::global().read().domain() == Domain::global());
    // A domain made after another is dropped is a new one.
    drop(a);
    let c = Domain::new();
    assert!(c != a2 && c != b);
    assert!(a2 == a2.clone(), "a clone is the domain, even after a drop");
}

// ---------------------------------------------------------------------------
// Tags, raw pointers, exclusive access.
// ---------------------------------------------------------------------------

/// Tag-only operations hand out no `Shared`: `fetch_or_tag` returns the old
/// tag and keeps the address; `load_untagged` hands out the pointer only
/// while the tag is 0.
#[test]
fn tag_only_operations_keep_the_address() {
    let domain = Domain::new();
    let guard = domain.read();
    let object = Owned::new(11_u64).into_shared(&guard);
    // SAFETY: `object` is freed below, after the link's last use; only
    // guards of `domain` are passed.
    let link = unsafe { Link::<u64>::null() };
    link.store(object);
    assert_eq!(link.load_untagged(&guard), Ok(object));
    assert_eq!(link.fetch_or_tag(2), 0);
    assert_eq!(link.fetch_or_tag(1), 2);
    assert_eq!(link.peek(), (object.as_ptr(), 3));
    assert_eq!(link.load_untagged(&guard), Err(3));
    assert_eq!(link.load(&guard), object.with_tag(3));
    // A tagged null is still handed out by `load`, never by `load_untagged`.
    link.store(Shared::<u64>::null().with_tag(1));
    assert_eq!(link.load_untagged(&guard), Err(1));
    assert!(link.load(&guard).is_null());
    let ptr = object.as_ptr().cast_mut();
    drop(guard);
    // SAFETY: from `Box::into_raw` (via `Owned`), unlinked, no section left.
    drop(unsafe { Box::from_raw(ptr) });
}

#[test]
fn tags_peek_get_mut_and_raw_pointers() {
    let domain = common::quiet();
    let guard = domain.read();
    // SAFETY: its object is freed below, directly, once no guard is left.
    let mut link = unsafe { Link::<u64>::null() };
    assert_eq!(link.peek(), (ptr::null(), 0));
    assert_eq!(link.get_mut(), (ptr::null_mut(), 0));
    // A tagged null (`u64`: three tag bits; more are masked).
    link.store(Shared::<u64>::null().with_tag(0xd));
    let (p, tag) = link.peek();
    assert!(p.is_null() && tag == 5);
    assert_eq!(link.get_mut(), (ptr::null_mut(), 5));
    let loaded = link.load(&guard);
    assert!(loaded.is_null() && loaded.as_ref().is_none() && loaded.tag() == 5);
    assert_eq!(loaded.tagged_ptr() as usize, 5);
    assert!(loaded.as_ptr().is_null());
    // SAFETY: a tagged null.
    assert_eq!(
        unsafe { Shared::<u64>::from_ptr(loaded.tagged_ptr()) },
        loaded
    );
    assert!(format!("{link:?}").contains("tag: 5"));

    // A tagged object.
    let object = Owned::new(77_u64).into_shared(&guard);
    assert_eq!(object.tag(), 0);
    let addr = object.as_ptr();
    let before = link.swap(object.with_tag(3), &guard);
    assert_eq!(before, Shared::<u64>::null().with_tag(5));
    let shared = link.load(&guard);
    assert_eq!((*shared, shared.tag()), (77, 3));
    assert_eq!(link.peek(), (object.as_ptr(), 3));
    assert_eq!(shared.as_ptr(), object.as_ptr());
    assert_eq!(shared.tagged_ptr() as usize, object.as_ptr() as usize | 3);
    // SAFETY: `shared` as loaded: valid while `guard` is.
    let again = unsafe { Shared::from_ptr(shared.tagged_ptr()) };
    assert_eq!(again, shared);
    assert_eq!((*again, again.tag()), (77, 3));
    // SAFETY: as above, untagged.
    assert_eq!(
        unsafe { Shared::from_ptr(shared.as_ptr()) },
        shared.with_tag(0)
    );
    // `fetch_*` change the tag only, and return the previous value.
    assert_eq!(link.fetch_and(!1, &guard), shared);
    assert_eq!(link.fetch_or(4, &guard), shared.with_tag(2));
    assert_eq!(link.fetch_xor(6, &guard), shared.with_tag(6));
    assert_eq!(link.load(&guard), shared.with_tag(0));
    assert_eq!(*link.load(&guard), 77);
    // Exchanges compare the tag too.
    let err = link
        .compare_exchange(shared.with_tag(1), Shared::null(), &guard)
        .unwrap_err();
    assert_eq!(err.current, shared.with_tag(0));
    assert!(err.new.is_null());
    let old = link
        .compare_exchange(shared.with_tag(0), shared.with_tag(7), &guard)
        .unwrap();
    assert_eq!(old, shared.with_tag(0));
    drop(guard);
    let (p, tag) = link.get_mut();
    assert_eq!((p.cast_const(), tag), (addr, 7));
    assert!(format!("{link:?}").contains("tag: 7"));
    // SAFETY: from `Box::into_raw` (via `Owned`); no guard is left, and the
    // link is the only one to it.
    drop(unsafe { Box::from_raw(p) });

    // `u8`: no tag bits at all.
    // SAFETY: nothing non-null is ever stored.
    let bytes = unsafe { Link::<u8>::null() };
    bytes.store(Shared::<u8>::null().with_tag(1));
    assert_eq!(bytes.peek(), (ptr::null(), 0));
    // `Atomic::peek`: the same, without a guard.
    let a = Atomic::from(Owned::new(1_u64).with_tag(6));
    let (p, tag) = a.peek();
    assert!(!p.is_null() && tag == 6);
    assert_eq!(Atomic::<u64>::null().peek(), (ptr::null(), 0));
}

#[test]
fn a_link_is_one_word() {
    assert_eq!(
        std::mem::size_of::<Link<u64>>(),
        std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::size_of::<Link<[u8; 3]>>(),
        std::mem::size_of::<usize>()
    );
    assert_eq!(
        std::mem::align_of::<Link<u8>>(),
        std::mem::align_of::<usize>()
    );
    assert!(
        !std::mem::needs_drop::<Link<String>>(),
        "a link owns nothing"
    );
}

// ---------------------------------------------------------------------------
// Stress: a Harris-Michael sorted list of `Link`s, two writers and readers.
// ---------------------------------------------------------------------------

static STRESS_ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static STRESS_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A list node. Its link's contract (made in [`LNode::new`]): the list
/// retires a node once, by whoever unlinks it from its predecessor (its
/// mark stops any other unlink or insertion after it), into the list's
/// domain, whose guards are the only ones used with the list; from then on
/// no new section reaches it (a removed node is reachable only from
/// removed nodes, themselves unlinked earlier).
struct LNode {
    magic: u64,
    key: u64,
    next: Link<LNode>,
}

impl LNode {
    fn new(key: u64) -> Owned<Self> {
        STRESS_ALLOCATED.fetch_add(1, Relaxed);
        Owned::new(Self {
            magic: LIVE,
            key,
            // SAFETY: the contract in the type's doc.
            next: unsafe { Link::null() },
        })
    }

    fn key(&self) -> u64 {
        check_live(&self.magic, "list node");
        self.key
    }
}

impl Drop for LNode {
    fn drop(&mut self) {
        check_live(&self.magic, "LNode::drop (dropped twice?)");
        STRESS_DROPPED.fetch_add(1, Relaxed);
        // SAFETY: a write to our own field.
        unsafe { ptr::write_volatile(&mut self.magic, POISON) };
    }
}

/// The deleter of a list node retired with `retire_with`.
///
/// # Safety
///
/// From `Box::into_raw` (via `Owned`), freed once, read by nobody.
unsafe fn free_lnode(ptr: *mut LNode) {
    // SAFETY: the contract.
    drop(unsafe { Box::from_raw(ptr) });
}

struct List {
    head: Link<LNode>,
    domain: Domain,
    retired: AtomicUsize,
}

impl List {
    fn new(domain: Domain) -> Self {
        Self {
            // SAFETY: the contract in `LNode`'s doc (the head is never
            // removed).
            head: unsafe { Link::null() },
            domain,
            retired: AtomicUsize::new(0),
        }
    }

    /// Retires a node this thread has just unlinked: even keys as boxes,
    /// odd ones with a deleter.
    fn retire(&self, node: Shared<'_, LNode>) {
        self.retired.fetch_add(1, Relaxed);
        let ptr = node.as_ptr().cast_mut();
        if node.key() % 2 == 0 {
            // SAFETY: from `Box::into_raw` (via `Owned`), unlinked by our
            // exchange (which only one thread can make), retired once,
            // read only under guards of `self.domain`.
            unsafe { self.domain.retire_raw(ptr) };
        } else {
            // SAFETY: as above; `free_lnode` frees exactly this box.
            unsafe { self.domain.retire_with(ptr, free_lnode) };
        }
    }

    /// The first unmarked node with a key not below `key`, and the link
    /// to it; unlinks (and retires) marked nodes on the way.
    fn find<'g>(&'g self, key: u64, guard: &'g Guard<'_>) -> (&'g Link<LNode>, Shared<'g, LNode>) {
        assert!(guard.domain() == &self.domain, "a guard of another domain");
        'retry: loop {
            let mut pred = &self.head;
            let mut curr = pred.load(guard);
            while let Some(node) = curr.as_ref() {
                let succ = node.next.load(guard);
                if succ.tag() == 1 {
                    match pred.compare_exchange(curr, succ.with_tag(0), guard) {
                        Ok(_) => self.retire(curr),
                        Err(_) => continue 'retry,
                    }
                    curr = succ.with_tag(0);
                    continue;
                }
                if node.key() >= key {
                    return (pred, curr);
                }
                pred = &node.next;
                curr = succ;
            }
            return (pred, curr);
        }
    }

    fn insert(&self, key: u64, guard: &Guard<'_>) -> bool {
        let new = LNode::new(key).into_shared(guard);
        loop {
            let (pred, curr) = self.find(key, guard);
            if curr.as_ref().is_some_and(|node| node.key() == key) {
                // SAFETY: from `Box::into_raw` (via `Owned`), never
                // published.
                drop(unsafe { Box::from_raw(new.as_ptr().cast_mut()) });
                return false;
            }
            new.next.store(curr);
            if pred.compare_exchange(curr, new, guard).is_ok() {
                return true;
            }
        }
    }

    fn remove(&self, key: u64, guard: &Guard<'_>) -> bool {
        loop {
            let (pred, curr) = self.find(key, guard);
            let Some(node) = curr.as_ref() else {
                return false;
            };
            if node.key() != key {
                return false;
            }
            let succ = node.next.fetch_or(1, guard);
            if succ.tag() == 1 {
                continue; // another remover marked it first
            }
            match pred.compare_exchange(curr, succ, guard) {
                Ok(_) => self.retire(curr),
                Err(_) => {
                    // Someone changed `pred`: a search unlinks it.
                    let _ = self.find(key, guard);
                }
            }
            return true;
        }
    }

    /// The keys, checking they are sorted and the nodes alive.
    fn keys(&self, guard: &Guard<'_>) -> Vec<u64> {
        let mut keys = Vec::new();
        let mut curr = self.head.load(guard);
        while let Some(node) = curr.as_ref() {
            let key = node.key();
            assert!(keys.last().map_or(true, |&last| last < key), "unsorted");
            keys.push(key);
            curr = node.next.load(guard);
        }
        keys
    }
}

impl Drop for List {
    /// Frees the nodes still linked, directly: `&mut self` means no reader.
    fn drop(&mut self) {
        let (mut ptr, tag) = self.head.get_mut();
        assert_eq!(tag, 0);
        while !ptr.is_null() {
            // SAFETY: a linked node, from `Box::into_raw` (via `Owned`),
            // never retired (only unlinked nodes are), reached by nobody
            // else (`&mut self`).
            let mut node = unsafe { Box::from_raw(ptr) };
            let (next, tag) = node.next.get_mut();
            assert_eq!(tag, 0, "a marked node left linked");
            ptr = next;
        }
    }
}

/// A small xorshift generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn harris_list_of_links_under_concurrent_writers_and_readers() {
    const KEYS: u64 = 8;
    let ops = if cfg!(miri) { 40 } else { 20_000 };
    let domain = Domain::new();
    let list = List::new(domain.clone());
    let (inserted, removed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let writers_done = AtomicUsize::new(0);
    let traversals = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                // One guard for the whole run, repinned between traversals.
                let mut guard = list.domain.read();
                let mut n = 0;
                while writers_done.load(SeqCst) < 2 || n == 0 {
                    let keys = list.keys(&guard);
                    assert!(keys.iter().all(|&k| k < KEYS));
                    n += 1;
                    assert!(guard.repin());
                    thread::yield_now();
                }
                traversals.fetch_add(n, Relaxed);
            });
        }
        for w in 0..2_u64 {
            let (list, inserted, removed, writers_done) =
                (&list, &inserted, &removed, &writers_done);
            s.spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w + 1));
                for _ in 0..ops {
                    let guard = list.domain.read();
                    let key = rng.below(KEYS);
                    if rng.below(2) == 0 {
                        if list.insert(key, &guard) {
                            inserted.fetch_add(1, Relaxed);
                        }
                    } else if list.remove(key, &guard) {
                        removed.fetch_add(1, Relaxed);
                    }
                }
                writers_done.fetch_add(1, SeqCst);
            });
        }
    });
    assert!(traversals.load(Relaxed) >= 2);
    let (inserted, removed) = (inserted.load(Relaxed), removed.load(Relaxed));
    let left = list.keys(&domain.read());
    assert_eq!(left.len(), inserted - removed);
    // Every removed node was unlinked and retired once (by its remover or
    // a helping search).
    assert_eq!(list.retired.load(Relaxed), removed);
    domain.barrier();
    let allocated = STRESS_ALLOCATED.load(Relaxed);
    let refused = allocated - inserted; // freed directly by `insert`
    assert_eq!(STRESS_DROPPED.load(Relaxed), refused + removed);
    let stats = domain.stats();
    assert_eq!(
        (stats.retired, stats.freed),
        (removed as u64, removed as u64)
    );
    drop(list);
    assert_eq!(
        STRESS_DROPPED.load(Relaxed),
        allocated,
        "every node freed once"
    );
}
