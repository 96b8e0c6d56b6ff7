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
        // The token alone on the first line, so scripts can take it; then
        // the new node's [cluster] table, with the address this node
        // answers joins on: its public address at the mesh RPC port when it
        // runs WireGuard, its rpc_listen when it does not.
        let join = ctx.join_addr().map_err(AdminError::NoJoinAddress)?;
        let token = crate::mesh::join::new_token(ctx.store())
            .map_err(AdminError::store("record a join token"))?;
        Ok(format!(
            "{token}\n# valid once, for an hour: the new node's [cluster] table\n[cluster]\njoin = \"{join}\"\njoin_token = \"{token}\"\n"
        ))
    }
}
