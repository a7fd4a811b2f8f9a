//! A worker's operations: read sections, board and owner writes, waiting
//! and handles.

use std::any::Any;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};

use ownrcu::{Batch, User};

use crate::objects::*;
use crate::sizes::*;

use super::*;

impl Worker<'_> {
    pub(super) fn enter_domain(&mut self, frame: Option<&Frame<'_>>) {
        if self.protected.len() >= MAX_DEPTH - 1 {
            return;
        }
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let guard = mt.domains[d].read();
        self.enter_flag(d);
        let ids = self.sample(d);
        self.protected.push(ids);
        self.nested(frame);
        self.check(frame);
        self.protected.pop();
        self.leave_flag(d);
        drop(guard);
    }

    pub(super) fn enter_owner(&mut self, frame: Option<&Frame<'_>>) {
        if self.protected.len() >= MAX_DEPTH - 1 {
            return;
        }
        let o = self.rng.below(self.users.len());
        let Some(user) = self.users[o].clone() else {
            return;
        };
        let d = self.mt.owner_domain[o];
        let read = user.read();
        self.enter_flag(d);
        let mut refs: Vec<&Obj> = read.slots.iter().filter_map(|s| s.load(&read)).collect();
        refs.push(&read.tag);
        let items = read.array.load(&read);
        refs.extend(items.iter().copied());
        let ids = self.sample(d);
        self.protected.push(ids);
        let inner = Frame {
            parent: frame,
            refs,
            slices: if cfg!(miri) { vec![items] } else { vec![] },
        };
        check_frames(Some(&inner));
        self.nested(Some(&inner));
        self.check(Some(&inner));
        self.protected.pop();
        self.leave_flag(d);
        drop(inner);
        drop(read);
    }

    /// Replaces one to three published objects of a board and retires the
    /// old ones.
    pub(super) fn board_replace(&mut self) {
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let board = &mt.boards[d];
        let mut old = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let cell = &board[self.rng.below(board.len())];
            let new = self.obj(0);
            let new_id = new.id;
            let mut object = cell.object.lock().unwrap();
            let was = cell.id.swap(new_id + 1, AcqRel);
            let unlinked = object.replace(new).expect("a published object");
            drop(object);
            assert_eq!(unlinked.id + 1, was);
            unlinked.check();
            old.push(unlinked);
        }
        let domain = &mt.domains[d];
        let ids: Vec<usize> = old.iter().map(|x| x.id).collect();
        let objects = match self.rng.below(5) {
            0 => {
                Batch::from_vec(domain, old).drain();
                ids.len()
            }
            1 => {
                let n = old.len();
                for x in old {
                    domain.retire(x as Box<dyn Any + Send>);
                }
                n
            }
            2 => {
                let n = old.len();
                for x in old {
                    domain.defer(move || {
                        if !x.is_live() {
                            x.table.anomalies.fetch_add(1, Relaxed);
                        }
                        drop(x);
                    });
                }
                n
            }
            3 => {
                let pair: Box<[Obj]> = old.into_iter().map(|x| *x).collect();
                domain.retire(pair);
                1
            }
            _ => {
                let n = old.len();
                for x in old {
                    domain.retire(x);
                }
                n
            }
        };
        mt.dom_retired[d].fetch_add(objects as u64, Relaxed);
        for id in ids {
            mt.dom_logs[d].push(id);
        }
    }

    pub(super) fn burst(&mut self) {
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let n = (1 + self.rng.below(BURST)).min(mt.table.room() / 8);
        let objects: Vec<Box<Obj>> = (0..n).map(|_| self.obj(0)).collect();
        let ids: Vec<usize> = objects.iter().map(|x| x.id).collect();
        for obj in objects {
            mt.domains[d].retire(obj);
        }
        mt.dom_retired[d].fetch_add(n as u64, Relaxed);
        for id in ids {
            mt.dom_logs[d].push(id);
        }
    }

    /// Takes this thread's user handle of a random owner for a write.
    pub(super) fn take_user(&mut self) -> Option<(usize, User<Data>)> {
        let o = self.rng.below(self.users.len());
        self.users[o].take().map(|u| (o, u))
    }

    pub(super) fn slot_op(&mut self) {
        let Some((o, user)) = self.take_user() else {
            return;
        };
        let tag = 1 + o as u8;
        let i = self.rng.below(user.slots.len());
        let replace = self.rng.chance(75);
        let unlinked = if replace {
            user.slots[i].replace(Some(self.obj(tag)), &user)
        } else {
            user.slots[i].take(&user)
        };
        // Moved into the block (see `St::slot_op`).
        if let Some(old) = { unlinked } {
            old.check();
            let id = old.id;
            match self.rng.below(3) {
                0 => old.retire(),
                1 => drop(old),
                _ => {
                    let mut batch = user.batch();
                    batch.push(old);
                    batch.drain();
                }
            }
            self.mt.own_logs[o].push(id);
        }
        self.users[o] = Some(user);
    }

    pub(super) fn owner_batch(&mut self) {
        let Some((o, user)) = self.take_user() else {
            return;
        };
        let tag = 1 + o as u8;
        let mut batch = user.batch_with_capacity(4);
        let mut ids = Vec::new();
        for _ in 0..1 + self.rng.below(4) {
            let i = self.rng.below(user.slots.len());
            let old = if self.rng.chance(50) {
                user.slots[i].replace(Some(self.obj(tag)), &user)
            } else {
                user.slots[i].take(&user)
            };
            if let Some(old) = old {
                old.check();
                ids.push(old.id);
                batch.push(old);
            }
        }
        assert_eq!(batch.len(), ids.len());
        if self.rng.chance(50) {
            batch.drain();
        } else {
            drop(batch);
        }
        for id in ids {
            self.mt.own_logs[o].push(id);
        }
        self.users[o] = Some(user);
    }

    pub(super) fn array_write(&mut self) {
        let Some((o, user)) = self.take_user() else {
            return;
        };
        let tag = 1 + o as u8;
        let may_wait = !self.reading();
        let mut writer = user.array.write(&user);
        let mut staged = ids(writer.items());
        for x in writer.items() {
            x.check();
        }
        let mut removed = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            let len = staged.len();
            let kind = if len > 8 { 0 } else { self.rng.below(4) };
            match kind {
                0 if len > 0 => {
                    let range = remove_range(&mut writer, &mut self.rng, len);
                    removed.extend(staged.drain(range));
                }
                1 if len > 0 => {
                    let at = self.rng.below(len);
                    let obj = self.obj(tag);
                    removed.push(std::mem::replace(&mut staged[at], obj.id));
                    writer.replace(at, obj);
                }
                _ => {
                    let at = self.rng.below(len + 1);
                    let obj = self.obj(tag);
                    staged.insert(at, obj.id);
                    writer.insert(at, obj);
                }
            }
        }
        assert_eq!(ids(writer.items()), staged);
        match self.rng.below(5) {
            0 => drop(writer),
            finish => {
                let out = writer.commit();
                assert_eq!(ids(out.objects()), removed);
                match finish {
                    1 => out.retire(),
                    2 => out.retire_each(),
                    3 if may_wait => {
                        out.synchronize();
                        for &id in &removed {
                            self.mt
                                .table
                                .assert_freed(id, "freed by Removed::synchronize");
                        }
                    }
                    _ => drop(out),
                }
            }
        }
        for id in removed {
            self.mt.own_logs[o].push(id);
        }
        self.users[o] = Some(user);
    }

    pub(super) fn synchronize(&mut self) {
        if self.reading() {
            return;
        }
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let running = mt.running(d);
        mt.domains[d].synchronize();
        mt.assert_ended(d, &running, "after synchronize");
    }

    pub(super) fn barrier(&mut self) {
        if self.reading() {
            return;
        }
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let retired = mt.dom_logs[d].since(&mut self.dom_cursor[d]);
        mt.domains[d].barrier();
        for id in retired {
            mt.table
                .assert_freed(id, "retired into the domain before Domain::barrier");
        }
    }

    pub(super) fn user_barrier(&mut self) {
        if self.reading() {
            return;
        }
        let o = self.rng.below(self.users.len());
        let Some(user) = &self.users[o] else {
            return;
        };
        let retired = self.mt.own_logs[o].since(&mut self.own_cursor[o]);
        user.barrier();
        for id in retired {
            self.mt
                .table
                .assert_freed(id, "retired through the owner before User::barrier");
        }
    }

    pub(super) fn cookie(&mut self) {
        let mt = self.mt;
        let d = self.rng.below(mt.domains.len());
        let running = mt.running(d);
        let cookie = mt.domains[d].grace_period();
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.remove(0);
        }
        self.cookies.push(MtCookie {
            domain: d,
            cookie,
            running,
        });
    }

    pub(super) fn poll(&mut self) {
        if self.cookies.is_empty() {
            return;
        }
        let c = &self.cookies[self.rng.below(self.cookies.len())];
        if self.mt.domains[c.domain].poll(&c.cookie) {
            self.mt
                .assert_ended(c.domain, &c.running, "poll(cookie) returned true");
        }
    }

    pub(super) fn wait(&mut self) {
        if self.cookies.is_empty() || self.reading() {
            return;
        }
        let c = &self.cookies[self.rng.below(self.cookies.len())];
        let domain = &self.mt.domains[c.domain];
        domain.wait(&c.cookie);
        assert!(domain.poll(&c.cookie), "poll is true after wait");
        self.mt
            .assert_ended(c.domain, &c.running, "after wait(cookie)");
    }

    /// User and holder handles come and go; the main thread keeps one user
    /// of every owner, so upgrades always succeed here.
    pub(super) fn handles(&mut self) {
        let o = self.rng.below(self.users.len());
        match self.rng.below(3) {
            0 => {
                if let Some(user) = self.users[o].take() {
                    drop(user);
                    assert!(
                        !self.holders[o].is_torn_down(),
                        "the main thread holds a user"
                    );
                } else {
                    let user = self.holders[o]
                        .upgrade()
                        .expect("upgrade succeeds while the main thread holds a user");
                    assert!(user.users() >= 2);
                    self.users[o] = Some(user);
                }
            }
            1 => {
                if let Some(user) = &self.users[o] {
                    let other = user.clone();
                    assert!(other.users() >= 3, "main, this thread, and the clone");
                }
            }
            _ => {
                let holder = self.holders[o].clone();
                assert!(!holder.is_torn_down());
            }
        }
    }
}
