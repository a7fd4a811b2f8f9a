//! A Harris–Michael sorted linked list and a Michael hash map built from it
//! (the `HMList` and `HashMap` of kaist-cp/smr-benchmark), on
//! [`ownrcu::Atomic`]: `cargo run --release --example map`.
//!
//! The list keeps nodes sorted by key. Removing a node takes two steps:
//!
//! 1. *mark* it: set the tag bit of its own `next` pointer (`fetch_or(1)`).
//!    From then on the node is logically gone, and no compare-and-swap on
//!    its `next` can succeed (they all expect an untagged value), so nothing
//!    can be linked after a removed node;
//! 2. *unlink* it: swing its predecessor's `next` from it to its successor.
//!    Whoever succeeds (the remover, or any traversal that meets the marked
//!    node: Michael's "helping") gets the node back `Detached` and retires it.
//!
//! Traversals run inside one read guard: a node they hold may be marked and
//! unlinked meanwhile, but it is freed only after they leave the section.
//! That also rules out ABA on the compare-and-swaps: an address they compare
//! against cannot be reused while they hold it.
//!
//! One `unsafe` block (in `find`): the unlink moves the successor's link out
//! of the marked node into its predecessor, which the types cannot follow.
//! Insertion (`insert_before`) and marking (`fetch_or`) are safe.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::mem::{self, ManuallyDrop};
use std::time::Instant;

use ownrcu::{Atomic, Domain, Guard, Owned, Shared, Stats};

struct Node<K, V> {
    key: K,
    value: V,
    /// Tag 1: this node is removed (marked). In `ManuallyDrop`: once the
    /// node is unlinked its successor's link has moved to its predecessor,
    /// so dropping the node must not drop the successor.
    next: ManuallyDrop<Atomic<Node<K, V>>>,
}

/// Where a key is, or would be: `prev` points (untagged) to `cur`, the first
/// node whose key is not less than the key; `found` if it is equal.
struct Position<'g, K, V> {
    found: bool,
    prev: &'g Atomic<Node<K, V>>,
    cur: Shared<'g, Node<K, V>>,
}

/// A lock-free sorted list of key-value pairs (Harris–Michael). It holds no
/// domain: every operation takes a guard, and the list binds to that guard's
/// domain on first use (its unlinked nodes are retired there).
pub struct List<K, V> {
    head: Atomic<Node<K, V>>,
}

