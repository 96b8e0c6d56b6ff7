//! `node health <name> up|down`: whether DNS sends visitors to a node. The
//! mesh's health checks set the same flag; this is the operator's hand on
//! it (a node under maintenance, or a check that cannot see a fault).

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `node health` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHealth {
    /// Lowercase.
    pub name: String,
    pub healthy: bool,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for NodeHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.healthy { "up" } else { "down" };
        write!(f, "node health {} {state}", self.name)
    }
}

impl NodeHealth {
    /// Parses the words after `node health`.
    pub fn parse(words: &mut Words<'_>) -> Result<NodeHealth, ParseError> {
        let name = words.required()?.to_ascii_lowercase();
        let state = words.required()?;
        words.end()?;
        let healthy = match state {
            "up" => true,
            "down" => false,
            other => return Err(ParseError::HealthState(other.to_string())),
        };
        Ok(NodeHealth { name, healthy })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let known = ctx
            .store()
            .set_node_health(&self.name, self.healthy)
            .map_err(AdminError::store("set the node's health"))?;
        if !known {
            return Err(AdminError::UnknownNode(self.name));
        }
        // This node back up: it stops saying it drains, so peers take it
        // back too.
        if self.healthy && ctx.mesh_name().as_deref() == Some(self.name.as_str()) {
            ctx.set_draining(false);
        }
        let (state, effect) = if self.healthy {
            ("up", "DNS sends it the visitors nearest to it again")
        } else {
            (
                "down",
                "DNS sends its visitors to the next nearest healthy node",
            )
        };
        Ok(format!("node {} is {state}: {effect}\n", self.name))
    }
}
