//! `node.toml`: one server's configuration, written by its operator.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::address::{ipv4, ipv6, socket_addr};
use super::build::build_limits;
use super::cluster::{ClusterSettings, cluster_tables, read_join_token};
use super::diagnostic::Source;
use super::dns::{DEV_DNS_LISTEN, DnsSettings, dns};
use super::place::{NodePlace, coordinates, peer};
use super::raw::{self, RawAcme, RawHttp, RawNode};
use super::{BuildLimits, ConfigError, MeshSettings, names};

/// A parsed and validated `node.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// This node's name, public addresses and coordinates.
    pub place: NodePlace,
    /// Where state, objects, repos and revisions live.
    pub data_dir: PathBuf,
    /// How many revisions per domain are kept for rollback (default 10).
    pub keep_revisions: usize,
    pub http: HttpSettings,
    /// `[dns]`: the DNS server; `None` (no `[dns]` table): none.
    pub dns: Option<DnsSettings>,
    /// `[[nodes]]`: other nodes, until the mesh replicates the node table.
    pub nodes: Vec<NodePlace>,
    /// `[ssh]`: the git and admin endpoint; `None` (no `[ssh]` table) runs
    /// no SSH listener.
    pub ssh: Option<SshSettings>,
    /// `[https]` listen address (`0.0.0.0:443` when the table has no
    /// `listen`); `None` (no `[https]` table): no HTTPS listener.
    pub https_listen: Option<SocketAddr>,
    /// `[acme]`: where certificates come from. With HTTPS on and no
    /// `[acme]` table, Let's Encrypt with the defaults; `makiatto dev`
    /// without one uses a self-signed certificate instead.
    pub acme: Option<AcmeSettings>,
    /// Without `[acme]`, serve self-signed certificates instead of asking
    /// Let's Encrypt (`makiatto dev`); false for `node.toml`.
    pub self_signed_without_acme: bool,
    /// The WireGuard mesh `[cluster]` runs (unless it names `rpc_listen`);
    /// `None` for a node on its own. Never set without `cluster`.
    pub mesh: Option<MeshSettings>,
    /// `[cluster]`: how this node joins a cluster and where its mesh RPC
    /// listens when it runs without WireGuard; `None`: a single node.
    pub cluster: Option<ClusterSettings>,
    /// Old forms the file still uses (`[mesh]`), each naming the edit to
    /// the current form; the node starts, and says so.
    pub deprecations: Vec<ConfigError>,
    /// `[limits]`: what one client may take from each listener.
    pub limits: super::Limits,
    /// `[build]`: the limits site builds run under.
    pub build: BuildLimits,
    /// `[metrics]`: the Prometheus exposition.
    pub metrics: super::MetricsSettings,
    /// `[access_log]`: one line per HTTP request, or none.
    pub access_log: super::AccessLogSettings,
    /// `[scrub]`: the background check of stored objects.
    pub scrub: super::ScrubSettings,
    /// `[proxy]`: how proxy rules reach their backends.
    pub proxy: super::ProxySettings,
}

/// `[acme]`: the certificate authority and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct AcmeSettings {
    /// The ACME directory URL (https).
    pub directory: String,
    /// Contact e-mail given to the CA for expiry and policy notices.
    pub contact: Option<String>,
    /// A PEM file with the root that signs the directory's HTTPS
    /// certificate, for private CAs; `None`: the system's roots.
    pub ca_root: Option<PathBuf>,
    /// Seconds before the first retry of a failed order; doubles per
    /// failure up to a day.
    pub retry_secs: u64,
    /// Seconds an order may go without progress before the next healthy
    /// node takes it over (default 600).
    pub takeover_secs: u64,
    /// The CA's CAA identity (`caa_identity`), which the default CAA record
    /// of every domain names; `None`: known for well-known directories
    /// (`dns/caa.rs`).
    pub caa_identity: Option<String>,
}

/// Let's Encrypt's production directory, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for AcmeSettings {
    fn default() -> AcmeSettings {
        AcmeSettings {
            directory: LETS_ENCRYPT.into(),
            contact: None,
            ca_root: None,
            retry_secs: 60,
            takeover_secs: 600,
            caa_identity: None,
        }
    }
}

/// `[ssh]`: the git and admin endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct SshSettings {
    /// Where to listen (default `0.0.0.0:2222`).
    pub listen: SocketAddr,
    /// Bootstrap keys (OpenSSH one-line form) authorised at start, on top
    /// of those in the store.
    pub authorized_keys: Vec<String>,
    /// Where the operator's git hooks live; `None` means `<data_dir>/hooks`.
    pub hooks_dir: Option<PathBuf>,
}

