//! The password in front of protected previews and permalinks: HTTP basic
//! authentication (any user name; the password is checked), which curl and
//! browsers speak without a login page, then a signed cookie so a browser
//! does not send the password through the slow hash on every request.
//! Production hosts never come here.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hyper::header::{
    AUTHORIZATION, CACHE_CONTROL, COOKIE, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Response, StatusCode};

use super::body::Body;
use super::serve::text;
use crate::live::{COOKIE_LIFETIME, CheckSlots, Checked, PREVIEW_COOKIE, PreviewGuard};

/// How long a request waits for a hash check slot before it is told to
/// retry: a flood of wrong passwords queues here, not on the CPU.
const CHECK_WAIT: Duration = Duration::from_secs(2);

/// What a request to a guarded host may do.
#[derive(Debug)]
pub(super) enum Admission {
    /// Its cookie lets it in.
    Cookie,
    /// Its password was right: answer, and give it this `set-cookie`.
    Password(HeaderValue),
    /// Answer this instead (401, or 503 when checks are saturated).
    Refused(Response<Body>),
}

/// Decides whether the request with `headers` to `host` (guarded by
/// `guard`) is let in; `slots` bounds hash checks node-wide.
pub(super) async fn admit(
    guard: &Arc<PreviewGuard>,
    host: &str,
    headers: &HeaderMap,
    slots: &CheckSlots,
    https: bool,
) -> Admission {
    if cookies(headers, PREVIEW_COOKIE).any(|value| guard.cookie_valid(host, value)) {
        return Admission::Cookie;
    }
    let Some(password) = basic_password(headers) else {
        return Admission::Refused(challenge(&guard.domain, false));
    };
    match guard.check(&password, slots, CHECK_WAIT).await {
        Checked::Correct => Admission::Password(set_cookie(guard, host, https)),
        Checked::Wrong => Admission::Refused(challenge(&guard.domain, true)),
        Checked::Busy => Admission::Refused(busy()),
    }
}

/// Removes the preview's credentials from a request about to leave the
/// node (a proxy rule's backend must not learn the preview password or
/// hold a cookie that opens the preview): the preview cookie always, and
/// `Authorization` when it carried the password (`by_password`).
pub(super) fn strip_credentials(headers: &mut HeaderMap, by_password: bool) {
    if by_password {
        headers.remove(AUTHORIZATION);
    }
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
            !pair.is_empty() && name != PREVIEW_COOKIE
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if let Ok(value) = HeaderValue::from_str(&kept.join("; "))
        && !kept.is_empty()
    {
        headers.insert(COOKIE, value);
    }
}

/// Marks a response that needed the password as `private`, so no shared
/// cache (a proxy in front of the node) hands it to visitors without it:
/// the site's own `public` and `s-maxage` are dropped, its other
/// directives (`max-age`, `immutable`) kept for the visitor's browser.
pub(super) fn keep_private(headers: &mut HeaderMap) {
    let mut directives = vec!["private".to_string()];
    for value in headers.get_all(CACHE_CONTROL).iter() {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            let name = directive.split('=').next().unwrap_or("").trim();
            let dropped = directive.is_empty()
                || ["public", "private", "s-maxage"]
                    .iter()
                    .any(|d| name.eq_ignore_ascii_case(d));
            if !dropped {
                directives.push(directive.to_string());
            }
        }
    }
    if let Ok(value) = HeaderValue::from_str(&directives.join(", ")) {
        headers.insert(CACHE_CONTROL, value);
    }
}

/// The values of cookie `name` in every `cookie` header.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (n, value) = pair.trim().split_once('=')?;
            (n == name).then_some(value)
        })
}

/// The password of an `Authorization: Basic` header (the user name is
/// ignored).
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    Some(password.to_string())
}

