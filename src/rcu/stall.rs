//! Stall warnings: a reader that has held a grace period up for longer than
//! the domain's stall timeout is reported, once per grace period, naming
//! its thread (the kernel's RCU CPU stall warning).
//!
//! # Invariants
//!
//! - The read path pays nothing: a record learns its thread's name and id
//!   when the thread registers with the domain (once), and stalls are
//!   looked for only where something already waits for a grace period: a
//!   waiting call's poll (`synchronize`, `barrier`, a cookie's `wait`, the
//!   bounds' waits) and each reclaimer visit.
//! - One report per grace period held up past the timeout: whoever first
//!   sees it claims it under the state lock; then each record that still
//!   holds it up is reported, outside the lock (a hook may call into the
//!   domain).
//! - A hook that panics does not disturb the caller that noticed the stall:
//!   the panic is caught and dropped (the panic hook has reported it).

use std::fmt;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

/// A reader that has held up a grace period for longer than its domain's
/// [stall timeout](crate::DomainBuilder::stall_timeout), as reported to the
/// domain's [stall hook](crate::DomainBuilder::on_stall) (by default, one
/// line on stderr, this type's `Display`).
///
/// # Examples
///
/// ```
/// use std::sync::{mpsc, Mutex};
/// use std::time::Duration;
///
/// let (tx, rx) = mpsc::channel();
/// let tx = Mutex::new(tx);
/// let domain = ownrcu::Domain::builder()
///     .stall_timeout(Some(Duration::from_millis(20)))
///     .on_stall(move |stall| tx.lock().unwrap().send(stall.clone()).unwrap())
///     .build();
/// let guard = domain.read(); // a reader that stays...
/// let d2 = domain.clone();
/// let waiter = std::thread::spawn(move || d2.synchronize()); // ...held up
/// let stall = rx.recv().unwrap(); // reported after 20 ms
/// assert_eq!(stall.thread_id, Some(std::thread::current().id()));
/// assert!(stall.held >= Duration::from_millis(20));
/// drop(guard);
/// waiter.join().unwrap();
/// assert_eq!(domain.stats().stalls, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stall {
    /// The reader's thread name, if it has one.
    pub thread: Option<String>,
    /// The reader's thread id (`None` for a section entered while its
    /// thread was exiting, on a record claimed for that section alone, and
    /// for an owned section).
    pub thread_id: Option<ThreadId>,
    /// For an [`OwnedGuard`](crate::OwnedGuard), which belongs to no
    /// thread: where it was made (the caller of
    /// [`Domain::read_owned`](crate::Domain::read_owned)).
    pub owned_section: Option<&'static core::panic::Location<'static>>,
    /// The domain's id, as its `Debug` output shows it (0: the global
    /// domain).
    pub domain: u64,
    /// The grace period held up (the domain's grace periods are numbered
    /// from 1).
    pub grace_period: u64,
    /// How long the grace period had waited when the stall was seen.
    pub held: Duration,
    /// Objects of the domain waiting to be freed then (not counting its
    /// owners').
    pub pending: u64,
}

impl fmt::Display for Stall {
    /// `ownrcu: stall: thread 'worker-3' (ThreadId(7)) has held grace period
    /// 42 of domain 1 up for 10.0s; 5120 objects wait`, or for an owned
    /// section `ownrcu: stall: owned section made at src/server.rs:40:23
    /// has held grace period ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(at) = self.owned_section {
            write!(f, "ownrcu: stall: owned section made at {at}")?;
        } else {
            write!(f, "ownrcu: stall: thread ")?;
            match &self.thread {
                Some(name) => write!(f, "'{name}' ")?,
                None => write!(f, "<unnamed> ")?,
            }
            match self.thread_id {
                Some(id) => write!(f, "({id:?})")?,
                None => write!(f, "(exiting)")?,
            }
        }
        write!(
            f,
            " has held grace period {} of domain {} up for {:.1?}; {} objects wait",
            self.grace_period, self.domain, self.held, self.pending
        )
    }
}

/// A domain's stall hook.
#[derive(Clone)]
#[cfg_attr(loom, allow(dead_code))] // loom builds look for no stalls
pub(crate) struct StallHook(pub(crate) Arc<dyn Fn(&Stall) + Send + Sync>);

// A domain stays `UnwindSafe` and `RefUnwindSafe` with a hook: a hook's
// panic is caught where it is called and dropped (`report`), so no state
// it may have left half-changed is ever looked at again by this crate.
impl std::panic::UnwindSafe for StallHook {}
impl std::panic::RefUnwindSafe for StallHook {}

impl fmt::Debug for StallHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StallHook(..)")
    }
}

/// Reports `stall` through `hook`, or on stderr without one; a panic of
/// the hook is caught and dropped (module invariants).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn report(hook: Option<&StallHook>, stall: &Stall) {
    let run = || match hook {
        Some(hook) => (hook.0)(stall),
        None => eprintln!("{stall}"),
    };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
}
