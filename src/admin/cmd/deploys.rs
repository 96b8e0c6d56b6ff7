//! `deploys <domain> [--json]`: the revisions kept for a domain, newest
//! first, the active one marked, each with where it came from and, when
//! this node built it, the build's duration; then the newest build, if it
//! was refused after the newest revision. Lines of `_redirects` and
//! `_headers` a revision skipped are listed under it, and a line says
//! since when a password guards the domain's previews and permalinks.

use serde::Serialize;

use super::ParseError;
use crate::admin::table::{Table, abbreviated};
use crate::admin::words::Words;
use crate::admin::{AdminError, Context, json};
use crate::build::BuildRecord;
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
    /// The build that made it, when this node ran one.
    build: Option<BuildView<'a>>,
    /// Lines of its rule files that were skipped.
    warnings: Vec<&'a str>,
}

/// A build in `deploys --json`.
#[derive(Serialize)]
struct BuildView<'a> {
    duration_ms: u64,
    ok: bool,
    result: &'a str,
}

impl<'a> From<&'a BuildRecord> for BuildView<'a> {
    fn from(b: &'a BuildRecord) -> BuildView<'a> {
        BuildView {
            duration_ms: b.duration_ms,
            ok: b.ok,
            result: &b.result,
        }
    }
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
        let builds = builds_of(ctx, &self.domain);
        let built = |r: &RevisionRow| {
            builds
                .iter()
                .find(|b| b.ok && !b.commit.is_empty() && b.commit == r.source)
        };
        if self.json {
            let views: Vec<RevisionView<'_>> = revisions
                .iter()
                .map(|r| RevisionView {
                    build: built(r).map(BuildView::from),
                    ..RevisionView::from(r)
                })
                .collect();
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
            let mut cells = vec![
                format!("{marker} {}", abbreviated(&r.root)),
                httpdate::fmt_http_date(created(r)),
                source,
            ];
            if let Some(b) = built(r) {
                cells.push(format!("built in {:.1} s", b.duration_ms as f64 / 1000.0));
            }
            table.row(cells);
        }
        let mut text = table.into_text();
        for r in revisions.iter().filter(|r| !r.warnings.is_empty()) {
            text.push_str(&format!(
                "{} skipped lines of its rule files:\n",
                abbreviated(&r.root)
            ));
            for warning in r.warnings.lines() {
                text.push_str(&format!("  {warning}\n"));
            }
        }
        // Like skipped lines and refused builds, said only when it applies
        // (`preview-password <domain>` also says when the previews are open).
        let protection = ctx.deployer().preview_protection(&self.domain)?;
        if protection.set_ms.is_some() {
            text.push_str(&super::preview_password::describe(
                &self.domain,
                protection.set_ms,
            ));
            text.push('\n');
        }
        let newest = revisions.iter().map(|r| r.created_ms).max().unwrap_or(0);
        if let Some(b) = builds.first().filter(|b| !b.ok && b.started_ms > newest) {
            let when = std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(b.started_ms.max(0) as u64);
            text.push_str(&format!(
                "last build refused {} ({} {}, {:.1} s): {}; `build-log {}` prints its log\n",
                httpdate::fmt_http_date(when),
                b.branch,
                abbreviated(&b.commit),
                b.duration_ms as f64 / 1000.0,
                b.result,
                b.repo
            ));
        }
        Ok(text)
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
            build: None,
            warnings: r.warnings.lines().collect(),
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

/// The builds this node ran for the repository that deploys `domain` (a
/// domain or a preview host), newest first; none when it is unknown.
fn builds_of(ctx: &Context, domain: &str) -> Vec<BuildRecord> {
    let store = ctx.store();
    let repo = match store.domain_owner(domain) {
        Ok(Some(repo)) => Some(repo),
        _ => store
            .preview_owner(domain)
            .ok()
            .flatten()
            .map(|(repo, _)| repo),
    };
    repo.and_then(|repo| ctx.builder().logs().records(&repo).ok())
        .unwrap_or_default()
}
