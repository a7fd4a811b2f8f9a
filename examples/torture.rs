//! An rcutorture-style stress test of ownrcu: readers, writers and faults
//! on several domains at once, for as long as you like, checking that no
//! grace period ever ends early and that every object is dropped exactly
//! once.
//!
//! ```text
//! cargo run --release --example torture [-- --seconds S --readers N --writers N --domains N --seed N]
//! ```
//!
//! It prints the pipeline histogram, grace periods, frees, the faults it
//! injected and the failures, and exits with status 1 at the first failure
//! (0 if there was none, 2 on a bad command line).
//!
//! # What runs
//!
//! - **Long-lived domains** (`--domains`): the global domain, then
//!   user-created ones with different settings (robust; defaults; lazy
//!   with small bounds; destructors kept off retiring threads with a 5 ms
//!   time bound). Each holds `CELLS` shared objects in [`Atomic`] pointers and
//!   an owner ([`User`]) holding `SLOTS` [`Slot`]s; every object is a
//!   `Version`.
//! - **Writers** (`--writers`) replace versions and retire the old ones
//!   singly (`retire`, `retire_hurry`), in batches ([`ownrcu::Batch`]), and
//!   through the owner (`Unlinked`, `OwnerBatch`); now and then they replace
//!   the whole owner (its last user tears it down directly), or call
//!   `barrier`, `User::barrier`, `synchronize`, a grace-period cookie, or
//!   `collect`.
//! - **Readers** (`--readers`) load versions from the cells and, through an
//!   upgraded [`Holder`], from the owner's slots, and read each one again
//!   after random delays inside the same section, in nested sections too,
//!   and after `Guard::repin`.
//! - **A pipeline thread per domain** calls `synchronize` in a loop and
//!   ages the versions unlinked before each call (below).
//! - **A stuck reader per robust domain** enters a section, loads a
//!   version and stays there for half a second to two seconds (a reader
//!   that does not leave, as far as everyone else can tell), checking the
//!   version now and then, while the writers retire versions with their
//!   births (`Detached::retire_born`) and the domain frees the younger
//!   ones early; then it leaves and does it again. The run fails if a
//!   robust domain freed nothing early in a run of 5 s or more.
//! - **A watchdog** reports a failure when any thread makes no progress
//!   for `STALL` (10 s): a grace period that never ends shows up as the
//!   pipeline thread stuck in `synchronize`; it prints every thread's
//!   backtrace first, if `gdb` can attach. As a last resort, a deadline
//!   ends the process once the run has overrun its time by 30 s.
//!
//! # The pipeline, and why a reader can never see age 2
//!
//! Every version carries its *pipeline age* (rcutorture's
//! `rtort_pipe_count`): 0 while it is linked; 1 once a writer has unlinked
//! it and put it on its domain's pipeline list (right after the swap,
//! before retiring it); and one more for every `synchronize` that the
//! pipeline thread *called* after the version was on the list (the thread
//! notes the list's length, calls `synchronize`, then ages that prefix).
//! Readers record the age of every version they read (the histogram).
//!
//! A reader that found a version linked sees it at age 0 or 1, never 2:
//!
//! 1. The reader's section began before its load of the version, and the
//!    load read the pointer before the writer's swap that unlinked the
//!    version (the reader found it linked).
//! 2. The swap happens before the version goes on the list, which happens
//!    before the pipeline thread reads the list's length (both under the
//!    list's mutex), which happens before its `synchronize` call. So the
//!    unlink precedes that call, and the reader did not see the unlink.
//! 3. That is exactly the case RCU's guarantee covers (the kernel's
//!    "fundamental law of RCU"; ownrcu's version is argued in the design
//!    notes of `src/rcu/machine/mod.rs`): a read section that does not see
//!    a store made before a `synchronize` call ends before that call
//!    returns, and everything it did happens before the return. So the
//!    reader's section has ended, with all its reads, before the
//!    `synchronize` returns.
//! 4. Age 2 is stored after that return, so no read of that section can
//!    see it (read-write coherence; the relaxed age counter needs no more).
//!
//! Age 1 is the ordinary case of a version replaced while a reader holds
//! it. Age 2 means that a full grace period, one that began after the
//! version was unlinked, ended while a reader that found the version
//! linked was still inside its section: the version was already freeable,
//! and had the domain freed it, the reader's next access would have been a
//! use after free. Only the pipeline thread's own grace periods are
//! counted; the domain's other grace periods (pacing, the reclaimer,
//! writers' `synchronize` and `barrier`) may end earlier or later, and
//! they free versions: that a reader never sees a *freed* version is
//! checked by the poison below.
//!
//! # Other checks
//!
//! - **Poison.** A version's destructor overwrites its magic number;
//!   readers check the magic, and that the version's id does not change
//!   within one section (freed and reused memory), on every read.
//! - **Drops exactly once.** Each version has a drop flag that outlives it:
//!   a second drop finds it set. At the end, after barriers and teardowns,
//!   every version created must have been dropped (none lost), and every
//!   domain must have nothing pending.
//! - **Panics.** A panic whose payload is not an injected one (`Injected`)
//!   is a failure, wherever it comes from (an `ownrcu` assertion, a thread
//!   that dies). Injected panics surface from the call that ran the
//!   destructor (a retirement's amortized free, `barrier`, `collect`, an
//!   owner's or a domain's teardown, the last user dropped by a reader);
//!   those that the reclaimer thread ran surface from the next `barrier` or
//!   teardown of their domain. A free run that hits several panics resumes
//!   the first only, so fewer surface than are raised; but a call that
//!   returns normally although a destructor it ran panicked has lost that
//!   panic: a failure (each thread counts the panics raised on it).
//!
//! # Faults
//!
//! Each at a modest rate, so the run keeps making progress (the constants
//! below give them as "one in N"):
//!
//! - readers preempted (yields) and sleeping (up to 3 ms) inside sections;
//! - destructors that panic, sleep (up to 1 ms), retire a new object into
//!   another domain, or drop a domain handle they carry (a transient
//!   domain's, possibly its last: the domain is torn down inside another
//!   domain's destructor, maybe on the reclaimer thread);
//! - transient domains, created with random settings, used by their own
//!   reader, writer and pipeline threads for 20–200 ms, then dropped with
//!   retirements pending (and with their owners, cells and thread buffers);
//! - short-lived writer threads that make 1 to 24 single retirements and
//!   exit with them, or the last of them, still in their thread buffer (a
//!   new thread's buffer takes 32 before it is handed over);
//! - owners replaced, so that their last user (a writer, or a reader that
//!   upgraded a holder) tears them down directly, past panicking destructors.
//!
//! # For hours
//!
//! `--seconds 14400` runs four hours; a status line is printed every
//! minute. A run is not replayable (the threads interleave differently),
//! but `--seed` fixes every random choice each thread makes.

