//! The connectivity check: every object a new ref tip reaches must be
//! present, so a ref never points into a hole.
//!
//! Invariant that makes it cheap: every pack kept in a repository is
//! closed (all it references is present), because a pack that fails this
//! check is deleted. So the walk descends only through objects of the
//! pack just received; an object found elsewhere is already known closed.

use std::collections::HashSet;

use gix::ObjectId;
use gix::objs::Find;
use gix::objs::{Exists, Kind};

use super::GitError;

/// Checks that `tips` and everything they reach exist, descending through
/// objects for which `in_new_pack` is true.
pub fn check(
    odb: &gix::odb::Handle,
    tips: &[ObjectId],
    in_new_pack: &dyn Fn(&ObjectId) -> bool,
) -> Result<(), GitError> {
    let mut seen: HashSet<ObjectId> = HashSet::new();
    // (object, kind if known from the referrer)
    let mut pending: Vec<(ObjectId, Option<Kind>)> = tips.iter().map(|t| (*t, None)).collect();
    let mut buf = Vec::new();
    while let Some((id, kind)) = pending.pop() {
        if !seen.insert(id) {
            continue;
        }
        if !in_new_pack(&id) {
            if !odb.exists(&id) {
                return Err(GitError::Missing(id.to_string()));
            }
            continue;
        }
        if kind == Some(Kind::Blob) {
            continue; // present (it is in the pack) and references nothing
        }
        let data = odb
            .try_find(&id, &mut buf)
            .map_err(|e| GitError::repo(format!("cannot read object {id}"), e))?
            .ok_or_else(|| GitError::Missing(id.to_string()))?;
        match data.kind {
            Kind::Blob => {}
            Kind::Commit => {
                let commit = gix::objs::CommitRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                    .map_err(|e| GitError::repo(format!("corrupt commit {id}"), e))?;
                pending.push((commit.tree(), Some(Kind::Tree)));
                pending.extend(commit.parents().map(|p| (p, Some(Kind::Commit))));
            }
            Kind::Tree => {
                let tree = gix::objs::TreeRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                    .map_err(|e| GitError::repo(format!("corrupt tree {id}"), e))?;
                for entry in tree.entries {
                    if entry.mode.is_commit() {
                        continue; // a submodule: lives in another repository
                    }
                    let kind = if entry.mode.is_tree() {
                        Kind::Tree
                    } else {
                        Kind::Blob
                    };
                    pending.push((entry.oid.to_owned(), Some(kind)));
                }
            }
            Kind::Tag => {
                let tag = gix::objs::TagRef::from_bytes(data.data, gix::hash::Kind::Sha1)
                    .map_err(|e| GitError::repo(format!("corrupt tag {id}"), e))?;
                pending.push((tag.target(), Some(tag.target_kind)));
            }
        }
    }
    Ok(())
}
