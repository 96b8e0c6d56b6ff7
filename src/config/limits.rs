//! `[limits]` in `node.toml`: what one client may take from each public
//! listener (DNS response rate limiting, HTTP connections, request rate,
//! time and body size, SSH connections and authentication attempts), with
//! defaults a public node can run with unchanged.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::Deserialize;
use serde_spanned::Spanned;

use super::ConfigError;
use super::diagnostic::Source;

type S<T> = Spanned<T>;

/// Every listener's limits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    pub dns: DnsLimits,
    pub http: HttpLimits,
    pub ssh: SshLimits,
}

/// `[limits.dns]`: response rate limiting (RRL, as Knot and BIND do it)
/// and bounded work.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsLimits {
    /// UDP responses a second per client prefix; 0 turns RRL off (default 200).
    pub rate: u32,
    /// Of the responses over the rate, every `slip`th is sent as an empty
    /// truncated (TC) answer so a real resolver retries over TCP; the
    /// others are dropped. 0: drop all, 1: truncate all (default 2).
    pub slip: u32,
    /// Client prefixes RRL never limits (default none).
    pub whitelist: Vec<IpNetwork>,
    /// Prefix lengths clients are grouped by (defaults 24 and 56).
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// UDP receive loops at most (there is one per CPU core up to this;
    /// default 64). A loop answers one query at a time; more wait in the
    /// socket buffer.
    pub udp_workers: usize,
    /// TCP connections at once (default 256) and per client address
    /// (default 16).
    pub tcp_connections: usize,
    pub tcp_connections_per_client: usize,
}

/// `[limits.http]`: per client address (IPv6: its /64).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// Client prefixes the connection share and request rate never limit
    /// (default the loopback prefixes: health checks, benchmarks and a
    /// proxy on the node's own host, which no remote client can spoof).
    pub whitelist: Vec<IpNetwork>,
    /// Connections one client may hold open (default 256: an address may be
    /// a whole office behind NAT).
    pub connections_per_client: usize,
    /// Requests a second one client may make, on average (default 1000)
    /// and at once (`request_burst`, default 2000); more get 429.
    pub requests_per_second: u32,
    pub request_burst: u32,
    /// Seconds a request may take, from its head to the end of its
    /// response body being handed to the client (default 60).
    pub request_timeout_secs: u64,
    /// Largest request body accepted; larger get 413 (default 1 MiB).
    pub max_body_bytes: u64,
    /// Seconds a response write may wait for a client that reads nothing
    /// before the connection is closed (default 30).
    pub send_timeout_secs: u64,
}

/// `[limits.ssh]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SshLimits {
    /// Connections at once (default 128) and per client address (default 8).
    pub connections: usize,
    pub connections_per_client: usize,
    /// Authentication attempts one connection may make (default 6, as
    /// OpenSSH's MaxAuthTries).
    pub auth_attempts_per_connection: u32,
    /// Failed authentication attempts one client address may make a minute,
    /// over all its connections (default 30).
    pub auth_failures_per_minute: u32,
    /// Seconds without traffic before a connection is closed (default 300).
    pub idle_timeout_secs: u64,
}

impl Default for DnsLimits {
    fn default() -> DnsLimits {
        DnsLimits {
            rate: 200,
            slip: 2,
            whitelist: Vec::new(),
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            udp_workers: 64,
            tcp_connections: 256,
            tcp_connections_per_client: 16,
        }
    }
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            whitelist: loopback(),
            connections_per_client: 256,
            requests_per_second: 1000,
            request_burst: 2000,
            request_timeout_secs: 60,
            max_body_bytes: 1024 * 1024,
            send_timeout_secs: 30,
        }
    }
}

impl Default for SshLimits {
    fn default() -> SshLimits {
        SshLimits {
            connections: 128,
            connections_per_client: 8,
            auth_attempts_per_connection: 6,
            auth_failures_per_minute: 30,
            idle_timeout_secs: 300,
        }
    }
}

