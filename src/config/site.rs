//! `makiatto.toml`: the site config a repository carries (DESIGN.md §3).

use std::collections::BTreeMap;

use super::ConfigError;

/// A parsed and validated `makiatto.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteConfig {
    /// Every domain the repository serves; at least one, names unique.
    pub domains: Vec<Domain>,
    /// An optional build step, run on the receiving node only.
    pub build: Option<Build>,
}

/// One `[[domain]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Domain {
    /// The apex the cluster is authoritative for, lowercase, no trailing dot.
    pub name: String,
    /// The served subtree, relative to the repository root, normalised
    /// (no `.`/`..` components, no leading or trailing `/`; "" is the root).
    pub path: String,
    /// Other host names served with the same revision, lowercase.
    pub aliases: Vec<String>,
    /// The branch whose pushes become the live revision.
    pub production_branch: String,
    /// Whether other branches are served at `<slug>.preview.<name>`.
    pub previews: bool,
    /// Extra DNS records.
    pub records: Vec<Record>,
    /// Response header rules, in file order.
    pub headers: Vec<HeaderRule>,
    /// Redirect and rewrite rules, in file order; the first match wins.
    pub redirects: Vec<Redirect>,
    /// WebAssembly request handlers.
    pub functions: Vec<Function>,
    /// WebAssembly file transformers, applied in order.
    pub transforms: Vec<Transform>,
    /// CAA record values; `None` means the default `0 issue "letsencrypt.org"`.
    pub caa: Option<Vec<String>>,
    /// `Strict-Transport-Security` max-age in seconds once HTTPS is served;
    /// `None` sends no HSTS header.
    pub hsts_max_age: Option<u64>,
}

/// DNS record types a site may add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Srv,
    Caa,
    Ns,
}

/// One `[[domain.records]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub record_type: RecordType,
    /// Relative name (`@` for the apex, `www`, `_dmarc`…) as written, lowercase.
    pub name: String,
    pub value: String,
    /// MX and SRV priority.
    pub priority: Option<u16>,
    /// SRV weight.
    pub weight: Option<u16>,
    /// SRV port.
    pub port: Option<u16>,
    /// Seconds; `None` uses the zone default.
    pub ttl: Option<u32>,
}

/// One `[[domain.headers]]` entry: headers added to responses whose path
/// matches the glob.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderRule {
    /// URL-path glob (`/assets/**`), validated as a glob.
    pub pattern: String,
    /// Header name (lowercase, valid token) → value (valid header value).
    pub values: BTreeMap<String, String>,
}

/// One `[[domain.redirects]]` entry, Netlify-style: `from` may end in `*`
/// (captured as `:splat`) and contain `:name` placeholders; `to` may use both.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    pub from: String,
    pub to: String,
    /// 301, 302, 303, 307, 308 redirect; 200 rewrites; 404 serves `to` as not found.
    pub status: u16,
}

/// One `[[domain.functions]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Path of the component in the served tree; the route is this path
    /// without the `.wasm` extension.
    pub path: String,
    /// Allowed methods, uppercase; empty means all.
    pub methods: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub env_file: Option<String>,
    pub timeout_ms: Option<u64>,
    pub max_memory_mb: Option<u64>,
}

/// What a failing transform does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Serve the untransformed file and log the failure.
    #[default]
    Skip,
    /// Fail the request (500).
    Fail,
}

/// One `[[domain.transforms]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Transform {
    pub path: String,
    /// Glob over served file paths (relative, no leading `/`).
    pub files: String,
    pub env: BTreeMap<String, String>,
    pub env_file: Option<String>,
    pub timeout_ms: Option<u64>,
    pub max_memory_mb: Option<u64>,
    pub max_file_size_kb: Option<u64>,
    pub on_error: OnError,
}

/// The `[build]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub command: String,
    /// Build output directory, relative to the repository root, normalised.
    pub output: String,
}

impl SiteConfig {
    /// Parses and validates `text`; `file` is the name errors are reported
    /// against (usually `makiatto.toml`).
    pub fn parse(file: &str, text: &str) -> Result<SiteConfig, ConfigError> {
        let _ = (file, text);
        Err(ConfigError::new(file, text, None, "not implemented yet"))
    }

    /// The domain whose name or alias is `host` (lowercase, no port).
    pub fn domain_for_host(&self, host: &str) -> Option<&Domain> {
        self.domains
            .iter()
            .find(|d| d.name == host || d.aliases.iter().any(|a| a == host))
    }
}
