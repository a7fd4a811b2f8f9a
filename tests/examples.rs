//! The examples' code, run as tests (examples cannot be linked from tests,
//! so their sources are included as modules).
//!
//! The data-structure examples also run with `Obj` values: each counts its
//! drops, checks it was not dropped before, and poisons its magic word when
//! dropped, so a value read after it was freed is caught (under Miri the
//! access itself is reported). Drop counts are checked exactly.

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

#[path = "../examples/async_routes.rs"]
mod async_routes;
#[path = "../examples/map.rs"]
mod map;
#[path = "../examples/queue.rs"]
mod queue;
#[path = "../examples/quickstart.rs"]
mod quickstart;
#[path = "../examples/skiplist.rs"]
mod skiplist;
#[path = "../examples/stack.rs"]
mod stack;

use std::ops::Bound;

use ownrcu::Domain;
use skiplist::SkipMap;
use stack::Stack;

const LIVE: u64 = 0x11fe_11fe_11fe_11fe;
const POISON: u64 = 0xdead_dead_dead_dead;

/// A counted, poisoned value.
struct Obj {
    magic: u64,
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Obj {
    fn new(id: u64, drops: &Arc<AtomicUsize>) -> Self {
        Self {
            magic: LIVE,
            id,
            drops: drops.clone(),
        }
    }

    /// The id, after checking the value is alive.
    fn id(&self) -> u64 {
        // SAFETY: a read of our own field; volatile so it is really done.
        let magic = unsafe { ptr::read_volatile(&self.magic) };
        assert_eq!(magic, LIVE, "read a value that was freed");
        self.id
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        assert_eq!(self.magic, LIVE, "value dropped twice");
        self.drops.fetch_add(1, Relaxed);
        // SAFETY: a write to our own field.
        unsafe { ptr::write_volatile(&mut self.magic, POISON) };
    }
}

#[test]
fn quickstart_frees_everything() {
    let (domain, owner, alive) = quickstart::run();
    // One object retired singly, a hundred as one batch; all freed by the
    // barrier, through two registrations (the thread's buffer, the batch).
    assert_eq!(
        (domain.retired, domain.freed, domain.pending),
        (101, 101, 0)
    );
    assert_eq!((domain.batches, domain.registrations), (1, 2));
    // The domain also sums what its owners retired: the one owner's counts.
    assert_eq!(domain.owners, owner);
    assert_eq!((domain.retired_total(), domain.pending_total()), (102, 0));
    // The owner's replaced VMA was retired through it and is freed by now:
    // directly by the last user's drop, unless a grace period that started
    // meanwhile let a collection free it first.
    assert_eq!(
        (owner.retired, owner.registrations, owner.pending),
        (1, 1, 0)
    );
    assert_eq!(owner.freed_directly + owner.freed_after_grace_period, 1);
    // The VMA still in the slot was dropped with the data, directly.
    assert_eq!(alive, 0);
}

#[test]
fn quickstart_main() {
    quickstart::main();
}

#[test]
fn stack_run_pops_each_value_once_and_frees_each_node() {
    let (threads, per_thread) = if cfg!(miri) { (3, 12) } else { (4, 5_000) };
    let r = stack::run(threads, per_thread);
    assert_eq!(r.pushed, threads * per_thread);
    assert_eq!(r.lost_or_duplicated, 0);
    assert_eq!(r.popped + r.drained, r.pushed);
    // Two pops per three pushes in each thread; each pop finds a value,
    // because its own thread pushed just before.
    assert_eq!(r.popped, threads * (per_thread - per_thread.div_ceil(3)));
    // Every node was popped, so retired, and the barrier freed them all.
    assert_eq!(
        (r.stats.retired, r.stats.freed, r.stats.pending),
        (r.pushed, r.pushed, 0)
    );
}

#[test]
fn stack_main() {
    stack::main();
}

#[test]
fn stack_is_lifo_on_one_thread() {
    let stack = Stack::new();
    for i in 0..5 {
        stack.push(i);
    }
    let popped: Vec<i32> = std::iter::from_fn(|| stack.pop()).collect();
    assert_eq!(popped, [4, 3, 2, 1, 0]);
    stack.domain().barrier();
    assert_eq!(stack.domain().stats().freed, 5);
}

#[test]
fn stack_drops_each_value_once() {
    let token = Arc::new(());
    let stack = Stack::new();
    for _ in 0..10 {
        stack.push(token.clone());
    }
    // Popped values are moved out: the retired node must not drop them.
    let popped: Vec<_> = (0..4).map(|_| stack.pop().unwrap()).collect();
    stack.domain().barrier();
    assert_eq!(stack.domain().stats().freed, 4);
    assert_eq!(Arc::strong_count(&token), 11);
    drop(popped);
    assert_eq!(Arc::strong_count(&token), 7);
    // The six left are dropped with the stack, once each.
    drop(stack);
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn stack_drop_frees_nodes_popped_but_not_yet_freed() {
    let token = Arc::new(());
    let stack = Stack::new();
    for _ in 0..3 {
        stack.push(token.clone());
    }
    let value = stack.pop().unwrap();
    // The popped node waits for a grace period; no barrier. Dropping the
    // stack drops its domain, which frees it (Miri checks for leaks).
    drop(stack);
    assert_eq!(Arc::strong_count(&token), 2);
    drop(value);
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn stack_of_counted_values() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (threads, per_thread) = if cfg!(miri) { (2, 10) } else { (4, 2_000) };
    let stack = Stack::new();
    let popped: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (stack, drops) = (&stack, &drops);
                s.spawn(move || {
                    let mut sum = 0;
                    for i in 0..per_thread {
                        stack.push(Obj::new(t * per_thread + i, drops));
                        if i % 2 == 0 {
                            let v = stack.pop().unwrap();
                            sum += u64::from(v.id() < threads * per_thread);
                        }
                    }
                    sum
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(drops.load(Relaxed) as u64, popped);
    stack.domain().barrier();
    // Popped nodes are freed; their values were moved out (dropped above).
    assert_eq!(drops.load(Relaxed) as u64, popped);
    drop(stack);
    assert_eq!(drops.load(Relaxed) as u64, threads * per_thread);
}

#[test]
fn queue_run_pops_each_value_once_in_order() {
    let (threads, per_thread) = if cfg!(miri) { (3, 12) } else { (4, 5_000) };
    let r = queue::run(threads, per_thread);
    assert_eq!(r.pushed, threads * per_thread);
    assert_eq!((r.lost_or_duplicated, r.out_of_order), (0, 0));
    assert_eq!(r.popped, threads * (per_thread - per_thread.div_ceil(3)));
    assert_eq!(r.popped + r.drained, r.pushed);
    // One sentinel retired per pop, all freed by the barrier.
    assert_eq!(
        (r.stats.retired, r.stats.freed, r.stats.pending),
        (r.pushed, r.pushed, 0)
    );
}

#[test]
fn queue_main() {
    queue::main();
}

#[test]
fn queue_is_fifo_and_drops_each_value_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let queue = queue::Queue::new();
    assert!(queue.pop().is_none());
    for i in 0..10 {
        queue.push(Obj::new(i, &drops));
    }
    let popped: Vec<u64> = (0..4).map(|_| queue.pop().unwrap().id()).collect();
    assert_eq!(popped, [0, 1, 2, 3]);
    assert_eq!(drops.load(Relaxed), 4);
    queue.domain().barrier();
    // Four sentinels freed; their values were moved out, not dropped again.
    assert_eq!(queue.domain().stats().freed, 4);
    assert_eq!(drops.load(Relaxed), 4);
    // The six left are dropped with the queue, once each; the sentinel's
    // value (moved out) is not.
    drop(queue);
    assert_eq!(drops.load(Relaxed), 10);
}

#[test]
fn queue_drop_frees_nodes_popped_but_not_yet_freed() {
    let drops = Arc::new(AtomicUsize::new(0));
    let queue = queue::Queue::new();
    for i in 0..3 {
        queue.push(Obj::new(i, &drops));
    }
    let value = queue.pop().unwrap();
    drop(queue); // the domain's drop frees the popped sentinel (Miri checks)
    assert_eq!(drops.load(Relaxed), 2);
    drop(value);
    assert_eq!(drops.load(Relaxed), 3);
}

#[test]
fn map_run_keeps_every_key_once() {
    let (threads, ops, range) = if cfg!(miri) {
        (2, 30, 16)
    } else {
        (4, 20_000, 200)
    };
    let r = map::run(threads, ops, range);
    assert_eq!(r.wrong_values, 0);
    assert_eq!(r.left, r.inserted - r.removed);
    assert!(r.inserted >= range / 2);
    // Every removed node was unlinked (by its remover or a helper) and
    // retired; the barrier freed them all.
    assert_eq!(
        (r.stats.retired, r.stats.freed, r.stats.pending),
        (r.removed, r.removed, 0)
    );
}

#[test]
fn map_main() {
    map::main();
}

#[test]
fn list_is_sorted_and_drops_each_value_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    let list = map::List::new();
    {
        let guard = domain.read();
        for k in [5, 1, 3, 2, 4] {
            assert!(list.insert(k, Obj::new(k, &drops), &guard));
        }
        // A duplicate key is refused and its value dropped at once.
        assert!(!list.insert(3, Obj::new(33, &drops), &guard));
        assert_eq!(drops.load(Relaxed), 1);
        assert_eq!(list.get(&3, &guard).unwrap().id(), 3);
        assert!(list.remove(&3, &guard));
        assert!(!list.remove(&3, &guard));
        assert!(list.get(&3, &guard).is_none());
        assert!(list.remove(&1, &guard));
        let keys: Vec<u64> = (0..7)
            .filter_map(|k| list.get(&k, &guard).map(Obj::id))
            .collect();
        assert_eq!(keys, [2, 4, 5]);
        // Removed nodes wait for the guard.
        assert_eq!(drops.load(Relaxed), 1);
    }
    domain.barrier();
    assert_eq!(drops.load(Relaxed), 3);
    drop(list);
    assert_eq!(drops.load(Relaxed), 6);
}

#[test]
fn list_marked_nodes_are_freed_by_drop() {
    // A node marked but never unlinked (its remover stopped after the mark)
    // is still linked: the list's drop frees it, once.
    let drops = Arc::new(AtomicUsize::new(0));
    let domain = Domain::new();
    let list = map::List::new();
    let guard = domain.read();
    for k in 0..4 {
        list.insert(k, Obj::new(k, &drops), &guard);
    }
    for k in 0..4 {
        list.remove(&k, &guard);
    }
    drop(guard);
    drop(list);
    drop(domain);
    assert_eq!(drops.load(Relaxed), 4);
}

#[test]
fn map_of_counted_values_under_contention() {
    let drops = Arc::new(AtomicUsize::new(0));
    let created = AtomicUsize::new(0);
    let (threads, ops, range) = if cfg!(miri) {
        (2, 30, 8)
    } else {
        (4, 5_000, 64)
    };
    let hash_map = map::HashMap::with_buckets(4);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (hash_map, drops, created) = (&hash_map, &drops, &created);
            s.spawn(move || {
                let mut x = 0x2545_f491_4f6c_dd1d_u64 ^ (t + 1);
                for _ in 0..ops {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = x % range;
                    match (x >> 40) % 3 {
                        0 => {
                            created.fetch_add(1, Relaxed);
                            hash_map.insert(key, Obj::new(key, drops));
                        }
                        1 => {
                            hash_map.remove(&key);
                        }
                        _ => {
                            let guard = hash_map.guard();
                            if let Some(v) = hash_map.get(&key, &guard) {
                                assert_eq!(v.id(), key);
                            }
                        }
                    }
                }
            });
        }
    });
    hash_map.domain().barrier();
    let guard = hash_map.guard();
    let left = (0..range)
        .filter(|k| hash_map.get(k, &guard).is_some())
        .count();
    drop(guard);
    assert_eq!(drops.load(Relaxed) + left, created.load(Relaxed));
    drop(hash_map);
    assert_eq!(drops.load(Relaxed), created.load(Relaxed));
}

