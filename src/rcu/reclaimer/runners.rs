//! Runners: the threads that make the reclaimer's visits, so that the
//! reclaimer thread itself never runs user code (destructors, stall hooks)
//! and keeps time for every domain while one destructor runs for seconds.
//!
//! # Invariants
//!
//! - The reclaimer hands each round's visits to the runners and waits for
//!   them, but never longer than an *overrun* (a quarter of the shortest
//!   time bound it serves) without progress. When the visits still queued
//!   find every runner busy past that, it starts another runner; when only
//!   visits already under way are left, it goes on without them. A visit
//!   left running keeps its domain *in flight*: the reclaimer does not visit
//!   that domain again until the runner reports, so a domain is visited by
//!   one runner at a time.
//! - No queued visit is forgotten. Runners wait for tasks without a
//!   timeout, so before the reclaimer waits or leaves a round, every
//!   queued visit has a runner on its way to it: one woken for it, or one
//!   busy that looks at the queue before it waits again. A visit left
//!   queued counts as in flight too, and it is made as soon as a runner
//!   gets to it.
//! - At most [`MAX_RUNNERS`] runners exist. Past that (that many domains
//!   each inside a destructor that does not return), the reclaimer waits,
//!   and the time bound holds again once one returns.
//! - One runner stays while the reclaimer lives. Once no runner has been
//!   started for [`IDLE_EXIT`], the reclaimer retires one idle runner per
//!   round beyond the first and joins it at once: chosen while it waits for
//!   a task, it exits as soon as it wakes, before taking one. So a runner
//!   thread is always either alive or joined, never finished and forgotten.
//! - When the reclaimer stops ([`Runners::stop`], also when it unwinds),
//!   every runner is told to exit after the visit it is making, and its
//!   handle goes to the registry's `exiting` list, for `Reclaimer::disable`
//!   (or the next start) to join.

use core::cell::Cell;
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use super::served::{visit_once, Alive, Visit, Visited};

/// The most runners at once.
pub(super) const MAX_RUNNERS: usize = 16;
/// How long after the last runner was started the extra ones are retired.
const IDLE_EXIT: Duration = Duration::from_secs(1);