impl Default for SshSettings {
    fn default() -> SshSettings {
        SshSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 2222)),
            authorized_keys: Vec::new(),
            hooks_dir: None,
        }
    }
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Default `0.0.0.0:80`.
    pub listen: SocketAddr,
    /// Seconds a client has to send its request head (default 10).
    pub header_timeout_secs: u64,
    /// Maximum size of a request head in bytes (default 16384).
    pub max_header_bytes: usize,
    /// Serve the first site for hosts that match no domain (dev mode).
    pub fallback_to_first_site: bool,
    /// Peers whose `X-Forwarded-For` is believed (a load balancer or
    /// proxy in front of the node); empty by default, so a visitor cannot
    /// claim another address.
    pub trusted_proxies: Vec<ipnetwork::IpNetwork>,
    /// Threads serving requests (and every other task of the node);
    /// `None`: one per CPU the node may run on.
    pub worker_threads: Option<usize>,
    /// Bytes of small file bodies kept in memory across every revision
    /// served (default 128 MiB).
    pub body_cache_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 80)),
            header_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            fallback_to_first_site: false,
            trusted_proxies: Vec::new(),
            worker_threads: None,
            body_cache_bytes: DEFAULT_BODY_CACHE_MB << 20,
        }
    }
}

/// `[http] body_cache_mb` unless set.
const DEFAULT_BODY_CACHE_MB: usize = 128;
/// More worker threads than this is a typo, not a machine.
const MAX_WORKER_THREADS: u64 = 1024;

impl NodeConfig {
    /// Parses and validates `text`; `file` names it in errors. Relative paths
    /// are kept as written; [`NodeConfig::load`] resolves them.
    pub fn parse(file: &str, text: &str) -> Result<NodeConfig, ConfigError> {
        let src = Source { file, text };
        let raw: RawNode = raw::parse(src)?;
        let Some(name) = &raw.name else {
            return Err(src.whole(
                "missing field \"name\": add this node's name at the top, e.g. name = \"london\"",
            ));
        };
        let name_text = names::node_name(name.get_ref()).map_err(|m| src.at(name.span(), m))?;
        let data_dir = match &raw.data_dir {
            Some(d) if d.get_ref().is_empty() => {
                return Err(src.at(
                    d.span(),
                    "data_dir is empty; write a directory, e.g. \"/var/lib/makiatto\", or remove it for that default",
                ));
            }
            Some(d) => PathBuf::from(d.get_ref()),
            None => PathBuf::from(DEFAULT_DATA_DIR),
        };
        let (latitude, longitude) = coordinates(src, &raw.latitude, &raw.longitude)?;
        let keep_revisions = match &raw.keep_revisions {
            Some(k) if *k.get_ref() == 0 => {
                return Err(src.at(
                    k.span(),
                    "keep_revisions must be at least 1: the live revision is always kept",
                ));
            }
            Some(k) => usize::try_from(*k.get_ref()).unwrap_or(usize::MAX),
            None => 10,
        };
        let http = match &raw.http {
            Some(h) => http(src, h)?,
            None => HttpSettings::default(),
        };
        let dns = match &raw.dns {
            Some(d) => Some(dns(src, d)?),
            None => None,
        };

        // Every node name with the line it first appears on; this node first.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        seen.insert(name_text.clone(), src.line_of(&name.span()));
        let mut nodes = Vec::with_capacity(raw.nodes.len());
        for raw_peer in &raw.nodes {
            nodes.push(peer(src, raw_peer, &mut seen)?);
        }

        let ssh = match &raw.ssh {
            Some(raw_ssh) => {
                let mut ssh = SshSettings::default();
                if let Some(l) = &raw_ssh.listen {
                    ssh.listen = socket_addr(src, l, "ssh.listen", "0.0.0.0:2222")?;
                }
                if let Some(h) = &raw_ssh.hooks_dir {
                    ssh.hooks_dir = Some(PathBuf::from(h.get_ref()));
                }
                ssh.authorized_keys = raw_ssh
                    .authorized_keys
                    .iter()
                    .map(|k| k.get_ref().clone())
                    .collect();
                Some(ssh)
            }
            None => None,
        };

        let https_listen = match &raw.https {
            Some(h) => Some(match &h.listen {
                Some(l) => socket_addr(src, l, "https.listen", "0.0.0.0:443")?,
                None => SocketAddr::from(([0, 0, 0, 0], 443)),
            }),
            None => None,
        };
        let acme = match &raw.acme {
            Some(a) => Some(acme(src, a)?),
            None => None,
        };
        let node_ipv4 = ipv4(src, &raw.ipv4, "ipv4")?;
        let node_ipv6 = ipv6(src, &raw.ipv6, "ipv6")?;
        let tables = cluster_tables(
            src,
            raw.cluster.as_ref(),
            raw.mesh.as_ref(),
            node_ipv4,
            node_ipv6,
        )?;

        Ok(NodeConfig {
            place: NodePlace {
                name: name_text,
                ipv4: node_ipv4,
                ipv6: node_ipv6,
                latitude,
                longitude,
            },
            data_dir,
            keep_revisions,
            http,
            dns,
            nodes,
            ssh,
            https_listen,
            acme,
            self_signed_without_acme: false,
            mesh: tables.mesh,
            cluster: tables.cluster,
            deprecations: tables.deprecations,
            limits: match &raw.limits {
                Some(l) => super::limits::limits(src, l)?,
                None => super::Limits::default(),
            },
            build: match &raw.build {
                Some(b) => build_limits(src, b)?,
                None => BuildLimits::default(),
            },
            metrics: match &raw.metrics {
                Some(m) => super::metrics::metrics(src, m)?,
                None => super::MetricsSettings::default(),
            },
            access_log: match &raw.access_log {
                Some(a) => super::access_log::access_log(src, a)?,
                None => super::AccessLogSettings::default(),
            },
            scrub: match &raw.scrub {
                Some(s) => super::scrub::scrub(src, s)?,
                None => super::ScrubSettings::default(),
            },
            proxy: match &raw.proxy {
                Some(p) => super::proxy::proxy(src, p)?,
                None => super::ProxySettings::default(),
            },
        })
    }

