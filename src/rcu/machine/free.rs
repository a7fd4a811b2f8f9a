//! Freeing units whose grace period has completed.
//!
//! # Invariants
//!
//! - Destructors of a domain run only under its `freeing` lock, with the
//!   thread marked as freeing that domain (module `freeing`): one thread at
//!   a time per domain, and `barrier` knows when frees in progress end.
//! - A free run takes units off the queue (up to `TAKE_UNITS` under one
//!   state lock, so a slow writer's small bags stay cheap to free while
//!   retiring threads contend for that lock) before their objects are
//!   dropped, and whatever the budget or a panicking destructor leaves goes
//!   back to the front in order, still tagged with its grace period, before
//!   the run releases `freeing`: the queue stays consistent.
//! - Every thread bag a run empties goes back to `State::spare`, under the
//!   next state lock the run takes anyway ([`Emptied`]), so steady single
//!   retirement allocates no bags. When the spare bags are full, it takes
//!   the place of one of another size (a thread's bags shrink while it
//!   retires slowly): spare bags of sizes no thread asks for any more
//!   would otherwise keep every emptied bag of the size in use out, and
//!   each registration would allocate one.
//! - Putting units back rings the reclaimer, as a registration does: while
//!   they were out the queue looked shorter, so the reclaimer may have
//!   parked, and without the ring the rest would be left for good to an
//!   idle writer.

use core::sync::atomic::Ordering::{Relaxed, Release};

use super::counters::Path;
use super::state::{lock, lock_within, try_lock, Inner, State, Waiting, SPARE_BAGS};
use crate::rcu::retired::{Bag, Reclaim};
use crate::rcu::unwind::FirstPanic;

/// Where the oldest queued unit's grace period stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Front {
    /// Nothing queued.
    Empty,
    /// Complete: the unit may be freed.
    Complete,
    /// Started and not complete: a reader holds it up.
    HeldUp,
    /// Not started yet (rationing and pacing decide when).
    Unstarted,
}

impl Inner {
    /// Where the oldest queued unit's grace period stands (state lock held).
    pub(super) fn front(&self, st: &State) -> Front {
        let Some(w) = st.waiting.front() else {
            return Front::Empty;
        };
        if w.gp <= self.completed.load(Relaxed) {
            Front::Complete
        } else if w.gp <= self.epoch.load(Relaxed) {
            Front::HeldUp
        } else {
            Front::Unstarted
        }
    }

    /// Frees up to `budget` objects whose grace period had completed when
    /// the run took the `freeing` lock and is no later than `up_to` (all of
    /// them once the domain is dead); returns how many. A run never chases
    /// grace periods that complete while it frees: other threads may retire
    /// as fast as it frees, and a `barrier` waiting for the lock must get it
    /// after one run. `path` says whether to wait for the `freeing` lock and whether
    /// to keep going past panicking destructors (re-raising the first panic
    /// at the end) or to stop at the first and propagate it. Once the domain
    /// is dead, also when its last handle went inside one of the
    /// destructors this run calls, it frees everything left, past the budget
    /// and past panics.
    pub(super) fn free_completed(&self, budget: usize, up_to: u64, path: Path) -> usize {
        let freeing = match path {
            // Never inside a destructor run: a barrier is refused there
            // (`Domain::barrier`), and a teardown there only tries the lock
            // (below).
            Path::Barrier | Path::Teardown if !crate::rcu::freeing::is_freeing_any() => {
                Some(lock(&self.freeing))
            }
            // A retirement waits for the freer a bounded time: its
            // destructors may wait for grace periods, which readers hold up.
            Path::Backpressure => lock_within(&self.freeing, self.config.max_wait),
            // Also a teardown inside a run of destructors (of any domain or
            // owner): the holder may be waiting for a lock this thread
            // holds. It frees what the teardown leaves once it lets go
            // (`free_left_by_teardown`).
            _ => try_lock(&self.freeing),
        };
        let Some(freeing) = freeing else {
            return 0;
        };
        let up_to = up_to.min(self.completed());
        let mut first_panic = FirstPanic::default();
        let run = || crate::rcu::freeing::freeing(self.id, || self.free_run(budget, up_to, path));
        let freed = first_panic.catch(run);
        drop(freeing);
        self.free_left_by_teardown(&mut first_panic);
        first_panic.resume();
        freed.unwrap_or(0)
    }

