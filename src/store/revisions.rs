//! Revisions and which one each domain serves.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError, query_err};

/// One deployed revision of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRow {
    pub domain: String,
    /// Merkle root of the served tree, lowercase hex.
    pub root: String,
    /// CAS hash of the serialised manifest, lowercase hex.
    pub manifest: String,
    /// The `makiatto.toml` text the revision was deployed with ("" if none).
    pub config: String,
    /// Where it came from: a directory path or a commit id.
    pub source: String,
    pub branch: Option<String>,
    pub created_ms: i64,
    /// Whether this is the domain's active revision.
    pub active: bool,
    /// What the revision's WebAssembly needs beyond its manifest (env file
    /// texts, what transforms set besides bytes), as deploy wrote it ("" if
    /// nothing); replicated with the row so every node serves the revision
    /// as its origin does.
    pub extras: String,
    /// Lines of the tree's `_redirects` and `_headers` that were skipped,
    /// one warning a line ("" if none), as the pusher was shown them.
    pub warnings: String,
}

const COLUMNS: &str = "r.domain, r.root, r.manifest, r.config, r.source, r.branch, r.created_ms,
     (d.active_revision IS NOT NULL AND d.active_revision = r.root), r.extras, r.warnings";

pub(super) fn row_to_revision(row: &rusqlite::Row<'_>) -> rusqlite::Result<RevisionRow> {
    Ok(RevisionRow {
        domain: row.get(0)?,
        root: row.get(1)?,
        manifest: row.get(2)?,
        config: row.get(3)?,
        source: row.get(4)?,
        branch: row.get(5)?,
        created_ms: row.get(6)?,
        active: row.get(7)?,
        extras: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
        warnings: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
    })
}

impl Store {
    /// Records a deploy of a revision. Deploying a root the domain already
    /// has (say, redeploying an older tree) refreshes its time and source,
    /// so history and the default rollback target follow deploy order.
    pub fn record_revision(&self, rev: &RevisionRow) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO revisions
                   (domain, root, manifest, config, source, branch, created_ms, hlc, origin, deleted, extras, warnings)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11)
                 ON CONFLICT (domain, root) DO UPDATE SET
                   manifest = excluded.manifest, config = excluded.config,
                   source = excluded.source, branch = excluded.branch,
                   created_ms = excluded.created_ms, hlc = excluded.hlc,
                   origin = excluded.origin, deleted = 0, extras = excluded.extras,
                   warnings = excluded.warnings",
                params![
                    rev.domain,
                    rev.root,
                    rev.manifest,
                    rev.config,
                    rev.source,
                    rev.branch,
                    rev.created_ms,
                    hlc.0 as i64,
                    self.origin,
                    rev.extras,
                    rev.warnings
                ],
            )
            .map_err(query_err("recording a revision"))?;
        Ok(())
    }

    /// Makes `root` the active revision of `domain`, owned by `repo`.
    pub fn set_active(&self, domain: &str, repo: &str, root: &str) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        write_active(&self.conn(), domain, repo, root, hlc, &self.origin)
    }

    /// The repo (or site directory) that owns `domain`, if any.
    pub fn domain_owner(&self, domain: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row(
                "SELECT repo FROM domains WHERE name = ?1 AND deleted = 0",
                [domain],
                |row| row.get(0),
            )
            .optional()
            .map_err(query_err("reading a domain's owner"))
    }

    /// Live revisions of `domain`, newest first.
    pub fn revisions(&self, domain: &str) -> Result<Vec<RevisionRow>, StoreError> {
        self.select_revisions(
            "listing revisions",
            "FROM revisions r LEFT JOIN domains d ON d.name = r.domain
             WHERE r.domain = ?1 AND r.deleted = 0
             ORDER BY r.created_ms DESC, r.hlc DESC",
            &[&domain],
        )
    }

    /// The active revision of every domain that has one.
    pub fn active_revisions(&self) -> Result<Vec<RevisionRow>, StoreError> {
        self.select_revisions(
            "listing active revisions",
            "FROM domains d JOIN revisions r
               ON r.domain = d.name AND r.root = d.active_revision
             WHERE d.deleted = 0 AND r.deleted = 0
             ORDER BY d.name",
            &[],
        )
    }

    /// Every live revision of every domain (for garbage collection).
    pub fn all_revisions(&self) -> Result<Vec<RevisionRow>, StoreError> {
        self.select_revisions(
            "listing all revisions",
            "FROM revisions r LEFT JOIN domains d ON d.name = r.domain
             WHERE r.deleted = 0",
            &[],
        )
    }

    /// Runs `SELECT <revision columns> <from_where>`; the query must name
    /// the revisions table `r` and the domains table `d`.
    fn select_revisions(
        &self,
        context: &'static str,
        from_where: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<RevisionRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {COLUMNS} {from_where}"))
            .map_err(query_err(context))?;
        stmt.query_map(params, row_to_revision)
            .and_then(|rows| rows.collect())
            .map_err(query_err(context))
    }

    /// Tombstones a revision so it is no longer kept.
    pub fn forget_revision(&self, domain: &str, root: &str) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "UPDATE revisions SET deleted = 1, hlc = ?3, origin = ?4
                 WHERE domain = ?1 AND root = ?2",
                params![domain, root, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("forgetting a revision"))?;
        Ok(())
    }
}

