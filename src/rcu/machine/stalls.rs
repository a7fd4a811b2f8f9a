//! Looking for stalled readers (see `crate::rcu::stall` for what is
//! reported, and why the read path pays nothing).
//!
//! # Invariants
//!
//! - A grace period is reported at most once: the first thread that sees it
//!   running past the timeout records it in `State::stall_reported`, under
//!   the state lock; the others see it recorded and go on.
//! - Reports are made outside every lock of the domain: a hook may call
//!   into it.

use core::sync::atomic::Ordering::Relaxed;

use super::state::{lock, Inner};
use crate::rcu::stall::{report, Stall};

impl Inner {
    /// Reports the readers that hold up the running grace period, if it
    /// has run past the stall timeout and was not reported yet. Called
    /// where something waits for a grace period (a wait's poll, a
    /// reclaimer visit); a no-op when stall warnings are off.
    pub(super) fn check_stall(&self) {
        let Some(timeout) = self.config.stall_timeout else {
            return;
        };
        let (gp, held) = {
            let mut st = lock(&self.state);
            // The oldest grace period in flight (a robust domain may start
            // more while it is held up: they do not make a new stall).
            let gp = self.completed.load(Relaxed) + 1; // written under this lock
            let Some(started) = st.started_at else {
                return;
            };
            if !st.running || st.stall_reported >= gp {
                return;
            }
            let held = started.elapsed();
            if held < timeout {
                return;
            }
            st.stall_reported = gp;
            (gp, held)
        };
        let pending = self.pending();
        for rec in self.records().filter(|rec| rec.blocks(gp)) {
            let owned_section = rec.owned_at();
            // A record an owned section holds may have had a thread before.
            let thread = if owned_section.is_some() {
                None
            } else {
                rec.thread()
            };
            let stall = Stall {
                thread: thread.as_ref().and_then(|t| t.name().map(String::from)),
                thread_id: thread.as_ref().map(std::thread::Thread::id),
                owned_section,
                domain: self.id,
                grace_period: gp,
                held,
                pending,
            };
            self.counters.stalls.fetch_add(1, Relaxed);
            report(self.stall_hook.as_ref(), &stall);
        }
    }
}
