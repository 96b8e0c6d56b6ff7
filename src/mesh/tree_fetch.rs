//! Fetching a revision's manifest from a peer by blake3 tree diff.
//!
//! The node compares the wanted root with the closest revision it already
//! holds, asks the peer for the listings of only the directories whose
//! hashes differ (one request per tree level), checks each listing against
//! the hash its parent gave, and copies every equal subtree from its own
//! manifest. A one-file change in a large site costs the listings on that
//! file's path. Without a local revision to compare with, the manifest is
//! fetched whole. Either way the result must hash to the manifest hash the
//! replicated revision row names.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use bytes::Bytes;

use super::messages::{
    ChildWire, MAX_TREE_DIRS, ObjectsRequest, PATH_OBJECTS, PATH_TREE, TreeReply, TreeRequest,
};
use super::objects;
use super::rpc::{Client, RpcError};
use crate::cas::Cas;
use crate::tree::{Child, ChildKind, Entry, Manifest, MerkleTree, Mode, hash_children, leaf_hash};

/// Why a manifest could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("peer {peer} sent a listing of {path:?} that does not match its hash")]
    BadListing { peer: SocketAddr, path: String },
    #[error("peer {peer} has no listing of {path:?} in manifest {manifest}")]
    MissingListing {
        peer: SocketAddr,
        path: String,
        manifest: String,
    },
    #[error("peer {peer} sent manifest bytes that do not hash to {manifest}")]
    BadManifest { peer: SocketAddr, manifest: String },
    #[error("peer {peer} does not hold manifest {manifest}")]
    NoManifest { peer: SocketAddr, manifest: String },
    #[error("fetched objects: {0}")]
    Batch(#[from] objects::BatchError),
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot install the fetched revision: {0}")]
    Install(#[from] crate::deploy::DeployError),
    #[error("no peer to fetch from")]
    NoPeer,
}

impl FetchError {
    /// Whether the failure is this node's own (storing or installing),
    /// not the peer's.
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            FetchError::Install(_)
                | FetchError::Task(_)
                | FetchError::Batch(objects::BatchError::Cas(_))
        )
    }
}

/// Fetches manifest `manifest` (whose Merkle root is `root`) from `peer`,
/// comparing with `base` when there is one.
pub async fn fetch_manifest(
    client: &Client,
    cas: &Cas,
    peer: SocketAddr,
    manifest: blake3::Hash,
    root: blake3::Hash,
    base: Option<&Manifest>,
) -> Result<Manifest, FetchError> {
    let Some(base) = base else {
        return fetch_whole(client, cas, peer, manifest).await;
    };
    let base_tree = MerkleTree::build(base);
    if base_tree.root() == root {
        return Ok(base.clone());
    }
    let hex = manifest.to_hex().to_string();
    let mut files: Vec<(String, Entry)> = Vec::new();
    let mut kept: HashSet<String> = HashSet::new();
    let mut level: Vec<(String, blake3::Hash)> = vec![(String::new(), root)];
    while !level.is_empty() {
        let mut next = Vec::new();
        for chunk in level.chunks(MAX_TREE_DIRS) {
            let request = TreeRequest {
                manifest: hex.clone(),
                dirs: chunk.iter().map(|(p, _)| p.clone()).collect(),
            };
            let reply: TreeReply = client.call_json(peer, PATH_TREE, &request).await?;
            let mut listings: HashMap<String, Vec<ChildWire>> = reply
                .dirs
                .into_iter()
                .map(|d| (d.path, d.children))
                .collect();
            for (path, expected) in chunk {
                let Some(wire) = listings.remove(path) else {
                    return Err(FetchError::MissingListing {
                        peer,
                        path: path.clone(),
                        manifest: hex.clone(),
                    });
                };
                let children = checked_children(wire).ok_or_else(|| FetchError::BadListing {
                    peer,
                    path: path.clone(),
                })?;
                if hash_children(&children) != *expected {
                    return Err(FetchError::BadListing {
                        peer,
                        path: path.clone(),
                    });
                }
                for child in children {
                    let full = join(path, &child.name);
                    match child.kind {
                        ChildKind::File(entry) => files.push((full, entry)),
                        ChildKind::Dir if base_tree.dir_hash(&full) == Some(child.hash) => {
                            kept.insert(full);
                        }
                        ChildKind::Dir => next.push((full, child.hash)),
                    }
                }
            }
        }
        level = next;
    }
    let mut out = Manifest::new();
    for (path, entry) in base.iter() {
        if has_kept_ancestor(path, &kept) {
            // Paths from a valid manifest stay valid.
            let _ = out.insert(path, *entry);
        }
    }
    for (path, entry) in files {
        if out.insert(&path, entry).is_err() {
            return Err(FetchError::BadListing { peer, path });
        }
    }
    if blake3::hash(&out.to_bytes()) != manifest {
        return Err(FetchError::BadManifest {
            peer,
            manifest: hex,
        });
    }
    Ok(out)
}

