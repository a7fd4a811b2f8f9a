//! The reclaimer thread itself: its registry of served domains, its
//! status, and its loop (see the parent module's invariants).

use core::sync::atomic::Ordering::Relaxed;
use core::time::Duration;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::{self, JoinHandle};

use crate::internal::{Inner, Visit, Visited};

/// No thread (never started, or stopped).
const STOPPED: u8 = 0;
/// The thread is visiting domains, or sleeping half a time bound.
const RUNNING: u8 = 1;
/// The thread sleeps until a registration wakes it.
const PARKED: u8 = 2;

/// `STOPPED`, `RUNNING` or `PARKED`; written under `REGISTRY`'s lock, read
/// by registrations without it.
static STATUS: AtomicU8 = AtomicU8::new(STOPPED);
/// The process-wide switch.
static ENABLED: AtomicBool = AtomicBool::new(!cfg!(miri));

/// A served domain.
#[derive(Clone)]
enum Target {
    Global,
    Owned(Weak<Inner>),
}

/// A served domain's state, kept alive for one visit.
enum Alive {
    Global,
    Owned(Arc<Inner>),
}

impl Target {
    fn upgrade(&self) -> Option<Alive> {
        match self {
            Target::Global => Some(Alive::Global),
            Target::Owned(weak) => weak.upgrade().map(Alive::Owned),
        }
    }
}

impl core::ops::Deref for Alive {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        match self {
            Alive::Global => &crate::domain::GLOBAL_INNER,
            Alive::Owned(inner) => inner,
        }
    }
}

struct Registry {
    /// Every domain the reclaimer has been told about, until it is found
    /// torn down or gone.
    targets: Vec<Target>,
    thread: Option<JoinHandle<()>>,
    /// Set by `disable`; the thread exits at its next look.
    stop: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    targets: Vec::new(),
    thread: None,
    stop: false,
});

fn registry() -> MutexGuard<'static, Registry> {
    // The registry is consistent at every unlock (no user code runs under
    // it), so poisoning is ignored.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

#[inline]
pub(super) fn notify(inner: &Inner) {
    if STATUS.load(Relaxed) != RUNNING || !inner.served.load(Relaxed) {
        notify_slow(inner);
    }
}

#[cold]
fn notify_slow(inner: &Inner) {
    if !ENABLED.load(Relaxed) {
        return;
    }
    let mut reg = registry();
    if !ENABLED.load(Relaxed) || reg.stop {
        return;
    }
    if !inner.served.swap(true, Relaxed) {
        reg.targets.push(if inner.id == 0 {
            Target::Global
        } else {
            Target::Owned(inner.this.clone())
        });
    }
    match STATUS.load(Relaxed) {
        STOPPED => {
            let spawned = thread::Builder::new()
                .name("ownrcu-reclaimer".into())
                .spawn(run);
            // Without a thread (the process is out of them), nothing breaks:
            // objects are freed by the calls that free them anyway.
            if let Ok(handle) = spawned {
                reg.thread = Some(handle);
                STATUS.store(RUNNING, Relaxed);
            }
        }
        PARKED => {
            STATUS.store(RUNNING, Relaxed);
            if let Some(handle) = &reg.thread {
                handle.thread().unpark();
            }
        }
        _ => {}
    }
}

pub(super) fn disable() {
    ENABLED.store(false, Relaxed);
    let handle = {
        let mut reg = registry();
        let Some(handle) = reg.thread.take() else {
            return;
        };
        reg.stop = true;
        handle
    };
    handle.thread().unpark();
    // From a destructor running on the reclaimer itself, it cannot wait for
    // itself: it exits once that destructor returns.
    if handle.thread().id() != thread::current().id() {
        let _ = handle.join();
    }
}

pub(super) fn enable() {
    ENABLED.store(true, Relaxed);
}

pub(super) fn is_enabled() -> bool {
    ENABLED.load(Relaxed)
}

/// The reclaimer's memory of one domain.
struct Memo {
    id: u64,
    visit: Visit,
}

fn run() {
    let mut memos: Vec<Memo> = Vec::new();
    loop {
        let targets = {
            let mut reg = registry();
            if reg.stop {
                reg.stop = false;
                STATUS.store(STOPPED, Relaxed);
                return;
            }
            reg.targets.clone()
        };
        let period = visit_all(&targets, &mut memos);
        if let Some(period) = period {
            thread::park_timeout(period);
            continue;
        }
        // Nothing waits anywhere: sleep until a registration wakes us. Look
        // once more after announcing it (see the module invariants).
        let targets = {
            let reg = registry();
            STATUS.store(PARKED, Relaxed);
            reg.targets.clone()
        };
        if targets
            .iter()
            .any(|t| t.upgrade().is_some_and(|inner| inner.has_work()))
        {
            STATUS.store(RUNNING, Relaxed);
            continue;
        }
        thread::park();
        STATUS.store(RUNNING, Relaxed);
    }
}

/// Visits every served domain once; returns how long to sleep before the
/// next round, or `None` if no domain has work.
fn visit_all(targets: &[Target], memos: &mut Vec<Memo>) -> Option<Duration> {
    let mut period: Option<Duration> = None;
    let mut gone = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let Some(inner) = target.upgrade() else {
            gone.push(index);
            continue;
        };
        let at = match memos.iter().position(|m| m.id == inner.id) {
            Some(at) => at,
            None => {
                memos.push(Memo {
                    id: inner.id,
                    visit: Visit::default(),
                });
                memos.len() - 1
            }
        };
        let visit = &mut memos[at].visit;
        let visited = catch_unwind(AssertUnwindSafe(|| inner.visit(visit)));
        let work = match visited {
            Ok(Visited::Work) => true,
            Ok(Visited::Idle) => false,
            Ok(Visited::Dead) => {
                gone.push(index);
                false
            }
            Err(payload) => {
                inner.stash_panic(payload);
                true
            }
        };
        if work {
            let half = inner.config().time_bound / 2;
            period = Some(period.map_or(half, |p| p.min(half)));
        }
    }
    if !gone.is_empty() {
        let mut reg = registry();
        let dead = |target: &Target| match target {
            Target::Global => false,
            Target::Owned(weak) => weak
                .upgrade()
                .map_or(true, |inner| inner.dead.load(Relaxed)),
        };
        reg.targets.retain(|t| !dead(t));
        let live: Vec<u64> = reg
            .targets
            .iter()
            .filter_map(|t| t.upgrade().map(|inner| inner.id))
            .collect();
        memos.retain(|m| live.contains(&m.id));
    }
    period
}