/// `[limits]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    pub dns: Option<RawDnsLimits>,
    pub http: Option<RawHttpLimits>,
    pub ssh: Option<RawSshLimits>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDnsLimits {
    pub rate: Option<S<u64>>,
    pub slip: Option<S<u64>>,
    pub whitelist: Option<Vec<S<String>>>,
    pub ipv4_prefix: Option<S<u64>>,
    pub ipv6_prefix: Option<S<u64>>,
    pub udp_workers: Option<S<u64>>,
    pub tcp_connections: Option<S<u64>>,
    pub tcp_connections_per_client: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpLimits {
    pub whitelist: Option<Vec<S<String>>>,
    pub connections_per_client: Option<S<u64>>,
    pub requests_per_second: Option<S<u64>>,
    pub request_burst: Option<S<u64>>,
    pub request_timeout_secs: Option<S<u64>>,
    pub max_body_bytes: Option<S<u64>>,
    pub send_timeout_secs: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSshLimits {
    pub connections: Option<S<u64>>,
    pub connections_per_client: Option<S<u64>>,
    pub auth_attempts_per_connection: Option<S<u64>>,
    pub auth_failures_per_minute: Option<S<u64>>,
    pub idle_timeout_secs: Option<S<u64>>,
}

/// Checks `[limits]`; absent fields keep their defaults.
pub(super) fn limits(src: Source<'_>, raw: &RawLimits) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    if let Some(d) = &raw.dns {
        let out = &mut limits.dns;
        let field = Field {
            src,
            table: "limits.dns",
        };
        out.rate = field
            .number(&d.rate, "rate", 0, u64::from(u32::MAX), 200)?
            .map_or(out.rate, as_u32);
        out.slip = field
            .number(&d.slip, "slip", 0, 100, 2)?
            .map_or(out.slip, as_u32);
        out.ipv4_prefix = field
            .number(&d.ipv4_prefix, "ipv4_prefix", 8, 32, 24)?
            .map_or(out.ipv4_prefix, as_u8);
        out.ipv6_prefix = field
            .number(&d.ipv6_prefix, "ipv6_prefix", 16, 128, 56)?
            .map_or(out.ipv6_prefix, as_u8);
        out.udp_workers = field
            .number(&d.udp_workers, "udp_workers", 1, 4096, 64)?
            .map_or(out.udp_workers, as_usize);
        out.tcp_connections = field
            .number(&d.tcp_connections, "tcp_connections", 1, 65536, 256)?
            .map_or(out.tcp_connections, as_usize);
        out.tcp_connections_per_client = field
            .number(
                &d.tcp_connections_per_client,
                "tcp_connections_per_client",
                1,
                65536,
                16,
            )?
            .map_or(out.tcp_connections_per_client, as_usize);
        if let Some(list) = &d.whitelist {
            out.whitelist = list
                .iter()
                .map(|n| network(src, "limits.dns.whitelist", n))
                .collect::<Result<_, _>>()?;
        }
    }
    if let Some(h) = &raw.http {
        let out = &mut limits.http;
        let field = Field {
            src,
            table: "limits.http",
        };
        if let Some(list) = &h.whitelist {
            out.whitelist = list
                .iter()
                .map(|n| network(src, "limits.http.whitelist", n))
                .collect::<Result<_, _>>()?;
        }
        out.connections_per_client = field
            .number(
                &h.connections_per_client,
                "connections_per_client",
                1,
                65536,
                256,
            )?
            .map_or(out.connections_per_client, as_usize);
        out.requests_per_second = field
            .number(
                &h.requests_per_second,
                "requests_per_second",
                1,
                u64::from(u32::MAX),
                1000,
            )?
            .map_or(out.requests_per_second, as_u32);
        out.request_burst = field
            .number(
                &h.request_burst,
                "request_burst",
                1,
                u64::from(u32::MAX),
                2000,
            )?
            .map_or(out.request_burst, as_u32);
        out.request_timeout_secs = field
            .number(
                &h.request_timeout_secs,
                "request_timeout_secs",
                1,
                86400,
                60,
            )?
            .unwrap_or(out.request_timeout_secs);
        out.max_body_bytes = field
            .number(&h.max_body_bytes, "max_body_bytes", 0, 1 << 40, 1048576)?
            .unwrap_or(out.max_body_bytes);
        out.send_timeout_secs = field
            .number(&h.send_timeout_secs, "send_timeout_secs", 1, 86400, 30)?
            .unwrap_or(out.send_timeout_secs);
    }
    if let Some(s) = &raw.ssh {
        let out = &mut limits.ssh;
        let field = Field {
            src,
            table: "limits.ssh",
        };
        out.connections = field
            .number(&s.connections, "connections", 1, 65536, 128)?
            .map_or(out.connections, as_usize);
        out.connections_per_client = field
            .number(
                &s.connections_per_client,
                "connections_per_client",
                1,
                65536,
                8,
            )?
            .map_or(out.connections_per_client, as_usize);
        out.auth_attempts_per_connection = field
            .number(
                &s.auth_attempts_per_connection,
                "auth_attempts_per_connection",
                1,
                1000,
                6,
            )?
            .map_or(out.auth_attempts_per_connection, as_u32);
        out.auth_failures_per_minute = field
            .number(
                &s.auth_failures_per_minute,
                "auth_failures_per_minute",
                1,
                1_000_000,
                30,
            )?
            .map_or(out.auth_failures_per_minute, as_u32);
        out.idle_timeout_secs = field
            .number(&s.idle_timeout_secs, "idle_timeout_secs", 1, 86400, 300)?
            .unwrap_or(out.idle_timeout_secs);
    }
    Ok(limits)
}

/// The table a field sits in, for messages naming `table.field`.
struct Field<'a> {
    src: Source<'a>,
    table: &'static str,
}

