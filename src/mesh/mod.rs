//! The mesh: how nodes reach each other and stay in agreement.
//!
//! Every node runs a userspace WireGuard interface ([`wireguard`]) holding
//! a private mesh prefix (IPv4 and ULA IPv6); every other node is a peer,
//! reached at its public address and WireGuard port. Everything nodes say
//! to each other (replication of the store's rows, content sync by blake3
//! tree diff, health probes) travels inside that tunnel, over the mesh RPC
//! port, so WireGuard alone provides identity and encryption.
//!
//! Nodes talk over an HTTP/2 RPC (`rpc.rs`, handlers in `routes.rs`) that
//! listens on the node's mesh address (or an address named in `[cluster]`
//! when no WireGuard device runs). Rows replicate last-writer-wins through
//! `service.rs` (the single entry for rows from peers) and `gossip.rs` (eager
//! push and anti-entropy); revisions follow their pointer rows by tree diff
//! (`content.rs`, `tree_fetch.rs`, `objects.rs`), each node taking its share
//! of the objects from the origin and the rest from the peers that own them
//! (`swarm.rs`); `join.rs` admits new
//! nodes; `repair.rs` fetches objects the scrub set aside back from peers;
//! `peers.rs` keeps the WireGuard peers equal to the node table;
//! `health.rs` probes peers; `status.rs` is a node's view of the cluster.

mod addresses;
mod content;
mod git_sync;
mod gossip;
pub mod health;
pub mod join;
pub mod join_listen;
mod json_body;
pub mod messages;
mod objects;
mod peers;
pub mod repair;
mod routes;
pub mod rpc;
mod service;
pub mod status;
mod swarm;
mod tree_fetch;
pub mod wireguard;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::task::JoinSet;
use tracing::info;

use crate::config::{MeshSettings, NodeConfig};
use crate::services::Services;
use crate::shutdown::Shutdown;
use crate::store::{Member, Store, StoreError};
use wireguard::{Device, DeviceConfig, WireGuardError};

pub use service::{Mesh, Peer};

