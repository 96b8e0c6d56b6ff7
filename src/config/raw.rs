//! The TOML shapes of `makiatto.toml` and `node.toml`, exactly as written.
//!
//! serde fills these strictly (`deny_unknown_fields`) and keeps the span of
//! every value a later check may need to point at; `site.rs` and `node.rs`
//! validate them and build the public types. Required fields are `Option`
//! here so that a missing one gets a message naming its table and showing an
//! example, rather than serde's bare "missing field". Field order is the order
//! unknown-field messages list them in.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

type S<T> = Spanned<T>;

/// A whole `makiatto.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    #[serde(default)]
    pub domain: Vec<S<RawDomain>>,
    pub build: Option<S<RawBuild>>,
}

/// One `[[domain]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDomain {
    pub name: Option<S<String>>,
    pub path: Option<S<String>>,
    #[serde(default)]
    pub aliases: Vec<S<String>>,
    pub production_branch: Option<S<String>>,
    pub previews: Option<bool>,
    pub caa: Option<Vec<S<String>>>,
    pub hsts_max_age: Option<u64>,
    pub strict_rule_files: Option<bool>,
    pub skew_protection_secs: Option<S<u64>>,
    #[serde(default)]
    pub records: Vec<S<RawRecord>>,
    #[serde(default)]
    pub headers: Vec<S<RawHeader>>,
    #[serde(default)]
    pub redirects: Vec<S<RawRedirect>>,
    #[serde(default)]
    pub functions: Vec<S<RawFunction>>,
    #[serde(default)]
    pub transforms: Vec<S<RawTransform>>,
}

/// One `[[domain.records]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecord {
    #[serde(rename = "type")]
    pub record_type: Option<S<String>>,
    pub name: Option<S<String>>,
    pub value: Option<S<String>>,
    pub priority: Option<S<u16>>,
    pub weight: Option<S<u16>>,
    pub port: Option<S<u16>>,
    pub ttl: Option<S<u32>>,
}

/// One `[[domain.headers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeader {
    #[serde(rename = "for")]
    pub pattern: Option<S<String>>,
    pub values: Option<BTreeMap<S<String>, S<String>>>,
}

/// One `[[domain.redirects]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedirect {
    pub from: Option<S<String>>,
    pub to: Option<S<String>>,
    /// Signed and wide so any integer reaches the "status not supported"
    /// message instead of a range error.
    pub status: Option<S<i64>>,
}

/// One `[[domain.functions]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFunction {
    pub path: Option<S<String>>,
    pub methods: Option<Vec<S<String>>>,
    #[serde(default)]
    pub env: BTreeMap<S<String>, String>,
    pub env_file: Option<S<String>>,
    pub timeout_ms: Option<S<u64>>,
    pub max_memory_mb: Option<S<u64>>,
}

/// One `[[domain.transforms]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransform {
    pub path: Option<S<String>>,
    pub files: Option<S<String>>,
    #[serde(default)]
    pub env: BTreeMap<S<String>, String>,
    pub env_file: Option<S<String>>,
    pub timeout_ms: Option<S<u64>>,
    pub max_memory_mb: Option<S<u64>>,
    pub max_file_size_kb: Option<S<u64>>,
    pub on_error: Option<S<String>>,
}

/// `[build]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuild {
    pub command: Option<S<String>>,
    pub output: Option<S<String>>,
    pub network: Option<S<bool>>,
    #[serde(default)]
    pub env: BTreeMap<S<String>, String>,
}

/// `[build]` in `node.toml`: the limits every site build on this node runs under.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuildLimits {
    pub timeout_secs: Option<S<u64>>,
    pub memory_mb: Option<S<u64>>,
    pub max_processes: Option<S<u64>>,
    pub max_output_mb: Option<S<u64>>,
    pub max_log_kb: Option<S<u64>>,
    pub queue: Option<S<u64>>,
}

