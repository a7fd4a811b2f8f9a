//! Owners: user and holder handles, teardown, and the writers (slots,
//! owner batches, arrays, barriers, exclusive access).

use ownrcu::{Array, Slot, User};

use crate::objects::*;
use crate::sizes::*;

use super::*;

impl St {
    // ----- owners: handles ------------------------------------------------

    pub(super) fn user_new(&mut self) {
        if self.owners.len() >= MAX_OWNERS || self.table.room() < 64 {
            return;
        }
        let d = self.rng.below(self.domains.len());
        let n_slots = 1 + self.rng.below(4);
        let mut slots = Vec::new();
        let mut slot_ids = Vec::new();
        for _ in 0..n_slots {
            match self.rng.below(4) {
                0 => {
                    slot_ids.push(None);
                    slots.push(Slot::empty());
                }
                1 => {
                    slot_ids.push(None);
                    slots.push(Slot::default());
                }
                _ => {
                    let obj = self.obj();
                    slot_ids.push(Some(obj.id));
                    slots.push(Slot::new(obj));
                }
            }
        }
        let objects: Vec<Box<Obj>> = (0..self.rng.below(5)).map(|_| self.obj()).collect();
        let array_ids = objects.iter().map(|o| o.id).collect();
        let array = match (objects.is_empty(), self.rng.below(2)) {
            (true, 0) => Array::new(),
            (true, _) => Array::default(),
            _ => Array::from_vec(objects),
        };
        let tag = self.obj();
        let tag_id = tag.id;
        let user = User::new(&self.domains[d].domain, Data { slots, array, tag });
        self.next_key += 1;
        self.owners.push(OwnerM {
            key: self.next_key,
            domain: d,
            users: vec![user],
            holders: Vec::new(),
            pins: 0,
            slots: slot_ids,
            array: array_ids,
            tag: tag_id,
            must_free: Vec::new(),
            retired: 0,
            registrations: 0,
        });
    }

    pub(super) fn user_clone(&mut self) {
        if let Some((o, j)) = self.pick_user() {
            let om = &mut self.owners[o];
            let user = om.users[j].clone();
            om.users.push(user);
        }
    }

    pub(super) fn user_drop(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        let om = &mut self.owners[o];
        let user = om.users.swap_remove(j);
        let last = om.users.is_empty() && om.pins == 0;
        drop(user);
        if last {
            let om = self.owners.remove(o);
            self.torn_down(om, "the model dropped the last user");
        } else {
            for h in &self.owners[o].holders {
                assert!(!h.is_torn_down(), "a user is left: not torn down");
            }
        }
    }

    /// The last user of `om` has just been dropped.
    pub(super) fn torn_down(&mut self, om: OwnerM, how: &str) {
        let table = &self.table;
        for &id in om.slots.iter().flatten().chain(&om.array) {
            table.assert_freed(
                id,
                &format!("in the owner's slots or array at teardown ({how})"),
            );
        }
        table.assert_freed(om.tag, &format!("the owner's data at teardown ({how})"));
        for &id in &om.must_free {
            table.assert_freed(
                id,
                &format!("retired through the owner, pending at teardown ({how})"),
            );
        }
        for h in &om.holders {
            assert!(h.is_torn_down(), "Holder::is_torn_down after teardown");
            assert!(
                h.upgrade().is_none(),
                "Holder::upgrade fails after teardown"
            );
            let stats = h.stats();
            assert_eq!(stats.pending, 0, "nothing pending after teardown");
            assert_eq!(stats.retired, om.retired, "OwnerStats::retired");
            assert_eq!(
                stats.freed_after_grace_period + stats.freed_directly,
                om.retired,
                "every retired object freed, once"
            );
        }
        self.dead.push(DeadOwner {
            domain: om.domain,
            holders: om.holders,
        });
    }

    pub(super) fn holder_op(&mut self) {
        match self.rng.below(3) {
            0 => {
                if let Some((o, j)) = self.pick_user() {
                    let om = &mut self.owners[o];
                    let holder = om.users[j].holder();
                    assert!(!holder.is_torn_down());
                    om.holders.push(holder);
                }
            }
            1 => {
                if self.owners.is_empty() {
                    return;
                }
                let o = self.rng.below(self.owners.len());
                let om = &mut self.owners[o];
                if let Some(h) = om.holders.first() {
                    let h = h.clone();
                    om.holders.push(h);
                }
            }
            _ => {
                // Drop a holder, of a live or a dead owner.
                let live = self.owners.iter().filter(|o| !o.holders.is_empty()).count();
                let dead = self.dead.len();
                if live + dead == 0 {
                    return;
                }
                let mut i = self.rng.below(live + dead);
                if i < live {
                    let om = self
                        .owners
                        .iter_mut()
                        .filter(|o| !o.holders.is_empty())
                        .nth(i)
                        .unwrap();
                    let h = om.holders.swap_remove(0);
                    drop(h);
                } else {
                    i -= live;
                    let h = self.dead[i].holders.pop();
                    drop(h);
                    if self.dead[i].holders.is_empty() {
                        self.dead.swap_remove(i);
                    }
                }
            }
        }
    }

