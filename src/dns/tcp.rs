//! The TCP and DNS-over-TLS listeners: connections are capped in total
//! and per client address (one over a cap is closed at once and counted),
//! a TLS handshake must end within `TCP_IDLE`, each connection closes after
//! `TCP_IDLE` without a complete message or a response the client does not
//! read, and its queries are answered one at a time. Each listener has its
//! own caps, both of `[limits.dns]`'s size.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::RequestHandler;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::exchange::{self, Outcome};
use super::server::TCP_IDLE;
use crate::config::DnsLimits;
use crate::limits::{Connections, Counters, Limited, client_key};
use crate::shutdown::Shutdown;

/// Accepts and serves DNS over TCP on `listener` until `shutdown`.
pub async fn serve<H: RequestHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: &DnsLimits,
    counters: Arc<Counters>,
    shutdown: Shutdown,
) {
    accept(listener, None, handler, limits, counters, shutdown).await
}

/// Accepts and serves DNS over TLS (RFC 7858) on `listener` until
/// `shutdown`, each connection's handshake through `tls`.
pub async fn serve_tls<H: RequestHandler>(
    listener: TcpListener,
    tls: TlsAcceptor,
    handler: Arc<H>,
    limits: &DnsLimits,
    counters: Arc<Counters>,
    shutdown: Shutdown,
) {
    accept(listener, Some(tls), handler, limits, counters, shutdown).await
}

/// The accept loop of both listeners: `tls` set for DNS over TLS.
async fn accept<H: RequestHandler>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    handler: Arc<H>,
    limits: &DnsLimits,
    counters: Arc<Counters>,
    mut shutdown: Shutdown,
) {
    let total = Arc::new(Semaphore::new(limits.tcp_connections));
    let per_client = Connections::new(limits.tcp_connections_per_client);
    let mut tasks = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually EMFILE: wait for connections to close.
                    warn!(error = %e, "DNS TCP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = total.clone().try_acquire_owned() else {
            counters.count(Limited::DnsTcpRefused);
            debug!(%peer, "DNS TCP connection over the total cap, closed");
            continue;
        };
        let Some(slot) = per_client.open(client_key(peer.ip(), 32, 128)) else {
            counters.count(Limited::DnsTcpRefused);
            debug!(%peer, "DNS TCP connection over the client's cap, closed");
            continue;
        };
        let handler = handler.clone();
        let counters = counters.clone();
        let mut conn_shutdown = shutdown.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            let _held = (permit, slot);
            let serve = async {
                match tls {
                    None => connection(stream, peer, &*handler, &counters, Protocol::Tcp).await,
                    Some(tls) => match timeout(TCP_IDLE, tls.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            connection(stream, peer, &*handler, &counters, Protocol::Tls).await
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "DNS over TLS handshake failed"),
                        Err(_) => {
                            debug!(%peer, "DNS over TLS handshake did not end in time; closed")
                        }
                    },
                }
            };
            tokio::select! {
                _ = serve => {}
                _ = conn_shutdown.wait() => {}
            }
        });
    }
    tasks.shutdown().await;
}

/// Answers the length-prefixed queries of one connection until the client
/// closes it, goes idle, or sends what cannot be framed.
async fn connection<H: RequestHandler, S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    handler: &H,
    counters: &Counters,
    protocol: Protocol,
) {
    loop {
        let mut len = [0u8; 2];
        match timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut raw = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match timeout(TCP_IDLE, stream.read_exact(&mut raw)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let reply = match exchange::exchange(handler, raw, peer, protocol).await {
            Outcome::Answered(bytes) => bytes,
            Outcome::FormErr(bytes) => {
                counters.count(Limited::DnsFormErr);
                bytes
            }
            Outcome::Silent => continue,
        };
        let Ok(framed_len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&framed_len.to_be_bytes());
        framed.extend_from_slice(&reply);
        match timeout(TCP_IDLE, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => {
                debug!(%peer, "DNS TCP client stopped reading; closed");
                return;
            }
        }
    }
}
