//! Authorised SSH public keys: who may push and run admin commands.

use rusqlite::params;

use super::{Store, StoreError, query_err};

/// One authorised key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// `SHA256:…` as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The key in OpenSSH one-line form, without comment.
    pub public_key: String,
    pub comment: String,
}

impl Store {
    /// Authorises a key (reviving a removed one).
    pub fn add_key(&self, key: &KeyRow) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO keys (fingerprint, public_key, comment, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT (fingerprint) DO UPDATE SET
                   public_key = excluded.public_key, comment = excluded.comment,
                   hlc = excluded.hlc, origin = excluded.origin, deleted = 0",
                params![
                    key.fingerprint,
                    key.public_key,
                    key.comment,
                    hlc.0 as i64,
                    self.origin
                ],
            )
            .map_err(query_err("adding a key"))?;
        Ok(())
    }

    /// Tombstones the key with `fingerprint`; whether one was live.
    pub fn remove_key(&self, fingerprint: &str) -> Result<bool, StoreError> {
        let hlc = self.clock.now();
        let changed = self
            .conn()
            .execute(
                "UPDATE keys SET deleted = 1, hlc = ?2, origin = ?3
                 WHERE fingerprint = ?1 AND deleted = 0",
                params![fingerprint, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("removing a key"))?;
        Ok(changed > 0)
    }

    /// Whether `fingerprint` names a live authorised key.
    pub fn key_authorised(&self, fingerprint: &str) -> Result<bool, StoreError> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM keys WHERE fingerprint = ?1 AND deleted = 0)",
                [fingerprint],
                |row| row.get(0),
            )
            .map_err(query_err("checking a key"))
    }

    /// Every live authorised key, by fingerprint.
    pub fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT fingerprint, public_key, comment FROM keys
                 WHERE deleted = 0 ORDER BY fingerprint",
            )
            .map_err(query_err("listing keys"))?;
        stmt.query_map([], |row| {
            Ok(KeyRow {
                fingerprint: row.get(0)?,
                public_key: row.get(1)?,
                comment: row.get(2)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(query_err("listing keys"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_added_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.sqlite"), "n1").unwrap();
        let key = KeyRow {
            fingerprint: "SHA256:abc".into(),
            public_key: "ssh-ed25519 AAAA".into(),
            comment: "me@host".into(),
        };
        store.add_key(&key).unwrap();
        assert!(store.key_authorised("SHA256:abc").unwrap());
        assert_eq!(store.keys().unwrap(), vec![key.clone()]);
        assert!(store.remove_key("SHA256:abc").unwrap());
        assert!(!store.remove_key("SHA256:abc").unwrap());
        assert!(!store.key_authorised("SHA256:abc").unwrap());
        store.add_key(&key).unwrap();
        assert!(store.key_authorised("SHA256:abc").unwrap());
    }
}