/// Fetches the manifest object itself (first revision of a domain here).
async fn fetch_whole(
    client: &Client,
    cas: &Cas,
    peer: SocketAddr,
    manifest: blake3::Hash,
) -> Result<Manifest, FetchError> {
    let hex = manifest.to_hex().to_string();
    if !cas.contains(&manifest) {
        let body = serde_json::to_vec(&ObjectsRequest {
            hashes: vec![hex.clone()],
            variants: false,
        })
        .unwrap_or_default();
        let batch = client
            .call(
                peer,
                PATH_OBJECTS,
                Bytes::from(body),
                objects::MAX_BATCH_BYTES as usize,
            )
            .await?;
        let cas = cas.clone();
        let stored = tokio::task::spawn_blocking(move || {
            let sizes = [(manifest, objects::UNKNOWN_SIZE)].into_iter().collect();
            objects::decode(&cas, &batch, &sizes)
        })
        .await??;
        if stored.is_empty() {
            return Err(FetchError::NoManifest {
                peer,
                manifest: hex,
            });
        }
    }
    let bytes = cas.read(&manifest).map_err(objects::BatchError::from)?;
    Manifest::from_bytes(&bytes).map_err(|_| FetchError::BadManifest {
        peer,
        manifest: hex,
    })
}

/// Wire children as tree children, checking each file's leaf hash; `None`
/// if any is malformed or the names are not strictly sorted.
fn checked_children(wire: Vec<ChildWire>) -> Option<Vec<Child>> {
    let mut out: Vec<Child> = Vec::with_capacity(wire.len());
    for w in wire {
        if w.name.is_empty() || w.name.contains('/') {
            return None;
        }
        if out.last().is_some_and(|prev| prev.name >= w.name) {
            return None;
        }
        let hash = blake3::Hash::from_hex(&w.hash).ok()?;
        let kind = match w.file {
            Some(f) => {
                let entry = Entry {
                    mode: if f.exec { Mode::Executable } else { Mode::File },
                    size: f.size,
                    hash: blake3::Hash::from_hex(&f.blob).ok()?,
                };
                if leaf_hash(&entry) != hash {
                    return None;
                }
                ChildKind::File(entry)
            }
            None => ChildKind::Dir,
        };
        out.push(Child {
            name: w.name,
            kind,
            hash,
        });
    }
    Some(out)
}

/// The wire form of a directory's children.
pub fn wire_children(children: &[Child]) -> Vec<ChildWire> {
    children
        .iter()
        .map(|c| ChildWire {
            name: c.name.clone(),
            hash: c.hash.to_hex().to_string(),
            file: match c.kind {
                ChildKind::File(e) => Some(super::messages::FileWire {
                    exec: e.mode == Mode::Executable,
                    size: e.size,
                    blob: e.hash.to_hex().to_string(),
                }),
                ChildKind::Dir => None,
            },
        })
        .collect()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether some directory above `path` was found equal to the base.
fn has_kept_ancestor(path: &str, kept: &HashSet<String>) -> bool {
    path.char_indices()
        .filter(|(_, c)| *c == '/')
        .any(|(i, _)| kept.contains(&path[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_ancestors_are_found() {
        let kept: HashSet<String> = ["a/b".to_string()].into_iter().collect();
        assert!(has_kept_ancestor("a/b/c.txt", &kept));
        assert!(has_kept_ancestor("a/b/d/e", &kept));
        assert!(!has_kept_ancestor("a/bc/x", &kept));
        assert!(!has_kept_ancestor("top.txt", &kept));
    }

    #[test]
    fn listings_are_checked() {
        let entry = Entry {
            mode: Mode::File,
            size: 3,
            hash: blake3::hash(b"abc"),
        };
        let good = Child {
            name: "a".into(),
            kind: ChildKind::File(entry),
            hash: leaf_hash(&entry),
        };
        let wire = wire_children(std::slice::from_ref(&good));
        assert_eq!(checked_children(wire), Some(vec![good.clone()]));
        let mut forged = wire_children(&[good]);
        if let Some(f) = forged[0].file.as_mut() {
            f.size = 4;
        }
        assert_eq!(checked_children(forged), None);
    }
}
