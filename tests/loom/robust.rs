//! Robust domains: the era protocol (module `robust` of the crate: the
//! protected load, the exchange's reservation, the owned section's) against
//! the early-free scan of `Domain::collect` (`machine::early`), through the
//! public API.
//!
//! In every model a reader thread enters a section of a robust domain and
//! stays in it while the writer (the model's main thread) first moves the
//! era past it (a dummy retired with `retire_raw`, then `hurry`: grace
//! period 1 starts, held up by the reader if it entered first), then reads
//! `birth()`, links object A into a `Link`, unlinks it (`swap`), retires it
//! with `retire_born` and calls `collect`, which runs the early scans after
//! the ordinary frees (or pushes it into a batch and drains it, whose
//! registration runs the fenced scan with no other fence after the
//! unlink). The reader gets the link's value (A or null) by a protected
//! load (`load`), by an exchange (`fetch_or(0)`, a failed
//! `compare_exchange`), or by a load in an owned section (also handed to a
//! second thread that loads again, or used by two threads at once), and
//! reads A throughout its section if it got it. If it did not, A may be
//! freed early under it.
//!
//! Each model checks that:
//!
//! - A is never freed while a section that got it can still read it: the
//!   reader asserts A's `freed` flag is clear and reads A's loom cell, so
//!   loom also reports a free that does not happen after the read;
//! - every object (A and the dummy) is freed exactly once by the end;
//! - the model is not vacuous: in some explored execution the reader got
//!   A, in some `collect` ran (and spared A) while the reader held A, and
//!   in some A was freed early (`freed_by.early`) while the reader was
//!   still inside its section. Counted outside the model (`std` atomics,
//!   in schedule order), asserted once `check` returns.
//!
//! Each model catches a protocol broken on a copy of the crate, with two
//! preemptions: a protected load without its reload, or without its
//! fence (the load models); an exchange that does not reserve every epoch
//! (`hi = u64::MAX`) before its read-modify-write (the exchange models); a
//! fenced scan without its fence (the fenced load model); an owned
//! section's thread that trusts a reservation another thread raised (the
//! shared owned models).
//!
//! The writer links A with `compare_exchange`, not `Link::store`: loom lets
//! a plain store slip between the read and the write of a concurrent
//! read-modify-write (tokio-rs/loom#254), so the reader's `fetch_or(0)`
//! could seem to undo the store, an execution no hardware has.

use std::sync::atomic::AtomicBool as StdAtomicBool;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc as StdArc;

use loom::sync::Arc;
use loom::thread;
use ownrcu::{Domain, Guard, Link, Shared};

use crate::common::{check, Objects, Tracked, LIVE};

/// A tracked object as a `Link` target: `Link<T>` is shared between
/// threads only if `T` is `Sync`.
#[repr(transparent)]
struct Node(Tracked);

// SAFETY: `Tracked`'s cell is read through shared references only
// (`Tracked::value`), and written only by its destructor, which has
// `&mut self`; whether every read happens before that write is what loom
// checks. Its other fields are `std` atomics behind `Arc`s.
unsafe impl Sync for Node {}

/// The deleter `retire_born` runs.
///
/// # Safety
///
/// `node` came from `Objects::make_shared` (a `Box<Tracked>`, which
/// `Node` wraps transparently), is freed once, and is read by nobody any
/// more.
unsafe fn free_node(node: *mut Node) {
    // SAFETY: the contract; `Node` is `repr(transparent)` over `Tracked`.
    drop(unsafe { Box::from_raw(node.cast::<Tracked>()) });
}

/// What every model shares: the domain and the link.
///
/// The link's contract (`Link::null`): its one object, A, is retired
/// (once, by the writer, into `domain`) only after the writer's `swap` has
/// unlinked it, and only guards of `domain` are passed to the link.
struct Scene {
    domain: Domain,
    link: Link<Node, true>,
    /// The reader is inside its section (schedule order; set after the
    /// entry, cleared before the exit, so it may under-report).
    in_section: StdAtomicBool,
    /// The reader's section holds A (from the load or exchange until the
    /// section's end).
    holding: StdAtomicBool,
}

/// Counts over all explored executions, kept outside the model.
#[derive(Default)]
struct Counts {
    /// Executions in which the reader got A.
    got: StdAtomicUsize,
    /// Executions with an early free (`freed_by.early > 0`).
    early: StdAtomicUsize,
    /// Executions in which `collect` freed A early while the reader was
    /// inside its section, holding grace period 1 or 2 up.
    early_under_reader: StdAtomicUsize,
    /// Executions in which `collect` returned while the reader held A
    /// (which was still alive then: the scan spared it).
    spared: StdAtomicUsize,
}

