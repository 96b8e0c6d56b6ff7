//! Who a request comes from, for rules that depend on it: the client's
//! address (the peer, or behind a trusted proxy the address it forwarded)
//! and the country the GeoIP database puts it in.
//!
//! `X-Forwarded-For` is believed only from peers in `[http]
//! trusted_proxies`, and then read from the right, skipping further trusted
//! proxies: the entries to the left of the first untrusted one were written
//! by the client and prove nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hyper::HeaderMap;
use ipnetwork::IpNetwork;

use crate::dns::geo::GeoIp;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// Locates request clients; one per node, shared by both listeners.
pub struct Locator {
    /// The same database, reloaded on change, that DNS answers from.
    geo: Arc<GeoIp>,
    trusted: Vec<IpNetwork>,
}

impl Locator {
    /// A locator over `geo`, believing `X-Forwarded-For` from `trusted`.
    pub fn new(geo: Arc<GeoIp>, trusted: Vec<IpNetwork>) -> Locator {
        Locator { geo, trusted }
    }

    /// A locator that knows no location and trusts no proxy.
    pub fn none() -> Locator {
        Locator::new(Arc::new(GeoIp::none()), Vec::new())
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// The client's address: `peer`, or behind trusted proxies the last
    /// address they forwarded that is not one of them.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip();
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        // Every X-Forwarded-For line, in order, as one list.
        let forwarded: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for entry in forwarded.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                // Unreadable: nothing left of it can be trusted.
                break;
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }

    /// The ISO country code of the client of a request from `peer`.
    pub fn country(&self, peer: SocketAddr, headers: &HeaderMap) -> Option<[u8; 2]> {
        self.geo.locate(self.client_ip(peer, headers)).country
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port
/// (`198.51.100.7:5000`, `[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|ip| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locator(trusted: &[&str]) -> Locator {
        Locator::new(
            Arc::new(GeoIp::none()),
            trusted
                .iter()
                .map(|n| n.parse().expect("network"))
                .collect(),
        )
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(X_FORWARDED_FOR, v.parse().expect("value"));
        }
        map
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 40000)
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored() {
        let l = locator(&["127.0.0.0/8"]);
        let ip = l.client_ip(peer("198.51.100.9"), &headers(&["81.2.69.142"]));
        assert_eq!(ip, "198.51.100.9".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let l = locator(&["127.0.0.0/8", "203.0.113.0/24"]);
        let ip = l.client_ip(
            peer("127.0.0.1"),
            &headers(&["1.1.1.1, 81.2.69.142", "203.0.113.5:8080"]),
        );
        assert_eq!(ip, "81.2.69.142".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_good_address() {
        let l = locator(&["127.0.0.0/8"]);
        let ip = l.client_ip(peer("127.0.0.1"), &headers(&["81.2.69.142, nonsense"]));
        assert_eq!(ip, "127.0.0.1".parse::<IpAddr>().expect("ip"));
        let ip = l.client_ip(peer("::ffff:127.0.0.1"), &headers(&["[2001:db8::1]:443"]));
        assert_eq!(ip, "2001:db8::1".parse::<IpAddr>().expect("ip"));
    }
}
