//! `Link`: a node linked from two links (two levels of a skip list), with
//! a count of the links that point to it. The remover marks its tower
//! (Harris), unlinks it at level 1 and drops one count; a helper that
//! finds it marked unlinks it at level 0 (or the remover does, if the
//! helper came too early) and drops the other; whoever drops the count to
//! zero retires it with `retire_with` and then runs `barrier`, while the
//! other thread (and, in the second model, a reader) may still be inside a
//! section that loaded it through a link and reads it.
//!
//! The node is checked as in `common`: a loom cell that readers read and
//! the destructor writes (loom reports a free that does not happen after a
//! read), and a `freed` flag outside the node. At the end it was freed
//! exactly once.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicUsize as StdAtomicUsize};
use std::sync::Arc as StdArc;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::AcqRel;
use loom::sync::Arc;
use loom::thread;
use ownrcu::{Domain, Link, Owned, Shared};

use crate::common::{check, LIVE, THREE_THREADS, TWO_THREADS};

/// A skip-list node of height 2, watched like `common::Tracked`.
struct Node {
    value: UnsafeCell<usize>,
    freed: StdArc<StdAtomicBool>,
    drops: StdArc<StdAtomicUsize>,
    /// Links that point here: whoever drops it to zero retires the node.
    links: AtomicUsize,
    /// Its successors at levels 0 and 1 (null here), marked by the remover.
    tower: [Link<Node>; 2],
}

// SAFETY: the cell is read through shared references only (`with`), and
// written only by the destructor, which has `&mut self`; whether every read
// happens before that write is what loom checks. Everything else is
// atomic or `Sync`.
unsafe impl Sync for Node {}

impl Drop for Node {
    fn drop(&mut self) {
        // A write: loom flags it if a reader's `with` does not happen before.
        self.value.with_mut(|v| {
            // SAFETY: `&mut self`, and loom checks the claim.
            unsafe { *v = 0 }
        });
        assert!(!self.freed.swap(true, SeqCst), "node freed twice");
        self.drops.fetch_add(1, SeqCst);
    }
}

/// The deleter `retire_with` runs.
///
/// # Safety
///
/// From `Box::into_raw` (via `Owned`), freed once, read by nobody any more.
unsafe fn free_node(node: *mut Node) {
    // SAFETY: the contract.
    drop(unsafe { Box::from_raw(node) });
}

/// The domain and the two links to the node (the predecessors' links at
/// levels 0 and 1).
///
/// The links' contract, and the node's own links': the node is retired
/// once, by whoever drops its count of links to zero, which happens only
/// once it is unlinked from both levels (so no section that starts then
/// can load it); into `domain`, whose guards are the only ones used.
struct Scene {
    domain: Domain,
    levels: [Link<Node>; 2],
}

impl Scene {
    fn new() -> Self {
        Self {
            domain: Domain::new(),
            // SAFETY: the contract in the type's doc.
            levels: [unsafe { Link::null() }, unsafe { Link::null() }],
        }
    }
}

/// A new node, linked from 2 links once published.
fn make(drops: &StdArc<StdAtomicUsize>) -> Owned<Node> {
    let node = Owned::new(Node {
        value: UnsafeCell::new(LIVE),
        freed: StdArc::new(StdAtomicBool::new(false)),
        drops: drops.clone(),
        links: AtomicUsize::new(2),
        // SAFETY: the contract in `Scene`'s doc.
        tower: [unsafe { Link::null() }, unsafe { Link::null() }],
    });
    // A tracked write after construction (loom does not treat a cell's
    // creation as one), so that a reader's read must happen after the
    // publication: a `Relaxed` `Link::load` would be caught.
    node.value.with_mut(|v| {
        // SAFETY: the node is ours alone, unpublished.
        unsafe { *v = LIVE }
    });
    node
}

/// Reads the node: alive, and its value (a loom-tracked read).
fn read(node: &Node, what: &str) {
    assert!(!node.freed.load(SeqCst), "{what}: reached a freed node");
    // SAFETY: a shared read; loom checks it against the destructor's write.
    assert_eq!(node.value.with(|v| unsafe { *v }), LIVE, "{what}");
}

/// Drops one of the node's links, and retires it if it was the last:
/// returns whether this call retired it.
fn release(domain: &Domain, node: Shared<'_, Node>) -> bool {
    // AcqRel: the last one sees both unlinks.
    if node.links.fetch_sub(1, AcqRel) != 1 {
        return false;
    }
    // SAFETY: 1. `free_node` frees exactly this box, on any thread, and
    // only the last of the two releases gets here; 2. unlinked from both
    // levels (each release follows a successful unlink), and the node's
    // own links are reachable only from it; 3. read only under guards of
    // `domain`.
    unsafe { domain.retire_with(node.as_ptr().cast_mut(), free_node) };
    true
}

