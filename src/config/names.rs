//! Names that end up in DNS: hosted domains and aliases, record names, node
//! names. Checked here so DNS and TLS never see a name they cannot serve.

use std::net::IpAddr;

/// Checks a host name (RFC 1123) and returns it lowercase, without a trailing
/// dot. Single-label names such as `localhost` are allowed for local use.
/// `what` names the field in messages ("domain name", "alias").
pub(super) fn host_name(raw: &str, what: &str) -> Result<String, String> {
    let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!(
            "{what} is empty; write a name such as \"example.com\""
        ));
    }
    if !name.is_ascii() {
        return Err(format!(
            "{what} {raw:?} contains non-ASCII characters; write internationalised names in their \"xn--\" form"
        ));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "{what} {raw:?} is an IP address; write a domain name such as \"example.com\""
        ));
    }
    if name.len() > 253 {
        return Err(format!(
            "{what} {raw:?} is {} characters long; the limit is 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        label_ok(label).map_err(|why| format!("{what} {raw:?} is not a valid host name: {why}"))?;
    }
    Ok(name)
}

/// An RFC 1123 label: letters, digits and inner hyphens, 1 to 63 characters.
fn label_ok(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label (two dots in a row, or a leading dot)".into());
    }
    if label.len() > 63 {
        return Err(format!("label {label:?} is longer than 63 characters"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(format!(
            "{c:?} is not allowed; use letters, digits and \"-\""
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label {label:?} starts or ends with \"-\""));
    }
    Ok(())
}

/// Checks a record name relative to its domain (`@`, `www`, `_dmarc`,
/// `*.preview`) and returns it lowercase.
pub(super) fn record_name(raw: &str, domain: &str) -> Result<String, String> {
    let name = raw.to_ascii_lowercase();
    if name == "@" {
        return Ok(name);
    }
    if name.is_empty() {
        return Err("record name is empty; use \"@\" for the domain itself".into());
    }
    if name.ends_with('.') {
        return Err(format!(
            "record name {raw:?} must be relative to the domain, without a trailing dot: write {:?}",
            relative_hint(name.trim_end_matches('.'), domain)
        ));
    }
    if name == domain || name.ends_with(&format!(".{domain}")) {
        return Err(format!(
            "record name {raw:?} repeats the domain; names are relative to it: write {:?}",
            relative_hint(&name, domain)
        ));
    }
    for (i, label) in name.split('.').enumerate() {
        if i == 0 && label == "*" {
            continue;
        }
        if label.is_empty() {
            return Err(format!("record name {raw:?} has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "record name {raw:?} has a label longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "record name {raw:?} contains {c:?}; use letters, digits, \"-\" and \"_\" (or \"@\" for the domain itself)"
            ));
        }
    }
    if name.len() + 1 + domain.len() > 253 {
        return Err(format!(
            "record name {raw:?} makes the full name longer than 253 characters"
        ));
    }
    Ok(name)
}

/// Checks the target of a CNAME, NS, MX or SRV record: an absolute name,
/// lowercase, without the trailing dot. Underscores are allowed because real
/// targets use them (`s1._domainkey.mail.example`); `.` means "no target".
pub(super) fn target_name(raw: &str, what: &str) -> Result<String, String> {
    if raw == "." {
        return Ok(raw.to_string());
    }
    let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!(
            "{what} is empty; write a host name such as \"mail.example.com\""
        ));
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "{what} {raw:?} is an IP address; it must be a host name (point that name at the address with an A or AAAA record)"
        ));
    }
    if name.len() > 253 {
        return Err(format!("{what} {raw:?} is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "{what} {raw:?} has an empty label or one longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "{what} {raw:?} contains {c:?}; write a host name such as \"mail.example.com\""
            ));
        }
    }
    Ok(name)
}

/// What a user who wrote an absolute name should write instead.
fn relative_hint(absolute: &str, domain: &str) -> String {
    if absolute == domain {
        "@".into()
    } else {
        absolute
            .strip_suffix(&format!(".{domain}"))
            .unwrap_or(absolute)
            .to_string()
    }
}

