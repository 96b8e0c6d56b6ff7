//! The HTTP and HTTPS listeners: accept connections, bound them, apply the
//! header size and read-time limits, and route each request to its site.
//! Plain HTTP redirects hosts that have a CA-issued certificate to HTTPS;
//! HTTPS speaks HTTP/2 or HTTP/1.1 as ALPN chose and adds HSTS where the
//! site's config asks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Body as _;
use hyper::header::{
    ACCEPT_LANGUAGE, HOST, HeaderValue, LOCATION, SERVER, STRICT_TRANSPORT_SECURITY,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::body::Body;
use super::limits::{ClientLimits, OVER_CONNECTIONS};
use super::preview_auth::{self, Admission};
use super::proxy::{Asker, Proxy};
use super::serve::{self as pipeline, Routed};
use super::stalled::SendTimeout;
use super::visitor::Locator;
use crate::config::HttpSettings;
use crate::live::{CertTable, Live, Visitor, host_name, preview_domain};
use crate::metrics::HttpMetrics;
use crate::metrics::access_log::Pending;
use crate::metrics::http::{DomainHttp, MethodClass};
use crate::shutdown::Shutdown;

/// Simultaneous connections; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 8192;
/// Concurrent HTTP/2 streams per connection.
const MAX_H2_STREAMS: u32 = 256;
/// Paths plain HTTP keeps serving for ACME HTTP-01, should a CA use it.
const ACME_HTTP_PATH: &str = "/.well-known/acme-challenge/";
/// How long open connections get to finish after shutdown begins.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The name in `server:` and the revision in `x-makiatto-revision:`.
const SERVER_NAME: HeaderValue = HeaderValue::from_static("makiatto");
const REVISION_HEADER: &str = "x-makiatto-revision";
/// Keeps previews and permalinks (copies of the site) out of search engines.
const X_ROBOTS_TAG: &str = "x-robots-tag";

/// Serves `live` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    live: Live,
    settings: HttpSettings,
    limits: Arc<ClientLimits>,
    metrics: Arc<HttpMetrics>,
    shutdown: Shutdown,
) {
    let locator = Arc::new(Locator::none());
    let proxy = Proxy::new(&Default::default(), limits.settings.max_body_bytes);
    serve_http(
        listener, live, settings, limits, metrics, None, locator, proxy, shutdown,
    )
    .await
}

/// Where plain HTTP sends visitors of hosts with a CA-issued certificate.
#[derive(Clone)]
pub struct HttpsRedirect {
    pub certs: Arc<CertTable>,
    /// The HTTPS listener's port (left out of redirects when 443).
    pub port: u16,
}

/// What a connection's requests are served as.
#[derive(Clone)]
enum Scheme {
    /// Plain HTTP, redirecting to HTTPS where a certificate exists.
    Http(Option<HttpsRedirect>),
    /// HTTPS, adding HSTS where the site asks for it.
    Https(Arc<CertTable>),
}

/// Serves plain HTTP/1.1 on `listener`; with `redirect`, hosts that have a
/// CA-issued certificate are sent to HTTPS (308).
// Each argument is one handle the listener owns; a struct would only
// rename them.
#[allow(clippy::too_many_arguments)]
pub async fn serve_http(
    listener: TcpListener,
    live: Live,
    settings: HttpSettings,
    limits: Arc<ClientLimits>,
    metrics: Arc<HttpMetrics>,
    redirect: Option<HttpsRedirect>,
    locator: Arc<Locator>,
    proxy: Arc<Proxy>,
    shutdown: Shutdown,
) {
    let scheme = Scheme::Http(redirect);
    let conn_limits = limits.clone();
    let conn_metrics = metrics.clone();
    accept_loop(
        listener,
        shutdown,
        conn_limits,
        conn_metrics,
        Some(OVER_CONNECTIONS),
        move |stream, peer, conn_shutdown| {
            let live = live.clone();
            let settings = settings.clone();
            let scheme = scheme.clone();
            let limits = limits.clone();
            let metrics = metrics.clone();
            let locator = locator.clone();
            let proxy = proxy.clone();
            async move {
                let service = service_fn(move |req| {
                    let live = live.clone();
                    let scheme = scheme.clone();
                    let limits = limits.clone();
                    let metrics = metrics.clone();
                    let locator = locator.clone();
                    let proxy = proxy.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            limited(
                                req, &live, &scheme, &limits, &metrics, &locator, &proxy, peer,
                            )
                            .await,
                        )
                    }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(settings.header_timeout_secs))
                    .max_header_size(settings.max_header_bytes)
                    .max_headers(100);
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                drive(conn, peer, conn_shutdown).await;
            }
        },
    )
    .await
}

