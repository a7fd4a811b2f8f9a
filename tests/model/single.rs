//! The single-threaded model: one thread, deterministic per seed; its
//! operations are grouped in `domain` (read sections, retirement into
//! domains, waiting) and `owner` (owner handles and writers).

mod domain;
mod owner;

use std::sync::Arc;

use ownrcu::{Batch, Domain, GracePeriod, Holder, Stats, User};

use crate::objects::*;
use crate::seeds::*;
use crate::sizes::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    EnterDomain,
    EnterOwner,
    Publish,
    Retire,
    DomainBatch,
    Burst,
    ThreadRetire,
    Synchronize,
    Barrier,
    Cookie,
    Poll,
    Wait,
    UserNew,
    UserClone,
    UserDrop,
    Holders,
    Upgrade,
    SlotWrite,
    OwnerBatchWrite,
    ArrayWrite,
    UserBarrier,
    Exclusive,
    Recycle,
}

const ST_WEIGHTS: &[(usize, Op)] = &[
    (8, Op::EnterDomain),
    (8, Op::EnterOwner),
    (6, Op::Publish),
    (8, Op::Retire),
    (4, Op::DomainBatch),
    (1, Op::Burst),
    (1, Op::ThreadRetire),
    (2, Op::Synchronize),
    (3, Op::Barrier),
    (3, Op::Cookie),
    (4, Op::Poll),
    (2, Op::Wait),
    (2, Op::UserNew),
    (3, Op::UserClone),
    (3, Op::UserDrop),
    (3, Op::Holders),
    (2, Op::Upgrade),
    (8, Op::SlotWrite),
    (4, Op::OwnerBatchWrite),
    (6, Op::ArrayWrite),
    (2, Op::UserBarrier),
    (3, Op::Exclusive),
    (1, Op::Recycle),
];

/// A domain in the model.
struct DomainM {
    domain: Domain,
    global: bool,
    /// Objects readers of the domain can reach: boxed, as they are retired.
    #[allow(clippy::vec_box)]
    published: Vec<Box<Obj>>,
    /// Retired into the domain, not yet known to be freed.
    must_free: Vec<usize>,
    /// Objects retired and non-empty batches drained, as the domain counts.
    retired: u64,
    batches: u64,
    /// Counters when the model started using the domain.
    base: Stats,
}

impl DomainM {
    fn new(global: bool) -> Self {
        let domain = if global {
            Domain::global().clone()
        } else {
            Domain::builder().reclaimer(false).build()
        };
        let base = domain.stats();
        Self {
            domain,
            global,
            published: Vec::new(),
            must_free: Vec::new(),
            retired: 0,
            batches: 0,
            base,
        }
    }
}

/// An owner in the model.
struct OwnerM {
    key: u64,
    domain: usize,
    users: Vec<User<Data>>,
    holders: Vec<Holder<Data>>,
    /// User handles held by open read sections (clones made on entry).
    pins: usize,
    slots: Vec<Option<usize>>,
    array: Vec<usize>,
    tag: usize,
    /// Retired through the owner, not yet known to be freed.
    must_free: Vec<usize>,
    retired: u64,
    registrations: u64,
}

/// Holders of an owner that was torn down.
struct DeadOwner {
    domain: usize,
    holders: Vec<Holder<Data>>,
}

struct SectionM {
    seq: u64,
    domain: usize,
    /// Objects reachable when the section began.
    protected: Vec<usize>,
}

struct CookieM {
    domain: usize,
    cookie: GracePeriod,
    /// Sections of its domain open when the cookie was taken.
    open: Vec<u64>,
}

struct St {
    rng: Rng,
    table: Arc<Table>,
    domains: Vec<DomainM>,
    owners: Vec<OwnerM>,
    dead: Vec<DeadOwner>,
    sections: Vec<SectionM>,
    cookies: Vec<CookieM>,
    next_key: u64,
    next_seq: u64,
    budget: usize,
}

pub(crate) fn run_single_thread(seed: u64) {
    let mut st = St {
        rng: Rng::new(seed),
        table: Table::new(ST_OPS * 40 + 1000),
        // Two user-created domains (recycled now and then) and the global one.
        domains: vec![DomainM::new(false), DomainM::new(false), DomainM::new(true)],
        owners: Vec::new(),
        dead: Vec::new(),
        sections: Vec::new(),
        cookies: Vec::new(),
        next_key: 0,
        next_seq: 0,
        budget: ST_OPS,
    };
    st.user_new();
    st.user_new();
    while st.budget > 0 {
        st.step(None);
    }
    st.finish();
}

impl St {
    fn obj(&self) -> Box<Obj> {
        new_obj(&self.table, 0)
    }

    fn in_section(&self, d: usize) -> bool {
        self.sections.iter().any(|s| s.domain == d)
    }

    fn owner_index(&self, key: u64) -> Option<usize> {
        self.owners.iter().position(|o| o.key == key)
    }

    /// A random owner with a user handle in the model, and one of its users.
    fn pick_user(&mut self) -> Option<(usize, usize)> {
        let with_users: Vec<usize> = (0..self.owners.len())
            .filter(|&o| !self.owners[o].users.is_empty())
            .collect();
        if with_users.is_empty() {
            return None;
        }
        let o = with_users[self.rng.below(with_users.len())];
        let j = self.rng.below(self.owners[o].users.len());
        Some((o, j))
    }

