//! How long an idle writer's objects wait: a thread retires objects into
//! the global domain and then goes idle (alive, calling nothing), while
//! another thread only reads; the example measures the time from the last
//! retirement until the reclaimer thread has freed every object, with the
//! crate's default settings (time bound 100 ms).
//!
//! ```text
//! cargo run --release --example idle [-- --rounds N --objects N --slow-ms N]
//! ```
//!
//! It measures twice: alone, and beside a destructor of another domain
//! that the reclaimer runs and that sleeps for 2.5 s (`--slow-ms`), which
//! must hold up its own domain only. The documented promise is one second
//! in both; the design gives about one and a half time bounds (150 ms) when
//! readers are short.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use ownrcu::{Domain, Reclaimer};

static DROPPED: AtomicUsize = AtomicUsize::new(0);

struct Obj(#[allow(dead_code)] [u8; 192]);

impl Drop for Obj {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, SeqCst);
    }
}

fn usage() -> ! {
    eprintln!("usage: idle [--rounds N] [--objects N] [--slow-ms N]");
    eprintln!("  --rounds N   idle periods measured (default 10)");
    eprintln!("  --objects N  objects retired before each idle period (default 100)");
    eprintln!("  --slow-ms N  how long the other domain's destructor sleeps (default 2500)");
    std::process::exit(2);
}

fn main() {
    let (mut rounds, mut objects, mut slow_ms) = (10_usize, 100_usize, 2500_u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--rounds" => rounds = value(),
            "--objects" => objects = value(),
            "--slow-ms" => slow_ms = value() as u64,
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if cfg!(miri) {
        Reclaimer::enable();
        (rounds, objects, slow_ms) = (2, 5, 100);
    }
    let alone = measure(rounds, objects);
    report("alone", &alone, objects);
    // Another domain whose destructors only the reclaimer runs, one of
    // which sleeps: the rounds are measured while it does.
    let slow = Domain::builder().retiring_threads_free(false).build();
    let started = Arc::new(AtomicBool::new(false));
    slow.retire(Box::new(Sleeper(
        Duration::from_millis(slow_ms),
        started.clone(),
    )));
    let start = Instant::now();
    while !started.load(SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the slow destructor never ran"
        );
        thread::sleep(Duration::from_micros(200));
    }
    let beside = measure(rounds, objects);
    let still_sleeping = slow.stats().freed == 0;
    report(
        &format!("beside a {slow_ms} ms destructor of another domain"),
        &beside,
        objects,
    );
    println!(
        "the slow destructor was {} when the last round ended",
        if still_sleeping {
            "still running"
        } else {
            "done"
        }
    );
    drop(slow); // waits for that destructor's frees to end
    let stats = Domain::global().stats();
    println!(
        "freed by the reclaimer: {}, grace periods started by the time bound: {}",
        stats.freed_by.reclaimer, stats.grace_periods_timed
    );
    if cfg!(miri) {
        Reclaimer::disable();
    }
}

/// An object of the other domain: its destructor says it started, then
/// sleeps.
struct Sleeper(Duration, Arc<AtomicBool>);

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.1.store(true, SeqCst);
        thread::sleep(self.0);
    }
}

/// Runs `rounds` idle periods of a writer that retired `objects` into the
/// global domain, while another thread reads; returns how long each
/// round's objects waited to be freed.
fn measure(rounds: usize, objects: usize) -> Vec<Duration> {
    let base = DROPPED.load(SeqCst);
    // The reader: only reads, never frees anything.
    let stop = Arc::new(AtomicBool::new(false));
    let reading = stop.clone();
    let reader = thread::spawn(move || {
        while !reading.load(SeqCst) {
            let _guard = Domain::global().read();
            thread::yield_now();
        }
    });
    // The writer: retires a round of objects, reports, then idles until
    // told to go on.
    let (retired_tx, retired_rx) = mpsc::channel();
    let (next_tx, next_rx) = mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        for _ in 0..rounds {
            for _ in 0..objects {
                Domain::global().retire(Box::new(Obj([0; 192])));
            }
            retired_tx.send(Instant::now()).unwrap();
            if next_rx.recv().is_err() {
                break;
            }
        }
    });
    let mut waits = Vec::new();
    for round in 1..=rounds {
        let retired_at = retired_rx.recv().unwrap();
        while DROPPED.load(SeqCst) < base + round * objects {
            assert!(
                retired_at.elapsed() < Duration::from_secs(60),
                "the idle writer's objects were not freed within a minute"
            );
            thread::sleep(Duration::from_micros(200));
        }
        waits.push(retired_at.elapsed());
        let _ = next_tx.send(());
    }
    writer.join().unwrap();
    stop.store(true, SeqCst);
    reader.join().unwrap();
    assert_eq!(
        DROPPED.load(SeqCst),
        base + rounds * objects,
        "each freed once"
    );
    waits
}

fn report(what: &str, waits: &[Duration], objects: usize) {
    let mut waits = waits.to_vec();
    waits.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "idle writer, {what}, {} rounds of {objects} objects: freed after min {:.1} ms, \
         median {:.1} ms, max {:.1} ms (time bound {} ms; promise 1000 ms)",
        waits.len(),
        ms(waits[0]),
        ms(waits[waits.len() / 2]),
        ms(waits[waits.len() - 1]),
        ownrcu::DEFAULT_TIME_BOUND.as_millis(),
    );
}
