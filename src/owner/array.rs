//! [`Array`]: an owner's objects in an RCU-replaced array, the simplest
//! ordered index (the VMA tree of the example).
//!
//! Readers see one published *version*: a boxed slice of pointers to the
//! objects, in the order the writer left them. A writer copies the current
//! version, edits the copy, and publishes it with one pointer store; objects
//! that are in both versions are shared, never copied. What the new version
//! no longer holds (the removed objects, and the old version's slice itself)
//! comes back as [`Removed`] and is retired through the owner after the
//! publication, in one grace-period registration or several.
//!
//! # Invariants
//!
//! - `current` always points to a live version (never null). Every object a
//!   version points to is alive while any reader can still see that version.
//! - Each object is owned by exactly one of: the current version (freed
//!   directly when the array drops, with `&mut`: no reader can exist), a
//!   writer's staged copy or its inserted objects (not yet published, so
//!   invisible to readers), or one [`Removed`] (unlinked after publication).
//! - Only one writer at a time (`writer` lock): versions are edited from the
//!   one that was current when the writer started, and nobody else replaces
//!   it meanwhile.
//! - The array belongs to one owner ([`Binding`]): readers reach it only
//!   under that owner's read guards, and what a writer removes is retired
//!   through that owner, so its grace periods and its teardown (which needs
//!   every user gone) both cover every reader.

use core::marker::PhantomData;
use core::ops::{Bound, RangeBounds};
use core::ptr::NonNull;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use crate::owner::binding::Binding;
use crate::owner::handle::{OwnerSection, User};
use crate::owner::pending::Pending;
use crate::rcu::for_owners::{into_pointers, Cursor, FirstPanic, Reclaim, Single, Typed};
use crate::sync::{AtomicPtr, Mutex, MutexGuard};

/// One published version: pointers to boxed objects, owned by the array
/// while the version is current and borrowed by it afterwards.
struct Version<T> {
    items: Box<[NonNull<T>]>,
}

impl<T> Version<T> {
    fn into_raw(items: Vec<NonNull<T>>) -> *mut Self {
        Box::into_raw(Box::new(Self {
            items: items.into_boxed_slice(),
        }))
    }
}

/// A replaced version, unlinked but possibly still read by readers that
/// loaded it earlier. Kept as a raw pointer, not a `Box`: a `Box` claims
/// unique access the moment it exists, which those readers contradict. It
/// becomes a `Box` only when this is dropped, after its grace period.
struct OldVersion<T>(NonNull<Version<T>>);

impl<T> OldVersion<T> {
    /// # Safety
    ///
    /// `version` came from `Version::into_raw`, is unreachable for new
    /// readers, and is owned by the result alone; the result is dropped only
    /// once no reader can still hold the version (after a grace period, or
    /// with no reader able to exist).
    unsafe fn new(version: *mut Version<T>) -> Self {
        // SAFETY: `Version::into_raw` never returns null.
        Self(unsafe { NonNull::new_unchecked(version) })
    }
}

