//! The registrar steps for delegating a domain to the cluster: glue for
//! each `<node>.ns.<domain>`, the NS list, and `dig` commands to check.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::store::NodeRow;

/// The text `maki dns setup` prints for `domain`, given the cluster's nodes.
pub fn registrar_steps(domain: &str, nodes: &[NodeRow]) -> String {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let servers: Vec<&NodeRow> = nodes
        .iter()
        .filter(|n| n.place.ipv4.is_some() || n.place.ipv6.is_some())
        .collect();
    let mut out = String::new();
    let _ = writeln!(out, "Delegating {domain} to this cluster\n");
    if servers.is_empty() {
        let _ = writeln!(
            out,
            "No node has an address yet: set ipv4 (and ipv6) in each node.toml, then run this again."
        );
        return out;
    }
    let width = servers
        .iter()
        .map(|n| n.place.name.len() + ".ns.".len() + domain.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "1. At the registrar of {domain}, create these glue records\n   (often called \"child name servers\", \"host records\" or \"register name servers\"):\n"
    );
    for node in &servers {
        let host = format!("{}.ns.{domain}", node.place.name);
        if let Some(ip) = &node.place.ipv4 {
            let _ = writeln!(out, "   {host:<width$}  A     {ip}");
        }
        if let Some(ip) = &node.place.ipv6 {
            let _ = writeln!(out, "   {host:<width$}  AAAA  {ip}");
        }
    }
    let _ = writeln!(
        out,
        "\n2. Set the name servers of {domain} to exactly these, replacing the registrar's:\n"
    );
    for node in &servers {
        let _ = writeln!(out, "   {}.ns.{domain}", node.place.name);
    }
    let _ = writeln!(
        out,
        "\n3. Check each node answers now (AA flag, the records above):\n"
    );
    for node in &servers {
        let ip = (node.place.ipv4.map(IpAddr::V4))
            .or(node.place.ipv6.map(IpAddr::V6))
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let _ = writeln!(out, "   dig +norecurse NS {domain} @{ip}");
    }
    let _ = writeln!(
        out,
        "\n   and, once the registry publishes the change (minutes to 48 hours),\n   that the world sees the delegation:\n\n   dig +trace NS {domain}\n   dig A {domain}"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodePlace;

    #[test]
    fn steps_list_glue_name_servers_and_checks() {
        let nodes = [
            NodeRow {
                place: NodePlace {
                    name: "london".into(),
                    ipv4: "192.0.2.1".parse().ok(),
                    ipv6: "2001:db8::1".parse().ok(),
                    latitude: None,
                    longitude: None,
                },
                healthy: true,
            },
            NodeRow {
                place: NodePlace {
                    name: "tokyo".into(),
                    ipv4: "203.0.113.1".parse().ok(),
                    ipv6: None,
                    latitude: None,
                    longitude: None,
                },
                healthy: false,
            },
        ];
        let text = registrar_steps("Example.com.", &nodes);
        assert!(text.contains("   london.ns.example.com  A     192.0.2.1\n"));
        assert!(text.contains("   london.ns.example.com  AAAA  2001:db8::1\n"));
        assert!(text.contains("   tokyo.ns.example.com   A     203.0.113.1\n"));
        assert!(text.contains("\n   tokyo.ns.example.com\n"));
        assert!(text.contains("dig +norecurse NS example.com @203.0.113.1"));
        assert!(registrar_steps("example.com", &[]).contains("No node has an address"));
    }
}
