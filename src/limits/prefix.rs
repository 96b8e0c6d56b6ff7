//! The key a client is limited under: its address cut to a prefix, so one
//! host cannot escape a limit by cycling through the addresses of its own
//! network (IPv6 hosts usually hold a whole /64).

use std::net::IpAddr;

/// `ip` with every bit past `v4` (IPv4) or `v6` (IPv6) prefix bits cleared,
/// as one number (IPv4 addresses are mapped into IPv6 so both share a
/// space). Prefix lengths above the address size keep the whole address.
pub fn client_key(ip: IpAddr, v4: u8, v6: u8) -> u128 {
    match ip {
        IpAddr::V4(v) => {
            let bits = u32::from(v);
            let kept = mask32(bits, v4);
            // The IPv4-mapped range ::ffff:0:0/96.
            (0xffff_u128 << 32) | u128::from(kept)
        }
        IpAddr::V6(v) => {
            if let Some(mapped) = v.to_ipv4_mapped() {
                return client_key(IpAddr::V4(mapped), v4, v6);
            }
            mask128(u128::from(v), v6)
        }
    }
}

fn mask32(bits: u32, len: u8) -> u32 {
    match len {
        0 => 0,
        1..=31 => bits & (u32::MAX << (32 - u32::from(len))),
        _ => bits,
    }
}

fn mask128(bits: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        1..=127 => bits & (u128::MAX << (128 - u32::from(len))),
        _ => bits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn addresses_in_one_prefix_share_a_key() {
        assert_eq!(
            client_key(ip("198.51.100.7"), 24, 56),
            client_key(ip("198.51.100.200"), 24, 56)
        );
        assert_ne!(
            client_key(ip("198.51.100.7"), 24, 56),
            client_key(ip("198.51.101.7"), 24, 56)
        );
        assert_eq!(
            client_key(ip("2001:db8:0:1::1"), 24, 56),
            client_key(ip("2001:db8:0:ff::2"), 24, 56)
        );
        assert_ne!(
            client_key(ip("2001:db8:0:100::1"), 24, 56),
            client_key(ip("2001:db8:0:200::1"), 24, 56)
        );
    }

    #[test]
    fn mapped_addresses_are_their_ipv4_address() {
        assert_eq!(
            client_key(ip("::ffff:198.51.100.7"), 24, 56),
            client_key(ip("198.51.100.9"), 24, 56)
        );
    }

    #[test]
    fn full_length_keeps_the_address() {
        assert_ne!(
            client_key(ip("198.51.100.7"), 32, 128),
            client_key(ip("198.51.100.8"), 32, 128)
        );
        assert_eq!(
            client_key(ip("198.51.100.7"), 0, 0),
            client_key(ip("203.0.113.1"), 0, 0)
        );
    }
}