#[test]
fn skiplist_run_keeps_every_key_once_and_frees_every_node_once() {
    let (threads, ops, range) = if cfg!(miri) {
        (2, 30, 12)
    } else {
        (4, 20_000, 200)
    };
    for global in [false, true] {
        let r = skiplist::run(threads, ops, range, global);
        // No wrong value, order or range; `len` matches the inserts and
        // removes; every value (one per node) dropped exactly once.
        skiplist::check(&r);
        assert!(r.inserted >= range / 2);
        assert!(r.inserted + r.replaced <= r.created);
    }
}

#[test]
fn skiplist_main() {
    skiplist::main();
}

/// Tasks hold routing tables across `.await` in owned sections on a tokio
/// runtime while a writer swaps and retires them: no task reads a freed
/// table (each use checks its poison), every retired table is freed once.
#[test]
fn async_routes_run_frees_every_table_once() {
    let (tasks, lookups, swaps) = if cfg!(miri) {
        (3, 4, 6)
    } else {
        (32, 100, 1_000)
    };
    let r = async_routes::run(tasks, lookups, swaps, 3);
    async_routes::check(&r);
    assert_eq!(r.lookups, tasks * lookups);
}

#[test]
fn async_routes_main() {
    async_routes::main();
}

/// The keys of the map's entries in `range`, after checking each value.
fn skiplist_keys(map: &SkipMap<u64, Obj>, range: (Bound<u64>, Bound<u64>)) -> Vec<u64> {
    map.range(range)
        .map(|e| {
            assert_eq!(e.value().id() % 100, *e.key(), "a value under another key");
            *e.key()
        })
        .collect()
}

