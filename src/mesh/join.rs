//! Joining a cluster: one-time tokens, the seed's side of a join, and the
//! new node's side.
//!
//! An operator prints a token on any node (`join-token`); the new node,
//! started with that node's address and the token, registers its name, keys,
//! addresses and coordinates there, and receives its mesh addresses and a
//! snapshot of every replicated row. The seed writes the new node's row, so
//! every other node learns it by the usual replication (and adds it as a
//! WireGuard peer). A token works once, for [`TOKEN_TTL_MS`].

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::messages::{JoinReply, JoinRequest, PATH_JOIN};
use super::rpc::RpcError;
use super::service::{Mesh, now_ms};
use crate::config::NodeConfig;
use crate::store::{Member, NodeRow, Store, StoreError};

/// How long a join token stays valid.
pub const TOKEN_TTL_MS: u64 = 3600 * 1000;

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "node {seed} refused to let this node join: {message}; print a fresh token there with `ssh -p 2222 git@NODE join-token` and put it in [cluster] join_token"
    )]
    Refused { seed: SocketAddr, message: String },
    #[error("cannot join through {seed}: {source}; check [cluster] join and that the node runs")]
    Unreachable { seed: SocketAddr, source: RpcError },
    #[error("[cluster] join {0:?} is not an address and port, e.g. \"192.0.2.1:7070\"")]
    BadSeed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the join snapshot was refused: {0}")]
    Rows(#[from] crate::store::RowError),
}

/// Creates a one-time join token and records its hash; returns the token.
pub fn new_token(store: &Store) -> Result<String, StoreError> {
    let mut bytes = [0u8; 24];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    // Mixed with the time and process so a failed read still never repeats.
    let mut hasher = blake3::Hasher::new();
    hasher.update(&bytes);
    hasher.update(&now_ms().to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    let token = format!("mkj_{}", &hasher.finalize().to_hex()[..40]);
    store.add_join_token(&token_hash(&token), (now_ms() + TOKEN_TTL_MS) as i64)?;
    Ok(token)
}

fn token_hash(token: &str) -> String {
    blake3::hash(token.trim().as_bytes()).to_hex().to_string()
}

/// The seed's side: checks the token, records the node, answers a snapshot.
pub fn admit(mesh: &Mesh, request: &JoinRequest) -> Result<JoinReply, String> {
    if crate::config::NodeConfig::parse("join request", &format!("name = {:?}\n", request.name))
        .is_err()
    {
        return Err(format!("{:?} is not a valid node name", request.name));
    }
    if request.name == mesh.name {
        return Err(format!("{:?} is this node's own name", request.name));
    }
    let store = &mesh.store;
    let ok = store
        .take_join_token(&token_hash(&request.token), now_ms() as i64)
        .map_err(|e| e.to_string())?;
    if !ok {
        return Err("the join token is unknown, used or expired".into());
    }
    let members = store.members().map_err(|e| e.to_string())?;
    // A node placed by hand keeps its addresses; others get the next free.
    let mesh_ipv4: Option<Ipv4Addr> = match request.mesh_ipv4.as_deref().map(str::parse) {
        Some(Ok(a)) => Some(a),
        _ => allocate_v4(&members, &request.name),
    };
    let mesh_ipv6 = request.mesh_ipv6.clone();
    store
        .upsert_node(&NodeRow {
            name: request.name.clone(),
            ipv4: request.ipv4.clone(),
            ipv6: request.ipv6.clone(),
            latitude: request.latitude,
            longitude: request.longitude,
            healthy: true,
        })
        .map_err(|e| e.to_string())?;
    store
        .set_member(&Member {
            name: request.name.clone(),
            wg_public_key: request.wg_public_key.clone(),
            mesh_ipv4: mesh_ipv4.map(|a| a.to_string()),
            mesh_ipv6: mesh_ipv6.clone(),
            endpoint: request.endpoint.clone(),
            rpc_addr: Some(request.rpc_addr.clone()),
        })
        .map_err(|e| e.to_string())?;
    mesh.members_version.send_modify(|v| *v = v.wrapping_add(1));
    info!(node = %request.name, rpc = %request.rpc_addr, "node joined");
    Ok(JoinReply {
        mesh_ipv4: mesh_ipv4.map(|a| a.to_string()),
        mesh_ipv6,
        rows: store.all_rows().map_err(|e| e.to_string())?,
    })
}

/// A mesh IPv4 address for `name`: the one it holds, else the next free
/// one after the highest in use; `None` when no member has one (no mesh
/// prefix in use).
fn allocate_v4(members: &[Member], name: &str) -> Option<Ipv4Addr> {
    if let Some(own) = members
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| m.mesh_ipv4.as_deref()?.parse().ok())
    {
        return Some(own);
    }
    let used: Vec<Ipv4Addr> = members
        .iter()
        .filter_map(|m| m.mesh_ipv4.as_deref()?.parse().ok())
        .collect();
    let highest = used.iter().max()?;
    let next = Ipv4Addr::from(u32::from(*highest).checked_add(1)?);
    Some(next)
}

