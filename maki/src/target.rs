//! Which node a command talks to: `--node`, else `MAKI_NODE`, else the
//! cluster profile (`--profile NAME`, `MAKI_PROFILE`, or `default`), whose
//! nodes are tried in order until one is reached. A one-line
//! `<config>/maki/node` file, from before profiles, still names a node when
//! no profile exists.

use std::path::PathBuf;

use crate::profile::{Profile, ProfileError};
use crate::remote::{NodeAddr, RemoteError};

/// The nodes to try, in order, and where they came from.
#[derive(Debug)]
pub struct Targets {
    pub nodes: Vec<NodeAddr>,
}

/// Why no node could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{flag}: {source}")]
    Addr {
        /// `--node` or `MAKI_NODE`.
        flag: &'static str,
        source: RemoteError,
    },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(
        "no node given and no cluster profile at {path}: pass --node git@host:2222, set MAKI_NODE, or create the profile with `maki machine init`"
    )]
    NoNode { path: PathBuf },
    #[error("the legacy node file {path}: {source}")]
    Legacy { path: PathBuf, source: RemoteError },
}

impl Targets {
    /// Chooses the nodes from the `--node` and `--profile` flags and the
    /// environment.
    pub fn resolve(node: Option<&str>, profile: Option<&str>) -> Result<Targets, TargetError> {
        if let Some(text) = node {
            let addr = NodeAddr::parse(text).map_err(|source| TargetError::Addr {
                flag: "--node",
                source,
            })?;
            return Ok(Targets { nodes: vec![addr] });
        }
        if let Ok(text) = std::env::var("MAKI_NODE")
            && !text.trim().is_empty()
        {
            let addr = NodeAddr::parse(text.trim()).map_err(|source| TargetError::Addr {
                flag: "MAKI_NODE",
                source,
            })?;
            return Ok(Targets { nodes: vec![addr] });
        }
        let named = profile.is_some() || std::env::var_os("MAKI_PROFILE").is_some();
        let name = Profile::chosen_name(profile);
        match Profile::load(&name) {
            Ok(profile) => Ok(Targets {
                nodes: profile.admin_targets()?,
            }),
            Err(ProfileError::Missing { path, .. }) if !named => match legacy_node()? {
                Some(addr) => Ok(Targets { nodes: vec![addr] }),
                None => Err(TargetError::NoNode { path }),
            },
            Err(e) => Err(e.into()),
        }
    }
}

/// The node named in `<config>/maki/node`, if that file exists.
fn legacy_node() -> Result<Option<NodeAddr>, TargetError> {
    let Some(path) = Profile::dir()?.parent().map(|dir| dir.join("node")) else {
        return Ok(None);
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => NodeAddr::parse(text.trim())
            .map(Some)
            .map_err(|source| TargetError::Legacy { path, source }),
        _ => Ok(None),
    }
}
