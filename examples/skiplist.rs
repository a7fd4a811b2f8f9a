//! A lock-free ordered map (a skip list) on ownrcu's pointer API alone
//! ([`Link`], [`Shared::from_ptr`], [`Domain::retire_with_unchecked`],
//! [`Guard::repin`]): `cargo run --release --example skiplist`.
//!
//! # The structure
//!
//! Every node is one allocation made with a `Layout`: a header (the key,
//! the value, and a word that packs the node's reference count with its
//! height) followed by a *tower* of 1 to 32 [`Link`]s, link `l` being the
//! node's successor in the list of level `l`. Level 0 holds every node in
//! key order; each level above holds about half the nodes of the one below,
//! so a search skips along the top and descends. The map's head is a full
//! tower of 32 links.
//!
//! - **Insert** links the new node at level 0 with a compare-and-swap on
//!   its predecessor's link (from then on it is in the map), then at each
//!   higher level of its tower, bottom up. When it replaces an older node
//!   with the same key, it goes in just before it, and the older one is
//!   then removed.
//! - **Remove** first *marks* the node: it sets tag 1 on every link of its
//!   tower, top down (`fetch_or_tag`, `fetch_or`). A marked link is frozen: every exchange
//!   expects an unmarked value, so nothing is ever linked after a marked
//!   link. Whoever marks level 0 has removed the key. Then the node is
//!   *unlinked* at each level: its predecessor's link is swung past it.
//! - **Searches help**: a search that meets a marked node unlinks it at
//!   that level before going on, so a removal never waits for its remover.
//! - **Get** stops at the first level where it meets its key's node with
//!   that level's link unmarked: marks go top down, so the node was not
//!   removed at that moment, and the levels below need not be walked.
//!
//! While an insert replaces a key, both nodes are in the level-0 list for a
//! moment, the new one first: searches stop at the first (a `get` that
//! meets the older one first, at a level the new tower has not reached
//! yet, returns it: it is still in the map until marked), and an iterator
//! yields only keys above the last one it yielded. A remove that loses the
//! mark to such an insert searches again (the key is still there). The
//! replacement itself is two steps, as in crossbeam-skiplist, so it is not
//! atomic: if a remover takes the new node before the inserter has marked
//! the old one, the old one is visible again until it is marked. (An
//! atomic replace would swap the value inside one node instead.)
//!
//! # When a node is retired
//!
//! The count in a node's header is the number of levels at which it is
//! linked (one per link that points to it from a live predecessor) plus the
//! number of handles ([`Entry`]) to it. A link's reference is given up by
//! the thread whose compare-and-swap unlinked the node at that level; a
//! handle's when it drops. Whoever gives up the last one retires the node
//! into the map's domain with its deleter (`free_node`), and it is freed
//! after a grace period. So an `Entry` keeps its node (key and value)
//! alive after its guard has ended and after the node is removed; a node
//! whose count has reached zero is never counted again (`acquire` only
//! increments a non-zero count).
//!
//! # Invariants
//!
//! 1. **One unmarked link per level.** At each level, a node in that
//!    level's list is pointed to by exactly one unmarked link (its
//!    predecessor's) and by any number of marked links (of removed nodes);
//!    only a compare-and-swap on the unmarked one unlinks it, and it
//!    succeeds once. So each level's reference is given up exactly once.
//! 2. **Linked levels.** A node is linked at levels `0..k` for some `k`
//!    up to its height (built bottom up, stopping at the first level that
//!    fails), and code reads a node's link only at a level it was linked
//!    at (searches, the unlink in `remove`, iterators at level 0), except
//!    `mark` and the inserter. At such a level an unmarked link points to
//!    the node's live successor there (or is null), and a marked one to
//!    the successor it had when it was marked. Above `k`, a link holds what
//!    the inserter last proposed, marked or not, possibly a node freed
//!    since.
//! 3. **Marked pointers are never dereferenced.** A marked link keeps its
//!    pointer, and the node it points to may be unlinked, retired and freed
//!    while the removed node holding the link lives on (an `Entry` keeps
//!    it). The code reads only the tag of a marked value; it uses its
//!    address only as the new value of an unlink's compare-and-swap, which
//!    succeeds only while the removed node is still linked at that level,
//!    and so its successor too (invariant 1). Where a marked link could be
//!    met through an `Entry` (held, perhaps, since before the current
//!    section), the code reads it with [`Link::load_untagged`], which
//!    hands out no [`Shared`] for a marked value; `mark` sets the mark on
//!    the levels above `k` with [`Link::fetch_or_tag`], which returns only
//!    the previous tag.
//! 4. **One domain.** Every guard used with the map's links comes from
//!    `self.domain.read()`, inside the map's own methods; no guard and no
//!    handle of the domain ever leaves the map, so a map with its own
//!    domain ([`SkipMap::new`]) frees everything it retired by the time it
//!    is dropped, while its keys and values are still alive.
//! 5. **Type bounds.** Only [`SkipMap::insert`] and
//!    [`SkipMap::insert_new`] make nodes, and they require `K: Send` and
//!    `V: Send`; so every node the deleter may free on another thread holds
//!    values that may go there, and `get`, `range` and an `Entry`'s drop,
//!    which may retire nodes too, need no bounds.
//!
//! `Drop` needs no grace period: `&mut self` means no reader is left, so it
//! walks every level with [`Link::get_mut`], releasing one reference per
//! level a node is still linked at, and frees each node whose count reaches
//! zero directly (a node removed but still linked at some upper level is
//! freed there too).

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::ops::{Bound, ControlFlow, RangeBounds, RangeFull};
use std::ptr::{self, NonNull};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::Arc;
use std::time::Instant;

use ownrcu::{Domain, Guard, Link, Shared, Stats};

/// The tallest tower.
const MAX_HEIGHT: usize = 32;
/// The low bits of a node's count word hold its height minus one.
const HEIGHT_BITS: u32 = 5;
const HEIGHT_MASK: usize = (1 << HEIGHT_BITS) - 1;
/// One reference in the count word.
const ONE_REF: usize = 1 << HEIGHT_BITS;
/// The tag of a marked link: its node is removed.
const MARK: usize = 1;
/// An iterator renews its read section after this many entries.
const REPIN_EVERY: usize = 64;

/// What the count word of a freed node is overwritten with (debug builds
/// check for it before counting a node).
const POISONED_COUNT: usize = usize::MAX & !HEIGHT_MASK;

