//! The asymmetric fence: free for readers, paid by grace periods, and
//! skipped by grace periods when no reader needs it.
//!
//! # Invariant
//!
//! Every light fence ([`light_with`], and [`FenceDue::enter`]'s) executed
//! by a reader pairs with every [`heavy`] fence executed by a grace period
//! as if both were `fence(SeqCst)`: for a reader that publishes its state
//! and then runs the light fence, and a grace period that runs `heavy()` and
//! then reads that state, either the grace period sees the reader's state,
//! or every load the reader makes after the light fence sees every store
//! the grace period's thread made before `heavy()`.
//!
//! On Linux this is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: the kernel
//! runs a full barrier on every CPU currently running a thread of this
//! process, so the light fence only has to stop the *compiler* from
//! reordering.
//! Where membarrier is unavailable, switched off (`OWNRCU_NO_MEMBARRIER=1`),
//! or under loom and Miri (which cannot model a syscall), both sides are a
//! real `fence(SeqCst)`.
//!
//! The choice is made once per process, before the first thread registers
//! with any domain, and never changes, so a reader and a grace period always
//! agree on it.
//!
//! # Skipping the heavy fence ([`FenceDue`])
//!
//! A record whose thread has not entered a read section for a while need
//! not be interrupted: each record carries a [`FenceDue`], and a section
//! entry that finds it *due* (after publishing the section) clears it and
//! runs a full fence (a reader pays this once per grace period at most). A grace
//! period starts with a plain `fence(SeqCst)`, then reads every record's
//! `FenceDue`: if each is *armed* (below), or is the starting thread's own
//! record, it needs no heavy fence; otherwise it marks every record found
//! not due as due, and only then runs the heavy fence. A mark remembers
//! the heavy fence it precedes (the domain's count of them, `barriers`),
//! and is *armed* once another heavy fence of the domain has followed
//! that one; a new record is due and armed from birth. Why a grace period
//! that found a record armed after its plain fence `F` may skip the heavy
//! fence for it:
//!
//! 1. An entry that cleared the record's mark ran its full fence `R` after
//!    its state store and the clear. `F` read the mark before the clear,
//!    so `F` precedes `R` in the fences' total order: that section, and
//!    every later one of the thread (program order), sees every unlink
//!    before `F`. An owned section's entry (module `owned`) runs that full
//!    fence every time and never clears the mark, so a marked record of
//!    one is case 1 for every entry.
//! 2. An entry that had read the record before the mark was written (it
//!    read "not due", and fenced nothing) was still running when the
//!    heavy fence after the marking was issued, or finished before it.
//!    Either way its state store is drained by the heavy fence that armed
//!    the mark, which followed the marking's own: a later scan reads it
//!    (or a later one). Its thread's entries after the marking's heavy
//!    fence read the mark, so they are case 1.
//! 3. A record published after `F`'s scan read the list is due from birth,
//!    and its publication (a compare-exchange on the list head) precedes
//!    its first entry's fence `R`: the scan that did not see it ran `F`
//!    before `R`, and case 1 applies.
//! 4. The starting thread's own record: its entries before `F` are visible
//!    to its own scan, and those after it come after every unlink that
//!    grace period covers (program order).
//!
//! With the fallback (`fence(SeqCst)` on both sides) every entry fences:
//! records are due forever ([`FenceDue::ALWAYS`]), and starts run the
//! fallback fence as before.

use core::sync::atomic::{compiler_fence, AtomicU8, Ordering};

use crate::sync::{fence, AtomicU64};

const UNKNOWN: u8 = 0;
const MEMBARRIER: u8 = 1;
const FENCE: u8 = 2;

/// How the two sides are fenced; written once by [`init`].
static STRATEGY: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Decides the strategy. Called on every thread's first registration, which
/// happens before that thread's first `light()` or `heavy()`.
#[cold]
pub(crate) fn init() {
    if STRATEGY.load(Ordering::Acquire) != UNKNOWN {
        return;
    }
    let chosen = if membarrier::register() {
        MEMBARRIER
    } else {
        FENCE
    };
    // Several threads may race here; the first decision wins and every thread
    // then reads the same value.
    let _ = STRATEGY.compare_exchange(UNKNOWN, chosen, Ordering::AcqRel, Ordering::Acquire);
}

/// Whether grace periods use `membarrier` (false under loom and Miri, when
/// switched off, or where the kernel lacks it).
pub fn uses_membarrier() -> bool {
    init();
    STRATEGY.load(Ordering::Acquire) == MEMBARRIER
}

/// Whether the light fence is only a compiler fence, for a thread that registered
/// already: the strategy is decided by then and never changes, so a record
/// may keep this answer and pass it to [`light_with`] (one load from the
/// record's own cache line instead of two through the global).
pub(crate) fn light_is_compiler_only() -> bool {
    init();
    STRATEGY.load(Ordering::Relaxed) == MEMBARRIER
}

/// The reader's half: a compiler fence when grace periods use membarrier, a
/// full fence otherwise, with the strategy read beforehand by
/// [`light_is_compiler_only`] on a thread that had registered.
#[inline(always)]
pub(crate) fn light_with(compiler_only: bool) {
    // Written as "a fence if needed, then the compiler fence" (the second is
    // implied by the first anyway), with the full fence out of line, so the
    // common case falls straight through.
    if !compiler_only {
        full_fence();
    }
    compiler_fence(Ordering::SeqCst);
}

/// The full fence of [`light_with`]'s fallback (cold: a call costs little
/// next to the fence itself).
#[cold]
#[inline(never)]
fn full_fence() {
    fence(Ordering::SeqCst);
}

