//! The public API of `Atomic`, `Owned`, `Shared` and `Detached`.
//!
//! Every object is an `Obj`: its destructor checks it is still `LIVE`
//! (dropped once), counts the drop and overwrites the magic with `POISON`
//! (a volatile write) before the memory goes back to the allocator, so a
//! reader that finds anything but `LIVE` saw an object freed under it (under
//! Miri the access itself is reported). Drop counts are checked exactly.

use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;

use ownrcu::{Atomic, Domain, GlobalDomain, Owned, Shared};

const LIVE: u64 = 0x11fe_11fe_11fe_11fe;
const POISON: u64 = 0xdead_dead_dead_dead;

#[derive(Clone, Default)]
struct Counts(Arc<AtomicUsize>);

impl Counts {
    fn obj(&self, id: u64) -> Owned<Obj> {
        Owned::new(Obj {
            magic: LIVE,
            id,
            drops: self.0.clone(),
        })
    }

    fn dropped(&self) -> usize {
        self.0.load(Relaxed)
    }
}

struct Obj {
    magic: u64,
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Obj {
    /// The id, after checking the object is alive.
    fn id(&self) -> u64 {
        // SAFETY: a read of our own field; volatile so it is really done.
        let magic = unsafe { ptr::read_volatile(&self.magic) };
        assert_eq!(magic, LIVE, "read an object that was freed");
        self.id
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        assert_eq!(self.magic, LIVE, "object dropped twice");
        self.drops.fetch_add(1, Relaxed);
        // SAFETY: a write to our own field.
        unsafe { ptr::write_volatile(&mut self.magic, POISON) };
    }
}

#[test]
fn load_store_swap_and_exact_drops() {
    let c = Counts::default();
    let domain = Domain::new();
    let a = Atomic::from(c.obj(1));
    {
        let guard = domain.read();
        assert_eq!(a.load(&guard).id(), 1);
        a.store(c.obj(2), &guard); // retires 1
        let old = a.swap(c.obj(3), &guard).unwrap();
        assert_eq!(old.id(), 2); // still readable
        old.retire();
        let old = a.swap(None, &guard).unwrap();
        assert_eq!(old.id(), 3);
        drop(old); // dropping retires too
        assert!(a.load(&guard).is_null());
        assert!(a.swap(None, &guard).is_none());
        assert_eq!(c.dropped(), 0, "freed while the guard is alive");
    }
    domain.barrier();
    assert_eq!(c.dropped(), 3);
    let stats = domain.stats();
    assert_eq!((stats.retired, stats.freed), (3, 3));
}

#[test]
fn compare_exchange_failure_gives_new_back() {
    let c = Counts::default();
    let domain = Domain::new();
    let a = Atomic::from(c.obj(1));
    let guard = domain.read();
    let new = c.obj(2);
    let new_addr: *const Obj = &*new;
    let err = a.compare_exchange(Shared::null(), new, &guard).unwrap_err();
    assert_eq!(err.current.id(), 1);
    let back = err.new.unwrap();
    assert!(ptr::eq(&*back, new_addr), "the same allocation comes back");
    assert_eq!(back.id(), 2);
    // Same address, other tag: fails too.
    let current = a.load(&guard);
    let err = a
        .compare_exchange(current.with_tag(1), back, &guard)
        .unwrap_err();
    assert_eq!(err.current, current);
    // Success: the old object comes back detached.
    let old = a
        .compare_exchange(current, err.new, &guard)
        .unwrap()
        .unwrap();
    assert_eq!((old.id(), a.load(&guard).id()), (1, 2));
    drop(old);
    // From null: nothing detached.
    let b = Atomic::null();
    assert!(b
        .compare_exchange(Shared::null(), c.obj(3), &guard)
        .unwrap()
        .is_none());
    drop(guard);
    assert_eq!(c.dropped(), 0);
    domain.barrier();
    assert_eq!(c.dropped(), 1);
    drop((a, b));
    assert_eq!(c.dropped(), 3);
}

#[test]
fn compare_exchange_weak_loop() {
    let domain = Domain::new();
    let counter = Atomic::new(0_u64);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..if cfg!(miri) { 20 } else { 1000 } {
                    let guard = domain.read();
                    let mut new = Owned::new(0);
                    loop {
                        let current = counter.load(&guard);
                        *new = *current + 1;
                        match counter.compare_exchange_weak(current, new, &guard) {
                            Ok(old) => break old.unwrap().retire(),
                            Err(err) => new = err.new.unwrap(),
                        }
                    }
                }
            });
        }
    });
    let n = if cfg!(miri) { 40 } else { 2000 };
    assert_eq!(*counter.load(&domain.read()), n);
    domain.barrier();
    assert_eq!(domain.stats().freed, n);
}

