//! Reading and writing objects.

use std::path::PathBuf;

/// Errors from the object store, naming the object or file involved.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The object store rooted at a data directory's `objects/`.
#[derive(Debug, Clone)]
pub struct Cas {
    root: PathBuf,
}
