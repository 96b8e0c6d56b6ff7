//! The WireGuard fields of `[cluster]` in `node.toml` (`[mesh]` in the old
//! form): the node's WireGuard interface, its mesh addresses and the
//! prefixes they come from, and the ports peers use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_spanned::Spanned;

use super::ConfigError;
use super::diagnostic::Source;
use super::raw::RawMesh;

/// The WireGuard mesh of a node in a cluster (`[cluster]` without
/// `rpc_listen`).
#[derive(Debug, Clone, PartialEq)]
pub struct MeshSettings {
    /// The WireGuard interface name (default `maki0`).
    pub interface: String,
    /// WireGuard's UDP port (default 51880).
    pub listen_port: u16,
    /// `host:port` other nodes send WireGuard packets to. Default: this
    /// node's `ipv4`, else `ipv6`, with `listen_port`; `None` when the node
    /// has neither (it can still reach others, who learn its address from
    /// its packets).
    pub endpoint: Option<String>,
    /// This node's mesh IPv4 address, inside `prefix_v4`; normally
    /// assigned at join, or picked by the first node itself.
    pub address_v4: Option<Ipv4Addr>,
    /// This node's mesh IPv6 address, inside `prefix_v6`.
    pub address_v6: Option<Ipv6Addr>,
    /// The mesh's IPv4 prefix (default 10.88.0.0/16).
    pub prefix_v4: (Ipv4Addr, u8),
    /// The mesh's IPv6 prefix, a ULA (default fd6d:616b:6961::/64).
    pub prefix_v6: (Ipv6Addr, u8),
    /// The mesh RPC port, on mesh addresses only (default 7070).
    pub rpc_port: u16,
}

/// The default WireGuard port.
pub const DEFAULT_LISTEN_PORT: u16 = 51880;
/// The default mesh RPC port.
pub const DEFAULT_RPC_PORT: u16 = 7070;
/// The default mesh IPv4 prefix: a private /16, room for 65,534 nodes.
pub const DEFAULT_PREFIX_V4: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 88, 0, 0), 16);
/// The default mesh IPv6 prefix: a unique local /64 ("maki" + "a" in its
/// global ID).
pub const DEFAULT_PREFIX_V6: (Ipv6Addr, u8) =
    (Ipv6Addr::new(0xfd6d, 0x616b, 0x6961, 0, 0, 0, 0, 0), 64);

impl MeshSettings {
    /// This node's mesh addresses with the mesh prefix lengths, as the
    /// WireGuard interface takes them.
    pub fn interface_addresses(&self) -> Vec<(IpAddr, u8)> {
        let mut out = Vec::new();
        if let Some(v4) = self.address_v4 {
            out.push((IpAddr::V4(v4), self.prefix_v4.1));
        }
        if let Some(v6) = self.address_v6 {
            out.push((IpAddr::V6(v6), self.prefix_v6.1));
        }
        out
    }
}

/// Checks a Linux interface name that wireguard-tools also accept.
pub fn interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "interface name {name:?} must be 1 to 15 characters, e.g. \"maki0\""
        ));
    }
    if name == "." || name == ".." {
        return Err(format!(
            "interface name {name:?} is reserved; use e.g. \"maki0\""
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '=' | '+')))
    {
        return Err(format!(
            "interface name {name:?} contains {c:?}; use letters, digits and _ - . = +"
        ));
    }
    Ok(())
}