#[test]
fn skiplist_is_ordered_and_entries_outlive_removal() {
    use Bound::{Excluded, Included, Unbounded};
    let drops = Arc::new(AtomicUsize::new(0));
    let map = SkipMap::new();
    assert!(map.is_empty() && map.get(&1).is_none() && map.iter().next().is_none());
    for k in [5, 1, 3, 2, 4] {
        assert!(map.insert(k, Obj::new(k, &drops)).is_none());
    }
    assert!(!map.is_empty() && map.len() == 5);
    // `insert_new` refuses a present key and drops its value at once.
    let Err(found) = map.insert_new(3, Obj::new(103, &drops)) else {
        panic!("3 is present");
    };
    assert_eq!((found.value().id(), drops.load(Relaxed)), (3, 1));
    // `insert` replaces: the old entry comes back removed, still readable,
    // and so is the handle taken before.
    let old = map.insert(3, Obj::new(203, &drops)).unwrap();
    assert!(old.is_removed() && found.is_removed());
    assert_eq!((old.value().id(), found.value().id()), (3, 3));
    let new = map.get(&3).unwrap();
    assert_eq!(new.value().id(), 203);
    assert!(!new.is_removed());
    assert_eq!(map.len(), 5);
    let removed = map.remove(&1).unwrap();
    assert!(removed.is_removed() && removed.value().id() == 1);
    assert!(map.remove(&1).is_none() && map.get(&1).is_none());
    assert_eq!(map.len(), 4);
    assert_eq!(skiplist_keys(&map, (Unbounded, Unbounded)), [2, 3, 4, 5]);
    assert_eq!(skiplist_keys(&map, (Included(3), Excluded(5))), [3, 4]);
    assert_eq!(skiplist_keys(&map, (Unbounded, Included(2))), [2]);
    assert_eq!(skiplist_keys(&map, (Excluded(3), Unbounded)), [4, 5]);
    assert_eq!(skiplist_keys(&map, (Excluded(5), Unbounded)), []);
    // The handles keep the removed nodes: nothing freed but the refused
    // value, even after a barrier.
    map.barrier();
    assert_eq!(drops.load(Relaxed), 1);
    assert_eq!(map.stats().retired, 0);
    // Once the searches above have unlinked the replaced node at every
    // level, dropping the last handles retires both removed nodes.
    drop((old, found, removed));
    map.barrier();
    assert_eq!(drops.load(Relaxed), 3);
    assert_eq!((map.stats().retired, map.stats().freed), (2, 2));
    // The new node's handle outlives nothing: the map drops the four left.
    drop(new);
    drop(map);
    assert_eq!(drops.load(Relaxed), 7);
}