#[test]
fn tags() {
    let domain = Domain::new();
    let guard = domain.read();
    // `u64`: three tag bits; larger tags are masked.
    let owned = Owned::new(5_u64).with_tag(0xf);
    assert_eq!(owned.tag(), 7);
    let a = Atomic::from(owned);
    let s = a.load(&guard);
    assert_eq!((*s, s.tag()), (5, 7));
    assert_eq!(s.with_tag(2).tag(), 2);
    assert_eq!(*s.with_tag(0), 5);
    assert!(ptr::eq(s.as_ptr(), s.with_tag(0).as_ptr()));
    assert_ne!(s, s.with_tag(0));
    // `fetch_*` change the tag only.
    assert_eq!(a.fetch_and(!3, &guard).tag(), 7);
    assert_eq!(a.load(&guard).tag(), 4);
    assert_eq!(a.fetch_or(1, &guard).tag(), 4);
    assert_eq!(a.fetch_xor(4, &guard).tag(), 5);
    assert_eq!((*a.load(&guard), a.load(&guard).tag()), (5, 1));
    // The detached object keeps its tag.
    let old = a.swap(Owned::new(6).with_tag(2), &guard).unwrap();
    assert_eq!((*old, old.tag()), (5, 1));
    old.retire();
    // A tagged null.
    let n = Atomic::<u64>::null();
    n.fetch_or(3, &guard);
    assert!(n.load(&guard).is_null());
    assert_eq!(n.load(&guard).tag(), 3);
    assert_eq!(n.load(&guard).as_ref(), None);
    assert!(n.swap(None, &guard).is_none()); // a tagged null detaches nothing
                                             // `u8`: no tag bits at all.
    assert_eq!(Owned::new(1_u8).with_tag(1).tag(), 0);
    assert_eq!(Shared::<u8>::null().with_tag(1).tag(), 0);
    drop(guard);
    // `into_inner` keeps the tag.
    let inner = a.into_inner().unwrap();
    assert_eq!((*inner, inner.tag()), (6, 2));
}

#[test]
fn exclusive_access_needs_no_guard() {
    let c = Counts::default();
    let mut a = Atomic::from(c.obj(1));
    a.get_mut().unwrap().id = 10;
    assert_eq!(a.get_mut().unwrap().id(), 10);
    let owned = a.into_inner().unwrap();
    assert_eq!(c.dropped(), 0);
    let boxed = owned.into_box();
    assert_eq!(boxed.id(), 10);
    drop(boxed);
    assert_eq!(c.dropped(), 1);
    // Drop drops the object, once.
    drop(Atomic::from(c.obj(2)));
    assert_eq!(c.dropped(), 2);
    drop(Atomic::<Obj>::null());
    assert!(Atomic::<Obj>::default().into_inner().is_none());
    let mut null = Atomic::<Obj>::null();
    assert!(null.get_mut().is_none());
    // From a `Box`.
    drop(Atomic::from(Box::new(Obj {
        magic: LIVE,
        id: 3,
        drops: c.0.clone(),
    })));
    assert_eq!(c.dropped(), 3);
}

#[test]
fn a_pointer_binds_to_its_first_domain() {
    let (a, b) = (Domain::new(), Domain::new());
    let p = Atomic::new(1_u32);
    let _ = p.load(&a.read()); // binds to `a`
    for what in ["load", "swap", "store", "cas", "fetch_or"] {
        let guard = b.read();
        let result = catch_unwind(AssertUnwindSafe(|| match what {
            "load" => {
                let _ = p.load(&guard);
            }
            "swap" => drop(p.swap(None, &guard)),
            "store" => p.store(None, &guard),
            "cas" => drop(p.compare_exchange(Shared::null(), None, &guard)),
            _ => {
                let _ = p.fetch_or(1, &guard);
            }
        }));
        let payload = result.unwrap_err();
        let message = match payload.downcast_ref::<&str>() {
            Some(m) => m.to_string(),
            None => payload.downcast_ref::<String>().unwrap().clone(),
        };
        assert!(message.contains("another domain"), "{what}: {message}");
    }
    // Nothing changed, and a clone of `a`'s handle is the same domain.
    let a2 = a.clone();
    assert_eq!(*p.load(&a2.read()), 1);
    // The global domain is a domain like another.
    let q = Atomic::new(2_u32);
    let _ = q.load(&Domain::global().read());
    assert!(catch_unwind(AssertUnwindSafe(|| {
        let _ = q.load(&a.read());
    }))
    .is_err());
}

