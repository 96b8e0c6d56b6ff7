//! Which case a host is in: its public address on one of its interfaces,
//! or behind 1:1 NAT (the provider forwards the public address to a
//! private one, as on AWS, GCP and Oracle Cloud). `maki machine` runs
//! `ip -o addr show` on the host over SSH and compares it with the public
//! address it detected; a node behind NAT keeps `ipv4` as the public
//! address and answers on its local ones.

use std::net::IpAddr;

/// How a host holds its public address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// The public address is on an interface.
    Direct,
    /// It is on none; these are the host's global addresses instead.
    BehindNat { local: Vec<IpAddr> },
}

/// Classifies a host from its `ip -o addr show` output and its public
/// address.
pub fn classify(ip_addr_output: &str, public: IpAddr) -> Addressing {
    let local = addresses(ip_addr_output);
    if local.contains(&public) {
        Addressing::Direct
    } else {
        Addressing::BehindNat {
            local: local
                .into_iter()
                .filter(|ip| !ip.is_loopback() && !is_link_local(ip))
                .collect(),
        }
    }
}

/// Every address in `ip -o addr show` output, whose lines read
/// `2: eth0    inet 10.0.0.5/24 brd … scope global eth0`.
pub fn addresses(ip_addr_output: &str) -> Vec<IpAddr> {
    ip_addr_output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            let cidr = words.next()?;
            cidr.split('/').next()?.parse().ok()
        })
        .collect()
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUD: &str = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever
2: ens5    inet 172.31.5.9/20 metric 100 brd 172.31.15.255 scope global dynamic ens5\\       valid_lft 3011sec preferred_lft 3011sec
2: ens5    inet6 fe80::8ff:feff:fe00:1/64 scope link \\       valid_lft forever preferred_lft forever
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn a_cloud_host_without_its_public_address_is_behind_nat() {
        assert_eq!(
            classify(CLOUD, ip("203.0.113.7")),
            Addressing::BehindNat {
                local: vec![ip("172.31.5.9")]
            }
        );
        assert_eq!(classify(CLOUD, ip("172.31.5.9")), Addressing::Direct);
        assert_eq!(addresses(CLOUD).len(), 4);
    }

    #[test]
    fn the_real_ip_output_of_this_host_parses() {
        let Ok(out) = std::process::Command::new("ip")
            .args(["-o", "addr", "show"])
            .output()
        else {
            panic!("this test runs `ip` (iproute2)");
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            classify(&text, ip("127.0.0.1")),
            Addressing::Direct,
            "{text}"
        );
    }
}
