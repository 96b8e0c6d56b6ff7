//! Proxy rules: a 200 rule to an `http(s)://` URL forwards the visitor's
//! request to that backend and streams its answer back.
//!
//! One pooled client per node (hyper-util's, HTTP/1.1, TLS by rustls with
//! the system's CA certificates) keeps connections to a backend open for
//! the next request. A connection is only ever made to an address checked
//! by `connect.rs`; `headers.rs` decides which headers cross; `body.rs`
//! streams both bodies under their limits. Whatever the backend does, the
//! visitor gets an answer: 502 when it cannot be reached or is refused, 504
//! when it is too slow to connect or to answer, 413 for a body over the
//! limit; a body that stalls midway cuts the connection (the status has
//! been sent by then).

mod body;
mod connect;
mod headers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::{Request, Response, StatusCode};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tracing::warn;

use self::body::{Capped, Idle};
use self::connect::{CheckedConnector, ConnectError};
use super::body::{Body, BodyError};
use super::serve::text;
use crate::config::ProxySettings;
use crate::metrics::HttpMetrics;

pub use self::headers::Asker;

/// How long an idle pooled connection is kept for the next request.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per backend.
const POOL_PER_HOST: usize = 64;

/// The node's proxy: the pooled client and the limits of `[proxy]` and
/// `[limits.http]`.
pub struct Proxy {
    client: Client<HttpsConnector<CheckedConnector>, UnsyncBoxBody<Bytes, BodyError>>,
    /// Time from the request sent to the response head.
    first_byte: Duration,
    /// Time a response body may send nothing.
    idle: Duration,
    /// Largest request body forwarded.
    max_body: u64,
}

impl Proxy {
    /// The proxy of a node with these settings; `max_body` is `[limits.http]
    /// max_body_bytes`.
    pub fn new(settings: &ProxySettings, max_body: u64) -> Arc<Proxy> {
        let connector = CheckedConnector::new(
            &settings.allow_private,
            Duration::from_secs(settings.connect_timeout_secs),
        );
        let https = tls()
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_PER_HOST)
            .build(https);
        Arc::new(Proxy {
            client,
            first_byte: Duration::from_secs(settings.first_byte_timeout_secs),
            idle: Duration::from_secs(settings.idle_timeout_secs),
            max_body,
        })
    }

    /// Forwards `req` to `url` (a proxy rule's filled-in target) for
    /// `asker`, and the backend's answer back; counted in `metrics`.
    pub async fn forward<B>(
        &self,
        req: Request<B>,
        url: &str,
        asker: Asker<'_>,
        metrics: &HttpMetrics,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BodyError>,
    {
        metrics.proxy_requests.fetch_add(1, Ordering::Relaxed);
        match self.send(req, url, asker).await {
            Ok(resp) => resp,
            Err(refusal) => {
                if matches!(
                    refusal.status(),
                    StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
                ) {
                    metrics.proxy_failures.fetch_add(1, Ordering::Relaxed);
                }
                refusal
            }
        }
    }

    /// The backend's answer, or the node's own (`Err`) when there is none.
    async fn send<B>(
        &self,
        req: Request<B>,
        url: &str,
        asker: Asker<'_>,
    ) -> Result<Response<Body>, Response<Body>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BodyError>,
    {
        let target = match headers::target_uri(url) {
            Ok(target) => target,
            Err(e) => {
                warn!(target = url, error = %e, "proxy rule has an unusable target; fix the rule");
                return Err(text(
                    StatusCode::BAD_GATEWAY,
                    "the proxy rule's target is not a valid URL\n",
                ));
            }
        };
        let (mut parts, body) = req.into_parts();
        headers::to_backend(&mut parts.headers, &target, asker);
        parts.uri = target;
        parts.version = hyper::Version::HTTP_11;
        let tripped = Arc::new(AtomicBool::new(false));
        let body = Capped::new(body, self.max_body, tripped.clone()).boxed_unsync();
        let request = Request::from_parts(parts, body);

        let sent = tokio::time::timeout(self.first_byte, self.client.request(request)).await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(_)) if tripped.load(Ordering::Relaxed) => {
                return Err(too_large(self.max_body));
            }
            Ok(Err(e)) => return Err(failed(url, &e)),
            Err(_) => {
                warn!(target = url, limit = ?self.first_byte, "proxy backend did not answer in time ([proxy] first_byte_timeout_secs)");
                return Err(text(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the backend did not answer in time\n",
                ));
            }
        };
        let (mut parts, body) = response.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers);
        let body = Idle::new(body, self.idle).boxed_unsync();
        Ok(Response::from_parts(parts, Body::Stream(body)))
    }
}

/// The TLS side of the connector: rustls (ring) with the system's CA
/// certificates.
fn tls() -> HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
        Ok(builder) => builder,
        Err(e) => {
            warn!(error = %e, "no system CA certificates: https:// proxy backends cannot be verified; install the ca-certificates package");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                // ring's provider supports the default protocol versions.
                .expect("ring supports TLS 1.2 and 1.3")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            HttpsConnectorBuilder::new().with_tls_config(config)
        }
    }
}

fn too_large(limit: u64) -> Response<Body> {
    let mut resp = text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body over this server's {limit}-byte limit\n"),
    );
    // The rest of the body was not read.
    resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    resp
}

/// The answer when the client gave up: 502, or 504 when connecting timed
/// out; a refused address is logged with the way to allow it.
fn failed(url: &str, error: &hyper_util::client::legacy::Error) -> Response<Body> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(connect) = e.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Refused { host, address } => {
                    warn!(
                        target = url,
                        host = %host,
                        address = %address,
                        "proxy rule refused: its backend resolves to a non-public address; \
                         if that backend is meant to be reached, add its network to \
                         [proxy] allow_private in node.toml"
                    );
                    text(
                        StatusCode::BAD_GATEWAY,
                        "the proxy rule's backend is not a public address, and this node does not allow it\n",
                    )
                }
                ConnectError::Timeout { .. } => {
                    warn!(target = url, error = %connect, "proxy backend unreachable in time ([proxy] connect_timeout_secs)");
                    text(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the backend could not be reached in time\n",
                    )
                }
                _ => {
                    warn!(target = url, error = %connect, "proxy backend unreachable");
                    text(
                        StatusCode::BAD_GATEWAY,
                        "the backend could not be reached\n",
                    )
                }
            };
        }
        source = e.source();
    }
    // The client's own message ("client error (Connect)") hides the cause:
    // name every link of the chain.
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        chain.push_str(": ");
        chain.push_str(&e.to_string());
        source = e.source();
    }
    warn!(target = url, error = %chain, "proxy backend failed");
    text(StatusCode::BAD_GATEWAY, "the backend failed to answer\n")
}
