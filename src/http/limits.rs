//! Per-client limits of the HTTP and HTTPS listeners: connections held per
//! client address, a request rate per client (429 with `retry-after`
//! past it), a body-size limit from `content-length` (413), and a time
//! limit on producing a response (408). Every refusal is counted for
//! `status`. Clients are keyed by address, IPv6 by its /64 (one host).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};

use super::body::Body;
use crate::config::HttpLimits;
use crate::limits::{Buckets, ConnectionGuard, Connections, Counters, Limited, Taken, client_key};

/// IPv6 clients are keyed by their /64: one host usually holds all of it.
const V6_CLIENT_PREFIX: u8 = 64;

/// What a plain HTTP client over its connection cap reads before the
/// connection closes.
pub const OVER_CONNECTIONS: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 53\r\nretry-after: 1\r\nconnection: close\r\n\r\ntoo many connections from your address; retry later\r\n";

/// One listener's client limits.
pub struct ClientLimits {
    pub settings: HttpLimits,
    connections: Arc<Connections>,
    requests: Buckets,
    counters: Arc<Counters>,
}

impl ClientLimits {
    pub fn new(settings: HttpLimits, counters: Arc<Counters>) -> Arc<ClientLimits> {
        Arc::new(ClientLimits {
            connections: Connections::new(settings.connections_per_client),
            requests: Buckets::new(settings.requests_per_second, settings.request_burst),
            settings,
            counters,
        })
    }

    /// A connection slot for `peer`, or `None` (counted) when it holds its
    /// share already.
    pub fn admit(&self, peer: SocketAddr) -> Option<ConnectionGuard> {
        if self.exempt(peer) {
            return Some(ConnectionGuard::unlimited());
        }
        let slot = self.connections.open(key(peer));
        if slot.is_none() {
            self.counters.count(Limited::HttpConnections);
        }
        slot
    }

    /// The refusal `req` from `peer` earns before it is served, if any.
    pub fn refusal<B>(&self, req: &Request<B>, peer: SocketAddr) -> Option<Response<Body>> {
        let rate = if self.exempt(peer) {
            None
        } else {
            Some(self.requests.take(key(peer), Instant::now()))
        };
        if let Some(Taken::Refused { .. }) = rate {
            self.counters.count(Limited::HttpRate);
            let mut resp = text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from your address; retry later\n",
            );
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Some(resp);
        }
        let length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|l| l > self.settings.max_body_bytes) {
            self.counters.count(Limited::HttpBodyTooLarge);
            let mut resp = text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "request body over this server's {}-byte limit\n",
                    self.settings.max_body_bytes
                ),
            );
            // The unread body would otherwise have to be drained.
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return Some(resp);
        }
        None
    }

    /// Whether `peer` is on the whitelist, out of the connection share and
    /// the request rate.
    fn exempt(&self, peer: SocketAddr) -> bool {
        let ip = peer.ip().to_canonical();
        self.settings.whitelist.iter().any(|net| net.contains(ip))
    }

    /// `respond` bounded by the request time limit: 408 when it runs over.
    pub async fn in_time(&self, respond: impl Future<Output = Response<Body>>) -> Response<Body> {
        let limit = Duration::from_secs(self.settings.request_timeout_secs);
        match tokio::time::timeout(limit, respond).await {
            Ok(resp) => resp,
            Err(_) => {
                self.counters.count(Limited::HttpTimeout);
                let mut resp = text(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request took too long; send it again\n",
                );
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                resp
            }
        }
    }

    /// How long a write may wait for a client that reads nothing.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.send_timeout_secs)
    }

    /// Where refusals are counted.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }
}

fn key(peer: SocketAddr) -> u128 {
    client_key(peer.ip(), 32, V6_CLIENT_PREFIX)
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let mut resp = Response::new(Body::full(Bytes::from(message.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canned_429_has_the_length_it_claims() {
        let text = std::str::from_utf8(OVER_CONNECTIONS).unwrap_or("");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", ""));
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }

    #[test]
    fn a_flooding_client_gets_429_and_another_does_not() {
        let settings = HttpLimits {
            requests_per_second: 1,
            request_burst: 2,
            ..HttpLimits::default()
        };
        let limits = ClientLimits::new(settings, Arc::new(Counters::default()));
        let req = Request::new(());
        let a: SocketAddr = "198.51.100.1:1000"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let b: SocketAddr = "198.51.100.2:1000"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(limits.refusal(&req, a).is_none());
        assert!(limits.refusal(&req, a).is_none());
        let refused = limits.refusal(&req, a).map(|r| r.status());
        assert_eq!(refused, Some(StatusCode::TOO_MANY_REQUESTS));
        assert!(limits.refusal(&req, b).is_none());
        assert_eq!(limits.counters.view().http_rate, 1);
    }

    #[test]
    fn loopback_is_out_of_the_rate_and_share_by_default_but_not_the_body_limit() {
        let settings = HttpLimits {
            requests_per_second: 1,
            request_burst: 1,
            connections_per_client: 1,
            max_body_bytes: 10,
            ..HttpLimits::default()
        };
        let limits = ClientLimits::new(settings, Arc::new(Counters::default()));
        let req = Request::new(());
        for peer in [
            "127.0.0.1:1",
            "127.9.9.9:1",
            "[::1]:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            let peer: SocketAddr = peer.parse().unwrap_or_else(|e| panic!("{e}"));
            for _ in 0..100 {
                assert!(limits.refusal(&req, peer).is_none(), "{peer}");
            }
            let held: Vec<_> = (0..10).map(|_| limits.admit(peer)).collect();
            assert!(held.iter().all(Option::is_some), "{peer}");
        }
        let big = Request::builder()
            .header(CONTENT_LENGTH, "11")
            .body(())
            .unwrap_or_else(|e| panic!("{e}"));
        let local: SocketAddr = "127.0.0.1:1".parse().unwrap_or_else(|e| panic!("{e}"));
        let status = limits.refusal(&big, local).map(|r| r.status());
        assert_eq!(status, Some(StatusCode::PAYLOAD_TOO_LARGE));

        let remote: SocketAddr = "198.51.100.1:1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(limits.refusal(&req, remote).is_none());
        assert!(limits.refusal(&req, remote).is_some());
        let first = limits.admit(remote);
        assert!(first.is_some() && limits.admit(remote).is_none());
    }

    #[test]
    fn a_declared_body_over_the_limit_gets_413() {
        let settings = HttpLimits {
            max_body_bytes: 10,
            ..HttpLimits::default()
        };
        let limits = ClientLimits::new(settings, Arc::new(Counters::default()));
        let req = Request::builder()
            .header(CONTENT_LENGTH, "11")
            .body(())
            .unwrap_or_else(|e| panic!("{e}"));
        let peer: SocketAddr = "198.51.100.1:1".parse().unwrap_or_else(|e| panic!("{e}"));
        let status = limits.refusal(&req, peer).map(|r| r.status());
        assert_eq!(status, Some(StatusCode::PAYLOAD_TOO_LARGE));
    }
}
