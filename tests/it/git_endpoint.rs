//! The git endpoint as git's own server behaves, with the real git client:
//! `/NAME` URLs, a quarantine that keeps a refused push's objects out
//! (`git count-objects`), `--atomic` pushes that change nothing when one
//! ref fails (deploys included), a ref that cannot be written leaving the
//! site as it was, and `pre-receive` output reaching the pusher while the
//! hook still runs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{Node, write_file, write_tree};

/// Upper bound on waiting for a line the test expects from a push.
const LINE_WAIT: Duration = Duration::from_secs(120);

/// The objects a node's repository holds, as `git count-objects -v`
/// reports them: (loose count, objects in packs, packs).
fn count_objects(client: &Client, node: &Node, repo: &str) -> (u64, u64, u64) {
    let git_dir = node.data.join(format!("repos/{repo}.git"));
    let out = client.git_ok(
        Path::new("/"),
        &[
            "--git-dir",
            git_dir.to_str().expect("UTF-8 path"),
            "count-objects",
            "-v",
        ],
    );
    let field = |name: &str| -> u64 {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {}", out.describe()))
    };
    (field("count"), field("in-pack"), field("packs"))
}

/// Directories a quarantine could leave in a repository's `objects/`.
fn quarantines(node: &Node, repo: &str) -> Vec<String> {
    std::fs::read_dir(node.data.join(format!("repos/{repo}.git/objects")))
        .expect("objects dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("incoming-"))
        .collect()
}

fn get_host(node: &Node, host: &str) -> String {
    node.get_with("/", &[("host", host)]).text()
}

#[test]
fn a_slash_name_url_pushes_and_a_bad_name_is_told_the_accepted_forms() {
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
            ("public/index.html", "<h1>slash</h1>"),
        ],
    );
    commit_all(&client, &work, "first");
    let port = node.ssh_port();
    client.git_ok(
        &work,
        &["push", &format!("ssh://git@127.0.0.1:{port}/site"), "main"],
    );
    assert_eq!(get_host(&node, "example.com"), "<h1>slash</h1>");
    // The same repository answers to every form.
    for form in ["site", "/site.git", "site.git"] {
        let url = format!(
            "ssh://git@127.0.0.1:{port}/{}",
            form.trim_start_matches('/')
        );
        let out = client.git_ok(&work, &["ls-remote", &url]);
        assert!(out.stdout.contains("refs/heads/main"), "{}", out.describe());
    }

    let out = client.git(
        &work,
        &["push", &format!("ssh://git@127.0.0.1:{port}/a/b"), "main"],
    );
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains(
            "invalid repository name \"/a/b\": write it as NAME, NAME.git, /NAME or /NAME.git"
        ),
        "{}",
        out.describe()
    );
}

#[test]
fn a_refused_push_leaves_no_object_in_the_repository() {
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
            ("public/index.html", "<h1>one</h1>"),
        ],
    );
    commit_all(&client, &work, "first");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    let before = count_objects(&client, &node, "site");
    assert!(before.1 > 0, "the first push stored nothing: {before:?}");

    // Refused by the site check: new blobs, trees and a commit arrive and
    // must not stay.
    write_file(
        &work,
        "makiatto.toml",
        "[[domain]]\nnamee = \"example.com\"\n",
    );
    write_file(&work, "public/big.txt", "x".repeat(100_000));
    commit_all(&client, &work, "broken");
    let out = client.git(&work, &["push", &url, "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("invalid makiatto.toml"),
        "{}",
        out.describe()
    );
    assert_eq!(count_objects(&client, &node, "site"), before);

    // Refused by pre-receive: the hook sees the pushed objects (git finds
    // them through the quarantine) and the repository still gets none.
    let hook = node.data.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do git cat-file -t \"$new\" | sed 's/^/hook sees a /'; done\nexit 1\n",
    )
    .expect("write hook");
    write_file(
        &work,
        "makiatto.toml",
        "[[domain]]\nname = \"example.com\"\npath = \"public\"\n",
    );
    commit_all(&client, &work, "fixed");
    let out = client.git(&work, &["push", &url, "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("remote: hook sees a commit"),
        "{}",
        out.describe()
    );
    assert_eq!(count_objects(&client, &node, "site"), before);
    assert_eq!(quarantines(&node, "site"), Vec::<String>::new());
    assert_eq!(get_host(&node, "example.com"), "<h1>one</h1>");

    // Accepted: now the objects are the repository's.
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").expect("write hook");
    client.git_ok(&work, &["push", &url, "main"]);
    let after = count_objects(&client, &node, "site");
    assert!(after.1 > before.1, "{after:?} vs {before:?}");
    assert_eq!(quarantines(&node, "site"), Vec::<String>::new());
    let fsck = client.git(
        Path::new("/"),
        &[
            "--git-dir",
            node.data.join("repos/site.git").to_str().expect("UTF-8"),
            "fsck",
            "--connectivity-only",
        ],
    );
    assert!(fsck.success(), "{}", fsck.describe());
}

