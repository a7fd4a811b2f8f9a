//! Owners: data reached by readers only through a user handle, torn down
//! directly when the last user handle goes (the kernel's `mm_struct`,
//! `mm_users` and `mm_count`).
//!
//! # Invariants
//!
//! - `users` counts [`User`] handles. Only a user handle gives access to the
//!   owner's data, and every reference into the data (a [`Read`], an
//!   [`Exclusive`]) borrows one, or is borrowed from an [`OwnedRead`],
//!   which holds one. So when `users` reaches zero no reference
//!   into the data can exist on any thread, and none can be made again: an
//!   upgrade from a [`Holder`] only succeeds from a non-zero count.
//! - `holders` counts [`Holder`] handles, plus one for all users together
//!   (like `mm_count`). The shared allocation is freed when it reaches zero;
//!   the data itself is dropped earlier, by the last user.
//! - `users` holds the count of user handles times [`ONE_USER`], plus the
//!   [`EXCLUSIVE`] bit while an [`Exclusive`] may be alive. Counting never
//!   touches the bit (it moves in steps of two and aborts long before it
//!   could wrap), and the bit never changes the count. While the bit is set
//!   the count is 1: its handle is the only user, an upgrade waits, and no
//!   clone can be made (the `Exclusive` borrows that handle mutably). So a
//!   user handle that finds the bit set through a shared borrow knows the
//!   `Exclusive` was leaked (`mem::forget`) and may clear it.

use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crossbeam_utils::Backoff;

use crate::owner::pending::Pending;
use crate::owner::unlinked::OwnerBatch;
use crate::rcu::for_owners::OwnerStats;
use crate::sync::{AtomicUsize, UnsafeCell};
use crate::{Domain, Guard, OwnedGuard};

/// One user handle in `users` (the low bit is [`EXCLUSIVE`]).
const ONE_USER: usize = 2;
/// The bit of `users` set by [`User::exclusive`].
const EXCLUSIVE: usize = 1;

/// The number of user handles in a `users` value.
fn user_count(users: usize) -> usize {
    users / ONE_USER
}

/// The allocation every handle of one owner points to.
struct Shared<D> {
    /// User handles times `ONE_USER`, plus the `EXCLUSIVE` bit.
    users: AtomicUsize,
    holders: AtomicUsize,
    /// The domain, and the objects retired through this owner.
    pending: Pending,
    data: UnsafeCell<ManuallyDrop<D>>,
}

/// A user handle on an owner: the `mm_users` reference (`mmget`/`mmput`).
///
/// Only a user handle gives access to the owner's data, through a read guard
/// ([`User::read`]) or, for the only user, exclusive access
/// ([`User::exclusive`]). Cloning it adds a user. When the last user handle
/// drops, the owner's data is dropped right there, directly: no reader can
/// exist, because every reference into the data borrows a user handle. So
/// are the objects retired through the owner that still wait, with one
/// exception, as for a [domain's last handle](Domain#dropping-a-domain):
/// inside a destructor that ownrcu runs, if another thread is freeing this
/// owner's objects at that moment, the drop does not wait for it, and that
/// thread frees the rest before it moves on.
///
/// # Invariants
///
/// `shared` points to a live `Shared<D>` whose `users` count includes this
/// handle, so its data has not been dropped.
///
/// # Thread safety
///
/// `User<D>` is `Send` and `Sync` (the bounds on `D` ask for both): a user
/// handle may be cloned onto other threads and read from there, and the
/// last one, on whichever thread drops it, drops `D`. The read section it
/// opens, [`Read`], stays on the thread that opened it.
///
/// ```
/// use ownrcu::{Domain, User};
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, vec![1_u64, 2, 3]);
/// let other = mm.clone();
/// let sum = std::thread::spawn(move || other.read().iter().sum::<u64>());
/// assert_eq!(sum.join().unwrap(), 6);
/// ```
///
/// # Examples
///
/// ```
/// use ownrcu::{Domain, User};
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, vec![1_u64, 2, 3]);
/// let reader = mm.clone(); // mmget
/// {
///     let data = reader.read(); // read-side section, bounded by `reader`
///     assert_eq!(data[1], 2);
/// }
/// drop(reader); // mmput
/// drop(mm); // the last user: the data is dropped here, directly
/// ```
///
/// The pattern from the kernel thread that review used to catch (take a
/// user reference, find an object, drop the reference, keep using the
/// object) does not compile:
///
/// ```compile_fail,E0505
/// use ownrcu::{Domain, User};
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, vec![1_u64, 2, 3]);
/// let guard = mm.read();    // mmget + rcu_read_lock
/// let vma = &guard[1];      // find_vma
/// drop(mm);                 // mmput: error, `mm` is still borrowed
/// assert_eq!(*vma, 2);      // the use after mmput
/// ```
///
/// while keeping the user reference until the object is no longer used does:
///
/// ```
/// # use ownrcu::{Domain, User};
/// # let domain = Domain::new();
/// let mm = User::new(&domain, vec![1_u64, 2, 3]);
/// let guard = mm.read();
/// let vma = &guard[1];
/// assert_eq!(*vma, 2);
/// drop(guard);
/// drop(mm);
/// ```
pub struct User<D: Send + Sync + 'static> {
    shared: NonNull<Shared<D>>,
    _owns: PhantomData<Shared<D>>,
}

