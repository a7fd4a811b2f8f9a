//! Read-copy-update memory reclamation for Rust, with batch-drain retirement,
//! a bounded amount of garbage, and exclusive teardown of owners when no
//! reader can exist.
//!
//! This page is the guide: the ideas, which tool to use when, who runs
//! destructors and when, the contracts of the `unsafe` calls, and how it all
//! maps onto the Linux kernel's RCU. Every type's page has the details.
//!
//! # Concepts
//!
//! - A **domain** ([`Domain`]) is an RCU instance: [`Domain::global`] for the
//!   process, or any number of independent ones from [`Domain::new`] (a long
//!   reader in one never delays another's reclamation).
//! - A **reader** enters a *read-side section* with [`Domain::read`] and
//!   holds the [`Guard`] while it uses shared objects. Entering and leaving
//!   costs a couple of plain stores (no locked instruction, no fence).
//! - A **writer** *unlinks* an object (no new reader can find it) and
//!   *retires* it: the domain frees it after a **grace period**, once every
//!   reader that could have seen it has left its section.
//! - An **owner** ([`User`], [`Holder`]) holds data that readers reach only
//!   through a *user handle*, like an `mm_struct` and its `mm_users`. When
//!   the last user handle drops, no reader can exist (every reference into
//!   the data borrows a user handle, and the borrow checker enforces it),
//!   so the data and everything retired through the owner are freed
//!   directly, with no grace period: the kernel's `exit_mmap`.
//!
//! ```
//! use ownrcu::Domain;
//!
//! let domain = Domain::new();
//! {
//!     let _guard = domain.read(); // readers: cheap, nestable, !Send
//! }
//! domain.retire(Box::new([0_u8; 192])); // one object
//! let mut batch = domain.batch();
//! batch.extend((0..100).map(|i| Box::new(i as u64)));
//! batch.drain(); // a hundred objects, one registration
//! domain.barrier(); // all of them freed when this returns
//! assert_eq!(domain.stats().freed, 101);
//! ```
//!
//! # Which tool when
//!
//! | you have | use | costs |
//! | --- | --- | --- |
//! | one object unlinked now and then | [`Domain::retire`] (a `Box`), [`Domain::defer`] (a closure) | a push into a per-thread buffer |
//! | many objects unlinked by one operation (an unmap, a rebuild) | [`Batch`]: push them, [`Batch::drain`] once | one grace-period registration for all |
//! | a lock-free structure of your own | [`Atomic`] (`load` under a guard, `swap`/`compare_exchange` hand back a [`Detached`] that retires only into the right domain) | one extra word per pointer unless [`GlobalDomain`] or [`UncheckedDomain`] |
//! | nodes linked from several places, or allocated by hand (a skip list's towers) | [`Link`] (owns nothing; 8 bytes), [`Shared::from_ptr`], [`Domain::retire_with`] with the structure's deleter | no allocation per retirement |
//! | a long iteration | [`Guard::repin`] every so many steps | one section end and start |
//! | a read held across `.await` (an async task that may change threads) | [`Domain::read_owned`] → [`OwnedGuard`] (`Send`), lending [`OwnedGuard::guard`] to loads | a record claimed for the section, a full fence and a domain handle: some twenty times a [`Guard`] |
//! | data that readers reach through a handle, with objects replaced one by one | an owner ([`User`]) holding [`Slot`]s | retirement through the owner ([`Unlinked`]) |
//! | an owner's data read across `.await` | [`User::read_owned`] → [`OwnedRead`] (`Send`, holds a user handle): [`Slot::load`] and [`Array::load`] take it as they take a [`Read`] ([`OwnerSection`]) | an owned section and a user-handle clone |
//! | an ordered index of objects (an address space's VMAs) | an [`Array`] in an owner: readers search the published slice, one writer commits an edited copy | one registration per commit ([`Removed::retire`]) |
//! | the last user of an owner going away (process exit) | drop the last [`User`]: everything is freed directly | no grace period at all |
//! | the only user, wanting the garbage gone now | [`User::exclusive`], then [`Exclusive::free_pending`] | no grace period |
//! | readers that may stay in a section for good (a frozen thread, a task that never resumes), with garbage that must stay bounded anyway | a [robust](DomainBuilder::robust) domain: [`Domain::birth`] before publishing, `unsafe` [`Domain::retire_born`] | every `Link`/`Atomic` load also compares the era ([readers that never leave](#readers-that-never-leave)) |
//!
//! A single retirement:
//!
//! ```
//! use std::sync::atomic::{AtomicPtr, Ordering};
//! use ownrcu::Domain;
//!
//! let domain = Domain::global();
//! let shared = AtomicPtr::new(Box::into_raw(Box::new(1_u64)));
//! let old = shared.swap(Box::into_raw(Box::new(2)), Ordering::AcqRel); // unlink
//! // SAFETY: from `Box::into_raw`, unreachable for new readers, and read
//! // only under guards of the global domain.
//! unsafe { domain.retire_raw(old) };
//! # let last = shared.load(Ordering::Relaxed);
//! # unsafe { domain.retire_raw(last) };
//! ```
//!
//! A batch:
//!
//! ```
//! let domain = ownrcu::Domain::new();
//! let unlinked: Vec<Box<[u8; 64]>> = (0..1000).map(|_| Box::new([0; 64])).collect();
//! ownrcu::Batch::from_vec(&domain, unlinked).drain(); // one registration
//! ```
//!
//! A lock-free pointer ([`Atomic`]; see `examples/stack.rs`, `queue.rs` and
//! `map.rs` for whole structures):
//!
//! ```
//! use ownrcu::{Atomic, Domain, Owned};
//!
//! let domain = Domain::new();
//! let config = Atomic::new(String::from("v1"));
//! let guard = domain.read();
//! assert_eq!(*config.load(&guard), "v1");
//! let old = config.swap(Owned::new(String::from("v2")), &guard);
//! old.unwrap().retire(); // only into `domain`, whose readers may see it
//! assert_eq!(*config.load(&guard), "v2");
//! ```
//!
//! An owner with a slot, and its teardown:
//!
//! ```
//! use ownrcu::{Domain, Slot, User};
//!
//! let domain = Domain::new();
//! let mm = User::new(&domain, Slot::new(Box::new(1_u32)));
//! {
//!     let read = mm.read(); // borrows `mm`
//!     assert_eq!(*read.load(&read).unwrap(), 1);
//! }
//! mm.replace(Some(Box::new(2)), &mm).unwrap().retire(); // through the owner
//! drop(mm); // the last user: everything freed directly
//! ```
//!
//! An owner batch and an array are shown on [`OwnerBatch`] and [`Array`];
//! `examples/vma` builds a miniature address space with all of them.
//!
//! # Who runs destructors, and when
//!
//! - **Retiring threads**, a bounded amount: a retirement that fills its
//!   thread's buffer, a batch drain and a retirement through an owner each
//!   free at most 1024 objects whose grace period is over (none while the
//!   thread is unwinding). Buffers adapt to the thread's rate (8 to 128
//!   objects, about 100 µs of retirements; 128 in a lazy or crowded
//!   domain).
//! - **Pacing**: once work waits, a grace period starts as soon as the time
//!   since the last one started is 80 times what starting one costs (one
//!   process-wide barrier: 0.2 µs alone, 1–20 µs with other threads
//!   running, and about half as much again for every processor it
//!   interrupts; a plain fence while the domain's other threads stay out
//!   of their sections, see [How the read side stays
//!   cheap](#how-the-read-side-stays-cheap)), or 40 times once 64 objects
//!   wait (never more often than every 10 µs), so garbage waits tens
//!   or hundreds of microseconds, not thousands of objects. **The start floor**: neither
//!   pacing nor the thresholds start one sooner than four recent
//!   grace-period latencies after the last start (at most 1 ms, and at
//!   most 40 times what a start costs, so a thread alone is not held
//!   back): when readers are preempted inside their sections, grace
//!   periods take long, and starting the next as soon as one completes
//!   would interrupt every processor with a fence for little. Requests
//!   (`synchronize`, `barrier`, `collect`, a retirement past the bound,
//!   the reclaimer) start one at once.
//!   [`DomainBuilder::lazy`] trades memory for fewer grace periods.
//! - **Crowding**: while more threads retire into a domain than the
//!   process has processors (threads whose buffer filled within the last
//!   20 ms), it does not pace: a grace period starts once 1024 objects (or
//!   32 buffers and batches) wait and the start floor has passed, and every
//!   thread buffers 128 single retirements; retirements do not wait at the
//!   soft bound (the bound still holds). Threads then share processors,
//!   and a reader preempted inside its section holds each grace period up
//!   for a scheduler slice: paced starts would only interrupt the running
//!   threads with fences for grace periods that cannot complete sooner,
//!   buffers sized to 100 µs of wall-clock time would shrink to a few
//!   objects, each registration taking the domain's lock, and soft waits
//!   would ration every writer by the scheduler's slices.
//!   [`Stats::crowded_registrations`] counts the registrations made
//!   meanwhile.
//! - **The soft bound** ([`DomainBuilder::soft_max_pending`], 256 by
//!   default, per domain and per owner): a retirement past it that finds
//!   nothing to free, because a reader holds up the grace period of the
//!   oldest pending objects, waits for that grace period for at most
//!   [`DomainBuilder::soft_max_wait`] (1 ms), then frees; so a reader
//!   descheduled inside its section does not let a writer pile up
//!   thousands of objects meanwhile. A writer inside a read section waits
//!   too, for a grace period older than its section only (which does not
//!   wait for it), as lock-free structures retire inside their sections.
//! - **The bound** ([`DomainBuilder::max_pending`], 8192 by default, per
//!   domain and per owner): a retirement past it starts a grace period now,
//!   frees inline, and waits for the grace period for at most
//!   [`DomainBuilder::max_wait`] (10 ms); a writer never blocks behind a
//!   stalled reader for more than that, once per stall (and one
//!   `soft_max_wait` per doubling of the pending objects at the soft
//!   bound).
//! - **The time bound and the [`Reclaimer`]**: one process-wide thread,
//!   started by the first retirement, gives work that has waited
//!   [`DomainBuilder::time_bound`] (100 ms) its grace period and frees it,
//!   so a writer that retires and goes idle leaves nothing behind for long.
//!   Off per domain ([`DomainBuilder::reclaimer`]) or for the process
//!   ([`Reclaimer::disable`]).
//! - **Hurry** ([`Domain::hurry`], [`Domain::retire_hurry`],
//!   [`Batch::drain_hurry`], [`Unlinked::retire_hurry`],
//!   [`OwnerBatch::drain_hurry`]): the grace period starts now.
//! - **[`Domain::collect`]**: frees what is ready now, without blocking.
//! - **[`Domain::barrier`]**: everything retired before the call is freed
//!   when it returns; [`User::barrier`] for an owner.
//! - **Teardowns**: a user-created domain's last handle, an owner's last
//!   user: everything left, directly, wherever it drops (also inside a
//!   destructor, the domain's own included, and on the reclaimer).
//! - [`DomainBuilder::retiring_threads_free`]`(false)` keeps destructors
//!   off retiring threads (real-time producers): the reclaimer, or the
//!   thread you call `collect` on, runs them.
//!
//! Guards never run destructors. Destructors of one domain run one thread
//! at a time. A panicking destructor never leaks or double-frees the
//! others; `barrier` and teardowns resume the first panic at the end.
//!
//! **What a destructor may call.** A retired object's destructor (or a
//! deferred closure, or a custom deleter) runs wherever its domain frees:
//! on a retiring thread, in `collect`, `barrier` or a teardown, or on the
//! reclaimer. From there it may, in its own domain or any other:
//!
//! - retire, drain batches and retire through owners, past both bounds
//!   (it never waits there: it goes past and is counted);
//! - `read`, `collect`, `hurry`, `synchronize`, `grace_period`, `poll` and
//!   `wait` (a grace period waits for readers only, never for destructors);
//! - drop any handle, the last one included: that domain or owner is torn
//!   down right there (inside the domain's own destructors, the run that
//!   called them finishes the teardown).
//!
//! It must not call `barrier` ([`Domain::barrier`], [`User::barrier`]) of
//! any domain or owner: that panics, always, with a message (the kernel
//! forbids `rcu_barrier()` in a callback for the same reason: a barrier
//! waits for the frees running on other threads, and one of them may be
//! waiting for this one). The panic is a panic of the destructor: it comes
//! out where that run's panics do.
//!
//! # The `unsafe` calls and their contracts
//!
//! | call | the caller promises |
//! | --- | --- |
//! | [`Domain::retire_raw`], [`Batch::push_raw`] | the pointer came from `Box::<T>::into_raw` and is retired once; it is unlinked (no reader entering from now on can reach it); every reader that may still hold it got it under a guard of *this* domain |
//! | [`Atomic::compare_exchange_unlink`] | every other pointer to the new object (the removed node's `next`) is never used to detach, take or drop it again (kept in `ManuallyDrop`, never successfully exchanged); the removed object is unlinked |
//! | [`Atomic::compare_exchange_alias`] | this pointer never owns (kept in `ManuallyDrop`, changed only by this call); the object it points to stays linked from its owning pointer while this one points to it |
//! | [`Domain::retire_with`], [`Batch::push_with`] | the deleter may free the object once, on any thread, after a grace period; it is retired once, unlinked, and read only under guards of this domain |
//! | [`Domain::retire_with_unchecked`] | as `retire_with`, and what the deleter touches may go to another thread and lives until it runs (no `Send + 'static` bounds) |
//! | [`Link::null`] (making a link) | every object the link points to is freed only after it is unlinked from it, and retired into the one domain whose guards the link is used with |
//! | [`Atomic::null_unchecked`], [`Atomic::from_owned_unchecked`] | only guards of one domain are ever used with the pointer |
//! | [`Shared::from_ptr`] | the pointer is null or points to an object valid for the `Shared`'s lifetime, as a loaded one would be |
//! | [`Domain::retire_born`] | as `retire_with_unchecked`, and the birth was read from this domain before the object was published, and readers reach it only through `Link`/`Atomic` loads and exchanges of their section |
//!
//! Everything else is safe: retiring a [`Detached`], an [`Unlinked`] or a
//! batch, owner teardown, and every misuse the types cannot rule out panics
//! with a message (waiting inside a read section of the same domain, a
//! pointer or slot used with another domain or owner, a cookie of another
//! domain). `mem::forget` of any guard-like value is never undefined
//! behaviour; each type's docs say what it leaks.
//!
//! # Coming from crossbeam-epoch
//!
//! Every crossbeam-epoch construct and its counterpart here. Orderings are
//! never a parameter: loads are `Acquire`, writes `AcqRel`/`Release`, since
//! the safety of a dereference depends on them.
//!
//! | crossbeam-epoch | ownrcu | what is safer or different |
//! | --- | --- | --- |
//! | `epoch::pin()` | [`Domain::global`]`().read()` | no fence and no locked instruction; sections nest |
//! | `Guard` | [`Guard`] | never runs destructors; `!Send` (a section is its thread's; [`OwnedGuard`] is the `Send` one, as seize's `enter_owned`) |
//! | `Collector::new()` | [`Domain::new`] | dropping the last handle frees everything left directly (no reader can exist: every guard borrows a handle) |
//! | `Collector::register()` → `LocalHandle`, `handle.pin()` | nothing to register: [`Domain::read`] | a thread registers on its first use; the lookup is one thread-local read |
//! | `guard.collector() == Some(&collector)` | `guard.domain() == &domain` ([`Guard::domain`], `Domain: PartialEq`) | |
//! | `Atomic<T>` | [`Atomic<T>`](Atomic) (owns its object, like crossbeam's) or [`Link<T>`](Link) (owns nothing) | `Atomic` checks its domain on each use (16 bytes), or not: [`GlobalDomain`], [`UncheckedDomain`] (8 bytes); `Link` is 8 bytes, its creator promises who frees ([`Link::null`]) |
//! | `Atomic::load(ord, &guard)` | [`Atomic::load`]`(&guard)`, [`Link::load`] | the `Shared` also borrows the `Atomic` (whose drop frees the object) |
//! | `Atomic::store(new, ord)` | [`Atomic::store`] (retires what it replaces), [`Link::store`] | |
//! | `swap`, `compare_exchange(_weak)` | the same names on [`Atomic`] (the replaced object comes back [`Detached`], retired safely into the right domain) and on [`Link`] (a [`Shared`]) | a failed exchange gives the new value back ([`CompareExchangeError`]) |
//! | `fetch_or`, `fetch_and`, `fetch_xor` | the same names on [`Atomic`] and [`Link`] | |
//! | `Owned<T>` | [`Owned<T>`](Owned): `new`, `with_tag`, `into_box`, [`Owned::into_shared`] | |
//! | `Shared<'g, T>` | [`Shared<'g, T>`](Shared) | `Deref` and [`Shared::as_ref`] are safe; `as_raw()` is [`Shared::as_ptr`]; `Shared::from(*const T)` is `unsafe` [`Shared::from_ptr`] (a `Shared` can be dereferenced); [`Shared::tagged_ptr`] keeps the tag |
//! | `shared.into_owned()` | exclusive access: [`Atomic::into_inner`], [`Atomic::get_mut`], [`Link::get_mut`]; or a [`Detached`] | no `unsafe` for an `Atomic` |
//! | `guard.defer_destroy(shared)` | [`Detached::retire`] (safe), or `unsafe` [`Domain::retire_raw`] for a `Box` | the `Detached` can only be retired into the domain its readers used |
//! | `guard.defer_unchecked(move \|\| free(ptr))` | `unsafe` [`Domain::retire_with_unchecked`]`(ptr, free)` ([`Domain::retire_with`] with `T: Send + 'static`), or [`Batch::push_with`] | a pointer and a function, stored inline: no allocation per object |
//! | `guard.defer(f)` | [`Domain::defer`]`(f)` | boxed |
//! | `guard.repin()`, `guard.repin_after(f)` | [`Guard::repin`], [`Guard::repin_after`] | `repin` says whether it renewed the section (not while nested guards keep it open) |
//! | `guard.flush()` | [`Domain::hurry`] (start the grace period now), [`Domain::collect`] (free what is ready) | [`Domain::barrier`] waits until everything retired before it is freed |
//! | `epoch::unprotected()` | no such guard: exclusive access (`&mut`, ownership) reads pointers without one ([`Atomic::get_mut`], [`Atomic::into_inner`], [`Link::get_mut`]); [`Atomic::peek`] and [`Link::peek`] test null and tags without a guard and yield no reference | |
//! | a `Collector` shared by structures, one dropped while another's guard lives | owners ([`User`]) and domains free directly only when no reader can exist | |
//!
//! # Readers that never leave
//!
//! A grace period waits for every reader that was in a section when it
//! started, so one reader that stays holds everything retired after it
//! entered, here as in crossbeam-epoch, seize and the kernel's RCU. A
//! [robust](DomainBuilder::robust) domain (its doc states exactly what a
//! stuck reader holds) bounds that garbage the way interval-based schemes
//! do, at a price on each load:
//!
//! | scheme | a reader publishes | an object carries | freed when |
//! | --- | --- | --- | --- |
//! | IBR (2GE) | its interval of eras: at entry, and at each protected load whose era moved | its birth era, in the object | no interval intersects [birth, retirement] |
//! | Hyaline-S | its slot's era at each protected load | its birth era | the readers handed the batch (only those whose era reaches its oldest birth) have all left |
//! | Crystalline | as Hyaline-S, wait-free (bounded re-publications per load) | a header with its birth era | as Hyaline-S |
//! | ownrcu, robust | its entry era (as any section) and, at each `Link`/`Atomic` load whose era moved, the newest era it may hold | nothing: the birth is given back at retirement ([`Domain::retire_born`]) | its grace period completes, or a scan (a fence at each registration; a barrier past the soft bound) finds its unit's oldest birth younger than the era of every thread that may hold it |
//!
//! The eras count the grace periods started, so sections need nothing new on
//! entry or exit, and births cost one load ([`Domain::birth`]). Units (a
//! thread's buffer, a batch) keep one birth for all their objects, so
//! freeing early is one scan per unit, not per object. Objects retired
//! without a birth keep the ordinary guarantee, so raw pointers, owners
//! and the safe [`Atomic`]'s `Detached` need nothing new. The pointer types
//! say whether their domain may be robust (`Link<T, true>`,
//! `UncheckedDomain<true>`; [`Atomic<T>`] always may), so that structures
//! in other domains pay nothing for the mode ([`DomainBuilder::robust`]).
//!
//! # The kernel mapping
//!
//! | kernel | ownrcu |
//! | --- | --- |
//! | `rcu_read_lock()` / `rcu_read_unlock()` | [`Domain::read`] → [`Guard`], dropped |
//! | `srcu_read_lock()` / `srcu_read_unlock()` (readers that may sleep) | [`Domain::read_owned`] → [`OwnedGuard`], dropped |
//! | `rcu_dereference()` / `rcu_assign_pointer()` | [`Atomic::load`], [`Link::load`] / [`Atomic::store`], [`Atomic::swap`], [`Link::store`] |
//! | `call_rcu()`, `kfree_rcu()` | [`Domain::retire`], [`Domain::retire_raw`], [`Domain::retire_with`] (a callback of your own), [`Domain::defer`], [`Detached::retire`] |
//! | `kfree_rcu()`'s bulk pages of pointers, the slab sheaves that batch frees | [`Batch`] (one registration), the per-thread buffers of single retirements |
//! | `call_rcu_hurry()` | [`Domain::retire_hurry`], [`Batch::drain_hurry`], [`Domain::hurry`] |
//! | lazy RCU (`CONFIG_RCU_LAZY`), `kfree_rcu`'s drain monitor | [`DomainBuilder::lazy`], the time bound and the [`Reclaimer`] |
//! | `rcu_barrier()` | [`Domain::barrier`], [`User::barrier`] |
//! | `synchronize_rcu()` | [`Domain::synchronize`] |
//! | `get_state_synchronize_rcu()` / `poll_state_synchronize_rcu()` / `cond_synchronize_rcu()` | [`Domain::grace_period`] → [`GracePeriod`], [`Domain::poll`], [`Domain::wait`] |
//! | `mmget()` / `mmput()` (`mm_users`) | [`User`] clone / drop |
//! | `mmgrab()` / `mmdrop()` (`mm_count`) | [`Holder`] |
//! | `mmget_not_zero()` | [`Holder::upgrade`] |
//! | `exit_mmap()` freeing VMAs without a grace period | the last [`User`]'s drop; [`Exclusive::free_pending`] |
//! | the VMA tree (maple tree) read under RCU | [`Array`] |
//! | RCU CPU stall warnings (`rcupdate.rcu_cpu_stall_timeout`) | [`DomainBuilder::stall_timeout`], [`DomainBuilder::on_stall`] → [`Stall`], [`Stats::stalls`] |
//!
//! # How the read side stays cheap
//!
//! A reader publishes "I am in a section since epoch *e*" with a plain store
//! and a compiler fence. Grace periods pay instead: each one issues a single
//! process-wide `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` on Linux,
//! which forces a full barrier on every CPU running one of our threads. A
//! grace period skips even that while no other thread of the domain has
//! entered a read section since the domain's last two barriers: those
//! threads are marked, and a marked thread's next section entry runs a
//! full fence itself (once per grace period at most), so a writer whose
//! readers are idle interrupts nobody. Where the barrier is dear (it
//! interrupts other processors) and grace periods are wanted more often
//! than it allows, a start switches a busy thread to fencing its every
//! section entry itself, as crossbeam-epoch's readers do, and later
//! starts skip the barrier for it too; the thread switches back when its
//! fences cost more than they save ([`Stats::fencing_mode_entered`] counts
//! the switches; `OWNRCU_FORCE_FENCING_MODE=1` at start-up makes every
//! barrier count as dear, to test the mode on any machine). Where
//! membarrier is missing, under
//! Miri and loom, or when the environment variable `OWNRCU_NO_MEMBARRIER=1`
//! is set at start-up, both sides use an ordinary `fence(SeqCst)` instead
//! ([`uses_membarrier`]).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// The crate in two layers (see each folder's `mod.rs`): `rcu`, the RCU
// core (domains and their grace-period machine), and `owner`, owners built
// on it, which use the core only through `rcu::for_owners`. The pointer
// types stay at the top, apart from both: `shared` (the loaded pointer and
// the tag arithmetic), `atomic` (the owning pointer) and `link` (the
// non-owning one) are clients of the public API only (`Domain`, `Guard`,
// `Batch`, and `crate::sync`), like a user's crate, so they belong to
// neither layer. `sync` is the loom shim that every layer imports.
mod atomic;
mod link;
mod owner;
mod rcu;
mod shared;
mod sync;

