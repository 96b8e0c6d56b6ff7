//! The running WireGuard device: gotatun's tunnel on our TUN interface and
//! UAPI socket, with the peer operations the rest of the mesh uses.
//!
//! Peers come from two places: the node table, through [`Device::set_peers`]
//! (the peers this device *manages*), and an operator's `wg set`. A call to
//! `set_peers` replaces only the managed ones, so an operator's foreign peer
//! survives every node-table update.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use gotatun::device::uapi::UapiServer;
use gotatun::device::{DefaultDeviceTransports, Peer};
use gotatun::tun::tun_async_device::TunDevice;
use ipnetwork::IpNetwork;
use tracing::{info, warn};

use super::key::PublicKey;
use super::uapi::{self, UapiSocket};
use super::{DeviceConfig, PeerConfig, PeerStats, WireGuardError, link};

type Tunnel = gotatun::device::Device<DefaultDeviceTransports>;

/// A WireGuard interface this process serves. Stop it with
/// [`Device::stop`]; dropping it also stops it.
pub struct Device {
    interface: String,
    public_key: PublicKey,
    listen_port: u16,
    /// The interface's addresses with the mesh prefix lengths: the networks
    /// a managed peer's allowed IPs must lie in.
    addresses: Vec<(IpAddr, u8)>,
    /// `None` once stopped. Callers take a clone of the `Arc`, so no lock
    /// is held while they await the tunnel.
    tunnel: ArcSwapOption<Tunnel>,
    /// The UAPI socket; `None` once stopped.
    uapi: Mutex<Option<UapiSocket>>,
    /// Public keys of the peers `set_peers` installed.
    managed: Mutex<BTreeSet<PublicKey>>,
}

impl Device {
    /// Creates the interface, assigns its addresses, brings it up, binds
    /// the WireGuard UDP port and the UAPI socket. Must run inside a tokio
    /// runtime; needs CAP_NET_ADMIN.
    pub async fn start(config: &DeviceConfig) -> Result<Device, WireGuardError> {
        let interface = config.interface.clone();
        crate::config::interface_name(&interface).map_err(|reason| WireGuardError::Interface {
            interface: interface.clone(),
            reason,
        })?;
        let tun = link::create(&interface, &config.addresses)?;
        let tun = TunDevice::from_tun_device(tun).map_err(|e| WireGuardError::Tun {
            interface: interface.clone(),
            source: e.into(),
        })?;
        let (client, server) = UapiServer::new();
        let tunnel = gotatun::device::build()
            .with_default_udp()
            .with_ip(tun)
            .with_listen_port(config.listen_port)
            .with_uapi(server)
            .build()
            .await
            .map_err(|e| WireGuardError::Tunnel {
                interface: interface.clone(),
                source: e.into(),
            })?;
        // Setting the key is what binds the UDP sockets (the builder binds
        // only when it is given peers).
        tunnel
            .set_private_key(config.private_key.to_dalek())
            .await
            .map_err(|e| WireGuardError::Listen {
                interface: interface.clone(),
                port: config.listen_port,
                source: e.into(),
            })?;
        let listen_port = tunnel.read(async |d| d.listen_port()).await;
        let socket = uapi::serve(&interface, client)?;
        let public_key = config.private_key.public_key();
        info!(
            interface = %interface,
            public_key = %public_key,
            listen_port,
            addresses = ?config.addresses,
            uapi = %socket.path().display(),
            "wireguard device up"
        );
        Ok(Device {
            interface,
            public_key,
            listen_port,
            addresses: config.addresses.clone(),
            tunnel: ArcSwapOption::from(Some(Arc::new(tunnel))),
            uapi: Mutex::new(Some(socket)),
            managed: Mutex::new(BTreeSet::new()),
        })
    }

    /// The interface name, e.g. `maki0`.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// This device's public key (its `Display` is the base64 `wg` prints).
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The UDP port WireGuard listens on (the bound one, if 0 was asked).
    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// The interface addresses with their prefix lengths.
    pub fn addresses(&self) -> &[(IpAddr, u8)] {
        &self.addresses
    }

    fn tunnel(&self) -> Result<Arc<Tunnel>, WireGuardError> {
        self.tunnel
            .load_full()
            .ok_or_else(|| WireGuardError::Stopped {
                interface: self.interface.clone(),
            })
    }

