//! The integration tests, one binary: each module below is one area of the
//! product, driven through the real `makiatto` and `maki` binaries and real
//! clients. One binary links the crate once (25 binaries spent most of a
//! build linking) and compiles the shared harness, `support`, once.
//!
//! Run one area with a filter on its module path, e.g.
//! `cargo test --test it mesh_acceptance::` (root and network namespaces
//! for the `mesh_*` and `acme_cluster` areas).

mod support;

mod access_log;
mod acme;
mod acme_cluster;
mod atomicity;
mod build;
mod build_cluster;
mod cluster_table;
mod deploys;
mod dns;
mod full_disk;
mod git_admin;
mod git_endpoint;
mod git_fetch;
mod git_push;
mod http_protocol;
mod https;
mod limits;
mod machine;
mod maki_profile;
mod maki_stats;
mod memory;
mod mesh_acceptance;
mod mesh_cluster;
mod mesh_conflicts;
mod mesh_git;
mod mesh_health;
mod mesh_nat;
mod mesh_replication;
mod mesh_swarm;
mod mesh_wasm;
mod mesh_wireguard;
mod metrics;
mod nix;
mod packaging;
mod path_safety;
mod permalinks;
mod preview_auth;
mod proxy;
mod rule_files;
mod rules;
mod run_mode;
mod scrub;
mod serving;
mod skew;
mod wasm_doc;
mod wasm_fetch;
mod wasm_functions;
mod wasm_push;
mod wasm_transforms;
