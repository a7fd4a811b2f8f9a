//! `Array`, an owner's RCU-replaced array of objects, through the public API:
//! versions shared between readers and one writer, removed objects retired
//! after publication (one registration, one per object, or synchronize and
//! free), and the direct free of everything at teardown.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;

use ownrcu::{Array, Domain, User};

const LIVE: u64 = 0x11fe_11fe_11fe_11fe;
const POISON: u64 = 0xdead_dead_dead_dead;

/// A numbered object that counts its drop and poisons itself.
struct Obj {
    magic: AtomicU64,
    key: u64,
    drops: Arc<AtomicUsize>,
}

impl Obj {
    fn new(key: u64, drops: &Arc<AtomicUsize>) -> Box<Self> {
        Box::new(Self {
            magic: AtomicU64::new(LIVE),
            key,
            drops: drops.clone(),
        })
    }

    fn key(&self) -> u64 {
        assert_eq!(
            self.magic.load(SeqCst),
            LIVE,
            "object {} read after free",
            self.key
        );
        self.key
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        assert_eq!(
            self.magic.swap(POISON, SeqCst),
            LIVE,
            "object {} freed twice",
            self.key
        );
        self.drops.fetch_add(1, SeqCst);
    }
}

type Mm = User<Array<Obj>>;

fn mm(domain: &Domain, keys: impl IntoIterator<Item = u64>) -> (Mm, Arc<AtomicUsize>) {
    let drops = Arc::new(AtomicUsize::new(0));
    let objects = keys.into_iter().map(|k| Obj::new(k, &drops)).collect();
    (User::new(domain, Array::from_vec(objects)), drops)
}

fn keys(mm: &Mm) -> Vec<u64> {
    let read = mm.read();
    read.load(&read).iter().map(|o| o.key()).collect()
}

#[test]
fn a_writer_edits_a_copy_and_publishes_it_on_commit() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, [10, 20, 30, 40]);
    let mut writer = mm.write(&mm);
    let at = writer.items().partition_point(|o| o.key() < 25);
    writer.insert(at, Obj::new(25, &drops));
    writer.remove(..1); // 10
    writer.replace(3, Obj::new(41, &drops)); // 40 -> 41
    writer.push(Obj::new(50, &drops));
    assert_eq!(writer.len(), 5);
    assert_eq!(
        keys(&mm),
        [10, 20, 30, 40],
        "readers see the old version until commit"
    );
    let removed = writer.commit();
    assert_eq!(keys(&mm), [20, 25, 30, 41, 50]);
    let mut gone: Vec<u64> = removed.objects().iter().map(|o| o.key()).collect();
    gone.sort_unstable();
    assert_eq!(
        gone,
        [10, 40],
        "removed objects stay readable until retired"
    );
    assert_eq!(drops.load(SeqCst), 0);
    removed.retire();
    mm.barrier();
    assert_eq!(drops.load(SeqCst), 2);
    let stats = mm.stats();
    assert_eq!((stats.retired, stats.freed_after_grace_period), (2, 2));
    assert_eq!((stats.registrations, stats.batches), (1, 1));
    drop(mm);
    assert_eq!(drops.load(SeqCst), 2 + 5);
}

#[test]
fn retire_each_registers_every_object_and_the_old_version() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, 0..10);
    let mut writer = mm.write(&mm);
    writer.remove(2..=5);
    let removed = writer.commit();
    assert_eq!(removed.len(), 4);
    removed.retire_each();
    mm.barrier();
    assert_eq!(drops.load(SeqCst), 4);
    let stats = mm.stats();
    assert_eq!(stats.registrations, 5, "four objects and the old slice");
    assert_eq!(stats.batches, 0);
    assert_eq!(keys(&mm), [0, 1, 6, 7, 8, 9]);
}

/// The seed patch's throttle: one registration per `cap` removed objects,
/// the old slice with the last (or alone when nothing was removed).
#[test]
fn retire_capped_registers_one_unit_per_cap_objects() {
    for (n, cap, registrations) in [(10, 4, 3), (8, 4, 2), (3, 32, 1), (5, 1, 5), (0, 4, 1)] {
        let domain = Domain::new();
        let (mm, drops) = mm(&domain, 0..n);
        let mut writer = mm.write(&mm);
        writer.clear();
        writer.commit().retire_capped(cap);
        mm.barrier();
        assert_eq!(drops.load(SeqCst), n as usize, "{n} objects, cap {cap}");
        let stats = mm.stats();
        assert_eq!(stats.registrations, registrations, "{n} objects, cap {cap}");
        assert_eq!(stats.batches, if n == 0 { 0 } else { registrations });
        assert_eq!(stats.pending, 0);
    }
}

#[test]
#[should_panic(expected = "retire_capped(0)")]
fn retire_capped_with_a_cap_of_zero_panics() {
    let domain = Domain::new();
    let (mm, _drops) = mm(&domain, 0..2);
    let mut writer = mm.write(&mm);
    writer.clear();
    writer.commit().retire_capped(0);
}

#[test]
fn synchronize_frees_the_removed_objects_before_it_returns() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, 0..8);
    let mut writer = mm.write(&mm);
    writer.clear();
    writer.commit().synchronize();
    assert_eq!(drops.load(SeqCst), 8);
    let stats = mm.stats();
    assert_eq!(stats.freed_after_grace_period, 8);
    assert_eq!(stats.registrations, 0, "no registration: the caller waited");
    assert!(keys(&mm).is_empty());
}

