//! Address fields of `node.toml` (`listen`, `ipv4`, `ipv6`, ...): each is
//! parsed here, so every table reports a bad address the same way, naming
//! the field and an example to copy.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use serde_spanned::Spanned;

use super::ConfigError;
use super::diagnostic::Source;

/// An address and port; `example` is shown in the error (and gives the
/// port of the IPv6 example).
pub(super) fn socket_addr(
    src: Source<'_>,
    raw: &Spanned<String>,
    field: &str,
    example: &str,
) -> Result<SocketAddr, ConfigError> {
    raw.get_ref().parse().map_err(|_| {
        src.at(
            raw.span(),
            format!(
                "{field} {:?} is not an address and port; write e.g. {example:?} (IPv6: \"[::]:{}\")",
                raw.get_ref(),
                example.rsplit(':').next().unwrap_or("80")
            ),
        )
    })
}

/// An optional IPv4 address; an IPv6 one is pointed to the `ipv6` field.
pub(super) fn ipv4(
    src: Source<'_>,
    raw: &Option<Spanned<String>>,
    field: &str,
) -> Result<Option<Ipv4Addr>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    raw.get_ref().parse().map(Some).map_err(|_| {
        let hint = if raw.get_ref().parse::<Ipv6Addr>().is_ok() {
            "it is an IPv6 address; put it in ipv6"
        } else {
            "write one such as \"192.0.2.1\""
        };
        src.at(
            raw.span(),
            format!("{field} {:?} is not an IPv4 address; {hint}", raw.get_ref()),
        )
    })
}

/// An optional IPv6 address; an IPv4 one is pointed to the `ipv4` field.
pub(super) fn ipv6(
    src: Source<'_>,
    raw: &Option<Spanned<String>>,
    field: &str,
) -> Result<Option<Ipv6Addr>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    raw.get_ref().parse().map(Some).map_err(|_| {
        let hint = if raw.get_ref().parse::<Ipv4Addr>().is_ok() {
            "it is an IPv4 address; put it in ipv4"
        } else {
            "write one such as \"2001:db8::1\""
        };
        src.at(
            raw.span(),
            format!("{field} {:?} is not an IPv6 address; {hint}", raw.get_ref()),
        )
    })
}
