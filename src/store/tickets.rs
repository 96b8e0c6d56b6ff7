//! TLS session ticket keys: replicated rows, so every node of a cluster
//! seals and opens session tickets with the same keys. Secrets stay in the
//! database (mode 0600, see `certs.rs`) and cross the wire only inside the
//! mesh's WireGuard tunnels, like certificate keys.

use rusqlite::params;

use super::{Store, StoreError, query_err};

/// One ticket key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketKeyRow {
    /// The key's id in hex (sent in clear at the start of every ticket).
    pub id: String,
    /// The AES-256-GCM secret in hex.
    pub secret: String,
    /// When some node made it (ms since the epoch); the newest seals.
    pub created_ms: u64,
}

impl std::fmt::Debug for TicketKeyRow {
    // The secret never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeyRow")
            .field("id", &self.id)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Adds a ticket key (reviving one removed with the same id).
    pub fn put_ticket_key(&self, key: &TicketKeyRow) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO tls_ticket_keys (id, secret, created_ms, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT (id) DO UPDATE SET
                   secret = excluded.secret, created_ms = excluded.created_ms,
                   hlc = excluded.hlc, origin = excluded.origin, deleted = 0",
                params![
                    key.id,
                    key.secret,
                    key.created_ms as i64,
                    hlc.0 as i64,
                    self.origin
                ],
            )
            .map_err(query_err("adding a TLS ticket key"))?;
        self.certs_changed();
        Ok(())
    }

    /// Tombstones the ticket key `id`: tickets it sealed stop opening.
    pub fn remove_ticket_key(&self, id: &str) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        let changed = self
            .conn()
            .execute(
                "UPDATE tls_ticket_keys SET deleted = 1, secret = '', hlc = ?2, origin = ?3
                 WHERE id = ?1 AND deleted = 0",
                params![id, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("removing a TLS ticket key"))?;
        if changed > 0 {
            self.certs_changed();
        }
        Ok(())
    }

    /// Every live ticket key, newest first.
    pub fn ticket_keys(&self) -> Result<Vec<TicketKeyRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, secret, created_ms FROM tls_ticket_keys
                 WHERE deleted = 0 ORDER BY created_ms DESC, id DESC",
            )
            .map_err(query_err("listing TLS ticket keys"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(TicketKeyRow {
                    id: row.get(0)?,
                    secret: row.get(1)?,
                    created_ms: row.get::<_, i64>(2)?.max(0) as u64,
                })
            })
            .map_err(query_err("listing TLS ticket keys"))?;
        rows.collect::<Result<_, _>>()
            .map_err(query_err("listing TLS ticket keys"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created_ms: u64) -> TicketKeyRow {
        TicketKeyRow {
            id: id.into(),
            secret: format!("secret-of-{id}"),
            created_ms,
        }
    }

    #[test]
    fn ticket_keys_are_listed_newest_first_and_removed_by_tombstone() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(&dir.path().join("state.sqlite"), "london")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut certs = store.subscribe_certs();
        certs.mark_unchanged();
        store
            .put_ticket_key(&row("aa", 1))
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .put_ticket_key(&row("bb", 3))
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .put_ticket_key(&row("cc", 2))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            certs.has_changed().unwrap_or(false),
            "TLS listeners are told"
        );
        let ids: Vec<String> = store
            .ticket_keys()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(ids, ["bb", "cc", "aa"]);

        store
            .remove_ticket_key("bb")
            .unwrap_or_else(|e| panic!("{e}"));
        let keys = store.ticket_keys().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys, vec![row("cc", 2), row("aa", 1)]);
        assert!(!format!("{:?}", keys[0]).contains("secret-of"));
    }
}