/// The joining node's side: registers through `seed` (retrying while it is
/// unreachable) and merges the snapshot.
pub async fn join(mesh: &Arc<Mesh>, config: &NodeConfig) -> Result<(), JoinError> {
    let Some(cluster) = &config.cluster else {
        return Ok(());
    };
    let (Some(seed), Some(token)) = (&cluster.join, &cluster.join_token) else {
        return Ok(());
    };
    let seed: SocketAddr = seed.parse().map_err(|_| JoinError::BadSeed(seed.clone()))?;
    let request = JoinRequest {
        token: token.clone(),
        name: config.name.clone(),
        ipv4: config.ipv4.map(|a| a.to_string()),
        ipv6: config.ipv6.map(|a| a.to_string()),
        latitude: config.latitude,
        longitude: config.longitude,
        wg_public_key: mesh.device.get().map(|d| d.public_key().to_string()),
        endpoint: config.mesh.as_ref().and_then(|m| m.endpoint.clone()),
        mesh_ipv4: config
            .mesh
            .as_ref()
            .and_then(|m| m.address_v4)
            .map(|a| a.to_string()),
        mesh_ipv6: config
            .mesh
            .as_ref()
            .and_then(|m| m.address_v6)
            .map(|a| a.to_string()),
        rpc_addr: mesh.rpc_addr.to_string(),
    };
    let mut attempt = 0;
    let reply: JoinReply = loop {
        match mesh.client.call_json(seed, PATH_JOIN, &request).await {
            Ok(reply) => break reply,
            Err(RpcError::Status { message, .. }) => {
                return Err(JoinError::Refused { seed, message });
            }
            Err(source) if attempt >= 10 => return Err(JoinError::Unreachable { seed, source }),
            Err(e) => {
                attempt += 1;
                warn!(seed = %seed, error = %e, "join attempt failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let count = reply.rows.len();
    let mesh2 = mesh.clone();
    tokio::task::spawn_blocking(move || mesh2.accept_rows(reply.rows))
        .await
        .map_err(|e| {
            JoinError::Store(StoreError::Corrupt {
                what: "join snapshot task",
                value: e.to_string(),
            })
        })??;
    info!(seed = %seed, rows = count, "joined the cluster");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_addresses_are_kept_or_next_free() {
        let m = |name: &str, ip: Option<&str>| Member {
            name: name.into(),
            mesh_ipv4: ip.map(str::to_string),
            ..Member::default()
        };
        let members = vec![m("a", Some("192.0.2.129")), m("b", Some("192.0.2.130"))];
        assert_eq!(
            allocate_v4(&members, "a"),
            Some("192.0.2.129".parse().unwrap_or(Ipv4Addr::UNSPECIFIED))
        );
        assert_eq!(
            allocate_v4(&members, "c"),
            Some("192.0.2.131".parse().unwrap_or(Ipv4Addr::UNSPECIFIED))
        );
        assert_eq!(allocate_v4(&[m("a", None)], "c"), None);
    }

    #[test]
    fn tokens_work_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store =
            Store::open(&dir.path().join("s.sqlite"), "a").unwrap_or_else(|e| panic!("{e}"));
        let token = new_token(&store).unwrap_or_else(|e| panic!("{e}"));
        assert!(token.starts_with("mkj_"));
        assert!(
            store
                .take_join_token(&token_hash(&token), 0)
                .unwrap_or(false)
        );
        assert!(
            !store
                .take_join_token(&token_hash(&token), 0)
                .unwrap_or(true)
        );
    }
}
