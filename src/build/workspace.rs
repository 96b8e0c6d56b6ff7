//! The scratch directory one build runs in: created empty under
//! `<data>/builds/work/`, filled with the pushed commit (or, in dev mode, a
//! copy of the site directory), handed to the build user, and removed when
//! the deploy that used it is done.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A scratch checkout; removed on drop.
#[derive(Debug)]
pub struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    /// A new, empty directory at `dir` (which must not exist yet).
    pub(super) fn create(dir: PathBuf) -> std::io::Result<Workspace> {
        fs::create_dir_all(dir.parent().unwrap_or(Path::new("/")))?;
        fs::create_dir(&dir)?;
        Ok(Workspace { dir })
    }

    /// The checkout's root on the node.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copies the site directory `from` into the checkout, leaving out
    /// `skip` (the node's data directory, the build's previous output) and
    /// version-control metadata.
    pub fn copy_from(&self, from: &Path, skip: &[PathBuf]) -> std::io::Result<()> {
        copy_dir(from, &self.dir, skip)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if fs::remove_dir_all(&self.dir).is_err() {
            // A build may leave directories without write permission.
            make_writable(&self.dir);
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove a build directory");
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path, skip: &[PathBuf]) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        if skip.iter().any(|s| s == &path) || name == ".git" {
            continue;
        }
        let target = to.join(&name);
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&path)?, &target)?;
        } else if kind.is_dir() {
            fs::create_dir(&target)?;
            copy_dir(&path, &target, skip)?;
        } else if kind.is_file() {
            fs::copy(&path, &target)?;
        }
    }
    Ok(())
}

/// Gives every directory under `dir` its owner's write permission back.
fn make_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}

/// Hands `dir` and everything under it to `uid`/`gid` (links themselves,
/// never their targets).
pub(super) fn chown_all(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    if fs::symlink_metadata(dir)?.is_dir() {
        for entry in fs::read_dir(dir)? {
            chown_all(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Total bytes of the regular files under `dir`, links not followed.
pub(super) fn size_of(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0u64;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total = total.saturating_add(size_of(&entry.path())?);
        } else if kind.is_file() {
            total = total.saturating_add(entry.metadata()?.len());
        }
    }
    Ok(total)
}