impl<T> Drop for OldVersion<T> {
    fn drop(&mut self) {
        // SAFETY: the contract of `new`: ours alone, and no reader is left.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// An RCU-protected array of an owner's objects (of type `T`), ordered as
/// its writers keep it: readers [`load`](Array::load) the current version
/// as a slice in a read section of the owner ([`Read`](crate::Read) or
/// [`OwnedRead`](crate::OwnedRead)), with no lock, and search it
/// (e.g. `partition_point` for an address); one [`ArrayWriter`] at a time
/// edits a copy and publishes it.
///
/// Objects live in the array until a writer removes them, and then in a
/// [`Removed`] until they are retired through the owner. The array's own
/// drop (the owner's teardown, or `&mut` access) frees its objects
/// directly: no reader can exist then.
///
/// # Examples
///
/// ```
/// use ownrcu::{Array, Domain, User};
///
/// let domain = Domain::new();
/// let mm = User::new(&domain, Array::from_vec(vec![Box::new(10_u64), Box::new(30)]));
///
/// // A writer inserts in order and publishes: nothing was removed, yet the
/// // old version's slice still waits for the readers that may be scanning it.
/// let mut writer = mm.write(&mm);
/// let at = writer.items().partition_point(|&&x| x < 20);
/// writer.insert(at, Box::new(20));
/// writer.commit().retire();
///
/// let read = mm.read();
/// let items = read.load(&read);
/// assert_eq!(items.iter().map(|&&x| x).collect::<Vec<_>>(), [10, 20, 30]);
/// ```
///
/// # Threads
///
/// `Array<T>` is `Send` and `Sync`, and so is a committed writer's
/// [`Removed`]; an [`ArrayWriter`] is neither: it holds the array's writer
/// lock (a `MutexGuard`), which is released on the thread that took it.
///
/// ```
/// fn is_send_sync<T: Send + Sync>() {}
/// is_send_sync::<ownrcu::Array<String>>();
/// is_send_sync::<ownrcu::Removed<'static, String>>();
/// ```
pub struct Array<T: Send + Sync + 'static> {
    current: AtomicPtr<Version<T>>,
    writer: Mutex<()>,
    owner: Binding,
    _owns: PhantomData<Box<T>>,
}

impl<T: Send + Sync + 'static> Array<T> {
    /// An empty array.
    #[must_use]
    pub fn new() -> Self {
        Self::from_vec(Vec::new())
    }

    /// An array holding `objects`, in this order.
    #[must_use]
    pub fn from_vec(objects: Vec<Box<T>>) -> Self {
        Self {
            current: AtomicPtr::new(Version::into_raw(into_pointers(objects))),
            writer: Mutex::new(()),
            owner: Binding::new(),
            _owns: PhantomData,
        }
    }

    /// The current version, as a slice of references that live as long as
    /// the read section (and the array) are borrowed.
    ///
    /// # Panics
    ///
    /// If the array belongs to another owner than the section's.
    #[inline]
    pub fn load<'r, S: OwnerSection>(&'r self, read: &'r S) -> &'r [&'r T] {
        self.owner.bind(read.user().pending());
        // Acquire: pairs with the publishing swap, so the version and the
        // objects it points to are visible.
        let version = self.current.load(Acquire);
        // A version stays allocated, and its objects too, until a grace
        // period of the owner's domain after it was replaced, which `read`'s
        // section blocks; or until the owner's teardown, which `read`'s user
        // handle prevents (both live while `read` does: `OwnerSection`'s
        // guarantee; the array is bound to that owner: checked above); or
        // until the array drops, which our borrow prevents.
        // SAFETY: so the version is valid for `'r`.
        let items: &'r [NonNull<T>] = unsafe { &(*version).items };
        // SAFETY: `NonNull<T>` and `&T` have the same layout, and each
        // pointer is valid for `'r` (as above); nobody writes the objects
        // (the array hands out only shared references, `T: Sync`).
        unsafe { core::slice::from_raw_parts(items.as_ptr().cast::<&'r T>(), items.len()) }
    }

    /// Starts the only writer (waiting for any other to finish), for an
    /// owner's user handle.
    ///
    /// A writer that was leaked (`mem::forget`) is never finished, so this
    /// then waits forever, like locking a `Mutex` whose guard was leaked;
    /// [`try_write`](Array::try_write) does not wait.
    ///
    /// # Panics
    ///
    /// If the array belongs to another owner than `user`'s.
    pub fn write<'a, 'u, D: Send + Sync + 'static>(
        &'a self,
        user: &'u User<D>,
    ) -> ArrayWriter<'a, 'u, T> {
        let owner = user.pending();
        self.owner.bind(owner);
        // Every step pops or pushes whole pointers, so a writer that
        // panicked left no half-edited version behind: poisoning is ignored.
        let lock = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.writer_with(owner, lock)
    }

    /// Starts the only writer if no other writer is alive; `None` (at once)
    /// if one is, or if one was leaked.
    ///
    /// # Panics
    ///
    /// If the array belongs to another owner than `user`'s.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Array, Domain, User};
    ///
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, Array::from_vec(vec![Box::new(1_u32)]));
    /// let writer = mm.write(&mm);
    /// assert!(mm.try_write(&mm).is_none()); // busy
    /// writer.commit().retire();
    /// let mut writer = mm.try_write(&mm).expect("no other writer");
    /// writer.push(Box::new(2));
    /// ```
    pub fn try_write<'a, 'u, D: Send + Sync + 'static>(
        &'a self,
        user: &'u User<D>,
    ) -> Option<ArrayWriter<'a, 'u, T>> {
        let owner = user.pending();
        self.owner.bind(owner);
        // Poisoning is ignored, as in `write`.
        let lock = crate::rcu::for_owners::try_lock(&self.writer)?;
        Some(self.writer_with(owner, lock))
    }

    /// The writer, once `lock` is held.
    fn writer_with<'a, 'u>(
        &'a self,
        owner: &'u Pending,
        lock: MutexGuard<'a, ()>,
    ) -> ArrayWriter<'a, 'u, T> {
        let version = self.current.load(Relaxed);
        // SAFETY: the current version; the lock keeps anyone else from
        // replacing (and retiring) it while we hold it.
        let items = unsafe { (*version).items.to_vec() };
        ArrayWriter {
            array: self,
            owner,
            _lock: lock,
            items,
            removed: Vec::new(),
            published: false,
        }
    }
}

