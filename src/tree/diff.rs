//! The difference between two manifests, found by descending only into
//! subtrees whose hashes differ.
//!
//! This is what makes replication cheap: a one-file change in a huge site
//! visits only the directories on that file's path.

use std::cmp::Ordering;

use super::merkle::{ChildKind, MerkleTree, join};
use super::{Entry, Manifest, ManifestError};

/// One path that differs: `Some` is the new entry, `None` a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub entry: Option<Entry>,
}

/// What turns one manifest into another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub changes: Vec<Change>,
}

/// How much of the trees a diff had to look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffStats {
    /// Directory nodes whose children were read, in either tree.
    pub dirs_visited: usize,
}

impl Diff {
    /// Whether the two manifests were equal.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Applies the changes to `manifest`, which should be the diff's `from`.
    ///
    /// Deletions go first, so a file replaced by a directory of the same name
    /// (or the reverse) never conflicts halfway. Fails only if the manifest
    /// was not the diff's `from` and an insertion would conflict, or the diff
    /// holds an invalid path; changes before the failure stay applied.
    pub fn apply(&self, manifest: &mut Manifest) -> Result<(), ManifestError> {
        for change in self.changes.iter().filter(|c| c.entry.is_none()) {
            manifest.remove(&change.path);
        }
        for change in &self.changes {
            if let Some(entry) = change.entry {
                manifest.insert(&change.path, entry)?;
            }
        }
        Ok(())
    }
}

/// The changes that turn `from` into `to`.
pub fn diff(from: &Manifest, to: &Manifest) -> Diff {
    diff_with_stats(from, to).0
}

/// [`diff`], also reporting how many directories it visited.
pub fn diff_with_stats(from: &Manifest, to: &Manifest) -> (Diff, DiffStats) {
    diff_trees(&MerkleTree::build(from), &MerkleTree::build(to))
}

/// The changes between two built trees, walking from the root and skipping
/// every subtree whose hash is equal on both sides.
pub fn diff_trees(from: &MerkleTree, to: &MerkleTree) -> (Diff, DiffStats) {
    let mut walk = Walk {
        from,
        to,
        diff: Diff::default(),
        stats: DiffStats::default(),
    };
    if from.root() != to.root() {
        walk.compare_dirs("");
    }
    (walk.diff, walk.stats)
}

/// The state of one diff walk.
struct Walk<'a> {
    from: &'a MerkleTree,
    to: &'a MerkleTree,
    diff: Diff,
    stats: DiffStats,
}

