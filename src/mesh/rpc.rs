//! Mesh RPC transport: HTTP/2 over plain TCP (h2c) between nodes.
//!
//! Inside a WireGuard mesh the tunnel gives identity and encryption, so the
//! RPC adds neither; it listens only on the mesh address (or, on a node
//! without a WireGuard device, on an address the operator names). Every
//! request and response body is bounded, connections are bounded, and one
//! HTTP/2 connection per peer is reused for all calls. Payload bytes sent and
//! received are counted per peer address for `status`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http2 as client_http2;
use hyper::server::conn::http2 as server_http2;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::json_body;

use crate::shutdown::Shutdown;

/// Largest request body a node accepts.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Largest response body a client accepts unless a call says otherwise.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Simultaneous inbound RPC connections.
const MAX_CONNECTIONS: usize = 256;
/// How long one call may take before the peer counts as unreachable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("cannot reach mesh peer {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("mesh peer {addr} timed out on {path}")]
    Timeout { addr: SocketAddr, path: String },
    #[error("mesh peer {addr} failed on {path}: {source}")]
    Http {
        addr: SocketAddr,
        path: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("mesh peer {addr} answered {path} with {status}: {message}")]
    Status {
        addr: SocketAddr,
        path: String,
        status: u16,
        message: String,
    },
    #[error("mesh peer {addr} sent an invalid answer to {path}: {source}")]
    Decode {
        addr: SocketAddr,
        path: String,
        source: json_body::BodyError,
    },
    #[error("cannot encode a request to {path} for mesh peer {addr}: {source}")]
    Encode {
        addr: SocketAddr,
        path: String,
        source: serde_json::Error,
    },
}

/// A handler's answer: status and body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    /// 200 with `body`.
    pub fn ok(body: impl Into<Bytes>) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: body.into(),
        }
    }

    /// An error status with a text explaining it.
    pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Reply {
        Reply {
            status,
            body: Bytes::from(message.to_string()),
        }
    }
}

/// What the server calls for each request: method, path, body, peer.
pub type Handler = Arc<
    dyn Fn(Method, String, Bytes, SocketAddr) -> Pin<Box<dyn Future<Output = Reply> + Send>>
        + Send
        + Sync,
>;

/// Bytes moved with one peer, counted at the RPC payload level.
#[derive(Debug, Default)]
pub struct Traffic {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

/// Serves `handler` on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, handler: Handler, mut shutdown: Shutdown) {
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
                    warn!(error = %e, "mesh rpc accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let mut conn_shutdown = shutdown.clone();
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req: Request<Incoming>| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(answer(req, peer, handler).await) }
            });
            let mut builder = server_http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .max_concurrent_streams(64)
                .keep_alive_interval(Some(Duration::from_secs(10)))
                .keep_alive_timeout(Duration::from_secs(20));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(peer = %peer, error = %e, "mesh rpc connection ended");
                    }
                }
                _ = conn_shutdown.wait() => {}
            }
        });
    }
    tasks.shutdown().await;
}

async fn answer(
    req: Request<Incoming>,
    peer: SocketAddr,
    handler: Handler,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let reply = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => handler(method, path, body.to_bytes(), peer).await,
        Err(e) => Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body refused: {e} (limit {MAX_REQUEST_BYTES} bytes)"),
        ),
    };
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() = reply.status;
    response
}

/// Calls peers, keeping one HTTP/2 connection to each.
pub struct Client {
    /// Open connections by peer address; a failed one is dropped and
    /// re-dialled on the next call.
    conns: Mutex<HashMap<SocketAddr, client_http2::SendRequest<Full<Bytes>>>>,
    /// Payload bytes by peer address.
    traffic: Mutex<HashMap<SocketAddr, Arc<Traffic>>>,
    /// Connection drivers, stopped on shutdown.
    drivers: Mutex<tokio::task::JoinSet<()>>,
    shutdown: Shutdown,
}

impl Client {
    /// A client whose connections close when `shutdown` fires.
    pub fn new(shutdown: Shutdown) -> Client {
        Client {
            conns: Mutex::new(HashMap::new()),
            traffic: Mutex::new(HashMap::new()),
            drivers: Mutex::new(tokio::task::JoinSet::new()),
            shutdown,
        }
    }

    /// The byte counters of `addr`.
    pub fn traffic(&self, addr: SocketAddr) -> Arc<Traffic> {
        self.traffic
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(addr)
            .or_default()
            .clone()
    }

