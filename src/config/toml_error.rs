//! Turns the `toml` crate's errors into ours.
//!
//! The crate reports the right place but phrases its messages for Rust
//! programmers (`expected u16`, `struct RawDomain`, backticks). This file
//! rewrites them for people editing a config file, and gives unknown fields
//! a near-miss suggestion.

use std::ops::Range;

use super::ConfigError;
use super::diagnostic::Source;
use super::suggest;

/// Converts an error from `toml::de::Deserializer::parse` (TOML syntax).
pub(super) fn syntax_error(src: Source<'_>, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim_end();
    let message = match err.span() {
        Some(span) if message == "duplicate key" => {
            let key = src.slice(&span).trim_matches(['"', '\'']);
            format!("{key:?} is set twice in the same table; keep one")
        }
        _ => format!("invalid TOML: {message}"),
    };
    positioned(src, err.span(), message)
}

/// Converts an error from deserializing the parsed document into raw structs.
pub(super) fn shape_error(src: Source<'_>, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim_end();
    let span = err.span();
    let rewritten = if let Some(rest) = message.strip_prefix("unknown field `") {
        unknown_field(rest)
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        invalid_type(src, span.clone(), rest)
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        invalid_value(src, span.clone(), rest)
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        // Raw structs keep required fields optional and check them with a
        // better message, so this only guards against a forgotten `Option`.
        format!("missing field {:?}", rest.trim_end_matches('`'))
    } else {
        message.replace('`', "\"")
    };
    positioned(src, span, rewritten)
}

fn positioned(src: Source<'_>, span: Option<Range<usize>>, message: String) -> ConfigError {
    match span {
        Some(span) => src.at(span, message),
        None => src.whole(message),
    }
}

/// serde: "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or
/// `b`", "expected `a`", "there are no fields").
fn unknown_field(rest: &str) -> String {
    // The field comes first and may itself contain backticks; what follows
    // it is serde's fixed wording around our own field names, so split at the
    // last occurrence of that wording.
    let split = rest
        .rfind("`, expected ")
        .or_else(|| rest.rfind("`, there are no fields"));
    let (field, expected) = match split {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest.trim_end_matches('`'), ""),
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    format!(
        "unknown field {field:?}{}",
        suggest::hint(field, &candidates)
    )
}

/// serde: "invalid type: integer `5`, expected a string".
fn invalid_type(src: Source<'_>, span: Option<Range<usize>>, rest: &str) -> String {
    let (found, expected) = split_found_expected(rest);
    let expected = readable_expected(expected);
    let written = span.as_ref().map(|s| src.slice(s)).unwrap_or("");
    // A `[table]` or `[[array]]` header stands for the value itself; name it by
    // its key and say which bracket form is wanted.
    if let Some(header) = written.strip_prefix("[[") {
        let key = header.trim_end_matches(']');
        return format!(
            "\"[[{key}]]\" declares an array of tables, but {:?} must be {expected}{}",
            last_key_segment(key),
            if expected == "a table" {
                format!(": write [{key}]")
            } else {
                String::new()
            }
        );
    }
    if let Some(header) = written.strip_prefix('[') {
        let key = header.trim_end_matches(']');
        return format!(
            "\"[{key}]\" declares a table, but {:?} must be {expected}{}",
            last_key_segment(key),
            if expected == "an array" {
                format!(": write [[{key}]]")
            } else {
                String::new()
            }
        );
    }
    let found = readable_found(found);
    match span.and_then(|s| key_before(src.text, s.start)) {
        Some(key) => format!("{key:?} must be {expected}, not {found}"),
        None => format!("wrong type: expected {expected}, found {found}"),
    }
}

/// serde: "invalid value: integer `70000`, expected u16".
fn invalid_value(src: Source<'_>, span: Option<Range<usize>>, rest: &str) -> String {
    let (found, expected) = split_found_expected(rest);
    let expected = readable_expected(expected);
    let found = readable_found(found);
    match span.and_then(|s| key_before(src.text, s.start)) {
        Some(key) => format!("{key:?} must be {expected}, not {found}"),
        None => format!("invalid value: expected {expected}, found {found}"),
    }
}

fn split_found_expected(rest: &str) -> (&str, &str) {
    match rest.rfind(", expected ") {
        Some(i) => (&rest[..i], &rest[i + ", expected ".len()..]),
        None => (rest, "something else"),
    }
}

/// Rust type names become what a TOML author would call them.
fn readable_expected(expected: &str) -> String {
    match expected {
        "u8" => "a whole number from 0 to 255".into(),
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "u64" | "usize" => "a whole number, 0 or more".into(),
        "i64" | "i32" => "a whole number".into(),
        "f64" | "f32" => "a number".into(),
        "a sequence" => "an array".into(),
        "a map" => "a table".into(),
        e if e.starts_with("struct ") => "a table".into(),
        e => e.replace('`', "\""),
    }
}

fn readable_found(found: &str) -> String {
    match found {
        "map" => "a table".into(),
        "sequence" => "an array".into(),
        f => f.replace('`', ""),
    }
}

/// `values.cache` → `cache`: the part a reader recognises.
fn last_key_segment(key: &str) -> &str {
    key.rsplit('.')
        .next()
        .unwrap_or(key)
        .trim()
        .trim_matches(['"', '\''])
}

/// The key of `key = value` when `value_start` is where the value begins, so
/// type errors can name the field. `None` inside arrays and inline tables'
/// odd corners, where the caller falls back to a message without the name.
fn key_before(text: &str, value_start: usize) -> Option<String> {
    let before = text.get(..value_start)?;
    let before = before.trim_end_matches([' ', '\t']);
    let before = before.strip_suffix('=')?.trim_end_matches([' ', '\t']);
    for quote in ['"', '\''] {
        if let Some(inner) = before.strip_suffix(quote) {
            let open = inner.rfind(quote)?;
            return Some(inner[open + 1..].to_string());
        }
    }
    let bare = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    // A non-bare byte found here is the last byte of its character, so the
    // next index is a character boundary.
    let start = before.bytes().rposition(|b| !bare(b)).map_or(0, |i| i + 1);
    let key = before.get(start..)?;
    (!key.is_empty()).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_key_before_a_value() {
        let text = "a = 1\n\"b c\" = 2\nx.y = 3\n[t]\n";
        assert_eq!(key_before(text, 4).as_deref(), Some("a"));
        assert_eq!(key_before(text, 14).as_deref(), Some("b c"));
        assert_eq!(key_before(text, 22).as_deref(), Some("y"));
        assert_eq!(key_before(text, 24), None);
        assert_eq!(key_before(text, 999), None);
    }

    #[test]
    fn parses_serde_unknown_field_messages() {
        assert_eq!(
            unknown_field("pathh`, expected one of `name`, `path`"),
            "unknown field \"pathh\", did you mean \"path\"?"
        );
        assert_eq!(
            unknown_field("zzz`, expected `type` or `value`"),
            "unknown field \"zzz\", expected one of \"type\", \"value\""
        );
        assert_eq!(
            unknown_field("a`b`, expected `name`"),
            "unknown field \"a`b\", expected \"name\""
        );
        assert_eq!(
            unknown_field("zzz`, there are no fields"),
            "unknown field \"zzz\", this table takes no fields"
        );
    }
}
