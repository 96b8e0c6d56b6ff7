//! A commit of a pushed repository as a deploy source: deploy reads the
//! config and imports the served subtree straight from git objects into
//! the CAS, with no checkout on disk.

use std::collections::HashMap;

use gix::ObjectId;
use gix::objs::tree::EntryKind;
use gix::objs::{Find, Kind};
use tracing::warn;

use crate::cas::{Cas, is_compressible};
use crate::deploy::{DeployError, SITE_CONFIG_FILE, SiteSource, store_all};
use crate::tree::{Entry, Manifest, Mode};

/// What storing one blob gave: its blake3 and size.
type Stored = (blake3::Hash, u64);

/// The tree of one commit.
pub struct CommitSource<'a> {
    odb: &'a gix::odb::Handle,
    commit: ObjectId,
    tree: ObjectId,
}

fn source_err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> DeployError {
    DeployError::Source(e.into())
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
    pub(super) fn entries(
        &self,
        id: &ObjectId,
    ) -> Result<Vec<(String, EntryKind, ObjectId)>, DeployError> {
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

    /// The commit's root tree.
    pub(super) fn tree(&self) -> ObjectId {
        self.tree
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

    /// The bytes of blob `id`.
    pub(super) fn blob(&self, id: &ObjectId) -> Result<Vec<u8>, DeployError> {
        let mut buf = Vec::new();
        let data = self
            .odb
            .try_find(id, &mut buf)
            .map_err(source_err)?
            .ok_or_else(|| source_err(format!("blob {id} is missing")))?;
        Ok(data.data.to_vec())
    }

    /// Every file under `tree`: (relative path, mode, blob id). Links and
    /// submodules are skipped (a link could point outside the site).
    fn files(
        &self,
        tree: &ObjectId,
        prefix: &str,
        skip_root_config: bool,
        out: &mut Vec<(String, Mode, ObjectId)>,
    ) -> Result<(), DeployError> {
        for (name, kind, id) in self.entries(tree)? {
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let mode = match kind {
                EntryKind::Tree => {
                    self.files(&id, &rel, false, out)?;
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
            out.push((rel, mode, id));
        }
        Ok(())
    }
}

/// Stores each blob of `blobs` (id, whether any path using it gets
/// compressed variants) in `cas` with its variants, on a few threads (see
/// `deploy::ingest`). Returns `(blake3, size)` per blob, in order.
fn store_blobs(
    odb: &gix::odb::Handle,
    cas: &Cas,
    blobs: &[(ObjectId, bool)],
) -> Result<Vec<Stored>, DeployError> {
    store_all(
        cas,
        blobs,
        // A handle per thread: a handle's caches are its own.
        || (odb.clone(), Vec::new()),
        |(odb, buf), batch, (id, compressible)| {
            let data = odb
                .try_find(id, buf)
                .map_err(source_err)?
                .ok_or_else(|| source_err(format!("blob {id} is missing")))?;
            let hash = blake3::hash(data.data);
            batch.add_object_with_variants(&hash, data.data, *compressible)?;
            Ok((hash, data.data.len() as u64))
        },
    )
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

    fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, DeployError> {
        match self.lookup(path)? {
            Some((EntryKind::Blob | EntryKind::BlobExecutable, id)) => Ok(Some(self.blob(&id)?)),
            _ => Ok(None),
        }
    }

    fn import(&self, cas: &Cas, path: &str) -> Result<Manifest, DeployError> {
        let tree = match self.lookup(path)? {
            Some((EntryKind::Tree, id)) => id,
            _ => return Err(source_err(format!("{path:?} is not a directory"))),
        };
        let mut files = Vec::new();
        self.files(&tree, "", path.is_empty(), &mut files)?;
        // Each distinct blob once; compressed variants if any path wants them.
        let mut index: HashMap<ObjectId, usize> = HashMap::new();
        let mut blobs: Vec<(ObjectId, bool)> = Vec::new();
        for (rel, _, id) in &files {
            let i = *index.entry(*id).or_insert_with(|| {
                blobs.push((*id, false));
                blobs.len() - 1
            });
            blobs[i].1 |= is_compressible(rel);
        }
        let stored = store_blobs(self.odb, cas, &blobs)?;
        let mut manifest = Manifest::new();
        for (rel, mode, id) in &files {
            // Every id of `files` was put in `index` above.
            let (hash, size) = stored[index[id]];
            if let Err(e) = manifest.insert(
                rel,
                Entry {
                    mode: *mode,
                    size,
                    hash,
                },
            ) {
                warn!(path = %rel, error = %e, "skipping a file that cannot be served");
            }
        }
        Ok(manifest)
    }

    fn label(&self) -> String {
        self.commit.to_string()
    }
}
