//! Reading and writing objects: the on-disk layout and atomic writes.
//!
//! Every write goes to a fresh file in `tmp/`, is fsynced, made read-only and
//! then hard-linked to its final name. `link` refuses to replace an existing
//! name, so concurrent writers of one object race harmlessly (the first wins,
//! the rest are duplicates) and readers never see a partial object. Hard
//! links are already required of this filesystem: revisions are materialised
//! as hard links into `objects/`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::encoding::Encoding;

/// Name of the directory for in-flight writes, inside `objects/`. Fan-out
/// directories are two hex digits, so it can never clash with one.
pub(super) const TMP_DIR: &str = "tmp";

/// Read size when streaming a file in; large enough for blake3's SIMD paths.
const CHUNK: usize = 256 * 1024;

/// Permissions of stored objects and variants: nothing may change them in
/// place, since revisions hard-link them.
const READ_ONLY: u32 = 0o444;

/// Errors from the object store, naming the object or file involved.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("object {hash} is not in the store")]
    Missing { hash: blake3::Hash },
    #[error("object {hash} is corrupt: its bytes hash to {actual}")]
    Corrupt {
        hash: blake3::Hash,
        actual: blake3::Hash,
    },
    #[error("{encoding} variant offered for object {hash} does not decode to it: {reason}")]
    BadVariant {
        hash: blake3::Hash,
        encoding: &'static str,
        #[source]
        reason: VariantFault,
    },
}

/// What is wrong with a variant offered for an object.
#[derive(Debug, thiserror::Error)]
pub enum VariantFault {
    #[error("not a variant smaller than the object")]
    NotSmaller,
    #[error(transparent)]
    Undecodable(#[from] io::Error),
    #[error("different bytes")]
    Different,
}

/// Builds the error for a failed `context` on `path`.
pub(super) fn io_error(context: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CasError {
    let path = path.to_path_buf();
    move |source| CasError::Io {
        context,
        path,
        source,
    }
}

/// The object store rooted at a data directory's `objects/`.
#[derive(Debug, Clone)]
pub struct Cas {
    /// The `objects/` directory: fan-out directories and `tmp/`.
    root: PathBuf,
    /// Where writes live until they are complete and synced.
    tmp: PathBuf,
}

impl Cas {
    /// Opens the store at `dir` (the `objects/` directory), creating it and
    /// its `tmp/` directory if needed.
    pub fn open(dir: &Path) -> Result<Cas, CasError> {
        let tmp = dir.join(TMP_DIR);
        fs::create_dir_all(&tmp).map_err(io_error("creating object directory", &tmp))?;
        Ok(Cas {
            root: dir.to_path_buf(),
            tmp,
        })
    }

    /// The `objects/` directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where object `hash` lives: `objects/<2 hex>/<62 hex>`.
    pub fn path(&self, hash: &blake3::Hash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// Where the `encoding` variant of `hash` lives, beside the object.
    pub fn variant_path(&self, hash: &blake3::Hash, encoding: Encoding) -> PathBuf {
        self.suffixed_path(hash, encoding.suffix())
    }

    /// The object's path with `suffix` appended to its file name.
    pub(super) fn suffixed_path(&self, hash: &blake3::Hash, suffix: &str) -> PathBuf {
        let hex = hash.to_hex();
        self.root
            .join(&hex[..2])
            .join(format!("{}{suffix}", &hex[2..]))
    }

    /// The directory of in-flight writes.
    pub(super) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Whether object `hash` is stored.
    pub fn contains(&self, hash: &blake3::Hash) -> bool {
        fs::metadata(self.path(hash)).is_ok_and(|m| m.is_file())
    }

    /// Stores the file at `src`, streaming it, and returns its hash and size.
    ///
    /// The file is hashed once before anything is written, so a file the
    /// store already holds (most of a redeploy) costs a read and no write.
    /// A new file is then copied while hashed again, and stored under the
    /// hash of what was copied, so a file changing underneath is never
    /// stored under a wrong name.
    pub fn put_file(&self, src: &Path) -> Result<(blake3::Hash, u64), CasError> {
        let mut source = File::open(src).map_err(io_error("opening", src))?;
        let mut buffer = vec![0u8; CHUNK];

        let mut hasher = blake3::Hasher::new();
        stream(&mut source, src, &mut buffer, |chunk| {
            hasher.update(chunk);
            Ok(())
        })?;
        let hash = hasher.finalize();
        if self.contains(&hash) {
            let size = fs::metadata(self.path(&hash))
                .map_err(io_error("reading size of", &self.path(&hash)))?
                .len();
            return Ok((hash, size));
        }

        source.rewind().map_err(io_error("rewinding", src))?;
        let mut temp = self.temp_file()?;
        let mut hasher = blake3::Hasher::new();
        let size = stream(&mut source, src, &mut buffer, |chunk| {
            hasher.update(chunk);
            temp.file
                .write_all(chunk)
                .map_err(io_error("writing", &temp.path))
        })?;
        let hash = hasher.finalize();
        temp.persist(&self.path(&hash))?;
        Ok((hash, size))
    }

    /// Stores `bytes` and returns their hash.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<blake3::Hash, CasError> {
        let hash = blake3::hash(bytes);
        if self.contains(&hash) {
            return Ok(hash);
        }
        let mut temp = self.temp_file()?;
        temp.file
            .write_all(bytes)
            .map_err(io_error("writing", &temp.path))?;
        temp.persist(&self.path(&hash))?;
        Ok(hash)
    }

    /// Reads object `hash` whole and checks its blake3. For small objects
    /// such as manifests; serve files from [`Cas::path`] instead.
    pub fn read(&self, hash: &blake3::Hash) -> Result<Vec<u8>, CasError> {
        let path = self.path(hash);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CasError::Missing { hash: *hash });
            }
            Err(e) => return Err(io_error("reading object", &path)(e)),
        };
        let actual = blake3::hash(&bytes);
        if actual != *hash {
            return Err(CasError::Corrupt {
                hash: *hash,
                actual,
            });
        }
        Ok(bytes)
    }

    /// A new, empty temp file in `tmp/`, removed again unless persisted.
    pub(super) fn temp_file(&self) -> Result<TempFile, CasError> {
        /// Tells apart temp files of one process; the pid tells processes apart.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let name = format!(
                "{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let path = self.tmp.join(name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile { path, file });
                }
                // Left by an earlier process that had our pid; take the next.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("creating temp file", &path)(e)),
            }
        }
    }
}

