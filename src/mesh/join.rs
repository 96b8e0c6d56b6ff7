//! Joining a cluster: one-time tokens, the seed's side of a join, and the
//! new node's side.
//!
//! An operator prints a token on any node (`join-token`); the new node,
//! started with that node's address and the token, registers its name, keys,
//! addresses and coordinates there, and receives its mesh addresses and a
//! snapshot of every replicated row. The seed writes the new node's row, so
//! every other node learns it by the usual replication (and adds it as a
//! WireGuard peer). A token works once, for [`TOKEN_TTL_MS`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::addresses::{
    AllocError, Prefixes, inside_v4, inside_v6, lowest_free_v4, lowest_free_v6,
};
use super::messages::{JoinReply, JoinRequest, PATH_JOIN};
use super::rpc::{Client, RpcError};
use super::service::{Mesh, now_ms};
use super::wireguard::{KEY_FILE, load_or_create_private_key};
use crate::config::NodeConfig;
use crate::shutdown::Shutdown;
use crate::store::{Member, NodeRow, Row, Store, StoreError};

/// How long a join token stays valid.
pub const TOKEN_TTL_MS: u64 = 3600 * 1000;

/// What to do about a token the seed did not take.
const TOKEN_ADVICE: &str = "print a fresh token there with `ssh -p 2222 git@NODE join-token` and put it in [cluster] join_token";

