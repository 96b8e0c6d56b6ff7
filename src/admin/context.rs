//! What admin commands act on: the node's services, handed to every
//! command as one value so no command reaches for a global.

use std::sync::Arc;

use crate::acme::status::CertStatus;
use crate::build::Builder;
use crate::deploy::Deployer;
use crate::live::SiteTable;
use crate::mesh::status::NodeView;
use crate::metrics::traffic::NodeTraffic;
use crate::services::Services;
use crate::store::{Store, StoreError};

/// The node's handles an admin command may use.
#[derive(Clone)]
pub struct Context {
    services: Arc<Services>,
}

impl Context {
    /// The context of a node whose subsystems are `services`.
    pub fn new(services: Arc<Services>) -> Context {
        Context { services }
    }

    /// Deploys and rollbacks.
    pub fn deployer(&self) -> &Deployer {
        &self.services.deployer
    }

    /// Site builds and their kept records.
    pub fn builder(&self) -> &Builder {
        &self.services.builder
    }

    /// The sites this node serves now.
    pub fn sites(&self) -> &SiteTable {
        &self.services.live.sites
    }

    /// The node's state database.
    pub fn store(&self) -> &Store {
        &self.services.store
    }

    /// The certificate state of `domain`, as `status` shows it.
    pub fn cert_status(&self, domain: &str) -> Result<CertStatus, StoreError> {
        self.services.cert_status(domain)
    }

    /// How often each listener limited a client since the node started.
    pub fn limited(&self) -> crate::limits::counters::CountersView {
        self.services.limited.view()
    }

    /// The scrub's schedule and last result.
    pub fn scrubber(&self) -> &crate::scrub::Scrubber {
        &self.services.scrubber
    }

    /// What a new node's `[cluster] join` names to join through this
    /// one; `Err` says why there is none and what to change.
    pub fn join_addr(&self) -> Result<std::net::SocketAddr, &'static str> {
        let Some(mesh) = self.services.mesh.as_ref() else {
            return Err(
                "this node is in no cluster: add [cluster] to its node.toml and restart it",
            );
        };
        mesh.join_addr().ok_or(
            "this node has no public address to answer joins on: set ipv4 in its node.toml and restart it",
        )
    }

    /// This node's name in the cluster, or `None` when it runs no mesh.
    pub fn mesh_name(&self) -> Option<String> {
        self.services.mesh.as_ref().map(|m| m.name().to_string())
    }

    /// Starts or ends draining (see `drain`); this node's name, or `None`
    /// when it runs no mesh.
    pub fn set_draining(&self, on: bool) -> Option<String> {
        let mesh = self.services.mesh.as_ref()?;
        mesh.set_draining(on);
        Some(mesh.name().to_string())
    }

    /// Every cluster node's view (this node's first), or `None` when this
    /// node runs no mesh. Blocking: asks the peers.
    pub fn cluster_views(&self) -> Option<Vec<Result<NodeView, String>>> {
        self.services.cluster_views()
    }

    /// Every node's recent traffic (this node's first). Blocking: asks the
    /// peers.
    pub fn cluster_traffic(&self) -> Vec<Result<NodeTraffic, String>> {
        self.services.cluster_traffic()
    }
}