#[test]
fn skiplist_drop_frees_replaced_nodes_still_linked() {
    // Replaced nodes are marked but unlinked only by searches that pass
    // them; without any, some stay linked at upper levels. The map's drop
    // frees each node exactly once whatever its state, and its domain the
    // retired ones.
    let drops = Arc::new(AtomicUsize::new(0));
    let (keys, rounds) = if cfg!(miri) { (8, 3) } else { (64, 10) };
    let map = SkipMap::new();
    for round in 0..=rounds {
        for k in 0..keys {
            let old = map.insert(k, Obj::new(round * 100 + k, &drops));
            assert_eq!(old.is_some(), round > 0);
        }
    }
    assert_eq!(map.len() as u64, keys);
    drop(map);
    assert_eq!(drops.load(Relaxed) as u64, keys * (rounds + 1));
}

#[test]
fn skiplist_iteration_repins_while_entries_are_removed() {
    // One thread iterates over more entries than the repin interval while
    // another removes and reinserts every even key: keys come out in
    // order, every odd key (never removed) comes out, values are alive.
    let drops = Arc::new(AtomicUsize::new(0));
    let (keys, passes) = if cfg!(miri) { (140, 1) } else { (2_000, 20) };
    let map = SkipMap::new();
    for k in 0..keys {
        map.insert(k, Obj::new(k, &drops));
    }
    let created = AtomicUsize::new(keys as usize);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..passes {
                for k in (0..keys).step_by(2) {
                    let old = map.remove(&k).expect("only this thread removes");
                    assert_eq!(old.value().id(), k);
                    created.fetch_add(1, Relaxed);
                    assert!(map.insert_new(k, Obj::new(k, &drops)).is_ok());
                }
            }
        });
        for _ in 0..passes {
            let mut iter = map.iter();
            let mut last = None;
            let mut odd = 0;
            for entry in iter.by_ref() {
                let k = *entry.key();
                assert_eq!(entry.value().id(), k);
                assert!(last.map_or(true, |l| l < k), "{last:?} then {k}");
                odd += k % 2;
                last = Some(k);
            }
            assert_eq!(odd, keys / 2, "an odd key was skipped");
            assert!(iter.repins() >= (keys / 2 / 64) as usize);
        }
    });
    map.barrier();
    drop(map);
    assert_eq!(drops.load(Relaxed), created.load(Relaxed));
}

