//! Outgoing `wasi:http` requests of functions, behind the SSRF guard.
//!
//! The host name is resolved here, every resolved address must be public
//! (`net/address.rs`), and the connection goes to the address that was checked,
//! so a DNS answer cannot change between the check and the connect. The
//! host never follows redirects itself: a guest that follows one sends a
//! new request, which is checked again. Plain `http://` only; TLS is not
//! offered to guests yet.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Uri;
use hyper::http::uri::Scheme;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::{debug, warn};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::net::address;

/// Connect and first-byte limit when the guest sets none; the call's own
/// timeout bounds everything anyway.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// A pending response with the future that drives its connection.
type Sent = Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ),
    HttpError,
>;

/// The `wasi:http` policy of one function call.
pub struct Outbound {
    /// Which function is calling, for the log.
    pub function: String,
}

impl WasiHttpHooks for Outbound {
    fn is_supported_scheme(&mut self, scheme: &Scheme) -> bool {
        *scheme == Scheme::HTTP
    }

    fn default_scheme(&mut self) -> Option<Scheme> {
        Some(Scheme::HTTP)
    }

    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let function = self.function.clone();
        Box::new(async move {
            let result = send(request, options).await;
            if let Err(e) = &result {
                debug!(function = %function, error = ?e, "outgoing request failed");
            }
            result
        })
    }
}

/// Resolves, checks, connects to a checked address, and sends.
async fn send(mut request: hyper::Request<WasiBody>, options: Option<RequestOptions>) -> Sent {
    let uri = request.uri().clone();
    let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let connect_wait = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(DEFAULT_WAIT);
    let reply_wait = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_WAIT);

    let addr = checked_address(host, port, connect_wait).await?;
    let stream = tokio::time::timeout(connect_wait, TcpStream::connect(addr))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Connect)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(HttpError::from)?;

    // The request line carries only the path: the authority is in `Host`.
    let origin_form = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = origin_form
        .parse::<Uri>()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let response = {
        let reply = tokio::time::timeout(reply_wait, sender.send_request(request));
        tokio::pin!(reply);
        loop {
            tokio::select! {
                reply = &mut reply => break reply,
                ended = &mut conn, if !conn_done => {
                    conn_done = true;
                    ended.map_err(HttpError::from)?;
                }
            }
        }
    };
    let response = response
        .map_err(|_| HttpError::ConnectionReadTimeout)?
        .map_err(HttpError::from)?;
    let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
    let driver: Box<dyn Future<Output = Result<(), HttpError>> + Send> = if conn_done {
        Box::new(std::future::ready(Ok(())))
    } else {
        Box::new(async move { conn.await.map_err(HttpError::from) })
    };
    Ok((response, driver))
}

/// The first address of `host` after checking that every address it
/// resolves to is public.
async fn checked_address(host: &str, port: u16, wait: Duration) -> Result<SocketAddr, HttpError> {
    let addrs: Vec<SocketAddr> = if let Ok(ip) = host.parse() {
        vec![SocketAddr::new(ip, port)]
    } else {
        let lookup = tokio::net::lookup_host((host, port));
        tokio::time::timeout(wait, lookup)
            .await
            .map_err(|_| HttpError::DnsTimeout)?
            .map_err(|_| HttpError::DestinationNotFound)?
            .collect()
    };
    if addrs.is_empty() {
        return Err(HttpError::DestinationNotFound);
    }
    // One non-public answer refuses the name: a name pointing inside the
    // node's network is an attempt, not an accident.
    if let Some(bad) = addrs.iter().find(|a| !address::is_public(a.ip())) {
        warn!(host, address = %bad.ip(), "outgoing request to a non-public address refused");
        return Err(HttpError::DestinationIpProhibited);
    }
    addrs.first().copied().ok_or(HttpError::DestinationNotFound)
}
