//! Objects this node lost, fetched again from peers: what the scrub
//! (`scrub/`) asks for after setting a damaged object aside, or finding one
//! missing that a kept revision needs.
//!
//! The same object batches as content sync (`objects.rs`), so every byte
//! is checked against its blake3 before it is stored; a peer whose copy is
//! damaged too fails its batch and the next peer is asked.

use std::collections::HashMap;

use bytes::Bytes;
use tracing::debug;

use super::messages::{MAX_BATCH_OBJECTS, ObjectsRequest, PATH_OBJECTS};
use super::objects::{self, UNKNOWN_SIZE};
use super::service::Mesh;

/// Fetches `wanted` (hash → size in bytes, `None` when unknown, as for a
/// manifest) from any peer that holds them and stores each; returns the
/// hashes stored. What no peer could give is simply not in the answer.
pub async fn fetch_objects(
    mesh: &Mesh,
    wanted: &HashMap<blake3::Hash, Option<u64>>,
) -> Vec<blake3::Hash> {
    let mut left: Vec<(blake3::Hash, u64)> = wanted
        .iter()
        .map(|(h, s)| (*h, s.unwrap_or(UNKNOWN_SIZE)))
        .collect();
    let mut stored = Vec::new();
    for peer in mesh.peers() {
        if left.is_empty() {
            break;
        }
        // An object of unknown size (a manifest) goes alone, in a plain
        // batch; the others in variant batches, so they arrive with the
        // peer's precompressed variants.
        let mut groups: Vec<Vec<(blake3::Hash, u64)>> = Vec::new();
        for chunk in left.chunks(MAX_BATCH_OBJECTS) {
            let (unknown, known): (Vec<_>, Vec<_>) =
                chunk.iter().partition(|(_, s)| *s == UNKNOWN_SIZE);
            groups.extend(unknown.into_iter().map(|o| vec![o]));
            if !known.is_empty() {
                groups.push(known);
            }
        }
        for group in groups {
            match fetch_group(mesh, peer.addr, &group).await {
                Ok(got) => stored.extend(got),
                Err(e) => debug!(peer = %peer.name, error = %e, "peer could not give objects back"),
            }
        }
        left.retain(|(h, _)| !stored.contains(h));
    }
    stored
}

/// Asks the peer at `addr` for one group and stores what it sends.
async fn fetch_group(
    mesh: &Mesh,
    addr: std::net::SocketAddr,
    group: &[(blake3::Hash, u64)],
) -> Result<Vec<blake3::Hash>, String> {
    let variants = group.iter().all(|(_, s)| *s != UNKNOWN_SIZE);
    let request = ObjectsRequest {
        hashes: group.iter().map(|(h, _)| h.to_hex().to_string()).collect(),
        variants,
    };
    let body = super::json_body::encode(&request).map_err(|e| e.to_string())?;
    let raw = group
        .iter()
        .map(|(_, s)| s.saturating_add(4 * 41))
        .fold(0u64, u64::saturating_add);
    let limit = raw
        .saturating_add(raw / 64 + 64 * 1024)
        .min(objects::MAX_BATCH_BYTES + 1024 * 1024) as usize;
    let batch = mesh
        .client()
        .call(addr, PATH_OBJECTS, Bytes::from(body), limit)
        .await
        .map_err(|e| e.to_string())?;
    let cas = mesh.deployer().cas().clone();
    let sizes: HashMap<blake3::Hash, u64> = group.iter().copied().collect();
    tokio::task::spawn_blocking(move || objects::decode(&cas, &batch, &sizes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
