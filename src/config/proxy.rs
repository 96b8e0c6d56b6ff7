//! `[proxy]` in `node.toml`: how proxy rules (a `_redirects` or
//! `[[domain.redirects]]` 200 rule to an `http(s)://` URL) reach their
//! backends. By default a backend must resolve to public addresses only;
//! `allow_private` names the private networks (a backend on the node
//! itself, or on its LAN) the operator lets sites reach. The timeouts
//! keep a slow or silent backend from holding a visitor's request.

use ipnetwork::IpNetwork;
use serde::Deserialize;
use serde_spanned::Spanned;

use super::ConfigError;
use super::diagnostic::Source;
use super::wasm::positive;

/// `[proxy]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// Non-public networks a backend may resolve into (default none:
    /// loopback, private, link-local and the like are refused with 502).
    pub allow_private: Vec<IpNetwork>,
    /// Seconds to resolve and connect to a backend (default 5; 504 after).
    pub connect_timeout_secs: u64,
    /// Seconds from the request sent to the response head (default 30;
    /// 504 after).
    pub first_byte_timeout_secs: u64,
    /// Seconds a response body may go without a byte before the visitor's
    /// connection is cut (default 60).
    pub idle_timeout_secs: u64,
}

impl Default for ProxySettings {
    fn default() -> ProxySettings {
        ProxySettings {
            allow_private: Vec::new(),
            connect_timeout_secs: 5,
            first_byte_timeout_secs: 30,
            idle_timeout_secs: 60,
        }
    }
}

/// `[proxy]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    pub allow_private: Option<Vec<Spanned<String>>>,
    pub connect_timeout_secs: Option<Spanned<u64>>,
    pub first_byte_timeout_secs: Option<Spanned<u64>>,
    pub idle_timeout_secs: Option<Spanned<u64>>,
}

/// Checks `[proxy]`; absent fields keep their defaults.
pub(super) fn proxy(src: Source<'_>, raw: &RawProxy) -> Result<ProxySettings, ConfigError> {
    let d = ProxySettings::default();
    let allow_private = match &raw.allow_private {
        Some(list) => list
            .iter()
            .map(|n| super::limits::network(src, "proxy.allow_private", n))
            .collect::<Result<_, _>>()?,
        None => d.allow_private,
    };
    Ok(ProxySettings {
        allow_private,
        connect_timeout_secs: positive(
            src,
            &raw.connect_timeout_secs,
            "proxy.connect_timeout_secs",
        )?
        .unwrap_or(d.connect_timeout_secs),
        first_byte_timeout_secs: positive(
            src,
            &raw.first_byte_timeout_secs,
            "proxy.first_byte_timeout_secs",
        )?
        .unwrap_or(d.first_byte_timeout_secs),
        idle_timeout_secs: positive(src, &raw.idle_timeout_secs, "proxy.idle_timeout_secs")?
            .unwrap_or(d.idle_timeout_secs),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;

    #[test]
    fn defaults_hold_and_networks_are_parsed() {
        let config = NodeConfig::parse("node.toml", "name = \"a\"\n").unwrap();
        assert_eq!(config.proxy, super::ProxySettings::default());
        let config = NodeConfig::parse(
            "node.toml",
            "name = \"a\"\n[proxy]\nallow_private = [\"127.0.0.1\", \"10.0.0.0/8\"]\nfirst_byte_timeout_secs = 1\n",
        )
        .unwrap();
        let allowed: Vec<String> = config
            .proxy
            .allow_private
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(allowed, ["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!(config.proxy.first_byte_timeout_secs, 1);
        assert_eq!(config.proxy.connect_timeout_secs, 5);
    }

    #[test]
    fn bad_entries_name_the_field() {
        let err = NodeConfig::parse(
            "node.toml",
            "name = \"a\"\n[proxy]\nallow_private = [\"localhost\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("proxy.allow_private entry \"localhost\""),
            "{err}"
        );
        let err = NodeConfig::parse(
            "node.toml",
            "name = \"a\"\n[proxy]\nidle_timeout_secs = 0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("proxy.idle_timeout_secs must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn the_example_documents_the_defaults() {
        let example = include_str!("../../node.toml.example");
        let config = NodeConfig::parse("node.toml.example", example).unwrap();
        assert_eq!(config.proxy, super::ProxySettings::default());
    }
}
