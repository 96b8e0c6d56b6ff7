//! The two configuration files: `makiatto.toml` (a site, pushed with it) and
//! `node.toml` (a server, written by its operator).
//!
//! Both are parsed strictly: unknown fields are errors, every error names the
//! file, line and column, and near-miss field names get a suggestion. A config
//! that parses is also validated, so the rest of the node never sees a domain
//! it cannot serve or a path that escapes the repository.

mod access_log;
mod address;
mod build;
mod cluster;
mod diagnostic;
mod dns;
mod fuzz;
mod limits;
mod mesh;
mod metrics;
mod names;
mod node;
mod place;
mod proxy;
mod raw;
mod records;
mod repo_path;
mod robustness;
mod rules;
mod scrub;
mod site;
mod suggest;
mod toml_error;
mod wasm;

pub use access_log::{AccessLogFormat, AccessLogMode, AccessLogSettings, AccessLogTarget};
pub use build::BuildLimits;
pub use cluster::ClusterSettings;
pub use diagnostic::ConfigError;
pub use dns::DnsSettings;
pub use limits::{DnsLimits, HttpLimits, Limits, SshLimits};
pub use mesh::{MeshSettings, interface_name};
pub use metrics::{DEFAULT_METRICS_PORT, MetricsSettings};
pub use node::{AcmeSettings, HttpSettings, LETS_ENCRYPT, NodeConfig, SshSettings};
pub use place::NodePlace;
pub use proxy::ProxySettings;
pub use records::{Record, RecordType};
pub use rules::{HeaderRule, Redirect};
pub use scrub::ScrubSettings;
pub use site::{Build, Domain, SiteConfig};
pub use wasm::{Function, OnError, Transform};