    /// Run by every holder of `freeing` right after it lets go: frees what
    /// a teardown that found the lock held left behind (`free_completed`),
    /// keeping the first panic. Either this look, under the state lock,
    /// comes after the teardown marked the domain dead and sees it, or it
    /// comes before, and then the lock was free when the teardown tried it
    /// (or another holder took it, and looks in turn when it lets go).
    pub(super) fn free_left_by_teardown(&self, first_panic: &mut FirstPanic) {
        loop {
            {
                let st = lock(&self.state);
                if !st.dead || st.waiting.is_empty() {
                    return;
                }
            }
            let Some(_freeing) = try_lock(&self.freeing) else {
                return; // its holder looks when it lets go
            };
            let rest = || self.free_run(usize::MAX, u64::MAX, Path::Teardown);
            first_panic.catch(|| crate::rcu::freeing::freeing(self.id, rest));
        }
    }

    /// The run of [`free_completed`](Inner::free_completed), with its
    /// `freeing` lock held and the thread marked as freeing this domain.
    pub(super) fn free_run(&self, budget: usize, up_to: u64, path: Path) -> usize {
        let mut left = budget;
        let mut total = 0;
        let mut first_panic = FirstPanic::default();
        let mut spare = Emptied::new();
        let mut taken = Taken::new(self);
        loop {
            if self.dead.load(Relaxed) {
                // The domain is dead: its last handle went, possibly inside
                // a destructor this run called (`teardown`). Nobody else
                // will free what is left: all of it, here, past panics.
                left = usize::MAX;
            }
            if left == 0 {
                break;
            }
            let Some(Waiting { gp, unit }) = taken.next(up_to, left, &mut spare) else {
                break;
            };
            let (spare, mut rest) = (&mut spare, None);
            // SAFETY: `Taken::next` only returns units whose grace period
            // has completed (or the domain is dead: no reader can exist).
            let freed =
                first_panic.catch(|| unsafe { self.free_unit(unit, left, path, spare, &mut rest) });
            if let Some(unit) = rest {
                taken.put_back(Waiting { gp, unit });
            }
            total += freed.unwrap_or(0);
            left = left.saturating_sub(freed.unwrap_or(0).max(1));
            if first_panic.caught() && !path.frees_past_panics() && !self.dead.load(Relaxed) {
                break; // propagated once the spare bag is back
            }
        }
        // Back to the queue while we still hold `freeing`, before a barrier
        // can look.
        drop(taken);
        if !spare.is_empty() {
            Self::keep_spare(&mut lock(&self.state), &mut spare);
        }
        if path == Path::Reclaimer {
            // Stashed for the next `barrier` or the teardown while we still
            // hold `freeing`: both take it before they look, so neither can
            // look between our last free and the stash and miss the panic.
            self.stash_first(first_panic);
        } else {
            first_panic.resume();
        }
        total
    }

    /// Frees up to `max` objects of `unit`, returning how many. Even if a
    /// destructor panics, the objects freed are counted and the rest are
    /// left in `rest`; an emptied thread bag goes to `spare`, which must
    /// have room for it.
    ///
    /// # Safety
    ///
    /// The unit's grace period has completed, or no reader can exist.
    pub(super) unsafe fn free_unit(
        &self,
        unit: Box<dyn Reclaim>,
        max: usize,
        path: Path,
        spare: &mut Emptied,
        rest: &mut Option<Box<dyn Reclaim>>,
    ) -> usize {
        let before = unit.len();
        let mut unit = scopeguard::guard(unit, |unit| {
            let freed = (before - unit.len()) as u64;
            self.counters.freed_by[path as usize].fetch_add(freed, Relaxed);
            // Release, after the destructors and the path count: a snapshot
            // whose (Acquire) `freed` includes these objects sees both.
            self.counters.freed.fetch_add(freed, Release);
            if unit.len() > 0 {
                *rest = Some(unit);
            } else if let Some(mut bag) = unit.into_bag() {
                bag.reset();
                spare.push(bag);
            }
        });
        // SAFETY: forwarded from this function's contract.
        unsafe { unit.free(max) };
        before - unit.len()
    }

