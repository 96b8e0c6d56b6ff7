//! A node's services: one value holding the handle of every subsystem
//! others reach (the store, the deployer, the live snapshots, the mesh
//! when the node is in one), built once by `node.rs`.
//!
//! Subsystems start from it and the transports (the admin socket, the SSH
//! endpoint) answer from it; nothing reaches another subsystem through a
//! global or through the deployer.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::acme::status::CertStatus;
use crate::build::Builder;
use crate::deploy::Deployer;
use crate::git::locks::RepoLocks;
use crate::limits::Counters;
use crate::live::Live;
use crate::mesh::Mesh;
use crate::mesh::status::NodeView;
use crate::metrics::Metrics;
use crate::metrics::traffic::NodeTraffic;
use crate::scrub::Scrubber;
use crate::store::{Store, StoreError};

/// Every subsystem's handle. Cheap to clone: handles are shared.
#[derive(Clone)]
pub struct Services {
    /// The state database.
    pub store: Arc<Store>,
    /// Deploys, rollbacks and garbage collection; publishes the sites.
    pub deployer: Arc<Deployer>,
    /// Runs site builds for pushes.
    pub builder: Arc<Builder>,
    /// The site and certificate snapshots HTTP and DNS serve.
    pub live: Live,
    /// The per-repository locks pushes and ref replication share.
    pub repo_locks: Arc<RepoLocks>,
    /// Where this node serves visitors (filled in as the listeners bind,
    /// before the subsystems that report them start).
    pub listeners: Listeners,
    /// The mesh, when this node is in a cluster (set once it started,
    /// before the transports get this value).
    pub mesh: Option<Arc<Mesh>>,
    /// How often each listener limited a client, for `status`.
    pub limited: Arc<Counters>,
    /// The node's counters, for the subsystems that count and the
    /// exposition.
    pub metrics: Arc<Metrics>,
    /// The scrub's schedule and last result (`status`, `scrub`).
    pub scrubber: Arc<Scrubber>,
    /// The GeoIP database (`[dns] geoip_db`), shared by DNS answers and
    /// HTTP rules with country conditions.
    pub geo: Arc<crate::dns::geo::GeoIp>,
}

/// Where this node serves visitors: peers' health probes check these, and
/// ACME checks its challenges through this node's DNS.
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    pub http: SocketAddr,
    /// `None` when the node runs no DNS server.
    pub dns: Option<SocketAddr>,
}

impl Services {
    /// The certificate state of `domain`, as `status` shows it.
    pub fn cert_status(&self, domain: &str) -> Result<CertStatus, StoreError> {
        crate::acme::status::of(&self.store, domain)
    }

    /// Every node's view of the cluster, this node's first; `None` when
    /// this node runs no mesh. Blocking: call from a blocking thread
    /// inside the runtime.
    pub fn cluster_views(&self) -> Option<Vec<Result<NodeView, String>>> {
        crate::mesh::status::cluster_views(self.mesh.as_ref()?)
    }

    /// Every node's recent traffic, this node's first (only this node's
    /// when it runs no mesh). Blocking: call from a blocking thread inside
    /// the runtime.
    pub fn cluster_traffic(&self) -> Vec<Result<NodeTraffic, String>> {
        self.mesh
            .as_ref()
            .and_then(|mesh| crate::mesh::status::cluster_traffic(mesh))
            .unwrap_or_else(|| {
                vec![Ok(crate::metrics::traffic::node_traffic(
                    self.store.origin(),
                    &self.metrics.http,
                ))]
            })
    }
}
