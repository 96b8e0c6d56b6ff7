//! The record of each build, kept on the node that ran it: a summary
//! (branch, commit, duration, result) and the log, per repository under
//! `<data>/builds/logs/<repo>/`. `deploys` reads the summaries to show how
//! each revision was built; `build-log` prints the newest log.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Builds kept per repository; older records are removed.
const KEEP: usize = 20;

/// One build, as `deploys` and `build-log` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub repo: String,
    /// Empty for a build of a local directory (`makiatto dev --site`).
    pub branch: String,
    /// Empty for a build of a local directory.
    pub commit: String,
    pub started_ms: i64,
    pub duration_ms: u64,
    pub ok: bool,
    /// "built", or why the build was refused.
    pub result: String,
}

/// The build records of one node.
pub struct BuildLogs {
    dir: PathBuf,
}

impl BuildLogs {
    pub fn new(dir: PathBuf) -> BuildLogs {
        BuildLogs { dir }
    }

    /// Stores `record` and its `log`, dropping the oldest beyond the kept
    /// number.
    pub fn save(&self, record: &BuildRecord, log: &[String]) -> std::io::Result<()> {
        let dir = self.repo_dir(&record.repo)?;
        std::fs::create_dir_all(&dir)?;
        let stem = dir.join(format!("{:015}", record.started_ms));
        let mut text = log.join("\n");
        text.push('\n');
        std::fs::write(stem.with_extension("log"), text)?;
        let summary = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        std::fs::write(stem.with_extension("json"), summary)?;
        let stems = stems(&dir)?;
        for old in stems.iter().skip(KEEP) {
            let _ = std::fs::remove_file(old.with_extension("log"));
            let _ = std::fs::remove_file(old.with_extension("json"));
        }
        Ok(())
    }

    /// The kept builds of `repo`, newest first.
    pub fn records(&self, repo: &str) -> std::io::Result<Vec<BuildRecord>> {
        let dir = self.repo_dir(repo)?;
        let mut out = Vec::new();
        for stem in stems(&dir)? {
            // A summary cut short by a crash is skipped, not fatal.
            if let Ok(bytes) = std::fs::read(stem.with_extension("json"))
                && let Ok(record) = serde_json::from_slice(&bytes)
            {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The newest build of `repo` with its log.
    pub fn latest(&self, repo: &str) -> std::io::Result<Option<(BuildRecord, String)>> {
        let dir = self.repo_dir(repo)?;
        for stem in stems(&dir)? {
            if let Ok(bytes) = std::fs::read(stem.with_extension("json"))
                && let Ok(record) = serde_json::from_slice::<BuildRecord>(&bytes)
            {
                let log = std::fs::read_to_string(stem.with_extension("log")).unwrap_or_default();
                return Ok(Some((record, log)));
            }
        }
        Ok(None)
    }

    /// `repo`'s directory; the name must be a plain file name (repository
    /// names are, see git/repo_name.rs), so it cannot lead elsewhere.
    fn repo_dir(&self, repo: &str) -> std::io::Result<PathBuf> {
        let plain = !repo.is_empty()
            && !repo.starts_with('.')
            && repo
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{repo:?} is not a repository name"),
            ));
        }
        Ok(self.dir.join(repo))
    }
}

/// The record stems (paths without extension) in `dir`, newest first.
fn stems(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut stems: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.with_extension(""))
        .collect();
    stems.sort();
    stems.reverse();
    Ok(stems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(started_ms: i64, ok: bool) -> BuildRecord {
        BuildRecord {
            repo: "site".into(),
            branch: "main".into(),
            commit: "c".repeat(40),
            started_ms,
            duration_ms: 1200,
            ok,
            result: if ok {
                "built".into()
            } else {
                "timed out".into()
            },
        }
    }

    #[test]
    fn the_newest_build_is_read_back_and_old_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let logs = BuildLogs::new(dir.path().to_path_buf());
        for i in 0..(KEEP as i64 + 3) {
            logs.save(&record(1000 + i, i % 2 == 0), &[format!("line {i}")])
                .unwrap();
        }
        let records = logs.records("site").unwrap();
        assert_eq!(records.len(), KEEP);
        assert_eq!(records[0].started_ms, 1000 + KEEP as i64 + 2);
        let (latest, log) = logs.latest("site").unwrap().unwrap();
        assert_eq!(latest, records[0]);
        assert_eq!(log, format!("line {}\n", KEEP + 2));
        assert!(logs.latest("../etc").is_err());
        assert_eq!(logs.latest("other").unwrap(), None);
    }
}