/// A node's header; its tower of `height` links follows it in the same
/// allocation, at `Node::tower_offset()`.
struct Node<K, V> {
    /// `refs << HEIGHT_BITS | (height - 1)`.
    count: AtomicUsize,
    key: K,
    value: V,
}

impl<K, V> Node<K, V> {
    /// The layout of a node with `height` links, and the offset of its
    /// tower (the same for every height).
    fn layout(height: usize) -> (Layout, usize) {
        let tower = Layout::array::<Link<Self>>(height).expect("at most 32 links");
        let (layout, offset) = Layout::new::<Self>()
            .extend(tower)
            .expect("a node's size fits in isize");
        (layout.pad_to_align(), offset)
    }

    fn tower_offset() -> usize {
        Self::layout(1).1
    }

    /// Allocates a node with `refs` references and null links.
    fn alloc(key: K, value: V, height: usize, refs: usize) -> NonNull<Self> {
        assert!((1..=MAX_HEIGHT).contains(&height));
        let (layout, _) = Self::layout(height);
        // SAFETY: the layout is not zero-sized (the header holds a word).
        // Zeroed bytes are null links (`Link`'s layout), so this makes the
        // tower's links, under the Link::null contract the map's links all
        // share (`SkipMap::with`): 1. a node is retired only once its count
        // is zero, so unlinked at every level; 2. only guards of the map's
        // domain are used with them, and nodes are retired into it.
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(node) = NonNull::new(raw.cast::<Self>()) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the allocation starts with room for a header, aligned for
        // it (the layout's alignment is at least the header's).
        unsafe {
            node.as_ptr().write(Node {
                count: AtomicUsize::new(refs << HEIGHT_BITS | (height - 1)),
                key,
                value,
            })
        };
        node
    }

    fn height(&self) -> usize {
        (self.count.load(Relaxed) & HEIGHT_MASK) + 1
    }

    /// Where link `level` of the node at `node` lies: address arithmetic
    /// only, which keeps `node`'s provenance (the whole allocation).
    fn link_ptr(node: *const Self, level: usize) -> *const Link<Self> {
        node.cast::<u8>()
            .wrapping_add(Self::tower_offset())
            .cast::<Link<Self>>()
            .wrapping_add(level)
    }

    /// Link `level` of `node`'s tower, for as long as `node` is valid.
    ///
    /// # Panics
    ///
    /// If `node` is null or `level` is not below its height.
    fn link<'g>(node: Shared<'g, Self>, level: usize) -> &'g Link<Self> {
        let height = node.as_ref().expect("a node").height();
        assert!(level < height, "level {level} of a tower of {height}");
        // SAFETY: link_unchecked's contract: 1. not null (checked above);
        // 2. `level` is below the height (checked above).
        unsafe { Self::link_unchecked(node, level) }
    }

    /// [`link`](Self::link) without its checks, for a search's inner loop.
    ///
    /// # Safety
    ///
    /// 1. `node` is not null.
    /// 2. `level` is below the node's height.
    unsafe fn link_unchecked<'g>(node: Shared<'g, Self>, level: usize) -> &'g Link<Self> {
        // SAFETY: every non-null `Shared<Node>` of this module points to a
        // node of `Node::alloc` (the only source of the pointers that enter
        // the map's links, and `Node` is private), valid for `'g` (the
        // `Shared`'s own promise; invariant 3 keeps marked values away from
        // here). Link `level` lies inside its allocation (1 and 2),
        // initialized, and `as_ptr` keeps the provenance of the
        // allocation's pointer, which went into the link as it was.
        unsafe { &*Self::link_ptr(node.as_ptr(), level) }
    }
}

/// The deleter of a node: drops its key and value and frees its memory.
///
/// # Safety
///
/// 1. `node` came from `Node::alloc` and is freed once.
/// 2. Nothing reads it any more: its grace period is over, it was never
///    published, or the map is being dropped and it is unreachable.
unsafe fn free_node<K, V>(node: *mut Node<K, V>) {
    // SAFETY: by 1 and 2, the node is allocated and ours alone; the key
    // and the value are moved out once and the header is left behind.
    let (key, value, height) = unsafe {
        let count = (*node).count.load(Relaxed);
        debug_assert_ne!(count, POISONED_COUNT, "a node freed twice");
        (*node).count.store(POISONED_COUNT, Relaxed);
        (
            ptr::read(ptr::addr_of!((*node).key)),
            ptr::read(ptr::addr_of!((*node).value)),
            (count & HEIGHT_MASK) + 1,
        )
    };
    // SAFETY: allocated by `Node::alloc` with this layout (the height in the
    // header is the one it was made with), freed once (1).
    unsafe { dealloc(node.cast(), Node::<K, V>::layout(height).0) };
    // Dropped after the memory is back: a panic in `K`'s or `V`'s drop
    // leaks nothing.
    drop((key, value));
}

/// Where a search stopped, at each level: the link it stopped on (its
/// predecessor's, unmarked when read) and the node that link pointed to
/// (the first node at that level past the target, or null). The levels
/// from `top` up were empty: the head's link and null.
struct Position<'g, K, V> {
    head: &'g [Link<Node<K, V>>; MAX_HEIGHT],
    top: usize,
    /// Set below `top` only.
    left: [&'g Link<Node<K, V>>; MAX_HEIGHT],
    /// Set below `top` only.
    right: [Shared<'g, Node<K, V>>; MAX_HEIGHT],
}

impl<'g, K, V> Position<'g, K, V> {
    /// The link the search stopped on at `level`.
    fn left(&self, level: usize) -> &'g Link<Node<K, V>> {
        if level < self.top {
            self.left[level]
        } else {
            &self.head[level]
        }
    }

    /// The node after [`left`](Self::left) at `level`.
    fn right(&self, level: usize) -> Shared<'g, Node<K, V>> {
        if level < self.top {
            self.right[level]
        } else {
            Shared::null()
        }
    }

    /// The node at level 0 if its key is `key`.
    fn found<Q>(&self, key: &Q) -> Option<Shared<'g, Node<K, V>>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let node = self.right(0);
        (node.as_ref()?.key.borrow() == key).then_some(node)
    }
}

/// A lock-free ordered map: a skip list of nodes retired by reference
/// count into an ownrcu [`Domain`] (module docs).
pub struct SkipMap<K, V> {
    head: [Link<Node<K, V>>; MAX_HEIGHT],
    /// The tallest tower made so far: where searches start.
    max_height: AtomicUsize,
    /// The map's own domain, or a handle of the global one; never handed
    /// out (invariant 4).
    domain: Domain,
    /// Written by every insert and remove: on lines of their own, away
    /// from what every search reads.
    hot: Hot,
}