/// Checks the WireGuard fields of `table` (`cluster`, or `mesh` in the
/// old form); `ipv4`/`ipv6` are the node's public addresses, for the
/// default endpoint.
pub(super) fn mesh(
    src: Source<'_>,
    raw: &RawMesh,
    table: &str,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
) -> Result<MeshSettings, ConfigError> {
    let interface = match &raw.interface {
        Some(i) => {
            interface_name(i.get_ref()).map_err(|m| src.at(i.span(), m))?;
            i.get_ref().clone()
        }
        None => "maki0".to_string(),
    };
    let listen_port = port(
        src,
        &raw.listen_port,
        &format!("{table}.listen_port"),
        DEFAULT_LISTEN_PORT,
    )?;
    let rpc_port = port(
        src,
        &raw.rpc_port,
        &format!("{table}.rpc_port"),
        DEFAULT_RPC_PORT,
    )?;
    let prefix_v4 = match &raw.prefix_v4 {
        Some(p) => {
            let (ip, len) = prefix(src, p, &format!("{table}.prefix_v4"), "10.88.0.0/16")?;
            let IpAddr::V4(v4) = ip else {
                return Err(src.at(
                    p.span(),
                    format!(
                        "{table}.prefix_v4 {:?} is an IPv6 prefix; put it in prefix_v6",
                        p.get_ref()
                    ),
                ));
            };
            if !(8..=30).contains(&len) {
                return Err(src.at(
                    p.span(),
                    format!("{table}.prefix_v4 /{len} must be /8 to /30, room for the nodes (the default is 10.88.0.0/16)"),
                ));
            }
            (v4, len)
        }
        None => DEFAULT_PREFIX_V4,
    };
    let prefix_v6 = match &raw.prefix_v6 {
        Some(p) => {
            let (ip, len) = prefix(src, p, &format!("{table}.prefix_v6"), "fd6d:616b:6961::/64")?;
            let IpAddr::V6(v6) = ip else {
                return Err(src.at(
                    p.span(),
                    format!(
                        "{table}.prefix_v6 {:?} is an IPv4 prefix; put it in prefix_v4",
                        p.get_ref()
                    ),
                ));
            };
            if !(16..=120).contains(&len) {
                return Err(src.at(
                    p.span(),
                    format!("{table}.prefix_v6 /{len} must be /16 to /120 (the default is fd6d:616b:6961::/64)"),
                ));
            }
            (v6, len)
        }
        None => DEFAULT_PREFIX_V6,
    };
    let address_v4 = match &raw.address_v4 {
        Some(a) => {
            let ip: Ipv4Addr = a.get_ref().parse().map_err(|_| {
                src.at(
                    a.span(),
                    format!("{table}.address_v4 {:?} is not an IPv4 address; write one inside prefix_v4, e.g. \"10.88.0.1\"", a.get_ref()),
                )
            })?;
            let host = u32::from(ip) & !mask_v4(prefix_v4.1);
            if !inside(IpAddr::V4(prefix_v4.0), prefix_v4.1, IpAddr::V4(ip)) {
                return Err(src.at(
                    a.span(),
                    format!(
                        "{table}.address_v4 {ip} is outside the mesh prefix {}/{}",
                        prefix_v4.0, prefix_v4.1
                    ),
                ));
            }
            if host == 0 || host == !mask_v4(prefix_v4.1) {
                return Err(src.at(
                    a.span(),
                    format!("{table}.address_v4 {ip} is the network or broadcast address of {}/{}; pick a host address", prefix_v4.0, prefix_v4.1),
                ));
            }
            Some(ip)
        }
        None => None,
    };
    let address_v6 = match &raw.address_v6 {
        Some(a) => {
            let ip: Ipv6Addr = a.get_ref().parse().map_err(|_| {
                src.at(
                    a.span(),
                    format!("{table}.address_v6 {:?} is not an IPv6 address; write one inside prefix_v6, e.g. \"fd6d:616b:6961::1\"", a.get_ref()),
                )
            })?;
            if !inside(IpAddr::V6(prefix_v6.0), prefix_v6.1, IpAddr::V6(ip)) {
                return Err(src.at(
                    a.span(),
                    format!(
                        "{table}.address_v6 {ip} is outside the mesh prefix {}/{}",
                        prefix_v6.0, prefix_v6.1
                    ),
                ));
            }
            if ip == prefix_v6.0 {
                return Err(src.at(
                    a.span(),
                    format!(
                        "{table}.address_v6 {ip} is the prefix's network address; pick a host address"
                    ),
                ));
            }
            Some(ip)
        }
        None => None,
    };
    let endpoint = match &raw.endpoint {
        Some(e) => Some(endpoint(src, e, table)?),
        None => match (ipv4, ipv6) {
            (Some(v4), _) => Some(format!("{v4}:{listen_port}")),
            (None, Some(v6)) => Some(format!("[{v6}]:{listen_port}")),
            (None, None) => None,
        },
    };
    Ok(MeshSettings {
        interface,
        listen_port,
        endpoint,
        address_v4,
        address_v6,
        prefix_v4,
        prefix_v6,
        rpc_port,
    })
}

