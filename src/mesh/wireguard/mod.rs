//! Userspace WireGuard for the mesh: one TUN interface per node (default
//! `maki0`) carrying the mesh prefixes, gotatun's tunnel behind it, the
//! node's key pair, and the UAPI socket `wg show` and `wg set` talk to.
//!
//! The API is small on purpose: [`Device::start`] from a [`DeviceConfig`],
//! [`Device::set_peers`] with the node table's peers, [`Device::peer_stats`]
//! for handshakes and byte counters, [`Device::stop`] on shutdown.

mod device;
mod key;
mod link;
#[cfg(test)]
mod tests;
mod uapi;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::SystemTime;

pub use device::Device;
pub use key::{KeyParseError, PrivateKey, PublicKey, load_or_create_private_key};
pub use link::MTU;
pub use uapi::{SOCKET_DIR, socket_path};

/// The private key's file name in the data directory.
pub const KEY_FILE: &str = "wireguard.key";

/// What [`Device::start`] needs.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Interface name, at most 15 characters (e.g. `maki0`).
    pub interface: String,
    /// WireGuard's UDP port (0: any free port).
    pub listen_port: u16,
    pub private_key: PrivateKey,
    /// This node's mesh addresses with the mesh prefix lengths (at most one
    /// IPv4 and any IPv6), e.g. `(10.88.0.3, 16)`: the kernel then routes
    /// the whole mesh prefix into the interface and nothing else.
    pub addresses: Vec<(IpAddr, u8)>,
}

/// One peer as the node table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub public_key: PublicKey,
    /// Where to send to it (its public address and WireGuard port); `None`
    /// waits for it to reach us first.
    pub endpoint: Option<SocketAddr>,
    /// The mesh addresses it may use, each inside the mesh prefixes (its
    /// own mesh addresses as /32 and /128).
    pub allowed_ips: Vec<(IpAddr, u8)>,
    /// Seconds between keepalives, to hold NAT mappings open; `None` or 0:
    /// off.
    pub persistent_keepalive: Option<u16>,
}

/// A peer's state, as `wg show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    pub public_key: PublicKey,
    /// Where its packets last came from (or the configured endpoint).
    pub endpoint: Option<SocketAddr>,
    /// When the last handshake completed; `None` if none has.
    pub last_handshake: Option<SystemTime>,
    /// Bytes received from it and sent to it, WireGuard framing included.
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// An error from the TUN, address or tunnel library beneath the device
/// (their types differ), or what this node found wrong itself.
pub type DeviceFault = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong with the WireGuard device; each names the interface,
/// file or peer involved.
#[derive(Debug, thiserror::Error)]
pub enum WireGuardError {
    #[error("cannot use the WireGuard key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the WireGuard key file {path} is unusable: {reason}")]
    KeyFormat { path: PathBuf, reason: String },
    #[error("invalid interface {interface:?}: {reason}")]
    Interface { interface: String, reason: String },
    #[error(
        "cannot create the TUN interface {interface}: {source} (this needs root or CAP_NET_ADMIN and /dev/net/tun; another process may already use the name)"
    )]
    Tun {
        interface: String,
        source: DeviceFault,
    },
    #[error("cannot add address {address} to {interface}: {source}")]
    Address {
        interface: String,
        address: String,
        source: DeviceFault,
    },
    #[error(
        "{interface}: cannot listen on WireGuard UDP port {port}: {source}; choose another [cluster] listen_port"
    )]
    Listen {
        interface: String,
        port: u16,
        source: DeviceFault,
    },
    #[error("{interface}: UAPI socket {path}: {reason}")]
    Uapi {
        interface: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{interface}: peer {peer} {reason}")]
    Peer {
        interface: String,
        peer: PublicKey,
        reason: String,
    },
    #[error("{interface}: {source}")]
    Tunnel {
        interface: String,
        source: DeviceFault,
    },
    #[error("{interface}: the WireGuard device has stopped")]
    Stopped { interface: String },
}