impl<T: Send + Sync + 'static> Default for Array<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + Sync + 'static> Drop for Array<T> {
    /// Frees every object of the current version directly: `&mut self`
    /// means no reader holds a reference from [`load`](Array::load). A
    /// panicking destructor does not stop the others; the first panic is
    /// resumed once all are freed.
    fn drop(&mut self) {
        let version = self.current.load(Relaxed);
        // SAFETY: the current version, allocated by `Version::into_raw` and
        // owned by the array alone now.
        let version = unsafe { Box::from_raw(version) };
        // SAFETY: the current version owns its objects, each freed once here.
        unsafe { free_each(&version.items) };
    }
}

/// Drops every boxed object of `items`, in order, keeping on past a
/// panicking destructor; resumes the first panic at the end.
///
/// # Safety
///
/// Each pointer came from `Box::<T>::into_raw`, is owned by the caller and
/// not used again.
unsafe fn free_each<T>(items: &[NonNull<T>]) {
    let mut next = 0;
    let mut first_panic = FirstPanic::default();
    while next < items.len() {
        first_panic.catch(|| {
            // In a register while the loop runs, written back to `next`
            // when the closure returns or unwinds.
            let mut cursor = Cursor::new(&mut next);
            while let Some(ptr) = items.get(cursor.at) {
                cursor.at += 1;
                // SAFETY: forwarded from this function's contract; the
                // cursor moves past each object before its drop, so a
                // panicking one is not dropped again.
                drop(unsafe { Box::from_raw(ptr.as_ptr()) });
            }
        });
    }
    first_panic.resume();
}

impl<T: Send + Sync + 'static> core::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Array").finish_non_exhaustive()
    }
}

