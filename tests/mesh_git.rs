//! Git repositories replicate between real `makiatto run` nodes (mesh RPC
//! on loopback): a push to one node is served by all, a fast-forward push
//! to another node builds on it, and `git fetch` from a third sees it.

mod support;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use support::git::{Client, commit_all, init_repo, repo_url};
use support::loopback::{join_token as token, member_toml, rpc_of, start_member};
use support::{Node, temp_dir, write_file};
use tempfile::TempDir;

/// Upper bound for convergence; reached only when replication is broken.
const CONVERGE: Duration = Duration::from_secs(120);
const HOST: &str = "git.example";

fn start(dir: &TempDir, name: &str, key: Option<&str>, join: Option<(&str, &str)>) -> Node {
    let mut head = format!(
        "name = \"{name}\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[ssh]\nlisten = \"127.0.0.1:0\"\n"
    );
    if let Some(key) = key {
        head.push_str(&format!("authorized_keys = [\"{}\"]\n", key.trim()));
    }
    start_member(dir.path(), &member_toml(&head, join))
}

fn served(node: &Node) -> Option<(String, String)> {
    let reply = node.try_get_with("/", &[("host", HOST)]).ok()?;
    let rev = reply.header("x-makiatto-revision")?.to_string();
    (reply.status == 200).then(|| (rev, reply.text()))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < CONVERGE, "never happened: {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

fn remote_head(client: &Client, scratch: &Path, node: &Node) -> Option<String> {
    let out = client.git(
        scratch,
        &["ls-remote", &repo_url(node, "site"), "refs/heads/main"],
    );
    out.stdout.split_whitespace().next().map(str::to_string)
}

#[test]
fn a_push_to_one_node_is_served_everywhere_and_the_next_push_to_another_builds_on_it() {
    let client = Client::new();
    let key = std::fs::read_to_string(&client.public_key).unwrap_or_default();
    let homes: Vec<TempDir> = (0..3).map(|_| temp_dir()).collect();
    let a = start(&homes[0], "git-a", Some(&key), None);
    let seed = rpc_of(&a);
    let b = start(&homes[1], "git-b", None, Some((&seed, &token(&a))));
    let c = start(&homes[2], "git-c", None, Some((&seed, &token(&a))));
    let nodes = [&a, &b, &c];

    let work = client.scratch().join("work");
    init_repo(&client, &work);
    write_file(
        &work,
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\npath = \"public\"\n"),
    );
    write_file(&work, "public/index.html", "first push, to a");
    commit_all(&client, &work, "first");
    let pushed = Instant::now();
    client.git_ok(&work, &["push", "-q", &repo_url(&a, "site"), "main"]);
    let accepted = pushed.elapsed();
    let revision = served(&a).map(|(r, _)| r).unwrap_or_default();
    for node in nodes {
        wait_for("every node serves the first push", || {
            served(node).is_some_and(|(r, body)| r == revision && body == "first push, to a")
        });
    }
    println!(
        "a push to git-a was served by all three nodes {:?} after it was accepted",
        pushed.elapsed().saturating_sub(accepted)
    );

    // b learns the commit (keys replicated too: the client's key was only
    // in a's node.toml), then takes a fast-forward push on top of it.
    let first = client
        .git_ok(&work, &["rev-parse", "HEAD"])
        .stdout
        .trim()
        .to_string();
    wait_for("b holds a's commit", || {
        remote_head(&client, client.scratch(), &b).as_deref() == Some(first.as_str())
    });
    write_file(&work, "public/index.html", "second push, to b");
    commit_all(&client, &work, "second");
    client.git_ok(&work, &["push", "-q", &repo_url(&b, "site"), "main"]);
    let second = client
        .git_ok(&work, &["rev-parse", "HEAD"])
        .stdout
        .trim()
        .to_string();
    for node in nodes {
        wait_for("every node serves the second push", || {
            served(node).is_some_and(|(_, body)| body == "second push, to b")
        });
    }

    // A clone from c sees b's commit on top of a's.
    wait_for("c holds b's commit", || {
        remote_head(&client, client.scratch(), &c).as_deref() == Some(second.as_str())
    });
    let clone = client.scratch().join("clone");
    client.git_ok(
        client.scratch(),
        &[
            "clone",
            "-q",
            &repo_url(&c, "site"),
            clone.to_str().unwrap_or("clone"),
        ],
    );
    let log = client.git_ok(&clone, &["log", "--format=%s", "main"]);
    assert_eq!(
        log.stdout.lines().collect::<Vec<_>>(),
        vec!["second", "first"]
    );
    let fetched = std::fs::read_to_string(clone.join("public/index.html")).unwrap_or_default();
    assert_eq!(fetched, "second push, to b");
}