impl Field<'_> {
    /// `raw` when it lies in `min..=max`; an error naming the range and the
    /// default otherwise.
    fn number(
        &self,
        raw: &Option<S<u64>>,
        name: &str,
        min: u64,
        max: u64,
        default: u64,
    ) -> Result<Option<u64>, ConfigError> {
        let Some(raw) = raw else { return Ok(None) };
        let value = *raw.get_ref();
        if !(min..=max).contains(&value) {
            return Err(self.src.at(
                raw.span(),
                format!(
                    "{}.{name} = {value} is out of range; use {min} to {max} (the default is {default})",
                    self.table
                ),
            ));
        }
        Ok(Some(value))
    }
}

/// 127.0.0.0/8 and ::1: addresses only the node's own host can send from.
fn loopback() -> Vec<IpNetwork> {
    // `new` fails only for a prefix longer than the address.
    [
        IpNetwork::new(IpAddr::from([127, 0, 0, 0]), 8),
        IpNetwork::new(IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A whitelist entry of `table`: an address or an address with a prefix
/// length.
pub(super) fn network(
    src: Source<'_>,
    table: &str,
    raw: &S<String>,
) -> Result<IpNetwork, ConfigError> {
    let text = raw.get_ref().trim();
    let parsed = match text.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNetwork::from(ip)),
        Err(_) => text.parse::<IpNetwork>(),
    };
    parsed.map_err(|_| {
        src.at(
            raw.span(),
            format!(
                "{table} entry {text:?} is not an address or prefix; write e.g. \"198.51.100.0/24\" or \"2001:db8::/32\""
            ),
        )
    })
}

// Values were range-checked against the target type's bounds above.
fn as_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}
fn as_u8(v: u64) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}
fn as_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;

    #[test]
    fn defaults_hold_without_the_table() {
        let config =
            NodeConfig::parse("node.toml", "name = \"a\"\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.limits, super::Limits::default());
    }

    #[test]
    fn the_example_file_shows_the_defaults() {
        let example = include_str!("../../node.toml.example");
        let config =
            NodeConfig::parse("node.toml.example", example).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.limits, super::Limits::default());
    }

    #[test]
    fn the_http_whitelist_is_read_and_checked() {
        let config = NodeConfig::parse(
            "node.toml",
            "name = \"a\"\n[limits.http]\nwhitelist = [\"203.0.113.0/24\"]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.limits.http.whitelist.len(), 1);
        let bad = NodeConfig::parse(
            "node.toml",
            "name = \"a\"\n[limits.http]\nwhitelist = [\"10.0.0.0/99\"]\n",
        );
        let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(
                "limits.http.whitelist entry \"10.0.0.0/99\" is not an address or prefix"
            ),
            "{message}"
        );
    }

    #[test]
    fn fields_are_read_and_checked() {
        let text = "name = \"a\"\n[limits.dns]\nrate = 5\nslip = 1\nwhitelist = [\"198.51.100.0/24\", \"2001:db8::1\"]\n[limits.http]\nrequests_per_second = 7\n[limits.ssh]\nauth_attempts_per_connection = 2\n";
        let config = NodeConfig::parse("node.toml", text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.limits.dns.rate, 5);
        assert_eq!(config.limits.dns.slip, 1);
        assert_eq!(config.limits.dns.whitelist.len(), 2);
        assert_eq!(config.limits.http.requests_per_second, 7);
        assert_eq!(config.limits.ssh.auth_attempts_per_connection, 2);

        let bad = NodeConfig::parse(
            "node.toml",
            "name = \"a\"\n[limits.dns]\nipv4_prefix = 40\n",
        );
        let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(
                "node.toml:3:15: limits.dns.ipv4_prefix = 40 is out of range; use 8 to 32"
            ),
            "{message}"
        );

        let bad = NodeConfig::parse(
            "node.toml",
            "name = \"a\"\n[limits.dns]\nwhitelist = [\"nope\"]\n",
        );
        let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("whitelist entry \"nope\" is not an address or prefix"),
            "{message}"
        );

        let bad = NodeConfig::parse("node.toml", "name = \"a\"\n[limits.htp]\n");
        let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("did you mean \"http\""), "{message}");
    }

    #[test]
    fn range_messages_name_the_real_defaults() {
        let defaults = super::Limits::default();
        let cases = [
            ("dns", "rate", u64::from(defaults.dns.rate)),
            ("dns", "slip", u64::from(defaults.dns.slip)),
            ("dns", "udp_workers", defaults.dns.udp_workers as u64),
            (
                "dns",
                "tcp_connections",
                defaults.dns.tcp_connections as u64,
            ),
            (
                "http",
                "connections_per_client",
                defaults.http.connections_per_client as u64,
            ),
            (
                "http",
                "requests_per_second",
                u64::from(defaults.http.requests_per_second),
            ),
            (
                "http",
                "request_burst",
                u64::from(defaults.http.request_burst),
            ),
            (
                "http",
                "request_timeout_secs",
                defaults.http.request_timeout_secs,
            ),
            ("http", "send_timeout_secs", defaults.http.send_timeout_secs),
            ("ssh", "connections", defaults.ssh.connections as u64),
            (
                "ssh",
                "connections_per_client",
                defaults.ssh.connections_per_client as u64,
            ),
            (
                "ssh",
                "auth_attempts_per_connection",
                u64::from(defaults.ssh.auth_attempts_per_connection),
            ),
            (
                "ssh",
                "auth_failures_per_minute",
                u64::from(defaults.ssh.auth_failures_per_minute),
            ),
            ("ssh", "idle_timeout_secs", defaults.ssh.idle_timeout_secs),
        ];
        for (table, field, default) in cases {
            let text = format!("name = \"a\"\n[limits.{table}]\n{field} = 99999999999\n");
            let message = NodeConfig::parse("node.toml", &text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                message.contains(&format!("(the default is {default})")),
                "{table}.{field}: {message}"
            );
        }
    }
}