    async fn connection(
        &self,
        addr: SocketAddr,
    ) -> Result<client_http2::SendRequest<Full<Bytes>>, RpcError> {
        let existing = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
            .filter(|c| !c.is_closed())
            .cloned();
        if let Some(conn) = existing {
            return Ok(conn);
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| RpcError::Connect {
                addr,
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|source| RpcError::Connect { addr, source })?;
        let _ = stream.set_nodelay(true);
        let mut builder = client_http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(10)))
            .keep_alive_timeout(Duration::from_secs(20))
            .initial_stream_window_size(4 * 1024 * 1024)
            .initial_connection_window_size(8 * 1024 * 1024);
        let (send, conn) =
            builder
                .handshake(TokioIo::new(stream))
                .await
                .map_err(|e| RpcError::Connect {
                    addr,
                    source: std::io::Error::other(e),
                })?;
        let mut shutdown = self.shutdown.clone();
        {
            let mut drivers = self.drivers.lock().unwrap_or_else(|e| e.into_inner());
            while drivers.try_join_next().is_some() {}
            drivers.spawn(async move {
                tokio::select! {
                    _ = conn => {}
                    _ = shutdown.wait() => {}
                }
            });
        }
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr, send.clone());
        Ok(send)
    }

    /// POSTs `body` to `path` on `addr`; the response body, at most `limit`
    /// bytes.
    pub async fn call(
        &self,
        addr: SocketAddr,
        path: &str,
        body: Bytes,
        limit: usize,
    ) -> Result<Bytes, RpcError> {
        let traffic = self.traffic(addr);
        let sent = body.len() as u64;
        let attempt = async {
            let mut conn = self.connection(addr).await?;
            let request = Request::builder()
                .method(Method::POST)
                .uri(format!("http://{addr}{path}"))
                .body(Full::new(body))
                .map_err(|e| RpcError::Http {
                    addr,
                    path: path.to_string(),
                    source: e.into(),
                })?;
            conn.ready().await.map_err(|e| RpcError::Http {
                addr,
                path: path.to_string(),
                source: e.into(),
            })?;
            let response = conn
                .send_request(request)
                .await
                .map_err(|e| RpcError::Http {
                    addr,
                    path: path.to_string(),
                    source: e.into(),
                })?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|source| RpcError::Http {
                    addr,
                    path: path.to_string(),
                    source,
                })?
                .to_bytes();
            if !status.is_success() {
                return Err(RpcError::Status {
                    addr,
                    path: path.to_string(),
                    status: status.as_u16(),
                    message: String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned(),
                });
            }
            Ok(bytes)
        };
        let result = match tokio::time::timeout(CALL_TIMEOUT, attempt).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::Timeout {
                addr,
                path: path.to_string(),
            }),
        };
        match &result {
            Ok(bytes) => {
                traffic.sent.fetch_add(sent, Ordering::Relaxed);
                traffic
                    .received
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Err(RpcError::Status { .. }) => {}
            Err(_) => {
                self.conns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&addr);
            }
        }
        result
    }

    /// Calls `path` with `request` as JSON and reads a JSON answer.
    pub async fn call_json<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
        &self,
        addr: SocketAddr,
        path: &str,
        request: &Q,
    ) -> Result<A, RpcError> {
        let body = json_body::encode(request).map_err(|source| RpcError::Encode {
            addr,
            path: path.to_string(),
            source,
        })?;
        let bytes = self
            .call(addr, path, Bytes::from(body), MAX_RESPONSE_BYTES)
            .await?;
        json_body::decode(&bytes, MAX_RESPONSE_BYTES).map_err(|source| RpcError::Decode {
            addr,
            path: path.to_string(),
            source,
        })
    }

    /// Stops every connection driver.
    pub async fn close(&self) {
        let mut drivers =
            std::mem::take(&mut *self.drivers.lock().unwrap_or_else(|e| e.into_inner()));
        drivers.shutdown().await;
    }
}

/// A JSON reply (compressed when large, see `json_body.rs`), or 500 if it
/// cannot be encoded.
pub fn json_reply<T: serde::Serialize>(value: &T) -> Reply {
    match json_body::encode(value) {
        Ok(body) => Reply::ok(body),
        Err(e) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Decodes a JSON request body, or a 400 naming the problem.
pub fn json_request<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Reply> {
    json_body::decode(body, MAX_REQUEST_BYTES)
        .map_err(|e| Reply::error(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}")))
}