/// A holder handle on an owner: the `mm_count` reference (`mmgrab`/`mmdrop`).
///
/// It keeps the owner's memory, gives no access to its data, and can try to
/// become a user handle with [`Holder::upgrade`] (`mmget_not_zero`), which
/// fails for good once the last user has gone.
///
/// # Invariants
///
/// `shared` points to a live `Shared<D>` whose `holders` count includes this
/// handle.
///
/// # Thread safety
///
/// `Holder<D>` is `Send` and `Sync`: it gives no access to `D`, and the
/// last handle of either kind may be dropped on any thread.
///
/// # Examples
///
/// ```
/// use ownrcu::{Domain, User};
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, String::from("mm"));
/// let grab = mm.holder(); // mmgrab
/// let again = grab.upgrade().expect("a user is alive"); // mmget_not_zero
/// drop(again);
/// drop(mm); // the last user: torn down
/// assert!(grab.upgrade().is_none()); // never again
/// ```
pub struct Holder<D: Send + Sync + 'static> {
    shared: NonNull<Shared<D>>,
    _owns: PhantomData<Shared<D>>,
}

// SAFETY: handles share `D` between threads (`Sync`) and the last user may
// drop it on any thread (`Send`); the counts are atomics.
unsafe impl<D: Send + Sync + 'static> Send for User<D> {}
// SAFETY: as above; `&User` only hands out shared access to `D`.
unsafe impl<D: Send + Sync + 'static> Sync for User<D> {}
// SAFETY: a holder gives no access to `D`; dropping the last one frees the
// allocation (the data was already dropped by the last user), on any thread.
unsafe impl<D: Send + Sync + 'static> Send for Holder<D> {}
// SAFETY: as above.
unsafe impl<D: Send + Sync + 'static> Sync for Holder<D> {}

