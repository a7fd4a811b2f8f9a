//! The multi-threaded model: the shared state (boards of published
//! objects, owners, logs of retired ids, open-section flags), the workers,
//! and a run; the workers' operations are in `ops`.

mod ops;

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::thread;

use ownrcu::{Array, Domain, GracePeriod, Holder, Slot, User};

use crate::objects::*;
use crate::seeds::*;
use crate::sizes::*;

/// A published pointer of a domain's board: the id (plus one) readers load,
/// and the object itself, owned by the board while published.
struct Cell {
    id: AtomicUsize,
    object: Mutex<Option<Box<Obj>>>,
}

/// Ids whose retirement has returned, in one domain or through one owner.
struct Log {
    entries: Box<[AtomicUsize]>,
    len: AtomicUsize,
}

impl Log {
    fn new(capacity: usize) -> Self {
        Self {
            entries: (0..capacity).map(|_| AtomicUsize::new(0)).collect(),
            len: AtomicUsize::new(0),
        }
    }

    /// Called after the retirement of `id` returned.
    fn push(&self, id: usize) {
        let at = self.len.fetch_add(1, Relaxed);
        // Release: whoever reads the entry sees the retirement as done.
        self.entries[at].store(id + 1, Release);
    }

    /// The ids logged from `*cursor` on (each retired before this call
    /// returns), moving the cursor past the complete prefix.
    fn since(&self, cursor: &mut usize) -> Vec<usize> {
        let len = self.len.load(Acquire).min(self.entries.len());
        let mut out = Vec::new();
        let mut complete = true;
        for at in *cursor..len {
            match self.entries[at].load(Acquire) {
                0 => complete = false,
                entry => {
                    out.push(entry - 1);
                    if complete {
                        *cursor = at + 1;
                    }
                }
            }
        }
        out
    }

    fn len(&self) -> usize {
        self.len.load(Acquire)
    }
}

struct Mt {
    table: Arc<Table>,
    domains: Vec<Domain>,
    boards: Vec<Vec<Cell>>,
    dom_logs: Vec<Log>,
    own_logs: Vec<Log>,
    /// Objects retired into each domain, as the domain counts them.
    dom_retired: Vec<AtomicU64>,
    /// `[thread][domain]`: the sequence number of the thread's outermost
    /// open section of the domain, 0 if none. Set after entering, cleared
    /// before leaving.
    flags: Vec<Vec<AtomicU64>>,
    owner_domain: Vec<usize>,
}

#[derive(Clone, Copy, Debug)]
enum MtOp {
    EnterDomain,
    EnterOwner,
    BoardReplace,
    Burst,
    SlotWrite,
    OwnerBatchWrite,
    ArrayWrite,
    Synchronize,
    Barrier,
    UserBarrier,
    Cookie,
    Poll,
    Wait,
    Handles,
    Yield,
}

const MT_WEIGHTS: &[(usize, MtOp)] = &[
    (8, MtOp::EnterDomain),
    (8, MtOp::EnterOwner),
    (10, MtOp::BoardReplace),
    (1, MtOp::Burst),
    (8, MtOp::SlotWrite),
    (3, MtOp::OwnerBatchWrite),
    (5, MtOp::ArrayWrite),
    (2, MtOp::Synchronize),
    (2, MtOp::Barrier),
    (2, MtOp::UserBarrier),
    (2, MtOp::Cookie),
    (3, MtOp::Poll),
    (1, MtOp::Wait),
    (3, MtOp::Handles),
    (2, MtOp::Yield),
];

struct MtCookie {
    domain: usize,
    cookie: GracePeriod,
    /// `(thread, section)` flags seen set when the cookie was taken.
    running: Vec<(usize, u64)>,
}

struct Worker<'m> {
    mt: &'m Mt,
    t: usize,
    rng: Rng,
    budget: usize,
    users: Vec<Option<User<Data>>>,
    holders: Vec<Holder<Data>>,
    dom_cursor: Vec<usize>,
    own_cursor: Vec<usize>,
    cookies: Vec<MtCookie>,
    /// Open guards per domain on this thread.
    depth: Vec<usize>,
    /// Ids each open section loaded from a board.
    protected: Vec<Vec<usize>>,
    seq: u64,
}

