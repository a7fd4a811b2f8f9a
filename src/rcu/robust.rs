//! Robust domains: the reader side of freeing ahead of a grace period, and
//! the birth stamps that make it possible.
//!
//! A robust domain ([`DomainBuilder::robust`](crate::DomainBuilder::robust),
//! whose doc states the property for users) counts *eras* with its epoch:
//! the era is one more than the grace periods started ([`era_of`]), so no
//! birth is 0, the birth of objects retired without one. An object retired with a
//! [`Birth`] may be freed before its grace period completes, once no
//! reader that blocks that grace period can hold it.
//!
//! # Invariant
//!
//! Every object a record's section may dereference through
//! [`Link`](crate::Link) or [`Atomic`](crate::Atomic) was born at or
//! before the record's `hi`, as a scanner sees it after its fence (a
//! plain `fence(SeqCst)` or a grace period's heavy fence), whether or not
//! the scanner also sees the section's entry. Every store that raises
//! `hi` is followed by a full fence before any load that relies on it, so
//! a value a later section finds already high enough was fenced too. Three
//! steps keep it:
//!
//! 1. **Protected loads** (`Guard::protect`, which tests the domain's
//!    robust bit in the guard first): load the pointer
//!    (`Acquire`), then the era `e`. If `trusted >= e` (a value of `hi`
//!    whose fence happened before this load), return: the object was
//!    published after its birth was read ([`Domain::birth`](crate::Domain::birth),
//!    from the same epoch), and our `Acquire` load read that publication,
//!    so its birth is at most `e`, which `hi` already covers. Otherwise
//!    store `hi = e`, run a full fence, and start over (a new object may
//!    have been published meanwhile, with a newer birth); once a reload is
//!    covered, `trusted = hi`. A scanner whose fence precedes ours freed
//!    only objects unlinked before it, which the reload cannot see; one
//!    whose fence follows ours sees `hi = e` or more.
//! 2. **Exchanges** (`Guard::exchange`): a read-modify-write's previous
//!    value cannot be loaded again, so the record reserves every era
//!    (`hi = u64::MAX`, full fence) around it, and then lowers `hi` to the
//!    era read after it, which covers the value it returned (step 1's
//!    argument). A scanner that reads an older `hi` ran its fence before
//!    ours, so the exchange saw every unlink it relied on.
//! 3. **Owned sections** (module `owned`): their `&Guard` may be used on
//!    several threads at once, so `hi` only grows there (`fetch_max` in
//!    step 1), and a thread may not rely on a value another one raised it
//!    to (that thread's fence does not order our load): they never write
//!    `trusted`, so a protected load that `trusted` does not cover reads
//!    `hi`, fences, loads, and trusts only what it read before its own
//!    fence; every exchange fences. An exchange leaves `hi` at
//!    `u64::MAX` until the section ends or repins
//!    (`Record::reset_reservation`, with no load of the section in flight,
//!    which lowers it to the current era, and never raises it).
//!
//! A record's `hi` is never above the era except `u64::MAX`. It never
//! goes down, except from `u64::MAX` to an era read after every access
//! of the section that raised it (an exchange's end, an owned section's
//! repin or end): a scan may read a record's `state` from one section and
//! its `hi` from a later one (two locations, no order between the reads),
//! and must still find a bound of what the earlier section may hold. It
//! stays from one section to the next: a section that loads in the same
//! era as the last one publishes nothing, and a record outside any
//! section still reserves its last era, which only a scanner that sees it
//! outside (its own thread's) or a barrier scan (which reads `state`
//! after the heavy fence) may ignore.
//!
//! The scan that uses the reservations is the machine's (`machine::early`).

use core::sync::atomic::Ordering::Relaxed;

use crate::rcu::record::Record;
use crate::sync::full_fence;

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

/// The era of a domain whose epoch (the grace periods started) is `epoch`:
/// one more, so that no birth is
/// [`UNKNOWN_BIRTH`](crate::rcu::retired::UNKNOWN_BIRTH) (0), which only
/// objects retired without a birth carry, and which no scan frees.
#[inline(always)]
pub(crate) const fn era_of(epoch: u64) -> u64 {
    epoch + 1
}

impl Record {
    /// Step 1 of the module's invariant: `value` was just loaded by `load`.
    /// Its usual case, a fenced reservation already covering the era, is
    /// inline; the rest (after the era moved on, or in an owned section
    /// that found none) is out of line.
    #[inline(always)]
    pub(crate) fn protect_robust<P>(&self, value: P, load: impl Fn() -> P) -> P {
        if self.covers_era() {
            return value;
        }
        self.protect_robust_slow(load)
    }