pub use atomic::{
    AnyDomain, Atomic, CompareExchangeError, Detached, DomainBinding, GlobalDomain, Owned,
    UncheckedDomain,
};
pub use link::Link;
pub use owner::array::{Array, ArrayWriter, Removed};
pub use owner::handle::{Exclusive, Holder, OwnedRead, OwnerSection, Read, User};
pub use owner::slot::Slot;
pub use owner::unlinked::{OwnerBatch, Unlinked};
pub use rcu::batch::Batch;
pub use rcu::config::{
    DomainBuilder, DEFAULT_MAX_PENDING, DEFAULT_SOFT_MAX_PENDING, DEFAULT_STALL_TIMEOUT,
    DEFAULT_TIME_BOUND,
};
/// One reclaimer visit, public in loom builds only, for
/// `tests/loom/reclaimer.rs`.
#[cfg(loom)]
#[doc(hidden)]
pub use rcu::domain::ReclaimerVisit;
pub use rcu::domain::{Domain, GracePeriod};
pub use rcu::fence::uses_membarrier;
/// A record's fence mark and mode policy, public in loom builds only, for
/// `tests/loom/fence_due.rs`.
#[cfg(loom)]
#[doc(hidden)]
pub use rcu::fence::{FenceDue, FencePolicy};
pub use rcu::guard::Guard;
pub use rcu::owned::OwnedGuard;
pub use rcu::reclaimer::Reclaimer;
/// The reclaimer's wake-up protocol, public in loom builds only, for
/// `tests/loom/reclaimer.rs`.
#[cfg(loom)]
#[doc(hidden)]
pub use rcu::reclaimer::{Doorbell, Sleeper};
pub use rcu::robust::Birth;
pub use rcu::stall::Stall;
pub use rcu::stats::{FreedBy, Latency, OwnerStats, Stats, Throttle};
pub use shared::Shared;