impl Mt {
    /// Which `(thread, section)` sections of domain `d` are open now.
    fn running(&self, d: usize) -> Vec<(usize, u64)> {
        (0..self.flags.len())
            .filter_map(|t| match self.flags[t][d].load(Acquire) {
                0 => None,
                seq => Some((t, seq)),
            })
            .collect()
    }

    fn assert_ended(&self, d: usize, running: &[(usize, u64)], what: &str) {
        for &(t, seq) in running {
            assert_ne!(
                self.flags[t][d].load(Acquire),
                seq,
                "{what}: section {seq} of thread {t}, running before, is still open"
            );
        }
    }
}

impl Worker<'_> {
    fn obj(&self, tag: u8) -> Box<Obj> {
        new_obj(&self.mt.table, tag)
    }

    fn reading(&self) -> bool {
        !self.protected.is_empty()
    }

    fn run(mut self) {
        while self.budget > 0 {
            self.step(None);
        }
        assert!(!self.reading());
    }

    fn step(&mut self, frame: Option<&Frame<'_>>) {
        self.budget -= 1;
        match self.rng.pick(MT_WEIGHTS) {
            MtOp::EnterDomain => self.enter_domain(frame),
            MtOp::EnterOwner => self.enter_owner(frame),
            MtOp::BoardReplace => self.board_replace(),
            MtOp::Burst => self.burst(),
            MtOp::SlotWrite => self.slot_op(),
            MtOp::OwnerBatchWrite => self.owner_batch(),
            MtOp::ArrayWrite => self.array_write(),
            MtOp::Synchronize => self.synchronize(),
            MtOp::Barrier => self.barrier(),
            MtOp::UserBarrier => self.user_barrier(),
            MtOp::Cookie => self.cookie(),
            MtOp::Poll => self.poll(),
            MtOp::Wait => self.wait(),
            MtOp::Handles => self.handles(),
            MtOp::Yield => thread::yield_now(),
        }
        self.check(frame);
    }

    fn check(&self, frame: Option<&Frame<'_>>) {
        let table = &self.mt.table;
        table.assert_no_anomaly();
        for ids in &self.protected {
            for &id in ids {
                table.assert_live(
                    id,
                    "loaded from a board inside a read section that is still open",
                );
            }
        }
        check_frames(frame);
    }

    fn nested(&mut self, frame: Option<&Frame<'_>>) {
        let n = 1 + self.rng.below(5);
        for _ in 0..n {
            if self.budget == 0 {
                break;
            }
            self.step(frame);
        }
    }

    fn enter_flag(&mut self, d: usize) {
        self.depth[d] += 1;
        if self.depth[d] == 1 {
            self.seq += 1;
            self.mt.flags[self.t][d].store(self.seq, Release);
        }
    }

    fn leave_flag(&mut self, d: usize) {
        self.depth[d] -= 1;
        if self.depth[d] == 0 {
            self.mt.flags[self.t][d].store(0, Release);
        }
    }

    /// Loads a few board cells of domain `d` inside a section.
    fn sample(&mut self, d: usize) -> Vec<usize> {
        let mt = self.mt;
        let board = &mt.boards[d];
        (0..1 + self.rng.below(3))
            .filter_map(
                |_| match board[self.rng.below(board.len())].id.load(Acquire) {
                    0 => None,
                    id => Some(id - 1),
                },
            )
            .collect()
    }
}

fn owner_data(table: &Arc<Table>, o: usize) -> Data {
    let tag = 1 + o as u8;
    Data {
        slots: (0..MT_SLOTS)
            .map(|_| Slot::new(new_obj(table, tag)))
            .collect(),
        array: Array::from_vec((0..4).map(|_| new_obj(table, tag)).collect()),
        tag: new_obj(table, tag),
    }
}

