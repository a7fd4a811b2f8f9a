//! A lock-free stack (Treiber's) on an ownrcu [`Domain`]: `cargo run --release --example stack`.
//!
//! `push` links a new node in front of the head with a compare-and-swap.
//! `pop` loads the head, reads its `next`, and swings the head to it with a
//! compare-and-swap. Without reclamation help, two things go wrong in `pop`:
//!
//! - *use after free*: between loading the head and reading `head.next`,
//!   another thread may pop that node and free it;
//! - *ABA*: the popped node is freed, a `push` gets the same address from
//!   the allocator, and a stale popper's compare-and-swap succeeds against
//!   the new node, installing a `next` that was freed long ago.
//!
//! Here the head is an [`ownrcu::Atomic`]: `pop` loads it under a read
//! guard (`rcu_read_lock`), and the compare-and-swap that unlinks a node
//! hands it back [`Detached`](ownrcu::Detached), to be retired (`call_rcu`),
//! not freed. It is freed only after a grace
//! period: once every popper that could have loaded it has left its
//! section. So a node a popper has loaded stays allocated, its `next` stays
//! readable, and its address cannot come back from the allocator while that
//! popper still compares against it: if the head still equals it, it is
//! still the same node, still in the stack, with the same `next`.
//!
//! Two `unsafe` blocks, both in `pop`: the unlink, which moves the link to
//! the next node out of the popped one into the head (the type cannot see
//! that the popped node's `next` is never used again), and moving the value
//! out of a node that readers may still hold.

use std::mem::{self, ManuallyDrop};
use std::ptr;
use std::time::Instant;

use ownrcu::{Atomic, Domain, Owned, Stats};

struct Node<T> {
    /// Moved out by the `pop` that unlinks the node, so dropping the node
    /// (after its grace period) must not drop it again.
    value: ManuallyDrop<T>,
    /// Set by `insert_before` as the node is published, never changed
    /// after. In `ManuallyDrop`: once the node is popped, its successor's
    /// link has moved to the head, so dropping the node must not drop it.
    next: ManuallyDrop<Atomic<Node<T>>>,
}

/// A lock-free LIFO stack. Popped nodes are reclaimed through the stack's
/// own [`Domain`].
pub struct Stack<T: Send + 'static> {
    head: Atomic<Node<T>>,
    domain: Domain,
}

impl<T: Send + 'static> Stack<T> {
    /// An empty stack, with a domain of its own.
    pub fn new() -> Self {
        Self::with_domain(Domain::new())
    }

    /// An empty stack whose popped nodes are retired to `domain` (for
    /// example the process-wide `Domain::global()`).
    pub fn with_domain(domain: Domain) -> Self {
        Self {
            head: Atomic::null(),
            domain,
        }
    }

    /// The domain popped nodes are retired to (for `barrier` and `stats`).
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Pushes `value` on top. Lock-free.
    pub fn push(&self, value: T) {
        let mut node = Owned::new(Node {
            value: ManuallyDrop::new(value),
            next: ManuallyDrop::new(Atomic::null()),
        });
        let guard = self.domain.read();
        loop {
            let head = self.head.load(&guard);
            // Sets `node.next` to `head` and swings the head to `node` if it
            // still is `head`: the link to `head` moves into the node.
            match self.head.insert_before(head, node, |n| &n.next, &guard) {
                Ok(()) => return,
                Err(err) => node = err.new,
            }
        }
    }

    /// Takes the top value, if any. Lock-free; runs in a read-side section.
    pub fn pop(&self) -> Option<T> {
        let guard = self.domain.read();
        loop {
            let head = self.head.load(&guard);
            let node = head.as_ref()?;
            let next = node.next.load(&guard);
            // SAFETY: 1. `next`'s object was linked only from `node.next`,
            // which is in `ManuallyDrop` and never changed after the push
            // that published `node`: nothing can take or drop it through
            // there. 2. `node` was linked only from the head (its push moved
            // the head's link into it), so once swung away no new popper can
            // reach it. ABA cannot fool the exchange: `node` is freed only
            // after every popper that loaded it has left its section, so its
            // address is not reused while we compare against it.
            match unsafe { self.head.compare_exchange_unlink(head, next, &guard) } {
                Ok(popped) => {
                    // SAFETY: our exchange unlinked `node`, so we are the only
                    // thread that takes its value; other poppers that still
                    // hold it read `next` only. The node's drop skips the
                    // value (`ManuallyDrop`).
                    let value = unsafe { ptr::read(&*node.value) };
                    // Freed after a grace period of `self.domain`.
                    popped.expect("the exchange removed `node`").retire();
                    return Some(value);
                }
                Err(_) => continue,
            }
        }
    }
}

