//! Many writes made durable together: one filesystem sync before a group
//! of files is linked into place and one after, instead of two fsyncs per
//! file.
//!
//! A node receiving a revision from a peer stores thousands of objects and
//! variants at once; syncing each file and its directory on its own made
//! the disk, not the network, the bound on how fast a first deploy spread.
//! The guarantee is the store's usual one: a name appears only once its
//! bytes are on disk (the sync before linking), and a group's names
//! survive a crash once [`Batch::commit`] (or an automatic flush) returns.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::encoding::Encoding;
use super::store::{Cas, CasError, Persisted, TempFile, io_error};
use super::variants::{MIN_SIZE, SKIP_SUFFIX, make_in_memory};

/// Files staged before a flush: bounds open descriptors and what a crash
/// can cost.
const FLUSH_EVERY: usize = 256;

/// Writes waiting to be synced and linked, in the order they were added.
pub struct Batch<'a> {
    cas: &'a Cas,
    staged: Vec<(TempFile, PathBuf)>,
}

impl Cas {
    /// A new, empty batch of writes into this store.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            cas: self,
            staged: Vec::new(),
        }
    }
}

impl Batch<'_> {
    /// Adds object `hash`, whose `bytes` the caller has checked hash to it.
    pub fn add_object(&mut self, hash: &blake3::Hash, bytes: &[u8]) -> Result<(), CasError> {
        if self.cas.contains(hash) {
            return Ok(());
        }
        self.stage(bytes, self.cas.path(hash))
    }

    /// Adds `encoded` as the `encoding` variant of object `hash` (`size`
    /// bytes) once it is checked to decode to exactly that object. Add the
    /// object first: links happen in order, so no variant is ever linked
    /// beside a missing object.
    pub fn add_variant(
        &mut self,
        hash: &blake3::Hash,
        encoding: Encoding,
        encoded: &[u8],
        size: u64,
    ) -> Result<(), CasError> {
        self.cas.check_variant(hash, encoding, encoded, size)?;
        let dest = self.cas.variant_path(hash, encoding);
        if dest.exists() {
            return Ok(());
        }
        self.stage(encoded, dest)
    }

    /// Adds object `hash` (`bytes`, which the caller has hashed) and, when
    /// `compressible`, the precompressed variants of it worth keeping, made
    /// here from `bytes` at the levels for its size, with the skip marker
    /// when some were not worth it. This is how a deploy stores its files:
    /// no fsync per file, and the object is never read back to compress.
    ///
    /// An object already stored keeps what it has and gets only the
    /// variants it lacks, made as [`Cas::ensure_variants`] makes them.
    pub fn add_object_with_variants(
        &mut self,
        hash: &blake3::Hash,
        bytes: &[u8],
        compressible: bool,
    ) -> Result<(), CasError> {
        if self.cas.contains(hash) {
            if compressible {
                self.cas.ensure_variants(hash, true)?;
            }
            return Ok(());
        }
        self.stage(bytes, self.cas.path(hash))?;
        if !compressible || (bytes.len() as u64) < MIN_SIZE {
            return Ok(());
        }
        let made = make_in_memory(bytes).map_err(io_error("compressing", &self.cas.path(hash)))?;
        // Staged after the object, so linked after it.
        for (encoding, encoded) in &made.kept {
            self.stage(encoded, self.cas.variant_path(hash, *encoding))?;
        }
        if made.skipped {
            self.stage(&[], self.cas.suffixed_path(hash, SKIP_SUFFIX))?;
        }
        Ok(())
    }

    /// Adds `encoded` as the `encoding` variant of object `hash` (`size`
    /// bytes) when the caller has itself decoded it and found the result
    /// hashes to `hash` (it is the variant the object was recovered from):
    /// checking it again would decode it twice. As [`Batch::add_variant`],
    /// add the object first.
    pub fn add_decoded_variant(
        &mut self,
        hash: &blake3::Hash,
        encoding: Encoding,
        encoded: &[u8],
        size: u64,
    ) -> Result<(), CasError> {
        if encoding == Encoding::Identity || encoded.len() as u64 >= size {
            return Err(CasError::BadVariant {
                hash: *hash,
                encoding: encoding.as_str(),
                reason: super::store::VariantFault::NotSmaller,
            });
        }
        let dest = self.cas.variant_path(hash, encoding);
        if dest.exists() {
            return Ok(());
        }
        self.stage(encoded, dest)
    }

    /// Adds the marker saying `hash`'s absent variants were tried.
    pub fn add_skip_marker(&mut self, hash: &blake3::Hash) -> Result<(), CasError> {
        let dest = self.cas.suffixed_path(hash, SKIP_SUFFIX);
        if dest.exists() {
            return Ok(());
        }
        self.stage(&[], dest)
    }

    /// Syncs and links everything still staged.
    pub fn commit(mut self) -> Result<(), CasError> {
        self.flush()
    }

    fn stage(&mut self, bytes: &[u8], dest: PathBuf) -> Result<(), CasError> {
        let mut temp = self.cas.temp_file()?;
        temp.file
            .write_all(bytes)
            .map_err(io_error("writing", &temp.path))?;
        self.staged.push((temp, dest));
        if self.staged.len() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// One sync for the staged files' bytes, their links in order, one
    /// sync for the names.
    fn flush(&mut self) -> Result<(), CasError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        sync_filesystem(self.cas.tmp_dir())?;
        let mut linked = false;
        // Each temp name is removed as its entry drops, linked or not.
        for (temp, dest) in self.staged.drain(..) {
            linked |= temp.link(&dest, false)?.0 == Persisted::New;
        }
        if linked {
            sync_filesystem(self.cas.root())?;
        }
        Ok(())
    }
}

