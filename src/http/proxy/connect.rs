//! The proxy's connector: the SSRF guard between a proxy rule and the
//! network behind the node.
//!
//! The node resolves the backend's name itself, refuses the name if any
//! address it resolves to is neither public (`net::address`) nor inside
//! `[proxy] allow_private`, and connects to an address it checked, so a
//! DNS answer cannot change between the check and the connect. The pooled
//! client calls this only for a new connection; a pooled one was checked
//! when it was made.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper::http::uri::Scheme;
use hyper_util::rt::TokioIo;
use ipnetwork::IpNetwork;
use tokio::net::TcpStream;

use crate::net::is_public;

/// Why no connection to a backend was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the target URL has no host")]
    NoHost,
    #[error("{host} resolves to {address}, which is not a public address")]
    Refused { host: String, address: IpAddr },
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("cannot connect to {host} ({address}): {source}")]
    Connect {
        host: String,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("no connection to {host} within {0:?}", .limit)]
    Timeout { host: String, limit: Duration },
}

/// Connects to backends at checked addresses (a `tower` service, as
/// hyper-util's pooled client and hyper-rustls expect).
#[derive(Clone)]
pub struct CheckedConnector {
    /// `[proxy] allow_private`.
    allow: Arc<[IpNetwork]>,
    /// `[proxy] connect_timeout_secs`, resolving included.
    limit: Duration,
}

impl CheckedConnector {
    pub fn new(allow: &[IpNetwork], limit: Duration) -> CheckedConnector {
        CheckedConnector {
            allow: allow.into(),
            limit,
        }
    }
}

impl tower_service::Service<Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let allow = self.allow.clone();
        let limit = self.limit;
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or(ConnectError::NoHost)?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let default_port = if uri.scheme() == Some(&Scheme::HTTPS) {
                443
            } else {
                80
            };
            let port = uri.port_u16().unwrap_or(default_port);
            let connect = connect(&host, port, &allow);
            match tokio::time::timeout(limit, connect).await {
                Ok(result) => result.map(TokioIo::new),
                Err(_) => Err(ConnectError::Timeout { host, limit }),
            }
        })
    }
}

/// Resolves `host`, checks every address, and connects to the first that
/// answers.
async fn connect(host: &str, port: u16, allow: &[IpNetwork]) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|source| ConnectError::Resolve {
                host: host.to_owned(),
                source,
            })?
            .collect(),
    };
    // One forbidden answer refuses the name: a name pointing inside the
    // node's network is an attempt, not an accident.
    if let Some(bad) = addrs.iter().find(|a| !permitted(a.ip(), allow)) {
        return Err(ConnectError::Refused {
            host: host.to_owned(),
            address: bad.ip(),
        });
    }
    let mut last = None;
    for address in addrs {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(source) => {
                last = Some(ConnectError::Connect {
                    host: host.to_owned(),
                    address,
                    source,
                })
            }
        }
    }
    Err(last.unwrap_or_else(|| ConnectError::NoAddress {
        host: host.to_owned(),
    }))
}

/// Whether a backend may be at `ip`: public, or inside a network the
/// operator allowed.
pub fn permitted(ip: IpAddr, allow: &[IpNetwork]) -> bool {
    let canonical = ip.to_canonical();
    is_public(ip)
        || allow
            .iter()
            .any(|n| n.contains(canonical) || n.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_need_an_allowed_network() {
        let none: [IpNetwork; 0] = [];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(permitted(ip("1.1.1.1"), &none));
        assert!(!permitted(ip("127.0.0.1"), &none));
        assert!(!permitted(ip("169.254.169.254"), &none));
        let loopback: [IpNetwork; 1] = ["127.0.0.0/8".parse().unwrap()];
        assert!(permitted(ip("127.0.0.1"), &loopback));
        assert!(permitted(ip("::ffff:127.0.0.1"), &loopback));
        assert!(!permitted(ip("10.0.0.1"), &loopback));
        assert!(!permitted(ip("::1"), &loopback));
    }

    #[tokio::test]
    async fn a_refused_address_is_never_connected_to() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = connect("127.0.0.1", port, &[]).await.unwrap_err();
        assert!(matches!(err, ConnectError::Refused { .. }), "{err}");
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "the refused backend saw a connection");
        let allowed: [IpNetwork; 1] = ["127.0.0.1/32".parse().unwrap()];
        assert!(connect("127.0.0.1", port, &allowed).await.is_ok());
    }
}
