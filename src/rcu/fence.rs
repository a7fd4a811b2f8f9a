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
//! A scan that finds every record armed also reads each record's section
//! state for the new grace period there and then, instead of in a second
//! pass: either way the read follows `F`, with no heavy fence between. A
//! record published after the scan read the list is not read at all; it
//! is case 3, whose sections see every unlink before `F`.
//!
//! With the fallback (`fence(SeqCst)` on both sides) every entry fences:
//! records are due forever ([`FenceDue::ALWAYS`]), and starts run the
//! fallback fence as before.
//!
//! # Fencing every entry
//!
//! A thread that enters sections between every two grace periods clears
//! its mark each time, so every start needs the heavy fence, which
//! interrupts it. Where that fence is dear (it interrupted other
//! processors: [`FENCING_MIN_BARRIER_NS`]) and pacing decides when grace
//! periods start (not in a lazy or crowded domain), a start that finds a
//! record not due puts it in *fencing mode* instead: the mark gets a flag
//! ([`FenceDue::FENCING`]), every entry runs the full fence and leaves
//! the mark as it is, and once armed (as a due mark is, one heavy fence
//! later) the record lets every start skip the heavy fence: each entry
//! runs its full fence after publishing its state, so either the start's
//! plain fence comes first in the fences' total order, and the section
//! sees every unlink before it, or the entry's does, and the scan sees
//! the section (entries before the mode was set are case 2). Starts then
//! cost the starting thread little, so pacing lets them come sooner, and
//! garbage waits less.
//!
//! The owner leaves the mode as an entry clears a due mark, clear then
//! fence (case 1 again), when its fenced entries show that the mode does
//! not pay: every [`FENCING_CHECK`] of them, if their fences took more
//! than a quarter of the thread's time (at [`ENTRY_FENCE_NS`] each: its
//! sections are too short), and at the end of a window of
//! [`FENCING_WINDOW`], if other threads started grace periods less often
//! than heavy fences would have let them (the pacing interval that the
//! start that set the mode passed along; the owner's own starts need none
//! of its fences), so none came sooner for it. A start that finds the
//! owner left the mode does not set it again for a few heavy fences,
//! twice as many each time the owner leaves again, and the most when its
//! sections were too short ([`FencePolicy`]). The choice of mode is
//! bookkeeping: no ordering argument depends on it. So that tests reach
//! the mode on any machine, `OWNRCU_FORCE_FENCING_MODE=1` at start-up
//! makes every heavy fence count as dear ([`fencing_forced`]).

use core::cell::Cell;
use core::sync::atomic::Ordering::Relaxed;
use core::sync::atomic::{
    compiler_fence, AtomicBool as StdAtomicBool, AtomicU64 as StdAtomicU64, AtomicU8, Ordering,
};

use crate::sync::{full_fence, AtomicU64};

const UNKNOWN: u8 = 0;
const MEMBARRIER: u8 = 1;
const FENCE: u8 = 2;