impl<D: Send + Sync + 'static> User<D> {
    /// Creates an owner of `data` whose readers use `domain`, and returns its
    /// first user handle.
    pub fn new(domain: &Domain, data: D) -> Self {
        let shared = Box::new(Shared {
            users: AtomicUsize::new(ONE_USER),
            holders: AtomicUsize::new(1),
            pending: Pending::new(domain),
            data: UnsafeCell::new(ManuallyDrop::new(data)),
        });
        Self {
            shared: NonNull::from(Box::leak(shared)),
            _owns: PhantomData,
        }
    }

    fn shared(&self) -> &Shared<D> {
        // SAFETY: the type invariant: `shared` is live while this handle is.
        unsafe { self.shared.as_ref() }
    }

    /// The domain the owner's readers use.
    #[must_use]
    pub fn domain(&self) -> &Domain {
        &self.shared().pending.domain
    }

    pub(crate) fn pending(&self) -> &Pending {
        &self.shared().pending
    }

    /// Starts a batch of objects unlinked from this owner's slots, retired
    /// as one grace-period registration (see [`OwnerBatch`]).
    pub fn batch<T: Send + Sync + 'static>(&self) -> OwnerBatch<'_, T> {
        self.batch_with_capacity(0)
    }

    /// [`batch`](User::batch) with room for `capacity` objects.
    pub fn batch_with_capacity<T: Send + Sync + 'static>(
        &self,
        capacity: usize,
    ) -> OwnerBatch<'_, T> {
        OwnerBatch::with_capacity(self.pending(), capacity)
    }

    /// Blocks until every object retired through this owner before the call
    /// has been freed (the owner's `rcu_barrier`).
    ///
    /// # Panics
    ///
    /// If the calling thread is inside a read section of the owner's domain
    /// (it would wait for itself), or is running a destructor of any domain
    /// or owner ([`Domain::barrier`](crate::Domain::barrier)'s rule). If a
    /// destructor panics: every other object is still freed, then the first
    /// panic is resumed.
    pub fn barrier(&self) {
        assert!(
            !crate::rcu::for_owners::in_section(self.domain().inner().id),
            "ownrcu: User::barrier() called inside a read-side critical section of the \
             owner's domain; it would wait for that section, which waits for it: drop the \
             guard first"
        );
        self.pending().barrier();
    }

    /// A snapshot of the owner's counters.
    #[must_use]
    pub fn stats(&self) -> OwnerStats {
        self.pending().stats()
    }

    /// Enters a read-side section of the owner's domain and gives shared
    /// access to the data. The guard borrows this handle, so nothing read
    /// through it can outlive the user reference.
    pub fn read(&self) -> Read<'_, D> {
        let guard = self.shared().pending.domain.read();
        Read { user: self, guard }
    }

    /// Enters a read section of the owner's domain that belongs to the
    /// returned value instead of this thread, with a user handle of its own:
    /// it may move between threads and be held across `.await`, as a
    /// [`Domain::read_owned`] section may (see [`OwnedGuard`]), and it keeps
    /// the owner alive meanwhile. Costs what [`Domain::read_owned`] costs,
    /// plus a user handle's clone and drop (an atomic operation each).
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Slot, User};
    ///
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, Slot::new(Box::new(7_u32)));
    /// let read = mm.read_owned();
    /// drop(mm); // the read holds a user handle of its own
    /// let seven = std::thread::spawn(move || *read.load(&read).unwrap());
    /// assert_eq!(seven.join().unwrap(), 7);
    /// ```
    #[track_caller]
    pub fn read_owned(&self) -> OwnedRead<D> {
        OwnedRead {
            section: self.domain().read_owned(),
            user: self.clone(),
        }
    }

    /// Takes a holder handle (`mmgrab`).
    #[must_use]
    pub fn holder(&self) -> Holder<D> {
        // Relaxed: like `Arc::clone`, the new handle is made from a live one.
        crate::rcu::for_owners::check_count(self.shared().holders.fetch_add(1, Relaxed));
        Holder {
            shared: self.shared,
            _owns: PhantomData,
        }
    }

    /// Exclusive access to the data, if this is the only user handle (like
    /// `Arc::get_mut`). No reader can exist then, so the caller may free
    /// objects of the owner directly. A holder's [`upgrade`](Holder::upgrade)
    /// racing with this waits until the [`Exclusive`] is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ownrcu::{Domain, User};
    /// let domain = Domain::new();
    /// let mut mm = User::new(&domain, vec![1_u32]);
    /// mm.exclusive().expect("the only user").push(2);
    /// let other = mm.clone();
    /// assert!(mm.exclusive().is_none()); // two users now
    /// drop(other);
    /// assert_eq!(*mm.exclusive().unwrap(), [1, 2]);
    /// ```
    pub fn exclusive(&mut self) -> Option<Exclusive<'_, D>> {
        let users = &self.shared().users;
        let now = users.load(Relaxed);
        if user_count(now) != 1 {
            return None;
        }
        // The count is 1, so ours is the only handle; `EXCLUSIVE` may be set
        // only by an `Exclusive` of this handle that was leaked (a live one
        // would borrow it mutably). Acquire: every other user's accesses
        // (their handles are gone) happen before ours. Fails if an upgrade
        // got in meanwhile.
        users
            .compare_exchange(now, ONE_USER | EXCLUSIVE, Acquire, Relaxed)
            .ok()?;
        Some(Exclusive { user: self })
    }

    /// Number of user handles (a snapshot; others may change it meanwhile).
    #[must_use]
    pub fn users(&self) -> usize {
        user_count(self.shared().users.load(Relaxed))
    }
}

