//! Operator commands (`deploys`, `rollback`, `deploy`, `status`,
//! `node health`), parsed
//! from one line of words and run against the node.
//!
//! The same commands are reachable from the local admin socket now and from
//! the SSH endpoint later; each transport only moves a line in and text out.

mod command;
mod socket;

pub use command::{Command, Outcome, ParseError, execute};
pub use socket::{ADMIN_SOCKET, bind, call, serve};
