//! Mesh addresses handed out at join: the lowest free host of the mesh's
//! IPv4 prefix and of its ULA IPv6 prefix, so addresses stay inside the
//! prefixes the kernel routes into the tunnel and a removed node's address
//! is reused before the prefix grows.
//!
//! Pure: the caller passes the prefixes and the addresses in use.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The mesh prefixes of this cluster, as `[cluster]` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefixes {
    pub v4: (Ipv4Addr, u8),
    pub v6: (Ipv6Addr, u8),
}

/// Why no address could be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error(
        "the mesh prefix {prefix} is full: every host address is taken by a node; widen [cluster] {field} on every node (or remove nodes that left with `node remove`)"
    )]
    Full { prefix: String, field: &'static str },
    #[error(
        "mesh address {address:?} is not an address; fix [cluster] {field} on the joining node or leave it out to get one assigned"
    )]
    Unreadable {
        address: String,
        field: &'static str,
    },
    #[error(
        "mesh address {address} is outside the mesh prefix {prefix}; fix [cluster] {field} on the joining node or leave it out to get one assigned"
    )]
    Outside {
        address: String,
        prefix: String,
        field: &'static str,
    },
    #[error(
        "mesh address {address} is already node {holder:?}'s; pick another in [cluster] {field} on the joining node or leave it out to get one assigned"
    )]
    Taken {
        address: String,
        holder: String,
        field: &'static str,
    },
}

/// The lowest IPv4 host of `prefix` that is not in `used`: never the
/// network or the broadcast address.
pub fn lowest_free_v4(prefix: (Ipv4Addr, u8), used: &[Ipv4Addr]) -> Result<Ipv4Addr, AllocError> {
    let used: Vec<u128> = used.iter().map(|a| u128::from(u32::from(*a))).collect();
    lowest_free(u128::from(u32::from(prefix.0)), prefix.1, 32, true, &used)
        // The result lies inside a 32-bit prefix, so it fits in a u32.
        .map(|host| Ipv4Addr::from(host as u32))
        .ok_or_else(|| AllocError::Full {
            prefix: format!("{}/{}", prefix.0, prefix.1),
            field: "prefix_v4",
        })
}

/// The lowest IPv6 host of `prefix` that is not in `used`: never the
/// network (subnet-router anycast) address.
pub fn lowest_free_v6(prefix: (Ipv6Addr, u8), used: &[Ipv6Addr]) -> Result<Ipv6Addr, AllocError> {
    let used: Vec<u128> = used.iter().map(|a| u128::from(*a)).collect();
    lowest_free(u128::from(prefix.0), prefix.1, 128, false, &used)
        .map(Ipv6Addr::from)
        .ok_or_else(|| AllocError::Full {
            prefix: format!("{}/{}", prefix.0, prefix.1),
            field: "prefix_v6",
        })
}

/// The lowest host number h ≥ 1 of the `len`-bit prefix `network` (in a
/// `bits`-bit address space) whose address is not in `used`, skipping the
/// all-ones host when `broadcast` is reserved. Sorting the used hosts makes
/// this O(n log n) even in a /64.
fn lowest_free(network: u128, len: u8, bits: u32, broadcast: bool, used: &[u128]) -> Option<u128> {
    let host_bits = bits.saturating_sub(u32::from(len));
    let last = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let highest = if broadcast {
        last.checked_sub(1)?
    } else {
        last
    };
    let mask = !last;
    let mut hosts: Vec<u128> = used
        .iter()
        .filter(|a| *a & mask == network & mask)
        .map(|a| a & last)
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut candidate: u128 = 1;
    for host in hosts {
        if host < candidate {
            continue;
        }
        if host > candidate {
            break;
        }
        candidate = candidate.checked_add(1)?;
    }
    (candidate <= highest).then_some((network & mask) | candidate)
}

/// Whether `address` lies inside the IPv4 `prefix`.
pub fn inside_v4(prefix: (Ipv4Addr, u8), address: Ipv4Addr) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.1.min(32)))
        .unwrap_or(0);
    u32::from(address) & mask == u32::from(prefix.0) & mask
}