impl<K, V> List<K, V>
where
    K: Ord + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// An empty list.
    pub fn new() -> Self {
        Self {
            head: Atomic::null(),
        }
    }

    /// Finds `key`'s position, unlinking (and retiring) every marked node
    /// on the way.
    fn find<'g, Q>(&'g self, key: &Q, guard: &'g Guard<'_>) -> Position<'g, K, V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        'retry: loop {
            let mut prev = &self.head;
            let mut cur = prev.load(guard);
            loop {
                let Some(node) = cur.as_ref() else {
                    return Position {
                        found: false,
                        prev,
                        cur,
                    };
                };
                let next = node.next.load(guard);
                if next.tag() == 1 {
                    // `node` is marked: unlink it from `prev`.
                    let succ = next.with_tag(0);
                    // SAFETY: 1. `succ`'s owning link was `node.next`, in
                    // `ManuallyDrop`; `node` is marked, so no exchange on
                    // its `next` succeeds again (they all expect an untagged
                    // value, and the mark is never cleared); the link moves
                    // to `prev`. 2. `node` was linked from `prev` only
                    // (insertion moved that link into `prev`'s node, unlinks
                    // only move it on): once `prev` points past it, a
                    // traversal that starts now cannot reach it.
                    match unsafe { prev.compare_exchange_unlink(cur, succ, guard) } {
                        Ok(unlinked) => {
                            unlinked.expect("the exchange removed `node`").retire();
                            cur = succ;
                            continue;
                        }
                        // `prev` changed (marked, or a node went in
                        // between): start again from the head.
                        Err(_) => continue 'retry,
                    }
                }
                if node.key.borrow() >= key {
                    return Position {
                        found: node.key.borrow() == key,
                        prev,
                        cur,
                    };
                }
                prev = &node.next;
                cur = next;
            }
        }
    }

    /// The value of `key`, valid while the guard lives.
    ///
    /// # Panics
    ///
    /// If the list was used with a guard of another domain.
    pub fn get<'g, Q>(&'g self, key: &Q, guard: &'g Guard<'_>) -> Option<&'g V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let pos = self.find(key, guard);
        pos.found
            .then(|| &pos.cur.as_ref().expect("found a node").value)
    }

    /// Inserts `key` with `value`; returns false (and drops them) if `key`
    /// was present.
    pub fn insert(&self, key: K, value: V, guard: &Guard<'_>) -> bool {
        let mut node = Owned::new(Node {
            key,
            value,
            next: ManuallyDrop::new(Atomic::null()),
        });
        loop {
            let pos = self.find(&node.key, guard);
            if pos.found {
                return false;
            }
            // Links `node` between `prev` and `cur` if `prev` still points
            // to `cur` untagged (not marked).
            match pos.prev.insert_before(pos.cur, node, |n| &n.next, guard) {
                Ok(()) => return true,
                Err(err) => node = err.new,
            }
        }
    }

    /// Removes `key`; returns whether this call removed it.
    pub fn remove<Q>(&self, key: &Q, guard: &Guard<'_>) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let pos = self.find(key, guard);
        if !pos.found {
            return false;
        }
        let node = pos.cur.as_ref().expect("found a node");
        if node.next.fetch_or(1, guard).tag() == 1 {
            // Another remover marked it first: it removed the key.
            return false;
        }
        // Marked by us: the key is removed. Unlink it now (or leave it to
        // the next traversal that meets it).
        let _ = self.find(key, guard);
        true
    }
}

impl<K, V> Default for List<K, V>
where
    K: Ord + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> Drop for List<K, V> {
    /// Frees every node still linked (marked ones too) directly: `&mut
    /// self` means no operation runs. Unlinked nodes were retired and are
    /// freed by their domain.
    fn drop(&mut self) {
        let mut link = mem::take(&mut self.head).into_inner();
        while let Some(node) = link {
            let node = *node.into_box();
            link = ManuallyDrop::into_inner(node.next).into_inner();
        }
    }
}

/// A lock-free hash map (Michael's): a fixed array of Harris–Michael lists,
/// with a domain of its own for its unlinked nodes.
pub struct HashMap<K, V, S = RandomState> {
    buckets: Box<[List<K, V>]>,
    hasher: S,
    domain: Domain,
}

impl<K, V> HashMap<K, V>
where
    K: Hash + Ord + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A map with `buckets` lists (smr-benchmark sizes it to the key range)
    /// and its own domain.
    pub fn with_buckets(buckets: usize) -> Self {
        Self {
            buckets: (0..buckets.max(1)).map(|_| List::new()).collect(),
            hasher: RandomState::new(),
            domain: Domain::new(),
        }
    }

    /// A read section of the map's domain, for [`get`](HashMap::get).
    pub fn guard(&self) -> Guard<'_> {
        self.domain.read()
    }

    /// The map's domain (for `barrier` and `stats`).
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    fn bucket<Q: Hash + ?Sized>(&self, key: &Q) -> &List<K, V> {
        let hash = self.hasher.hash_one(key);
        &self.buckets[(hash % self.buckets.len() as u64) as usize]
    }

    /// The value of `key`, valid while the guard (of this map's domain)
    /// lives.
    pub fn get<'g, Q>(&'g self, key: &Q, guard: &'g Guard<'_>) -> Option<&'g V>
    where
        K: Borrow<Q>,
        Q: Hash + Ord + ?Sized,
    {
        self.bucket(key).get(key, guard)
    }

    /// Inserts `key` with `value` unless present; returns whether it did.
    pub fn insert(&self, key: K, value: V) -> bool {
        let guard = self.domain.read();
        self.bucket(&key).insert(key, value, &guard)
    }

    /// Removes `key`; returns whether this call removed it.
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Ord + ?Sized,
    {
        let guard = self.domain.read();
        self.bucket(key).remove(key, &guard)
    }
}

