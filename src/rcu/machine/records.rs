//! Thread records: claiming, releasing and walking a domain's records.
//!
//! # Invariants
//!
//! - The record list is append-only: a record, once published (release
//!   CAS on the head), stays in the list, at the same address, with the
//!   same `next`, until the domain's state is dropped. So a walk needs no
//!   lock, and a pointer to a record stays valid while the domain lives.
//! - The grace-period check walks an array of the records' addresses
//!   (`RecordWalk`, under the state lock), brought up to date from the
//!   head whenever the head changed: the list only grows there, so the
//!   records between the new head and the old one are the new ones.
//! - A record has one owner at a time (`in_use`, claimed by CAS). Released
//!   by its owner, it first hands its bag to the domain; it is kept (not
//!   freed for reuse) while a read section of it is still alive.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::state::{lock, Inner, RecordWalk, State};
use crate::rcu::fence::{self, Arming};
use crate::rcu::local::DomainState;
use crate::rcu::record::Record;

impl Inner {
    /// Claims a free record, or adds a new one. The caller owns it until
    /// [`Inner::release`].
    #[cold]
    pub(crate) fn claim(&self) -> &Record {
        fence::init();
        let mut cur = self.records.load(Acquire);
        while !cur.is_null() {
            // SAFETY: records are never freed before the domain, which the
            // caller borrows.
            let rec = unsafe { &*cur };
            if !rec.in_use.load(Relaxed)
                && rec
                    .in_use
                    .compare_exchange(false, true, Acquire, Relaxed)
                    .is_ok()
            {
                rec.fence_due.new_owner(&rec.fence_policy);
                return rec;
            }
            cur = rec.next.cast_mut();
        }
        let rec = Record::new(core::ptr::null(), self.id, &*self.epoch);
        let rec = Box::into_raw(Box::new(rec));
        let mut head = self.records.load(Relaxed);
        loop {
            // SAFETY: `rec` is ours until the CAS below publishes it.
            unsafe { (*rec).next = head };
            // Release: a scanner that finds `rec` sees it initialized.
            match self
                .records
                .compare_exchange_weak(head, rec, Release, Relaxed)
            {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        // SAFETY: published above, lives as long as the domain.
        unsafe { &*rec }
    }

    /// Hands over a record's bag and, unless a read section of it is still
    /// alive, frees the record for another thread: returns whether it did.
    /// A record kept must be released again once its last section ends.
    ///
    /// # Safety
    ///
    /// Called by the record's owner, which will not use it again (except to
    /// end the sections still alive, and then release it).
    pub(crate) unsafe fn release(&self, rec: &Record) -> bool {
        let mut st = lock(&self.state);
        if !st.dead {
            // SAFETY: we hold the state lock and own the record.
            if let Some(bag) = unsafe { rec.steal_bag() } {
                self.enqueue(&mut st, bag, false);
                // Nobody may call in again for this work: its grace period
                // starts now (one barrier per exiting thread that retired).
                self.start_locked(&mut st, &self.counters.hurried);
            }
        }
        drop(st);
        // A guard still alive (e.g. kept in a thread-local destroyed after
        // the thread's registry) keeps the record: reusing it would corrupt
        // its state.
        if rec.in_section() {
            return false;
        }
        rec.set_temporary(false);
        // Release: the next owner sees the record as we left it.
        rec.in_use.store(false, Release);
        true
    }

    /// Frees a record claimed for an owned section (module `owned`), whose
    /// section has ended. Its bag was never used, so there is nothing to
    /// hand over and no state lock to take.
    ///
    /// # Safety
    ///
    /// The caller claimed `rec` for an owned section, which has ended, and
    /// will not use it again.
    pub(crate) unsafe fn release_owned(&self, rec: &Record) {
        debug_assert!(rec.is_owned() && !rec.in_section() && rec.buffered() == 0);
        rec.set_owned(false);
        // Release: the next owner sees the record as we left it.
        rec.in_use.store(false, Release);
    }

    /// Whether an owned section (module `owned`) holds grace period `gp`
    /// up. A bounded wait skips such a grace period: the waiting thread may
    /// be the one running that section's code.
    pub(crate) fn owned_section_holds(&self, gp: u64) -> bool {
        self.records().any(|rec| rec.is_owned() && rec.blocks(gp))
    }

    pub(super) fn records(&self) -> impl Iterator<Item = &Record> {
        self.records_from(self.records.load(Acquire))
    }

    /// The records from `head` (a value `self.records` had) on.
    pub(super) fn records_from(&self, head: *mut Record) -> impl Iterator<Item = &Record> {
        let mut cur = head;
        core::iter::from_fn(move || {
            // SAFETY: records live as long as the domain, which `self`
            // borrows; `next` is immutable once published.
            let rec = unsafe { cur.as_ref()? };
            cur = rec.next.cast_mut();
            Some(rec)
        })
    }
}

/// Per-thread registration (module `local`) claims and releases records
/// through this.
impl DomainState for Inner {
    #[inline(always)]
    fn id(&self) -> u64 {
        self.id
    }
    fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }
    fn claim(&self) -> &Record {
        Inner::claim(self)
    }
    unsafe fn release(&self, rec: &Record) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { Inner::release(self, rec) }
    }
}

