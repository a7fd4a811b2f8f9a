//! Which destructors this thread is running: the "freeing" marks.
//!
//! # Invariants
//!
//! - A thread is marked as freeing domain `id` (or the owner queue at
//!   address `owner`) exactly while it runs that one's destructors, which it
//!   does holding that one's `freeing` lock. Marks nest (a destructor of one
//!   domain may free another's objects: an amortized free, a robust scan, a
//!   teardown), and every mark up the stack counts, not only the innermost:
//!   so a call that would wait for a `freeing` lock can ask whether this
//!   thread holds it, however deep, and refuse instead of deadlocking.
//! - The marks are a list through the stack frames of the calls that run
//!   with them ([`freeing`], [`owner_freeing`]): each frame links to the
//!   one outside it, and a thread-local points to the innermost. A frame
//!   unlinks itself when its call ends, by a return or a panic, before its
//!   memory goes: so every frame on the list is alive.
//! - The thread-local has no destructor: readable at any point of the
//!   thread's exit. This module depends on nothing else in the crate.

use core::cell::Cell;
use core::ptr;

/// Whose destructors a frame runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freeing {
    /// The domain with this id.
    Domain(u64),
    /// The owner whose queue lives at this address.
    Owner(usize),
}

/// One mark on the list (module invariants).
struct Frame {
    what: Freeing,
    /// The frame outside this one, or null.
    outer: *const Frame,
}

#[cfg(not(loom))]
std::thread_local! {
    /// The innermost frame of this thread's marks, or null.
    static INNERMOST: Cell<*const Frame> = const { Cell::new(ptr::null()) };
}
#[cfg(loom)]
loom::thread_local! {
    static INNERMOST: Cell<*const Frame> = Cell::new(ptr::null());
}

/// Runs `run` marked as freeing `what` (module invariants).
fn marked<R>(what: Freeing, run: impl FnOnce() -> R) -> R {
    let outer = INNERMOST.try_with(Cell::get).unwrap_or(ptr::null());
    let frame = Frame { what, outer };
    let _ = INNERMOST.try_with(|m| m.set(&frame));
    // Unlinked on the way out, by a return or an unwind, while `frame` is
    // still alive (it is declared first, so it drops after this guard).
    let _unlink = scopeguard::guard((), |()| {
        let _ = INNERMOST.try_with(|m| m.set(outer));
    });
    run()
}

/// Whether any frame of this thread's marks is `what`'s.
fn any_is(what: Freeing) -> bool {
    let mut cur = INNERMOST.try_with(Cell::get).unwrap_or(ptr::null());
    while !cur.is_null() {
        // Every frame on the list lives in the stack frame of a `marked`
        // call still running on this thread (module invariants).
        // SAFETY: that call unlinks it before returning or unwinding, and
        // only this thread changes its list: the frame is alive.
        let frame = unsafe { &*cur };
        if frame.what == what {
            return true;
        }
        cur = frame.outer;
    }
    false
}

/// Runs `run` marked as running destructors of domain `id` (marks nest).
pub(crate) fn freeing<R>(id: u64, run: impl FnOnce() -> R) -> R {
    marked(Freeing::Domain(id), run)
}

/// Whether this thread is running destructors of any domain or owner (it
/// holds that one's `freeing` lock).
pub(crate) fn is_freeing_any() -> bool {
    !INNERMOST
        .try_with(Cell::get)
        .unwrap_or(ptr::null())
        .is_null()
}

/// Runs `run` marked as running destructors of the owner whose queue lives
/// at `owner` (marks nest).
pub(crate) fn owner_freeing<R>(owner: usize, run: impl FnOnce() -> R) -> R {
    marked(Freeing::Owner(owner), run)
}

/// Whether this thread is running destructors of the owner at `owner`, at
/// any depth.
pub(crate) fn is_owner_freeing(owner: usize) -> bool {
    any_is(Freeing::Owner(owner))
}
