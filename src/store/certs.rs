//! Certificates, their private keys, ACME accounts and in-flight orders:
//! replicated rows, so every node serves the certificate one node ordered,
//! and any node can take over an order whose node went quiet.
//!
//! Keys are stored in the database, which is why `state.sqlite` is made
//! readable by this node's user only (`restrict_to_owner`).

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, query_err};

/// One certificate as stored: the chain and key in PEM, and what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRow {
    /// The domain (apex) it was ordered for.
    pub domain: String,
    /// Every name it covers, as ordered (`*.preview.example.com` included).
    pub names: Vec<String>,
    /// Leaf first, then intermediates.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8 PEM).
    pub key_pem: String,
    pub not_before_ms: u64,
    pub not_after_ms: u64,
    /// The ACME directory that issued it.
    pub directory: String,
    /// The node that ordered it.
    pub issued_by: String,
}

/// Who is ordering a domain's certificate, and how it went so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertOrder {
    pub domain: String,
    /// The node holding the order.
    pub node: String,
    /// When that node last showed progress: the start of its current
    /// attempt, or the time of its next retry after a failure. Another node
    /// takes over a timeout after this.
    pub since_ms: u64,
    /// Failed attempts in a row.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// How far the held order got at the CA: what a node taking it over needs
/// to finish it rather than start again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderProgress {
    /// The order's URL at the CA (under the replicated account).
    pub url: Option<String>,
    /// The certificate key (PKCS#8 PEM) sent for finalisation: the CA
    /// issues for this key, so whoever downloads the certificate needs it.
    pub key_pem: Option<String>,
    /// The step reached, for `status` (`placed`, `publishing`,
    /// `validating`, `finalising`, ...).
    pub stage: Option<String>,
}

