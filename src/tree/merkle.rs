//! The blake3 Merkle tree over a manifest's directories.
//!
//! Each directory gets a hash over its sorted children, so two nodes can
//! compare roots and descend only into directories whose hashes differ, and a
//! peer's listing of one directory can be checked against the hash we hold.

use std::collections::{BTreeSet, HashMap};

use super::manifest::{Entry, Manifest};

/// Key-derivation contexts: files and directories hash under different keys,
/// so no file's hash can ever equal a directory's.
const FILE_CONTEXT: &str = "makiatto 2025 tree file node v1";
const DIR_CONTEXT: &str = "makiatto 2025 tree directory node v1";

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// A file, with its manifest entry.
    File(Entry),
    /// A subdirectory; its children are under its own path.
    Dir,
}

impl ChildKind {
    fn to_byte(self) -> u8 {
        match self {
            ChildKind::File(_) => 0,
            ChildKind::Dir => 1,
        }
    }
}

/// One named entry of a directory, with its node hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub name: String,
    pub kind: ChildKind,
    pub hash: blake3::Hash,
}

/// One directory: its hash and its children sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirNode {
    pub hash: blake3::Hash,
    pub children: Vec<Child>,
}

impl Manifest {
    /// The Merkle root: names the whole revision. Builds the tree; keep a
    /// [`MerkleTree`] when more than the root is needed. It lives here, not
    /// in `manifest.rs`, so the manifest knows nothing of the tree over it.
    pub fn root(&self) -> blake3::Hash {
        MerkleTree::build(self).root()
    }
}

/// Directory hashes of a manifest, built once and walked by `diff`.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    /// Every directory by path; the root is `""`, others like `a/b`.
    dirs: HashMap<String, DirNode>,
}

impl MerkleTree {
    /// Hashes every directory of `manifest`, deepest first.
    pub fn build(manifest: &Manifest) -> MerkleTree {
        let mut children: HashMap<String, Vec<Child>> = HashMap::new();
        let mut dir_paths: BTreeSet<String> = BTreeSet::new();
        children.insert(String::new(), Vec::new());

        for (path, entry) in manifest.iter() {
            let (parent, name) = split_parent(path);
            children.entry(parent.to_owned()).or_default().push(Child {
                name: name.to_owned(),
                kind: ChildKind::File(*entry),
                hash: leaf_hash(entry),
            });
            // Register each ancestor directory once; stop at the first one
            // already known, since its own ancestors were registered with it.
            let mut dir = parent;
            while !dir.is_empty() && dir_paths.insert(dir.to_owned()) {
                let (grandparent, dir_name) = split_parent(dir);
                children
                    .entry(grandparent.to_owned())
                    .or_default()
                    .push(Child {
                        name: dir_name.to_owned(),
                        kind: ChildKind::Dir,
                        // Filled in below, once the subdirectory is hashed.
                        hash: blake3::Hash::from_bytes([0; blake3::OUT_LEN]),
                    });
                dir = grandparent;
            }
        }

        let mut order: Vec<String> = children.keys().cloned().collect();
        order.sort_by_key(|p| std::cmp::Reverse(depth(p)));
        let mut dirs: HashMap<String, DirNode> = HashMap::with_capacity(order.len());
        for path in order {
            let mut list = children.remove(&path).unwrap_or_default();
            list.sort_by(|a, b| a.name.cmp(&b.name));
            for child in &mut list {
                if child.kind == ChildKind::Dir {
                    // Deeper directories come first in `order`, so every
                    // subdirectory is already in `dirs`.
                    if let Some(node) = dirs.get(&join(&path, &child.name)) {
                        child.hash = node.hash;
                    }
                }
            }
            let hash = hash_children(&list);
            dirs.insert(
                path,
                DirNode {
                    hash,
                    children: list,
                },
            );
        }
        MerkleTree { dirs }
    }

    /// The root directory's hash; names the whole manifest.
    pub fn root(&self) -> blake3::Hash {
        self.dirs
            .get("")
            .map(|node| node.hash)
            // `build` always inserts the root; this only guards the type.
            .unwrap_or_else(|| hash_children(&[]))
    }