/// The remover: marks the node's tower top-down, unlinks it at level 1
/// (only it does), then at level 0 unless the helper did. Reads it
/// throughout its section. Returns whether it retired it.
fn remove(scene: &Scene) -> bool {
    let guard = scene.domain.read();
    let current = scene.levels[1].load(&guard);
    let node = current
        .as_ref()
        .expect("linked at level 1 until we unlink it");
    read(node, "remover, before marking");
    for l in [1, 0] {
        let before = node.tower[l].fetch_or(1, &guard);
        assert_eq!(before.tag(), 0, "marked once");
    }
    let succ = node.tower[1].load(&guard).with_tag(0);
    let unlinked = scene.levels[1].compare_exchange(current, succ, &guard);
    assert!(unlinked.is_ok(), "only the remover unlinks level 1");
    let mut retired = release(&scene.domain, current);
    read(node, "remover, after unlinking level 1");
    // Help at level 0, in case the helper came before the mark.
    let succ = node.tower[0].load(&guard).with_tag(0);
    if scene.levels[0]
        .compare_exchange(current, succ, &guard)
        .is_ok()
    {
        retired |= release(&scene.domain, current);
    }
    read(node, "remover, at the end of its section");
    retired
}

/// The helper: loads the node through level 0 and, if it finds it
/// marked, unlinks it there. Reads it throughout its section. Returns
/// whether it retired it.
fn help(scene: &Scene) -> bool {
    let guard = scene.domain.read();
    let current = scene.levels[0].load(&guard);
    let Some(node) = current.as_ref() else {
        return false; // not published yet, or unlinked by the remover
    };
    read(node, "helper, after loading level 0");
    let succ = node.tower[0].load(&guard);
    if succ.tag() == 0 {
        return false; // not marked (yet): not ours to unlink
    }
    let mut retired = false;
    if scene.levels[0]
        .compare_exchange(current, succ.with_tag(0), &guard)
        .is_ok()
    {
        retired = release(&scene.domain, current);
    }
    read(node, "helper, at the end of its section");
    retired
}

/// A reader: loads the node through level 1, then level 0, and reads it
/// each time it finds it.
fn traverse(scene: &Scene) {
    let guard = scene.domain.read();
    for link in [&scene.levels[1], &scene.levels[0]] {
        if let Some(node) = link.load(&guard).as_ref() {
            read(node, "reader");
            let _ = link.load(&guard); // a scheduling point inside the section
            read(node, "reader, again");
        }
    }
}

/// Whoever retired the node waits for it to be freed, outside its
/// section, while the others may still read it.
fn barrier_if(retired: bool, scene: &Scene, drops: &StdAtomicUsize) {
    if retired {
        scene.domain.barrier();
        assert_eq!(drops.load(SeqCst), 1, "not freed when barrier returned");
    }
}

/// Publishes a new node at both levels, under a guard.
fn publish(scene: &Scene, drops: &StdArc<StdAtomicUsize>) {
    // Made inside the section (a `SeqCst` fence under loom): when the
    // others already run, only the links' `Release`/`Acquire` order its
    // contents before their reads.
    let guard = scene.domain.read();
    let node = make(drops).into_shared(&guard);
    scene.levels[0].store(node);
    scene.levels[1].store(node);
}

/// The helper's thread: helps, and waits for the node to be freed if it
/// retired it.
fn spawn_helper(scene: &Arc<Scene>, drops: &StdArc<StdAtomicUsize>) -> thread::JoinHandle<bool> {
    let (scene, drops) = (scene.clone(), drops.clone());
    thread::spawn(move || {
        let retired = help(&scene);
        barrier_if(retired, &scene, &drops);
        retired
    })
}

/// The end of a model: the node was freed exactly once, both levels are
/// empty, and the domain's teardown frees nothing more.
fn finish(scene: Arc<Scene>, drops: &StdAtomicUsize) {
    let scene = Arc::try_unwrap(scene).unwrap_or_else(|_| panic!("a handle is left"));
    assert_eq!(drops.load(SeqCst), 1, "the node was freed exactly once");
    for (l, link) in scene.levels.iter().enumerate() {
        assert!(link.peek().0.is_null(), "level {l} still links the node");
    }
    let stats = scene.domain.stats();
    assert_eq!((stats.retired, stats.freed), (1, 1));
    drop(scene);
    assert_eq!(drops.load(SeqCst), 1);
}

/// The node is published before the helper starts; the remover (main)
/// and the helper race to unlink it at level 0, each reading it in its
/// section, and whoever retires it runs `barrier` while the other may
/// still hold it.
#[test]
fn remover_and_helper_unlink_a_node_linked_twice() {
    check("link/remover + helper", TWO_THREADS, || {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let scene = Arc::new(Scene::new());
        publish(&scene, &drops);
        let helper = spawn_helper(&scene, &drops);
        let retired = remove(&scene);
        barrier_if(retired, &scene, &drops);
        let helper_retired = helper.join().unwrap();
        assert!(retired != helper_retired, "retired exactly once");
        finish(scene, &drops);
    });
}

/// As above with a reader on a third thread, and the node published by
/// the remover after the others started: the reader and the helper may
/// find it not yet linked, linked, marked, half unlinked or gone, and
/// never see it freed.
#[test]
fn remover_helper_and_reader() {
    check("link/remover + helper + reader", THREE_THREADS, || {
        let drops = StdArc::new(StdAtomicUsize::new(0));
        let scene = Arc::new(Scene::new());
        let reader = {
            let scene = scene.clone();
            thread::spawn(move || traverse(&scene))
        };
        let helper = spawn_helper(&scene, &drops);
        publish(&scene, &drops);
        let retired = remove(&scene);
        barrier_if(retired, &scene, &drops);
        let helper_retired = helper.join().unwrap();
        reader.join().unwrap();
        assert!(retired != helper_retired, "retired exactly once");
        finish(scene, &drops);
    });
}
