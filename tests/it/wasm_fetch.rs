//! `maki wasm fetch DIR` writes the WIT worlds the node implements: every
//! file of the repository's `wit/` directory, read from disk here, so a
//! world the binary leaves out or carries stale fails the test.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{run_command, temp_dir};

/// Every file under `root`: path relative to it (with `/`) → text.
fn texts_under(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .map(|p| p.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                out.insert(rel, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn wasm_fetch_writes_both_worlds_as_the_repository_has_them() {
    let dir = temp_dir();
    let target = dir.path().join("out/wit");
    let mut command = Command::new(crate::support::maki_bin());
    command.args(["wasm", "fetch"]).arg(&target);
    let out = run_command(command, Duration::from_secs(30));
    assert!(out.success(), "{}", out.describe());
    let source = texts_under(&Path::new(env!("CARGO_MANIFEST_DIR")).join("wit"));
    assert_eq!(
        source.keys().collect::<Vec<_>>(),
        ["http/world.wit", "transform/world.wit"],
        "the repository's wit/ holds the two worlds"
    );
    let written = texts_under(&target);
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        source.keys().collect::<Vec<_>>(),
        "{}",
        out.describe()
    );
    for (rel, text) in &source {
        assert_eq!(&written[rel], text, "{rel}");
        assert!(
            out.stdout
                .contains(&format!("wrote {}", target.join(rel).display()))
        );
    }
    assert!(
        written["http/world.wit"]
            .contains("export handle-request: func(ctx: node-context, req: request) -> response;")
    );
}
