//! Seeds and the RNG: the fixed seeds plus one from the clock, the
//! `OWNRCU_MODEL_SEED` override, and the loop that runs a model once per
//! seed and names the seed of a failure.

use std::any::Any;
use std::io::Write;
use std::thread;

/// splitmix64.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent` %.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// Picks from `(weight, value)` pairs.
    pub(crate) fn pick<T: Copy>(&mut self, table: &[(usize, T)]) -> T {
        let total: usize = table.iter().map(|&(w, _)| w).sum();
        let mut at = self.below(total);
        for &(w, value) in table {
            if at < w {
                return value;
            }
            at -= w;
        }
        unreachable!()
    }
}

pub(crate) fn parse_seed(text: &str) -> u64 {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(&hex.replace('_', ""), 16),
        None => text.replace('_', "").parse(),
    };
    parsed.unwrap_or_else(|_| panic!("OWNRCU_MODEL_SEED={text:?} is not a number"))
}

/// The seeds to run: `OWNRCU_MODEL_SEED` alone if set, else the fixed ones
/// plus (natively) one from the clock.
pub(crate) fn seeds(fixed: &[u64]) -> Vec<u64> {
    if let Ok(text) = std::env::var("OWNRCU_MODEL_SEED") {
        return vec![parse_seed(&text)];
    }
    let mut seeds = fixed.to_vec();
    if !cfg!(miri) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        seeds.push(Rng::new(nanos).next());
    }
    seeds
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
}

/// Runs `run` once per seed, each on a fresh thread (whose exit hands its
/// buffers over); a failure is re-raised with the seed and how to rerun it.
pub(crate) fn for_each_seed(test: &str, fixed: &[u64], run: fn(u64)) {
    // The model predicts every free exactly: nothing may be freed behind
    // its back, on the global domain either (each test binary is its own
    // process, so this switch concerns this file's tests only).
    ownrcu::Reclaimer::disable();
    let verbose = std::env::var_os("OWNRCU_MODEL_VERBOSE").is_some();
    for seed in seeds(fixed) {
        if verbose {
            // Straight to stderr, not captured: still there if the process
            // dies (a native use-after-free can crash instead of failing).
            let _ = writeln!(std::io::stderr(), "{test}: seed {seed:#x}");
        }
        let result = thread::Builder::new()
            .name(format!("{test} {seed:#x}"))
            .spawn(move || run(seed))
            .expect("spawn a model thread")
            .join();
        if let Err(payload) = result {
            let message = panic_message(&*payload);
            panic!(
                "{test} failed with seed {seed:#x}: {message}\n\
                 reproduce with: OWNRCU_MODEL_SEED={seed:#x} cargo test --test model {test}"
            );
        }
    }
}