/// Writes the pointer row making `root` the active revision of `domain`.
pub(super) fn write_active(
    conn: &rusqlite::Connection,
    domain: &str,
    repo: &str,
    root: &str,
    hlc: super::Hlc,
    origin: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO domains (name, repo, active_revision, hlc, origin, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, 0)
         ON CONFLICT (name) DO UPDATE SET
           repo = excluded.repo, active_revision = excluded.active_revision,
           hlc = excluded.hlc, origin = excluded.origin, deleted = 0",
        params![domain, repo, root, hlc.0 as i64, origin],
    )
    .map_err(query_err("activating a revision"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(domain: &str, root: &str, created_ms: i64) -> RevisionRow {
        RevisionRow {
            domain: domain.into(),
            root: root.into(),
            manifest: format!("m-{root}"),
            config: String::new(),
            source: "/site".into(),
            branch: None,
            created_ms,
            active: false,
            extras: String::new(),
            warnings: String::new(),
        }
    }

    #[test]
    fn revisions_are_listed_newest_first_with_the_active_one_marked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.sqlite"), "n1").unwrap();
        store.record_revision(&rev("a.test", "r1", 1)).unwrap();
        store.record_revision(&rev("a.test", "r2", 2)).unwrap();
        store.set_active("a.test", "site:/x", "r1").unwrap();
        let list = store.revisions("a.test").unwrap();
        assert_eq!(
            list.iter()
                .map(|r| (r.root.as_str(), r.active))
                .collect::<Vec<_>>(),
            vec![("r2", false), ("r1", true)]
        );
        let active = store.active_revisions().unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].root, "r1");
    }

    #[test]
    fn redeploying_a_root_moves_it_to_the_top_of_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.sqlite"), "n1").unwrap();
        store.record_revision(&rev("a.test", "r1", 1)).unwrap();
        store.record_revision(&rev("a.test", "r2", 2)).unwrap();
        store.record_revision(&rev("a.test", "r1", 3)).unwrap();
        let roots: Vec<_> = store
            .revisions("a.test")
            .unwrap()
            .into_iter()
            .map(|r| r.root)
            .collect();
        assert_eq!(roots, vec!["r1", "r2"]);
    }

    #[test]
    fn forgotten_revisions_disappear_and_state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        {
            let store = Store::open(&path, "n1").unwrap();
            store.record_revision(&rev("a.test", "r1", 1)).unwrap();
            store.record_revision(&rev("a.test", "r2", 2)).unwrap();
            store.forget_revision("a.test", "r1").unwrap();
        }
        let store = Store::open(&path, "n1").unwrap();
        let roots: Vec<_> = store
            .revisions("a.test")
            .unwrap()
            .into_iter()
            .map(|r| r.root)
            .collect();
        assert_eq!(roots, vec!["r2"]);
    }

    #[test]
    fn a_newer_schema_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 999).unwrap();
        }
        let err = Store::open(&path, "n1").err().unwrap().to_string();
        assert!(err.contains("newer than this makiatto"), "{err}");
    }
}
