//! DNS over TLS (RFC 7858): the same handler behind TLS on its own port,
//! with the certificate for `<node>.ns.<domain>` (the domain's certificate
//! covers `*.ns.<domain>`) chosen by SNI from the node's certificate table.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::Server;
use hickory_server::server::RequestHandler;
use tokio::net::TcpListener;

use super::DnsError;
use super::server::TCP_IDLE;
use crate::http::CertTable;

/// Binds `addr` and serves DNS over TLS on it through `server`; returns the
/// bound address.
pub async fn register<H: RequestHandler>(
    server: &mut Server<H>,
    addr: SocketAddr,
    certs: Arc<CertTable>,
) -> Result<SocketAddr, DnsError> {
    let err = |source| DnsError::TlsListen { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    let config = crate::http::tls::dot_config(certs)
        .map_err(|e| err(std::io::Error::other(e.to_string())))?;
    server
        .register_tls_listener_with_tls_config(listener, TCP_IDLE, config)
        .map_err(err)?;
    Ok(bound)
}
