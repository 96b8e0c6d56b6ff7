//! `maki wasm fetch DIR` writes the WIT worlds the node implements.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{run_command, temp_dir};

#[test]
fn wasm_fetch_writes_both_worlds_as_the_repository_has_them() {
    let dir = temp_dir();
    let target = dir.path().join("out/wit");
    let mut command = Command::new(env!("CARGO_BIN_EXE_maki"));
    command.args(["wasm", "fetch"]).arg(&target);
    let out = run_command(command, Duration::from_secs(30));
    assert!(out.success(), "{}", out.describe());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in ["http/world.wit", "transform/world.wit"] {
        let written = std::fs::read_to_string(target.join(rel))
            .unwrap_or_else(|e| panic!("{rel} not written: {e}; {}", out.describe()));
        let source = std::fs::read_to_string(repo.join("wit").join(rel)).expect("wit/ in the repo");
        assert_eq!(written, source, "{rel}");
        assert!(
            out.stdout
                .contains(&format!("wrote {}", target.join(rel).display()))
        );
    }
    assert!(
        std::fs::read_to_string(target.join("http/world.wit")).is_ok_and(|t| t
            .contains("export handle-request: func(ctx: node-context, req: request) -> response;"))
    );
}
