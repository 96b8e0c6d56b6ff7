//! Edge functions through real HTTP requests to a `makiatto dev` node,
//! with the committed guest fixtures (tests/wasm/*.wasm, built from
//! tests/wasm/src by tests/wasm/build.sh).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::support::{CmdOutput, Node, fetch_with, run_command, temp_dir, write_file, write_tree};

/// The committed component `name` from tests/wasm/.
fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/wasm/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const SITE: &str = r#"
[[domain]]
name = "fn.test"

[[domain.functions]]
path = "api/hello.wasm"
methods = ["GET"]

[[domain.functions]]
path = "api/geo.wasm"

[[domain.functions]]
path = "api/echo.wasm"
methods = ["GET", "POST", "PUT"]
env = { GREETING = "hello from the config" }
env_file = "functions.env"

[[domain.functions]]
path = "api/spin.wasm"
timeout_ms = 300

[[domain.functions]]
path = "api/bomb.wasm"
max_memory_mb = 16

[[domain.functions]]
path = "api/files.wasm"

[[domain.functions]]
path = "api/ssrf.wasm"
"#;

const INDEX: &str = "<h1>static index</h1>\n<p>second line</p>\n";

/// Writes the function site (every fixture, as fn.test) at `site`.
fn write_site(site: &Path, index: &str, env_file: &str) {
    write_tree(
        site,
        &[
            ("makiatto.toml", SITE),
            ("index.html", index),
            ("functions.env", env_file),
        ],
    );
    for name in ["hello", "geo", "echo", "spin", "bomb", "files", "ssrf"] {
        write_file(site, &format!("api/{name}.wasm"), fixture(name));
    }
}

/// A dev node serving every function fixture as fn.test, with a node.toml
/// giving the node a name and coordinates.
fn start() -> Node {
    let dir = temp_dir();
    let site = dir.path().join("site");
    write_site(
        &site,
        INDEX,
        "# read at deploy\nFROM_FILE=\"from the env file\"\n",
    );
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        "name = \"lisbon\"\nlatitude = 38.7223\nlongitude = -9.1393\n",
    )
    .expect("write node.toml");
    Node::start_dev(&site, dir, &["--config".as_ref(), config.as_os_str()])
}

/// `curl` with `args` against the node, printing status and headers.
fn curl(node: &Node, args: &[&str]) -> CmdOutput {
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-D", "-", "--max-time", "20"])
        .args(args);
    let out = run_command(command, Duration::from_secs(30));
    assert!(
        out.success(),
        "curl {args:?} against {}: {}",
        node.addr,
        out.describe()
    );
    out
}

#[test]
fn hello_geo_echo_and_file_reader_answer_as_described() {
    let node = start();

    let hello = node.get("/api/hello");
    assert_eq!(hello.status, 200, "{}", hello.describe());
    assert_eq!(hello.text(), "hello from makiatto\n");
    assert_eq!(
        hello.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(hello.header("x-makiatto-revision").is_some());

    // The geo handler reports the coordinates from the node's config.
    let geo = node.get("/api/geo");
    assert_eq!(geo.status, 200, "{}", geo.describe());
    let text = geo.text();
    let number = |key: &str| -> f64 {
        let start = text
            .find(&format!("\"{key}\":"))
            .unwrap_or_else(|| panic!("{key} in {text}"));
        let rest = &text[start + key.len() + 3..];
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        rest[..end]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{key} in {text}: {e}"))
    };
    assert!(text.contains("\"node\":\"lisbon\""), "{text}");
    assert!((number("latitude") - 38.7223).abs() < 1e-6, "{text}");
    assert!((number("longitude") + 9.1393).abs() < 1e-6, "{text}");

    // The echo handler returns what curl sent: method, path, query,
    // headers and body; and sees env and env_file variables.
    let body = "a body with\nbytes \u{00e9} and more";
    let out = curl(
        &node,
        &[
            "-X",
            "PUT",
            "-H",
            "x-test-header: some value",
            "--data-binary",
            body,
            &node.url("/api/echo?x=1&y=two"),
        ],
    );
    let (head, echoed) = out.stdout.split_once("\r\n\r\n").expect("headers and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {head}"))
            .to_string()
    };
    assert_eq!(header("x-echo-method"), "PUT");
    assert_eq!(header("x-echo-path"), "/api/echo");
    assert_eq!(header("x-echo-query"), "x=1&y=two");
    assert_eq!(header("x-echo-h-x-test-header"), "some value");
    assert_eq!(header("x-env-greeting"), "hello from the config");
    assert_eq!(header("x-env-from-file"), "from the env file");
    assert_eq!(echoed, body);

    // The file reader sees the revision at `/` and cannot leave it.
    let files = node.get("/api/files");
    assert_eq!(files.status, 200, "{}", files.describe());
    let report = files.text();
    assert!(
        report.contains("index: read <h1>static index</h1>\n"),
        "{report}"
    );
    assert!(report.contains("escape: refused"), "{report}");
    assert!(report.contains("absolute: refused"), "{report}");
    assert!(!report.contains("root:"), "{report}");

    // Compiled once at deploy, cached on disk by the blake3 of the .wasm.
    for name in ["hello", "geo", "echo", "files"] {
        let cached = node
            .data
            .join("wasm/compiled")
            .join(format!("{}.cwasm", blake3::hash(&fixture(name)).to_hex()));
        assert!(
            cached.is_file(),
            "no compiled {name} at {}",
            cached.display()
        );
    }

    // Modules and env files are never served as files.
    for path in ["/api/hello.wasm", "/api/echo.wasm", "/functions.env"] {
        let reply = node.get(path);
        assert_eq!(reply.status, 404, "{path}: {}", reply.describe());
    }
    assert_eq!(node.get("/").text(), INDEX);
}

