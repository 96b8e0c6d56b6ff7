//! File transformers through real HTTP requests to a `makiatto dev` node:
//! chains in config order, once per file per revision (counted by the
//! node's `status --json`), ETags of the transformed bytes, and on_error.

use std::path::Path;

use crate::support::{Node, temp_dir, write_file, write_tree};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/wasm/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const PAGE: &str = "<html><body><h1>page</h1></body></html>\n";
const CSS: &str = "body { color: black }\n";

/// A site directory at `site` with `config` and the transform fixtures.
fn site(site: &Path, config: &str) {
    write_tree(
        site,
        &[
            ("makiatto.toml", config),
            ("index.html", PAGE),
            ("blog/post.html", PAGE),
            ("style.css", CSS),
            ("transforms.env", "BANNER=from the env file\n"),
        ],
    );
    for name in ["inject", "stamp", "broken"] {
        write_file(site, &format!("wasm/{name}.wasm"), fixture(name));
    }
}

/// `transform_runs` from the node's `status --json`.
fn transform_runs(node: &Node) -> u64 {
    let out = node.admin(&["status", "--json"]);
    assert!(out.success(), "{}", out.describe());
    let key = "\"transform_runs\":";
    let at = out
        .stdout
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {}", out.stdout));
    let rest = &out.stdout[at + key.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", out.stdout))
}

const CHAIN: &str = r#"
[[domain]]
name = "tr.test"

[[domain.transforms]]
path = "wasm/inject.wasm"
files = "**/*.html"
env_file = "transforms.env"

[[domain.transforms]]
path = "wasm/stamp.wasm"
files = "**/*.html"
"#;

#[test]
fn transform_chain_applies_in_order_once_per_file_per_revision() {
    let dir = temp_dir();
    let root = dir.path().join("site");
    site(&root, CHAIN);
    let node = Node::start_dev(&root, dir, &[]);

    let index = node.get("/");
    assert_eq!(index.status, 200, "{}", index.describe());
    let text = index.text();
    // inject ran first (banner before </body>), then stamp saw its output.
    assert!(
        text.starts_with(
            "<html><body><h1>page</h1><p class=\"banner\">from the env file</p></body></html>\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("; banner before me: yes -->\n"), "{text}");
    assert_eq!(index.header("x-injected"), Some("banner"));
    // The ETag names the transformed bytes.
    let etag = format!("\"{}\"", blake3::hash(&index.body).to_hex());
    assert_eq!(index.header("etag"), Some(etag.as_str()));
    let again = node.get_with("/", &[("if-none-match", &etag)]);
    assert_eq!(again.status, 304, "{}", again.describe());

    assert_eq!(node.get("/blog/post").text(), text);
    // Files outside the glob and the modules themselves are untouched / hidden.
    assert_eq!(node.get("/style.css").text(), CSS);
    assert_eq!(node.get("/wasm/inject.wasm").status, 404);

    // Two HTML files × two transforms, however often they are requested.
    assert_eq!(transform_runs(&node), 4);
    for _ in 0..10 {
        assert_eq!(node.get("/").body, index.body);
        assert_eq!(node.get("/blog/post.html").body, index.body);
    }
    assert_eq!(transform_runs(&node), 4);

    // A new revision runs them again, once per file.
    let next = temp_dir();
    site(next.path(), CHAIN);
    write_file(next.path(), "about.html", PAGE);
    node.deploy(next.path());
    assert_eq!(transform_runs(&node), 4 + 6);
    assert!(node.get("/about").text().contains("class=\"banner\""));
}

#[test]
fn a_failing_transform_is_skipped_by_default_and_fails_the_deploy_with_on_error_fail() {
    let dir = temp_dir();
    let root = dir.path().join("site");
    site(
        &root,
        r#"
[[domain]]
name = "tr.test"

[[domain.transforms]]
path = "wasm/broken.wasm"
files = "**/*.html"

[[domain.transforms]]
path = "wasm/inject.wasm"
files = "index.html"
env = { BANNER = "after the broken one" }
"#,
    );
    let node = Node::start_dev(&root, dir, &[]);
    // skip: the broken step leaves the file as it was; the chain goes on.
    assert_eq!(
        node.get("/").text(),
        "<html><body><h1>page</h1><p class=\"banner\">after the broken one</p></body></html>\n"
    );
    assert_eq!(node.get("/blog/post.html").text(), PAGE);
    let served = node.revision.clone();

    // fail: the deploy is refused, naming the transform and the file, and
    // the revision before it goes on serving.
    let next = temp_dir();
    site(
        next.path(),
        r#"
[[domain]]
name = "tr.test"

[[domain.transforms]]
path = "wasm/broken.wasm"
files = "blog/*.html"
on_error = "fail"
"#,
    );
    let out = node.admin(&["deploy", next.path().to_str().expect("UTF-8 path")]);
    assert!(!out.success(), "{}", out.describe());
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("transform \"wasm/broken.wasm\" failed on \"blog/post.html\""),
        "{said}"
    );
    let reply = node.get("/");
    assert_eq!(reply.header("x-makiatto-revision"), Some(served.as_str()));
    assert!(reply.text().contains("after the broken one"));
}

#[test]
fn files_over_max_file_size_kb_are_left_as_they_are() {
    let dir = temp_dir();
    let root = dir.path().join("site");
    site(
        &root,
        r#"
[[domain]]
name = "tr.test"

[[domain.transforms]]
path = "wasm/inject.wasm"
files = "**/*.html"
max_file_size_kb = 1
"#,
    );
    let big = format!("<html><body>{}</body></html>\n", "x".repeat(2048));
    write_file(&root, "big.html", &big);
    let node = Node::start_dev(&root, dir, &[]);
    assert!(node.get("/").text().contains("class=\"banner\""));
    assert_eq!(node.get("/big.html").text(), big);
    // index.html and blog/post.html ran; big.html was never handed over.
    assert_eq!(transform_runs(&node), 2);
}
