//! A stalled reader: a thread that stays inside its read-side section while
//! writers keep going. Writers never block on it (retire, batches, drains
//! and owner retirement all return), nothing is freed that it could still
//! see, what waits grows only by the objects retired (counted in `pending`),
//! and once it leaves one barrier frees everything. Waiting from inside a
//! section panics with a message instead of hanging (see `tests/domain.rs`
//! for each waiting call).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

use ownrcu::{Array, Domain, User};

mod common;

use common::stalled_reader;

/// Objects retired while the reader is stalled (small under Miri).
const N: usize = if cfg!(miri) { 40 } else { 50_000 };

/// An object whose destructor counts itself and poisons its magic.
struct Obj {
    magic: u64,
    drops: Arc<AtomicUsize>,
}

const LIVE: u64 = 0x5eed_5eed_5eed_5eed;

impl Obj {
    fn new(drops: &Arc<AtomicUsize>) -> Box<Self> {
        Box::new(Self {
            magic: LIVE,
            drops: drops.clone(),
        })
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        assert_eq!(self.magic, LIVE, "freed twice");
        self.magic = 0;
        self.drops.fetch_add(1, SeqCst);
    }
}

#[test]
fn writers_keep_going_while_a_reader_stalls_and_everything_is_freed_after() {
    let domain = Domain::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let (leave, reader) = stalled_reader(&domain);
    let cookie = domain.grace_period();

    // Two writers, singles and batches, far past every rationing threshold:
    // each call returns, nothing is freed. Joined (not scoped) threads, so
    // their exit, which hands their buffers over, is over before the counts
    // are read (`Stats` is exact only with no such activity).
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (domain, drops) = (domain.clone(), drops.clone());
            thread::spawn(move || {
                for i in 0..N / 2 {
                    if i % 2 == 0 {
                        domain.retire(Obj::new(&drops));
                    } else {
                        let mut batch = domain.batch();
                        batch.push(Obj::new(&drops));
                        batch.drain();
                    }
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(
        drops.load(SeqCst),
        0,
        "freed under a reader that could see it"
    );
    assert!(
        !domain.poll(&cookie),
        "a grace period ended under the reader"
    );
    let stats = domain.stats();
    assert_eq!(stats.retired, N as u64);
    assert_eq!(stats.freed, 0);
    assert_eq!(stats.pending, N as u64, "what waits is what was retired");

    leave.send(()).unwrap();
    reader.join().unwrap();
    domain.wait(&cookie); // returns now that the reader has left
    assert!(domain.poll(&cookie));
    domain.barrier();
    assert_eq!(drops.load(SeqCst), N);
    assert_eq!(domain.stats().pending, 0);
}

#[test]
fn an_owner_keeps_retiring_while_a_reader_of_its_domain_stalls() {
    let domain = Domain::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let objects = (0..8).map(|_| Obj::new(&drops)).collect();
    let mm = User::new(&domain, Array::from_vec(objects));
    let (leave, reader) = stalled_reader(&domain);

    // Replace every object, over and over, one commit at a time.
    let rounds = N / 8;
    for _ in 0..rounds {
        for i in 0..8 {
            let mut writer = mm.write(&mm);
            writer.replace(i, Obj::new(&drops));
            writer.commit().retire();
        }
    }
    assert_eq!(
        drops.load(SeqCst),
        0,
        "freed under a reader that could see it"
    );
    let stats = mm.stats();
    assert_eq!(stats.retired, (rounds * 8) as u64);
    assert_eq!(stats.pending, stats.retired);

    leave.send(()).unwrap();
    reader.join().unwrap();
    mm.barrier();
    assert_eq!(drops.load(SeqCst), rounds * 8);
    drop(mm);
    assert_eq!(drops.load(SeqCst), rounds * 8 + 8);
}

/// The stalled reader belongs to the domain, not to the owner: the owner's
/// last user still tears it down at once, freeing the pending objects too.
#[test]
fn the_last_user_tears_down_directly_while_a_reader_of_the_domain_stalls() {
    let domain = Domain::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let objects = (0..N).map(|_| Obj::new(&drops)).collect();
    let mm = User::new(&domain, Array::from_vec(objects));
    let (leave, reader) = stalled_reader(&domain);
    let mut writer = mm.write(&mm);
    writer.remove(..N / 2);
    writer.commit().retire();
    assert_eq!(drops.load(SeqCst), 0);
    let grace_periods = domain.stats().grace_periods;
    drop(mm);
    assert_eq!(drops.load(SeqCst), N, "all freed directly");
    assert_eq!(domain.stats().grace_periods, grace_periods);
    leave.send(()).unwrap();
    reader.join().unwrap();
}

/// Stall warnings: a reader that holds a grace period up past the timeout
/// while a thread waits for it is reported once, naming its thread; the
/// waiter's call still completes once the reader leaves, also when the
/// hook panics; a grace period that nobody holds up is never reported.
#[test]
fn a_stalled_reader_is_reported_once_naming_its_thread() {
    use std::sync::{mpsc, Mutex};
    use std::time::Duration;

    for hook_panics in [false, true] {
        let (stall_tx, stall_rx) = mpsc::channel();
        let stall_tx = Mutex::new(stall_tx);
        let domain = Domain::builder()
            .reclaimer(false)
            .stall_timeout(Some(Duration::from_millis(20)))
            .on_stall(move |stall| {
                stall_tx.lock().unwrap().send(stall.clone()).unwrap();
                if hook_panics {
                    panic!("a stall hook that panics");
                }
            })
            .build();
        let (leave_tx, reader, reader_id) = common::named_stalled_reader(&domain, "stuck-reader");
        domain.retire(Box::new(1_u64));
        // The waiter: held up by the reader until it leaves.
        let waiter_domain = domain.clone();
        let waiter = thread::spawn(move || waiter_domain.synchronize());
        let stall = stall_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the stall was reported");
        assert_eq!(stall.thread.as_deref(), Some("stuck-reader"));
        assert_eq!(stall.thread_id, Some(reader_id));
        assert!(stall.held >= Duration::from_millis(20), "{stall:?}");
        assert!(stall.grace_period >= 1);
        assert!(format!("{domain:?}").contains(&format!("id: {}", stall.domain)));
        assert!(stall.to_string().contains("'stuck-reader'"), "{stall}");
        drop(leave_tx);
        reader.join().unwrap();
        waiter.join().unwrap();
        // Once per grace period: no second report of the same stall, and
        // none for grace periods that nobody held up.
        domain.synchronize();
        domain.barrier();
        assert!(stall_rx.try_recv().is_err(), "reported twice");
        assert_eq!(domain.stats().stalls, 1);
    }
}

/// An owned section that holds a grace period up is reported by where it
/// was made, not by a thread (it belongs to none).
#[test]
fn a_stalled_owned_section_is_reported_by_where_it_was_made() {
    use std::sync::{mpsc, Mutex};
    use std::time::Duration;

    let (stall_tx, stall_rx) = mpsc::channel();
    let stall_tx = Mutex::new(stall_tx);
    let domain = Domain::builder()
        .reclaimer(false)
        .stall_timeout(Some(Duration::from_millis(20)))
        .on_stall(move |stall| stall_tx.lock().unwrap().send(stall.clone()).unwrap())
        .build();
    let (section, made_at) = (domain.read_owned(), std::panic::Location::caller());
    let waiter_domain = domain.clone();
    let waiter = thread::spawn(move || waiter_domain.synchronize());
    let stall = stall_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the stall was reported");
    let at = stall.owned_section.expect("an owned section");
    assert_eq!((at.file(), at.line()), (made_at.file(), made_at.line()));
    assert_eq!((stall.thread.as_deref(), stall.thread_id), (None, None));
    assert!(stall.held >= Duration::from_millis(20), "{stall:?}");
    let line = stall.to_string();
    assert!(
        line.contains("owned section made at") && line.contains(made_at.file()),
        "{line}"
    );
    drop(section);
    waiter.join().unwrap();
    assert_eq!(domain.stats().stalls, 1);
}
