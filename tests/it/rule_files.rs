//! `_redirects` and `_headers` in a pushed site, as a visitor and the
//! pusher see them: rules in Netlify's syntax answer real requests after a
//! real `git push`, bad lines are reported on the pusher's terminal and
//! kept with the revision, and the files themselves are never served.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{Node, Reply, write_file, write_tree};

/// The GeoIP test database kept with the tests (`tests/fixtures/geoip/`).
fn geoip_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip/GeoLite2-City-Test.mmdb")
}

/// A dev node authorising `client`, with the GeoIP test database and
/// loopback as a trusted proxy (so X-Forwarded-For picks the country).
fn node_for(client: &Client) -> Node {
    let config = client.scratch().join("node.toml");
    write_file(
        client.scratch(),
        "node.toml",
        format!(
            "name = \"london\"\n\n[http]\ntrusted_proxies = [\"127.0.0.1\"]\n\n[dns]\ngeoip_db = \"{}\"\n",
            geoip_fixture().display()
        ),
    );
    Node::start_bare(&[
        OsStr::new("--authorized-key"),
        client.public_key.as_os_str(),
        OsStr::new("--config"),
        config.as_os_str(),
    ])
}

const CONFIG: &str = r#"[[domain]]
name = "example.com"
aliases = ["old.example.com"]
path = "public"
"#;

