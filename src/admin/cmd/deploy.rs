//! `deploy <dir>`: deploy a directory on the node's own machine. Only the
//! local admin socket offers it; over SSH the path would name a directory
//! on a machine the operator may not be on, so `git push` is the way there.

use std::path::PathBuf;

use super::ParseError;
use crate::admin::table::abbreviated;
use crate::admin::words::Words;
use crate::admin::{AdminError, Context};
use crate::deploy::LOCAL_OWNER;

/// The `deploy` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub dir: PathBuf,
}

/// The line that parses back into this command, as clients send it.
impl std::fmt::Display for Deploy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "deploy {}", self.dir.display())
    }
}

impl Deploy {
    pub fn parse(words: &mut Words<'_>) -> Result<Deploy, ParseError> {
        let dir = PathBuf::from(words.required()?);
        words.end()?;
        Ok(Deploy { dir })
    }

    pub fn run(self, ctx: &Context) -> Result<String, AdminError> {
        let deployed = ctx.deployer().deploy_dir(&self.dir, LOCAL_OWNER)?;
        Ok(deployed
            .iter()
            .map(|d| {
                format!(
                    "{} now serves revision {} ({} files)\n",
                    d.domain,
                    abbreviated(&d.root),
                    d.files
                )
            })
            .collect())
    }
}