    /// Reads and parses the file at `path`, resolving a relative `data_dir`
    /// and `geoip_db` against the file's directory.
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the node config: {e}"),
        })?;
        let mut config = NodeConfig::parse(&file, &text)?;
        let base = path.parent().unwrap_or(Path::new(""));
        if config.data_dir.is_relative() {
            config.data_dir = base.join(&config.data_dir);
        }
        if let Some(hooks) = config.ssh.as_mut().and_then(|s| s.hooks_dir.as_mut())
            && hooks.is_relative()
        {
            *hooks = base.join(&*hooks);
        }
        if let Some(db) = config.dns.as_mut().and_then(|d| d.geoip_db.as_mut())
            && db.is_relative()
        {
            *db = base.join(&*db);
        }
        if let super::AccessLogTarget::File { path, .. } = &mut config.access_log.target
            && path.is_relative()
        {
            *path = base.join(&*path);
        }
        if let Some(root) = config.acme.as_mut().and_then(|a| a.ca_root.as_mut())
            && root.is_relative()
        {
            *root = base.join(&*root);
        }
        if let Some(cluster) = config.cluster.as_mut() {
            read_join_token(&file, base, cluster)?;
        }
        Ok(config)
    }

    /// The single-machine defaults `makiatto dev` starts from.
    pub fn dev(data_dir: PathBuf, http_listen: SocketAddr) -> NodeConfig {
        NodeConfig {
            place: NodePlace {
                name: "dev".into(),
                ipv4: Some(Ipv4Addr::LOCALHOST),
                ipv6: None,
                latitude: None,
                longitude: None,
            },
            data_dir,
            keep_revisions: 10,
            http: HttpSettings {
                listen: http_listen,
                fallback_to_first_site: true,
                ..HttpSettings::default()
            },
            dns: Some(DnsSettings::listening_on(DEV_DNS_LISTEN)),
            nodes: Vec::new(),
            ssh: Some(SshSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], 2222)),
                ..SshSettings::default()
            }),
            https_listen: None,
            acme: None,
            self_signed_without_acme: true,
            mesh: None,
            cluster: None,
            deprecations: Vec::new(),
            limits: super::Limits::default(),
            build: BuildLimits::default(),
            metrics: super::MetricsSettings::default(),
            access_log: super::AccessLogSettings::default(),
            scrub: super::ScrubSettings::default(),
            proxy: super::ProxySettings::default(),
        }
    }

    /// Where this node's certificates come from: `None` for self-signed.
    pub fn acme_settings(&self) -> Option<AcmeSettings> {
        match &self.acme {
            Some(acme) => Some(acme.clone()),
            None if self.self_signed_without_acme => None,
            None => Some(AcmeSettings::default()),
        }
    }
}