/// How the two sides are fenced; written once by [`init`].
static STRATEGY: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether every heavy fence counts as dear (module docs, "Fencing every
/// entry"); written by [`init`], with the same value by every thread.
static FENCING_FORCED: StdAtomicBool = StdAtomicBool::new(false);

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
    // Relaxed: bookkeeping, read by grace-period starts, which come after
    // their thread's own `init`.
    FENCING_FORCED.store(
        chosen == MEMBARRIER && membarrier::fencing_forced(),
        Relaxed,
    );
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

/// Whether `OWNRCU_FORCE_FENCING_MODE=1` was set at start-up (with
/// membarrier in use): grace-period starts then treat every heavy fence as
/// dear, so that busy records enter fencing mode however cheap the fence
/// measured (module docs, "Fencing every entry"). For tests of the mode.
#[cfg(not(loom))]
pub(crate) fn fencing_forced() -> bool {
    FENCING_FORCED.load(Relaxed)
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

/// Whether a record's next section entry must run a full fence, and since
/// which heavy fence (module docs, "Skipping the heavy fence" and "Fencing
/// every entry"). The mark is written by its owner's entries (cleared) and
/// by grace-period starts under the domain's state lock (marked); the rest
/// is bookkeeping for the choice of mode.
#[cfg_attr(loom, doc(hidden))]
#[derive(Debug)]
#[repr(C)] // the mark first: it shares the line each entry writes
pub struct FenceDue {
    mark: AtomicU64,
    /// The owner's count of fenced entries in the current window, in
    /// fencing mode (owner only).
    fenced: Cell<u32>,
    /// Grace periods the owner thread started itself (in this domain),
    /// and, when the current window began, the domain's epoch and that
    /// count (owner only).
    own_starts: Cell<u64>,
    window_epoch: Cell<u64>,
    window_own: Cell<u64>,
    /// When the current window began, and the mark it counts under: a
    /// start that sets the mode again writes a new one (owner only).
    #[cfg(not(loom))]
    window_at: Cell<std::time::Instant>,
    window_mark: Cell<u64>,
}

/// A record's choice between plain and fencing mode, as its grace-period
/// starts make it (module docs, "Fencing every entry"): written by starts
/// under the domain's state lock, read (and, when the mode pays, the
/// pause reset) by the owner at the end of its windows. Kept apart from
/// [`FenceDue`], on a line of its own, since starts write it while the
/// owner enters sections.
#[cfg_attr(loom, doc(hidden))]
#[derive(Debug)]
#[repr(align(64))]
pub struct FencePolicy {
    /// How often grace periods could start if each ran the heavy fence
    /// (the pacing interval, in nanoseconds), as the start that set the
    /// mode measured it.
    paced_ns: StdAtomicU64,
    /// Whether a start set fencing mode and none has found the record not
    /// due since (so the next that does knows the owner left the mode);
    /// the domain's heavy-fence count before which no start sets the mode
    /// again; and how many heavy fences the next such pause lasts.
    was_fencing: StdAtomicBool,
    retry_at: StdAtomicU64,
    pause: StdAtomicU64,
}

impl Default for FencePolicy {
    fn default() -> Self {
        Self {
            paced_ns: StdAtomicU64::new(0),
            was_fencing: StdAtomicBool::new(false),
            retry_at: StdAtomicU64::new(0),
            pause: StdAtomicU64::new(FENCING_PAUSE_MIN),
        }
    }
}

impl FenceDue {
    /// Not due: an entry runs the light fence only.
    const NOT_DUE: u64 = 0;
    /// Due and armed from birth: a new record.
    const FRESH: u64 = 1;
    /// Fencing mode: every entry runs a full fence and the mark stays; the
    /// rest of the word is the heavy-fence count it is armed at, as for a
    /// due mark.
    const FENCING: u64 = 1 << 63;
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

    /// A record in fencing mode, armed, that leaves it at its second
    /// fenced entry if no grace period started meanwhile: for loom models
    /// of the mode.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn fencing() -> Self {
        Self::with(Self::FENCING)
    }

    fn with(mark: u64) -> Self {
        Self {
            mark: AtomicU64::new(mark),
            fenced: Cell::new(0),
            own_starts: Cell::new(0),
            window_epoch: Cell::new(0),
            window_own: Cell::new(0),
            #[cfg(not(loom))]
            window_at: Cell::new(std::time::Instant::now()),
            window_mark: Cell::new(Self::NOT_DUE),
        }
    }

    /// Enters a read section (the record's owner): stores `value` into
    /// `state` (release), then fences, fully if the mark is due.
    #[inline(always)]
    pub fn enter(&self, policy: &FencePolicy, state: &AtomicU64, value: u64) {
        // Release: a scan that reads this value also sees the owner's
        // previous exit, and everything that section did.
        state.store(value, Ordering::Release);
        // Relaxed: a mark read late is covered by the heavy fence that arms
        // it (module docs, case 2).
        let mark = self.mark.load(Ordering::Relaxed);
        if mark != Self::NOT_DUE {
            if self.counted_between_checks(mark) {
                full_fence();
            } else {
                self.fence_due(policy, mark, value >> 1);
            }
        }
        compiler_fence(Ordering::SeqCst);
    }

    /// Whether an entry under the due `mark` is a fencing-mode entry that
    /// neither starts its window nor is one at which the owner weighs the
    /// mode (every [`FENCING_CHECK`]th), counting it if so: such an entry
    /// only runs the full fence. [`window_over`](Self::window_over) counts
    /// the others.
    #[inline(always)]
    fn counted_between_checks(&self, mark: u64) -> bool {
        let fenced = self.fenced.get() + 1;
        // The fallback's mark (`ALWAYS`) never starts a window, so it is
        // never the window's mark.
        let between = mark & Self::FENCING != 0
            && self.window_mark.get() == mark
            && fenced % FENCING_CHECK != 0;
        if between {
            self.fenced.set(fenced);
        }
        between
    }

    /// The end of [`enter`](Self::enter) with the mark due, other than
    /// [`counted_between_checks`](Self::counted_between_checks): clear it
    /// (or, in fencing mode, keep it), then the full fence, in this order
    /// (module docs, case 1).
    #[cold]
    #[inline(never)]
    fn fence_due(&self, policy: &FencePolicy, mark: u64, epoch: u64) {
        if mark & Self::FENCING == 0
            || (mark != Self::ALWAYS && self.window_over(policy, mark, epoch))
        {
            // A plain store: starts only ever mark a record found not due,
            // so nobody changes a mark between this entry's load and here.
            self.mark.store(Self::NOT_DUE, Ordering::Relaxed);
        }
        full_fence();
    }

    /// Counts a fenced entry in fencing mode (owner only), and at the end
    /// of a window of them, whether the record should leave the mode
    /// (module docs, "Fencing every entry"). The first entry under a new
    /// mark starts a window.
    fn window_over(&self, policy: &FencePolicy, mark: u64, epoch: u64) -> bool {
        let fenced = self.fenced.get() + 1;
        if self.window_mark.replace(mark) != mark {
            self.fenced.set(0);
            self.window_epoch.set(epoch);
            self.window_own.set(self.own_starts.get());
            #[cfg(not(loom))]
            self.window_at.set(std::time::Instant::now());
            return false;
        }
        self.fenced.set(fenced);
        if fenced % FENCING_CHECK != 0 {
            return false;
        }
        // Only starts by other threads need this record's fences; they
        // are weighed at the end of the window, the fences' share at
        // every check.
        let started = (fenced == FENCING_WINDOW).then(|| {
            self.fenced.set(0);
            let all = epoch.wrapping_sub(self.window_epoch.replace(epoch));
            let own = self.own_starts.get() - self.window_own.replace(self.own_starts.get());
            all.saturating_sub(own)
        });
        #[cfg(not(loom))]
        {
            let now = std::time::Instant::now();
            let took = now.duration_since(self.window_at.get()).as_nanos();
            if started.is_some() {
                self.window_at.set(now);
            }
            if fences_too_dear(took, fenced) {
                // Sections too short for the mode: that changes slowly,
                // so the longest pause before a start sets it again.
                policy.pause.store(FENCING_PAUSE_MAX, Relaxed);
                return true;
            }
            let Some(started) = started else {
                return false;
            };
            if starts_too_rare(took, started, policy.paced_ns.load(Relaxed)) {
                return true;
            }
            // It pays: the next pause, if the owner leaves later, is short
            // again.
            policy.pause.store(FENCING_PAUSE_MIN, Relaxed);
            false
        }
        #[cfg(loom)]
        {
            let _ = policy;
            started == Some(0)
        }
    }

    /// Counts a grace period that the owner thread started itself (it
    /// needs no fence of its own record: module docs, case 4).
    pub(crate) fn own_start(&self) {
        self.own_starts.set(self.own_starts.get() + 1);
    }

    /// For a thread that claims the record: it starts in plain mode, and
    /// its policy afresh. A record left in fencing mode becomes due, armed
    /// at the same heavy fence as its fencing mark was (both were written
    /// at once: case 2 holds for the due mark as it did for the fencing
    /// one), so its first entry clears the mark and fences (case 1: a
    /// start that read the fencing mark read it before that clear).
    #[cold]
    pub(crate) fn new_owner(&self, policy: &FencePolicy) {
        let mark = self.mark.load(Relaxed);
        if mark & Self::FENCING != 0 && mark != Self::ALWAYS {
            // A plain store, as in `fence_due`: only the owner changes a
            // mark that is not `NOT_DUE`. A fencing mark armed from birth
            // (count 0) becomes `FRESH`, the due mark armed from birth.
            self.mark
                .store((mark & !Self::FENCING).max(Self::FRESH), Relaxed);
        }
        self.window_mark.set(Self::NOT_DUE);
        policy.was_fencing.store(false, Relaxed);
        policy.retry_at.store(0, Relaxed);
        policy.pause.store(FENCING_PAUSE_MIN, Relaxed);
    }

    /// For a grace-period start, after its plain fence and under the
    /// domain's state lock, with `barriers` the domain's heavy fences so
    /// far: whether the record is armed. If it is not due, marks it due
    /// before the heavy fence the caller must then run: in fencing mode
    /// if the caller gives `paced_ns` (heavy fences are dear, and grace
    /// periods that run them start at most every `paced_ns`) and the owner
    /// did not just leave the mode.
    pub fn arm(&self, policy: &FencePolicy, barriers: u64, paced_ns: Option<u64>) -> Arming {
        // Relaxed: ordered after the caller's fence (module docs, case 1).
        // Only a record found not due has its policy read or written: a
        // start visits every record, and most are idle.
        match self.mark.load(Relaxed) {
            Self::NOT_DUE => {
                if policy.was_fencing.swap(false, Relaxed) {
                    // The owner left fencing mode: not again for a while,
                    // and for twice as long if it leaves it again.
                    let pause = policy.pause.load(Relaxed);
                    policy.retry_at.store(barriers + pause, Relaxed);
                    policy
                        .pause
                        .store((pause * 2).min(FENCING_PAUSE_MAX), Relaxed);
                }
                // Marks are `barriers + 2`, two above the count before the
                // heavy fence that follows (so never `FRESH`), armed once
                // the count reaches them. A compare-exchange: the owner
                // may clear a mark meanwhile, never set one.
                let mut new = barriers + 2;
                if let Some(paced_ns) =
                    paced_ns.filter(|_| barriers >= policy.retry_at.load(Relaxed))
                {
                    policy.paced_ns.store(paced_ns, Relaxed);
                    policy.was_fencing.store(true, Relaxed);
                    new |= Self::FENCING;
                }
                match self
                    .mark
                    .compare_exchange(Self::NOT_DUE, new, Relaxed, Relaxed)
                {
                    Ok(_) if new & Self::FENCING != 0 => Arming::SetFencing,
                    _ => Arming::NotArmed,
                }
            }
            Self::FRESH | Self::ALWAYS => Arming::Armed,
            mark if mark & !Self::FENCING <= barriers => Arming::Armed,
            _ => Arming::NotArmed,
        }
    }
}

/// What a grace-period start found at a record ([`FenceDue::arm`]).
#[cfg_attr(loom, doc(hidden))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arming {
    /// Armed: the start needs no heavy fence for this record.
    Armed,
    /// Not armed: found due and not armed yet, or found not due and now
    /// marked due: the start runs the heavy fence.
    NotArmed,
    /// Not armed, and now in fencing mode: the start runs the heavy fence.
    SetFencing,
}