/// Whether `address` lies inside the IPv6 `prefix`.
pub fn inside_v6(prefix: (Ipv6Addr, u8), address: Ipv6Addr) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix.1.min(128)))
        .unwrap_or(0);
    u128::from(address) & mask == u128::from(prefix.0) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Ipv4Addr {
        text.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().unwrap_or(Ipv6Addr::UNSPECIFIED)
    }

    #[test]
    fn the_first_node_gets_the_first_host() {
        assert_eq!(
            lowest_free_v4((v4("198.51.100.0"), 24), &[]),
            Ok(v4("198.51.100.1"))
        );
        assert_eq!(
            lowest_free_v6((v6("2001:db8:1::"), 64), &[]),
            Ok(v6("2001:db8:1::1"))
        );
    }

    #[test]
    fn a_gap_left_by_a_removed_node_is_filled_first() {
        let used = [
            v4("198.51.100.1"),
            v4("198.51.100.3"),
            v4("198.51.100.2"),
            v4("198.51.100.5"),
        ];
        assert_eq!(
            lowest_free_v4((v4("198.51.100.0"), 24), &used),
            Ok(v4("198.51.100.4"))
        );
        let used = [
            v6("2001:db8:1::2"),
            v6("2001:db8:1::1"),
            v6("2001:db8:1::1"),
        ];
        assert_eq!(
            lowest_free_v6((v6("2001:db8:1::"), 64), &used),
            Ok(v6("2001:db8:1::3"))
        );
    }

    #[test]
    fn addresses_outside_the_prefix_neither_count_nor_leak_out() {
        // A member placed by hand in another range, and one at the top of
        // the prefix: highest+1 would have left the prefix.
        let used = [v4("192.0.2.7"), v4("198.51.100.254")];
        assert_eq!(
            lowest_free_v4((v4("198.51.100.0"), 24), &used),
            Ok(v4("198.51.100.1"))
        );
        let used = [v6("2001:db8:2::1"), v6("2001:db8:1::ffff:ffff:ffff:ffff")];
        assert_eq!(
            lowest_free_v6((v6("2001:db8:1::"), 64), &used),
            Ok(v6("2001:db8:1::1"))
        );
    }

    #[test]
    fn a_full_prefix_is_refused_naming_the_fix() {
        // A /30 has two hosts: .1 and .2 (.0 is the network, .3 broadcast).
        let prefix = (v4("198.51.100.0"), 30);
        assert_eq!(
            lowest_free_v4(prefix, &[v4("198.51.100.1")]),
            Ok(v4("198.51.100.2"))
        );
        let full = lowest_free_v4(prefix, &[v4("198.51.100.1"), v4("198.51.100.2")]);
        assert_eq!(
            full.map_err(|e| e.to_string()),
            Err("the mesh prefix 198.51.100.0/30 is full: every host address is taken by a node; widen [cluster] prefix_v4 on every node (or remove nodes that left with `node remove`)".into())
        );
        // IPv6 reserves only the network address: a /127 holds one host.
        let prefix = (v6("2001:db8:1::"), 127);
        assert_eq!(lowest_free_v6(prefix, &[]), Ok(v6("2001:db8:1::1")));
        assert!(matches!(
            lowest_free_v6(prefix, &[v6("2001:db8:1::1")]),
            Err(AllocError::Full {
                field: "prefix_v6",
                ..
            })
        ));
        assert!(lowest_free_v6((v6("2001:db8:1::"), 128), &[]).is_err());
        assert!(lowest_free_v4((v4("198.51.100.1"), 32), &[]).is_err());
        assert!(lowest_free_v4((v4("198.51.100.0"), 31), &[]).is_err());
    }

    #[test]
    fn a_whole_address_space_prefix_does_not_overflow() {
        assert_eq!(
            lowest_free_v6((Ipv6Addr::UNSPECIFIED, 0), &[]),
            Ok(v6("::1"))
        );
        assert_eq!(
            lowest_free_v4((Ipv4Addr::UNSPECIFIED, 0), &[]),
            Ok(v4("0.0.0.1"))
        );
    }

    #[test]
    fn containment() {
        assert!(inside_v4((v4("198.51.100.0"), 24), v4("198.51.100.9")));
        assert!(!inside_v4((v4("198.51.100.0"), 24), v4("198.51.101.9")));
        assert!(inside_v6((v6("2001:db8:1::"), 64), v6("2001:db8:1::9")));
        assert!(!inside_v6((v6("2001:db8:1::"), 64), v6("2001:db8:2::9")));
    }
}
