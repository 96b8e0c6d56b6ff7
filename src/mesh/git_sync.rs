//! Git repositories follow the replicated `refs` rows: when a row names a
//! commit this node lacks, the node fetches a pack of what it is missing
//! from a peer (the row's origin first), indexes it, and moves its ref, so
//! a push to any node builds on pushes to the others and `git fetch` works
//! everywhere.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::messages::{GitHaveRequest, PATH_GIT_OBJECTS};
use super::rpc::{Reply, RpcError};
use super::service::Mesh;
use crate::git::{GitError, replica};
use crate::shutdown::Shutdown;

/// How often repositories are checked without a trigger.
const RETRY: Duration = Duration::from_secs(5);
/// Largest pack a node accepts from a peer.
const MAX_PACK_BYTES: usize = 1024 * 1024 * 1024;

/// Keeps every repository at its replicated refs until shutdown.
pub async fn sync_loop(mesh: Arc<Mesh>, repos: PathBuf, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = sync_all(&mesh, &repos) => {}
            _ = shutdown.wait() => return,
        }
        tokio::select! {
            _ = mesh.git_wanted() => {}
            _ = tokio::time::sleep(RETRY) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// One pass over every repository and ref.
async fn sync_all(mesh: &Arc<Mesh>, repos: &std::path::Path) {
    let store = mesh.store().clone();
    let Ok(Ok(refs)) = tokio::task::spawn_blocking(move || store.replicated_refs()).await else {
        return;
    };
    let mut local: HashMap<String, HashMap<String, String>> = HashMap::new();
    for row in &refs {
        let (repo, name) = (row.repo.as_str(), row.name.as_str());
        let here = local
            .entry(repo.to_string())
            .or_insert_with(|| replica::local_refs(repos, repo).into_iter().collect());
        let current = here.get(name).cloned();
        let target = row.target.as_deref();
        if current.as_deref() == target {
            continue;
        }
        if let Some(target) = target
            && !replica::has_object(repos, repo, target)
        {
            let tips: Vec<String> = here.values().cloned().collect();
            if let Err(e) = fetch_pack(mesh, repos, repo, target, &tips, &row.origin).await {
                debug!(repo, target, error = %e, "git objects not fetched yet");
                continue;
            }
        }
        let store = mesh.store().clone();
        let locks = mesh.repo_locks().clone();
        let (dir, repo_name, ref_name) = (repos.to_path_buf(), repo.to_string(), name.to_string());
        let moved = tokio::task::spawn_blocking(move || {
            replica::follow_ref(&dir, &locks, &repo_name, &ref_name, || {
                chosen_target(&store, &repo_name, &ref_name)
            })
        })
        .await;
        match moved {
            Ok(Ok(false)) => {}
            Ok(Ok(true)) => {
                info!(repo, r#ref = name, "replicated ref");
                // Read the repository's refs again: the move followed the
                // row as it stood under the lock, which may be newer.
                local.remove(repo);
            }
            Ok(Err(e)) => warn!(repo, r#ref = name, error = %e, "cannot move replicated ref"),
            Err(e) => warn!(repo, r#ref = name, error = %e, "replicated ref task failed"),
        }
    }
}

/// The target the store's replicated row for ref `name` of `repo` names
/// now (`None`: deleted or no row).
fn chosen_target(store: &crate::store::Store, repo: &str, name: &str) -> Option<String> {
    store.replicated_ref(repo, name).ok()??.target
}

/// Why a ref's objects were not fetched (the last peer's reason).
#[derive(Debug, thiserror::Error)]
enum PackError {
    #[error("no peer to fetch from")]
    NoPeer,
    #[error("{peer} lacks {target}")]
    Lacks { peer: String, target: String },
    #[error("{peer}'s pack lacked {target}")]
    Incomplete { peer: String, target: String },
    #[error("cannot encode the request: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Fetches the objects of `target` from the peers, `origin` first.
async fn fetch_pack(
    mesh: &Mesh,
    repos: &std::path::Path,
    repo: &str,
    target: &str,
    tips: &[String],
    origin: &str,
) -> Result<(), PackError> {
    let mut peers = mesh.peers();
    peers.sort_by_key(|p| p.name != origin);
    let request = GitHaveRequest {
        repo: repo.to_string(),
        have: tips.to_vec(),
        want: vec![target.to_string()],
    };
    let body = Bytes::from(serde_json::to_vec(&request)?);
    let mut last = PackError::NoPeer;
    for peer in peers {
        let pack = match mesh
            .client()
            .call(peer.addr, PATH_GIT_OBJECTS, body.clone(), MAX_PACK_BYTES)
            .await
        {
            Ok(pack) if !pack.is_empty() => pack,
            Ok(_) => {
                last = PackError::Lacks {
                    peer: peer.name,
                    target: target.to_string(),
                };
                continue;
            }
            Err(e) => {
                last = e.into();
                continue;
            }
        };
        let (dir, repo_name) = (repos.to_path_buf(), repo.to_string());
        let imported =
            tokio::task::spawn_blocking(move || replica::import_pack(&dir, &repo_name, &pack))
                .await?;
        match imported {
            Ok(()) if replica::has_object(repos, repo, target) => return Ok(()),
            Ok(()) => {
                last = PackError::Incomplete {
                    peer: peer.name,
                    target: target.to_string(),
                }
            }
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// The server side: a pack of what the asking node lacks (empty if this
/// node lacks it too).
pub fn serve_pack(repos: &std::path::Path, body: &[u8]) -> Reply {
    let request: GitHaveRequest = match super::rpc::json_request(body, "git request") {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if request.want.len() > 256 || request.have.len() > 4096 {
        return Reply::error(hyper::StatusCode::PAYLOAD_TOO_LARGE, "too many ids");
    }
    match replica::pack_for(repos, &request.repo, &request.want, &request.have) {
        Ok(pack) => Reply::ok(pack),
        Err(e) => Reply::error(hyper::StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
