//! `join-token`: a one-time token, valid for an hour, with which a new node
//! joins the cluster through this one.

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `join-token` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken;

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("join-token")
    }
}

impl JoinToken {
    pub fn parse(words: &mut Words<'_>) -> Result<JoinToken, ParseError> {
        words.end()?;
        Ok(JoinToken)
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let token = crate::mesh::join::new_token(ctx.store())
            .map_err(AdminError::store("record a join token"))?;
        // The token alone on the first line, so scripts can take it; then
        // the two lines to paste, with the address this node answers joins
        // on (its public address when it runs WireGuard).
        let join = match ctx.join_addr() {
            Some(addr) => addr.to_string(),
            None => "<this node's [cluster] rpc_listen; it runs no cluster yet>".to_string(),
        };
        Ok(format!(
            "{token}\n# valid once, for an hour: in the new node's node.toml\n[cluster]\njoin = \"{join}\"\njoin_token = \"{token}\"\n"
        ))
    }
}
