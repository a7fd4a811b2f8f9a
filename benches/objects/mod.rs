//! The objects the retire and teardown benches free, with their drop count.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup};
use std::mem::{size_of, MaybeUninit};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Destructors run since the last reset.
pub static DROPS: AtomicUsize = AtomicUsize::new(0);

/// A 192-byte object whose destructor counts itself.
pub struct Obj {
    payload: [u64; 24],
}

const _: () = assert!(size_of::<Obj>() == 192);

impl Obj {
    pub fn new(i: usize) -> Self {
        let mut payload = [0; 24];
        payload[0] = i as u64;
        Self { payload }
    }

    /// A boxed object numbered `i` (every word of it), written in its box
    /// ([`build_in_box`]) rather than copied there from the stack.
    #[inline]
    pub fn boxed(i: usize) -> Box<Self> {
        // SAFETY: the closure writes the payload's 24 words, all of `Obj`.
        unsafe { build_in_box(|p: *mut Self| fill_words(p.cast(), 24, i as u64)) }
    }
}

/// A box of `T` whose object `init` writes in place: no copy from the
/// stack, which `Box::new` of a built value makes at a cost that moves
/// with where the stack buffer happens to lie in the binary. (If `init`
/// panics, the allocation leaks: bench code only.)
///
/// # Safety
/// `init` initializes every field of the `T` it is given.
#[inline(always)]
pub unsafe fn build_in_box<T>(init: impl FnOnce(*mut T)) -> Box<T> {
    let object = Box::into_raw(Box::new(MaybeUninit::<T>::uninit())).cast::<T>();
    init(object);
    // SAFETY: `init` initialized the object (the caller's contract), and
    // `MaybeUninit<T>` has `T`'s layout, so this is the `Box<T>` it was.
    unsafe { Box::from_raw(object) }
}

/// Writes `value` into the `n` words from `words` (the payload of an
/// object being built in its box).
///
/// # Safety
/// The `n` words from `words` lie in one allocation and may be written.
#[inline(always)]
pub unsafe fn fill_words(words: *mut u64, n: usize, value: u64) {
    for k in 0..n {
        // SAFETY: the caller's contract.
        unsafe { words.add(k).write(value) };
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        black_box(&self.payload);
        DROPS.fetch_add(1, Relaxed);
    }
}

/// Set-up: resets the drop counter and allocates `n` boxed objects.
#[allow(clippy::vec_box)] // the boxes are the point: one allocation per object
pub fn boxes(n: usize) -> Vec<Box<Obj>> {
    DROPS.store(0, Relaxed);
    (0..n).map(Obj::boxed).collect()
}

/// The end of every timed routine: exactly `n` destructors ran.
pub fn check(n: usize) {
    assert_eq!(DROPS.load(Relaxed), n, "not every object was dropped");
}

/// The physical floor of a group: `drop_floor`, dropping `n` boxes directly.
pub fn drop_floor(group: &mut BenchmarkGroup<'_, WallTime>, n: usize) {
    group.bench_function("drop_floor", |b| {
        b.iter_batched(
            || boxes(n),
            |v| {
                drop(v);
                check(n);
            },
            BatchSize::PerIteration,
        );
    });
}
