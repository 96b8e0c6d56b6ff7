//! Skew protection: a visitor whose page loaded from one revision keeps
//! getting that revision's assets after a deploy, for the domain's
//! `skew_protection_secs`; new visitors and navigations get the new one.

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{Node, Reply, write_file, write_tree};

const CONFIG: &str = r#"[[domain]]
name = "example.com"
path = "public"
skew_protection_secs = 600
"#;

fn get(node: &Node, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("host", "example.com")];
    all.extend_from_slice(headers);
    node.get_with(path, &all)
}

#[test]
fn a_pinned_visitor_keeps_the_old_assets_after_a_deploy_and_a_new_one_gets_the_new() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            ("makiatto.toml", CONFIG),
            ("public/index.html", "<script src=/app.js></script>one\n"),
            ("public/app.js", "console.log('one');\n"),
        ],
    );
    commit_all(&client, &work, "one");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);

    // The page pins its visitor to the revision it came from.
    let page = get(&node, "/", &[]);
    let first = page
        .header("x-makiatto-revision")
        .unwrap_or_else(|| panic!("no revision: {}", page.describe()))
        .to_string();
    let cookie = page
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {}", page.describe()));
    assert_eq!(
        cookie,
        format!("__makiatto_revision={first}; Path=/; Max-Age=600; SameSite=Lax")
    );
    // Assets set no cookie.
    assert_eq!(get(&node, "/app.js", &[]).header("set-cookie"), None);

    write_file(
        &work,
        "public/index.html",
        "<script src=/app.js></script>two\n",
    );
    write_file(&work, "public/app.js", "console.log('two');\n");
    commit_all(&client, &work, "two");
    client.git_ok(&work, &["push", &url, "main"]);

    let pin = format!("__makiatto_revision={first}");
    let by_cookie = get(&node, "/app.js", &[("cookie", &pin)]);
    assert_eq!(
        by_cookie.text(),
        "console.log('one');\n",
        "{}",
        by_cookie.describe()
    );
    assert_eq!(
        by_cookie.header("x-makiatto-revision"),
        Some(first.as_str())
    );
    let by_header = get(&node, "/app.js", &[("x-makiatto-revision", &first)]);
    assert_eq!(
        by_header.text(),
        "console.log('one');\n",
        "{}",
        by_header.describe()
    );

    let fresh = get(&node, "/app.js", &[]);
    assert_eq!(fresh.text(), "console.log('two');\n");
    let second = fresh
        .header("x-makiatto-revision")
        .unwrap_or("")
        .to_string();
    assert_ne!(second, first);

    // A navigation gets the live page and is pinned to it afresh.
    let reload = get(
        &node,
        "/",
        &[("cookie", &pin), ("sec-fetch-mode", "navigate")],
    );
    assert_eq!(reload.text(), "<script src=/app.js></script>two\n");
    assert!(
        reload
            .header("set-cookie")
            .is_some_and(|c| c.starts_with(&format!("__makiatto_revision={second};"))),
        "{}",
        reload.describe()
    );
    // A revision that is not kept is ignored.
    let unknown = get(&node, "/app.js", &[("x-makiatto-revision", "0123456789ab")]);
    assert_eq!(unknown.text(), "console.log('two');\n");
}

#[test]
fn without_skew_protection_a_pin_is_ignored() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    let plain = CONFIG.replace("skew_protection_secs = 600\n", "");
    write_tree(
        &work,
        &[
            ("makiatto.toml", plain.as_str()),
            ("public/index.html", "one\n"),
            ("public/app.js", "one\n"),
        ],
    );
    commit_all(&client, &work, "one");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    let page = get(&node, "/", &[]);
    assert_eq!(page.header("set-cookie"), None, "{}", page.describe());
    let first = page.header("x-makiatto-revision").unwrap_or("").to_string();
    write_file(&work, "public/app.js", "two\n");
    commit_all(&client, &work, "two");
    client.git_ok(&work, &["push", &url, "main"]);
    let pinned = get(&node, "/app.js", &[("x-makiatto-revision", &first)]);
    assert_eq!(pinned.text(), "two\n");
}
