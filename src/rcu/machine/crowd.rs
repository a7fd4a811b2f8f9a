//! Crowding: whether more threads retire into a domain than the process
//! has processors to run them at once.
//!
//! A crowded domain rations grace periods instead of pacing them, its
//! threads fill buffers of `BAG_CAP` single retirements, and they do not
//! wait at the soft bound; what that does and why is
//! described once, in the crate docs ("Who runs destructors, and when").
//!
//! # Invariants
//!
//! - Everything here is under the domain's state lock: the window, its
//!   count, and each record's stamp (`Record::crowd_stamp`).
//! - Time is cut into windows of `WINDOW`, numbered from 1. A thread counts
//!   once in a window if it took the slow path of a single retirement in
//!   it (its buffer filled, or it had none): its record's stamp is then
//!   that window's number. Batch drains do not count: a thread that only
//!   drains has no buffer to size, and may have no record.
//! - The domain is crowded from the moment a window counts more writers
//!   than [`processors`] until the first registration after a window that
//!   did not, or until any registration or step of the machine finds the
//!   current window two `WINDOW`s old (its writers went idle, or now only
//!   drain batches, which `note` does not see). Loom models are never
//!   crowded.

#[cfg(not(loom))]
use core::cell::Cell;
#[cfg(not(loom))]
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
#[cfg(not(loom))]
use std::time::{Duration, Instant};

/// How long a window lasts: long enough that every runnable thread of a
/// crowded machine runs in it (a scheduler runs the threads that share a
/// processor in turn, for slices of a few milliseconds each), short enough
/// that a domain stops counting as crowded soon after its writers go idle.
#[cfg(not(loom))]
const WINDOW: Duration = Duration::from_millis(20);

/// The writers counted in the current window, and whether the domain is
/// crowded (module invariants).
pub(super) struct Crowd {
    /// The current window's number (0 before the first registration).
    #[cfg(not(loom))]
    number: u64,
    /// When the current window began.
    #[cfg(not(loom))]
    began: Option<Instant>,
    /// Writers counted in the current window.
    #[cfg(not(loom))]
    writers: usize,
    crowded: bool,
}

impl Crowd {
    pub(super) const fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            number: 0,
            #[cfg(not(loom))]
            began: None,
            #[cfg(not(loom))]
            writers: 0,
            crowded: false,
        }
    }

    /// Whether the domain is crowded (module invariants).
    pub(super) fn crowded(&self) -> bool {
        self.crowded
    }

    /// Ends a crowded stretch whose writers went idle (module invariants).
    /// Reads the clock only while crowded.
    #[cfg(not(loom))]
    pub(super) fn expire(&mut self) {
        if self.crowded && self.began.map_or(true, |b| b.elapsed() >= 2 * WINDOW) {
            self.crowded = false;
        }
    }

    /// Counts a registration by the thread whose record's stamp is
    /// `stamp`, moving to a new window first if the current one is over.
    #[cfg(not(loom))]
    pub(super) fn note(&mut self, stamp: &Cell<u64>) {
        let now = Instant::now();
        let elapsed = self.began.map(|b| now.saturating_duration_since(b));
        if elapsed.map_or(true, |e| e >= WINDOW) {
            // The window that ended decides, unless it ended long ago.
            self.crowded = self.writers > processors() && elapsed.is_some_and(|e| e < 2 * WINDOW);
            self.number += 1;
            self.began = Some(now);
            self.writers = 0;
        }
        if stamp.get() != self.number {
            stamp.set(self.number);
            self.writers += 1;
            self.crowded |= self.writers > processors();
        }
    }
}

/// The processors this process may run on
/// ([`std::thread::available_parallelism`], read once; 1 if unknown).
#[cfg(not(loom))]
fn processors() -> usize {
    static PROCESSORS: AtomicUsize = AtomicUsize::new(0);
    match PROCESSORS.load(Relaxed) {
        0 => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            PROCESSORS.store(n, Relaxed);
            n
        }
        n => n,
    }
}
