//! A push's quarantine, as git's own receive-pack keeps one: the pushed
//! pack is written to `objects/incoming-<pid>-<n>/`, whose alternates file
//! reaches the repository's objects, so the checks, `pre-receive` and the
//! deploy see old and new objects alike while the repository itself does
//! not. The pack moves into `objects/pack` only when a ref is about to
//! take it; a refused push, or one cut off half-way (a dropped connection,
//! a full disk), leaves no object behind.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::GitError;
use super::repo::Repo;

/// The prefix of quarantine directories under `objects/`.
const PREFIX: &str = "incoming-";

/// One push's quarantine directory, removed on drop (after `accept` it
/// is empty).
pub struct Quarantine {
    dir: PathBuf,
    /// The repository's `objects/`, where accepted packs go.
    objects: PathBuf,
}

impl Quarantine {
    /// Creates an empty quarantine in `repo`, first removing any a
    /// previous process left behind (a crash mid-push).
    pub fn create(repo: &Repo) -> Result<Quarantine, GitError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let objects = repo.path.join("objects");
        let pid = std::process::id();
        remove_stale(&objects, pid);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = objects.join(format!("{PREFIX}{pid}-{n}"));
        let context = format!("cannot create the quarantine {}", dir.display());
        let io = |e| GitError::repo(context.clone(), e);
        fs::create_dir_all(dir.join("pack")).map_err(io)?;
        fs::create_dir_all(dir.join("info")).map_err(io)?;
        let quarantine = Quarantine { dir, objects };
        let absolute = fs::canonicalize(&quarantine.objects).map_err(io)?;
        let mut line = absolute.into_os_string().into_encoded_bytes();
        line.push(b'\n');
        fs::write(quarantine.dir.join("info").join("alternates"), line).map_err(io)?;
        Ok(quarantine)
    }

    /// Where the pushed pack is written.
    pub fn pack_dir(&self) -> PathBuf {
        self.dir.join("pack")
    }

    /// `repo` seen through the quarantine: its refs, and its objects plus
    /// the pushed ones.
    pub fn view(&self, repo: &Repo) -> Result<Repo, GitError> {
        let odb = gix::odb::at(&self.dir, gix::hash::Kind::Sha1)
            .map_err(|e| GitError::repo(format!("cannot open {}", self.dir.display()), e))?;
        Ok(repo.with_odb(odb))
    }

    /// What a hook is told so that git commands it runs find the pushed
    /// objects (the variables git's receive-pack sets for its hooks).
    pub fn hook_env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("GIT_QUARANTINE_PATH", self.dir.clone().into_os_string()),
            ("GIT_OBJECT_DIRECTORY", self.dir.clone().into_os_string()),
            (
                "GIT_ALTERNATE_OBJECT_DIRECTORIES",
                self.objects.clone().into_os_string(),
            ),
        ]
    }

    /// Moves the pushed pack into the repository: each `.pack` before its
    /// `.idx`, since readers find a pack by its index. Returns how many
    /// packs moved.
    pub fn accept(&self) -> Result<usize, GitError> {
        let target = self.objects.join("pack");
        let io = |what: &str, path: &Path| {
            let context = format!("cannot {what} {}", path.display());
            move |e| GitError::repo(context, e)
        };
        let entries = fs::read_dir(self.pack_dir()).map_err(io("list", &self.pack_dir()))?;
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        // `.idx` sorts before `.pack`; rank packs first.
        names.sort_by_key(|p| p.extension().is_none_or(|e| e != "pack"));
        let mut moved = 0;
        for from in names {
            let Some(name) = from.file_name() else {
                continue;
            };
            let to = target.join(name);
            if from.extension().is_some_and(|e| e == "pack") {
                moved += 1;
            }
            fs::rename(&from, &to).map_err(io("move into the repository", &from))?;
        }
        if let Ok(dir) = fs::File::open(&target) {
            dir.sync_all().map_err(io("sync", &target))?;
        }
        Ok(moved)
    }
}

impl Drop for Quarantine {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes quarantines of other processes: a node runs one process per
/// data directory, so they are leftovers of one that stopped mid-push.
fn remove_stale(objects: &Path, pid: u32) {
    let Ok(entries) = fs::read_dir(objects) else {
        return;
    };
    let ours = format!("{PREFIX}{pid}-");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && !name.starts_with(&ours) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
