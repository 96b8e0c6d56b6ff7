//! The `maki` operator CLI's subcommands. Each file is one subcommand; the
//! binary only parses arguments and calls these.

pub mod dns;
pub mod init;
