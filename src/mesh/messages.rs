//! The mesh RPC's request and response shapes (JSON), and its paths.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::NodePlace;
use crate::store::{Row, Version};

pub const PATH_APPLY: &str = "/v1/apply";
pub const PATH_DIGEST: &str = "/v1/digest";
pub const PATH_ROWS: &str = "/v1/rows";
pub const PATH_TREE: &str = "/v1/tree";
pub const PATH_OBJECTS: &str = "/v1/objects";
pub const PATH_JOIN: &str = "/v1/join";
pub const PATH_PING: &str = "/v1/ping";
pub const PATH_STATUS: &str = "/v1/status";
pub const PATH_TRAFFIC: &str = "/v1/traffic";
pub const PATH_GIT_OBJECTS: &str = "/v1/git/objects";
pub const PATH_PROBE: &str = "/v1/probe";
pub const PATH_SUSPECT: &str = "/v1/suspect";

/// Most rows in one push or answer.
pub const MAX_ROWS: usize = 2000;
/// Most directories one tree request may list.
pub const MAX_TREE_DIRS: usize = 4096;
/// Most objects one batch may name.
pub const MAX_BATCH_OBJECTS: usize = 4096;

/// Rows pushed to a peer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyRequest {
    pub rows: Vec<Row>,
}

/// How many of the pushed rows changed the peer's state.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplyReply {
    pub applied: usize,
}

/// Per table, a hash of the whole table and, in the second round, the
/// hash of each digest bucket.
#[derive(Debug, Serialize, Deserialize)]
pub struct DigestRequest {
    pub tables: BTreeMap<String, TableDigest>,
}

/// One table's digest.
#[derive(Debug, Serialize, Deserialize)]
pub struct TableDigest {
    pub whole: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<String>>,
}

/// Tables whose whole hash differed (first round), and per table the
/// peer's versions in every bucket whose hash differed (second round).
#[derive(Debug, Serialize, Deserialize, Default)]
pub struct DigestReply {
    #[serde(default)]
    pub differ: Vec<String>,
    #[serde(default)]
    pub tables: BTreeMap<String, BTreeMap<usize, Vec<Version>>>,
}

/// Rows of one table by key.
#[derive(Debug, Serialize, Deserialize)]
pub struct RowsRequest {
    pub table: String,
    pub keys: Vec<String>,
}

/// Rows answered.
#[derive(Debug, Serialize, Deserialize)]
pub struct RowsReply {
    pub rows: Vec<Row>,
}

/// Directory listings of a manifest the peer holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct TreeRequest {
    /// CAS hash of the manifest, hex.
    pub manifest: String,
    pub dirs: Vec<String>,
}

/// One directory's children, in name order.
#[derive(Debug, Serialize, Deserialize)]
pub struct DirListing {
    pub path: String,
    pub children: Vec<ChildWire>,
}

/// One child of a directory: a subdirectory with its node hash, or a file
/// with its manifest entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChildWire {
    pub name: String,
    /// Node hash, hex (of the directory; for a file, its leaf hash).
    pub hash: String,
    /// For files: executable bit, size and content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileWire>,
}

/// A file's manifest entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct FileWire {
    pub exec: bool,
    pub size: u64,
    pub blob: String,
}

/// The listings asked for, in request order (missing ones left out).
#[derive(Debug, Serialize, Deserialize)]
pub struct TreeReply {
    pub dirs: Vec<DirListing>,
}

/// Objects asked for by hash (hex); the answer is binary (see `objects.rs`).
#[derive(Debug, Serialize, Deserialize)]
pub struct ObjectsRequest {
    pub hashes: Vec<String>,
    /// Ship objects as their precompressed variants where the sender holds
    /// them (absent from older nodes: plain objects).
    #[serde(default)]
    pub variants: bool,
}

/// What a joining node says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The one-time token, or empty when the node holds an operator key.
    pub token: String,
    /// Name, public addresses and coordinates, as flat fields on the wire.
    #[serde(flatten)]
    pub place: NodePlace,
    pub wg_public_key: Option<String>,
    pub endpoint: Option<String>,
    /// Mesh addresses the node was given by hand, if any.
    #[serde(default)]
    pub mesh_ipv4: Option<String>,
    #[serde(default)]
    pub mesh_ipv6: Option<String>,
    pub rpc_addr: String,
}

/// What a joining node receives: its mesh addresses and a snapshot of
/// every replicated row.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinReply {
    pub mesh_ipv4: Option<String>,
    pub mesh_ipv6: Option<String>,
    pub rows: Vec<Row>,
}

/// Git objects a peer lacks: the commits it asks about.
#[derive(Debug, Serialize, Deserialize)]
pub struct GitHaveRequest {
    pub repo: String,
    /// Commit ids (hex) the asking node already has, as negotiation hints.
    pub have: Vec<String>,
    /// Commit ids it wants.
    pub want: Vec<String>,
}

/// An indirect probe: the asking node could not reach `node` and asks
/// this one to probe it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeRequest {
    pub node: String,
}

/// Whether the asked node's probe reached it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProbeReply {
    pub reached: bool,
}

/// A node suspects `node` is down (neither it nor the peers it asked
/// reached it), or `node` says it is draining: the receiver probes it
/// itself at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Suspicion {
    pub node: String,
}
