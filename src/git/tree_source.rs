//! A commit of a pushed repository as a deploy source: deploy reads the
//! config and imports the served subtree straight from git objects into
//! the CAS, with no checkout on disk.

use std::collections::HashMap;

use gix::ObjectId;
use gix::objs::tree::EntryKind;
use gix::objs::{Find, Kind};
use tracing::warn;

use crate::cas::{Cas, is_compressible};
use crate::deploy::{DeployError, SITE_CONFIG_FILE, SiteSource};
use crate::tree::{Entry, Manifest, Mode};

/// The tree of one commit.
pub struct CommitSource<'a> {
    odb: &'a gix::odb::Handle,
    commit: ObjectId,
    tree: ObjectId,
}

fn source_err(e: impl std::fmt::Display) -> DeployError {
    DeployError::Source(e.to_string())
}

impl<'a> CommitSource<'a> {
    /// The tree of `commit` (a commit, or a tag peeling to one).
    pub fn new(
        odb: &'a gix::odb::Handle,
        commit: ObjectId,
    ) -> Result<CommitSource<'a>, DeployError> {
        let mut buf = Vec::new();
        let mut id = commit;
        loop {
            let data = odb
                .try_find(&id, &mut buf)
                .map_err(source_err)?
                .ok_or_else(|| source_err(format!("object {id} is missing")))?;
            match data.kind {
                Kind::Commit => {
                    let c = gix::objs::CommitRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                        .map_err(source_err)?;
                    return Ok(CommitSource {
                        odb,
                        commit,
                        tree: c.tree(),
                    });
                }
                Kind::Tag => {
                    id = gix::objs::TagRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                        .map_err(source_err)?
                        .target();
                }
                other => return Err(source_err(format!("{id} is a {other}, not a commit"))),
            }
        }
    }

    /// The entries of tree `id`: (name, kind, id).
    fn entries(&self, id: &ObjectId) -> Result<Vec<(String, EntryKind, ObjectId)>, DeployError> {
        let mut buf = Vec::new();
        let data = self
            .odb
            .try_find(id, &mut buf)
            .map_err(source_err)?
            .ok_or_else(|| source_err(format!("tree {id} is missing")))?;
        if data.kind != Kind::Tree {
            return Err(source_err(format!("{id} is not a tree")));
        }
        let tree =
            gix::objs::TreeRef::from_bytes(data.data, gix::hash::Kind::Sha1).map_err(source_err)?;
        Ok(tree
            .entries
            .iter()
            .map(|e| (e.filename.to_string(), e.mode.kind(), e.oid.to_owned()))
            .collect())
    }

    /// The entry at `path` ("" is the root tree).
    fn lookup(&self, path: &str) -> Result<Option<(EntryKind, ObjectId)>, DeployError> {
        let mut current = (EntryKind::Tree, self.tree);
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if current.0 != EntryKind::Tree {
                return Ok(None);
            }
            match self
                .entries(&current.1)?
                .into_iter()
                .find(|(n, _, _)| n == part)
            {
                Some((_, kind, id)) => current = (kind, id),
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    fn blob(&self, id: &ObjectId) -> Result<Vec<u8>, DeployError> {
        let mut buf = Vec::new();
        let data = self
            .odb
            .try_find(id, &mut buf)
            .map_err(source_err)?
            .ok_or_else(|| source_err(format!("blob {id} is missing")))?;
        Ok(data.data.to_vec())
    }

    fn walk(
        &self,
        cas: &Cas,
        tree: &ObjectId,
        prefix: &str,
        skip_root_config: bool,
        stored: &mut HashMap<ObjectId, (blake3::Hash, u64)>,
        manifest: &mut Manifest,
    ) -> Result<(), DeployError> {
        for (name, kind, id) in self.entries(tree)? {
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let mode = match kind {
                EntryKind::Tree => {
                    self.walk(cas, &id, &rel, false, stored, manifest)?;
                    continue;
                }
                EntryKind::Blob => Mode::File,
                EntryKind::BlobExecutable => Mode::Executable,
                EntryKind::Link | EntryKind::Commit => {
                    warn!(path = %rel, "skipping a symbolic link or submodule in a pushed tree");
                    continue;
                }
            };
            if skip_root_config && name == SITE_CONFIG_FILE {
                continue;
            }
            let (hash, size) = match stored.get(&id) {
                Some(known) => *known,
                None => {
                    let bytes = self.blob(&id)?;
                    let hash = cas.put_bytes(&bytes)?;
                    let known = (hash, bytes.len() as u64);
                    stored.insert(id, known);
                    known
                }
            };
            if is_compressible(&rel) {
                cas.ensure_variants(&hash, true)?;
            }
            if let Err(e) = manifest.insert(&rel, Entry { mode, size, hash }) {
                warn!(path = %rel, error = %e, "skipping a file that cannot be served");
            }
        }
        Ok(())
    }
}

impl SiteSource for CommitSource<'_> {
    fn site_config(&self) -> Result<Option<String>, DeployError> {
        match self.lookup(SITE_CONFIG_FILE)? {
            Some((EntryKind::Blob | EntryKind::BlobExecutable, id)) => {
                let bytes = self.blob(&id)?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| source_err(format!("{SITE_CONFIG_FILE} is not UTF-8")))
            }
            _ => Ok(None),
        }
    }

    fn is_dir(&self, path: &str) -> Result<bool, DeployError> {
        Ok(matches!(self.lookup(path)?, Some((EntryKind::Tree, _))))
    }

    fn is_file(&self, path: &str) -> Result<bool, DeployError> {
        Ok(matches!(
            self.lookup(path)?,
            Some((EntryKind::Blob | EntryKind::BlobExecutable, _))
        ))
    }

    fn import(&self, cas: &Cas, path: &str) -> Result<Manifest, DeployError> {
        let tree = match self.lookup(path)? {
            Some((EntryKind::Tree, id)) => id,
            _ => return Err(source_err(format!("{path:?} is not a directory"))),
        };
        let mut manifest = Manifest::new();
        let mut stored = HashMap::new();
        self.walk(cas, &tree, "", path.is_empty(), &mut stored, &mut manifest)?;
        Ok(manifest)
    }

    fn label(&self) -> String {
        self.commit.to_string()
    }
}