/// What [`run`] did.
#[derive(Debug)]
pub struct Report {
    /// Successful inserts, including the prefill.
    pub inserted: u64,
    /// Successful removes.
    pub removed: u64,
    /// Lookups that found their key.
    pub hits: u64,
    /// Keys left in the map at the end (must be `inserted - removed`).
    pub left: u64,
    /// Lookups whose value did not match its key (must be 0).
    pub wrong_values: u64,
    /// The map domain's counters after `barrier()`.
    pub stats: Stats,
}

/// smr-benchmark's workload in small: keys `0..range`, prefilled to half;
/// `threads` threads each run `ops` operations (`get` 50 %, `insert` 25 %,
/// `remove` 25 %) on pseudo-random keys; then every key is checked and
/// `barrier()` frees what was unlinked.
pub fn run(threads: u64, ops: u64, range: u64) -> Report {
    let map = HashMap::with_buckets((range / 4) as usize);
    let mut inserted = 0;
    for key in (0..range).step_by(2) {
        inserted += u64::from(map.insert(key, key * 10));
    }
    let counts: Vec<[u64; 4]> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let map = &map;
                s.spawn(move || {
                    // [inserted, removed, hits, wrong values]
                    let mut c = [0_u64; 4];
                    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ (t + 1);
                    for _ in 0..ops {
                        // xorshift64
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let key = x % range;
                        match (x >> 32) % 4 {
                            0 => c[0] += u64::from(map.insert(key, key * 10)),
                            1 => c[1] += u64::from(map.remove(&key)),
                            _ => {
                                let guard = map.guard();
                                if let Some(&v) = map.get(&key, &guard) {
                                    c[2] += 1;
                                    c[3] += u64::from(v != key * 10);
                                }
                            }
                        }
                    }
                    c
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let sum = |i: usize| counts.iter().map(|c| c[i]).sum::<u64>();
    inserted += sum(0);
    let guard = map.guard();
    let left = (0..range).filter(|k| map.get(k, &guard).is_some()).count() as u64;
    drop(guard);
    map.domain().barrier();
    Report {
        inserted,
        removed: sum(1),
        hits: sum(2),
        left,
        wrong_values: sum(3),
        stats: map.domain().stats(),
    }
}

pub fn main() {
    let (threads, ops, range) = if cfg!(miri) {
        (2, 40, 16)
    } else {
        (4, 200_000, 1_000)
    };
    let started = Instant::now();
    let r = run(threads, ops, range);
    let elapsed = started.elapsed();
    assert_eq!(r.wrong_values, 0, "a lookup returned another key's value");
    assert_eq!(
        r.left,
        r.inserted - r.removed,
        "a key was lost or duplicated"
    );
    // Every removed node was unlinked and retired, and the barrier freed it.
    assert_eq!((r.stats.retired, r.stats.freed), (r.removed, r.removed));
    println!(
        "{threads} threads, {ops} ops each on {range} keys: {} inserts, {} removes, {} hits; {} keys left",
        r.inserted, r.removed, r.hits, r.left
    );
    println!(
        "{} nodes retired, {} freed after barrier(), {} grace periods, in {:.1?}",
        r.stats.retired, r.stats.freed, r.stats.grace_periods, elapsed
    );
    // A list on the process-wide domain, no barrier: its unlinked nodes
    // still wait when the process exits, reachable from the domain (so a
    // leak checker finds nothing lost; `.ci/run` runs valgrind on this).
    let list = List::new();
    let guard = Domain::global().read();
    for key in 0..100_u32 {
        list.insert(key, (), &guard);
    }
    for key in 0..100_u32 {
        list.remove(&key, &guard);
    }
    drop(guard);
    println!(
        "global domain: {} unlinked nodes still waiting at exit (reachable, not leaked)",
        Domain::global().stats().pending
    );
}
