//! Read sections, retirement into domains (single, batch, burst, another
//! thread), and waiting (synchronize, barrier, cookies).

use std::any::Any;
use std::sync::atomic::Ordering::Relaxed;
use std::thread;

use ownrcu::Batch;

use crate::objects::*;
use crate::sizes::*;

use super::*;

impl St {
    // ----- read sections ---------------------------------------------------

    pub(super) fn enter_domain(&mut self, frame: Option<&Frame<'_>>) {
        if self.sections.len() >= MAX_DEPTH {
            return;
        }
        let d = self.rng.below(self.domains.len());
        // A handle of our own: the guard borrows it, and the operations
        // inside the section may do anything with the model's.
        let handle = self.domains[d].domain.clone();
        let guard = handle.read();
        assert!(std::ptr::eq(guard.domain(), &handle));
        let protected = self.domains[d].published.iter().map(|o| o.id).collect();
        let seq = self.open_section(d, protected);
        self.nested(frame);
        self.close_section(seq);
        drop(guard);
    }

    pub(super) fn enter_owner(&mut self, frame: Option<&Frame<'_>>) {
        if self.sections.len() >= MAX_DEPTH {
            return;
        }
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        // The section's own user handle: the read borrows it, so the model's
        // handles may all go meanwhile; the owner lives until it drops.
        let user = self.owners[o].users[j].clone();
        let om = &mut self.owners[o];
        om.pins += 1;
        let (key, d) = (om.key, om.domain);
        let read = user.read();
        let mut refs = Vec::new();
        assert_eq!(read.slots.len(), om.slots.len(), "slot count");
        for (i, slot) in read.slots.iter().enumerate() {
            let got = slot.load(&read);
            assert_eq!(got.map(|x| x.id), om.slots[i], "Slot::load of slot {i}");
            refs.extend(got);
        }
        let items = read.array.load(&read);
        assert_eq!(ids(items), om.array, "Array::load");
        read.tag.check();
        refs.push(&read.tag);
        refs.extend(items.iter().copied());
        let mut protected: Vec<usize> = refs.iter().map(|x| x.id).collect();
        protected.extend(self.domains[d].published.iter().map(|x| x.id));
        let seq = self.open_section(d, protected);
        let inner = Frame {
            parent: frame,
            refs,
            slices: if cfg!(miri) { vec![items] } else { vec![] },
        };
        check_frames(Some(&inner));
        self.nested(Some(&inner));
        check_frames(Some(&inner));
        self.close_section(seq);
        drop(inner);
        drop(read);
        let o = self
            .owner_index(key)
            .expect("a pinned owner is not torn down");
        let om = &mut self.owners[o];
        om.pins -= 1;
        let last = om.users.is_empty() && om.pins == 0;
        drop(user);
        if last {
            let om = self.owners.remove(o);
            self.torn_down(om, "the last user was a read section's");
        }
    }

    // ----- domain retirement ---------------------------------------------

    /// An object to retire from domain `d`: a published one (unlinked now),
    /// or a fresh one.
    pub(super) fn victim(&mut self, d: usize) -> Box<Obj> {
        let dm = &mut self.domains[d];
        if !dm.published.is_empty() && self.rng.chance(80) {
            let i = self.rng.below(dm.published.len());
            dm.published.swap_remove(i)
        } else {
            new_obj(&self.table, 0)
        }
    }

    pub(super) fn publish(&mut self) {
        let d = self.rng.below(self.domains.len());
        let n = 1 + self.rng.below(3);
        for _ in 0..n {
            if self.domains[d].published.len() >= MAX_PUBLISHED {
                return self.retire();
            }
            let obj = self.obj();
            self.domains[d].published.push(obj);
        }
    }

    pub(super) fn retire(&mut self) {
        let d = self.rng.below(self.domains.len());
        let victim = self.victim(d);
        let variant = self.rng.below(4);
        let second = if variant == 3 {
            Some(self.victim(d))
        } else {
            None
        };
        let dm = &mut self.domains[d];
        dm.must_free.push(victim.id);
        dm.retired += 1;
        match (variant, second) {
            (0, _) => dm.domain.retire(victim),
            (1, _) => dm.domain.retire(victim as Box<dyn Any + Send>),
            (2, _) => dm.domain.defer(move || {
                // Run after a grace period: the object is still alive.
                if !victim.is_live() {
                    victim.table.anomalies.fetch_add(1, Relaxed);
                }
                drop(victim);
            }),
            (_, Some(second)) => {
                dm.must_free.push(second.id);
                // One unsized object holding two.
                let pair: Box<[Obj]> = vec![*victim, *second].into_boxed_slice();
                dm.domain.retire(pair);
            }
            _ => unreachable!(),
        }
    }

    pub(super) fn domain_batch(&mut self) {
        let d = self.rng.below(self.domains.len());
        let k = self.rng.below(5);
        let victims: Vec<Box<Obj>> = (0..k).map(|_| self.victim(d)).collect();
        let variant = self.rng.below(4);
        let drain = self.rng.chance(70);
        let dm = &mut self.domains[d];
        dm.must_free.extend(victims.iter().map(|v| v.id));
        dm.retired += k as u64;
        dm.batches += u64::from(k > 0);
        let batch = match variant {
            0 => {
                let mut batch = dm.domain.batch();
                for v in victims {
                    batch.push(v);
                }
                batch
            }
            1 => {
                let mut batch = Batch::new(&dm.domain);
                batch.extend(victims);
                batch
            }
            2 => {
                let mut batch = Batch::with_capacity(&dm.domain, k);
                batch.extend(victims);
                batch
            }
            _ => Batch::from_vec(&dm.domain, victims),
        };
        assert_eq!(batch.len(), k);
        assert_eq!(batch.is_empty(), k == 0);
        assert!(std::ptr::eq(batch.domain(), &dm.domain));
        if drain {
            batch.drain();
        } else {
            drop(batch);
        }
    }

