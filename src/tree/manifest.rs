//! The manifest: path → (mode, size, blake3).

use std::collections::BTreeMap;

/// File mode as git knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    File,
    Executable,
}

/// One file of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    pub mode: Mode,
    pub size: u64,
    pub hash: blake3::Hash,
}

/// Why bytes could not be read back as a manifest, or a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid manifest path {0:?}")]
    InvalidPath(String),
    #[error("corrupt manifest: {0}")]
    Corrupt(String),
}

/// Every file of a revision, keyed by relative `/`-separated path (no leading
/// `/`, no `.` or `..` components, no empty components).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: BTreeMap<String, Entry>,
}