/// Flushes everything written to the filesystem holding `dir` (syncfs(2)).
fn sync_filesystem(dir: &Path) -> Result<(), CasError> {
    let handle = File::open(dir).map_err(io_error("opening for sync", dir))?;
    // SAFETY: syncfs only reads the descriptor, which `handle` keeps open
    // for the duration of the call.
    let rc = unsafe { libc::syncfs(handle.as_raw_fd()) };
    if rc != 0 {
        return Err(io_error("syncing the filesystem of", dir)(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cas::Variants;
    use crate::cas::test_store as store;

    #[test]
    fn a_batch_links_objects_and_checked_variants_and_leaves_no_temp_files() {
        let (_dir, cas) = store();
        let page: Vec<u8> = (0..2000)
            .flat_map(|i| format!("<p>{i}</p>\n").into_bytes())
            .collect();
        let hash = blake3::hash(&page);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&page).unwrap();
            e.finish().unwrap()
        };
        let mut batch = cas.batch();
        batch.add_object(&hash, &page).unwrap();
        batch
            .add_variant(&hash, Encoding::Gzip, &gz, page.len() as u64)
            .unwrap();
        // A variant of other bytes is refused before anything is staged.
        let wrong = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&page[1..]).unwrap();
            e.finish().unwrap()
        };
        assert!(matches!(
            batch.add_variant(&hash, Encoding::Zstd, &wrong, page.len() as u64),
            Err(CasError::BadVariant { .. })
        ));
        batch.add_skip_marker(&hash).unwrap();
        // Nothing is visible before the commit.
        assert!(!cas.contains(&hash));
        batch.commit().unwrap();
        assert_eq!(cas.read(&hash).unwrap(), page);
        assert_eq!(cas.variants(&hash).gzip, Some(gz.len() as u64));
        assert!(cas.has_skip_marker(&hash));
        assert_eq!(std::fs::read_dir(cas.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn an_object_with_variants_made_in_memory_appears_whole_at_commit() {
        let (_dir, cas) = store();
        let page: Vec<u8> = (0..3000)
            .flat_map(|i| format!("<li><a href=\"/p/{i}\">{i}</a></li>\n").into_bytes())
            .collect();
        let hash = blake3::hash(&page);
        let noise: Vec<u8> = {
            let mut out = vec![0u8; 100_000];
            blake3::Hasher::new().finalize_xof().fill(&mut out);
            out
        };
        let noise_hash = blake3::hash(&noise);
        let mut batch = cas.batch();
        batch.add_object_with_variants(&hash, &page, true).unwrap();
        batch
            .add_object_with_variants(&noise_hash, &noise, true)
            .unwrap();
        assert!(!cas.contains(&hash));
        assert_eq!(cas.variants(&hash), Variants::default());
        batch.commit().unwrap();

        assert_eq!(cas.read(&hash).unwrap(), page);
        let variants = cas.variants(&hash);
        for encoding in Encoding::PRECOMPRESSED {
            let stored = cas.read_variant(&hash, encoding).unwrap().unwrap();
            assert_eq!(Some(stored.len() as u64), variants.get(encoding));
            cas.check_variant(&hash, encoding, &stored, page.len() as u64)
                .unwrap();
        }
        assert!(!cas.has_skip_marker(&hash));
        // Bytes no encoder shrinks get no variants and the marker, so no
        // later deploy tries again.
        assert_eq!(cas.read(&noise_hash).unwrap(), noise);
        assert_eq!(cas.variants(&noise_hash), Variants::default());
        assert!(cas.has_skip_marker(&noise_hash));
        assert_eq!(std::fs::read_dir(cas.tmp_dir()).unwrap().count(), 0);

        // Stored again, nothing changes and nothing is compressed anew.
        let mut again = cas.batch();
        again.add_object_with_variants(&hash, &page, true).unwrap();
        again.commit().unwrap();
        assert_eq!(cas.variants(&hash), variants);
    }

    #[test]
    fn a_file_not_to_compress_gets_no_variants() {
        let (_dir, cas) = store();
        let page = "<p>not compressed</p>\n".repeat(500).into_bytes();
        let hash = blake3::hash(&page);
        let mut batch = cas.batch();
        batch.add_object_with_variants(&hash, &page, false).unwrap();
        batch.commit().unwrap();
        assert_eq!(cas.read(&hash).unwrap(), page);
        assert_eq!(cas.variants(&hash), Variants::default());
        assert!(!cas.has_skip_marker(&hash));
    }

    #[test]
    fn a_dropped_batch_leaves_nothing() {
        let (_dir, cas) = store();
        let hash = blake3::hash(b"never committed");
        let mut batch = cas.batch();
        batch.add_object(&hash, b"never committed").unwrap();
        drop(batch);
        assert!(!cas.contains(&hash));
        assert_eq!(std::fs::read_dir(cas.tmp_dir()).unwrap().count(), 0);
    }
}
