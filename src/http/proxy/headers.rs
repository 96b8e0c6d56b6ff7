//! Which headers cross the proxy, each way, and the target URL as a URI.
//!
//! Hop-by-hop headers (RFC 9110 section 7.6.1) describe one connection, so
//! they never pass: `Connection` and every header it names, `Keep-Alive`,
//! `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade` and `Proxy-*`. The
//! backend is told who asked through `X-Forwarded-For` (the visitor's
//! address appended to any the request carried), `X-Forwarded-Proto` and
//! `X-Forwarded-Host`, and sees its own name in `Host`.

use std::net::IpAddr;

use hyper::header::{CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Scheme, Uri};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop headers every message drops, whatever `Connection` says.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Why a proxy rule's filled-in target cannot be requested.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("{0:?} is not a valid URL")]
    Invalid(String),
    #[error("{0:?} is not an http:// or https:// URL with a host")]
    NotHttp(String),
}

/// The URI a proxy rule's `url` (already filled in) names: absolute,
/// `http` or `https`, with a host.
pub fn target_uri(url: &str) -> Result<Uri, TargetError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| TargetError::Invalid(url.to_owned()))?;
    let http = matches!(uri.scheme(), Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS);
    if !http || uri.host().is_none_or(str::is_empty) {
        return Err(TargetError::NotHttp(url.to_owned()));
    }
    Ok(uri)
}

/// Removes the hop-by-hop headers from `headers`, and those its
/// `Connection` names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|n| n.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// Who asked, for the `X-Forwarded-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The address of the connection the request came on.
    pub peer: IpAddr,
    /// `http` or `https`: how the visitor reached this node.
    pub proto: &'static str,
    /// The host the visitor asked for (`Host` or `:authority`), if any.
    pub host: Option<&'a str>,
}

/// Turns a visitor's request headers into the backend's: hop-by-hop
/// removed, `Host` set to `target`'s authority, `X-Forwarded-*` set.
pub fn to_backend(headers: &mut HeaderMap, target: &Uri, asker: Asker<'_>) {
    remove_hop_by_hop(headers);
    let previous: Vec<String> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    let mut chain = previous.join(", ");
    if !chain.is_empty() {
        chain.push_str(", ");
    }
    chain.push_str(&asker.peer.to_canonical().to_string());
    headers.remove(&X_FORWARDED_FOR);
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(asker.proto));
    headers.remove(&X_FORWARDED_HOST);
    if let Some(value) = asker.host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(X_FORWARDED_HOST, value);
    }
    headers.remove(HOST);
    if let Some(value) = target
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        headers.insert(HOST, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-sum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-connection", "keep-alive"),
            ("x-secret-hop", "1"),
            ("accept", "text/html"),
            ("content-type", "application/json"),
            ("content-length", "2"),
        ]);
        remove_hop_by_hop(&mut headers);
        assert_eq!(
            names(&headers),
            ["accept", "content-length", "content-type"]
        );
    }

    #[test]
    fn the_backend_learns_who_asked_and_sees_its_own_host() {
        let mut headers = map(&[
            ("host", "www.example.com"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "spoofed.example"),
            ("cookie", "a=1"),
        ]);
        let target = target_uri("http://api.example.net:8080/v1/x?q=1").unwrap();
        let asker = Asker {
            peer: "::ffff:198.51.100.9".parse().unwrap(),
            proto: "http",
            host: Some("www.example.com"),
        };
        to_backend(&mut headers, &target, asker);
        assert_eq!(headers["host"], "api.example.net:8080");
        assert_eq!(headers["x-forwarded-for"], "203.0.113.7, 198.51.100.9");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "www.example.com");
        assert_eq!(headers["cookie"], "a=1");

        let mut bare = HeaderMap::new();
        let target = target_uri("https://api.example.net/").unwrap();
        let asker = Asker {
            host: None,
            proto: "https",
            ..asker
        };
        to_backend(&mut bare, &target, asker);
        assert_eq!(bare["x-forwarded-for"], "198.51.100.9");
        assert_eq!(bare["host"], "api.example.net");
        assert!(bare.get("x-forwarded-host").is_none());
    }

    #[test]
    fn only_http_urls_with_a_host_are_targets() {
        assert!(target_uri("https://api.example.net/a%20b?c=d").is_ok());
        assert!(target_uri("http://127.0.0.1:9000/").is_ok());
        assert!(target_uri("http://[2001:db8::1]/").is_ok());
        assert_eq!(
            target_uri("ftp://files.example/x"),
            Err(TargetError::NotHttp("ftp://files.example/x".into()))
        );
        assert_eq!(
            target_uri("http://a b/"),
            Err(TargetError::Invalid("http://a b/".into()))
        );
        assert!(target_uri("/local/path").is_err());
    }
}
