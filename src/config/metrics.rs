//! `[metrics]` in `node.toml`: where the Prometheus exposition listens.
//! Unset, it listens on the node's mesh address in a WireGuard cluster and
//! on loopback otherwise, never on a public address unless written here.

use std::net::SocketAddr;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::ConfigError;
use super::address::socket_addr;
use super::diagnostic::Source;

/// The exposition's port when `listen` is not set.
pub const DEFAULT_METRICS_PORT: u16 = 9470;

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricsSettings {
    /// Where the exposition listens; `None`: the mesh address (WireGuard
    /// cluster) or `127.0.0.1`, at port 9470.
    pub listen: Option<SocketAddr>,
}

/// `[metrics]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub listen: Option<Spanned<String>>,
}

/// Checks `[metrics]`.
pub(super) fn metrics(src: Source<'_>, raw: &RawMetrics) -> Result<MetricsSettings, ConfigError> {
    Ok(MetricsSettings {
        listen: match &raw.listen {
            Some(l) => Some(socket_addr(src, l, "metrics.listen", "127.0.0.1:9470")?),
            None => None,
        },
    })
}