/// A repository whose `main` serves a.test and whose `release` serves
/// b.test through a transform that fails on every page (`on_error =
/// "fail"`), so `release` passes every check and fails only when deployed.
fn two_branch_site(client: &Client, work: &Path, page: &str) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasm/broken.wasm");
    let broken = std::fs::read(&fixture).expect("tests/wasm/broken.wasm");
    init_repo(client, work);
    write_tree(
        work,
        &[
            (
                "makiatto.toml",
                r#"
[[domain]]
name = "a.test"
path = "a"

[[domain]]
name = "b.test"
path = "b"
production_branch = "release"
previews = false

[[domain.transforms]]
path = "broken.wasm"
files = "**/*.html"
on_error = "fail"
"#,
            ),
            ("a/index.html", page),
            ("b/index.html", page),
        ],
    );
    write_file(work, "b/broken.wasm", broken);
    commit_all(client, work, "two branches");
}

#[test]
fn an_atomic_push_with_one_failing_deploy_changes_nothing_and_a_plain_one_reports_each_ref() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"a.test\"\npath = \"a\"\n",
            ),
            ("a/index.html", "<h1>old</h1>"),
        ],
    );
    commit_all(&client, &work, "old");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    let before = count_objects(&client, &node, "site");
    let refs_before = client.git_ok(&work, &["ls-remote", &url]).stdout;
    let deploys_before = node.admin(&["deploys", "a.test"]).stdout;

    std::fs::remove_dir_all(work.join(".git")).expect("fresh history");
    two_branch_site(&client, &work, "<h1>new</h1>");
    client.git_ok(&work, &["branch", "release"]);
    let out = client.git(
        &work,
        &["push", "--force", "--atomic", &url, "main", "release"],
    );
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("deploy of release failed: domain b.test: transform \"broken.wasm\" failed"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("atomic push failed"),
        "{}",
        out.describe()
    );
    assert_eq!(get_host(&node, "a.test"), "<h1>old</h1>");
    assert_eq!(
        client.git_ok(&work, &["ls-remote", &url]).stdout,
        refs_before
    );
    assert_eq!(count_objects(&client, &node, "site"), before);
    // The staged revision of main was discarded, not left listed.
    assert_eq!(node.admin(&["deploys", "a.test"]).stdout, deploys_before);

    // Without --atomic each ref gets its own true outcome: main goes
    // live, release is refused, and the served sites match the refs.
    let out = client.git(&work, &["push", "--force", &url, "main", "release"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("! [remote rejected] release -> release (deploy failed)"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains(" main -> main (forced update)"),
        "{}",
        out.describe()
    );
    assert_eq!(get_host(&node, "a.test"), "<h1>new</h1>");
    let refs = client.git_ok(&work, &["ls-remote", &url]).stdout;
    assert!(refs.contains("refs/heads/main"), "{refs}");
    assert!(!refs.contains("refs/heads/release"), "{refs}");
}

#[test]
fn a_ref_that_cannot_be_written_leaves_the_site_as_it_was() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"a.test\"\npath = \"a\"\n",
            ),
            ("a/index.html", "<h1>one</h1>"),
        ],
    );
    commit_all(&client, &work, "one");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    let deploys_before = node.admin(&["deploys", "a.test"]).stdout;

    // A stale lock file (a crashed writer, a full disk) keeps the ref
    // transaction from writing the ref.
    let lock = node.data.join("repos/site.git/refs/heads/main.lock");
    std::fs::write(&lock, "").expect("lock file");
    write_file(&work, "a/index.html", "<h1>two</h1>");
    commit_all(&client, &work, "two");
    let out = client.git(&work, &["push", &url, "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("failed to update ref"),
        "{}",
        out.describe()
    );
    assert_eq!(get_host(&node, "a.test"), "<h1>one</h1>");
    assert_eq!(node.admin(&["deploys", "a.test"]).stdout, deploys_before);

    std::fs::remove_file(&lock).expect("remove lock");
    client.git_ok(&work, &["push", &url, "main"]);
    assert_eq!(get_host(&node, "a.test"), "<h1>two</h1>");
}