/// Why joining failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("node {seed} refused to let this node join: {message}")]
    Refused { seed: SocketAddr, message: String },
    #[error("cannot join through {seed}: {source}; check [cluster] join and that the node runs")]
    Unreachable { seed: SocketAddr, source: RpcError },
    #[error("[cluster] join {0:?} is not an address and port, e.g. \"192.0.2.1:7070\"")]
    BadSeed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the join snapshot was refused: {0}")]
    Rows(#[from] crate::store::RowError),
    #[error(
        "node {seed} assigned this node no mesh address: that node runs no WireGuard mesh (its [cluster] names rpc_listen); join a node that does, or set [cluster] address_v4 here"
    )]
    NoAddress { seed: SocketAddr },
    #[error(
        "node {seed} assigned mesh address {address}, outside this node's [cluster] {field} {prefix}: the mesh prefixes must be the same on every node"
    )]
    OtherPrefix {
        seed: SocketAddr,
        address: String,
        field: &'static str,
        prefix: String,
    },
    #[error(transparent)]
    Key(#[from] crate::mesh::wireguard::WireGuardError),
    #[error("merging the join snapshot failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why the seed refused a join; its text crosses the mesh wire as the
/// refusal's message.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error("{0:?} is not a valid node name")]
    BadName(String),
    #[error("{0:?} is this node's own name")]
    OwnName(String),
    #[error(
        "this node has no mesh prefix to assign an address from: it runs no WireGuard mesh ([cluster] names rpc_listen); remove rpc_listen here, or set [cluster] address_v4 on the joining node"
    )]
    NoPrefix,
    #[error("the join token is unknown, used or expired; {}", TOKEN_ADVICE)]
    Token,
    #[error(transparent)]
    Address(#[from] AllocError),
    #[error(transparent)]
    Store(#[from] StoreError),
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
pub fn admit(mesh: &Mesh, request: &JoinRequest) -> Result<JoinReply, AdmitError> {
    let name = &request.place.name;
    if crate::config::NodeConfig::parse("join request", &format!("name = {name:?}\n")).is_err() {
        return Err(AdmitError::BadName(name.clone()));
    }
    if *name == mesh.name() {
        return Err(AdmitError::OwnName(name.clone()));
    }
    // One admission at a time: two joins must never be given one address.
    let _one_at_a_time = mesh.admission();
    let store = mesh.store();
    let members = store.members()?;
    // Addresses are settled before the token is spent, so a refusal for a
    // full prefix or a taken address leaves the token usable.
    let (mesh_ipv4, mesh_ipv6) = mesh_addresses(mesh.prefixes(), &members, request)?;
    // A node that joins before its device is up cannot know its RPC
    // address: it listens on the address assigned here, at this cluster's
    // RPC port.
    let rpc_addr = if request.rpc_addr.is_empty() {
        let port = mesh.rpc_addr().port();
        match (mesh_ipv4, mesh_ipv6) {
            (Some(a), _) => SocketAddr::from((a, port)).to_string(),
            (None, Some(a)) => SocketAddr::from((a, port)).to_string(),
            (None, None) => return Err(AdmitError::NoPrefix),
        }
    } else {
        request.rpc_addr.clone()
    };
    let ok = store.take_join_token(&token_hash(&request.token), now_ms() as i64)?;
    if !ok {
        return Err(AdmitError::Token);
    }
    let mesh_ipv6 = mesh_ipv6.map(|a| a.to_string());
    store.upsert_node(&NodeRow {
        place: request.place.clone(),
        healthy: true,
    })?;
    store.set_member(&Member {
        name: name.clone(),
        wg_public_key: request.wg_public_key.clone(),
        mesh_ipv4: mesh_ipv4.map(|a| a.to_string()),
        mesh_ipv6: mesh_ipv6.clone(),
        endpoint: request.endpoint.clone(),
        rpc_addr: Some(rpc_addr.clone()),
    })?;
    mesh.members_changed();
    info!(node = %name, rpc = %rpc_addr, "node joined");
    Ok(JoinReply {
        mesh_ipv4: mesh_ipv4.map(|a| a.to_string()),
        mesh_ipv6,
        rows: store.all_rows()?,
    })
}

/// The mesh addresses a joining node gets, given this node's `[cluster]`
/// prefixes (`None`: this node is not in a WireGuard mesh) and the members
/// so far.
///
/// A node that names its addresses (placed by hand) keeps them, if they
/// lie inside the prefixes and no other node holds them; no address is
/// added beside them, since its interface carries only what it names.
/// Otherwise a node with a WireGuard key keeps what it already holds (a
/// repeated join) or gets the lowest free host of each prefix.
fn mesh_addresses(
    prefixes: Option<&Prefixes>,
    members: &[Member],
    request: &JoinRequest,
) -> Result<(Option<Ipv4Addr>, Option<Ipv6Addr>), AllocError> {
    let others = || members.iter().filter(|m| m.name != request.place.name);
    let used_v4: Vec<(Ipv4Addr, &str)> = others()
        .filter_map(|m| Some((m.mesh_ipv4.as_deref()?.parse().ok()?, m.name.as_str())))
        .collect();
    let used_v6: Vec<(Ipv6Addr, &str)> = others()
        .filter_map(|m| Some((m.mesh_ipv6.as_deref()?.parse().ok()?, m.name.as_str())))
        .collect();
    let placed_v4: Option<Ipv4Addr> = request.mesh_ipv4.as_deref().and_then(|a| a.parse().ok());
    let placed_v6: Option<Ipv6Addr> = request.mesh_ipv6.as_deref().and_then(|a| a.parse().ok());
    for (given, parsed, field) in [
        (&request.mesh_ipv4, placed_v4.is_some(), "address_v4"),
        (&request.mesh_ipv6, placed_v6.is_some(), "address_v6"),
    ] {
        if let (Some(text), false) = (given, parsed) {
            return Err(AllocError::Unreadable {
                address: text.clone(),
                field,
            });
        }
    }
    let Some(prefixes) = prefixes else {
        return Ok((placed_v4, placed_v6));
    };
    if placed_v4.is_some() || placed_v6.is_some() {
        if let Some(a) = placed_v4 {
            let (net, len) = prefixes.v4;
            let inside = inside_v4(prefixes.v4, a);
            check_placed(a, inside, format!("{net}/{len}"), &used_v4, "address_v4")?;
        }
        if let Some(a) = placed_v6 {
            let (net, len) = prefixes.v6;
            let inside = inside_v6(prefixes.v6, a);
            check_placed(a, inside, format!("{net}/{len}"), &used_v6, "address_v6")?;
        }
        return Ok((placed_v4, placed_v6));
    }
    if request.wg_public_key.is_none() {
        return Ok((None, None));
    }
    let own = members.iter().find(|m| m.name == request.place.name);
    let held_v4 = own
        .and_then(|m| m.mesh_ipv4.as_deref()?.parse().ok())
        .filter(|a| inside_v4(prefixes.v4, *a) && !used_v4.iter().any(|(u, _)| u == a));
    let held_v6 = own
        .and_then(|m| m.mesh_ipv6.as_deref()?.parse().ok())
        .filter(|a| inside_v6(prefixes.v6, *a) && !used_v6.iter().any(|(u, _)| u == a));
    let v4 = match held_v4 {
        Some(a) => a,
        None => {
            let used: Vec<Ipv4Addr> = used_v4.iter().map(|(a, _)| *a).collect();
            lowest_free_v4(prefixes.v4, &used)?
        }
    };
    let v6 = match held_v6 {
        Some(a) => a,
        None => {
            let used: Vec<Ipv6Addr> = used_v6.iter().map(|(a, _)| *a).collect();
            lowest_free_v6(prefixes.v6, &used)?
        }
    };
    Ok((Some(v4), Some(v6)))
}

/// Refuses a hand-placed `address` (of node.toml's `field`) that is not
/// `inside` its `prefix` or that another node holds (`used`).
fn check_placed<A: PartialEq + std::fmt::Display>(
    address: A,
    inside: bool,
    prefix: String,
    used: &[(A, &str)],
    field: &'static str,
) -> Result<(), AllocError> {
    if !inside {
        return Err(AllocError::Outside {
            address: address.to_string(),
            prefix,
            field,
        });
    }
    if let Some((_, holder)) = used.iter().find(|(u, _)| *u == address) {
        return Err(AllocError::Taken {
            address: address.to_string(),
            holder: holder.to_string(),
            field,
        });
    }
    Ok(())
}

/// A join request saying what node.toml says of this node (name, public
/// addresses, coordinates) with `token`; no key, endpoint or mesh and RPC
/// addresses, which each way of joining fills in.
fn about_this_node(config: &NodeConfig, token: &str) -> JoinRequest {
    JoinRequest {
        token: token.to_string(),
        place: config.place.clone(),
        wg_public_key: None,
        endpoint: None,
        mesh_ipv4: None,
        mesh_ipv6: None,
        rpc_addr: String::new(),
    }
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
        wg_public_key: mesh.device().map(|d| d.public_key().to_string()),
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
        rpc_addr: mesh.rpc_addr().to_string(),
        ..about_this_node(config, token)
    };
    let reply = register(mesh.client(), seed, &request).await?;
    let count = reply.rows.len();
    let mesh2 = mesh.clone();
    tokio::task::spawn_blocking(move || mesh2.accept_rows(reply.rows)).await??;
    info!(seed = %seed, rows = count, "joined the cluster");
    Ok(())
}

/// Posts `request` to `seed`, retrying while it is unreachable.
async fn register(
    client: &Client,
    seed: SocketAddr,
    request: &JoinRequest,
) -> Result<JoinReply, JoinError> {
    let mut attempt = 0;
    loop {
        match client.call_json(seed, PATH_JOIN, request).await {
            Ok(reply) => return Ok(reply),
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
    }
}

/// The mesh addresses this node was assigned when it joined (its own row
/// in the node table), for a `[cluster]` that names none.
pub fn assigned(store: &Store, name: &str) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let own = store
        .members()
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.name == name);
    let Some(own) = own else {
        return (None, None);
    };
    (
        own.mesh_ipv4.as_deref().and_then(|a| a.parse().ok()),
        own.mesh_ipv6.as_deref().and_then(|a| a.parse().ok()),
    )
}