/// Checks `[acme]`; absent fields keep their defaults.
fn acme(src: Source<'_>, raw: &RawAcme) -> Result<AcmeSettings, ConfigError> {
    let mut acme = AcmeSettings::default();
    if let Some(d) = &raw.directory {
        if !d.get_ref().starts_with("https://") || d.get_ref().len() <= "https://".len() {
            return Err(src.at(
                d.span(),
                format!(
                    "acme.directory {:?} is not an https:// URL; write the CA's ACME directory, e.g. {LETS_ENCRYPT:?}",
                    d.get_ref()
                ),
            ));
        }
        acme.directory = d.get_ref().clone();
    }
    if let Some(c) = &raw.contact {
        let text = c.get_ref().strip_prefix("mailto:").unwrap_or(c.get_ref());
        let valid = text
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'))
            && !text.contains(char::is_whitespace);
        if !valid {
            return Err(src.at(
                c.span(),
                format!(
                    "acme.contact {:?} is not an e-mail address; write one such as \"ops@example.com\"",
                    c.get_ref()
                ),
            ));
        }
        acme.contact = Some(text.to_string());
    }
    if let Some(r) = &raw.ca_root {
        if r.get_ref().is_empty() {
            return Err(src.at(
                r.span(),
                "acme.ca_root is empty; write the path of the CA's root certificate (PEM), or remove it to use the system's roots",
            ));
        }
        acme.ca_root = Some(PathBuf::from(r.get_ref()));
    }
    if let Some(r) = &raw.retry_secs {
        if *r.get_ref() == 0 {
            return Err(src.at(
                r.span(),
                "acme.retry_secs must be at least 1; the default is 60",
            ));
        }
        acme.retry_secs = *r.get_ref();
    }
    if let Some(t) = &raw.takeover_secs {
        // Below a few seconds, an issuer's progress marks could not reach
        // the other nodes in time and they would take over a live order.
        if *t.get_ref() < 3 {
            return Err(src.at(
                t.span(),
                "acme.takeover_secs must be at least 3; the default is 600 (ten minutes)",
            ));
        }
        acme.takeover_secs = *t.get_ref();
    }
    if let Some(c) = &raw.caa_identity {
        let text = c.get_ref().trim().to_ascii_lowercase();
        let valid = !text.is_empty()
            && text.len() <= 253
            && text.split('.').all(|l| {
                !l.is_empty() && l.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            });
        if !valid {
            return Err(src.at(
                c.span(),
                format!(
                    "acme.caa_identity {:?} is not a domain name; write the CA's CAA identity as its directory's meta.caaIdentities lists it, e.g. \"letsencrypt.org\"",
                    c.get_ref()
                ),
            ));
        }
        acme.caa_identity = Some(text);
    }
    Ok(acme)
}

/// Where a node keeps its state unless `data_dir` says otherwise.
const DEFAULT_DATA_DIR: &str = "/var/lib/makiatto";