/// The only writer of an [`Array`], from [`Array::write`]: edits a copy of
/// the current version, then [`commit`](ArrayWriter::commit)s it.
///
/// Readers keep seeing the version that was current when the writer
/// started until the commit publishes the copy. Dropping an uncommitted
/// writer commits it and retires what it removed as one registration.
///
/// # Threads
///
/// A writer is neither `Send` nor `Sync` (see [`Array`]):
///
/// ```compile_fail,E0277
/// fn is_send<T: Send>(_: T) {}
/// let domain = ownrcu::Domain::new();
/// let mm = ownrcu::User::new(&domain, ownrcu::Array::<u64>::new());
/// is_send(mm.write(&mm)); // error: `MutexGuard<'_, ()>` cannot be sent between threads
/// ```
///
/// # Leaking it
///
/// Forgetting a writer (`mem::forget`) is never undefined behaviour, but
/// it keeps the writer lock for good, like a leaked `MutexGuard`: every
/// later [`Array::write`] waits forever and [`Array::try_write`] returns
/// `None`. Readers are not affected (they keep seeing the current
/// version). What the writer staged leaks: the objects it inserted, and
/// the copy of the version; the objects it removed stay in the current
/// version, so the array's drop still frees them.
#[must_use = "dropping the writer commits its staged version at once"]
pub struct ArrayWriter<'a, 'u, T: Send + Sync + 'static> {
    array: &'a Array<T>,
    owner: &'u Pending,
    _lock: MutexGuard<'a, ()>,
    /// The staged version.
    items: Vec<NonNull<T>>,
    /// Objects of the current version that the staged one no longer holds,
    /// and objects inserted then removed again (never published).
    removed: Vec<NonNull<T>>,
    published: bool,
}

impl<'a, 'u, T: Send + Sync + 'static> ArrayWriter<'a, 'u, T> {
    /// The staged version.
    #[must_use]
    pub fn items(&self) -> &[&T] {
        // Every staged pointer is an object of the current version, which
        // only a writer (us) or the array's drop (which our borrow prevents)
        // can free, or an object we inserted and own.
        // SAFETY: so each is valid while we are; same layout (`Array::load`).
        unsafe { core::slice::from_raw_parts(self.items.as_ptr().cast::<&T>(), self.items.len()) }
    }

    /// Objects in the staged version.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the staged version is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Inserts `object` at `index` of the staged version.
    ///
    /// # Panics
    ///
    /// If `index > len()`.
    pub fn insert(&mut self, index: usize, object: Box<T>) {
        assert!(
            index <= self.items.len(),
            "ownrcu: ArrayWriter::insert at {index}, past the end ({})",
            self.items.len()
        );
        self.items.insert(index, NonNull::from(Box::leak(object)));
    }

    /// Appends `object` to the staged version.
    pub fn push(&mut self, object: Box<T>) {
        self.items.push(NonNull::from(Box::leak(object)));
    }

    /// Removes the objects in `range` from the staged version; they are
    /// handed back, unlinked, by [`commit`](ArrayWriter::commit).
    ///
    /// # Panics
    ///
    /// If the range is out of bounds.
    pub fn remove<R: RangeBounds<usize>>(&mut self, range: R) {
        let len = self.items.len();
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => len,
        };
        assert!(
            start <= end && end <= len,
            "ownrcu: ArrayWriter::remove of {start}..{end}, out of bounds of {len} objects"
        );
        if start == 0 && end == len && self.removed.is_empty() {
            // Everything, and nothing removed before: hand the vector over
            // instead of copying it (a whole teardown's worth of pointers).
            core::mem::swap(&mut self.removed, &mut self.items);
        } else {
            self.removed.extend(self.items.drain(start..end));
        }
    }

    /// Replaces the object at `index` with `object`; the old one is handed
    /// back by [`commit`](ArrayWriter::commit).
    ///
    /// # Panics
    ///
    /// If `index >= len()`.
    pub fn replace(&mut self, index: usize, object: Box<T>) {
        assert!(
            index < self.items.len(),
            "ownrcu: ArrayWriter::replace at {index}, past the end ({})",
            self.items.len()
        );
        let old = core::mem::replace(&mut self.items[index], NonNull::from(Box::leak(object)));
        self.removed.push(old);
    }

    /// Removes every object.
    pub fn clear(&mut self) {
        self.remove(..);
    }

    /// Publishes the staged version and hands back what it no longer holds:
    /// the removed objects and the old version's slice, unlinked.
    pub fn commit(mut self) -> Removed<'u, T> {
        self.publish()
    }

    fn publish(&mut self) -> Removed<'u, T> {
        self.published = true;
        let new = Version::into_raw(core::mem::take(&mut self.items));
        // AcqRel: Release publishes the new version and the objects it
        // points to; Acquire is for symmetry with readers (we hold the lock,
        // so the old version is the one we copied).
        let old = self.array.current.swap(new, AcqRel);
        Removed {
            owner: self.owner,
            objects: core::mem::take(&mut self.removed),
            // SAFETY: `old` came from `Version::into_raw`, and the swap made
            // it unreachable for new readers; it is owned by `Removed` now.
            old: Some(unsafe { OldVersion::new(old) }),
        }
    }
}

