//! Model-based randomized test of the public API.
//!
//! Random sequences of operations run against a small *reference model* that
//! knows, for every object, whether it must still be alive or must already
//! have been freed, and checks the crate against it after every operation.
//!
//! # Objects
//!
//! Every object ([`Obj`]) has an id and a `magic` word that is `LIVE ^ id`
//! while it is alive; its destructor overwrites it with `POISON` and bumps the
//! object's drop count in a shared [`Table`] (a `u8` per id), flagging a second
//! drop or a drop of a poisoned object as an anomaly. A reader that holds a
//! reference checks the magic when it uses it (under Miri the use of a freed
//! object is itself reported). At the end of every run, every object ever
//! created must have been dropped exactly once.
//!
//! # What the model asserts
//!
//! Only what the documentation promises:
//!
//! - Safety, at any point: an object that was reachable when a read section
//!   began (published in a domain, or in a slot or array of the owner a
//!   [`ownrcu::Read`] reads) is not freed before that section ends, however it
//!   is retired meanwhile. Each open section records which objects it could
//!   reach; owner sections also hold real references and check their magic.
//! - `Domain::barrier`: everything retired into that domain (retire, defer,
//!   batches, other threads' buffers) before the call is freed when it
//!   returns. `User::barrier`: the same for objects retired through that
//!   owner. `Exclusive::free_pending`: every object still pending on the owner
//!   is freed. `Removed::synchronize`: the removed objects are freed.
//! - The last `User` drop frees everything of its owner (data, objects in
//!   slots and arrays, retired-but-pending objects) before it returns, and
//!   every `Holder::upgrade` fails from then on; while a user (or a read
//!   section's user) is left, upgrades succeed.
//! - Dropping the last handle of a user-created domain frees everything
//!   retired into it.
//! - `synchronize` frees nothing ("It does not free anything") and completes
//!   a grace period; every section running when it was called has ended when
//!   it returns. A cookie is never complete (`poll` false) while a section
//!   that was running when the cookie was taken is still open; after
//!   `wait(cookie)` `poll` is true.
//! - Counters: domain and owner `retired`, domain `batches` and owner
//!   `registrations` match the model exactly; an owner's `pending` is exactly
//!   the number of its retired objects whose destructor has not run.
//!
//! Nothing is asserted about *when* objects are freed otherwise (after
//! `synchronize`, `poll`, amortized reclamation): only that they are not
//! freed too early, and that they are freed by the points above.
//!
//! # Phases
//!
//! - [`single_thread_model`]: one thread, fully deterministic per seed (the
//!   global domain's epoch may differ from run to run; the operations do
//!   not). Read sections nest (the operations inside a section run while its
//!   guard is held), so objects are unlinked, retired and reclaimed around
//!   open sections. A helper thread is sometimes spawned to retire objects
//!   and exit (its buffer must be handed over).
//! - [`multi_thread_model`]: several threads, each with its own RNG derived
//!   from the seed, read and write shared owners and per-domain "boards" of
//!   published objects. The interleaving is not deterministic; cross-thread
//!   checks use shared atomics: a per-thread "open section" word for the
//!   synchronize/cookie checks, and per-domain/per-owner logs of retired ids
//!   (written after a retirement returns) for the barrier checks.
//!
//! # Reproducing a failure
//!
//! Each run uses a seed: a fixed list, plus one derived from the clock
//! (natively). A failure names its seed; rerun just that seed with
//!
//! ```text
//! OWNRCU_MODEL_SEED=0x1234abcd cargo test --test model
//! ```
//!
//! (decimal works too). `OWNRCU_MODEL_VERBOSE=1` prints each seed before
//! it runs, uncaptured, for a run that crashes instead of failing (reading a
//! freed object natively is undefined behaviour; run the seed under Miri).
//! Under Miri the sizes are much smaller.

mod multi;
mod objects;
mod seeds;
mod single;
mod sizes;

use seeds::for_each_seed;
use sizes::{MT_SEEDS, ST_SEEDS};

/// The single-threaded model: deterministic per seed.
#[test]
fn single_thread_model() {
    for_each_seed("single_thread_model", ST_SEEDS, single::run_single_thread);
}

/// The multi-threaded model: threads read and write shared owners and
/// boards; cross-thread guarantees are checked through shared atomics.
#[test]
fn multi_thread_model() {
    for_each_seed("multi_thread_model", MT_SEEDS, multi::run_multi_thread);
}
