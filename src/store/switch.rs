//! A deploy's switch: the pointer rows that make its revisions live and the
//! ref rows of the push that made them, written in one transaction under
//! one HLC stamp.
//!
//! Replication decides every row on its own, by its stamp. Rows of one push
//! written with separate stamps could be decided differently: two pushes of
//! one branch to two nodes whose writes interleave could leave every node
//! serving one push's revision while the branch names the other's commit.
//! With one stamp for all of a push's rows, every node picks the same push
//! for all of them.

use super::previews::{PreviewPointer, write_preview};
use super::repos::write_ref;
use super::revisions::write_active;
use super::{Store, StoreError, query_err};

/// A domain's pointer: `root` becomes its active revision, owned by `repo`.
#[derive(Debug, Clone, Copy)]
pub struct DomainPointer<'a> {
    pub domain: &'a str,
    pub repo: &'a str,
    pub root: &'a str,
}

/// A git ref a push moves (`target` `None` deletes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub repo: String,
    pub name: String,
    pub target: Option<String>,
}

/// Everything one deploy switches at once.
#[derive(Debug, Default)]
pub struct Switch<'a> {
    pub domains: Vec<DomainPointer<'a>>,
    pub previews: Vec<PreviewPointer<'a>>,
    pub refs: &'a [RefUpdate],
}

impl Store {
    /// Writes every row of `switch` in one transaction with one stamp.
    pub fn switch(&self, switch: &Switch<'_>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(query_err("starting a deploy's switch"))?;
        let hlc = self.clock.now();
        for d in &switch.domains {
            write_active(&tx, d.domain, d.repo, d.root, hlc, &self.origin)?;
        }
        for p in &switch.previews {
            write_preview(&tx, p, hlc, &self.origin)?;
        }
        for r in switch.refs {
            write_ref(
                &tx,
                &r.repo,
                &r.name,
                r.target.as_deref(),
                hlc,
                &self.origin,
            )?;
        }
        tx.commit()
            .map_err(query_err("committing a deploy's switch"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_stamps_its_pointers_and_refs_alike() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db"), "a").unwrap();
        let refs = [RefUpdate {
            repo: "site".into(),
            name: "refs/heads/main".into(),
            target: Some("c0ffee".into()),
        }];
        store
            .switch(&Switch {
                domains: vec![
                    DomainPointer {
                        domain: "example.org",
                        repo: "site",
                        root: "aa",
                    },
                    DomainPointer {
                        domain: "example.net",
                        repo: "site",
                        root: "bb",
                    },
                ],
                previews: vec![PreviewPointer {
                    host: "dev.preview.example.org",
                    domain: "example.org",
                    repo: "site",
                    branch: "dev",
                    root: "cc",
                }],
                refs: &refs,
            })
            .unwrap();
        let rows = store.all_rows().unwrap();
        let stamps: Vec<u64> = rows
            .iter()
            .filter(|r| ["domains", "previews", "refs"].contains(&r.table.as_str()))
            .map(|r| r.hlc)
            .collect();
        assert_eq!(stamps.len(), 4, "{rows:?}");
        assert!(stamps.iter().all(|s| *s == stamps[0]), "{stamps:?}");
    }
}
