//! Per-client limits shared by every public listener (DNS, HTTP, SSH).
//!
//! A node is a public authoritative DNS server, web server and SSH endpoint
//! at once; each listener bounds what one client may take. The pieces here
//! are the mechanisms, not the policies (which live beside each listener:
//! `dns/rrl.rs`, `http/limits.rs`, `git/ssh_limits.rs`):
//!
//! - `prefix.rs`: the client prefix a limit is kept for (/24, /56, ...)
//! - `buckets.rs`: token buckets per client prefix in a fixed-size table
//! - `connections.rs`: connections held per client, released on drop
//! - `counters.rs`: how often each limit was applied, for `status`

pub mod buckets;
pub mod connections;
pub mod counters;
pub mod prefix;

pub use buckets::{Buckets, Taken};
pub use connections::{ConnectionGuard, Connections};
pub use counters::{Counters, Limited};
pub use prefix::client_key;
