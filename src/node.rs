//! A node: opens the data directory, starts every listener, and stops them
//! together on shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::{error, info};

use crate::config::NodeConfig;
use crate::deploy::{DeployError, Deployer};
use crate::git::{self, GitService, Hooks};
use crate::mesh::wireguard::{self, Device, DeviceConfig, WireGuardError};
use crate::shutdown::Shutdown;
use crate::store::{NodeRow, Store, StoreError};
use crate::{acme, admin, dns, http};

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
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    #[error("cannot listen for ssh on {addr}: {source}")]
    SshListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Mesh(#[from] crate::mesh::MeshError),
    #[error("cannot install the default git hooks in {path}: {source}")]
    Hooks {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    WireGuard(#[from] WireGuardError),
}

/// An opened node, not yet listening.
pub struct Node {
    pub config: NodeConfig,
    pub deployer: Arc<Deployer>,
    /// The state database (also reachable through the deployer), shared
    /// with DNS, which rebuilds its zones when nodes or health change.
    pub store: Arc<Store>,
    /// The certificates HTTPS and DNS over TLS serve, published by the
    /// acme lifecycle.
    pub certs: Arc<http::CertTable>,
}

/// A node whose listeners are running.
pub struct RunningNode {
    /// Where HTTP is actually bound (the port may have been 0).
    pub http_addr: SocketAddr,
    /// Where DNS is bound (UDP and TCP, same port), if it runs.
    pub dns_addr: Option<SocketAddr>,
    /// Where SSH is bound, when the node has an SSH endpoint.
    pub ssh_addr: Option<SocketAddr>,
    /// Where HTTPS is bound, when enabled.
    pub https_addr: Option<SocketAddr>,
    /// Where DNS over TLS is bound, when enabled.
    pub dot_addr: Option<SocketAddr>,
    /// The WireGuard device, when `[mesh]` gives this node a mesh address;
    /// the mesh subsystems set its peers and read its counters through it.
    /// It stops when the node's shutdown signal fires.
    pub wireguard: Option<Arc<Device>>,
    /// Where the mesh RPC is bound, when the node is in a cluster.
    pub mesh_addr: Option<SocketAddr>,
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
        let store = Arc::new(Store::open(&data.join("state.sqlite"), &config.place.name)?);
        // Until the mesh replicates the node table, node.toml fills it.
        for node in configured_nodes(&config) {
            store.upsert_node(&node)?;
        }
        let deployer = Arc::new(Deployer::open(&config, store.clone())?);
        Ok(Node {
            config,
            deployer,
            store,
            certs: Arc::new(http::CertTable::new()),
        })
    }

    /// Binds every listener and starts serving until `shutdown` fires.
    pub async fn start(&self, shutdown: Shutdown) -> Result<RunningNode, NodeError> {
        let listener = http::bind(self.config.http.listen)
            .await
            .map_err(NodeError::Listen)?;
        let http_addr = listener.local_addr().map_err(NodeError::Listen)?;
        let mut tasks = JoinSet::new();
        let https_addr = match self.config.https_listen {
            Some(addr) => {
                let tls_listener = http::bind(addr).await.map_err(NodeError::Listen)?;
                let bound = tls_listener.local_addr().map_err(NodeError::Listen)?;
                tasks.spawn(http::serve_https(
                    tls_listener,
                    self.deployer.sites(),
                    self.config.http.clone(),
                    self.certs.clone(),
                    http::tls::https_config(self.certs.clone())?,
                    shutdown.clone(),
                ));
                Some(bound)
            }
            None => None,
        };
        let redirect = https_addr.map(|addr| http::HttpsRedirect {
            certs: self.certs.clone(),
            port: addr.port(),
        });
        tasks.spawn(http::serve_http(
            listener,
            self.deployer.sites(),
            self.config.http.clone(),
            redirect,
            shutdown.clone(),
        ));
        let data_dir = self.config.data_dir.clone();
        let admin_socket = admin::bind(&data_dir).map_err(NodeError::Listen)?;
        let admin = admin::Context::new(self.deployer.clone());
        let admin_shutdown = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = admin::serve(admin_socket, &data_dir, admin, admin_shutdown).await {
                error!(error = %e, "admin socket stopped");
            }
        });
        let (dns_addr, dot_addr) = dns::start(
            &self.config,
            self.deployer.sites(),
            self.store.clone(),
            self.certs.clone(),
            shutdown.clone(),
            &mut tasks,
        )
        .await?;
        if https_addr.is_some() || dot_addr.is_some() {
            let lifecycle = acme::lifecycle::Lifecycle {
                store: self.store.clone(),
                sites: self.deployer.sites(),
                certs: self.certs.clone(),
                acme: self.config.acme_settings(),
                node: self.config.place.name.clone(),
                dns: dns_addr,
            };
            tasks.spawn(lifecycle.run(shutdown.clone()));
        }
        let ssh_addr = match &self.config.ssh {
            Some(settings) => {
                let endpoint = self.ssh_endpoint(settings, http_addr.port()).await?;
                let addr = endpoint.addr;
                tasks.spawn(endpoint.serve(shutdown.clone()));
                Some(addr)
            }
            None => None,
        };
        // A node with no mesh address yet joins first: the address comes from the seed.
        let joined = crate::mesh::join::before_device(&self.config, &self.store, shutdown.clone())
            .await
            .map_err(crate::mesh::MeshError::from)?;
        let wireguard = self.start_wireguard(shutdown.clone(), &mut tasks).await?;
        let mesh_addr = crate::mesh::start(
            &self.config,
            self.store.clone(),
            self.deployer.clone(),
            (http_addr, dns_addr),
            wireguard.clone(),
            joined,
            shutdown.clone(),
            &mut tasks,
        )
        .await?
        .map(|(_, addr)| addr);
        info!(node = %self.config.place.name, http = %http_addr, https = ?https_addr, dns = ?dns_addr, dot = ?dot_addr, ssh = ?ssh_addr, mesh = ?mesh_addr, "node started");
        Ok(RunningNode {
            http_addr,
            dns_addr,
            ssh_addr,
            https_addr,
            dot_addr,
            wireguard,
            mesh_addr,
            tasks,
        })
    }

    /// Authorises the config's bootstrap keys, installs default hooks,
    /// loads the host key and binds the SSH listener.
    async fn ssh_endpoint(
        &self,
        settings: &crate::config::SshSettings,
        http_port: u16,
    ) -> Result<git::SshEndpoint, NodeError> {
        let data = &self.config.data_dir;
        for line in &settings.authorized_keys {
            match git::keys::parse_line(line) {
                Ok(row) => self.deployer.store().add_key(&row)?,
                Err(e) => error!(error = %e, "ignoring an authorized_keys entry of node.toml"),
            }
        }
        let hooks_dir = settings
            .hooks_dir
            .clone()
            .unwrap_or_else(|| data.join("hooks"));
        git::install_defaults(&hooks_dir).map_err(|source| NodeError::Hooks {
            path: hooks_dir.clone(),
            source,
        })?;
        let host_key = git::load_or_generate(data)?;
        let service = GitService::new(
            self.deployer.clone(),
            data.join("repos"),
            Hooks {
                dir: hooks_dir,
                node: self.config.place.name.clone(),
            },
            http_port,
        );
        git::bind(settings.listen, host_key, std::sync::Arc::new(service))
            .await
            .map_err(|source| NodeError::SshListen {
                addr: settings.listen,
                source,
            })
    }
}

