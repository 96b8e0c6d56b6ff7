//! Content encodings and which precompressed variants an object has.

/// A content coding the node can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
    Brotli,
}

/// The precompressed variants stored for one object, with their sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variants {
    pub gzip: Option<u64>,
    pub zstd: Option<u64>,
    pub brotli: Option<u64>,
}
