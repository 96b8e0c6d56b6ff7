//! The content-addressed object store under `objects/`.
//!
//! Every file byte the node serves lives here once, named by its blake3.
//! Object `h` is the read-only file `objects/<2 hex>/<62 hex>`, with variants
//! beside it (`.gz`, `.zst`, `.br`). Writes are atomic (temp file in `tmp/`,
//! fsync, link into place), so a crash leaves either no object or a whole
//! one. Compressible objects also get precompressed variants, made once at
//! deploy and served as they are. The scrub checks objects against their
//! names here (`verify.rs`) and sets damaged ones aside in `damaged/`.

mod batch;
mod encoding;
mod gc;
mod store;
mod variants;
mod verify;

pub use batch::Batch;
pub use encoding::{Encoding, Variants, decompress, is_compressible};
pub use gc::GcStats;
pub use store::{Cas, CasError};
pub use verify::Health;

/// A CAS in a fresh temp directory, for this module's tests.
#[cfg(test)]
fn test_store() -> (tempfile::TempDir, Cas) {
    let dir = tempfile::tempdir().unwrap();
    let cas = Cas::open(&dir.path().join("objects")).unwrap();
    (dir, cas)
}