/// The counters every update writes.
#[repr(align(128))]
struct Hot {
    len: AtomicUsize,
    /// Xorshift state for tower heights (never zero).
    seed: AtomicUsize,
}

impl<K, V> SkipMap<K, V> {
    /// Gives up one reference to `node`; the last one retires it.
    ///
    /// # Safety
    ///
    /// 1. The caller owns one reference to `node` (one level's, taken over
    ///    by the compare-and-swap that unlinked it there, or a handle's) and
    ///    gives it up now, once.
    /// 2. `node` is a node of this map.
    unsafe fn release(&self, node: Shared<'_, Node<K, V>>) {
        // AcqRel: the thread that retires the node sees every use of it
        // made by the holders of the other references (as `Arc`).
        if node.count.fetch_sub(ONE_REF, AcqRel) >> HEIGHT_BITS == 1 {
            // SAFETY: retire_with_unchecked's contract. 1. `free_node`
            // frees exactly a node of `Node::alloc` (our 2), on any thread;
            // the count reached zero once (our 1; `acquire` never revives it),
            // so it is retired once. 2. Unlinked: the count held one
            // reference per level it was linked at, each given up after the
            // exchange that unlinked it there, and no handle is left; the
            // links still pointing to it are marked, and marked pointers
            // are never dereferenced (invariant 3). 3. Readers got it only
            // under guards of `self.domain` (invariant 4). 4. `K: Send` and
            // `V: Send`: nodes are made only by `insert_node`, which
            // requires them (invariant 5). 5. The domain is the map's own,
            // torn down by the map's drop at the latest, while `K` and `V`
            // are alive (invariant 4), or the global one, which
            // `with_global` allows only for `'static` keys and values.
            unsafe {
                self.domain
                    .retire_with_unchecked(node.as_ptr().cast_mut(), free_node)
            };
        }
    }
}

impl<K: Ord, V> SkipMap<K, V> {
    /// An empty map with a domain of its own: what it retires is freed by
    /// its drop at the latest, so `K` and `V` need not be `'static`.
    pub fn new() -> Self {
        Self::with(Domain::new())
    }

    fn with(domain: Domain) -> Self {
        Self {
            // SAFETY: the Link::null contract, for the head and every
            // node's tower (module docs): 1. a node is retired (into
            // `domain`, with `free_node`) only when its count reaches zero,
            // so when it is unlinked at every level and no handle is left;
            // the links that still point to it then are marked links of
            // removed nodes, whose pointers are never dereferenced
            // (invariant 3); `Drop` frees directly only under `&mut self`.
            // 2. One domain: every guard passed to these links is
            // `self.domain.read()`, and nodes are retired only into it.
            head: std::array::from_fn(|_| unsafe { Link::null() }),
            max_height: AtomicUsize::new(1),
            hot: Hot {
                len: AtomicUsize::new(0),
                seed: AtomicUsize::new(0x2545_f491),
            },
            domain,
        }
    }

    /// The number of keys (exact when no other thread is changing the map).
    pub fn len(&self) -> usize {
        // A removal may be counted just before the insertion it undoes:
        // for a moment the count is below zero (wrapped).
        let len = self.hot.len.load(Relaxed);
        if len > isize::MAX as usize {
            0
        } else {
            len
        }
    }