/// How the reader obtains the link's value.
#[derive(Clone, Copy)]
enum Obtain {
    /// `Link::load`: a protected load.
    Load,
    /// `Link::fetch_or(0)`: an exchange that changes nothing.
    FetchOr,
    /// A `compare_exchange` that always fails (it expects a tagged null
    /// the link never holds) and returns the current value.
    FailedCas,
}

impl Obtain {
    fn run<'g>(self, link: &Link<Node, true>, guard: &'g Guard<'_>) -> Shared<'g, Node> {
        match self {
            Self::Load => link.load(guard),
            Self::FetchOr => link.fetch_or(0, guard),
            Self::FailedCas => {
                let never = Shared::<Node>::null().with_tag(1);
                link.compare_exchange(never, Shared::null(), guard)
                    .expect_err("the link never holds a tagged null")
                    .current
            }
        }
    }
}

/// The reader's section.
#[derive(Clone, Copy)]
enum Section {
    /// The thread's own (`Domain::read`).
    Thread,
    /// `Domain::read_owned`, used on the thread that entered it.
    Owned,
    /// `Domain::read_owned`, entered and used on one thread, then handed
    /// to another that loads through it again and reads A.
    OwnedHandedOver,
    /// `Domain::read_owned`, used on two threads at once: neither may rely
    /// on a reservation the other raised (its fence does not order our
    /// load).
    OwnedShared,
}

/// Checks that A (`a`'s flag, `node` its object) is alive, and reads it.
fn read(a: &crate::common::Shared, node: &Node, what: &str) {
    assert!(!a.is_freed(), "{what}: A freed while a section holds it");
    // A loom-tracked read: loom also reports a free that does not happen
    // after it, even one later in the schedule.
    assert_eq!(node.0.value(), LIVE, "{what}");
}

/// Obtains the link's value under `guard`; if it is A, reads it, takes a
/// scheduling point inside the section (another protected load, whose
/// value is not used), and reads it again. Returns whether it got A.
fn obtain_and_read(
    scene: &Scene,
    a: &crate::common::Shared,
    guard: &Guard<'_>,
    how: Obtain,
    what: &str,
) -> bool {
    let got = how.run(&scene.link, guard);
    let Some(node) = got.as_ref() else {
        return false; // not linked yet, or unlinked already
    };
    assert_eq!(got.as_ptr(), a.ptr.cast::<Node>().cast_const());
    scene.holding.store(true, SeqCst);
    read(a, node, what);
    let _ = scene.link.load(guard);
    read(a, node, what);
    true
}

/// The end of the reader's section, for the counts.
fn leave(scene: &Scene) {
    scene.in_section.store(false, SeqCst);
    scene.holding.store(false, SeqCst);
}

/// The reader thread's body: returns whether any of its sections' loads
/// or exchanges got A.
fn reader(scene: &Arc<Scene>, a: &crate::common::Shared, how: Obtain, section: Section) -> bool {
    match section {
        Section::Thread => {
            let guard = scene.domain.read();
            scene.in_section.store(true, SeqCst);
            let got = obtain_and_read(scene, a, &guard, how, "reader");
            leave(scene);
            drop(guard);
            got
        }
        Section::Owned => {
            let owned = scene.domain.read_owned();
            scene.in_section.store(true, SeqCst);
            let got = obtain_and_read(scene, a, owned.guard(), how, "owned reader");
            leave(scene);
            drop(owned);
            got
        }
        Section::OwnedHandedOver => {
            let owned = scene.domain.read_owned();
            scene.in_section.store(true, SeqCst);
            let got = obtain_and_read(scene, a, owned.guard(), how, "owned reader");
            // The section moves to another thread, which reads what the
            // first thread got under it and loads through it again.
            let (scene, a) = (scene.clone(), a.clone());
            thread::spawn(move || {
                if got {
                    assert!(!a.is_freed(), "A freed under a handed-over section");
                    // SAFETY: alive (checked just above, and no modelled
                    // thread runs in between); the first thread got A
                    // under `owned`, which is still open, and an owned
                    // section protects on any thread (what the model
                    // checks).
                    let node = unsafe { &*a.ptr.cast::<Node>() };
                    read(&a, node, "second thread, A got by the first");
                }
                let again = obtain_and_read(&scene, &a, owned.guard(), how, "second thread");
                leave(&scene);
                drop(owned);
                got || again
            })
            .join()
            .unwrap()
        }
        Section::OwnedShared => {
            let owned = Arc::new(scene.domain.read_owned());
            scene.in_section.store(true, SeqCst);
            let second = {
                let (scene, a, owned) = (scene.clone(), a.clone(), owned.clone());
                thread::spawn(move || {
                    obtain_and_read(&scene, &a, owned.guard(), how, "second thread")
                })
            };
            let got = obtain_and_read(scene, a, owned.guard(), how, "owned reader");
            let again = second.join().unwrap();
            leave(scene);
            drop(owned);
            got || again
        }
    }
}

