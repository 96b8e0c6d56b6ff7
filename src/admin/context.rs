//! What admin commands act on: the node's running subsystems, handed to
//! every command as one value so no command reaches for a global.

use std::sync::Arc;

use crate::deploy::Deployer;
use crate::mesh::status::NodeView;
use crate::store::Store;

/// The node's handles an admin command may use.
#[derive(Clone)]
pub struct Context {
    /// Revisions, the served sites and the store behind them.
    deployer: Arc<Deployer>,
}

impl Context {
    /// The context of a node whose subsystems hang off `deployer`.
    pub fn new(deployer: Arc<Deployer>) -> Context {
        Context { deployer }
    }

    /// Deploys, rollbacks and the served sites.
    pub fn deployer(&self) -> &Deployer {
        &self.deployer
    }

    /// The node's state database.
    pub fn store(&self) -> &Store {
        self.deployer.store()
    }

    /// Every cluster node's view (this node's first), or `None` when this
    /// node runs no mesh. Blocking: asks the peers.
    pub fn cluster_views(&self) -> Option<Vec<Result<NodeView, String>>> {
        crate::mesh::status::cluster_views()
    }
}
