//! Conditional requests: `If-None-Match` and `If-Modified-Since` (RFC 9110 §13).

use std::time::SystemTime;

use hyper::HeaderMap;
use hyper::header::{IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE};

/// Whether the client's cached copy is current, so a 304 is the answer.
///
/// Every encoding of a file carries the file's blake3 in its ETag, so a
/// tag naming the same hash matches whichever encoding the client holds.
pub fn not_modified(headers: &HeaderMap, hash_hex: &str, last_modified: SystemTime) -> bool {
    if let Some(inm) = headers.get(IF_NONE_MATCH) {
        let Ok(inm) = inm.to_str() else { return false };
        return inm.split(',').any(|tag| tag_names(tag, hash_hex));
    }
    if let Some(ims) = headers.get(IF_MODIFIED_SINCE)
        && let Some(since) = ims
            .to_str()
            .ok()
            .and_then(|v| httpdate::parse_http_date(v).ok())
    {
        return last_modified <= since;
    }
    false
}

/// Whether a `Range` should be honoured given `If-Range` (absent, or naming
/// the current representation by strong ETag or exact date).
pub fn range_applies(headers: &HeaderMap, hash_hex: &str, last_modified: SystemTime) -> bool {
    let Some(if_range) = headers.get(IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let if_range = if_range.trim();
    if if_range.starts_with('"') {
        return if_range.trim_matches('"') == hash_hex;
    }
    httpdate::parse_http_date(if_range).is_ok_and(|date| date == last_modified)
}

/// Whether one entry of an `If-None-Match` list names this file.
fn tag_names(tag: &str, hash_hex: &str) -> bool {
    let tag = tag.trim();
    if tag == "*" {
        return true;
    }
    let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
    tag.split('-').next() == Some(hash_hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use std::time::Duration;

    fn headers(name: hyper::header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn etags_match_in_any_encoding_and_weak_form() {
        let t = SystemTime::UNIX_EPOCH;
        assert!(not_modified(&headers(IF_NONE_MATCH, "\"abc\""), "abc", t));
        assert!(not_modified(
            &headers(IF_NONE_MATCH, "\"x\", W/\"abc-br\""),
            "abc",
            t
        ));
        assert!(not_modified(&headers(IF_NONE_MATCH, "*"), "abc", t));
        assert!(!not_modified(&headers(IF_NONE_MATCH, "\"abd\""), "abc", t));
    }

    #[test]
    fn dates_compare_and_etags_take_precedence() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let same = httpdate::fmt_http_date(t);
        let older = httpdate::fmt_http_date(t - Duration::from_secs(1));
        assert!(not_modified(&headers(IF_MODIFIED_SINCE, &same), "abc", t));
        assert!(!not_modified(&headers(IF_MODIFIED_SINCE, &older), "abc", t));
        let mut both = headers(IF_MODIFIED_SINCE, &same);
        both.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!not_modified(&both, "abc", t));
    }

    #[test]
    fn if_range_needs_the_current_tag() {
        let t = SystemTime::UNIX_EPOCH;
        assert!(range_applies(&HeaderMap::new(), "abc", t));
        assert!(range_applies(&headers(IF_RANGE, "\"abc\""), "abc", t));
        assert!(!range_applies(&headers(IF_RANGE, "\"old\""), "abc", t));
    }
}
