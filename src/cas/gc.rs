//! Removing objects no kept revision references.

/// What a garbage collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    pub objects_removed: u64,
    pub bytes_freed: u64,
}
