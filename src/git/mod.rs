//! The git endpoint: an SSH server (russh) that accepts only authorised
//! public keys and only `git-receive-pack`, `git-upload-pack` and admin
//! commands; receive-pack and upload-pack implemented on gix, so nodes need
//! no git binary; and what a push does (checks, hooks, deploy, refs).
//!
//! Names from the network are checked before they reach the disk
//! (`repo_name.rs`), and a ref moves only after its objects are connected
//! and its site deployed (`push.rs`).

mod channel_io;
mod checkout;
mod connectivity;
mod exec;
mod fuzz;
mod hooks;
mod host_key;
pub mod keys;
pub mod locks;
mod pack;
mod pktline;
mod push;
mod push_build;
mod quarantine;
mod receive;
pub mod replica;
mod repo;
mod repo_name;
mod shallow;
mod ssh;
mod ssh_limits;
mod tree_source;
mod upload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use exec::{Exec, ExecError};
pub use hooks::{Hooks, install_defaults};
pub use host_key::{HOST_KEY_FILE, load_or_generate};
pub use repo_name::{BadRepoName, RepoName};
pub use ssh::{SshEndpoint, bind};

use crate::services::Services;

/// An error from gix or ssh-key, whose types differ from call to call.
pub type LibraryError = Box<dyn std::error::Error + Send + Sync>;

/// Why a git session failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("{context}: {source}")]
    Repo {
        context: String,
        source: LibraryError,
    },
    #[error("{0}")]
    Objects(#[source] LibraryError),
    #[error(transparent)]
    Name(#[from] BadRepoName),
    #[error("cannot index the pushed pack: {0}")]
    Pack(#[source] LibraryError),
    #[error("cannot update refs: {0}")]
    RefUpdate(#[source] LibraryError),
    #[error("object {0} is missing")]
    Missing(String),
    #[error("repository {0} does not exist; push to it first")]
    NoRepo(String),
    #[error("hook failed to run: {name}: {source}")]
    Hook {
        name: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Deploy(#[from] crate::deploy::DeployError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("host key: {what} {path}: {source}")]
    HostKey {
        what: &'static str,
        path: std::path::PathBuf,
        source: LibraryError,
    },
}

impl GitError {
    /// A repository operation (`context` says which) failed in a library.
    fn repo(context: impl Into<String>, source: impl Into<LibraryError>) -> GitError {
        GitError::Repo {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Everything a git or admin session needs from the node.
pub struct GitService {
    /// The node's subsystems: pushes deploy through its deployer and
    /// record refs in its store; admin commands run against all of it.
    pub services: Arc<Services>,
    /// `<data>/repos`: one bare repository per pushed name.
    pub repos: PathBuf,
    pub hooks: Hooks,
    /// The port visitors reach HTTP on, for the URLs a push prints.
    pub http_port: u16,
}

impl GitService {
    /// A service over the node's `services`.
    pub fn new(
        services: Arc<Services>,
        repos: PathBuf,
        hooks: Hooks,
        http_port: u16,
    ) -> GitService {
        GitService {
            services,
            repos,
            hooks,
            http_port,
        }
    }

    /// The repository's lock (see `locks.rs`): ref checks, deploys and
    /// ref updates of a push happen under it, so concurrent pushes, and
    /// replication, serialise per repository.
    fn repo_lock(&self, name: &str) -> Arc<Mutex<()>> {
        self.services.repo_locks.of(name)
    }

    fn record_repo(&self, name: &RepoName) -> Result<(), GitError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.services
            .store
            .ensure_repo(name.as_str(), now)
            .map_err(GitError::from)
    }

    /// Where `host` is served.
    pub fn url(&self, host: &str) -> String {
        if self.http_port == 80 {
            format!("http://{host}/")
        } else {
            format!("http://{host}:{}/", self.http_port)
        }
    }
}
