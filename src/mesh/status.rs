//! What one node sees of the cluster: its sites and revisions, and per peer
//! the last completed exchange, the pointer rows still waiting for content
//! and the bytes moved. `status --json` gathers every node's view.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::service::{Mesh, now_ms};
use crate::metrics::traffic::NodeTraffic;

/// One node's view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeView {
    pub node: String,
    /// Domain (or preview host) → active revision root.
    pub sites: Vec<SiteView>,
    pub peers: Vec<PeerView>,
    /// Pointer rows waiting for their revision's content.
    pub pending: usize,
    /// Why the last fetch for a waiting row failed, while one waits.
    #[serde(default)]
    pub sync_error: Option<String>,
}

/// A served site.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SiteView {
    pub domain: String,
    pub revision: String,
}

/// One peer as this node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerView {
    pub name: String,
    pub rpc: String,
    pub healthy: bool,
    /// Milliseconds since the last completed anti-entropy exchange
    /// (replication lag bound), if any.
    pub last_sync_ms_ago: Option<u64>,
    /// Seconds since the last WireGuard handshake, when a device runs.
    pub last_handshake_secs_ago: Option<u64>,
    /// RPC payload bytes sent to and received from the peer.
    pub rpc_sent: u64,
    pub rpc_received: u64,
    /// WireGuard bytes, when a device runs.
    pub wg_tx: Option<u64>,
    pub wg_rx: Option<u64>,
}

/// This node's view, now.
pub fn local_view(mesh: &Mesh) -> NodeView {
    let sites = mesh
        .sites()
        .load()
        .sites()
        .iter()
        .map(|s| SiteView {
            domain: s.domain.clone(),
            revision: s.root.to_hex().to_string(),
        })
        .collect();
    let health: std::collections::HashMap<String, bool> = mesh
        .store()
        .nodes()
        .unwrap_or_default()
        .into_iter()
        .map(|n| (n.place.name, n.healthy))
        .collect();
    let last_sync = mesh.last_sync();
    let now = now_ms();
    // WireGuard statistics by public key, when a device runs.
    let stats: std::collections::HashMap<String, super::wireguard::PeerStats> = mesh
        .device()
        .and_then(|device| {
            let handle = tokio::runtime::Handle::try_current().ok()?;
            handle.block_on(device.peer_stats()).ok()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.public_key.to_string(), s))
        .collect();
    let keys: std::collections::HashMap<String, String> = mesh
        .store()
        .members()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| Some((m.name, m.wg_public_key?)))
        .collect();
    let peers = mesh
        .peers()
        .into_iter()
        .map(|p| {
            let traffic = mesh.client().traffic(p.addr);
            let wg = keys.get(&p.name).and_then(|k| stats.get(k));
            PeerView {
                healthy: health.get(&p.name).copied().unwrap_or(true),
                last_sync_ms_ago: last_sync.get(&p.name).map(|t| now.saturating_sub(*t)),
                last_handshake_secs_ago: wg
                    .and_then(|s| s.last_handshake)
                    .and_then(|t| t.elapsed().ok())
                    .map(|d| d.as_secs()),
                rpc_sent: traffic.sent.load(Ordering::Relaxed),
                rpc_received: traffic.received.load(Ordering::Relaxed),
                wg_tx: wg.map(|s| s.tx_bytes),
                wg_rx: wg.map(|s| s.rx_bytes),
                rpc: p.addr.to_string(),
                name: p.name,
            }
        })
        .collect();
    NodeView {
        node: mesh.name().to_string(),
        sites,
        peers,
        pending: mesh.pending().len(),
        sync_error: mesh.sync_error(),
    }
}

/// Every node's view: this node's, then each peer's as it reports it (a
/// peer that does not answer within a few seconds is listed without a
/// view). `None` outside a runtime. Blocking: call from a blocking thread
/// inside the runtime.
pub fn cluster_views(mesh: &Mesh) -> Option<Vec<Result<NodeView, String>>> {
    gather(mesh, local_view(mesh), super::messages::PATH_STATUS)
}

/// Every node's recent traffic (`stats`): this node's, then each peer's
/// as it reports it, like [`cluster_views`].
pub fn cluster_traffic(mesh: &Mesh) -> Option<Vec<Result<NodeTraffic, String>>> {
    gather(mesh, mesh.traffic(), super::messages::PATH_TRAFFIC)
}

/// `local`, then every peer's answer to `path` (a peer that does not
/// answer within a few seconds is named instead). `None` outside a
/// runtime.
fn gather<T>(mesh: &Mesh, local: T, path: &'static str) -> Option<Vec<Result<T, String>>>
where
    T: serde::de::DeserializeOwned,
{
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let mut answers = vec![Ok(local)];
    for peer in mesh.peers() {
        let call = mesh.client().call_json::<_, T>(peer.addr, path, &());
        answers.push(handle.block_on(async {
            match tokio::time::timeout(std::time::Duration::from_secs(3), call).await {
                Ok(Ok(view)) => Ok(view),
                Ok(Err(e)) => Err(format!("{}: {e}", peer.name)),
                Err(_) => Err(format!("{}: no answer within 3 s", peer.name)),
            }
        }));
    }
    Some(answers)
}