    /// The domain's era, from its epoch read `Relaxed`: every caller reads
    /// it after an access of the section (a load that was `Acquire`, an
    /// exchange), so it returns at least every birth that access could see
    /// (coherence on this one counter).
    #[inline(always)]
    fn era(&self) -> u64 {
        // SAFETY: the record's domain outlives it (`Record::epoch`).
        era_of(unsafe { &*self.epoch }.load(Relaxed))
    }

    /// Whether `trusted` covers the current era (step 1's test): a value
    /// of `hi` fenced by a thread whose fence happened before this load
    /// (this thread, or the record's earlier user, before it was handed
    /// over), and `hi` never went below it since.
    #[inline(always)]
    fn covers_era(&self) -> bool {
        // Relaxed: written by the owner thread only, outside owned sections.
        self.trusted.load(Relaxed) >= self.era()
    }

    /// Step 1 after the era moved on, or in an owned section: publish,
    /// fence, load again. Only what `hi` held before our own fence vouches
    /// for the reload: in an owned section another thread may raise it
    /// meanwhile, and its fence is not ordered before our load. Outside
    /// owned sections, what vouched becomes `trusted`.
    #[cold]
    #[inline(never)]
    fn protect_robust_slow<P>(&self, load: impl Fn() -> P) -> P {
        let owned = self.is_owned();
        loop {
            let mut vouched = self.hi.load(Relaxed);
            let e = self.era();
            if vouched < e {
                if owned {
                    // Other threads may raise it at the same time (step 3).
                    self.hi.fetch_max(e, Relaxed);
                } else {
                    self.hi.store(e, Relaxed);
                }
                vouched = e;
            }
            // A full fence, not the light one: it pairs with a fenced
            // scan's plain fence as well (module invariant, step 1).
            full_fence();
            let value = load();
            if vouched >= self.era() {
                if !owned {
                    self.trusted.store(vouched, Relaxed);
                }
                return value;
            }
        }
    }

    /// Step 2 of the module's invariant, before the exchange: reserves
    /// every era, and fences even where `hi` did already (an owned
    /// section's, raised by another thread, whose fence is not ordered
    /// before our exchange). Returns whether
    /// [`end_exchange`](Self::end_exchange) must follow it (not in an owned
    /// section, whose `hi` stays, step 3).
    #[inline(never)]
    pub(crate) fn begin_exchange(&self) -> bool {
        if self.hi.load(Relaxed) != u64::MAX {
            self.hi.store(u64::MAX, Relaxed);
        }
        // Full: as in `protect_robust_slow` (module invariant, step 2).
        full_fence();
        !self.is_owned()
    }

    /// Step 2, after the exchange (which was `Acquire` at least): lowers
    /// `hi` to the era, which covers the value the exchange returned.
    #[inline(never)]
    pub(crate) fn end_exchange(&self) {
        // Relaxed: only this section writes `hi` (not an owned one).
        self.hi.store(self.era(), Relaxed);
    }

    /// Forgets what the section reserved beyond the current era (an
    /// owned section's repin or end, a claim): no load of the section may
    /// be in flight. Never below the era (module invariant, on `hi`'s
    /// monotony), and never raises it (only a fenced store may).
    pub(crate) fn reset_reservation(&self) {
        // The era is read after every access of the section (program
        // order), so it is at least every era those accesses read.
        let era = self.era();
        // Relaxed: no other thread writes `hi` while no load is in flight.
        if self.hi.load(Relaxed) > era {
            self.hi.store(era, Relaxed);
        }
    }

    /// The reservation of a record a barrier scan found in a section that
    /// began at epoch `lo`: read after the heavy fence and the record's
    /// `state`.
    pub(crate) fn reservation(&self, lo: u64) -> u64 {
        // Relaxed: the heavy fence before the scan orders it against the
        // section's fences (module invariant).
        self.hi.load(Relaxed).max(era_of(lo))
    }

    /// What a record reserves, in a section or not, as a fenced scan reads
    /// it after its fence.
    pub(crate) fn reserved(&self) -> u64 {
        // Relaxed: the scan's fence orders it against the record's fences
        // (module invariant).
        self.hi.load(Relaxed)
    }
}
