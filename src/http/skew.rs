//! Skew protection on the request path: a visitor pinned to an older
//! revision (by the `__makiatto_revision` cookie or the
//! `x-makiatto-revision` request header) gets that revision's files while
//! the snapshot still offers it, so a page loaded before a deploy never
//! mixes in the next deploy's assets. Navigations always get the live
//! revision, and a page from it pins the visitor to it afresh.

use hyper::HeaderMap;
use hyper::header::{COOKIE, HeaderValue};

use crate::live::{Site, Sites};

/// The cookie a page of a skew-protected domain sets.
pub const COOKIE_NAME: &str = "__makiatto_revision";
const REVISION_HEADER: &str = "x-makiatto-revision";

/// The revision (12 lowercase hex digits) `headers` ask for: the header
/// first, then the cookie.
fn requested(headers: &HeaderMap) -> Option<String> {
    let from_header = headers
        .get(REVISION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let from_cookie = || {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == COOKIE_NAME).then_some(value.trim())
            })
    };
    let wanted = from_header.or_else(from_cookie)?;
    let prefix = wanted.get(..12)?;
    prefix
        .bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| prefix.to_ascii_lowercase())
}

/// Whether the request is a page navigation, which always gets the live
/// revision.
fn is_navigation(headers: &HeaderMap) -> bool {
    let is = |name: &str, value: &str| {
        headers
            .get(name)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
    };
    is("sec-fetch-mode", "navigate") || is("sec-fetch-dest", "document")
}

/// The older revision of `site`'s domain a pinned visitor still gets, if
/// the request asks for one that is still offered.
pub fn pinned<'s>(sites: &'s Sites, site: &Site, headers: &HeaderMap) -> Option<&'s Site> {
    if site.config.skew_protection_secs == 0 || is_navigation(headers) {
        return None;
    }
    let wanted = requested(headers)?;
    if site.revision_header.as_bytes() == wanted.as_bytes() {
        return None;
    }
    sites.pinned(&site.domain, &wanted).map(|s| &**s)
}

/// The `Set-Cookie` value pinning a visitor to the live revision of
/// `site`, or `None` when the domain has no skew protection.
pub fn cookie(site: &Site) -> Option<HeaderValue> {
    let secs = site.config.skew_protection_secs;
    if secs == 0 {
        return None;
    }
    let revision = site.revision_header.to_str().ok()?;
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={revision}; Path=/; Max-Age={secs}; SameSite=Lax"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn the_header_wins_over_the_cookie_and_only_hex_counts() {
        let both = headers(&[
            ("cookie", "a=b; __makiatto_revision=aaaaaaaaaaaa"),
            ("x-makiatto-revision", "BBBBBBBBBBBBcc"),
        ]);
        assert_eq!(requested(&both).as_deref(), Some("bbbbbbbbbbbb"));
        let cookie = headers(&[("cookie", "a=b; __makiatto_revision=0123456789ab")]);
        assert_eq!(requested(&cookie).as_deref(), Some("0123456789ab"));
        assert_eq!(
            requested(&headers(&[("x-makiatto-revision", "short")])),
            None
        );
        assert_eq!(
            requested(&headers(&[("x-makiatto-revision", "zzzzzzzzzzzz")])),
            None
        );
    }

    #[test]
    fn navigations_are_recognised() {
        assert!(is_navigation(&headers(&[("sec-fetch-mode", "navigate")])));
        assert!(is_navigation(&headers(&[("sec-fetch-dest", "document")])));
        assert!(!is_navigation(&headers(&[("sec-fetch-dest", "script")])));
    }
}