impl Store {
    /// A receiver that changes whenever a certificate is written.
    pub fn subscribe_certs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.certs_version.subscribe()
    }

    /// Tells TLS listeners to reload; every writer of `certificates` rows
    /// (replication included) calls it.
    pub(super) fn certs_changed(&self) {
        self.certs_version.send_modify(|v| *v += 1);
    }

    /// Records `cert` as `cert.domain`'s certificate, replacing any older one.
    pub fn put_certificate(&self, cert: &CertRow) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO certificates (domain, names, chain_pem, key_pem, not_before_ms,
                   not_after_ms, directory, issued_by, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)
                 ON CONFLICT (domain) DO UPDATE SET
                   names = excluded.names, chain_pem = excluded.chain_pem,
                   key_pem = excluded.key_pem, not_before_ms = excluded.not_before_ms,
                   not_after_ms = excluded.not_after_ms, directory = excluded.directory,
                   issued_by = excluded.issued_by, hlc = excluded.hlc,
                   origin = excluded.origin, deleted = 0",
                params![
                    cert.domain,
                    cert.names.join(" "),
                    cert.chain_pem,
                    cert.key_pem,
                    cert.not_before_ms as i64,
                    cert.not_after_ms as i64,
                    cert.directory,
                    cert.issued_by,
                    hlc.0 as i64,
                    self.origin
                ],
            )
            .map_err(query_err("storing a certificate"))?;
        self.certs_changed();
        Ok(())
    }

    /// Every live certificate, by domain.
    pub fn certificates(&self) -> Result<Vec<CertRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT domain, names, chain_pem, key_pem, not_before_ms, not_after_ms,
                   directory, issued_by
                 FROM certificates WHERE deleted = 0 ORDER BY domain",
            )
            .map_err(query_err("listing certificates"))?;
        let rows = stmt
            .query_map([], |row| {
                let names: String = row.get(1)?;
                Ok(CertRow {
                    domain: row.get(0)?,
                    names: names.split_whitespace().map(str::to_string).collect(),
                    chain_pem: row.get(2)?,
                    key_pem: row.get(3)?,
                    not_before_ms: row.get::<_, i64>(4)?.max(0) as u64,
                    not_after_ms: row.get::<_, i64>(5)?.max(0) as u64,
                    directory: row.get(6)?,
                    issued_by: row.get(7)?,
                })
            })
            .map_err(query_err("listing certificates"))?;
        rows.collect::<Result<_, _>>()
            .map_err(query_err("listing certificates"))
    }

    /// The order held for `domain`, if any.
    pub fn cert_order(&self, domain: &str) -> Result<Option<CertOrder>, StoreError> {
        self.conn()
            .query_row(
                "SELECT domain, node, since_ms, attempts, last_error FROM cert_orders
                 WHERE domain = ?1 AND deleted = 0",
                params![domain],
                order_from_row,
            )
            .optional()
            .map_err(query_err("reading a certificate order"))
    }

    /// Every order held, by domain.
    pub fn cert_orders(&self) -> Result<Vec<CertOrder>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT domain, node, since_ms, attempts, last_error FROM cert_orders
                 WHERE deleted = 0 ORDER BY domain",
            )
            .map_err(query_err("listing certificate orders"))?;
        let rows = stmt
            .query_map([], order_from_row)
            .map_err(query_err("listing certificate orders"))?;
        rows.collect::<Result<_, _>>()
            .map_err(query_err("listing certificate orders"))
    }

    /// Claims (or updates this node's claim on) `order.domain`.
    pub fn put_cert_order(&self, order: &CertOrder) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO cert_orders (domain, node, since_ms, attempts, last_error, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
                 ON CONFLICT (domain) DO UPDATE SET
                   node = excluded.node, since_ms = excluded.since_ms,
                   attempts = excluded.attempts, last_error = excluded.last_error,
                   hlc = excluded.hlc, origin = excluded.origin, deleted = 0",
                params![
                    order.domain,
                    order.node,
                    order.since_ms as i64,
                    order.attempts,
                    order.last_error,
                    hlc.0 as i64,
                    self.origin
                ],
            )
            .map_err(query_err("recording a certificate order"))?;
        Ok(())
    }

    /// The progress of the order held for `domain` (empty when none).
    pub fn order_progress(&self, domain: &str) -> Result<OrderProgress, StoreError> {
        self.conn()
            .query_row(
                "SELECT order_url, key_pem, stage FROM cert_orders
                 WHERE domain = ?1 AND deleted = 0",
                params![domain],
                |row| {
                    Ok(OrderProgress {
                        url: row.get(0)?,
                        key_pem: row.get(1)?,
                        stage: row.get(2)?,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(query_err("reading a certificate order's progress"))
    }

    /// Records `progress` on `domain`'s order and marks it as progressing
    /// now (`since_ms`), if `node` still holds it; returns whether it does.
    pub fn record_order_progress(
        &self,
        domain: &str,
        node: &str,
        progress: &OrderProgress,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let hlc = self.clock.now();
        let changed = self
            .conn()
            .execute(
                "UPDATE cert_orders SET order_url = ?3, key_pem = ?4, stage = ?5,
                   since_ms = ?6, hlc = ?7, origin = ?8
                 WHERE domain = ?1 AND node = ?2 AND deleted = 0",
                params![
                    domain,
                    node,
                    progress.url,
                    progress.key_pem,
                    progress.stage,
                    now_ms as i64,
                    hlc.0 as i64,
                    self.origin
                ],
            )
            .map_err(query_err("recording a certificate order's progress"))?;
        Ok(changed > 0)
    }

    /// Marks `domain`'s order as alive at `now_ms` if `node` still holds
    /// it; returns whether it does (another node may have taken it over).
    pub fn touch_cert_order(
        &self,
        domain: &str,
        node: &str,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let hlc = self.clock.now();
        let changed = self
            .conn()
            .execute(
                "UPDATE cert_orders SET since_ms = ?3, hlc = ?4, origin = ?5
                 WHERE domain = ?1 AND node = ?2 AND deleted = 0",
                params![domain, node, now_ms as i64, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("marking a certificate order alive"))?;
        Ok(changed > 0)
    }

    /// Ends the order for `domain` (a tombstone, so it replicates; the
    /// order's key goes with it).
    pub fn finish_cert_order(&self, domain: &str) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "UPDATE cert_orders SET deleted = 1, hlc = ?2, origin = ?3,
                   order_url = NULL, key_pem = NULL, stage = NULL
                 WHERE domain = ?1 AND deleted = 0",
                params![domain, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("ending a certificate order"))?;
        Ok(())
    }

    /// The stored ACME account credentials (JSON) for `directory`.
    pub fn acme_account(&self, directory: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT credentials FROM acme_accounts WHERE directory = ?1 AND deleted = 0",
                params![directory],
                |row| row.get(0),
            )
            .optional()
            .map_err(query_err("reading the ACME account"))
    }

    /// Stores the account credentials (JSON, with its private key) for
    /// `directory`.
    pub fn put_acme_account(&self, directory: &str, credentials: &str) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO acme_accounts (directory, credentials, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, 0)
                 ON CONFLICT (directory) DO UPDATE SET
                   credentials = excluded.credentials, hlc = excluded.hlc,
                   origin = excluded.origin, deleted = 0",
                params![directory, credentials, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("storing the ACME account"))?;
        Ok(())
    }
}

fn order_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<CertOrder> {
    Ok(CertOrder {
        domain: row.get(0)?,
        node: row.get(1)?,
        since_ms: row.get::<_, i64>(2)?.max(0) as u64,
        attempts: row.get::<_, i64>(3)?.clamp(0, u32::MAX as i64) as u32,
        last_error: row.get(4)?,
    })
}

/// Creates `path` (and chmods it and its WAL files if they exist) with mode
/// 0600.
pub(super) fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let store = Store::open(&dir.path().join("state.sqlite"), "london")
            .unwrap_or_else(|e| panic!("open: {e}"));
        (dir, store)
    }

    #[test]
    fn the_database_holding_keys_is_private_to_the_user() {
        let (dir, store) = store();
        store
            .put_acme_account("https://ca.test/dir", "{}")
            .unwrap_or_else(|e| panic!("{e}"));
        for name in ["state.sqlite", "state.sqlite-wal"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(mode, 0o600, "{name}");
        }
    }

    #[test]
    fn certificates_replace_and_announce() {
        let (_dir, store) = store();
        let changes = store.subscribe_certs();
        let mut cert = CertRow {
            domain: "example.com".into(),
            names: vec!["example.com".into(), "*.preview.example.com".into()],
            chain_pem: "chain".into(),
            key_pem: "key".into(),
            not_before_ms: 1,
            not_after_ms: 2,
            directory: "https://ca.test/dir".into(),
            issued_by: "london".into(),
        };
        store
            .put_certificate(&cert)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(changes.has_changed().unwrap_or(false));
        cert.not_after_ms = 3;
        store
            .put_certificate(&cert)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.certificates().unwrap_or_default(), vec![cert]);
    }

    #[test]
    fn orders_are_claimed_and_finished() {
        let (_dir, store) = store();
        let order = CertOrder {
            domain: "example.com".into(),
            node: "london".into(),
            since_ms: 10,
            attempts: 1,
            last_error: Some("refused".into()),
        };
        store
            .put_cert_order(&order)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store.cert_order("example.com").ok(),
            Some(Some(order.clone()))
        );
        let progress = OrderProgress {
            url: Some("https://ca.test/order/1".into()),
            key_pem: Some("key".into()),
            stage: Some("validating".into()),
        };
        let held = store.record_order_progress("example.com", "london", &progress, 20);
        assert_eq!(held.ok(), Some(true));
        // Another node's claim keeps the progress, so it can finish the order.
        store
            .put_cert_order(&CertOrder {
                node: "tokyo".into(),
                since_ms: 30,
                ..order
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.order_progress("example.com").ok(), Some(progress));
        assert_eq!(
            store.touch_cert_order("example.com", "london", 40).ok(),
            Some(false)
        );
        assert_eq!(
            store.touch_cert_order("example.com", "tokyo", 40).ok(),
            Some(true)
        );
        assert_eq!(
            store
                .cert_order("example.com")
                .ok()
                .flatten()
                .map(|o| o.since_ms),
            Some(40)
        );
        store
            .finish_cert_order("example.com")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.cert_order("example.com").ok(), Some(None));
        assert!(store.cert_orders().unwrap_or_default().is_empty());
        assert_eq!(
            store.order_progress("example.com").ok(),
            Some(OrderProgress::default())
        );
        let tombstone_key: Option<String> = store
            .conn()
            .query_row(
                "SELECT key_pem FROM cert_orders WHERE domain = 'example.com'",
                [],
                |row| row.get(0),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tombstone_key, None, "a finished order keeps no key");
    }
}
