//! Set-up shared by every bench file.

use criterion::Criterion;

// Not every bench file writes a file of its own.
#[allow(dead_code)]
pub mod output;

/// Same allocator behaviour for every group of every bench file: no heap
/// trimming, no mmap-backed allocations (glibc trims the heap after large
/// frees depending on history, which would swing the timings).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's tuning parameters; it is called
    // before any benchmark thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
    }
}

/// The Criterion configuration of every group, after `tune_malloc`.
pub fn config() -> Criterion {
    tune_malloc();
    Criterion::default()
}
