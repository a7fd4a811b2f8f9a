//! Per-thread registration: which record this thread owns in each domain.
//!
//! # Invariants
//!
//! - A thread registers with a domain on first use (no call needed) by
//!   claiming a record, and owns it until the thread exits.
//! - The hot path reads two thread-locals without destructors (`GLOBAL`,
//!   `CACHE`), so reaching them costs no liveness check. They hold pointers
//!   only while `REGISTRY` (which has the destructor) still owns the
//!   records; its destructor clears them *before* handing the records back,
//!   so a guard made later on this thread (in another thread-local's
//!   destructor) takes the slow path instead of a record it no longer owns.
//! - `CACHE` names the records of the last `CACHE_WAYS` user-created
//!   domains used (most recently registered first; a hit does not reorder,
//!   so the hot path only reads), keyed by the domain's id, which is unique
//!   for the life of the process, so a stale entry (a domain torn down
//!   since) can never match another domain. A thread that reads a few
//!   domains in turn finds each with a compare or two.
//! - Every registration with a user-created domain holds an `Arc` to the
//!   domain's state, so the record stays valid until this thread hands it
//!   back in its exit destructor, which also hands over the record's bag:
//!   nothing a thread retired waits for that thread after it exits.
//! - A record this thread holds outside `REGISTRY` is an *orphan*, listed
//!   in `ORPHANS` (a thread-local without a destructor, so readable at any
//!   point of the thread's exit) with its domain's id: one claimed for a
//!   single guard made after the registry was destroyed, or the registry's
//!   own record of a domain whose section was still open when the registry
//!   was destroyed (a guard kept in a thread-local destroyed later). It is
//!   released when its last section ends, whatever the order of
//!   destruction, and [`in_section`] sees its sections, so the "inside a
//!   read section" panics hold in thread-local destructors too. An entry is
//!   followed only when its id is that of a domain the caller borrows (so
//!   alive); a leaked guard's entry may outlive its domain, unfollowed.
//! - This module never names the grace-period machine: what it needs of a
//!   domain's state (claim and release a record, its id, whether it was
//!   torn down) is the [`DomainState`] trait, which the machine implements.
//!   The hot paths ([`record`], [`global_record`]) are generic over it, so
//!   a cache hit makes no dynamic call; only the cold paths (registration,
//!   lookup, thread exit) go through `dyn DomainState`.

use core::cell::{Cell, RefCell};
use core::mem::ManuallyDrop;
use core::ptr;

use crate::rcu::record::Record;
use crate::sync::Arc;

/// What this module needs of a domain's state (implemented by the
/// grace-period machine).
pub(crate) trait DomainState: 'static {
    /// Unique among all domains ever created; 0 is the global domain.
    fn id(&self) -> u64;
    /// Whether the domain was torn down.
    fn is_dead(&self) -> bool;
    /// Claims a free record, or adds a new one. The caller owns it until
    /// [`DomainState::release`].
    fn claim(&self) -> &Record;
    /// Hands over a record's bag and, unless a read section of it is still
    /// alive, frees the record for another thread: returns whether it did.
    ///
    /// # Safety
    ///
    /// Called by the record's owner, which will not use it again (except to
    /// end the sections still alive, and then release it).
    unsafe fn release(&self, rec: &Record) -> bool;
}

/// A registration's hold on a user-created domain's state, which keeps the
/// domain's records alive.
#[cfg(not(loom))]
type Hold = Arc<dyn DomainState>;
/// loom's `Arc` cannot be unsized: under loom a box around one.
#[cfg(loom)]
type Hold = Box<dyn DomainState>;

#[cfg(loom)]
impl<D: DomainState> DomainState for Arc<D> {
    fn id(&self) -> u64 {
        (**self).id()
    }
    fn is_dead(&self) -> bool {
        (**self).is_dead()
    }
    fn claim(&self) -> &Record {
        (**self).claim()
    }
    unsafe fn release(&self, rec: &Record) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { (**self).release(rec) }
    }
}

fn hold<D: DomainState>(inner: &Arc<D>) -> Hold {
    #[cfg(not(loom))]
    return inner.clone();
    #[cfg(loom)]
    return Box::new(inner.clone());
}

