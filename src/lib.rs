//! Read-copy-update memory reclamation for Rust, with batch-drain retirement
//! and exclusive teardown.
//!
//! Readers enter a read-side critical section of a [`Domain`] with
//! [`Domain::read`], which costs a couple of plain stores (no locked
//! instruction, no fence); writers unlink objects and retire them, singly
//! ([`Domain::retire`]) or as one [`Batch`] (one grace-period registration
//! for the whole batch). Objects are freed after a grace period, once every
//! reader that could have seen them has left its section.
//!
//! Waiting is explicit and complete: [`Domain::synchronize`]
//! (`synchronize_rcu`), [`Domain::barrier`] (`rcu_barrier`: everything
//! retired before the call has been freed) and polled [`GracePeriod`]
//! cookies.
//!
//! # Example
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
//! Data can also live in an *owner* ([`User`], [`Holder`]), with objects in
//! RCU [`Slot`]s or an RCU-replaced [`Array`] (an ordered index, like an
//! address space's VMAs), retired through the owner ([`Unlinked`],
//! [`OwnerBatch`], [`Removed`]): readers reach them only through a user
//! handle, so when the last one drops, the data and everything retired
//! through the owner are freed directly, with no grace period (the kernel's
//! `exit_mmap`). `examples/vma` builds a miniature address space on this.
//!
//! To build lock-free structures on any domain, [`Atomic`] is a safe RCU
//! pointer: [`Atomic::load`] gives a [`Shared`] that cannot outlive its
//! guard, and writers get what they replace back as a [`Detached`] that can
//! only be retired into the domain whose readers may still see it
//! (`examples/stack.rs`, `examples/queue.rs`, `examples/map.rs`).
//!
//! # How the read side stays cheap
//!
//! A reader publishes "I am in a section since epoch *e*" with a plain store
//! and a compiler fence. Grace periods pay instead: each one issues a single
//! process-wide `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on Linux,
//! which forces a full barrier on every CPU running one of our threads. Where
//! membarrier is missing, under Miri and loom, or when the environment
//! variable `OWNRCU_NO_MEMBARRIER=1` is set at start-up, both sides use an
//! ordinary `fence(SeqCst)` instead.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
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
pub use rcu::config::{DomainBuilder, DEFAULT_MAX_PENDING, DEFAULT_TIME_BOUND};
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
