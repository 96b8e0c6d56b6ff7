//! The HTTP server: host routing, static files, rules.
//!
//! Requests are answered from the site snapshot in [`crate::live`], which
//! deploy publishes, behind its preview passwords (`preview_auth.rs`);
//! HTTPS handshakes read its certificate snapshot. This
//! module publishes nothing and never writes to the store or the CAS.

mod body;
mod conditional;
mod function;
mod fuzz;
mod limits;
mod negotiate;
mod path;
mod preview_auth;
mod proxy;
mod range;
mod serve;
mod server;
mod skew;
mod stalled;
mod visitor;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::config::NodeConfig;
use crate::limits::Counters;
use crate::live::{CertTable, Live, server_config};
use crate::metrics::HttpMetrics;
use crate::shutdown::Shutdown;

pub use body::Body;
pub use limits::ClientLimits;
pub use proxy::Proxy;
pub use server::{HttpsRedirect, bind, serve, serve_http, serve_https};
pub use visitor::Locator;

/// Why the HTTP listeners could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Binding failed; the error names the address (see [`bind`]).
    #[error("{0}")]
    Listen(std::io::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// The running HTTP (and HTTPS) listeners.
pub struct Http {
    /// Where HTTP is bound (the port may have been 0).
    pub addr: SocketAddr,
    /// Where HTTPS is bound, when `node.toml` enables it.
    pub https_addr: Option<SocketAddr>,
    /// The listeners' tasks; they end on shutdown.
    pub tasks: JoinSet<()>,
}

/// Binds HTTP (and HTTPS when configured) and serves `live` until
/// `shutdown`.
pub async fn start(
    config: &NodeConfig,
    live: &Live,
    geo: Arc<crate::dns::geo::GeoIp>,
    limited: Arc<Counters>,
    metrics: Arc<HttpMetrics>,
    shutdown: Shutdown,
) -> Result<Http, HttpError> {
    // One set of client limits for both listeners: a client's share is
    // over HTTP and HTTPS together.
    let limits = ClientLimits::new(config.limits.http.clone(), limited);
    let locator = Arc::new(Locator::new(geo, config.http.trusted_proxies.clone()));
    let proxy = Proxy::new(&config.proxy, config.limits.http.max_body_bytes);
    let listener = bind(config.http.listen).await.map_err(HttpError::Listen)?;
    let addr = listener.local_addr().map_err(HttpError::Listen)?;
    let mut tasks = JoinSet::new();
    let https_addr = match config.https_listen {
        Some(https) => {
            let tls_listener = bind(https).await.map_err(HttpError::Listen)?;
            let bound = tls_listener.local_addr().map_err(HttpError::Listen)?;
            tasks.spawn(serve_https(
                tls_listener,
                live.clone(),
                config.http.clone(),
                limits.clone(),
                metrics.clone(),
                live.certs.clone(),
                https_config(live.certs.clone())?,
                locator.clone(),
                proxy.clone(),
                shutdown.clone(),
            ));
            Some(bound)
        }
        None => None,
    };
    let redirect = https_addr.map(|https| HttpsRedirect {
        certs: live.certs.clone(),
        port: https.port(),
    });
    tasks.spawn(serve_http(
        listener,
        live.clone(),
        config.http.clone(),
        limits,
        metrics,
        redirect,
        locator,
        proxy,
        shutdown,
    ));
    Ok(Http {
        addr,
        https_addr,
        tasks,
    })
}

/// The rustls config of the HTTPS listener: certificates by SNI, ALPN h2
/// then http/1.1.
pub fn https_config(table: Arc<CertTable>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    server_config(table, &[b"h2", b"http/1.1"])
}
