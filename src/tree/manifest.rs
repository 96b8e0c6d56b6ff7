//! The manifest: path → (mode, size, blake3), and its canonical byte form.
//!
//! A manifest is what a revision *is*: every file, named by content. It is
//! stored in the CAS and sent to peers, so its encoding is canonical (one
//! manifest, one byte string, one blake3) and its decoder treats every byte
//! as hostile.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Longest path a manifest accepts, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Most entries `from_bytes` accepts; ten times a very large site.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Most path bytes `from_bytes` accepts in total. Paths are prefix-compressed,
/// so without this a small input could expand to gigabytes of strings.
pub const MAX_TOTAL_PATH_BYTES: usize = 128 * 1024 * 1024;

/// Leading bytes of an encoded manifest, so a stray object is not misread.
const MAGIC: &[u8; 4] = b"MKMF";

/// Encoding version; bump on any change to the layout below.
const VERSION: u8 = 1;

/// Smallest possible encoded entry: shared, suffix length, one suffix byte,
/// mode, size, hash. Bounds the entry count a given input can claim.
const MIN_ENTRY_LEN: usize = 1 + 1 + 1 + 1 + 1 + blake3::OUT_LEN;

/// File mode as git knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    File,
    Executable,
}

impl Mode {
    /// The byte that stands for this mode in encodings and leaf hashes.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Mode::File => 0,
            Mode::Executable => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<Mode> {
        match byte {
            0 => Some(Mode::File),
            1 => Some(Mode::Executable),
            _ => None,
        }
    }
}

/// One file of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    pub mode: Mode,
    pub size: u64,
    pub hash: blake3::Hash,
}

/// Why bytes could not be read back as a manifest, or a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid manifest path {0:?}")]
    InvalidPath(String),
    #[error(
        "manifest path {path:?} conflicts with {existing:?}: one would be both file and directory"
    )]
    Conflict { path: String, existing: String },
    #[error("corrupt manifest: {0}")]
    Corrupt(String),
}

