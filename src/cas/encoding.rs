//! Content encodings, which files are worth compressing, and how hard.
//!
//! Variants are made once per object at deploy time and served as they are,
//! so the policy here trades deploy time against bytes on every later
//! response: levels past the point where a deploy slows much more than the
//! bytes shrink are not used (`levels_for` has the measurements).

use std::io::{self, Read, Write};

/// A content coding the node can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
    Brotli,
}

impl Encoding {
    /// The precompressed encodings, in the order variants are made.
    pub const PRECOMPRESSED: [Encoding; 3] = [Encoding::Gzip, Encoding::Zstd, Encoding::Brotli];

    /// The HTTP content-coding token (`Content-Encoding`, `Accept-Encoding`).
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
            Encoding::Brotli => "br",
        }
    }

    /// The suffix of this variant's file beside the object; empty for identity.
    pub fn suffix(self) -> &'static str {
        match self {
            Encoding::Identity => "",
            Encoding::Gzip => ".gz",
            Encoding::Zstd => ".zst",
            Encoding::Brotli => ".br",
        }
    }
}

/// The precompressed variants stored for one object, with their sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variants {
    pub gzip: Option<u64>,
    pub zstd: Option<u64>,
    pub brotli: Option<u64>,
}

impl Variants {
    /// The stored size of the `encoding` variant; `None` for identity.
    pub fn get(&self, encoding: Encoding) -> Option<u64> {
        match encoding {
            Encoding::Identity => None,
            Encoding::Gzip => self.gzip,
            Encoding::Zstd => self.zstd,
            Encoding::Brotli => self.brotli,
        }
    }

    /// Records the size of the `encoding` variant.
    pub fn set(&mut self, encoding: Encoding, size: Option<u64>) {
        match encoding {
            Encoding::Identity => {}
            Encoding::Gzip => self.gzip = size,
            Encoding::Zstd => self.zstd = size,
            Encoding::Brotli => self.brotli = size,
        }
    }
}

/// Whether a file with this path is worth precompressing, by extension.
/// Formats that are already compressed (images, video, woff2, archives)
/// would only grow.
pub fn is_compressible(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, extension)) = name.rsplit_once('.') else {
        return false;
    };
    const COMPRESSIBLE: &[&str] = &[
        "html",
        "htm",
        "xhtml",
        "css",
        "js",
        "mjs",
        "cjs",
        "json",
        "jsonld",
        "xml",
        "rss",
        "atom",
        "svg",
        "txt",
        "md",
        "csv",
        "tsv",
        "yaml",
        "yml",
        "toml",
        "ics",
        "vtt",
        "wasm",
        "ttf",
        "otf",
        "eot",
        "ico",
        "bmp",
        "map",
        "webmanifest",
    ];
    COMPRESSIBLE
        .iter()
        .any(|known| extension.eq_ignore_ascii_case(known))
}

/// Objects from this size get a stronger brotli level: on long files the
/// longer match search of levels 7 to 9 pays, while on short ones levels 5
/// to 9 are within 0.5% of each other.
const LONG: u64 = 1024 * 1024;
/// Objects above this size get the fastest levels and no brotli, whose
/// encoder is too slow there to keep deploys quick.
const LARGE: u64 = 16 * 1024 * 1024;

/// The encodings to make for an object of `size` bytes, with their levels.
///
/// Variants are made before a revision activates, so these levels set the
/// cost of a first deploy. Measured on the Rust book's 592 text files (19
/// MB; one thread, times relative, on a busy machine):
///
/// | files | choice | bytes | time |
/// |---|---|---|---|
/// | under 64 KiB (10.8 MB) | brotli 11 → 6 | +13.6% | 61 s → 1.9 s |
/// | under 1 MiB (12.5 MB) | zstd 19 → 9 | +3.6% | 12.6 s → 0.7 s |
/// | under 1 MiB | gzip 9 → 6 | +0.2% | 1.3 s → 1.0 s |
/// | 1 to 16 MiB (6.6 MB) | brotli 5 → 8 | −11.9% | 0.6 s → 2.7 s |
///
/// Browsers get brotli, so its level decides what most responses weigh:
/// the whole book as a browser receives it grows about 3% for a tenth of
/// the compression time. gzip and zstd serve the clients without brotli.
pub(super) fn levels_for(size: u64) -> Vec<(Encoding, u32)> {
    if size < LONG {
        vec![
            (Encoding::Gzip, 6),
            (Encoding::Zstd, 9),
            (Encoding::Brotli, 6),
        ]
    } else if size <= LARGE {
        vec![
            (Encoding::Gzip, 6),
            (Encoding::Zstd, 9),
            (Encoding::Brotli, 8),
        ]
    } else {
        vec![(Encoding::Gzip, 6), (Encoding::Zstd, 3)]
    }
}

