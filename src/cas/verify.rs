//! Checking stored objects against their names, and setting aside those
//! that fail, for the scrub (`scrub/`).
//!
//! Disks rot and operators slip: an object file can come to hold bytes
//! other than those its blake3 names, or vanish while a revision still
//! needs it. Reads here stream through a caller's pacing function, so a
//! scrub reads at the rate it was given rather than as fast as the disk
//! allows. A damaged object is never repaired in place (readers may have
//! it mapped): it is moved aside to `objects/damaged/`, with its variants,
//! and a sound copy is stored under its name as any new object is.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::encoding::Encoding;
use super::store::{Cas, CasError, io_error};
use super::variants::SKIP_SUFFIX;

/// Where damaged objects are set aside, inside `objects/`. Fan-out
/// directories are two hex digits, so it can never clash with one.
pub(super) const DAMAGED_DIR: &str = "damaged";

/// Read size of a check.
const CHUNK: usize = 256 * 1024;

/// What a check found of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Its bytes hash to its name.
    Sound { size: u64 },
    /// No file under its name.
    Missing,
    /// The file holds other bytes, or cannot be read; says which.
    Damaged { reason: String },
}

impl Cas {
    /// Reads object `hash` whole through `pace` (called with each chunk's
    /// length before the next read) and says whether it is sound.
    pub fn check(
        &self,
        hash: &blake3::Hash,
        pace: &mut dyn FnMut(usize),
    ) -> Result<Health, CasError> {
        let path = self.path(hash);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Health::Missing),
            Err(e) => {
                return Ok(Health::Damaged {
                    reason: format!("cannot open: {e}"),
                });
            }
        };
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let copied = io::copy(
            &mut Paced { inner: file, pace },
            &mut Sink {
                hasher: &mut hasher,
                written: &mut size,
            },
        );
        if let Err(e) = copied {
            return Ok(Health::Damaged {
                reason: format!("cannot read: {e}"),
            });
        }
        let actual = hasher.finalize();
        if actual != *hash {
            return Ok(Health::Damaged {
                reason: format!("its {size} bytes hash to {actual}"),
            });
        }
        Ok(Health::Sound { size })
    }

    /// The precompressed variants of `hash` (an object of `size` bytes)
    /// that do not decode to it, each with the reason, read through `pace`.
    pub fn check_variants(
        &self,
        hash: &blake3::Hash,
        size: u64,
        pace: &mut dyn FnMut(usize),
    ) -> Vec<(Encoding, String)> {
        let mut bad = Vec::new();
        for encoding in Encoding::PRECOMPRESSED {
            let path = self.variant_path(hash, encoding);
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    bad.push((encoding, format!("cannot open: {e}")));
                    continue;
                }
            };
            match decoded_hash(encoding, Paced { inner: file, pace }, size) {
                Ok((actual, len)) if actual == *hash && len == size => {}
                Ok((_, len)) => bad.push((
                    encoding,
                    format!("decodes to {len} bytes that are not the object"),
                )),
                Err(e) => bad.push((encoding, format!("cannot decode: {e}"))),
            }
        }
        bad
    }

    /// Stores `size` bytes of object `hash` again from the first of its
    /// variants that decodes to them; whether one did. The object must be
    /// absent (set aside) for the new copy to take its name.
    pub fn restore_from_variant(&self, hash: &blake3::Hash, size: u64) -> Result<bool, CasError> {
        for encoding in Encoding::PRECOMPRESSED {
            let Some(encoded) = self.read_variant(hash, encoding)? else {
                continue;
            };
            let Ok(bytes) = super::decompress(encoding, &encoded, size) else {
                continue;
            };
            if bytes.len() as u64 == size && blake3::hash(&bytes) == *hash {
                self.put_bytes(&bytes)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Moves object `hash` (if present) and every variant and marker beside
    /// it to `objects/damaged/`, so nothing serves them; returns where the
    /// object went.
    pub fn set_aside(&self, hash: &blake3::Hash) -> Result<Option<PathBuf>, CasError> {
        let moved = self.set_aside_file(self.path(hash))?;
        for encoding in Encoding::PRECOMPRESSED {
            self.set_aside_file(self.variant_path(hash, encoding))?;
        }
        self.set_aside_file(self.suffixed_path(hash, SKIP_SUFFIX))?;
        Ok(moved)
    }

    /// Moves object `hash` alone aside (its variants stay, to restore it
    /// from); returns where it went.
    pub fn set_aside_object(&self, hash: &blake3::Hash) -> Result<Option<PathBuf>, CasError> {
        self.set_aside_file(self.path(hash))
    }

    /// Moves the `encoding` variant of `hash` aside, with the marker that
    /// would stop it being made again.
    pub fn set_aside_variant(
        &self,
        hash: &blake3::Hash,
        encoding: Encoding,
    ) -> Result<(), CasError> {
        self.set_aside_file(self.variant_path(hash, encoding))?;
        self.set_aside_file(self.suffixed_path(hash, SKIP_SUFFIX))?;
        Ok(())
    }

    /// Renames `path` into `objects/damaged/` under its object's full hex
    /// name (plus a counter if an earlier one is there); `None` when it is
    /// not there.
    fn set_aside_file(&self, path: PathBuf) -> Result<Option<PathBuf>, CasError> {
        if fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        let dir = self.root().join(DAMAGED_DIR);
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        let fan_out = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut dest = dir.join(format!("{fan_out}{name}"));
        let mut n = 1;
        while fs::symlink_metadata(&dest).is_ok() {
            dest = dir.join(format!("{fan_out}{name}.{n}"));
            n += 1;
        }
        match fs::rename(&path, &dest) {
            Ok(()) => Ok(Some(dest)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("setting aside", &path)(e)),
        }
    }
}

/// The blake3 and length of what `reader` decodes to as `encoding`,
/// reading no more than `limit + 1` decoded bytes.
fn decoded_hash(
    encoding: Encoding,
    reader: impl Read,
    limit: u64,
) -> io::Result<(blake3::Hash, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut len = 0u64;
    let mut sink = Sink {
        hasher: &mut hasher,
        written: &mut len,
    };
    let cap = limit.saturating_add(1);
    match encoding {
        Encoding::Identity => io::copy(&mut reader.take(cap), &mut sink)?,
        Encoding::Gzip => io::copy(
            &mut flate2::read::GzDecoder::new(reader).take(cap),
            &mut sink,
        )?,
        Encoding::Zstd => io::copy(
            &mut zstd::stream::read::Decoder::new(reader)?.take(cap),
            &mut sink,
        )?,
        Encoding::Brotli => io::copy(
            &mut brotli::Decompressor::new(reader, 4096).take(cap),
            &mut sink,
        )?,
    };
    Ok((hasher.finalize(), len))
}

/// A reader that calls `pace` with each chunk it read.
struct Paced<'a, R> {
    inner: R,
    pace: &'a mut dyn FnMut(usize),
}

impl<R: Read> Read for Paced<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(CHUNK);
        let n = self.inner.read(&mut buf[..len])?;
        (self.pace)(n);
        Ok(n)
    }
}