    /// Moves the bags in `emptied` to `State::spare`. When it is full, a
    /// bag takes the place of one of another size, and is dropped only if
    /// all are its size: the spare bags follow the sizes in use (module
    /// invariants).
    pub(super) fn keep_spare(st: &mut State, emptied: &mut Emptied) {
        for bag in emptied.bags[..emptied.len].iter_mut() {
            let Some(bag) = bag.take() else { continue };
            if st.spare.len() >= SPARE_BAGS {
                let size = bag.capacity();
                let Some(other) = st.spare.iter().position(|b| b.capacity() != size) else {
                    continue; // dropped: every spare bag is this size
                };
                st.spare.swap_remove(other);
            }
            st.spare.push(bag);
        }
        emptied.len = 0;
    }
}

/// Thread bags a free run emptied, on their way back to `State::spare`
/// (module invariants): at most `TAKE_UNITS`, the units a run frees between
/// two state locks.
pub(super) struct Emptied {
    bags: [Option<Box<Bag>>; TAKE_UNITS],
    len: usize,
}

impl Emptied {
    pub(super) fn new() -> Self {
        Self {
            bags: core::array::from_fn(|_| None),
            len: 0,
        }
    }

    /// Whether it holds no bag.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether it has room for another bag.
    pub(super) fn has_room(&self) -> bool {
        self.len < TAKE_UNITS
    }

    fn push(&mut self, bag: Box<Bag>) {
        debug_assert!(self.has_room(), "more emptied bags than units taken");
        if let Some(slot) = self.bags.get_mut(self.len) {
            *slot = Some(bag);
            self.len += 1;
        }
    }
}

/// How many units a free run takes off the queue under one state lock.
const TAKE_UNITS: usize = 32;

/// Units a free run took off the queue and has not freed yet, oldest first;
/// dropping it puts those left back (module invariants).
struct Taken<'a> {
    inner: &'a Inner,
    units: [Option<Waiting>; TAKE_UNITS],
    /// `units[next..len]` are taken and not handed out.
    next: usize,
    len: usize,
}

impl<'a> Taken<'a> {
    fn new(inner: &'a Inner) -> Self {
        Taken {
            inner,
            units: core::array::from_fn(|_| None),
            next: 0,
            len: 0,
        }
    }

    /// The oldest taken unit, taking more from the queue if none is left:
    /// units whose grace period is no later than `up_to`, which the caller
    /// read from `completed` (any unit once the domain is dead), up to
    /// `TAKE_UNITS` of them and about `budget` objects (at least one unit).
    fn next(&mut self, up_to: u64, budget: usize, spare: &mut Emptied) -> Option<Waiting> {
        if self.next == self.len {
            let mut st = lock(&self.inner.state);
            Inner::keep_spare(&mut st, spare);
            let (mut len, mut objects) = (0, 0);
            while len < TAKE_UNITS && (len == 0 || objects < budget) {
                match st.waiting.front() {
                    Some(w) if st.dead || w.gp <= up_to => {}
                    _ => break,
                }
                let w = st.waiting.pop_front()?;
                objects += w.unit.len();
                self.units[len] = Some(w);
                len += 1;
            }
            (self.next, self.len) = (0, len);
        }
        if self.next == self.len {
            return None;
        }
        self.next += 1;
        self.units[self.next - 1].take()
    }

    /// Returns the unit `next` handed out last, partly freed, to be handed
    /// out again first.
    fn put_back(&mut self, unit: Waiting) {
        self.next -= 1;
        self.units[self.next] = Some(unit);
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if self.next == self.len {
            return;
        }
        let mut st = lock(&self.inner.state);
        for w in self.units[self.next..self.len].iter_mut().rev() {
            if let Some(w) = w.take() {
                st.waiting.push_front(w);
            }
        }
        drop(st);
        crate::rcu::reclaimer::notify(self.inner);
    }
}
