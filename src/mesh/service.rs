//! The mesh service of one node: its RPC listener, its view of the other
//! members, and the single entry point for rows arriving from peers.
//!
//! Rows enter through [`Mesh::accept_rows`]: pointer rows (a domain's or a
//! preview's active revision) whose content is not yet here are held back
//! and handed to content sync, so the store never points at a revision this
//! node cannot serve whole; everything else is merged at once.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::rpc::Client;
use crate::deploy::Deployer;
use crate::store::{PointerKind, Row, RowError, RowId, Store, Table};
use crate::tree::MerkleTree;

/// A peer as the node table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub addr: SocketAddr,
}

/// One node's mesh state, shared by its mesh tasks and RPC handlers.
pub struct Mesh {
    /// This node's name.
    pub name: String,
    pub store: Arc<Store>,
    pub deployer: Arc<Deployer>,
    pub client: Client,
    /// Where this node's RPC listens.
    pub rpc_addr: SocketAddr,
    /// `<data>/repos`, the bare repositories git sync keeps current.
    pub repos: std::path::PathBuf,
    /// Where this node serves HTTP and DNS (peers' health probes check them).
    pub http_addr: SocketAddr,
    pub dns_addr: Option<SocketAddr>,
    /// Pointer rows waiting for their revision's content, by row.
    pending: Mutex<BTreeMap<RowId, Row>>,
    /// Wakes content sync when a row is held back.
    pub content_wake: Notify,
    /// Wakes git sync when refs change.
    pub git_wake: Notify,
    /// Merkle trees of manifests recently listed to peers (a few, newest last).
    trees: Mutex<Vec<(blake3::Hash, Arc<MerkleTree>)>>,
    /// Changes whenever the node table changes (WireGuard peers follow it).
    pub members_version: watch::Sender<u64>,
    /// When each peer last completed an anti-entropy exchange (ms).
    pub last_sync: Mutex<HashMap<String, u64>>,
    /// The WireGuard device, when this node runs one (peer statistics).
    pub device: std::sync::OnceLock<Arc<super::wireguard::Device>>,
    /// The mesh prefixes from `[mesh]`, when set: joins are given
    /// addresses from them.
    pub prefixes: std::sync::OnceLock<super::addresses::Prefixes>,
}

impl Mesh {
    /// A mesh service for `store`, listening at `rpc_addr`.
    pub fn new(
        name: String,
        store: Arc<Store>,
        deployer: Arc<Deployer>,
        client: Client,
        rpc_addr: SocketAddr,
        repos: std::path::PathBuf,
        (http_addr, dns_addr): (SocketAddr, Option<SocketAddr>),
    ) -> Mesh {
        Mesh {
            name,
            store,
            deployer,
            client,
            rpc_addr,
            repos,
            http_addr,
            dns_addr,
            pending: Mutex::new(BTreeMap::new()),
            content_wake: Notify::new(),
            git_wake: Notify::new(),
            trees: Mutex::new(Vec::new()),
            members_version: watch::Sender::new(0),
            last_sync: Mutex::new(HashMap::new()),
            device: std::sync::OnceLock::new(),
            prefixes: std::sync::OnceLock::new(),
        }
    }

    /// Every other live member with a usable RPC address.
    pub fn peers(&self) -> Vec<Peer> {
        let members = match self.store.members() {
            Ok(members) => members,
            Err(e) => {
                warn!(error = %e, "cannot read the node table");
                return Vec::new();
            }
        };
        members
            .into_iter()
            .filter(|m| m.name != self.name)
            .filter_map(|m| {
                let addr = m.rpc_addr.as_deref()?.parse().ok()?;
                Some(Peer { name: m.name, addr })
            })
            .collect()
    }