impl<T: Send + Sync + 'static> Drop for ArrayWriter<'_, '_, T> {
    /// Commits, and retires what was removed as one registration.
    fn drop(&mut self) {
        if !self.published {
            drop(self.publish());
        }
    }
}

impl<T: Send + Sync + 'static> core::fmt::Debug for ArrayWriter<'_, '_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ArrayWriter")
            .field("len", &self.items.len())
            .field("removed", &self.removed.len())
            .finish()
    }
}

/// What a committed [`ArrayWriter`] unlinked: the objects it removed and the
/// slice of the version it replaced. Readers that started earlier may still
/// hold them, so they are retired through the owner:
/// [`retire`](Removed::retire) as **one** registration (the munmap batch),
/// [`retire_each`](Removed::retire_each) with one registration per object
/// (the flood the batch avoids), or [`synchronize`](Removed::synchronize):
/// wait for the grace period here, then free directly. Dropping it retires
/// it as one registration.
///
/// # Leaking it
///
/// Forgetting it (`mem::forget`) leaks the removed objects and the old
/// version's slice: they are never freed, not even by the owner's
/// teardown, and the owner's statistics never count them. Nothing else is
/// affected; never undefined behaviour.
#[must_use = "dropping it retires the removed objects as one registration; say so with `.retire()`"]
pub struct Removed<'u, T: Send + Sync + 'static> {
    owner: &'u Pending,
    objects: Vec<NonNull<T>>,
    old: Option<OldVersion<T>>,
}

// SAFETY: it owns boxed `T`s (`T: Send`), and the old slice of pointers to
// objects whose ownership is elsewhere; it borrows a `Sync` owner queue.
unsafe impl<T: Send + Sync + 'static> Send for Removed<'_, T> {}
// SAFETY: shared access only reads `T`s (`T: Sync`).
unsafe impl<T: Send + Sync + 'static> Sync for Removed<'_, T> {}

/// A committed writer's unit: the removed objects, and the old version's
/// slice, freed with the unit once all of them are.
struct Commit<T> {
    objects: Typed<T>,
    _old: Option<OldVersion<T>>,
}

// SAFETY: `Typed<T>` is `Send`; the old slice only points to objects that
// are `Sync` and freed by whoever owns them.
unsafe impl<T: Send + Sync> Send for Commit<T> {}

impl<T: Send + Sync> Reclaim for Commit<T> {
    fn len(&self) -> usize {
        self.objects.len()
    }

    unsafe fn free(&mut self, max: usize) {
        // SAFETY: forwarded; the old slice goes with the unit, dropped only
        // after its grace period too (units are dropped once freed).
        unsafe { self.objects.free(max) }
    }
}