impl<D: Send + Sync + 'static> Deref for User<D> {
    type Target = D;

    /// The owner's data, for as long as this handle is borrowed: the data
    /// lives while any user handle does. RCU-protected objects inside it
    /// ([`Slot`](crate::Slot), [`Array`](crate::Array)) still need a read
    /// guard ([`User::read`]) to be loaded; writers reach them through this.
    fn deref(&self) -> &D {
        let data = self.shared().data.with(|data| data);
        // Only an `Exclusive` (which borrows the only handle mutably, so
        // cannot coexist with this borrow) or the last user's teardown
        // (which needs every handle gone) write to it.
        // SAFETY: our handle keeps the data alive and unwritten.
        unsafe { &*data }
    }
}

impl<D: Send + Sync + 'static> Clone for User<D> {
    /// Another user handle (`mmget`).
    fn clone(&self) -> Self {
        let users = &self.shared().users;
        // Relaxed: made from a live handle (as `Arc::clone`).
        let old = users.fetch_add(ONE_USER, Relaxed);
        crate::rcu::for_owners::check_count(old);
        if old & EXCLUSIVE != 0 {
            // We borrow a handle while the bit is set, so the `Exclusive`
            // was leaked (see the module invariants): let upgrades go on.
            // Release: what was written through it happens before them.
            users.fetch_and(!EXCLUSIVE, Release);
        }
        Self {
            shared: self.shared,
            _owns: PhantomData,
        }
    }
}

impl<D: Send + Sync + 'static> Drop for User<D> {
    /// `mmput`: the last user tears the owner down, directly.
    fn drop(&mut self) {
        let shared = self.shared;
        // The only handle of any kind: no other user, and no holder (the
        // users' collective reference is the only one in `holders`) that
        // could upgrade. No other thread can reach the owner, so nothing
        // needs counting down. Acquire, `holders` first: a holder that
        // upgraded and was then dropped gave up its share after the upgrade,
        // so a load that sees the share gone sees the upgrade in `users`;
        // and every other handle's accesses happen before the teardown.
        let only = self.shared().holders.load(Acquire) == 1
            && self.shared().users.load(Acquire) == ONE_USER;
        if !only {
            // Release: our accesses happen before the teardown (which
            // acquires). A leaked `Exclusive`'s bit stays set; the count
            // alone decides.
            if user_count(self.shared().users.fetch_sub(ONE_USER, Release)) != 1 {
                return;
            }
            // Acquire (a load rather than a fence, which ThreadSanitizer
            // cannot follow): every other user's accesses happen before
            // the teardown.
            self.shared().users.load(Acquire);
        }
        // Whatever happens below (a destructor may panic), the users'
        // collective holder reference is given up once, at the end.
        let _release = scopeguard::guard((), move |()| {
            if only {
                // SAFETY: no other handle exists or can be made (above),
                // and the data is dropped: the allocation is ours to free.
                unsafe { free_shared(shared) }
            } else {
                // SAFETY: this handle's share of `holders` is given up
                // here, once.
                unsafe { release_holder(shared) }
            }
        });
        // `users` reached zero: no other user handle and no reference into
        // the data exists (each borrows a user handle), and no upgrade can
        // make one (it needs a non-zero count). The data is dropped, then
        // the retired objects still waiting are freed, directly, also when
        // the data's destructor panics: `free_directly` keeps going past
        // panicking destructors and resumes the first only if no panic is
        // already unwinding, so exactly one panic goes on.
        let shared = self.shared();
        let _free_pending = scopeguard::guard(&shared.pending, |pending| {
            // SAFETY: as above, no reader of this owner exists or can appear.
            unsafe { pending.free_directly(true) }
        });
        // SAFETY: so we are the only accessor of `data`; dropped once.
        shared
            .data
            .with_mut(|data| unsafe { ManuallyDrop::drop(&mut *data) });
    }
}

