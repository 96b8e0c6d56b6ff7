//! Object batches on the wire: many CAS objects in one zstd stream, each
//! checked against its blake3 before it is stored.
//!
//! Layout, inside one zstd frame: for each object, its 32-byte blake3, its
//! length as u64 little-endian, then its bytes. Compressing the batch as one
//! stream lets small similar files share a dictionary. The receiver accepts
//! only objects it asked for, no longer than the manifest says, whose bytes
//! hash to their name: a peer can waste a call, never plant an object.
//!
//! A batch asked for `with_variants` starts with [`VARIANTS_MAGIC`] and
//! tags each part with a kind byte after the hash: an object whose
//! precompressed variants the sender holds travels as those variants (they
//! are already smaller than a fresh zstd pass would make it), and the
//! receiver decodes one to get the object, checks every variant decodes to
//! the same bytes, and keeps them. Receivers then serve the very bytes the
//! origin made, and no node spends minutes of brotli's best quality again
//! on content another node already compressed.

use std::collections::HashMap;
use std::io::{Read, Write};

use crate::cas::{Batch, Cas, CasError, Encoding};

/// zstd level for batches: fast, and most of the gain.
const LEVEL: i32 = 3;
/// Most raw bytes the server puts in one batch; the client asks again for
/// the rest.
pub const MAX_BATCH_BYTES: u64 = 256 * 1024 * 1024;
/// Raw bytes a client aims for per batch.
pub const TARGET_BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// The expected size of an object whose size the client does not know (a
/// manifest): anything up to [`MAX_BATCH_BYTES`] is accepted.
pub const UNKNOWN_SIZE: u64 = u64::MAX;
/// First bytes of a batch whose parts carry a kind byte. A plain batch
/// starts with a blake3 hash, which matches these 8 bytes with odds of
/// 2^-64.
const VARIANTS_MAGIC: &[u8; 8] = b"mkobj\x02v\0";
/// The variants a sender ships, in order, while their sum stays within the
/// object's own size; zstd first, as the cheapest to decode.
const SHIPPED: [Encoding; 3] = [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip];

/// What one part of a variants batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Raw,
    Variant(Encoding),
    /// The sender's marker that its absent variants were not worth making;
    /// sent only when every variant it holds was shipped.
    SkipMarker,
}

impl Part {
    fn tag(self) -> u8 {
        match self {
            Part::Raw | Part::Variant(Encoding::Identity) => 0,
            Part::Variant(Encoding::Gzip) => 1,
            Part::Variant(Encoding::Zstd) => 2,
            Part::Variant(Encoding::Brotli) => 3,
            Part::SkipMarker => 4,
        }
    }

    fn from_tag(tag: u8) -> Option<Part> {
        Some(match tag {
            0 => Part::Raw,
            1 => Part::Variant(Encoding::Gzip),
            2 => Part::Variant(Encoding::Zstd),
            3 => Part::Variant(Encoding::Brotli),
            4 => Part::SkipMarker,
            _ => return None,
        })
    }
}

/// Why a batch could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Cas(#[from] CasError),
    #[error("object batch stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer sent object {0} that was not asked for")]
    Unasked(String),
    #[error("peer sent object {hash} of {got} bytes, expected {expected}")]
    Size {
        hash: String,
        got: u64,
        expected: u64,
    },
    #[error("peer sent bytes for {0} that do not hash to it")]
    Mismatch(String),
    #[error("peer sent part kind {kind} for {hash}, which this node does not know")]
    UnknownPart { hash: String, kind: u8 },
    #[error("peer sent only a skip marker for {0}, not the object")]
    NoContent(String),
}

/// Encodes the objects of `hashes` that `cas` holds, up to
/// [`MAX_BATCH_BYTES`] of content; `with_variants` ships precompressed
/// variants in place of objects that have them.
pub fn encode(
    cas: &Cas,
    hashes: &[blake3::Hash],
    with_variants: bool,
) -> Result<Vec<u8>, BatchError> {
    if with_variants {
        return encode_variants(cas, hashes);
    }
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), LEVEL)?;
    let mut total = 0u64;
    for hash in hashes {
        if !cas.contains(hash) {
            continue;
        }
        let bytes = cas.read(hash)?;
        if total > 0 && total + bytes.len() as u64 > MAX_BATCH_BYTES {
            break;
        }
        total += bytes.len() as u64;
        encoder.write_all(hash.as_bytes())?;
        encoder.write_all(&(bytes.len() as u64).to_le_bytes())?;
        encoder.write_all(&bytes)?;
    }
    Ok(encoder.finish()?)
}