#[test]
fn pre_receive_output_reaches_the_pusher_while_the_hook_runs() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            (
                "makiatto.toml",
                "[[domain]]\nname = \"a.test\"\npath = \"a\"\n",
            ),
            ("a/index.html", "<h1>hooked</h1>"),
        ],
    );
    commit_all(&client, &work, "one");
    // The hook prints a line, then waits (at most a minute) for a file
    // only the test creates once it has seen that line.
    let go = client.scratch().join("go");
    let ended = client.scratch().join("ended");
    std::fs::write(
        node.data.join("hooks/pre-receive"),
        format!(
            "#!/bin/sh\ncat >/dev/null\necho 'checking the push'\ni=0\nwhile [ ! -e '{go}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\necho 'hook done'\ntouch '{ended}'\n",
            go = go.display(),
            ended = ended.display()
        ),
    )
    .expect("write hook");

    let mut push = Command::new("git")
        .current_dir(&work)
        .args(["push", &repo_url(&node, "site"), "main"])
        .env("GIT_SSH_COMMAND", client.ssh_command())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", client.scratch())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn git push");
    let stderr = push.stderr.take().expect("piped stderr");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
            for part in line.split(|b| *b == b'\r') {
                let _ = lines.send(String::from_utf8_lossy(part).into_owned());
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match received.recv_timeout(LINE_WAIT) {
            Ok(line) => {
                let first = line.contains("remote: checking the push");
                seen.push(line);
                if first {
                    break;
                }
            }
            Err(e) => {
                let _ = push.kill();
                panic!("no hook line from the push ({e}); it said: {seen:#?}");
            }
        }
    }
    // The hook cannot have ended: it waits for `go`.
    assert!(
        !ended.exists(),
        "the hook ended before its first line arrived"
    );
    std::fs::write(&go, "").expect("go");
    let status = push.wait().expect("wait for git push");
    let _ = reader.join();
    seen.extend(received.try_iter());
    assert!(status.success(), "push failed: {seen:#?}");
    assert!(ended.exists());
    assert!(
        seen.iter().any(|l| l.contains("remote: hook done")),
        "{seen:#?}"
    );
    assert_eq!(get_host(&node, "a.test"), "<h1>hooked</h1>");
}

#[test]
fn a_depth_one_clone_gets_one_commit_and_deepens_and_unshallows_on_fetch() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_file(
        &work,
        "makiatto.toml",
        "[[domain]]\nname = \"a.test\"\npath = \"a\"\n",
    );
    for n in 1..=3 {
        write_file(&work, "a/index.html", format!("<h1>{n}</h1>"));
        write_file(&work, &format!("a/page{n}.html"), format!("page {n}"));
        commit_all(&client, &work, &format!("commit {n}"));
    }
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);

    let clone = client.scratch().join("clone");
    let clone_arg = clone.to_str().expect("UTF-8 path");
    client.git_ok(
        client.scratch(),
        &["clone", "-q", "--depth", "1", &url, clone_arg],
    );
    let commits = |dir: &Path| {
        client
            .git_ok(dir, &["rev-list", "--count", "HEAD"])
            .stdout
            .trim()
            .to_string()
    };
    assert_eq!(commits(&clone), "1");
    assert!(
        clone.join(".git/shallow").is_file(),
        "the clone is not shallow"
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("a/index.html")).expect("checked out"),
        "<h1>3</h1>"
    );
    assert!(clone.join("a/page1.html").is_file());
    let fsck = client.git(&clone, &["fsck", "--connectivity-only"]);
    assert!(fsck.success(), "{}", fsck.describe());

    client.git_ok(&clone, &["fetch", "-q", "--deepen=1", "origin"]);
    assert_eq!(commits(&clone), "2");
    let log = client.git_ok(&clone, &["log", "--format=%s"]);
    assert_eq!(
        log.stdout.lines().collect::<Vec<_>>(),
        ["commit 3", "commit 2"]
    );

    // New history on top reaches the shallow clone; then all of it.
    write_file(&work, "a/index.html", "<h1>4</h1>");
    commit_all(&client, &work, "commit 4");
    client.git_ok(&work, &["push", &url, "main"]);
    client.git_ok(&clone, &["pull", "-q", "--ff-only", "origin", "main"]);
    assert_eq!(commits(&clone), "3");
    client.git_ok(&clone, &["fetch", "-q", "--unshallow", "origin"]);
    assert_eq!(commits(&clone), "4");
    assert!(!clone.join(".git/shallow").exists());
    let fsck = client.git(&clone, &["fsck"]);
    assert!(fsck.success(), "{}", fsck.describe());
}
