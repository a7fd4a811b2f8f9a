//! Bounded waiting: polling a condition, spinning for a short window, then
//! sleeping with a growing period, until it holds or a deadline passes.
//!
//! # Invariants
//!
//! - A wait given a bound never outlasts it by more than one sleep (at most
//!   1 ms); under loom, which has no clock, a bounded wait is a few rounds.
//! - A wait polls without sleeping only when its caller says the condition
//!   may come soon, or that sleeping costs others, and only for the window
//!   the caller gives (a grace-period wait: a few of the domain's average
//!   grace periods while those are short, else about one sleep's
//!   oversleep while the domain's waits are short; inside a read section,
//!   at least that oversleep: `State::poll_window`): a sleep outlasts what
//!   it asks for by the kernel's timer slack (tens of microseconds),
//!   longer than a short grace period, so a waiter that slept would idle
//!   long after the condition came.
//! - A stalled condition costs no CPU to speak of: after the window, each
//!   sleep doubles, up to 1 ms.

use core::time::Duration;

use crossbeam_utils::Backoff;

/// Polls `done` until it returns true (then returns true) or `max` has
/// passed (then false); forever if `max` is `None`. With a `window`, it
/// spins and yields briefly (a `Backoff`), then spins on until the window
/// has passed, then sleeps; without one it sleeps from the start: for a
/// condition not expected soon, whose polling would only take the
/// processor from the threads it waits for. The window spins rather than
/// yields: with more runnable threads than processors, a yield can hand
/// the processor to a thread that then keeps it for a whole time slice.
pub(crate) fn poll_until(
    max: Option<Duration>,
    window: Option<Duration>,
    mut done: impl FnMut() -> bool,
) -> bool {
    #[cfg(not(loom))]
    let deadline = max.map(|max| std::time::Instant::now() + max);
    // When the backoff ended (read then: a condition that holds at once
    // costs no clock read).
    #[cfg(not(loom))]
    let mut polled_since = None;
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
        // Spin and yield briefly (the backoff: what we wait for is usually
        // short), then spin until the window has passed, then sleep.
        if let Some(window) = window {
            if !backoff.is_completed() {
                crate::sync::snooze(&backoff);
                continue;
            }
            #[cfg(not(loom))]
            if polled_since
                .get_or_insert_with(std::time::Instant::now)
                .elapsed()
                < window
            {
                backoff.spin();
                continue;
            }
            #[cfg(loom)]
            let _ = window;
        }
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