/// Whether a record's next section entry must run a full fence, and since
/// which heavy fence (module docs, "Skipping the heavy fence"). Written by
/// its owner's entries (cleared) and by grace-period starts under the
/// domain's state lock (marked).
#[cfg_attr(loom, doc(hidden))]
#[derive(Debug)]
pub struct FenceDue(AtomicU64);

impl FenceDue {
    /// Not due: an entry runs the light fence only.
    const NOT_DUE: u64 = 0;
    /// Due and armed from birth: a new record.
    const FRESH: u64 = 1;
    /// Due forever: the fallback, where every entry fences.
    const ALWAYS: u64 = u64::MAX;

    /// A new record's: due from birth (module docs, case 3), and forever
    /// with the fallback.
    pub(crate) fn new() -> Self {
        Self::with(if light_is_compiler_only() {
            Self::FRESH
        } else {
            Self::ALWAYS
        })
    }

    /// A new record's under membarrier, whatever the strategy: for loom
    /// models of the protocol (loom runs the fallback).
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn fresh() -> Self {
        Self::with(Self::FRESH)
    }

    fn with(value: u64) -> Self {
        Self(AtomicU64::new(value))
    }

    /// Enters a read section (the record's owner): stores `value` into
    /// `state` (release), then fences, fully if the mark is due.
    #[inline(always)]
    pub fn enter(&self, state: &AtomicU64, value: u64) {
        // Release: a scan that reads this value also sees the owner's
        // previous exit, and everything that section did.
        state.store(value, Ordering::Release);
        // Relaxed: a mark read late is covered by the heavy fence that arms
        // it (module docs, case 2).
        let due = self.0.load(Ordering::Relaxed);
        if due != Self::NOT_DUE {
            self.fence_due(due);
        }
        compiler_fence(Ordering::SeqCst);
    }

    /// The end of [`enter`](Self::enter) with the mark due: clear it, then
    /// the full fence, in this order (module docs, case 1).
    #[cold]
    #[inline(never)]
    fn fence_due(&self, due: u64) {
        if due != Self::ALWAYS {
            self.0.store(Self::NOT_DUE, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
    }

    /// For a grace-period start, after its plain fence and under the
    /// domain's state lock, with `barriers` the domain's heavy fences so
    /// far: whether the record is armed. If it is not due, marks it due
    /// before the heavy fence the caller must then run.
    pub fn arm(&self, barriers: u64) -> bool {
        // Relaxed: ordered after the caller's fence (module docs, case 1).
        match self.0.load(Ordering::Relaxed) {
            Self::NOT_DUE => {
                // Marks are `barriers + 2`, two above the count before the
                // heavy fence that follows (so never `FRESH`), armed once
                // the count reaches them. A compare-exchange: the owner
                // may clear a mark meanwhile, never set one.
                let _ = self.0.compare_exchange(
                    Self::NOT_DUE,
                    barriers + 2,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                false
            }
            mark => mark == Self::FRESH || mark == Self::ALWAYS || mark <= barriers,
        }
    }
}

/// The grace period's half: a process-wide barrier.
pub(crate) fn heavy() {
    // Decide first: a grace period that saw UNKNOWN and used a plain fence
    // while a reader registering meanwhile chose MEMBARRIER (and only a
    // compiler fence) would pair with nothing.
    init();
    if STRATEGY.load(Ordering::Relaxed) == MEMBARRIER {
        // Readers are relying on this barrier; a registered process cannot
        // see it fail, and falling back silently would be unsound.
        assert!(
            membarrier::barrier(),
            "ownrcu: membarrier(PRIVATE_EXPEDITED) failed after registration succeeded"
        );
    } else {
        fence(Ordering::SeqCst);
    }
}

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod membarrier {
    const CMD_QUERY: libc::c_int = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    fn call(cmd: libc::c_int) -> libc::c_long {
        // SAFETY: membarrier takes two integer arguments and touches no
        // memory of ours; an unsupported command returns -1 (ENOSYS/EINVAL).
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    /// Registers the process for expedited private barriers.
    pub(super) fn register() -> bool {
        if std::env::var_os("OWNRCU_NO_MEMBARRIER").is_some_and(|v| !v.is_empty() && v != "0") {
            return false;
        }
        let supported = call(CMD_QUERY);
        if supported < 0 || supported & (CMD_PRIVATE_EXPEDITED as libc::c_long) == 0 {
            return false;
        }
        call(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    /// Runs a full barrier on every CPU running a thread of this process.
    pub(super) fn barrier() -> bool {
        call(CMD_PRIVATE_EXPEDITED) == 0
    }
}

#[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }
    pub(super) fn barrier() -> bool {
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::FenceDue;
    use crate::sync::AtomicU64;

    /// The life of a mark: armed from birth; an entry clears it; the next
    /// start marks it and is not armed; armed once one more heavy fence
    /// has been counted; cleared again by the next entry.
    #[test]
    fn a_mark_is_armed_one_heavy_fence_after_it_was_written() {
        let due = FenceDue::with(FenceDue::FRESH);
        let state = AtomicU64::new(0);
        assert!(due.arm(0), "a new record is armed");
        due.enter(&state, 1);
        assert!(!due.arm(5), "an entry cleared the mark");
        // Marked before the heavy fence that makes the count 6.
        assert!(!due.arm(6), "not armed by its own heavy fence");
        assert!(due.arm(7), "armed after the next one");
        due.enter(&state, 3);
        assert!(!due.arm(7), "cleared again");
    }

    /// With the fallback every entry fences, and the mark never clears.
    #[test]
    fn the_fallback_is_due_forever() {
        let due = FenceDue::with(FenceDue::ALWAYS);
        let state = AtomicU64::new(0);
        due.enter(&state, 1);
        assert!(due.arm(0));
    }
}