    /// Many single retirements (or one big batch): buffers fill and are
    /// handed over, grace periods start by count, amortized frees run.
    pub(super) fn burst(&mut self) {
        let n = (1 + self.rng.below(BURST)).min(self.table.room() / 4);
        let singly = self.rng.chance(75);
        let objects: Vec<Box<Obj>> = (0..n).map(|_| self.obj()).collect();
        let d = self.rng.below(self.domains.len());
        let dm = &mut self.domains[d];
        dm.must_free.extend(objects.iter().map(|o| o.id));
        dm.retired += n as u64;
        if singly {
            for obj in objects {
                dm.domain.retire(obj);
            }
        } else if n > 0 {
            dm.batches += 1;
            Batch::from_vec(&dm.domain, objects).drain();
        }
    }

    /// A short-lived thread retires into a domain and exits: its buffer is
    /// handed to the domain, so the next barrier frees it.
    pub(super) fn thread_retire(&mut self) {
        let d = self.rng.below(self.domains.len());
        let n = 1 + self.rng.below(6);
        let objects: Vec<Box<Obj>> = (0..n).map(|_| self.obj()).collect();
        let read_too = self.rng.chance(50);
        let dm = &mut self.domains[d];
        dm.must_free.extend(objects.iter().map(|o| o.id));
        dm.retired += n as u64;
        // A plain `join` (not a scope) also waits for the thread's locals to
        // be destroyed, which hands its buffer over.
        let domain = dm.domain.clone();
        thread::spawn(move || {
            for obj in objects {
                if read_too {
                    let _guard = domain.read();
                    domain.retire(obj);
                } else {
                    domain.retire(obj);
                }
            }
        })
        .join()
        .expect("the helper thread");
    }

    // ----- waiting -------------------------------------------------------

    /// A domain with no section open on this thread (waiting is allowed).
    pub(super) fn idle_domain(&mut self) -> Option<usize> {
        let idle: Vec<usize> = (0..self.domains.len())
            .filter(|&d| !self.in_section(d))
            .collect();
        (!idle.is_empty()).then(|| idle[self.rng.below(idle.len())])
    }

    pub(super) fn total_drops(&self) -> usize {
        (0..self.table.created())
            .map(|id| usize::from(self.table.drops(id)))
            .sum()
    }

    pub(super) fn synchronize(&mut self) {
        let Some(d) = self.idle_domain() else {
            return;
        };
        let before = self.domains[d].domain.stats().grace_periods;
        let drops = self.total_drops();
        self.domains[d].domain.synchronize();
        assert_eq!(
            self.total_drops(),
            drops,
            "Domain::synchronize does not free anything"
        );
        let after = self.domains[d].domain.stats().grace_periods;
        assert!(after > before, "synchronize completed a grace period");
    }

    pub(super) fn barrier(&mut self) {
        let Some(d) = self.idle_domain() else {
            return;
        };
        let dm = &mut self.domains[d];
        dm.domain.barrier();
        for id in dm.must_free.drain(..) {
            self.table
                .assert_freed(id, "retired into the domain before Domain::barrier");
        }
        let stats = dm.domain.stats();
        assert_eq!(
            stats.freed - dm.base.freed,
            stats.retired - dm.base.retired,
            "nothing is pending after a barrier (single thread)"
        );
    }

    pub(super) fn cookie(&mut self) {
        let d = self.rng.below(self.domains.len());
        let open = self
            .sections
            .iter()
            .filter(|s| s.domain == d)
            .map(|s| s.seq)
            .collect();
        let cookie = self.domains[d].domain.grace_period();
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(CookieM {
            domain: d,
            cookie,
            open,
        });
    }

    pub(super) fn assert_cookie_complete(&self, c: &CookieM) {
        for &seq in &c.open {
            assert!(
                self.sections.iter().all(|s| s.seq != seq),
                "a cookie completed while a section running when it was taken is still open"
            );
        }
    }

    pub(super) fn poll(&mut self) {
        if self.cookies.is_empty() {
            return;
        }
        let c = &self.cookies[self.rng.below(self.cookies.len())];
        if self.domains[c.domain].domain.poll(&c.cookie) {
            self.assert_cookie_complete(c);
            // Complete: `wait` returns at once, even inside a section.
            self.domains[c.domain].domain.wait(&c.cookie);
        }
    }

    pub(super) fn wait(&mut self) {
        if self.cookies.is_empty() {
            return;
        }
        let i = self.rng.below(self.cookies.len());
        let c = &self.cookies[i];
        if self.in_section(c.domain) {
            return;
        }
        let domain = &self.domains[c.domain].domain;
        domain.wait(&c.cookie);
        assert!(domain.poll(&c.cookie), "poll is true after wait");
        self.assert_cookie_complete(c);
    }
}
