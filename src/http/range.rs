//! Byte ranges (RFC 9110 §14): one range per request.
//!
//! A multi-range request gets the whole file (200), which the RFC allows
//! and every client handles; a malformed header is ignored the same way.

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve everything (no header, or one we ignore).
    Full,
    /// Serve bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// No byte of the file is in the range: 416.
    Unsatisfiable,
}

/// Interprets a `Range` header value for a file of `size` bytes.
pub fn parse(value: Option<&[u8]>, size: u64) -> RangeRequest {
    let Some(spec) = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // "-N": the last N bytes.
        (true, false) => match number(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            None => RangeRequest::Full,
        },
        // "N-": from N to the end.
        (false, true) => match number(first) {
            Some(start) if start < size => RangeRequest::Partial {
                start,
                end: size - 1,
            },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Full,
        },
        (false, false) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start > end => RangeRequest::Full,
            (Some(start), Some(_)) if start >= size => RangeRequest::Unsatisfiable,
            (Some(start), Some(end)) => RangeRequest::Partial {
                start,
                end: end.min(size - 1),
            },
            _ => RangeRequest::Full,
        },
        (true, true) => RangeRequest::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::*;
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(parse(Some(b"bytes=0-9"), 100), Partial { start: 0, end: 9 });
        assert_eq!(
            parse(Some(b"bytes=90-"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse(Some(b"bytes=-10"), 100),
            Partial { start: 90, end: 99 }
        );
        assert_eq!(
            parse(Some(b"bytes=-500"), 100),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            parse(Some(b"bytes=50-5000"), 100),
            Partial { start: 50, end: 99 }
        );
    }

    #[test]
    fn unsatisfiable_and_ignored_ranges() {
        assert_eq!(parse(Some(b"bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse(Some(b"bytes=200-300"), 100), Unsatisfiable);
        assert_eq!(parse(Some(b"bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse(Some(b"bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse(Some(b"bytes=0-1,5-6"), 100), Full);
        assert_eq!(parse(Some(b"items=0-1"), 100), Full);
        assert_eq!(parse(Some(b"bytes=x-y"), 100), Full);
        assert_eq!(parse(Some(b"bytes=9-1"), 100), Full);
        assert_eq!(parse(None, 100), Full);
    }
}
