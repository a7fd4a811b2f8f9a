//! Thread-local destructors that run after ownrcu's own per-thread registry
//! is gone.
//!
//! Thread-locals are destroyed in reverse order of first use (glibc's
//! `__cxa_thread_atexit_impl`, and std's fallback list), so a thread-local
//! that a thread touches *before* its first ownrcu call is destroyed *after*
//! ownrcu's registry. Every thread here does exactly that ([`spawn_late`]),
//! then reads or keeps a guard in that late destructor:
//!
//! - The calls that must not wait from inside a read section of their domain
//!   (`Domain::synchronize`, `barrier`, `wait` with an incomplete cookie,
//!   `User::barrier`) still panic there instead of waiting for themselves,
//!   with nested guards too, and the domain works normally once the guards
//!   drop.
//! - A `Guard<'static>` kept until that destructor hands its thread's record
//!   back when it drops, so the next thread reuses it: threads that each keep
//!   one until they exit do not make the domain's records grow.
//!
//! The checks that hang on broken code run on threads of their own, and the
//! test fails after [`LIMIT`] with a message saying what did not come back.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use ownrcu::{Domain, User};

/// How long a check may take before it counts as hung. Generous: it only
/// matters on broken code, and must never decide the verdict on working
/// code, however slow the machine (or Miri).
const LIMIT: Duration = Duration::from_secs(if cfg!(miri) { 600 } else { 60 });

/// Threads that each keep a guard until they exit (few under Miri).
const THREADS: usize = if cfg!(miri) { 8 } else { 50 };

/// What the panics of waiting calls made inside a read section say.
const IN_SECTION: &str = "inside a read-side critical section";

/// Work run when this thread's locals are destroyed.
struct AtExit(RefCell<Vec<Box<dyn FnOnce()>>>);

impl Drop for AtExit {
    fn drop(&mut self) {
        for f in self.0.get_mut().drain(..) {
            f();
        }
    }
}

std::thread_local! {
    static AT_EXIT: AtExit = const { AtExit(RefCell::new(Vec::new())) };
}

/// Spawns a thread that touches [`AT_EXIT`] before anything else, so its
/// destructor is registered before ownrcu's registry's and runs after it;
/// then runs `body`, which must use ownrcu (registering the thread).
fn spawn_late(body: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    thread::spawn(move || {
        AT_EXIT.with(|_| {});
        body();
    })
}

/// Runs `f` when this thread's locals are destroyed, after ownrcu's registry
/// (on a thread from [`spawn_late`]).
fn at_exit(f: impl FnOnce() + 'static) {
    AT_EXIT.with(|e| e.0.borrow_mut().push(Box::new(f)));
}

/// Runs `f` on a thread of its own and returns its result; fails if it does
/// not return within [`LIMIT`] (`what` says what hung).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(value) => {
            handle.join().unwrap();
            value
        }
        Err(RecvTimeoutError::Disconnected) => resume_unwind(handle.join().unwrap_err()),
        Err(RecvTimeoutError::Timeout) => panic!("{what} did not return within {LIMIT:?}"),
    }
}

/// Runs `register` on a thread from [`spawn_late`], then `late` in the late
/// destructor, and returns what `late` returned; fails if the destructor
/// does not finish within [`LIMIT`] (`what` says what it waited for).
fn in_late_destructor<T: Send + 'static>(
    what: &str,
    register: impl FnOnce() + Send + 'static,
    late: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = spawn_late(move || {
        register();
        at_exit(move || {
            // A panic escaping a thread-local destructor aborts the process.
            let _ = tx.send(catch_unwind(AssertUnwindSafe(late)).map_err(message));
        });
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(value)) => {
            handle.join().unwrap();
            value
        }
        Ok(Err(panic)) => panic!("the late destructor panicked: {panic}"),
        Err(RecvTimeoutError::Disconnected) => resume_unwind(handle.join().unwrap_err()),
        Err(RecvTimeoutError::Timeout) => panic!(
            "the late thread-local destructor did not finish within {LIMIT:?}: {what} inside a \
             read section waited for that section instead of panicking"
        ),
    }
}

/// A panic's message.
fn message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&str>() {
            Ok(s) => s.to_string(),
            Err(_) => "<not a string>".to_string(),
        },
    }
}

/// Runs `f`, which must panic with the in-section message (`what` names it).
fn assert_panics_in_section(what: &str, f: impl FnOnce()) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => panic!("{what} inside a read section returned instead of panicking"),
        Err(payload) => {
            let msg = message(payload);
            assert!(msg.contains(IN_SECTION), "{what}: unexpected panic: {msg}");
        }
    }
}

