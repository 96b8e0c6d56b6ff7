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
fn text(value: Option<&HeaderValue>) -> Option<impl Iterator<Item = char> + '_> {
    value.map(|v| {
        v.as_bytes().iter().map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
    })
}

/// Appends `chars` as a JSON string (quoted, escaped).
fn json_string(out: &mut String, chars: impl Iterator<Item = char>) {
    out.push('"');
    for c in chars {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `chars` as a JSON string, or `null`.
fn json_option(out: &mut String, chars: Option<impl Iterator<Item = char>>) {
    match chars {
        Some(chars) => json_string(out, chars),
        None => out.push_str("null"),
    }
}

/// Writes `entry` as one JSON object into `out` (no newline), written
/// field by field rather than through a JSON value: the writer formats
/// every line, so this is most of the log's cost.
pub fn json(entry: &Entry, country: Option<[u8; 2]>, out: &mut String) {
    out.push_str("{\"time\":\"");
    rfc3339(entry.time, out);
    let _ = write!(out, "\",\"client\":\"{}\",\"host\":", entry.client);
    json_string(out, host(entry).chars());
    out.push_str(",\"method\":");
    json_string(out, entry.method.as_str().chars());
    out.push_str(",\"path\":");
    json_string(out, entry.uri.path().chars());
    let _ = write!(
        out,
        ",\"status\":{},\"bytes\":{},\"duration_ms\":{},\"revision\":",
        entry.status,
        entry.bytes,
        (entry.duration.as_secs_f64() * 1e6).round() / 1e3
    );
    json_option(
        out,
        entry
            .revision
            .as_ref()
            .and_then(|r| r.to_str().ok())
            .map(str::chars),
    );
    out.push_str(",\"country\":");
    json_option(
        out,
        country.map(|c| c.into_iter().map(|b| (b as char).to_ascii_uppercase())),
    );
    out.push_str(",\"user_agent\":");
    json_option(out, text(entry.user_agent.as_ref()));
    out.push_str(",\"referer\":");
    json_option(out, text(entry.referer.as_ref()));
    out.push('}');
}

/// Appends `value` in double quotes, with `"` and `\` escaped, or `"-"`.
fn quoted(out: &mut String, value: Option<impl Iterator<Item = char>>) {
    out.push('"');
    match value {
        Some(chars) => {
            for c in chars {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        None => out.push('-'),
    }
    out.push('"');
}

/// Writes `entry` in the combined log format into `out` (no newline).
pub fn combined(entry: &Entry, out: &mut String) {
    let _ = write!(out, "{} - - [", entry.client);
    clf_time(entry.time, out);
    out.push_str("] ");
    let path = entry.uri.path();
    let request = entry
        .method
        .as_str()
        .chars()
        .chain(std::iter::once(' '))
        .chain(path.chars());
    out.push('"');
    for c in request {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    let _ = write!(out, " {:?}\" {} ", entry.version, entry.status);
    if entry.bytes == 0 {
        out.push('-');
    } else {
        let _ = write!(out, "{}", entry.bytes);
    }
    out.push(' ');
    quoted(out, text(entry.referer.as_ref()));
    out.push(' ');
    quoted(out, text(entry.user_agent.as_ref()));
}

/// Broken-down UTC time of `t`.
fn utc(t: SystemTime) -> time::OffsetDateTime {
    let nanos = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Appends `2026-12-04T13:55:36.123Z`.
fn rfc3339(t: SystemTime, out: &mut String) {
    let d = utc(t);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.millisecond()
    );
}

/// Appends `04/Dec/2026:13:55:36 +0000`.
fn clf_time(t: SystemTime, out: &mut String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let d = utc(t);
    let _ = write!(
        out,
        "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
        d.day(),
        MONTHS[usize::from(u8::from(d.month())) - 1],
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    );
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
            r#"{"time":"2026-12-04T13:55:36.250Z","client":"198.51.100.7","host":"example.com","method":"GET","path":"/docs/a%20b.html","status":206,"bytes":100,"duration_ms":1.5,"revision":"abc123","country":"DE","user_agent":"curl/8.0 \"x\"","referer":null}"#
        );
    }

    #[test]
    fn json_escapes_what_a_client_sends() {
        let mut e = entry();
        e.user_agent = Some(HeaderValue::from_static("a\\b \"c\"\t"));
        e.referer = Some(HeaderValue::from_bytes(b"x\xffy").expect("a header value"));
        let mut out = String::new();
        json(&e, None, &mut out);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|err| panic!("{out}: {err}"));
        // A tab, like any byte outside visible ASCII, is written as `?`.
        assert_eq!(v["user_agent"], "a\\b \"c\"?");
        assert_eq!(v["referer"], "x?y");
        assert!(v["country"].is_null());
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
