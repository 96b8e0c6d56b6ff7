//! A pushed pack: spooled to a file, indexed into the repository's
//! `objects/pack` (thin packs completed from the repository), and deleted
//! again if its objects do not connect. Pushes (`receive.rs`) and the
//! mesh's replicated refs (`replica.rs`) both receive packs this way.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use gix::ObjectId;

use super::GitError;
use super::repo::Repo;

/// A pack received and indexed into the repository.
pub struct ReceivedPack {
    pub index: gix_pack::index::File,
    pub pack_path: PathBuf,
    pub index_path: PathBuf,
}

impl ReceivedPack {
    /// Whether `id` arrived in this pack.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.index.lookup(id).is_some()
    }

    /// Deletes the pack (it failed the connectivity check).
    pub fn discard(&self) {
        let _ = std::fs::remove_file(&self.index_path);
        let _ = std::fs::remove_file(&self.pack_path);
    }
}

/// Reads the pack that follows the commands into `objects/pack`, resolving
/// a thin pack's bases from the repository; `None` for an empty pack (the
/// client had nothing new to send, e.g. a branch at a known commit).
pub(super) fn receive_pack_data(
    repo: &Repo,
    input: &mut dyn std::io::BufRead,
) -> Result<Option<ReceivedPack>, GitError> {
    receive_pack_into(repo, &repo.pack_dir(), input)
}

/// [`receive_pack_data`] into `pack_dir` (a push's quarantine), bases of
/// a thin pack still resolved from `repo`.
pub(super) fn receive_pack_into(
    repo: &Repo,
    pack_dir: &std::path::Path,
    input: &mut dyn std::io::BufRead,
) -> Result<Option<ReceivedPack>, GitError> {
    let interrupt = AtomicBool::new(false);
    // Spool the pack to disk first, then index it: indexing straight from
    // the SSH channel measured ~20x slower than from a file (reads small
    // and interleaved with the transfer), and the file bounds nothing more
    // than the pack itself would.
    let spool = Spool::receive(pack_dir, input)?;
    let mut spooled = std::io::BufReader::with_capacity(256 * 1024, spool.open()?);
    let input: &mut dyn std::io::BufRead = &mut spooled;
    let options = gix_pack::bundle::write::Options {
        thread_limit: None,
        iteration_mode: gix_pack::data::input::Mode::Verify,
        index_version: gix_pack::index::Version::V2,
        ..Default::default()
    };
    let outcome = gix_pack::Bundle::write_to_directory(
        input,
        Some(pack_dir),
        &mut gix::progress::Discard,
        &interrupt,
        Some(repo.odb.clone()),
        gix::hash::Kind::Sha1,
        options,
    )
    .map_err(|e| GitError::Pack(e.into()))?;
    let (Some(index_path), Some(pack_path)) = (outcome.index_path, outcome.data_path) else {
        if outcome.index.num_objects == 0 {
            return Ok(None);
        }
        return Err(GitError::Pack("the pack was not written".into()));
    };
    let index = gix_pack::index::File::at(&index_path, gix::hash::Kind::Sha1)
        .map_err(|e| GitError::Pack(e.into()))?;
    Ok(Some(ReceivedPack {
        index,
        pack_path,
        index_path,
    }))
}

/// The pack as received, in `objects/pack/incoming-*.tmp`, removed on drop.
struct Spool {
    path: PathBuf,
}

impl Spool {
    fn receive(
        pack_dir: &std::path::Path,
        input: &mut dyn std::io::BufRead,
    ) -> Result<Spool, GitError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let spool = Spool {
            path: pack_dir.join(format!("incoming-{}-{n}.tmp", std::process::id())),
        };
        // Writing is told apart from reading: a full disk is the node's
        // problem, named as such, not a dropped connection.
        let stored =
            |e: std::io::Error| GitError::repo(format!("cannot write {}", spool.path.display()), e);
        let mut file = std::fs::File::create(&spool.path).map_err(stored)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut bytes = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            std::io::Write::write_all(&mut file, &buf[..n]).map_err(stored)?;
            bytes += n as u64;
        }
        file.sync_all().map_err(stored)?;
        tracing::debug!(bytes, "pack spooled");
        Ok(spool)
    }

    fn open(&self) -> Result<std::fs::File, GitError> {
        Ok(std::fs::File::open(&self.path)?)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
