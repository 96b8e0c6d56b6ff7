//! `rollback <domain> [<revision>]`: serve the revision deployed before the
//! active one, or a kept revision named by a prefix of its root.

use super::ParseError;
use crate::admin::table::abbreviated;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `rollback` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// Lowercase.
    pub domain: String,
    /// A prefix of the wanted revision's root; `None`: the previous one.
    pub revision: Option<String>,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rollback {}", self.domain)?;
        if let Some(revision) = &self.revision {
            write!(f, " {revision}")?;
        }
        Ok(())
    }
}

impl Rollback {
    pub fn parse(words: &mut Words<'_>) -> Result<Rollback, ParseError> {
        let domain = words.required()?.to_ascii_lowercase();
        let revision = words.next_word().map(str::to_string);
        words.end()?;
        Ok(Rollback { domain, revision })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let row = ctx
            .deployer()
            .rollback(&self.domain, self.revision.as_deref())?;
        Ok(format!(
            "{} now serves revision {}\n",
            self.domain,
            abbreviated(&row.root)
        ))
    }
}