    /// Whether [`len`](SkipMap::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry of `key`: a handle that keeps the key and value alive
    /// until it drops, even after a removal.
    pub fn get<Q>(&self, key: &Q) -> Option<Entry<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let guard = self.domain.read();
        loop {
            let node = self.find(key, &guard);
            if node.is_null() {
                return None;
            }
            // A node whose count is zero was removed since the search saw
            // it: search again.
            if let Some(entry) = self.acquire(node) {
                return Some(entry);
            }
        }
    }

    /// All entries in key order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        self.range(..)
    }

    /// The entries whose keys lie in `range`, in key order. The iterator
    /// holds a read section of the map's domain, renewed every
    /// `REPIN_EVERY` entries (so an iterator left unfinished holds up the
    /// map's grace periods until it is advanced or dropped).
    pub fn range<Q, R>(&self, range: R) -> Range<'_, K, V, Q, R>
    where
        K: Borrow<Q>,
        R: RangeBounds<Q>,
        Q: Ord + ?Sized,
    {
        Range {
            map: self,
            guard: self.domain.read(),
            range,
            last: None,
            yielded: 0,
            repins: 0,
            done: false,
            _key: PhantomData,
        }
    }

    /// The map's domain's counters.
    pub fn stats(&self) -> Stats {
        self.domain.stats()
    }

    /// Waits until everything the map has retired so far is freed.
    ///
    /// # Panics
    ///
    /// If this thread is inside one of the map's read sections (an
    /// unfinished [`Range`] of this map).
    pub fn barrier(&self) {
        self.domain.barrier();
    }

    /// Where searches start: the tallest tower, less the empty top levels.
    fn start_level(&self) -> usize {
        let mut level = self.max_height.load(Relaxed);
        while level > 0 && self.head[level - 1].peek().0.is_null() {
            level -= 1;
        }
        level
    }

    /// Link `level` of the head (`pred` is null) or of node `pred`.
    ///
    /// # Safety
    ///
    /// `pred` is null, or linked at `level` or above (invariant 2: its
    /// height is above `level`).
    unsafe fn link_of<'g>(
        &'g self,
        pred: Shared<'g, Node<K, V>>,
        level: usize,
    ) -> &'g Link<Node<K, V>> {
        if pred.is_null() {
            &self.head[level]
        } else {
            // SAFETY: link_unchecked's contract: 1. not null; 2. ours.
            unsafe { Node::link_unchecked(pred, level) }
        }
    }

    /// Finds, at every level, the first node whose key is `past` the target
    /// (`past` is false for a prefix of the keys, then true), helping unlink
    /// every marked node it meets.
    fn search<'g>(&'g self, past: impl Fn(&K) -> bool, guard: &'g Guard<'_>) -> Position<'g, K, V> {
        let mut pos = Position {
            head: &self.head,
            top: 0,
            left: [&self.head[0]; MAX_HEIGHT],
            right: [Shared::null(); MAX_HEIGHT],
        };
        self.search_again(&mut pos, past, guard);
        pos
    }

    /// [`search`](Self::search) into an existing position.
    fn search_again<'g>(
        &'g self,
        pos: &mut Position<'g, K, V>,
        past: impl Fn(&K) -> bool,
        guard: &'g Guard<'_>,
    ) {
        pos.top = self.walk(past, guard, |level, link, curr| {
            pos.left[level] = link;
            pos.right[level] = curr;
            ControlFlow::Continue(())
        });
    }

    /// The first node at level 0 whose key is `past` the target, as
    /// [`search`](Self::search) finds it, without recording the levels.
    fn first_past<'g>(
        &'g self,
        past: impl Fn(&K) -> bool,
        guard: &'g Guard<'_>,
    ) -> Shared<'g, Node<K, V>> {
        let mut first = Shared::null();
        self.walk(past, guard, |level, _, curr| {
            if level == 0 {
                first = curr;
            }
            ControlFlow::Continue(())
        });
        first
    }

    /// The node of `key`, or null: the search of
    /// [`first_past`](Self::first_past), which stops at the first level
    /// where it meets that node. The walk found the node's link at that
    /// level unmarked, and a remove marks the tower top down, so level 0
    /// was unmarked then too: the key was in the map at that moment.
    fn find<'g, Q>(&'g self, key: &Q, guard: &'g Guard<'_>) -> Shared<'g, Node<K, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let mut found = Shared::null();
        self.walk(
            |k| k.borrow() >= key,
            guard,
            |_, _, curr| match curr.as_ref() {
                Some(node) if node.key.borrow() == key => {
                    found = curr;
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            },
        );
        found
    }

    /// The descent of a search: at each level from the top down, follows
    /// the links while the keys are not `past` the target, helping unlink
    /// marked nodes, and calls `record(level, link, curr)` with the link it
    /// stopped on (unmarked when read) and the node it points to; `curr`'s
    /// own link at that level was unmarked when read too. A pass that meets
    /// a removed predecessor starts over from the top (recording each level
    /// again); `record` returning `Break` ends the walk there. Returns the
    /// top level of the last pass.
    #[inline(always)]
    fn walk<'g>(
        &'g self,
        past: impl Fn(&K) -> bool,
        guard: &'g Guard<'_>,
        mut record: impl FnMut(usize, &'g Link<Node<K, V>>, Shared<'g, Node<K, V>>) -> ControlFlow<()>,
    ) -> usize {
        debug_assert!(guard.domain() == &self.domain, "a guard of another domain");
        'search: loop {
            let top = self.start_level();
            // The last node stepped onto, at this level or above; null
            // for the head.
            let mut pred = Shared::null();
            let mut level = top;
            while level > 0 {
                level -= 1;
                // SAFETY: link_of's contract: `pred` came from an unmarked
                // link at this level or above, so it is linked there
                // (invariant 2).
                let mut link = unsafe { self.link_of(pred, level) };
                let mut curr = link.load(guard);
                if curr.tag() == MARK {
                    // `pred` was removed since we stepped onto it.
                    continue 'search;
                }
                while let Some(node) = curr.as_ref() {
                    // SAFETY: link_unchecked's contract: 1. `curr` is not
                    // null (`as_ref` above); 2. it came from an unmarked link
                    // at `level` of the head or of a node linked there, so it
                    // is linked at `level`, below its height (invariant 2).
                    let next = unsafe { Node::link_unchecked(curr, level) };
                    let succ = next.load(guard);
                    if succ.tag() == MARK {
                        match self.unlink(link, curr, succ, guard) {
                            Some(succ) => {
                                curr = succ;
                                continue;
                            }
                            // `link` changed: its node was removed, or a
                            // node went in before `curr`.
                            None => continue 'search,
                        }
                    }
                    if past(&node.key) {
                        break;
                    }
                    pred = curr;
                    link = next;
                    curr = succ;
                }
                if record(level, link, curr).is_break() {
                    break;
                }
            }
            return top;
        }
    }

    /// `curr`, pointed to by the unmarked `link`, is marked at this level
    /// (`succ` is its link here, marked): swings `link` past it. On success
    /// gives up that level's reference and returns the successor.
    fn unlink<'g>(
        &self,
        link: &Link<Node<K, V>>,
        curr: Shared<'g, Node<K, V>>,
        succ: Shared<'g, Node<K, V>>,
        guard: &'g Guard<'_>,
    ) -> Option<Shared<'g, Node<K, V>>> {
        // While `link` still points to `curr`, `curr` is linked at this
        // level, so `succ` is too (invariant 1): a valid node, or null.
        let succ = succ.with_tag(0);
        link.compare_exchange(curr, succ, guard).ok()?;
        // SAFETY: release's contract: 1. our exchange removed the one
        // unmarked link to `curr` at this level (invariant 1), whose
        // reference is now ours to give up; 2. a node of this map.
        unsafe { self.release(curr) };
        Some(succ)
    }

    /// A handle to `node`, unless its count has reached zero (it is
    /// retired, though still readable under the guard it was loaded with).
    fn acquire(&self, node: Shared<'_, Node<K, V>>) -> Option<Entry<'_, K, V>> {
        let count = &node.as_ref()?.count;
        let mut now = count.load(Relaxed);
        loop {
            debug_assert_ne!(now, POISONED_COUNT, "counted a freed node");
            if now >> HEIGHT_BITS == 0 {
                return None;
            }
            // Relaxed: the node's contents were published to us by the
            // `Acquire` load that found it; the count orders nothing else.
            match count.compare_exchange_weak(now, now + ONE_REF, Relaxed, Relaxed) {
                Ok(_) => {
                    let node = NonNull::new(node.as_ptr().cast_mut()).expect("not null");
                    return Some(Entry { map: self, node });
                }
                Err(found) => now = found,
            }
        }
    }

    /// Marks every link of `node`'s tower, top down; true if this call
    /// marked level 0, that is, removed the key.
    fn mark(node: Shared<'_, Node<K, V>>, guard: &Guard<'_>) -> bool {
        let height = node.height();
        for level in (1..height).rev() {
            // Only the tag comes back: above the levels `node` was linked
            // at, the link may point to a node freed since (invariants 2
            // and 3), which must not be handed out as a `Shared`.
            Node::link(node, level).fetch_or_tag(MARK);
        }
        // Level 0 was unmarked when a search found `node` in this section,
        // so its value, marked or not, is a successor linked since.
        Node::link(node, 0).fetch_or(MARK, guard).tag() == 0
    }

    /// The first node after `last` at level 0, helping unlink removed ones;
    /// from a removed `last`, the first node past its key.
    fn successor<'g>(
        &'g self,
        last: &Entry<'_, K, V>,
        guard: &'g Guard<'_>,
    ) -> Shared<'g, Node<K, V>> {
        let link = Node::link(last.shared(), 0);
        let past_last = |k: &K| k > last.key();
        // `load_untagged`, not `load`: `last` is held by its count, perhaps
        // since before this section, so if it was removed its marked link
        // may point to a node freed since (invariant 3); an unmarked link
        // of a node that is not removed points to its successor, linked
        // inside this section (`Link::null`'s contract 1).
        let Ok(mut curr) = link.load_untagged(guard) else {
            return self.first_past(past_last, guard);
        };
        while !curr.is_null() {
            let succ = Node::link(curr, 0).load(guard);
            if succ.tag() != MARK {
                return curr;
            }
            match self.unlink(link, curr, succ, guard) {
                Some(next) => curr = next,
                None => return self.first_past(past_last, guard),
            }
        }
        curr
    }

    /// Xorshift, with towers growing at most a level or so above the
    /// tallest in use. Racing updates of the seed only repeat a height.
    fn random_height(&self) -> usize {
        let mut x = self.hot.seed.load(Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.hot.seed.store(x, Relaxed);
        let mut height = (x.trailing_zeros() as usize + 1).min(MAX_HEIGHT);
        while height >= 4 && self.head[height - 2].peek().0.is_null() {
            height -= 1;
        }
        // Written only when it grows: every search reads this line.
        if height > self.max_height.load(Relaxed) {
            self.max_height.fetch_max(height, Relaxed);
        }
        height
    }
}

