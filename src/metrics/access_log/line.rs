//! One access log line from an `Entry`: a JSON object, or the combined
//! log format (`host ident user [time] "request" status bytes "referer"
//! "user agent"`). The query string is left out of both: it may carry
//! tokens, and neither format may hold a secret.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::header::HeaderValue;

use super::Entry;

/// The entry's host, from `Host` or (HTTP/2) the URI's authority.
fn host(entry: &Entry) -> &str {
    entry
        .host
        .as_ref()
        .and_then(|h| h.to_str().ok())
        .or_else(|| entry.uri.host())
        .unwrap_or("")
}

/// A header value as text; bytes outside visible ASCII become `?`.
fn text(value: Option<&HeaderValue>) -> Option<String> {
    value.map(|v| {
        v.as_bytes()
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '?'
                }
            })
            .collect()
    })
}

/// Writes `entry` as one JSON object into `out` (no newline).
pub fn json(entry: &Entry, country: Option<[u8; 2]>, out: &mut String) {
    let country = country.map(|c| String::from_utf8_lossy(&c).to_ascii_uppercase());
    let value = serde_json::json!({
        "time": rfc3339(entry.time),
        "client": entry.client.to_string(),
        "host": host(entry),
        "method": entry.method.as_str(),
        "path": entry.uri.path(),
        "status": entry.status,
        "bytes": entry.bytes,
        "duration_ms": (entry.duration.as_secs_f64() * 1e6).round() / 1e3,
        "revision": entry.revision.as_ref().and_then(|r| r.to_str().ok()),
        "country": country,
        "user_agent": text(entry.user_agent.as_ref()),
        "referer": text(entry.referer.as_ref()),
    });
    // Serialising a `Value` into a String cannot fail.
    let _ = write!(out, "{value}");
}

/// Writes `entry` in the combined log format into `out` (no newline).
pub fn combined(entry: &Entry, out: &mut String) {
    let quoted = |value: Option<String>| match value {
        Some(v) => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
        None => "\"-\"".to_string(),
    };
    let request = format!(
        "{} {} {:?}",
        entry.method.as_str(),
        entry.uri.path(),
        entry.version
    );
    let bytes = if entry.bytes == 0 {
        "-".to_string()
    } else {
        entry.bytes.to_string()
    };
    let _ = write!(
        out,
        "{} - - [{}] {} {} {} {} {}",
        entry.client,
        clf_time(entry.time),
        quoted(Some(request)),
        entry.status,
        bytes,
        quoted(text(entry.referer.as_ref())),
        quoted(text(entry.user_agent.as_ref())),
    );
}

/// Broken-down UTC time of `t`.
fn utc(t: SystemTime) -> time::OffsetDateTime {
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `2026-12-04T13:55:36.123Z`.
fn rfc3339(t: SystemTime) -> String {
    let d = utc(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.millisecond()
    )
}

/// `04/Dec/2026:13:55:36 +0000`.
fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let d = utc(t);
    format!(
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        d.day(),
        MONTHS[usize::from(u8::from(d.month())) - 1],
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use hyper::Method;

    use super::*;

    fn entry() -> Entry {
        Entry {
            // 2026-12-04T13:55:36.250Z
            time: UNIX_EPOCH + Duration::from_millis(1_796_392_536_250),
            client: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            method: Method::GET,
            version: hyper::Version::HTTP_11,
            uri: "/docs/a%20b.html?token=secret"
                .parse()
                .expect("a valid URI"),
            host: Some(HeaderValue::from_static("example.com")),
            status: 206,
            bytes: 100,
            duration: Duration::from_micros(1500),
            revision: Some(HeaderValue::from_static("abc123")),
            user_agent: Some(HeaderValue::from_static("curl/8.0 \"x\"")),
            referer: None,
        }
    }

    #[test]
    fn json_names_every_field_and_leaves_the_query_out() {
        let mut out = String::new();
        json(&entry(), Some(*b"DE"), &mut out);
        assert_eq!(
            out,
            r#"{"bytes":100,"client":"198.51.100.7","country":"DE","duration_ms":1.5,"host":"example.com","method":"GET","path":"/docs/a%20b.html","referer":null,"revision":"abc123","status":206,"time":"2026-12-04T13:55:36.250Z","user_agent":"curl/8.0 \"x\""}"#
        );
    }

    #[test]
    fn combined_is_the_apache_format() {
        let mut out = String::new();
        combined(&entry(), &mut out);
        assert_eq!(
            out,
            r#"198.51.100.7 - - [04/Dec/2026:13:55:36 +0000] "GET /docs/a%20b.html HTTP/1.1" 206 100 "-" "curl/8.0 \"x\"""#
        );
    }
}
