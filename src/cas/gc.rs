//! Removing objects no kept revision references, and abandoned writes.
//!
//! The caller (deploy) knows which revisions are kept and passes the set of
//! live hashes; this module only knows the layout. gc must not run while an
//! import whose objects are not yet in `live` is writing: it would remove
//! them. Fan-out directories are left in place, since a concurrent write may
//! be about to link into one.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::encoding::Encoding;
use super::store::{Cas, CasError, TMP_DIR, io_error};
use super::variants::SKIP_SUFFIX;
use super::verify::DAMAGED_DIR;

/// A temp file older than this belongs to a write that died: even a 20 MB
/// file is written in seconds.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// What a garbage collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Dead objects removed.
    pub objects_removed: u64,
    /// Variants and markers removed with dead objects.
    pub variants_removed: u64,
    /// Abandoned temp files removed from `tmp/`.
    pub temp_files_removed: u64,
    /// Bytes of files whose last link was removed. An object still
    /// hard-linked from a materialised revision frees nothing until that
    /// revision's directory goes too.
    pub bytes_freed: u64,
}

impl Cas {
    /// Removes every object not in `live` with its variants, and temp files
    /// older than a minute. Never touches a live object.
    pub fn gc(&self, live: &HashSet<blake3::Hash>) -> Result<GcStats, CasError> {
        let mut stats = GcStats::default();
        for fan_out in read_dir(self.root())? {
            let name = fan_out.file_name();
            let Some(prefix) = name.to_str().filter(|n| is_fan_out(n)) else {
                if name != TMP_DIR && name != DAMAGED_DIR {
                    tracing::warn!(path = %fan_out.path().display(), "unknown entry in objects directory");
                }
                continue;
            };
            for file in read_dir(&fan_out.path())? {
                let file_name = file.file_name();
                let Some((hash, is_object)) = file_name
                    .to_str()
                    .and_then(|rest| parse_object_name(prefix, rest))
                else {
                    tracing::warn!(path = %file.path().display(), "unknown file in objects directory");
                    continue;
                };
                if live.contains(&hash) {
                    continue;
                }
                if let Some(freed) = remove(&file.path())? {
                    stats.bytes_freed += freed;
                    if is_object {
                        stats.objects_removed += 1;
                    } else {
                        stats.variants_removed += 1;
                    }
                }
            }
        }

        let now = SystemTime::now();
        for temp in read_dir(self.tmp_dir())? {
            let path = temp.path();
            let modified = match temp.metadata().and_then(|m| m.modified()) {
                Ok(modified) => modified,
                // Gone already: its write finished meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("reading age of temp file", &path)(e)),
            };
            // A clock step backwards makes the age an error: treat as fresh.
            let stale = now
                .duration_since(modified)
                .is_ok_and(|age| age > STALE_TEMP_AGE);
            if stale && let Some(freed) = remove(&path)? {
                stats.bytes_freed += freed;
                stats.temp_files_removed += 1;
            }
        }
        Ok(stats)
    }
}

/// The entries of `dir`, failing on the first unreadable one.
fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, CasError> {
    fs::read_dir(dir)
        .and_then(|entries| entries.collect())
        .map_err(io_error("listing", dir))
}

