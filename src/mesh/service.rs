//! The mesh service of one node: its RPC listener, its view of the other
//! members, and the single entry point for rows arriving from peers.
//!
//! Rows enter through [`Mesh::accept_rows`]: pointer rows (a domain's or a
//! preview's active revision) whose content is not yet here are held back
//! and handed to content sync, so the store never points at a revision this
//! node cannot serve whole; everything else is merged at once.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use super::addresses::Prefixes;
use super::rpc::Client;
use super::wireguard::Device;
use crate::config::NodeConfig;
use crate::deploy::Deployer;
use crate::git::locks::RepoLocks;
use crate::live::SiteTable;
use crate::services::{Listeners, Services};
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
    name: String,
    store: Arc<Store>,
    /// Installs revisions from peers and republishes the sites.
    deployer: Arc<Deployer>,
    /// The served sites, for this node's view of the cluster.
    sites: Arc<SiteTable>,
    client: Client,
    /// Where this node's RPC listens.
    rpc_addr: SocketAddr,
    /// Where a node not yet in the cluster reaches this one to join: the
    /// public address at the RPC port inside a WireGuard mesh, else
    /// `rpc_addr`.
    join_addr: Option<SocketAddr>,
    /// `<data>/repos`, the bare repositories git sync keeps current.
    repos: PathBuf,
    /// Where this node serves HTTP and DNS (peers' health probes check them).
    listeners: Listeners,
    /// Pointer rows waiting for their revision's content, by row.
    pending: Mutex<BTreeMap<RowId, Row>>,
    /// Why the last fetch for a held row failed, by row, until the row is
    /// applied: what `status` shows while a node keeps serving the old
    /// revision (a full disk, a peer without the content).
    sync_errors: Mutex<BTreeMap<RowId, String>>,
    /// Wakes content sync when a row is held back.
    content_wake: Notify,
    /// Wakes git sync when refs change.
    git_wake: Notify,
    /// Merkle trees of manifests recently listed to peers (a few, newest last).
    trees: Mutex<Vec<(blake3::Hash, Arc<MerkleTree>)>>,
    /// Changes whenever the node table changes (WireGuard peers follow it).
    members_version: watch::Sender<u64>,
    /// When each peer last completed an anti-entropy exchange (ms).
    last_sync: Mutex<HashMap<String, u64>>,
    /// The WireGuard device, when this node runs one (peer statistics).
    device: Option<Arc<Device>>,
    /// The mesh prefixes from `[cluster]`, when set: joins are given
    /// addresses from them.
    prefixes: Option<Prefixes>,
    /// The per-repository locks git sync shares with pushes.
    repo_locks: Arc<RepoLocks>,
    /// Held while a join is admitted: two joins must never be given one
    /// address.
    admission: Mutex<()>,
    /// The node's counters, whose recent traffic peers ask for.
    metrics: Arc<crate::metrics::Metrics>,
    /// Set by the `drain` admin command before a planned stop: pings say
    /// so, and peers take this node out of their DNS answers at once.
    /// A restart clears it.
    draining: std::sync::atomic::AtomicBool,
    /// Objects content sync is fetching now: peers asking for them are
    /// held until they are stored (`swarm.rs`).
    incoming: super::swarm::Incoming,
    /// What other nodes said about peers' health, for the probe loop.
    health: super::health::Notices,
}

impl Mesh {
    /// The mesh service of the node `config` describes, over `services`,
    /// listening at `rpc_addr`, with its WireGuard `device` when one runs.
    pub fn new(
        config: &NodeConfig,
        services: &Services,
        client: Client,
        rpc_addr: SocketAddr,
        device: Option<Arc<Device>>,
    ) -> Mesh {
        let public = config
            .place
            .ipv4
            .map(IpAddr::V4)
            .or(config.place.ipv6.map(IpAddr::V6));
        // A WireGuard node answers joins on its public address (mesh/mod.rs);
        // without one, no node outside the mesh could reach it.
        let join_addr = match (&device, &config.mesh, public) {
            (Some(_), Some(m), Some(ip)) => Some(SocketAddr::new(ip, m.rpc_port)),
            (Some(_), Some(_), None) => None,
            _ => Some(rpc_addr),
        };
        Mesh {
            name: config.place.name.clone(),
            store: services.store.clone(),
            deployer: services.deployer.clone(),
            sites: services.live.sites.clone(),
            client,
            rpc_addr,
            join_addr,
            repos: config.data_dir.join("repos"),
            listeners: services.listeners,
            pending: Mutex::new(BTreeMap::new()),
            sync_errors: Mutex::new(BTreeMap::new()),
            content_wake: Notify::new(),
            git_wake: Notify::new(),
            trees: Mutex::new(Vec::new()),
            members_version: watch::Sender::new(0),
            last_sync: Mutex::new(HashMap::new()),
            device,
            prefixes: config.mesh.as_ref().map(|m| Prefixes {
                v4: m.prefix_v4,
                v6: m.prefix_v6,
            }),
            repo_locks: services.repo_locks.clone(),
            admission: Mutex::new(()),
            metrics: services.metrics.clone(),
            draining: std::sync::atomic::AtomicBool::new(false),
            incoming: super::swarm::Incoming::default(),
            health: super::health::Notices::default(),
        }
    }

