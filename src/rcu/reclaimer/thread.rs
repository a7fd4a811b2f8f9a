//! The reclaimer thread itself: its registry of served domains, its
//! status, and its loop (see the parent module's invariants).

use core::sync::atomic::Ordering::Relaxed;
use core::time::Duration;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use super::doorbell::Doorbell;
use super::served::{visit_once, ServedDomain, Target, Visit, Visited};

/// Wakes (or starts) the thread; see module `doorbell`.
static DOORBELL: Doorbell<JoinHandle<()>> = Doorbell::new();
/// The process-wide switch.
static ENABLED: AtomicBool = AtomicBool::new(!cfg!(miri));

/// A served domain's state, kept alive for one visit.
enum Alive {
    Global(&'static dyn ServedDomain),
    Owned(Arc<dyn ServedDomain>),
}

impl Target {
    fn upgrade(&self) -> Option<Alive> {
        match self {
            Target::Global(inner) => Some(Alive::Global(*inner)),
            Target::Owned(weak) => weak.upgrade().map(Alive::Owned),
        }
    }
}

impl core::ops::Deref for Alive {
    type Target = dyn ServedDomain;
    fn deref(&self) -> &(dyn ServedDomain + 'static) {
        match self {
            Alive::Global(inner) => *inner,
            Alive::Owned(inner) => &**inner,
        }
    }
}

struct Registry {
    /// Every domain the reclaimer has been told about, until it is found
    /// torn down or gone.
    targets: Vec<Target>,
    /// A reclaimer stopped by `disable` from one of its own destructors,
    /// which could not wait for it: no new thread starts until it is gone
    /// (so there is at most one).
    exiting: Option<JoinHandle<()>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    targets: Vec::new(),
    exiting: None,
});

fn registry() -> MutexGuard<'static, Registry> {
    // The registry is consistent at every unlock (no user code runs under
    // it), so poisoning is ignored.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// After a registration of work in `inner`, outside the lock section that
/// made it visible: tells the reclaimer about `inner` the first time, and
/// rings the doorbell.
#[inline]
pub(super) fn notify<D: ServedDomain + ?Sized>(inner: &D) {
    if !inner.served().load(Relaxed) {
        serve(inner);
    }
    if ENABLED.load(Relaxed) {
        DOORBELL.ring(start);
    }
}

#[cold]
fn serve<D: ServedDomain + ?Sized>(inner: &D) {
    if !ENABLED.load(Relaxed) {
        return;
    }
    let mut reg = registry();
    if !inner.served().swap(true, Relaxed) {
        reg.targets.push(inner.target());
    }
}

/// Starts the thread (under the doorbell's lock).
fn start() -> Option<JoinHandle<()>> {
    {
        let mut reg = registry();
        if let Some(old) = reg.exiting.take() {
            if !old.is_finished() {
                // Still in the destructor that stopped it: the next ring
                // starts one.
                reg.exiting = Some(old);
                return None;
            }
            let _ = old.join();
        }
    }
    // Without a thread (the process is out of them), nothing breaks:
    // objects are freed by the calls that free them anyway.
    thread::Builder::new()
        .name("ownrcu-reclaimer".into())
        .spawn(run)
        .ok()
}

pub(super) fn disable() {
    ENABLED.store(false, Relaxed);
    let Some(handle) = DOORBELL.stop() else {
        return;
    };
    // The thread sees that the doorbell no longer holds its handle, and
    // exits at its next look.
    handle.thread().unpark();
    // From a destructor running on the reclaimer itself, it cannot wait for
    // itself: it exits once that destructor returns.
    if handle.thread().id() != thread::current().id() {
        let _ = handle.join();
    } else {
        registry().exiting = Some(handle);
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
    let me = thread::current().id();
    // Should this thread ever unwind (nothing in the loop below panics but
    // allocation; destructors run under `catch_unwind`), the doorbell must
    // not stay `RUNNING` for a thread that is gone: mark it stopped, so the
    // next registration starts a new one.
    let _dying = scopeguard::guard_on_unwind((), |()| {
        drop(DOORBELL.stop_if(|handle| handle.thread().id() == me));
    });
    let mut memos: Vec<Memo> = Vec::new();
    // Started or woken by a registration: that work has a time bound to get
    // its grace period, and the retiring thread usually frees it first, so
    // the first visit comes half a bound later (not at once, racing it).
    let mut period = Some(first_period());
    loop {
        if let Some(period) = period {
            thread::park_timeout(period);
        }
        let targets = {
            if !DOORBELL.holds(|handle| handle.thread().id() == me) {
                return; // stopped by `disable` (a new thread may be running)
            }
            registry().targets.clone()
        };
        period = visit_all(&targets, &mut memos);
        if period.is_some() {
            continue;
        }
        // Nothing waits anywhere: sleep until a registration rings. The
        // doorbell looks once more after announcing it, with a fresh list
        // (a domain served meanwhile was added before its ring).
        DOORBELL.sleep(|| {
            let targets = registry().targets.clone();
            targets
                .iter()
                .any(|t| t.upgrade().is_some_and(|inner| inner.has_work()))
        });
        period = Some(first_period());
    }
}

/// Half the shortest time bound among the served domains.
fn first_period() -> Duration {
    let targets = registry().targets.clone();
    targets
        .iter()
        .filter_map(|t| t.upgrade().map(|inner| inner.time_bound() / 2))
        .min()
        .unwrap_or(crate::DEFAULT_TIME_BOUND / 2)
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
        let at = match memos.iter().position(|m| m.id == inner.id()) {
            Some(at) => at,
            None => {
                memos.push(Memo {
                    id: inner.id(),
                    visit: Visit::default(),
                });
                memos.len() - 1
            }
        };
        let visit = &mut memos[at].visit;
        let work = match visit_once(&*inner, visit) {
            Some(Visited::Work) | None => true,
            Some(Visited::Idle) => false,
            Some(Visited::Dead) => {
                gone.push(index);
                false
            }
        };
        if work {
            let half = inner.time_bound() / 2;
            period = Some(period.map_or(half, |p| p.min(half)));
        }
    }
    if !gone.is_empty() {
        let mut reg = registry();
        let dead = |target: &Target| match target {
            Target::Global(_) => false,
            Target::Owned(weak) => weak.upgrade().map_or(true, |inner| inner.is_dead()),
        };
        reg.targets.retain(|t| !dead(t));
        let live: Vec<u64> = reg
            .targets
            .iter()
            .filter_map(|t| t.upgrade().map(|inner| inner.id()))
            .collect();
        memos.retain(|m| live.contains(&m.id));
    }
    period
}
