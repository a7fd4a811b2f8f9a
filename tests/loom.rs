//! Loom models of the grace-period, steal and exit protocols.
//!
//! Run with
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --test loom -- --nocapture
//! ```
//!
//! Each model prints how many executions loom explored. `LOOM_MAX_PREEMPTIONS`
//! overrides the per-model preemption bounds chosen here (see
//! `common::EXHAUSTIVE`, `common::TWO_THREADS`, `common::THREE_THREADS`), and
//! `LOOM_LOG=trace` (with `LOOM_LOCATION=1`) prints every execution's
//! operations; the last one printed is the failing interleaving.
//!
//! - `reader`: a reader never sees its object freed while a writer unlinks
//!   and retires it (`retire_raw` + `barrier`, `Batch` + `barrier`,
//!   `Batch` + `synchronize`, `synchronize` + direct free, two sections).
//! - `barrier`: `barrier` frees everything retired before it, including the
//!   bags of idle and of concurrently retiring threads.
//! - `batch`: batches drained concurrently with `barrier`.
//! - `cookie`: `grace_period` then `poll`/`wait`, racing a reader.
//! - `exit`: a thread's exit hands its bag over; the last handle's drop frees
//!   everything.
//! - `steal`: the busy/steal handshake between a bag's owner and a stealer.
//! - `owner`: the last user's teardown racing a holder's upgrade; exclusive
//!   access racing an upgrade; a slot reader racing the owner's batch and
//!   barrier; one owner's teardown racing a reader of another owner.
//! - `array`: a reader scanning an `Array` version while the writer commits
//!   and retires what it removed (one batch and barrier, or synchronize and
//!   a direct free); two writers taking turns.
//! - `collect`: the owner's barrier while another thread's amortized collect
//!   has popped the only unit and will put part of it back: the barrier
//!   still frees everything registered before it.
//! - `atomic`: the safe pointer: a reader holding what it loaded while the
//!   writer swaps it out and retires the `Detached` value (`retire` and
//!   `barrier`; a batch and `synchronize`); two poppers racing
//!   `compare_exchange_unlink` on a two-node stack.
//! - `link`: a node linked from two `Link`s (two levels of a skip list)
//!   with a count of its links: the remover marks it and unlinks level 1,
//!   a helper that finds it marked unlinks level 0 (or the remover does),
//!   whoever drops the count to zero retires it (`retire_with`) and runs
//!   `barrier` while the other, and a reader, may still read it: never
//!   freed under a section, freed exactly once.
//! - `throttle`: a retirement past the bound (`max_pending(1)`, and an
//!   owner's `owner_max_pending(1)`) starts a grace period, frees inline and
//!   waits a bounded time, against a reader holding its object and a
//!   concurrent `barrier`: nothing freed early, nothing lost, and the
//!   throttle counters agree with the path taken; and a retirement past
//!   the soft bound (`soft_max_pending(1)`) waits a bounded time for the
//!   grace period a slow reader holds up, then frees, or goes on.
//! - `reclaimer`: the reclaimer's doorbell: registrations that make work
//!   visible under a lock and then ring never leave the reclaimer parked
//!   with work waiting, only one ring starts the thread, and a ring after
//!   a stop starts a new one; and a destructor's panic caught by the
//!   reclaimer while the last handle drops elsewhere is resumed once, by
//!   that drop. (The reclaimer's visits reuse the steal protocol of
//!   `barrier`, checked by `steal` and `barrier`.)
//! - `owned`: an owned read section entered and used to load on one
//!   thread, handed to another that reads what it loaded, while the writer
//!   unlinks, retires and runs `barrier`: never freed under the section,
//!   freed exactly once.
//! - `robust`: a robust domain's early frees: a reader that stays in its
//!   section and gets an object by a protected load, an exchange, or
//!   through an owned section (also handed to another thread), while the
//!   writer publishes it with a birth, unlinks it, `retire_born`s it and
//!   runs `collect`'s early scan: never freed while the reader can read
//!   it, freed exactly once, and freed early under the reader when it did
//!   not get it.
//!
//! - `fence_due`: a grace period that skips the heavy fence because the
//!   reader's record is armed: the reader's fenced entry, then its
//!   compiler-fenced one, never see the unlinked object freed; likewise a
//!   record in fencing mode, whose entries all fence until one leaves the
//!   mode.
//!
//! What loom cannot check here: under loom both halves of the asymmetric
//! fence are `fence(SeqCst)`. In production with membarrier the reader's half
//! is only a compiler fence, so the reader relies on its own orderings; the
//! `Acquire` load of the epoch in `Record::enter` is one loom cannot test (the
//! acquire half of the `SeqCst` fence right after it already orders it, so
//! weakening it to `Relaxed` passes every model). Weakening the `Release`
//! stores of `enter`/`exit` is caught (`reader::reader_reenters_during_barrier`
//! and the unlink models).
//!
//! A loom `join` returns before the joined thread's thread-locals are
//! destroyed, so a thread's exit hand-over runs concurrently with whatever
//! the joining thread does next (a stronger test than `std` would give).
#![cfg(loom)]

#[path = "loom/common.rs"]
mod common;

#[path = "loom/reader.rs"]
mod reader;

#[path = "loom/barrier.rs"]
mod barrier;

#[path = "loom/batch.rs"]
mod batch;

#[path = "loom/cookie.rs"]
mod cookie;

#[path = "loom/exit.rs"]
mod exit;

#[path = "loom/steal.rs"]
mod steal;

#[path = "loom/owner.rs"]
mod owner;

#[path = "loom/array.rs"]
mod array;

#[path = "loom/collect.rs"]
mod collect;

#[path = "loom/throttle.rs"]
mod throttle;

#[path = "loom/reclaimer.rs"]
mod reclaimer;

#[path = "loom/atomic.rs"]
mod atomic;

#[path = "loom/link.rs"]
mod link;

#[path = "loom/owned.rs"]
mod owned;

#[path = "loom/fence_due.rs"]
mod fence_due;

#[path = "loom/robust.rs"]
mod robust;
