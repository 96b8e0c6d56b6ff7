//! `[access_log]` in `node.toml`: whether this node writes one line per
//! HTTP request, in which format, and where. Off unless the operator asks:
//! a busy node's log grows fast and holds visitors' addresses.

use std::path::PathBuf;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::ConfigError;
use super::diagnostic::Source;
use super::wasm::positive;

/// `[access_log]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessLogSettings {
    /// Which requests get a line.
    pub mode: AccessLogMode,
    pub format: AccessLogFormat,
    /// Where the lines go.
    pub target: AccessLogTarget,
}

/// Which requests get a line.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum AccessLogMode {
    /// None (the default).
    #[default]
    Off,
    /// Every request.
    On,
    /// This share of requests, in (0, 1], spread evenly.
    Sampled(f64),
}

/// How a line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// One JSON object per line, every field named.
    #[default]
    Json,
    /// The combined log format of Apache and nginx, which log tools read.
    Combined,
}

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AccessLogTarget {
    /// Standard output (the journal under systemd).
    #[default]
    Stdout,
    /// A file, rotated by size.
    File {
        path: PathBuf,
        /// The file is rotated before it would grow past this.
        max_bytes: u64,
        /// Rotated files kept (`path.1` newest … `path.N`).
        keep: u32,
    },
}

/// Default size of a log file before rotation, in KiB (100 MiB).
pub const DEFAULT_MAX_KB: u64 = 100 * 1024;
/// Default number of rotated files kept.
pub const DEFAULT_KEEP: u32 = 5;
/// At most this many rotated files.
const MAX_KEEP: u64 = 1000;

/// `[access_log]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccessLog {
    pub mode: Option<Spanned<String>>,
    pub rate: Option<Spanned<f64>>,
    pub format: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub max_kb: Option<Spanned<u64>>,
    pub keep: Option<Spanned<u64>>,
}

