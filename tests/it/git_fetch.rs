//! `git clone` and `git fetch` from a node (upload-pack on gix), checked
//! with `git fsck --strict` on both ends, and a large binary push served
//! byte-identical.

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{Xorshift, url_path, write_file, write_tree};

#[test]
fn a_clone_and_the_nodes_repo_pass_fsck_and_a_fetch_sees_a_later_push() {
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
            ("public/a/b/c.txt", "deep"),
        ],
    );
    commit_all(&client, &work, "one");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    write_file(&work, "public/index.html", "<h1>two</h1>");
    commit_all(&client, &work, "two");
    client.git_ok(&work, &["tag", "-a", "v2", "-m", "two"]);
    client.git_ok(&work, &["push", &url, "main", "v2"]);

    client.git_ok(client.scratch(), &["clone", "-q", &url, "first"]);
    let first = client.scratch().join("first");
    client.git_ok(&first, &["fsck", "--strict"]);
    let bare = node.data.join("repos/site.git");
    client.git_ok(&bare, &["fsck", "--strict"]);
    assert_eq!(
        client.git_ok(&first, &["rev-parse", "HEAD"]).stdout,
        client.git_ok(&work, &["rev-parse", "HEAD"]).stdout
    );
    assert_eq!(
        std::fs::read_to_string(first.join("public/a/b/c.txt")).expect("cloned file"),
        "deep"
    );
    let tags = client.git_ok(&first, &["tag"]).stdout;
    assert!(tags.contains("v2"), "{tags}");

    client.git_ok(client.scratch(), &["clone", "-q", &url, "second"]);
    let second = client.scratch().join("second");
    write_file(&first, "public/index.html", "<h1>three</h1>");
    commit_all(&client, &first, "three");
    client.git_ok(&first, &["push", "origin", "main"]);
    client.git_ok(&second, &["fetch", "-q", "origin"]);
    assert_eq!(
        client.git_ok(&second, &["rev-parse", "origin/main"]).stdout,
        client.git_ok(&first, &["rev-parse", "HEAD"]).stdout
    );
    client.git_ok(&second, &["fsck", "--strict"]);
    client.git_ok(&bare, &["fsck", "--strict"]);
}

#[test]
fn a_push_of_5000_files_and_100_mb_is_served_byte_identical() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("big");
    init_repo(&client, &work);
    // No makiatto.toml: the whole tree is served as localhost.
    let mut rng = Xorshift::new(42);
    let mut files = Vec::new();
    for i in 0..5000 {
        let rel = format!("d{}/f{i}.bin", i % 50);
        // 20 KiB of binary (incompressible) bytes each: ~100 MB in all.
        let bytes = rng.bytes(20 * 1024 + (i % 7));
        write_file(&work, &rel, &bytes);
        files.push((rel, bytes));
    }
    commit_all(&client, &work, "big");
    client.git_ok(&work, &["push", &repo_url(&node, "big"), "main"]);
    // Every file, byte for byte.
    for (rel, bytes) in &files {
        let reply = node.get_with(&url_path(rel), &[("host", "localhost")]);
        assert_eq!(reply.status, 200, "{rel}: {}", reply.describe());
        assert!(reply.body == *bytes, "{rel} differs");
    }
}
