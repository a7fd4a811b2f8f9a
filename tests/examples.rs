//! The examples' code, run as tests (examples cannot be linked from tests,
//! so their sources are included as modules).

use std::sync::Arc;

#[path = "../examples/quickstart.rs"]
mod quickstart;
#[path = "../examples/stack.rs"]
mod stack;

use stack::Stack;

#[test]
fn quickstart_frees_everything() {
    let (domain, owner, alive) = quickstart::run();
    // One object retired singly, a hundred as one batch; all freed by the
    // barrier, through two registrations (the thread's buffer, the batch).
    assert_eq!(
        (domain.retired, domain.freed, domain.pending),
        (101, 101, 0)
    );
    assert_eq!((domain.batches, domain.registrations), (1, 2));
    // The domain also sums what its owners retired: the one owner's counts.
    assert_eq!(domain.owners, owner);
    assert_eq!((domain.retired_total(), domain.pending_total()), (102, 0));
    // The owner's replaced VMA was retired through it and is freed by now:
    // directly by the last user's drop, unless a grace period that started
    // meanwhile let a collection free it first.
    assert_eq!(
        (owner.retired, owner.registrations, owner.pending),
        (1, 1, 0)
    );
    assert_eq!(owner.freed_directly + owner.freed_after_grace_period, 1);
    // The VMA still in the slot was dropped with the data, directly.
    assert_eq!(alive, 0);
}

#[test]
fn quickstart_main() {
    quickstart::main();
}

#[test]
fn stack_run_pops_each_value_once_and_frees_each_node() {
    let (threads, per_thread) = if cfg!(miri) { (3, 12) } else { (4, 5_000) };
    let r = stack::run(threads, per_thread);
    assert_eq!(r.pushed, threads * per_thread);
    assert_eq!(r.lost_or_duplicated, 0);
    assert_eq!(r.popped + r.drained, r.pushed);
    // Two pops per three pushes in each thread; each pop finds a value,
    // because its own thread pushed just before.
    assert_eq!(r.popped, threads * (per_thread - per_thread.div_ceil(3)));
    // Every node was popped, so retired, and the barrier freed them all.
    assert_eq!(
        (r.stats.retired, r.stats.freed, r.stats.pending),
        (r.pushed, r.pushed, 0)
    );
}

#[test]
fn stack_main() {
    stack::main();
}

#[test]
fn stack_is_lifo_on_one_thread() {
    let stack = Stack::new();
    for i in 0..5 {
        stack.push(i);
    }
    let popped: Vec<i32> = std::iter::from_fn(|| stack.pop()).collect();
    assert_eq!(popped, [4, 3, 2, 1, 0]);
    stack.domain().barrier();
    assert_eq!(stack.domain().stats().freed, 5);
}

#[test]
fn stack_drops_each_value_once() {
    let token = Arc::new(());
    let stack = Stack::new();
    for _ in 0..10 {
        stack.push(token.clone());
    }
    // Popped values are moved out: the retired node must not drop them.
    let popped: Vec<_> = (0..4).map(|_| stack.pop().unwrap()).collect();
    stack.domain().barrier();
    assert_eq!(stack.domain().stats().freed, 4);
    assert_eq!(Arc::strong_count(&token), 11);
    drop(popped);
    assert_eq!(Arc::strong_count(&token), 7);
    // The six left are dropped with the stack, once each.
    drop(stack);
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn stack_drop_frees_nodes_popped_but_not_yet_freed() {
    let token = Arc::new(());
    let stack = Stack::new();
    for _ in 0..3 {
        stack.push(token.clone());
    }
    let value = stack.pop().unwrap();
    // The popped node waits for a grace period; no barrier. Dropping the
    // stack drops its domain, which frees it (Miri checks for leaks).
    drop(stack);
    assert_eq!(Arc::strong_count(&token), 2);
    drop(value);
    assert_eq!(Arc::strong_count(&token), 1);
}