impl Node {
    /// Starts the WireGuard device when `[mesh]` is set and gives this node
    /// a mesh address (a node that has not joined yet has none), loading or
    /// creating its key in the data directory; it stops on `shutdown`.
    pub async fn start_wireguard(
        &self,
        mut shutdown: Shutdown,
        tasks: &mut JoinSet<()>,
    ) -> Result<Option<Arc<Device>>, NodeError> {
        // node.toml's addresses, else those assigned at join.
        let Some(mesh) = crate::mesh::settings(&self.config, &self.store) else {
            return Ok(None);
        };
        let addresses = mesh.interface_addresses();
        if addresses.is_empty() {
            info!(interface = %mesh.interface, "no mesh address yet; the WireGuard device starts once one is assigned");
            return Ok(None);
        }
        let private_key =
            wireguard::load_or_create_private_key(&self.config.data_dir.join(wireguard::KEY_FILE))?;
        let device = Arc::new(
            Device::start(&DeviceConfig {
                interface: mesh.interface.clone(),
                listen_port: mesh.listen_port,
                private_key,
                addresses,
            })
            .await?,
        );
        let stopping = device.clone();
        tasks.spawn(async move {
            shutdown.wait().await;
            stopping.stop().await;
        });
        Ok(Some(device))
    }
}

impl RunningNode {
    /// Waits until every listener has stopped.
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// This node and its `[[nodes]]` as node-table rows, healthy unless the
/// store already says otherwise.
pub fn configured_nodes(config: &NodeConfig) -> Vec<NodeRow> {
    std::iter::once(&config.place)
        .chain(&config.nodes)
        .map(|place| NodeRow {
            place: place.clone(),
            healthy: true,
        })
        .collect()
}