impl Arming {
    /// Whether the start may skip the heavy fence for this record.
    pub fn is_armed(self) -> bool {
        self == Self::Armed
    }
}

/// Entries per window in fencing mode: how often the owner weighs the
/// mode (module docs, "Fencing every entry").
#[cfg(not(any(loom, miri)))]
const FENCING_WINDOW: u32 = 65_536;
#[cfg(miri)]
const FENCING_WINDOW: u32 = 64;
#[cfg(loom)]
const FENCING_WINDOW: u32 = 2;

/// How often in a window the owner checks the fences' share of its time,
/// so that a thread whose sections are too short for the mode leaves it
/// early (a divisor of `FENCING_WINDOW`).
#[cfg(not(any(loom, miri)))]
const FENCING_CHECK: u32 = 4096;
#[cfg(miri)]
const FENCING_CHECK: u32 = 16;
#[cfg(loom)]
const FENCING_CHECK: u32 = FENCING_WINDOW;

/// What a full fence on a section entry costs, in nanoseconds, about.
#[cfg(not(loom))]
const ENTRY_FENCE_NS: u64 = 8;

/// Fencing mode may take up to one part in this of its thread's time, by
/// `ENTRY_FENCE_NS`: a thread whose sections are shorter pays more for
/// its fences than the mode saves it (a heavy fence's interruption every
/// few hundred microseconds).
#[cfg(not(loom))]
const FENCING_MAX_SHARE: u128 = 4;