/// A writer that hashes and counts what it is given.
struct Sink<'a> {
    hasher: &'a mut blake3::Hasher,
    written: &'a mut u64,
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        *self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cas::test_store as store;
    use std::os::unix::fs::PermissionsExt;

    fn page() -> Vec<u8> {
        (0..4000)
            .flat_map(|i| format!("<p>line {i}</p>\n").into_bytes())
            .collect()
    }

    fn damage(path: &std::path::Path, bytes: &[u8]) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_sound_object_passes_and_a_damaged_one_is_named() {
        let (_dir, cas) = store();
        let bytes = page();
        let hash = cas.put_bytes(&bytes).unwrap();
        let mut read = 0usize;
        let health = cas.check(&hash, &mut |n| read += n).unwrap();
        assert_eq!(
            health,
            Health::Sound {
                size: bytes.len() as u64
            }
        );
        assert_eq!(read, bytes.len(), "every byte goes through the pace");

        let mut other = bytes.clone();
        other[100] ^= 1;
        damage(&cas.path(&hash), &other);
        assert!(matches!(
            cas.check(&hash, &mut |_| {}).unwrap(),
            Health::Damaged { .. }
        ));
        assert_eq!(
            cas.check(&blake3::hash(b"absent"), &mut |_| {}).unwrap(),
            Health::Missing
        );
    }

    #[test]
    fn a_damaged_object_comes_back_from_a_sound_variant() {
        let (_dir, cas) = store();
        let bytes = page();
        let size = bytes.len() as u64;
        let hash = cas.put_bytes(&bytes).unwrap();
        cas.ensure_variants(&hash, true).unwrap();
        assert!(cas.check_variants(&hash, size, &mut |_| {}).is_empty());

        damage(&cas.path(&hash), b"rot");
        // One variant rots too: it is named, the others still restore.
        damage(&cas.variant_path(&hash, Encoding::Gzip), b"not gzip");
        let bad = cas.check_variants(&hash, size, &mut |_| {});
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, Encoding::Gzip);

        cas.set_aside_variant(&hash, Encoding::Gzip).unwrap();
        let aside = cas.path(&hash);
        fs::rename(&aside, cas.root().join("kept")).unwrap();
        assert!(cas.restore_from_variant(&hash, size).unwrap());
        assert_eq!(cas.read(&hash).unwrap(), bytes);
        // The set-aside variant can be made again.
        cas.ensure_variants(&hash, true).unwrap();
        assert!(cas.variants(&hash).get(Encoding::Gzip).is_some());
    }

    #[test]
    fn setting_aside_moves_the_object_and_its_variants_out_of_reach() {
        let (_dir, cas) = store();
        let hash = cas.put_bytes(&page()).unwrap();
        cas.ensure_variants(&hash, true).unwrap();
        let moved = cas.set_aside(&hash).unwrap().expect("moved");
        assert!(moved.starts_with(cas.root().join(DAMAGED_DIR)));
        assert!(!cas.contains(&hash));
        assert_eq!(cas.variants(&hash), crate::cas::Variants::default());
        // A second damaged copy of the same object does not replace the first.
        cas.put_bytes(&page()).unwrap();
        let again = cas.set_aside(&hash).unwrap().expect("moved");
        assert_ne!(again, moved);
        assert!(moved.exists() && again.exists());
    }
}
