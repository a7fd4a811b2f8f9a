//! Per-thread registration: which record this thread owns in each domain.
//!
//! # Invariants
//!
//! - A thread registers with a domain on first use (no call needed) by
//!   claiming a record, and owns it until the thread exits.
//! - `cached` names the record of the last user-created domain used; its id
//!   is unique for the life of the process, so a stale entry can never match
//!   another domain.
//! - Every registration with a user-created domain holds an `Arc` to the
//!   domain's state, so the record stays valid until this thread hands it
//!   back in its exit destructor, which also hands over the record's bag:
//!   nothing a thread retired waits for that thread after it exits.

use core::cell::{Cell, RefCell};
use core::ptr;

use crate::internal::Inner;
use crate::record::Record;
use crate::sync::Arc;

pub(crate) struct Local {
    /// This thread's record in the global domain, or null.
    #[cfg(not(loom))]
    global: Cell<*const Record>,
    /// Id and record of the user-created domain used last.
    cached_id: Cell<u64>,
    cached: Cell<*const Record>,
    /// Every user-created domain this thread registered with.
    domains: RefCell<Vec<(Arc<Inner>, *const Record)>>,
}

impl Local {
    const fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            global: Cell::new(ptr::null()),
            cached_id: Cell::new(u64::MAX),
            cached: Cell::new(ptr::null()),
            domains: RefCell::new(Vec::new()),
        }
    }

    #[cold]
    fn register(&self, inner: &Arc<Inner>) -> *const Record {
        let mut domains = self.domains.borrow_mut();
        let rec = match domains.iter().find(|(d, _)| d.id == inner.id) {
            Some(&(_, rec)) => rec,
            None => {
                // Drop registrations with domains torn down meanwhile (their
                // records hold nothing), so a long-lived thread that uses many
                // short-lived domains does not keep them all.
                domains.retain(|(d, rec)| {
                    let dead = d.dead.load(core::sync::atomic::Ordering::Relaxed);
                    if dead {
                        // SAFETY: we own `rec` and never use it again.
                        unsafe { d.release(&**rec) };
                    }
                    !dead
                });
                let rec: *const Record = inner.claim();
                domains.push((inner.clone(), rec));
                rec
            }
        };
        self.cached_id.set(inner.id);
        self.cached.set(rec);
        rec
    }

    /// This thread's record in `inner`, if it has one (never registers).
    fn find(&self, inner: &Inner) -> *const Record {
        #[cfg(not(loom))]
        if inner.id == 0 {
            return self.global.get();
        }
        if self.cached_id.get() == inner.id {
            return self.cached.get();
        }
        let domains = self.domains.borrow();
        domains
            .iter()
            .find(|(d, _)| d.id == inner.id)
            .map_or(ptr::null(), |&(_, rec)| rec)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        if let Some(rec) = ptr::NonNull::new(self.global.get().cast_mut()) {
            // SAFETY: we own the record and this thread will not use it
            // again through `Local` (a guard still alive keeps it; see
            // `Inner::release`).
            unsafe { crate::domain::GLOBAL_INNER.release(rec.as_ref()) };
        }
        for (inner, rec) in self.domains.get_mut().drain(..) {
            // SAFETY: as above; the Arc keeps the record valid.
            unsafe { inner.release(&*rec) };
        }
    }
}

#[cfg(not(loom))]
std::thread_local! {
    static LOCAL: Local = const { Local::new() };
}
#[cfg(loom)]
loom::thread_local! {
    static LOCAL: Local = Local::new();
}

/// This thread's record in the global domain, registering on first use.
/// `None` while the thread's locals are being destroyed.
#[cfg(not(loom))]
#[inline]
pub(crate) fn global_record() -> Option<&'static Record> {
    LOCAL
        .try_with(|local| {
            let rec = local.global.get();
            if !rec.is_null() {
                return rec;
            }
            let rec: *const Record = crate::domain::GLOBAL_INNER.claim();
            local.global.set(rec);
            rec
        })
        .ok()
        // SAFETY: global records are never freed.
        .map(|rec| unsafe { &*rec })
}

/// This thread's record in a user-created domain, registering on first use.
/// `None` while the thread's locals are being destroyed.
#[inline]
pub(crate) fn record(inner: &Arc<Inner>) -> Option<&Record> {
    LOCAL
        .try_with(|local| {
            if local.cached_id.get() == inner.id {
                local.cached.get()
            } else {
                local.register(inner)
            }
        })
        .ok()
        // SAFETY: the record lives as long as the domain `inner` borrows.
        .map(|rec| unsafe { &*rec })
}

/// Whether this thread is inside a read section of `inner`.
pub(crate) fn in_section(inner: &Inner) -> bool {
    LOCAL
        .try_with(|local| {
            let rec = local.find(inner);
            // SAFETY: a record found for `inner` lives as long as `inner`.
            !rec.is_null() && unsafe { (*rec).in_section() }
        })
        .unwrap_or(false)
}
