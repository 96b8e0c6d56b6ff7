//! Preview pointers: which revision each `<slug>.preview.<domain>` host
//! serves, and the repo and branch it came from. Kept apart from `domains`
//! so a preview can never move a domain's production revision.

use rusqlite::{OptionalExtension, params};

use super::revisions::row_to_revision;
use super::{RevisionRow, Store, StoreError, query_err};

impl Store {
    /// Points preview `host` (of `domain`) at revision `root`.
    pub fn set_preview(
        &self,
        host: &str,
        domain: &str,
        repo: &str,
        branch: &str,
        root: &str,
    ) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        let preview = PreviewPointer {
            host,
            domain,
            repo,
            branch,
            root,
        };
        write_preview(&self.conn(), &preview, hlc, &self.origin)
    }

    /// The `(repo, branch)` a live preview host belongs to.
    pub fn preview_owner(&self, host: &str) -> Result<Option<(String, String)>, StoreError> {
        self.conn()
            .query_row(
                "SELECT repo, branch FROM previews WHERE host = ?1 AND deleted = 0",
                [host],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(query_err("reading a preview"))
    }

    /// Tombstones every preview of `branch` of `repo`; returns their hosts.
    pub fn remove_previews(&self, repo: &str, branch: &str) -> Result<Vec<String>, StoreError> {
        let hlc = self.clock.now();
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "UPDATE previews SET deleted = 1, hlc = ?3, origin = ?4
                 WHERE repo = ?1 AND branch = ?2 AND deleted = 0 RETURNING host",
            )
            .map_err(query_err("removing previews"))?;
        stmt.query_map(params![repo, branch, hlc.0 as i64, self.origin], |row| {
            row.get(0)
        })
        .and_then(|rows| rows.collect())
        .map_err(query_err("removing previews"))
    }

    /// The revision of every live preview, its `domain` being the host.
    pub fn active_previews(&self) -> Result<Vec<RevisionRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT r.domain, r.root, r.manifest, r.config, r.source, r.branch,
                        r.created_ms, 1, r.extras, r.warnings
                 FROM previews p JOIN revisions r ON r.domain = p.host AND r.root = p.root
                 WHERE p.deleted = 0 AND r.deleted = 0
                 ORDER BY p.host",
            )
            .map_err(query_err("listing previews"))?;
        stmt.query_map([], row_to_revision)
            .and_then(|rows| rows.collect())
            .map_err(query_err("listing previews"))
    }
}

/// A preview host's pointer: which revision `host` (of `domain`) serves,
/// from which repo and branch.
#[derive(Debug, Clone, Copy)]
pub struct PreviewPointer<'a> {
    pub host: &'a str,
    pub domain: &'a str,
    pub repo: &'a str,
    pub branch: &'a str,
    pub root: &'a str,
}

/// Writes a preview's pointer row.
pub(super) fn write_preview(
    conn: &rusqlite::Connection,
    p: &PreviewPointer<'_>,
    hlc: super::Hlc,
    origin: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO previews (host, domain, repo, branch, root, hlc, origin, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
         ON CONFLICT (host) DO UPDATE SET domain = excluded.domain,
           repo = excluded.repo, branch = excluded.branch, root = excluded.root,
           hlc = excluded.hlc, origin = excluded.origin, deleted = 0",
        params![
            p.host,
            p.domain,
            p.repo,
            p.branch,
            p.root,
            hlc.0 as i64,
            origin
        ],
    )
    .map_err(query_err("activating a preview"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_point_at_revisions_and_are_removed_per_branch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.sqlite"), "n1").unwrap();
        let host = "dev.preview.a.test";
        store
            .record_revision(&RevisionRow {
                domain: host.into(),
                root: "r1".into(),
                manifest: "m".into(),
                config: String::new(),
                source: "c1".into(),
                branch: Some("dev".into()),
                created_ms: 1,
                active: false,
                extras: String::new(),
                warnings: String::new(),
            })
            .unwrap();
        store
            .set_preview(host, "a.test", "site", "dev", "r1")
            .unwrap();
        assert_eq!(
            store.preview_owner(host).unwrap(),
            Some(("site".into(), "dev".into()))
        );
        let live = store.active_previews().unwrap();
        assert_eq!(live.len(), 1);
        assert!(live[0].active);
        assert!(store.active_revisions().unwrap().is_empty());
        assert_eq!(store.remove_previews("site", "dev").unwrap(), vec![host]);
        assert!(store.active_previews().unwrap().is_empty());
    }
}
