//! Importing a directory: every file into the CAS, the tree into a manifest.
//!
//! The tree is walked first, then its files are stored on a few threads
//! (`ingest.rs`).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tracing::warn;

use super::DeployError;
use super::ingest::store_all;
use crate::cas::{Batch, Cas, is_compressible};
use crate::tree::{Entry, Manifest, Mode};

/// Directory entries never deployed: version-control metadata.
const SKIPPED_DIRS: &[&str] = &[".git", ".hg", ".svn"];

/// Files up to this size are read whole and compressed from memory;
/// larger ones are streamed into the store and compressed from there.
const IN_MEMORY_LIMIT: u64 = 64 * 1024 * 1024;

/// A file found by the walk, to be stored.
struct Found {
    /// Its path in the site, `/`-separated.
    rel: String,
    /// Where it is on disk (a link's target, once checked to be inside).
    path: PathBuf,
    mode: Mode,
    size: u64,
}

/// Imports the tree under `dir` into `cas`; `skip_root_config` leaves out a
/// top-level `makiatto.toml` (the config is not part of the site), and
/// `exclude` (the node's own data directory, when it sits inside the site,
/// as with `makiatto dev --site .`) is never imported.
pub fn import_dir(
    cas: &Cas,
    dir: &Path,
    skip_root_config: bool,
    exclude: &Path,
) -> Result<Manifest, DeployError> {
    let mut manifest = Manifest::new();
    let root = fs::canonicalize(dir).map_err(|source| DeployError::Io {
        context: "cannot read site directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let walker = Walker {
        root: &root,
        skip_root_config,
        exclude,
    };
    let mut found = Vec::new();
    walker.walk(&root, "", &mut found)?;
    // Equal files are stored once: the first thread to meet the content
    // stores it, the others only name it.
    let claimed = Mutex::new(HashSet::new());
    let stored = store_all(
        cas,
        &found,
        || (),
        |_, batch, file| store_file(cas, batch, &claimed, file),
    )?;
    for (file, (hash, size)) in found.iter().zip(stored) {
        let entry = Entry {
            mode: file.mode,
            size,
            hash,
        };
        if let Err(e) = manifest.insert(&file.rel, entry) {
            warn!(path = %file.path.display(), error = %e, "skipping a file that cannot be served");
        }
    }
    Ok(manifest)
}

/// Stores `file` with its variants when its path calls for them; returns
/// its hash and size.
fn store_file(
    cas: &Cas,
    batch: &mut Batch<'_>,
    claimed: &Mutex<HashSet<blake3::Hash>>,
    file: &Found,
) -> Result<(blake3::Hash, u64), DeployError> {
    let compressible = is_compressible(&file.rel);
    if file.size > IN_MEMORY_LIMIT {
        let (hash, size) = cas.put_file(&file.path)?;
        if compressible {
            cas.ensure_variants(&hash, true)?;
        }
        return Ok((hash, size));
    }
    // The hash is of the bytes read, so a file changing meanwhile is never
    // stored under a wrong name.
    let bytes = fs::read(&file.path).map_err(|source| DeployError::Io {
        context: "cannot read file",
        path: file.path.clone(),
        source,
    })?;
    let hash = blake3::hash(&bytes);
    let first = claimed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(hash);
    if first {
        batch.add_object_with_variants(&hash, &bytes, compressible)?;
    }
    Ok((hash, bytes.len() as u64))
}

struct Walker<'a> {
    root: &'a Path,
    skip_root_config: bool,
    exclude: &'a Path,
}

impl Walker<'_> {
    fn walk(&self, dir: &Path, prefix: &str, found: &mut Vec<Found>) -> Result<(), DeployError> {
        let (root, skip_root_config) = (self.root, self.skip_root_config);
        let io_err = |context, path: &Path| {
            let path = path.to_path_buf();
            move |source| DeployError::Io {
                context,
                path,
                source,
            }
        };
        let mut entries = fs::read_dir(dir)
            .map_err(io_err("cannot list directory", dir))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err("cannot list directory", dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                warn!(path = %path.display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let mut meta = entry
                .metadata()
                .map_err(io_err("cannot read file metadata", &path))?;
            if meta.file_type().is_symlink() {
                // Follow links only when they stay inside the site, so a link
                // cannot publish /etc/passwd.
                match fs::canonicalize(&path) {
                    Ok(target) if target.starts_with(root) => {
                        meta =
                            fs::metadata(&target).map_err(io_err("cannot follow link", &path))?;
                        if meta.is_dir() {
                            warn!(path = %path.display(), "skipping a link to a directory");
                            continue;
                        }
                    }
                    _ => {
                        warn!(path = %path.display(), "skipping a link that points outside the site");
                        continue;
                    }
                }
            }
            if meta.is_dir() {
                if SKIPPED_DIRS.contains(&name.as_str()) || path == self.exclude {
                    continue;
                }
                self.walk(&path, &rel, found)?;
            } else if meta.is_file() {
                if skip_root_config && prefix.is_empty() && name == "makiatto.toml" {
                    continue;
                }
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    Mode::Executable
                } else {
                    Mode::File
                };
                found.push(Found {
                    rel,
                    path,
                    mode,
                    size: meta.len(),
                });
            }
        }
        Ok(())
    }
}
