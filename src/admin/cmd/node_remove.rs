//! `node remove <name>`: take a node out of the cluster. Its row becomes a
//! tombstone, so peers drop it and DNS stops answering with it.

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `node remove` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRemove {
    /// Lowercase.
    pub name: String,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for NodeRemove {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node remove {}", self.name)
    }
}

impl NodeRemove {
    /// Parses the words after `node remove`.
    pub fn parse(words: &mut Words<'_>) -> Result<NodeRemove, ParseError> {
        let name = words.required()?.to_ascii_lowercase();
        words.end()?;
        Ok(NodeRemove { name })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let known = ctx
            .store()
            .remove_node(&self.name)
            .map_err(AdminError::store("remove the node"))?;
        if !known {
            return Err(AdminError::UnknownNode(self.name));
        }
        Ok(format!(
            "node {} removed: peers drop it and DNS stops answering with it\n",
            self.name
        ))
    }
}
