//! The RCU core: domains, their grace-period machine and its public face.
//!
//! This layer is RCU itself: read-side sections ([`Guard`](crate::Guard)),
//! retirement of single objects and batches, grace periods, and freeing
//! (amortized on retirements, bounded by backpressure, hurried, collected,
//! by the reclaimer thread within the time bound, by `barrier`, and at
//! teardown). It guarantees to the layers above (the owner layer in
//! `src/owner/`, the pointer type in `src/atomic.rs`, and users): an
//! object retired into a domain is dropped exactly once, on some thread,
//! only after every read section that could have reached it has ended, and
//! no later than the domain's teardown; the number of objects waiting stays
//! near the domain's bound; and a grace period never waits for anything but
//! the readers it must wait for.
//!
//! # Structure
//!
//! From the bottom up (a file imports only files listed before it, checked
//! by `.ci/import-cycles`):
//!
//! - `retired`, `stats`, `unwind`, `freeing`, `config`, `fence`: leaves;
//! - `record`: a thread's record in a domain (read state, retire bag);
//! - `robust`: a robust domain's protected loads and exchanges on a record,
//!   and [`Birth`](crate::Birth);
//! - `local`: which record this thread owns in each domain (what it needs
//!   of a domain is the `local::DomainState` trait);
//! - `reclaimer`: the process-wide reclaimer thread (what it needs of a
//!   domain is the `reclaimer::ServedDomain` trait);
//! - `machine`: the grace-period machine, a domain's state (`Inner`),
//!   which implements both traits;
//! - `domain`, then `guard`, `owned` and `batch`: the public face
//!   (`Domain::read`, `Domain::read_owned` and `Domain::batch` are defined
//!   next to the types they return).
//!
//! The owner layer uses this one only through [`for_owners`].

pub(crate) mod batch;
pub(crate) mod config;
pub(crate) mod domain;
pub(crate) mod fence;
pub(crate) mod freeing;
pub(crate) mod guard;
pub(crate) mod local;
pub(crate) mod machine;
pub(crate) mod owned;
pub(crate) mod reclaimer;
pub(crate) mod record;
pub(crate) mod retired;
pub(crate) mod robust;
pub(crate) mod stall;
pub(crate) mod stats;
pub(crate) mod unwind;

pub(crate) mod for_owners {
    //! The core's interface to the owner layer (`src/owner/`): everything the
    //! owner layer uses of the core, besides the public types (`Domain`,
    //! `Guard`, `OwnerStats`, ...) and `crate::sync`. Nothing in `src/owner/`
    //! names another module of the core.
    //!
    //! An owner keeps its retired objects in its own queue, but its grace
    //! periods, pacing, backpressure and reclaimer visits are its domain's. It
    //! reaches its domain's state ([`Inner`]) through `Domain::inner`, and uses
    //! of it only:
    //!
    //! - registration: `register_owned` (counts a unit toward starting a grace
    //!   period and returns the one it waits for), `is_complete`, `wait_for`,
    //!   `hurry`;
    //! - backpressure: `throttle(Some(queue))` with the queue as
    //!   [`Throttled`], and `config` (the bounds);
    //! - the reclaimer: `serve` (the queue as [`Served`], visited with the
    //!   domain; a visit says [`Visited`]) and [`notify`] after a registration;
    //! - statistics: `owner_counters` ([`OwnerCounters`], summed into the
    //!   domain's [`OwnerStats`]).
    //!
    //! Besides: [`try_lock`] and [`lock_within`] (ignoring poisoning, as the
    //! core does; the second waits a bounded time),
    //! [`COLLECT_BUDGET`] (the most objects one retirement frees), the units of
    //! work ([`Reclaim`], [`Single`], [`Typed`], whose objects may come with
    //! their own deleters, [`Deleted`]) and [`into_pointers`] (a
    //! vector of boxes as pointers, without a copy), the "freeing" marks of owner
    //! queues ([`owner_freeing`], [`is_owner_freeing`]), [`in_section`], and
    //! the panic and count helpers ([`FirstPanic`], [`Cursor`], [`may_free`],
    //! [`check_count`]).

    pub(crate) use super::domain::BARRIER_IN_DESTRUCTOR;
    pub(crate) use super::freeing::{is_freeing_any, is_owner_freeing, owner_freeing};
    pub(crate) use super::local::in_section;
    pub(crate) use super::machine::{
        lock_within, try_lock, Inner, Served, Throttled, COLLECT_BUDGET,
    };
    pub(crate) use super::reclaimer::{notify, Visited};
    pub(crate) use super::retired::{into_pointers, Cursor, Deleted, Reclaim, Single, Typed};
    pub(crate) use super::stats::{OwnerCounters, OwnerStats};
    pub(crate) use super::unwind::{check_count, may_free, FirstPanic};
}
