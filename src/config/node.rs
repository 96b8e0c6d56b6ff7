//! `node.toml`: one server's configuration.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use super::ConfigError;

/// A parsed and validated `node.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// This node's name: `[a-z0-9-]{1,63}`, unique in the cluster.
    pub name: String,
    /// Where state, objects, repos and revisions live.
    pub data_dir: PathBuf,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// How many revisions per domain are kept for rollback (default 10).
    pub keep_revisions: usize,
    pub http: HttpSettings,
    /// `[dns]`: listen address and the GeoIP database, used by the DNS issue.
    pub dns_listen: Option<SocketAddr>,
    pub geoip_db: Option<PathBuf>,
    /// `[[nodes]]`: other nodes, until the mesh replicates the node table.
    pub nodes: Vec<PeerNode>,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Default `0.0.0.0:80`.
    pub listen: SocketAddr,
    /// Seconds a client has to send its request head (default 10).
    pub header_timeout_secs: u64,
    /// Maximum size of a request head in bytes (default 16384).
    pub max_header_bytes: usize,
    /// Serve the first site for hosts that match no domain (dev mode).
    pub fallback_to_first_site: bool,
}

/// One `[[nodes]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerNode {
    pub name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            header_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            fallback_to_first_site: false,
        }
    }
}

impl NodeConfig {
    /// Parses and validates `text`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<NodeConfig, ConfigError> {
        Err(ConfigError::new(file, text, None, "not implemented yet"))
    }

    /// The single-machine defaults `makiatto dev` starts from.
    pub fn dev(data_dir: PathBuf, http_listen: SocketAddr) -> NodeConfig {
        NodeConfig {
            name: "dev".into(),
            data_dir,
            ipv4: Some(Ipv4Addr::LOCALHOST),
            ipv6: None,
            latitude: None,
            longitude: None,
            keep_revisions: 10,
            http: HttpSettings {
                listen: http_listen,
                fallback_to_first_site: true,
                ..HttpSettings::default()
            },
            dns_listen: None,
            geoip_db: None,
            nodes: Vec::new(),
        }
    }
}
