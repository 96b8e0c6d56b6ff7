//! Why an admin command failed on the node. Each message names what
//! failed and, where the operator can act, what to do; the text reaches
//! the operator as `error: <message>`.

use crate::deploy::DeployError;
use crate::git::keys::KeyError;
use crate::store::StoreError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A deploy or rollback was refused or failed; deploy's message names
    /// the domain or revision and what to do.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The node's state database could not be read or written.
    #[error("cannot {doing}: {source}")]
    Store {
        /// What the command was doing, e.g. `list the authorised keys`.
        doing: &'static str,
        #[source]
        source: StoreError,
    },
    /// `keys add` was given something that is not an acceptable key.
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("no revisions of domain {0} are kept on this node")]
    UnknownDomain(String),
    #[error("no node named {0:?} is known; node.toml's name and [[nodes]] list them")]
    UnknownNode(String),
    #[error("this node runs no cluster ([mesh] in node.toml), so it has no peers to drain to")]
    NoMesh,
    #[error("no domain given and none is deployed on this node; name one: dns setup example.com")]
    NoDomain,
    #[error("no authorised key has fingerprint {0}; `keys list` shows them")]
    NoSuchKey(String),
    #[error("cannot read the build records of {repo}: {source}")]
    BuildLog {
        repo: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no build of repository {0} ran on this node; builds run on the node that received the push"
    )]
    NoBuilds(String),
    /// `join-token` on a node no other node could join through.
    #[error("no node can join through this one: {0}")]
    NoJoinAddress(&'static str),
    #[error("cannot write the answer as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The blocking task running the command panicked or was cancelled.
    #[error("command failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl AdminError {
    /// A store failure while doing `doing` (a phrase after "cannot").
    pub fn store(doing: &'static str) -> impl FnOnce(StoreError) -> AdminError {
        move |source| AdminError::Store { doing, source }
    }
}
