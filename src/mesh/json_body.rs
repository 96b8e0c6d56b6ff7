//! JSON bodies on the mesh RPC, zstd-compressed when they are large.
//!
//! Rows, digests and tree listings are JSON full of hex hashes and repeated
//! keys; compressed they take a third to a half of the bytes, which is most
//! of what a small change costs on the wire besides the changed file. A
//! reader tells the two forms apart by their first bytes: JSON starts with
//! `{`, `[`, `"`, a digit or a letter, a zstd frame with its magic number.

use std::io::Read;

/// Bodies shorter than this are sent as plain JSON: compressing them saves
/// less than a packet.
const COMPRESS_FROM: usize = 512;
/// zstd level: fast, and most of the gain on text like this.
const LEVEL: i32 = 3;
/// The first four bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// `value` as a body: JSON, compressed if that makes it meaningfully
/// smaller.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(value)?;
    if json.len() < COMPRESS_FROM {
        return Ok(json);
    }
    match zstd::bulk::compress(&json, LEVEL) {
        Ok(packed) if packed.len() < json.len() / 10 * 9 => Ok(packed),
        _ => Ok(json),
    }
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("compressed body: {0}")]
    Compressed(#[source] std::io::Error),
    #[error("compressed body expands past {limit} bytes")]
    TooLarge { limit: usize },
}

/// Decodes a body made by [`encode`] (or plain JSON), refusing one that
/// expands past `limit` bytes.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8], limit: usize) -> Result<T, BodyError> {
    if !body.starts_with(&ZSTD_MAGIC) {
        return Ok(serde_json::from_slice(body)?);
    }
    let mut json = Vec::new();
    zstd::stream::read::Decoder::new(body)
        .and_then(|d| d.take(limit as u64 + 1).read_to_end(&mut json))
        .map_err(BodyError::Compressed)?;
    if json.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(serde_json::from_slice(&json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_bodies_shrink_and_small_ones_stay_json() {
        let hashes: Vec<String> = (0..200u32)
            .map(|i| blake3::hash(&i.to_le_bytes()).to_hex().to_string())
            .collect();
        let body = encode(&hashes).unwrap();
        let plain = serde_json::to_vec(&hashes).unwrap();
        assert!(
            body.len() < plain.len() * 7 / 10,
            "{} of {}",
            body.len(),
            plain.len()
        );
        assert_eq!(decode::<Vec<String>>(&body, 1 << 20).unwrap(), hashes);

        let small = encode(&vec!["one"]).unwrap();
        assert_eq!(small, br#"["one"]"#);
        assert_eq!(decode::<Vec<String>>(&small, 1 << 20).unwrap(), vec!["one"]);
    }

    #[test]
    fn a_body_that_expands_too_far_is_refused() {
        let zeros = vec![0u32; 100_000];
        let body = encode(&zeros).unwrap();
        assert!(decode::<Vec<u32>>(&body, 1000).is_err());
        assert!(decode::<Vec<u32>>(b"not json", 1000).is_err());
    }
}
