//! A site built on the node that received the push is served by the other
//! nodes of a loopback cluster, which receive the built revision over the
//! mesh and never run the build themselves.

use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::build::hugo_site;
use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::loopback::{join_token, member_toml, rpc_of, start_member};
use crate::support::{Node, temp_dir};

const HOST: &str = "cluster-build.example";
/// Upper bound for replication; reached only when it is broken.
const CONVERGE: Duration = Duration::from_secs(120);

fn start(dir: &TempDir, name: &str, key: Option<&str>, join: Option<(&str, &str)>) -> Node {
    let mut head = format!(
        "name = \"{name}\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[ssh]\nlisten = \"127.0.0.1:0\"\n"
    );
    if let Some(key) = key {
        head.push_str(&format!("authorized_keys = [\"{}\"]\n", key.trim()));
    }
    start_member(dir.path(), &member_toml(&head, join))
}

/// (revision, body) of `/hello/` on `node`, once it serves it.
fn served(node: &Node) -> Option<(String, String)> {
    let reply = node.try_get_with("/hello/", &[("host", HOST)]).ok()?;
    let revision = reply.header("x-makiatto-revision")?.to_string();
    (reply.status == 200).then(|| (revision, reply.text()))
}

#[test]
fn a_revision_built_on_one_node_is_served_by_the_others_which_never_build() {
    let client = Client::new();
    let key = std::fs::read_to_string(&client.public_key).unwrap_or_default();
    let homes: Vec<TempDir> = (0..3).map(|_| temp_dir()).collect();
    let a = start(&homes[0], "build-a", Some(&key), None);
    let seed = rpc_of(&a);
    let b = start(&homes[1], "build-b", None, Some((&seed, &join_token(&a))));
    let c = start(&homes[2], "build-c", None, Some((&seed, &join_token(&a))));

    let work = client.scratch().join("site");
    init_repo(&client, &work);
    hugo_site(
        &work,
        &format!(
            "[[domain]]\nname = \"{HOST}\"\n\n[build]\ncommand = \"hugo\"\noutput = \"public\"\n"
        ),
        "built on *a*",
    );
    commit_all(&client, &work, "hugo site");
    client.git_ok(&work, &["push", &repo_url(&a, "site"), "main"]);
    let (revision, page) =
        served(&a).unwrap_or_else(|| panic!("a does not serve its build\n{}", a.stderr()));
    assert!(page.contains("built on <em>a</em>"), "{page}");

    for (name, node) in [("b", &b), ("c", &c)] {
        let started = Instant::now();
        loop {
            if let Some((r, body)) = served(node)
                && r == revision
            {
                assert_eq!(body, page, "{name} serves other bytes");
                break;
            }
            assert!(
                started.elapsed() < CONVERGE,
                "{name} never served the build\n{}",
                node.stderr()
            );
            thread::sleep(Duration::from_millis(100));
        }
        // It never built: no build record, no checkout, no cache.
        assert!(
            !node.data.join("builds/logs").exists(),
            "{name} ran a build"
        );
        assert!(
            !node.data.join("builds/cache").exists(),
            "{name} ran a build"
        );
        let log = node.admin(&["build-log", "site"]);
        let said = format!("{}{}", log.stdout, log.stderr);
        assert!(
            !log.success() && said.contains("no build of repository site"),
            "{}",
            log.describe()
        );
    }
    assert!(a.data.join("builds/logs/site").is_dir());
}
