//! Response header rules and redirects (`[[domain.headers]]`,
//! `[[domain.redirects]]`): checked here so the HTTP server can compile them
//! once per revision without any failure case.

use std::collections::BTreeMap;

use hyper::header::{HeaderName, HeaderValue};
use serde_spanned::Spanned;

use super::ConfigError;
use super::diagnostic::Source;
use super::raw::{RawHeader, RawRedirect};

/// One `[[domain.headers]]` entry: headers added to responses whose path
/// matches the glob.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderRule {
    /// URL-path glob (`/assets/**`), validated as a glob.
    pub pattern: String,
    /// Header name (lowercase, valid token) → value (valid header value).
    pub values: BTreeMap<String, String>,
}

/// One `[[domain.redirects]]` entry, Netlify-style: `from` may end in `*`
/// (captured as `:splat`) and contain `:name` placeholders; `to` may use both.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    pub from: String,
    pub to: String,
    /// 301, 302, 303, 307, 308 redirect; 200 rewrites (or, to an http(s)
    /// URL, proxies); 404 serves `to` as not found.
    pub status: u16,
}

/// Headers the server computes itself; a rule setting them would corrupt
/// responses rather than decorate them.
const RESERVED_HEADERS: [&str; 8] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Checks one `[[domain.headers]]` rule.
pub(super) fn header_rule(
    src: Source<'_>,
    raw: &Spanned<RawHeader>,
) -> Result<HeaderRule, ConfigError> {
    let table = raw.span();
    let raw = raw.get_ref();
    let Some(pattern) = &raw.pattern else {
        return Err(src.at(
            table,
            "missing field \"for\" in [[domain.headers]]; add the paths it applies to, e.g. for = \"/assets/**\"",
        ));
    };
    url_glob(pattern.get_ref()).map_err(|m| src.at(pattern.span(), m))?;
    let Some(raw_values) = &raw.values else {
        return Err(src.at(
            table,
            "missing field \"values\" in [[domain.headers]]; add the headers to send, e.g. values = { \"cache-control\" = \"no-cache\" }",
        ));
    };
    // Report problems in file order, not in the map's sorted order.
    let mut entries: Vec<_> = raw_values.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for (name, value) in entries {
        let lower = header_name(name.get_ref()).map_err(|m| src.at(name.span(), m))?;
        HeaderValue::from_str(value.get_ref()).map_err(|_| {
            src.at(
                value.span(),
                format!(
                    "header value {:?} is not a valid HTTP header value; use printable ASCII characters and no line breaks",
                    value.get_ref()
                ),
            )
        })?;
        if let Some(line) = first_line.get(&lower) {
            return Err(src.at(
                name.span(),
                format!(
                    "header {lower:?} is set twice in this rule (first at line {line}); header names ignore case, keep one"
                ),
            ));
        }
        first_line.insert(lower.clone(), src.line_of(&name.span()));
        values.insert(lower, value.get_ref().clone());
    }
    Ok(HeaderRule {
        pattern: pattern.get_ref().clone(),
        values,
    })
}

/// Checks a header name and returns it lowercase.
fn header_name(raw: &str) -> Result<String, String> {
    let lower = raw.to_ascii_lowercase();
    if HeaderName::from_bytes(lower.as_bytes()).is_err() {
        return Err(format!(
            "header name {raw:?} is not a valid HTTP header name; use letters, digits and \"-\", e.g. \"cache-control\""
        ));
    }
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(format!(
            "header {lower:?} is managed by the server and cannot be set by a rule; remove it"
        ));
    }
    Ok(lower)
}

/// Checks a URL-path glob (`/assets/**`).
fn url_glob(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err(format!(
            "header pattern {pattern:?} must start with \"/\" (it matches URL paths), e.g. {:?}",
            format!("/{pattern}")
        ));
    }
    glob(pattern)
}

/// Checks a glob's syntax with the same engine the server matches with.
pub(super) fn glob(pattern: &str) -> Result<(), String> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|_| ())
        .map_err(|e| {
            format!(
                "glob {pattern:?} is invalid: {}; use * within a directory, ** across directories, {{a,b}} for alternatives",
                e.kind()
            )
        })
}

/// Status codes a redirect rule may use.
const STATUSES: [i64; 7] = [200, 301, 302, 303, 307, 308, 404];