/// What a thread has registered, and hands back when it exits.
struct Registry {
    /// This thread's record in the global domain, and that domain's state.
    #[cfg(not(loom))]
    global: Cell<(*const Record, Option<&'static dyn DomainState>)>,
    /// Every user-created domain this thread registered with: its id, its
    /// state and this thread's record.
    domains: RefCell<Vec<(u64, Hold, *const Record)>>,
}

const NO_DOMAIN: (u64, *const Record) = (u64::MAX, ptr::null());

/// Entries of `CACHE` (module invariants).
const CACHE_WAYS: usize = 4;

type Cache = [Cell<(u64, *const Record)>; CACHE_WAYS];

/// Makes `rec` the first entry of `cache`, shifting the others down.
fn cache_insert(cache: &Cache, id: u64, rec: *const Record) {
    for i in (1..CACHE_WAYS).rev() {
        cache[i].set(cache[i - 1].get());
    }
    cache[0].set((id, rec));
}

/// Empties `cache`.
fn cache_clear(cache: &Cache) {
    for entry in cache {
        entry.set(NO_DOMAIN);
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static REGISTRY: Registry = const {
        Registry { global: Cell::new((ptr::null(), None)), domains: RefCell::new(Vec::new()) }
    };
    /// This thread's record in the global domain, or null.
    static GLOBAL: Cell<*const Record> = const { Cell::new(ptr::null()) };
    /// Ids and records of the user-created domains used last.
    static CACHE: Cache = const { [const { Cell::new(NO_DOMAIN) }; CACHE_WAYS] };
    /// This thread's orphan records (see the module invariants), or null.
    static ORPHANS: Cell<*mut Orphans> = const { Cell::new(ptr::null_mut()) };
}
#[cfg(loom)]
loom::thread_local! {
    static REGISTRY: Registry = Registry { domains: RefCell::new(Vec::new()) };
    static CACHE: Cache = [const { Cell::new(NO_DOMAIN) }; CACHE_WAYS];
    static ORPHANS: Cell<*mut Orphans> = Cell::new(ptr::null_mut());
}

/// Records held outside the registry, with their domains' ids. Allocated
/// while non-empty only.
type Orphans = Vec<(u64, *const Record)>;

impl Registry {
    #[cold]
    fn register<D: DomainState>(&self, inner: &Arc<D>) -> *const Record {
        let id = inner.id();
        let mut domains = self.domains.borrow_mut();
        let rec = match domains.iter().find(|&&(d, _, _)| d == id) {
            Some(&(_, _, rec)) => rec,
            None => {
                // Drop registrations with domains torn down meanwhile (their
                // records hold nothing), so a long-lived thread that uses many
                // short-lived domains does not keep them all.
                domains.retain(|(_, d, rec)| {
                    let dead = d.is_dead();
                    if dead {
                        // SAFETY: we own `rec` and never use it again (it is
                        // not the cached one: that domain is alive).
                        unsafe { d.release(&**rec) };
                    }
                    !dead
                });
                let rec: &Record = inner.claim();
                #[cfg(not(loom))]
                rec.set_thread();
                let rec: *const Record = rec;
                domains.push((id, hold(inner), rec));
                rec
            }
        };
        CACHE.with(|c| cache_insert(c, id, rec));
        rec
    }

    /// This thread's record in domain `id`, if it has one (never registers;
    /// null also while the list is being changed, by a registration whose
    /// release of a dead domain's record ran into the caller).
    fn find(&self, id: u64) -> *const Record {
        #[cfg(not(loom))]
        if id == 0 {
            return self.global.get().0;
        }
        let Ok(domains) = self.domains.try_borrow() else {
            return ptr::null();
        };
        domains
            .iter()
            .find(|&&(d, _, _)| d == id)
            .map_or(ptr::null(), |&(_, _, rec)| rec)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // A failed loom model unwinds after loom's execution state is gone:
        // touching a loom lock or `Arc` now would panic again and abort the
        // whole test binary. Leak instead.
        #[cfg(loom)]
        if std::thread::panicking() {
            core::mem::forget(core::mem::take(self.domains.get_mut()));
            return;
        }
        // First make the hot path miss (see the module invariants).
        #[cfg(not(loom))]
        GLOBAL.with(|g| g.set(ptr::null()));
        // `try_with`: loom destroys all of a thread's locals together, so
        // `CACHE` may already be gone (and then nothing can read it).
        let _ = CACHE.try_with(cache_clear);
        #[cfg(not(loom))]
        if let (rec, Some(inner)) = self.global.get() {
            if let Some(rec) = ptr::NonNull::new(rec.cast_mut()) {
                // SAFETY: we own the record and this thread will not use it
                // again through the registry; a guard still alive keeps it,
                // as an orphan that guard releases.
                if !unsafe { inner.release(rec.as_ref()) } {
                    // SAFETY: global records are never freed.
                    adopt(inner.id(), unsafe { rec.as_ref() });
                }
            }
        }
        for (id, inner, rec) in self.domains.get_mut().drain(..) {
            // SAFETY: as above; the hold keeps the record valid.
            if !unsafe { inner.release(&*rec) } {
                // SAFETY: a guard of `inner` is alive (its section is open),
                // and it borrows a handle, which keeps `inner` and its
                // records alive until that guard releases the record.
                adopt(id, unsafe { &*rec });
            }
        }
    }
}

/// This thread's record in the global domain, registering on first use.
/// `None` while the thread's locals are being destroyed.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn global_record<D: DomainState>(global: &'static D) -> Option<&'static Record> {
    let rec = GLOBAL.with(Cell::get);
    if rec.is_null() {
        return register_global(global);
    }
    // SAFETY: global records are never freed, and `GLOBAL` is non-null only
    // while this thread owns the record.
    Some(unsafe { &*rec })
}

#[cfg(not(loom))]
#[cold]
fn register_global(global: &'static dyn DomainState) -> Option<&'static Record> {
    REGISTRY
        .try_with(|registry| {
            let rec: &'static Record = global.claim();
            rec.set_thread();
            let rec: *const Record = rec;
            registry.global.set((rec, Some(global)));
            GLOBAL.with(|g| g.set(rec));
            // SAFETY: global records are never freed.
            unsafe { &*rec }
        })
        .ok()
}

/// This thread's record in the user-created domain `id`, registering on
/// first use with the domain's state that `inner` gives (called only then,
/// so the fast path builds nothing); null while the thread's locals are
/// being destroyed. The record lives as long as the domain.
#[inline(always)]
pub(crate) fn record<D: DomainState>(
    id: u64,
    inner: impl FnOnce() -> ManuallyDrop<Arc<D>>,
) -> *const Record {
    let rec = CACHE.with(|cache| {
        // Unrolled by the compiler: a compare per entry, in order.
        for entry in cache {
            let (cached_id, rec) = entry.get();
            if cached_id == id {
                return rec;
            }
        }
        ptr::null()
    });
    if rec.is_null() {
        return register(&inner());
    }
    // `CACHE` holds a record of domain `id` only while this thread owns it.
    rec
}

#[cold]
fn register<D: DomainState>(inner: &Arc<D>) -> *const Record {
    REGISTRY
        .try_with(|registry| registry.register(inner))
        .unwrap_or(ptr::null())
}

/// This thread's registered record in domain `id`, or null if it has none
/// (or its locals are being destroyed). Never registers.
pub(crate) fn own_record(id: u64) -> *const Record {
    REGISTRY
        .try_with(|registry| registry.find(id))
        .unwrap_or(ptr::null())
}

/// Whether this thread is inside a read section of domain `id`, which the
/// caller borrows.
pub(crate) fn in_section(id: u64) -> bool {
    section_epoch(id).is_some()
}

/// Whether this thread is inside a read section of any domain through the
/// records it registered (a guard made during the thread's exit, on an
/// orphan record, is not seen: a caller may only wait a bounded time then).
pub(crate) fn in_any_section() -> bool {
    REGISTRY
        .try_with(|registry| {
            #[cfg(not(loom))]
            {
                let global = registry.global.get().0;
                // SAFETY: the global domain's records are never freed.
                if !global.is_null() && unsafe { (*global).section_epoch() }.is_some() {
                    return true;
                }
            }
            let domains = registry.domains.borrow();
            domains.iter().any(|&(_, _, rec)| {
                // SAFETY: the registry holds each domain it lists (its
                // `Hold`), so the domain and its records are alive.
                unsafe { (*rec).section_epoch() }.is_some()
            })
        })
        .unwrap_or(false)
}

/// If this thread is inside a read section of domain `id` (which the caller
/// borrows), the epoch its oldest open section read on entry: the thread
/// holds up every grace period after that one, and none up to it.
pub(crate) fn section_epoch(id: u64) -> Option<u64> {
    let registered = REGISTRY
        .try_with(|registry| {
            let rec = registry.find(id);
            // SAFETY: a record found for domain `id` lives as long as that
            // domain, which the caller borrows.
            (!rec.is_null()).then(|| unsafe { (*rec).section_epoch() })?
        })
        .ok()
        .flatten();
    registered
        .into_iter()
        .chain(orphans_section_epoch(id))
        .min()
}

/// The oldest section epoch among this thread's orphan records in domain
/// `inner` (borrowed by the caller), if any of them is in a section.
fn orphans_section_epoch(inner: u64) -> Option<u64> {
    ORPHANS
        .try_with(|orphans| {
            let list = orphans.get();
            // SAFETY: this thread's list; nothing else borrows it now.
            let list = unsafe { list.as_ref() }?;
            list.iter()
                .filter(|&&(id, _)| id == inner)
                // SAFETY: the record is of domain `id`, which is `inner`,
                // which the caller borrows: alive, and so are its records.
                .filter_map(|&(_, rec)| unsafe { (*rec).section_epoch() })
                .min()
        })
        .ok()
        .flatten()
}

/// A record of `inner` for one guard, on a thread whose registry is gone
/// (or being destroyed): an orphan until that guard's drop releases it
/// ([`release_temporary`]).
#[cold]
pub(crate) fn temporary_record<D: DomainState>(inner: &D) -> &Record {
    let rec = inner.claim();
    adopt(inner.id(), rec);
    rec
}

/// Lists `rec`, a record of domain `id` that this thread owns outside its
/// registry, as an orphan, to be released when its last section ends.
#[cold]
fn adopt(id: u64, rec: &Record) {
    rec.set_temporary(true);
    // Under loom the list may be destroyed already; then `in_section`
    // cannot see this record (`std` never destroys it).
    let _ = ORPHANS.try_with(|orphans| {
        let mut list = orphans.get();
        if list.is_null() {
            list = Box::into_raw(Box::default());
            orphans.set(list);
        }
        // SAFETY: this thread's list, allocated above or earlier by this
        // thread; nothing else borrows it now.
        unsafe { (*list).push((id, rec)) };
    });
}

/// Releases an orphan record whose last section has just ended.
///
/// # Safety
///
/// `rec` is a record of `inner` that this thread owns as an orphan, and no
/// section of it is alive.
#[cold]
pub(crate) unsafe fn release_temporary<D: DomainState>(inner: &D, rec: &Record) {
    let _ = ORPHANS.try_with(|orphans| {
        let list = orphans.get();
        if list.is_null() {
            return;
        }
        // SAFETY: this thread's list; nothing else borrows it now.
        let entries = unsafe { &mut *list };
        // By id too: a leaked guard's entry may name a freed record whose
        // address a record of another domain now has.
        let domain = inner.id();
        let mine = |&(id, r): &(u64, *const Record)| id == domain && ptr::eq(r, rec);
        if let Some(at) = entries.iter().position(mine) {
            entries.swap_remove(at);
        }
        if entries.is_empty() {
            orphans.set(ptr::null_mut());
            // SAFETY: allocated by `adopt` with `Box::into_raw`; unlisted.
            drop(unsafe { Box::from_raw(list) });
        }
    });
    // SAFETY: forwarded: ours, with no section alive, so it is released.
    let released = unsafe { inner.release(rec) };
    debug_assert!(
        released,
        "ownrcu: released an orphan record still in a section"
    );
}
