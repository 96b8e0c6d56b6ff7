//! Precompressed variants: made once beside an object, served as they are.
//!
//! A variant is kept only when it is meaningfully smaller than the object;
//! otherwise a `.skip` marker records that the attempt was made, so later
//! deploys of the same object do not compress it again.

use std::fs::{self, File};
use std::io::{self, BufReader, Write};

use super::encoding::{Encoding, Variants, compress, decompress, levels_for};
use super::store::{Cas, CasError, VariantFault, io_error};

/// Suffix of the marker saying some variant was not worth keeping.
pub(super) const SKIP_SUFFIX: &str = ".skip";

/// Objects smaller than this are never compressed: the savings would not
/// pay for the encoding headers and the extra inodes.
pub(super) const MIN_SIZE: u64 = 256;

/// The variants of an object worth keeping, made in memory.
pub(super) struct Made {
    /// Each kept variant's encoding and bytes, in the order of `levels_for`.
    pub(super) kept: Vec<(Encoding, Vec<u8>)>,
    /// Whether some variant came out too big to keep (the object then
    /// gets the skip marker).
    pub(super) skipped: bool,
}

/// Makes the precompressed variants of `bytes` (a whole object) at the
/// levels for its size, keeping those under 90% of it. Used when the
/// object is already in memory (a blob from a push, a file being
/// imported), so its bytes are not read back from disk once per encoding.
pub(super) fn make_in_memory(bytes: &[u8]) -> io::Result<Made> {
    let size = bytes.len() as u64;
    let mut made = Made {
        kept: Vec::new(),
        skipped: false,
    };
    for (encoding, level) in levels_for(size) {
        let mut output = Capped {
            inner: Vec::new(),
            written: 0,
            limit: keep_limit(size),
            exceeded: false,
        };
        let result = compress(encoding, level, size, &mut &bytes[..], &mut output);
        match result {
            Err(_) if output.exceeded => made.skipped = true,
            Err(e) => return Err(e),
            Ok(()) if output.exceeded || output.written >= output.limit => made.skipped = true,
            Ok(()) => made.kept.push((encoding, output.inner)),
        }
    }
    Ok(made)
}

/// The size a variant of a `size`-byte object must stay under to be kept:
/// 90% of it, computed without overflow.
fn keep_limit(size: u64) -> u64 {
    size / 10 * 9 + size % 10 * 9 / 10
}

impl Cas {
    /// Makes the missing precompressed variants of object `hash` if it is
    /// `compressible`, and returns the variants now present.
    ///
    /// Levels depend on the object's size (see `levels_for`). A variant is
    /// kept only if it is under 90% of the object's size. Concurrent calls
    /// for one object are safe: the first variant written wins.
    pub fn ensure_variants(
        &self,
        hash: &blake3::Hash,
        compressible: bool,
    ) -> Result<Variants, CasError> {
        let present = self.variants(hash);
        let object = self.path(hash);
        let size = match fs::metadata(&object) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CasError::Missing { hash: *hash });
            }
            Err(e) => return Err(io_error("reading size of", &object)(e)),
        };
        let marker = self.suffixed_path(hash, SKIP_SUFFIX);
        if !compressible || size < MIN_SIZE || marker.exists() {
            return Ok(present);
        }

        let mut skipped = false;
        for (encoding, level) in levels_for(size) {
            if present.get(encoding).is_none() {
                skipped |= self.make_variant(hash, size, encoding, level)?.is_none();
            }
        }
        if skipped {
            self.temp_file()?.persist(&marker)?;
        }
        Ok(self.variants(hash))
    }

    /// The variants of `hash` on disk, with their sizes.
    pub fn variants(&self, hash: &blake3::Hash) -> Variants {
        let mut variants = Variants::default();
        for encoding in Encoding::PRECOMPRESSED {
            let size = fs::metadata(self.variant_path(hash, encoding))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            variants.set(encoding, size);
        }
        variants
    }

    /// The bytes of the `encoding` variant of `hash`, if there is one.
    pub fn read_variant(
        &self,
        hash: &blake3::Hash,
        encoding: Encoding,
    ) -> Result<Option<Vec<u8>>, CasError> {
        let path = self.variant_path(hash, encoding);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("reading variant", &path)(e)),
        }
    }

    /// Whether `hash` carries the marker saying its absent variants were
    /// tried and not worth keeping (a batch adds one with
    /// [`crate::cas::Batch::add_skip_marker`]).
    pub fn has_skip_marker(&self, hash: &blake3::Hash) -> bool {
        self.suffixed_path(hash, SKIP_SUFFIX).exists()
    }

    /// Checks that `encoded` is an `encoding` variant of object `hash`
    /// (`size` bytes): smaller than it, and decoding to exactly its bytes.
    pub(super) fn check_variant(
        &self,
        hash: &blake3::Hash,
        encoding: Encoding,
        encoded: &[u8],
        size: u64,
    ) -> Result<(), CasError> {
        let bad = |reason: VariantFault| CasError::BadVariant {
            hash: *hash,
            encoding: encoding.as_str(),
            reason,
        };
        if encoding == Encoding::Identity || encoded.len() as u64 >= size {
            return Err(bad(VariantFault::NotSmaller));
        }
        let decoded = decompress(encoding, encoded, size).map_err(|e| bad(e.into()))?;
        if decoded.len() as u64 != size || blake3::hash(&decoded) != *hash {
            return Err(bad(VariantFault::Different));
        }
        Ok(())
    }

    /// Compresses object `hash` as `encoding`; stores and returns the
    /// variant's size if it came out under 90% of `size`, else `None`.
    fn make_variant(
        &self,
        hash: &blake3::Hash,
        size: u64,
        encoding: Encoding,
        level: u32,
    ) -> Result<Option<u64>, CasError> {
        let object = self.path(hash);
        let source = File::open(&object).map_err(io_error("opening object", &object))?;
        let mut input = BufReader::with_capacity(256 * 1024, source);
        let mut temp = self.temp_file()?;
        let mut output = Capped {
            inner: &mut temp.file,
            written: 0,
            limit: keep_limit(size),
            exceeded: false,
        };
        let result = compress(encoding, level, size, &mut input, &mut output);
        let (written, exceeded) = (output.written, output.exceeded);
        match result {
            // Gave up early: the variant was already too big to be worth it.
            Err(_) if exceeded => return Ok(None),
            Err(e) => return Err(io_error(compress_context(encoding), &object)(e)),
            Ok(()) if exceeded || written >= output.limit => return Ok(None),
            Ok(()) => {}
        }
        temp.persist(&self.variant_path(hash, encoding))?;
        Ok(Some(written))
    }
}