    /// The directory at `path` (`""` for the root), if the manifest has it.
    pub fn dir(&self, path: &str) -> Option<&DirNode> {
        self.dirs.get(path)
    }

    /// The hash of the directory at `path`.
    pub fn dir_hash(&self, path: &str) -> Option<blake3::Hash> {
        self.dirs.get(path).map(|node| node.hash)
    }

    /// The children of the directory at `path`, sorted by name.
    pub fn children(&self, path: &str) -> Option<&[Child]> {
        self.dirs.get(path).map(|node| node.children.as_slice())
    }

    /// How many directories the tree holds, the root included.
    pub fn dir_count(&self) -> usize {
        self.dirs.len()
    }
}

/// The node hash of one file: mode, size and content hash.
pub fn leaf_hash(entry: &Entry) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_derive_key(FILE_CONTEXT);
    hasher.update(&[entry.mode.to_byte()]);
    hasher.update(&entry.size.to_le_bytes());
    hasher.update(entry.hash.as_bytes());
    hasher.finalize()
}

/// The node hash of a directory with these children, which must be sorted
/// by name and unique. Lets a peer's listing be checked against a hash.
pub fn hash_children(children: &[Child]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_derive_key(DIR_CONTEXT);
    hasher.update(&(children.len() as u64).to_le_bytes());
    for child in children {
        // Length-prefixed names keep ("ab","c") apart from ("a","bc").
        hasher.update(&(child.name.len() as u64).to_le_bytes());
        hasher.update(child.name.as_bytes());
        hasher.update(&[child.kind.to_byte()]);
        hasher.update(child.hash.as_bytes());
    }
    hasher.finalize()
}

/// Splits `a/b/c` into (`a/b`, `c`), and `c` into (``, `c`).
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// The path of `name` inside directory `dir`.
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn depth(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        1 + path.bytes().filter(|&b| b == b'/').count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Mode;

    fn entry(n: u8) -> Entry {
        Entry {
            mode: Mode::File,
            size: u64::from(n),
            hash: blake3::hash(&[n]),
        }
    }

    #[test]
    fn empty_manifest_has_a_root() {
        let tree = MerkleTree::build(&Manifest::new());
        assert_eq!(tree.root(), hash_children(&[]));
        assert_eq!(tree.children(""), Some(&[][..]));
        assert_eq!(tree.dir_count(), 1);
    }

    #[test]
    fn directories_are_hashed_over_sorted_children() {
        let mut m = Manifest::new();
        m.insert("b/y", entry(1)).unwrap();
        m.insert("b/x", entry(2)).unwrap();
        m.insert("a", entry(3)).unwrap();
        m.insert("b/c/z", entry(4)).unwrap();
        let tree = MerkleTree::build(&m);

        let names: Vec<_> = tree
            .children("b")
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["c", "x", "y"]);
        assert_eq!(tree.dir_count(), 3);
        assert_eq!(
            tree.dir_hash("b/c"),
            Some(hash_children(tree.children("b/c").unwrap()))
        );
        let root_children = tree.children("").unwrap();
        assert_eq!(root_children[1].hash, tree.dir_hash("b").unwrap());
        assert_eq!(tree.root(), hash_children(root_children));
        assert!(tree.dir("a").is_none());
    }

    #[test]
    fn mode_and_size_change_the_leaf() {
        let base = entry(1);
        let exec = Entry {
            mode: Mode::Executable,
            ..base
        };
        let bigger = Entry { size: 99, ..base };
        assert_ne!(leaf_hash(&base), leaf_hash(&exec));
        assert_ne!(leaf_hash(&base), leaf_hash(&bigger));
    }

    #[test]
    fn a_file_and_a_directory_never_share_a_hash() {
        // A directory holding only `x`, and a file named like it: the kinds
        // differ in the parent, and leaf and directory hashes use different keys.
        let mut as_dir = Manifest::new();
        as_dir.insert("a/x", entry(1)).unwrap();
        let mut as_file = Manifest::new();
        as_file.insert("a", entry(1)).unwrap();
        assert_ne!(as_dir.root(), as_file.root());
        let dir = MerkleTree::build(&as_dir);
        assert_ne!(dir.dir_hash("a").unwrap(), leaf_hash(&entry(1)));
    }
}