impl<T: Send + 'static> Default for Stack<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> Drop for Stack<T> {
    /// Frees the nodes still in the stack directly, values included: `&mut
    /// self` means no push or pop is running, so no guard can hold them.
    /// Popped nodes still waiting for a grace period are freed by the
    /// domain's own drop, right after.
    fn drop(&mut self) {
        let mut link = mem::take(&mut self.head).into_inner();
        while let Some(node) = link {
            let Node { value, next } = *node.into_box();
            drop(ManuallyDrop::into_inner(value));
            link = ManuallyDrop::into_inner(next).into_inner();
        }
    }
}

/// What [`run`] did.
#[derive(Debug)]
pub struct Report {
    /// Values pushed (all distinct).
    pub pushed: u64,
    /// Values popped while the threads raced.
    pub popped: u64,
    /// Values popped after the threads finished.
    pub drained: u64,
    /// Values seen other than exactly once (must be 0).
    pub lost_or_duplicated: u64,
    /// The stack domain's counters after `barrier()`.
    pub stats: Stats,
}

/// `threads` threads each push `per_thread` distinct values and pop one
/// after two of every three pushes; then the rest is drained, every value
/// is checked, and `barrier()` frees the popped nodes.
pub fn run(threads: u64, per_thread: u64) -> Report {
    let stack = Stack::new();
    let popped: Vec<Vec<u64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let stack = &stack;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..per_thread {
                        stack.push(t * per_thread + i);
                        if i % 3 != 0 {
                            mine.extend(stack.pop());
                        }
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let drained: Vec<u64> = std::iter::from_fn(|| stack.pop()).collect();

    let pushed = threads * per_thread;
    let mut seen = vec![0_u32; pushed as usize];
    for &v in popped.iter().flatten().chain(&drained) {
        seen[v as usize] += 1;
    }
    stack.domain().barrier(); // every popped node is freed when it returns
    Report {
        pushed,
        popped: popped.iter().map(|p| p.len() as u64).sum(),
        drained: drained.len() as u64,
        lost_or_duplicated: seen.iter().filter(|&&n| n != 1).count() as u64,
        stats: stack.domain().stats(),
    }
}

pub fn main() {
    let (threads, per_thread) = if cfg!(miri) { (3, 20) } else { (4, 100_000) };
    let started = Instant::now();
    let r = run(threads, per_thread);
    let elapsed = started.elapsed();
    assert_eq!(r.lost_or_duplicated, 0, "a value was lost or popped twice");
    assert_eq!(r.popped + r.drained, r.pushed);
    assert_eq!((r.stats.retired, r.stats.freed), (r.pushed, r.pushed));
    println!(
        "{threads} threads pushed {} values, popped {} while racing and {} after: each exactly once",
        r.pushed, r.popped, r.drained
    );
    println!(
        "{} nodes retired, {} freed after barrier(), {} grace periods, {} registrations, in {:.1?}",
        r.stats.retired, r.stats.freed, r.stats.grace_periods, r.stats.registrations, elapsed
    );
    // The same stack on the process-wide domain, with no barrier: its nodes
    // still wait when the process exits. The domain keeps them reachable, so
    // a leak checker finds nothing lost (`.ci/run` runs valgrind on this).
    let global = Stack::with_domain(Domain::global().clone());
    for i in 0..1000 {
        global.push(i);
    }
    while global.pop().is_some() {}
    println!(
        "global domain: {} popped nodes still waiting at exit (reachable, not leaked)",
        Domain::global().stats().pending
    );
}
