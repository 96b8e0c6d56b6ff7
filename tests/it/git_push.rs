//! `git push` to a dev node with the real git client: deploys, previews,
//! tags, concurrency, validation, hooks and refusals.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{Node, write_file, write_tree};

const SITE_CONFIG: &str = "[[domain]]\nname = \"example.com\"\npath = \"public\"\n";

/// A repo at `dir` with a makiatto.toml serving `public/` as example.com.
fn site_repo(client: &Client, dir: &Path, index: &str) {
    init_repo(client, dir);
    write_tree(
        dir,
        &[("makiatto.toml", SITE_CONFIG), ("public/index.html", index)],
    );
    commit_all(client, dir, "first");
}

fn get_host(node: &Node, host: &str, path: &str) -> crate::support::Reply {
    node.get_with(path, &[("host", host)])
}

#[test]
fn first_push_creates_the_repo_and_serves_it_then_incremental_and_force_pushes_serve_changes() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    site_repo(&client, &work, "<h1>one</h1>");
    let url = repo_url(&node, "site");

    let out = client.git_ok(&work, &["push", &url, "main"]);
    assert!(node.data.join("repos/site.git/objects").is_dir());
    assert!(
        out.stderr.contains("remote: live: http://example.com:"),
        "{}",
        out.describe()
    );
    // The URLs are the last remote lines.
    let last_remote = out
        .stderr
        .lines()
        .rfind(|l| l.starts_with("remote:"))
        .unwrap_or("");
    assert!(
        last_remote.contains("live: http://example.com:"),
        "{}",
        out.describe()
    );
    assert_eq!(get_host(&node, "example.com", "/").text(), "<h1>one</h1>");

    // Incremental: git sends a thin pack on top of what the node has.
    write_file(&work, "public/index.html", "<h1>two</h1>");
    write_file(&work, "public/new.txt", "new");
    commit_all(&client, &work, "second");
    client.git_ok(&work, &["push", &url, "main"]);
    assert_eq!(get_host(&node, "example.com", "/").text(), "<h1>two</h1>");
    assert_eq!(get_host(&node, "example.com", "/new.txt").text(), "new");

    // Force push: rewrite the last commit.
    write_file(&work, "public/index.html", "<h1>forced</h1>");
    client.git_ok(&work, &["add", "-A"]);
    client.git_ok(&work, &["commit", "-q", "--amend", "-m", "amended"]);
    let rejected = client.git(&work, &["push", &url, "main"]);
    assert!(
        !rejected.success(),
        "a non-fast-forward push without --force succeeded"
    );
    client.git_ok(&work, &["push", "--force", &url, "main"]);
    assert_eq!(
        get_host(&node, "example.com", "/").text(),
        "<h1>forced</h1>"
    );

    // Pushing the same state again changes nothing and succeeds.
    let again = client.git_ok(&work, &["push", &url, "main"]);
    assert!(again.stderr.contains("up-to-date"), "{}", again.describe());
}

#[test]
fn a_branch_push_serves_a_preview_until_deleted_and_a_tag_push_deploys_nothing() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    site_repo(&client, &work, "<h1>prod</h1>");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    let prod_revision = get_host(&node, "example.com", "/")
        .header("x-makiatto-revision")
        .map(str::to_string);

    client.git_ok(&work, &["checkout", "-q", "-b", "Feature/New_Look"]);
    write_file(&work, "public/index.html", "<h1>preview</h1>");
    commit_all(&client, &work, "preview");
    let out = client.git_ok(&work, &["push", &url, "Feature/New_Look"]);
    let host = "feature-new-look.preview.example.com";
    assert!(
        out.stderr.contains(&format!("live: http://{host}:")),
        "{}",
        out.describe()
    );
    assert_eq!(get_host(&node, host, "/").text(), "<h1>preview</h1>");
    // Production is untouched.
    let prod = get_host(&node, "example.com", "/");
    assert_eq!(prod.text(), "<h1>prod</h1>");
    assert_eq!(
        prod.header("x-makiatto-revision").map(str::to_string),
        prod_revision
    );

    let out = client.git_ok(&work, &["push", &url, "--delete", "Feature/New_Look"]);
    assert!(out.stderr.contains("preview removed"), "{}", out.describe());
    // Dev mode serves unknown hosts with the first site: the preview is gone.
    assert_eq!(get_host(&node, host, "/").text(), "<h1>prod</h1>");

    client.git_ok(&work, &["checkout", "-q", "main"]);
    write_file(&work, "public/index.html", "<h1>tagged only</h1>");
    commit_all(&client, &work, "tagged");
    client.git_ok(&work, &["tag", "-a", "v1", "-m", "release 1"]);
    let out = client.git_ok(&work, &["push", &url, "v1"]);
    assert!(!out.stderr.contains("live:"), "{}", out.describe());
    assert_eq!(get_host(&node, "example.com", "/").text(), "<h1>prod</h1>");
    let repos = client.ssh(&node, "repos list", None);
    assert!(
        repos.stdout.contains("refs/tags/v1"),
        "{}",
        repos.describe()
    );
}