#[test]
fn the_binding_outlives_the_domain() {
    let p = Atomic::new(1_u32);
    {
        let a = Domain::new();
        p.store(Owned::new(2), &a.read());
    } // `a`'s teardown frees the retired object
    let b = Domain::new();
    assert!(catch_unwind(AssertUnwindSafe(|| {
        let _ = p.load(&b.read());
    }))
    .is_err());
    // Exclusive access still works.
    assert_eq!(*p.into_inner().unwrap(), 2);
}

#[test]
fn retire_into_a_batch_of_the_same_domain() {
    let c = Counts::default();
    let domain = Domain::new();
    let slots: Vec<_> = (0..5).map(|i| Atomic::from(c.obj(i))).collect();
    let mut batch = domain.batch();
    {
        let guard = domain.read();
        for (i, slot) in slots.iter().enumerate() {
            slot.swap(c.obj(10 + i as u64), &guard)
                .unwrap()
                .retire_into(&mut batch);
        }
    }
    assert_eq!(batch.len(), 5);
    batch.drain();
    domain.barrier();
    assert_eq!(c.dropped(), 5);
    assert_eq!((domain.stats().batches, domain.stats().freed), (1, 5));
    // Another domain's batch: refused, and the object is not lost (the
    // panicking call dropped the `Detached`, which retired it into its own
    // domain).
    let other = Domain::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let old = slots[0].swap(None, &domain.read()).unwrap();
        old.retire_into(&mut other.batch());
    }));
    assert!(result.is_err());
    domain.barrier();
    assert_eq!(c.dropped(), 6);
    drop(slots);
    assert_eq!(c.dropped(), 10);
}

#[test]
fn retire_hurry_and_domain_teardown() {
    let c = Counts::default();
    let domain = Domain::new();
    let a = Atomic::from(c.obj(1));
    a.swap(c.obj(2), &domain.read()).unwrap().retire_hurry();
    assert_eq!(domain.stats().grace_periods_hurried, 1);
    a.store(c.obj(3), &domain.read());
    // The hurried grace period may have ended (no reader), so a later call
    // into the domain may have freed the first object already.
    assert!(c.dropped() <= 1);
    // Dropping the last handle frees what is retired, directly.
    drop(domain);
    assert_eq!(c.dropped(), 2);
    drop(a);
    assert_eq!(c.dropped(), 3);
}

#[test]
fn detached_derefs_and_knows_its_domain() {
    let domain = Domain::new();
    let a = Atomic::new(String::from("x"));
    let old = a
        .swap(Owned::new(String::from("y")), &domain.read())
        .unwrap();
    assert_eq!(old.len(), 1);
    assert!(ptr::eq(old.domain(), &domain));
    assert!(format!("{old:?}").starts_with("Detached"));
    old.retire();
    assert!(format!("{a:?}").starts_with("Atomic"));
    assert!(format!("{:?}", Owned::new(1).with_tag(0)).contains("tag: 0"));
    assert!(format!("{:?}", a.load(&domain.read())).starts_with("Shared"));
}

struct Node {
    value: u64,
    next: ManuallyDrop<Atomic<Node>>,
}

fn node(value: u64) -> Owned<Node> {
    Owned::new(Node {
        value,
        next: ManuallyDrop::new(Atomic::null()),
    })
}

/// Frees a chain of `Node`s.
fn free_chain(head: Atomic<Node>) -> Vec<u64> {
    let mut values = Vec::new();
    let mut link = head.into_inner();
    while let Some(n) = link {
        let n = *n.into_box();
        values.push(n.value);
        link = ManuallyDrop::into_inner(n.next).into_inner();
    }
    values
}