/// Checks one `[[domain.redirects]]` rule.
pub(super) fn redirect(
    src: Source<'_>,
    raw: &Spanned<RawRedirect>,
) -> Result<Redirect, ConfigError> {
    let table = raw.span();
    let raw = raw.get_ref();
    let Some(from) = &raw.from else {
        return Err(src.at(
            table,
            "missing field \"from\" in [[domain.redirects]]; add the path to match, e.g. from = \"/old/*\"",
        ));
    };
    let Some(to) = &raw.to else {
        return Err(src.at(
            table,
            "missing field \"to\" in [[domain.redirects]]; add where to send it, e.g. to = \"/new/:splat\"",
        ));
    };
    let status = match &raw.status {
        Some(s) => {
            if !STATUSES.contains(s.get_ref()) {
                return Err(src.at(
                    s.span(),
                    format!(
                        "redirect status {} is not supported; use 301, 302, 303, 307 or 308 to redirect, 200 to rewrite, or 404",
                        s.get_ref()
                    ),
                ));
            }
            // The check above keeps it within 200..=404.
            u16::try_from(*s.get_ref()).unwrap_or(301)
        }
        None => 301,
    };
    let from_text = from.get_ref();
    if !from_text.starts_with('/') {
        return Err(src.at(
            from.span(),
            format!(
                "redirect \"from\" {from_text:?} must be a path starting with \"/\", e.g. {:?}",
                format!("/{from_text}")
            ),
        ));
    }
    if let Some(star) = from_text.find('*')
        && star + 1 != from_text.len()
    {
        return Err(src.at(
            from.span(),
            format!("redirect \"from\" {from_text:?} may use \"*\" only as its last character (it becomes :splat)"),
        ));
    }
    let to_text = to.get_ref();
    let is_url = to_text.starts_with("https://") || to_text.starts_with("http://");
    if is_url {
        let host = to_text
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(src.at(
                to.span(),
                format!("redirect \"to\" {to_text:?} has no valid host; write e.g. \"https://example.com/new\""),
            ));
        }
        // Against a bare "/", every `:name` in the host is unbound: the
        // host holds a placeholder (ports, all digits, are not ones).
        if status == 200 && unbound_placeholder("/", host).is_some() {
            return Err(src.at(
                to.span(),
                format!("proxy \"to\" {to_text:?} takes its host from the request; write the backend's host literally, e.g. \"https://api.example.com/:splat\", so a visitor cannot choose the server"),
            ));
        }
        if status == 404 {
            return Err(src.at(
                to.span(),
                "status 404 serves a file from this site, so \"to\" must be a path starting with \"/\", not a URL; use 301, 302, 307 or 308 to send visitors elsewhere, or 200 to proxy to that URL",
            ));
        }
    } else if !to_text.starts_with('/') {
        return Err(src.at(
            to.span(),
            format!("redirect \"to\" {to_text:?} must be a path starting with \"/\" or an http(s):// URL"),
        ));
    }
    if to_text.contains(char::is_whitespace) {
        return Err(src.at(
            to.span(),
            format!("redirect \"to\" {to_text:?} contains whitespace; percent-encode it as %20"),
        ));
    }
    if let Some(name) = unbound_placeholder(from_text, to_text) {
        let fix = if name == "splat" {
            "end \"from\" with \"*\" to capture it".to_string()
        } else {
            format!("add a \":{name}\" segment to \"from\"")
        };
        return Err(src.at(
            to.span(),
            format!("redirect \"to\" uses \":{name}\", which \"from\" does not capture; {fix}"),
        ));
    }
    Ok(Redirect {
        from: from_text.clone(),
        to: to_text.clone(),
        status,
    })
}

/// The first `:name` in `to` that `from` does not define (`:splat` is
/// defined by a trailing `*`). Ports (`:8080`) are not placeholders.
fn unbound_placeholder<'a>(from: &str, to: &'a str) -> Option<&'a str> {
    let placeholders = |s: &'a str| {
        s.match_indices(':').filter_map(move |(i, _)| {
            let rest = &s[i + 1..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                .then_some(name)
        })
    };
    placeholders(to).find(|name| {
        if *name == "splat" {
            !from.ends_with('*')
        } else {
            !from
                .split('/')
                .any(|seg| seg.strip_prefix(':') == Some(*name))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_must_be_captured() {
        assert_eq!(unbound_placeholder("/old/*", "/new/:splat"), None);
        assert_eq!(unbound_placeholder("/a/:id", "/b/:id"), None);
        assert_eq!(unbound_placeholder("/a", "https://x.example:8443/b"), None);
        assert_eq!(unbound_placeholder("/a", "/b/:splat"), Some("splat"));
        assert_eq!(unbound_placeholder("/a/:id", "/b/:slug"), Some("slug"));
        assert_eq!(unbound_placeholder("/", "api.example:8080"), None);
        assert_eq!(unbound_placeholder("/", ":host"), Some("host"));
    }

    #[test]
    fn globs_are_checked() {
        assert_eq!(glob("/assets/**"), Ok(()));
        assert!(glob("/a/[").is_err());
        assert!(url_glob("assets/*").is_err());
    }
}