/// The variants form of [`encode`]. No object's parts add up to more than
/// the object itself, so a batch never outgrows its plain form.
fn encode_variants(cas: &Cas, hashes: &[blake3::Hash]) -> Result<Vec<u8>, BatchError> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), LEVEL)?;
    encoder.write_all(VARIANTS_MAGIC)?;
    let mut total = 0u64;
    for hash in hashes {
        let Ok(meta) = std::fs::metadata(cas.path(hash)) else {
            continue;
        };
        let size = meta.len();
        if total > 0 && total + size > MAX_BATCH_BYTES {
            break;
        }
        let held = cas.variants(hash);
        let mut parts: Vec<(Part, Vec<u8>)> = Vec::new();
        let mut shipped = 0u64;
        for encoding in SHIPPED {
            let Some(len) = held.get(encoding) else {
                continue;
            };
            if shipped + len > size {
                continue;
            }
            // Variants are never removed while their object lives, but a
            // concurrent collection may take both: skip what vanished.
            if let Some(bytes) = cas.read_variant(hash, encoding)? {
                shipped += bytes.len() as u64;
                parts.push((Part::Variant(encoding), bytes));
            }
        }
        let held_count = SHIPPED.iter().filter(|e| held.get(**e).is_some()).count();
        if parts.is_empty() {
            let bytes = match cas.read(hash) {
                Ok(bytes) => bytes,
                Err(CasError::Missing { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            parts.push((Part::Raw, bytes));
        } else if parts.len() == held_count && cas.has_skip_marker(hash) {
            parts.push((Part::SkipMarker, Vec::new()));
        }
        total += size;
        for (part, bytes) in parts {
            encoder.write_all(hash.as_bytes())?;
            encoder.write_all(&[part.tag()])?;
            encoder.write_all(&(bytes.len() as u64).to_le_bytes())?;
            encoder.write_all(&bytes)?;
        }
    }
    Ok(encoder.finish()?)
}

/// Reads a batch, storing each object in `cas` after checking it was asked
/// for (`sizes`: hash → expected size) and hashes to its name. Returns the
/// hashes stored.
pub fn decode(
    cas: &Cas,
    batch: &[u8],
    sizes: &HashMap<blake3::Hash, u64>,
) -> Result<Vec<blake3::Hash>, BatchError> {
    let mut decoder = zstd::stream::read::Decoder::new(batch)?;
    let mut first = [0u8; 8];
    if !read_exact_or_end(&mut decoder, &mut first)? {
        return Ok(Vec::new());
    }
    if &first == VARIANTS_MAGIC {
        let mut batch = cas.batch();
        let stored = decode_variants(&mut batch, &mut decoder, sizes)?;
        batch.commit()?;
        return Ok(stored);
    }
    // A plain batch: the 8 bytes read are the start of the first hash.
    let mut decoder = std::io::Cursor::new(first).chain(decoder);
    let mut batch = cas.batch();
    let mut stored = Vec::new();
    loop {
        let mut header = [0u8; 40];
        if !read_exact_or_end(&mut decoder, &mut header)? {
            break;
        }
        let mut name = [0u8; 32];
        name.copy_from_slice(&header[..32]);
        let hash = blake3::Hash::from_bytes(name);
        let mut len = [0u8; 8];
        len.copy_from_slice(&header[32..]);
        let len = u64::from_le_bytes(len);
        let Some(&expected) = sizes.get(&hash) else {
            return Err(BatchError::Unasked(hash.to_hex().to_string()));
        };
        if (expected == UNKNOWN_SIZE && len > MAX_BATCH_BYTES)
            || (expected != UNKNOWN_SIZE && len != expected)
        {
            return Err(BatchError::Size {
                hash: hash.to_hex().to_string(),
                got: len,
                expected,
            });
        }
        // `len` equals a size from our own manifest (or is at most
        // MAX_BATCH_BYTES), so this allocation is bounded by what we fetch.
        let mut bytes = vec![0u8; len as usize];
        decoder.read_exact(&mut bytes)?;
        if blake3::hash(&bytes) != hash {
            return Err(BatchError::Mismatch(hash.to_hex().to_string()));
        }
        batch.add_object(&hash, &bytes)?;
        stored.push(hash);
    }
    batch.commit()?;
    Ok(stored)
}

/// The parts of one object read so far, with their bytes.
type Parts = Vec<(Part, Vec<u8>)>;

/// Reads the parts of a variants batch (after its magic). Parts of one
/// object are adjacent; each object is stored when its last part is read.
fn decode_variants(
    batch: &mut Batch<'_>,
    reader: &mut impl Read,
    sizes: &HashMap<blake3::Hash, u64>,
) -> Result<Vec<blake3::Hash>, BatchError> {
    let mut stored = Vec::new();
    let mut current: Option<(blake3::Hash, Parts)> = None;
    loop {
        let mut header = [0u8; 41];
        let more = read_exact_or_end(reader, &mut header)?;
        let next_hash = more.then(|| {
            let mut name = [0u8; 32];
            name.copy_from_slice(&header[..32]);
            blake3::Hash::from_bytes(name)
        });
        if let Some((hash, parts)) = current.take_if(|(h, _)| Some(*h) != next_hash) {
            store_parts(batch, hash, sizes.get(&hash).copied().unwrap_or(0), parts)?;
            stored.push(hash);
        }
        let Some(hash) = next_hash else {
            break;
        };
        let hex = || hash.to_hex().to_string();
        let Some(&expected) = sizes.get(&hash) else {
            return Err(BatchError::Unasked(hex()));
        };
        let part = Part::from_tag(header[32]).ok_or_else(|| BatchError::UnknownPart {
            hash: hex(),
            kind: header[32],
        })?;
        let mut len = [0u8; 8];
        len.copy_from_slice(&header[33..]);
        let len = u64::from_le_bytes(len);
        // Every part is at most the object's size (variants are smaller,
        // the marker empty); objects of unknown size are never sent here.
        if expected == UNKNOWN_SIZE || len > expected || (part == Part::Raw && len != expected) {
            return Err(BatchError::Size {
                hash: hex(),
                got: len,
                expected,
            });
        }
        let mut bytes = vec![0u8; len as usize];
        reader.read_exact(&mut bytes)?;
        current
            .get_or_insert_with(|| (hash, Vec::new()))
            .1
            .push((part, bytes));
    }
    Ok(stored)
}

/// Stores one object of `size` bytes from its parts: the raw bytes, or else
/// the decoding of its first variant, checked against `hash`; then each
/// variant, checked to decode to the same bytes; then the skip marker. The
/// object goes first, so no variant ever sits beside a missing object.
fn store_parts(
    batch: &mut Batch<'_>,
    hash: blake3::Hash,
    size: u64,
    parts: Parts,
) -> Result<(), BatchError> {
    let mismatch = || BatchError::Mismatch(hash.to_hex().to_string());
    let first = parts.iter().position(|(p, _)| *p != Part::SkipMarker);
    let object = match first.map(|i| &parts[i]) {
        Some((Part::Variant(encoding), bytes)) => {
            crate::cas::decompress(*encoding, bytes, size).map_err(|_| mismatch())?
        }
        Some((_, bytes)) => bytes.clone(),
        None => return Err(BatchError::NoContent(hash.to_hex().to_string())),
    };
    if object.len() as u64 != size || blake3::hash(&object) != hash {
        return Err(mismatch());
    }
    batch.add_object(&hash, &object)?;
    drop(object);
    let mut marker = false;
    for (i, (part, bytes)) in parts.into_iter().enumerate() {
        // The variant the object was decoded from is checked already.
        let added = |batch: &mut Batch<'_>, encoding| {
            if Some(i) == first {
                batch.add_decoded_variant(&hash, encoding, &bytes, size)
            } else {
                batch.add_variant(&hash, encoding, &bytes, size)
            }
        };
        match part {
            Part::Raw => {}
            Part::Variant(encoding) => match added(batch, encoding) {
                Ok(_) => {}
                Err(CasError::BadVariant { .. }) => return Err(mismatch()),
                Err(e) => return Err(e.into()),
            },
            Part::SkipMarker => marker = true,
        }
    }
    if marker {
        batch.add_skip_marker(&hash)?;
    }
    Ok(())
}

/// Fills `buf`, or returns false at a clean end of stream before any byte.
fn read_exact_or_end(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "batch ends inside an object header",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_and_refuse_what_was_not_asked() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = Cas::open(&dir.path().join("a")).unwrap_or_else(|e| panic!("{e}"));
        let b = Cas::open(&dir.path().join("b")).unwrap_or_else(|e| panic!("{e}"));
        let one = a.put_bytes(b"one").unwrap_or_else(|e| panic!("{e}"));
        let two = a.put_bytes(b"two two").unwrap_or_else(|e| panic!("{e}"));
        let batch = encode(&a, &[one, two], false).unwrap_or_else(|e| panic!("{e}"));
        let sizes: HashMap<_, _> = [(one, 3), (two, 7)].into_iter().collect();
        let stored = decode(&b, &batch, &sizes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored, vec![one, two]);
        assert!(b.contains(&one) && b.contains(&two));

        let c = Cas::open(&dir.path().join("c")).unwrap_or_else(|e| panic!("{e}"));
        let only_one: HashMap<_, _> = [(one, 3)].into_iter().collect();
        assert!(matches!(
            decode(&c, &batch, &only_one),
            Err(BatchError::Unasked(_))
        ));
        assert!(decode(&c, b"not zstd", &sizes).is_err());
    }

    fn page(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < len {
            out.extend_from_slice(format!("<li><a href=\"/p/{i}\">post {i}</a></li>\n").as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn variants_travel_with_their_object_and_arrive_identical() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = Cas::open(&dir.path().join("a")).unwrap_or_else(|e| panic!("{e}"));
        let b = Cas::open(&dir.path().join("b")).unwrap_or_else(|e| panic!("{e}"));
        let text = page(40_000);
        let html = a.put_bytes(&text).unwrap_or_else(|e| panic!("{e}"));
        a.ensure_variants(&html, true)
            .unwrap_or_else(|e| panic!("{e}"));
        let noise: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let bin = a.put_bytes(&noise).unwrap_or_else(|e| panic!("{e}"));

        let batch = encode(&a, &[html, bin], true).unwrap_or_else(|e| panic!("{e}"));
        // The page travels as its variants: far below its own size.
        assert!(batch.len() < text.len() / 4, "{} bytes", batch.len());
        let sizes: HashMap<_, _> = [(html, text.len() as u64), (bin, noise.len() as u64)]
            .into_iter()
            .collect();
        let stored = decode(&b, &batch, &sizes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored, vec![html, bin]);
        assert_eq!(b.read(&html).unwrap_or_else(|e| panic!("{e}")), text);
        assert_eq!(b.read(&bin).unwrap_or_else(|e| panic!("{e}")), noise);
        for encoding in Encoding::PRECOMPRESSED {
            let theirs = a
                .read_variant(&html, encoding)
                .unwrap_or_else(|e| panic!("{e}"));
            let ours = b
                .read_variant(&html, encoding)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(theirs.is_some());
            assert_eq!(theirs, ours, "{encoding:?}");
        }
        assert_eq!(b.variants(&bin), crate::cas::Variants::default());
    }

    #[test]
    fn a_forged_variant_is_refused_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let b = Cas::open(&dir.path().join("b")).unwrap_or_else(|e| panic!("{e}"));
        let claimed = page(10_000);
        let hash = blake3::hash(&claimed);
        // A peer names the page but ships a zstd stream of other bytes.
        let other = zstd::encode_all(&page(10_001)[1..], 19).unwrap_or_else(|e| panic!("{e}"));
        let mut encoder =
            zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap_or_else(|e| panic!("{e}"));
        let mut write = |bytes: &[u8]| encoder.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
        write(VARIANTS_MAGIC);
        write(hash.as_bytes());
        write(&[Part::Variant(Encoding::Zstd).tag()]);
        write(&(other.len() as u64).to_le_bytes());
        write(&other);
        let batch = encoder.finish().unwrap_or_else(|e| panic!("{e}"));
        let sizes: HashMap<_, _> = [(hash, claimed.len() as u64)].into_iter().collect();
        assert!(matches!(
            decode(&b, &batch, &sizes),
            Err(BatchError::Mismatch(_))
        ));
        assert!(!b.contains(&hash));
        assert_eq!(b.variants(&hash), crate::cas::Variants::default());
    }
}