impl<K: Ord + Send + 'static, V: Send + 'static> SkipMap<K, V> {
    /// An empty map whose nodes are retired into [`Domain::global`], which
    /// is never torn down: hence the `'static` bounds.
    pub fn with_global() -> Self {
        Self::with(Domain::global().clone())
    }
}

impl<K: Ord + Send, V: Send> SkipMap<K, V> {
    /// Inserts `key` with `value`, replacing the entry of `key` if there is
    /// one; returns the replaced entry (removed, still readable). Not atomic
    /// against a concurrent `remove` of the same key (module docs).
    pub fn insert(&self, key: K, value: V) -> Option<Entry<'_, K, V>> {
        match self.insert_node(key, value, true) {
            Ok((_, replaced)) => replaced,
            Err(_) => unreachable!("an insert that replaces always goes in"),
        }
    }

    /// Inserts `key` with `value` if `key` is absent: `Ok` with the new
    /// entry; otherwise `Err` with the entry found, and `value` is dropped.
    pub fn insert_new(&self, key: K, value: V) -> Result<Entry<'_, K, V>, Entry<'_, K, V>> {
        self.insert_node(key, value, false).map(|(entry, _)| entry)
    }

    /// Removes `key`; returns its entry (still readable) if this call
    /// removed it.
    pub fn remove<Q>(&self, key: &Q) -> Option<Entry<'_, K, V>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let guard = self.domain.read();
        loop {
            let pos = self.search(|k| k.borrow() >= key, &guard);
            let node = pos.found(key)?;
            let Some(entry) = self.acquire(node) else {
                continue; // removed since the search: search again
            };
            if !Self::mark(node, &guard) {
                // Marked first by another remover (the key is gone), or by
                // an insert that replaced it (the key never was): look
                // again.
                continue;
            }
            self.hot.len.fetch_sub(1, Relaxed);
            // Unlink it top down where the search saw it; anywhere else
            // (a race, or a level it was linked at later), leave it to a
            // search, which unlinks every marked node it meets.
            for level in (0..node.height()).rev() {
                // The search checked `node` unmarked at `level`, so its link
                // there was marked since, in this section: a live successor.
                let unlinked = pos.right(level) == node && {
                    let succ = Node::link(node, level).load(&guard).with_tag(0);
                    pos.left(level).compare_exchange(node, succ, &guard).is_ok()
                };
                if !unlinked {
                    self.search(|k| k.borrow() >= key, &guard);
                    break;
                }
                // SAFETY: release's contract: 1. our exchange removed the
                // one unmarked link to `node` at `level` (invariant 1);
                // 2. a node of this map.
                unsafe { self.release(node) };
            }
            return Some(entry);
        }
    }

    /// Inserts a node for `key` unless `replace` is false and `key` is
    /// present: `Ok` with the new entry and the entry it replaced, if any;
    /// `Err` with the entry found.
    #[allow(clippy::type_complexity)]
    fn insert_node(
        &self,
        key: K,
        value: V,
        replace: bool,
    ) -> Result<(Entry<'_, K, V>, Option<Entry<'_, K, V>>), Entry<'_, K, V>> {
        let guard = self.domain.read();
        let mut pos = self.search(|k| k >= &key, &guard);
        if !replace {
            if let Some(entry) = pos.found(&key).and_then(|node| self.acquire(node)) {
                return Err(entry);
            }
        }
        let height = self.random_height();
        // Two references: the level-0 link, and the handle we return.
        let node = Node::alloc(key, value, height, 2);
        // Freed directly if it never goes in (a key comparison panics, or
        // another thread inserts the key first).
        let unpublished = Unpublished(node.as_ptr());
        // SAFETY: Shared::from_ptr's contract: 1. a live node, whose key and
        // value nothing mutates, freed either by `unpublished` (after the
        // last use of `new`) or by its count's last release, which our
        // handle holds off until we return. 2. Into the map's links: their
        // contract (`SkipMap::with`) covers it.
        let new = unsafe { Shared::from_ptr(node.as_ptr()) };
        let key = &new.key;
        loop {
            let succ = pos.right(0);
            Node::link(new, 0).store(succ);
            if pos.left(0).compare_exchange(succ, new, &guard).is_ok() {
                break;
            }
            self.search_again(&mut pos, |k| k >= key, &guard);
            if !replace {
                if let Some(entry) = pos.found(key).and_then(|node| self.acquire(node)) {
                    drop(unpublished);
                    return Err(entry);
                }
            }
        }
        mem::forget(unpublished);
        self.hot.len.fetch_add(1, Relaxed);
        let entry = Entry { map: self, node };
        // The node we went in before, if it has our key: replaced.
        let replaced = pos.found(key).and_then(|old| {
            let old_entry = self.acquire(old)?;
            Self::mark(old, &guard).then(|| {
                self.hot.len.fetch_sub(1, Relaxed);
                old_entry
            })
        });
        self.build_tower(new, height, &mut pos, &guard);
        Ok((entry, replaced))
    }

    /// Links `new`, already in the list at level 0, at levels 1 and up of
    /// its tower, bottom up. Stops early if it is marked meanwhile; the
    /// upper levels only speed up searches.
    fn build_tower<'g>(
        &'g self,
        new: Shared<'g, Node<K, V>>,
        height: usize,
        pos: &mut Position<'g, K, V>,
        guard: &'g Guard<'_>,
    ) {
        let key = &new.key;
        'build: for level in 1..height {
            let own = Node::link(new, level);
            let mut retried = false;
            loop {
                let (link, succ) = (pos.left(level), pos.right(level));
                // Null, or a successor this section wrote: valid here.
                let next = own.load(guard);
                if next.tag() == MARK {
                    break 'build; // being removed
                }
                if succ.as_ref().is_some_and(|s| s.key == *key) {
                    // Another node with our key: one we replace (marked; a
                    // search unlinks it) or one replacing us (we will be
                    // marked). Never link in front of it.
                    if mem::replace(&mut retried, true) {
                        break 'build;
                    }
                    self.search_again(pos, |k| k >= key, guard);
                    continue;
                }
                if own.compare_exchange(next, succ, guard).is_err() {
                    break 'build; // marked meanwhile
                }
                // The reference of the link about to point to `new`; never
                // the last one while our handle holds one.
                new.count.fetch_add(ONE_REF, Relaxed);
                if link.compare_exchange(succ, new, guard).is_ok() {
                    break;
                }
                new.count.fetch_sub(ONE_REF, Relaxed);
                self.search_again(pos, |k| k >= key, guard);
            }
        }
        if Node::link(new, height - 1).load(guard).tag() == MARK {
            // Removed while we built it: a level we linked after its
            // remover's pass is unlinked by a search (module docs).
            self.search(|k| k >= key, guard);
        }
    }
}

