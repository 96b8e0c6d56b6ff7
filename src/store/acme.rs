//! `_acme-challenge` TXT values: written by whichever node orders a
//! certificate, replicated, and published by every node's DNS server so a
//! DNS-01 validator reaching any node sees them.

use rusqlite::params;

use super::{Store, StoreError, query_err};

/// One published challenge value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeChallenge {
    /// The full owner name, lowercase, no trailing dot:
    /// `_acme-challenge.example.com`.
    pub name: String,
    /// The TXT value (the key authorisation digest).
    pub value: String,
}

impl Store {
    /// Publishes `value` at `name` (several values may coexist, e.g. for an
    /// apex and its wildcard).
    pub fn add_acme_challenge(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO acme_challenges (name, value, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, 0)
                 ON CONFLICT (name, value) DO UPDATE SET
                   hlc = excluded.hlc, origin = excluded.origin, deleted = 0",
                params![name.to_ascii_lowercase(), value, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("publishing an ACME challenge"))?;
        self.dns_changed();
        Ok(())
    }

    /// Withdraws `value` at `name` (a tombstone, so the removal replicates).
    pub fn remove_acme_challenge(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        let changed = self
            .conn()
            .execute(
                "UPDATE acme_challenges SET deleted = 1, hlc = ?3, origin = ?4
                 WHERE name = ?1 AND value = ?2 AND deleted = 0",
                params![name.to_ascii_lowercase(), value, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("withdrawing an ACME challenge"))?;
        if changed > 0 {
            self.dns_changed();
        }
        Ok(())
    }

    /// Every published challenge, by name then value.
    pub fn acme_challenges(&self) -> Result<Vec<AcmeChallenge>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, value FROM acme_challenges WHERE deleted = 0 ORDER BY name, value",
            )
            .map_err(query_err("listing ACME challenges"))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(AcmeChallenge {
                    name: row.get(0)?,
                    value: row.get(1)?,
                })
            })
            .map_err(query_err("listing ACME challenges"))?;
        rows.collect::<Result<_, _>>()
            .map_err(query_err("listing ACME challenges"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_published_and_withdrawn() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let store = Store::open(&dir.path().join("state.sqlite"), "london")
            .unwrap_or_else(|e| panic!("open: {e}"));
        let name = "_acme-challenge.Example.com";
        for value in ["one", "two"] {
            store
                .add_acme_challenge(name, value)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        store
            .remove_acme_challenge(name, "one")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store.acme_challenges().unwrap_or_default(),
            vec![AcmeChallenge {
                name: "_acme-challenge.example.com".into(),
                value: "two".into()
            }]
        );
    }
}
