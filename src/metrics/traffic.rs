//! A node's recent traffic as one message: per served domain, the
//! per-minute totals `recent.rs` keeps. It is what a node answers when a
//! peer gathers the cluster's traffic for `stats`, and what `stats` sums.

use serde::{Deserialize, Serialize};

use super::http::HttpMetrics;
use super::recent::{MINUTES, Minute, now_minute};
use super::registry::OVERFLOW;

/// One node's traffic over its last minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTraffic {
    pub node: String,
    /// The node's current Unix minute (the newest minute listed).
    pub minute: u64,
    /// Domains with requests in the minutes kept; requests for no served
    /// site are under `_other`.
    pub domains: Vec<DomainTraffic>,
}

/// One domain's minutes, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainTraffic {
    pub domain: String,
    pub minutes: Vec<Minute>,
}

/// Totals over some minutes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub requests: u64,
    pub bytes: u64,
    /// Responses with a 5xx status.
    pub errors: u64,
}

impl Totals {
    /// Adds `other` in.
    pub fn add(&mut self, other: Totals) {
        self.requests += other.requests;
        self.bytes += other.bytes;
        self.errors += other.errors;
    }

    /// Server errors per request, 0 without requests.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

impl DomainTraffic {
    /// The totals of the `minutes` newest minutes up to `now`.
    pub fn last(&self, now: u64, minutes: u64) -> Totals {
        let mut totals = Totals::default();
        for m in &self.minutes {
            if m.minute <= now && m.minute + minutes > now {
                totals.add(Totals {
                    requests: m.requests,
                    bytes: m.bytes,
                    errors: m.errors,
                });
            }
        }
        totals
    }
}

/// This node's traffic now.
pub fn node_traffic(node: &str, http: &HttpMetrics) -> NodeTraffic {
    let minute = now_minute();
    let domains = http
        .domains
        .all()
        .into_iter()
        .map(|(domain, set)| DomainTraffic {
            minutes: set.recent.last(minute, MINUTES),
            domain: if domain == OVERFLOW {
                OVERFLOW.to_string()
            } else {
                domain
            },
        })
        .filter(|d| d.minutes.iter().any(|m| m.requests > 0))
        .collect();
    NodeTraffic {
        node: node.to_string(),
        minute,
        domains,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hyper::{Method, StatusCode};

    use super::*;
    use crate::metrics::http::MethodClass;

    #[test]
    fn a_node_lists_domains_with_requests_and_sums_them() {
        let http = HttpMetrics::default();
        let quiet = http.domains.get("quiet.example");
        let busy = http.domains.get("busy.example");
        let get = MethodClass::of(&Method::GET);
        let ms = Duration::from_millis(1);
        http.request(Some(&busy), get, StatusCode::OK, 100, ms);
        http.request(Some(&busy), get, StatusCode::BAD_GATEWAY, 10, ms);
        http.request(None, get, StatusCode::NOT_FOUND, 5, ms);
        drop(quiet);
        let view = node_traffic("london", &http);
        let names: Vec<&str> = view.domains.iter().map(|d| d.domain.as_str()).collect();
        assert_eq!(names, ["busy.example", "_other"]);
        let busy = view.domains[0].last(view.minute, 5);
        assert_eq!(
            busy,
            Totals {
                requests: 2,
                bytes: 110,
                errors: 1
            }
        );
        assert!((busy.error_rate() - 0.5).abs() < 1e-9);
        // Minutes before the window do not count.
        let mut old = view.domains[0].clone();
        for m in &mut old.minutes {
            m.minute -= 10;
        }
        assert_eq!(old.last(view.minute, 5), Totals::default());
    }
}