/// Serializes the tests that use the global domain, which every test in
/// this binary shares: one counts the global domain's records, which other
/// tests' threads would add to.
fn global_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ----- waiting calls from inside a section, in a late destructor ----------

/// A waiting call that must panic inside a read section of its domain.
#[derive(Clone, Copy, Debug)]
enum Call {
    Synchronize,
    Barrier,
    Wait,
    UserBarrier,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Synchronize => "Domain::synchronize()",
            Call::Barrier => "Domain::barrier()",
            Call::Wait => "Domain::wait() with an incomplete cookie",
            Call::UserBarrier => "User::barrier()",
        }
    }
}

/// In a late destructor, enters a read section of `domain` and makes `call`,
/// which must panic; after the guard drops the same call returns, and so
/// does `synchronize` on another thread once the thread has exited.
fn call_in_a_late_section(domain: Domain, call: Call) {
    let user = User::new(&domain, 7_u32);
    let (first, handle) = (user.clone(), user.clone());
    in_late_destructor(
        call.name(),
        move || drop(first.read()),
        move || {
            let domain = handle.domain();
            let what = format!("{} in a late destructor", call.name());
            match call {
                Call::Synchronize => {
                    let guard = domain.read();
                    assert_panics_in_section(&what, || domain.synchronize());
                    drop(guard);
                    domain.synchronize();
                }
                Call::Barrier => {
                    let guard = domain.read();
                    assert_panics_in_section(&what, || domain.barrier());
                    drop(guard);
                    domain.barrier();
                }
                Call::Wait => {
                    let guard = domain.read();
                    // Taken inside the section, so incomplete until it ends.
                    let cookie = domain.grace_period();
                    assert_panics_in_section(&what, || domain.wait(&cookie));
                    drop(guard);
                    domain.wait(&cookie);
                    assert!(domain.poll(&cookie));
                }
                Call::UserBarrier => {
                    let read = handle.read();
                    assert_eq!(*read, 7);
                    assert_panics_in_section(&what, || handle.barrier());
                    drop(read);
                    handle.barrier();
                }
            }
        },
    );
    within(
        "Domain::synchronize() after the late destructor",
        move || {
            domain.synchronize();
            user.barrier();
        },
    );
}

#[test]
fn synchronize_in_a_late_destructor_panics_inside_a_section() {
    call_in_a_late_section(Domain::new(), Call::Synchronize);
}

#[test]
fn global_synchronize_in_a_late_destructor_panics_inside_a_section() {
    let _serial = global_lock();
    call_in_a_late_section(Domain::global().clone(), Call::Synchronize);
}

#[test]
fn barrier_in_a_late_destructor_panics_inside_a_section() {
    call_in_a_late_section(Domain::new(), Call::Barrier);
}

#[test]
fn global_barrier_in_a_late_destructor_panics_inside_a_section() {
    let _serial = global_lock();
    call_in_a_late_section(Domain::global().clone(), Call::Barrier);
}

#[test]
fn wait_in_a_late_destructor_panics_inside_a_section() {
    call_in_a_late_section(Domain::new(), Call::Wait);
}

#[test]
fn global_wait_in_a_late_destructor_panics_inside_a_section() {
    let _serial = global_lock();
    call_in_a_late_section(Domain::global().clone(), Call::Wait);
}

#[test]
fn user_barrier_in_a_late_destructor_panics_inside_a_section() {
    call_in_a_late_section(Domain::new(), Call::UserBarrier);
}

#[test]
fn global_user_barrier_in_a_late_destructor_panics_inside_a_section() {
    let _serial = global_lock();
    call_in_a_late_section(Domain::global().clone(), Call::UserBarrier);
}

/// In a late destructor, two nested guards: `synchronize` panics while
/// either is alive, and returns once both have dropped.
fn nested_guards_in_a_late_destructor(domain: Domain) {
    let handle = domain.clone();
    in_late_destructor(
        "Domain::synchronize() with nested guards",
        {
            let handle = handle.clone();
            move || drop(handle.read())
        },
        move || {
            let outer = handle.read();
            let inner = handle.read();
            assert_panics_in_section("synchronize with two guards", || handle.synchronize());
            drop(inner);
            assert_panics_in_section("synchronize with the outer guard", || handle.synchronize());
            drop(outer);
            handle.synchronize();
        },
    );
    within(
        "Domain::synchronize() after the late destructor",
        move || domain.synchronize(),
    );
}

