//! Push-time validation of WebAssembly modules with the real git client:
//! a configured .wasm that is missing, not a component, or a component of
//! the wrong world is rejected with a message naming the file and the
//! problem, and nothing changes; a valid one deploys and answers.

use std::path::Path;

use crate::support::git::{Client, commit_all, init_repo, repo_url};
use crate::support::{CmdOutput, write_file, write_tree};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/wasm/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const CONFIG: &str = r#"
[[domain]]
name = "example.com"
path = "public"

[[domain.functions]]
path = "api/hello.wasm"

[[domain.transforms]]
path = "inject.wasm"
files = "**/*.html"
"#;

/// Commits the tree as it is and pushes it; the push must be refused with
/// `expected` among the remote lines.
fn push_rejected(
    client: &Client,
    work: &Path,
    url: &str,
    message: &str,
    expected: &str,
) -> CmdOutput {
    commit_all(client, work, message);
    let out = client.git(work, &["push", url, "main"]);
    assert!(
        !out.success(),
        "push of {message:?} was accepted: {}",
        out.describe()
    );
    assert!(
        out.stderr.contains(expected),
        "push of {message:?} did not say {expected:?}: {}",
        out.describe()
    );
    out
}

#[test]
fn pushes_with_a_missing_or_invalid_wasm_are_rejected_naming_the_file_and_the_problem() {
    let client = Client::new();
    let node = client.start_node();
    let work = client.scratch().join("site");
    init_repo(&client, &work);
    let url = repo_url(&node, "fns");
    write_tree(
        &work,
        &[
            ("makiatto.toml", CONFIG),
            ("public/index.html", "<html><body>hi</body></html>"),
            ("public/inject.wasm", ""),
        ],
    );
    write_file(&work, "public/inject.wasm", fixture("inject"));

    // Missing from the commit.
    push_rejected(
        &client,
        &work,
        &url,
        "missing",
        "remote: error: domain example.com: module \"public/api/hello.wasm\" is not a file in the tree",
    );
    // A core module, not a component.
    write_file(&work, "public/api/hello.wasm", b"\0asm\x01\0\0\0");
    let out = push_rejected(
        &client,
        &work,
        &url,
        "core module",
        "\"public/api/hello.wasm\" is a core WebAssembly module, not a component",
    );
    assert!(
        out.stderr.contains("invalid WebAssembly module"),
        "{}",
        out.describe()
    );
    // Not WebAssembly at all.
    write_file(&work, "public/api/hello.wasm", "<?php echo 'hi'; ?>");
    push_rejected(
        &client,
        &work,
        &url,
        "not wasm",
        "\"public/api/hello.wasm\" is not a WebAssembly component",
    );
    // A component of the wrong world: a handler configured as a transform.
    write_file(&work, "public/api/hello.wasm", fixture("hello"));
    write_file(&work, "public/inject.wasm", fixture("hello"));
    push_rejected(
        &client,
        &work,
        &url,
        "wrong world",
        "\"public/inject.wasm\" is not a makiatto:transform/transform",
    );
    // And a transform configured as a function.
    write_file(&work, "public/api/hello.wasm", fixture("inject"));
    write_file(&work, "public/inject.wasm", fixture("inject"));
    push_rejected(
        &client,
        &work,
        &url,
        "wrong world again",
        "\"public/api/hello.wasm\" is not a makiatto:http/http",
    );
    // Nothing was deployed by any of them.
    let before = node.get_with("/api/hello", &[("host", "example.com")]);
    assert_eq!(before.status, 404, "{}", before.describe());

    // Valid: deploys, and the function and the transform both work.
    write_file(&work, "public/api/hello.wasm", fixture("hello"));
    commit_all(&client, &work, "valid");
    client.git_ok(&work, &["push", &url, "main"]);
    let hello = node.get_with("/api/hello", &[("host", "example.com")]);
    assert_eq!(hello.status, 200, "{}", hello.describe());
    assert_eq!(hello.text(), "hello from makiatto\n");
    let index = node.get_with("/", &[("host", "example.com")]);
    assert!(
        index.text().contains("class=\"banner\""),
        "{}",
        index.describe()
    );
}
