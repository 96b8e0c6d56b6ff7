//! Writing a commit's tree to a directory: the scratch checkout a site
//! build runs in. Files keep their executable bit, links are written as
//! links (the import never follows one out of the tree), submodules are
//! left out as they are from every deploy.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use super::tree_source::CommitSource;
use crate::deploy::DeployError;

/// Writes the whole tree of `source` under `dir` (an existing directory).
pub fn checkout(source: &CommitSource<'_>, dir: &Path) -> Result<(), DeployError> {
    write_tree(source, source.tree(), dir)
}

fn write_tree(source: &CommitSource<'_>, tree: ObjectId, dir: &Path) -> Result<(), DeployError> {
    for (name, kind, id) in source.entries(&tree)? {
        // Tree entry names never hold "/" or "..", but a crafted pack may.
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(DeployError::Source(
                format!("the tree holds an entry named {name:?}").into(),
            ));
        }
        let path = dir.join(&name);
        let io = |source| DeployError::Io {
            context: "cannot write the build checkout at",
            path: path.clone(),
            source,
        };
        match kind {
            EntryKind::Tree => {
                std::fs::create_dir(&path).map_err(io)?;
                write_tree(source, id, &path)?;
            }
            EntryKind::Blob | EntryKind::BlobExecutable => {
                std::fs::write(&path, source.blob(&id)?).map_err(io)?;
                if kind == EntryKind::BlobExecutable {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .map_err(io)?;
                }
            }
            EntryKind::Link => {
                let target = String::from_utf8_lossy(&source.blob(&id)?).into_owned();
                std::os::unix::fs::symlink(target, &path).map_err(io)?;
            }
            EntryKind::Commit => {}
        }
    }
    Ok(())
}
