//! `maki stats` on three real `makiatto run` nodes (mesh RPC on
//! loopback): asked of one node, it shows every node's requests and bytes
//! for the site, after this test sent a different number of requests to
//! each.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::loopback::{join_token as token, member_toml, rpc_of, start_member};
use crate::support::{CmdOutput, Node, run_command, temp_dir, write_tree};

const HOST: &str = "stats.test";
const PAGE: &str = "<h1>counted</h1>\n";
const CONVERGE: Duration = Duration::from_secs(120);

fn start(dir: &TempDir, name: &str, key: &str, join: Option<(&str, &str)>) -> Node {
    let head = format!(
        "name = \"{name}\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[ssh]\nlisten = \"127.0.0.1:0\"\nauthorized_keys = [\"{}\"]\n",
        key.trim()
    );
    start_member(dir.path(), &member_toml(&head, join))
}

fn maki(client: &Client, node: &Node, args: &[&str]) -> CmdOutput {
    let mut command = Command::new(crate::support::maki_bin());
    command
        .args(args)
        .arg("--node")
        .arg(format!("git@127.0.0.1:{}", node.ssh_port()))
        .env("MAKI_SSH_COMMAND", client.ssh_command());
    let out = run_command(command, Duration::from_secs(60));
    assert!(out.success(), "maki {args:?}: {}", out.describe());
    out
}

/// Requests and bytes of `HOST` per node, from `maki stats --json`.
fn per_node(client: &Client, asked: &Node) -> Vec<(String, u64, u64)> {
    let out = maki(client, asked, &["stats", "--json", "--minutes", "16"]);
    let json: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()));
    assert_eq!(json["unreachable"], serde_json::json!([]), "{json}");
    let mut rows: Vec<(String, u64, u64)> = json["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes in {json}"))
        .iter()
        .map(|n| {
            let site = n["domains"]
                .as_array()
                .and_then(|d| d.iter().find(|d| d["domain"] == HOST));
            (
                n["node"].as_str().unwrap_or_default().to_string(),
                site.and_then(|s| s["requests"].as_u64()).unwrap_or(0),
                site.and_then(|s| s["bytes"].as_u64()).unwrap_or(0),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn maki_stats_asked_of_one_node_shows_each_nodes_traffic() {
    let client = Client::new();
    let key = std::fs::read_to_string(&client.public_key).unwrap_or_default();
    let homes: Vec<TempDir> = (0..3).map(|_| temp_dir()).collect();
    let a = start(&homes[0], "st-a", &key, None);
    let seed = rpc_of(&a);
    let b = start(&homes[1], "st-b", &key, Some((&seed, &token(&a))));
    let c = start(&homes[2], "st-c", &key, Some((&seed, &token(&a))));

    let work = client.scratch().join("work");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                &format!("[[domain]]\nname = \"{HOST}\"\npath = \"public\"\n"),
            ),
            ("public/index.html", PAGE),
        ],
    );
    commit_all(&client, &work, "site");
    client.git_ok(&work, &["push", "-q", &repo_url(&a, "site"), "main"]);
    let nodes = [&a, &b, &c];
    let started = Instant::now();
    for node in nodes {
        while node
            .try_get_with("/", &[("host", HOST)])
            .map_or(true, |r| r.status != 200)
        {
            assert!(started.elapsed() < CONVERGE, "a node never served the push");
            thread::sleep(Duration::from_millis(100));
        }
    }

    let before = per_node(&client, &a);
    assert_eq!(
        before.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["st-a", "st-b", "st-c"],
        "{before:?}"
    );
    // A different count per node, so each row is told apart.
    for (node, n) in nodes.iter().zip([3u64, 5, 7]) {
        for _ in 0..n {
            let reply = node.get_with("/", &[("host", HOST)]);
            assert_eq!(reply.status, 200, "{}", reply.describe());
        }
    }
    let after = per_node(&client, &a);
    let moved: Vec<(String, u64, u64)> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.0.clone(), a.1 - b.1, a.2 - b.2))
        .collect();
    let page = PAGE.len() as u64;
    assert_eq!(
        moved,
        [
            ("st-a".to_string(), 3, 3 * page),
            ("st-b".to_string(), 5, 5 * page),
            ("st-c".to_string(), 7, 7 * page),
        ]
    );

    // The text table has a row per node for the site, asked of another
    // node this time.
    let text = maki(&client, &c, &["stats"]).stdout;
    for name in ["st-a", "st-b", "st-c"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.contains(HOST)),
            "no {name} row for {HOST}:\n{text}"
        );
    }
    assert!(text.starts_with("last 5 minutes"), "{text}");
}