#[test]
fn skiplist_of_counted_values_under_contention() {
    let drops = Arc::new(AtomicUsize::new(0));
    let created = AtomicUsize::new(0);
    let (threads, ops, range) = if cfg!(miri) {
        (2, 30, 8)
    } else {
        (4, 5_000, 64)
    };
    let map = SkipMap::new();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (map, drops, created) = (&map, &drops, &created);
            s.spawn(move || {
                let mut held = None;
                let mut x = 0x2545_f491_4f6c_dd1d_u64 ^ (t + 1);
                for i in 0..ops {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = x % range;
                    match (x >> 40) % 4 {
                        0 => {
                            created.fetch_add(1, Relaxed);
                            if let Some(old) = map.insert(key, Obj::new(key, drops)) {
                                assert_eq!(old.value().id(), key);
                            }
                        }
                        1 => {
                            if let Some(old) = map.remove(&key) {
                                assert_eq!(old.value().id(), key);
                            }
                        }
                        2 => {
                            if let Some(e) = map.get(&key) {
                                assert_eq!(e.value().id(), key);
                                if i % 4 == 0 {
                                    held = Some(e);
                                }
                            }
                        }
                        _ => {
                            let keys = skiplist_keys(map, (Bound::Included(key), Bound::Unbounded));
                            assert!(keys.windows(2).all(|w| w[0] < w[1]));
                        }
                    }
                    if let Some(e) = &held {
                        assert_eq!(e.value().id(), *e.key());
                    }
                }
            });
        }
    });
    let left = skiplist_keys(&map, (Bound::Unbounded, Bound::Unbounded)).len();
    assert_eq!(map.len(), left);
    // Removed nodes are freed by the barrier once unlinked at every level;
    // any still linked at an upper level, by the map's drop.
    map.barrier();
    assert!(drops.load(Relaxed) + left <= created.load(Relaxed));
    drop(map);
    assert_eq!(drops.load(Relaxed), created.load(Relaxed));
}