/// How often tombstones older than the safe period are dropped.
const TOMBSTONE_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Why the mesh could not start.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("cannot listen for mesh RPC on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Join(#[from] join::JoinError),
    #[error(transparent)]
    WireGuard(#[from] WireGuardError),
    #[error("this node cannot pick its own mesh address: {0}")]
    Address(#[from] addresses::AllocError),
}

/// The running mesh of a node in a cluster.
pub struct MeshHandle {
    /// The mesh state its tasks and RPC handlers share.
    pub mesh: Arc<Mesh>,
    /// Its listeners, replication, health probes and WireGuard device;
    /// they end on shutdown.
    pub tasks: JoinSet<()>,
}

/// Starts the mesh of a node whose config has `[cluster]`:
/// joins first when the node has no mesh address yet (the address comes
/// from the seed; a first node, which joins nothing, picks its own),
/// starts the WireGuard device, binds the RPC, records
/// this node's member row, joins through the configured node on first
/// start, and spawns replication and health probes. Peers probe the
/// HTTP and DNS listeners `services` names. `None` for a single node.
pub async fn start(
    config: &NodeConfig,
    services: &Services,
    shutdown: Shutdown,
) -> Result<Option<MeshHandle>, MeshError> {
    if config.cluster.is_none() && config.mesh.is_none() {
        return Ok(None);
    }
    let store = services.store.clone();
    let mut tasks = JoinSet::new();
    let joined = join::before_device(config, &store, shutdown.clone()).await?;
    let wireguard = start_wireguard(config, &store, shutdown.clone(), &mut tasks).await?;
    let settings = settings(config, &store);
    // Inside a WireGuard mesh the RPC listens on the mesh address only;
    // without a device, where `[cluster]` says.
    let mesh_listen = match (&wireguard, &settings) {
        (Some(_), Some(m)) => m
            .address_v4
            .map(|a| SocketAddr::from((a, m.rpc_port)))
            .or_else(|| m.address_v6.map(|a| SocketAddr::from((a, m.rpc_port)))),
        _ => None,
    };
    let listen = mesh_listen
        .or_else(|| config.cluster.as_ref().and_then(|c| c.rpc_listen))
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7070)));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| MeshError::Listen {
            addr: listen,
            source,
        })?;
    let rpc_addr = listener.local_addr().map_err(|source| MeshError::Listen {
        addr: listen,
        source,
    })?;
    let own = store
        .members()?
        .into_iter()
        .find(|m| m.name == config.place.name)
        .unwrap_or_default();
    let mut member = Member {
        name: config.place.name.clone(),
        rpc_addr: Some(rpc_addr.to_string()),
        ..own
    };
    if let (Some(device), Some(m)) = (&wireguard, &settings) {
        member.wg_public_key = Some(device.public_key().to_string());
        member.mesh_ipv4 = m.address_v4.map(|a| a.to_string());
        member.mesh_ipv6 = m.address_v6.map(|a| a.to_string());
        member.endpoint = m.endpoint.clone();
    }
    store.set_member(&member)?;
    let mesh = Arc::new(Mesh::new(
        config,
        services,
        rpc::Client::new(shutdown.clone()),
        rpc_addr,
        wireguard.clone(),
    ));
    if let Some(device) = wireguard {
        tasks.spawn(peers::follow(mesh.clone(), device, shutdown.clone()));
    }
    tasks.spawn(rpc::serve(
        listener,
        routes::handler(mesh.clone()),
        shutdown.clone(),
    ));
    // A node inside WireGuard cannot be reached by one not yet peered: its
    // public address answers joins (token-checked) and nothing else.
    // Behind 1:1 NAT the public address is on no interface: answer on the
    // local ones, to which the provider forwards it.
    let mut join_addrs = Vec::new();
    if let (Some(_), Some(m), Some(ip)) = (mesh.device(), &config.mesh, config.place.ipv4) {
        let local = join_listen::local_addresses().map_err(|source| MeshError::Listen {
            addr: SocketAddr::from((ip, m.rpc_port)),
            source,
        })?;
        let mut addrs = join_listen::join_listen_addrs(ip, m.rpc_port, &local, m.prefix_v4);
        if addrs.is_empty() {
            // Nothing else to try: binding the public address names it in
            // the error.
            addrs.push(SocketAddr::from((ip, m.rpc_port)));
        } else if !local.contains(&IpAddr::V4(ip)) {
            info!(public = %ip, listen = ?addrs, "the public address is on no interface (1:1 NAT): answering joins on the local addresses");
        }
        join_addrs = addrs;
    } else if let (Some(_), Some(m), Some(ip)) = (mesh.device(), &config.mesh, config.place.ipv6) {
        // An IPv6-only node answers joins on its public IPv6 address, the
        // one `join-token` prints.
        join_addrs.push(SocketAddr::from((ip, m.rpc_port)));
    }
    for addr in join_addrs {
        let join_listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| MeshError::Listen { addr, source })?;
        tasks.spawn(rpc::serve(
            join_listener,
            routes::join_only(mesh.clone()),
            shutdown.clone(),
        ));
    }
    if let Some(rows) = joined {
        // Joined before the device came up (join::before_device).
        let merging = mesh.clone();
        tokio::task::spawn_blocking(move || merging.accept_rows(rows))
            .await
            .map_err(|e| StoreError::Corrupt {
                what: "join snapshot task",
                value: e.to_string(),
            })?
            .map_err(join::JoinError::from)?;
    } else if mesh.peers().is_empty() {
        join::join(&mesh, config).await?;
    }
    tasks.spawn(gossip::push_loop(mesh.clone(), shutdown.clone()));
    tasks.spawn(gossip::anti_entropy_loop(mesh.clone(), shutdown.clone()));
    tasks.spawn(content::sync_loop(mesh.clone(), shutdown.clone()));
    tasks.spawn(git_sync::sync_loop(
        mesh.clone(),
        config.data_dir.join("repos"),
        shutdown.clone(),
    ));
    tasks.spawn(health::probe_loop(mesh.clone(), shutdown.clone()));
    tasks.spawn(tombstone_sweep(store, shutdown));
    info!(rpc = %rpc_addr, peers = mesh.peers().len(), "mesh started");
    Ok(Some(MeshHandle { mesh, tasks }))
}

