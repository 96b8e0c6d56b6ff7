//! Certificates without anyone asking: ACME (RFC 8555) DNS-01 answered by
//! our own authoritative DNS, so wildcard `*.preview.<domain>` certificates
//! work and validation does not depend on which node a validator reaches.
//!
//! One node orders per domain (`issuer.rs`, a pure function of the node
//! table, health and the order row); the certificate, its key and the
//! account are replicated rows (`store/certs.rs`), so every node serves the
//! same certificate from its own snapshot (`live::CertTable`).
//!
//! - `lifecycle.rs`: the loop: publish certificates, order when a domain
//!   appears or a certificate is due, back off after failures
//! - `order.rs`: one order through DNS-01, resumed by whichever node
//!   holds it
//! - `account.rs`: the account per CA directory
//! - `propagation.rs`: waits until every healthy node's DNS answers a
//!   challenge
//! - `schedule.rs`: names, renewal time, backoff
//! - `renewal_info.rs`: the CA's suggested renewal window (ARI), when
//!   offered
//! - `issuer.rs`: which node orders
//! - `certificate.rs`: PEM → rustls key; the dev self-signed certificate
//! - `status.rs`: what `status` says about certificates
//! - `tickets.rs`: TLS session ticket keys, rotated in the store and
//!   published beside the certificates

pub mod account;
pub mod certificate;
pub mod issuer;
pub mod lifecycle;
pub mod order;
pub mod propagation;
pub mod renewal_info;
pub mod schedule;
pub mod status;
pub mod tickets;

use std::path::PathBuf;

use tokio::task::JoinSet;

use crate::config::NodeConfig;
use crate::services::Services;
use crate::shutdown::Shutdown;
use crate::store::StoreError;

/// The running certificate lifecycle.
pub struct Acme {
    /// The lifecycle's task; it ends on shutdown.
    pub tasks: JoinSet<()>,
}

/// Starts the certificate lifecycle of this node (see `lifecycle.rs`):
/// it publishes the live certificate snapshot and orders what this node
/// must order, until `shutdown`.
pub fn start(config: &NodeConfig, services: &Services, shutdown: Shutdown) -> Acme {
    // Before the listeners' first handshake, so every ticket they hand out
    // is sealed by a stored key (and opens after a restart, and on the
    // other nodes).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if let Err(e) = tickets::keep(&services.store, services.live.certs.tickets(), now_ms) {
        tracing::error!(error = %e, "no TLS session ticket keys yet; sessions resume only on this node until the next try");
    }
    let lifecycle = lifecycle::Lifecycle {
        store: services.store.clone(),
        sites: services.live.sites.clone(),
        certs: services.live.certs.clone(),
        acme: config.acme_settings(),
        node: config.place.name.clone(),
        dns: services.listeners.dns,
        metrics: services.metrics.clone(),
    };
    let mut tasks = JoinSet::new();
    tasks.spawn(lifecycle.run(shutdown));
    Acme { tasks }
}

/// Why an order (or the account behind it) failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("ACME CA {directory} failed while {doing}: {source}")]
    Ca {
        directory: String,
        doing: &'static str,
        source: instant_acme::Error,
        /// The CA said we hit a rate limit.
        rate_limited: bool,
    },
    #[error("ACME CA {directory} rejected the order: {message}")]
    Rejected { directory: String, message: String },
    #[error(
        "cannot use the CA root {path}: {source}; fix [acme] ca_root in node.toml (a PEM certificate)"
    )]
    CaRoot {
        path: PathBuf,
        source: instant_acme::Error,
    },
    #[error("cannot store the ACME account: {0}")]
    Credentials(#[source] serde_json::Error),
    #[error("the CA offers no DNS-01 challenge for {name}")]
    NoDns01 { name: String },
    #[error("the CA's authorization for {name} is {status}")]
    Authorization { name: String, status: String },
    #[error(
        "the challenge at {name} was not answered in time by the DNS of {}; check their DNS listeners and that the mesh reaches them",
        lagging.join(", ")
    )]
    NotPublished { name: String, lagging: Vec<String> },
    #[error("cannot make the certificate request: {0}")]
    Csr(#[source] rcgen::Error),
    #[error("cannot make the certificate request: the order was finalised with an unknown key")]
    UnknownKey,
    #[error("cannot ask the CA about renewing {domain}: {message}")]
    RenewalInfo { domain: String, message: String },
    #[error("another node took over the order for {domain}")]
    TakenOver { domain: String },
    #[error("the CA's certificate cannot be served: {0}")]
    Certificate(#[from] certificate::CertError),
    #[error("the order took longer than {0:?}")]
    Timeout(std::time::Duration),
}

impl AcmeError {
    /// Wraps an ACME client error, noting rate limits.
    pub fn ca(directory: &str, doing: &'static str, e: instant_acme::Error) -> AcmeError {
        let rate_limited = matches!(&e, instant_acme::Error::Api(p)
            if p.r#type.as_deref().is_some_and(|t| t.ends_with(":rateLimited")));
        AcmeError::Ca {
            directory: directory.into(),
            doing,
            source: e,
            rate_limited,
        }
    }

    /// Whether the CA asked us to slow down.
    pub fn rate_limited(&self) -> bool {
        matches!(
            self,
            AcmeError::Ca {
                rate_limited: true,
                ..
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(kind: &str) -> instant_acme::Error {
        instant_acme::Error::Api(instant_acme::Problem {
            r#type: Some(kind.into()),
            detail: Some("too many certificates".into()),
            status: Some(429),
            subproblems: Vec::new(),
        })
    }

    #[test]
    fn a_lagging_node_is_named_with_the_fix() {
        let e = AcmeError::NotPublished {
            name: "_acme-challenge.example.com".into(),
            lagging: vec![
                "tokyo (192.0.2.2:53)".into(),
                "virginia (192.0.2.3:53)".into(),
            ],
        };
        assert_eq!(
            e.to_string(),
            "the challenge at _acme-challenge.example.com was not answered in time by the DNS of tokyo (192.0.2.2:53), virginia (192.0.2.3:53); check their DNS listeners and that the mesh reaches them"
        );
    }

    #[test]
    fn rate_limit_answers_are_recognised() {
        let limited = AcmeError::ca(
            "https://ca.test/dir",
            "placing the order",
            problem("urn:ietf:params:acme:error:rateLimited"),
        );
        assert!(limited.rate_limited());
        assert!(limited.to_string().starts_with(
            "ACME CA https://ca.test/dir failed while placing the order: API error: too many certificates"
        ));
        let rejected = AcmeError::ca(
            "https://ca.test/dir",
            "placing the order",
            problem("urn:ietf:params:acme:error:rejectedIdentifier"),
        );
        assert!(!rejected.rate_limited());
    }
}
