//! A node: opens the data directory, builds the services its subsystems
//! share (`services.rs`), starts each subsystem from them, and stops them
//! together on shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::build::Builder;
use crate::config::{DEFAULT_METRICS_PORT, NodeConfig};
use crate::deploy::{DeployError, Deployer};
use crate::git::locks::RepoLocks;
use crate::git::{self, GitService, Hooks};
use crate::limits::Counters;
use crate::live::Live;
use crate::mesh::wireguard::Device;
use crate::metrics::{self, AccessLog, AccessLogError, Metrics};
use crate::services::{Listeners, Services};
use crate::shutdown::Shutdown;
use crate::store::{NodeRow, Store, StoreError};
use crate::{acme, admin, dns, http, mesh};

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
    Http(#[from] http::HttpError),
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    #[error("cannot listen for ssh on {addr}: {source}")]
    SshListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error(transparent)]
    Mesh(#[from] mesh::MeshError),
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
    #[error("cannot install the default git hooks in {path}: {source}")]
    Hooks {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An opened node, not yet listening.
pub struct Node {
    pub config: NodeConfig,
    /// The state database, shared with every subsystem.
    pub store: Arc<Store>,
    /// Deploys and rollbacks; publishes to `live`.
    pub deployer: Arc<Deployer>,
    /// The site and certificate snapshots HTTP and DNS serve.
    pub live: Live,
    /// Runs the site builds of pushes (and of `makiatto dev --site`).
    pub builder: Arc<Builder>,
    /// The counters every subsystem updates and the exposition reads.
    pub metrics: Arc<Metrics>,
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
    /// The WireGuard device, when `[cluster]` runs the WireGuard mesh;
    /// the mesh subsystems set its peers and read its counters through it.
    /// It stops when the node's shutdown signal fires.
    pub wireguard: Option<Arc<Device>>,
    /// Where the mesh RPC is bound, when the node is in a cluster.
    pub mesh_addr: Option<SocketAddr>,
    /// Where the Prometheus exposition is bound (`None`: its default
    /// address was taken).
    pub metrics_addr: Option<SocketAddr>,
    /// Each subsystem's tasks, and the node's own (admin, SSH).
    tasks: Vec<JoinSet<()>>,
    /// Closed (its lines flushed) once every listener has stopped.
    metrics: Arc<Metrics>,
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
        crate::live::set_body_cache_budget(config.http.body_cache_bytes);
        let live = Live::new(config.http.fallback_to_first_site);
        let deployer = Arc::new(Deployer::open(
            &config,
            store.clone(),
            live.sites.clone(),
            live.guards.clone(),
        )?);
        let builder = Arc::new(Builder::new(&config));
        let geoip = config.dns.as_ref().and_then(|d| d.geoip_db.as_deref());
        let access_log = AccessLog::start(&config.access_log, geoip)?;
        Ok(Node {
            config,
            store,
            deployer,
            live,
            builder,
            metrics: Arc::new(Metrics::with_access_log(access_log)),
        })
    }

    /// Binds every listener and starts serving until `shutdown` fires.
    ///
    /// Subsystems start in dependency order, each from the config, the
    /// services built so far and the shutdown signal; the admin socket and
    /// the SSH endpoint are bound early (so a command sent right after
    /// start never finds them missing) and answer once the services are
    /// complete.
    pub async fn start(&self, shutdown: Shutdown) -> Result<RunningNode, NodeError> {
        let config = &self.config;
        let limited = Arc::new(Counters::default());
        let geo = Arc::new(dns::open_geo(config)?);
        let http = http::start(
            config,
            &self.live,
            geo.clone(),
            limited.clone(),
            self.metrics.http.clone(),
            shutdown.clone(),
        )
        .await?;
        let admin_socket = admin::bind(&config.data_dir).map_err(NodeError::Listen)?;
        let mut services = Services {
            store: self.store.clone(),
            deployer: self.deployer.clone(),
            builder: self.builder.clone(),
            live: self.live.clone(),
            repo_locks: Arc::new(RepoLocks::new()),
            listeners: Listeners {
                http: http.addr,
                dns: None,
            },
            mesh: None,
            limited,
            metrics: self.metrics.clone(),
            scrubber: Arc::new(crate::scrub::Scrubber::new(config)),
            geo,
        };
        let dns = dns::start(config, &services, shutdown.clone()).await?;
        services.listeners.dns = dns.addr;
        let mut tasks = vec![http.tasks, dns.tasks];
        if http.https_addr.is_some() || dns.dot_addr.is_some() {
            tasks.push(acme::start(config, &services, shutdown.clone()).tasks);
        }
        let ssh = match &config.ssh {
            Some(settings) => Some((settings, self.ssh_endpoint(settings).await?)),
            None => None,
        };
        let ssh_addr = ssh.as_ref().map(|(_, endpoint)| endpoint.addr);
        let mesh = mesh::start(config, &services, shutdown.clone()).await?;
        if let Some(mesh) = mesh {
            services.mesh = Some(mesh.mesh);
            tasks.push(mesh.tasks);
        }
        let services = Arc::new(services);
        tasks.push(crate::scrub::start(services.clone(), shutdown.clone()).tasks);
        let metrics_listen = metrics_listen(config, services.mesh.as_deref());
        // A default address that is taken (another node on this machine)
        // costs the exposition, not the node; an address the operator
        // wrote must bind.
        let metrics_addr = match metrics::start(metrics_listen, services.clone(), shutdown.clone())
            .await
        {
            Ok(endpoint) => {
                tasks.push(endpoint.tasks);
                Some(endpoint.addr)
            }
            Err(e) if config.metrics.listen.is_none() => {
                warn!(error = %e, "no metrics endpoint: set [metrics] listen to a free address");
                None
            }
            Err(e) => return Err(NodeError::Listen(e)),
        };

        let mut own = JoinSet::new();
        let data_dir = config.data_dir.clone();
        let admin = admin::Context::new(services.clone());
        let admin_shutdown = shutdown.clone();
        own.spawn(async move {
            if let Err(e) = admin::serve(admin_socket, &data_dir, admin, admin_shutdown).await {
                error!(error = %e, "admin socket stopped");
            }
        });
        if let Some((settings, endpoint)) = ssh {
            let hooks_dir = hooks_dir(config, settings);
            let service = GitService::new(
                services.clone(),
                config.data_dir.join("repos"),
                Hooks {
                    dir: hooks_dir,
                    node: config.place.name.clone(),
                },
                http.addr.port(),
            );
            own.spawn(endpoint.serve(Arc::new(service), shutdown.clone()));
        }
        tasks.push(own);

        let mesh = services.mesh.as_ref();
        let mesh_addr = mesh.map(|m| m.rpc_addr());
        let wireguard = mesh.and_then(|m| m.device()).cloned();
        info!(node = %config.place.name, http = %http.addr, https = ?http.https_addr, dns = ?dns.addr, dot = ?dns.dot_addr, ssh = ?ssh_addr, mesh = ?mesh_addr, metrics = ?metrics_addr, "node started");
        Ok(RunningNode {
            http_addr: http.addr,
            dns_addr: dns.addr,
            ssh_addr,
            https_addr: http.https_addr,
            dot_addr: dns.dot_addr,
            wireguard,
            mesh_addr,
            metrics_addr,
            tasks,
            metrics: self.metrics.clone(),
        })
    }

    /// Authorises the config's bootstrap keys, installs default hooks,
    /// loads the host key and binds the SSH listener.
    async fn ssh_endpoint(
        &self,
        settings: &crate::config::SshSettings,
    ) -> Result<git::SshEndpoint, NodeError> {
        let data = &self.config.data_dir;
        for line in &settings.authorized_keys {
            match git::keys::parse_line(line) {
                Ok(row) => self.store.add_key(&row)?,
                Err(e) => error!(error = %e, "ignoring an authorized_keys entry of node.toml"),
            }
        }
        let hooks_dir = hooks_dir(&self.config, settings);
        git::install_defaults(&hooks_dir).map_err(|source| NodeError::Hooks {
            path: hooks_dir.clone(),
            source,
        })?;
        let host_key = git::load_or_generate(data)?;
        git::bind(settings.listen, host_key, self.config.limits.ssh.clone())
            .await
            .map_err(|source| NodeError::SshListen {
                addr: settings.listen,
                source,
            })
    }
}

/// Where the exposition listens: `[metrics] listen`, else port 9470 of
/// the mesh address when a WireGuard device carries the mesh RPC, else of
/// loopback. Never a public address unless written in node.toml.
fn metrics_listen(config: &NodeConfig, mesh: Option<&mesh::Mesh>) -> SocketAddr {
    if let Some(listen) = config.metrics.listen {
        return listen;
    }
    let ip = match mesh {
        Some(mesh) if mesh.device().is_some() => mesh.rpc_addr().ip(),
        _ => std::net::Ipv4Addr::LOCALHOST.into(),
    };
    SocketAddr::new(ip, DEFAULT_METRICS_PORT)
}

/// Where the node's git hooks live: `[ssh] hooks_dir`, else `<data>/hooks`.
fn hooks_dir(config: &NodeConfig, settings: &crate::config::SshSettings) -> PathBuf {
    settings
        .hooks_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("hooks"))
}

impl RunningNode {
    /// Waits until every listener has stopped, then flushes the access
    /// log.
    pub async fn wait(self) {
        for mut tasks in self.tasks {
            while tasks.join_next().await.is_some() {}
        }
        let metrics = self.metrics;
        let _ = tokio::task::spawn_blocking(move || metrics.http.access_log.close()).await;
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
