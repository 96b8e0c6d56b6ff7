//! The HTTP listener: accepts connections, bounds them, applies the header
//! size and read-time limits, and routes each request to its site.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HOST, HeaderValue, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::body::Body;
use super::serve as pipeline;
use super::site::SiteTable;
use crate::config::HttpSettings;
use crate::shutdown::Shutdown;

/// Simultaneous connections; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 8192;
/// How long open connections get to finish after shutdown begins.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The name in `server:` and the revision in `x-makiatto-revision:`.
const SERVER_NAME: HeaderValue = HeaderValue::from_static("makiatto");
const REVISION_HEADER: &str = "x-makiatto-revision";

/// Serves `sites` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    sites: Arc<SiteTable>,
    settings: HttpSettings,
    mut shutdown: Shutdown,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.wait() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(5);
                    accepted
                }
                Err(e) => {
                    // Usually EMFILE: wait for connections to close.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        let sites = sites.clone();
        let settings = settings.clone();
        let mut conn_shutdown = shutdown.clone();
        // Reap finished connection tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| {
                let sites = sites.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, &sites, peer).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(settings.header_timeout_secs))
                .max_header_size(settings.max_header_bytes)
                .max_headers(100);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = conn_shutdown.wait() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_TIME, conn).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// Routes one request by `Host` and stamps the server headers.
async fn handle<B>(req: Request<B>, sites: &SiteTable, _peer: SocketAddr) -> Response<Body>
where
    B: hyper::body::Body<Data = bytes::Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    let snapshot = sites.load();
    let mut resp = match snapshot.for_host(host) {
        Some(site) => {
            let mut resp = match site.function(req.uri().path()) {
                Some(function) => super::function::respond(req, function).await,
                None => pipeline::site_response(&req, site).await,
            };
            resp.headers_mut()
                .insert(REVISION_HEADER, site.revision_header.clone());
            resp
        }
        None => pipeline::unknown_host(host),
    };
    resp.headers_mut().insert(SERVER, SERVER_NAME);
    resp
}

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen for HTTP on {addr}: {e}"))
    })
}
