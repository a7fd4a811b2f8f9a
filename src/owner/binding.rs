//! [`Binding`]: which owner a [`Slot`](crate::Slot) or an
//! [`Array`](crate::Array) belongs to.
//!
//! # Invariants
//!
//! - A binding is null until the first owner that reads or writes its
//!   container through a handle binds it, with a single CAS from null; it
//!   never changes afterwards. Every thread agrees on that one value, so
//!   using the container through any other owner panics, on every thread.

use core::ptr;
use core::sync::atomic::Ordering::Relaxed;

use crate::owner::pending::Pending;
use crate::sync::AtomicPtr;

/// The owner a [`Slot`](crate::Slot) or an [`Array`](crate::Array) belongs to: the first
/// owner that reads or writes it through a handle.
pub(crate) struct Binding(AtomicPtr<Pending>);

impl Binding {
    pub(crate) fn new() -> Self {
        Self(AtomicPtr::new(ptr::null_mut()))
    }

    /// Binds to `owner`, or checks that it is bound to it.
    ///
    /// # Panics
    ///
    /// If it is bound to another owner.
    #[inline]
    pub(crate) fn bind(&self, owner: &Pending) {
        let me = owner as *const Pending as *mut Pending;
        // Relaxed: the binding orders nothing; it only has to be one value
        // that every thread agrees on, which the single CAS from null gives.
        let bound = self.0.load(Relaxed);
        if bound != me {
            self.bind_slow(me, bound);
        }
    }

    #[cold]
    fn bind_slow(&self, me: *mut Pending, bound: *mut Pending) {
        let bound = if bound.is_null() {
            match self
                .0
                .compare_exchange(ptr::null_mut(), me, Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(now) => now,
            }
        } else {
            bound
        };
        assert!(
            bound == me,
            "ownrcu: a Slot or Array was used through an owner it does not belong to; it \
             belongs to the first owner that reads or writes it"
        );
    }
}