impl<K: Ord, V> Default for SkipMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Drop for SkipMap<K, V> {
    /// Frees every node still linked at some level, directly: `&mut self`
    /// means no method runs, and no handle exists (handles borrow the map).
    /// Retired nodes are freed by the domain (the map's own: right after
    /// this, as its last handle drops).
    fn drop(&mut self) {
        for level in (0..MAX_HEIGHT).rev() {
            let (mut node, _) = self.head[level].get_mut();
            while !node.is_null() {
                // SAFETY: `node` is still linked at `level` (reached from
                // the head through links of nodes still linked there), so
                // its count holds this level's reference and it is not
                // freed; `level` is below its height; `&mut self`: nothing
                // else touches it.
                let (next, count) = unsafe {
                    let link = &mut *Node::link_ptr(node, level).cast_mut();
                    (link.get_mut().0, (*node).count.get_mut())
                };
                *count -= ONE_REF;
                if *count >> HEIGHT_BITS == 0 {
                    // SAFETY: free_node's contract: 1. its count reached
                    // zero here, once: it was linked at no other level
                    // still to walk (each holds a reference) and no handle
                    // exists; 2. no reader is left (`&mut self`).
                    unsafe { free_node(node) };
                }
                node = next;
            }
        }
    }
}

impl<K, V> fmt::Debug for SkipMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SkipMap")
            .field("len", &self.hot.len.load(Relaxed))
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// A node allocated by `insert_node` and not yet published: freed on drop.
struct Unpublished<K, V>(*mut Node<K, V>);

impl<K, V> Drop for Unpublished<K, V> {
    fn drop(&mut self) {
        // SAFETY: free_node's contract: 1. from `Node::alloc`, and dropped
        // once (`mem::forget` once published); 2. never linked, so no other
        // thread has seen it.
        unsafe { free_node(self.0) };
    }
}

/// A handle to a key and its value: holds a reference to the node, so both
/// stay valid until it drops, whatever happens to the map meanwhile
/// (`is_removed` tells). Dropping the last handle to a removed node retires
/// it.
pub struct Entry<'m, K, V> {
    map: &'m SkipMap<K, V>,
    /// A node of `map` whose count includes this handle's reference.
    node: NonNull<Node<K, V>>,
}

impl<K, V> Entry<'_, K, V> {
    fn shared(&self) -> Shared<'_, Node<K, V>> {
        // SAFETY: Shared::from_ptr's contract: 1. the node's count includes
        // our reference, so it is not retired while `self` is borrowed,
        // and its key and value are never mutated; 2. it goes into no link.
        unsafe { Shared::from_ptr(self.node.as_ptr()) }
    }

    fn node(&self) -> &Node<K, V> {
        self.shared().as_ref().expect("a handle's node")
    }

    /// The key.
    pub fn key(&self) -> &K {
        &self.node().key
    }

    /// The value.
    pub fn value(&self) -> &V {
        &self.node().value
    }

    /// Whether the entry has been removed from the map (or replaced).
    pub fn is_removed(&self) -> bool {
        Node::link(self.shared(), 0).peek().1 == MARK
    }

    /// The bytes of its node's allocation (header and tower).
    fn node_bytes(&self) -> usize {
        Node::<K, V>::layout(self.node().height()).0.size()
    }
}

impl<K, V> Clone for Entry<'_, K, V> {
    fn clone(&self) -> Self {
        // Relaxed: we hold a reference, so the count is not zero.
        self.node().count.fetch_add(ONE_REF, Relaxed);
        Self {
            map: self.map,
            node: self.node,
        }
    }
}

impl<K, V> Drop for Entry<'_, K, V> {
    fn drop(&mut self) {
        // SAFETY: release's contract: 1. the handle's own reference, given
        // up once, as it drops; 2. a node of `self.map`.
        unsafe { self.map.release(self.shared()) };
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Entry<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Entry")
            .field(self.key())
            .field(self.value())
            .finish()
    }
}

/// An iterator over entries in key order, from [`SkipMap::range`].
pub struct Range<'m, K, V, Q: ?Sized, R> {
    map: &'m SkipMap<K, V>,
    guard: Guard<'m>,
    range: R,
    /// The entry yielded last: our reference keeps it (and its place in
    /// the list, while it is not removed) across a repin.
    last: Option<Entry<'m, K, V>>,
    yielded: usize,
    repins: usize,
    done: bool,
    _key: PhantomData<fn(&Q)>,
}

