//! docs/wasm.md, followed as a new user would: the test reads the C
//! section's commands and source out of the document itself (so a change
//! to the document is what the test runs), gets the WIT with `maki wasm
//! fetch`, takes the reactor adapter out of its crate with the document's
//! cargo program, builds `hello.c` with Debian's clang and the pinned
//! wit-bindgen and wasm-tools, and serves the component from a node.
//!
//! Needs clang, lld, wasi-libc and libclang-rt-14-dev-wasm32 (scripts/test
//! installs them), the document's `cargo install` line run once (scripts/test
//! runs it when the tools are missing), and crates.io for the adapter.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{CmdOutput, Node, run_command, temp_dir, write_file};

/// The document's C section.
fn c_section() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/wasm.md"))
        .expect("docs/wasm.md");
    let start = doc
        .find("## Writing a function in C")
        .expect("docs/wasm.md has a C section");
    let rest = &doc[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i);
    rest[..end].to_string()
}

/// Every fenced block of `lang` in `text`, with the fence's indentation
/// (a block inside a list item) taken off each line.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut current {
            None if trimmed == format!("```{lang}") => current = Some((indent, String::new())),
            Some(_) if trimmed == "```" => {
                if let Some((_, block)) = current.take() {
                    out.push(block);
                }
            }
            Some((indent, block)) => {
                block.push_str(line.get(*indent..).unwrap_or(line.trim_start()));
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

/// The one block of `lang` whose text contains `marker`.
fn block_with(section: &str, lang: &str, marker: &str) -> String {
    let found: Vec<String> = blocks(section, lang)
        .into_iter()
        .filter(|b| b.contains(marker))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "docs/wasm.md's C section should have one ```{lang} block with {marker:?}"
    );
    found.into_iter().next().unwrap_or_default()
}

/// Runs `script` with `sh -e` in `dir`, as a user's shell would (no
/// build directory of this project's own).
fn shell(dir: &Path, script: &str, limit: Duration) -> CmdOutput {
    let mut command = Command::new("sh");
    command
        .args(["-e", "-c", script])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR");
    run_command(command, limit)
}

#[test]
fn the_c_function_of_docs_wasm_builds_as_written_and_answers() {
    let section = c_section();
    // The pinned tools are the ones on PATH.
    let install = block_with(&section, "sh", "cargo install");
    for (tool, package) in [
        ("wit-bindgen", "wit-bindgen-cli@"),
        ("wasm-tools", "wasm-tools@"),
    ] {
        let pinned = install
            .split_whitespace()
            .find_map(|w| w.strip_prefix(package))
            .unwrap_or_else(|| panic!("the install line pins no {package}: {install}"));
        let mut version = Command::new(tool);
        version.arg("--version");
        let out = run_command(version, Duration::from_secs(30));
        assert!(
            out.success() && out.stdout.contains(pinned),
            "{tool} {pinned} is not on PATH: run the document's line ({}) first; got: {}",
            install.trim(),
            out.describe()
        );
    }
    for tool in ["clang", "wasm-ld"] {
        let mut version = Command::new(tool);
        version.arg("--version");
        let out = run_command(version, Duration::from_secs(30));
        assert!(
            out.success(),
            "{tool} is missing: apt install clang lld wasi-libc libclang-rt-14-dev-wasm32 ({})",
            out.describe()
        );
    }

    let dir = temp_dir();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let mut fetch = Command::new(crate::support::maki_bin());
    fetch.args(["wasm", "fetch", "wit"]).current_dir(&work);
    let out = run_command(fetch, Duration::from_secs(30));
    assert!(out.success(), "maki wasm fetch wit: {}", out.describe());

    let adapter = block_with(&section, "sh", "cargo new");
    let out = shell(&work, &adapter, Duration::from_secs(600));
    assert!(
        out.success(),
        "the adapter steps failed: {}",
        out.describe()
    );
    assert!(
        work.join("wasi_snapshot_preview1.reactor.wasm").is_file(),
        "the adapter steps wrote no adapter: {}",
        out.describe()
    );
    assert!(
        !work.join("adapter").exists(),
        "the adapter project was left"
    );

    let source = block_with(&section, "c", "// hello.c");
    write_file(&work, "hello.c", &source);
    let build = block_with(&section, "sh", "wasm-tools component new");
    let out = shell(&work, &build, Duration::from_secs(300));
    assert!(out.success(), "the build steps failed: {}", out.describe());
    let component = std::fs::read(work.join("api/hello.wasm")).expect("api/hello.wasm");

    let site = dir.path().join("site");
    write_file(
        &site,
        "makiatto.toml",
        "[[domain]]\nname = \"c.test\"\n\n[[domain.functions]]\npath = \"api/hello.wasm\"\n",
    );
    write_file(&site, "index.html", "<h1>static</h1>");
    write_file(&site, "api/hello.wasm", component);
    let node = Node::start(&site);
    let reply = node.get_with("/api/hello", &[("host", "c.test")]);
    assert_eq!(reply.status, 200, "{}", reply.describe());
    assert_eq!(reply.text(), "hello from C\n");
    assert_eq!(reply.header("content-type"), Some("text/plain"));
}
