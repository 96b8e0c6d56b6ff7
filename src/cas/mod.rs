//! The content-addressed object store under `objects/`.
//!
//! Every file byte the node serves lives here once, named by its blake3.
//! Writes are atomic (temp file, fsync, rename), so a crash leaves either no
//! object or a whole one. Compressible objects also get precompressed
//! variants stored beside them, made once and served as they are.

mod encoding;
mod gc;
mod store;
mod variants;

pub use encoding::{Encoding, Variants, is_compressible};
pub use gc::GcStats;
pub use store::{Cas, CasError};
