//! The memory budget of the file bodies site snapshots keep.
//!
//! Small files are read into memory once and kept beside their index entry
//! (`sites.rs`); this budget bounds the total across every snapshot still
//! alive, so a node holding many revisions never grows without limit.
//! One count per process: every snapshot draws from the same memory. The
//! budget is `[http] body_cache_mb`, set once when the node opens.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Files up to this size are read into memory once, within `BUDGET`;
/// larger ones are mapped.
const FILE_LIMIT: u64 = 256 * 1024;
/// Total bytes of file bodies kept in memory across all snapshots.
static BUDGET: AtomicUsize = AtomicUsize::new(128 * 1024 * 1024);
/// Bytes of small bodies kept now.
static USED: AtomicUsize = AtomicUsize::new(0);

/// Whether a body of `len` bytes is small enough to keep in memory.
pub fn cacheable(len: u64) -> bool {
    len <= FILE_LIMIT
}

/// Sets the budget (`[http] body_cache_mb`). Bodies kept already stay;
/// a smaller budget only stops new ones until enough are released.
pub fn set_budget(bytes: usize) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// Reserves `len` bytes of the budget; `false` when they do not fit.
pub(super) fn reserve(len: usize) -> bool {
    let budget = BUDGET.load(Ordering::Relaxed);
    USED.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
        (used + len <= budget).then_some(used + len)
    })
    .is_ok()
}

/// Returns `len` bytes reserved before.
pub(super) fn release(len: usize) {
    USED.fetch_sub(len, Ordering::Relaxed);
}
