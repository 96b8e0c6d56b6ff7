//! Object batches on the wire: many CAS objects in one zstd stream, each
//! checked against its blake3 before it is stored.
//!
//! Layout, inside one zstd frame: for each object, its 32-byte blake3, its
//! length as u64 little-endian, then its bytes. Compressing the batch as one
//! stream lets small similar files share a dictionary. The receiver accepts
//! only objects it asked for, no longer than the manifest says, whose bytes
//! hash to their name: a peer can waste a call, never plant an object.

use std::collections::HashMap;
use std::io::{Read, Write};

use crate::cas::{Cas, CasError};

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
}

/// Encodes the objects of `hashes` that `cas` holds, up to
/// [`MAX_BATCH_BYTES`] of content.
pub fn encode(cas: &Cas, hashes: &[blake3::Hash]) -> Result<Vec<u8>, BatchError> {
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

/// Reads a batch, storing each object in `cas` after checking it was asked
/// for (`sizes`: hash → expected size) and hashes to its name. Returns the
/// hashes stored.
pub fn decode(
    cas: &Cas,
    batch: &[u8],
    sizes: &HashMap<blake3::Hash, u64>,
) -> Result<Vec<blake3::Hash>, BatchError> {
    let mut decoder = zstd::stream::read::Decoder::new(batch)?;
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
        cas.put_bytes(&bytes)?;
        stored.push(hash);
    }
    Ok(stored)
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
        let batch = encode(&a, &[one, two]).unwrap_or_else(|e| panic!("{e}"));
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
}
