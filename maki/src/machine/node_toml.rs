//! The node.toml `maki machine` writes: the format `makiatto run` reads
//! (`node.toml.example` documents every field). Rendered from a
//! [`NodeSpec`] alone, so running `init` or `add` again renders the same
//! bytes and the host's file is left as it is.

use std::net::IpAddr;

use super::paths;

/// Everything that goes into one node's node.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    /// The public addresses DNS gives out (behind 1:1 NAT: the public
    /// one, which is on no interface).
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub coordinates: Option<(f64, f64)>,
    /// The operator's public key, authorised for git and admin commands.
    pub operator_key: String,
    /// Whether [`paths::GEOIP`] is there for DNS to locate clients.
    pub geoip: bool,
    /// The mesh prefixes, when not the defaults.
    pub prefix_v4: Option<String>,
    pub prefix_v6: Option<String>,
    /// The first node places itself: its mesh addresses.
    pub mesh_addresses: Option<(String, String)>,
    /// A joining node: the `[cluster]` lines `join-token` printed.
    pub join: Option<Join>,
}

/// How a new node joins: the address and one-time token of a node in the
/// cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    pub address: String,
    pub token: String,
}

impl Join {
    /// Reads `join = "…"` and `join_token = "…"` from `join-token`'s
    /// output, or from a node.toml that has them.
    pub fn from_lines(text: &str) -> Option<Join> {
        let value = |key: &str| {
            text.lines().find_map(|l| {
                let (k, v) = l.split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        Some(Join {
            address: value("join")?,
            token: value("join_token")?,
        })
    }
}

/// A TOML basic string (the key and names only hold printable ASCII, but a
/// comment in a key may hold anything).
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl NodeSpec {
    /// The node.toml text.
    pub fn render(&self) -> String {
        let mut t =
            String::from("# Written by `maki machine`; running it again rewrites this file.\n");
        t += &format!("name = {}\n", quoted(&self.name));
        t += &format!("data_dir = {}\n", quoted(paths::DATA));
        if let Some(ip) = self.ipv4 {
            t += &format!("ipv4 = \"{ip}\"\n");
        }
        if let Some(ip) = self.ipv6 {
            t += &format!("ipv6 = \"{ip}\"\n");
        }
        if let Some((lat, lon)) = self.coordinates {
            t += &format!("latitude = {lat}\nlongitude = {lon}\n");
        }
        t += "\n[http]\nlisten = \"0.0.0.0:80\"\n";
        t += "\n[dns]\nlisten = \"0.0.0.0:53\"\n";
        if self.geoip {
            t += &format!("geoip_db = {}\n", quoted(paths::GEOIP));
        }
        t += "\n[ssh]\nlisten = \"0.0.0.0:2222\"\n";
        t += &format!("authorized_keys = [{}]\n", quoted(self.operator_key.trim()));
        t += "\n[mesh]\n";
        if let Some(p) = &self.prefix_v4 {
            t += &format!("prefix_v4 = {}\n", quoted(p));
        }
        if let Some(p) = &self.prefix_v6 {
            t += &format!("prefix_v6 = {}\n", quoted(p));
        }
        if let Some((v4, v6)) = &self.mesh_addresses {
            t += &format!("address_v4 = {}\naddress_v6 = {}\n", quoted(v4), quoted(v6));
        }
        t += "\n[cluster]\n";
        if let Some(join) = &self.join {
            t += &format!(
                "join = {}\njoin_token = {}\n",
                quoted(&join.address),
                quoted(&join.token)
            );
        }
        t
    }
}

/// The mesh addresses of a cluster's first node: the first host of each
/// prefix (`10.88.0.0/16` gives `10.88.0.1`), defaults when not given.
pub fn first_addresses(
    prefix_v4: Option<&str>,
    prefix_v6: Option<&str>,
) -> Result<(String, String), String> {
    let v4 = prefix_v4.unwrap_or("10.88.0.0/16");
    let v6 = prefix_v6.unwrap_or("fd6d:616b:6961::/64");
    let net = |p: &str| -> Result<IpAddr, String> {
        p.split_once('/')
            .and_then(|(a, _)| a.parse().ok())
            .ok_or_else(|| format!("{p:?} is not a prefix: write it as ADDRESS/LENGTH"))
    };
    let first = match net(v4)? {
        IpAddr::V4(a) => std::net::Ipv4Addr::from(u32::from(a) + 1).to_string(),
        IpAddr::V6(_) => return Err(format!("{v4:?} is not an IPv4 prefix")),
    };
    let second = match net(v6)? {
        IpAddr::V6(a) => std::net::Ipv6Addr::from(u128::from(a) + 1).to_string(),
        IpAddr::V4(_) => return Err(format!("{v6:?} is not an IPv6 prefix")),
    };
    Ok((first, second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_lines_are_read_from_join_token_output() {
        let out = "mkj_abc\n# valid once\n[cluster]\njoin = \"203.0.113.1:7070\"\njoin_token = \"mkj_abc\"\n";
        assert_eq!(
            Join::from_lines(out),
            Some(Join {
                address: "203.0.113.1:7070".into(),
                token: "mkj_abc".into()
            })
        );
        assert_eq!(Join::from_lines("name = \"x\"\n"), None);
    }

    #[test]
    fn the_first_node_takes_the_first_host_of_each_prefix() {
        assert_eq!(
            first_addresses(None, None).unwrap(),
            ("10.88.0.1".into(), "fd6d:616b:6961::1".into())
        );
        assert!(first_addresses(Some("nonsense"), None).is_err());
    }

    #[test]
    fn a_spec_renders_the_same_text_every_time() {
        let spec = NodeSpec {
            name: "london".into(),
            ipv4: Some("203.0.113.1".parse().unwrap()),
            ipv6: None,
            coordinates: Some((51.5, -0.12)),
            operator_key: "ssh-ed25519 AAAA me@\"laptop\"\n".into(),
            geoip: true,
            prefix_v4: None,
            prefix_v6: None,
            mesh_addresses: Some(("10.88.0.1".into(), "fd6d:616b:6961::1".into())),
            join: None,
        };
        let text = spec.render();
        assert_eq!(text, spec.render());
        assert!(
            text.contains("authorized_keys = [\"ssh-ed25519 AAAA me@\\\"laptop\\\"\"]"),
            "{text}"
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(parsed["latitude"].as_float(), Some(51.5));
    }
}