/// Serves HTTPS on `listener`: TLS with certificates from `certs` by SNI,
/// then HTTP/2 or HTTP/1.1 as ALPN chose.
// Each argument is one handle the listener owns; a struct would only
// rename them.
#[allow(clippy::too_many_arguments)]
pub async fn serve_https(
    listener: TcpListener,
    live: Live,
    settings: HttpSettings,
    limits: Arc<ClientLimits>,
    metrics: Arc<HttpMetrics>,
    certs: Arc<CertTable>,
    tls: Arc<rustls::ServerConfig>,
    locator: Arc<Locator>,
    proxy: Arc<Proxy>,
    shutdown: Shutdown,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let scheme = Scheme::Https(certs);
    let conn_limits = limits.clone();
    let conn_metrics = metrics.clone();
    accept_loop(
        listener,
        shutdown,
        conn_limits,
        conn_metrics,
        // No HTTP can be spoken before TLS: over its cap a client is just closed.
        None,
        move |stream, peer, mut conn_shutdown| {
            let live = live.clone();
            let settings = settings.clone();
            let scheme = scheme.clone();
            let acceptor = acceptor.clone();
            let limits = limits.clone();
            let metrics = metrics.clone();
            let locator = locator.clone();
            let proxy = proxy.clone();
            async move {
                // The handshake gets the same time limit as a request head.
                let limit = Duration::from_secs(settings.header_timeout_secs);
                let stream = match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        metrics.tls_handshakes.fetch_add(1, Ordering::Relaxed);
                        stream
                    }
                    Ok(Err(e)) => {
                        metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
                        debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        metrics.tls_failures.fetch_add(1, Ordering::Relaxed);
                        debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let service = service_fn(move |req| {
                    let live = live.clone();
                    let scheme = scheme.clone();
                    let limits = limits.clone();
                    let metrics = metrics.clone();
                    let locator = locator.clone();
                    let proxy = proxy.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            limited(
                                req, &live, &scheme, &limits, &metrics, &locator, &proxy, peer,
                            )
                            .await,
                        )
                    }
                });
                // ALPN already chose: HTTP/1.1 (or nothing offered) goes
                // straight to hyper's HTTP/1 connection, without the
                // preface sniffing (and its buffer) of the auto builder.
                if stream.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
                    let mut builder = http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(settings.header_timeout_secs))
                        // hyper's smallest read buffer is 8 KiB.
                        .max_buf_size(settings.max_header_bytes.max(8192))
                        .max_headers(100);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    drive(conn, peer, conn_shutdown).await;
                    return;
                }
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(MAX_H2_STREAMS)
                    .max_header_list_size(
                        u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX),
                    );
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
            }
        },
    )
    .await
}

/// Runs an HTTP/1 connection (over TCP, or TLS) until it ends or shutdown
/// drains it.
async fn drive<I, S>(conn: http1::Connection<I, S>, peer: SocketAddr, mut conn_shutdown: Shutdown)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
}