    /// Whether this node is draining (see the `drain` admin command).
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Other nodes' word on peers' health, for the probe loop.
    pub fn health_notices(&self) -> &super::health::Notices {
        &self.health
    }

    /// Starts or ends draining.
    pub fn set_draining(&self, on: bool) {
        self.draining
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// This node's recent traffic, as `stats` gathers it.
    pub fn traffic(&self) -> crate::metrics::traffic::NodeTraffic {
        crate::metrics::traffic::node_traffic(&self.name, &self.metrics.http)
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The objects content sync is fetching now.
    pub fn incoming(&self) -> &super::swarm::Incoming {
        &self.incoming
    }

    /// Whether pointer rows wait for content: a fetch is running or about
    /// to start.
    pub fn has_pending(&self) -> bool {
        !self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The state database.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The deployer revisions from peers are installed through.
    pub fn deployer(&self) -> &Arc<Deployer> {
        &self.deployer
    }

    /// The served sites.
    pub fn sites(&self) -> &Arc<SiteTable> {
        &self.sites
    }

    /// The RPC client peers are called with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Where this node's RPC listens.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.rpc_addr
    }

    /// What a new node's `[cluster] join` names to join through this one.
    /// `None` for a WireGuard node without a public address.
    pub fn join_addr(&self) -> Option<SocketAddr> {
        self.join_addr
    }

    /// `<data>/repos`, the bare repositories git sync keeps current.
    pub fn repos(&self) -> &Path {
        &self.repos
    }

    /// Where this node serves HTTP and DNS.
    pub fn listeners(&self) -> Listeners {
        self.listeners
    }

    /// The WireGuard device, when this node runs one.
    pub fn device(&self) -> Option<&Arc<Device>> {
        self.device.as_ref()
    }

    /// The mesh prefixes joins are given addresses from, when `[cluster]`
    /// sets them.
    pub fn prefixes(&self) -> Option<&Prefixes> {
        self.prefixes.as_ref()
    }

    /// The per-repository locks git sync shares with pushes.
    pub fn repo_locks(&self) -> &Arc<RepoLocks> {
        &self.repo_locks
    }

    /// Held while a join is admitted, so admissions happen one at a time.
    pub(super) fn admission(&self) -> MutexGuard<'_, ()> {
        self.admission.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when content sync should look again (a row was held back).
    pub async fn content_wanted(&self) {
        self.content_wake.notified().await
    }

    /// Resolves when git sync should look again (refs changed).
    pub async fn git_wanted(&self) {
        self.git_wake.notified().await
    }

    /// A receiver that changes whenever the node table changes.
    pub fn subscribe_members(&self) -> watch::Receiver<u64> {
        self.members_version.subscribe()
    }

    /// Tells the node table's followers (WireGuard peers) it changed.
    pub fn members_changed(&self) {
        self.members_version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// When each peer last completed an anti-entropy exchange (ms).
    pub fn last_sync(&self) -> HashMap<String, u64> {
        self.last_sync
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
    /// peers, pointers republish the site snapshot, preview passwords the
    /// guards, refs wake git sync,
    /// retired revisions free their objects.
    fn after_apply(&self, applied: &[Row]) {
        let touched = |table: Table| applied.iter().any(|r| r.table() == Some(table));
        if touched(Table::Nodes) {
            self.members_changed();
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
        if touched(Table::PreviewPasswords)
            && let Err(e) = self.deployer.refresh_preview_passwords()
        {
            warn!(error = %e, "cannot publish preview passwords after replication");
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
            drop(pending);
            self.sync_errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
    }

    /// Records why fetching `row`'s content failed, until it is applied.
    pub fn set_sync_error(&self, row: &Row, error: String) {
        self.sync_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(row.id(), error);
    }

    /// Why a held row still waits, if its last fetch failed (the first
    /// such row's reason).
    pub fn sync_error(&self) -> Option<String> {
        self.sync_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .next()
            .cloned()
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
