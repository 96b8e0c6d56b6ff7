//! `[[domain.headers]]` and `[[domain.redirects]]` rules from makiatto.toml,
//! as a visitor sees them.

use crate::support::{Node, temp_dir, write_tree};

const CONFIG: &str = r#"[[domain]]
name = "rules.test"
path = "public"

[[domain.headers]]
for = "/assets/**"
values = { "cache-control" = "public, max-age=31536000, immutable", "x-kind" = "asset" }

[[domain.headers]]
for = "/docs/*.html"
values = { "x-doc" = "yes" }

[[domain.redirects]]
from = "/old/*"
to = "/new/:splat"
status = 301

[[domain.redirects]]
from = "/blog/:year/:slug"
to = "/posts/:slug/:year"
status = 302

[[domain.redirects]]
from = "/tags/:tag"
to = "/search?tag=:tag"
status = 308

[[domain.redirects]]
from = "/see-other"
to = "/target"
status = 303

[[domain.redirects]]
from = "/temporary"
to = "/target"
status = 307

[[domain.redirects]]
from = "/app/*"
to = "/app/shell.html"
status = 200

[[domain.redirects]]
from = "/gone/*"
to = "/gone.html"
status = 404
"#;

fn rules_node() -> (tempfile::TempDir, Node) {
    let site = temp_dir();
    write_tree(
        site.path(),
        &[
            ("makiatto.toml", CONFIG),
            ("public/index.html", "<h1>rules home</h1>\n"),
            ("public/assets/css/site.css", "body{}\n"),
            ("public/assets/logo.txt", "logo\n"),
            ("public/docs/a.html", "<p>doc a</p>\n"),
            ("public/docs/sub/b.html", "<p>doc b</p>\n"),
            ("public/app/shell.html", "<p>app shell</p>\n"),
            ("public/app/real.html", "<p>a real file</p>\n"),
            ("public/gone.html", "<p>this is gone</p>\n"),
            ("public/404.html", "<p>site 404</p>\n"),
        ],
    );
    let node = Node::start(site.path());
    (site, node)
}

fn get(node: &Node, path: &str) -> crate::support::Reply {
    node.get_with(path, &[("host", "rules.test")])
}

#[test]
fn header_rule_with_double_star_applies_to_nested_paths() {
    let (_site, node) = rules_node();
    for path in ["/assets/logo.txt", "/assets/css/site.css"] {
        let reply = get(&node, path);
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.describe());
        assert_eq!(
            reply.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "GET {path}: {}",
            reply.describe()
        );
        assert_eq!(
            reply.header("x-kind"),
            Some("asset"),
            "GET {path}: {}",
            reply.describe()
        );
    }
}

#[test]
fn header_rule_with_single_star_does_not_cross_a_slash() {
    let (_site, node) = rules_node();
    let direct = get(&node, "/docs/a.html");
    assert_eq!(
        direct.header("x-doc"),
        Some("yes"),
        "GET /docs/a.html: {}",
        direct.describe()
    );
    let nested = get(&node, "/docs/sub/b.html");
    assert_eq!(
        nested.status,
        200,
        "GET /docs/sub/b.html: {}",
        nested.describe()
    );
    assert_eq!(
        nested.header("x-doc"),
        None,
        "GET /docs/sub/b.html: {}",
        nested.describe()
    );
}

#[test]
fn responses_without_a_cache_rule_must_revalidate() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/docs/a.html");
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=0, must-revalidate"),
        "GET /docs/a.html: {}",
        reply.describe()
    );
}

#[test]
fn splat_redirect_carries_the_rest_of_the_path() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/old/a/b.html");
    assert_eq!(reply.status, 301, "GET /old/a/b.html: {}", reply.describe());
    assert_eq!(
        reply.header("location"),
        Some("/new/a/b.html"),
        "GET /old/a/b.html: {}",
        reply.describe()
    );
}

#[test]
fn redirect_appends_the_query_when_the_target_has_none() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/old/page?q=1&x=y");
    assert_eq!(
        reply.status,
        301,
        "GET /old/page?q=1&x=y: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("location"),
        Some("/new/page?q=1&x=y"),
        "GET /old/page?q=1&x=y: {}",
        reply.describe()
    );
}

#[test]
fn redirect_keeps_the_target_query_instead_of_the_request_query() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/tags/rust?page=2");
    assert_eq!(
        reply.status,
        308,
        "GET /tags/rust?page=2: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("location"),
        Some("/search?tag=rust"),
        "GET /tags/rust?page=2: {}",
        reply.describe()
    );
}

#[test]
fn named_placeholders_fill_the_target() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/blog/2024/hello-world");
    assert_eq!(
        reply.status,
        302,
        "GET /blog/2024/hello-world: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("location"),
        Some("/posts/hello-world/2024"),
        "GET /blog/2024/hello-world: {}",
        reply.describe()
    );
}

#[test]
fn redirect_uses_the_configured_status() {
    let (_site, node) = rules_node();
    for (path, status) in [("/see-other", 303), ("/temporary", 307)] {
        let reply = get(&node, path);
        assert_eq!(reply.status, status, "GET {path}: {}", reply.describe());
        assert_eq!(
            reply.header("location"),
            Some("/target"),
            "GET {path}: {}",
            reply.describe()
        );
    }
}

#[test]
fn rewrite_serves_the_target_for_paths_without_a_file() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/app/users/42");
    assert_eq!(reply.status, 200, "GET /app/users/42: {}", reply.describe());
    assert_eq!(
        reply.text(),
        "<p>app shell</p>\n",
        "GET /app/users/42: {}",
        reply.describe()
    );
    assert_eq!(
        reply.header("location"),
        None,
        "GET /app/users/42: {}",
        reply.describe()
    );
}

#[test]
fn rewrite_does_not_shadow_an_existing_file() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/app/real.html");
    assert_eq!(
        reply.status,
        200,
        "GET /app/real.html: {}",
        reply.describe()
    );
    assert_eq!(
        reply.text(),
        "<p>a real file</p>\n",
        "GET /app/real.html: {}",
        reply.describe()
    );
}

#[test]
fn not_found_rule_serves_its_target_with_404() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/gone/old-post");
    assert_eq!(
        reply.status,
        404,
        "GET /gone/old-post: {}",
        reply.describe()
    );
    assert_eq!(
        reply.text(),
        "<p>this is gone</p>\n",
        "GET /gone/old-post: {}",
        reply.describe()
    );
}

#[test]
fn paths_matching_no_rule_and_no_file_get_the_404_page() {
    let (_site, node) = rules_node();
    let reply = get(&node, "/nothing/here");
    assert_eq!(reply.status, 404, "GET /nothing/here: {}", reply.describe());
    assert_eq!(
        reply.text(),
        "<p>site 404</p>\n",
        "GET /nothing/here: {}",
        reply.describe()
    );
}