#[test]
fn insert_before_moves_the_link() {
    let domain = Domain::new();
    let head = Atomic::null();
    let guard = domain.read();
    for v in [3, 1] {
        let current = head.load(&guard);
        head.insert_before(current, node(v), |n| &n.next, &guard)
            .unwrap();
    }
    // Insert 2 after 1.
    let first = head.load(&guard);
    let after = first.next.load(&guard);
    first
        .next
        .insert_before(after, node(2), |n| &n.next, &guard)
        .unwrap();
    // A stale current: fails, and the node's link is null again.
    let err = head
        .insert_before(after, node(0), |n| &n.next, &guard)
        .unwrap_err();
    assert_eq!(err.current, first);
    assert!(err.new.next.load(&guard).is_null());
    assert_eq!(err.new.value, 0);
    drop(guard);
    assert_eq!(free_chain(head), [1, 2, 3]);
}

#[test]
fn insert_before_checks_the_link() {
    let domain = Domain::new();
    let head = Atomic::null();
    // Only a `'static` pointer, or one behind an indirection in the node,
    // can be returned for every borrow of the node; both are outside it.
    let elsewhere: &'static Atomic<Node> = Box::leak(Box::new(Atomic::null()));
    let guard = domain.read();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = head.insert_before(Shared::null(), node(1), |_| elsewhere, &guard);
    }));
    assert!(r.is_err());
    struct Boxed {
        next: Box<Atomic<Boxed>>,
    }
    let boxed_head = Atomic::null();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let n = Owned::new(Boxed {
            next: Box::new(Atomic::null()),
        });
        let _ = boxed_head.insert_before(Shared::null(), n, |n| &*n.next, &guard);
    }));
    assert!(r.is_err());
    assert!(boxed_head.load(&guard).is_null());
    // A link that is not null (a plain, owning link: the panic drops the
    // node and, with it, what its link holds).
    struct Plain {
        next: Atomic<Plain>,
    }
    let plain_head = Atomic::null();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let n = Owned::new(Plain {
            next: Atomic::new(Plain {
                next: Atomic::null(),
            }),
        });
        let _ = plain_head.insert_before(Shared::null(), n, |n| &n.next, &guard);
    }));
    assert!(r.is_err());
    assert!(plain_head.load(&guard).is_null());
    assert!(head.load(&guard).is_null());
    assert!(elsewhere.load(&guard).is_null());
    drop(guard);
    // SAFETY: leaked above, used by nobody else.
    drop(unsafe { Box::from_raw(elsewhere as *const Atomic<Node> as *mut Atomic<Node>) });
}

#[test]
fn unlink_and_alias_exchanges() {
    let domain = Domain::new();
    let head = Atomic::null();
    let tail = ManuallyDrop::new(Atomic::null());
    let guard = domain.read();
    for v in [2, 1] {
        let current = head.load(&guard);
        head.insert_before(current, node(v), |n| &n.next, &guard)
            .unwrap();
    }
    let first = head.load(&guard);
    let second = first.next.load(&guard);
    // SAFETY: `tail` never owns and changes only here; `second` stays
    // linked while `tail` points to it.
    unsafe { tail.compare_exchange_alias(Shared::null(), second, &guard) }.unwrap();
    // SAFETY: as above; a failing exchange changes nothing.
    let err = unsafe { tail.compare_exchange_alias(Shared::null(), first, &guard) }.unwrap_err();
    assert_eq!((err.current, err.new), (second, first));
    // A stale current fails and changes nothing.
    // SAFETY: it fails (`head` does not hold `second`).
    let err = unsafe { head.compare_exchange_unlink(second, second, &guard) }.unwrap_err();
    assert_eq!(err.current, first);
    // SAFETY: 1. `second`'s link was `first.next`, in `ManuallyDrop` and
    // never used again; 2. `first` was linked from `head` only.
    let popped = unsafe { head.compare_exchange_unlink(first, second, &guard) }
        .unwrap()
        .unwrap();
    assert_eq!(popped.value, 1);
    popped.retire();
    assert_eq!(tail.load(&guard).value, 2);
    drop(guard);
    domain.barrier();
    assert_eq!(domain.stats().freed, 1);
    assert_eq!(free_chain(head), [2]);
}

#[test]
fn unsized_values_behind_a_box() {
    let domain = Domain::new();
    let a: Atomic<Box<dyn Fn() -> u32 + Send + Sync>> = Atomic::new(Box::new(|| 1));
    let guard = domain.read();
    assert_eq!((a.load(&guard))(), 1);
    let two: Box<dyn Fn() -> u32 + Send + Sync> = Box::new(|| 2);
    a.store(Owned::new(two), &guard);
    assert_eq!((a.load(&guard))(), 2);
    let s: Atomic<Box<[u8]>> = Atomic::new(vec![1, 2, 3].into_boxed_slice());
    assert_eq!(s.load(&guard).len(), 3);
}

