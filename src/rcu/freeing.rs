//! Which destructors this thread is running: the "freeing" marks.
//!
//! # Invariants
//!
//! - A thread is marked as freeing domain `id` (or the owner queue at
//!   address `owner`) exactly while it runs that one's destructors, which it
//!   does holding that one's `freeing` lock; marks nest and unwind (the
//!   previous mark comes back when the scope ends, also by a panic). So a
//!   call that would wait for a `freeing` lock can ask whether the lock is
//!   its own caller's, and refuse instead of deadlocking.
//! - The marks are thread-locals without destructors: readable (as "not
//!   freeing") at any point of the thread's exit. They depend on nothing
//!   else in the crate.

use core::cell::Cell;

#[cfg(not(loom))]
std::thread_local! {
    /// Id of the domain whose destructors this thread is running, if any.
    static FREEING: Cell<u64> = const { Cell::new(u64::MAX) };
    /// Address of the owner queue whose destructors this thread is running,
    /// or 0.
    static OWNER_FREEING: Cell<usize> = const { Cell::new(0) };
}
#[cfg(loom)]
loom::thread_local! {
    static FREEING: Cell<u64> = Cell::new(u64::MAX);
    static OWNER_FREEING: Cell<usize> = Cell::new(0);
}

/// Marks this thread as running destructors of domain `id` until the
/// returned value drops (scopes nest: the previous mark comes back).
pub(crate) fn freeing(id: u64) -> impl Drop {
    let previous = FREEING.try_with(|f| f.replace(id)).unwrap_or(u64::MAX);
    scopeguard::guard(previous, |previous| {
        let _ = FREEING.try_with(|f| f.set(previous));
    })
}

/// Whether this thread is running destructors of domain `id`.
pub(crate) fn is_freeing(id: u64) -> bool {
    FREEING.try_with(|f| f.get() == id).unwrap_or(false)
}

/// Whether this thread is running destructors of any domain or owner (it
/// holds that one's `freeing` lock).
pub(crate) fn is_freeing_any() -> bool {
    let domain = FREEING.try_with(|f| f.get() != u64::MAX).unwrap_or(false);
    domain || OWNER_FREEING.try_with(|f| f.get() != 0).unwrap_or(false)
}

/// Marks this thread as running destructors of the owner whose queue lives
/// at `owner` until the returned value drops (scopes nest).
pub(crate) fn owner_freeing(owner: usize) -> impl Drop {
    let previous = OWNER_FREEING.try_with(|f| f.replace(owner)).unwrap_or(0);
    scopeguard::guard(previous, |previous| {
        let _ = OWNER_FREEING.try_with(|f| f.set(previous));
    })
}

/// Whether this thread is running destructors of the owner at `owner`.
pub(crate) fn is_owner_freeing(owner: usize) -> bool {
    OWNER_FREEING
        .try_with(|f| f.get() == owner)
        .unwrap_or(false)
}