/// Every file of a revision, keyed by relative `/`-separated path (no leading
/// `/`, no `.` or `..` components, no empty components).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: BTreeMap<String, Entry>,
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Manifest {
        Manifest::default()
    }

    /// Adds or replaces the file at `path`.
    ///
    /// Refuses paths that are absolute, end in `/`, have empty, `.` or `..`
    /// components, contain NUL or `\`, or exceed [`MAX_PATH_LEN`] bytes; and a
    /// path that would make a file also a directory (`a` beside `a/b`).
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), ManifestError> {
        validate_path(path)?;
        if let Some(existing) = self.conflict(path) {
            return Err(ManifestError::Conflict {
                path: path.to_owned(),
                existing,
            });
        }
        self.entries.insert(path.to_owned(), entry);
        Ok(())
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Removes and returns the entry at `path`.
    pub fn remove(&mut self, path: &str) -> Option<Entry> {
        self.entries.remove(path)
    }

    /// Every entry, sorted by path bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    /// How many files the manifest holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the manifest holds no file.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An existing path that `path` cannot live beside: a file where one of
    /// its ancestors would be, or a file below it (it would be a directory).
    fn conflict(&self, path: &str) -> Option<String> {
        for (i, byte) in path.bytes().enumerate() {
            if byte == b'/' && self.entries.contains_key(&path[..i]) {
                return Some(path[..i].to_owned());
            }
        }
        let below = format!("{path}/");
        self.entries
            .range::<str, _>((Bound::Included(below.as_str()), Bound::Unbounded))
            .next()
            .filter(|(p, _)| p.starts_with(&below))
            .map(|(p, _)| p.clone())
    }

    /// The canonical encoding: same manifest, same bytes.
    ///
    /// Layout (v1): `MKMF`, version byte, varint entry count, then per entry
    /// in path order: varint bytes shared with the previous path, varint
    /// suffix length, suffix, mode byte, varint size, 32-byte blake3.
    /// Varints are unsigned LEB128 in their shortest form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 48);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_varint(&mut out, self.entries.len() as u64);
        let mut previous: &[u8] = &[];
        for (path, entry) in &self.entries {
            let path = path.as_bytes();
            let shared = common_prefix(previous, path);
            put_varint(&mut out, shared as u64);
            put_varint(&mut out, (path.len() - shared) as u64);
            out.extend_from_slice(&path[shared..]);
            out.push(entry.mode.to_byte());
            put_varint(&mut out, entry.size);
            out.extend_from_slice(entry.hash.as_bytes());
            previous = path;
        }
        out
    }

    /// Reads back what [`Manifest::to_bytes`] wrote. Accepts only the
    /// canonical form, so equal manifests always have equal bytes; never
    /// panics, and allocates at most about [`MAX_TOTAL_PATH_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let mut input = Reader { bytes, pos: 0 };
        if input.take(MAGIC.len(), "magic")? != MAGIC {
            return Err(corrupt("not a manifest (bad magic)"));
        }
        let version = input.byte("version")?;
        if version != VERSION {
            return Err(corrupt(format!("unsupported version {version}")));
        }
        let count = input.varint("entry count")?;
        let claimable = (input.remaining() / MIN_ENTRY_LEN) as u64;
        if count > MAX_ENTRIES as u64 || count > claimable {
            return Err(corrupt(format!(
                "entry count {count} exceeds what the input can hold"
            )));
        }

        let mut manifest = Manifest::new();
        let mut previous: Vec<u8> = Vec::new();
        let mut total_path_bytes = 0usize;
        for index in 0..count {
            let shared = input.varint("shared prefix")?;
            let suffix_len = input.varint("suffix length")?;
            // Both are checked against small limits before any use as sizes.
            if shared > previous.len() as u64 || suffix_len == 0 {
                return Err(corrupt(format!("entry {index}: bad path prefix")));
            }
            if shared + suffix_len > MAX_PATH_LEN as u64 {
                return Err(corrupt(format!("entry {index}: path too long")));
            }
            let (shared, suffix_len) = (shared as usize, suffix_len as usize);
            let suffix = input.take(suffix_len, "path")?;
            // Canonical form shares the longest common prefix, no less.
            if previous.get(shared) == Some(&suffix[0]) {
                return Err(corrupt(format!("entry {index}: non-canonical prefix")));
            }
            let mut path = Vec::with_capacity(shared + suffix_len);
            path.extend_from_slice(&previous[..shared]);
            path.extend_from_slice(suffix);
            if index > 0 && path.as_slice() <= previous.as_slice() {
                return Err(corrupt(format!("entry {index}: paths out of order")));
            }
            total_path_bytes += path.len();
            if total_path_bytes > MAX_TOTAL_PATH_BYTES {
                return Err(corrupt("paths exceed the total size limit"));
            }

            let mode_byte = input.byte("mode")?;
            let mode = Mode::from_byte(mode_byte)
                .ok_or_else(|| corrupt(format!("entry {index}: unknown mode {mode_byte}")))?;
            let size = input.varint("size")?;
            let hash_bytes = input.take(blake3::OUT_LEN, "hash")?;
            let mut hash = [0u8; blake3::OUT_LEN];
            hash.copy_from_slice(hash_bytes);

            let path_str = std::str::from_utf8(&path)
                .map_err(|_| corrupt(format!("entry {index}: path is not UTF-8")))?;
            let entry = Entry {
                mode,
                size,
                hash: blake3::Hash::from_bytes(hash),
            };
            manifest
                .insert(path_str, entry)
                .map_err(|e| corrupt(format!("entry {index}: {e}")))?;
            previous = path;
        }
        if input.remaining() != 0 {
            return Err(corrupt(format!(
                "{} trailing bytes after the last entry",
                input.remaining()
            )));
        }
        Ok(manifest)
    }
}

