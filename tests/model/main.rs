//! Model-based randomized test of the public API.
//!
//! Random sequences of operations run against a small *reference model* that
//! knows, for every object, whether it must still be alive or must already
//! have been freed, and checks the crate against it after every operation.
//!
//! # Objects
//!
//! Every object ([`Obj`]) has an id and a `magic` word that is `LIVE ^ id`
//! while it is alive; its destructor overwrites it with `POISON` and bumps the
//! object's drop count in a shared [`Table`] (a `u8` per id), flagging a second
//! drop or a drop of a poisoned object as an anomaly. A reader that holds a
//! reference checks the magic when it uses it (under Miri the use of a freed
//! object is itself reported). At the end of every run, every object ever
//! created must have been dropped exactly once.
//!
//! # What the model asserts
//!
//! Only what the documentation promises:
//!
//! - Safety, at any point: an object that was reachable when a read section
//!   began (published in a domain, or in a slot or array of the owner a
//!   [`ownrcu::Read`] reads) is not freed before that section ends, however it
//!   is retired meanwhile. Each open section records which objects it could
//!   reach; owner sections also hold real references and check their magic.
//! - `Domain::barrier`: everything retired into that domain (retire, defer,
//!   batches, other threads' buffers) before the call is freed when it
//!   returns. `User::barrier`: the same for objects retired through that
//!   owner. `Exclusive::free_pending`: every object still pending on the owner
//!   is freed. `Removed::synchronize`: the removed objects are freed.
//! - The last `User` drop frees everything of its owner (data, objects in
//!   slots and arrays, retired-but-pending objects) before it returns, and
//!   every `Holder::upgrade` fails from then on; while a user (or a read
//!   section's user) is left, upgrades succeed.
//! - Dropping the last handle of a user-created domain frees everything
//!   retired into it.
//! - `synchronize` frees nothing ("It does not free anything") and completes
//!   a grace period; every section running when it was called has ended when
//!   it returns. A cookie is never complete (`poll` false) while a section
//!   that was running when the cookie was taken is still open; after
//!   `wait(cookie)` `poll` is true.
//! - Counters: domain and owner `retired`, domain `batches` and owner
//!   `registrations` match the model exactly; an owner's `pending` is exactly
//!   the number of its retired objects whose destructor has not run.
//!
//! Nothing is asserted about *when* objects are freed otherwise (after
//! `synchronize`, `poll`, amortized reclamation): only that they are not
//! freed too early, and that they are freed by the points above.
//!
//! # Phases
//!
//! - [`single_thread_model`]: one thread, fully deterministic per seed (the
//!   global domain's epoch may differ from run to run; the operations do
//!   not). Read sections nest (the operations inside a section run while its
//!   guard is held), so objects are unlinked, retired and reclaimed around
//!   open sections. A helper thread is sometimes spawned to retire objects
//!   and exit (its buffer must be handed over).
//! - [`multi_thread_model`]: several threads, each with its own RNG derived
//!   from the seed, read and write shared owners and per-domain "boards" of
//!   published objects. The interleaving is not deterministic; cross-thread
//!   checks use shared atomics: a per-thread "open section" word for the
//!   synchronize/cookie checks, and per-domain/per-owner logs of retired ids
//!   (written after a retirement returns) for the barrier checks.
//!
//! # Reproducing a failure
//!
//! Each run uses a seed: a fixed list, plus one derived from the clock
//! (natively). A failure names its seed; rerun just that seed with
//!
//! ```text
//! OWNRCU_MODEL_SEED=0x1234abcd cargo test --test model
//! ```
//!
//! (decimal works too). `OWNRCU_MODEL_VERBOSE=1` prints each seed before
//! it runs, uncaptured, for a run that crashes instead of failing (reading a
//! freed object natively is undefined behaviour; run the seed under Miri).
//! Under Miri the sizes are much smaller.

use std::any::Any;
use std::io::Write;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::thread;

use ownrcu::{Array, ArrayWriter, Batch, Domain, GracePeriod, Holder, Slot, Stats, User};

// ----- sizes ----------------------------------------------------------------

/// Operations per single-threaded run.
const ST_OPS: usize = if cfg!(miri) { 120 } else { 6000 };
/// Fixed seeds of the single-threaded phase (a clock-derived one is added
/// natively).
const ST_SEEDS: &[u64] = if cfg!(miri) {
    &[0x5eed_0001, 0x5eed_0002]
} else {
    &[
        0x5eed_0001,
        0x5eed_0002,
        0x5eed_0003,
        0xdead_beef,
        0x0123_4567_89ab_cdef,
        0x42,
    ]
};
/// Threads and operations per thread of the multi-threaded phase.
const MT_THREADS: usize = if cfg!(miri) { 2 } else { 3 };
const MT_OPS: usize = if cfg!(miri) { 50 } else { 6000 };
const MT_SEEDS: &[u64] = if cfg!(miri) {
    &[0x3ead_0001]
} else {
    &[0x3ead_0001, 0x3ead_0002, 0xfeed_f00d]
};
/// Largest burst of single retirements (enough to fill and hand over
/// per-thread buffers, and to start grace periods by count).
const BURST: usize = if cfg!(miri) { 12 } else { 300 };
/// Deepest nesting of read sections.
const MAX_DEPTH: usize = 4;
/// Most objects published in one domain / owners alive / cookies kept.
const MAX_PUBLISHED: usize = 16;
const MAX_OWNERS: usize = 4;
const MAX_COOKIES: usize = 8;
/// Board cells per domain, owners and slots per owner (multi-threaded).
const MT_CELLS: usize = if cfg!(miri) { 3 } else { 16 };
const MT_OWNERS: usize = if cfg!(miri) { 2 } else { 3 };
const MT_SLOTS: usize = if cfg!(miri) { 2 } else { 8 };