    /// Makes the managed peers exactly `peers`: adds new ones, updates the
    /// endpoint, allowed IPs and keepalive of changed ones, removes managed
    /// peers no longer listed. Peers added by an operator with `wg set` are
    /// left alone. Nothing changes if any entry is invalid.
    pub async fn set_peers(&self, peers: &[PeerConfig]) -> Result<(), WireGuardError> {
        let mut wanted: BTreeMap<PublicKey, Peer> = BTreeMap::new();
        for peer in peers {
            let built = self.check_peer(peer)?;
            if wanted.insert(peer.public_key, built).is_some() {
                return Err(self.peer_error(peer.public_key, "is listed twice"));
            }
        }
        let tunnel = self.tunnel()?;
        let (added, updated, removed) = tunnel
            .write(async |device| {
                let current: BTreeMap<PublicKey, Peer> = device
                    .peers()
                    .await
                    .into_iter()
                    .map(|p| (PublicKey::from_dalek(&p.peer.public_key), p.peer))
                    .collect();
                let previously = self.managed_keys();
                let (mut added, mut updated, mut removed) = (0, 0, 0);
                for key in previously.difference(&wanted.keys().copied().collect()) {
                    if device.remove_peer(&key.to_dalek()).await {
                        removed += 1;
                    }
                }
                for (key, peer) in &wanted {
                    match current.get(key) {
                        Some(now) if same_settings(now, peer) => {}
                        Some(_) => {
                            device.update_peer(peer.clone()).await;
                            updated += 1;
                        }
                        None => {
                            device.add_peer(peer.clone());
                            added += 1;
                        }
                    }
                }
                self.set_managed(wanted.keys().copied().collect());
                (added, updated, removed)
            })
            .await
            .map_err(|e| WireGuardError::Tunnel {
                interface: self.interface.clone(),
                source: e.into(),
            })?;
        if added + updated + removed > 0 {
            info!(interface = %self.interface, added, updated, removed, "wireguard peers set");
        }
        Ok(())
    }

    /// Every peer (managed or not) with its endpoint, last handshake and
    /// byte counters.
    pub async fn peer_stats(&self) -> Result<Vec<PeerStats>, WireGuardError> {
        let tunnel = self.tunnel()?;
        let now = SystemTime::now();
        let mut stats: Vec<PeerStats> = tunnel
            .peers()
            .await
            .into_iter()
            .map(|p| PeerStats {
                public_key: PublicKey::from_dalek(&p.peer.public_key),
                endpoint: p.peer.endpoint,
                last_handshake: p.stats.last_handshake.and_then(|ago| now.checked_sub(ago)),
                rx_bytes: p.stats.rx_bytes as u64,
                tx_bytes: p.stats.tx_bytes as u64,
            })
            .collect();
        stats.sort_by_key(|s| s.public_key);
        Ok(stats)
    }

    /// Stops the tunnel and removes the UAPI socket; the interface goes
    /// away with the tunnel's TUN descriptor. Calling it again does nothing.
    pub async fn stop(&self) {
        drop(self.take_uapi());
        let Some(tunnel) = self.tunnel.swap(None) else {
            return;
        };
        match Arc::try_unwrap(tunnel) {
            Ok(tunnel) => tunnel.stop().await,
            // A concurrent set_peers or peer_stats still holds it; the last
            // holder's drop stops it.
            Err(shared) => drop(shared),
        }
        info!(interface = %self.interface, "wireguard device stopped");
    }

    fn take_uapi(&self) -> Option<UapiSocket> {
        match self.uapi.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    fn managed_keys(&self) -> BTreeSet<PublicKey> {
        match self.managed.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_managed(&self, keys: BTreeSet<PublicKey>) {
        match self.managed.lock() {
            Ok(mut guard) => *guard = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    fn peer_error(&self, peer: PublicKey, reason: &str) -> WireGuardError {
        WireGuardError::Peer {
            interface: self.interface.clone(),
            peer,
            reason: reason.to_string(),
        }
    }

    /// Validates one entry and builds gotatun's peer from it.
    fn check_peer(&self, peer: &PeerConfig) -> Result<Peer, WireGuardError> {
        if peer.public_key == self.public_key {
            return Err(self.peer_error(peer.public_key, "is this device's own key"));
        }
        let mut built = Peer::new(peer.public_key.to_dalek());
        built.endpoint = peer.endpoint;
        built.keepalive = peer.persistent_keepalive.filter(|k| *k > 0);
        for (ip, len) in &peer.allowed_ips {
            let network = IpNetwork::new(*ip, *len).map_err(|_| {
                self.peer_error(
                    peer.public_key,
                    &format!("has allowed IP {ip}/{len} with an impossible prefix length"),
                )
            })?;
            let inside = self
                .addresses
                .iter()
                .any(|(net, net_len)| *len >= *net_len && link::contains(*net, *net_len, *ip));
            if !inside {
                return Err(self.peer_error(
                    peer.public_key,
                    &format!(
                        "has allowed IP {ip}/{len} outside the mesh prefixes {}; the device routes only the mesh",
                        self.addresses
                            .iter()
                            .map(|(a, l)| format!("{a}/{l}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            built.allowed_ips.push(network);
        }
        Ok(built)
    }
}

/// Whether an installed peer already has `wanted`'s endpoint, keepalive
/// and allowed IPs (so an unchanged node table touches nothing, and a
/// peer's session and roaming endpoint survive).
fn same_settings(now: &Peer, wanted: &Peer) -> bool {
    let nets = |p: &Peer| -> BTreeSet<(IpAddr, u8)> {
        p.allowed_ips
            .iter()
            .map(|n| (n.network(), n.prefix()))
            .collect()
    };
    let endpoint_ok = match wanted.endpoint {
        Some(_) => now.endpoint == wanted.endpoint,
        None => true,
    };
    endpoint_ok && now.keepalive == wanted.keepalive && nets(now) == nets(wanted)
}

impl Drop for Device {
    fn drop(&mut self) {
        if self.take_uapi().is_some() {
            warn!(interface = %self.interface, "wireguard device dropped without stop()");
        }
    }
}
