//! Makiatto: a self-hosted CDN for static sites.
//!
//! The library holds every subsystem of a node; the `makiatto` binary only
//! parses arguments and calls into it (the operator CLI `maki` is its own
//! package, `maki/`, and reaches nodes over SSH). Modules are split by
//! domain concept and talk through the store and the published live state (`live`: the site and
//! certificate snapshots deploy and ACME publish and HTTP and DNS read), not
//! through each other's internals; `node` starts them and hands each the
//! node's `services`. `ARCHITECTURE.md` at the repository root is the map.

pub mod acme;
pub mod admin;
pub mod build;
pub mod cas;
pub mod config;
pub mod deploy;
pub mod dev;
pub mod dns;
mod fuzz;
pub mod git;
pub mod http;
pub mod limits;
pub mod live;
pub mod mesh;
pub mod metrics;
pub mod net;
pub mod node;
pub mod readiness;
pub mod scrub;
pub mod services;
pub mod shutdown;
pub mod store;
pub mod tree;
pub mod wasm;
