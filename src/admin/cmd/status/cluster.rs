//! The cluster part of `status`: every node's view of its peers and sites,
//! as a table or as JSON. The JSON views are admin's own, so the mesh's
//! wire message can change without changing what operators' scripts read;
//! their fields are in alphabetical order, as `status --json` has always
//! listed them.

use serde::Serialize;

use crate::admin::table::{Column, Table, abbreviated};
use crate::mesh::status::{NodeView, PeerView};

/// One node's view, or why it could not be had.
#[derive(Serialize)]
#[serde(untagged)]
pub enum NodeEntry {
    Node(NodeJson),
    Unreachable { error: String },
}

/// A node's view in `status --json`.
#[derive(Serialize)]
pub struct NodeJson {
    node: String,
    peers: Vec<PeerJson>,
    /// Pointer rows waiting for their revision's content.
    pending: usize,
    sites: Vec<SiteJson>,
    /// Why the last fetch for a waiting row failed (a full disk, a peer
    /// without the content), while one waits.
    sync_error: Option<String>,
}

/// One peer as a node sees it.
#[derive(Serialize)]
pub struct PeerJson {
    healthy: bool,
    last_handshake_secs_ago: Option<u64>,
    last_sync_ms_ago: Option<u64>,
    name: String,
    rpc: String,
    rpc_received: u64,
    rpc_sent: u64,
    wg_rx: Option<u64>,
    wg_tx: Option<u64>,
}

/// A site a node serves.
#[derive(Serialize)]
pub struct SiteJson {
    domain: String,
    revision: String,
}

impl From<Result<NodeView, String>> for NodeEntry {
    fn from(view: Result<NodeView, String>) -> NodeEntry {
        match view {
            Ok(view) => NodeEntry::Node(NodeJson {
                node: view.node,
                peers: view.peers.into_iter().map(PeerJson::from).collect(),
                pending: view.pending,
                sites: view
                    .sites
                    .into_iter()
                    .map(|s| SiteJson {
                        domain: s.domain,
                        revision: s.revision,
                    })
                    .collect(),
                sync_error: view.sync_error,
            }),
            Err(error) => NodeEntry::Unreachable { error },
        }
    }
}

impl From<PeerView> for PeerJson {
    fn from(p: PeerView) -> PeerJson {
        PeerJson {
            healthy: p.healthy,
            last_handshake_secs_ago: p.last_handshake_secs_ago,
            last_sync_ms_ago: p.last_sync_ms_ago,
            name: p.name,
            rpc: p.rpc,
            rpc_received: p.rpc_received,
            rpc_sent: p.rpc_sent,
            wg_rx: p.wg_rx,
            wg_tx: p.wg_tx,
        }
    }
}

/// The views as text: one line per (node, peer), then one per (node, site).
pub fn table(views: &[Result<NodeView, String>]) -> String {
    let mut peers = Table::new(
        " ",
        &[
            Column::left(16),
            Column::left(16),
            Column::left(8),
            Column::right(10),
            Column::right(10),
            Column::right(12),
            Column::right(12),
        ],
    );
    peers.row([
        "NODE",
        "PEER",
        "HEALTH",
        "HANDSHAKE",
        "SYNC AGO",
        "SENT",
        "RECEIVED",
    ]);
    let ago = |secs: Option<u64>| secs.map_or("-".to_string(), |s| format!("{s}s"));
    for view in views {
        let view = match view {
            Ok(view) => view,
            Err(e) => {
                peers.line(&format!("unreachable: {e}"));
                continue;
            }
        };
        for p in &view.peers {
            peers.row([
                view.node.clone(),
                p.name.clone(),
                (if p.healthy { "up" } else { "down" }).to_string(),
                ago(p.last_handshake_secs_ago),
                ago(p.last_sync_ms_ago.map(|ms| ms / 1000)),
                // WireGuard's counters when a device runs, else the RPC's.
                p.wg_tx.unwrap_or(p.rpc_sent).to_string(),
                p.wg_rx.unwrap_or(p.rpc_received).to_string(),
            ]);
        }
    }
    let mut sites = Table::new(" ", &[Column::left(16), Column::left(32)]);
    sites.row(["NODE", "SITE", "REVISION"]);
    for view in views.iter().flatten() {
        let syncing = if view.pending > 0 { "  (syncing)" } else { "" };
        for s in &view.sites {
            sites.row([
                view.node.clone(),
                s.domain.clone(),
                format!("{}{syncing}", abbreviated(&s.revision)),
            ]);
        }
    }
    let mut out = peers.into_text() + &sites.into_text();
    for view in views.iter().flatten() {
        if let Some(error) = &view.sync_error {
            out.push_str(&format!("{} waits: {error}\n", view.node));
        }
    }
    out
}
