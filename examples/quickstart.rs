//! ownrcu in one page: `cargo run --example quickstart`. Comments give the kernel names.
use ownrcu::{Domain, OwnerStats, Slot, Stats, User};
use std::sync::Arc;

/// The tour. Returns the domain's counters, the owner's counters after its
/// teardown, and how many VMAs are still alive after it (none).
pub fn run() -> (Stats, OwnerStats, usize) {
    let domain = Domain::new(); // an RCU domain; or the process-wide Domain::global()
    {
        // While `_guard` lives, no object loaded from an RCU pointer can be freed.
        let _guard = domain.read(); // rcu_read_lock(): two plain stores, no fence
    } // rcu_read_unlock()
    domain.retire(Box::new([0_u8; 192])); // call_rcu(): freed after a grace period
    let mut batch = domain.batch(); // many objects, ONE grace-period registration
    batch.extend((0..100).map(|i| Box::new(i as u64)));
    batch.drain();
    domain.barrier(); // rcu_barrier(): all 101 objects are freed when it returns
    let alive = Arc::new(()); // each VMA holds a clone: the count tells how many are alive
    let vma = |start: u64| Box::new((start, alive.clone())); // a VMA: (start, token)
    let mm = User::new(&domain, Slot::new(vma(0x1000))); // mm_struct; `mm` is an mmget()
    let read = mm.read(); // rcu_read_lock() through the owner: it borrows `mm`
    println!("find_vma: {:#x}", mm.load(&read).map_or(0, |v| v.0));
    drop(read);
    let old = mm.replace(Some(vma(0x2000)), &mm); // rcu_assign_pointer(), old one unlinked
    old.unwrap().retire(); // call_rcu() through the owner: waits in the owner's queue
    let grab = mm.holder(); // mmgrab(): keeps the owner's memory (and counters), not its data
    drop(mm); // the last mmput(): exit_mmap() frees all directly, with no grace period
    (domain.stats(), grab.stats(), Arc::strong_count(&alive) - 1)
}

pub fn main() {
    let (domain, owner, alive) = run();
    println!("domain: {domain:?}\nowner, after the last mmput: {owner:?}");
    println!("after it: {alive} VMAs alive (the teardown freed them directly)");
}
