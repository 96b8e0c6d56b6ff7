//! `maki wasm fetch [DIR]`: writes the WIT worlds a site's WebAssembly
//! implements (`makiatto:http` for functions, `makiatto:transform` for
//! transformers), so guest toolchains can generate bindings offline.
//!
//! The files are compiled into the binary: they always match the node
//! version this `maki` came with.

use std::fs;
use std::path::{Path, PathBuf};

/// Each world, by path under DIR.
pub const WIT_FILES: &[(&str, &str)] = &[
    ("http/world.wit", include_str!("../../wit/http/world.wit")),
    (
        "transform/world.wit",
        include_str!("../../wit/transform/world.wit"),
    ),
];

/// Why the WIT files could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct FetchError {
    path: PathBuf,
    source: std::io::Error,
}

/// Writes every WIT file under `dir` (created if missing), replacing older
/// copies. Returns the files written.
pub fn fetch(dir: &Path) -> Result<Vec<PathBuf>, FetchError> {
    let mut written = Vec::with_capacity(WIT_FILES.len());
    for (rel, text) in WIT_FILES {
        let path = dir.join(rel);
        let err = |source| FetchError {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(err)?;
        }
        fs::write(&path, text).map_err(err)?;
        written.push(path);
    }
    Ok(written)
}