#[test]
fn readers_never_see_a_freed_object() {
    const SLOTS: usize = 4;
    let ops: u64 = if cfg!(miri) { 60 } else { 20_000 };
    let c = Counts::default();
    let created = AtomicUsize::new(SLOTS);
    let domain = Domain::new();
    let slots: Vec<_> = (0..SLOTS as u64).map(|i| Atomic::from(c.obj(i))).collect();
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut seen = 0;
                while !stop.load(Relaxed) {
                    let guard = domain.read();
                    for slot in &slots {
                        let obj = slot.load(&guard);
                        let first = obj.id();
                        thread::yield_now();
                        assert_eq!(obj.id(), first);
                        seen += 1;
                    }
                }
                seen
            });
        }
        let writers: Vec<_> = (0..2_u64)
            .map(|w| {
                let (slots, c, created, domain) = (&slots, &c, &created, &domain);
                s.spawn(move || {
                    let mut batch = domain.batch();
                    for i in 0..ops {
                        let guard = domain.read();
                        let slot = &slots[(i as usize + w as usize) % SLOTS];
                        created.fetch_add(1, Relaxed);
                        let new = c.obj(1000 * (w + 1) + i);
                        match i % 3 {
                            0 => slot.store(new, &guard),
                            1 => {
                                let old = slot.swap(new, &guard).unwrap();
                                old.id();
                                old.retire_into(&mut batch);
                            }
                            _ => {
                                let current = slot.load(&guard);
                                match slot.compare_exchange(current, new, &guard) {
                                    Ok(old) => old.unwrap().retire(),
                                    Err(err) => {
                                        drop(err.new); // never published: freed now
                                    }
                                }
                            }
                        }
                        if batch.len() == 16 {
                            drop(guard);
                            std::mem::replace(&mut batch, domain.batch()).drain();
                        }
                    }
                    batch.drain();
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Relaxed);
    });
    domain.barrier();
    assert_eq!(c.dropped(), created.load(Relaxed) - SLOTS);
    drop(slots);
    assert_eq!(c.dropped(), created.load(Relaxed));
}

#[test]
fn a_global_only_pointer_is_one_word() {
    assert_eq!(
        std::mem::size_of::<Atomic<u64, GlobalDomain>>(),
        std::mem::size_of::<usize>()
    );
    let c = Counts::default();
    let a = Atomic::from_owned_global(c.obj(1));
    {
        let guard = Domain::global().read();
        assert_eq!(a.load(&guard).id(), 1);
        a.store(c.obj(2), &guard); // retired into the global domain
        let old = a.swap(c.obj(3), &guard).unwrap();
        assert_eq!(old.id(), 2);
        old.retire();
    }
    // Any other domain is refused, before and after first use.
    let other = Domain::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = a.load(&other.read());
    }));
    assert!(r.is_err());
    let fresh = Atomic::<u32, GlobalDomain>::null_global();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = fresh.swap(Owned::new(1), &other.read());
    }));
    assert!(r.is_err());
    // Links of the same kind, for `insert_before`.
    struct GNode {
        next: ManuallyDrop<Atomic<GNode, GlobalDomain>>,
    }
    let head = Atomic::<GNode, GlobalDomain>::default();
    {
        let guard = Domain::global().read();
        for _ in 0..2 {
            let node = Owned::new(GNode {
                next: ManuallyDrop::new(Atomic::null_global()),
            });
            let current = head.load(&guard);
            assert!(head
                .insert_before(current, node, |n| &n.next, &guard)
                .is_ok());
        }
        assert!(!head.load(&guard).next.load(&guard).is_null());
    }
    let mut link = head.into_inner();
    let mut nodes = 0;
    while let Some(n) = link {
        nodes += 1;
        link = ManuallyDrop::into_inner(n.into_box().next).into_inner();
    }
    assert_eq!(nodes, 2);
    Domain::global().barrier(); // frees 1 and 2
    assert_eq!(c.dropped(), 2);
    drop(a);
    assert_eq!(c.dropped(), 3);
    assert_eq!(*Atomic::new_global(5_u8).into_inner().unwrap(), 5);
}