fn port(
    src: Source<'_>,
    raw: &Option<Spanned<i64>>,
    field: &str,
    default: u16,
) -> Result<u16, ConfigError> {
    let Some(p) = raw else { return Ok(default) };
    u16::try_from(*p.get_ref())
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            src.at(
                p.span(),
                format!(
                    "{field} {} is not a port; use 1 to 65535 (the default is {default})",
                    p.get_ref()
                ),
            )
        })
}

/// `ADDRESS/LEN` with no host bits set.
fn prefix(
    src: Source<'_>,
    raw: &Spanned<String>,
    field: &str,
    example: &str,
) -> Result<(IpAddr, u8), ConfigError> {
    let text = raw.get_ref();
    let bad = || {
        src.at(
            raw.span(),
            format!("{field} {text:?} is not a prefix; write ADDRESS/LENGTH, e.g. {example:?}"),
        )
    };
    let (ip, len) = text.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(bad());
    }
    let network = network_of(ip, len);
    if network != ip {
        return Err(src.at(
            raw.span(),
            format!("{field} {text:?} has host bits set; write \"{network}/{len}\""),
        ));
    }
    Ok((ip, len))
}

/// `host:port` (a name or an address; IPv6 in brackets).
fn endpoint(src: Source<'_>, raw: &Spanned<String>, table: &str) -> Result<String, ConfigError> {
    let text = raw.get_ref();
    let bad = |why: &str| {
        src.at(
            raw.span(),
            format!("{table}.endpoint {text:?} {why}; write HOST:PORT, e.g. \"192.0.2.1:51880\" or \"[2001:db8::1]:51880\""),
        )
    };
    if text.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(text.clone());
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("has no port"));
    };
    if !port.parse::<u16>().is_ok_and(|p| p != 0) {
        return Err(bad("has no valid port"));
    }
    if host.contains(':') || host.starts_with('[') {
        return Err(bad("is not a valid address (IPv6 needs brackets)"));
    }
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(bad("does not name a host"));
    }
    Ok(text.clone())
}

fn mask_v4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn network_of(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(len))),
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

