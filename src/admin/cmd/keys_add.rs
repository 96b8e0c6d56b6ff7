//! `keys add [<key line>]`: authorise a public key. Over SSH the key may
//! come on stdin instead (`maki key add FILE` sends it so), which the SSH
//! transport reads when [`KeysAdd::wants_input`] says so.

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `keys add` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysAdd {
    /// An OpenSSH public key line (empty until input supplies it).
    pub key: String,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for KeysAdd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("keys add")?;
        if !self.wants_input() {
            write!(f, " {}", self.key.trim())?;
        }
        Ok(())
    }
}

impl KeysAdd {
    /// Parses the words after `keys add`: the rest of the line is the key.
    pub fn parse(words: &mut Words<'_>) -> Result<KeysAdd, ParseError> {
        Ok(KeysAdd {
            key: words.remainder(),
        })
    }

    /// Whether the key is still to be read from the transport's input.
    pub fn wants_input(&self) -> bool {
        self.key.trim().is_empty()
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let row = crate::git::keys::parse_line(&self.key)?;
        ctx.store()
            .add_key(&row)
            .map_err(AdminError::store("record the key"))?;
        Ok(format!("authorised {}  {}\n", row.fingerprint, row.comment))
    }
}