#[test]
fn concurrent_pushes_to_two_branches_both_land_and_to_one_branch_one_wins() {
    let client = Client::new();
    let node = client.start_node();
    let base = client.scratch().join("base");
    site_repo(&client, &base, "<h1>base</h1>");
    let url = repo_url(&node, "site");
    client.git_ok(&base, &["push", &url, "main"]);

    let clone = |name: &str, index: &str| {
        let dir = client.scratch().join(name);
        client.git_ok(client.scratch(), &["clone", "-q", &url, name]);
        write_file(&dir, "public/index.html", index);
        commit_all(&client, &dir, name);
        dir
    };
    let a = clone("a", "<h1>a</h1>");
    let b = clone("b", "<h1>b</h1>");
    let pushes = |refs: [&str; 2]| {
        std::thread::scope(|s| {
            let ta = s.spawn(|| client.git(&a, &["push", &url, refs[0]]));
            let tb = s.spawn(|| client.git(&b, &["push", &url, refs[1]]));
            (ta.join().expect("push a"), tb.join().expect("push b"))
        })
    };

    let (pa, pb) = pushes(["HEAD:refs/heads/one", "HEAD:refs/heads/two"]);
    assert!(pa.success(), "{}", pa.describe());
    assert!(pb.success(), "{}", pb.describe());
    assert_eq!(
        get_host(&node, "one.preview.example.com", "/").text(),
        "<h1>a</h1>"
    );
    assert_eq!(
        get_host(&node, "two.preview.example.com", "/").text(),
        "<h1>b</h1>"
    );

    // Both pushes meet in pre-receive before either moves main, so both
    // were told the same old main: the node itself must reject the second.
    // Each hook run says it arrived, then waits for the test to release it
    // (or gives up after two minutes, so nothing hangs).
    let meeting = client.scratch().join("meeting");
    std::fs::create_dir_all(&meeting).expect("create the meeting dir");
    let dir = meeting.display();
    std::fs::write(
        node.data.join("hooks/pre-receive"),
        format!(
            "#!/bin/sh\ntouch \"{dir}/arrived.$$\"\ni=0\nwhile [ ! -e \"{dir}/release\" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done\n"
        ),
    )
    .expect("write hook");
    let (pa, pb) = std::thread::scope(|s| {
        let ta = s.spawn(|| client.git(&a, &["push", &url, "HEAD:refs/heads/main"]));
        let tb = s.spawn(|| client.git(&b, &["push", &url, "HEAD:refs/heads/main"]));
        let deadline = Instant::now() + Duration::from_secs(120);
        let arrived = || {
            std::fs::read_dir(&meeting).map_or(0, |d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("arrived."))
                    .count()
            })
        };
        while arrived() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let both = arrived();
        std::fs::write(meeting.join("release"), "").expect("release the hooks");
        let pushed = (ta.join().expect("push a"), tb.join().expect("push b"));
        assert_eq!(
            both,
            2,
            "both pushes reach pre-receive at once; a: {}\nb: {}",
            pushed.0.describe(),
            pushed.1.describe()
        );
        pushed
    });
    assert!(
        pa.success() != pb.success(),
        "a: {}\nb: {}",
        pa.describe(),
        pb.describe()
    );
    let (winner, loser) = if pa.success() { ("a", &pb) } else { ("b", &pa) };
    assert!(
        loser
            .stderr
            .contains("remote: error: cannot lock ref 'refs/heads/main'"),
        "{}",
        loser.describe()
    );
    assert!(
        loser
            .stderr
            .contains("[remote rejected] HEAD -> main (failed to update ref)"),
        "{}",
        loser.describe()
    );
    assert_eq!(
        get_host(&node, "example.com", "/").text(),
        format!("<h1>{winner}</h1>")
    );
}

