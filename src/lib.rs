//! Read-copy-update memory reclamation for Rust, with batch-drain retirement,
//! a bounded amount of garbage, and exclusive teardown of owners when no
//! reader can exist.
//!
//! This page is the guide: the ideas, which tool to use when, who runs
//! destructors and when, the contracts of the `unsafe` calls, and how it all
//! maps onto the Linux kernel's RCU. Every type's page has the details.
//!
//! # Concepts
//!
//! - A **domain** ([`Domain`]) is an RCU instance: [`Domain::global`] for the
//!   process, or any number of independent ones from [`Domain::new`] (a long
//!   reader in one never delays another's reclamation).
//! - A **reader** enters a *read-side section* with [`Domain::read`] and
//!   holds the [`Guard`] while it uses shared objects. Entering and leaving
//!   costs a couple of plain stores (no locked instruction, no fence).
//! - A **writer** *unlinks* an object (no new reader can find it) and
//!   *retires* it: the domain frees it after a **grace period**, once every
//!   reader that could have seen it has left its section.
//! - An **owner** ([`User`], [`Holder`]) holds data that readers reach only
//!   through a *user handle*, like an `mm_struct` and its `mm_users`. When
//!   the last user handle drops, no reader can exist (every reference into
//!   the data borrows a user handle, and the borrow checker enforces it),
//!   so the data and everything retired through the owner are freed
//!   directly, with no grace period: the kernel's `exit_mmap`.
//!
//! ```
//! use ownrcu::Domain;
//!
//! let domain = Domain::new();
//! {
//!     let _guard = domain.read(); // readers: cheap, nestable, !Send
//! }
//! domain.retire(Box::new([0_u8; 192])); // one object
//! let mut batch = domain.batch();
//! batch.extend((0..100).map(|i| Box::new(i as u64)));
//! batch.drain(); // a hundred objects, one registration
//! domain.barrier(); // all of them freed when this returns
//! assert_eq!(domain.stats().freed, 101);
//! ```
//!
//! # Which tool when
//!
//! | you have | use | costs |
//! | --- | --- | --- |
//! | one object unlinked now and then | [`Domain::retire`] (a `Box`), [`Domain::defer`] (a closure) | a push into a per-thread buffer |
//! | many objects unlinked by one operation (an unmap, a rebuild) | [`Batch`]: push them, [`Batch::drain`] once | one grace-period registration for all |
//! | a lock-free structure of your own | [`Atomic`] (`load` under a guard, `swap`/`compare_exchange` hand back a [`Detached`] that retires only into the right domain) | one extra word per pointer unless [`GlobalDomain`] |
//! | data that readers reach through a handle, with objects replaced one by one | an owner ([`User`]) holding [`Slot`]s | retirement through the owner ([`Unlinked`]) |
//! | an ordered index of objects (an address space's VMAs) | an [`Array`] in an owner: readers search the published slice, one writer commits an edited copy | one registration per commit ([`Removed::retire`]) |
//! | the last user of an owner going away (process exit) | drop the last [`User`]: everything is freed directly | no grace period at all |
//! | the only user, wanting the garbage gone now | [`User::exclusive`], then [`Exclusive::free_pending`] | no grace period |
//!
//! A single retirement:
//!
//! ```
//! use std::sync::atomic::{AtomicPtr, Ordering};
//! use ownrcu::Domain;
//!
//! let domain = Domain::global();
//! let shared = AtomicPtr::new(Box::into_raw(Box::new(1_u64)));
//! let old = shared.swap(Box::into_raw(Box::new(2)), Ordering::AcqRel); // unlink
//! // SAFETY: from `Box::into_raw`, unreachable for new readers, and read
//! // only under guards of the global domain.
//! unsafe { domain.retire_raw(old) };
//! # let last = shared.load(Ordering::Relaxed);
//! # unsafe { domain.retire_raw(last) };
//! ```
//!
//! A batch:
//!
//! ```
//! let domain = ownrcu::Domain::new();
//! let unlinked: Vec<Box<[u8; 64]>> = (0..1000).map(|_| Box::new([0; 64])).collect();
//! ownrcu::Batch::from_vec(&domain, unlinked).drain(); // one registration
//! ```
//!
//! A lock-free pointer ([`Atomic`]; see `examples/stack.rs`, `queue.rs` and
//! `map.rs` for whole structures):
//!
//! ```
//! use ownrcu::{Atomic, Domain, Owned};
//!
//! let domain = Domain::new();
//! let config = Atomic::new(String::from("v1"));
//! let guard = domain.read();
//! assert_eq!(*config.load(&guard), "v1");
//! let old = config.swap(Owned::new(String::from("v2")), &guard);
//! old.unwrap().retire(); // only into `domain`, whose readers may see it
//! assert_eq!(*config.load(&guard), "v2");
//! ```
//!
//! An owner with a slot, and its teardown:
//!
//! ```
//! use ownrcu::{Domain, Slot, User};
//!
//! let domain = Domain::new();
//! let mm = User::new(&domain, Slot::new(Box::new(1_u32)));
//! {
//!     let read = mm.read(); // borrows `mm`
//!     assert_eq!(*read.load(&read).unwrap(), 1);
//! }
//! mm.replace(Some(Box::new(2)), &mm).unwrap().retire(); // through the owner
//! drop(mm); // the last user: everything freed directly
//! ```
//!
//! An owner batch and an array are shown on [`OwnerBatch`] and [`Array`];
//! `examples/vma` builds a miniature address space with all of them.
//!
//! # Who runs destructors, and when
//!
//! - **Retiring threads**, a bounded amount: a retirement that fills its
//!   thread's buffer, a batch drain and a retirement through an owner each
//!   free at most 1024 objects whose grace period is over (none while the
//!   thread is unwinding). Buffers adapt to the thread's rate (8 to 128
//!   objects, about 20 µs of retirements).
//! - **Pacing**: once work waits, a grace period starts as soon as the time
//!   since the last one started is 20 times what starting one costs (one
//!   process-wide barrier: 0.2 µs alone, 1–10 µs with other threads
//!   running), or 10 times once 64 objects wait, so garbage waits tens of
//!   microseconds, not thousands of objects. [`DomainBuilder::lazy`] trades memory for fewer grace periods.
//! - **The soft bound** ([`DomainBuilder::soft_max_pending`], 256 by
//!   default, per domain and per owner): a retirement past it that finds
//!   nothing to free, because a reader holds up the grace period of the
//!   oldest pending objects, waits for that grace period for at most
//!   [`DomainBuilder::soft_max_wait`] (1 ms), then frees; so a reader
//!   descheduled inside its section does not let a writer pile up
//!   thousands of objects meanwhile. A writer inside a read section waits
//!   too, for a grace period older than its section only (which does not
//!   wait for it), as lock-free structures retire inside their sections.
//! - **The bound** ([`DomainBuilder::max_pending`], 8192 by default, per
//!   domain and per owner): a retirement past it starts a grace period now,
//!   frees inline, and waits for the grace period for at most
//!   [`DomainBuilder::max_wait`] (10 ms); a writer never blocks behind a
//!   stalled reader for more than that, once per stall (and one
//!   `soft_max_wait` per doubling of the pending objects at the soft
//!   bound).
//! - **The time bound and the [`Reclaimer`]**: one process-wide thread,
//!   started by the first retirement, gives work that has waited
//!   [`DomainBuilder::time_bound`] (100 ms) its grace period and frees it,
//!   so a writer that retires and goes idle leaves nothing behind for long.
//!   Off per domain ([`DomainBuilder::reclaimer`]) or for the process
//!   ([`Reclaimer::disable`]).
//! - **Hurry** ([`Domain::hurry`], [`Domain::retire_hurry`],
//!   [`Batch::drain_hurry`], [`Unlinked::retire_hurry`],
//!   [`OwnerBatch::drain_hurry`]): the grace period starts now.
//! - **[`Domain::collect`]**: frees what is ready now, without blocking.
//! - **[`Domain::barrier`]**: everything retired before the call is freed
//!   when it returns; [`User::barrier`] for an owner.
//! - **Teardowns**: a user-created domain's last handle, an owner's last
//!   user: everything left, directly.
//! - [`DomainBuilder::retiring_threads_free`]`(false)` keeps destructors
//!   off retiring threads (real-time producers): the reclaimer, or the
//!   thread you call `collect` on, runs them.
//!
//! Guards never run destructors. Destructors of one domain run one thread
//! at a time. A panicking destructor never leaks or double-frees the
//! others; `barrier` and teardowns resume the first panic at the end.
//!
//! # The `unsafe` calls and their contracts
//!
//! | call | the caller promises |
//! | --- | --- |
//! | [`Domain::retire_raw`], [`Batch::push_raw`] | the pointer came from `Box::<T>::into_raw` and is retired once; it is unlinked (no reader entering from now on can reach it); every reader that may still hold it got it under a guard of *this* domain |
//! | [`Atomic::compare_exchange_unlink`] | every other pointer to the new object (the removed node's `next`) is never used to detach, take or drop it again (kept in `ManuallyDrop`, never successfully exchanged); the removed object is unlinked |
//! | [`Atomic::compare_exchange_alias`] | this pointer never owns (kept in `ManuallyDrop`, changed only by this call); the object it points to stays linked from its owning pointer while this one points to it |
//!
//! Everything else is safe: retiring a [`Detached`], an [`Unlinked`] or a
//! batch, owner teardown, and every misuse the types cannot rule out panics
//! with a message (waiting inside a read section of the same domain, a
//! pointer or slot used with another domain or owner, a cookie of another
//! domain). `mem::forget` of any guard-like value is never undefined
//! behaviour; each type's docs say what it leaks.
//!
//! # The kernel mapping
//!
//! | kernel | ownrcu |
//! | --- | --- |
//! | `rcu_read_lock()` / `rcu_read_unlock()` | [`Domain::read`] → [`Guard`], dropped |
//! | `rcu_dereference()` / `rcu_assign_pointer()` | [`Atomic::load`] / [`Atomic::store`], [`Atomic::swap`] |
//! | `call_rcu()`, `kfree_rcu()` | [`Domain::retire`], [`Domain::retire_raw`], [`Domain::defer`], [`Detached::retire`] |
//! | `kfree_rcu()`'s bulk pages of pointers, the slab sheaves that batch frees | [`Batch`] (one registration), the per-thread buffers of single retirements |
//! | `call_rcu_hurry()` | [`Domain::retire_hurry`], [`Batch::drain_hurry`], [`Domain::hurry`] |
//! | lazy RCU (`CONFIG_RCU_LAZY`), `kfree_rcu`'s drain monitor | [`DomainBuilder::lazy`], the time bound and the [`Reclaimer`] |
//! | `rcu_barrier()` | [`Domain::barrier`], [`User::barrier`] |
//! | `synchronize_rcu()` | [`Domain::synchronize`] |
//! | `get_state_synchronize_rcu()` / `poll_state_synchronize_rcu()` / `cond_synchronize_rcu()` | [`Domain::grace_period`] → [`GracePeriod`], [`Domain::poll`], [`Domain::wait`] |
//! | `mmget()` / `mmput()` (`mm_users`) | [`User`] clone / drop |
//! | `mmgrab()` / `mmdrop()` (`mm_count`) | [`Holder`] |
//! | `mmget_not_zero()` | [`Holder::upgrade`] |
//! | `exit_mmap()` freeing VMAs without a grace period | the last [`User`]'s drop; [`Exclusive::free_pending`] |
//! | the VMA tree (maple tree) read under RCU | [`Array`] |
//!
//! # How the read side stays cheap
//!
//! A reader publishes "I am in a section since epoch *e*" with a plain store
//! and a compiler fence. Grace periods pay instead: each one issues a single
//! process-wide `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on Linux,
//! which forces a full barrier on every CPU running one of our threads. Where
//! membarrier is missing, under Miri and loom, or when the environment
//! variable `OWNRCU_NO_MEMBARRIER=1` is set at start-up, both sides use an
//! ordinary `fence(SeqCst)` instead ([`uses_membarrier`]).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// The crate in two layers (see each folder's `mod.rs`): `rcu`, the RCU
// core (domains and their grace-period machine), and `owner`, owners built
// on it, which use the core only through `rcu::for_owners`. `atomic` (the
// pointer type for plain domains) stays at the top, apart from both: it is
// a client of the public API only (`Domain`, `Guard`, `Batch`, and
// `crate::sync`), like a user's crate, so it belongs to neither layer.
// `sync` is the loom shim that every layer imports.
mod atomic;
mod owner;
mod rcu;
mod sync;

pub use atomic::{
    AnyDomain, Atomic, CompareExchangeError, Detached, DomainBinding, GlobalDomain, Owned, Shared,
};
pub use owner::array::{Array, ArrayWriter, Removed};
pub use owner::handle::{Exclusive, Holder, Read, User};
pub use owner::slot::Slot;
pub use owner::unlinked::{OwnerBatch, Unlinked};
pub use rcu::batch::Batch;
pub use rcu::config::{
    DomainBuilder, DEFAULT_MAX_PENDING, DEFAULT_SOFT_MAX_PENDING, DEFAULT_TIME_BOUND,
};
pub use rcu::domain::{Domain, GracePeriod};
pub use rcu::fence::uses_membarrier;
pub use rcu::guard::Guard;
pub use rcu::reclaimer::Reclaimer;
/// The reclaimer's wake-up protocol, public in loom builds only, for
/// `tests/loom/reclaimer.rs`.
#[cfg(loom)]
#[doc(hidden)]
pub use rcu::reclaimer::{Doorbell, Sleeper};
pub use rcu::stats::{FreedBy, OwnerStats, Stats, Throttle};
