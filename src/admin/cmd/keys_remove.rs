//! `keys remove <fingerprint>`: withdraw an authorised key; its holder can
//! no longer push or run admin commands.

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `keys remove` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysRemove {
    /// `SHA256:…`, as `keys list` shows it.
    pub fingerprint: String,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for KeysRemove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "keys remove {}", self.fingerprint)
    }
}

impl KeysRemove {
    /// Parses the words after `keys remove`.
    pub fn parse(words: &mut Words<'_>) -> Result<KeysRemove, ParseError> {
        let fingerprint = words.required()?.to_string();
        words.end()?;
        Ok(KeysRemove { fingerprint })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let removed = ctx
            .store()
            .remove_key(&self.fingerprint)
            .map_err(AdminError::store("remove the key"))?;
        if !removed {
            return Err(AdminError::NoSuchKey(self.fingerprint));
        }
        Ok(format!("removed {}\n", self.fingerprint))
    }
}
