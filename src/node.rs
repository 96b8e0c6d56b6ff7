//! A node: opens the data directory, starts every listener, and stops them
//! together on shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::{error, info};

use crate::config::NodeConfig;
use crate::deploy::{DeployError, Deployer};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use crate::{admin, http};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error("{0}")]
    Listen(std::io::Error),
}

/// An opened node, not yet listening.
pub struct Node {
    pub config: NodeConfig,
    pub deployer: Arc<Deployer>,
}

/// A node whose listeners are running.
pub struct RunningNode {
    /// Where HTTP is actually bound (the port may have been 0).
    pub http_addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl Node {
    /// Opens (creating) the data directory, store and CAS of `config`.
    pub fn open(config: NodeConfig) -> Result<Node, NodeError> {
        let data = &config.data_dir;
        std::fs::create_dir_all(data).map_err(|source| NodeError::DataDir {
            path: data.clone(),
            source,
        })?;
        let store = Arc::new(Store::open(&data.join("state.sqlite"), &config.name)?);
        let deployer = Arc::new(Deployer::open(&config, store)?);
        Ok(Node { config, deployer })
    }

    /// Binds every listener and starts serving until `shutdown` fires.
    pub async fn start(&self, shutdown: Shutdown) -> Result<RunningNode, NodeError> {
        let listener = http::bind(self.config.http.listen)
            .await
            .map_err(NodeError::Listen)?;
        let http_addr = listener.local_addr().map_err(NodeError::Listen)?;
        let mut tasks = JoinSet::new();
        tasks.spawn(http::serve(
            listener,
            self.deployer.sites(),
            self.config.http.clone(),
            shutdown.clone(),
        ));
        let data_dir = self.config.data_dir.clone();
        let deployer = self.deployer.clone();
        let admin_shutdown = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = admin::listen(&data_dir, deployer, admin_shutdown).await {
                error!(error = %e, "admin socket stopped");
            }
        });
        info!(node = %self.config.name, http = %http_addr, "node started");
        Ok(RunningNode { http_addr, tasks })
    }
}

impl RunningNode {
    /// Waits until every listener has stopped.
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}
