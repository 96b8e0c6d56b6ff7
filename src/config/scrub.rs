//! `[scrub]` in `node.toml`: how often the node checks every stored object
//! against its blake3 name, and how fast it may read while doing so. The
//! read rate keeps a scrub from competing with visitors for the disk.

use serde::Deserialize;
use serde_spanned::Spanned;

use super::ConfigError;
use super::diagnostic::Source;
use super::wasm::positive;

/// `[scrub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubSettings {
    /// Whether scrubs start by themselves (default true); `scrub` starts
    /// one at any time either way.
    pub enabled: bool,
    /// Hours from the end of one scrub to the start of the next (default
    /// 24). A node that never scrubbed starts its first within an hour.
    pub interval_hours: u64,
    /// Most MiB per second a scrub reads (default 16).
    pub read_mb_per_s: u64,
}

impl Default for ScrubSettings {
    fn default() -> ScrubSettings {
        ScrubSettings {
            enabled: true,
            interval_hours: 24,
            read_mb_per_s: 16,
        }
    }
}

/// `[scrub]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScrub {
    pub enabled: Option<bool>,
    pub interval_hours: Option<Spanned<u64>>,
    pub read_mb_per_s: Option<Spanned<u64>>,
}

/// Checks `[scrub]`; absent fields keep their defaults.
pub(super) fn scrub(src: Source<'_>, raw: &RawScrub) -> Result<ScrubSettings, ConfigError> {
    let d = ScrubSettings::default();
    Ok(ScrubSettings {
        enabled: raw.enabled.unwrap_or(d.enabled),
        interval_hours: positive(src, &raw.interval_hours, "scrub.interval_hours")?
            .unwrap_or(d.interval_hours),
        read_mb_per_s: positive(src, &raw.read_mb_per_s, "scrub.read_mb_per_s")?
            .unwrap_or(d.read_mb_per_s),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;

    #[test]
    fn defaults_hold_and_zero_rates_are_refused() {
        let config = NodeConfig::parse("node.toml", "name = \"a\"\n").unwrap();
        assert_eq!(config.scrub, super::ScrubSettings::default());
        let config = NodeConfig::parse(
            "node.toml",
            "name = \"a\"\n[scrub]\nenabled = false\ninterval_hours = 168\n",
        )
        .unwrap();
        assert!(!config.scrub.enabled);
        assert_eq!(config.scrub.interval_hours, 168);
        assert_eq!(config.scrub.read_mb_per_s, 16);
        let err = NodeConfig::parse("node.toml", "name = \"a\"\n[scrub]\nread_mb_per_s = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scrub.read_mb_per_s must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn the_example_documents_the_defaults() {
        let example = include_str!("../../node.toml.example");
        let config = NodeConfig::parse("node.toml.example", example).unwrap();
        assert_eq!(config.scrub, super::ScrubSettings::default());
    }
}