/// Drops one holder reference; the last one frees the allocation.
///
/// # Safety
///
/// The caller owns one `holders` reference to a live `Shared<D>` and gives
/// it up.
unsafe fn release_holder<D>(shared: NonNull<Shared<D>>) {
    // SAFETY: live, by the caller's contract.
    let holders = unsafe { &shared.as_ref().holders };
    // Release/Acquire: every use of the allocation happens before its free.
    if holders.fetch_sub(1, Release) == 1 {
        // Acquire, as a load (see `User::drop`).
        holders.load(Acquire);
        // SAFETY: the last reference, and its data was dropped by the last
        // user (the users' collective reference is only given up after
        // that).
        unsafe { free_shared(shared) };
    }
}

/// Frees an owner's allocation.
///
/// # Safety
///
/// 1. No handle of the owner is left (the caller's was the last).
/// 2. Its data was dropped.
unsafe fn free_shared<D>(shared: NonNull<Shared<D>>) {
    // SAFETY: the allocation came from `Box::leak` in `User::new`; by (1)
    // nobody else uses it; by (2) dropping the `Box` drops the rest (the
    // data is a `ManuallyDrop`, not dropped again).
    drop(unsafe { Box::from_raw(shared.as_ptr()) });
}

impl<D: Send + Sync + 'static> Holder<D> {
    /// Becomes a user handle if the owner still has a user
    /// (`mmget_not_zero`); fails for good once the last user has gone.
    ///
    /// While the only user holds an [`Exclusive`], this waits until it is
    /// dropped; so calling it on the thread that holds the `Exclusive` never
    /// returns. (If the `Exclusive` was leaked, it waits until its user
    /// handle is next cloned, made exclusive again or dropped.) Once the
    /// last user handle is gone it returns `None` at once.
    #[must_use]
    pub fn upgrade(&self) -> Option<User<D>> {
        // SAFETY: the type invariant: `shared` is live while this handle is.
        let users = unsafe { &self.shared.as_ref().users };
        let backoff = Backoff::new();
        let mut n = users.load(Relaxed);
        loop {
            if user_count(n) == 0 {
                return None;
            }
            if n & EXCLUSIVE != 0 {
                // An `Exclusive` may be alive; wait for it to be released.
                crate::sync::snooze(&backoff);
                n = users.load(Relaxed);
                continue;
            }
            crate::rcu::for_owners::check_count(n);
            // Acquire: the data is alive and initialized for us, and what an
            // `Exclusive` wrote is visible.
            match users.compare_exchange_weak(n, n + ONE_USER, Acquire, Relaxed) {
                Ok(_) => {
                    return Some(User {
                        shared: self.shared,
                        _owns: PhantomData,
                    })
                }
                Err(now) => n = now,
            }
        }
    }

    /// A snapshot of the owner's counters; they outlive the teardown, so a
    /// holder can tell what the last user's drop freed directly.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ownrcu::{Domain, Slot, User};
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, Slot::new(Box::new(1_u32)));
    /// let grab = mm.holder();
    /// mm.replace(Some(Box::new(2)), &mm).unwrap().retire();
    /// drop(mm); // the last user: the retired object is freed directly
    /// let stats = grab.stats();
    /// assert_eq!(stats.pending, 0);
    /// assert_eq!(stats.freed_directly + stats.freed_after_grace_period, 1);
    /// ```
    #[must_use]
    pub fn stats(&self) -> OwnerStats {
        // SAFETY: the type invariant; the counters live in the allocation,
        // which this handle keeps.
        unsafe { self.shared.as_ref() }.pending.stats()
    }

    /// Whether the owner has been torn down (no user left).
    #[must_use]
    pub fn is_torn_down(&self) -> bool {
        // SAFETY: the type invariant.
        user_count(unsafe { self.shared.as_ref() }.users.load(Acquire)) == 0
    }
}