/// Whether `fenced` fenced entries that took `took_ns` spent more than
/// their share of the thread's time in fences: its sections are too short
/// for fencing mode.
#[cfg(not(loom))]
fn fences_too_dear(took_ns: u128, fenced: u32) -> bool {
    took_ns < u128::from(fenced) * u128::from(ENTRY_FENCE_NS) * FENCING_MAX_SHARE
}

/// Whether a window of fenced entries that took `took_ns` saw other
/// threads start grace periods (`started`) less often than heavy fences
/// would have let them (three quarters of the rate at `paced_ns`, for the
/// jitter of paced starts): no grace period came sooner for the mode.
#[cfg(not(loom))]
fn starts_too_rare(took_ns: u128, started: u64, paced_ns: u64) -> bool {
    u128::from(started) * u128::from(paced_ns) * 4 < took_ns * 3
}

/// A heavy fence cheaper than this (nanoseconds) interrupted no other
/// processor: starts put records in fencing mode only while heavy fences
/// cost more.
#[cfg(not(loom))]
pub(crate) const FENCING_MIN_BARRIER_NS: u64 = 1_000;

/// Heavy fences after the owner left fencing mode before a start sets it
/// again: doubled each time it leaves again, up to the maximum.
const FENCING_PAUSE_MIN: u64 = 4;
const FENCING_PAUSE_MAX: u64 = 1024;

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
        full_fence();
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
        if switched_on("OWNRCU_NO_MEMBARRIER") {
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

    /// Whether the environment asks for fencing mode whenever pacing
    /// allows it ([`super::fencing_forced`]).
    pub(super) fn fencing_forced() -> bool {
        switched_on("OWNRCU_FORCE_FENCING_MODE")
    }

    /// Whether the environment variable `name` is set, to neither `""` nor
    /// `"0"`.
    fn switched_on(name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
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
    pub(super) fn fencing_forced() -> bool {
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Arming, FenceDue, FencePolicy, FENCING_WINDOW};
    use crate::sync::AtomicU64;
    use core::sync::atomic::Ordering::Relaxed;

    /// The life of a mark: armed from birth; an entry clears it; the next
    /// start marks it and is not armed; armed once one more heavy fence
    /// has been counted; cleared again by the next entry.
    #[test]
    fn a_mark_is_armed_one_heavy_fence_after_it_was_written() {
        let due = FenceDue::with(FenceDue::FRESH);
        let policy = FencePolicy::default();
        let state = AtomicU64::new(0);
        assert!(
            due.arm(&policy, 0, None).is_armed(),
            "a new record is armed"
        );
        due.enter(&policy, &state, 1);
        assert!(
            !due.arm(&policy, 5, None).is_armed(),
            "an entry cleared the mark"
        );
        // Marked before the heavy fence that makes the count 6.
        assert!(
            !due.arm(&policy, 6, None).is_armed(),
            "not armed by its own heavy fence"
        );
        assert!(
            due.arm(&policy, 7, None).is_armed(),
            "armed after the next one"
        );
        due.enter(&policy, &state, 3);
        assert!(!due.arm(&policy, 7, None).is_armed(), "cleared again");
    }

    /// Runs a window of fenced entries, in sections that read `epoch`.
    fn window(due: &FenceDue, policy: &FencePolicy, state: &AtomicU64, epoch: u64) {
        for _ in 0..FENCING_WINDOW {
            due.enter(policy, state, epoch << 1 | 1);
        }
    }

    /// Whether the record is in fencing mode.
    fn fencing(due: &FenceDue) -> bool {
        let mark = due.mark.load(Relaxed);
        mark & FenceDue::FENCING != 0 && mark != FenceDue::ALWAYS
    }

    /// Fencing mode: set by a start that is given the pacing interval,
    /// armed one heavy fence later like a due mark, kept by entries while
    /// other threads start grace periods often enough, left by the owner
    /// after a window without them (its own starts do not count); a start
    /// then waits a few heavy fences (twice as many after each leaving)
    /// before it sets the mode again.
    #[test]
    fn fencing_mode_is_kept_while_other_starts_come_and_left_when_they_stop() {
        // One start a second at most if each ran the heavy fence.
        const PACED: Option<u64> = Some(1_000_000_000);
        // Longer than a window's fences' share of it (`fences_too_dear`).
        let long = || std::thread::sleep(std::time::Duration::from_millis(5));
        let due = FenceDue::with(FenceDue::NOT_DUE);
        let policy = FencePolicy::default();
        let state = AtomicU64::new(0);
        assert_eq!(
            due.arm(&policy, 5, PACED),
            Arming::SetFencing,
            "set, not armed yet"
        );
        assert!(fencing(&due));
        assert!(!due.arm(&policy, 6, PACED).is_armed());
        assert!(
            due.arm(&policy, 7, PACED).is_armed(),
            "armed after the next heavy fence"
        );
        // The first entry under the mark starts a window (epoch 10); a
        // long one in which another thread started a grace period keeps
        // the mode.
        due.enter(&policy, &state, 10 << 1 | 1);
        long();
        window(&due, &policy, &state, 11);
        assert!(fencing(&due), "kept");
        // A long window in which only the owner started one ends it.
        long();
        due.own_start();
        window(&due, &policy, &state, 12);
        assert_eq!(due.mark.load(Relaxed), FenceDue::NOT_DUE, "left");
        assert_eq!(
            due.arm(&policy, 8, PACED),
            Arming::NotArmed,
            "marked due for 4 heavy fences"
        );
        assert!(!fencing(&due));
        due.enter(&policy, &state, 1);
        assert!(
            !due.arm(&policy, 11, PACED).is_armed(),
            "an entry cleared it; still paused"
        );
        assert!(!fencing(&due));
        due.enter(&policy, &state, 1);
        assert_eq!(due.arm(&policy, 12, PACED), Arming::SetFencing, "set again");
        assert!(fencing(&due));
        assert!(due.arm(&policy, 14, PACED).is_armed());
        due.enter(&policy, &state, 12 << 1 | 1);
        long();
        window(&due, &policy, &state, 12);
        assert!(
            !due.arm(&policy, 15, PACED).is_armed(),
            "left again: 8 heavy fences"
        );
        due.enter(&policy, &state, 1);
        assert!(!due.arm(&policy, 22, PACED).is_armed());
        assert!(!fencing(&due));
        due.enter(&policy, &state, 1);
        assert_eq!(due.arm(&policy, 23, PACED), Arming::SetFencing);
        assert!(fencing(&due), "set again");
    }

    /// The window's verdict: the mode is left when its fences take more
    /// than a quarter of the time, or when other threads start grace
    /// periods less than three quarters as often as pacing would allow.
    #[test]
    fn a_window_weighs_its_fences_and_the_starts_it_saw() {
        use super::{fences_too_dear, starts_too_rare};
        let n = FENCING_WINDOW;
        let fences = u128::from(n) * u128::from(super::ENTRY_FENCE_NS);
        assert!(fences_too_dear(fences * 3, n), "a third of the time");
        assert!(!fences_too_dear(fences * 4, n), "a quarter");
        assert!(fences_too_dear(fences * 3 / 2, n / 2), "mid-window too");
        let took = fences * 16;
        let paced = u64::try_from(took / 10).unwrap();
        assert!(!starts_too_rare(took, 10, paced), "paced rate");
        assert!(!starts_too_rare(took, 8, paced), "0.8 of it");
        assert!(starts_too_rare(took, 7, paced), "0.7 of it");
        assert!(starts_too_rare(took, 0, paced));
    }

    /// A new owner of a record in fencing mode starts in plain mode: the
    /// mark becomes due, armed at the same heavy fence.
    #[test]
    fn a_new_owner_starts_in_plain_mode() {
        const PACED: Option<u64> = Some(1_000_000_000);
        let due = FenceDue::with(FenceDue::NOT_DUE);
        let policy = FencePolicy::default();
        let state = AtomicU64::new(0);
        assert!(!due.arm(&policy, 5, PACED).is_armed());
        due.new_owner(&policy);
        assert!(!fencing(&due));
        assert!(!due.arm(&policy, 6, PACED).is_armed(), "armed no sooner");
        assert!(due.arm(&policy, 7, PACED).is_armed());
        due.enter(&policy, &state, 1);
        assert_eq!(due.mark.load(Relaxed), FenceDue::NOT_DUE, "cleared");
        let armed = FenceDue::with(FenceDue::FENCING);
        armed.new_owner(&policy);
        assert_eq!(armed.mark.load(Relaxed), FenceDue::FRESH);
    }

    /// Without the pacing interval (heavy fences are cheap) a start marks
    /// a record due, never fencing.
    #[test]
    fn cheap_heavy_fences_leave_records_in_the_plain_mode() {
        let due = FenceDue::with(FenceDue::NOT_DUE);
        let policy = FencePolicy::default();
        let state = AtomicU64::new(0);
        assert!(!due.arm(&policy, 0, None).is_armed());
        assert!(!fencing(&due));
        assert!(due.arm(&policy, 2, None).is_armed());
        due.enter(&policy, &state, 1);
        assert!(
            !due.arm(&policy, 2, None).is_armed(),
            "the entry cleared it"
        );
    }

    /// With the fallback every entry fences, and the mark never clears.
    #[test]
    fn the_fallback_is_due_forever() {
        let due = FenceDue::with(FenceDue::ALWAYS);
        let policy = FencePolicy::default();
        let state = AtomicU64::new(0);
        due.enter(&policy, &state, 1);
        assert!(due.arm(&policy, 0, None).is_armed());
    }
}