/// Whether `name` is a fan-out directory name: two lowercase hex digits.
fn is_fan_out(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The hash a file in fan-out directory `prefix` belongs to, and whether it
/// is the object itself (rather than a variant or marker).
fn parse_object_name(prefix: &str, name: &str) -> Option<(blake3::Hash, bool)> {
    let (rest, suffix) = name.split_at_checked(62)?;
    let known_suffix = suffix.is_empty()
        || suffix == SKIP_SUFFIX
        || Encoding::PRECOMPRESSED.iter().any(|e| e.suffix() == suffix);
    if !known_suffix || !rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let hash = blake3::Hash::from_hex(format!("{prefix}{rest}")).ok()?;
    Some((hash, suffix.is_empty()))
}

/// Removes `path`; returns the bytes freed, or `None` if it was already
/// gone (a concurrent gc).
fn remove(path: &Path) -> Result<Option<u64>, CasError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("reading size of", path)(e)),
    };
    match fs::remove_file(path) {
        Ok(()) => Ok(Some(if meta.nlink() <= 1 { meta.len() } else { 0 })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("removing", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cas::test_store as store;
    use std::fs::File;
    use std::io::Write;

    fn page(n: u32) -> Vec<u8> {
        format!("<h1>page {n}</h1>\n").repeat(100).into_bytes()
    }

    #[test]
    fn gc_keeps_live_and_removes_dead_with_variants() {
        let (_dir, cas) = store();
        let live = cas.put_bytes(&page(1)).unwrap();
        let dead = cas.put_bytes(&page(2)).unwrap();
        cas.ensure_variants(&live, true).unwrap();
        let dead_variants = cas.ensure_variants(&dead, true).unwrap();
        assert!(dead_variants.gzip.is_some());

        let stats = cas.gc(&HashSet::from([live])).unwrap();
        assert_eq!(stats.objects_removed, 1);
        assert_eq!(stats.variants_removed, 3);
        let dead_bytes = page(2).len() as u64
            + dead_variants.gzip.unwrap_or(0)
            + dead_variants.zstd.unwrap_or(0)
            + dead_variants.brotli.unwrap_or(0);
        assert_eq!(stats.bytes_freed, dead_bytes);

        assert!(!cas.contains(&dead));
        assert_eq!(cas.variants(&dead), Default::default());
        assert_eq!(cas.read(&live).unwrap(), page(1));
        assert!(cas.variants(&live).gzip.is_some());
        assert_eq!(cas.gc(&HashSet::from([live])).unwrap(), GcStats::default());
    }

    #[test]
    fn a_hard_linked_object_frees_no_bytes() {
        let (dir, cas) = store();
        let hash = cas.put_bytes(&page(3)).unwrap();
        fs::hard_link(cas.path(&hash), dir.path().join("revision-copy")).unwrap();
        let stats = cas.gc(&HashSet::new()).unwrap();
        assert_eq!(stats.objects_removed, 1);
        assert_eq!(stats.bytes_freed, 0);
    }

    #[test]
    fn an_interrupted_write_never_becomes_an_object_and_is_collected() {
        let (_dir, cas) = store();
        let kept = cas.put_bytes(&page(4)).unwrap();

        // A writer that died after writing half its bytes.
        let bytes = page(5);
        let mut temp = cas.temp_file().unwrap();
        temp.file.write_all(&bytes[..bytes.len() / 2]).unwrap();
        let path = temp.path.clone();
        std::mem::forget(temp);
        assert!(!cas.contains(&blake3::hash(&bytes)));
        assert!(!cas.contains(&blake3::hash(&bytes[..bytes.len() / 2])));

        // Fresh: it may still be in flight, so it stays.
        assert_eq!(cas.gc(&HashSet::from([kept])).unwrap(), GcStats::default());
        assert!(path.exists());

        let old = SystemTime::now() - Duration::from_secs(120);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let stats = cas.gc(&HashSet::from([kept])).unwrap();
        assert_eq!(stats.temp_files_removed, 1);
        assert_eq!(stats.objects_removed, 0);
        assert!(!path.exists());
        assert!(cas.contains(&kept));
    }

    #[test]
    fn unknown_files_are_left_alone() {
        let (_dir, cas) = store();
        let stray = cas.root().join("ab").join("notes.txt");
        fs::create_dir_all(stray.parent().unwrap()).unwrap();
        fs::write(&stray, b"operator's file").unwrap();
        assert_eq!(cas.gc(&HashSet::new()).unwrap(), GcStats::default());
        assert!(stray.exists());
    }

    #[test]
    fn object_names_parse_back_to_hashes() {
        let hash = blake3::hash(b"x");
        let hex = hash.to_hex();
        assert_eq!(parse_object_name(&hex[..2], &hex[2..]), Some((hash, true)));
        let zst = format!("{}.zst", &hex[2..]);
        assert_eq!(parse_object_name(&hex[..2], &zst), Some((hash, false)));
        assert_eq!(
            parse_object_name(&hex[..2], &format!("{}.tmp", &hex[2..])),
            None
        );
        assert_eq!(parse_object_name(&hex[..2], &hex[3..]), None);
    }
}