impl<D: Send + Sync + 'static> Clone for Holder<D> {
    /// Another holder handle (`mmgrab`).
    fn clone(&self) -> Self {
        // SAFETY: the type invariant.
        let holders = &unsafe { self.shared.as_ref() }.holders;
        // Relaxed: made from a live handle (as `Arc::clone`).
        crate::rcu::for_owners::check_count(holders.fetch_add(1, Relaxed));
        Self {
            shared: self.shared,
            _owns: PhantomData,
        }
    }
}

impl<D: Send + Sync + 'static> Drop for Holder<D> {
    /// `mmdrop`.
    fn drop(&mut self) {
        // SAFETY: this handle's share of `holders` is given up here, once.
        unsafe { release_holder(self.shared) };
    }
}

/// Shared access to an owner's data inside a read-side section, from
/// [`User::read`]. It borrows the user handle and derefs to the data.
///
/// # Thread safety
///
/// `Read` is neither `Send` nor `Sync`, like the [`Guard`] it holds: the
/// read section belongs to the thread that opened it.
///
/// # Leaking it
///
/// A `Read` holds a [`Guard`] of the owner's domain, so forgetting it
/// (`mem::forget`) leaves the thread inside that domain's read section for
/// good, exactly as forgetting a guard does: no grace period of the domain
/// completes again (so nothing retired into it or its owners is freed after
/// one), and waiting for one (`synchronize`, `barrier`) blocks, or panics
/// on this thread. The owner's teardown is not affected: the last user's
/// drop frees everything directly. Never undefined behaviour.
#[must_use = "the read section ends when the `Read` is dropped"]
pub struct Read<'u, D: Send + Sync + 'static> {
    user: &'u User<D>,
    guard: Guard<'u>,
}

impl<'u, D: Send + Sync + 'static> Read<'u, D> {
    /// The read section's guard, for the pointers inside the owner's data
    /// ([`Link`](crate::Link)s and [`Atomic`](crate::Atomic)s of a
    /// structure the owner holds): what they load cannot outlive this
    /// `Read`, so it cannot outlive the user handle it borrows either.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, User};
    ///
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, Atomic::new(7_u32));
    /// let read = mm.read();
    /// assert_eq!(*read.load(read.guard()), 7);
    /// ```
    pub fn guard(&self) -> &Guard<'u> {
        &self.guard
    }
}

impl<D: Send + Sync + 'static> Deref for Read<'_, D> {
    type Target = D;

    fn deref(&self) -> &D {
        self.user
    }
}

/// A read section of an owner together with the user handle that keeps the
/// owner alive: a [`Read`] or an [`OwnedRead`]. [`Slot::load`](crate::Slot::load)
/// and [`Array::load`](crate::Array::load) take either, and what they return
/// lives as long as the section is borrowed.
///
/// It is sealed: only this crate's section types implement it, and they
/// guarantee what the loads' safety rests on: while the value lives,
/// [`guard`](OwnerSection::guard) is a read section of the domain of the
/// owner that [`user`](OwnerSection::user) is a handle of, and that handle
/// stays alive.
///
/// # Examples
///
/// ```
/// use ownrcu::{Domain, OwnerSection, Slot, User};
///
/// fn first<S: OwnerSection<Data = Slot<u32>>>(read: &S) -> u32 {
///     *read.user().load(read).unwrap()
/// }
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, Slot::new(Box::new(3_u32)));
/// assert_eq!(first(&mm.read()), 3);
/// assert_eq!(first(&mm.read_owned()), 3);
/// ```
pub trait OwnerSection: sealed::Sealed {
    /// The owner's data.
    type Data: Send + Sync + 'static;

    /// The user handle that keeps the owner alive while the section is.
    fn user(&self) -> &User<Self::Data>;

    /// The section, as a guard for loads, as [`Read::guard`].
    fn guard(&self) -> &Guard<'_>;
}

mod sealed {
    /// Only this crate's section types are sections of an owner.
    pub trait Sealed {}
}

impl<D: Send + Sync + 'static> sealed::Sealed for Read<'_, D> {}

impl<D: Send + Sync + 'static> OwnerSection for Read<'_, D> {
    type Data = D;

    fn user(&self) -> &User<D> {
        self.user
    }

