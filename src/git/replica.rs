//! What the mesh needs from a repository to replicate it: a pack of the
//! objects a peer lacks, indexing a pack from a peer, and moving a ref to
//! the value the replicated `refs` row chose.
//!
//! Packs from peers go through the same indexing (with verification) as a
//! pushed pack, and a ref moves only once its target object is present.

use std::path::Path;

use gix::ObjectId;
use gix_pack::Find as _;

use super::locks::RepoLocks;
use super::pack::receive_pack_data;
use super::repo::{RefUpdate, Repo};
use super::upload::{objects_to_send, write_pack_to};
use super::{GitError, RepoName};

fn parse_id(hex: &str) -> Result<ObjectId, GitError> {
    ObjectId::from_hex(hex.as_bytes())
        .map_err(|_| GitError::Protocol(format!("{hex:?} is not an object id")))
}

fn name(repo: &str) -> Result<RepoName, GitError> {
    Ok(RepoName::parse(repo)?)
}

/// A pack of every object reachable from `wants` and not from `haves` (ids
/// the asking node holds; unknown ones are ignored). Empty when the
/// repository or a wanted object is missing here.
pub fn pack_for(
    repos: &Path,
    repo: &str,
    wants: &[String],
    haves: &[String],
) -> Result<Vec<u8>, GitError> {
    let Some(repo) = Repo::open(repos, &name(repo)?)? else {
        return Ok(Vec::new());
    };
    let wants: Vec<ObjectId> = wants
        .iter()
        .map(|w| parse_id(w))
        .collect::<Result<_, _>>()?;
    if wants.iter().any(|w| !repo.odb.contains(w)) {
        return Ok(Vec::new());
    }
    let haves: Vec<ObjectId> = haves
        .iter()
        .filter_map(|h| parse_id(h).ok())
        .filter(|h| repo.odb.contains(h))
        .collect();
    let objects = objects_to_send(&repo, &wants, &haves)?;
    let mut pack = Vec::new();
    write_pack_to(&repo, objects, &mut pack)?;
    Ok(pack)
}

/// Whether `repo` exists here and holds object `id`.
pub fn has_object(repos: &Path, repo: &str, id: &str) -> bool {
    let (Ok(name), Ok(id)) = (name(repo), parse_id(id)) else {
        return false;
    };
    matches!(Repo::open(repos, &name), Ok(Some(r)) if r.odb.contains(&id))
}

/// Branch and tag heads of `repo` here (empty when it does not exist).
pub fn local_refs(repos: &Path, repo: &str) -> Vec<(String, String)> {
    let Ok(name) = name(repo) else {
        return Vec::new();
    };
    match Repo::open(repos, &name) {
        Ok(Some(r)) => r
            .refs()
            .unwrap_or_default()
            .into_iter()
            .map(|(n, id)| (n, id.to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Indexes a pack from a peer into `repo` (created if needed).
pub fn import_pack(repos: &Path, repo: &str, pack: &[u8]) -> Result<(), GitError> {
    let (repo, _) = Repo::open_or_create(repos, &name(repo)?)?;
    let mut input = std::io::Cursor::new(pack);
    receive_pack_data(&repo, &mut input)?;
    Ok(())
}

/// Moves `refname` of `repo` from `old` (None: absent) to `target` (None:
/// deleted); refused if the ref moved meanwhile or the target is missing.
pub fn set_ref(
    repos: &Path,
    repo: &str,
    refname: &str,
    old: Option<&str>,
    target: Option<&str>,
) -> Result<(), GitError> {
    if !(refname.starts_with("refs/heads/") || refname.starts_with("refs/tags/")) {
        return Err(GitError::Protocol(format!(
            "{refname:?} is not a branch or tag"
        )));
    }
    let (repo, _) = Repo::open_or_create(repos, &name(repo)?)?;
    let null = ObjectId::null(gix::hash::Kind::Sha1);
    let old = old.map(parse_id).transpose()?.unwrap_or(null);
    let new = target.map(parse_id).transpose()?.unwrap_or(null);
    if !new.is_null() && !repo.odb.contains(&new) {
        return Err(GitError::Missing(new.to_string()));
    }
    repo.update_refs(&[RefUpdate {
        name: refname.to_string(),
        old,
        new,
    }])
}

/// Moves `refname` of `repo` to the target `chosen` returns (`None`: the
/// ref is deleted), under the repository's lock (see `locks.rs`), with the
/// local ref and `chosen` both read inside it: a push holding the lock
/// finishes first, and its own row is what `chosen` then sees. Returns
/// whether the ref moved; `Ok(false)` when it already matches or the
/// target object is not here yet.
pub fn follow_ref(
    repos: &Path,
    locks: &RepoLocks,
    repo: &str,
    refname: &str,
    chosen: impl FnOnce() -> Option<String>,
) -> Result<bool, GitError> {
    let lock = locks.of(repo);
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let target = chosen();
    let current = local_refs(repos, repo)
        .into_iter()
        .find(|(n, _)| n == refname)
        .map(|(_, id)| id);
    if current == target {
        return Ok(false);
    }
    if let Some(t) = &target
        && !has_object(repos, repo, t)
    {
        return Ok(false);
    }
    set_ref(repos, repo, refname, current.as_deref(), target.as_deref())?;
    Ok(true)
}