#[test]
fn an_insertion_alone_retires_only_the_old_slice() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, [1]);
    let mut writer = mm.write(&mm);
    writer.push(Obj::new(2, &drops));
    let removed = writer.commit();
    assert!(removed.is_empty());
    removed.retire();
    mm.barrier();
    let stats = mm.stats();
    assert_eq!(
        (stats.retired, stats.registrations, stats.batches),
        (0, 1, 0)
    );
    assert_eq!(drops.load(SeqCst), 0);
    drop(mm);
    assert_eq!(drops.load(SeqCst), 2);
}

#[test]
fn dropping_an_uncommitted_writer_commits_and_retires() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, 0..3);
    {
        let mut writer = mm.write(&mm);
        writer.remove(0..2);
    }
    assert_eq!(keys(&mm), [2]);
    mm.barrier();
    assert_eq!(drops.load(SeqCst), 2);
    assert_eq!(mm.stats().batches, 1);
}

#[test]
fn a_reader_keeps_its_version_and_objects_across_a_commit() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, 0..64);
    let (loaded_tx, loaded_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let mm = &mm;
        s.spawn(move || {
            let read = mm.read();
            let items = read.load(&read);
            loaded_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            // Everything this reader saw is still alive, in its version.
            let seen: Vec<u64> = items.iter().map(|o| o.key()).collect();
            assert_eq!(seen, (0..64).collect::<Vec<_>>());
        });
        loaded_rx.recv().unwrap();
        let mut writer = mm.write(mm);
        writer.clear();
        writer.commit().retire();
        assert!(keys(mm).is_empty(), "new readers see the new version");
        assert_eq!(drops.load(SeqCst), 0, "the reader still holds them");
        go_tx.send(()).unwrap();
    });
    mm.barrier();
    assert_eq!(drops.load(SeqCst), 64);
}

#[test]
fn teardown_frees_live_and_pending_objects_directly() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, 0..100);
    let mut writer = mm.write(&mm);
    writer.remove(0..60);
    writer.commit().retire();
    // A reader of another owner of the same domain keeps a grace period
    // from completing: teardown must not care.
    let (other, _other_drops) = self::mm(&domain, 0..1);
    let (entered_tx, entered_rx) = mpsc::channel();
    let (leave_tx, leave_rx) = mpsc::channel::<()>();
    thread::scope(|s| {
        let other = &other;
        s.spawn(move || {
            let read = other.read();
            entered_tx.send(()).unwrap();
            leave_rx.recv().unwrap();
            assert_eq!(read.load(&read)[0].key(), 0);
        });
        entered_rx.recv().unwrap();
        let before = domain.stats().grace_periods;
        drop(mm);
        assert_eq!(
            drops.load(SeqCst),
            100,
            "every object freed when drop returns"
        );
        assert_eq!(domain.stats().grace_periods, before, "no grace period");
        leave_tx.send(()).unwrap();
    });
}

#[test]
fn writers_take_turns() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, []);
    let per_thread = if cfg!(miri) { 5 } else { 200 };
    thread::scope(|s| {
        for t in 0..2_u64 {
            let (mm, drops) = (&mm, &drops);
            s.spawn(move || {
                for i in 0..per_thread {
                    let key = t * 1_000_000 + i;
                    let mut writer = mm.write(mm);
                    let at = writer.items().partition_point(|o| o.key() < key);
                    writer.insert(at, Obj::new(key, drops));
                    writer.commit().retire();
                }
            });
        }
    });
    let keys = keys(&mm);
    assert_eq!(keys.len(), 2 * per_thread as usize, "no insertion lost");
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "kept in order");
    drop(mm);
    assert_eq!(drops.load(SeqCst), 2 * per_thread as usize);
}

#[test]
#[should_panic(expected = "past the end")]
fn insert_past_the_end_panics() {
    let domain = Domain::new();
    let (mm, drops) = mm(&domain, [1]);
    mm.write(&mm).insert(2, Obj::new(3, &drops));
}

#[test]
#[should_panic(expected = "out of bounds")]
fn remove_out_of_bounds_panics() {
    let domain = Domain::new();
    let (mm, _drops) = mm(&domain, [1]);
    mm.write(&mm).remove(0..2);
}

#[test]
#[should_panic(expected = "does not belong to")]
fn an_array_used_through_another_owner_panics() {
    let domain = Domain::new();
    let (a, _drops) = mm(&domain, [1]);
    let b = User::new(&domain, ());
    let _ = a.write(&a);
    let _ = a.write(&b);
}

#[test]
fn a_panicking_destructor_at_teardown_frees_the_rest() {
    struct Bomb(u32, Arc<AtomicUsize>);
    impl Drop for Bomb {
        fn drop(&mut self) {
            self.1.fetch_add(1, SeqCst);
            assert!(self.0 != 3, "bomb 3");
        }
    }
    let domain = Domain::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let objects = (0..8).map(|i| Box::new(Bomb(i, drops.clone()))).collect();
    let mm = User::new(&domain, Array::from_vec(objects));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(mm)));
    assert!(result.is_err(), "the panic reaches the last user's drop");
    assert_eq!(drops.load(SeqCst), 8, "every other object still freed");
}