/// Reads all of `source` in chunks, handing each to `sink`; returns the size.
fn stream(
    source: &mut File,
    path: &Path,
    buffer: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), CasError>,
) -> Result<u64, CasError> {
    let mut size = 0u64;
    loop {
        let n = match source.read(buffer) {
            Ok(0) => return Ok(size),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error("reading", path)(e)),
        };
        sink(&buffer[..n])?;
        size += n as u64;
    }
}

/// A write in progress under `tmp/`. Its name is removed on drop, whether
/// or not it was linked into place: a persisted object keeps the inode.
pub(super) struct TempFile {
    pub(super) path: PathBuf,
    pub(super) file: File,
}

/// What [`TempFile::persist`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Persisted {
    /// The file is now at its final name.
    New,
    /// Something was already there; the temp file was dropped.
    Existing,
}

impl TempFile {
    /// Syncs the file, makes it read-only and links it at `dest` without
    /// replacing anything there, then syncs the directory so the name
    /// survives a crash.
    pub(super) fn persist(self, dest: &Path) -> Result<Persisted, CasError> {
        self.file
            .sync_all()
            .map_err(io_error("syncing", &self.path))?;
        let (outcome, dir) = self.link(dest, true)?;
        if outcome == Persisted::New {
            sync_dir(&dir)?;
        }
        // Drop unlinks the temp name; a crash before that leaves a stale
        // temp file, which gc removes without touching the object.
        Ok(outcome)
    }

    /// Makes the file read-only and links it at `dest` without replacing
    /// anything there; returns what happened and `dest`'s directory. Syncs
    /// nothing but a newly created fan-out directory's parent when
    /// `sync_new_dir`: the caller has synced the file's data before and
    /// syncs `dest`'s directory after.
    pub(super) fn link(
        &self,
        dest: &Path,
        sync_new_dir: bool,
    ) -> Result<(Persisted, PathBuf), CasError> {
        self.file
            .set_permissions(fs::Permissions::from_mode(READ_ONLY))
            .map_err(io_error("making read-only", &self.path))?;

        // `dest` is always `objects/<fan-out>/<name>`, so it has a parent.
        let Some(dir) = dest.parent() else {
            return Err(io_error("finding directory of", dest)(io::Error::other(
                "object path has no parent",
            )));
        };
        let created_dir = match fs::create_dir(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(io_error("creating fan-out directory", dir)(e)),
        };
        if sync_new_dir
            && created_dir
            && let Some(root) = dir.parent()
        {
            sync_dir(root)?;
        }

        let outcome = match fs::hard_link(&self.path, dest) {
            Ok(()) => Persisted::New,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Persisted::Existing,
            Err(e) => return Err(io_error("linking object", dest)(e)),
        };
        Ok((outcome, dir.to_path_buf()))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: gc removes whatever a failure here leaves behind.
        let _ = fs::remove_file(&self.path);
    }
}