/// Compresses all of `input` (`size` bytes) into `output` as `encoding`.
pub(super) fn compress(
    encoding: Encoding,
    level: u32,
    size: u64,
    input: &mut impl Read,
    output: &mut impl Write,
) -> io::Result<()> {
    match encoding {
        Encoding::Identity => io::copy(input, output).map(drop),
        Encoding::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(output, flate2::Compression::new(level));
            io::copy(input, &mut encoder)?;
            encoder.finish().map(drop)
        }
        Encoding::Zstd => {
            // Levels are at most 19, so the conversion never fails.
            let level = i32::try_from(level).unwrap_or(3);
            let mut encoder = zstd::stream::Encoder::new(output, level)?;
            // A known size lets zstd pick a window no bigger than the input,
            // which keeps decoders' memory small.
            encoder.set_pledged_src_size(Some(size))?;
            encoder.include_contentsize(true)?;
            io::copy(input, &mut encoder)?;
            encoder.finish().map(drop)
        }
        Encoding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: i32::try_from(level).unwrap_or(5),
                lgwin: 22,
                size_hint: usize::try_from(size).unwrap_or(0),
                ..Default::default()
            };
            brotli::BrotliCompress(input, output, &params).map(drop)
        }
    }
}

/// Decodes `input`, a variant in `encoding`, refusing output longer than
/// `limit` bytes, so a hostile variant cannot expand without bound.
pub fn decompress(encoding: Encoding, input: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let cap = limit.saturating_add(1);
    match encoding {
        Encoding::Identity => (&mut &input[..]).take(cap).read_to_end(&mut out)?,
        Encoding::Gzip => flate2::read::GzDecoder::new(input)
            .take(cap)
            .read_to_end(&mut out)?,
        Encoding::Zstd => zstd::stream::read::Decoder::new(input)?
            .take(cap)
            .read_to_end(&mut out)?,
        Encoding::Brotli => brotli::Decompressor::new(input, 4096)
            .take(cap)
            .read_to_end(&mut out)?,
    };
    if out.len() as u64 > limit {
        return Err(io::Error::other(format!(
            "decodes to more than the object's {limit} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_compressible_and_media_is_not() {
        for yes in [
            "index.html",
            "a/b/app.min.JS",
            "site.webmanifest",
            "f.woff.ttf",
            "x.svg",
        ] {
            assert!(is_compressible(yes), "{yes}");
        }
        for no in [
            "photo.png",
            "a.jpg",
            "b.webp",
            "font.woff2",
            "x.gz",
            "y.zip",
            "v.mp4",
            "Makefile",
            "dir.html/file",
            ".html.png",
        ] {
            assert!(!is_compressible(no), "{no}");
        }
    }

    #[test]
    fn tokens_and_suffixes() {
        let tokens: Vec<_> = Encoding::PRECOMPRESSED.iter().map(|e| e.as_str()).collect();
        assert_eq!(tokens, ["gzip", "zstd", "br"]);
        assert_eq!(Encoding::Identity.as_str(), "identity");
        assert_eq!(Encoding::Zstd.suffix(), ".zst");
    }

    #[test]
    fn levels_follow_size() {
        assert_eq!(levels_for(10).len(), 3);
        assert_eq!(levels_for(10)[2], (Encoding::Brotli, 6));
        assert_eq!(levels_for(2 * LONG)[2], (Encoding::Brotli, 8));
        assert_eq!(
            levels_for(LARGE + 1),
            [(Encoding::Gzip, 6), (Encoding::Zstd, 3)]
        );
    }
}
