//! The grace-period machine behind a [`Domain`](crate::Domain).
//!
//! # Design
//!
//! The domain counts grace periods in `epoch`: the number of grace periods
//! *started*. A reader entering its outermost section copies `epoch` into its
//! record as `epoch << 1 | 1` with a plain (release) store followed by the
//! light fence; leaving, it stores `INACTIVE`. A grace period `g` starts, under
//! the state lock, by storing `epoch = g` and running the heavy fence once
//! (or a plain full fence, when every other record is armed: module
//! `fence`, "Skipping the heavy fence" and "Fencing every entry", which
//! also show that the argument below holds for those records with that
//! fence). It is complete when no
//! record is active with an epoch below `g`. Why that is enough, for an
//! object unlinked before `g` started (unlink → registration under the lock
//! → start, so the unlink happens before the heavy fence):
//!
//! - a reader whose light fence comes after the heavy fence (in the fences'
//!   single total order) sees the unlink, so it cannot reach the object;
//! - otherwise the scan, which follows the heavy fence, sees the reader's
//!   entry store (or a later one). If that says "epoch ≥ g", the reader's
//!   acquire load of `epoch` read the start store, which happens after the
//!   unlink: it cannot reach the object either. If it says "epoch < g", the
//!   grace period waits until the record changes; the acquire load that sees
//!   the change synchronizes with the reader's release exit (or its next
//!   release entry, which follows the exit), so every access of the old
//!   section happens before anything freed after the grace period.
//!
//! One heavy fence per grace period suffices, because later scans only read
//! the same records again (coherence keeps them at least as new).
//!
//! Work is registered as *units* ([`Reclaim`](crate::rcu::retired::Reclaim)): a thread's bag of single
//! retirements, or one drained `Batch`. A unit registered while `epoch == e`
//! waits for grace period `e + 1`, the first one to start after it: one grace
//! period serves every unit registered before it started. Grace periods are
//! rationed: one starts only when enough work waits for it, or when someone
//! asked (`synchronize`, `barrier`, a polled cookie).
//!
//! Units whose grace period completed stay at the front of `waiting`; a
//! thread frees them while holding the `freeing` lock, which serializes
//! destructors per domain and lets `barrier` know when frees in progress have
//! finished. Lock order: `freeing`, then `state`.
//!
//! # Files
//!
//! [`Inner`] and its fields are in `state`; the counters and the freeing
//! paths in `counters`. The rest are `impl Inner` blocks, one concern each:
//! `records` (thread records), `register` (registering work), `grace`
//! (grace periods), `free` (freeing completed units), `early` (a robust
//! domain's frees ahead of grace periods), `throttle`
//! (backpressure, hurry, collect), `visit` (the reclaimer's visits),
//! `teardown`, `report` (statistics). None of them imports this file.

mod counters;
mod crowd;
mod early;
mod free;
mod grace;
mod poll;
mod records;
mod register;
mod report;
#[cfg(not(loom))]
mod stalls;
mod state;
mod teardown;
mod throttle;
// Only the reclaimer thread visits, and it does not exist under loom.
#[cfg_attr(loom, allow(dead_code))]
mod visit;

#[cfg(not(loom))]
pub(crate) use state::GLOBAL_INNER;
pub(crate) use state::{lock_within, try_lock, Inner, Served, COLLECT_BUDGET, ROBUST_ID_BIT};
pub(crate) use throttle::Throttled;
