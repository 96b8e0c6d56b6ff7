//! Where a node answers joins. The public address when it is one of the
//! host's own; else (a cloud host behind 1:1 NAT, whose provider forwards
//! the public address to a private one) every local IPv4 address outside
//! the mesh: listen locally, advertise the public address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The addresses the join listener binds: `public` if it is in `local`,
/// else every address of `local` that is not loopback and not inside the
/// mesh prefix (the mesh RPC listener holds those at this port).
pub fn join_listen_addrs(
    public: Ipv4Addr,
    port: u16,
    local: &[IpAddr],
    mesh_prefix: (Ipv4Addr, u8),
) -> Vec<SocketAddr> {
    if local.contains(&IpAddr::V4(public)) {
        return vec![SocketAddr::from((public, port))];
    }
    local
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) if !v4.is_loopback() && !in_prefix(*v4, mesh_prefix) => {
                Some(SocketAddr::from((*v4, port)))
            }
            _ => None,
        })
        .collect()
}

fn in_prefix(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

/// Every address on the host's interfaces (`getifaddrs`).
pub fn local_addresses() -> io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points at a sockaddr whose family says
            // which struct it is.
            match i32::from(unsafe { (*entry.ifa_addr).sa_family }) {
                libc::AF_INET => {
                    let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                    found.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))));
                }
                libc::AF_INET6 => {
                    let sin6 = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in6) };
                    found.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                }
                _ => {}
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESH: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 88, 0, 0), 16);

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().filter_map(|s| s.parse().ok()).collect()
    }

    #[test]
    fn a_public_address_on_the_host_is_the_only_one_bound() {
        let local = ips(&["127.0.0.1", "203.0.113.5", "10.88.0.1"]);
        assert_eq!(
            join_listen_addrs(Ipv4Addr::new(203, 0, 113, 5), 7070, &local, MESH),
            vec![SocketAddr::from(([203, 0, 113, 5], 7070))]
        );
    }

    #[test]
    fn behind_nat_every_local_address_outside_the_mesh_is_bound() {
        let local = ips(&["127.0.0.1", "198.51.100.10", "10.88.0.1", "fe80::1"]);
        assert_eq!(
            join_listen_addrs(Ipv4Addr::new(203, 0, 113, 5), 7070, &local, MESH),
            vec![SocketAddr::from(([198, 51, 100, 10], 7070))]
        );
    }

    #[test]
    fn this_host_has_a_loopback_address() {
        let local = local_addresses().unwrap_or_default();
        assert!(
            local.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{local:?}"
        );
    }
}
