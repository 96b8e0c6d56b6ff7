//! The operator CLI's library: one module per subcommand family, plus the
//! SSH transport (`remote`), the cluster profiles (`profile`), the
//! host addressing check `maki machine` uses (`addressing`) and the
//! choice of node (`target`), the no-echo password prompt (`password`), and `machine`, which provisions, upgrades and
//! removes the servers themselves over SSH. The `maki` binary parses
//! arguments and calls these.
//!
//! Nothing here may pull in C code or the node's crates: `maki` must build
//! for macOS (`cargo check -p maki --target x86_64-apple-darwin`).

pub mod addressing;
pub mod admin;
pub mod init;
pub mod machine;
// The operator's password prompt is the one `makiatto preview-password`
// uses: one file compiled into both binaries, since `maki` does not depend
// on the node crate.
#[path = "../../src/admin/password_input.rs"]
pub mod password;
pub mod profile;
pub mod remote;
pub mod target;
pub mod wasm;
