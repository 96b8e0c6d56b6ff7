//! `keys list [--json]` (or `keys`): the public keys allowed to push and
//! to run admin commands over SSH.

use serde::Serialize;

use super::ParseError;
use crate::admin::table::Table;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context, json};
use crate::store::KeyRow;

/// The `keys list` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysList {
    pub json: bool,
}

/// One authorised key in `keys list --json`.
#[derive(Serialize)]
struct KeyView<'a> {
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    fingerprint: &'a str,
    /// The key in OpenSSH one-line form, without comment.
    key: &'a str,
    comment: &'a str,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for KeysList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("keys list")?;
        if self.json {
            f.write_str(" --json")?;
        }
        Ok(())
    }
}

impl KeysList {
    /// Parses the words after `keys list` (or after a bare `keys`).
    pub fn parse(words: &mut Words<'_>) -> Result<KeysList, ParseError> {
        words.end()?;
        Ok(KeysList { json: words.json() })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let keys = ctx
            .store()
            .keys()
            .map_err(AdminError::store("list the authorised keys"))?;
        if self.json {
            let views: Vec<KeyView<'_>> = keys.iter().map(KeyView::from).collect();
            return Ok(json::line(&views)?);
        }
        let mut table = Table::new("  ", &[]);
        for k in &keys {
            table.row([&k.fingerprint, &k.comment]);
        }
        Ok(table.into_text())
    }
}

impl<'a> From<&'a KeyRow> for KeyView<'a> {
    fn from(k: &'a KeyRow) -> KeyView<'a> {
        KeyView {
            fingerprint: &k.fingerprint,
            key: &k.public_key,
            comment: &k.comment,
        }
    }
}