fn compress_context(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Identity => "copying",
        Encoding::Gzip => "gzip-compressing",
        Encoding::Zstd => "zstd-compressing",
        Encoding::Brotli => "brotli-compressing",
    }
}

/// A writer that fails once `limit` bytes would be reached, so compressing
/// an incompressible object stops early instead of running to the end.
struct Capped<W> {
    inner: W,
    written: u64,
    limit: u64,
    exceeded: bool,
}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 >= self.limit {
            self.exceeded = true;
            return Err(io::Error::other("variant not smaller than 90% of object"));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cas::test_store as store;
    use std::io::Read;

    fn decode(encoding: Encoding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            Encoding::Gzip => {
                flate2::read::GzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Encoding::Zstd => {
                zstd::stream::read::Decoder::new(bytes)
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Encoding::Brotli => {
                brotli::Decompressor::new(bytes, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Encoding::Identity => out.extend_from_slice(bytes),
        }
        out
    }

    fn html(len: usize) -> Vec<u8> {
        let mut page = Vec::new();
        let mut i = 0u64;
        while page.len() < len {
            page.extend_from_slice(
                format!("<li><a href=\"/post/{i}\">Post {i}</a></li>\n").as_bytes(),
            );
            i += 1;
        }
        page.truncate(len);
        page
    }

    /// Bytes no compressor can shrink (a blake3 output stream).
    fn noise(len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        blake3::Hasher::new().finalize_xof().fill(&mut out);
        out
    }

    #[test]
    fn variants_decode_to_the_original() {
        let (_dir, cas) = store();
        let page = html(64 * 1024);
        let hash = cas.put_bytes(&page).unwrap();

        let variants = cas.ensure_variants(&hash, true).unwrap();
        for encoding in Encoding::PRECOMPRESSED {
            let size = variants.get(encoding).unwrap();
            let stored = fs::read(cas.variant_path(&hash, encoding)).unwrap();
            assert_eq!(stored.len() as u64, size);
            assert!(size < page.len() as u64 * 9 / 10);
            assert_eq!(decode(encoding, &stored), page, "{encoding:?}");
        }
        assert_eq!(cas.variants(&hash), variants);
        // A second call finds everything in place.
        assert_eq!(cas.ensure_variants(&hash, true).unwrap(), variants);
    }

    #[test]
    fn incompressible_data_gets_no_variants_and_no_retry() {
        let (_dir, cas) = store();
        let hash = cas.put_bytes(&noise(200_000)).unwrap();
        assert_eq!(
            cas.ensure_variants(&hash, true).unwrap(),
            Variants::default()
        );
        assert!(cas.suffixed_path(&hash, SKIP_SUFFIX).exists());
        assert_eq!(fs::read_dir(cas.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn not_compressible_or_tiny_is_left_alone() {
        let (_dir, cas) = store();
        let page = cas.put_bytes(&html(10_000)).unwrap();
        assert_eq!(
            cas.ensure_variants(&page, false).unwrap(),
            Variants::default()
        );
        let tiny = cas.put_bytes(b"<p>hi</p>").unwrap();
        assert_eq!(
            cas.ensure_variants(&tiny, true).unwrap(),
            Variants::default()
        );
        assert!(!cas.suffixed_path(&tiny, SKIP_SUFFIX).exists());
    }

    #[test]
    fn a_missing_object_is_reported() {
        let (_dir, cas) = store();
        let absent = blake3::hash(b"absent");
        assert!(matches!(
            cas.ensure_variants(&absent, true),
            Err(CasError::Missing { .. })
        ));
    }

    #[test]
    fn a_20_mb_file_is_stored_and_compressed() {
        let (dir, cas) = store();
        let src = dir.path().join("big.json");
        fs::write(&src, html(20 * 1024 * 1024)).unwrap();
        let started = std::time::Instant::now();
        let (hash, size) = cas.put_file(&src).unwrap();
        let put = started.elapsed();
        let variants = cas.ensure_variants(&hash, true).unwrap();
        eprintln!(
            "20 MiB: put {:?}, put + variants {:?}, {variants:?} of {size}",
            put,
            started.elapsed()
        );
        // Above 16 MiB only gzip and zstd are made.
        assert!(variants.gzip.is_some() && variants.zstd.is_some());
        assert_eq!(variants.brotli, None);
        let zst = fs::read(cas.variant_path(&hash, Encoding::Zstd)).unwrap();
        assert_eq!(blake3::hash(&decode(Encoding::Zstd, &zst)), hash);
    }
}