pub(crate) fn run_multi_thread(seed: u64) {
    let capacity = MT_THREADS * MT_OPS * 24 + 1000;
    let table = Table::new(capacity);
    let domains: Vec<Domain> = (0..2)
        .map(|_| Domain::builder().reclaimer(false).build())
        .collect();
    let boards = (0..domains.len())
        .map(|_| {
            (0..MT_CELLS)
                .map(|_| {
                    let obj = new_obj(&table, 0);
                    Cell {
                        id: AtomicUsize::new(obj.id + 1),
                        object: Mutex::new(Some(obj)),
                    }
                })
                .collect()
        })
        .collect();
    let owners: Vec<User<Data>> = (0..MT_OWNERS)
        .map(|o| User::new(&domains[o % 2], owner_data(&table, o)))
        .collect();
    let mt = Mt {
        table: table.clone(),
        boards,
        dom_logs: (0..domains.len()).map(|_| Log::new(capacity)).collect(),
        own_logs: (0..MT_OWNERS).map(|_| Log::new(capacity)).collect(),
        dom_retired: (0..domains.len()).map(|_| AtomicU64::new(0)).collect(),
        flags: (0..MT_THREADS)
            .map(|_| (0..domains.len()).map(|_| AtomicU64::new(0)).collect())
            .collect(),
        owner_domain: (0..MT_OWNERS).map(|o| o % 2).collect(),
        domains,
    };
    let holders: Vec<Holder<Data>> = owners.iter().map(User::holder).collect();

    let failure = thread::scope(|s| {
        let mut workers = Vec::new();
        for t in 0..MT_THREADS {
            let worker = Worker {
                mt: &mt,
                t,
                rng: Rng::new(Rng::new(seed ^ (t as u64 + 1).wrapping_mul(0x9e37)).next()),
                budget: MT_OPS,
                users: owners.iter().map(|u| Some(u.clone())).collect(),
                holders: owners.iter().map(User::holder).collect(),
                dom_cursor: vec![0; mt.domains.len()],
                own_cursor: vec![0; MT_OWNERS],
                cookies: Vec::new(),
                depth: vec![0; mt.domains.len()],
                protected: Vec::new(),
                seq: 0,
            };
            let handle = thread::Builder::new()
                .name(format!("model worker {t}"))
                .spawn_scoped(s, move || worker.run())
                .expect("spawn a worker");
            workers.push(handle);
        }
        // The first failure, with its message (not just "a thread panicked").
        let mut failure = None;
        for (t, handle) in workers.into_iter().enumerate() {
            if let Err(payload) = handle.join() {
                failure.get_or_insert(format!("worker {t}: {}", panic_message(&*payload)));
            }
        }
        failure
    });
    if let Some(message) = failure {
        panic!("{message}");
    }

    // Everything the workers retired has been logged; the barriers free it.
    for (d, domain) in mt.domains.iter().enumerate() {
        let retired = mt.dom_logs[d].since(&mut 0);
        assert_eq!(retired.len(), mt.dom_logs[d].len());
        domain.barrier();
        for id in retired {
            table.assert_freed(id, "retired into the domain, before the final barrier");
        }
        let stats = domain.stats();
        assert_eq!(
            stats.retired,
            mt.dom_retired[d].load(Relaxed),
            "Stats::retired"
        );
        assert_eq!(stats.pending, 0, "nothing pending after the final barrier");
    }
    // Each owner's last user is the main thread's: dropping it frees every
    // object of the owner.
    for (o, user) in owners.into_iter().enumerate() {
        let retired = mt.own_logs[o].since(&mut 0);
        assert_eq!(user.users(), 1, "the workers' handles are gone");
        assert_eq!(
            user.stats().retired,
            retired.len() as u64,
            "OwnerStats::retired"
        );
        if o % 2 == 0 {
            user.barrier();
            for &id in &retired {
                table.assert_freed(id, "retired through the owner before User::barrier");
            }
        }
        drop(user);
        for id in 0..table.created() {
            if usize::from(table.tags[id].load(Relaxed)) == o + 1 {
                table.assert_freed(id, "an object of an owner whose last user dropped");
            }
        }
        assert!(holders[o].is_torn_down());
        assert!(
            holders[o].upgrade().is_none(),
            "upgrade fails after teardown"
        );
        assert_eq!(holders[o].stats().pending, 0);
    }
    drop(holders);
    // The boards' objects go with their domains.
    let Mt {
        domains, boards, ..
    } = mt;
    let mut last = Vec::new();
    for (domain, board) in domains.iter().zip(boards) {
        for cell in board {
            let obj = cell.object.into_inner().unwrap().expect("published");
            last.push(obj.id);
            domain.retire(obj);
        }
    }
    drop(domains);
    for id in last {
        table.assert_freed(id, "retired into a domain whose last handle was dropped");
    }
    table.assert_all_freed_once();
}
