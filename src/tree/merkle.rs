//! The blake3 Merkle tree over a manifest's directories.

/// Directory hashes of a manifest, built once and walked by `diff`.
#[derive(Debug, Clone)]
pub struct MerkleTree {}
