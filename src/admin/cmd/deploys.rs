//! `deploys <domain> [--json]`: the revisions kept for a domain, newest
//! first, the active one marked, each with where it came from.

use serde::Serialize;

use super::ParseError;
use crate::admin::table::{Table, abbreviated};
use crate::admin::words::Words;
use crate::admin::{AdminError, Context, json};
use crate::store::RevisionRow;

/// The `deploys` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploys {
    /// Lowercase.
    pub domain: String,
    pub json: bool,
}

/// One kept revision in `deploys --json`.
#[derive(Serialize)]
struct RevisionView<'a> {
    revision: &'a str,
    /// A directory path or a commit id.
    source: &'a str,
    /// The source again when it is a commit id, so scripts need not guess.
    commit: Option<&'a str>,
    branch: Option<&'a str>,
    created_ms: i64,
    active: bool,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for Deploys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "deploys {}", self.domain)?;
        if self.json {
            f.write_str(" --json")?;
        }
        Ok(())
    }
}

impl Deploys {
    pub fn parse(words: &mut Words<'_>) -> Result<Deploys, ParseError> {
        let domain = words.required()?.to_ascii_lowercase();
        words.end()?;
        Ok(Deploys {
            domain,
            json: words.json(),
        })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let revisions = ctx.deployer().history(&self.domain)?;
        if revisions.is_empty() {
            return Err(AdminError::UnknownDomain(self.domain));
        }
        if self.json {
            let views: Vec<RevisionView<'_>> = revisions.iter().map(RevisionView::from).collect();
            return Ok(json::line(&views)?);
        }
        let mut table = Table::new("  ", &[]);
        for r in &revisions {
            let marker = if r.active { "*" } else { " " };
            let source = match &r.branch {
                Some(branch) if is_commit_id(&r.source) => {
                    format!("{branch} {}", abbreviated(&r.source))
                }
                _ => r.source.clone(),
            };
            table.row([
                format!("{marker} {}", abbreviated(&r.root)),
                httpdate::fmt_http_date(created(r)),
                source,
            ]);
        }
        Ok(table.into_text())
    }
}

impl<'a> From<&'a RevisionRow> for RevisionView<'a> {
    fn from(r: &'a RevisionRow) -> RevisionView<'a> {
        RevisionView {
            revision: &r.root,
            source: &r.source,
            commit: is_commit_id(&r.source).then_some(r.source.as_str()),
            branch: r.branch.as_deref(),
            created_ms: r.created_ms,
            active: r.active,
        }
    }
}

/// When `r` was deployed (a time before 1970 reads as 1970).
fn created(r: &RevisionRow) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.created_ms.max(0) as u64)
}

/// Whether a revision's source is a git commit id (40 hex digits).
fn is_commit_id(source: &str) -> bool {
    source.len() == 40 && source.bytes().all(|b| b.is_ascii_hexdigit())
}