/// How the writer hands A over and has the early scan run.
#[derive(Clone, Copy)]
enum Retire {
    /// `retire_born`, then `collect` (its grace-period start's heavy
    /// fence precedes the scans).
    Collect,
    /// `Batch::push_born` and `drain`: the registration runs a fenced scan
    /// with no other fence after the unlink while grace period 1 is held
    /// up.
    Drain,
}

/// One execution: the reader thread against the writer (module docs).
fn execution(counts: &Counts, how: Obtain, section: Section, retire: Retire) {
    let scene = Arc::new(Scene {
        domain: Domain::builder().robust(true).build(),
        // SAFETY: the contract in `Scene`'s doc, kept by the writer below.
        link: unsafe { Link::null() },
        in_section: StdAtomicBool::new(false),
        holding: StdAtomicBool::new(false),
    });
    let objects = Objects::new();
    let a = objects.make_shared();
    let a_node = a.ptr.cast::<Node>();

    let reader = {
        let (scene, a) = (scene.clone(), a.clone());
        thread::spawn(move || reader(&scene, &a, how, section))
    };

    // The era moves past the reader: grace period 1 starts (and waits for
    // the reader if it entered before).
    let dummy = objects.make();
    // SAFETY: from `Box::into_raw`, retired once, never published (so no
    // reader can hold it), and `Tracked` is `Send + 'static`.
    unsafe { scene.domain.retire_raw(dummy) };
    scene.domain.hurry();

    let birth = scene.domain.birth();
    {
        // Linked by a read-modify-write, not `Link::store` (module docs:
        // tokio-rs/loom#254).
        let guard = scene.domain.read();
        // SAFETY: 1. A is live, and freed only by the `retire_born`
        // below, after the `swap` unlinked it, into the domain whose
        // sections read it; 2. the link's contract (`Scene`) covers it.
        let new = unsafe { Shared::from_ptr(a_node) };
        assert!(
            scene
                .link
                .compare_exchange(Shared::null(), new, &guard)
                .is_ok(),
            "only the writer links"
        );
        let old = scene.link.swap(Shared::null(), &guard);
        assert_eq!(old.as_ptr(), a_node.cast_const(), "only the writer unlinks");
    }
    match retire {
        // SAFETY: 1-5: `free_node` frees exactly this box, once, on any
        // thread; A is unlinked (the `swap` above) and read only under the
        // domain's sections; 6: `birth` was read before the
        // `compare_exchange` that published A; 7: readers get A only from
        // the link's loads and exchanges, in sections of this domain.
        Retire::Collect => unsafe {
            scene.domain.retire_born(a_node, free_node, birth);
            scene.domain.collect();
        },
        Retire::Drain => {
            let mut batch = scene.domain.batch();
            // SAFETY: as for `retire_born` just above (`push_born` has the
            // same contract).
            unsafe { batch.push_born(a_node, free_node, birth) };
            batch.drain();
        }
    }
    if scene.holding.load(SeqCst) {
        assert!(!a.is_freed(), "the scan freed A under the reader");
        counts.spared.fetch_add(1, SeqCst);
    }
    // Only A can be freed early (the dummy has no birth); the reader may
    // also have entered after A's grace period started, which then frees
    // A the ordinary way.
    if a.is_freed() && scene.in_section.load(SeqCst) && scene.domain.stats().freed_by.early == 1 {
        counts.early_under_reader.fetch_add(1, SeqCst);
    }

    if reader.join().unwrap() {
        counts.got.fetch_add(1, SeqCst);
    }
    let scene = Arc::try_unwrap(scene).unwrap_or_else(|_| panic!("a handle is left"));
    let stats = scene.domain.stats();
    assert_eq!(stats.retired, 2);
    if stats.freed_by.early > 0 {
        counts.early.fetch_add(1, SeqCst);
    }
    drop(scene);
    assert!(a.is_freed(), "A was lost");
    assert_eq!(objects.drops(), 2, "an object was lost");
}