impl Walk<'_> {
    /// Merges the sorted children of `dir` in both trees.
    fn compare_dirs(&mut self, dir: &str) {
        self.stats.dirs_visited += 1;
        let old = self.from.children(dir).unwrap_or_default();
        let new = self.to.children(dir).unwrap_or_default();
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let order = match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) => a.name.cmp(&b.name),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    self.removed(dir, &old[i].name, old[i].kind);
                    i += 1;
                }
                Ordering::Greater => {
                    self.added(dir, &new[j].name, new[j].kind);
                    j += 1;
                }
                Ordering::Equal => {
                    let (a, b) = (&old[i], &new[j]);
                    if a.hash != b.hash {
                        match (a.kind, b.kind) {
                            (ChildKind::Dir, ChildKind::Dir) => {
                                self.compare_dirs(&join(dir, &a.name));
                            }
                            (ChildKind::File(_), ChildKind::File(_)) => {
                                self.added(dir, &b.name, b.kind);
                            }
                            _ => {
                                self.removed(dir, &a.name, a.kind);
                                self.added(dir, &b.name, b.kind);
                            }
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
    }

    /// Records the deletion of `name` in `dir`, and of everything below it.
    fn removed(&mut self, dir: &str, name: &str, kind: ChildKind) {
        let path = join(dir, name);
        match kind {
            ChildKind::File(_) => self.diff.changes.push(Change { path, entry: None }),
            ChildKind::Dir => {
                let from = self.from;
                self.each_file(from, &path, &mut |changes, path, _| {
                    changes.push(Change { path, entry: None });
                });
            }
        }
    }

    /// Records `name` in `dir` as new, with everything below it.
    fn added(&mut self, dir: &str, name: &str, kind: ChildKind) {
        let path = join(dir, name);
        match kind {
            ChildKind::File(entry) => self.diff.changes.push(Change {
                path,
                entry: Some(entry),
            }),
            ChildKind::Dir => {
                let to = self.to;
                self.each_file(to, &path, &mut |changes, path, entry| {
                    changes.push(Change {
                        path,
                        entry: Some(entry),
                    });
                });
            }
        }
    }

    /// Calls `record` for every file below `dir` in `tree`.
    fn each_file(
        &mut self,
        tree: &MerkleTree,
        dir: &str,
        record: &mut dyn FnMut(&mut Vec<Change>, String, Entry),
    ) {
        self.stats.dirs_visited += 1;
        for child in tree.children(dir).unwrap_or_default() {
            let path = join(dir, &child.name);
            match child.kind {
                ChildKind::File(entry) => record(&mut self.diff.changes, path, entry),
                ChildKind::Dir => self.each_file(tree, &path, record),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Mode;
    use proptest::prelude::*;

    fn entry(n: u32) -> Entry {
        Entry {
            mode: Mode::File,
            size: u64::from(n),
            hash: blake3::hash(&n.to_le_bytes()),
        }
    }

    #[test]
    fn one_file_change_visits_only_its_path() {
        let mut a = Manifest::new();
        for d in 0..100 {
            for f in 0..100 {
                a.insert(&format!("d{d:02}/f{f:02}.html"), entry(d * 100 + f))
                    .unwrap();
            }
        }
        let mut b = a.clone();
        b.insert("d42/f17.html", entry(1_000_000)).unwrap();

        let (d, stats) = diff_with_stats(&a, &b);
        assert_eq!(
            d.changes,
            vec![Change {
                path: "d42/f17.html".into(),
                entry: Some(entry(1_000_000)),
            }]
        );
        // The root and d42: nothing else is read.
        assert_eq!(stats.dirs_visited, 2);

        let (same, stats) = diff_with_stats(&a, &a);
        assert!(same.is_empty());
        assert_eq!(stats.dirs_visited, 0);
    }

    #[test]
    fn file_replaced_by_directory_and_back() {
        let mut a = Manifest::new();
        a.insert("x", entry(1)).unwrap();
        a.insert("keep", entry(2)).unwrap();
        let mut b = Manifest::new();
        b.insert("x/inner/y", entry(3)).unwrap();
        b.insert("keep", entry(2)).unwrap();

        for (from, to) in [(&a, &b), (&b, &a)] {
            let mut patched = from.clone();
            diff(from, to).apply(&mut patched).unwrap();
            assert_eq!(&patched, to);
        }
    }

    /// Manifests over a tiny alphabet, so equal paths, equal subtrees and
    /// file/directory clashes are all common.
    fn manifest() -> impl Strategy<Value = Manifest> {
        let component = prop::sample::select(vec!["a", "b", "c.d", "é"]);
        let path = prop::collection::vec(component, 1..4).prop_map(|c| c.join("/"));
        let entry = (any::<bool>(), 0u64..3, 0u8..3).prop_map(|(exec, size, h)| Entry {
            mode: if exec { Mode::Executable } else { Mode::File },
            size,
            hash: blake3::hash(&[h]),
        });
        prop::collection::vec((path, entry), 0..24).prop_map(|items| {
            let mut m = Manifest::new();
            for (path, entry) in items {
                // Conflicting paths are skipped; the rest form the manifest.
                let _ = m.insert(&path, entry);
            }
            m
        })
    }

    proptest! {
        #[test]
        fn applying_the_diff_gives_the_target(a in manifest(), b in manifest()) {
            let mut patched = a.clone();
            diff(&a, &b).apply(&mut patched).unwrap();
            prop_assert_eq!(patched, b);
        }

        #[test]
        fn roots_are_equal_exactly_when_manifests_are(a in manifest(), b in manifest()) {
            prop_assert_eq!(a == b, a.root() == b.root());
        }

        #[test]
        fn roots_track_a_single_edit(a in manifest(), b in manifest()) {
            // b's first entry written into a: sometimes a no-op, sometimes not.
            let mut edited = a.clone();
            if let Some((path, entry)) = b.iter().next() {
                let _ = edited.insert(path, *entry);
            }
            prop_assert_eq!(a == edited, a.root() == edited.root());
        }

        #[test]
        fn root_ignores_insertion_order(a in manifest()) {
            let mut reversed = Manifest::new();
            for (path, entry) in a.iter().collect::<Vec<_>>().into_iter().rev() {
                reversed.insert(path, *entry).unwrap();
            }
            prop_assert_eq!(a.root(), reversed.root());
        }

        #[test]
        fn encoding_round_trips(a in manifest()) {
            let bytes = a.to_bytes();
            prop_assert_eq!(Manifest::from_bytes(&bytes).unwrap(), a.clone());
            prop_assert_eq!(Manifest::from_bytes(&bytes).unwrap().to_bytes(), bytes);
        }

        #[test]
        fn diff_with_itself_is_empty(a in manifest()) {
            prop_assert!(diff(&a, &a).is_empty());
        }

        #[test]
        fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut input = b"MKMF\x01".to_vec();
            input.extend_from_slice(&bytes);
            let _ = Manifest::from_bytes(&input);
            let _ = Manifest::from_bytes(&bytes);
        }
    }
}