/// A whole `node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub name: Option<S<String>>,
    pub data_dir: Option<S<String>>,
    pub ipv4: Option<S<String>>,
    pub ipv6: Option<S<String>>,
    pub latitude: Option<S<f64>>,
    pub longitude: Option<S<f64>>,
    pub keep_revisions: Option<S<u64>>,
    pub http: Option<RawHttp>,
    pub dns: Option<RawDns>,
    pub ssh: Option<RawSsh>,
    #[serde(default)]
    pub nodes: Vec<S<RawPeer>>,
    pub https: Option<RawHttps>,
    pub acme: Option<RawAcme>,
    pub cluster: Option<S<RawCluster>>,
    /// The old form of `[cluster]`'s WireGuard fields, still read.
    pub mesh: Option<S<RawMesh>>,
    pub limits: Option<super::limits::RawLimits>,
    pub build: Option<RawBuildLimits>,
    pub metrics: Option<super::metrics::RawMetrics>,
    pub access_log: Option<super::access_log::RawAccessLog>,
    pub scrub: Option<super::scrub::RawScrub>,
    pub proxy: Option<super::proxy::RawProxy>,
}

/// `[cluster]` in `node.toml`: joining, the WireGuard mesh (the fields
/// `[mesh]` held before), and the mesh RPC outside WireGuard.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub join: Option<S<String>>,
    pub join_token: Option<S<String>>,
    pub join_token_file: Option<S<String>>,
    pub interface: Option<S<String>>,
    pub listen_port: Option<S<i64>>,
    pub endpoint: Option<S<String>>,
    pub address_v4: Option<S<String>>,
    pub address_v6: Option<S<String>>,
    pub prefix_v4: Option<S<String>>,
    pub prefix_v6: Option<S<String>>,
    pub rpc_port: Option<S<i64>>,
    pub rpc_listen: Option<S<String>>,
}

impl RawCluster {
    /// The WireGuard fields, in the shape `[mesh]` gives them.
    pub fn wireguard(&self) -> RawMesh {
        RawMesh {
            interface: self.interface.clone(),
            listen_port: self.listen_port.clone(),
            endpoint: self.endpoint.clone(),
            address_v4: self.address_v4.clone(),
            address_v6: self.address_v6.clone(),
            prefix_v4: self.prefix_v4.clone(),
            prefix_v6: self.prefix_v6.clone(),
            rpc_port: self.rpc_port.clone(),
        }
    }
}

/// `[https]` in `node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttps {
    pub listen: Option<S<String>>,
}

/// `[acme]` in `node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAcme {
    pub directory: Option<S<String>>,
    pub contact: Option<S<String>>,
    pub ca_root: Option<S<String>>,
    pub retry_secs: Option<S<u64>>,
    pub takeover_secs: Option<S<u64>>,
    pub caa_identity: Option<S<String>>,
}

/// `[ssh]` in `node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsh {
    pub listen: Option<S<String>>,
    pub hooks_dir: Option<S<String>>,
    #[serde(default)]
    pub authorized_keys: Vec<S<String>>,
}

/// `[http]` in `node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    pub listen: Option<S<String>>,
    pub header_timeout_secs: Option<S<u64>>,
    pub max_header_bytes: Option<S<u64>>,
    pub trusted_proxies: Option<Vec<S<String>>>,
    pub worker_threads: Option<S<u64>>,
    pub body_cache_mb: Option<S<u64>>,
}

/// `[dns]` in `node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    pub listen: Option<S<String>>,
    pub geoip_db: Option<S<String>>,
    pub ttl: Option<S<u64>>,
    pub answers: Option<S<u64>>,
    pub tls_listen: Option<S<String>>,
    pub tls: Option<S<bool>>,
}

/// The WireGuard fields of `[cluster]`, and `[mesh]`, the table that held
/// them before.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMesh {
    pub interface: Option<S<String>>,
    pub listen_port: Option<S<i64>>,
    pub endpoint: Option<S<String>>,
    pub address_v4: Option<S<String>>,
    pub address_v6: Option<S<String>>,
    pub prefix_v4: Option<S<String>>,
    pub prefix_v6: Option<S<String>>,
    pub rpc_port: Option<S<i64>>,
}

/// One `[[nodes]]` in `node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeer {
    pub name: Option<S<String>>,
    pub ipv4: Option<S<String>>,
    pub ipv6: Option<S<String>>,
    pub latitude: Option<S<f64>>,
    pub longitude: Option<S<f64>>,
}

/// Parses `text` into `T`, rewriting the toml crate's errors into ours.
pub(super) fn parse<'de, T: Deserialize<'de>>(
    src: super::diagnostic::Source<'de>,
) -> Result<T, super::ConfigError> {
    let de = toml::de::Deserializer::parse(src.text)
        .map_err(|e| super::toml_error::syntax_error(src, &e))?;
    T::deserialize(de).map_err(|e| super::toml_error::shape_error(src, &e))
}