/// The joining node's side when `[cluster]` names no addresses and none were
/// assigned yet: the WireGuard device cannot come up without one, so the
/// node registers through the seed's public join listener first, with its
/// WireGuard key (made now if new). The addresses the seed assigns go into
/// this node's own row, where the device finds them now and on every
/// restart; the snapshot is returned for the mesh to merge once it runs.
/// `None` when this node does not join this way.
pub async fn before_device(
    config: &NodeConfig,
    store: &Store,
    shutdown: Shutdown,
) -> Result<Option<Vec<Row>>, JoinError> {
    let (Some(mesh), Some(cluster)) = (&config.mesh, &config.cluster) else {
        return Ok(None);
    };
    let (Some(seed), Some(token)) = (&cluster.join, &cluster.join_token) else {
        return Ok(None);
    };
    if mesh.address_v4.is_some() || mesh.address_v6.is_some() {
        return Ok(None);
    }
    if assigned(store, &config.place.name) != (None, None) {
        return Ok(None);
    }
    let seed: SocketAddr = seed.parse().map_err(|_| JoinError::BadSeed(seed.clone()))?;
    let key = load_or_create_private_key(&config.data_dir.join(KEY_FILE))?.public_key();
    let request = JoinRequest {
        wg_public_key: Some(key.to_string()),
        endpoint: mesh.endpoint.clone(),
        // The seed puts it on the address it assigns.
        ..about_this_node(config, token)
    };
    let client = Client::new(shutdown);
    let reply = register(&client, seed, &request).await;
    client.close().await;
    let reply = reply?;
    let v4: Option<Ipv4Addr> = reply.mesh_ipv4.as_deref().and_then(|a| a.parse().ok());
    let v6: Option<Ipv6Addr> = reply.mesh_ipv6.as_deref().and_then(|a| a.parse().ok());
    // The interface routes only this node's own prefixes into the tunnel.
    if let Some(a) = v4.filter(|a| !inside_v4(mesh.prefix_v4, *a)) {
        return Err(JoinError::OtherPrefix {
            seed,
            address: a.to_string(),
            field: "prefix_v4",
            prefix: format!("{}/{}", mesh.prefix_v4.0, mesh.prefix_v4.1),
        });
    }
    if let Some(a) = v6.filter(|a| !inside_v6(mesh.prefix_v6, *a)) {
        return Err(JoinError::OtherPrefix {
            seed,
            address: a.to_string(),
            field: "prefix_v6",
            prefix: format!("{}/{}", mesh.prefix_v6.0, mesh.prefix_v6.1),
        });
    }
    let rpc = match (v4, v6) {
        (Some(a), _) => SocketAddr::from((a, mesh.rpc_port)),
        (None, Some(a)) => SocketAddr::from((a, mesh.rpc_port)),
        (None, None) => return Err(JoinError::NoAddress { seed }),
    };
    store.set_member(&Member {
        name: config.place.name.clone(),
        wg_public_key: Some(key.to_string()),
        mesh_ipv4: v4.map(|a| a.to_string()),
        mesh_ipv6: v6.map(|a| a.to_string()),
        endpoint: mesh.endpoint.clone(),
        rpc_addr: Some(rpc.to_string()),
    })?;
    info!(seed = %seed, mesh_ipv4 = ?v4, mesh_ipv6 = ?v6, "joined: mesh addresses assigned");
    Ok(Some(reply.rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodePlace;

    fn member(name: &str, v4: Option<&str>, v6: Option<&str>) -> Member {
        Member {
            name: name.into(),
            mesh_ipv4: v4.map(str::to_string),
            mesh_ipv6: v6.map(str::to_string),
            ..Member::default()
        }
    }

    fn request(name: &str, v4: Option<&str>, v6: Option<&str>) -> JoinRequest {
        JoinRequest {
            token: String::new(),
            place: NodePlace {
                name: name.into(),
                ipv4: None,
                ipv6: None,
                latitude: None,
                longitude: None,
            },
            wg_public_key: Some("key".into()),
            endpoint: None,
            mesh_ipv4: v4.map(str::to_string),
            mesh_ipv6: v6.map(str::to_string),
            rpc_addr: "192.0.2.9:7070".into(),
        }
    }

    const TEST_PREFIXES: Prefixes = Prefixes {
        v4: (Ipv4Addr::new(198, 51, 100, 0), 24),
        v6: (Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0), 64),
    };

    fn given(
        members: &[Member],
        request: &JoinRequest,
    ) -> Result<(Option<String>, Option<String>), String> {
        mesh_addresses(Some(&TEST_PREFIXES), members, request)
            .map(|(a, b)| (a.map(|a| a.to_string()), b.map(|b| b.to_string())))
            .map_err(|e| e.to_string())
    }

    fn pair(v4: &str, v6: &str) -> Result<(Option<String>, Option<String>), String> {
        Ok((Some(v4.to_string()), Some(v6.to_string())))
    }

    #[test]
    fn a_joining_node_gets_the_lowest_free_host_of_both_prefixes() {
        let members = [
            member("seed", Some("198.51.100.1"), Some("2001:db8:1::1")),
            member("b", Some("198.51.100.3"), Some("2001:db8:1::3")),
            // Placed by hand outside the prefix: neither counts nor leads.
            member("odd", Some("192.0.2.250"), None),
        ];
        assert_eq!(
            given(&members, &request("new", None, None)),
            pair("198.51.100.2", "2001:db8:1::2")
        );
        // At the top of the prefix, highest+1 would have left it.
        let top = [member(
            "seed",
            Some("198.51.100.254"),
            Some("2001:db8:1::1"),
        )];
        assert_eq!(
            given(&top, &request("new", None, None)),
            pair("198.51.100.1", "2001:db8:1::2")
        );
    }

    #[test]
    fn a_node_joining_again_keeps_its_addresses() {
        let members = [
            member("seed", Some("198.51.100.1"), Some("2001:db8:1::1")),
            member("back", Some("198.51.100.7"), Some("2001:db8:1::7")),
        ];
        assert_eq!(
            given(&members, &request("back", None, None)),
            pair("198.51.100.7", "2001:db8:1::7")
        );
    }

    #[test]
    fn addresses_placed_by_hand_are_kept_only_inside_the_prefix_and_unshared() {
        let members = [member("seed", Some("198.51.100.1"), Some("2001:db8:1::1"))];
        assert_eq!(
            given(&members, &request("hand", Some("198.51.100.9"), None)),
            Ok((Some("198.51.100.9".to_string()), None))
        );
        assert_eq!(
            given(&members, &request("hand", Some("198.51.100.1"), None)),
            Err("mesh address 198.51.100.1 is already node \"seed\"'s; pick another in [cluster] address_v4 on the joining node or leave it out to get one assigned".into())
        );
        assert_eq!(
            given(&members, &request("hand", None, Some("2001:db8:2::1"))),
            Err("mesh address 2001:db8:2::1 is outside the mesh prefix 2001:db8:1::/64; fix [cluster] address_v6 on the joining node or leave it out to get one assigned".into())
        );
        assert_eq!(
            given(&members, &request("hand", Some("not-an-ip"), None)),
            Err("mesh address \"not-an-ip\" is not an address; fix [cluster] address_v4 on the joining node or leave it out to get one assigned".into())
        );
    }

    #[test]
    fn a_full_prefix_refuses_the_join() {
        let small = Prefixes {
            v4: (Ipv4Addr::new(198, 51, 100, 0), 30),
            ..TEST_PREFIXES
        };
        let members = [
            member("a", Some("198.51.100.1"), Some("2001:db8:1::1")),
            member("b", Some("198.51.100.2"), Some("2001:db8:1::2")),
        ];
        let refused = mesh_addresses(Some(&small), &members, &request("c", None, None));
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("the mesh prefix 198.51.100.0/30 is full: every host address is taken by a node; widen [cluster] prefix_v4 on every node (or remove nodes that left with `node remove`)".into())
        );
    }

    #[test]
    fn no_addresses_without_a_mesh_or_a_wireguard_key() {
        let members = [member("seed", Some("198.51.100.1"), None)];
        assert_eq!(
            mesh_addresses(None, &members, &request("new", None, None)),
            Ok((None, None))
        );
        let mut keyless = request("new", None, None);
        keyless.wg_public_key = None;
        assert_eq!(given(&members, &keyless), Ok((None, None)));
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

    #[test]
    fn a_join_request_keeps_its_json_fields() {
        let mut sent = request("tokyo", Some("198.51.100.7"), None);
        sent.place.ipv4 = Some(Ipv4Addr::new(203, 0, 113, 1));
        sent.place.ipv6 = Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3));
        sent.place.latitude = Some(35.68);
        sent.place.longitude = Some(139.69);
        let json = serde_json::to_string(&sent).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            json,
            r#"{"token":"","name":"tokyo","ipv4":"203.0.113.1","ipv6":"2001:db8::3","latitude":35.68,"longitude":139.69,"wg_public_key":"key","endpoint":null,"mesh_ipv4":"198.51.100.7","mesh_ipv6":null,"rpc_addr":"192.0.2.9:7070"}"#
        );
        // A request from a node that leaves out the fields it has no value
        // for still reads.
        let sparse =
            r#"{"token":"t","name":"lima","wg_public_key":null,"endpoint":null,"rpc_addr":""}"#;
        let read: JoinRequest = serde_json::from_str(sparse).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((read.place.name.as_str(), read.place.ipv4), ("lima", None));
    }
}