/// Starts the WireGuard device when `[cluster]` runs one and gives this
/// node a mesh address (a node that has not joined yet has none; a first
/// node picks its own), loading or creating its key in the data directory;
/// it stops on `shutdown`.
async fn start_wireguard(
    config: &NodeConfig,
    store: &Store,
    mut shutdown: Shutdown,
    tasks: &mut JoinSet<()>,
) -> Result<Option<Arc<Device>>, MeshError> {
    // node.toml's addresses, else those assigned at join or picked before.
    let Some(mut mesh) = settings(config, store) else {
        return Ok(None);
    };
    let joins = config.cluster.as_ref().is_some_and(|c| c.join.is_some());
    if mesh.interface_addresses().is_empty() && !joins {
        (mesh.address_v4, mesh.address_v6) = pick_own_addresses(config, store, &mesh)?;
    }
    let addresses = mesh.interface_addresses();
    if addresses.is_empty() {
        info!(interface = %mesh.interface, "no mesh address yet; the WireGuard device starts once one is assigned");
        return Ok(None);
    }
    let private_key =
        wireguard::load_or_create_private_key(&config.data_dir.join(wireguard::KEY_FILE))?;
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

/// The mesh addresses of a node that joins nothing (the first of a
/// cluster): nobody assigns it any, so it takes the lowest free host of
/// each prefix, as a seed would give it, and keeps them in its own row,
/// where every later start finds them.
fn pick_own_addresses(
    config: &NodeConfig,
    store: &Store,
    mesh: &MeshSettings,
) -> Result<(Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>), MeshError> {
    let members = store.members()?;
    let others = || members.iter().filter(|m| m.name != config.place.name);
    let used_v4: Vec<std::net::Ipv4Addr> = others()
        .filter_map(|m| m.mesh_ipv4.as_deref()?.parse().ok())
        .collect();
    let used_v6: Vec<std::net::Ipv6Addr> = others()
        .filter_map(|m| m.mesh_ipv6.as_deref()?.parse().ok())
        .collect();
    let v4 = addresses::lowest_free_v4(mesh.prefix_v4, &used_v4)?;
    let v6 = addresses::lowest_free_v6(mesh.prefix_v6, &used_v6)?;
    let own = members
        .iter()
        .find(|m| m.name == config.place.name)
        .cloned()
        .unwrap_or_default();
    store.set_member(&Member {
        name: config.place.name.clone(),
        mesh_ipv4: Some(v4.to_string()),
        mesh_ipv6: Some(v6.to_string()),
        ..own
    })?;
    info!(mesh_ipv4 = %v4, mesh_ipv6 = %v6, "first node of a cluster: picked its own mesh addresses");
    Ok((Some(v4), Some(v6)))
}

/// This node's WireGuard settings with the addresses it was assigned at join filled
/// in where node.toml names none: what its WireGuard interface and RPC
/// listener use.
pub fn settings(config: &NodeConfig, store: &Store) -> Option<MeshSettings> {
    let mut settings = config.mesh.clone()?;
    if settings.address_v4.is_none() && settings.address_v6.is_none() {
        (settings.address_v4, settings.address_v6) = join::assigned(store, &config.place.name);
    }
    Some(settings)
}

async fn tombstone_sweep(store: Arc<Store>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TOMBSTONE_SWEEP) => {}
            _ = shutdown.wait() => return,
        }
        let store = store.clone();
        if let Ok(Ok(n)) = tokio::task::spawn_blocking(move || store.collect_tombstones()).await
            && n > 0
        {
            info!(removed = n, "old tombstones collected");
        }
    }
}