    /// Merges rows from a peer (see the module doc); returns how many
    /// changed this node's state.
    pub fn accept_rows(&self, rows: Vec<Row>) -> Result<usize, RowError> {
        let mut now = Vec::new();
        let mut held = Vec::new();
        for row in rows {
            if self.needs_content(&row) {
                held.push(row);
            } else {
                now.push(row);
            }
        }
        let mut applied = self.store.apply_rows(&now)?;
        // A held pointer may name a revision whose row came in this batch.
        let (ready, wait): (Vec<Row>, Vec<Row>) =
            held.into_iter().partition(|row| !self.needs_content(row));
        if !ready.is_empty() {
            applied.extend(self.store.apply_rows(&ready)?);
        }
        if !wait.is_empty() {
            self.hold(wait);
        }
        self.after_apply(&applied);
        Ok(applied.len())
    }

    /// Reacts to rows that changed state: the node table moves WireGuard
    /// peers, pointers republish the site snapshot, refs wake git sync,
    /// retired revisions free their objects.
    fn after_apply(&self, applied: &[Row]) {
        let touched = |table: Table| applied.iter().any(|r| r.table() == Some(table));
        if touched(Table::Nodes) {
            self.members_version.send_modify(|v| *v = v.wrapping_add(1));
        }
        if touched(Table::Domains) || touched(Table::Previews) || touched(Table::Revisions) {
            if let Err(e) = self.deployer.refresh() {
                warn!(error = %e, "cannot republish sites after replication");
            }
            for row in applied.iter().filter(|r| !r.deleted) {
                if let Some(pointer) = row.pointer()
                    && pointer.kind == PointerKind::Domain
                {
                    info!(
                        domain = pointer.site,
                        root = pointer.root,
                        origin = %row.origin,
                        "replicated revision active"
                    );
                }
            }
        }
        if applied
            .iter()
            .any(|r| r.table() == Some(Table::Revisions) && r.deleted)
            && let Err(e) = self.deployer.collect_garbage()
        {
            warn!(error = %e, "cannot collect garbage after replication");
        }
        if touched(Table::Refs) || touched(Table::Repos) {
            self.git_wake.notify_one();
        }
    }

    /// Whether `row` points at a revision this node has not materialised.
    /// Only live pointer rows that would win last-writer-wins qualify.
    fn needs_content(&self, row: &Row) -> bool {
        if row.deleted {
            return false;
        }
        let Some(pointer) = row.pointer() else {
            return false;
        };
        if self.deployer.has_revision(pointer.root) {
            return false;
        }
        match self.store.version_of(row) {
            Ok(Some((hlc, origin))) => row.beats(hlc, &origin),
            Ok(None) => true,
            Err(_) => true,
        }
    }

    fn hold(&self, rows: Vec<Row>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for row in rows {
            let key = row.id();
            let newer = pending
                .get(&key)
                .is_none_or(|held| row.beats(held.hlc, &held.origin));
            if newer {
                pending.insert(key, row);
            }
        }
        drop(pending);
        self.content_wake.notify_one();
    }

    /// The held pointer rows, newest per key.
    pub fn pending(&self) -> Vec<Row> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Drops a held row once it was applied (or lost to a newer one).
    pub fn release(&self, row: &Row) {
        let key = row.id();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending
            .get(&key)
            .is_some_and(|held| held.hlc == row.hlc && held.origin == row.origin)
        {
            pending.remove(&key);
        }
    }

    /// The Merkle tree of manifest `hash`, built once and kept for a while.
    pub fn tree(&self, hash: &blake3::Hash) -> Option<Arc<MerkleTree>> {
        {
            let trees = self.trees.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, tree)) = trees.iter().find(|(h, _)| h == hash) {
                return Some(tree.clone());
            }
        }
        let manifest = self.deployer.manifest(&hash.to_hex()).ok()?;
        let tree = Arc::new(MerkleTree::build(&manifest));
        let mut trees = self.trees.lock().unwrap_or_else(|e| e.into_inner());
        trees.push((*hash, tree.clone()));
        if trees.len() > 4 {
            trees.remove(0);
        }
        Some(tree)
    }

    /// Notes a completed exchange with `peer`.
    pub fn synced_with(&self, peer: &str) {
        self.last_sync
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer.to_string(), now_ms());
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
