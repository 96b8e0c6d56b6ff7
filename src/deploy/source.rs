//! Where a deploy reads its tree from: a directory on this machine, or a
//! commit of a pushed repository (implemented by `git/`, which knows how to
//! read objects; deploy only knows this interface).

use std::path::{Path, PathBuf};

use super::{DeployError, import};
use crate::cas::Cas;
use crate::tree::Manifest;

/// A tree a site can be deployed from. Paths are relative, `/`-separated,
/// already normalised by `config/` ("" is the root).
pub trait SiteSource {
    /// The text of `makiatto.toml` at the root, if the tree has one.
    fn site_config(&self) -> Result<Option<String>, DeployError>;
    /// Whether `path` is a directory of the tree.
    fn is_dir(&self, path: &str) -> Result<bool, DeployError>;
    /// Whether `path` is a file of the tree.
    fn is_file(&self, path: &str) -> Result<bool, DeployError>;
    /// The bytes of file `path`, if the tree has it (WASM modules and env
    /// files are read through this before import).
    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, DeployError>;
    /// Stores every file under `path` in `cas` and returns their manifest;
    /// a root `makiatto.toml` is left out when `path` is the root.
    fn import(&self, cas: &Cas, path: &str) -> Result<Manifest, DeployError>;
    /// What revision rows record as the source (a path or a commit id).
    fn label(&self) -> String;
    /// Whether the tree is what gets served: true for a directory on disk
    /// (taken as it is) and a finished build; false for a pushed commit,
    /// whose `[build]`, if it has one, has not run yet.
    fn built(&self) -> bool {
        false
    }
}

/// Who owns domains deployed from a directory on this machine (`makiatto
/// dev --site`, `makiatto deploy`), as a repository's name owns those it
/// deploys.
pub const LOCAL_OWNER: &str = "local";

/// A directory on this machine.
pub struct DirSource<'a> {
    pub dir: &'a Path,
    /// Never imported: the node's own data directory, when it sits inside
    /// the site (`makiatto dev --site .`).
    pub exclude: &'a Path,
}

impl DirSource<'_> {
    fn at(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.dir.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }
}

impl SiteSource for DirSource<'_> {
    fn site_config(&self) -> Result<Option<String>, DeployError> {
        let path = self.dir.join(super::SITE_CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DeployError::Io {
                context: "cannot read",
                path,
                source,
            }),
        }
    }

    fn is_dir(&self, path: &str) -> Result<bool, DeployError> {
        Ok(self.at(path).is_dir())
    }

    fn is_file(&self, path: &str) -> Result<bool, DeployError> {
        Ok(self.at(path).is_file())
    }

    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, DeployError> {
        let full = self.at(path);
        if !full.is_file() {
            return Ok(None);
        }
        std::fs::read(&full)
            .map(Some)
            .map_err(|source| DeployError::Io {
                context: "cannot read",
                path: full,
                source,
            })
    }

    fn import(&self, cas: &Cas, path: &str) -> Result<Manifest, DeployError> {
        import::import_dir(cas, &self.at(path), path.is_empty(), self.exclude)
    }

    fn label(&self) -> String {
        self.dir.display().to_string()
    }

    fn built(&self) -> bool {
        true
    }
}
