//! Typed views of replicated rows, for the modules that react to rows
//! arriving from peers: what a pointer row points at, which commit a ref
//! row names, and a row's identity. Column names stay inside the store.

use super::replica::{Cell, Row, key_json};
use super::table::Table;
use super::{Store, StoreError};

/// Which kind of site a pointer row publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerKind {
    /// A domain's production revision.
    Domain,
    /// A preview host's revision.
    Preview,
}

/// What a pointer row says: `site` (a domain or a preview host) serves
/// the revision whose root is `root`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointer<'a> {
    pub kind: PointerKind,
    pub site: &'a str,
    pub root: &'a str,
}

/// A replicated git ref as its row stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedRef {
    pub repo: String,
    pub name: String,
    /// The commit the ref names; `None` when the row is a tombstone.
    pub target: Option<String>,
    /// The node that wrote the row, whose repository holds the commit.
    pub origin: String,
}

/// A row's identity (its table and key): every version of one row has
/// the same.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowId {
    table: String,
    key: String,
}

impl Row {
    /// The pointer this row is, when it is a domain's or a preview host's
    /// row naming a revision (tombstone or not).
    pub fn pointer(&self) -> Option<Pointer<'_>> {
        let (kind, site, root) = match self.table()? {
            Table::Domains => (PointerKind::Domain, "name", "active_revision"),
            Table::Previews => (PointerKind::Preview, "host", "root"),
            _ => return None,
        };
        Some(Pointer {
            kind,
            site: self.text(site)?,
            root: self.text(root)?,
        })
    }

    /// The git ref this row is, when it is a ref row.
    pub fn git_ref(&self) -> Option<ReplicatedRef> {
        if self.table()? != Table::Refs {
            return None;
        }
        Some(ReplicatedRef {
            repo: self.text("repo")?.to_string(),
            name: self.text("name")?.to_string(),
            target: if self.deleted {
                None
            } else {
                self.text("target").map(str::to_string)
            },
            origin: self.origin.clone(),
        })
    }

    /// This row's identity.
    pub fn id(&self) -> RowId {
        RowId {
            table: self.table.clone(),
            key: key_json(&self.key),
        }
    }
}

impl Store {
    /// Every replicated git ref, deleted ones included.
    pub fn replicated_refs(&self) -> Result<Vec<ReplicatedRef>, StoreError> {
        Ok(self
            .rows_of(Table::Refs)?
            .iter()
            .filter_map(Row::git_ref)
            .collect())
    }

    /// The row of ref `name` of `repo`, if this node has one.
    pub fn replicated_ref(
        &self,
        repo: &str,
        name: &str,
    ) -> Result<Option<ReplicatedRef>, StoreError> {
        Ok(self
            .row_by_key(Table::Refs, &[text(repo), text(name)])?
            .and_then(|row| row.git_ref()))
    }

    /// The node that wrote the row of revision `root` of `domain`, if this
    /// node has that row.
    pub fn revision_origin(&self, domain: &str, root: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .row_by_key(Table::Revisions, &[text(domain), text(root)])?
            .map(|row| row.origin))
    }

    fn row_by_key(&self, table: Table, key: &[Cell]) -> Result<Option<Row>, StoreError> {
        Ok(self
            .rows_by_key(table.name(), &[key_json(key)])?
            .into_iter()
            .next())
    }
}

fn text(value: &str) -> Cell {
    Cell::Text(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DomainPointer, RefUpdate, Switch};

    #[test]
    fn pointer_and_ref_rows_read_as_their_views() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store =
            Store::open(&dir.path().join("s.sqlite"), "a").unwrap_or_else(|e| panic!("open: {e}"));
        let refs = [RefUpdate {
            repo: "site".into(),
            name: "refs/heads/main".into(),
            target: Some("aa".into()),
        }];
        store
            .switch(&Switch {
                domains: vec![DomainPointer {
                    domain: "example.com",
                    repo: "site",
                    root: "r1",
                }],
                previews: Vec::new(),
                refs: &refs,
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let rows = store.all_rows().unwrap_or_default();
        let pointers: Vec<Pointer<'_>> = rows.iter().filter_map(Row::pointer).collect();
        assert_eq!(
            pointers,
            vec![Pointer {
                kind: PointerKind::Domain,
                site: "example.com",
                root: "r1",
            }]
        );
        let git_ref = store
            .replicated_ref("site", "refs/heads/main")
            .unwrap_or_default();
        assert_eq!(
            git_ref.map(|r| r.target),
            Some(Some("aa".to_string())),
            "the ref row names its commit"
        );
        store
            .set_ref("site", "refs/heads/main", None)
            .unwrap_or_else(|e| panic!("{e}"));
        let all = store.replicated_refs().unwrap_or_default();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].target, None, "a deleted ref names no commit");
        store
            .record_revision(&crate::store::RevisionRow {
                domain: "example.com".into(),
                root: "r1".into(),
                manifest: "m".into(),
                config: String::new(),
                source: "c1".into(),
                branch: None,
                created_ms: 1,
                active: false,
                extras: String::new(),
                warnings: String::new(),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store
                .revision_origin("example.com", "r1")
                .unwrap_or_default(),
            Some("a".to_string())
        );
        assert_eq!(
            store
                .revision_origin("example.com", "r2")
                .unwrap_or_default(),
            None
        );
    }
}
