//! `[dns]` in `node.toml`: where the authoritative GeoDNS server listens,
//! how it locates clients, how its answers look, and DNS over TLS.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::ConfigError;
use super::address::socket_addr;
use super::diagnostic::Source;
use super::raw::RawDns;

/// Where `makiatto dev` answers DNS unless told otherwise.
pub(super) const DEV_DNS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 5300);
/// TTL of geographic answers: short, so a failed node stops receiving
/// visitors within a minute.
const DEFAULT_DNS_TTL: u32 = 60;

/// `[dns]`: the node's DNS server.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSettings {
    /// UDP and TCP on the same port (default `0.0.0.0:53`).
    pub listen: SocketAddr,
    /// An MMDB city database for locating clients; `None`: every client's
    /// location is unknown, so every answer lists all healthy nodes.
    pub geoip_db: Option<PathBuf>,
    /// TTL in seconds of geographic answers (default 60).
    pub ttl: u32,
    /// How many of the nearest healthy nodes a geographic answer lists: 1 or
    /// 2 (default 1).
    pub answers: usize,
    /// `tls_listen`: DNS over TLS (RFC 7858) on this address; `None`: none.
    pub tls_listen: Option<SocketAddr>,
    /// DNS over TLS opened once the node holds a certificate for its
    /// `<node>.ns.<domain>` name: the listener's address at port 853,
    /// unless `tls_listen` names one or `tls = false`.
    pub tls_auto: Option<SocketAddr>,
}

impl DnsSettings {
    /// The settings of a `[dns]` table that sets only `listen`, with DNS
    /// over TLS off (as `makiatto dev` wants it unless asked).
    pub fn listening_on(listen: SocketAddr) -> DnsSettings {
        DnsSettings {
            listen,
            geoip_db: None,
            ttl: DEFAULT_DNS_TTL,
            answers: 1,
            tls_listen: None,
            tls_auto: None,
        }
    }
}

/// Checks `[dns]`; absent fields keep their defaults.
pub(super) fn dns(src: Source<'_>, d: &RawDns) -> Result<DnsSettings, ConfigError> {
    let listen = match &d.listen {
        Some(l) => socket_addr(src, l, "dns.listen", "0.0.0.0:53")?,
        None => SocketAddr::from(([0, 0, 0, 0], 53)),
    };
    let mut settings = DnsSettings::listening_on(listen);
    if let Some(t) = &d.ttl {
        // RFC 2181 §8: TTLs above 2^31 - 1 are treated as zero.
        if *t.get_ref() > i32::MAX as u64 {
            return Err(src.at(
                t.span(),
                format!(
                    "dns.ttl {} is too large; the maximum is 2147483647 seconds (the default is 60)",
                    t.get_ref()
                ),
            ));
        }
        settings.ttl = *t.get_ref() as u32;
    }
    if let Some(a) = &d.answers {
        if !(1..=2).contains(a.get_ref()) {
            return Err(src.at(
                a.span(),
                format!(
                    "dns.answers {} is not supported; use 1 (the nearest node) or 2 (the nearest two)",
                    a.get_ref()
                ),
            ));
        }
        settings.answers = *a.get_ref() as usize;
    }
    let tls_on = d.tls.as_ref().is_none_or(|t| *t.get_ref());
    match (&d.tls_listen, &d.tls) {
        (Some(l), Some(t)) if !*t.get_ref() => {
            return Err(src.at(
                l.span(),
                "dns.tls_listen is set but dns.tls = false turns DNS over TLS off; remove one of them",
            ));
        }
        (Some(l), _) => {
            settings.tls_listen = Some(socket_addr(src, l, "dns.tls_listen", "0.0.0.0:853")?);
        }
        (None, _) if tls_on => {
            settings.tls_auto = Some(SocketAddr::new(listen.ip(), 853));
        }
        (None, _) => {}
    }
    settings.geoip_db = match &d.geoip_db {
        Some(g) if g.get_ref().is_empty() => {
            return Err(src.at(
                g.span(),
                "geoip_db is empty; write the path of a GeoLite2-City.mmdb file, or remove it",
            ));
        }
        Some(g) => Some(PathBuf::from(g.get_ref())),
        None => None,
    };
    Ok(settings)
}
