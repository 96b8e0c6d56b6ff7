//! `revs/<root>/`: a revision as a read-only directory of hard links into
//! the CAS, for build steps and WASM preopens that need a real file tree.
//!
//! Built under a temporary name and renamed into place, so the directory
//! either does not exist or is complete.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::DeployError;
use crate::cas::Cas;
use crate::tree::Manifest;

/// The directory of revision `root` under `revs`.
pub fn revision_dir(revs: &Path, root: &blake3::Hash) -> PathBuf {
    revs.join(root.to_hex().as_str())
}

/// Materialises `manifest` as `revs/<root>/` unless it already exists.
pub fn materialise(cas: &Cas, revs: &Path, manifest: &Manifest) -> Result<PathBuf, DeployError> {
    let root = manifest.root();
    let target = revision_dir(revs, &root);
    if target.is_dir() {
        return Ok(target);
    }
    let tmp = revs.join(format!(".tmp-{}-{}", root.to_hex(), std::process::id()));
    if tmp.exists() {
        remove(&tmp)?;
    }
    if let Err(e) = build(cas, &tmp, manifest) {
        // A full disk (or any failure) leaves no half-built directory.
        if let Err(cleanup) = remove(&tmp) {
            tracing::warn!(path = %tmp.display(), error = %cleanup, "cannot remove half-built revision");
        }
        return Err(e);
    }
    match fs::rename(&tmp, &target) {
        Ok(()) => Ok(target),
        // Another deploy of the same tree won the race: theirs is complete.
        Err(_) if target.is_dir() => {
            remove(&tmp)?;
            Ok(target)
        }
        Err(source) => Err(DeployError::Io {
            context: "cannot move revision into place",
            path: target,
            source,
        }),
    }
}

/// Links (or copies) every file of `manifest` under `tmp` and makes its
/// directories read-only.
fn build(cas: &Cas, tmp: &Path, manifest: &Manifest) -> Result<(), DeployError> {
    let io = |context, path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Io {
            context,
            path,
            source,
        }
    };
    fs::create_dir_all(tmp).map_err(io("cannot create revision directory", tmp))?;
    // Manifests list files in path order, so a file's directory is almost
    // always the previous file's: create each directory once, not once
    // per file (a one-file change still materialises every file).
    let mut made: Option<PathBuf> = None;
    for (path, entry) in manifest.iter() {
        let dest = tmp.join(path);
        if let Some(parent) = dest.parent()
            && made.as_deref() != Some(parent)
        {
            fs::create_dir_all(parent).map_err(io("cannot create revision directory", parent))?;
            made = Some(parent.to_path_buf());
        }
        let object = cas.path(&entry.hash);
        if fs::hard_link(&object, &dest).is_err() {
            // Another file system (or a link limit): fall back to a copy.
            fs::copy(&object, &dest).map_err(io("cannot copy object into revision", &dest))?;
        }
    }
    set_dirs_readonly(tmp, true)
}

/// Points every file of the materialised `manifest` whose object is in
/// `hashes` at the object now stored under that name (a scrub stored a
/// sound copy after setting a damaged one aside: the revision's old links
/// still name the damaged inode). Returns how many links were replaced.
pub fn relink(
    cas: &Cas,
    revs: &Path,
    manifest: &Manifest,
    hashes: &std::collections::HashSet<blake3::Hash>,
) -> Result<usize, DeployError> {
    let dir = revision_dir(revs, &manifest.root());
    if !dir.is_dir() {
        return Ok(0);
    }
    let io = |context, path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Io {
            context,
            path,
            source,
        }
    };
    let mut replaced = 0;
    for (path, entry) in manifest.iter() {
        if !hashes.contains(&entry.hash) || !cas.contains(&entry.hash) {
            continue;
        }
        let dest = dir.join(path);
        let Some(parent) = dest.parent() else {
            continue;
        };
        let temp = parent.join(format!(".relink-{}", std::process::id()));
        fs::set_permissions(parent, fs::Permissions::from_mode(0o755))
            .map_err(io("cannot open revision directory for a relink", parent))?;
        let _ = fs::remove_file(&temp);
        let object = cas.path(&entry.hash);
        let linked = fs::hard_link(&object, &temp)
            .or_else(|_| fs::copy(&object, &temp).map(|_| ()))
            .and_then(|()| fs::rename(&temp, &dest));
        let _ = fs::remove_file(&temp);
        fs::set_permissions(parent, fs::Permissions::from_mode(0o555))
            .map_err(io("cannot close revision directory after a relink", parent))?;
        linked.map_err(io("cannot relink revision file", &dest))?;
        replaced += 1;
    }
    Ok(replaced)
}

/// Removes a materialised revision (making its directories writable first).
pub fn remove(dir: &Path) -> Result<(), DeployError> {
    if !dir.exists() {
        return Ok(());
    }
    set_dirs_readonly(dir, false)?;
    fs::remove_dir_all(dir).map_err(|source| DeployError::Io {
        context: "cannot remove revision directory",
        path: dir.to_path_buf(),
        source,
    })
}

fn set_dirs_readonly(dir: &Path, readonly: bool) -> Result<(), DeployError> {
    let mode = if readonly { 0o555 } else { 0o755 };
    let err = |source| DeployError::Io {
        context: "cannot set revision directory permissions",
        path: dir.to_path_buf(),
        source,
    };
    // Children first when locking, parent first when unlocking.
    if !readonly {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    for entry in fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.file_type().map_err(err)?.is_dir() {
            set_dirs_readonly(&entry.path(), readonly)?;
        }
    }
    if readonly {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(err)?;
    }
    Ok(())
}
