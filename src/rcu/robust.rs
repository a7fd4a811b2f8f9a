//! Robust domains: the reader side of freeing ahead of a grace period, and
//! the birth stamps that make it possible.
//!
//! A robust domain ([`DomainBuilder::robust`](crate::DomainBuilder::robust),
//! whose doc states the property for users) uses its epoch (the number of
//! grace periods started) as an *era*. An object retired with a
//! [`Birth`] may be freed before its grace period completes, once no
//! reader that blocks that grace period can hold it.
//!
//! # Invariant
//!
//! While a record is in a section, every object its section may
//! dereference through [`Link`](crate::Link) or [`Atomic`](crate::Atomic)
//! was born at or before the record's *reservation* `max(lo, hi)` (`lo`
//! the epoch in `state`, `hi` the record's field), as a scanner sees them
//! after a heavy fence. Three steps keep it:
//!
//! 1. **Protected loads** (`Guard::protect`, which tests the domain's
//!    robust bit in the guard first): load the pointer
//!    (`Acquire`), then the epoch `e`. If `hi >= e`, return: the object was
//!    published after its birth was read from the epoch, and our `Acquire`
//!    load read that publication, so its birth is at most `e`, which `hi`
//!    already covers. Otherwise store `hi = e`, run the light fence, and
//!    start over (a new object may have been published meanwhile, with a
//!    newer birth). A scanner whose heavy fence precedes our light fence
//!    freed only objects unlinked before it, which the reload cannot see;
//!    one whose fence follows it sees `hi = e`.
//! 2. **Exchanges** (`Guard::exchange`): a read-modify-write's previous
//!    value cannot be loaded again, so the record reserves every epoch
//!    (`hi = u64::MAX`, light fence) around it, and then lowers `hi` to the
//!    epoch read after it, which covers the value it returned (step 1's
//!    argument). A scanner that reads the old `hi` ran its heavy fence
//!    before our light fence, so the exchange saw every unlink it relied on.
//! 3. **Owned sections** (module `owned`): their `&Guard` may be used on
//!    several threads at once, so `hi` only grows there (`fetch_max` in
//!    step 1; each thread's own fence orders its own reload), and an
//!    exchange leaves it at `u64::MAX` until the section ends or repins
//!    (`Record::reset_reservation`, with no load of the section in flight,
//!    which lowers it to the current epoch).
//!
//! A record's `hi` is never above the epoch except `u64::MAX`, so a stale
//! value from an earlier section reserves less than the new section's `lo`
//! and costs nothing. And `hi` never goes down, except from `u64::MAX` to
//! an epoch read after every access of the section that raised it (an
//! exchange's end, an owned section's repin or end): a scan may read a
//! record's `state` from one section and its `hi` from a later one (two
//! locations, no order between the reads), and must still find a bound
//! of what the earlier section may hold.
//!
//! The scan that uses the reservations is the machine's (`machine::early`).

use core::sync::atomic::Ordering::Relaxed;

use crate::rcu::fence;
use crate::rcu::record::Record;

/// When an object became reachable, in a robust domain's eras: read it with
/// [`Domain::birth`](crate::Domain::birth) before publishing the object,
/// keep it (in the object's header, say), and give it back when retiring
/// the object ([`Domain::retire_born`](crate::Domain::retire_born)). Eight
/// bytes, `Copy`; compare births to see which object is younger.
///
/// # Examples
///
/// ```
/// let domain = ownrcu::Domain::builder().robust(true).build();
/// let first = domain.birth();
/// domain.synchronize(); // a grace period starts: the era moves on
/// assert!(domain.birth() > first);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Birth(pub(crate) u64);

impl Record {
    /// Step 1 of the module's invariant: `value` was just loaded by `load`.
    /// Its usual case, `hi` already covering the epoch, is inline; the
    /// rest (after the epoch moved on during the section) is out of line.
    #[inline(always)]
    pub(crate) fn protect_robust<P>(&self, value: P, load: impl Fn() -> P) -> P {
        if self.covers_epoch() {
            return value;
        }
        self.protect_robust_slow(load)
    }

    /// The domain's epoch, `Relaxed`: every caller reads it after an
    /// access of the section (a load that was `Acquire`, an exchange), so
    /// it returns at least every birth that access could see (coherence on
    /// this one counter).
    #[inline(always)]
    fn era(&self) -> u64 {
        // SAFETY: the record's domain outlives it (`Record::epoch`).
        unsafe { &*self.epoch }.load(Relaxed)
    }

    /// Whether `hi` covers the current epoch (step 1's test).
    #[inline(always)]
    fn covers_epoch(&self) -> bool {
        // Relaxed (`hi`): written by this section only, or, in an owned
        // section, only raised by the others (step 3).
        self.hi.load(Relaxed) >= self.era()
    }

    /// Step 1 after the epoch moved on: publish, fence, load again.
    #[cold]
    #[inline(never)]
    fn protect_robust_slow<P>(&self, load: impl Fn() -> P) -> P {
        loop {
            let e = self.era();
            if self.is_owned() {
                // Other threads may raise it at the same time (step 3).
                self.hi.fetch_max(e, Relaxed);
            } else {
                self.hi.store(e, Relaxed);
            }
            // Pairs with the scan's heavy fence (module invariant, step 1).
            fence::light_with(self.light_compiler_only());
            let value = load();
            if self.covers_epoch() {
                return value;
            }
        }
    }

    /// Step 2 of the module's invariant, before the exchange: reserves
    /// every epoch. Returns whether [`end_exchange`](Self::end_exchange)
    /// must follow it (not in an owned section, whose `hi` stays, step 3,
    /// nor when `hi` reserved every epoch already).
    #[inline(never)]
    pub(crate) fn begin_exchange(&self) -> bool {
        if self.hi.load(Relaxed) == u64::MAX {
            return false; // an owned section's, reserving every epoch already
        }
        self.hi.store(u64::MAX, Relaxed);
        // Pairs with the scan's heavy fence (module invariant, step 2).
        fence::light_with(self.light_compiler_only());
        !self.is_owned()
    }

    /// Step 2, after the exchange (which was `Acquire` at least): lowers
    /// `hi` to the epoch, which covers the value the exchange returned.
    #[inline(never)]
    pub(crate) fn end_exchange(&self) {
        // Relaxed: only this section writes `hi` (not an owned one).
        self.hi.store(self.era(), Relaxed);
    }

    /// Forgets what the section reserved beyond the current epoch (an
    /// owned section's repin or end, a claim): no load of the section may
    /// be in flight. Never below the epoch (module invariant, on `hi`'s
    /// monotony).
    pub(crate) fn reset_reservation(&self) {
        // The era is read after every access of the section (program
        // order), so it is at least every epoch those accesses read.
        self.hi.store(self.era(), Relaxed);
    }

    /// The reservation of a record a scan found in a section that began at
    /// epoch `lo`: read after the heavy fence and the record's `state`.
    pub(crate) fn reservation(&self, lo: u64) -> u64 {
        // Relaxed: the heavy fence before the scan orders it against the
        // section's light fences (module invariant).
        self.hi.load(Relaxed).max(lo)
    }
}