use std::cell::Cell;
use std::fmt::Display;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering::{AcqRel, Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ownrcu::{Atomic, Birth, Domain, Holder, Owned, Slot, Stats, User};

/// Ages from this one up share the histogram's last bucket (rcutorture's
/// `RCU_TORTURE_PIPE_LEN`); the pipeline stops counting there.
const AGE_CAP: usize = 10;
/// Shared objects per domain, in `Atomic` pointers.
const CELLS: usize = 16;
/// Slots in each domain's owner.
const SLOTS: usize = 8;
/// A thread that makes no progress for this long is a failure.
const STALL: Duration = Duration::from_secs(10);
/// A live version's magic number; its destructor overwrites it with
/// [`POISON`].
const LIVE: u64 = 0x0EC5_1DE5_A11E_0001;
const POISON: u64 = 0xDEAD_DEAD_DEAD_DEAD;

// Fault rates, as "one in N".
/// Per version: its destructor panics.
const DESTRUCTOR_PANICS: u64 = 5_000;
/// Per version: its destructor sleeps up to 1 ms.
const DESTRUCTOR_SLEEPS: u64 = 5_000;
/// Per version: its destructor retires a new object into another domain.
const DESTRUCTOR_RETIRES_ELSEWHERE: u64 = 500;
/// Per version of a long-lived domain: it carries a transient domain's
/// handle, which its destructor drops.
const CARRIES_A_DOMAIN: u64 = 1_000;
/// Per delay inside a read section: the reader sleeps up to 3 ms.
const READER_SLEEPS: u64 = 128;
/// Per delay inside a read section (unless it sleeps): the reader yields.
const READER_YIELDS: u64 = 8;

// ---------------------------------------------------------------------------
// The command line

const USAGE: &str = "\
usage: cargo run --release --example torture [-- OPTIONS]

An rcutorture-style stress test of ownrcu (module docs of examples/torture.rs).

Options:
  --seconds S   how long to run (default 10; fractions allowed)
  --readers N   reader threads on the long-lived domains (default 2)
  --writers N   writer threads on the long-lived domains (default 2)
  --domains N   long-lived domains: the global one, then user-created ones
                with different settings (default 2)
  --seed N      seed of every thread's random choices (default: from the clock)
  -h, --help    print this help and exit

Exit status: 0 if nothing failed, 1 at the first failure, 2 on a bad command line.
";

#[derive(Debug)]
struct Options {
    seconds: f64,
    readers: usize,
    writers: usize,
    domains: usize,
    seed: u64,
}

/// Parses the arguments (without the program name): `Ok(None)` asks for
/// the usage.
fn parse(args: &[String]) -> Result<Option<Options>, String> {
    let mut options = Options {
        seconds: 10.0,
        readers: 2,
        writers: 2,
        domains: 2,
        seed: clock_seed(),
    };
    let mut args = args.iter();
    while let Some(name) = args.next() {
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
        let count = || match value.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{name} takes a number of at least 1, got {value:?}"
            )),
        };
        match name.as_str() {
            "--seconds" => {
                options.seconds = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("--seconds takes a number of seconds, got {value:?}"))?;
            }
            "--readers" => options.readers = count()?,
            "--writers" => options.writers = count()?,
            "--domains" => options.domains = count()?,
            "--seed" => {
                options.seed = value
                    .parse()
                    .map_err(|_| format!("--seed takes a number, got {value:?}"))?;
            }
            _ => return Err(format!("unknown option {name:?}")),
        }
    }
    Ok(Some(options))
}

fn clock_seed() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_nanos() as u64 % 1_000_000_007
}

// ---------------------------------------------------------------------------
// Randomness: splitmix64, one stream per thread.

struct Rng(u64);

impl Rng {
    /// Stream `stream` of `seed`; every thread takes its own.
    fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next();
        rng
    }

    /// A stream for a new thread, from this thread's stream.
    fn fork(&mut self) -> Self {
        Self::new(self.next(), self.next())
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn micros(&mut self, max: u64) -> Duration {
        Duration::from_micros(self.below(max))
    }
}

// ---------------------------------------------------------------------------
// Counters and failures

/// What the run counts, process-wide (destructors run on any thread).
struct Counters {
    created: AtomicU64,
    dropped: AtomicU64,
    /// Reads by the age of the version read (the pipeline histogram).
    reads: [AtomicU64; AGE_CAP + 1],
    owner_reads: AtomicU64,
    pipeline_grace_periods: AtomicU64,
    /// Writer operations, by [`OPS`] index.
    ops: [AtomicU64; OPS.len()],
    failures: AtomicU64,
    panics_raised: AtomicU64,
    panics_surfaced: AtomicU64,
    /// Injected panics skipped because the thread was already unwinding
    /// (a `Vec` of versions dropped past a first panic).
    panics_skipped: AtomicU64,
    destructor_sleeps: AtomicU64,
    retired_elsewhere: AtomicU64,
    carried_domains: AtomicU64,
    reader_sleeps: AtomicU64,
    reader_yields: AtomicU64,
    stuck_sections: AtomicU64,
    transient_domains: AtomicU64,
    short_lived_writers: AtomicU64,
    owners_replaced: AtomicU64,
}

static COUNT: Counters = Counters {
    created: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    reads: [const { AtomicU64::new(0) }; AGE_CAP + 1],
    owner_reads: AtomicU64::new(0),
    pipeline_grace_periods: AtomicU64::new(0),
    ops: [const { AtomicU64::new(0) }; OPS.len()],
    failures: AtomicU64::new(0),
    panics_raised: AtomicU64::new(0),
    panics_surfaced: AtomicU64::new(0),
    panics_skipped: AtomicU64::new(0),
    destructor_sleeps: AtomicU64::new(0),
    retired_elsewhere: AtomicU64::new(0),
    carried_domains: AtomicU64::new(0),
    reader_sleeps: AtomicU64::new(0),
    reader_yields: AtomicU64::new(0),
    stuck_sections: AtomicU64::new(0),
    transient_domains: AtomicU64::new(0),
    short_lived_writers: AtomicU64::new(0),
    owners_replaced: AtomicU64::new(0),
};

/// Version ids.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The transient domains' grace periods and frees, added up as each is
/// dropped (what its teardown frees is not counted).
static TRANSIENT: Mutex<Totals> = Mutex::new(Totals {
    grace_periods: 0,
    freed: 0,
    pending: 0,
});

#[derive(Clone, Copy)]
struct Totals {
    grace_periods: u64,
    freed: u64,
    /// Retired and not freed yet (for a transient domain: when dropped).
    pending: u64,
}

impl Totals {
    fn of(stats: &Stats) -> Self {
        Self {
            grace_periods: stats.grace_periods,
            freed: stats.freed
                + stats.owners.freed_after_grace_period
                + stats.owners.freed_directly,
            pending: stats.pending_total(),
        }
    }

    fn add(&mut self, other: Self) {
        self.grace_periods += other.grace_periods;
        self.freed += other.freed;
        self.pending += other.pending;
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Relaxed)
}

/// The time since the run started.
fn elapsed() -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Reports a failure; the main thread sees it and ends the run.
fn fail(what: impl Display) {
    let n = COUNT.failures.fetch_add(1, SeqCst);
    if n < 10 {
        eprintln!(
            "torture: FAILURE at {:.3} s: {what}",
            elapsed().as_secs_f64()
        );
    }
}

fn failed() -> bool {
    COUNT.failures.load(SeqCst) > 0
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// Panics

/// The payload of an injected destructor panic: the version's id.
#[derive(Debug)]
struct Injected(u64);

/// Keeps injected panics quiet (they are counted); any other panic is
/// printed as usual.
fn install_panic_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<Injected>().is_none() {
            default(info);
        }
    }));
}

