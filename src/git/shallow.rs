//! Shallow clones and fetches for upload-pack (protocol v0 `shallow`,
//! `deepen N` and `deepen-relative`): which commits become the client's new
//! shallow boundary, which of its old boundary commits stop being shallow,
//! and which commits a pack must then hold. `git clone --depth 1` and
//! `git fetch --deepen N` are what CI systems run.

use std::collections::{HashMap, HashSet, VecDeque};

use gix::ObjectId;
use gix::objs::{Find, Kind};

use super::GitError;
use super::repo::Repo;

/// What a client said about history depth in its request.
#[derive(Debug, Default)]
pub struct ShallowRequest {
    /// Commits the client holds without their parents (`shallow` lines).
    pub client: HashSet<ObjectId>,
    /// `deepen N`: how many commits of history the client wants.
    pub depth: Option<u32>,
    /// Whether `depth` counts from the client's boundary (`--deepen`)
    /// rather than from the wanted tips (`--depth`).
    pub relative: bool,
}

/// The shallow part of an answer.
#[derive(Debug, Default)]
pub struct Boundary {
    /// Commits sent without their parents (the client's new boundary).
    pub shallow: HashSet<ObjectId>,
    /// Old boundary commits whose parents are now sent.
    pub unshallow: HashSet<ObjectId>,
}

impl ShallowRequest {
    /// Whether the request involves shallow history at all.
    pub fn is_active(&self) -> bool {
        self.depth.is_some() || !self.client.is_empty()
    }

    /// The boundary after this request, from `wants`.
    pub fn boundary(&self, repo: &Repo, wants: &[ObjectId]) -> Result<Boundary, GitError> {
        let mut boundary = Boundary::default();
        let Some(depth) = self.depth.filter(|d| *d > 0) else {
            return Ok(boundary);
        };
        // Breadth first, so each commit is reached at its least depth.
        let roots: Vec<ObjectId> = if self.relative {
            self.client.iter().copied().collect()
        } else {
            wants.to_vec()
        };
        // A root's depth: 1 for a wanted tip (it is sent), 0 for an old
        // boundary commit (the client has it already).
        let first = if self.relative { 0 } else { 1 };
        let mut seen: HashMap<ObjectId, u32> = HashMap::new();
        let mut queue: VecDeque<(ObjectId, u32)> =
            roots.into_iter().map(|id| (id, first)).collect();
        let mut buf = Vec::new();
        while let Some((id, d)) = queue.pop_front() {
            if seen.contains_key(&id) {
                continue;
            }
            seen.insert(id, d);
            let Some(parents) = parents(repo, &id, &mut buf)? else {
                continue;
            };
            if d >= depth {
                if !parents.is_empty() {
                    boundary.shallow.insert(id);
                }
                continue;
            }
            if self.client.contains(&id) && !parents.is_empty() {
                boundary.unshallow.insert(id);
            }
            queue.extend(parents.into_iter().map(|p| (p, d + 1)));
        }
        Ok(boundary)
    }

    /// Whether the walk that fills the pack stops at `id` (sends it, but
    /// not its parents).
    pub fn stops_at(&self, boundary: &Boundary, id: &ObjectId) -> bool {
        boundary.shallow.contains(id)
            || (self.client.contains(id) && !boundary.unshallow.contains(id))
    }
}

/// A commit's parents; `None` if `id` is not a commit here.
fn parents(
    repo: &Repo,
    id: &ObjectId,
    buf: &mut Vec<u8>,
) -> Result<Option<Vec<ObjectId>>, GitError> {
    let Some(data) = repo
        .odb
        .try_find(id, buf)
        .map_err(|e| GitError::Objects(e.into()))?
    else {
        return Ok(None);
    };
    if data.kind != Kind::Commit {
        return Ok(None);
    }
    let commit = gix::objs::CommitRef::from_bytes(data.data, gix::hash::Kind::Sha1)
        .map_err(|e| GitError::repo(format!("corrupt commit {id}"), e))?;
    Ok(Some(commit.parents().collect()))
}
