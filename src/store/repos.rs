//! Pushed repositories and their branch and tag heads, as replicated rows
//! (the bare repositories on disk hold the objects; these rows let peers
//! and operators see what exists without opening them).

use rusqlite::params;

use super::{Store, StoreError, query_err};

/// One repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRow {
    pub name: String,
    pub created_ms: i64,
    /// `(ref name, commit id)` of every live ref, by name.
    pub refs: Vec<(String, String)>,
}

impl Store {
    /// Records that repository `name` exists (no-op if it does).
    pub fn ensure_repo(&self, name: &str, created_ms: i64) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        self.conn()
            .execute(
                "INSERT INTO repos (name, created_ms, hlc, origin, deleted)
                 VALUES (?1, ?2, ?3, ?4, 0)
                 ON CONFLICT (name) DO UPDATE SET deleted = 0, hlc = excluded.hlc,
                   origin = excluded.origin
                 WHERE repos.deleted = 1",
                params![name, created_ms, hlc.0 as i64, self.origin],
            )
            .map_err(query_err("recording a repository"))?;
        Ok(())
    }

    /// Records `refname` of `repo` pointing at `target`, or deleted when
    /// `target` is `None`.
    pub fn set_ref(
        &self,
        repo: &str,
        refname: &str,
        target: Option<&str>,
    ) -> Result<(), StoreError> {
        let hlc = self.clock.now();
        write_ref(&self.conn(), repo, refname, target, hlc, &self.origin)
    }

    /// Every live repository with its refs, by name.
    pub fn repos(&self) -> Result<Vec<RepoRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT name, created_ms FROM repos WHERE deleted = 0 ORDER BY name")
            .map_err(query_err("listing repositories"))?;
        let mut repos: Vec<RepoRow> = stmt
            .query_map([], |row| {
                Ok(RepoRow {
                    name: row.get(0)?,
                    created_ms: row.get(1)?,
                    refs: Vec::new(),
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(query_err("listing repositories"))?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, target FROM refs WHERE repo = ?1 AND deleted = 0 ORDER BY name",
            )
            .map_err(query_err("listing refs"))?;
        for repo in &mut repos {
            repo.refs = stmt
                .query_map([&repo.name], |row| Ok((row.get(0)?, row.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(query_err("listing refs"))?;
        }
        Ok(repos)
    }
}

/// Writes the row of `refname` of `repo`: pointing at `target`, or deleted.
pub(super) fn write_ref(
    conn: &rusqlite::Connection,
    repo: &str,
    refname: &str,
    target: Option<&str>,
    hlc: super::Hlc,
    origin: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO refs (repo, name, target, hlc, origin, deleted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (repo, name) DO UPDATE SET target = excluded.target,
           hlc = excluded.hlc, origin = excluded.origin, deleted = excluded.deleted",
        params![
            repo,
            refname,
            target.unwrap_or(""),
            hlc.0 as i64,
            origin,
            target.is_none()
        ],
    )
    .map_err(query_err("recording a ref"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repos_list_their_live_refs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.sqlite"), "n1").unwrap();
        store.ensure_repo("site", 1).unwrap();
        store.ensure_repo("site", 2).unwrap();
        store
            .set_ref("site", "refs/heads/main", Some("aa"))
            .unwrap();
        store.set_ref("site", "refs/heads/dev", Some("bb")).unwrap();
        store.set_ref("site", "refs/heads/dev", None).unwrap();
        let repos = store.repos().unwrap();
        assert_eq!(repos.len(), 1);
        assert_eq!(repos[0].created_ms, 1);
        assert_eq!(repos[0].refs, vec![("refs/heads/main".into(), "aa".into())]);
    }
}
