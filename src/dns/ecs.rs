//! EDNS Client Subnet (RFC 7871): which address to locate a query by, and
//! the option echoed back with the scope the answer is valid for.

use std::net::IpAddr;

use hickory_proto::op::Edns;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};

/// Why an ECS option is malformed (answered with FORMERR, RFC 7871 §7.1.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    #[error("source prefix {0} is longer than the address")]
    PrefixTooLong(u8),
    #[error("address bits beyond the source prefix are set")]
    BitsBeyondPrefix,
    #[error("the scope prefix of a query must be 0")]
    ScopeInQuery,
}

/// The client subnet a query carries, checked.
pub fn client_subnet(edns: Option<&Edns>) -> Result<Option<ClientSubnet>, EcsError> {
    let Some(EdnsOption::Subnet(subnet)) = edns.and_then(|e| e.option(EdnsCode::Subnet)) else {
        return Ok(None);
    };
    check(*subnet).map(Some)
}

/// `subnet` if it is well formed as a query's client subnet.
pub fn check(subnet: ClientSubnet) -> Result<ClientSubnet, EcsError> {
    let bits = match subnet.addr() {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let source = subnet.source_prefix();
    if source > bits {
        return Err(EcsError::PrefixTooLong(source));
    }
    if subnet.scope_prefix() != 0 {
        return Err(EcsError::ScopeInQuery);
    }
    if mask(subnet.addr(), source) != subnet.addr() {
        return Err(EcsError::BitsBeyondPrefix);
    }
    Ok(subnet)
}

/// The address to locate: the subnet's when it names one (a source prefix
/// of 0 means the client asked for its address not to be used), else the
/// packet's source.
pub fn locating_address(subnet: Option<&ClientSubnet>, source: IpAddr) -> IpAddr {
    match subnet {
        Some(s) if s.source_prefix() > 0 => s.addr(),
        _ => source,
    }
}

/// The option for the response: the query's family, source prefix and
/// address, with `scope` (0 when the answer does not depend on the
/// address, RFC 7871 §7.2.1).
pub fn response_option(query: &ClientSubnet, scope: u8) -> EdnsOption {
    let scope = if query.source_prefix() == 0 { 0 } else { scope };
    EdnsOption::Subnet(ClientSubnet::new(
        query.addr(),
        query.source_prefix(),
        scope,
    ))
}

/// `ip` with every bit after `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edns_with(subnet: ClientSubnet) -> Edns {
        let mut edns = Edns::new();
        edns.options_mut().insert(EdnsOption::Subnet(subnet));
        edns
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn a_well_formed_subnet_is_used_for_location() {
        let edns = edns_with(ClientSubnet::new(ip("175.16.199.0"), 24, 0));
        let subnet = client_subnet(Some(&edns)).ok().flatten();
        assert_eq!(
            locating_address(subnet.as_ref(), ip("127.0.0.1")),
            ip("175.16.199.0")
        );
        assert_eq!(client_subnet(None), Ok(None));
        assert_eq!(client_subnet(Some(&Edns::new())), Ok(None));
    }

    #[test]
    fn a_zero_source_prefix_means_the_packet_source() {
        let subnet = ClientSubnet::new(ip("0.0.0.0"), 0, 0);
        assert_eq!(
            locating_address(Some(&subnet), ip("192.0.2.7")),
            ip("192.0.2.7")
        );
        assert_eq!(
            response_option(&subnet, 24),
            EdnsOption::Subnet(ClientSubnet::new(ip("0.0.0.0"), 0, 0))
        );
    }

    #[test]
    fn malformed_subnets_are_rejected() {
        let bits = edns_with(ClientSubnet::new(ip("175.16.199.1"), 24, 0));
        assert_eq!(client_subnet(Some(&bits)), Err(EcsError::BitsBeyondPrefix));
        let scope = edns_with(ClientSubnet::new(ip("175.16.199.0"), 24, 8));
        assert_eq!(client_subnet(Some(&scope)), Err(EcsError::ScopeInQuery));
        let v6 = edns_with(ClientSubnet::new(ip("2001:218::"), 32, 0));
        assert!(client_subnet(Some(&v6)).is_ok());
    }
}
