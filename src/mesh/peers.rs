//! WireGuard peers follow the node table: whenever it changes (a node
//! joins, moves or is removed) the device's managed peers become exactly
//! the live members with a WireGuard key, each at its endpoint, allowed
//! only its own mesh addresses, with a persistent keepalive.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::addresses::{inside_v4, inside_v6};
use super::service::Mesh;
use super::wireguard::{Device, PeerConfig, PublicKey};
use crate::shutdown::Shutdown;
use crate::store::Member;

/// Keepalive for every peer, so NAT mappings and handshakes stay fresh.
const KEEPALIVE_SECS: u16 = 25;
/// How often peers are re-applied without a change (endpoints that did
/// not resolve before may now).
const REFRESH: Duration = Duration::from_secs(30);

/// Applies the node table to `device` until shutdown.
pub async fn follow(mesh: Arc<Mesh>, device: Arc<Device>, mut shutdown: Shutdown) {
    let mut version = mesh.subscribe_members();
    loop {
        let members = mesh.store().members().unwrap_or_default();
        let peers = routed_only(peer_configs(mesh.name(), &members), device.addresses());
        match device.set_peers(&peers).await {
            Ok(()) => info!(peers = peers.len(), "WireGuard peers follow the node table"),
            Err(e) => warn!(error = %e, "cannot set WireGuard peers"),
        }
        tokio::select! {
            _ = version.changed() => {}
            _ = tokio::time::sleep(REFRESH) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// The peer list for the members other than `me`.
pub fn peer_configs(me: &str, members: &[Member]) -> Vec<PeerConfig> {
    members
        .iter()
        .filter(|m| m.name != me)
        .filter_map(|m| {
            let public_key: PublicKey = m.wg_public_key.as_deref()?.parse().ok()?;
            let mut allowed_ips: Vec<(IpAddr, u8)> = Vec::new();
            if let Some(v4) = m.mesh_ipv4.as_deref().and_then(|a| a.parse().ok()) {
                allowed_ips.push((IpAddr::V4(v4), 32));
            }
            if let Some(v6) = m.mesh_ipv6.as_deref().and_then(|a| a.parse().ok()) {
                allowed_ips.push((IpAddr::V6(v6), 128));
            }
            let endpoint: Option<SocketAddr> = m
                .endpoint
                .as_deref()
                .and_then(|e| e.to_socket_addrs().ok()?.next());
            Some(PeerConfig {
                public_key,
                endpoint,
                allowed_ips,
                persistent_keepalive: Some(KEEPALIVE_SECS),
            })
        })
        .collect()
}

/// `peers` allowed only mesh addresses this node's interface routes: a
/// peer's address in a family this node has no mesh address in (a first
/// node placed by hand with `address_v4` alone, joiners given both) could
/// not be reached anyway, and the device refuses a whole peer list with
/// one address outside its prefixes.
pub fn routed_only(mut peers: Vec<PeerConfig>, routed: &[(IpAddr, u8)]) -> Vec<PeerConfig> {
    let inside = |ip: &IpAddr| {
        routed.iter().any(|(net, len)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => inside_v4((*net, *len), *ip),
            (IpAddr::V6(net), IpAddr::V6(ip)) => inside_v6((*net, *len), *ip),
            _ => false,
        })
    };
    for peer in &mut peers {
        peer.allowed_ips.retain(|(ip, _)| inside(ip));
    }
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_the_other_members_with_keys_allowed_only_their_addresses() {
        let key = crate::mesh::wireguard::PrivateKey::generate().public_key();
        let members = vec![
            Member {
                name: "me".into(),
                wg_public_key: Some(key.to_string()),
                ..Member::default()
            },
            Member {
                name: "other".into(),
                wg_public_key: Some(key.to_string()),
                mesh_ipv4: Some("192.0.2.201".into()),
                mesh_ipv6: Some("2001:db8::201".into()),
                endpoint: Some("198.51.100.7:51880".into()),
                rpc_addr: None,
            },
            Member {
                name: "keyless".into(),
                ..Member::default()
            },
        ];
        let peers = peer_configs("me", &members);
        assert_eq!(peers.len(), 1);
        assert_eq!(peers[0].public_key, key);
        assert_eq!(
            peers[0].endpoint,
            "198.51.100.7:51880".parse::<SocketAddr>().ok()
        );
        assert_eq!(
            peers[0].allowed_ips,
            vec![
                (
                    IpAddr::V4(
                        "192.0.2.201"
                            .parse()
                            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
                    ),
                    32
                ),
                (
                    IpAddr::V6(
                        "2001:db8::201"
                            .parse()
                            .unwrap_or(std::net::Ipv6Addr::UNSPECIFIED)
                    ),
                    128
                ),
            ]
        );
        assert_eq!(peers[0].persistent_keepalive, Some(KEEPALIVE_SECS));
    }

    #[test]
    fn peers_keep_only_addresses_this_interface_routes() {
        let key = crate::mesh::wireguard::PrivateKey::generate().public_key();
        let members = vec![Member {
            name: "joiner".into(),
            wg_public_key: Some(key.to_string()),
            mesh_ipv4: Some("198.51.100.2".into()),
            mesh_ipv6: Some("2001:db8:1::2".into()),
            ..Member::default()
        }];
        let v4_only = [(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1)), 24)];
        let peers = routed_only(peer_configs("seed", &members), &v4_only);
        assert_eq!(
            peers[0].allowed_ips,
            vec![(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 2)), 32)]
        );
    }
}