/// Makes the entries of `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), CasError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("syncing directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cas::test_store as store;
    use std::os::unix::fs::MetadataExt;

    fn tmp_entries(cas: &Cas) -> usize {
        fs::read_dir(cas.tmp_dir()).unwrap().count()
    }

    #[test]
    fn layout_fans_out_by_the_first_byte() {
        let (_dir, cas) = store();
        let hash = blake3::hash(b"x");
        let hex = hash.to_hex();
        let path = cas.path(&hash);
        assert_eq!(path, cas.root().join(&hex[..2]).join(&hex[2..]));
        assert_eq!(path.file_name().unwrap().len(), 62);
        let br = cas.variant_path(&hash, Encoding::Brotli);
        assert_eq!(
            br.file_name().unwrap().to_str().unwrap(),
            format!("{}.br", &hex[2..])
        );
        assert_eq!(cas.variant_path(&hash, Encoding::Identity), path);
    }

    #[test]
    fn equal_content_is_stored_once() {
        let (dir, cas) = store();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        fs::write(&a, b"same bytes").unwrap();
        fs::write(&b, b"same bytes").unwrap();

        let (hash_a, size) = cas.put_file(&a).unwrap();
        let (hash_b, _) = cas.put_file(&b).unwrap();
        assert_eq!(hash_a, hash_b);
        assert_eq!(size, 10);
        assert_eq!(cas.put_bytes(b"same bytes").unwrap(), hash_a);

        let objects: Vec<_> = fs::read_dir(cas.root())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != TMP_DIR)
            .collect();
        assert_eq!(objects.len(), 1);
        let meta = fs::metadata(cas.path(&hash_a)).unwrap();
        assert_eq!(meta.nlink(), 1, "temp name still linked");
        assert_eq!(meta.mode() & 0o777, READ_ONLY);
        assert_eq!(tmp_entries(&cas), 0);
    }

    #[test]
    fn concurrent_writers_of_one_object_agree() {
        let (_dir, cas) = store();
        let bytes: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let hashes: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| cas.put_bytes(&bytes).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(hashes.iter().all(|h| *h == blake3::hash(&bytes)));
        assert_eq!(cas.read(&hashes[0]).unwrap(), bytes);
        assert_eq!(tmp_entries(&cas), 0);
    }

    #[test]
    fn a_20_mb_file_streams_in() {
        let (dir, cas) = store();
        let src = dir.path().join("big.bin");
        let mut file = File::create(&src).unwrap();
        let mut expected = blake3::Hasher::new();
        for i in 0..20u32 {
            let chunk: Vec<u8> = (0..1024 * 1024u32)
                .map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(i) >> 13) as u8)
                .collect();
            expected.update(&chunk);
            file.write_all(&chunk).unwrap();
        }
        drop(file);

        let (hash, size) = cas.put_file(&src).unwrap();
        assert_eq!(hash, expected.finalize());
        assert_eq!(size, 20 * 1024 * 1024);
        assert_eq!(fs::metadata(cas.path(&hash)).unwrap().len(), size);
        assert!(cas.contains(&hash));
    }

    #[test]
    fn read_verifies_and_names_the_object() {
        let (_dir, cas) = store();
        let hash = cas.put_bytes(b"{\"manifest\":1}").unwrap();
        assert_eq!(cas.read(&hash).unwrap(), b"{\"manifest\":1}");

        let path = cas.path(&hash);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, b"{\"manifest\":2}").unwrap();
        let err = cas.read(&hash).unwrap_err();
        assert!(matches!(err, CasError::Corrupt { hash: h, .. } if h == hash));
        assert!(err.to_string().contains(&hash.to_hex().to_string()));

        let absent = blake3::hash(b"absent");
        assert!(matches!(cas.read(&absent), Err(CasError::Missing { .. })));
        assert!(!cas.contains(&absent));
    }

    #[test]
    fn a_missing_source_is_named() {
        let (dir, cas) = store();
        let src = dir.path().join("nope.html");
        let err = cas.put_file(&src).unwrap_err();
        assert!(err.to_string().contains("nope.html"), "{err}");
    }
}
