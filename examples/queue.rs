//! A lock-free FIFO queue (Michael and Scott's) on [`ownrcu::Atomic`]:
//! `cargo run --release --example queue`.
//!
//! The queue is a linked list that always starts with a *sentinel* node:
//! `head` points to the sentinel, whose `next` is the first value; `tail`
//! points to the last node or, for a moment, to the one before it.
//!
//! - `push` links a new node after the last one with a compare-and-swap on
//!   its `next` (null to the node), then swings `tail` forward; a thread
//!   that finds `tail` lagging swings it first ("helping"), so nobody waits.
//! - `pop` takes the value of the sentinel's successor and makes that node
//!   the new sentinel by swinging `head` to it; the old sentinel is
//!   unlinked, comes back `Detached`, and is retired (`call_rcu`).
//!
//! Readers of a node (a pusher that loaded it as `tail`, a popper that
//! loaded it as `head`) are inside a read guard, so a node they hold is not
//! freed under them and its address is not reused while they compare
//! against it (no ABA).
//!
//! `tail` is a second pointer to a node the list already links: it never
//! owns what it points to, so it sits in `ManuallyDrop` and changes only
//! through `compare_exchange_alias` (one `unsafe` block, in `swing_tail`).
//! Before swinging `head` past a node, `pop` makes sure `tail` has moved past
//! it too, so a retired node is never reachable through `tail`. The other two
//! `unsafe` blocks are `pop`'s unlink and moving the value out.

use std::mem::{self, ManuallyDrop};
use std::ptr;
use std::time::Instant;

use ownrcu::{Atomic, Domain, Guard, Owned, Shared, Stats};

struct Node<T> {
    /// `None` in the first sentinel. A node's value is moved out by the
    /// `pop` that makes it the sentinel, so dropping a node never drops it.
    value: ManuallyDrop<Option<T>>,
    /// Null until the next node is linked, then never changed. In
    /// `ManuallyDrop`: once the node is popped, the link to its successor
    /// has moved to `head`.
    next: ManuallyDrop<Atomic<Node<T>>>,
}

impl<T> Node<T> {
    fn new(value: Option<T>) -> Owned<Self> {
        Owned::new(Node {
            value: ManuallyDrop::new(value),
            next: ManuallyDrop::new(Atomic::null()),
        })
    }
}

/// A lock-free FIFO queue; popped nodes are reclaimed through the queue's
/// own [`Domain`].
pub struct Queue<T: Send + 'static> {
    head: Atomic<Node<T>>,
    /// Never owns (see `swing_tail`).
    tail: ManuallyDrop<Atomic<Node<T>>>,
    domain: Domain,
}

impl<T: Send + 'static> Queue<T> {
    /// An empty queue, with a domain of its own.
    pub fn new() -> Self {
        Self::with_domain(Domain::new())
    }

    /// An empty queue whose popped nodes are retired to `domain`.
    pub fn with_domain(domain: Domain) -> Self {
        let queue = Self {
            head: Atomic::from(Node::new(None)),
            tail: ManuallyDrop::new(Atomic::null()),
            domain,
        };
        {
            let guard = queue.domain.read();
            let sentinel = queue.head.load(&guard);
            queue.swing_tail(Shared::null(), sentinel, &guard);
        }
        queue
    }

    /// The domain popped nodes are retired to (for `barrier` and `stats`).
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Moves `tail` from `from` to `to` if it still points to `from`.
    fn swing_tail(&self, from: Shared<'_, Node<T>>, to: Shared<'_, Node<T>>, guard: &Guard<'_>) {
        // SAFETY: 1. `tail` is in `ManuallyDrop` and only ever changed here.
        // 2. `to` is the sentinel or a node linked after it (from `head` or
        // a `next`), and stays linked while `tail` points to it: `pop`
        // unlinks only a sentinel that `tail` has moved past (it swings the
        // tail first when they are equal), and `tail` only moves forward.
        let _ = unsafe { self.tail.compare_exchange_alias(from, to, guard) };
    }

    /// Appends `value`. Lock-free.
    pub fn push(&self, value: T) {
        let mut node = Node::new(Some(value));
        let guard = self.domain.read();
        loop {
            let tail = self.tail.load(&guard);
            let last = tail.as_ref().expect("the tail is never null");
            let next = last.next.load(&guard);
            if !next.is_null() {
                // The tail lags: help it forward, then retry.
                self.swing_tail(tail, next, &guard);
                continue;
            }
            // A node that `pop` unlinked has a non-null `next` for good, so
            // this can only succeed on the last node.
            match last.next.compare_exchange(Shared::null(), node, &guard) {
                Ok(_) => {
                    let linked = last.next.load(&guard);
                    self.swing_tail(tail, linked, &guard);
                    return;
                }
                Err(err) => node = err.new.expect("we passed a node"),
            }
        }
    }

    /// Takes the oldest value, if any. Lock-free.
    pub fn pop(&self) -> Option<T> {
        let guard = self.domain.read();
        loop {
            let head = self.head.load(&guard);
            let sentinel = head.as_ref().expect("the head is never null");
            let next = sentinel.next.load(&guard);
            let first = next.as_ref()?;
            let tail = self.tail.load(&guard);
            if tail == head {
                // The tail lags behind the node we are about to unlink:
                // move it first, so no retired node stays behind it.
                self.swing_tail(tail, next, &guard);
                continue;
            }
            // SAFETY: 1. `next`'s owning link was `sentinel.next`, in
            // `ManuallyDrop` and never changed again (it is non-null); it
            // moves to `head`. 2. `sentinel` was linked from `head` only:
            // the tail has moved past it (checked above; it never moves
            // back), and the node before it was unlinked earlier.
            match unsafe { self.head.compare_exchange_unlink(head, next, &guard) } {
                Ok(old) => {
                    // SAFETY: our exchange made `first` the sentinel, so we
                    // are the only thread that takes its value; nobody else
                    // reads values, and dropping a node skips its value.
                    let value = unsafe { ptr::read(&*first.value) };
                    old.expect("the exchange removed the sentinel").retire();
                    return value;
                }
                Err(_) => continue,
            }
        }
    }
}

