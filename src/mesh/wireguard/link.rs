//! The TUN interface as the kernel sees it: created with its IPv4 address,
//! MTU and up flag (through the `tun` crate's ioctls), then given its IPv6
//! address. Each address carries the mesh prefix length, so the kernel's
//! connected route sends the whole mesh prefix, and nothing else, into the
//! interface. No `ip` binary is involved.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{FromRawFd, OwnedFd};

use super::WireGuardError;

/// WireGuard's usual MTU: 1500 less the outer IPv6 + UDP + WireGuard
/// headers (80 bytes), so tunnelled packets fit an ordinary Ethernet path.
pub const MTU: u16 = 1420;

/// Creates the TUN interface `name` with `addresses` (address, prefix
/// length), MTU [`MTU`], and brings it up.
pub fn create(name: &str, addresses: &[(IpAddr, u8)]) -> Result<tun::AsyncDevice, WireGuardError> {
    let mut config = tun::Configuration::default();
    config.tun_name(name).mtu(MTU).up();
    let v4: Vec<(Ipv4Addr, u8)> = addresses
        .iter()
        .filter_map(|(ip, len)| match ip {
            IpAddr::V4(v4) => Some((*v4, *len)),
            IpAddr::V6(_) => None,
        })
        .collect();
    if v4.len() > 1 {
        return Err(WireGuardError::Address {
            interface: name.to_string(),
            address: format!("{}/{}", v4[1].0, v4[1].1),
            source: "a mesh interface takes one IPv4 address".into(),
        });
    }
    if let Some((ip, len)) = v4.first() {
        check_prefix(name, IpAddr::V4(*ip), *len)?;
        config.address(*ip).netmask(v4_netmask(*len));
    }
    let device = tun::create_as_async(&config).map_err(|e| WireGuardError::Tun {
        interface: name.to_string(),
        source: e.into(),
    })?;
    for (ip, len) in addresses {
        if let IpAddr::V6(v6) = ip {
            check_prefix(name, *ip, *len)?;
            add_v6(name, *v6, *len).map_err(|e| WireGuardError::Address {
                interface: name.to_string(),
                address: format!("{v6}/{len}"),
                source: e.into(),
            })?;
        }
    }
    Ok(device)
}

fn check_prefix(name: &str, ip: IpAddr, len: u8) -> Result<(), WireGuardError> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(WireGuardError::Address {
            interface: name.to_string(),
            address: format!("{ip}/{len}"),
            source: format!("the prefix length must be at most {max}").into(),
        });
    }
    Ok(())
}

/// The IPv4 netmask of a prefix length (at most 32).
pub fn v4_netmask(len: u8) -> Ipv4Addr {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits)
}

/// Whether `ip` lies inside `network/len`.
pub fn contains(network: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (network, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::from(v4_netmask(len));
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// `struct in6_ifreq` from `<linux/ipv6.h>`.
#[repr(C)]
struct In6Ifreq {
    addr: libc::in6_addr,
    prefixlen: u32,
    ifindex: libc::c_int,
}

/// Adds `ip/len` to interface `name` (`SIOCSIFADDR` on an IPv6 socket),
/// which also installs the prefix route.
fn add_v6(name: &str, ip: Ipv6Addr, len: u8) -> std::io::Result<()> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in name"))?;
    // SAFETY: `cname` is a valid NUL-terminated string for the call.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor this function alone owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let request = In6Ifreq {
        addr: libc::in6_addr {
            s6_addr: ip.octets(),
        },
        prefixlen: u32::from(len),
        ifindex: libc::c_int::try_from(ifindex).unwrap_or(libc::c_int::MAX),
    };
    // SAFETY: SIOCSIFADDR on an AF_INET6 socket reads one `in6_ifreq`,
    // which `request` is, laid out as the kernel expects (repr(C)).
    let rc = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::SIOCSIFADDR as _,
            &request as *const In6Ifreq,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks_and_containment() {
        assert_eq!(v4_netmask(16), Ipv4Addr::new(255, 255, 0, 0));
        assert_eq!(v4_netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(v4_netmask(32), Ipv4Addr::new(255, 255, 255, 255));
        let net: IpAddr = "198.51.100.0"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(contains(net, 24, "198.51.100.7".parse().unwrap_or(net)));
        assert!(!contains(
            net,
            24,
            IpAddr::V4(Ipv4Addr::new(198, 51, 101, 7))
        ));
        let v6: IpAddr = "2001:db8:1::".parse().unwrap_or(net);
        assert!(contains(v6, 64, "2001:db8:1::9".parse().unwrap_or(net)));
        assert!(!contains(v6, 64, "2001:db8:2::9".parse().unwrap_or(net)));
        assert!(!contains(v6, 64, net));
    }
}