    fn guard(&self) -> &Guard<'_> {
        Read::guard(self)
    }
}

/// A read section of an owner that belongs to a value instead of a thread,
/// from [`User::read_owned`]: an [`OwnedGuard`] of the owner's domain and
/// a user handle of its own. Derefs to the data.
///
/// Everything a [`Read`] reads it reads (slots and arrays through
/// [`OwnerSection`], pointers through [`guard`](OwnedRead::guard)), and
/// the user handle it holds keeps the owner from being torn down while it
/// lives, on whichever thread.
///
/// # Thread safety
///
/// `OwnedRead` is `Send` and `Sync`, as its section and its handle are:
/// an async task may hold it, and what it read, across `.await`.
///
/// # Leaking it
///
/// Forgetting it (`mem::forget`) leaks its section, as forgetting an
/// [`OwnedGuard`] does, and its user handle, so the owner is never torn
/// down. A leak, never undefined behaviour.
///
/// # Examples
///
/// ```
/// use ownrcu::{Domain, Slot, User};
///
/// fn assert_send<T: Send>(_: &T) {}
/// let domain = Domain::new();
/// let mm = User::new(&domain, Slot::new(Box::new(String::from("vma"))));
/// let task = async {
///     let read = mm.read_owned();
///     let vma: &String = read.load(&read).unwrap();
///     std::future::ready(()).await; // `read` and `vma` live across it
///     vma.len()
/// };
/// assert_send(&task);
/// ```
#[must_use = "the read section ends when the `OwnedRead` is dropped"]
pub struct OwnedRead<D: Send + Sync + 'static> {
    /// Declared first, so dropped first: the section ends before the
    /// handle, which may be the last and tear the owner down.
    section: OwnedGuard,
    user: User<D>,
}

impl<D: Send + Sync + 'static> OwnedRead<D> {
    /// The read section's guard, for the pointers inside the owner's data,
    /// as [`Read::guard`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Atomic, Domain, User};
    ///
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, Atomic::new(7_u32));
    /// let read = mm.read_owned();
    /// assert_eq!(*read.load(read.guard()), 7);
    /// ```
    pub fn guard(&self) -> &Guard<'_> {
        self.section.guard()
    }

    /// The user handle this section holds (for writes made while
    /// reading, such as [`Slot::replace`](crate::Slot::replace)).
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, Slot, User};
    ///
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, Slot::new(Box::new(1_u32)));
    /// let read = mm.read_owned();
    /// read.replace(Some(Box::new(2)), read.user()).unwrap().retire();
    /// assert_eq!(*read.load(&read).unwrap(), 2);
    /// ```
    pub fn user(&self) -> &User<D> {
        &self.user
    }

    /// Ends the section and starts a new one, as [`OwnedGuard::repin`]:
    /// grace periods waiting for it can complete. The owner stays alive.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Domain, User};
    ///
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, 0_u8);
    /// let mut read = mm.read_owned();
    /// let cookie = domain.grace_period();
    /// assert!(!domain.poll(&cookie)); // waits for our section
    /// read.repin();
    /// assert!(domain.poll(&cookie));
    /// ```
    pub fn repin(&mut self) {
        self.section.repin();
    }
}

impl<D: Send + Sync + 'static> Deref for OwnedRead<D> {
    type Target = D;

    fn deref(&self) -> &D {
        &self.user
    }
}

impl<D: Send + Sync + 'static> sealed::Sealed for OwnedRead<D> {}

impl<D: Send + Sync + 'static> OwnerSection for OwnedRead<D> {
    type Data = D;

    fn user(&self) -> &User<D> {
        OwnedRead::user(self)
    }

    fn guard(&self) -> &Guard<'_> {
        OwnedRead::guard(self)
    }
}

