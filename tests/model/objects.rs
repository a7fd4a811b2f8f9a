//! Tracked objects ([`Obj`]), their drop-count [`Table`], owners' [`Data`],
//! and the frames of references a reader holds in its open sections.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize};
use std::sync::Arc;

use ownrcu::{Array, ArrayWriter, Slot};

use crate::seeds::*;

pub(crate) const LIVE: u64 = 0x4c49_5645_4f42_4a21;
pub(crate) const POISON: u64 = 0xdead_dead_dead_dead;

pub(crate) fn live_magic(id: usize) -> u64 {
    LIVE ^ id as u64
}

/// Per-object drop counts, shared by all objects of one run.
pub(crate) struct Table {
    pub(crate) drops: Box<[AtomicU8]>,
    /// Multi-threaded phase: 0 for domain objects, `1 + o` for owner `o`'s.
    pub(crate) tags: Box<[AtomicU8]>,
    pub(crate) next: AtomicUsize,
    /// Double drops, and drops of objects whose magic was not live.
    pub(crate) anomalies: AtomicUsize,
}

impl Table {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            drops: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            tags: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicUsize::new(0),
            anomalies: AtomicUsize::new(0),
        })
    }

    pub(crate) fn room(&self) -> usize {
        self.drops.len().saturating_sub(self.next.load(Relaxed))
    }

    pub(crate) fn created(&self) -> usize {
        self.next.load(Relaxed).min(self.drops.len())
    }

    /// How many times object `id` was dropped.
    pub(crate) fn drops(&self, id: usize) -> u8 {
        // Acquire: pairs with the destructor's Release, so a drop seen here
        // is one that really happened before.
        self.drops[id].load(Acquire)
    }

    pub(crate) fn assert_no_anomaly(&self) {
        assert_eq!(
            self.anomalies.load(Relaxed),
            0,
            "an object was dropped twice, or dropped after being poisoned"
        );
    }

    pub(crate) fn assert_freed(&self, id: usize, why: &str) {
        let drops = self.drops(id);
        assert!(drops == 1, "object {id} dropped {drops} times: {why}");
    }

    pub(crate) fn assert_live(&self, id: usize, why: &str) {
        let drops = self.drops(id);
        assert!(drops == 0, "object {id} was freed ({drops} drops): {why}");
    }

    /// Every object created was dropped exactly once.
    pub(crate) fn assert_all_freed_once(&self) {
        self.assert_no_anomaly();
        for id in 0..self.created() {
            self.assert_freed(id, "every object is freed exactly once by the end of a run");
        }
    }
}

/// A tracked object.
pub(crate) struct Obj {
    pub(crate) magic: AtomicU64,
    pub(crate) id: usize,
    pub(crate) table: Arc<Table>,
}

pub(crate) fn new_obj(table: &Arc<Table>, tag: u8) -> Box<Obj> {
    let id = table.next.fetch_add(1, Relaxed);
    assert!(
        id < table.drops.len(),
        "object table full: the model should have checked Table::room"
    );
    table.tags[id].store(tag, Relaxed);
    Box::new(Obj {
        magic: AtomicU64::new(live_magic(id)),
        id,
        table: table.clone(),
    })
}

impl Obj {
    pub(crate) fn is_live(&self) -> bool {
        self.magic.load(Relaxed) == live_magic(self.id)
    }

    /// A reader uses the object: it must be alive.
    pub(crate) fn check(&self) {
        let magic = self.magic.load(Relaxed);
        assert!(
            magic == live_magic(self.id),
            "object {} used after it was freed (magic {magic:#x})",
            self.id
        );
        self.table
            .assert_live(self.id, "a reader holds it inside its read section");
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // An atomic store, so it is not optimized away before the free.
        let magic = self.magic.swap(POISON, Relaxed);
        let before = self.table.drops[self.id].fetch_add(1, Release);
        if magic != live_magic(self.id) || before != 0 {
            self.table.anomalies.fetch_add(1, Relaxed);
        }
    }
}

pub(crate) fn ids(objects: &[&Obj]) -> Vec<usize> {
    objects.iter().map(|o| o.id).collect()
}

/// An owner's data.
pub(crate) struct Data {
    pub(crate) slots: Vec<Slot<Obj>>,
    pub(crate) array: Array<Obj>,
    /// Stands for the data itself: freed by the last user's drop.
    pub(crate) tag: Box<Obj>,
}

/// References a reader holds inside its open (nested) sections: objects,
/// and (under Miri) the array versions it keeps scanning. Natively a version
/// freed too early would be read as garbage pointers (a crash, not a
/// message), so the objects are copied out of it when the section begins.
pub(crate) struct Frame<'a> {
    pub(crate) parent: Option<&'a Frame<'a>>,
    pub(crate) refs: Vec<&'a Obj>,
    pub(crate) slices: Vec<&'a [&'a Obj]>,
}

pub(crate) fn check_frames(frame: Option<&Frame<'_>>) {
    let mut at = frame;
    while let Some(frame) = at {
        for obj in frame
            .refs
            .iter()
            .chain(frame.slices.iter().copied().flatten())
        {
            obj.check();
        }
        at = frame.parent;
    }
}

/// Removes a range of a staged array version, in one of the forms
/// `RangeBounds` allows; returns it as `start..end`.
pub(crate) fn remove_range(
    writer: &mut ArrayWriter<'_, '_, Obj>,
    rng: &mut Rng,
    len: usize,
) -> std::ops::Range<usize> {
    let start = rng.below(len + 1);
    let end = start + rng.below((len - start).min(4) + 1);
    match rng.below(6) {
        1 if end > start => writer.remove(start..=end - 1),
        2 if start == 0 => writer.remove(..end),
        3 if end == len => writer.remove(start..),
        4 if start == 0 && end == len => writer.remove(..),
        5 if start == 0 && end == len => writer.clear(),
        _ => writer.remove(start..end),
    }
    start..end
}
