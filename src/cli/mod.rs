//! The `maki` operator CLI's subcommands. Each file is one subcommand (plus
//! `remote.rs`, the SSH transport to a node's admin commands); the binary
//! only parses arguments and calls these.

pub mod admin;
pub mod dns;
pub mod init;
pub mod remote;
pub mod wasm;