/// Exclusive access to an owner's data through its only user handle, from
/// [`User::exclusive`]. Derefs mutably to the data.
///
/// # Thread safety
///
/// `Exclusive` is `Send` and `Sync`, as the `&mut User<D>` it holds is: it
/// can be handed to a scoped thread, which then owns the data alone.
///
/// # Leaking it
///
/// Forgetting an `Exclusive` (`mem::forget`) leaks nothing and breaks
/// nothing: its borrow of the user handle ends, and the handle works as
/// before (`clone`, `users`, `exclusive`, and its drop, which still tears
/// the owner down when it is the last). The only trace is that a
/// [`Holder::upgrade`] racing on another thread keeps waiting, as it would
/// for a live `Exclusive`, until that user handle is next cloned, made
/// exclusive again, or dropped; once the last user handle is gone,
/// `upgrade` returns `None`.
///
/// ```
/// # use ownrcu::{Domain, User};
/// let domain = Domain::new();
/// let mut mm = User::new(&domain, 1_u32);
/// let grab = mm.holder();
/// std::mem::forget(mm.exclusive().unwrap());
/// let other = mm.clone(); // fine; upgrades go on again
/// assert_eq!(mm.users(), 2);
/// drop(grab.upgrade().unwrap());
/// drop(other);
/// drop(mm); // the last user: torn down as usual
/// assert!(grab.upgrade().is_none());
/// ```
#[must_use = "exclusive access ends when the `Exclusive` is dropped"]
pub struct Exclusive<'u, D: Send + Sync + 'static> {
    user: &'u mut User<D>,
}

impl<D: Send + Sync + 'static> Exclusive<'_, D> {
    /// Frees every object retired through this owner that still waits for
    /// a grace period, directly: the only user holds the owner exclusively,
    /// so no reader can exist. Inside a destructor that ownrcu runs, if
    /// another thread is freeing this owner's objects at that moment, it
    /// frees nothing (waiting there could deadlock): they are freed after
    /// their grace period as usual.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ownrcu::{Domain, Slot, User};
    /// let domain = Domain::new();
    /// let mut mm = User::new(&domain, Slot::new(Box::new(1_u32)));
    /// mm.read().replace(Some(Box::new(2)), &mm).unwrap().retire();
    /// mm.exclusive().unwrap().free_pending();
    /// assert_eq!(mm.stats().pending, 0);
    /// ```
    pub fn free_pending(&mut self) {
        // SAFETY: `users` has the `EXCLUSIVE` bit and a count of 1, our
        // handle: no reader of the owner exists, and none can appear until
        // we are dropped (upgrades wait, and our handle is borrowed).
        unsafe { self.user.pending().free_directly(false) }
    }
}

impl<D: Send + Sync + 'static> Deref for Exclusive<'_, D> {
    type Target = D;

    fn deref(&self) -> &D {
        let data = self.user.shared().data.with(|data| data);
        // SAFETY: `users` has the `EXCLUSIVE` bit and a count of 1: we are
        // the only user and hold it mutably, so nobody else can reach the
        // data.
        unsafe { &*data }
    }
}

impl<D: Send + Sync + 'static> DerefMut for Exclusive<'_, D> {
    fn deref_mut(&mut self) -> &mut D {
        let data = self.user.shared().data.with_mut(|data| data);
        // SAFETY: as in `deref`, and `&mut self` makes this the only
        // reference we hand out.
        unsafe { &mut *data }
    }
}

impl<D: Send + Sync + 'static> Drop for Exclusive<'_, D> {
    fn drop(&mut self) {
        // The count is 1 while we live (no clone: we borrow the only
        // handle mutably; upgrades wait). Release: our writes happen before
        // any later upgrade (Acquire).
        self.user.shared().users.store(ONE_USER, Release);
    }
}

impl<D: Send + Sync + 'static> core::fmt::Debug for User<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("User")
            .field("users", &self.users())
            .finish()
    }
}

impl<D: Send + Sync + 'static> core::fmt::Debug for Holder<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Holder")
            .field("torn_down", &self.is_torn_down())
            .finish()
    }
}

impl<D: Send + Sync + 'static> core::fmt::Debug for Read<'_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Read").finish_non_exhaustive()
    }
}

impl<D: Send + Sync + 'static> core::fmt::Debug for OwnedRead<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnedRead")
            .field("section", &self.section)
            .finish_non_exhaustive()
    }
}

impl<D: Send + Sync + 'static> core::fmt::Debug for Exclusive<'_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Exclusive").finish_non_exhaustive()
    }
}
