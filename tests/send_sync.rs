//! Which public types are `Send` and `Sync`, pinned: a change to any of
//! them fails to compile here (the negative cases are `compile_fail`
//! doctests: `Guard` and `Read` in src/rcu/guard.rs, `Guard` again in
//! src/rcu/owned.rs, a `Shared` of a type that is not `Sync` in src/shared.rs, `Batch` in src/rcu/batch.rs,
//! `OwnerBatch` in src/owner/slot.rs, `ArrayWriter` in src/owner/array.rs).

use ownrcu::{
    Array, Batch, Domain, DomainBuilder, Exclusive, FreedBy, GracePeriod, Holder, OwnedGuard,
    OwnedRead, OwnerBatch, OwnerStats, Removed, Shared, Slot, Stall, Stats, Throttle, Unlinked,
    User,
};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

/// Owner data: what a `User` needs of it.
type Data = Vec<Slot<String>>;

#[test]
fn send_and_sync() {
    send_sync::<Domain>();
    send_sync::<DomainBuilder>();
    send_sync::<GracePeriod>();
    send_sync::<Stats>();
    send_sync::<Stall>();
    send_sync::<OwnerStats>();
    send_sync::<FreedBy>();
    send_sync::<Throttle>();
    send_sync::<User<Data>>();
    send_sync::<Holder<Data>>();
    send_sync::<Exclusive<'static, Data>>();
    send_sync::<Slot<String>>();
    send_sync::<Unlinked<'static, String>>();
    send_sync::<Array<String>>();
    send_sync::<Removed<'static, String>>();
    send_sync::<OwnedGuard>();
    send_sync::<OwnedRead<Data>>();
    send_sync::<Shared<'static, String>>();
}

fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}

/// A domain (with or without a stall hook) and its builder stay unwind-safe:
/// `catch_unwind(|| domain.barrier())` compiles without `AssertUnwindSafe`.
#[test]
fn unwind_safe_handles() {
    unwind_safe::<Domain>();
    unwind_safe::<DomainBuilder>();
    unwind_safe::<Stats>();
}

#[test]
fn send_only() {
    send::<Batch<'static, String>>();
    send::<Batch<'static, dyn std::fmt::Debug + Send>>();
    send::<OwnerBatch<'static, String>>();
}
