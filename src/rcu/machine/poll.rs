//! Bounded waiting: polling a condition, spinning briefly and then sleeping
//! with a growing period, until it holds or a deadline passes.
//!
//! # Invariants
//!
//! - A wait given a bound never outlasts it by more than one sleep (at most
//!   1 ms); under loom, which has no clock, a bounded wait is a few rounds.
//! - A wait spins only when its caller says the condition may come within
//!   a spin (a grace-period wait: when the domain's grace periods are
//!   short, `State::spin_worth`).
//! - A stalled condition costs no CPU to speak of: after the spins, each
//!   sleep doubles, up to 1 ms.

use core::time::Duration;

use crossbeam_utils::Backoff;

/// Polls `done` until it returns true (then returns true) or `max` has
/// passed (then false); forever if `max` is `None`. Without `spin`, it
/// sleeps from the start: for a condition not expected within a spin,
/// whose spinning would only take the processor from the threads it waits
/// for.
pub(crate) fn poll_until(
    max: Option<Duration>,
    spin: bool,
    mut done: impl FnMut() -> bool,
) -> bool {
    #[cfg(not(loom))]
    let deadline = max.map(|max| std::time::Instant::now() + max);
    #[cfg(loom)]
    let mut rounds = max.map(|_| 3_u32);
    let backoff = Backoff::new();
    #[cfg_attr(loom, allow(unused_mut, unused_variables))]
    let mut sleep_us = 1;
    loop {
        if done() {
            return true;
        }
        #[cfg(not(loom))]
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return false;
        }
        #[cfg(loom)]
        if let Some(rounds) = rounds.as_mut() {
            if *rounds == 0 {
                return false;
            }
            *rounds -= 1;
        }
        // Spin briefly (what we wait for is usually short), then sleep.
        if spin && !backoff.is_completed() {
            crate::sync::snooze(&backoff);
        } else {
            #[cfg(not(loom))]
            {
                std::thread::sleep(Duration::from_micros(sleep_us));
                sleep_us = (sleep_us * 2).min(1000);
            }
            #[cfg(loom)]
            {
                let _ = sleep_us;
                crate::sync::yield_now();
            }
        }
    }
}