/// The `set-cookie` of a visitor who gave the right password.
fn set_cookie(guard: &PreviewGuard, host: &str, https: bool) -> HeaderValue {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let lifetime = COOKIE_LIFETIME.as_secs();
    let value = guard.cookie_value(host, now + lifetime);
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!(
        "{PREVIEW_COOKIE}={value}; Max-Age={lifetime}; Path=/; HttpOnly; SameSite=Lax{secure}"
    );
    // The value is digits, a dot and hex: always a valid header value.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// 401 asking for the password of `domain`'s previews.
fn challenge(domain: &str, wrong: bool) -> Response<Body> {
    let first = if wrong {
        "That password is not the one set for"
    } else {
        "A password protects"
    };
    let mut resp = text(
        StatusCode::UNAUTHORIZED,
        &format!(
            "{first} the previews of {domain}.\n\
             Ask the site's owner for it, and give it with any user name \
             (the browser asks; with curl: curl -u preview:PASSWORD URL).\n\
             The owner sets it with `makiatto preview-password {domain} set` \
             (or `maki preview-password {domain} set`) and removes it with `clear`.\n"
        ),
    );
    let realm = format!("Basic realm=\"preview of {domain}\", charset=\"UTF-8\"");
    if let Ok(value) = HeaderValue::from_str(&realm) {
        resp.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// 503: every password check slot stayed busy.
fn busy() -> Response<Body> {
    let mut resp = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "Too many password checks are running on this node; try again in a second.\n",
    );
    resp.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn basic_passwords_are_read_whatever_the_user_name() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("anyone:pa:ss word");
        let h = headers(&[("authorization", &format!("Basic {encoded}"))]);
        assert_eq!(basic_password(&h).as_deref(), Some("pa:ss word"));
        let h = headers(&[("authorization", &format!("basic  {encoded}"))]);
        assert_eq!(basic_password(&h).as_deref(), Some("pa:ss word"));
        for bad in ["Bearer abc", "Basic !!!", "Basic", ""] {
            assert_eq!(
                basic_password(&headers(&[("authorization", bad)])),
                None,
                "{bad}"
            );
        }
        let no_colon = base64::engine::general_purpose::STANDARD.encode("nocolon");
        let h = headers(&[("authorization", &format!("Basic {no_colon}"))]);
        assert_eq!(basic_password(&h), None);
    }

    #[test]
    fn guarded_responses_are_private_to_the_visitor() {
        let mut h = headers(&[(
            "cache-control",
            "public, max-age=31536000, s-maxage=60, immutable",
        )]);
        keep_private(&mut h);
        assert_eq!(h[CACHE_CONTROL], "private, max-age=31536000, immutable");
        let mut h = HeaderMap::new();
        keep_private(&mut h);
        assert_eq!(h[CACHE_CONTROL], "private");
    }

    #[test]
    fn the_cookie_is_secure_over_https_and_checks_out() {
        let hash = crate::live::hash_password("correct horse").unwrap();
        let key = crate::live::new_cookie_key();
        let guard = PreviewGuard::new("a.test", &hash, &key, 1).unwrap();
        let host = "dev.preview.a.test";
        let plain = set_cookie(&guard, host, false);
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("makiatto-preview="), "{plain}");
        assert!(plain.contains("HttpOnly; SameSite=Lax") && !plain.contains("Secure"));
        assert!(
            set_cookie(&guard, host, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        let value = plain.split(';').next().unwrap().split_once('=').unwrap().1;
        assert!(guard.cookie_valid(host, value));
    }

    #[test]
    fn cookies_are_found_in_every_cookie_header() {
        let h = headers(&[
            ("cookie", "a=1; makiatto-preview=x.y"),
            ("cookie", "makiatto-preview=z"),
        ]);
        let found: Vec<&str> = cookies(&h, PREVIEW_COOKIE).collect();
        assert_eq!(found, ["x.y", "z"]);
    }

    #[test]
    fn a_request_leaving_the_node_loses_the_preview_credentials() {
        let mut h = headers(&[
            ("cookie", "a=1; makiatto-preview=x.y"),
            ("cookie", "makiatto-preview=z; b=2"),
            ("authorization", "Basic dTpwdw=="),
        ]);
        strip_credentials(&mut h, true);
        assert_eq!(h[COOKIE], "a=1; b=2");
        assert!(h.get(AUTHORIZATION).is_none());
        let mut h = headers(&[
            ("cookie", "makiatto-preview=x.y"),
            ("authorization", "Bearer backend-token"),
        ]);
        strip_credentials(&mut h, false);
        assert!(h.get(COOKIE).is_none());
        assert_eq!(h[AUTHORIZATION], "Bearer backend-token");
    }

    #[test]
    fn the_challenge_names_the_realm_and_what_to_do() {
        let resp = challenge("a.test", false);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[WWW_AUTHENTICATE],
            "Basic realm=\"preview of a.test\", charset=\"UTF-8\""
        );
    }
}