fn inside(network: IpAddr, len: u8, ip: IpAddr) -> bool {
    network.is_ipv4() == ip.is_ipv4() && network_of(ip, len) == network
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;

    use super::*;

    fn mesh_of(text: &str) -> Result<Option<MeshSettings>, String> {
        NodeConfig::parse("node.toml", text)
            .map(|c| c.mesh)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let mesh = mesh_of("name = \"a\"\nipv4 = \"192.0.2.1\"\n[cluster]\n");
        assert_eq!(
            mesh,
            Ok(Some(MeshSettings {
                interface: "maki0".into(),
                listen_port: 51880,
                endpoint: Some("192.0.2.1:51880".into()),
                address_v4: None,
                address_v6: None,
                prefix_v4: DEFAULT_PREFIX_V4,
                prefix_v6: DEFAULT_PREFIX_V6,
                rpc_port: 7070,
            }))
        );
        let mesh = mesh_of("name = \"a\"\nipv6 = \"2001:db8::1\"\n[cluster]\nlisten_port = 5000\n");
        assert_eq!(
            mesh.map(|m| m.and_then(|m| m.endpoint)),
            Ok(Some("[2001:db8::1]:5000".into()))
        );
        assert_eq!(mesh_of("name = \"a\"\n"), Ok(None));
    }

    #[test]
    fn example_file_documents_the_defaults() {
        let example = include_str!("../../node.toml.example");
        let mesh = NodeConfig::parse("node.toml.example", example).map(|c| c.mesh);
        assert_eq!(
            mesh.map_err(|e| e.to_string()),
            Ok(Some(MeshSettings {
                interface: "maki0".into(),
                listen_port: DEFAULT_LISTEN_PORT,
                endpoint: Some("192.0.2.1:51880".into()),
                address_v4: None,
                address_v6: None,
                prefix_v4: DEFAULT_PREFIX_V4,
                prefix_v6: DEFAULT_PREFIX_V6,
                rpc_port: DEFAULT_RPC_PORT,
            }))
        );
    }

    #[test]
    fn addresses_must_lie_in_the_prefixes() {
        let text = "name = \"a\"\n[cluster]\nprefix_v4 = \"198.51.100.0/24\"\nprefix_v6 = \"2001:db8:1::/64\"\naddress_v4 = \"198.51.100.7\"\naddress_v6 = \"2001:db8:1::7\"\n";
        let mesh = mesh_of(text).ok().flatten();
        assert_eq!(
            mesh.map(|m| m.interface_addresses()),
            Some(vec![
                (
                    "198.51.100.7"
                        .parse()
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    24
                ),
                (
                    "2001:db8:1::7"
                        .parse()
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    64
                ),
            ])
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\naddress_v4 = \"192.0.2.1\"\n"),
            Err(
                "node.toml:3:14: cluster.address_v4 192.0.2.1 is outside the mesh prefix 10.88.0.0/16"
                    .into()
            )
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\naddress_v4 = \"10.88.255.255\"\n"),
            Err("node.toml:3:14: cluster.address_v4 10.88.255.255 is the network or broadcast address of 10.88.0.0/16; pick a host address".into())
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\naddress_v6 = \"fd00::1\"\n"),
            Err("node.toml:3:14: cluster.address_v6 fd00::1 is outside the mesh prefix fd6d:616b:6961::/64".into())
        );
    }

    #[test]
    fn bad_values_name_the_fix() {
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\ninterface = \"much-too-long-name\"\n"),
            Err("node.toml:3:13: interface name \"much-too-long-name\" must be 1 to 15 characters, e.g. \"maki0\"".into())
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\ninterface = \"ma/ki\"\n"),
            Err("node.toml:3:13: interface name \"ma/ki\" contains '/'; use letters, digits and _ - . = +".into())
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\nlisten_port = 70000\n"),
            Err("node.toml:3:15: cluster.listen_port 70000 is not a port; use 1 to 65535 (the default is 51880)".into())
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\nprefix_v4 = \"10.88.1.0/16\"\n"),
            Err("node.toml:3:13: cluster.prefix_v4 \"10.88.1.0/16\" has host bits set; write \"10.88.0.0/16\"".into())
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\nprefix_v6 = \"10.0.0.0/8\"\n"),
            Err("node.toml:3:13: cluster.prefix_v6 \"10.0.0.0/8\" is an IPv4 prefix; put it in prefix_v4".into())
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\nendpoint = \"2001:db8::1:51880\"\n"),
            Err("node.toml:3:12: cluster.endpoint \"2001:db8::1:51880\" is not a valid address (IPv6 needs brackets); write HOST:PORT, e.g. \"192.0.2.1:51880\" or \"[2001:db8::1]:51880\"".into())
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\nendpoint = \"node.example.com:51880\"\n")
                .map(|m| m.and_then(|m| m.endpoint)),
            Ok(Some("node.example.com:51880".into()))
        );
        assert_eq!(
            mesh_of("name = \"a\"\n[cluster]\nseeed = 1\n"),
            Err("node.toml:3:1: unknown field \"seeed\", expected one of \"join\", \"join_token\", \"join_token_file\", \"interface\", \"listen_port\", \"endpoint\", \"address_v4\", \"address_v6\", \"prefix_v4\", \"prefix_v6\", \"rpc_port\", \"rpc_listen\"".into())
        );
    }
}