    pub(super) fn upgrade(&mut self) {
        if !self.dead.is_empty() && self.rng.chance(30) {
            let dead = &self.dead[self.rng.below(self.dead.len())];
            for h in &dead.holders {
                assert!(h.is_torn_down());
                assert!(
                    h.upgrade().is_none(),
                    "upgrade fails for good after teardown"
                );
            }
            return;
        }
        let with: Vec<usize> = (0..self.owners.len())
            .filter(|&o| !self.owners[o].holders.is_empty())
            .collect();
        if with.is_empty() {
            return;
        }
        let om = &mut self.owners[with[self.rng.below(with.len())]];
        // A user is left (in the model or in a read section): it succeeds.
        let user = om.holders[0]
            .upgrade()
            .expect("Holder::upgrade succeeds while a user is alive");
        om.users.push(user);
    }

    // ----- owners: writers -------------------------------------------------

    /// Model bookkeeping for objects retired through owner `o`.
    pub(super) fn owner_retired(&mut self, o: usize, ids: &[usize], registrations: u64) {
        let om = &mut self.owners[o];
        om.must_free.extend_from_slice(ids);
        om.retired += ids.len() as u64;
        om.registrations += registrations;
    }

    pub(super) fn slot_op(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        let i = self.rng.below(self.owners[o].slots.len());
        let new = if self.rng.chance(70) {
            Some(self.obj())
        } else {
            None
        };
        let new_id = new.as_ref().map(|x| x.id);
        let take = new.is_none() && self.rng.chance(50);
        let finish = self.rng.below(3);
        let user = self.owners[o].users.swap_remove(j);
        let expected = std::mem::replace(&mut self.owners[o].slots[i], new_id);
        let old = if take {
            user.slots[i].take(&user)
        } else {
            user.slots[i].replace(new, &user)
        };
        assert_eq!(old.as_ref().map(|x| x.id), expected, "the object replaced");
        // `{ old }` moves the option: nothing borrowing `user` outlives the
        // block, so the handle can go back afterwards.
        if let Some(old) = { old } {
            old.check();
            let id = old.id;
            match finish {
                0 => old.retire(),
                1 => drop(old),
                _ => {
                    let mut batch = user.batch();
                    batch.push(old);
                    batch.drain();
                }
            }
            self.owner_retired(o, &[id], 1);
        }
        self.owners[o].users.push(user);
    }

    pub(super) fn owner_batch(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        let n_slots = self.owners[o].slots.len();
        let k = self.rng.below(4);
        let mut picks: Vec<(usize, Option<Box<Obj>>)> = Vec::new();
        for _ in 0..k {
            let i = self.rng.below(n_slots);
            let refill = if self.rng.chance(50) {
                Some(self.obj())
            } else {
                None
            };
            picks.push((i, refill));
        }
        let with_capacity = self.rng.chance(50);
        let drain = self.rng.chance(70);
        let user = self.owners[o].users.swap_remove(j);
        let mut batch = if with_capacity {
            user.batch_with_capacity(k)
        } else {
            user.batch()
        };
        let mut retired = Vec::new();
        for (i, refill) in picks {
            let new_id = refill.as_ref().map(|x| x.id);
            let expected = std::mem::replace(&mut self.owners[o].slots[i], new_id);
            let old = match refill {
                Some(new) => user.slots[i].replace(Some(new), &user),
                None => user.slots[i].take(&user),
            };
            assert_eq!(old.as_ref().map(|x| x.id), expected, "the object taken");
            retired.extend(expected);
            // `Option<Unlinked>` is an iterator of zero or one.
            batch.extend(old);
        }
        assert_eq!(batch.len(), retired.len());
        assert_eq!(batch.is_empty(), retired.is_empty());
        if drain {
            batch.drain();
        } else {
            drop(batch);
        }
        let registrations = u64::from(!retired.is_empty());
        self.owner_retired(o, &retired, registrations);
        self.owners[o].users.push(user);
    }

