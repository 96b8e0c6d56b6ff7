//! What a scrub checked, found and repaired: kept in memory for `status`
//! and in `<data>/scrub.json`, so the schedule and the last result survive
//! a restart.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Findings kept per run; the counts cover the rest.
pub const MAX_FINDINGS: usize = 32;

/// The scrub's state as `status` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScrubReport {
    /// Whether a scrub runs now.
    #[serde(default)]
    pub running: bool,
    /// The last finished scrub; `None` if this node never finished one.
    pub last: Option<ScrubRun>,
}

/// One finished scrub.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubRun {
    pub started_ms: u64,
    pub finished_ms: u64,
    /// Objects read back and hashed (manifests included).
    pub objects_checked: u64,
    /// Precompressed variants decoded and hashed.
    pub variants_checked: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
    /// Objects (or variants) whose bytes were not what their name says.
    pub damaged: u64,
    /// Objects a kept revision needs that were not on disk.
    pub missing: u64,
    /// Of those, how many are sound again.
    pub repaired: u64,
    /// Of those, how many no peer and no variant could restore: set aside,
    /// never served, and tried again next run.
    pub unrepairable: u64,
    /// The first [`MAX_FINDINGS`] problems, each with what was done.
    pub findings: Vec<Finding>,
}

/// One problem a scrub found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The object's blake3, lowercase hex.
    pub object: String,
    /// `object`, `manifest` or the variant's encoding (`gzip`, `zstd`, `br`).
    pub kind: String,
    /// What was wrong.
    pub problem: String,
    /// What was done about it.
    pub outcome: String,
    /// Whether it is sound again.
    pub repaired: bool,
}

impl ScrubRun {
    /// Records a problem and its outcome.
    pub fn found(&mut self, finding: Finding) {
        if finding.repaired {
            self.repaired += 1;
        } else {
            self.unrepairable += 1;
        }
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding);
        }
    }
}

impl ScrubReport {
    /// Reads `path`; a missing or unreadable file is a node that never
    /// scrubbed (the next scrub writes it again).
    pub fn load(path: &Path) -> ScrubReport {
        let Ok(text) = std::fs::read_to_string(path) else {
            return ScrubReport::default();
        };
        match serde_json::from_str::<ScrubReport>(&text) {
            Ok(report) => ScrubReport {
                running: false,
                ..report
            },
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable scrub report");
                ScrubReport::default()
            }
        }
    }

    /// Writes the report to `path` (temp file and rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// The `scrub:` lines of `status`.
    pub fn lines(&self) -> String {
        let mut out = String::from("scrub: ");
        if self.running {
            out.push_str("running now; ");
        }
        let Some(run) = &self.last else {
            out.push_str("none finished yet\n");
            return out;
        };
        let secs = run.finished_ms.saturating_sub(run.started_ms) / 1000;
        out.push_str(&format!(
            "last finished {}, {} objects and {} variants ({}) checked in {secs} s: {} damaged, {} missing, {} repaired, {} unrepairable\n",
            crate::acme::status::rfc3339(run.finished_ms),
            run.objects_checked,
            run.variants_checked,
            megabytes(run.bytes_read),
            run.damaged,
            run.missing,
            run.repaired,
            run.unrepairable,
        ));
        for finding in &run.findings {
            out.push_str(&format!(
                "  {} {}: {}; {}\n",
                finding.kind,
                finding.object.get(..12).unwrap_or(&finding.object),
                finding.problem,
                finding.outcome
            ));
        }
        out
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_survives_a_restart_and_reads_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scrub.json");
        assert!(ScrubReport::load(&path).last.is_none());
        let mut run = ScrubRun {
            started_ms: 1_700_000_000_000,
            finished_ms: 1_700_000_003_000,
            objects_checked: 12,
            damaged: 1,
            ..ScrubRun::default()
        };
        run.found(Finding {
            object: "ab".repeat(32),
            kind: "object".into(),
            problem: "its 4 bytes hash to 00".into(),
            outcome: "fetched again from a peer".into(),
            repaired: true,
        });
        let report = ScrubReport {
            running: true,
            last: Some(run.clone()),
        };
        report.save(&path).unwrap();
        let loaded = ScrubReport::load(&path);
        assert!(!loaded.running, "a restarted node runs no scrub yet");
        assert_eq!(loaded.last, Some(run));
        let text = loaded.lines();
        assert!(text.contains("12 objects"), "{text}");
        assert!(
            text.contains("1 damaged, 0 missing, 1 repaired, 0 unrepairable"),
            "{text}"
        );
        assert!(text.contains("fetched again from a peer"), "{text}");
    }
}
