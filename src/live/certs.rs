//! The certificate snapshot: the certificates this node serves (an
//! immutable snapshot swapped whole when certificates change), the SNI
//! resolver over it, the session ticket keys beside it (`tickets.rs`), and
//! the rustls server config HTTPS and DNS over TLS build on them (each
//! with its own ALPN).
//!
//! A handshake never touches the store: it reads the snapshot the acme
//! module published.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::tickets::TicketKeys;

/// One servable certificate and the names it covers.
#[derive(Clone)]
pub struct CertEntry {
    /// Names as in the certificate: `example.com`, `*.preview.example.com`.
    pub names: Vec<String>,
    pub key: Arc<CertifiedKey>,
    /// Issued by a CA (not self-signed): only then does port 80 redirect
    /// and HSTS go out, since visitors' browsers would refuse the rest.
    pub trusted: bool,
}

/// The certificates served, indexed by exact name and by wildcard parent.
#[derive(Default)]
pub struct CertSnapshot {
    exact: HashMap<String, Arc<CertEntry>>,
    /// `preview.example.com` for `*.preview.example.com`.
    wildcard: HashMap<String, Arc<CertEntry>>,
    /// For clients that send no SNI (e.g. DNS over TLS by address): the
    /// first certificate published.
    default: Option<Arc<CertEntry>>,
}

impl CertSnapshot {
    /// Indexes `entries`; an earlier entry wins a name claimed twice.
    pub fn new(entries: Vec<CertEntry>) -> CertSnapshot {
        let mut snapshot = CertSnapshot::default();
        for entry in entries {
            let entry = Arc::new(entry);
            snapshot.default.get_or_insert_with(|| entry.clone());
            for name in &entry.names {
                let name = name.to_ascii_lowercase();
                match name.strip_prefix("*.") {
                    Some(parent) => {
                        snapshot
                            .wildcard
                            .entry(parent.to_string())
                            .or_insert_with(|| entry.clone());
                    }
                    None => {
                        snapshot.exact.entry(name).or_insert_with(|| entry.clone());
                    }
                }
            }
        }
        snapshot
    }

    /// The certificate for `host` (a bare name, lowercase), if any.
    pub fn for_host(&self, host: &str) -> Option<&Arc<CertEntry>> {
        self.exact.get(host).or_else(|| {
            let (label, parent) = host.split_once('.')?;
            if label.is_empty() {
                return None;
            }
            self.wildcard.get(parent)
        })
    }

    /// Whether `host` has a CA-issued certificate.
    pub fn trusted(&self, host: &str) -> bool {
        self.for_host(host).is_some_and(|e| e.trusted)
    }

    /// Whether any certificate is loaded.
    pub fn is_empty(&self) -> bool {
        self.default.is_none()
    }
}

/// The live certificate snapshot and session ticket keys.
#[derive(Default)]
pub struct CertTable {
    current: ArcSwap<CertSnapshot>,
    /// Seals and opens session tickets for every TLS listener; published
    /// by the acme lifecycle from the store.
    tickets: Arc<TicketKeys>,
}

impl std::fmt::Debug for CertTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertTable").finish_non_exhaustive()
    }
}

impl CertTable {
    /// An empty table: every handshake fails until certificates arrive.
    pub fn new() -> CertTable {
        CertTable::default()
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<CertSnapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot; handshakes in progress keep the old one.
    pub fn publish(&self, snapshot: CertSnapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// The session ticket keys.
    pub fn tickets(&self) -> &Arc<TicketKeys> {
        &self.tickets
    }
}

/// Picks the certificate by SNI from the current snapshot.
#[derive(Debug)]
pub struct CertResolver {
    table: Arc<CertTable>,
}

impl CertResolver {
    /// A resolver over `table`.
    pub fn new(table: Arc<CertTable>) -> CertResolver {
        CertResolver { table }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let snapshot = self.table.load();
        let entry = match hello.server_name() {
            Some(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                snapshot.for_host(&name).or(snapshot.default.as_ref())
            }
            None => snapshot.default.as_ref(),
        };
        entry.map(|e| e.key.clone())
    }
}

/// A rustls server config that picks certificates by SNI from `table`,
/// resumes sessions with tickets sealed by `table`'s ticket keys, and
/// offers `alpn` (the listener's protocols, most preferred first).
pub fn server_config(
    table: Arc<CertTable>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(CertResolver::new(table.clone())));
    config.ticketer = table.tickets.clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(names: &[&str], trusted: bool) -> CertEntry {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let parsed =
            crate::acme::certificate::self_signed(&names).unwrap_or_else(|e| panic!("{e}"));
        CertEntry {
            names,
            key: parsed.key,
            trusted,
        }
    }

    #[test]
    fn hosts_find_exact_and_wildcard_certificates() {
        let snap = CertSnapshot::new(vec![
            entry(&["example.com", "*.preview.example.com"], true),
            entry(&["other.org"], false),
        ]);
        assert!(snap.trusted("example.com"));
        assert!(snap.trusted("feature.preview.example.com"));
        assert!(!snap.trusted("a.b.preview.example.com"));
        assert!(!snap.trusted("preview.example.com"));
        assert!(snap.for_host("other.org").is_some());
        assert!(!snap.trusted("other.org"));
        assert!(snap.for_host("nothing.test").is_none());
        assert!(!snap.is_empty());
    }
}
