//! Owners: data torn down directly when its last user handle goes, built
//! on the RCU core.

pub(crate) mod array;
pub(crate) mod binding;
pub(crate) mod handle;
pub(crate) mod pending;
pub(crate) mod slot;
pub(crate) mod unlinked;
