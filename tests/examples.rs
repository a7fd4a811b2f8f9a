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

#[path = "../examples/map.rs"]
mod map;
#[path = "../examples/queue.rs"]
mod queue;
#[path = "../examples/quickstart.rs"]
mod quickstart;
#[path = "../examples/stack.rs"]
mod stack;

use ownrcu::Domain;
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
