//! `owner_churn`: what an owner costs that never retires anything. Each
//! iteration creates an owner ([`User::new`]) holding one 192-byte box and
//! drops it (its last user: the data is dropped directly); `arc_floor`
//! does the same with an `Arc<Box<_>>`, the floor a shared, reference-
//! counted holder of the same box cannot go below.
//!
//! Both use the global domain's thread (no domain is created or torn down
//! in the loop); the box is allocated inside the timing in both.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use ownrcu::{Domain, User};

mod common;

/// The object an owner holds: 192 bytes, as the other benches' objects.
type Obj = Box<[u64; 24]>;

fn owner_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("owner_churn");
    let domain = Domain::global();
    group.bench_function("ownrcu", |b| {
        b.iter(|| {
            let owner = User::new(domain, black_box(Obj::new([7; 24])));
            drop(black_box(owner));
        })
    });
    group.bench_function("arc_floor", |b| {
        b.iter(|| {
            let arc = Arc::new(black_box(Obj::new([7; 24])));
            drop(black_box(arc));
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = owner_churn
}
criterion_main!(benches);
