//! Admin commands over the SSH endpoint, directly with `ssh` and through
//! `maki --node`: status, deploys, rollback, keys.

use std::process::Command;
use std::time::Duration;

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::stop::Stop;
use crate::support::{CmdOutput, Node, run_command, write_file, write_tree};

fn maki(client: &Client, node: &Node, args: &[&str]) -> CmdOutput {
    let mut command = Command::new(crate::support::maki_bin());
    command
        .args(args)
        .arg("--node")
        .arg(format!("git@127.0.0.1:{}", node.ssh_port()))
        .env("MAKI_SSH_COMMAND", client.ssh_command());
    run_command(command, Duration::from_secs(60))
}

#[test]
fn maki_rollback_switches_the_served_revision_and_deploys_lists_commits() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"example.com\"\npath = \"public\"\n",
            ),
            ("public/index.html", "<h1>v1</h1>"),
        ],
    );
    commit_all(&client, &work, "v1");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    write_file(&work, "public/index.html", "<h1>v2</h1>");
    commit_all(&client, &work, "v2");
    client.git_ok(&work, &["push", &url, "main"]);
    let get = || node.get_with("/", &[("host", "example.com")]);
    assert_eq!(get().text(), "<h1>v2</h1>");

    let deploys = maki(&client, &node, &["deploys", "example.com"]);
    assert!(deploys.success(), "{}", deploys.describe());
    let head = client.git_ok(&work, &["rev-parse", "HEAD"]).stdout;
    assert!(
        deploys
            .stdout
            .contains(&format!("main {}", &head.trim()[..12])),
        "{}",
        deploys.describe()
    );
    assert!(
        deploys.stdout.lines().next().unwrap_or("").starts_with('*'),
        "{}",
        deploys.describe()
    );
    let json = client.ssh(&node, "deploys example.com --json", None);
    assert!(
        json.stdout
            .contains(&format!("\"commit\":\"{}\"", head.trim())),
        "{}",
        json.describe()
    );

    // Watch the site while rolling back: every answer is v1 or v2, whole.
    // The watcher stops when the rollback is checked, or when a failed
    // check unwinds first; at the latest after two minutes.
    let stop = Stop::new(Duration::from_secs(120));
    std::thread::scope(|s| {
        let stopping = stop.guard();
        let watcher = s.spawn(|| {
            let agent = node.agent();
            let mut seen = 0;
            while stop.running() {
                let reply =
                    crate::support::fetch_with(&agent, &node.url("/"), &[("host", "example.com")]);
                let text = reply.text();
                assert!(text == "<h1>v1</h1>" || text == "<h1>v2</h1>", "{text:?}");
                seen += 1;
            }
            seen
        });
        let out = maki(&client, &node, &["rollback", "example.com"]);
        assert!(out.success(), "{}", out.describe());
        assert!(
            out.stdout.contains("now serves revision"),
            "{}",
            out.describe()
        );
        std::thread::sleep(Duration::from_millis(100));
        drop(stopping);
        assert!(watcher.join().expect("watcher") > 0);
    });
    assert!(stop.stopped_in_time(), "the rollback took over two minutes");
    assert_eq!(get().text(), "<h1>v1</h1>");
}

#[test]
fn keys_are_listed_added_and_removed_over_ssh_and_status_answers() {
    let client = Client::new();
    let node = client.start_node();
    let status = client.ssh(&node, "status --json", None);
    assert!(status.success(), "{}", status.describe());
    assert!(
        status.stdout.starts_with("{\"sites\":"),
        "{}",
        status.describe()
    );

    // Its own comment, so the list can show which line is the added key.
    let friend = Client::with_comment("friend@makiatto");
    assert!(!friend.ssh(&node, "status", None).success());
    let added = maki(
        &client,
        &node,
        &["key", "add", friend.public_key.to_str().expect("utf-8")],
    );
    assert!(added.success(), "{}", added.describe());
    assert!(friend.ssh(&node, "status", None).success());
    let list = maki(&client, &node, &["key", "list"]);
    let fingerprint = list
        .stdout
        .lines()
        .find(|l| l.contains("test@makiatto"))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string);
    assert!(list.stdout.lines().count() >= 2, "{}", list.describe());
    let added_fp = added
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    assert!(fingerprint.is_some());
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with(&added_fp) && l.contains("friend@makiatto")),
        "the added key {added_fp:?} is not listed: {}",
        list.describe()
    );
    let removed = client.ssh(&node, &format!("keys remove {added_fp}"), None);
    assert!(removed.success(), "{}", removed.describe());
    assert!(!friend.ssh(&node, "status", None).success());

    // Over ssh, keys add reads stdin.
    let via_stdin = client.ssh(&node, "keys add", Some(&friend.public_key));
    assert!(via_stdin.success(), "{}", via_stdin.describe());
    assert!(friend.ssh(&node, "status", None).success());

    // No shell, and no local deploys over ssh.
    let deploy = client.ssh(&node, "deploy /etc", None);
    assert!(!deploy.success(), "{}", deploy.describe());
    let unknown = client.ssh(&node, "sh -c id", None);
    assert!(!unknown.success(), "{}", unknown.describe());
}

#[test]
fn a_run_node_takes_pushes_from_the_keys_its_node_toml_lists() {
    let client = Client::new();
    let key = std::fs::read_to_string(&client.public_key).expect("public key");
    let dir = crate::support::temp_dir();
    write_file(
        dir.path(),
        "node.toml",
        format!(
            "name = \"edge-1\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[ssh]\nlisten = \"127.0.0.1:0\"\nauthorized_keys = [\"{}\"]\nhooks_dir = \"hooks\"\n",
            key.trim()
        ),
    );
    let config = dir.path().join("node.toml");
    let hooks = dir.path().join("hooks");
    let data = dir.path().join("data");
    let node = Node::start_run(&config, dir, data);
    assert!(
        hooks.join("pre-receive").is_file(),
        "default hooks not installed"
    );
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"shop.example\"\npath = \"public\"\n",
            ),
            ("public/index.html", "<h1>shop</h1>"),
        ],
    );
    commit_all(&client, &work, "shop");
    client.git_ok(&work, &["push", &repo_url(&node, "shop"), "main"]);
    assert_eq!(
        node.get_with("/", &[("host", "shop.example")]).text(),
        "<h1>shop</h1>"
    );
    let status = client.ssh(&node, "status", None);
    assert!(
        status.stdout.contains("shop.example"),
        "{}",
        status.describe()
    );
}