/// Checks the path rules documented on [`Manifest::insert`].
fn validate_path(path: &str) -> Result<(), ManifestError> {
    let valid = !path.is_empty()
        && path.len() <= MAX_PATH_LEN
        && !path.bytes().any(|b| b == 0 || b == b'\\')
        && path
            .split('/')
            .all(|component| !matches!(component, "" | "." | ".."));
    if valid {
        Ok(())
    } else {
        Err(ManifestError::InvalidPath(path.to_owned()))
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn corrupt(message: impl Into<String>) -> ManifestError {
    ManifestError::Corrupt(message.into())
}

/// A cursor over untrusted bytes that reports what it was reading when the
/// input ran out.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], ManifestError> {
        if len > self.remaining() {
            return Err(corrupt(format!("truncated while reading {what}")));
        }
        let slice = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    fn byte(&mut self, what: &str) -> Result<u8, ManifestError> {
        Ok(self.take(1, what)?[0])
    }

    /// Unsigned LEB128, shortest form only, at most 64 bits.
    fn varint(&mut self, what: &str) -> Result<u64, ManifestError> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = self.byte(what)?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(corrupt(format!("{what} overflows 64 bits")));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(corrupt(format!("{what} is not in shortest form")));
                }
                return Ok(value);
            }
        }
        Err(corrupt(format!("{what} overflows 64 bits")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> Entry {
        Entry {
            mode: Mode::File,
            size: u64::from(n),
            hash: blake3::hash(&[n]),
        }
    }

    #[test]
    fn insert_refuses_malformed_paths() {
        let mut m = Manifest::new();
        let long = "a".repeat(MAX_PATH_LEN + 1);
        for bad in [
            "", "/a", "a/", "a//b", "./a", "a/./b", "a/../b", "..", "a\\b", "a\0b", &long,
        ] {
            assert!(
                matches!(m.insert(bad, entry(0)), Err(ManifestError::InvalidPath(_))),
                "{bad:?} was accepted"
            );
        }
        assert!(m.insert(&"a".repeat(MAX_PATH_LEN), entry(0)).is_ok());
        assert!(m.insert("a b/.hidden/..x/é", entry(0)).is_ok());
    }

    #[test]
    fn insert_refuses_a_file_that_is_also_a_directory() {
        let mut m = Manifest::new();
        m.insert("a/b", entry(1)).unwrap();
        assert!(matches!(
            m.insert("a", entry(2)),
            Err(ManifestError::Conflict { .. })
        ));
        assert!(matches!(
            m.insert("a/b/c", entry(2)),
            Err(ManifestError::Conflict { .. })
        ));
        // Siblings sharing a name prefix are not conflicts.
        m.insert("a.b", entry(3)).unwrap();
        m.insert("a/bc", entry(3)).unwrap();
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn iter_is_sorted_and_insert_replaces() {
        let mut m = Manifest::new();
        m.insert("b", entry(1)).unwrap();
        m.insert("a/z", entry(2)).unwrap();
        m.insert("b", entry(3)).unwrap();
        let paths: Vec<_> = m.iter().map(|(p, e)| (p, e.size)).collect();
        assert_eq!(paths, vec![("a/z", 2), ("b", 3)]);
        assert_eq!(m.remove("b"), Some(entry(3)));
        assert_eq!(m.get("b"), None);
        assert!(!m.is_empty());
    }

    #[test]
    fn encoding_round_trips_and_is_compact() {
        let mut m = Manifest::new();
        for d in 0..10 {
            for f in 0..10 {
                m.insert(&format!("assets/images/dir{d}/file{f}.png"), entry(f))
                    .unwrap();
            }
        }
        let bytes = m.to_bytes();
        assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
        // Prefix sharing keeps an entry near hash + a few bytes.
        assert!(bytes.len() < 100 * 42, "{} bytes", bytes.len());
        assert_eq!(
            Manifest::from_bytes(&Manifest::new().to_bytes()).unwrap(),
            Manifest::new()
        );
    }

    #[test]
    fn decoder_refuses_non_canonical_and_hostile_input() {
        let mut m = Manifest::new();
        m.insert("ab", entry(1)).unwrap();
        m.insert("ac", entry(2)).unwrap();
        let good = m.to_bytes();

        // Every truncation fails cleanly.
        for len in 0..good.len() {
            assert!(Manifest::from_bytes(&good[..len]).is_err());
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(Manifest::from_bytes(&trailing).is_err());

        // Second entry written with shared = 0 instead of 1: same manifest,
        // different bytes, so refused.
        let mut loose = b"MKMF\x01\x02".to_vec();
        loose.extend_from_slice(&[0, 2, b'a', b'b', 0, 1]);
        loose.extend_from_slice(entry(1).hash.as_bytes());
        loose.extend_from_slice(&[0, 2, b'a', b'c', 0, 2]);
        loose.extend_from_slice(entry(2).hash.as_bytes());
        assert!(Manifest::from_bytes(&loose).is_err());

        // A huge claimed count is refused before anything is allocated.
        let mut huge = b"MKMF\x01".to_vec();
        put_varint(&mut huge, u64::MAX);
        assert!(Manifest::from_bytes(&huge).is_err());

        // Non-shortest varint.
        assert!(Manifest::from_bytes(b"MKMF\x01\x80\x00").is_err());
        // Unknown version.
        assert!(Manifest::from_bytes(b"MKMF\x02\x00").is_err());
    }
}