impl Inner {
    /// Whether any record holds grace period `gp` up (state lock held).
    pub(super) fn any_blocks(&self, st: &mut State, gp: u64) -> bool {
        self.walk(st).iter().any(|rec| {
            // SAFETY: records live as long as the domain, which `self`
            // borrows (module `records`).
            unsafe { rec.as_ref() }.blocks(gp)
        })
    }

    /// For a grace-period start of `gp`, after its plain fence: whether
    /// every record but this thread's own is armed, so the start needs no
    /// heavy fence; marks those not due, for the heavy fence the caller
    /// then runs (module `fence`, "Skipping the heavy fence"). If all are
    /// armed, also whether any record holds `gp` up, read in the same pass
    /// (the states a scan after this one would read: both come after the
    /// plain fence, and no heavy fence runs in between); `None` if not.
    pub(super) fn all_armed(&self, st: &mut State, gp: u64) -> Option<bool> {
        let own = crate::rcu::local::own_record(self.id);
        // SAFETY: records live as long as the domain, which `self` is; and
        // this is the calling thread's own record (its registry's), so the
        // owner-only count below is its owner's access.
        if let Some(own) = unsafe { own.as_ref() } {
            own.fence_due.own_start();
        }
        let barriers = st.barriers;
        let paced_ns = self.fencing_pays(st);
        let (mut armed, mut blocks) = (true, false);
        for rec in self.walk(st) {
            let is_own = core::ptr::eq(rec.as_ptr(), own);
            // SAFETY: as in `any_blocks`.
            let rec = unsafe { rec.as_ref() };
            // Every record is visited: the marks are for the next start.
            if !is_own {
                let arming = rec.fence_due.arm(&rec.fence_policy, barriers, paced_ns);
                if arming == Arming::SetFencing {
                    self.counters.fencing_mode.fetch_add(1, Relaxed);
                }
                armed &= arming.is_armed();
            }
            blocks |= rec.blocks(gp);
        }
        armed.then_some(blocks)
    }

    /// The epoch of the oldest section open on any record, if one is
    /// (state lock held): every grace period up to it is complete.
    pub(super) fn oldest_section(&self, st: &mut State) -> Option<u64> {
        self.walk(st)
            .iter()
            .filter_map(|rec| {
                // SAFETY: as in `any_blocks`.
                unsafe { rec.as_ref() }.active_epoch()
            })
            .min()
    }

    /// The records, as an array brought up to date (state lock held).
    fn walk<'s>(&self, st: &'s mut State) -> &'s [core::ptr::NonNull<Record>] {
        let head = self.records.load(Acquire);
        let walk = &mut st.walk;
        if head != walk.head {
            // Records published since the last walk sit between the new
            // head and the old one.
            let old = walk.head;
            let mut records: Vec<_> = self
                .records_from(head)
                .map(core::ptr::NonNull::from)
                .take_while(|rec| rec.as_ptr() != old)
                .collect();
            records.append(&mut walk.records);
            *walk = RecordWalk { head, records };
        }
        &walk.records
    }
}
