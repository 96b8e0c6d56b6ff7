//! Manifests of a site's files and the blake3 Merkle tree over them.
//!
//! A manifest maps each file path to its mode, size and blake3. A directory's
//! hash is blake3 over its sorted children, so two manifests can be compared
//! by descending only where hashes differ: a one-file change in a 100k-file
//! site is found in a handful of steps. The root hash names a revision.

mod diff;
mod manifest;
mod merkle;

pub use diff::{Change, Diff, DiffStats, diff, diff_trees, diff_with_stats};
pub use manifest::{
    Entry, MAX_ENTRIES, MAX_PATH_LEN, MAX_TOTAL_PATH_BYTES, Manifest, ManifestError, Mode,
};
pub use merkle::{Child, ChildKind, DirNode, MerkleTree, hash_children, leaf_hash};
