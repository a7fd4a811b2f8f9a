//! Sizes of the runs: operations, threads, seeds and bounds (much smaller
//! under Miri).

/// Operations per single-threaded run.
pub(crate) const ST_OPS: usize = if cfg!(miri) { 120 } else { 6000 };
/// Fixed seeds of the single-threaded phase (a clock-derived one is added
/// natively).
pub(crate) const ST_SEEDS: &[u64] = if cfg!(miri) {
    &[0x5eed_0001, 0x5eed_0002]
} else {
    &[
        0x5eed_0001,
        0x5eed_0002,
        0x5eed_0003,
        0xdead_beef,
        0x0123_4567_89ab_cdef,
        0x42,
    ]
};
/// Threads and operations per thread of the multi-threaded phase.
pub(crate) const MT_THREADS: usize = if cfg!(miri) { 2 } else { 3 };
pub(crate) const MT_OPS: usize = if cfg!(miri) { 50 } else { 6000 };
pub(crate) const MT_SEEDS: &[u64] = if cfg!(miri) {
    &[0x3ead_0001]
} else {
    &[0x3ead_0001, 0x3ead_0002, 0xfeed_f00d]
};
/// Largest burst of single retirements (enough to fill and hand over
/// per-thread buffers, and to start grace periods by count).
pub(crate) const BURST: usize = if cfg!(miri) { 12 } else { 300 };
/// Deepest nesting of read sections.
pub(crate) const MAX_DEPTH: usize = 4;
/// Most objects published in one domain / owners alive / cookies kept.
pub(crate) const MAX_PUBLISHED: usize = 16;
pub(crate) const MAX_OWNERS: usize = 4;
pub(crate) const MAX_COOKIES: usize = 8;
/// Board cells per domain, owners and slots per owner (multi-threaded).
pub(crate) const MT_CELLS: usize = if cfg!(miri) { 3 } else { 16 };
pub(crate) const MT_OWNERS: usize = if cfg!(miri) { 2 } else { 3 };
pub(crate) const MT_SLOTS: usize = if cfg!(miri) { 2 } else { 8 };
