//! The asymmetric fence: free for readers, paid by grace periods.
//!
//! # Invariant
//!
//! Every [`light`] fence executed by a reader pairs with every [`heavy`] fence
//! executed by a grace period as if both were `fence(SeqCst)`: for a reader
//! that publishes its state and then runs `light()`, and a grace period that
//! runs `heavy()` and then reads that state, either the grace period sees the
//! reader's state, or every load the reader makes after `light()` sees every
//! store the grace period's thread made before `heavy()`.
//!
//! On Linux this is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: the kernel
//! runs a full barrier on every CPU currently running a thread of this
//! process, so `light()` only has to stop the *compiler* from reordering.
//! Where membarrier is unavailable, switched off (`OWNRCU_NO_MEMBARRIER=1`),
//! or under loom and Miri (which cannot model a syscall), both sides are a
//! real `fence(SeqCst)`.
//!
//! The choice is made once per process, before the first thread registers
//! with any domain, and never changes, so a reader and a grace period always
//! agree on it.

use core::sync::atomic::{compiler_fence, AtomicU8, Ordering};

use crate::sync::fence;

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

/// The reader's half: a compiler fence when grace periods use membarrier, a
/// full fence otherwise.
#[inline(always)]
pub(crate) fn light() {
    // Relaxed is enough: the value was written before this thread registered
    // (by this thread's own `init`, or earlier by another and then observed by
    // it with Acquire), and never changes afterwards. An UNKNOWN read can only
    // make us take the stronger path. Written as `light_with` is, so the
    // common case falls straight through.
    light_with(STRATEGY.load(Ordering::Relaxed) == MEMBARRIER);
}

/// Whether [`light`] is only a compiler fence, for a thread that registered
/// already: the strategy is decided by then and never changes, so a record
/// may keep this answer and pass it to [`light_with`] (one load from the
/// record's own cache line instead of two through the global).
pub(crate) fn light_is_compiler_only() -> bool {
    init();
    STRATEGY.load(Ordering::Relaxed) == MEMBARRIER
}

/// [`light`], with the strategy read beforehand by
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
