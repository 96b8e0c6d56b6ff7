//! `repos list [--json]` (or `repos`): the pushed repositories and the
//! commit each of their refs points at.

use serde::{Serialize, Serializer};

use super::ParseError;
use crate::admin::table::{Table, abbreviated};
use crate::admin::words::Words;
use crate::admin::{AdminError, Context, json};
use crate::store::RepoRow;

/// The `repos list` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReposList {
    pub json: bool,
}

/// One repository in `repos list --json`.
#[derive(Serialize)]
struct RepoView<'a> {
    name: &'a str,
    /// Ref name → commit id, an object in the store's order (by name).
    #[serde(serialize_with = "refs_object")]
    refs: &'a [(String, String)],
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for ReposList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("repos list")?;
        if self.json {
            f.write_str(" --json")?;
        }
        Ok(())
    }
}

impl ReposList {
    /// Parses the words after `repos list` (or after a bare `repos`).
    pub fn parse(words: &mut Words<'_>) -> Result<ReposList, ParseError> {
        words.end()?;
        Ok(ReposList { json: words.json() })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let repos = ctx
            .store()
            .repos()
            .map_err(AdminError::store("list the repositories"))?;
        if self.json {
            let views: Vec<RepoView<'_>> = repos.iter().map(RepoView::from).collect();
            return Ok(json::line(&views)?);
        }
        // Each repository on a line, its refs indented below it.
        let mut table = Table::new("  ", &[]);
        for r in &repos {
            table.row([&r.name]);
            for (name, target) in &r.refs {
                table.row(["", name.as_str(), abbreviated(target)]);
            }
        }
        Ok(table.into_text())
    }
}

impl<'a> From<&'a RepoRow> for RepoView<'a> {
    fn from(r: &'a RepoRow) -> RepoView<'a> {
        RepoView {
            name: &r.name,
            refs: &r.refs,
        }
    }
}

/// `(name, target)` pairs as one JSON object, in their order.
fn refs_object<S: Serializer>(refs: &&[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(refs.iter().map(|(name, target)| (name, target)))
}