const REDIRECTS: &str = "# moved from another host, as it was\r
/blog/*              /news/:splat\r
/products/:id/:slug  /p/:slug/:id       302\r
/store  id=:id       /items/:id         301\r
/search q=rust       /rust.html         302\r
/legacy.html         /new.html          301!\r
/kept.html           /new.html          301\r
/app/*               /app/shell.html    200\r
/retired/*           /gone.html         410\r
/shop/*              /uk/shop/:splat    302  Country=gb\r
/missing-target\r
/404  410\r
http://old.example.com/*  https://www.example.com/:splat  301!\r
/*                   /404.html          404\r
";

fn site(client: &Client, dir: &Path) {
    init_repo(client, dir);
    write_tree(
        dir,
        &[
            ("makiatto.toml", CONFIG),
            ("public/_redirects", REDIRECTS),
            ("public/index.html", "<h1>home</h1>\n"),
            ("public/legacy.html", "<p>legacy</p>\n"),
            ("public/kept.html", "<p>kept</p>\n"),
            ("public/new.html", "<p>new</p>\n"),
            ("public/rust.html", "<p>rust</p>\n"),
            ("public/app/shell.html", "<p>app shell</p>\n"),
            ("public/gone.html", "<p>gone</p>\n"),
            ("public/404.html", "<p>custom 404</p>\n"),
        ],
    );
    commit_all(client, dir, "site with _redirects");
}

fn get(node: &Node, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("host", "example.com")];
    all.extend_from_slice(headers);
    node.get_with(path, &all)
}

fn assert_redirect(reply: &Reply, status: u16, location: &str) {
    assert_eq!(reply.status, status, "{}", reply.describe());
    assert_eq!(
        reply.header("location"),
        Some(location),
        "{}",
        reply.describe()
    );
}

#[test]
fn redirects_file_rules_answer_real_requests_after_a_push() {
    let client = Client::new();
    let node = node_for(&client);
    let work = client.scratch().join("site");
    site(&client, &work);
    let out = client.git_ok(&work, &["push", &repo_url(&node, "site"), "main"]);

    // Splat, default status 301.
    assert_redirect(
        &get(&node, "/blog/2024/hello", &[]),
        301,
        "/news/2024/hello",
    );
    // Placeholders, reordered.
    assert_redirect(&get(&node, "/products/7/lamp", &[]), 302, "/p/lamp/7");
    // Query parameters: captured, and required.
    assert_redirect(&get(&node, "/store?id=42", &[]), 301, "/items/42?id=42");
    assert_redirect(&get(&node, "/search?q=rust", &[]), 302, "/rust.html?q=rust");
    let no_id = get(&node, "/store", &[]);
    assert_eq!(no_id.status, 404, "{}", no_id.describe());
    assert_eq!(no_id.text(), "<p>custom 404</p>\n");
    // 200 rewrite: the shell's bytes at the requested URL.
    let app = get(&node, "/app/settings/profile", &[]);
    assert_eq!(app.status, 200, "{}", app.describe());
    assert_eq!(app.text(), "<p>app shell</p>\n");
    // Other statuses serve their target with that status.
    let retired = get(&node, "/retired/thing", &[]);
    assert_eq!(retired.status, 410, "{}", retired.describe());
    assert_eq!(retired.text(), "<p>gone</p>\n");
    // A file shadows an unforced rule; `!` forces it.
    let kept = get(&node, "/kept.html", &[]);
    assert_eq!(kept.status, 200, "{}", kept.describe());
    assert_eq!(kept.text(), "<p>kept</p>\n");
    assert_redirect(&get(&node, "/legacy.html", &[]), 301, "/new.html");
    // Files shadow the catch-all 404 rule too.
    assert_eq!(get(&node, "/", &[]).text(), "<h1>home</h1>\n");
    // A host-qualified rule applies to that host only.
    let old = node.get_with("/any/page", &[("host", "old.example.com")]);
    assert_redirect(&old, 301, "https://www.example.com/any/page");
    // The rule file is not served.
    let file = get(&node, "/_redirects", &[]);
    assert_eq!(file.status, 404, "{}", file.describe());
    assert_eq!(file.text(), "<p>custom 404</p>\n");

    // Bad lines reach the pusher with place and fix, and the push lands.
    assert!(
        out.stderr.contains(
            "remote: warning: _redirects:11:1: `/missing-target` has no target; write where it goes after it"
        ),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr
            .contains("remote: warning: _redirects:12:7: status `410` comes before any target"),
        "{}",
        out.describe()
    );
    // And they are kept with the revision.
    let deploys = node.admin(&["deploys", "example.com"]);
    assert!(deploys.success(), "{}", deploys.describe());
    assert!(
        deploys.stdout.contains("skipped lines of its rule files:")
            && deploys
                .stdout
                .contains("  _redirects:11:1: `/missing-target` has no target"),
        "{}",
        deploys.describe()
    );
}

#[test]
fn a_country_condition_follows_the_forwarded_address_of_a_trusted_proxy() {
    let client = Client::new();
    let node = node_for(&client);
    let work = client.scratch().join("site");
    site(&client, &work);
    client.git_ok(&work, &["push", &repo_url(&node, "site"), "main"]);

    // 81.2.69.142 is London in the test database; 175.16.199.1 Changchun.
    let london = get(&node, "/shop/tea", &[("x-forwarded-for", "81.2.69.142")]);
    assert_redirect(&london, 302, "/uk/shop/tea");
    let changchun = get(&node, "/shop/tea", &[("x-forwarded-for", "175.16.199.1")]);
    assert_eq!(changchun.status, 404, "{}", changchun.describe());
    // The proxy's own address is trusted, so it is skipped from the right.
    let chained = get(
        &node,
        "/shop/tea",
        &[("x-forwarded-for", "175.16.199.1, 81.2.69.142, 127.0.0.1")],
    );
    assert_redirect(&chained, 302, "/uk/shop/tea");
    let direct = get(&node, "/shop/tea", &[]);
    assert_eq!(direct.status, 404, "{}", direct.describe());
}

const HEADERS: &str = "# every page
/*
  X-Frame-Options: DENY
  X-Content-Type-Options: nosniff

/assets/*
  Cache-Control: public, max-age=31536000, immutable

/docs/:page
  Link: </docs.css>; rel=preload; as=style
  Link: </docs.js>; rel=preload; as=script

/private/*
  ! Cache-Control
  X-Robots-Tag: noindex
This line has no colon
";

#[test]
fn headers_file_sets_several_values_and_removes_headers() {
    let client = Client::new();
    let node = node_for(&client);
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            ("makiatto.toml", CONFIG),
            ("public/_headers", HEADERS),
            ("public/index.html", "<h1>home</h1>\n"),
            ("public/assets/app.css", "body{}\n"),
            ("public/docs/intro.html", "<p>intro</p>\n"),
            ("public/private/notes.txt", "notes\n"),
        ],
    );
    commit_all(&client, &work, "site with _headers");
    let out = client.git_ok(&work, &["push", &repo_url(&node, "site"), "main"]);
    assert!(
        out.stderr.contains("remote: warning: _headers:16:1: "),
        "{}",
        out.describe()
    );

    let home = get(&node, "/", &[]);
    assert_eq!(
        home.header("x-frame-options"),
        Some("DENY"),
        "{}",
        home.describe()
    );
    assert_eq!(home.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        home.header("cache-control"),
        Some("public, max-age=0, must-revalidate")
    );
    let asset = get(&node, "/assets/app.css", &[]);
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable"),
        "{}",
        asset.describe()
    );
    let doc = get(&node, "/docs/intro", &[]);
    let links: Vec<&str> = doc
        .headers
        .iter()
        .filter(|(n, _)| n == "link")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        links,
        [
            "</docs.css>; rel=preload; as=style",
            "</docs.js>; rel=preload; as=script"
        ],
        "{}",
        doc.describe()
    );
    let private = get(&node, "/private/notes.txt", &[]);
    assert_eq!(
        private.header("cache-control"),
        None,
        "{}",
        private.describe()
    );
    assert_eq!(private.header("x-robots-tag"), Some("noindex"));
    assert_eq!(private.header("x-frame-options"), Some("DENY"));
    assert_eq!(get(&node, "/_headers", &[]).status, 404);
}

#[test]
fn strict_rule_files_refuse_a_push_with_a_bad_line_and_nothing_changes() {
    let client = Client::new();
    let node = node_for(&client);
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    let strict = format!("{CONFIG}strict_rule_files = true\n");
    write_tree(
        &work,
        &[
            ("makiatto.toml", strict.as_str()),
            ("public/_redirects", "/a /b 302\n"),
            ("public/index.html", "<h1>one</h1>\n"),
        ],
    );
    commit_all(&client, &work, "good rules");
    let url = repo_url(&node, "site");
    client.git_ok(&work, &["push", &url, "main"]);
    assert_redirect(&get(&node, "/a", &[]), 302, "/b");

    write_file(
        &work,
        "public/_redirects",
        "/a /b 302\n/c  /d  301  extra\n",
    );
    write_file(&work, "public/index.html", "<h1>two</h1>\n");
    commit_all(&client, &work, "a bad line");
    let refused = client.git(&work, &["push", &url, "main"]);
    assert!(!refused.success(), "{}", refused.describe());
    assert!(
        refused
            .stderr
            .contains("_redirects:2:14: unexpected `extra` after the target"),
        "{}",
        refused.describe()
    );
    assert!(
        refused.stderr.contains("remove strict_rule_files"),
        "{}",
        refused.describe()
    );
    assert_eq!(get(&node, "/", &[]).text(), "<h1>one</h1>\n");
}
