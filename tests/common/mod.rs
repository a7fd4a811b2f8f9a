//! Helpers shared by the integration tests (each test file that uses them
//! declares `mod common;`; not every file uses every helper).
#![allow(dead_code)]

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use ownrcu::Domain;

/// A domain that the reclaimer thread does not serve, with lazy grace
/// periods (only rationing, waits and hurries start one, and thread buffers
/// always take 128): nothing is freed behind a test's back, and no grace
/// period starts unasked below the rationing threshold, so a test may
/// assert exact counts between calls (what is pending, which path freed
/// what, which destructor ran when, how many registrations).
pub fn quiet() -> Domain {
    Domain::builder().reclaimer(false).lazy(true).build()
}

/// A reader on another thread, inside a section of `domain` until told to
/// leave (or the sender drops).
pub fn stalled_reader(domain: &Domain) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (leave, reader, _) = named_stalled_reader(domain, "stalled-reader");
    (leave, reader)
}

/// [`stalled_reader`] on a thread named `name`; also returns its id.
pub fn named_stalled_reader(
    domain: &Domain,
    name: &str,
) -> (mpsc::Sender<()>, thread::JoinHandle<()>, thread::ThreadId) {
    let domain = domain.clone();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (leave_tx, leave_rx) = mpsc::channel::<()>();
    let reader = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let guard = domain.read();
            entered_tx.send(thread::current().id()).unwrap();
            let _ = leave_rx.recv();
            drop(guard);
        })
        .unwrap();
    let id = entered_rx.recv().unwrap();
    (leave_tx, reader, id)
}

/// Poisoned when freed (a second drop, or a use after free that reads it,
/// fails); counts its drops.
pub struct Obj {
    magic: u64,
    drops: Arc<AtomicUsize>,
}

const LIVE: u64 = 0x7407_7107_7407_7107;

impl Obj {
    /// Panics if the object was freed.
    pub fn check(&self) {
        // SAFETY: a valid, aligned field of an object the caller may read.
        // Volatile: read from memory every time, not from an earlier load.
        let magic = unsafe { std::ptr::read_volatile(&self.magic) };
        assert_eq!(magic, LIVE, "use after free");
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        assert_eq!(self.magic, LIVE, "freed twice");
        // SAFETY: a valid, aligned field of `self`. Volatile: a plain store
        // to memory freed right after may be left out by the optimizer.
        unsafe { std::ptr::write_volatile(&mut self.magic, 0) };
        self.drops.fetch_add(1, SeqCst);
    }
}

/// A drop counter and the objects it counts.
#[derive(Clone, Default)]
pub struct Drops(Arc<AtomicUsize>);

impl Drops {
    pub fn obj(&self) -> Box<Obj> {
        Box::new(Obj {
            magic: LIVE,
            drops: self.0.clone(),
        })
    }

    /// Counts one drop of an object of the test's own type.
    pub fn add(&self) {
        self.0.fetch_add(1, SeqCst);
    }

    pub fn get(&self) -> usize {
        self.0.load(SeqCst)
    }
}

/// Waits until `done` holds, polling; panics after a minute, a bound
/// generous enough that only a lost wake-up (a bug) reaches it, never a
/// slow machine. Its duration is never the verdict.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "still not true after a minute: {what}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

std::thread_local! {
    static RETIRING: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as a retiring thread that must never run a
/// destructor: a [`Checked`] dropped on it fails the test.
pub fn mark_retiring() {
    RETIRING.with(|r| r.set(true));
}

/// Counts its drop in its [`Drops`], and fails if dropped on a thread
/// marked with [`mark_retiring`].
pub struct Checked(pub Drops);

impl Drop for Checked {
    fn drop(&mut self) {
        assert!(
            !RETIRING.with(|r| r.get()),
            "a destructor ran on the retiring thread"
        );
        self.0.add();
    }
}