impl<T: Send + 'static> Default for Queue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> Drop for Queue<T> {
    /// Frees the nodes still linked directly, values included (not the
    /// sentinel's, moved out or `None`): `&mut self` means no push or pop is
    /// running. Popped nodes still waiting for a grace period are freed by
    /// the domain's drop, right after.
    fn drop(&mut self) {
        let mut link = mem::take(&mut self.head).into_inner();
        let mut sentinel = true;
        while let Some(node) = link {
            let Node { value, next } = *node.into_box();
            if !mem::replace(&mut sentinel, false) {
                drop(ManuallyDrop::into_inner(value));
            }
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
    /// Producers whose values came out of order (must be 0).
    pub out_of_order: u64,
    /// The queue domain's counters after `barrier()`.
    pub stats: Stats,
}

/// `threads` threads each push `per_thread` distinct values and pop one
/// after two of every three pushes; then the rest is drained, every value
/// is checked (once each, and each producer's values in order), and
/// `barrier()` frees the popped nodes.
pub fn run(threads: u64, per_thread: u64) -> Report {
    let queue = Queue::new();
    let popped: Vec<Vec<u64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let queue = &queue;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..per_thread {
                        queue.push(t * per_thread + i);
                        if i % 3 != 0 {
                            mine.extend(queue.pop());
                        }
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let drained: Vec<u64> = std::iter::from_fn(|| queue.pop()).collect();

    let pushed = threads * per_thread;
    let mut seen = vec![0_u32; pushed as usize];
    for &v in popped.iter().flatten().chain(&drained) {
        seen[v as usize] += 1;
    }
    // FIFO: within one consumer's pops, and in the drain, each producer's
    // values come out in the order it pushed them.
    let mut out_of_order = 0;
    for pops in popped.iter().chain(std::iter::once(&drained)) {
        let mut last = vec![None; threads as usize];
        for &v in pops {
            let producer = (v / per_thread) as usize;
            if last[producer].is_some_and(|l| l >= v) {
                out_of_order += 1;
            }
            last[producer] = Some(v);
        }
    }
    queue.domain().barrier(); // every popped node is freed when it returns
    Report {
        pushed,
        popped: popped.iter().map(|p| p.len() as u64).sum(),
        drained: drained.len() as u64,
        lost_or_duplicated: seen.iter().filter(|&&n| n != 1).count() as u64,
        out_of_order,
        stats: queue.domain().stats(),
    }
}

pub fn main() {
    let (threads, per_thread) = if cfg!(miri) { (3, 20) } else { (4, 100_000) };
    let started = Instant::now();
    let r = run(threads, per_thread);
    let elapsed = started.elapsed();
    assert_eq!(r.lost_or_duplicated, 0, "a value was lost or popped twice");
    assert_eq!(r.out_of_order, 0, "a producer's values came out of order");
    assert_eq!(r.popped + r.drained, r.pushed);
    // One sentinel retired per pop.
    assert_eq!((r.stats.retired, r.stats.freed), (r.pushed, r.pushed));
    println!(
        "{threads} threads pushed {} values, popped {} while racing and {} after: each once, in order",
        r.pushed, r.popped, r.drained
    );
    println!(
        "{} sentinels retired, {} freed after barrier(), {} grace periods, in {:.1?}",
        r.stats.retired, r.stats.freed, r.stats.grace_periods, elapsed
    );
}