    fn step(&mut self, frame: Option<&Frame<'_>>) {
        self.budget -= 1;
        match self.rng.pick(ST_WEIGHTS) {
            Op::EnterDomain => self.enter_domain(frame),
            Op::EnterOwner => self.enter_owner(frame),
            Op::Publish => self.publish(),
            Op::Retire => self.retire(),
            Op::DomainBatch => self.domain_batch(),
            Op::Burst => self.burst(),
            Op::ThreadRetire => self.thread_retire(),
            Op::Synchronize => self.synchronize(),
            Op::Barrier => self.barrier(),
            Op::Cookie => self.cookie(),
            Op::Poll => self.poll(),
            Op::Wait => self.wait(),
            Op::UserNew => self.user_new(),
            Op::UserClone => self.user_clone(),
            Op::UserDrop => self.user_drop(),
            Op::Holders => self.holder_op(),
            Op::Upgrade => self.upgrade(),
            Op::SlotWrite => self.slot_op(),
            Op::OwnerBatchWrite => self.owner_batch(),
            Op::ArrayWrite => self.array_write(),
            Op::UserBarrier => self.user_barrier(),
            Op::Exclusive => self.exclusive(),
            Op::Recycle => self.recycle(),
        }
        self.check(frame);
    }

    /// Runs a few operations inside the section just entered.
    fn nested(&mut self, frame: Option<&Frame<'_>>) {
        let n = 1 + self.rng.below(6);
        for _ in 0..n {
            if self.budget == 0 {
                break;
            }
            self.step(frame);
        }
    }

    /// Everything the model knows must hold right now.
    fn check(&self, frame: Option<&Frame<'_>>) {
        let table = &self.table;
        table.assert_no_anomaly();
        for s in &self.sections {
            for &id in &s.protected {
                table.assert_live(id, "it was reachable when a still-open read section began");
            }
        }
        check_frames(frame);
        for (d, dm) in self.domains.iter().enumerate() {
            for obj in &dm.published {
                table.assert_live(obj.id, "published in a domain");
            }
            let stats = dm.domain.stats();
            assert_eq!(
                stats.retired - dm.base.retired,
                dm.retired,
                "domain {d}: Stats::retired"
            );
            assert_eq!(
                stats.batches - dm.base.batches,
                dm.batches,
                "domain {d}: Stats::batches"
            );
            assert!(stats.freed <= stats.retired, "domain {d}: freed > retired");
        }
        for om in &self.owners {
            for &id in om.slots.iter().flatten().chain(&om.array) {
                table.assert_live(id, "in a slot or array of a live owner");
            }
            table.assert_live(om.tag, "the data of a live owner");
            let Some(user) = om.users.first() else {
                continue;
            };
            assert_eq!(user.users(), om.users.len() + om.pins, "User::users");
            let stats = user.stats();
            assert_eq!(stats.retired, om.retired, "OwnerStats::retired");
            assert_eq!(
                stats.registrations, om.registrations,
                "OwnerStats::registrations"
            );
            let unfreed = om
                .must_free
                .iter()
                .filter(|&&id| table.drops(id) == 0)
                .count() as u64;
            assert_eq!(
                stats.pending, unfreed,
                "OwnerStats::pending is the number of retired objects not freed yet"
            );
            assert_eq!(
                stats.freed_after_grace_period + stats.freed_directly + stats.pending,
                stats.retired,
                "OwnerStats add up"
            );
        }
    }

    fn open_section(&mut self, domain: usize, protected: Vec<usize>) -> u64 {
        self.next_seq += 1;
        self.sections.push(SectionM {
            seq: self.next_seq,
            domain,
            protected,
        });
        self.next_seq
    }

    fn close_section(&mut self, seq: u64) {
        let s = self.sections.pop().expect("an open section");
        assert_eq!(s.seq, seq);
        for id in s.protected {
            self.table
                .assert_live(id, "reachable when the section began, which is ending now");
        }
    }

    // ----- domains come and go ---------------------------------------------

    /// Tears down every owner of a user-created domain, then the domain
    /// itself (its last handle), and starts a fresh one in its place.
    fn recycle(&mut self) {
        if !self.sections.is_empty() {
            return;
        }
        let d = self.rng.below(self.domains.len());
        if self.domains[d].global {
            return;
        }
        while let Some(o) = self.owners.iter().position(|om| om.domain == d) {
            let mut om = self.owners.remove(o);
            assert_eq!(om.pins, 0);
            let users = std::mem::take(&mut om.users);
            drop(users);
            self.torn_down(om, "recycling its domain");
        }
        self.dead.retain(|dead| dead.domain != d);
        self.cookies.retain(|c| c.domain != d);
        let mut dm = std::mem::replace(&mut self.domains[d], DomainM::new(false));
        let published = std::mem::take(&mut dm.published);
        dm.must_free.extend(published.iter().map(|x| x.id));
        dm.retired += published.len() as u64;
        dm.batches += u64::from(!published.is_empty());
        Batch::from_vec(&dm.domain, published).drain();
        let stats = dm.domain.stats();
        assert_eq!(stats.retired, dm.retired);
        drop(dm.domain);
        for id in dm.must_free {
            self.table
                .assert_freed(id, "retired into a domain whose last handle was dropped");
        }
    }

    /// Closes everything down; every object must have been freed once.
    fn finish(mut self) {
        assert!(self.sections.is_empty());
        self.cookies.clear();
        for mut om in std::mem::take(&mut self.owners) {
            let users = std::mem::take(&mut om.users);
            drop(users);
            self.torn_down(om, "end of the run");
        }
        self.dead.clear();
        for mut dm in std::mem::take(&mut self.domains) {
            for obj in std::mem::take(&mut dm.published) {
                dm.must_free.push(obj.id);
                dm.domain.retire(obj);
            }
            if dm.global {
                dm.domain.barrier();
            } else {
                drop(dm.domain);
            }
            for id in dm.must_free {
                self.table
                    .assert_freed(id, "retired into a domain, at the end");
            }
        }
        self.table.assert_all_freed_once();
    }
}
