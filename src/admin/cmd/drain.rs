//! `drain`: before a planned stop (an upgrade, a removal), this node takes
//! itself out of every node's DNS answers: its own at once, its peers'
//! once it tells them, at its next health beat, and they probe it, which
//! its ping answers with "draining". Visitors are then sent elsewhere
//! before it stops, so none of them reaches a stopped node. A restart ends
//! it, and so does `node health <this node> up`.

use super::ParseError;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};

/// The `drain` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drain;

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("drain")
    }
}

impl Drain {
    pub fn parse(words: &mut Words<'_>) -> Result<Drain, ParseError> {
        words.end()?;
        Ok(Drain)
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let name = ctx.set_draining(true).ok_or(AdminError::NoMesh)?;
        ctx.store()
            .set_node_health(&name, false)
            .map_err(AdminError::store("mark this node down"))?;
        Ok(format!(
            "node {name} is draining: its DNS answers without it now, its peers' within {} s; restart it or run `node health {name} up` to end this\n",
            crate::mesh::health::DRAIN_BOUND.as_secs()
        ))
    }
}
