//! Importing a directory: every file into the CAS, the tree into a manifest.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tracing::warn;

use super::DeployError;
use crate::cas::{Cas, is_compressible};
use crate::tree::{Entry, Manifest, Mode};

/// Directory entries never deployed: version-control metadata.
const SKIPPED_DIRS: &[&str] = &[".git", ".hg", ".svn"];

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
        cas,
        root: &root,
        skip_root_config,
        exclude,
    };
    walker.walk(&root, "", &mut manifest)?;
    Ok(manifest)
}

struct Walker<'a> {
    cas: &'a Cas,
    root: &'a Path,
    skip_root_config: bool,
    exclude: &'a Path,
}

impl Walker<'_> {
    fn walk(&self, dir: &Path, prefix: &str, manifest: &mut Manifest) -> Result<(), DeployError> {
        let (cas, root, skip_root_config) = (self.cas, self.root, self.skip_root_config);
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
                self.walk(&path, &rel, manifest)?;
            } else if meta.is_file() {
                if skip_root_config && prefix.is_empty() && name == "makiatto.toml" {
                    continue;
                }
                let (hash, size) = cas.put_file(&path)?;
                if is_compressible(&rel) {
                    cas.ensure_variants(&hash, true)?;
                }
                let mode = if meta.permissions().mode() & 0o111 != 0 {
                    Mode::Executable
                } else {
                    Mode::File
                };
                if let Err(e) = manifest.insert(&rel, Entry { mode, size, hash }) {
                    warn!(path = %path.display(), error = %e, "skipping a file that cannot be served");
                }
            }
        }
        Ok(())
    }
}
