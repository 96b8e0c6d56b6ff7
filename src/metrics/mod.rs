//! Observability: the counters and histograms the hot paths update (HTTP,
//! DNS) and the rarer events (pushes, builds, certificate orders), and the
//! Prometheus exposition endpoint that reads them with what the other
//! subsystems already know (mesh peers, certificates, limits).
//!
//! The request path never blocks or allocates for metrics: every record is
//! a relaxed atomic add into sets whose labels are fixed (method, status,
//! query type) or known before requests (a snapshot's domains); paths and
//! client addresses are never labels.

pub mod access_log;
pub mod deploys;
pub mod dns;
mod exposition;
pub mod histogram;
pub mod http;
mod process;
pub mod recent;
pub mod registry;
mod server;
pub mod traffic;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use crate::services::Services;
use crate::shutdown::Shutdown;

pub use access_log::{AccessLog, AccessLogError};
pub use deploys::{DeployMetrics, Outcome};
pub use dns::{DnsMetrics, Transport};
pub use exposition::render;
pub use http::HttpMetrics;

/// Every counter of the node; one value, shared by the subsystems that
/// count.
pub struct Metrics {
    pub http: Arc<HttpMetrics>,
    pub dns: DnsMetrics,
    pub deploys: DeployMetrics,
    /// When the node started, for the uptime.
    pub started: Instant,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::with_access_log(AccessLog::default())
    }
}

impl Metrics {
    /// Fresh counters, HTTP requests going to `access_log` too.
    pub fn with_access_log(access_log: AccessLog) -> Metrics {
        Metrics {
            http: Arc::new(HttpMetrics::with_access_log(access_log)),
            dns: DnsMetrics::default(),
            deploys: DeployMetrics::default(),
            started: Instant::now(),
        }
    }
}

/// The running exposition endpoint.
pub struct MetricsEndpoint {
    /// Where it is bound (the port may have been 0).
    pub addr: SocketAddr,
    pub tasks: JoinSet<()>,
}

/// Binds `listen` and serves the exposition of `services` until `shutdown`.
pub async fn start(
    listen: SocketAddr,
    services: Arc<Services>,
    shutdown: Shutdown,
) -> std::io::Result<MetricsEndpoint> {
    let listener = server::bind(listen).await?;
    let addr = listener.local_addr()?;
    let mut tasks = JoinSet::new();
    tasks.spawn(server::serve(listener, services, shutdown));
    Ok(MetricsEndpoint { addr, tasks })
}
