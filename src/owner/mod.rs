//! Owners: data torn down directly when its last user handle goes, built on
//! the RCU core (the kernel's `mm_struct`, with `mm_users` and `mm_count`).
//!
//! This layer gives data a lifetime of its own ([`User`](crate::User),
//! [`Holder`](crate::Holder)): readers reach it only through a user handle,
//! so when the last user goes no reader can exist, and the data, with
//! everything still queued for it, is freed at once, with no grace period
//! (`exit_mmap`). Objects replaced inside the data
//! ([`Slot`](crate::Slot), [`Array`](crate::Array)) are retired through
//! the owner's own queue ([`Unlinked`](crate::Unlinked),
//! [`OwnerBatch`](crate::OwnerBatch)), which waits for its domain's grace
//! periods. It guarantees to its users: every object of an owner is
//! dropped exactly once, after the readers that could reach it (of that
//! owner, through a user handle) are gone, and no later than the last
//! user handle's drop or [`User::barrier`](crate::User::barrier); a slot
//! or array is only ever read and written through the one owner it is
//! bound to.
//!
//! # Structure
//!
//! - `pending`: the owner's queue of retired objects and its domain (the
//!   one file that drives the core: registration, backpressure, the
//!   reclaimer's visits, statistics);
//! - `binding` (which owner a slot or array belongs to), `unlinked`
//!   (objects on their way to the queue): on top of `pending`;
//! - `handle`: the handles (`User`, `Holder`, `Read`, `Exclusive`);
//! - `slot`, `array`: containers inside the data.
//!
//! Every file here uses the core only through
//! [`crate::rcu::for_owners`] (plus the public types and `crate::sync`);
//! `.ci/import-cycles` checks it.

pub(crate) mod array;
pub(crate) mod binding;
pub(crate) mod handle;
pub(crate) mod pending;
pub(crate) mod slot;
pub(crate) mod unlinked;