// ----- seeds and the RNG ----------------------------------------------------

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` %.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// Picks from `(weight, value)` pairs.
    fn pick<T: Copy>(&mut self, table: &[(usize, T)]) -> T {
        let total: usize = table.iter().map(|&(w, _)| w).sum();
        let mut at = self.below(total);
        for &(w, value) in table {
            if at < w {
                return value;
            }
            at -= w;
        }
        unreachable!()
    }
}

fn parse_seed(text: &str) -> u64 {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse(),
    };
    parsed.unwrap_or_else(|_| panic!("OWNRCU_MODEL_SEED={text:?} is not a number"))
}

/// The seeds to run: `OWNRCU_MODEL_SEED` alone if set, else the fixed ones
/// plus (natively) one from the clock.
fn seeds(fixed: &[u64]) -> Vec<u64> {
    if let Ok(text) = std::env::var("OWNRCU_MODEL_SEED") {
        return vec![parse_seed(&text)];
    }
    let mut seeds = fixed.to_vec();
    if !cfg!(miri) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        seeds.push(Rng::new(nanos).next());
    }
    seeds
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// Runs `run` once per seed, each on a fresh thread (whose exit hands its
/// buffers over); a failure is re-raised with the seed and how to rerun it.
fn for_each_seed(test: &str, fixed: &[u64], run: fn(u64)) {
    let verbose = std::env::var_os("OWNRCU_MODEL_VERBOSE").is_some();
    for seed in seeds(fixed) {
        if verbose {
            // Straight to stderr, not captured: still there if the process
            // dies (a native use-after-free can crash instead of failing).
            let _ = writeln!(std::io::stderr(), "{test}: seed {seed:#x}");
        }
        let result = thread::Builder::new()
            .name(format!("{test} {seed:#x}"))
            .spawn(move || run(seed))
            .expect("spawn a model thread")
            .join();
        if let Err(payload) = result {
            let message = panic_message(&*payload);
            panic!(
                "{test} failed with seed {seed:#x}: {message}\n\
                 reproduce with: OWNRCU_MODEL_SEED={seed:#x} cargo test --test model {test}"
            );
        }
    }
}

// ----- objects --------------------------------------------------------------

const LIVE: u64 = 0x4c49_5645_4f42_4a21;
const POISON: u64 = 0xdead_dead_dead_dead;

fn live_magic(id: usize) -> u64 {
    LIVE ^ id as u64
}

/// Per-object drop counts, shared by all objects of one run.
struct Table {
    drops: Box<[AtomicU8]>,
    /// Multi-threaded phase: 0 for domain objects, `1 + o` for owner `o`'s.
    tags: Box<[AtomicU8]>,
    next: AtomicUsize,
    /// Double drops, and drops of objects whose magic was not live.
    anomalies: AtomicUsize,
}

impl Table {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            drops: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            tags: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            next: AtomicUsize::new(0),
            anomalies: AtomicUsize::new(0),
        })
    }

    fn room(&self) -> usize {
        self.drops.len().saturating_sub(self.next.load(Relaxed))
    }

    fn created(&self) -> usize {
        self.next.load(Relaxed).min(self.drops.len())
    }

    /// How many times object `id` was dropped.
    fn drops(&self, id: usize) -> u8 {
        // Acquire: pairs with the destructor's Release, so a drop seen here
        // is one that really happened before.
        self.drops[id].load(Acquire)
    }

    fn assert_no_anomaly(&self) {
        assert_eq!(
            self.anomalies.load(Relaxed),
            0,
            "an object was dropped twice, or dropped after being poisoned"
        );
    }

    fn assert_freed(&self, id: usize, why: &str) {
        let drops = self.drops(id);
        assert!(drops == 1, "object {id} dropped {drops} times: {why}");
    }

    fn assert_live(&self, id: usize, why: &str) {
        let drops = self.drops(id);
        assert!(drops == 0, "object {id} was freed ({drops} drops): {why}");
    }

    /// Every object created was dropped exactly once.
    fn assert_all_freed_once(&self) {
        self.assert_no_anomaly();
        for id in 0..self.created() {
            self.assert_freed(id, "every object is freed exactly once by the end of a run");
        }
    }
}

/// A tracked object.
struct Obj {
    magic: AtomicU64,
    id: usize,
    table: Arc<Table>,
}

fn new_obj(table: &Arc<Table>, tag: u8) -> Box<Obj> {
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
    fn is_live(&self) -> bool {
        self.magic.load(Relaxed) == live_magic(self.id)
    }

    /// A reader uses the object: it must be alive.
    fn check(&self) {
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

fn ids(objects: &[&Obj]) -> Vec<usize> {
    objects.iter().map(|o| o.id).collect()
}

/// An owner's data.
struct Data {
    slots: Vec<Slot<Obj>>,
    array: Array<Obj>,
    /// Stands for the data itself: freed by the last user's drop.
    tag: Box<Obj>,
}

/// References a reader holds inside its open (nested) sections: objects,
/// and (under Miri) the array versions it keeps scanning. Natively a version
/// freed too early would be read as garbage pointers (a crash, not a
/// message), so the objects are copied out of it when the section begins.
struct Frame<'a> {
    parent: Option<&'a Frame<'a>>,
    refs: Vec<&'a Obj>,
    slices: Vec<&'a [&'a Obj]>,
}

fn check_frames(frame: Option<&Frame<'_>>) {
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
fn remove_range(
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

// ===== the single-threaded model ============================================

#[derive(Clone, Copy, Debug)]
enum Op {
    EnterDomain,
    EnterOwner,
    Publish,
    Retire,
    DomainBatch,
    Burst,
    ThreadRetire,
    Synchronize,
    Barrier,
    Cookie,
    Poll,
    Wait,
    UserNew,
    UserClone,
    UserDrop,
    Holders,
    Upgrade,
    SlotWrite,
    OwnerBatchWrite,
    ArrayWrite,
    UserBarrier,
    Exclusive,
    Recycle,
}

const ST_WEIGHTS: &[(usize, Op)] = &[
    (8, Op::EnterDomain),
    (8, Op::EnterOwner),
    (6, Op::Publish),
    (8, Op::Retire),
    (4, Op::DomainBatch),
    (1, Op::Burst),
    (1, Op::ThreadRetire),
    (2, Op::Synchronize),
    (3, Op::Barrier),
    (3, Op::Cookie),
    (4, Op::Poll),
    (2, Op::Wait),
    (2, Op::UserNew),
    (3, Op::UserClone),
    (3, Op::UserDrop),
    (3, Op::Holders),
    (2, Op::Upgrade),
    (8, Op::SlotWrite),
    (4, Op::OwnerBatchWrite),
    (6, Op::ArrayWrite),
    (2, Op::UserBarrier),
    (3, Op::Exclusive),
    (1, Op::Recycle),
];

/// A domain in the model.
struct DomainM {
    domain: Domain,
    global: bool,
    /// Objects readers of the domain can reach: boxed, as they are retired.
    #[allow(clippy::vec_box)]
    published: Vec<Box<Obj>>,
    /// Retired into the domain, not yet known to be freed.
    must_free: Vec<usize>,
    /// Objects retired and non-empty batches drained, as the domain counts.
    retired: u64,
    batches: u64,
    /// Counters when the model started using the domain.
    base: Stats,
}

impl DomainM {
    fn new(global: bool) -> Self {
        let domain = if global {
            Domain::global().clone()
        } else {
            Domain::new()
        };
        let base = domain.stats();
        Self {
            domain,
            global,
            published: Vec::new(),
            must_free: Vec::new(),
            retired: 0,
            batches: 0,
            base,
        }
    }
}

/// An owner in the model.
struct OwnerM {
    key: u64,
    domain: usize,
    users: Vec<User<Data>>,
    holders: Vec<Holder<Data>>,
    /// User handles held by open read sections (clones made on entry).
    pins: usize,
    slots: Vec<Option<usize>>,
    array: Vec<usize>,
    tag: usize,
    /// Retired through the owner, not yet known to be freed.
    must_free: Vec<usize>,
    retired: u64,
    registrations: u64,
}

/// Holders of an owner that was torn down.
struct DeadOwner {
    domain: usize,
    holders: Vec<Holder<Data>>,
}

struct SectionM {
    seq: u64,
    domain: usize,
    /// Objects reachable when the section began.
    protected: Vec<usize>,
}

struct CookieM {
    domain: usize,
    cookie: GracePeriod,
    /// Sections of its domain open when the cookie was taken.
    open: Vec<u64>,
}

struct St {
    rng: Rng,
    table: Arc<Table>,
    domains: Vec<DomainM>,
    owners: Vec<OwnerM>,
    dead: Vec<DeadOwner>,
    sections: Vec<SectionM>,
    cookies: Vec<CookieM>,
    next_key: u64,
    next_seq: u64,
    budget: usize,
}

fn run_single_thread(seed: u64) {
    let mut st = St {
        rng: Rng::new(seed),
        table: Table::new(ST_OPS * 40 + 1000),
        // Two user-created domains (recycled now and then) and the global one.
        domains: vec![DomainM::new(false), DomainM::new(false), DomainM::new(true)],
        owners: Vec::new(),
        dead: Vec::new(),
        sections: Vec::new(),
        cookies: Vec::new(),
        next_key: 0,
        next_seq: 0,
        budget: ST_OPS,
    };
    st.user_new();
    st.user_new();
    while st.budget > 0 {
        st.step(None);
    }
    st.finish();
}

impl St {
    fn obj(&self) -> Box<Obj> {
        new_obj(&self.table, 0)
    }

    fn in_section(&self, d: usize) -> bool {
        self.sections.iter().any(|s| s.domain == d)
    }

    fn owner_index(&self, key: u64) -> Option<usize> {
        self.owners.iter().position(|o| o.key == key)
    }

    /// A random owner with a user handle in the model, and one of its users.
    fn pick_user(&mut self) -> Option<(usize, usize)> {
        let with_users: Vec<usize> = (0..self.owners.len())
            .filter(|&o| !self.owners[o].users.is_empty())
            .collect();
        if with_users.is_empty() {
            return None;
        }
        let o = with_users[self.rng.below(with_users.len())];
        let j = self.rng.below(self.owners[o].users.len());
        Some((o, j))
    }

    fn step(&mut self, frame: Option<&Frame<'_>>) {
        self.budget -= 1;
        match self.rng.pick(ST_WEIGHTS) {
            Op::EnterDomain => self.enter_domain(frame),
            Op::EnterOwner => self.enter_owner(frame),
            Op::Publish => self.publish(),
            Op::Retire => self.retire(),
            Op::DomainBatch => self.domain_batch(),
            Op::Burst => self.burst(),
            Op::ThreadRetire => self.thread_retire(),
            Op::Synchronize => self.synchronize(),
            Op::Barrier => self.barrier(),
            Op::Cookie => self.cookie(),
            Op::Poll => self.poll(),
            Op::Wait => self.wait(),
            Op::UserNew => self.user_new(),
            Op::UserClone => self.user_clone(),
            Op::UserDrop => self.user_drop(),
            Op::Holders => self.holder_op(),
            Op::Upgrade => self.upgrade(),
            Op::SlotWrite => self.slot_op(),
            Op::OwnerBatchWrite => self.owner_batch(),
            Op::ArrayWrite => self.array_write(),
            Op::UserBarrier => self.user_barrier(),
            Op::Exclusive => self.exclusive(),
            Op::Recycle => self.recycle(),
        }
        self.check(frame);
    }

    /// Runs a few operations inside the section just entered.
    fn nested(&mut self, frame: Option<&Frame<'_>>) {
        let n = 1 + self.rng.below(6);
        for _ in 0..n {
            if self.budget == 0 {
                break;
            }
            self.step(frame);
        }
    }

    /// Everything the model knows must hold right now.
    fn check(&self, frame: Option<&Frame<'_>>) {
        let table = &self.table;
        table.assert_no_anomaly();
        for s in &self.sections {
            for &id in &s.protected {
                table.assert_live(id, "it was reachable when a still-open read section began");
            }
        }
        check_frames(frame);
        for (d, dm) in self.domains.iter().enumerate() {
            for obj in &dm.published {
                table.assert_live(obj.id, "published in a domain");
            }
            let stats = dm.domain.stats();
            assert_eq!(
                stats.retired - dm.base.retired,
                dm.retired,
                "domain {d}: Stats::retired"
            );
            assert_eq!(
                stats.batches - dm.base.batches,
                dm.batches,
                "domain {d}: Stats::batches"
            );
            assert!(stats.freed <= stats.retired, "domain {d}: freed > retired");
        }
        for om in &self.owners {
            for &id in om.slots.iter().flatten().chain(&om.array) {
                table.assert_live(id, "in a slot or array of a live owner");
            }
            table.assert_live(om.tag, "the data of a live owner");
            let Some(user) = om.users.first() else {
                continue;
            };
            assert_eq!(user.users(), om.users.len() + om.pins, "User::users");
            let stats = user.stats();
            assert_eq!(stats.retired, om.retired, "OwnerStats::retired");
            assert_eq!(
                stats.registrations, om.registrations,
                "OwnerStats::registrations"
            );
            let unfreed = om
                .must_free
                .iter()
                .filter(|&&id| table.drops(id) == 0)
                .count() as u64;
            assert_eq!(
                stats.pending, unfreed,
                "OwnerStats::pending is the number of retired objects not freed yet"
            );
            assert_eq!(
                stats.freed_after_grace_period + stats.freed_directly + stats.pending,
                stats.retired,
                "OwnerStats add up"
            );
        }
    }

    fn open_section(&mut self, domain: usize, protected: Vec<usize>) -> u64 {
        self.next_seq += 1;
        self.sections.push(SectionM {
            seq: self.next_seq,
            domain,
            protected,
        });
        self.next_seq
    }

    fn close_section(&mut self, seq: u64) {
        let s = self.sections.pop().expect("an open section");
        assert_eq!(s.seq, seq);
        for id in s.protected {
            self.table
                .assert_live(id, "reachable when the section began, which is ending now");
        }
    }

    // ----- read sections ---------------------------------------------------

    fn enter_domain(&mut self, frame: Option<&Frame<'_>>) {
        if self.sections.len() >= MAX_DEPTH {
            return;
        }
        let d = self.rng.below(self.domains.len());
        // A handle of our own: the guard borrows it, and the operations
        // inside the section may do anything with the model's.
        let handle = self.domains[d].domain.clone();
        let guard = handle.read();
        assert!(std::ptr::eq(guard.domain(), &handle));
        let protected = self.domains[d].published.iter().map(|o| o.id).collect();
        let seq = self.open_section(d, protected);
        self.nested(frame);
        self.close_section(seq);
        drop(guard);
    }

    fn enter_owner(&mut self, frame: Option<&Frame<'_>>) {
        if self.sections.len() >= MAX_DEPTH {
            return;
        }
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        // The section's own user handle: the read borrows it, so the model's
        // handles may all go meanwhile; the owner lives until it drops.
        let user = self.owners[o].users[j].clone();
        let om = &mut self.owners[o];
        om.pins += 1;
        let (key, d) = (om.key, om.domain);
        let read = user.read();
        let mut refs = Vec::new();
        assert_eq!(read.slots.len(), om.slots.len(), "slot count");
        for (i, slot) in read.slots.iter().enumerate() {
            let got = slot.load(&read);
            assert_eq!(got.map(|x| x.id), om.slots[i], "Slot::load of slot {i}");
            refs.extend(got);
        }
        let items = read.array.load(&read);
        assert_eq!(ids(items), om.array, "Array::load");
        read.tag.check();
        refs.push(&read.tag);
        refs.extend(items.iter().copied());
        let mut protected: Vec<usize> = refs.iter().map(|x| x.id).collect();
        protected.extend(self.domains[d].published.iter().map(|x| x.id));
        let seq = self.open_section(d, protected);
        let inner = Frame {
            parent: frame,
            refs,
            slices: if cfg!(miri) { vec![items] } else { vec![] },
        };
        check_frames(Some(&inner));
        self.nested(Some(&inner));
        check_frames(Some(&inner));
        self.close_section(seq);
        drop(inner);
        drop(read);
        let o = self
            .owner_index(key)
            .expect("a pinned owner is not torn down");
        let om = &mut self.owners[o];
        om.pins -= 1;
        let last = om.users.is_empty() && om.pins == 0;
        drop(user);
        if last {
            let om = self.owners.remove(o);
            self.torn_down(om, "the last user was a read section's");
        }
    }

    // ----- domain retirement ---------------------------------------------

    /// An object to retire from domain `d`: a published one (unlinked now),
    /// or a fresh one.
    fn victim(&mut self, d: usize) -> Box<Obj> {
        let dm = &mut self.domains[d];
        if !dm.published.is_empty() && self.rng.chance(80) {
            let i = self.rng.below(dm.published.len());
            dm.published.swap_remove(i)
        } else {
            new_obj(&self.table, 0)
        }
    }

    fn publish(&mut self) {
        let d = self.rng.below(self.domains.len());
        let n = 1 + self.rng.below(3);
        for _ in 0..n {
            if self.domains[d].published.len() >= MAX_PUBLISHED {
                return self.retire();
            }
            let obj = self.obj();
            self.domains[d].published.push(obj);
        }
    }

    fn retire(&mut self) {
        let d = self.rng.below(self.domains.len());
        let victim = self.victim(d);
        let variant = self.rng.below(4);
        let second = if variant == 3 {
            Some(self.victim(d))
        } else {
            None
        };
        let dm = &mut self.domains[d];
        dm.must_free.push(victim.id);
        dm.retired += 1;
        match (variant, second) {
            (0, _) => dm.domain.retire(victim),
            (1, _) => dm.domain.retire(victim as Box<dyn Any + Send>),
            (2, _) => dm.domain.defer(move || {
                // Run after a grace period: the object is still alive.
                if !victim.is_live() {
                    victim.table.anomalies.fetch_add(1, Relaxed);
                }
                drop(victim);
            }),
            (_, Some(second)) => {
                dm.must_free.push(second.id);
                // One unsized object holding two.
                let pair: Box<[Obj]> = vec![*victim, *second].into_boxed_slice();
                dm.domain.retire(pair);
            }
            _ => unreachable!(),
        }
    }

    fn domain_batch(&mut self) {
        let d = self.rng.below(self.domains.len());
        let k = self.rng.below(5);
        let victims: Vec<Box<Obj>> = (0..k).map(|_| self.victim(d)).collect();
        let variant = self.rng.below(4);
        let drain = self.rng.chance(70);
        let dm = &mut self.domains[d];
        dm.must_free.extend(victims.iter().map(|v| v.id));
        dm.retired += k as u64;
        dm.batches += u64::from(k > 0);
        let batch = match variant {
            0 => {
                let mut batch = dm.domain.batch();
                for v in victims {
                    batch.push(v);
                }
                batch
            }
            1 => {
                let mut batch = Batch::new(&dm.domain);
                batch.extend(victims);
                batch
            }
            2 => {
                let mut batch = Batch::with_capacity(&dm.domain, k);
                batch.extend(victims);
                batch
            }
            _ => Batch::from_vec(&dm.domain, victims),
        };
        assert_eq!(batch.len(), k);
        assert_eq!(batch.is_empty(), k == 0);
        assert!(std::ptr::eq(batch.domain(), &dm.domain));
        if drain {
            batch.drain();
        } else {
            drop(batch);
        }
    }

    /// Many single retirements (or one big batch): buffers fill and are
    /// handed over, grace periods start by count, amortized frees run.
    fn burst(&mut self) {
        let n = (1 + self.rng.below(BURST)).min(self.table.room() / 4);
        let singly = self.rng.chance(75);
        let objects: Vec<Box<Obj>> = (0..n).map(|_| self.obj()).collect();
        let d = self.rng.below(self.domains.len());
        let dm = &mut self.domains[d];
        dm.must_free.extend(objects.iter().map(|o| o.id));
        dm.retired += n as u64;
        if singly {
            for obj in objects {
                dm.domain.retire(obj);
            }
        } else if n > 0 {
            dm.batches += 1;
            Batch::from_vec(&dm.domain, objects).drain();
        }
    }

    /// A short-lived thread retires into a domain and exits: its buffer is
    /// handed to the domain, so the next barrier frees it.
    fn thread_retire(&mut self) {
        let d = self.rng.below(self.domains.len());
        let n = 1 + self.rng.below(6);
        let objects: Vec<Box<Obj>> = (0..n).map(|_| self.obj()).collect();
        let read_too = self.rng.chance(50);
        let dm = &mut self.domains[d];
        dm.must_free.extend(objects.iter().map(|o| o.id));
        dm.retired += n as u64;
        // A plain `join` (not a scope) also waits for the thread's locals to
        // be destroyed, which hands its buffer over.
        let domain = dm.domain.clone();
        thread::spawn(move || {
            for obj in objects {
                if read_too {
                    let _guard = domain.read();
                    domain.retire(obj);
                } else {
                    domain.retire(obj);
                }
            }
        })
        .join()
        .expect("the helper thread");
    }

    // ----- waiting -------------------------------------------------------

    /// A domain with no section open on this thread (waiting is allowed).
    fn idle_domain(&mut self) -> Option<usize> {
        let idle: Vec<usize> = (0..self.domains.len())
            .filter(|&d| !self.in_section(d))
            .collect();
        (!idle.is_empty()).then(|| idle[self.rng.below(idle.len())])
    }

    fn total_drops(&self) -> usize {
        (0..self.table.created())
            .map(|id| usize::from(self.table.drops(id)))
            .sum()
    }

    fn synchronize(&mut self) {
        let Some(d) = self.idle_domain() else {
            return;
        };
        let before = self.domains[d].domain.stats().grace_periods;
        let drops = self.total_drops();
        self.domains[d].domain.synchronize();
        assert_eq!(
            self.total_drops(),
            drops,
            "Domain::synchronize does not free anything"
        );
        let after = self.domains[d].domain.stats().grace_periods;
        assert!(after > before, "synchronize completed a grace period");
    }

    fn barrier(&mut self) {
        let Some(d) = self.idle_domain() else {
            return;
        };
        let dm = &mut self.domains[d];
        dm.domain.barrier();
        for id in dm.must_free.drain(..) {
            self.table
                .assert_freed(id, "retired into the domain before Domain::barrier");
        }
        let stats = dm.domain.stats();
        assert_eq!(
            stats.freed - dm.base.freed,
            stats.retired - dm.base.retired,
            "nothing is pending after a barrier (single thread)"
        );
    }

    fn cookie(&mut self) {
        let d = self.rng.below(self.domains.len());
        let open = self
            .sections
            .iter()
            .filter(|s| s.domain == d)
            .map(|s| s.seq)
            .collect();
        let cookie = self.domains[d].domain.grace_period();
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(CookieM {
            domain: d,
            cookie,
            open,
        });
    }

    fn assert_cookie_complete(&self, c: &CookieM) {
        for &seq in &c.open {
            assert!(
                self.sections.iter().all(|s| s.seq != seq),
                "a cookie completed while a section running when it was taken is still open"
            );
        }
    }

    fn poll(&mut self) {
        if self.cookies.is_empty() {
            return;
        }
        let c = &self.cookies[self.rng.below(self.cookies.len())];
        if self.domains[c.domain].domain.poll(&c.cookie) {
            self.assert_cookie_complete(c);
            // Complete: `wait` returns at once, even inside a section.
            self.domains[c.domain].domain.wait(&c.cookie);
        }
    }

    fn wait(&mut self) {
        if self.cookies.is_empty() {
            return;
        }
        let i = self.rng.below(self.cookies.len());
        let c = &self.cookies[i];
        if self.in_section(c.domain) {
            return;
        }
        let domain = &self.domains[c.domain].domain;
        domain.wait(&c.cookie);
        assert!(domain.poll(&c.cookie), "poll is true after wait");
        self.assert_cookie_complete(c);
    }

    // ----- owners: handles ------------------------------------------------

    fn user_new(&mut self) {
        if self.owners.len() >= MAX_OWNERS || self.table.room() < 64 {
            return;
        }
        let d = self.rng.below(self.domains.len());
        let n_slots = 1 + self.rng.below(4);
        let mut slots = Vec::new();
        let mut slot_ids = Vec::new();
        for _ in 0..n_slots {
            match self.rng.below(4) {
                0 => {
                    slot_ids.push(None);
                    slots.push(Slot::empty());
                }
                1 => {
                    slot_ids.push(None);
                    slots.push(Slot::default());
                }
                _ => {
                    let obj = self.obj();
                    slot_ids.push(Some(obj.id));
                    slots.push(Slot::new(obj));
                }
            }
        }
        let objects: Vec<Box<Obj>> = (0..self.rng.below(5)).map(|_| self.obj()).collect();
        let array_ids = objects.iter().map(|o| o.id).collect();
        let array = match (objects.is_empty(), self.rng.below(2)) {
            (true, 0) => Array::new(),
            (true, _) => Array::default(),
            _ => Array::from_vec(objects),
        };
        let tag = self.obj();
        let tag_id = tag.id;
        let user = User::new(&self.domains[d].domain, Data { slots, array, tag });
        self.next_key += 1;
        self.owners.push(OwnerM {
            key: self.next_key,
            domain: d,
            users: vec![user],
            holders: Vec::new(),
            pins: 0,
            slots: slot_ids,
            array: array_ids,
            tag: tag_id,
            must_free: Vec::new(),
            retired: 0,
            registrations: 0,
        });
    }

    fn user_clone(&mut self) {
        if let Some((o, j)) = self.pick_user() {
            let om = &mut self.owners[o];
            let user = om.users[j].clone();
            om.users.push(user);
        }
    }

    fn user_drop(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        let om = &mut self.owners[o];
        let user = om.users.swap_remove(j);
        let last = om.users.is_empty() && om.pins == 0;
        drop(user);
        if last {
            let om = self.owners.remove(o);
            self.torn_down(om, "the model dropped the last user");
        } else {
            for h in &self.owners[o].holders {
                assert!(!h.is_torn_down(), "a user is left: not torn down");
            }
        }
    }

    /// The last user of `om` has just been dropped.
    fn torn_down(&mut self, om: OwnerM, how: &str) {
        let table = &self.table;
        for &id in om.slots.iter().flatten().chain(&om.array) {
            table.assert_freed(
                id,
                &format!("in the owner's slots or array at teardown ({how})"),
            );
        }
        table.assert_freed(om.tag, &format!("the owner's data at teardown ({how})"));
        for &id in &om.must_free {
            table.assert_freed(
                id,
                &format!("retired through the owner, pending at teardown ({how})"),
            );
        }
        for h in &om.holders {
            assert!(h.is_torn_down(), "Holder::is_torn_down after teardown");
            assert!(
                h.upgrade().is_none(),
                "Holder::upgrade fails after teardown"
            );
            let stats = h.stats();
            assert_eq!(stats.pending, 0, "nothing pending after teardown");
            assert_eq!(stats.retired, om.retired, "OwnerStats::retired");
            assert_eq!(
                stats.freed_after_grace_period + stats.freed_directly,
                om.retired,
                "every retired object freed, once"
            );
        }
        self.dead.push(DeadOwner {
            domain: om.domain,
            holders: om.holders,
        });
    }

    fn holder_op(&mut self) {
        match self.rng.below(3) {
            0 => {
                if let Some((o, j)) = self.pick_user() {
                    let om = &mut self.owners[o];
                    let holder = om.users[j].holder();
                    assert!(!holder.is_torn_down());
                    om.holders.push(holder);
                }
            }
            1 => {
                if self.owners.is_empty() {
                    return;
                }
                let o = self.rng.below(self.owners.len());
                let om = &mut self.owners[o];
                if let Some(h) = om.holders.first() {
                    let h = h.clone();
                    om.holders.push(h);
                }
            }
            _ => {
                // Drop a holder, of a live or a dead owner.
                let live = self.owners.iter().filter(|o| !o.holders.is_empty()).count();
                let dead = self.dead.len();
                if live + dead == 0 {
                    return;
                }
                let mut i = self.rng.below(live + dead);
                if i < live {
                    let om = self
                        .owners
                        .iter_mut()
                        .filter(|o| !o.holders.is_empty())
                        .nth(i)
                        .unwrap();
                    let h = om.holders.swap_remove(0);
                    drop(h);
                } else {
                    i -= live;
                    let h = self.dead[i].holders.pop();
                    drop(h);
                    if self.dead[i].holders.is_empty() {
                        self.dead.swap_remove(i);
                    }
                }
            }
        }
    }

    fn upgrade(&mut self) {
        if !self.dead.is_empty() && self.rng.chance(30) {
            let dead = &self.dead[self.rng.below(self.dead.len())];
            for h in &dead.holders {
                assert!(h.is_torn_down());
                assert!(
                    h.upgrade().is_none(),
                    "upgrade fails for good after teardown"
                );
            }
            return;
        }
        let with: Vec<usize> = (0..self.owners.len())
            .filter(|&o| !self.owners[o].holders.is_empty())
            .collect();
        if with.is_empty() {
            return;
        }
        let om = &mut self.owners[with[self.rng.below(with.len())]];
        // A user is left (in the model or in a read section): it succeeds.
        let user = om.holders[0]
            .upgrade()
            .expect("Holder::upgrade succeeds while a user is alive");
        om.users.push(user);
    }

    // ----- owners: writers -------------------------------------------------

    /// Model bookkeeping for objects retired through owner `o`.
    fn owner_retired(&mut self, o: usize, ids: &[usize], registrations: u64) {
        let om = &mut self.owners[o];
        om.must_free.extend_from_slice(ids);
        om.retired += ids.len() as u64;
        om.registrations += registrations;
    }

    fn slot_op(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        let i = self.rng.below(self.owners[o].slots.len());
        let new = if self.rng.chance(70) {
            Some(self.obj())
        } else {
            None
        };
        let new_id = new.as_ref().map(|x| x.id);
        let take = new.is_none() && self.rng.chance(50);
        let finish = self.rng.below(3);
        let user = self.owners[o].users.swap_remove(j);
        let expected = std::mem::replace(&mut self.owners[o].slots[i], new_id);
        let old = if take {
            user.slots[i].take(&user)
        } else {
            user.slots[i].replace(new, &user)
        };
        assert_eq!(old.as_ref().map(|x| x.id), expected, "the object replaced");
        // `{ old }` moves the option: nothing borrowing `user` outlives the
        // block, so the handle can go back afterwards.
        if let Some(old) = { old } {
            old.check();
            let id = old.id;
            match finish {
                0 => old.retire(),
                1 => drop(old),
                _ => {
                    let mut batch = user.batch();
                    batch.push(old);
                    batch.drain();
                }
            }
            self.owner_retired(o, &[id], 1);
        }
        self.owners[o].users.push(user);
    }

    fn owner_batch(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        let n_slots = self.owners[o].slots.len();
        let k = self.rng.below(4);
        let mut picks: Vec<(usize, Option<Box<Obj>>)> = Vec::new();
        for _ in 0..k {
            let i = self.rng.below(n_slots);
            let refill = if self.rng.chance(50) {
                Some(self.obj())
            } else {
                None
            };
            picks.push((i, refill));
        }
        let with_capacity = self.rng.chance(50);
        let drain = self.rng.chance(70);
        let user = self.owners[o].users.swap_remove(j);
        let mut batch = if with_capacity {
            user.batch_with_capacity(k)
        } else {
            user.batch()
        };
        let mut retired = Vec::new();
        for (i, refill) in picks {
            let new_id = refill.as_ref().map(|x| x.id);
            let expected = std::mem::replace(&mut self.owners[o].slots[i], new_id);
            let old = match refill {
                Some(new) => user.slots[i].replace(Some(new), &user),
                None => user.slots[i].take(&user),
            };
            assert_eq!(old.as_ref().map(|x| x.id), expected, "the object taken");
            retired.extend(expected);
            // `Option<Unlinked>` is an iterator of zero or one.
            batch.extend(old);
        }
        assert_eq!(batch.len(), retired.len());
        assert_eq!(batch.is_empty(), retired.is_empty());
        if drain {
            batch.drain();
        } else {
            drop(batch);
        }
        let registrations = u64::from(!retired.is_empty());
        self.owner_retired(o, &retired, registrations);
        self.owners[o].users.push(user);
    }

    fn array_write(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        if self.table.room() < 64 {
            return;
        }
        let d = self.owners[o].domain;
        let may_wait = !self.in_section(d);
        let mut staged = self.owners[o].array.clone();
        let mut removed_ids = Vec::new();
        let user = self.owners[o].users.swap_remove(j);
        let mut writer = user.array.write(&user);
        assert_eq!(ids(writer.items()), staged, "ArrayWriter::items at start");
        for _ in 0..1 + self.rng.below(4) {
            let len = staged.len();
            let kind = if len >= 10 { 2 } else { self.rng.below(5) };
            match kind {
                2 if len > 0 => {
                    let range = remove_range(&mut writer, &mut self.rng, len);
                    removed_ids.extend(staged.drain(range));
                }
                3 if len > 0 => {
                    let at = self.rng.below(len);
                    let obj = self.obj();
                    removed_ids.push(std::mem::replace(&mut staged[at], obj.id));
                    writer.replace(at, obj);
                }
                4 => {
                    let obj = self.obj();
                    staged.push(obj.id);
                    writer.push(obj);
                }
                _ => {
                    let at = self.rng.below(len + 1);
                    let obj = self.obj();
                    staged.insert(at, obj.id);
                    writer.insert(at, obj);
                }
            }
            assert_eq!(ids(writer.items()), staged, "ArrayWriter::items");
            assert_eq!(writer.len(), staged.len());
            assert_eq!(writer.is_empty(), staged.is_empty());
        }
        self.owners[o].array = staged;
        let n = removed_ids.len() as u64;
        let registrations = match self.rng.below(6) {
            0 => {
                // Dropping an uncommitted writer commits and retires.
                drop(writer);
                1
            }
            finish => {
                let removed = writer.commit();
                assert_eq!(ids(removed.objects()), removed_ids, "Removed::objects");
                assert_eq!(removed.len(), removed_ids.len());
                assert_eq!(removed.is_empty(), removed_ids.is_empty());
                for obj in removed.objects() {
                    obj.check();
                }
                match finish {
                    1 | 2 => {
                        removed.retire();
                        1
                    }
                    3 => {
                        removed.retire_each();
                        n + 1
                    }
                    4 if may_wait => {
                        removed.synchronize();
                        for &id in &removed_ids {
                            self.table.assert_freed(
                                id,
                                "removed by a commit, freed by Removed::synchronize",
                            );
                        }
                        let om = &mut self.owners[o];
                        om.retired += n;
                        om.users.push(user);
                        return;
                    }
                    _ => {
                        drop(removed);
                        1
                    }
                }
            }
        };
        self.owner_retired(o, &removed_ids, registrations);
        self.owners[o].users.push(user);
    }

    fn user_barrier(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        if self.in_section(self.owners[o].domain) {
            return;
        }
        let om = &mut self.owners[o];
        om.users[j].barrier();
        for id in om.must_free.drain(..) {
            self.table
                .assert_freed(id, "retired through the owner before User::barrier");
        }
        assert_eq!(
            om.users[j].stats().pending,
            0,
            "nothing pending after User::barrier"
        );
    }

    fn exclusive(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        let expected = self.owners[o].users.len() == 1 && self.owners[o].pins == 0;
        let n_slots = self.owners[o].slots.len();
        let variant = self.rng.below(5);
        let at = self.rng.below(n_slots);
        let fresh: Vec<Box<Obj>> = (0..self.rng.below(4)).map(|_| self.obj()).collect();
        let one = self.obj();
        let table = &self.table;
        let om = &mut self.owners[o];
        let mut user = om.users.swap_remove(j);
        let mut freed_pending = false;
        match user.exclusive() {
            None => assert!(
                !expected,
                "User::exclusive fails only if another user exists"
            ),
            Some(mut ex) => {
                assert!(expected, "User::exclusive succeeds for the only user");
                assert_eq!(ex.slots.len(), om.slots.len());
                match variant {
                    0 => {
                        ex.free_pending();
                        for id in om.must_free.drain(..) {
                            table.assert_freed(id, "Exclusive::free_pending frees what is pending");
                        }
                        freed_pending = true;
                    }
                    1 => {
                        // The old slot (and its object) is dropped directly.
                        let id = one.id;
                        ex.slots[at] = Slot::new(one);
                        if let Some(old) = om.slots[at].replace(id) {
                            table.assert_freed(old, "dropped with its slot under Exclusive");
                        }
                    }
                    2 => {
                        om.slots.push(Some(one.id));
                        ex.slots.push(Slot::new(one));
                    }
                    3 => {
                        let new_ids = fresh.iter().map(|x| x.id).collect();
                        ex.array = Array::from_vec(fresh);
                        for old in std::mem::replace(&mut om.array, new_ids) {
                            table.assert_freed(old, "dropped with its array under Exclusive");
                        }
                    }
                    _ => {
                        let new_id = one.id;
                        ex.tag = one;
                        table.assert_freed(om.tag, "the replaced data tag");
                        om.tag = new_id;
                    }
                }
            }
        }
        if freed_pending {
            assert_eq!(
                user.stats().pending,
                0,
                "nothing pending after free_pending"
            );
        }
        om.users.push(user);
    }

    // ----- domains come and go ---------------------------------------------

    /// Tears down every owner of a user-created domain, then the domain
    /// itself (its last handle), and starts a fresh one in its place.
    fn recycle(&mut self) {
        if !self.sections.is_empty() {
            return;
        }
        let d = self.rng.below(self.domains.len());
        if self.domains[d].global {
            return;
        }
        while let Some(o) = self.owners.iter().position(|om| om.domain == d) {
            let mut om = self.owners.remove(o);
            assert_eq!(om.pins, 0);
            let users = std::mem::take(&mut om.users);
            drop(users);
            self.torn_down(om, "recycling its domain");
        }
        self.dead.retain(|dead| dead.domain != d);
        self.cookies.retain(|c| c.domain != d);
        let mut dm = std::mem::replace(&mut self.domains[d], DomainM::new(false));
        let published = std::mem::take(&mut dm.published);
        dm.must_free.extend(published.iter().map(|x| x.id));
        dm.retired += published.len() as u64;
        dm.batches += u64::from(!published.is_empty());
        Batch::from_vec(&dm.domain, published).drain();
        let stats = dm.domain.stats();
        assert_eq!(stats.retired, dm.retired);
        drop(dm.domain);
        for id in dm.must_free {
            self.table
                .assert_freed(id, "retired into a domain whose last handle was dropped");
        }
    }

    /// Closes everything down; every object must have been freed once.
    fn finish(mut self) {
        assert!(self.sections.is_empty());
        self.cookies.clear();
        for mut om in std::mem::take(&mut self.owners) {
            let users = std::mem::take(&mut om.users);
            drop(users);
            self.torn_down(om, "end of the run");
        }
        self.dead.clear();
        for mut dm in std::mem::take(&mut self.domains) {
            for obj in std::mem::take(&mut dm.published) {
                dm.must_free.push(obj.id);
                dm.domain.retire(obj);
            }
            if dm.global {
                dm.domain.barrier();
            } else {
                drop(dm.domain);
            }
            for id in dm.must_free {
                self.table
                    .assert_freed(id, "retired into a domain, at the end");
            }
        }
        self.table.assert_all_freed_once();
    }
}

/// The single-threaded model: deterministic per seed.
#[test]
fn single_thread_model() {
    for_each_seed("single_thread_model", ST_SEEDS, run_single_thread);
}

// ===== the multi-threaded model =============================================

/// A published pointer of a domain's board: the id (plus one) readers load,
/// and the object itself, owned by the board while published.
struct Cell {
    id: AtomicUsize,
    object: Mutex<Option<Box<Obj>>>,
}

/// Ids whose retirement has returned, in one domain or through one owner.
struct Log {
    entries: Box<[AtomicUsize]>,
    len: AtomicUsize,
}

impl Log {
    fn new(capacity: usize) -> Self {
        Self {
            entries: (0..capacity).map(|_| AtomicUsize::new(0)).collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// Called after the retirement of `id` returned.
    fn push(&self, id: usize) {
        let at = self.len.fetch_add(1, Relaxed);
        // Release: whoever reads the entry sees the retirement as done.
        self.entries[at].store(id + 1, Release);
    }

    /// The ids logged from `*cursor` on (each retired before this call
    /// returns), moving the cursor past the complete prefix.
    fn since(&self, cursor: &mut usize) -> Vec<usize> {
        let len = self.len.load(Acquire).min(self.entries.len());
        let mut out = Vec::new();
        let mut complete = true;
        for at in *cursor..len {
            match self.entries[at].load(Acquire) {
                0 => complete = false,
                entry => {
                    out.push(entry - 1);
                    if complete {
                        *cursor = at + 1;
                    }
                }
            }
        }
        out
    }

    fn len(&self) -> usize {
        self.len.load(Acquire)
    }
}

struct Mt {
    table: Arc<Table>,
    domains: Vec<Domain>,
    boards: Vec<Vec<Cell>>,
    dom_logs: Vec<Log>,
    own_logs: Vec<Log>,
    /// Objects retired into each domain, as the domain counts them.
    dom_retired: Vec<AtomicU64>,
    /// `[thread][domain]`: the sequence number of the thread's outermost
    /// open section of the domain, 0 if none. Set after entering, cleared
    /// before leaving.
    flags: Vec<Vec<AtomicU64>>,
    owner_domain: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
enum MtOp {
    EnterDomain,
    EnterOwner,
    BoardReplace,
    Burst,
    SlotWrite,
    OwnerBatchWrite,
    ArrayWrite,
    Synchronize,
    Barrier,
    UserBarrier,
    Cookie,
    Poll,
    Wait,
    Handles,
    Yield,
}

const MT_WEIGHTS: &[(usize, MtOp)] = &[
    (8, MtOp::EnterDomain),
    (8, MtOp::EnterOwner),
    (10, MtOp::BoardReplace),
    (1, MtOp::Burst),
    (8, MtOp::SlotWrite),
    (3, MtOp::OwnerBatchWrite),
    (5, MtOp::ArrayWrite),
    (2, MtOp::Synchronize),
    (2, MtOp::Barrier),
    (2, MtOp::UserBarrier),
    (2, MtOp::Cookie),
    (3, MtOp::Poll),
    (1, MtOp::Wait),
    (3, MtOp::Handles),
    (2, MtOp::Yield),
];

struct MtCookie {
    domain: usize,
    cookie: GracePeriod,
    /// `(thread, section)` flags seen set when the cookie was taken.
    running: Vec<(usize, u64)>,
}

struct Worker<'m> {
    mt: &'m Mt,
    t: usize,
    rng: Rng,
    budget: usize,
    users: Vec<Option<User<Data>>>,
    holders: Vec<Holder<Data>>,
    dom_cursor: Vec<usize>,
    own_cursor: Vec<usize>,
    cookies: Vec<MtCookie>,
    /// Open guards per domain on this thread.
    depth: Vec<usize>,
    /// Ids each open section loaded from a board.
    protected: Vec<Vec<usize>>,
    seq: u64,
}

impl Mt {
    /// Which `(thread, section)` sections of domain `d` are open now.
    fn running(&self, d: usize) -> Vec<(usize, u64)> {
        (0..self.flags.len())
            .filter_map(|t| match self.flags[t][d].load(Acquire) {
                0 => None,
                seq => Some((t, seq)),
            })
            .collect()
    }

    fn assert_ended(&self, d: usize, running: &[(usize, u64)], what: &str) {
        for &(t, seq) in running {
            assert_ne!(
                self.flags[t][d].load(Acquire),
                seq,
                "{what}: section {seq} of thread {t}, running before, is still open"
            );
        }
    }
}

impl Worker<'_> {
    fn obj(&self, tag: u8) -> Box<Obj> {
        new_obj(&self.mt.table, tag)
    }

    fn reading(&self) -> bool {
        !self.protected.is_empty()
    }

    fn run(mut self) {
        while self.budget > 0 {
            self.step(None);
        }
        assert!(!self.reading());
    }

    fn step(&mut self, frame: Option<&Frame<'_>>) {
        self.budget -= 1;
        match self.rng.pick(MT_WEIGHTS) {
            MtOp::EnterDomain => self.enter_domain(frame),
            MtOp::EnterOwner => self.enter_owner(frame),
            MtOp::BoardReplace => self.board_replace(),
            MtOp::Burst => self.burst(),
            MtOp::SlotWrite => self.slot_op(),
            MtOp::OwnerBatchWrite => self.owner_batch(),
            MtOp::ArrayWrite => self.array_write(),
            MtOp::Synchronize => self.synchronize(),
            MtOp::Barrier => self.barrier(),
            MtOp::UserBarrier => self.user_barrier(),
            MtOp::Cookie => self.cookie(),
            MtOp::Poll => self.poll(),
            MtOp::Wait => self.wait(),
            MtOp::Handles => self.handles(),
            MtOp::Yield => thread::yield_now(),
        }
        self.check(frame);
    }

    fn check(&self, frame: Option<&Frame<'_>>) {
        let table = &self.mt.table;
        table.assert_no_anomaly();
        for ids in &self.protected {
            for &id in ids {
                table.assert_live(
                    id,
                    "loaded from a board inside a read section that is still open",
                );
            }
        }
        check_frames(frame);
    }

    fn nested(&mut self, frame: Option<&Frame<'_>>) {
        let n = 1 + self.rng.below(5);
        for _ in 0..n {
            if self.budget == 0 {
                break;
            }
            self.step(frame);
        }
    }

    fn enter_flag(&mut self, d: usize) {
        self.depth[d] += 1;
        if self.depth[d] == 1 {
            self.seq += 1;
            self.mt.flags[self.t][d].store(self.seq, Release);
        }
    }

    fn leave_flag(&mut self, d: usize) {
        self.depth[d] -= 1;
        if self.depth[d] == 0 {
            self.mt.flags[self.t][d].store(0, Release);
        }
    }

    /// Loads a few board cells of domain `d` inside a section.
    fn sample(&mut self, d: usize) -> Vec<usize> {
        let mt = self.mt;
        let board = &mt.boards[d];
        (0..1 + self.rng.below(3))
            .filter_map(
                |_| match board[self.rng.below(board.len())].id.load(Acquire) {
                    0 => None,
                    id => Some(id - 1),
                },
            )
            .collect()
    }

    fn enter_domain(&mut self, frame: Option<&Frame<'_>>) {
        if self.protected.len() >= MAX_DEPTH - 1 {
            return;
        }
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let guard = mt.domains[d].read();
        self.enter_flag(d);
        let ids = self.sample(d);
        self.protected.push(ids);
        self.nested(frame);
        self.check(frame);
        self.protected.pop();
        self.leave_flag(d);
        drop(guard);
    }

    fn enter_owner(&mut self, frame: Option<&Frame<'_>>) {
        if self.protected.len() >= MAX_DEPTH - 1 {
            return;
        }
        let o = self.rng.below(self.users.len());
        let Some(user) = self.users[o].clone() else {
            return;
        };
        let d = self.mt.owner_domain[o];
        let read = user.read();
        self.enter_flag(d);
        let mut refs: Vec<&Obj> = read.slots.iter().filter_map(|s| s.load(&read)).collect();
        refs.push(&read.tag);
        let items = read.array.load(&read);
        refs.extend(items.iter().copied());
        let ids = self.sample(d);
        self.protected.push(ids);
        let inner = Frame {
            parent: frame,
            refs,
            slices: if cfg!(miri) { vec![items] } else { vec![] },
        };
        check_frames(Some(&inner));
        self.nested(Some(&inner));
        self.check(Some(&inner));
        self.protected.pop();
        self.leave_flag(d);
        drop(inner);
        drop(read);
    }

    /// Replaces one to three published objects of a board and retires the
    /// old ones.
    fn board_replace(&mut self) {
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let board = &mt.boards[d];
        let mut old = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let cell = &board[self.rng.below(board.len())];
            let new = self.obj(0);
            let new_id = new.id;
            let mut object = cell.object.lock().unwrap();
            let was = cell.id.swap(new_id + 1, AcqRel);
            let unlinked = object.replace(new).expect("a published object");
            drop(object);
            assert_eq!(unlinked.id + 1, was);
            unlinked.check();
            old.push(unlinked);
        }
        let domain = &mt.domains[d];
        let ids: Vec<usize> = old.iter().map(|x| x.id).collect();
        let objects = match self.rng.below(5) {
            0 => {
                Batch::from_vec(domain, old).drain();
                ids.len()
            }
            1 => {
                let n = old.len();
                for x in old {
                    domain.retire(x as Box<dyn Any + Send>);
                }
                n
            }
            2 => {
                let n = old.len();
                for x in old {
                    domain.defer(move || {
                        if !x.is_live() {
                            x.table.anomalies.fetch_add(1, Relaxed);
                        }
                        drop(x);
                    });
                }
                n
            }
            3 => {
                let pair: Box<[Obj]> = old.into_iter().map(|x| *x).collect();
                domain.retire(pair);
                1
            }
            _ => {
                let n = old.len();
                for x in old {
                    domain.retire(x);
                }
                n
            }
        };
        mt.dom_retired[d].fetch_add(objects as u64, Relaxed);
        for id in ids {
            mt.dom_logs[d].push(id);
        }
    }

    fn burst(&mut self) {
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let n = (1 + self.rng.below(BURST)).min(mt.table.room() / 8);
        let objects: Vec<Box<Obj>> = (0..n).map(|_| self.obj(0)).collect();
        let ids: Vec<usize> = objects.iter().map(|x| x.id).collect();
        for obj in objects {
            mt.domains[d].retire(obj);
        }
        mt.dom_retired[d].fetch_add(n as u64, Relaxed);
        for id in ids {
            mt.dom_logs[d].push(id);
        }
    }

    /// Takes this thread's user handle of a random owner for a write.
    fn take_user(&mut self) -> Option<(usize, User<Data>)> {
        let o = self.rng.below(self.users.len());
        self.users[o].take().map(|u| (o, u))
    }

    fn slot_op(&mut self) {
        let Some((o, user)) = self.take_user() else {
            return;
        };
        let tag = 1 + o as u8;
        let i = self.rng.below(user.slots.len());
        let replace = self.rng.chance(75);
        let unlinked = if replace {
            user.slots[i].replace(Some(self.obj(tag)), &user)
        } else {
            user.slots[i].take(&user)
        };
        // Moved into the block (see `St::slot_op`).
        if let Some(old) = { unlinked } {
            old.check();
            let id = old.id;
            match self.rng.below(3) {
                0 => old.retire(),
                1 => drop(old),
                _ => {
                    let mut batch = user.batch();
                    batch.push(old);
                    batch.drain();
                }
            }
            self.mt.own_logs[o].push(id);
        }
        self.users[o] = Some(user);
    }

    fn owner_batch(&mut self) {
        let Some((o, user)) = self.take_user() else {
            return;
        };
        let tag = 1 + o as u8;
        let mut batch = user.batch_with_capacity(4);
        let mut ids = Vec::new();
        for _ in 0..1 + self.rng.below(4) {
            let i = self.rng.below(user.slots.len());
            let old = if self.rng.chance(50) {
                user.slots[i].replace(Some(self.obj(tag)), &user)
            } else {
                user.slots[i].take(&user)
            };
            if let Some(old) = old {
                old.check();
                ids.push(old.id);
                batch.push(old);
            }
        }
        assert_eq!(batch.len(), ids.len());
        if self.rng.chance(50) {
            batch.drain();
        } else {
            drop(batch);
        }
        for id in ids {
            self.mt.own_logs[o].push(id);
        }
        self.users[o] = Some(user);
    }

    fn array_write(&mut self) {
        let Some((o, user)) = self.take_user() else {
            return;
        };
        let tag = 1 + o as u8;
        let may_wait = !self.reading();
        let mut writer = user.array.write(&user);
        let mut staged = ids(writer.items());
        for x in writer.items() {
            x.check();
        }
        let mut removed = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let len = staged.len();
            let kind = if len > 8 { 0 } else { self.rng.below(4) };
            match kind {
                0 if len > 0 => {
                    let range = remove_range(&mut writer, &mut self.rng, len);
                    removed.extend(staged.drain(range));
                }
                1 if len > 0 => {
                    let at = self.rng.below(len);
                    let obj = self.obj(tag);
                    removed.push(std::mem::replace(&mut staged[at], obj.id));
                    writer.replace(at, obj);
                }
                _ => {
                    let at = self.rng.below(len + 1);
                    let obj = self.obj(tag);
                    staged.insert(at, obj.id);
                    writer.insert(at, obj);
                }
            }
        }
        assert_eq!(ids(writer.items()), staged);
        match self.rng.below(5) {
            0 => drop(writer),
            finish => {
                let out = writer.commit();
                assert_eq!(ids(out.objects()), removed);
                match finish {
                    1 => out.retire(),
                    2 => out.retire_each(),
                    3 if may_wait => {
                        out.synchronize();
                        for &id in &removed {
                            self.mt
                                .table
                                .assert_freed(id, "freed by Removed::synchronize");
                        }
                    }
                    _ => drop(out),
                }
            }
        }
        for id in removed {
            self.mt.own_logs[o].push(id);
        }
        self.users[o] = Some(user);
    }

    fn synchronize(&mut self) {
        if self.reading() {
            return;
        }
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let running = mt.running(d);
        mt.domains[d].synchronize();
        mt.assert_ended(d, &running, "after synchronize");
    }

    fn barrier(&mut self) {
        if self.reading() {
            return;
        }
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let retired = mt.dom_logs[d].since(&mut self.dom_cursor[d]);
        mt.domains[d].barrier();
        for id in retired {
            mt.table
                .assert_freed(id, "retired into the domain before Domain::barrier");
        }
    }

    fn user_barrier(&mut self) {
        if self.reading() {
            return;
        }
        let o = self.rng.below(self.users.len());
        let Some(user) = &self.users[o] else {
            return;
        };
        let retired = self.mt.own_logs[o].since(&mut self.own_cursor[o]);
        user.barrier();
        for id in retired {
            self.mt
                .table
                .assert_freed(id, "retired through the owner before User::barrier");
        }
    }

    fn cookie(&mut self) {
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let running = mt.running(d);
        let cookie = mt.domains[d].grace_period();
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(MtCookie {
            domain: d,
            cookie,
            running,
        });
    }

    fn poll(&mut self) {
        if self.cookies.is_empty() {
            return;
        }
        let c = &self.cookies[self.rng.below(self.cookies.len())];
        if self.mt.domains[c.domain].poll(&c.cookie) {
            self.mt
                .assert_ended(c.domain, &c.running, "poll(cookie) returned true");
        }
    }

    fn wait(&mut self) {
        if self.cookies.is_empty() || self.reading() {
            return;
        }
        let c = &self.cookies[self.rng.below(self.cookies.len())];
        let domain = &self.mt.domains[c.domain];
        domain.wait(&c.cookie);
        assert!(domain.poll(&c.cookie), "poll is true after wait");
        self.mt
            .assert_ended(c.domain, &c.running, "after wait(cookie)");
    }

    /// User and holder handles come and go; the main thread keeps one user
    /// of every owner, so upgrades always succeed here.
    fn handles(&mut self) {
        let o = self.rng.below(self.users.len());
        match self.rng.below(3) {
            0 => {
                if let Some(user) = self.users[o].take() {
                    drop(user);
                    assert!(
                        !self.holders[o].is_torn_down(),
                        "the main thread holds a user"
                    );
                } else {
                    let user = self.holders[o]
                        .upgrade()
                        .expect("upgrade succeeds while the main thread holds a user");
                    assert!(user.users() >= 2);
                    self.users[o] = Some(user);
                }
            }
            1 => {
                if let Some(user) = &self.users[o] {
                    let other = user.clone();
                    assert!(other.users() >= 3, "main, this thread, and the clone");
                }
            }
            _ => {
                let holder = self.holders[o].clone();
                assert!(!holder.is_torn_down());
            }
        }
    }
}

fn owner_data(table: &Arc<Table>, o: usize) -> Data {
    let tag = 1 + o as u8;
    Data {
        slots: (0..MT_SLOTS)
            .map(|_| Slot::new(new_obj(table, tag)))
            .collect(),
        array: Array::from_vec((0..4).map(|_| new_obj(table, tag)).collect()),
        tag: new_obj(table, tag),
    }
}

fn run_multi_thread(seed: u64) {
    let capacity = MT_THREADS * MT_OPS * 24 + 1000;
    let table = Table::new(capacity);
    let domains: Vec<Domain> = (0..2).map(|_| Domain::new()).collect();
    let boards = (0..domains.len())
        .map(|_| {
            (0..MT_CELLS)
                .map(|_| {
                    let obj = new_obj(&table, 0);
                    Cell {
                        id: AtomicUsize::new(obj.id + 1),
                        object: Mutex::new(Some(obj)),
                    }
                })
                .collect()
        })
        .collect();
    let owners: Vec<User<Data>> = (0..MT_OWNERS)
        .map(|o| User::new(&domains[o % 2], owner_data(&table, o)))
        .collect();
    let mt = Mt {
        table: table.clone(),
        boards,
        dom_logs: (0..domains.len()).map(|_| Log::new(capacity)).collect(),
        own_logs: (0..MT_OWNERS).map(|_| Log::new(capacity)).collect(),
        dom_retired: (0..domains.len()).map(|_| AtomicU64::new(0)).collect(),
        flags: (0..MT_THREADS)
            .map(|_| (0..domains.len()).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        owner_domain: (0..MT_OWNERS).map(|o| o % 2).collect(),
        domains,
    };
    let holders: Vec<Holder<Data>> = owners.iter().map(User::holder).collect();

    let failure = thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..MT_THREADS {
            let worker = Worker {
                mt: &mt,
                t,
                rng: Rng::new(Rng::new(seed ^ (t as u64 + 1).wrapping_mul(0x9e37)).next()),
                budget: MT_OPS,
                users: owners.iter().map(|u| Some(u.clone())).collect(),
                holders: owners.iter().map(User::holder).collect(),
                dom_cursor: vec![0; mt.domains.len()],
                own_cursor: vec![0; MT_OWNERS],
                cookies: Vec::new(),
                depth: vec![0; mt.domains.len()],
                protected: Vec::new(),
                seq: 0,
            };
            let handle = thread::Builder::new()
                .name(format!("model worker {t}"))
                .spawn_scoped(s, move || worker.run())
                .expect("spawn a worker");
            workers.push(handle);
        }
        // The first failure, with its message (not just "a thread panicked").
        let mut failure = None;
        for (t, handle) in workers.into_iter().enumerate() {
            if let Err(payload) = handle.join() {
                failure.get_or_insert(format!("worker {t}: {}", panic_message(&*payload)));
            }
        }
        failure
    });
    if let Some(message) = failure {
        panic!("{message}");
    }

    // Everything the workers retired has been logged; the barriers free it.
    for (d, domain) in mt.domains.iter().enumerate() {
        let retired = mt.dom_logs[d].since(&mut 0);
        assert_eq!(retired.len(), mt.dom_logs[d].len());
        domain.barrier();
        for id in retired {
            table.assert_freed(id, "retired into the domain, before the final barrier");
        }
        let stats = domain.stats();
        assert_eq!(
            stats.retired,
            mt.dom_retired[d].load(Relaxed),
            "Stats::retired"
        );
        assert_eq!(stats.pending, 0, "nothing pending after the final barrier");
    }
    // Each owner's last user is the main thread's: dropping it frees every
    // object of the owner.
    for (o, user) in owners.into_iter().enumerate() {
        let retired = mt.own_logs[o].since(&mut 0);
        assert_eq!(user.users(), 1, "the workers' handles are gone");
        assert_eq!(
            user.stats().retired,
            retired.len() as u64,
            "OwnerStats::retired"
        );
        if o % 2 == 0 {
            user.barrier();
            for &id in &retired {
                table.assert_freed(id, "retired through the owner before User::barrier");
            }
        }
        drop(user);
        for id in 0..table.created() {
            if usize::from(table.tags[id].load(Relaxed)) == o + 1 {
                table.assert_freed(id, "an object of an owner whose last user dropped");
            }
        }
        assert!(holders[o].is_torn_down());
        assert!(
            holders[o].upgrade().is_none(),
            "upgrade fails after teardown"
        );
        assert_eq!(holders[o].stats().pending, 0);
    }
    drop(holders);
    // The boards' objects go with their domains.
    let Mt {
        domains, boards, ..
    } = mt;
    let mut last = Vec::new();
    for (domain, board) in domains.iter().zip(boards) {
        for cell in board {
            let obj = cell.object.into_inner().unwrap().expect("published");
            last.push(obj.id);
            domain.retire(obj);
        }
    }
    drop(domains);
    for id in last {
        table.assert_freed(id, "retired into a domain whose last handle was dropped");
    }
    table.assert_all_freed_once();
}

/// The multi-threaded model: threads read and write shared owners and
/// boards; cross-thread guarantees are checked through shared atomics.
#[test]
fn multi_thread_model() {
    for_each_seed("multi_thread_model", MT_SEEDS, run_multi_thread);
}