/// Accepts connections (at most `MAX_CONNECTIONS` at once, and the
/// client's share of them) and runs `connection` for each until
/// `shutdown`, then lets them drain. A client over its share reads
/// `over_cap` (when the protocol allows a reply before anything else) and
/// is closed. Every connection's writes time out when its client stops
/// reading.
async fn accept_loop<F, Fut>(
    listener: TcpListener,
    mut shutdown: Shutdown,
    limits: Arc<ClientLimits>,
    metrics: Arc<HttpMetrics>,
    over_cap: Option<&'static [u8]>,
    connection: F,
) where
    F: Fn(SendTimeout<tokio::net::TcpStream>, SocketAddr, Shutdown) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
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
        // Reap finished connection tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
        let Some(slot) = limits.admit(peer) else {
            debug!(%peer, "HTTP connection over the client's share, refused");
            if let Some(reply) = over_cap {
                tasks.spawn(refuse(stream, reply, limits.send_timeout()));
            }
            continue;
        };
        let stream = SendTimeout::new(stream, limits.send_timeout(), limits.counters());
        let conn = connection(stream, peer, shutdown.clone());
        let open = metrics.open();
        tasks.spawn(async move {
            let _held = (permit, slot, open);
            conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// Writes `reply` to a connection that is then closed.
async fn refuse(mut stream: tokio::net::TcpStream, reply: &'static [u8], limit: Duration) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(limit, async {
        let _ = stream.write_all(reply).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// `handle` behind the client's limits: a request over its client's rate
/// or with a body over the limit is refused, and one that takes too long
/// gets 408.
// Each argument is one handle the connection holds.
#[allow(clippy::too_many_arguments)]
async fn limited<B>(
    req: Request<B>,
    live: &Live,
    scheme: &Scheme,
    limits: &ClientLimits,
    metrics: &HttpMetrics,
    locator: &Locator,
    proxy: &Proxy,
    peer: SocketAddr,
) -> Response<Body>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let method = MethodClass::of(req.method());
    let logged = metrics.access_log.sample().then(|| Pending::of(&req));
    let (mut resp, domain) = match limits.refusal(&req, peer) {
        Some(refused) => (refused, None),
        None => {
            let mut domain = None;
            let resp = limits
                .in_time(handle(
                    req,
                    live,
                    scheme,
                    metrics,
                    locator,
                    proxy,
                    &mut domain,
                    peer,
                ))
                .await;
            (resp, domain)
        }
    };
    resp.headers_mut().insert(SERVER, SERVER_NAME);
    let bytes = if method.is_head() {
        0
    } else {
        resp.body().size_hint().exact().unwrap_or(0)
    };
    let took = started.elapsed();
    metrics.request(domain.as_deref(), method, resp.status(), bytes, took);
    if let Some(logged) = logged {
        let revision = resp.headers().get(REVISION_HEADER).cloned();
        metrics.access_log.write(logged.finish(
            peer.ip(),
            resp.status().as_u16(),
            bytes,
            took,
            revision,
        ));
    }
    resp
}

/// Routes one request by `Host` and stamps the server headers; `domain`
/// gets the counters of the site that answered.
// Each argument is one handle the connection holds.
#[allow(clippy::too_many_arguments)]
async fn handle<B>(
    req: Request<B>,
    live: &Live,
    scheme: &Scheme,
    metrics: &HttpMetrics,
    locator: &Locator,
    proxy: &Proxy,
    domain: &mut Option<Arc<DomainHttp>>,
    peer: SocketAddr,
) -> Response<Body>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    // HTTP/2 carries the host in the URI (`:authority`), HTTP/1.1 in `Host`.
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    let name = host_name(host).to_ascii_lowercase();
    if let Scheme::Http(Some(redirect)) = scheme
        && redirect.certs.load().trusted(&name)
        && !req.uri().path().starts_with(ACME_HTTP_PATH)
    {
        return to_https(&req, &name, redirect.port);
    }
    let snapshot = live.sites.load();
    // A permalink host serves its kept revision, unpinned and unindexed.
    let permalink = snapshot.permalink(host);
    let found = match permalink {
        Some(kept) => kept,
        None => snapshot.for_host(host),
    };
    let permalink = permalink.flatten();
    // Previews and permalinks show what production does not (yet, or any
    // more): unindexed, and behind the domain's preview password if set.
    let unreleased = match (permalink, found) {
        (Some(kept), _) => Some(kept.domain.as_str()),
        (None, Some(site)) => preview_domain(&site.domain),
        (None, None) => None,
    };
    let mut granted = None;
    // Whether the request passed a preview password check, and how.
    let mut admitted = None;
    let mut guarded = false;
    if let Some(domain) = unreleased
        && let Some(guard) = live.guards.get(domain)
        && !req.uri().path().starts_with(ACME_HTTP_PATH)
    {
        guarded = true;
        let https = matches!(scheme, Scheme::Https(_));
        match preview_auth::admit(
            &guard,
            &name,
            req.headers(),
            live.guards.check_slots(),
            https,
        )
        .await
        {
            Admission::Cookie => admitted = Some(false),
            Admission::Password(cookie) => {
                granted = Some(cookie);
                admitted = Some(true);
            }
            Admission::Refused(mut resp) => {
                resp.headers_mut()
                    .insert(X_ROBOTS_TAG, HeaderValue::from_static("noindex"));
                resp.headers_mut().insert(SERVER, SERVER_NAME);
                return resp;
            }
        }
    }
    let mut resp = match found {
        Some(live) => {
            let pinned = match (permalink, unreleased) {
                (None, None) => super::skew::pinned(&snapshot, live, req.headers()),
                _ => None,
            };
            let site = pinned.unwrap_or(live);
            *domain = Some(metrics.domains.get(&site.domain));
            let mut resp = match site.function(req.uri().path()) {
                Some(function) => super::function::respond(req, function, metrics).await,
                None => {
                    let routed = {
                        let headers = req.headers();
                        let country = || locator.country(peer, headers);
                        let visitor = Visitor {
                            host: &name,
                            accept_language: req
                                .headers()
                                .get(ACCEPT_LANGUAGE)
                                .and_then(|v| v.to_str().ok()),
                            country: &country,
                        };
                        pipeline::site_response(&req, site, &visitor).await
                    };
                    match routed {
                        Routed::Answer(resp) => resp,
                        Routed::Proxy { url, path } => {
                            let mut req = req;
                            if let Some(by_password) = admitted {
                                preview_auth::strip_credentials(req.headers_mut(), by_password);
                            }
                            // As asked, port included (HTTP/2's authority too).
                            let asked_host = req
                                .headers()
                                .get(HOST)
                                .and_then(|h| h.to_str().ok())
                                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                                .unwrap_or("")
                                .to_owned();
                            let asker = Asker {
                                peer: peer.ip(),
                                proto: match scheme {
                                    Scheme::Http(_) => "http",
                                    Scheme::Https(_) => "https",
                                },
                                host: (!asked_host.is_empty()).then_some(asked_host.as_str()),
                            };
                            let mut resp = proxy.forward(req, &url, asker, metrics).await;
                            pipeline::proxied_headers(&mut resp, site, &path, &name);
                            resp
                        }
                    }
                }
            };
            resp.headers_mut()
                .insert(REVISION_HEADER, site.revision_header.clone());
            if unreleased.is_some() {
                resp.headers_mut()
                    .insert(X_ROBOTS_TAG, HeaderValue::from_static("noindex"));
            }
            if let Some(cookie) = granted {
                resp.headers_mut().append(hyper::header::SET_COOKIE, cookie);
            }
            if guarded {
                preview_auth::keep_private(resp.headers_mut());
            }
            // A page from the live revision pins its visitor to it.
            if pinned.is_none()
                && permalink.is_none()
                && resp.status() == StatusCode::OK
                && resp
                    .headers()
                    .get(hyper::header::CONTENT_TYPE)
                    .is_some_and(|t| t.as_bytes().starts_with(b"text/html"))
                && let Some(cookie) = super::skew::cookie(site)
            {
                resp.headers_mut().append(hyper::header::SET_COOKIE, cookie);
            }
            if let Scheme::Https(certs) = scheme
                && let Some(max_age) = site.config.hsts_max_age
                && certs.load().trusted(&name)
                && let Ok(value) = HeaderValue::from_str(&format!("max-age={max_age}"))
            {
                resp.headers_mut().insert(STRICT_TRANSPORT_SECURITY, value);
            }
            resp
        }
        None => pipeline::unknown_host(host),
    };
    resp.headers_mut().insert(SERVER, SERVER_NAME);
    resp
}

/// A 308 to the same path and query on HTTPS.
fn to_https<B>(req: &Request<B>, name: &str, port: u16) -> Response<Body> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = if port == 443 {
        format!("https://{name}{path}")
    } else {
        format!("https://{name}:{port}{path}")
    };
    let mut resp = Response::new(Body::full(Bytes::new()));
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(value) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, value);
    }
    resp.headers_mut().insert(SERVER, SERVER_NAME);
    resp
}

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen for HTTP on {addr}: {e}"))
    })
}
