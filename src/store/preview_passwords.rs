//! Preview passwords: per domain, the argon2 hash (a PHC string) that
//! visitors of its previews and permalinks must match, and the key their
//! signed cookies are made with. Replicated like every other table, so a
//! password set on one node guards the previews of every node; the
//! password itself is never stored.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, query_err};

/// One domain's preview password, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviewPasswordRow {
    /// The apex domain whose previews and permalinks it guards.
    pub domain: String,
    /// The argon2id hash as a PHC string (salt and parameters included).
    pub hash: String,
    /// 32 random bytes, hex: the MAC key of the cookies visitors get after
    /// a correct password, new with every password so a new one ends every
    /// old visit.
    pub cookie_key: String,
    /// When it was set, in Unix milliseconds.
    pub set_ms: u64,
}

/// Never prints the hash or the cookie key.
impl std::fmt::Debug for PreviewPasswordRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewPasswordRow")
            .field("domain", &self.domain)
            .field("set_ms", &self.set_ms)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Records `row` as its domain's preview password, replacing any.
    pub fn set_preview_password(&self, row: &PreviewPasswordRow) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO preview_passwords (domain, hash, cookie_key, set_ms, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (domain) DO UPDATE SET hash = excluded.hash,
                   cookie_key = excluded.cookie_key, set_ms = excluded.set_ms,
                   hlc = excluded.hlc, origin = excluded.origin, deleted = 0",
                params![
                    row.domain,
                    row.hash,
                    row.cookie_key,
                    row.set_ms as i64,
                    hlc.0 as i64,
                    self.origin
                ],
            )
            .map_err(query_err("setting a preview password"))?;
        Ok(())
    }

    /// Tombstones `domain`'s preview password; whether one was set.
    pub fn clear_preview_password(&self, domain: &str) -> Result<bool, StoreError> {
        let hlc = self.clock.now();
        let changed = self
            .conn()
            .execute(
                "UPDATE preview_passwords SET deleted = 1, hlc = ?2, origin = ?3
                 WHERE domain = ?1 AND deleted = 0",
                params![domain, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("clearing a preview password"))?;
        Ok(changed > 0)
    }

    /// `domain`'s preview password, when one is set.
    pub fn preview_password(&self, domain: &str) -> Result<Option<PreviewPasswordRow>, StoreError> {
        self.conn()
            .query_row(
                "SELECT domain, hash, cookie_key, set_ms FROM preview_passwords
                 WHERE domain = ?1 AND deleted = 0",
                [domain],
                row_to_password,
            )
            .optional()
            .map_err(query_err("reading a preview password"))
    }

    /// Every set preview password, by domain.
    pub fn preview_passwords(&self) -> Result<Vec<PreviewPasswordRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT domain, hash, cookie_key, set_ms FROM preview_passwords
                 WHERE deleted = 0 ORDER BY domain",
            )
            .map_err(query_err("listing preview passwords"))?;
        stmt.query_map([], row_to_password)
            .and_then(|rows| rows.collect())
            .map_err(query_err("listing preview passwords"))
    }
}

fn row_to_password(row: &rusqlite::Row<'_>) -> rusqlite::Result<PreviewPasswordRow> {
    Ok(PreviewPasswordRow {
        domain: row.get(0)?,
        hash: row.get(1)?,
        cookie_key: row.get(2)?,
        set_ms: row.get::<_, i64>(3)?.max(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Table;

    fn row(domain: &str, hash: &str) -> PreviewPasswordRow {
        PreviewPasswordRow {
            domain: domain.into(),
            hash: hash.into(),
            cookie_key: "00".repeat(32),
            set_ms: 5,
        }
    }

    #[test]
    fn passwords_are_set_replaced_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.sqlite"), "n1").unwrap();
        assert_eq!(store.preview_password("a.test").unwrap(), None);
        store.set_preview_password(&row("a.test", "h1")).unwrap();
        store.set_preview_password(&row("a.test", "h2")).unwrap();
        assert_eq!(
            store.preview_password("a.test").unwrap(),
            Some(row("a.test", "h2"))
        );
        assert_eq!(
            store.preview_passwords().unwrap(),
            vec![row("a.test", "h2")]
        );
        assert!(store.clear_preview_password("a.test").unwrap());
        assert!(!store.clear_preview_password("a.test").unwrap());
        assert!(store.preview_passwords().unwrap().is_empty());
    }

    #[test]
    fn passwords_replicate_with_their_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(&dir.path().join("a.sqlite"), "a").unwrap();
        let b = Store::open(&dir.path().join("b.sqlite"), "b").unwrap();
        a.set_preview_password(&row("a.test", "h1")).unwrap();
        let rows = a.rows_of(Table::PreviewPasswords).unwrap();
        assert_eq!(b.apply_rows(&rows).unwrap().len(), 1);
        assert_eq!(
            b.preview_password("a.test").unwrap(),
            Some(row("a.test", "h1"))
        );
        a.clear_preview_password("a.test").unwrap();
        b.apply_rows(&a.rows_of(Table::PreviewPasswords).unwrap())
            .unwrap();
        assert_eq!(b.preview_password("a.test").unwrap(), None);
    }
}