#[test]
fn skiplist_remove_finds_a_key_being_replaced() {
    // One thread keeps replacing key 7; the only remover removes it and
    // puts it back (replacing too) before looking again. A replacing insert
    // goes in front and marks only the node behind it, so the front node
    // is never marked by anyone but the remover: the key is present every
    // time the remover looks. A remove that loses the mark to a replacing
    // insert must search again and remove the new node, not report the key
    // gone.
    let drops = Arc::new(AtomicUsize::new(0));
    let rounds = if cfg!(miri) { 20 } else { 20_000 };
    let map = SkipMap::new();
    map.insert(7, Obj::new(7, &drops));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (misses, made_by_replacer) = std::thread::scope(|s| {
        let replacer = s.spawn(|| {
            let mut made = 0;
            while !stop.load(Relaxed) {
                made += 1;
                if let Some(old) = map.insert(7, Obj::new(7, &drops)) {
                    assert_eq!(old.value().id(), 7);
                }
            }
            made
        });
        let mut misses = 0;
        for _ in 0..rounds {
            match map.remove(&7) {
                Some(old) => assert_eq!(old.value().id(), 7),
                None => misses += 1,
            }
            map.insert(7, Obj::new(7, &drops));
        }
        stop.store(true, Relaxed);
        (misses, replacer.join().unwrap())
    });
    assert_eq!(misses, 0, "remove missed a key that was present");
    assert_eq!(map.len(), 1);
    drop(map);
    // One value per node, each dropped once: the first, the remover's and
    // the replacer's.
    assert_eq!(drops.load(Relaxed), 1 + rounds + made_by_replacer);
}

#[test]
fn skiplist_concurrent_removes_of_one_key_return_it_once() {
    // Two threads remove the same key at the same moment, round after
    // round: exactly one of them gets its entry (only the remove that marks
    // level 0 has removed it; the other searches again and finds nothing).
    let drops = Arc::new(AtomicUsize::new(0));
    let rounds = if cfg!(miri) { 10 } else { 20_000 };
    let map = SkipMap::new();
    let barrier = std::sync::Barrier::new(2);
    let removed: usize = std::thread::scope(|s| {
        let removers: Vec<_> = (0..2)
            .map(|t| {
                let (map, barrier, drops) = (&map, &barrier, &drops);
                s.spawn(move || {
                    let mut removed = 0;
                    for _ in 0..rounds {
                        if t == 0 {
                            assert!(map.insert(1, Obj::new(1, drops)).is_none());
                        }
                        barrier.wait();
                        if let Some(old) = map.remove(&1) {
                            assert_eq!(old.value().id(), 1);
                            removed += 1;
                        }
                        barrier.wait();
                    }
                    removed
                })
            })
            .collect();
        removers.into_iter().map(|r| r.join().unwrap()).sum()
    });
    assert_eq!(removed, rounds, "a key was removed twice, or not at all");
    assert!(map.is_empty());
    drop(map);
    assert_eq!(drops.load(Relaxed), rounds);
}
