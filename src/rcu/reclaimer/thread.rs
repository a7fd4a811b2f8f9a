//! The reclaimer thread itself: its registry of served domains, its
//! status, and its loop (see the parent module's invariants). It keeps
//! time and hands the visits to its runners (module `runners`): it never
//! runs a destructor itself.

use core::sync::atomic::Ordering::Relaxed;
use core::time::Duration;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use super::doorbell::Doorbell;
use super::runners::{self, Runners, Task};
use super::served::{ServedDomain, Target, Visit, Visited};

/// Wakes (or starts) the thread; see module `doorbell`.
static DOORBELL: Doorbell<JoinHandle<()>> = Doorbell::new();
/// The process-wide switch.
static ENABLED: AtomicBool = AtomicBool::new(!cfg!(miri));

struct Registry {
    /// Every domain the reclaimer has been told about, until it is found
    /// torn down or gone.
    targets: Vec<Target>,
    /// Runners of a stopped reclaimer, told to exit after the visit they
    /// are making: `disable` joins them (but from a destructor on one of
    /// them), and no new reclaimer starts until they are gone (so there is
    /// never more than one at work).
    exiting: Vec<JoinHandle<()>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    targets: Vec::new(),
    exiting: Vec::new(),
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
        if let Some(old) = join_finished(&mut reg.exiting) {
            // A runner of the old reclaimer is still in a destructor (the
            // one that stopped it, maybe): the next ring starts one.
            reg.exiting.push(old);
            return None;
        }
    }
    // Without a thread (the process is out of them), nothing breaks:
    // objects are freed by the calls that free them anyway.
    thread::Builder::new()
        .name("ownrcu-reclaimer".into())
        .spawn(run)
        .ok()
}

/// Joins the handles of `exiting` whose threads have finished; returns one
/// that has not, if any (the others stay in `exiting`).
fn join_finished(exiting: &mut Vec<JoinHandle<()>>) -> Option<JoinHandle<()>> {
    let mut unfinished = None;
    for handle in core::mem::take(exiting) {
        if handle.is_finished() {
            let _ = handle.join();
        } else if unfinished.is_none() {
            unfinished = Some(handle);
        } else {
            exiting.push(handle);
        }
    }
    unfinished
}

/// Hands the runners of a stopping reclaimer to `disable` (module docs of
/// `runners`).
fn exiting(runners: Vec<JoinHandle<()>>) {
    registry().exiting.extend(runners);
}

pub(super) fn disable() {
    ENABLED.store(false, Relaxed);
    if let Some(handle) = DOORBELL.stop() {
        // The thread sees that the doorbell no longer holds its handle, and
        // exits at its next look, within one overrun: it runs no user code.
        handle.thread().unpark();
        let _ = handle.join();
    }
    // From a destructor on a runner, waiting for runners could wait for
    // this very thread (or for one that waits for it): they are joined by
    // a later `disable` or start instead.
    if runners::on_runner() {
        return;
    }
    let exiting = core::mem::take(&mut registry().exiting);
    for handle in exiting {
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
    /// `None` while a runner visits the domain (in flight).
    visit: Option<Visit>,
}

fn run() {
    let me = thread::current().id();
    // Should this thread ever unwind (nothing in the loop below panics but
    // allocation; destructors run on the runners), the doorbell must not
    // stay `RUNNING` for a thread that is gone: mark it stopped, so the
    // next registration starts a new one.
    let _dying = scopeguard::guard_on_unwind((), |()| {
        drop(DOORBELL.stop_if(|handle| handle.thread().id() == me));
    });
    // Stopped on the way out (told to stop, or unwinding): the runners
    // finish their visits and exit, and `disable` joins them.
    let mut runners = scopeguard::guard(Runners::default(), |mut runners| {
        exiting(runners.stop());
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
        period = visit_all(&targets, &mut memos, &mut runners);
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

/// Visits every served domain once, but those still in flight from an
/// earlier round; returns how long to sleep before the next round, or
/// `None` if no domain has work.
fn visit_all(targets: &[Target], memos: &mut Vec<Memo>, runners: &mut Runners) -> Option<Duration> {
    let mut period: Option<Duration> = None;
    let mut work = |bound: Duration| {
        period = Some(period.map_or(bound / 2, |p| p.min(bound / 2)));
    };
    let mut overrun: Option<Duration> = None;
    let mut gone = false;
    let mut tasks = Vec::new();
    for target in targets {
        let Some(domain) = target.upgrade() else {
            gone = true;
            continue;
        };
        let bound = domain.time_bound();
        overrun = Some(overrun.map_or(bound / 4, |o| o.min(bound / 4)));
        let id = domain.id();
        let memo = match memos.iter_mut().find(|m| m.id == id) {
            Some(memo) => memo,
            None => {
                memos.push(Memo {
                    id,
                    visit: Some(Visit::default()),
                });
                memos.last_mut().expect("just pushed")
            }
        };
        let Some(visit) = memo.visit.take() else {
            work(bound); // in flight: come back for it
            continue;
        };
        tasks.push(Task {
            id,
            domain,
            memo: visit,
        });
    }
    let mut finished = runners.finished();
    if !tasks.is_empty() {
        finished.extend(runners.run(tasks, overrun.unwrap_or(crate::DEFAULT_TIME_BOUND / 4)));
    }
    let bounds: Vec<(u64, Duration)> = targets
        .iter()
        .filter_map(|t| t.upgrade().map(|d| (d.id(), d.time_bound())))
        .collect();
    for done in finished {
        let bound = bounds.iter().find(|(id, _)| *id == done.id).map(|b| b.1);
        match done.visited {
            Some(Visited::Work) | None => work(bound.unwrap_or(crate::DEFAULT_TIME_BOUND)),
            Some(Visited::Idle) => {}
            Some(Visited::Dead) => gone = true,
        }
        if let Some(memo) = memos.iter_mut().find(|m| m.id == done.id) {
            memo.visit = Some(done.memo);
        }
    }
    for memo in memos.iter() {
        if memo.visit.is_none() {
            // Still in flight after this round.
            let bound = bounds.iter().find(|(id, _)| *id == memo.id).map(|b| b.1);
            work(bound.unwrap_or(crate::DEFAULT_TIME_BOUND));
        }
    }
    if gone {
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
