//! A revision's WebAssembly replicates whole: a site with a function that
//! reads an env file and a transform that sets a header, pushed to the
//! second of three real `makiatto run` nodes (mesh RPC on loopback), is
//! answered identically, headers and bodies, by its origin and both
//! replicas.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::loopback::{join_token as token, member_toml, rpc_of, start_member};
use crate::support::{Node, Reply, temp_dir, write_file, write_tree};
use tempfile::TempDir;

/// Upper bound for convergence; reached only when replication is broken.
const CONVERGE: Duration = Duration::from_secs(120);
const HOST: &str = "wx.test";

const CONFIG: &str = r#"
[[domain]]
name = "wx.test"
path = "public"

[[domain.functions]]
path = "api/echo.wasm"
env_file = "functions.env"

[[domain.transforms]]
path = "wasm/inject.wasm"
files = "**/*.html"
env_file = "transforms.env"
"#;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/wasm/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn start(dir: &TempDir, name: &str, key: &str, join: Option<(&str, &str)>) -> Node {
    let head = format!(
        "name = \"{name}\"\ndata_dir = \"data\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n[ssh]\nlisten = \"127.0.0.1:0\"\nauthorized_keys = [\"{}\"]\n",
        key.trim()
    );
    start_member(dir.path(), &member_toml(&head, join))
}

/// A reply as a visitor would compare it: status, every header but
/// `date`, sorted, and the body.
fn seen(reply: &Reply) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    headers.sort();
    (reply.status, headers, reply.body.clone())
}

fn revision(node: &Node) -> Option<String> {
    let reply = node.try_get_with("/", &[("host", HOST)]).ok()?;
    (reply.status == 200).then(|| reply.header("x-makiatto-revision").map(str::to_string))?
}

#[test]
fn a_site_with_functions_and_transforms_pushed_to_a_replica_is_served_identically_everywhere() {
    let client = Client::new();
    let key = std::fs::read_to_string(&client.public_key).unwrap_or_default();
    let homes: Vec<TempDir> = (0..3).map(|_| temp_dir()).collect();
    let a = start(&homes[0], "wx-a", &key, None);
    let seed = rpc_of(&a);
    let b = start(&homes[1], "wx-b", &key, Some((&seed, &token(&a))));
    let c = start(&homes[2], "wx-c", &key, Some((&seed, &token(&a))));

    let work = client.scratch().join("work");
    init_repo(&client, &work);
    write_tree(
        &work,
        &[
            ("makiatto.toml", CONFIG),
            (
                "public/index.html",
                "<html><body><h1>replicated</h1></body></html>\n",
            ),
            ("functions.env", "FROM_FILE=\"from the env file\"\n"),
            ("transforms.env", "BANNER=from the transforms env file\n"),
        ],
    );
    write_file(&work, "public/api/echo.wasm", fixture("echo"));
    write_file(&work, "public/wasm/inject.wasm", fixture("inject"));
    commit_all(&client, &work, "wasm site");
    client.git_ok(&work, &["push", "-q", &repo_url(&b, "site"), "main"]);

    let origin = revision(&b).expect("the origin serves the push");
    let started = Instant::now();
    for node in [&a, &c] {
        while revision(node).as_deref() != Some(origin.as_str()) {
            assert!(
                started.elapsed() < CONVERGE,
                "a replica never served revision {origin}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    let page = b.get_with("/", &[("host", HOST)]);
    assert_eq!(
        page.header("x-injected"),
        Some("banner"),
        "{}",
        page.describe()
    );
    assert!(
        page.text().contains("from the transforms env file"),
        "{}",
        page.describe()
    );
    let function = b.get_with("/api/echo", &[("host", HOST)]);
    assert_eq!(
        function.header("x-env-from-file"),
        Some("from the env file"),
        "{}",
        function.describe()
    );
    for path in ["/", "/index.html", "/api/echo"] {
        let expected = seen(&b.get_with(path, &[("host", HOST)]));
        for (name, node) in [("wx-a", &a), ("wx-c", &c)] {
            assert_eq!(
                seen(&node.get_with(path, &[("host", HOST)])),
                expected,
                "{name} answers {path} unlike the origin wx-b"
            );
        }
    }
}