/// Checks a node name: `[a-z0-9-]{1,63}`, not starting or ending with `-`
/// (it becomes a DNS label, `<node>.ns.<domain>`).
pub(super) fn node_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err(
            "node name is empty; use lowercase letters, digits and \"-\", e.g. \"london\"".into(),
        );
    }
    if raw.len() > 63 {
        return Err(format!("node name {raw:?} is longer than 63 characters"));
    }
    if raw.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "node name {raw:?} must be lowercase: write {:?}",
            raw.to_ascii_lowercase()
        ));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "node name {raw:?} contains {c:?}; use lowercase letters, digits and \"-\""
        ));
    }
    if raw.starts_with('-') || raw.ends_with('-') {
        return Err(format!(
            "node name {raw:?} must not start or end with \"-\" (it is used as a DNS label)"
        ));
    }
    Ok(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_lowercased_and_checked() {
        assert_eq!(
            host_name("Example.COM.", "domain name").as_deref(),
            Ok("example.com")
        );
        assert_eq!(
            host_name("localhost", "domain name").as_deref(),
            Ok("localhost")
        );
        assert_eq!(
            host_name("xn--bcher-kva.example", "alias").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        assert_eq!(
            host_name("exa_mple.com", "domain name"),
            Err("domain name \"exa_mple.com\" is not a valid host name: '_' is not allowed; use letters, digits and \"-\"".into())
        );
        assert_eq!(
            host_name("-a.com", "alias"),
            Err(
                "alias \"-a.com\" is not a valid host name: label \"-a\" starts or ends with \"-\""
                    .into()
            )
        );
        assert_eq!(
            host_name("a..com", "alias"),
            Err("alias \"a..com\" is not a valid host name: it has an empty label (two dots in a row, or a leading dot)".into())
        );
        assert_eq!(
            host_name("192.0.2.1", "alias"),
            Err(
                "alias \"192.0.2.1\" is an IP address; write a domain name such as \"example.com\""
                    .into()
            )
        );
        assert_eq!(
            host_name("bücher.example", "alias"),
            Err("alias \"bücher.example\" contains non-ASCII characters; write internationalised names in their \"xn--\" form".into())
        );
        let label = "a".repeat(63);
        let long = format!("{label}.{label}.{label}.{label}.com");
        assert_eq!(
            host_name(&long, "domain name"),
            Err(format!(
                "domain name {long:?} is 259 characters long; the limit is 253"
            ))
        );
        let label = "a".repeat(64);
        assert!(host_name(&format!("{label}.com"), "alias").is_err());
    }

    #[test]
    fn record_names_are_relative() {
        assert_eq!(record_name("@", "example.com").as_deref(), Ok("@"));
        assert_eq!(
            record_name("_DMARC", "example.com").as_deref(),
            Ok("_dmarc")
        );
        assert_eq!(
            record_name("*.preview", "example.com").as_deref(),
            Ok("*.preview")
        );
        assert_eq!(
            record_name("www.example.com.", "example.com"),
            Err("record name \"www.example.com.\" must be relative to the domain, without a trailing dot: write \"www\"".into())
        );
        assert_eq!(
            record_name("example.com", "example.com"),
            Err("record name \"example.com\" repeats the domain; names are relative to it: write \"@\"".into())
        );
        assert_eq!(
            record_name("a b", "example.com"),
            Err("record name \"a b\" contains ' '; use letters, digits, \"-\" and \"_\" (or \"@\" for the domain itself)".into())
        );
        assert!(record_name("a.*", "example.com").is_err());
    }

    #[test]
    fn node_names_are_dns_labels() {
        assert_eq!(node_name("tokyo-2").as_deref(), Ok("tokyo-2"));
        assert_eq!(
            node_name("London"),
            Err("node name \"London\" must be lowercase: write \"london\"".into())
        );
        assert!(node_name("").is_err());
        assert!(node_name("-a").is_err());
        assert!(node_name("a_b").is_err());
        assert!(node_name(&"a".repeat(64)).is_err());
    }
}
