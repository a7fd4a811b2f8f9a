//! Which public types are `Send` and `Sync`, pinned: a change to any of
//! them fails to compile here (the negative cases are `compile_fail`
//! doctests: `Guard` and `Read` in src/rcu/guard.rs, `Batch` in src/rcu/batch.rs,
//! `OwnerBatch` in src/owner/slot.rs, `ArrayWriter` in src/owner/array.rs).

use ownrcu::{
    Array, Batch, Domain, DomainBuilder, Exclusive, FreedBy, GracePeriod, Holder, OwnerBatch,
    OwnerStats, Removed, Slot, Stats, Throttle, Unlinked, User,
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
}

#[test]
fn send_only() {
    send::<Batch<'static, String>>();
    send::<Batch<'static, dyn std::fmt::Debug + Send>>();
    send::<OwnerBatch<'static, String>>();
}