#[test]
fn methods_not_listed_get_405_and_large_bodies_413() {
    let node = start();
    let out = curl(
        &node,
        &["-X", "POST", "--data", "x", &node.url("/api/hello")],
    );
    assert!(out.stdout.starts_with("HTTP/1.1 405"), "{}", out.stdout);
    assert!(
        out.stdout.to_ascii_lowercase().contains("allow: get\r\n"),
        "{}",
        out.stdout
    );
    let out = curl(&node, &["-X", "DELETE", &node.url("/api/echo")]);
    assert!(out.stdout.starts_with("HTTP/1.1 405"), "{}", out.stdout);
    assert!(out.stdout.contains("GET, POST, PUT"), "{}", out.stdout);
    // A function without `methods` takes any method.
    let out = curl(&node, &["-X", "DELETE", &node.url("/api/geo")]);
    assert!(out.stdout.starts_with("HTTP/1.1 200"), "{}", out.stdout);

    let big = node.scratch().join("big.bin");
    std::fs::write(&big, vec![b'x'; 2 * 1024 * 1024]).expect("write big.bin");
    let data = format!("@{}", big.display());
    // No `Expect: 100-continue`, so the status line is the first one.
    let out = curl(
        &node,
        &[
            "-X",
            "POST",
            "-H",
            "Expect:",
            "--data-binary",
            &data,
            &node.url("/api/echo"),
        ],
    );
    assert!(out.stdout.starts_with("HTTP/1.1 413"), "{}", out.stdout);
}

#[test]
fn infinite_loop_and_memory_bomb_get_5xx_and_the_node_keeps_serving() {
    let node = start();
    let spin = node.get("/api/spin");
    assert_eq!(spin.status, 504, "{}", spin.describe());
    let bomb = node.get("/api/bomb");
    assert_eq!(bomb.status, 500, "{}", bomb.describe());
    // Both again while other requests go on: nothing stays stuck.
    let again = std::thread::scope(|s| {
        let spin = s.spawn(|| fetch_with(&node.agent(), &node.url("/api/spin"), &[]).status);
        let bomb = s.spawn(|| fetch_with(&node.agent(), &node.url("/api/bomb"), &[]).status);
        let hello = node.get("/api/hello");
        (spin.join().ok(), bomb.join().ok(), hello.status)
    });
    assert_eq!(again, (Some(504), Some(500), 200));
    assert_eq!(node.get("/api/hello").text(), "hello from makiatto\n");
    assert_eq!(node.get("/").text(), INDEX);
}

#[test]
fn ssrf_attempts_to_loopback_and_metadata_and_raw_sockets_are_refused_inside_the_guest() {
    let node = start();
    let port = node.addr.port();
    // The node's own HTTP port would answer if the guard let it through.
    let targets = format!(
        "127.0.0.1:{port},169.254.169.254,localhost:{port},[::1]:{port},[::ffff:127.0.0.1]:{port},tcp:{port}"
    );
    let reply = node.get(&format!("/api/ssrf?{targets}"));
    assert_eq!(reply.status, 200, "{}", reply.describe());
    let report = reply.text();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 6, "{report}");
    for line in lines {
        assert!(line.contains(": refused"), "not refused: {line}\n{report}");
    }
}

#[test]
fn two_hundred_concurrent_requests_to_a_function_all_succeed() {
    let node = start();
    let url = node.url("/api/hello");
    let barrier = Arc::new(Barrier::new(200));
    let statuses: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let barrier = barrier.clone();
                let agent = node.agent();
                let url = url.clone();
                s.spawn(move || {
                    barrier.wait();
                    let reply = fetch_with(&agent, &url, &[]);
                    (reply.status, reply.text())
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    assert_eq!(statuses.len(), 200);
    for (status, text) in statuses {
        assert_eq!((status, text.as_str()), (200, "hello from makiatto\n"));
    }
}

#[test]
fn a_rollback_brings_back_the_revision_s_env_file_and_functions() {
    let node = start();
    let first = node.get("/api/echo");
    assert_eq!(first.header("x-env-from-file"), Some("from the env file"));

    let next = temp_dir();
    write_site(next.path(), "<h1>second</h1>\n", "FROM_FILE=changed\n");
    node.deploy(next.path());
    assert_eq!(
        node.get("/api/echo").header("x-env-from-file"),
        Some("changed")
    );

    let out = node.admin(&["rollback", "fn.test"]);
    assert!(out.success(), "{}", out.describe());
    let back = node.get("/api/echo");
    assert_eq!(back.status, 200, "{}", back.describe());
    assert_eq!(back.header("x-env-from-file"), Some("from the env file"));
    assert_eq!(node.get("/").text(), INDEX);
}
