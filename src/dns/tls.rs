//! DNS over TLS (RFC 7858): the same handler behind TLS on its own port,
//! with the certificate for `<node>.ns.<domain>` (the domain's certificate
//! covers `*.ns.<domain>`) chosen by SNI from the node's certificate table.
//!
//! `[dns] tls_listen` opens it at start; otherwise a node opens it on port
//! 853 by itself once it holds a certificate for one of its name server
//! names (before that every handshake would fail).

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::server::RequestHandler;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{error, info};

use super::DnsError;
use crate::acme::schedule;
use crate::config::DnsLimits;
use crate::limits::Counters;
use crate::live::{CertTable, server_config};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// Binds `addr` for DNS over TLS; returns the listener, its acceptor and
/// the bound address. [`super::tcp::serve_tls`] serves it with the same
/// connection caps and idle timeout as plain TCP.
pub async fn bind(
    addr: SocketAddr,
    certs: Arc<CertTable>,
) -> Result<(TcpListener, TlsAcceptor, SocketAddr), DnsError> {
    let err = |source| DnsError::TlsListen { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    let config = dot_config(certs).map_err(|e| err(std::io::Error::other(e)))?;
    Ok((listener, TlsAcceptor::from(config), bound))
}

/// The rustls config of the DNS over TLS listener (RFC 7858): the node's
/// certificates by SNI, ALPN `dot` (RFC 7858 clients may also send none).
pub fn dot_config(certs: Arc<CertTable>) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    server_config(certs, &[b"dot"])
}

/// Waits until a stored certificate covers `<node>.ns.<domain>` for one of
/// its domains, then serves DNS over TLS on `addr` through `handler` until
/// `shutdown`. Failing to listen is logged, not fatal: the operator did not
/// ask for this listener by name.
#[allow(clippy::too_many_arguments)]
pub async fn serve_once_certified<H: RequestHandler>(
    handler: Arc<H>,
    addr: SocketAddr,
    certs: Arc<CertTable>,
    store: Arc<Store>,
    node: String,
    limits: DnsLimits,
    counters: Arc<Counters>,
    mut shutdown: Shutdown,
) {
    let mut changes = store.subscribe_certs();
    loop {
        changes.mark_unchanged();
        match store.certificates() {
            Ok(rows) => {
                if let Some(row) = rows.iter().find(|row| {
                    let ns_name = format!("{node}.ns.{}", row.domain);
                    row.names.iter().any(|n| schedule::matches(n, &ns_name))
                }) {
                    info!(dot = %addr, domain = %row.domain, "a certificate covers this node's name server name; opening DNS over TLS");
                    break;
                }
            }
            Err(e) => error!(error = %e, "cannot read certificates for DNS over TLS"),
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = shutdown.wait() => return,
        }
    }
    let (listener, tls, _) = match bind(addr, certs).await {
        Ok(bound) => bound,
        Err(e) => {
            error!(error = %e, "DNS over TLS not served; set [dns] tls_listen to another address, or tls = false");
            return;
        }
    };
    super::tcp::serve_tls(listener, tls, handler, &limits, counters, shutdown).await
}
