//! `build-log <repo>`: the newest site build of a repository on this node,
//! its result and its whole kept log (builds run on the node that received
//! the push).

use super::ParseError;
use crate::admin::table::abbreviated;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `build-log` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLog {
    /// Without `.git`.
    pub repo: String,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for BuildLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "build-log {}", self.repo)
    }
}

impl BuildLog {
    pub fn parse(words: &mut Words<'_>) -> Result<BuildLog, ParseError> {
        let repo = words.required()?;
        let repo = repo.strip_suffix(".git").unwrap_or(repo).to_string();
        words.end()?;
        Ok(BuildLog { repo })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let latest =
            ctx.builder()
                .logs()
                .latest(&self.repo)
                .map_err(|source| AdminError::BuildLog {
                    repo: self.repo.clone(),
                    source,
                })?;
        let Some((record, log)) = latest else {
            return Err(AdminError::NoBuilds(self.repo));
        };
        let when = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(record.started_ms.max(0) as u64);
        let what = if record.commit.is_empty() {
            "the site directory".to_string()
        } else {
            format!("{} ({})", record.branch, abbreviated(&record.commit))
        };
        let result = if record.ok { "built" } else { "refused" };
        let mut text = format!(
            "build of {what}, {}: {result} in {:.2} s\n",
            httpdate::fmt_http_date(when),
            record.duration_ms as f64 / 1000.0
        );
        if !record.ok {
            text.push_str(&format!("reason: {}\n", record.result));
        }
        text.push_str(&log);
        Ok(text)
    }
}
