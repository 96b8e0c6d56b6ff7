//! The mesh RPC's request handlers: one small function per path.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use tracing::debug;

use super::gossip;
use super::messages::*;
use super::objects;
use super::rpc::{Handler, Reply, json_reply, json_request};
use super::service::Mesh;
use super::tree_fetch::wire_children;

/// The handler the RPC server calls for `mesh`.
pub fn handler(mesh: Arc<Mesh>) -> Handler {
    Arc::new(move |method, path, body, peer| {
        let mesh = mesh.clone();
        Box::pin(async move { route(mesh, method, &path, body, peer).await })
    })
}

async fn route(
    mesh: Arc<Mesh>,
    method: Method,
    path: &str,
    body: Bytes,
    peer: SocketAddr,
) -> Reply {
    if method != Method::POST {
        return Reply::error(StatusCode::METHOD_NOT_ALLOWED, "mesh RPC takes POST");
    }
    debug!(peer = %peer, path, bytes = body.len(), "mesh rpc");
    let kind = path_kind(path);
    if let Some(Kind::Objects) = kind {
        return objects(mesh, &body).await;
    }
    if let Some(Kind::Probe) = kind {
        // Waits on the network, not on SQLite or the disk.
        return super::health::answer_probe(mesh, &body).await;
    }
    let work = move || match kind {
        Some(Kind::Apply) => apply(&mesh, &body),
        Some(Kind::Digest) => digest(&mesh, &body),
        Some(Kind::Rows) => rows(&mesh, &body),
        Some(Kind::Tree) => tree(&mesh, &body),
        // Answered above, before this blocking dispatch.
        Some(Kind::Objects) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, "objects misrouted"),
        Some(Kind::Join) => join(&mesh, &body),
        Some(Kind::Ping) => json_reply(&super::health::pong(&mesh)),
        Some(Kind::Status) => json_reply(&super::status::local_view(&mesh)),
        Some(Kind::Traffic) => json_reply(&mesh.traffic()),
        Some(Kind::GitObjects) => super::git_sync::serve_pack(mesh.repos(), &body),
        Some(Kind::Suspect) => super::health::answer_suspicion(&mesh, &body),
        Some(Kind::Probe) | None => Reply::error(StatusCode::NOT_FOUND, "no such mesh RPC"),
    };
    // Every handler touches SQLite or the disk.
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Reply::error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

/// A handler that answers only joins (the public join listener).
pub fn join_only(mesh: Arc<Mesh>) -> Handler {
    Arc::new(move |method, path, body, _peer| {
        let mesh = mesh.clone();
        Box::pin(async move {
            if method != Method::POST || path != PATH_JOIN {
                return Reply::error(StatusCode::NOT_FOUND, "only joins are answered here");
            }
            tokio::task::spawn_blocking(move || join(&mesh, &body))
                .await
                .unwrap_or_else(|e| Reply::error(StatusCode::INTERNAL_SERVER_ERROR, e))
        })
    })
}

enum Kind {
    Apply,
    Digest,
    Rows,
    Tree,
    Objects,
    Join,
    Ping,
    Status,
    Traffic,
    GitObjects,
    Probe,
    Suspect,
}

fn path_kind(path: &str) -> Option<Kind> {
    Some(match path {
        PATH_APPLY => Kind::Apply,
        PATH_DIGEST => Kind::Digest,
        PATH_ROWS => Kind::Rows,
        PATH_TREE => Kind::Tree,
        PATH_OBJECTS => Kind::Objects,
        PATH_JOIN => Kind::Join,
        PATH_PING => Kind::Ping,
        PATH_STATUS => Kind::Status,
        PATH_TRAFFIC => Kind::Traffic,
        PATH_GIT_OBJECTS => Kind::GitObjects,
        PATH_PROBE => Kind::Probe,
        PATH_SUSPECT => Kind::Suspect,
        _ => return None,
    })
}

fn apply(mesh: &Mesh, body: &[u8]) -> Reply {
    let request: ApplyRequest = match json_request(body, "rows") {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if request.rows.len() > MAX_ROWS {
        return Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_ROWS} rows per push"),
        );
    }
    match mesh.accept_rows(request.rows) {
        Ok(applied) => json_reply(&ApplyReply { applied }),
        Err(e) => Reply::error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

fn digest(mesh: &Mesh, body: &[u8]) -> Reply {
    let request: DigestRequest = match json_request(body, "digest") {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let ours = gossip::local_versions(mesh.store());
    json_reply(&gossip::differing(&ours, &request.tables))
}

fn rows(mesh: &Mesh, body: &[u8]) -> Reply {
    let request: RowsRequest = match json_request(body, "row keys") {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if request.keys.len() > MAX_ROWS {
        return Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_ROWS} keys per request"),
        );
    }
    match mesh.store().rows_by_key(&request.table, &request.keys) {
        Ok(rows) => json_reply(&RowsReply { rows }),
        Err(e) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn tree(mesh: &Mesh, body: &[u8]) -> Reply {
    let request: TreeRequest = match json_request(body, "tree request") {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if request.dirs.len() > MAX_TREE_DIRS {
        return Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_TREE_DIRS} directories per request"),
        );
    }
    let Ok(hash) = blake3::Hash::from_hex(&request.manifest) else {
        return Reply::error(StatusCode::BAD_REQUEST, "manifest is not a blake3 hash");
    };
    let Some(tree) = mesh.tree(&hash) else {
        return Reply::error(
            StatusCode::NOT_FOUND,
            "this node does not hold that manifest",
        );
    };
    let dirs = request
        .dirs
        .into_iter()
        .filter_map(|path| {
            let children = wire_children(tree.children(&path)?);
            Some(DirListing { path, children })
        })
        .collect();
    json_reply(&TreeReply { dirs })
}

/// Objects a peer asks for. Those this node is still fetching itself (it
/// owns them in the swarm, see `swarm.rs`) are waited for, so the answer
/// carries them as soon as they are stored.
async fn objects(mesh: Arc<Mesh>, body: &[u8]) -> Reply {
    let request: ObjectsRequest = match json_request(body, "object list") {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if request.hashes.len() > MAX_BATCH_OBJECTS {
        return Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {MAX_BATCH_OBJECTS} objects per batch"),
        );
    }
    let hashes: Arc<Vec<blake3::Hash>> = Arc::new(
        request
            .hashes
            .iter()
            .filter_map(|h| blake3::Hash::from_hex(h).ok())
            .collect(),
    );
    mesh.incoming()
        .wait(&hashes, || mesh.has_pending(), mesh.deployer().cas())
        .await;
    let cas = mesh.deployer().cas().clone();
    tokio::task::spawn_blocking(
        move || match objects::encode(&cas, &hashes, request.variants) {
            Ok(batch) => Reply::ok(batch),
            Err(e) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
    )
    .await
    .unwrap_or_else(|e| Reply::error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

fn join(mesh: &Mesh, body: &[u8]) -> Reply {
    let request: JoinRequest = match json_request(body, "join request") {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    match super::join::admit(mesh, &request) {
        Ok(reply) => json_reply(&reply),
        Err(message) => Reply::error(StatusCode::FORBIDDEN, message),
    }
}
