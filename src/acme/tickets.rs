//! The rotation of TLS session ticket keys: every node keeps the stored
//! ring current and publishes it to its TLS listeners.
//!
//! A key seals new tickets for `ROTATE` after it is made; then whichever
//! node looks first adds a new key (two nodes adding one at once is
//! harmless: the newest of both seals everywhere once replicated). A key
//! stays in the ring, opening what it sealed, until those tickets have
//! expired, then it is removed, so a stolen key reveals at most
//! `ROTATE + TICKET_LIFETIME_SECS` of sessions. The ring is replicated by
//! the mesh, so a visitor DNS sends to another node resumes there.

use std::time::Duration;

use tracing::{info, warn};

use crate::live::{TICKET_LIFETIME_SECS, TicketKeyBytes, TicketKeys};
use crate::store::{Store, StoreError, TicketKeyRow};

/// How long the newest key seals before a new one is made.
pub const ROTATE: Duration = Duration::from_secs(6 * 60 * 60);

/// How long after it is made a key is removed: it sealed for `ROTATE`, and
/// its last tickets are good for `TICKET_LIFETIME_SECS` more.
fn retire_after_ms() -> u64 {
    ROTATE.as_millis() as u64 + u64::from(TICKET_LIFETIME_SECS) * 1000
}

/// Adds a key when the newest is due (or none exists), removes expired
/// ones, and publishes the ring to `tickets`. Store errors leave the
/// published ring as it was.
pub(super) fn keep(store: &Store, tickets: &TicketKeys, now_ms: u64) -> Result<(), StoreError> {
    let mut rows = store.ticket_keys()?;
    let due = rows
        .first()
        .is_none_or(|newest| now_ms >= newest.created_ms + ROTATE.as_millis() as u64);
    if due {
        match TicketKeyBytes::generate(now_ms) {
            Some(key) => {
                store.put_ticket_key(&TicketKeyRow {
                    id: key.id_hex(),
                    secret: key.secret_hex(),
                    created_ms: key.created_ms,
                })?;
                info!(id = %key.id_hex(), "new TLS session ticket key");
                rows = store.ticket_keys()?;
            }
            None => warn!("no randomness for a new TLS session ticket key; keeping the old ones"),
        }
    }
    let mut ring = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        // The newest key always stays, whatever the clocks say.
        if i > 0 && now_ms >= row.created_ms + retire_after_ms() {
            store.remove_ticket_key(&row.id)?;
            continue;
        }
        match TicketKeyBytes::from_hex(&row.id, &row.secret, row.created_ms) {
            Some(key) => ring.push(key),
            None => warn!(id = %row.id, "stored TLS session ticket key is malformed; skipped"),
        }
    }
    tickets.publish(&ring);
    Ok(())
}

#[cfg(test)]
mod tests {
    use rustls::server::ProducesTickets;

    use super::*;

    const HOUR_MS: u64 = 60 * 60 * 1000;

    fn store(dir: &tempfile::TempDir, name: &str) -> Store {
        Store::open(&dir.path().join(format!("{name}.sqlite")), name)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_key_is_made_at_once_rotated_when_due_and_retired_after_its_tickets_expire() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = store(&dir, "london");
        let tickets = TicketKeys::new();
        let start = 1_000 * HOUR_MS;

        keep(&store, &tickets, start).unwrap_or_else(|e| panic!("{e}"));
        let first = store.ticket_keys().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.len(), 1);
        let ticket = tickets.encrypt(b"session").unwrap_or_default();

        // Before it is due nothing changes.
        keep(&store, &tickets, start + HOUR_MS).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.ticket_keys().unwrap_or_default(), first);

        // Due: a second key seals, the first still opens.
        keep(&store, &tickets, start + 6 * HOUR_MS).unwrap_or_else(|e| panic!("{e}"));
        let keys = store.ticket_keys().unwrap_or_default();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1], first[0]);
        assert_eq!(tickets.decrypt(&ticket).as_deref(), Some(&b"session"[..]));
        let newer = tickets.encrypt(b"later").unwrap_or_default();
        assert_ne!(newer[..16], ticket[..16]);

        // Once the first key's tickets have expired, it goes.
        keep(&store, &tickets, start + 18 * HOUR_MS).unwrap_or_else(|e| panic!("{e}"));
        let keys = store.ticket_keys().unwrap_or_default();
        assert!(keys.iter().all(|k| k.id != first[0].id), "{keys:?}");
        assert!(tickets.decrypt(&ticket).is_none());
        assert!(tickets.decrypt(&newer).is_some());
    }
}
