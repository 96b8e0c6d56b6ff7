//! The exposition endpoint: `GET /metrics` over plain HTTP/1.1 on the
//! `[metrics] listen` address, a handful of connections at a time (it is
//! for a scraper, not for visitors).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::exposition::{CONTENT_TYPE, render};
use crate::services::Services;
use crate::shutdown::Shutdown;

/// Scrapes served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 16;
/// A scraper gets this long to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the exposition of `services` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, services: Arc<Services>, mut shutdown: Shutdown) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
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
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        while tasks.try_join_next().is_some() {}
        let services = services.clone();
        let mut conn_shutdown = shutdown.clone();
        tasks.spawn(async move {
            let _held = permit;
            let service = service_fn(move |req| {
                let services = services.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(req, services).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(%peer, error = %e, "metrics connection ended with an error");
                    }
                }
                _ = conn_shutdown.wait() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
    tasks.shutdown().await;
}

async fn answer<B>(req: Request<B>, services: Arc<Services>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String, content_type: &'static str| {
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        resp
    };
    let plain = "text/plain; charset=utf-8";
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "try /metrics\n".into(), plain);
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into(), plain);
    }
    let text = tokio::task::spawn_blocking(move || render(&services.metrics, &services)).await;
    match text {
        Ok(text) => reply(StatusCode::OK, text, CONTENT_TYPE),
        Err(e) => {
            warn!(error = %e, "rendering the metrics failed");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "rendering failed\n".into(),
                plain,
            )
        }
    }
}

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen for metrics on {addr}: {e}"),
        )
    })
}
