//! HTTP counters: requests by domain, method class and status class, bytes
//! sent, latency, open connections, TLS handshakes and edge-function
//! outcomes. Every record is a few relaxed atomic adds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use hyper::{Method, StatusCode};

use super::histogram::Histogram;
use super::recent::Recent;
use super::registry::Registry;

/// Method classes, the `method` label.
pub const METHODS: [&str; 4] = ["get", "head", "post", "other"];
/// Status classes, the `status` label.
pub const STATUSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One domain's counters.
#[derive(Default)]
pub struct DomainHttp {
    requests: [[AtomicU64; STATUSES.len()]; METHODS.len()],
    bytes: AtomicU64,
    /// Per-minute totals of the last minutes, for `maki stats`.
    pub recent: Recent,
}

/// The node's HTTP counters.
#[derive(Default)]
pub struct HttpMetrics {
    /// By the served site's domain; requests for no site count as `_other`.
    pub domains: Registry<DomainHttp>,
    pub latency: Histogram,
    open_connections: AtomicI64,
    pub tls_handshakes: AtomicU64,
    pub tls_failures: AtomicU64,
    pub function_calls: AtomicU64,
    pub function_traps: AtomicU64,
    pub function_timeouts: AtomicU64,
    /// Requests a proxy rule forwarded to its backend.
    pub proxy_requests: AtomicU64,
    /// Of those, the ones the node answered itself because the backend was
    /// refused, unreachable, too slow or failed (502, 504).
    pub proxy_failures: AtomicU64,
    /// One line per request (or per sampled request), when on.
    pub access_log: super::AccessLog,
}

/// Holds one open connection in the gauge until dropped.
pub struct OpenConnection(Arc<HttpMetrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HttpMetrics {
    /// Fresh counters whose requests also go to `access_log`.
    pub fn with_access_log(access_log: super::AccessLog) -> HttpMetrics {
        HttpMetrics {
            access_log,
            ..HttpMetrics::default()
        }
    }

    /// Counts one answered request of `domain` (`None`: no site).
    pub fn request(
        &self,
        domain: Option<&DomainHttp>,
        method: MethodClass,
        status: StatusCode,
        bytes: u64,
        took: Duration,
    ) {
        let domain = domain.unwrap_or_else(|| self.domains.overflow());
        let s = status_class(status);
        domain.requests[method.0][s].fetch_add(1, Ordering::Relaxed);
        domain.bytes.fetch_add(bytes, Ordering::Relaxed);
        domain.recent.record(bytes, s == 4);
        self.latency.record(took);
    }

    /// Counts a connection as open until the guard drops.
    pub fn open(self: &Arc<Self>) -> OpenConnection {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Ordering::Relaxed)
    }
}

impl DomainHttp {
    /// Requests by method class then status class.
    pub fn requests(&self) -> [[u64; STATUSES.len()]; METHODS.len()] {
        let mut out = [[0; STATUSES.len()]; METHODS.len()];
        for (m, row) in self.requests.iter().enumerate() {
            for (s, cell) in row.iter().enumerate() {
                out[m][s] = cell.load(Ordering::Relaxed);
            }
        }
        out
    }

    /// Response body bytes sent.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// A request method's class, taken before the request moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodClass(usize);

impl MethodClass {
    /// The class of `method`.
    pub fn of(method: &Method) -> MethodClass {
        MethodClass(match *method {
            Method::GET => 0,
            Method::HEAD => 1,
            Method::POST => 2,
            _ => 3,
        })
    }

    /// Whether the method is HEAD (whose body is never sent).
    pub fn is_head(self) -> bool {
        self.0 == 1
    }
}

fn status_class(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100)
        .saturating_sub(1)
        .min(STATUSES.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_classes() {
        let m = HttpMetrics::default();
        let d = m.domains.get("a.example");
        let ms = Duration::from_millis(1);
        m.request(
            Some(&d),
            MethodClass::of(&Method::GET),
            StatusCode::OK,
            10,
            ms,
        );
        m.request(
            Some(&d),
            MethodClass::of(&Method::HEAD),
            StatusCode::NOT_FOUND,
            0,
            ms,
        );
        m.request(
            Some(&d),
            MethodClass::of(&Method::PUT),
            StatusCode::BAD_GATEWAY,
            3,
            ms,
        );
        m.request(
            None,
            MethodClass::of(&Method::GET),
            StatusCode::NOT_FOUND,
            5,
            ms,
        );
        let r = d.requests();
        assert_eq!(r[0][1], 1);
        assert_eq!(r[1][3], 1);
        assert_eq!(r[3][4], 1);
        assert_eq!(d.bytes(), 13);
        assert_eq!(m.domains.overflow().requests()[0][3], 1);
        assert_eq!(m.latency.view().count, 4);
    }
}