impl<'u, T: Send + Sync + 'static> Removed<'u, T> {
    /// The removed objects.
    #[must_use]
    pub fn objects(&self) -> &[&T] {
        // SAFETY: same layout (see `Array::load`); the objects are owned by
        // this value until it is retired, which consumes it.
        unsafe {
            core::slice::from_raw_parts(self.objects.as_ptr().cast::<&T>(), self.objects.len())
        }
    }

    /// Number of removed objects.
    #[must_use]
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether no object was removed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    fn unit(&mut self) -> Box<Commit<T>> {
        let objects = core::mem::take(&mut self.objects);
        Box::new(Commit {
            // SAFETY: each pointer is a `Box<T>` unlinked by the commit and
            // owned by this value alone; readers reach it only under guards
            // of this owner (the array is bound to it).
            objects: unsafe { Typed::new(objects) },
            _old: self.old.take(),
        })
    }

    /// Retires everything as one grace-period registration of the owner.
    pub fn retire(self) {
        drop(self);
    }

    /// Retires each removed object with a registration of its own, and the
    /// old slice with one more: the per-object flood, for comparison.
    ///
    /// Every registration is queued before any older work is freed, so a
    /// panicking destructor of an older object (which propagates from here)
    /// leaves all of these queued.
    pub fn retire_each(mut self) {
        for ptr in core::mem::take(&mut self.objects) {
            // SAFETY: as in `unit`, for one object.
            let unit = Box::new(unsafe { Single::new(ptr) });
            self.owner.enqueue(unit, false);
        }
        // The old slice, in a unit of no objects.
        let unit = self.unit();
        self.owner.register(unit, false);
    }

    /// Retires the removed objects with one registration per `cap` of them
    /// (the last one also carries the old slice): the seed patch's throttle
    /// ("one `call_rcu` per 32 VMAs"), between [`retire`](Removed::retire)
    /// (one registration) and [`retire_each`](Removed::retire_each) (one
    /// per object). Like `retire_each`, it queues every registration before
    /// freeing any older work.
    ///
    /// # Panics
    ///
    /// If `cap` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use ownrcu::{Array, Domain, User};
    ///
    /// let domain = Domain::new();
    /// let mm = User::new(&domain, Array::from_vec((0..100_u32).map(Box::new).collect()));
    /// let mut writer = mm.write(&mm);
    /// writer.clear();
    /// writer.commit().retire_capped(32); // 4 registrations: 32 + 32 + 32 + 4
    /// assert_eq!(mm.stats().registrations, 4);
    /// ```
    pub fn retire_capped(mut self, cap: usize) {
        assert!(
            cap > 0,
            "ownrcu: Removed::retire_capped(0): a registration holds at least one object"
        );
        let mut objects = core::mem::take(&mut self.objects);
        // The last chunk (possibly empty) goes with the old slice, below.
        let last = objects.len().saturating_sub(1) / cap * cap;
        let tail = objects.split_off(last);
        for chunk in objects.chunks(cap) {
            // SAFETY: as in `unit`, for the objects of one chunk.
            let unit = Box::new(unsafe { Typed::new(chunk.to_vec()) });
            self.owner.enqueue(unit, true);
        }
        self.objects = tail;
        let batch = !self.objects.is_empty();
        let unit = self.unit();
        self.owner.register(unit, batch);
    }

    /// Waits for a grace period of the owner's domain (`synchronize`),
    /// then frees everything here, directly: no reader that could have
    /// seen the old version is left. No registration.
    ///
    /// # Panics
    ///
    /// If the calling thread is inside a read section of the owner's
    /// domain (it would wait for itself).
    pub fn synchronize(mut self) {
        self.owner.domain.synchronize();
        let unit = self.unit();
        // SAFETY: the objects were unlinked before the grace period that
        // `synchronize` waited for began, so no reader can reach them.
        unsafe { self.owner.free_synchronized(unit) };
    }
}

impl<T: Send + Sync + 'static> Drop for Removed<'_, T> {
    /// Retires everything as one registration.
    fn drop(&mut self) {
        if self.old.is_none() && self.objects.is_empty() {
            return;
        }
        let batch = !self.objects.is_empty();
        let unit = self.unit();
        self.owner.register(unit, batch);
    }
}

impl<T: Send + Sync + 'static> core::fmt::Debug for Removed<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Removed")
            .field("len", &self.objects.len())
            .finish()
    }
}
