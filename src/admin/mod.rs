//! Operator commands (`status`, `deploys`, `rollback`, `deploy`,
//! `dns setup`, `node health`, `node remove`, `keys`, `repos`, `join-token`,
//! `preview-password`), parsed
//! from one line of words and run against the node's services.
//!
//! One file per command under `cmd/`; `cmd/mod.rs` dispatches. Two
//! transports carry the same commands and only move a line in and text
//! out: the local socket (`socket.rs`) and the SSH endpoint (`git/ssh.rs`).
//! Text output is laid out by `table.rs`, `--json` output is serialised
//! view structs through `json.rs`.

pub mod cmd;
mod context;
mod error;
mod json;
mod password_input;
mod socket;
mod table;
mod words;

pub use cmd::{Command, Outcome, ParseError, Transport, execute};
pub use context::Context;
pub use error::AdminError;
pub use password_input::{PasswordInputError, read_password};
pub use socket::{ADMIN_SOCKET, CallError, bind, call, call_with_input, serve};
