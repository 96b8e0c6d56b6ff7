//! Git repositories replicate between real `makiatto run` nodes (mesh RPC
//! on loopback): a push to one node is served by all, a fast-forward push
//! to another node builds on it, and `git fetch` from a third sees it.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::loopback::{join_token as token, member_toml, rpc_of, start_member};
use crate::support::{Node, temp_dir, write_file};
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

/// A new working repository of the site, its page saying `text`, committed
/// with `message`.
fn site_repo(client: &Client, text: &str, message: &str) -> std::path::PathBuf {
    let work = client.scratch().join("work");
    init_repo(client, &work);
    write_file(
        &work,
        "makiatto.toml",
        format!("[[domain]]\nname = \"{HOST}\"\npath = \"public\"\n"),
    );
    write_file(&work, "public/index.html", text);
    commit_all(client, &work, message);
    work
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

    let work = site_repo(&client, "first push, to a", "first");
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

/// What `node` serves for the site: its body, once it answers.
fn body(node: &Node) -> Option<String> {
    served(node).map(|(_, body)| body)
}

#[test]
fn concurrent_pushes_of_one_branch_to_two_nodes_leave_every_node_serving_the_commit_it_names() {
    let client = Client::new();
    let key = std::fs::read_to_string(&client.public_key).unwrap_or_default();
    let homes: Vec<TempDir> = (0..2).map(|_| temp_dir()).collect();
    let a = start(&homes[0], "race-a", Some(&key), None);
    let b = start(&homes[1], "race-b", None, Some((&rpc_of(&a), &token(&a))));
    let nodes = [&a, &b];

    let work = site_repo(&client, "base", "base");
    client.git_ok(&work, &["push", "-q", &repo_url(&a, "site"), "main"]);
    let head = |dir: &Path| {
        client
            .git_ok(dir, &["rev-parse", "HEAD"])
            .stdout
            .trim()
            .to_string()
    };
    let mut base = head(&work);
    wait_for("b holds the base commit and serves it", || {
        remote_head(&client, client.scratch(), &b).as_deref() == Some(base.as_str())
            && body(&b).as_deref() == Some("base")
    });

    // Each round: one commit per node on the same base, pushed to both at
    // once. Whichever wins, the branch and the served site must agree.
    for round in 0..4 {
        let mut commits = Vec::new();
        for name in ["race-a", "race-b"] {
            client.git_ok(&work, &["checkout", "-q", "--detach", &base]);
            let text = format!("round {round}, pushed to {name}");
            write_file(&work, "public/index.html", &text);
            commit_all(&client, &work, &text);
            commits.push((head(&work), text));
        }
        // A push may also be refused as stale, when the other one reached
        // its node first through replication; at least one lands.
        let accepted: Vec<bool> = thread::scope(|scope| {
            let pushes: Vec<_> = nodes
                .iter()
                .zip(&commits)
                .map(|(node, (commit, _))| {
                    let (client, work) = (&client, &work);
                    scope.spawn(move || {
                        let refspec = format!("{commit}:refs/heads/main");
                        let out =
                            client.git(work, &["push", "-q", &repo_url(node, "site"), &refspec]);
                        // A stale push: refused by the node (git/push.rs, relayed
                        // as a remote line) when the ref moved after the
                        // advertisement, or by git itself when the advertised
                        // ref had already moved by replication.
                        let stale = out
                            .stderr
                            .contains("remote: error: cannot lock ref 'refs/heads/main': is at")
                            || out.stderr.contains("(fetch first)")
                            || out.stderr.contains("(non-fast-forward)");
                        assert!(
                            out.success() || stale,
                            "push failed for another reason: {}",
                            out.describe()
                        );
                        out.success()
                    })
                })
                .collect();
            pushes
                .into_iter()
                // A push thread's panic (a push refused for another
                // reason) fails the test with its message.
                .map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        assert!(
            accepted.contains(&true),
            "round {round}: both pushes refused"
        );
        let mut settled = None;
        wait_for("both nodes name one commit and serve one site", || {
            let heads: Vec<_> = nodes
                .iter()
                .map(|n| remote_head(&client, client.scratch(), n))
                .collect();
            let bodies: Vec<_> = nodes.iter().map(|n| body(n)).collect();
            let agreed = heads[0].is_some()
                && heads.iter().all(|h| *h == heads[0])
                && bodies[0].is_some()
                && bodies.iter().all(|x| *x == bodies[0]);
            settled = agreed.then(|| (heads[0].clone(), bodies[0].clone()));
            agreed
        });
        let Some((Some(winner), Some(served_text))) = settled else {
            panic!("round {round}: no settled state");
        };
        let named = commits
            .iter()
            .zip(&accepted)
            .find(|((c, _), ok)| *c == winner && **ok)
            .map(|((_, text), _)| text.clone());
        assert_eq!(
            named.as_deref(),
            Some(served_text.as_str()),
            "round {round}: the branch names {winner} but the nodes serve {served_text:?}"
        );
        println!("round {round}: accepted {accepted:?}; both nodes settled on {served_text:?}");
        base = winner;
    }
}