/// An iterator over all entries, from [`SkipMap::iter`].
pub type Iter<'m, K, V> = Range<'m, K, V, K, RangeFull>;

impl<K, V, Q: ?Sized, R> Range<'_, K, V, Q, R> {
    /// How many times it renewed its read section.
    pub fn repins(&self) -> usize {
        self.repins
    }
}

impl<'m, K, V, Q, R> Iterator for Range<'m, K, V, Q, R>
where
    K: Ord + Borrow<Q>,
    R: RangeBounds<Q>,
    Q: Ord + ?Sized,
{
    type Item = Entry<'m, K, V>;

    fn next(&mut self) -> Option<Entry<'m, K, V>> {
        if self.done {
            return None;
        }
        if self.yielded > 0 && self.yielded % REPIN_EVERY == 0 {
            // Nothing loaded under the old section is kept: `last` is held
            // by its count. (False if another guard of the map's domain is
            // alive on this thread: then the section just goes on.)
            self.repins += usize::from(self.guard.repin());
        }
        let (map, guard) = (self.map, &self.guard);
        let mut next = match &self.last {
            None => {
                let start = self.range.start_bound();
                map.search(|k| after_start(k.borrow(), start), guard).right[0]
            }
            Some(last) => map.successor(last, guard),
        };
        while let Some(node) = next.as_ref() {
            if let Some(last) = &self.last {
                if node.key <= *last.key() {
                    // The node `last` was inserted in front of, to replace
                    // it (module docs): it is being removed.
                    next = map.search(|k| k > last.key(), guard).right[0];
                    continue;
                }
            }
            if !before_end(node.key.borrow(), self.range.end_bound()) {
                break;
            }
            if let Some(entry) = map.acquire(next) {
                self.yielded += 1;
                self.last = Some(entry.clone());
                return Some(entry);
            }
            // Retired since we reached it (still readable in this section):
            // go on from its key.
            next = map.search(|k| k > &node.key, guard).right[0];
        }
        self.done = true;
        self.last = None;
        None
    }
}

impl<K, V, Q: ?Sized, R> fmt::Debug for Range<'_, K, V, Q, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Range")
            .field("yielded", &self.yielded)
            .field("repins", &self.repins)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

fn after_start<Q: Ord + ?Sized>(key: &Q, start: Bound<&Q>) -> bool {
    match start {
        Bound::Included(bound) => key >= bound,
        Bound::Excluded(bound) => key > bound,
        Bound::Unbounded => true,
    }
}

fn before_end<Q: Ord + ?Sized>(key: &Q, end: Bound<&Q>) -> bool {
    match end {
        Bound::Included(bound) => key <= bound,
        Bound::Excluded(bound) => key < bound,
        Bound::Unbounded => true,
    }
}

// ---------------------------------------------------------------------------
// The demo.
// ---------------------------------------------------------------------------

const LIVE: u64 = 0x11fe_11fe_11fe_11fe;
const POISON: u64 = 0xdead_dead_dead_dead;

/// A value that counts its drops, checks it is dropped once, and poisons
/// itself when dropped, so a value read after its node was freed is caught
/// (under Miri and valgrind the read itself is reported).
pub struct Counted {
    magic: u64,
    key: u64,
    drops: Arc<AtomicUsize>,
}

impl Counted {
    /// A value for `key`.
    pub fn new(key: u64, drops: &Arc<AtomicUsize>) -> Self {
        Self {
            magic: LIVE,
            key,
            drops: drops.clone(),
        }
    }

    /// The key it was made for, after checking it is alive.
    pub fn key(&self) -> u64 {
        // SAFETY: a read of our own field; volatile so it is really done.
        let magic = unsafe { ptr::read_volatile(&self.magic) };
        assert_eq!(magic, LIVE, "read a value whose node was freed");
        self.key
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert_eq!(
            self.magic, LIVE,
            "a value dropped twice (its node freed twice)"
        );
        self.drops.fetch_add(1, Relaxed);
        // SAFETY: a write to our own field.
        unsafe { ptr::write_volatile(&mut self.magic, POISON) };
    }
}

/// What [`run`] did.
#[derive(Debug)]
pub struct Report {
    /// Values made: the prefill and one per `insert` and `insert_new`.
    pub created: u64,
    /// Keys that went in new (prefill, `insert`s that replaced nothing,
    /// `insert_new`s that found nothing).
    pub inserted: u64,
    /// `insert`s that replaced an entry.
    pub replaced: u64,
    /// `remove`s that removed an entry.
    pub removed: u64,
    /// `get`s that found their key.
    pub hits: u64,
    /// Entries yielded by the range scans.
    pub scanned: u64,
    /// Entries read through a handle kept across other operations, some
    /// removed meanwhile.
    pub held_reads: u64,
    /// Of those, entries that had been removed.
    pub held_removed: u64,
    /// Wrong values, out-of-order or out-of-range entries (must be 0).
    pub errors: u64,
    /// `len()` at the end; equal to a full iteration's count.
    pub left: u64,
    /// Repins of the final full iteration.
    pub repins: u64,
    /// Values dropped once the map's retirements were all freed
    /// (`barrier`), before the map's drop.
    pub dropped_before_drop: u64,
    /// Values dropped after the map's drop (must be `created`).
    pub dropped: u64,
    /// Whether the map used the global domain (whose counters, in `stats`,
    /// then include every other user's).
    pub global: bool,
    /// The domain's counters after `barrier()`.
    pub stats: Stats,
}