/// Runs the model and checks it was not vacuous.
fn model(
    name: &'static str,
    preemptions: Option<usize>,
    how: Obtain,
    section: Section,
    retire: Retire,
) {
    let counts = StdArc::new(Counts::default());
    let inner = counts.clone();
    check(name, preemptions, move || {
        execution(&inner, how, section, retire);
    });
    let [got, early, early_under_reader, spared] = [
        &counts.got,
        &counts.early,
        &counts.early_under_reader,
        &counts.spared,
    ]
    .map(|c| c.load(SeqCst));
    eprintln!(
        "loom model {name}: the reader got A in {got} executions, collect spared it \
         under the reader in {spared}; early frees in {early}, \
         {early_under_reader} of A under the reader"
    );
    assert!(got > 0, "{name}: the reader never got A");
    assert!(
        spared > 0,
        "{name}: collect never ran while the reader held A"
    );
    assert!(early > 0, "{name}: nothing was ever freed early");
    assert!(
        early_under_reader > 0,
        "{name}: A was never freed early under the reader"
    );
}

/// Preemption bound of the two-thread models here: three explore tens of
/// thousands of executions in a few seconds each, within `.ci/run`'s
/// budget; every broken protocol listed in the module docs is caught with
/// two, and a reservation reset to 0 at an owned section's end with three.
/// The three-thread models (an owned section shared) use two.
const PREEMPTIONS: Option<usize> = Some(3);

/// 1. A protected load (`Link::load`) in a thread's section against the
///    early scan.
#[test]
fn load_vs_scan() {
    model(
        "robust/load vs scan",
        PREEMPTIONS,
        Obtain::Load,
        Section::Thread,
        Retire::Collect,
    );
}

/// 2. A got from an exchange that changes nothing (`fetch_or(0)`).
#[test]
fn fetch_or_vs_scan() {
    model(
        "robust/fetch_or vs scan",
        PREEMPTIONS,
        Obtain::FetchOr,
        Section::Thread,
        Retire::Collect,
    );
}

/// 2'. A got from a failed `compare_exchange` (the value it found).
#[test]
fn failed_cas_vs_scan() {
    model(
        "robust/failed cas vs scan",
        PREEMPTIONS,
        Obtain::FailedCas,
        Section::Thread,
        Retire::Collect,
    );
}

/// 3. A protected load in an owned section (`fetch_max` on the
///    reservation), on the thread that entered it.
#[test]
fn owned_load_vs_scan() {
    model(
        "robust/owned load vs scan",
        PREEMPTIONS,
        Obtain::Load,
        Section::Owned,
        Retire::Collect,
    );
}

/// 3'. An exchange in an owned section (the reservation stays `u64::MAX`
///     until the section ends).
#[test]
fn owned_fetch_or_vs_scan() {
    model(
        "robust/owned fetch_or vs scan",
        PREEMPTIONS,
        Obtain::FetchOr,
        Section::Owned,
        Retire::Collect,
    );
}

/// 3''. An owned section entered on the reader thread, which loads and
///      reads A, then handed to a second thread that reads A and loads
///      through it again.
#[test]
fn owned_handed_over_vs_scan() {
    model(
        "robust/owned handed over vs scan",
        PREEMPTIONS,
        Obtain::Load,
        Section::OwnedHandedOver,
        Retire::Collect,
    );
}

/// 4. A protected load against the fenced scan of a batch's registration
///    (no grace-period start, so no heavy fence, after the unlink).
#[test]
fn load_vs_fenced_scan() {
    model(
        "robust/load vs fenced scan",
        PREEMPTIONS,
        Obtain::Load,
        Section::Thread,
        Retire::Drain,
    );
}

/// 4'. An exchange against the fenced scan.
#[test]
fn fetch_or_vs_fenced_scan() {
    model(
        "robust/fetch_or vs fenced scan",
        PREEMPTIONS,
        Obtain::FetchOr,
        Section::Thread,
        Retire::Drain,
    );
}

/// 5. An owned section used by two threads at once against the fenced
///    scan: a load may not rely on the reservation the other thread
///    raised.
#[test]
fn owned_shared_vs_fenced_scan() {
    model(
        "robust/owned shared vs fenced scan",
        Some(2),
        Obtain::Load,
        Section::OwnedShared,
        Retire::Drain,
    );
}

/// 5'. The same against `collect`'s scans.
#[test]
fn owned_shared_vs_scan() {
    model(
        "robust/owned shared vs scan",
        Some(2),
        Obtain::Load,
        Section::OwnedShared,
        Retire::Collect,
    );
}