/// Checks `[access_log]`.
pub(super) fn access_log(
    src: Source<'_>,
    raw: &RawAccessLog,
) -> Result<AccessLogSettings, ConfigError> {
    let mode = match &raw.mode {
        None => AccessLogMode::Off,
        Some(m) => match m.get_ref().as_str() {
            "off" => AccessLogMode::Off,
            "on" => AccessLogMode::On,
            "sampled" => {
                let Some(rate) = &raw.rate else {
                    return Err(src.at(
                        m.span(),
                        "access_log.mode = \"sampled\" needs access_log.rate, the share of requests logged, e.g. rate = 0.1 for one in ten",
                    ));
                };
                AccessLogMode::Sampled(*rate.get_ref())
            }
            other => {
                return Err(src.at(
                    m.span(),
                    format!(
                        "access_log.mode {other:?} is not one of \"off\", \"on\" or \"sampled\""
                    ),
                ));
            }
        },
    };
    if let Some(rate) = &raw.rate {
        let r = *rate.get_ref();
        if !matches!(mode, AccessLogMode::Sampled(_)) {
            return Err(src.at(
                rate.span(),
                "access_log.rate applies only with mode = \"sampled\"; set that mode or remove rate",
            ));
        }
        if !(r > 0.0 && r <= 1.0) {
            return Err(src.at(
                rate.span(),
                format!(
                    "access_log.rate {r} is not above 0 and at most 1; write e.g. 0.1 to log one request in ten"
                ),
            ));
        }
    }
    let format = match &raw.format {
        None => AccessLogFormat::Json,
        Some(f) => match f.get_ref().as_str() {
            "json" => AccessLogFormat::Json,
            "combined" => AccessLogFormat::Combined,
            other => {
                return Err(src.at(
                    f.span(),
                    format!("access_log.format {other:?} is not \"json\" or \"combined\""),
                ));
            }
        },
    };
    let max_kb = positive(src, &raw.max_kb, "access_log.max_kb")?;
    let keep = positive(src, &raw.keep, "access_log.keep")?;
    if let Some(k) = &raw.keep
        && *k.get_ref() > MAX_KEEP
    {
        return Err(src.at(
            k.span(),
            format!("access_log.keep is at most {MAX_KEEP}; older files are better compressed or shipped elsewhere"),
        ));
    }
    let target = match &raw.file {
        None => {
            if let Some(field) = raw
                .max_kb
                .as_ref()
                .map(|f| (f.span(), "max_kb"))
                .or(raw.keep.as_ref().map(|f| (f.span(), "keep")))
            {
                return Err(src.at(
                    field.0,
                    format!(
                        "access_log.{} applies only to a file; set access_log.file or remove it (without a file, lines go to standard output)",
                        field.1
                    ),
                ));
            }
            AccessLogTarget::Stdout
        }
        Some(f) => {
            let path = f.get_ref().trim();
            if path.is_empty() {
                return Err(src.at(
                    f.span(),
                    "access_log.file is empty; write a path such as \"/var/log/makiatto/access.log\", or remove it to log to standard output",
                ));
            }
            if path.ends_with('/') {
                return Err(src.at(
                    f.span(),
                    format!("access_log.file {path:?} names a directory; write the file's path, e.g. \"{path}access.log\""),
                ));
            }
            AccessLogTarget::File {
                path: PathBuf::from(path),
                max_bytes: max_kb.unwrap_or(DEFAULT_MAX_KB).saturating_mul(1024),
                // Bounded by MAX_KEEP above.
                keep: keep.map_or(DEFAULT_KEEP, |k| k as u32),
            }
        }
    };
    Ok(AccessLogSettings {
        mode,
        format,
        target,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;

    use super::*;

    fn parse(table: &str) -> Result<AccessLogSettings, String> {
        NodeConfig::parse("node.toml", &format!("name = \"a\"\n[access_log]\n{table}"))
            .map(|c| c.access_log)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn off_by_default_and_stdout_without_a_file() {
        let config = NodeConfig::parse("node.toml", "name = \"a\"\n").map(|c| c.access_log);
        assert_eq!(config, Ok(AccessLogSettings::default()));
        assert_eq!(
            parse("mode = \"on\"\nformat = \"combined\"\n"),
            Ok(AccessLogSettings {
                mode: AccessLogMode::On,
                format: AccessLogFormat::Combined,
                target: AccessLogTarget::Stdout,
            })
        );
    }

    #[test]
    fn a_file_rotates_by_size_keeping_n() {
        assert_eq!(
            parse(
                "mode = \"sampled\"\nrate = 0.25\nfile = \"/var/log/makiatto/access.log\"\nmax_kb = 64\nkeep = 3\n"
            ),
            Ok(AccessLogSettings {
                mode: AccessLogMode::Sampled(0.25),
                format: AccessLogFormat::Json,
                target: AccessLogTarget::File {
                    path: PathBuf::from("/var/log/makiatto/access.log"),
                    max_bytes: 64 * 1024,
                    keep: 3,
                },
            })
        );
        assert_eq!(
            parse("mode = \"on\"\nfile = \"access.log\"\n").map(|s| s.target),
            Ok(AccessLogTarget::File {
                path: PathBuf::from("access.log"),
                max_bytes: DEFAULT_MAX_KB * 1024,
                keep: DEFAULT_KEEP,
            })
        );
    }

    #[test]
    fn mistakes_are_named_with_their_fix() {
        assert_eq!(
            parse("mode = \"all\"\n"),
            Err(
                "node.toml:3:8: access_log.mode \"all\" is not one of \"off\", \"on\" or \"sampled\""
                    .into()
            )
        );
        assert_eq!(
            parse("mode = \"sampled\"\n"),
            Err("node.toml:3:8: access_log.mode = \"sampled\" needs access_log.rate, the share of requests logged, e.g. rate = 0.1 for one in ten".into())
        );
        assert_eq!(
            parse("mode = \"on\"\nrate = 0.5\n"),
            Err("node.toml:4:8: access_log.rate applies only with mode = \"sampled\"; set that mode or remove rate".into())
        );
        assert_eq!(
            parse("mode = \"sampled\"\nrate = 1.5\n"),
            Err("node.toml:4:8: access_log.rate 1.5 is not above 0 and at most 1; write e.g. 0.1 to log one request in ten".into())
        );
        assert_eq!(
            parse("mode = \"sampled\"\nrate = 0.0\n"),
            Err("node.toml:4:8: access_log.rate 0 is not above 0 and at most 1; write e.g. 0.1 to log one request in ten".into())
        );
        assert_eq!(
            parse("format = \"clf\"\n"),
            Err("node.toml:3:10: access_log.format \"clf\" is not \"json\" or \"combined\"".into())
        );
        assert_eq!(
            parse("mode = \"on\"\nkeep = 3\n"),
            Err("node.toml:4:8: access_log.keep applies only to a file; set access_log.file or remove it (without a file, lines go to standard output)".into())
        );
        assert_eq!(
            parse("file = \"a.log\"\nkeep = 0\n"),
            Err(
                "node.toml:4:8: access_log.keep must be at least 1; remove it to use the default"
                    .into()
            )
        );
        assert_eq!(
            parse("file = \"\"\n"),
            Err("node.toml:3:8: access_log.file is empty; write a path such as \"/var/log/makiatto/access.log\", or remove it to log to standard output".into())
        );
        assert_eq!(
            parse("mode = \"on\"\nfromat = \"json\"\n"),
            Err("node.toml:4:1: unknown field \"fromat\", did you mean \"format\"?".into())
        );
    }
}