/// Checks `[http]`; absent fields keep their defaults.
fn http(src: Source<'_>, raw: &RawHttp) -> Result<HttpSettings, ConfigError> {
    let mut http = HttpSettings::default();
    if let Some(l) = &raw.listen {
        http.listen = socket_addr(src, l, "http.listen", "0.0.0.0:80")?;
    }
    if let Some(t) = &raw.header_timeout_secs {
        if *t.get_ref() == 0 {
            return Err(src.at(
                t.span(),
                "header_timeout_secs must be at least 1; the default is 10",
            ));
        }
        http.header_timeout_secs = *t.get_ref();
    }
    if let Some(m) = &raw.max_header_bytes {
        // Below 1 KiB ordinary browsers' requests would be refused.
        if *m.get_ref() < 1024 {
            return Err(src.at(
                m.span(),
                format!(
                    "max_header_bytes {} is too small for ordinary browsers; use at least 1024 (the default is 16384)",
                    m.get_ref()
                ),
            ));
        }
        http.max_header_bytes = usize::try_from(*m.get_ref()).unwrap_or(usize::MAX);
    }
    if let Some(list) = &raw.trusted_proxies {
        http.trusted_proxies = list
            .iter()
            .map(|n| super::limits::network(src, "http.trusted_proxies", n))
            .collect::<Result<_, _>>()?;
    }
    if let Some(t) = &raw.worker_threads {
        if !(1..=MAX_WORKER_THREADS).contains(t.get_ref()) {
            return Err(src.at(
                t.span(),
                format!(
                    "worker_threads must be 1 to {MAX_WORKER_THREADS}; leave it out for one per CPU"
                ),
            ));
        }
        http.worker_threads = Some(*t.get_ref() as usize);
    }
    if let Some(m) = &raw.body_cache_mb {
        // Zero is allowed: every small file is then read per request.
        http.body_cache_bytes = usize::try_from(*m.get_ref())
            .ok()
            .and_then(|mb| mb.checked_mul(1 << 20))
            .ok_or_else(|| {
                src.at(
                    m.span(),
                    format!("body_cache_mb is too large; the default is {DEFAULT_BODY_CACHE_MB}"),
                )
            })?;
    }
    Ok(http)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn parse(text: &str) -> NodeConfig {
        match NodeConfig::parse("node.toml", text) {
            Ok(c) => c,
            Err(e) => panic!("expected a valid config, got: {e}"),
        }
    }

    fn error(text: &str) -> String {
        match NodeConfig::parse("node.toml", text) {
            Ok(c) => panic!("expected an error, parsed: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn example_file_parses() {
        let config = parse(include_str!("../../node.toml.example"));
        assert_eq!(config.place.name, "london");
        assert_eq!(
            config.place.ipv6,
            Some("2001:db8::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED))
        );
        assert_eq!(config.place.latitude, Some(51.51));
        assert_eq!(
            config.dns.as_ref().map(|d| d.listen),
            Some(SocketAddr::from(([0, 0, 0, 0], 53)))
        );
        assert_eq!(config.nodes.len(), 2);
        assert_eq!(config.nodes[1].ipv6, None);
        assert!(!config.http.fallback_to_first_site);
        assert_eq!(
            config.https_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 443)))
        );
        assert_eq!(config.dns.as_ref().and_then(|d| d.tls_listen), None);
        assert_eq!(
            config.dns.as_ref().and_then(|d| d.tls_auto),
            Some(SocketAddr::from(([0, 0, 0, 0], 853)))
        );
        assert_eq!(
            config.acme.map(|a| (a.directory, a.contact, a.retry_secs)),
            Some((LETS_ENCRYPT.to_string(), Some("ops@example.com".into()), 60))
        );
    }

    #[test]
    fn acme_settings_default_to_lets_encrypt_and_are_checked() {
        let config = parse("name = \"a\"\n[https]\n");
        assert_eq!(config.acme, None);
        assert_eq!(config.acme_settings(), Some(AcmeSettings::default()));
        let mut dev = NodeConfig::dev(PathBuf::from("d"), SocketAddr::from(([127, 0, 0, 1], 0)));
        assert_eq!(
            dev.acme_settings(),
            None,
            "dev without [acme] is self-signed"
        );
        dev.acme = Some(AcmeSettings::default());
        assert!(dev.acme_settings().is_some());
        assert_eq!(
            parse("name = \"a\"\n[acme]\ncontact = \"mailto:ops@example.com\"\n")
                .acme
                .and_then(|a| a.contact),
            Some("ops@example.com".into())
        );
        assert_eq!(
            error("name = \"a\"\n[acme]\ndirectory = \"http://ca.test/dir\"\n"),
            "node.toml:3:13: acme.directory \"http://ca.test/dir\" is not an https:// URL; write the CA's ACME directory, e.g. \"https://acme-v02.api.letsencrypt.org/directory\""
        );
        assert_eq!(
            error("name = \"a\"\n[acme]\ncontact = \"ops\"\n"),
            "node.toml:3:11: acme.contact \"ops\" is not an e-mail address; write one such as \"ops@example.com\""
        );
        assert_eq!(
            parse("name = \"a\"\n[dns]\nlisten = \"192.0.2.1:53\"\n")
                .dns
                .and_then(|d| d.tls_auto),
            Some(SocketAddr::from(([192, 0, 2, 1], 853)))
        );
        let off = parse("name = \"a\"\n[dns]\ntls = false\n");
        let off = off.dns.map(|d| (d.tls_auto, d.tls_listen));
        assert_eq!(off, Some((None, None)));
        let explicit = parse("name = \"a\"\n[dns]\ntls_listen = \"0.0.0.0:8853\"\n");
        assert_eq!(explicit.dns.and_then(|d| d.tls_auto), None);
        assert_eq!(
            error("name = \"a\"\n[dns]\ntls = false\ntls_listen = \"0.0.0.0:853\"\n"),
            "node.toml:4:14: dns.tls_listen is set but dns.tls = false turns DNS over TLS off; remove one of them"
        );
        assert_eq!(parse("name = \"a\"\n").dns.and_then(|d| d.tls_auto), None);
        assert_eq!(
            error("name = \"a\"\n[acme]\ntakeover_secs = 1\n"),
            "node.toml:3:17: acme.takeover_secs must be at least 3; the default is 600 (ten minutes)"
        );
        assert_eq!(
            parse("name = \"a\"\n[acme]\ntakeover_secs = 5\n")
                .acme
                .map(|a| a.takeover_secs),
            Some(5)
        );
        assert_eq!(AcmeSettings::default().takeover_secs, 600);
        assert_eq!(
            error("name = \"a\"\n[acme]\nretry_secs = 0\n"),
            "node.toml:3:14: acme.retry_secs must be at least 1; the default is 60"
        );
        assert_eq!(
            error("name = \"a\"\n[acme]\ndirectroy = \"x\"\n"),
            "node.toml:3:1: unknown field \"directroy\", did you mean \"directory\"?"
        );
        assert_eq!(
            error("name = \"a\"\n[https]\nlisten = \"443\"\n"),
            "node.toml:3:10: https.listen \"443\" is not an address and port; write e.g. \"0.0.0.0:443\" (IPv6: \"[::]:443\")"
        );
    }

    #[test]
    fn load_resolves_the_ca_root_against_the_file() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = dir.path().join("node.toml");
        if let Err(e) = std::fs::write(&path, "name = \"a\"\n[acme]\nca_root = \"ca.pem\"\n") {
            panic!("write: {e}");
        }
        let root = NodeConfig::load(&path).map(|c| c.acme.and_then(|a| a.ca_root));
        assert_eq!(root, Ok(Some(dir.path().join("ca.pem"))));
    }

    #[test]
    fn build_limits_are_read_and_zero_is_refused() {
        let limits = parse("name = \"a\"\n[build]\ntimeout_secs = 30\nqueue = 0\n").build;
        assert_eq!(limits.timeout_secs, 30);
        assert_eq!(limits.queue, 0);
        assert_eq!(limits.memory_mb, BuildLimits::default().memory_mb);
        assert_eq!(
            error("name = \"a\"\n[build]\nmemory_mb = 0\n"),
            "node.toml:3:13: build.memory_mb must be at least 1; remove it to use the default"
        );
    }

    #[test]
    fn memory_settings_are_read_and_checked() {
        let config = parse("name = \"a\"\n[http]\nworker_threads = 2\nbody_cache_mb = 0\n");
        assert_eq!(config.http.worker_threads, Some(2));
        assert_eq!(config.http.body_cache_bytes, 0);
        let config = parse("name = \"a\"\n");
        assert_eq!(config.http.worker_threads, None);
        assert_eq!(config.http.body_cache_bytes, 128 << 20);
        assert_eq!(
            error("name = \"a\"\n[http]\nworker_threads = 0\n"),
            "node.toml:3:18: worker_threads must be 1 to 1024; leave it out for one per CPU"
        );
        assert!(
            error("name = \"a\"\n[http]\nbody_cache_mb = 99999999999999\n")
                .contains("body_cache_mb is too large"),
        );
    }

    #[test]
    fn minimal_node_gets_defaults() {
        assert_eq!(
            parse("name = \"london\"\n"),
            NodeConfig {
                place: NodePlace {
                    name: "london".into(),
                    ipv4: None,
                    ipv6: None,
                    latitude: None,
                    longitude: None,
                },
                data_dir: PathBuf::from("/var/lib/makiatto"),
                keep_revisions: 10,
                http: HttpSettings::default(),
                dns: None,
                nodes: vec![],
                ssh: None,
                https_listen: None,
                acme: None,
                self_signed_without_acme: false,
                mesh: None,
                cluster: None,
                deprecations: vec![],
                limits: crate::config::Limits::default(),
                build: BuildLimits::default(),
                metrics: crate::config::MetricsSettings::default(),
                access_log: crate::config::AccessLogSettings::default(),
                scrub: crate::config::ScrubSettings::default(),
                proxy: crate::config::ProxySettings::default(),
            }
        );
        // Integers are accepted as coordinates.
        assert_eq!(
            parse("name = \"a\"\nlatitude = 51\nlongitude = 0\n")
                .place
                .latitude,
            Some(51.0)
        );
    }

    #[test]
    fn unknown_fields_get_suggestions() {
        assert_eq!(
            error("name = \"london\"\ndata-dir = \"/srv\"\n"),
            "node.toml:2:1: unknown field \"data-dir\", did you mean \"data_dir\"?"
        );
        assert_eq!(
            error(
                "name = \"london\"\n[http]\nlisten = \"0.0.0.0:80\"\nfallback_to_first_site = true\n"
            ),
            "node.toml:4:1: unknown field \"fallback_to_first_site\", expected one of \"listen\", \"header_timeout_secs\", \"max_header_bytes\", \"trusted_proxies\", \"worker_threads\", \"body_cache_mb\""
        );
        assert_eq!(
            error("name = \"london\"\n[[nodes]]\nname = \"tokyo\"\nipv5 = \"x\"\n"),
            "node.toml:4:1: unknown field \"ipv5\", did you mean \"ipv4\"?"
        );
        assert_eq!(
            error("name = \"london\"\n[dsn]\n"),
            "node.toml:2:2: unknown field \"dsn\", did you mean \"dns\"?"
        );
    }

    #[test]
    fn name_is_required_and_checked() {
        assert_eq!(
            error("data_dir = \"/srv\"\n"),
            "node.toml: missing field \"name\": add this node's name at the top, e.g. name = \"london\""
        );
        assert_eq!(
            error("name = \"London\"\n"),
            "node.toml:1:8: node name \"London\" must be lowercase: write \"london\""
        );
        assert_eq!(
            error("name = \"lon don\"\n"),
            "node.toml:1:8: node name \"lon don\" contains ' '; use lowercase letters, digits and \"-\""
        );
        assert_eq!(
            error("name = 3\n"),
            "node.toml:1:8: \"name\" must be a string, not integer 3"
        );
    }

    #[test]
    fn addresses_and_coordinates_are_checked() {
        assert_eq!(
            error("name = \"a\"\nipv4 = \"2001:db8::1\"\n"),
            "node.toml:2:8: ipv4 \"2001:db8::1\" is not an IPv4 address; it is an IPv6 address; put it in ipv6"
        );
        assert_eq!(
            error("name = \"a\"\nipv6 = \"nope\"\n"),
            "node.toml:2:8: ipv6 \"nope\" is not an IPv6 address; write one such as \"2001:db8::1\""
        );
        assert_eq!(
            error("name = \"a\"\nlatitude = 91.5\nlongitude = 0\n"),
            "node.toml:2:12: latitude 91.5 is out of range; use decimal degrees from -90 to 90"
        );
        assert_eq!(
            error("name = \"a\"\nlatitude = 0\nlongitude = -180.5\n"),
            "node.toml:3:13: longitude -180.5 is out of range; use decimal degrees from -180 to 180"
        );
        assert_eq!(
            error("name = \"a\"\nlatitude = nan\nlongitude = 0\n"),
            "node.toml:2:12: latitude NaN is out of range; use decimal degrees from -90 to 90"
        );
        assert_eq!(
            error("name = \"a\"\nlongitude = 1\n"),
            "node.toml:2:13: longitude is set without latitude; set both (decimal degrees) or neither"
        );
        assert_eq!(
            error("name = \"a\"\n[http]\nlisten = \"0.0.0.0\"\n"),
            "node.toml:3:10: http.listen \"0.0.0.0\" is not an address and port; write e.g. \"0.0.0.0:80\" (IPv6: \"[::]:80\")"
        );
        assert_eq!(
            error("name = \"a\"\n[dns]\nlisten = \":53\"\n"),
            "node.toml:3:10: dns.listen \":53\" is not an address and port; write e.g. \"0.0.0.0:53\" (IPv6: \"[::]:53\")"
        );
    }

    #[test]
    fn dns_settings_have_defaults_and_limits() {
        let config = parse("name = \"a\"\n[dns]\n");
        assert_eq!(
            config.dns.as_ref().map(|d| d.listen),
            Some(SocketAddr::from(([0, 0, 0, 0], 53)))
        );
        assert_eq!(config.dns.map(|d| (d.ttl, d.answers)), Some((60, 1)));
        let config = parse("name = \"a\"\n[dns]\nttl = 30\nanswers = 2\n");
        assert_eq!(config.dns.map(|d| (d.ttl, d.answers)), Some((30, 2)));
        assert_eq!(
            error("name = \"a\"\n[dns]\nanswers = 3\n"),
            "node.toml:3:11: dns.answers 3 is not supported; use 1 (the nearest node) or 2 (the nearest two)"
        );
        assert_eq!(
            error("name = \"a\"\n[dns]\nttl = 4294967295\n"),
            "node.toml:3:7: dns.ttl 4294967295 is too large; the maximum is 2147483647 seconds (the default is 60)"
        );
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(
            error("name = \"a\"\nkeep_revisions = 0\n"),
            "node.toml:2:18: keep_revisions must be at least 1: the live revision is always kept"
        );
        assert_eq!(
            error("name = \"a\"\n[http]\nheader_timeout_secs = 0\n"),
            "node.toml:3:23: header_timeout_secs must be at least 1; the default is 10"
        );
        assert_eq!(
            error("name = \"a\"\n[http]\nmax_header_bytes = 100\n"),
            "node.toml:3:20: max_header_bytes 100 is too small for ordinary browsers; use at least 1024 (the default is 16384)"
        );
        assert_eq!(
            error("name = \"a\"\nkeep_revisions = -3\n"),
            "node.toml:2:18: \"keep_revisions\" must be a whole number, 0 or more, not integer -3"
        );
    }

    #[test]
    fn peers_are_checked() {
        assert_eq!(
            error(
                "name = \"london\"\n[[nodes]]\nname = \"tokyo\"\nipv4 = \"203.0.113.1\"\n[[nodes]]\nname = \"tokyo\"\nipv4 = \"203.0.113.2\"\n"
            ),
            "node.toml:6:8: node \"tokyo\" is declared twice (first at line 3); node names must be unique"
        );
        assert_eq!(
            error("name = \"london\"\n[[nodes]]\nname = \"london\"\nipv4 = \"203.0.113.1\"\n"),
            "node.toml:3:8: node \"london\" is declared twice (first at line 1); node names must be unique"
        );
        assert_eq!(
            error("name = \"london\"\n[[nodes]]\nname = \"tokyo\"\n"),
            "node.toml:2:1: node \"tokyo\" has no address; add ipv4 = \"...\" and/or ipv6 = \"...\""
        );
        assert_eq!(
            error("name = \"london\"\n[[nodes]]\nipv4 = \"203.0.113.1\"\n"),
            "node.toml:2:1: missing field \"name\" in [[nodes]]; add the other node's name, e.g. name = \"tokyo\""
        );
        assert_eq!(
            error(
                "name = \"london\"\n[[nodes]]\nname = \"tokyo\"\nipv4 = \"203.0.113.1\"\nlatitude = 35.6\n"
            ),
            "node.toml:5:12: latitude is set without longitude; set both (decimal degrees) or neither"
        );
    }

    #[test]
    fn load_resolves_relative_paths_against_the_file() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = dir.path().join("node.toml");
        let text = "name = \"a\"\ndata_dir = \"data\"\n[dns]\ngeoip_db = \"geo/City.mmdb\"\n";
        if let Err(e) = std::fs::write(&path, text) {
            panic!("write: {e}");
        }
        let config = match NodeConfig::load(&path) {
            Ok(c) => c,
            Err(e) => panic!("load: {e}"),
        };
        assert_eq!(config.data_dir, dir.path().join("data"));
        assert_eq!(
            config.dns.and_then(|d| d.geoip_db),
            Some(dir.path().join("geo/City.mmdb"))
        );

        let absolute = "name = \"a\"\ndata_dir = \"/var/lib/x\"\n";
        if let Err(e) = std::fs::write(&path, absolute) {
            panic!("write: {e}");
        }
        let config = NodeConfig::load(&path).map(|c| c.data_dir);
        assert_eq!(config, Ok(PathBuf::from("/var/lib/x")));
    }

    #[test]
    fn the_join_token_can_come_from_a_file_beside_the_config() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = dir.path().join("node.toml");
        let text = "name = \"b\"\n[cluster]\njoin = \"192.0.2.1:7070\"\njoin_token_file = \"secret/token\"\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write: {e}"));

        let missing = NodeConfig::load(&path).map(|_| ()).unwrap_err().to_string();
        assert!(
            missing.contains("cannot read cluster.join_token_file")
                && missing.contains("secret/token"),
            "{missing}"
        );

        std::fs::create_dir(dir.path().join("secret")).unwrap_or_else(|e| panic!("mkdir: {e}"));
        std::fs::write(dir.path().join("secret/token"), "mkj_abc\n")
            .unwrap_or_else(|e| panic!("write: {e}"));
        let cluster = NodeConfig::load(&path)
            .unwrap_or_else(|e| panic!("load: {e}"))
            .cluster
            .unwrap_or_else(|| panic!("[cluster] is set"));
        assert_eq!(cluster.join_token.as_deref(), Some("mkj_abc"));
        assert_eq!(
            cluster.join_token_file,
            Some(dir.path().join("secret/token"))
        );

        assert!(
            error("name = \"b\"\n[cluster]\njoin = \"192.0.2.1:7070\"\njoin_token = \"mkj_x\"\njoin_token_file = \"t\"\n")
                .starts_with("node.toml:5:19: cluster.join_token and cluster.join_token_file both give the token")
        );
        assert!(
            error("name = \"b\"\n[cluster]\njoin_token_file = \"t\"\n")
                .starts_with("node.toml:3:19: cluster.join and cluster.join_token (or join_token_file) go together")
        );
    }

    #[test]
    fn load_reports_unreadable_files_without_a_position() {
        let missing = Path::new("/nonexistent/makiatto/node.toml");
        let err = NodeConfig::load(missing)
            .map(|_| ())
            .map_err(|e| (e.line, e.to_string()));
        assert_eq!(
            err,
            Err((
                0,
                "/nonexistent/makiatto/node.toml: cannot read the node config: No such file or directory (os error 2)".into()
            ))
        );
    }

    #[test]
    fn errors_in_loaded_files_name_the_path() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = dir.path().join("node.toml");
        if let Err(e) = std::fs::write(&path, "name = \"a\"\nnmae = \"b\"\n") {
            panic!("write: {e}");
        }
        let err = NodeConfig::load(&path)
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(format!(
                "{}:2:1: unknown field \"nmae\", did you mean \"name\"?",
                path.display()
            ))
        );
    }
}