#[test]
fn nested_guards_in_a_late_destructor_keep_the_section() {
    nested_guards_in_a_late_destructor(Domain::new());
}

#[test]
fn global_nested_guards_in_a_late_destructor_keep_the_section() {
    let _serial = global_lock();
    nested_guards_in_a_late_destructor(Domain::global().clone());
}

// ----- guards kept until a late destructor --------------------------------

/// Adds one to its counter when dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Runs [`THREADS`] threads one after another; each retires an object and
/// keeps a `Guard<'static>` of `domain` until its late destructor. Checks
/// that every section ended (a grace period completes, a barrier frees the
/// objects) and returns how many records the domain gained.
fn keep_guards_until_exit(domain: &'static Domain) -> u64 {
    let before = domain.stats().records;
    let freed = Arc::new(AtomicUsize::new(0));
    for _ in 0..THREADS {
        let freed = freed.clone();
        spawn_late(move || {
            let guard = domain.read();
            domain.retire(Box::new(Counted(freed)));
            at_exit(move || drop(guard));
        })
        .join()
        .unwrap();
    }
    within(
        "Domain::synchronize() after the threads exited",
        move || {
            domain.synchronize();
            domain.barrier();
        },
    );
    assert_eq!(
        freed.load(SeqCst),
        THREADS,
        "the barrier must free every object"
    );
    domain.stats().records - before
}

#[test]
fn a_guard_kept_until_a_late_destructor_hands_its_record_back() {
    // In a static, not `Box::leak`ed: Miri's leak checker ignores memory
    // reachable from a static only.
    static DOMAIN: OnceLock<Domain> = OnceLock::new();
    let grown = keep_guards_until_exit(DOMAIN.get_or_init(Domain::new));
    assert!(
        grown <= 3,
        "{THREADS} threads, one after another, each kept a guard until a late destructor: \
         the domain now has {grown} records (a record must be handed back when its last \
         section ends, and reused by the next thread)"
    );
}

#[test]
fn a_global_guard_kept_until_a_late_destructor_hands_its_record_back() {
    // Only this binary's tests share the global domain, and the lock keeps
    // the others' threads (which register too) from running meanwhile.
    let _serial = global_lock();
    let grown = keep_guards_until_exit(Domain::global());
    assert!(
        grown <= 3,
        "{THREADS} threads, one after another, each kept a global guard until a late \
         destructor: the global domain gained {grown} records (a record must be handed back \
         when its last section ends, and reused by the next thread)"
    );
}

/// Two nested guards taken before the registry's destruction and dropped
/// after it, one by one: the registry's record becomes an orphan with two
/// sections open, and must keep the section until the second drop (a
/// grace period cannot complete while the outer guard lives), then be
/// handed back.
#[test]
fn nested_guards_kept_past_the_registry_keep_the_section_until_the_last_drop() {
    static DOMAIN: OnceLock<Domain> = OnceLock::new();
    let domain: &'static Domain = DOMAIN.get_or_init(Domain::new);
    let (tx, rx) = mpsc::channel();
    let handle = spawn_late(move || {
        let outer = domain.read();
        let inner = domain.read();
        at_exit(move || {
            let late = move || {
                drop(inner);
                let cookie = domain.grace_period();
                for _ in 0..100 {
                    assert!(
                        !domain.poll(&cookie),
                        "a grace period completed while the outer guard was alive"
                    );
                }
                assert_panics_in_section("synchronize with the outer guard", || {
                    domain.synchronize()
                });
                drop(outer);
                cookie
            };
            // A panic escaping a thread-local destructor aborts the process.
            let _ = tx.send(catch_unwind(AssertUnwindSafe(late)).map_err(message));
        });
    });
    let cookie = match rx.recv_timeout(LIMIT) {
        Ok(Ok(cookie)) => cookie,
        Ok(Err(panic)) => panic!("the late destructor panicked: {panic}"),
        Err(RecvTimeoutError::Disconnected) => resume_unwind(handle.join().unwrap_err()),
        Err(RecvTimeoutError::Timeout) => panic!("the late destructor did not finish"),
    };
    handle.join().unwrap();
    let records = domain.stats().records;
    within("Domain::wait() after the last guard dropped", move || {
        domain.wait(&cookie);
        // The record was handed back: the next thread reuses it.
        thread::spawn(move || drop(domain.read())).join().unwrap();
        assert_eq!(
            domain.stats().records,
            records,
            "the orphan record was not handed back"
        );
    });
}
