//! Grace-period cookies: `grace_period()` then `poll`/`wait`, racing a
//! reader; the writer frees the unlinked object itself once the cookie's
//! grace period is over.

use loom::sync::atomic::AtomicPtr;
use loom::sync::atomic::Ordering::AcqRel;
use loom::sync::Arc;
use loom::thread;
use ownrcu::{Domain, GracePeriod};

use crate::common::{check, read_side, Objects, EXHAUSTIVE};

/// A reader races the writer, which unlinks, takes a cookie, completes it
/// with `complete` and frees the object itself. `poll`'s `try_lock` fails
/// while the reader's thread holds the state lock (in its exit hand-over);
/// it must then just report "not yet".
fn cookie_model(name: &'static str, complete: fn(&Domain, &GracePeriod)) {
    check(name, EXHAUSTIVE, move || {
        let domain = Arc::new(Domain::new());
        let objects = Objects::new();
        let first = objects.make_shared();
        let second = objects.make_shared();
        let shared = Arc::new(AtomicPtr::new(first.ptr));
        let candidates = vec![first.clone(), second.clone()];

        let reader = {
            let (domain, shared) = (domain.clone(), shared.clone());
            thread::spawn(move || read_side(&domain, &shared, &candidates))
        };

        let old = shared.swap(second.ptr, AcqRel);
        let cookie = domain.grace_period();
        complete(&domain, &cookie);
        assert!(domain.poll(&cookie), "{name}: cookie incomplete afterwards");
        // SAFETY: unlinked before the cookie was taken, and its grace period
        // is over.
        drop(unsafe { Box::from_raw(old) });
        assert!(first.is_freed());
        assert_eq!(objects.drops(), 1);

        reader.join().unwrap();
        // SAFETY: the reader has finished; `second` was never retired.
        drop(unsafe { Box::from_raw(second.ptr) });
    });
}

/// `poll` in a loop until it says the grace period is over.
#[test]
fn poll_races_reader() {
    cookie_model("cookie/poll", |domain, cookie| {
        while !domain.poll(cookie) {
            thread::yield_now();
        }
    });
}

/// `wait` blocks until the grace period is over.
#[test]
fn wait_races_reader() {
    cookie_model("cookie/wait", |domain, cookie| domain.wait(cookie));
}
