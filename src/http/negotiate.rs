//! Choosing a stored encoding from `Accept-Encoding`.
//!
//! Variants are precompressed at deploy time, so negotiation only picks
//! among what exists: highest q-value first, then our preference
//! (brotli, zstd, gzip: smallest first), identity last.

use crate::cas::{Encoding, Variants};

/// Server preference among equally acceptable codings.
const PREFERENCE: [Encoding; 3] = [Encoding::Brotli, Encoding::Zstd, Encoding::Gzip];

/// The encoding to send for a file with `variants` given the request's
/// `Accept-Encoding` header value (`None` if absent).
pub fn choose(accept: Option<&[u8]>, variants: &Variants) -> Encoding {
    let Some(accept) = accept.and_then(|a| std::str::from_utf8(a).ok()) else {
        return Encoding::Identity;
    };
    let mut best = (0.0_f32, Encoding::Identity);
    for encoding in PREFERENCE {
        if size_of(variants, encoding).is_none() {
            continue;
        }
        let q = quality(accept, encoding.as_str());
        if q > best.0 {
            best = (q, encoding);
        }
    }
    best.1
}

/// The stored size of `encoding`'s variant, if it exists.
pub fn size_of(variants: &Variants, encoding: Encoding) -> Option<u64> {
    match encoding {
        Encoding::Identity => None,
        Encoding::Gzip => variants.gzip,
        Encoding::Zstd => variants.zstd,
        Encoding::Brotli => variants.brotli,
    }
}

/// The q-value the header gives `coding` (explicitly or through `*`).
fn quality(accept: &str, coding: &str) -> f32 {
    let mut wildcard = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        if name.eq_ignore_ascii_case(coding) || (coding == "gzip" && name == "x-gzip") {
            return q;
        }
        if name == "*" {
            wildcard = Some(q);
        }
    }
    wildcard.unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Variants = Variants {
        gzip: Some(10),
        zstd: Some(9),
        brotli: Some(8),
    };

    #[test]
    fn prefers_brotli_then_zstd_then_gzip_at_equal_quality() {
        assert_eq!(
            choose(Some(b"gzip, deflate, br, zstd"), &ALL),
            Encoding::Brotli
        );
        assert_eq!(choose(Some(b"gzip, zstd"), &ALL), Encoding::Zstd);
        assert_eq!(choose(Some(b"gzip"), &ALL), Encoding::Gzip);
    }

    #[test]
    fn honours_q_values_and_refusals() {
        assert_eq!(choose(Some(b"br;q=0.5, gzip;q=0.9"), &ALL), Encoding::Gzip);
        assert_eq!(choose(Some(b"br;q=0, *"), &ALL), Encoding::Zstd);
        assert_eq!(choose(Some(b"identity"), &ALL), Encoding::Identity);
        assert_eq!(choose(None, &ALL), Encoding::Identity);
    }

    #[test]
    fn only_stored_variants_are_chosen() {
        let only_gzip = Variants {
            gzip: Some(5),
            ..Variants::default()
        };
        assert_eq!(choose(Some(b"br, zstd, gzip"), &only_gzip), Encoding::Gzip);
        assert_eq!(
            choose(Some(b"br"), &Variants::default()),
            Encoding::Identity
        );
    }
}