thread_local! {
    /// Injected panics raised on this thread since the current [`guarded`]
    /// call began.
    static RAISED_HERE: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f`, which may run destructors: an injected panic coming out of it
/// is counted as surfaced, any other panic is a failure. So is `f`
/// returning normally although a destructor it ran on this thread panicked:
/// a lost panic. (A free run resumes its first panic only, but some panic
/// comes out of it; only the reclaimer thread keeps its panics for later,
/// and it never runs `guarded`.)
fn guarded(what: &str, f: impl FnOnce()) {
    RAISED_HERE.set(0);
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) if RAISED_HERE.get() > 0 => fail(format_args!(
            "{what}: {} destructor panics raised on this thread inside it, and none came out \
             of it: lost",
            RAISED_HERE.get()
        )),
        Ok(()) => {}
        Err(payload) if payload.downcast_ref::<Injected>().is_some() => {
            bump(&COUNT.panics_surfaced);
        }
        Err(payload) => fail(format_args!(
            "{what}: unexpected panic: {}",
            message(&*payload)
        )),
    }
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(Injected(id)) = payload.downcast_ref() {
        format!("the injected panic of version {id}'s destructor, not caught where it surfaced")
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a payload that is not a string)".to_owned()
    }
}

/// Starts a thread named `name` that runs `body` with its [`Heart`]; a
/// panic that escapes `body` is a failure, reported at once.
fn spawn(name: String, body: impl FnOnce(&Heart) + Send + 'static) -> JoinHandle<()> {
    let thread = thread::Builder::new().name(name.clone()).spawn(move || {
        let heart = Heart::new(name.clone());
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| body(&heart))) {
            fail(format_args!("{name} died: {}", message(&*payload)));
        }
    });
    thread.expect("spawning a thread")
}

fn join(thread: JoinHandle<()>) {
    // `spawn` caught every panic of the body; the thread itself cannot fail.
    thread.join().expect("a thread of `spawn` returns");
}

/// Makes `domain` the newest transient domain; the one it replaces is
/// dropped outside the lock, where its last handle may tear it down.
fn offer_transient(world: &World, domain: Option<Domain>) {
    let old = std::mem::replace(&mut *lock(&world.transient), domain);
    guarded("a transient domain's handle dropped", move || drop(old));
}

// ---------------------------------------------------------------------------
// Versions

/// What a version's destructor does besides poisoning it.
enum Fault {
    None,
    Panic,
    Sleep(Duration),
    /// Retire a new version into this (other) domain.
    RetireInto(Domain),
    /// Drop this handle of a transient domain, maybe its last.
    Carry(Domain),
}

/// What outlives a version: its pipeline age and its drop flag.
#[derive(Default)]
struct Meta {
    /// The pipeline age (module docs).
    age: AtomicUsize,
    /// Set by the destructor: a second drop finds it set.
    dropped: AtomicBool,
}

/// One version of a shared object.
struct Version {
    /// [`LIVE`] until the destructor runs, [`POISON`] after.
    magic: AtomicU64,
    id: u64,
    meta: Arc<Meta>,
    fault: Fault,
    /// In a robust domain, its birth, read when it was made (before any
    /// writer publishes it).
    birth: Option<Birth>,
}

impl Version {
    fn new(fault: Fault) -> Self {
        bump(&COUNT.created);
        Self {
            magic: AtomicU64::new(LIVE),
            id: NEXT_ID.fetch_add(1, Relaxed),
            meta: Arc::default(),
            fault,
            birth: None,
        }
    }
}

impl Drop for Version {
    fn drop(&mut self) {
        if self.meta.dropped.swap(true, AcqRel) {
            fail(format_args!("version {} was dropped twice", self.id));
            return;
        }
        self.magic.store(POISON, Relaxed);
        bump(&COUNT.dropped);
        match std::mem::replace(&mut self.fault, Fault::None) {
            Fault::None => {}
            // A second panic while unwinding would abort the process; the
            // first one is on its way already.
            Fault::Panic if thread::panicking() => bump(&COUNT.panics_skipped),
            Fault::Panic => {
                bump(&COUNT.panics_raised);
                RAISED_HERE.set(RAISED_HERE.get() + 1);
                panic::panic_any(Injected(self.id));
            }
            Fault::Sleep(time) => {
                bump(&COUNT.destructor_sleeps);
                thread::sleep(time);
            }
            Fault::RetireInto(domain) => {
                bump(&COUNT.retired_elsewhere);
                domain.retire(Box::new(Version::new(Fault::None)));
            }
            Fault::Carry(domain) => drop(domain),
        }
    }
}

/// A reader's check of one read of `version`, which its section loaded as
/// version `id`: counts its age, and reports a failure (returning false)
/// for a poisoned or reused version or an age of 2 or more.
fn observe(version: &Version, id: u64, hist: &mut Hist) -> bool {
    let magic = version.magic.load(Relaxed);
    if magic != LIVE {
        let what = if magic == POISON {
            "poisoned"
        } else {
            "corrupted"
        };
        fail(format_args!(
            "a reader found version {id} {what} inside its section: it was freed under the reader"
        ));
        return false;
    }
    if version.id != id {
        fail(format_args!(
            "version {id} became version {} inside one read section: freed and reused",
            version.id
        ));
        return false;
    }
    let age = version.meta.age.load(Relaxed);
    hist.reads[age.min(AGE_CAP)] += 1;
    if age >= 2 {
        fail(format_args!(
            "a reader saw version {id} at pipeline age {age}: a grace period that began after \
             the version was unlinked ended while this reader, which found it linked, was \
             still inside its section"
        ));
        return false;
    }
    true
}

// ---------------------------------------------------------------------------
// Domains under test

/// An owner's data: the slots readers reach through a user handle.
type Owner = Vec<Slot<Version>>;

/// A domain under test, with its shared objects and its pipeline.
struct Dom {
    name: Arc<str>,
    domain: Domain,
    transient: bool,
    /// Built with `DomainBuilder::robust(true)`.
    robust: bool,
    cells: Vec<Atomic<Version>>,
    /// The current owner's first user handle.
    owner: Mutex<User<Owner>>,
    /// Versions unlinked and not known to be dropped yet, oldest first.
    pipeline: Mutex<Vec<Arc<Meta>>>,
}

impl Dom {
    fn new(name: String, domain: Domain, transient: bool, robust: bool) -> Self {
        let owner = User::new(&domain, new_slots(|| Version::new(Fault::None)));
        Self {
            name: name.into(),
            transient,
            robust,
            cells: (0..CELLS)
                .map(|_| Atomic::new(Version::new(Fault::None)))
                .collect(),
            owner: Mutex::new(owner),
            pipeline: Mutex::default(),
            domain,
        }
    }

    /// A user handle of the current owner (`mmget`).
    fn user(&self) -> User<Owner> {
        lock(&self.owner).clone()
    }

    /// Enters a version a writer has just unlinked into the pipeline, at
    /// age 1, before it is retired.
    fn unlinked(&self, version: &Version) {
        version.meta.age.store(1, Relaxed);
        lock(&self.pipeline).push(version.meta.clone());
    }

    /// Frees everything this domain holds, each step on its own so that a
    /// panicking destructor in one does not skip the others. With no other
    /// handle, the domain is torn down with whatever is still pending.
    fn dismantle(self) {
        let Dom {
            domain,
            cells,
            owner,
            ..
        } = self;
        for cell in cells {
            guarded("a cell's drop", move || drop(cell));
        }
        let owner = owner.into_inner().unwrap_or_else(PoisonError::into_inner);
        guarded("an owner's teardown", move || drop(owner));
        guarded("a domain's teardown", move || drop(domain));
    }
}

fn new_slots(mut version: impl FnMut() -> Version) -> Owner {
    (0..SLOTS).map(|_| Slot::new(Box::new(version()))).collect()
}

/// The `i`th long-lived domain: the global one first, then user-created
/// ones with different settings.
fn long_lived_domain(i: usize) -> (&'static str, Domain) {
    match i {
        0 => ("global", Domain::global().clone()),
        _ => match (i - 1) % 4 {
            0 => (ROBUST, Domain::builder().robust(true).build()),
            1 => ("default", Domain::new()),
            2 => (
                "lazy, small bounds",
                Domain::builder()
                    .lazy(true)
                    .max_pending(512)
                    .soft_max_pending(64)
                    .build(),
            ),
            _ => (
                "reclaimer frees, 5 ms time bound",
                Domain::builder()
                    .retiring_threads_free(false)
                    .time_bound(Duration::from_millis(5))
                    .build(),
            ),
        },
    }
}

/// The name of the robust long-lived domains' settings.
const ROBUST: &str = "robust";

/// A transient domain with random settings.
fn transient_domain(rng: &mut Rng) -> (&'static str, Domain) {
    match rng.below(6) {
        0 => ("default", Domain::new()),
        1 => ("lazy", Domain::builder().lazy(true).build()),
        2 => ("no reclaimer", Domain::builder().reclaimer(false).build()),
        3 => ("unbounded", Domain::builder().unbounded().build()),
        4 => (
            "tiny bounds",
            Domain::builder()
                .max_pending(64)
                .soft_max_pending(8)
                .max_wait(Duration::from_millis(1))
                .build(),
        ),
        _ => (
            "reclaimer frees",
            Domain::builder()
                .retiring_threads_free(false)
                .time_bound(Duration::from_millis(1))
                .build(),
        ),
    }
}

/// Everything the threads share.
struct World {
    doms: Vec<Arc<Dom>>,
    /// The newest transient domain, for versions to carry or retire into.
    transient: Mutex<Option<Domain>>,
    /// Ends the run: every thread of the long-lived domains stops.
    stop: Arc<AtomicBool>,
}

impl World {
    fn new(domains: usize) -> Self {
        let doms = (0..domains)
            .map(|i| {
                let (name, domain) = long_lived_domain(i);
                let robust = name == ROBUST;
                Arc::new(Dom::new(format!("{i} ({name})"), domain, false, robust))
            })
            .collect();
        Self {
            doms,
            transient: Mutex::new(None),
            stop: Arc::default(),
        }
    }

    /// A new version for `home`, with a random fault (and its birth, in a
    /// robust domain).
    fn version(&self, home: &Dom, rng: &mut Rng) -> Version {
        let mut version = Version::new(self.fault(home, rng));
        if home.robust {
            version.birth = Some(home.domain.birth());
        }
        version
    }

    fn fault(&self, home: &Dom, rng: &mut Rng) -> Fault {
        if rng.one_in(DESTRUCTOR_PANICS) {
            return Fault::Panic;
        }
        if rng.one_in(DESTRUCTOR_SLEEPS) {
            return Fault::Sleep(rng.micros(1_000));
        }
        if rng.one_in(DESTRUCTOR_RETIRES_ELSEWHERE) {
            if let Some(domain) = self.elsewhere(home, rng) {
                return Fault::RetireInto(domain);
            }
        }
        if !home.transient && rng.one_in(CARRIES_A_DOMAIN) {
            if let Some(domain) = lock(&self.transient).clone() {
                bump(&COUNT.carried_domains);
                return Fault::Carry(domain);
            }
        }
        Fault::None
    }

    /// Another domain than `home`'s: a long-lived one, or for a long-lived
    /// home also the newest transient one. (A transient domain's versions
    /// never hold a transient domain's handle, so every cycle of handles
    /// held by garbage passes through a long-lived domain, whose garbage
    /// the end of the run frees with barriers.)
    fn elsewhere(&self, home: &Dom, rng: &mut Rng) -> Option<Domain> {
        let mut choices: Vec<Domain> = self
            .doms
            .iter()
            .map(|dom| &dom.domain)
            .filter(|domain| **domain != home.domain)
            .cloned()
            .collect();
        if !home.transient {
            choices.extend(lock(&self.transient).clone());
        }
        if choices.is_empty() {
            return None;
        }
        let i = rng.index(choices.len());
        Some(choices.swap_remove(i))
    }
}

// ---------------------------------------------------------------------------
// Progress: every thread has a heart the watchdog listens to.

struct Beat {
    name: String,
    /// Milliseconds since the start at the last tick.
    last: AtomicU64,
    /// What the thread is doing, and on which domain, for a stall report.
    doing: Mutex<(&'static str, Option<Arc<str>>)>,
    done: AtomicBool,
}

static BEATS: Mutex<Vec<Arc<Beat>>> = Mutex::new(Vec::new());

/// A thread's progress mark; it stops being watched when dropped.
struct Heart(Arc<Beat>);

impl Heart {
    fn new(name: impl Into<String>) -> Self {
        let beat = Arc::new(Beat {
            name: name.into(),
            last: AtomicU64::new(now_ms()),
            doing: Mutex::new(("", None)),
            done: AtomicBool::new(false),
        });
        lock(&BEATS).push(beat.clone());
        Self(beat)
    }

    fn tick(&self) {
        self.0.last.store(now_ms(), Relaxed);
    }

    /// Notes what the thread starts doing (until the next call).
    fn doing(&self, what: &'static str, on: &Dom) {
        *lock(&self.0.doing) = (what, Some(on.name.clone()));
    }
}

impl Beat {
    /// "`name` (last in `what` on domain `dom`)", for a report.
    fn describe(&self) -> String {
        match &*lock(&self.doing) {
            (what, Some(dom)) => format!("{} (last in {what} on domain {dom})", self.name),
            _ => self.name.clone(),
        }
    }
}

impl Drop for Heart {
    fn drop(&mut self) {
        self.0.done.store(true, Relaxed);
    }
}

fn now_ms() -> u64 {
    elapsed().as_millis() as u64
}

/// Reports the first thread that made no progress for [`STALL`], prints
/// the summary and exits: a thread stuck that long (in `synchronize`, a
/// barrier, a teardown) will not come back, and cannot be joined.
fn watchdog(options: &Options) {
    loop {
        thread::sleep(Duration::from_millis(100));
        let now = now_ms();
        let quiet = |beat: &Beat| now.saturating_sub(beat.last.load(Relaxed));
        let (stalled, slow) = {
            let mut beats = lock(&BEATS);
            beats.retain(|beat| !beat.done.load(Relaxed));
            let stalled = beats
                .iter()
                .find(|beat| quiet(beat) > STALL.as_millis() as u64)
                .map(|beat| beat.describe());
            // The others that are behind too, for the report.
            let slow: Vec<String> = beats
                .iter()
                .filter(|beat| quiet(beat) > 1_000)
                .map(|beat| format!("{} for {:.1} s", beat.describe(), quiet(beat) as f64 / 1e3))
                .collect();
            (stalled, slow)
        };
        if let Some(name) = stalled {
            // Before the failure is known: the main thread ends the run at
            // the first failure it sees.
            backtraces();
            fail(format_args!(
                "{name} made no progress for {} s (a grace period that never ends, or a hang); \
                 all threads without progress for over 1 s: {}",
                STALL.as_secs(),
                slow.join("; ")
            ));
            // Domain statistics take the domains' locks, which a hang may
            // hold: the summary leaves them out.
            summary(options, &[]);
            std::process::exit(1);
        }
    }
}

/// Prints every thread's backtrace to stderr, for a stall report, if
/// `gdb` can attach to this process (it may be missing, or not allowed to);
/// says so otherwise.
fn backtraces() {
    let pid = std::process::id().to_string();
    let run = std::process::Command::new("gdb")
        .args(["-p", &pid, "-batch", "-nx", "-ex", "thread apply all bt"])
        .stdin(std::process::Stdio::null())
        .output();
    match run {
        Ok(out) if out.status.success() => {
            eprintln!("torture: every thread's backtrace (gdb):");
            eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        }
        Ok(out) => eprintln!(
            "torture: no backtraces: gdb failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => eprintln!("torture: no backtraces: cannot run gdb ({e})"),
    }
}

/// The last resort: ends the process once the run has overrun its time by
/// three stall times, should the watchdog itself be stuck (it takes locks;
/// this thread only tries them, to say who was behind).
fn deadline(run: Duration) {
    let limit = run + 3 * STALL;
    while elapsed() < limit {
        thread::sleep(Duration::from_millis(100));
    }
    let mut behind = String::new();
    if let Ok(beats) = BEATS.try_lock() {
        let now = now_ms();
        for beat in beats.iter().filter(|beat| !beat.done.load(Relaxed)) {
            let quiet = now.saturating_sub(beat.last.load(Relaxed));
            let what = beat.doing.try_lock().map_or("?", |doing| doing.0);
            behind += &format!("; {} (in {what}) quiet for {quiet} ms", beat.name);
        }
    }
    eprintln!(
        "torture: FAILURE: the run has not ended {} s after its time, and the watchdog did not \
         report it{behind}",
        (3 * STALL).as_secs()
    );
    std::process::exit(1);
}

// ---------------------------------------------------------------------------
// Readers

/// A reader's counts, added to [`COUNT`] now and then.
#[derive(Default)]
struct Hist {
    reads: [u64; AGE_CAP + 1],
    owner_reads: u64,
}

impl Hist {
    fn flush(&mut self) {
        for (total, n) in COUNT.reads.iter().zip(&mut self.reads) {
            total.fetch_add(std::mem::take(n), Relaxed);
        }
        COUNT
            .owner_reads
            .fetch_add(std::mem::take(&mut self.owner_reads), Relaxed);
    }
}

fn reader(doms: &[Arc<Dom>], stop: &AtomicBool, mut rng: Rng, heart: &Heart) {
    let mut hist = Hist::default();
    // One holder per domain (`mmgrab`), upgraded for each owner read.
    let mut holders: Vec<Option<Holder<Owner>>> = doms.iter().map(|_| None).collect();
    let mut round = 0_u64;
    while !stop.load(Relaxed) {
        let i = rng.index(doms.len());
        if rng.one_in(4) {
            heart.doing("an owner read", &doms[i]);
            let holder = &mut holders[i];
            guarded("an owner reader", || {
                read_owner(&doms[i], holder, &mut rng, &mut hist);
            });
        } else {
            heart.doing("a read", &doms[i]);
            guarded("a reader", || read_cells(&doms[i], &mut rng, &mut hist));
        }
        heart.tick();
        round += 1;
        if round % 256 == 0 {
            hist.flush();
        }
    }
    hist.flush();
}

/// One read section over the domain's cells: one to three versions, each
/// read several times with delays between, sometimes inside a nested
/// section, then sometimes another after a repin.
fn read_cells(dom: &Dom, rng: &mut Rng, hist: &mut Hist) {
    let mut guard = dom.domain.read();
    for _ in 0..=rng.below(3) {
        let Some(version) = dom.cells[rng.index(CELLS)].load(&guard).as_ref() else {
            return fail("a cell was empty");
        };
        let id = version.id;
        if !hold(version, id, rng, hist) {
            return;
        }
        if rng.one_in(16) {
            let _nested = dom.domain.read(); // shares the outer section
            if !hold(version, id, rng, hist) {
                return;
            }
        }
    }
    if rng.one_in(8) && guard.repin() {
        if let Some(version) = dom.cells[rng.index(CELLS)].load(&guard).as_ref() {
            hold(version, version.id, rng, hist);
        }
    }
}

/// One read section through the domain's owner: upgrade the holder
/// (`mmget_not_zero`; a new owner's user handle if it fails or now and
/// then), read a slot's version several times, drop the user handle,
/// which may be the owner's last: its teardown runs here, and a
/// destructor's panic comes out of it.
fn read_owner(dom: &Dom, holder: &mut Option<Holder<Owner>>, rng: &mut Rng, hist: &mut Hist) {
    let upgraded = if rng.one_in(64) {
        None
    } else {
        holder.as_ref().and_then(Holder::upgrade)
    };
    let user = upgraded.unwrap_or_else(|| {
        let user = dom.user();
        *holder = Some(user.holder());
        user
    });
    {
        let read = user.read();
        let Some(version) = read[rng.index(SLOTS)].load(&read) else {
            return fail("an owner's slot was empty");
        };
        hist.owner_reads += 1;
        hold(version, version.id, rng, hist);
    }
    drop(user);
}

/// Reads `version` (loaded as `id`) now and after up to three delays.
fn hold(version: &Version, id: u64, rng: &mut Rng, hist: &mut Hist) -> bool {
    if !observe(version, id, hist) {
        return false;
    }
    for _ in 0..rng.below(4) {
        dwell(rng);
        if !observe(version, id, hist) {
            return false;
        }
    }
    true
}

/// A robust domain's stuck reader (module docs): stays in a section for
/// half a second to two seconds holding a version it loaded, checks it
/// every 10 ms, leaves, and does it again.
fn stuck_reader(dom: &Dom, stop: &AtomicBool, mut rng: Rng, heart: &Heart) {
    let mut hist = Hist::default();
    while !stop.load(Relaxed) {
        heart.doing("a stuck read", dom);
        guarded("a stuck reader", || {
            let guard = dom.domain.read();
            let Some(version) = dom.cells[rng.index(CELLS)].load(&guard).as_ref() else {
                return fail("a cell was empty");
            };
            let (id, stay) = (version.id, Instant::now());
            let until = Duration::from_millis(500 + rng.below(1_500));
            while stay.elapsed() < until && !stop.load(Relaxed) {
                if !observe(version, id, &mut hist) {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
                heart.tick();
            }
            observe(version, id, &mut hist);
            bump(&COUNT.stuck_sections);
        });
        hist.flush();
        thread::sleep(rng.micros(2_000));
    }
}

/// A delay inside a read section: a spin, a yield (the reader preempted),
/// or a sleep of up to 3 ms.
fn dwell(rng: &mut Rng) {
    if rng.one_in(READER_SLEEPS) {
        bump(&COUNT.reader_sleeps);
        thread::sleep(rng.micros(3_000));
    } else if rng.one_in(READER_YIELDS) {
        bump(&COUNT.reader_yields);
        thread::yield_now();
    } else {
        for _ in 0..rng.below(1_000) {
            std::hint::spin_loop();
        }
    }
}

// ---------------------------------------------------------------------------
// Writers

#[derive(Clone, Copy)]
enum Op {
    Replace,
    Batch,
    OwnerReplace,
    OwnerBatch,
    NewOwner,
    Barrier,
    OwnerBarrier,
    Synchronize,
    Cookie,
    Collect,
}

/// The writers' operations, their names and weights.
const OPS: [(Op, &str, u64); 10] = [
    (Op::Replace, "retire", 400),
    (Op::Batch, "batch", 150),
    (Op::OwnerReplace, "owner retire", 250),
    (Op::OwnerBatch, "owner batch", 100),
    (Op::NewOwner, "new owner", 2),
    (Op::Barrier, "barrier", 3),
    (Op::OwnerBarrier, "owner barrier", 2),
    (Op::Synchronize, "synchronize", 3),
    (Op::Cookie, "cookie", 3),
    (Op::Collect, "collect", 10),
];

fn pick_op(rng: &mut Rng) -> usize {
    let total: u64 = OPS.iter().map(|(_, _, weight)| weight).sum();
    let mut r = rng.below(total);
    for (i, (_, _, weight)) in OPS.iter().enumerate() {
        if r < *weight {
            return i;
        }
        r -= weight;
    }
    unreachable!("r < total")
}

fn writer(world: &World, doms: &[Arc<Dom>], stop: &AtomicBool, mut rng: Rng, heart: &Heart) {
    while !stop.load(Relaxed) {
        let dom = &doms[rng.index(doms.len())];
        let i = pick_op(&mut rng);
        let (op, name, _) = OPS[i];
        heart.doing(name, dom);
        guarded(name, || run_op(op, world, dom, &mut rng));
        bump(&COUNT.ops[i]);
        heart.tick();
    }
}

fn run_op(op: Op, world: &World, dom: &Dom, rng: &mut Rng) {
    let domain = &dom.domain;
    match op {
        Op::Replace => replace(world, dom, rng),
        Op::Batch => replace_batch(world, dom, rng),
        Op::OwnerReplace => owner_replace(world, dom, rng),
        Op::OwnerBatch => owner_batch(world, dom, rng),
        Op::NewOwner => new_owner(world, dom, rng),
        Op::Barrier => domain.barrier(),
        Op::OwnerBarrier => dom.user().barrier(),
        Op::Synchronize => domain.synchronize(),
        Op::Cookie => {
            let cookie = domain.grace_period();
            if !domain.poll(&cookie) {
                domain.wait(&cookie);
            }
        }
        Op::Collect => {
            domain.collect();
        }
    }
}

/// Replaces one cell's version and retires the old one singly, inside or
/// after the section, sometimes hurried.
fn replace(world: &World, dom: &Dom, rng: &mut Rng) {
    let new = Owned::new(world.version(dom, rng));
    let guard = dom.domain.read();
    let old = dom.cells[rng.index(CELLS)]
        .swap(new, &guard)
        .expect("a cell is never empty");
    dom.unlinked(&old);
    if rng.one_in(2) {
        drop(guard); // else retired inside the section
    }
    if let (Some(birth), false) = (old.birth, rng.one_in(4)) {
        // SAFETY: 1. read when the version was made, before the swap that
        // published it; 2. readers reach versions only through the cells'
        // loads and exchanges.
        unsafe { old.retire_born(birth) };
    } else if rng.one_in(8) {
        old.retire_hurry();
    } else {
        old.retire();
    }
}

/// Replaces 1 to 16 cells' versions and retires the old ones as a batch.
fn replace_batch(world: &World, dom: &Dom, rng: &mut Rng) {
    let mut batch = dom.domain.batch();
    {
        let guard = dom.domain.read();
        for _ in 0..=rng.below(16) {
            let new = Owned::new(world.version(dom, rng));
            let old = dom.cells[rng.index(CELLS)]
                .swap(new, &guard)
                .expect("a cell is never empty");
            dom.unlinked(&old);
            old.retire_into(&mut batch);
        }
    }
    if rng.one_in(8) {
        batch.drain_hurry();
    } else {
        batch.drain();
    }
}

/// Replaces one slot's version in the owner and retires the old one
/// through the owner.
fn owner_replace(world: &World, dom: &Dom, rng: &mut Rng) {
    let user = dom.user();
    let new = Box::new(world.version(dom, rng));
    let old = user[rng.index(SLOTS)]
        .replace(Some(new), &user)
        .expect("a slot is never empty");
    dom.unlinked(&old);
    if rng.one_in(8) {
        old.retire_hurry();
    } else {
        old.retire();
    }
}

/// Replaces 1 to 8 slots' versions and retires the old ones as one owner
/// batch.
fn owner_batch(world: &World, dom: &Dom, rng: &mut Rng) {
    let user = dom.user();
    let mut batch = user.batch();
    for _ in 0..=rng.below(8) {
        let new = Box::new(world.version(dom, rng));
        let old = user[rng.index(SLOTS)]
            .replace(Some(new), &user)
            .expect("a slot is never empty");
        dom.unlinked(&old);
        batch.push(old);
    }
    if rng.one_in(8) {
        batch.drain_hurry();
    } else {
        batch.drain();
    }
}

/// Makes a new owner, retires a few versions through it and frees them
/// with exclusive access (it has one user yet), publishes it, and drops
/// the old owner's first user handle: its teardown runs here unless a
/// reader or writer still holds a user handle.
fn new_owner(world: &World, dom: &Dom, rng: &mut Rng) {
    let mut user = User::new(&dom.domain, new_slots(|| world.version(dom, rng)));
    for _ in 0..rng.below(4) {
        let new = Box::new(world.version(dom, rng));
        // Never published: no reader saw it, so it stays out of the pipeline.
        user[rng.index(SLOTS)]
            .replace(Some(new), &user)
            .expect("a slot is never empty")
            .retire();
    }
    if let Some(mut exclusive) = user.exclusive() {
        exclusive.free_pending();
    }
    let old = std::mem::replace(&mut *lock(&dom.owner), user);
    bump(&COUNT.owners_replaced);
    drop(old);
}

// ---------------------------------------------------------------------------
// The pipeline

/// Ages the versions of `dom` (module docs): notes how many are on the
/// list, calls `synchronize`, ages those, and forgets the dropped ones.
fn pipeline(dom: &Dom, stop: &AtomicBool, mut rng: Rng, heart: &Heart) {
    heart.doing("synchronize", dom);
    while !stop.load(Relaxed) {
        let before = lock(&dom.pipeline).len();
        if let Err(payload) = panic::catch_unwind(|| dom.domain.synchronize()) {
            return fail(format_args!(
                "synchronize panicked on {}: {}",
                dom.name,
                message(&*payload)
            ));
        }
        bump(&COUNT.pipeline_grace_periods);
        heart.tick();
        let mut list = lock(&dom.pipeline);
        // Only this thread removes entries, so the first `before` are the
        // ones that were on the list before the call.
        for meta in &list[..before] {
            let age = meta.age.load(Relaxed);
            if age < AGE_CAP {
                meta.age.store(age + 1, Relaxed);
            }
        }
        list.retain(|meta| !meta.dropped.load(Relaxed));
        drop(list);
        if rng.one_in(2) {
            thread::sleep(rng.micros(200));
        }
    }
}

// ---------------------------------------------------------------------------
// Threads

/// Starts a pipeline thread per domain, and `readers` readers and
/// `writers` writers over all of `doms`, until `stop`.
fn spawn_threads(
    world: &Arc<World>,
    doms: &[Arc<Dom>],
    stop: &Arc<AtomicBool>,
    (readers, writers): (usize, usize),
    rng: &mut Rng,
) -> Vec<JoinHandle<()>> {
    let doms: Arc<[Arc<Dom>]> = doms.into();
    let mut threads = Vec::new();
    for dom in doms.iter() {
        let (dom, stop, rng) = (dom.clone(), stop.clone(), rng.fork());
        let name = format!("the pipeline of domain {}", dom.name);
        threads.push(spawn(name, move |heart| pipeline(&dom, &stop, rng, heart)));
    }
    for dom in doms.iter().filter(|dom| dom.robust) {
        let (dom, stop, rng) = (dom.clone(), stop.clone(), rng.fork());
        let name = format!("the stuck reader of domain {}", dom.name);
        threads.push(spawn(name, move |heart| {
            stuck_reader(&dom, &stop, rng, heart)
        }));
    }
    let names = doms.iter().map(|dom| &*dom.name).collect::<Vec<_>>();
    let on = names.join(", ");
    for k in 0..readers {
        let (doms, stop, rng) = (doms.clone(), stop.clone(), rng.fork());
        let name = format!("reader {k} of {on}");
        threads.push(spawn(name, move |heart| reader(&doms, &stop, rng, heart)));
    }
    for k in 0..writers {
        let (world, doms, stop, rng) = (world.clone(), doms.clone(), stop.clone(), rng.fork());
        let name = format!("writer {k} of {on}");
        threads.push(spawn(name, move |heart| {
            writer(&world, &doms, &stop, rng, heart);
        }));
    }
    threads
}

/// Transient domains, one after another: each is used by its own reader,
/// writer and pipeline for 20–200 ms, offered to the long-lived domains'
/// destructors meanwhile, then dropped with retirements pending.
fn churn(world: &Arc<World>, mut rng: Rng, heart: &Heart) {
    for k in 1.. {
        if world.stop.load(Relaxed) {
            return;
        }
        let (settings, domain) = transient_domain(&mut rng);
        let dom = Arc::new(Dom::new(
            format!("transient {k} ({settings})"),
            domain,
            true,
            false,
        ));
        offer_transient(world, Some(dom.domain.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = spawn_threads(world, std::slice::from_ref(&dom), &stop, (1, 1), &mut rng);
        let life = Duration::from_millis(20 + rng.below(180));
        let born = Instant::now();
        while born.elapsed() < life && !world.stop.load(Relaxed) {
            thread::sleep(Duration::from_millis(5));
            heart.tick();
        }
        stop.store(true, Relaxed);
        heart.doing("joining the threads", &dom);
        threads.into_iter().for_each(join);
        if rng.one_in(2) {
            offer_transient(world, None);
        }
        // Not under the lock: the watchdog's summary takes it.
        let totals = Totals::of(&dom.domain.stats());
        lock(&TRANSIENT).add(totals);
        heart.doing("dismantling", &dom);
        match Arc::try_unwrap(dom) {
            Ok(dom) => dom.dismantle(),
            Err(_) => fail("a transient domain is still shared after its threads ended"),
        }
        bump(&COUNT.transient_domains);
        heart.tick();
    }
}

/// Short-lived writer threads, one after another: each makes 1 to 24
/// single retirements into a long-lived domain and exits, its buffer
/// still holding them.
fn exiters(world: &Arc<World>, mut rng: Rng, heart: &Heart) {
    while !world.stop.load(Relaxed) {
        let dom = world.doms[rng.index(world.doms.len())].clone();
        let (world2, mut rng2) = (world.clone(), rng.fork());
        let n = 1 + rng.below(24);
        let name = format!("a short-lived writer of domain {}", dom.name);
        heart.doing("running a short-lived writer", &dom);
        join(spawn(name, move |_| {
            for _ in 0..n {
                guarded("a short-lived writer", || replace(&world2, &dom, &mut rng2));
            }
        }));
        bump(&COUNT.short_lived_writers);
        heart.tick();
        thread::sleep(Duration::from_micros(1_000 + rng.below(4_000)));
    }
}

// ---------------------------------------------------------------------------
// The end of a run

/// Frees everything retired so far in the long-lived domains: barriers
/// until nothing is pending (destructors retire into other domains, and
/// tear transient domains down). Returns each domain's statistics.
fn quiesce(world: &World, heart: &Heart) -> Vec<(String, Stats)> {
    for _ in 0..20 {
        for dom in &world.doms {
            guarded("an owner barrier at the end", || dom.user().barrier());
            guarded("a barrier at the end", || dom.domain.barrier());
            heart.tick();
        }
        let pending = world
            .doms
            .iter()
            .map(|dom| dom.domain.stats().pending_total())
            .sum::<u64>();
        if pending == 0 {
            break;
        }
    }
    let stats = world
        .doms
        .iter()
        .map(|dom| (dom.name.to_string(), dom.domain.stats()))
        .collect::<Vec<_>>();
    for (name, stats) in &stats {
        if stats.pending_total() != 0 {
            fail(format_args!(
                "domain {name}: {} objects still pending after 20 rounds of barriers",
                stats.pending_total()
            ));
        }
    }
    stats
}

/// Stops every thread, frees everything, and checks that every version
/// was dropped. Returns the long-lived domains' statistics.
fn finish(world: Arc<World>, threads: Vec<JoinHandle<()>>) -> Vec<(String, Stats)> {
    let heart = Heart::new("the main thread's shutdown");
    world.stop.store(true, SeqCst);
    for thread in threads {
        join(thread);
        heart.tick();
    }
    offer_transient(&world, None);
    let stats = quiesce(&world, &heart);
    for dom in world.doms.iter().filter(|dom| dom.robust) {
        if elapsed() >= Duration::from_secs(5) && dom.domain.stats().freed_by.early == 0 {
            fail(format_args!(
                "domain {} is robust, and freed nothing early behind its stuck reader",
                dom.name
            ));
        }
    }
    let Ok(world) = Arc::try_unwrap(world) else {
        fail("the world is still shared after every thread ended");
        return stats;
    };
    for dom in world.doms {
        match Arc::try_unwrap(dom) {
            Ok(dom) => dom.dismantle(),
            Err(dom) => fail(format_args!("domain {} is still shared", dom.name)),
        }
        heart.tick();
    }
    // Destructors run by the dismantling may have retired into the global
    // domain, which is never torn down.
    for _ in 0..20 {
        guarded("the global barrier at the end", || {
            Domain::global().barrier()
        });
        if Domain::global().stats().pending_total() == 0 {
            break;
        }
    }
    let (created, dropped) = (get(&COUNT.created), get(&COUNT.dropped));
    if created != dropped {
        fail(format_args!(
            "{created} versions created, {dropped} dropped: {} lost",
            created.abs_diff(dropped)
        ));
    }
    let (raised, surfaced) = (get(&COUNT.panics_raised), get(&COUNT.panics_surfaced));
    if surfaced > raised || (raised > 0 && surfaced == 0) {
        fail(format_args!(
            "{raised} destructor panics raised, {surfaced} surfaced"
        ));
    }
    stats
}

fn summary(options: &Options, domains: &[(String, Stats)]) {
    println!(
        "torture: {:.1} s, seed {}, {} readers, {} writers, {} long-lived domains",
        elapsed().as_secs_f64(),
        options.seed,
        options.readers,
        options.writers,
        options.domains,
    );
    print_histogram();
    let ops: Vec<String> = OPS
        .iter()
        .zip(&COUNT.ops)
        .map(|((_, name, _), n)| format!("{name} {}", get(n)))
        .collect();
    println!("writer operations: {}", ops.join(", "));
    let totals: Vec<(&str, Totals)> = domains
        .iter()
        .map(|(name, stats)| (name.as_str(), Totals::of(stats)))
        .chain([("transient", *lock(&TRANSIENT))])
        .collect();
    let list = |field: fn(&Totals) -> u64| {
        let parts: Vec<String> = totals
            .iter()
            .map(|(name, t)| format!("{name} {}", field(t)))
            .collect();
        parts.join(", ")
    };
    println!(
        "grace periods: {} pipeline synchronizes; completed by domain: {}",
        get(&COUNT.pipeline_grace_periods),
        list(|t| t.grace_periods),
    );
    println!(
        "frees: {} versions created, {} dropped; freed by domain (own and owners'): {}",
        get(&COUNT.created),
        get(&COUNT.dropped),
        list(|t| t.freed),
    );
    for (name, s) in domains {
        let by = s.freed_by;
        println!(
            "  domain {name}: retired {}, freed {} (amortized {}, backpressure {}, barrier {}, \
             collect {}, reclaimer {}, early {}), owners' {} + {} directly, pending {}; \
             {} grace periods started, {} heavy fences, readers put in fencing mode {} times",
            s.retired_total(),
            s.freed,
            by.amortized,
            by.backpressure,
            by.barrier,
            by.collect,
            by.reclaimer,
            by.early,
            s.owners.freed_after_grace_period,
            s.owners.freed_directly,
            s.pending_total(),
            s.grace_periods_started,
            s.heavy_fences,
            s.fencing_mode_entered,
        );
    }
    println!("faults:");
    println!(
        "  readers: {} sleeps, {} yields inside sections; {} stuck sections (0.5-2 s each)",
        get(&COUNT.reader_sleeps),
        get(&COUNT.reader_yields),
        get(&COUNT.stuck_sections),
    );
    println!(
        "  destructors: {} panics raised, {} surfaced (the others superseded by an earlier \
         panic of the same free run), {} skipped while unwinding; {} sleeps; {} retirements \
         into another domain; {} domain handles carried",
        get(&COUNT.panics_raised),
        get(&COUNT.panics_surfaced),
        get(&COUNT.panics_skipped),
        get(&COUNT.destructor_sleeps),
        get(&COUNT.retired_elsewhere),
        get(&COUNT.carried_domains),
    );
    println!(
        "  {} transient domains dropped (with {} objects pending), {} short-lived writers \
         exited, {} owners replaced",
        get(&COUNT.transient_domains),
        lock(&TRANSIENT).pending,
        get(&COUNT.short_lived_writers),
        get(&COUNT.owners_replaced),
    );
    println!("failures: {}", get(&COUNT.failures));
}

/// The pipeline histogram: reads by the age of the version read.
fn print_histogram() {
    let reads: Vec<u64> = COUNT.reads.iter().map(get).collect();
    let width = reads
        .iter()
        .map(|n| n.to_string().len())
        .max()
        .unwrap_or(0)
        .max(3);
    let row = |cells: Vec<String>| {
        let cells: Vec<String> = cells.iter().map(|cell| format!("{cell:>width$}")).collect();
        cells.join(" ")
    };
    let ages = (0..=AGE_CAP).map(|age| match age {
        AGE_CAP => format!("{age}+"),
        _ => age.to_string(),
    });
    println!("pipeline (reads by the age of the version read; age >= 2 is a failure):");
    println!("  age   {}", row(ages.collect()));
    println!(
        "  reads {}",
        row(reads.iter().map(u64::to_string).collect())
    );
    println!(
        "  {} reads, {} of them through owners",
        reads.iter().sum::<u64>(),
        get(&COUNT.owner_reads)
    );
}

fn main() {
    if cfg!(miri) {
        eprintln!("torture: not run under Miri (it runs for seconds to hours)");
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return;
        }
        Err(error) => {
            eprint!("torture: {error}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    install_panic_hook();
    elapsed(); // the clock starts
    println!(
        "torture: {} s, seed {seed} (--seed {seed} repeats every thread's random choices)",
        options.seconds,
        seed = options.seed
    );
    let options = Arc::new(options);
    let watched = options.clone();
    thread::Builder::new()
        .name("the watchdog".into())
        .spawn(move || watchdog(&watched))
        .expect("spawning the watchdog");
    let run = Duration::from_secs_f64(options.seconds);
    thread::Builder::new()
        .name("the deadline".into())
        .spawn(move || deadline(run))
        .expect("spawning the deadline");

    let mut rng = Rng::new(options.seed, 0);
    let world = Arc::new(World::new(options.domains));
    let mut threads = spawn_threads(
        &world,
        &world.doms,
        &world.stop,
        (options.readers, options.writers),
        &mut rng,
    );
    let (churn_world, churn_rng) = (world.clone(), rng.fork());
    threads.push(spawn("the transient domains' maker".into(), move |heart| {
        churn(&churn_world, churn_rng, heart);
    }));
    let (exit_world, exit_rng) = (world.clone(), rng.fork());
    threads.push(spawn(
        "the short-lived writers' spawner".into(),
        move |heart| {
            exiters(&exit_world, exit_rng, heart);
        },
    ));

    let mut status_at = Duration::from_secs(60);
    while elapsed() < run && !failed() {
        thread::sleep(Duration::from_millis(10));
        if elapsed() >= status_at {
            status_at += Duration::from_secs(60);
            println!(
                "torture: {:.0} s: {} reads, {} versions, {} pipeline grace periods, {} transient \
                 domains, {} failures",
                elapsed().as_secs_f64(),
                COUNT.reads.iter().map(get).sum::<u64>(),
                get(&COUNT.created),
                get(&COUNT.pipeline_grace_periods),
                get(&COUNT.transient_domains),
                get(&COUNT.failures),
            );
        }
    }
    if failed() {
        // Stop at the first failure: what follows it is not to be trusted
        // (a reader may be reading freed memory), and a hang would only
        // delay the report.
        let stats: Vec<(String, Stats)> = world
            .doms
            .iter()
            .map(|dom| (dom.name.to_string(), dom.domain.stats()))
            .collect();
        summary(&options, &stats);
        std::process::exit(1);
    }
    let stats = finish(world, threads);
    summary(&options, &stats);
    std::process::exit(if failed() { 1 } else { 0 });
}