#[test]
fn a_broken_config_is_rejected_with_its_location_and_nothing_changes() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    site_repo(&client, &work, "<h1>good</h1>");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);

    write_file(
        &work,
        "makiatto.toml",
        "[[domain]]\nname = \"example.com\"\npath = \"public\"\n\n\n\npathh = \"x\"\n",
    );
    write_file(&work, "public/index.html", "<h1>bad</h1>");
    commit_all(&client, &work, "broken");
    let out = client.git(&work, &["push", &url, "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains(
            "remote: error: makiatto.toml:7:1: unknown field \"pathh\", did you mean \"path\"?"
        ),
        "{}",
        out.describe()
    );
    assert_eq!(get_host(&node, "example.com", "/").text(), "<h1>good</h1>");
    let refs = client.ssh(&node, "repos list --json", None);
    let head = client.git_ok(&work, &["rev-parse", "HEAD~1"]).stdout;
    assert!(refs.stdout.contains(head.trim()), "{}", refs.describe());

    // A missing `path` is refused the same way.
    write_file(
        &work,
        "makiatto.toml",
        "[[domain]]\nname = \"example.com\"\npath = \"nope\"\n",
    );
    commit_all(&client, &work, "missing path");
    let out = client.git(&work, &["push", &url, "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("\"nope\" is not a directory"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_domain_owned_by_another_repo_is_refused() {
    let client = Client::new();
    let node = client.start_node();
    let first = client.scratch().join("first");
    site_repo(&client, &first, "<h1>first</h1>");
    client.git_ok(&first, &["push", &repo_url(&node, "first"), "main"]);
    let second = client.scratch().join("second");
    site_repo(&client, &second, "<h1>second</h1>");
    let out = client.git(&second, &["push", &repo_url(&node, "second"), "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("example.com is already served by first"),
        "{}",
        out.describe()
    );
    assert_eq!(get_host(&node, "example.com", "/").text(), "<h1>first</h1>");
}

#[test]
fn a_failing_pre_receive_hook_rejects_the_push_with_its_output() {
    let client = Client::new();
    let node = client.start_node();
    let hook = node.data.join("hooks/pre-receive");
    assert!(
        hook.is_file(),
        "the default pre-receive hook was not installed"
    );
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do echo \"no pushes to $ref of $MAKIATTO_REPO on $MAKIATTO_NODE\"; done\nexit 1\n",
    )
    .expect("write hook");
    let work = client.scratch().join("site");
    site_repo(&client, &work, "<h1>x</h1>");
    let out = client.git(&work, &["push", &repo_url(&node, "site"), "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("remote: no pushes to refs/heads/main of site on dev"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("pre-receive hook declined"),
        "{}",
        out.describe()
    );
    assert_ne!(get_host(&node, "example.com", "/").text(), "<h1>x</h1>");
}

#[test]
fn the_default_hooks_protect_main_and_log_pushes() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    site_repo(&client, &work, "<h1>x</h1>");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    let log = std::fs::read_to_string(node.data.join("hooks/push.log")).expect("push.log");
    assert!(log.contains(" dev site refs/heads/main "), "{log}");
    let out = client.git(&work, &["push", &url, "--delete", "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("refusing to delete protected branch main"),
        "{}",
        out.describe()
    );
}

#[test]
fn an_unknown_key_is_refused() {
    let client = Client::new();
    let node = client.start_node();
    let stranger = Client::new();
    let work = stranger.scratch().join("site");
    site_repo(&stranger, &work, "<h1>x</h1>");
    let out = stranger.git(&work, &["push", &repo_url(&node, "site"), "main"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("Permission denied"),
        "{}",
        out.describe()
    );
    assert!(!node.data.join("repos/site.git").exists());
    let status = stranger.ssh(&node, "status", None);
    assert!(!status.success(), "{}", status.describe());
    assert!(client.ssh(&node, "status", None).success());
}

#[test]
fn path_like_and_over_long_repo_names_are_refused() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    site_repo(&client, &work, "<h1>x</h1>");
    let long = "a".repeat(64);
    let port = node.ssh_port().to_string();
    let ssh = format!("{} -p {port}", client.ssh_command());
    for name in [
        "../x",
        "/etc/passwd",
        "a/b",
        long.as_str(),
        "~/x",
        ".hidden",
    ] {
        let remote = format!("git@127.0.0.1:{name}");
        let mut command = std::process::Command::new("git");
        command
            .current_dir(&work)
            .args(["push", &remote, "main"])
            .env("GIT_SSH_COMMAND", &ssh);
        let out = crate::support::run_command(command, std::time::Duration::from_secs(60));
        assert!(!out.success(), "{name}: {}", out.describe());
        assert!(
            out.stderr.contains("invalid repository name"),
            "{name}: {}",
            out.describe()
        );
    }
    let repos = std::fs::read_dir(node.data.join("repos"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(repos, 0, "a refused name created a repository");
}