thread_local! {
    /// Set on runner threads: `Reclaimer::disable` called from a destructor
    /// there must not wait for runners (its own thread among them).
    static ON_RUNNER: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread is one of the reclaimer's runners.
pub(super) fn on_runner() -> bool {
    ON_RUNNER.with(Cell::get)
}

/// A visit to make: the domain (kept alive for it) and what the reclaimer
/// remembered of it.
pub(super) struct Task {
    pub(super) id: u64,
    pub(super) domain: Alive,
    pub(super) memo: Visit,
}

/// A visit made: what it found (`None` if it panicked; the panic was
/// stashed in the domain) and the memo to keep for the next one.
pub(super) struct Done {
    pub(super) id: u64,
    pub(super) memo: Visit,
    pub(super) visited: Option<Visited>,
}

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    done: Vec<Done>,
    /// Runners alive, and the numbers of those that wait for a task.
    live: usize,
    idle: Vec<u64>,
    /// The number of an idle runner told to exit.
    retire: Option<u64>,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Runners wait here for tasks.
    tasks: Condvar,
    /// The reclaimer waits here for finished visits.
    done: Condvar,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // No user code runs under this lock: poisoning cannot leave it
        // inconsistent.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The reclaimer's runners (module docs).
#[derive(Default)]
pub(super) struct Runners {
    shared: Arc<Shared>,
    /// Every runner started and not joined, by number.
    threads: Vec<(u64, JoinHandle<()>)>,
    /// The next runner's number.
    next: u64,
    /// When the last runner was started.
    started: Option<Instant>,
}

impl Runners {
    /// Hands the visits in `tasks` to the runners and waits for them, at
    /// most `overrun` without progress; returns every visit finished
    /// meanwhile, including those of earlier rounds left in flight. Those
    /// of `tasks` missing from the result are in flight.
    pub(super) fn run(&mut self, tasks: Vec<Task>, overrun: Duration) -> Vec<Done> {
        let mut waiting: Vec<u64> = tasks.iter().map(|t| t.id).collect();
        let shared = Arc::clone(&self.shared);
        let mut q = shared.queue();
        q.tasks.extend(tasks);
        let mut finished = Vec::new();
        let mut progress = Instant::now();
        loop {
            if !q.done.is_empty() {
                waiting.retain(|id| !q.done.iter().any(|d| d.id == *id));
                finished.append(&mut q.done);
                progress = Instant::now();
            }
            if waiting.is_empty() {
                return finished;
            }
            // One waiting runner woken per queued visit before this call
            // waits or leaves (module invariants): the overrun may already
            // be spent here, on the first pass (this thread was preempted
            // since `progress` was read). The other runners stay idle, so
            // that runners started for an overrun can be retired
            // (`finished`).
            for _ in 0..q.tasks.len().min(q.idle.len()) {
                shared.tasks.notify_one();
            }
            if q.live == 0 || progress.elapsed() >= overrun {
                if q.live < MAX_RUNNERS && !q.tasks.is_empty() && q.idle.is_empty() {
                    // The first runner, or every runner busy past the
                    // overrun with visits still queued: one more.
                    q = self.spawn(&shared, q);
                    progress = Instant::now();
                } else if q.live > 0 {
                    return finished; // the rest is in flight
                }
                if q.live == 0 {
                    // No thread could be started: visit here, degraded.
                    let Some(task) = q.tasks.pop_front() else {
                        return finished;
                    };
                    drop(q);
                    let done = make(task);
                    q = shared.queue();
                    q.done.push(done);
                    continue;
                }
            }
            let wait = overrun.saturating_sub(progress.elapsed());
            q = shared
                .done
                .wait_timeout(q, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Visits finished since the last call, without waiting; and, once no
    /// runner was started for `IDLE_EXIT`, retires one idle runner beyond
    /// the first (module docs).
    pub(super) fn finished(&mut self) -> Vec<Done> {
        let mut q = self.shared.queue();
        let done = core::mem::take(&mut q.done);
        let quiet = self.started.is_some_and(|t| t.elapsed() >= IDLE_EXIT);
        if quiet && q.live > 1 && q.retire.is_none() {
            if let Some(&number) = q.idle.last() {
                q.retire = Some(number);
                drop(q);
                self.shared.tasks.notify_all();
                if let Some(at) = self.threads.iter().position(|(n, _)| *n == number) {
                    // It waits for a task, and exits as it wakes: at once.
                    let _ = self.threads.swap_remove(at).1.join();
                }
            }
        }
        done
    }

    /// Starts a runner, counted in `live` at once (unless the thread cannot
    /// be started).
    fn spawn<'q>(
        &mut self,
        shared: &Arc<Shared>,
        mut q: MutexGuard<'q, Queue>,
    ) -> MutexGuard<'q, Queue> {
        let (runner, number) = (Arc::clone(shared), self.next);
        let spawned = thread::Builder::new()
            .name("ownrcu-reclaimer-runner".into())
            .spawn(move || serve(&runner, number));
        if let Ok(handle) = spawned {
            q.live += 1;
            self.next += 1;
            self.threads.push((number, handle));
            self.started = Some(Instant::now());
        }
        q
    }
}

impl Runners {
    /// Tells every runner to exit after the visit it is making, and
    /// returns their handles (for `Reclaimer::disable` to join).
    pub(super) fn stop(&mut self) -> Vec<JoinHandle<()>> {
        let tasks = {
            let mut q = self.shared.queue();
            q.stop = true;
            core::mem::take(&mut q.tasks)
        };
        self.shared.tasks.notify_all();
        // Visits never started keep their domains alive: let go of them
        // here, outside the lock (a domain's state may be freed with them).
        drop(tasks);
        self.threads.drain(..).map(|(_, handle)| handle).collect()
    }
}

/// Runner `number`'s loop: makes visits until told to stop or retired.
fn serve(shared: &Shared, number: u64) {
    ON_RUNNER.with(|on| on.set(true));
    loop {
        let task = {
            let mut q = shared.queue();
            loop {
                // Before taking a task: a runner retired while it waited
                // must exit as it wakes (its retirer joins it).
                if q.stop || q.retire == Some(number) {
                    if q.retire == Some(number) {
                        q.retire = None;
                    }
                    q.live -= 1;
                    return;
                }
                if let Some(task) = q.tasks.pop_front() {
                    break task;
                }
                q.idle.push(number);
                q = shared.tasks.wait(q).unwrap_or_else(|e| e.into_inner());
                q.idle.retain(|n| *n != number);
            }
        };
        let done = make(task);
        shared.queue().done.push(done);
        shared.done.notify_one();
    }
}

/// Makes one visit; the domain is let go of before the report.
fn make(task: Task) -> Done {
    let Task {
        id,
        domain,
        mut memo,
    } = task;
    let visited = visit_once(&*domain, &mut memo);
    drop(domain);
    Done { id, memo, visited }
}

#[cfg(test)]
mod tests {
    use core::any::Any;
    use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    use super::*;
    use crate::rcu::reclaimer::served::{ServedDomain, Target};

    /// A served domain that only counts its visits.
    struct Counted {
        visits: AtomicUsize,
        served: AtomicBool,
    }

    impl ServedDomain for Counted {
        fn id(&self) -> u64 {
            1
        }
        fn wants_reclaimer(&self) -> bool {
            true
        }
        fn served(&self) -> &AtomicBool {
            &self.served
        }
        fn target(&self) -> Target {
            unreachable!("the runners never look a domain up")
        }
        fn time_bound(&self) -> Duration {
            Duration::from_millis(10)
        }
        fn is_dead(&self) -> bool {
            false
        }
        fn visit(&self, _: &mut Visit) -> Visited {
            self.visits.fetch_add(1, SeqCst);
            Visited::Work
        }
        fn has_work(&self) -> bool {
            true
        }
        fn stash_panic(&self, _: Box<dyn Any + Send>) {
            unreachable!("the visit does not panic")
        }
    }

    static DOMAIN: Counted = Counted {
        visits: AtomicUsize::new(0),
        served: AtomicBool::new(true),
    };

    fn visit_of_domain() -> Vec<Task> {
        vec![Task {
            id: DOMAIN.id(),
            domain: Alive::Global(&DOMAIN),
            memo: Visit::default(),
        }]
    }

    /// Polls `done`, for a minute at most (only a lost wake-up takes that).
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// A call that finds its overrun spent as it starts (its thread was
    /// preempted since it read the time) leaves the visit queued, and
    /// still the waiting runner is woken for it.
    #[test]
    fn a_visit_left_queued_at_once_is_still_made() {
        let mut runners = Runners::default();
        let first = runners.run(visit_of_domain(), Duration::from_secs(60));
        assert_eq!(first.len(), 1, "the first runner made the first visit");
        eventually("the runner waits for a task", || {
            runners.shared.queue().idle.len() == 1
        });
        let mut made = runners.run(visit_of_domain(), Duration::ZERO).len();
        eventually("the second visit is made", || {
            made += runners.finished().len();
            made == 1
        });
        assert_eq!(DOMAIN.visits.load(SeqCst), 2);
        assert_eq!(runners.shared.queue().live, 1, "no runner started for it");
        for runner in runners.stop() {
            runner.join().expect("a runner never panics");
        }
    }
}