/// `threads` threads each run `ops` operations on keys `0..range` of a map
/// prefilled with the even keys: `insert` 25 % (replacing), `insert_new`
/// 10 %, `remove` 25 %, `get` 30 %, a scan of up to 16 keys 10 %; each keeps
/// one entry from a `get` for a while and rereads it. Then one full
/// iteration checks order and values against `len()`, `barrier()` frees
/// what was retired, and the map is dropped. With `global`, the map
/// retires into the global domain (`barrier` then waits for that one).
pub fn run(threads: u64, ops: u64, range: u64, global: bool) -> Report {
    let drops = Arc::new(AtomicUsize::new(0));
    let map = if global {
        SkipMap::with_global()
    } else {
        SkipMap::new()
    };
    let mut inserted = 0;
    for key in (0..range).step_by(2) {
        inserted += u64::from(map.insert(key, Counted::new(key, &drops)).is_none());
    }
    let created = inserted;
    let wrong = |key: u64, value: &Counted| u64::from(value.key() != key);
    let counts: Vec<[u64; 10]> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (map, drops) = (&map, &drops);
                s.spawn(move || {
                    // [created, inserted by `insert`, replaced, removed,
                    //  hits, scanned, held reads, held removed, errors,
                    //  inserted by `insert_new`]
                    let mut c = [0_u64; 10];
                    let mut held: Option<Entry<'_, u64, Counted>> = None;
                    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ (t + 1);
                    for i in 0..ops {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let key = x % range;
                        match (x >> 32) % 20 {
                            0..=4 => {
                                c[0] += 1;
                                match map.insert(key, Counted::new(key, drops)) {
                                    Some(old) => {
                                        c[2] += 1;
                                        c[8] +=
                                            wrong(key, old.value()) + u64::from(!old.is_removed());
                                    }
                                    None => c[1] += 1,
                                }
                            }
                            5 | 6 => {
                                c[0] += 1;
                                match map.insert_new(key, Counted::new(key, drops)) {
                                    Ok(new) => {
                                        c[9] += 1;
                                        c[8] += wrong(key, new.value());
                                    }
                                    Err(found) => c[8] += wrong(key, found.value()),
                                }
                            }
                            7..=11 => {
                                if let Some(old) = map.remove(&key) {
                                    c[3] += 1;
                                    c[8] += wrong(key, old.value()) + u64::from(!old.is_removed());
                                }
                            }
                            12..=17 => {
                                if let Some(entry) = map.get(&key) {
                                    c[4] += 1;
                                    c[8] += wrong(key, entry.value());
                                    if i % 8 == 0 {
                                        held = Some(entry);
                                    }
                                }
                            }
                            _ => {
                                let mut prev = None;
                                for entry in map.range(key..key + 16) {
                                    c[5] += 1;
                                    let k = *entry.key();
                                    c[8] += wrong(k, entry.value());
                                    c[8] += u64::from(prev.is_some_and(|p| p >= k));
                                    c[8] += u64::from(!(key..key + 16).contains(&k));
                                    prev = Some(k);
                                }
                            }
                        }
                        if let Some(entry) = &held {
                            c[6] += 1;
                            c[7] += u64::from(entry.is_removed());
                            c[8] += wrong(*entry.key(), entry.value());
                        }
                    }
                    c
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let sum = |i: usize| counts.iter().map(|c| c[i]).sum::<u64>();
    let mut errors = sum(8);
    let (mut seen, mut prev) = (0_u64, None);
    let mut all = map.iter();
    for entry in all.by_ref() {
        seen += 1;
        let k = *entry.key();
        errors += wrong(k, entry.value()) + u64::from(prev.is_some_and(|p| p >= k));
        prev = Some(k);
    }
    let repins = all.repins() as u64;
    drop(all);
    let left = map.len() as u64;
    errors += u64::from(seen != left);
    map.barrier();
    let stats = map.stats();
    let dropped_before_drop = drops.load(Relaxed) as u64;
    drop(map);
    if global {
        // Nodes the map retired into the global domain after the barrier
        // (none are expected, but a last `Entry` drop could have).
        Domain::global().barrier();
    }
    Report {
        created: created + sum(0),
        inserted: inserted + sum(1) + sum(9),
        replaced: sum(2),
        removed: sum(3),
        hits: sum(4),
        scanned: sum(5),
        held_reads: sum(6),
        held_removed: sum(7),
        errors,
        left,
        repins,
        dropped_before_drop,
        dropped: drops.load(Relaxed) as u64,
        global,
        stats,
    }
}

/// Checks what every run must satisfy; panics otherwise.
pub fn check(r: &Report) {
    assert_eq!(
        r.errors, 0,
        "a wrong value, or entries out of order or range"
    );
    assert_eq!(r.left, r.inserted - r.removed, "a key lost or duplicated");
    // Every node was freed exactly once: each holds one value, which
    // counts its drop and panics on a second one.
    assert_eq!(r.dropped, r.created, "a node not freed (or freed twice)");
    // What the map's own domain was given, it freed by the barrier; the
    // rest was freed directly (nodes that lost an `insert_new` race, and
    // the map's drop).
    if !r.global {
        assert_eq!((r.stats.pending, r.stats.freed), (0, r.stats.retired));
        assert!(r.stats.freed <= r.dropped_before_drop);
    }
}

/// Bytes per entry of a `SkipMap<u64, u64>` of `n` keys: the nodes'
/// allocations (header and tower, as requested from the allocator) over
/// `n`, and the mean tower height.
pub fn bytes_per_entry(n: u64) -> (f64, f64) {
    let map = SkipMap::new();
    for key in 0..n {
        map.insert(key, key);
    }
    let (mut bytes, mut links) = (0, 0);
    for entry in map.iter() {
        bytes += entry.node_bytes();
        links += entry.node().height();
    }
    (bytes as f64 / n as f64, links as f64 / n as f64)
}

pub fn main() {
    let (threads, ops, range, sized) = if cfg!(miri) {
        (2, 40, 16, 64)
    } else {
        (4, 50_000, 1_000, 50_000)
    };
    for global in [false, true] {
        let started = Instant::now();
        let r = run(threads, ops, range, global);
        let elapsed = started.elapsed();
        check(&r);
        println!(
            "{} domain: {threads} threads x {ops} ops on {range} keys in {elapsed:.1?}: \
             {} new keys, {} replaced, {} removed, {} hits, {} scanned; \
             {} reads of held entries ({} of them removed)",
            if global { "global" } else { "own" },
            r.inserted,
            r.replaced,
            r.removed,
            r.hits,
            r.scanned,
            r.held_reads,
            r.held_removed,
        );
        println!(
            "  {} keys left ({} repins in the final iteration); {} values made, {} dropped \
             after barrier(), {} after the map's drop; domain: {} retired, {} freed",
            r.left,
            r.repins,
            r.created,
            r.dropped_before_drop,
            r.dropped,
            r.stats.retired,
            r.stats.freed,
        );
    }
    let (bytes, height) = bytes_per_entry(sized);
    println!(
        "SkipMap<u64, u64>: {bytes:.1} bytes per entry in nodes (header {} + {height:.2} links \
         of 8 on average), map itself {} bytes",
        mem::size_of::<Node<u64, u64>>(),
        mem::size_of::<SkipMap<u64, u64>>(),
    );
}
