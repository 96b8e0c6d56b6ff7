//! Loopback clusters: real `makiatto run` nodes on one machine, each with
//! its mesh RPC on an ephemeral `127.0.0.1` port (`[cluster] rpc_listen`)
//! instead of a WireGuard address, joined through a seed with a one-time
//! token. Each test writes its own listeners; this file adds the cluster
//! part and reads back what the nodes print.

use std::path::Path;

use super::{Node, temp_dir, write_file};

/// A node.toml: `head` (name, addresses, listeners) followed by a
/// `[cluster]` table on an ephemeral loopback port, joining through
/// `join` (the seed's RPC address and a token) when given.
pub fn member_toml(head: &str, join: Option<(&str, &str)>) -> String {
    let mut text = format!("{head}\n[cluster]\nrpc_listen = \"127.0.0.1:0\"\n");
    if let Some((seed, token)) = join {
        text.push_str(&format!("join = \"{seed}\"\njoin_token = \"{token}\"\n"));
    }
    text
}

/// Writes `toml` as `home/node.toml` and starts `makiatto run` on it, with
/// its data in `home/data` so a restart finds the same state.
pub fn start_member(home: &Path, toml: &str) -> Node {
    write_file(home, "node.toml", toml);
    Node::start_run(&home.join("node.toml"), temp_dir(), home.join("data"))
}

/// The address from the `  mesh rpc ADDR` line the node printed.
pub fn rpc_of(node: &Node) -> String {
    node.stdout_lines()
        .iter()
        .find_map(|l| l.trim().strip_prefix("mesh rpc ").map(str::to_string))
        .unwrap_or_else(|| panic!("no mesh rpc line in {:?}", node.stdout_lines()))
}

/// A fresh one-time join token from `node` (`makiatto join-token`).
pub fn join_token(node: &Node) -> String {
    let out = node.admin(&["join-token"]);
    assert!(out.success(), "join-token failed: {}", out.describe());
    out.stdout
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}