    pub(super) fn array_write(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        if self.table.room() < 64 {
            return;
        }
        let d = self.owners[o].domain;
        let may_wait = !self.in_section(d);
        let mut staged = self.owners[o].array.clone();
        let mut removed_ids = Vec::new();
        let user = self.owners[o].users.swap_remove(j);
        let mut writer = user.array.write(&user);
        assert_eq!(ids(writer.items()), staged, "ArrayWriter::items at start");
        for _ in 0..1 + self.rng.below(4) {
            let len = staged.len();
            let kind = if len >= 10 { 2 } else { self.rng.below(5) };
            match kind {
                2 if len > 0 => {
                    let range = remove_range(&mut writer, &mut self.rng, len);
                    removed_ids.extend(staged.drain(range));
                }
                3 if len > 0 => {
                    let at = self.rng.below(len);
                    let obj = self.obj();
                    removed_ids.push(std::mem::replace(&mut staged[at], obj.id));
                    writer.replace(at, obj);
                }
                4 => {
                    let obj = self.obj();
                    staged.push(obj.id);
                    writer.push(obj);
                }
                _ => {
                    let at = self.rng.below(len + 1);
                    let obj = self.obj();
                    staged.insert(at, obj.id);
                    writer.insert(at, obj);
                }
            }
            assert_eq!(ids(writer.items()), staged, "ArrayWriter::items");
            assert_eq!(writer.len(), staged.len());
            assert_eq!(writer.is_empty(), staged.is_empty());
        }
        self.owners[o].array = staged;
        let n = removed_ids.len() as u64;
        let registrations = match self.rng.below(6) {
            0 => {
                // Dropping an uncommitted writer commits and retires.
                drop(writer);
                1
            }
            finish => {
                let removed = writer.commit();
                assert_eq!(ids(removed.objects()), removed_ids, "Removed::objects");
                assert_eq!(removed.len(), removed_ids.len());
                assert_eq!(removed.is_empty(), removed_ids.is_empty());
                for obj in removed.objects() {
                    obj.check();
                }
                match finish {
                    1 | 2 => {
                        removed.retire();
                        1
                    }
                    3 => {
                        removed.retire_each();
                        n + 1
                    }
                    4 if may_wait => {
                        removed.synchronize();
                        for &id in &removed_ids {
                            self.table.assert_freed(
                                id,
                                "removed by a commit, freed by Removed::synchronize",
                            );
                        }
                        let om = &mut self.owners[o];
                        om.retired += n;
                        om.users.push(user);
                        return;
                    }
                    _ => {
                        drop(removed);
                        1
                    }
                }
            }
        };
        self.owner_retired(o, &removed_ids, registrations);
        self.owners[o].users.push(user);
    }

    pub(super) fn user_barrier(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        if self.in_section(self.owners[o].domain) {
            return;
        }
        let om = &mut self.owners[o];
        om.users[j].barrier();
        for id in om.must_free.drain(..) {
            self.table
                .assert_freed(id, "retired through the owner before User::barrier");
        }
        assert_eq!(
            om.users[j].stats().pending,
            0,
            "nothing pending after User::barrier"
        );
    }

    pub(super) fn exclusive(&mut self) {
        let Some((o, j)) = self.pick_user() else {
            return;
        };
        let expected = self.owners[o].users.len() == 1 && self.owners[o].pins == 0;
        let n_slots = self.owners[o].slots.len();
        let variant = self.rng.below(5);
        let at = self.rng.below(n_slots);
        let fresh: Vec<Box<Obj>> = (0..self.rng.below(4)).map(|_| self.obj()).collect();
        let one = self.obj();
        let table = &self.table;
        let om = &mut self.owners[o];
        let mut user = om.users.swap_remove(j);
        let mut freed_pending = false;
        match user.exclusive() {
            None => assert!(
                !expected,
                "User::exclusive fails only if another user exists"
            ),
            Some(mut ex) => {
                assert!(expected, "User::exclusive succeeds for the only user");
                assert_eq!(ex.slots.len(), om.slots.len());
                match variant {
                    0 => {
                        ex.free_pending();
                        for id in om.must_free.drain(..) {
                            table.assert_freed(id, "Exclusive::free_pending frees what is pending");
                        }
                        freed_pending = true;
                    }
                    1 => {
                        // The old slot (and its object) is dropped directly.
                        let id = one.id;
                        ex.slots[at] = Slot::new(one);
                        if let Some(old) = om.slots[at].replace(id) {
                            table.assert_freed(old, "dropped with its slot under Exclusive");
                        }
                    }
                    2 => {
                        om.slots.push(Some(one.id));
                        ex.slots.push(Slot::new(one));
                    }
                    3 => {
                        let new_ids = fresh.iter().map(|x| x.id).collect();
                        ex.array = Array::from_vec(fresh);
                        for old in std::mem::replace(&mut om.array, new_ids) {
                            table.assert_freed(old, "dropped with its array under Exclusive");
                        }
                    }
                    _ => {
                        let new_id = one.id;
                        ex.tag = one;
                        table.assert_freed(om.tag, "the replaced data tag");
                        om.tag = new_id;
                    }
                }
            }
        }
        if freed_pending {
            assert_eq!(
                user.stats().pending,
                0,
                "nothing pending after free_pending"
            );
        }
        om.users.push(user);
    }
}
