//! Turning a request target into a site path, or refusing it.
//!
//! Lookups go through the revision's in-memory file index, never the file
//! system, so no path can name a file outside the revision. This check is the
//! second wall: anything that smells of traversal is refused outright, so it
//! never reaches rules, functions or logs as a path.

/// Request targets longer than this are refused (414).
pub const MAX_PATH_BYTES: usize = 2048;

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    TooLong,
    NotAbsolute,
    BadEncoding,
    /// `..` or `.` segments (after percent-decoding), backslashes or NUL.
    Traversal,
}

impl PathError {
    /// The explanation sent to the client.
    pub fn message(self) -> &'static str {
        match self {
            PathError::TooLong => "request path is too long\n",
            PathError::NotAbsolute => "request path must start with /\n",
            PathError::BadEncoding => "request path is not valid percent-encoded UTF-8\n",
            PathError::Traversal => {
                "request path contains '.', '..', a backslash or NUL, which are never served\n"
            }
        }
    }
}

/// The decoded path of a request (always starting with `/`, empty segments
/// collapsed), with whether it ended in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePath {
    /// `/a/b` form: decoded, no trailing slash except for the root `/`.
    pub path: String,
    pub trailing_slash: bool,
}

impl SitePath {
    /// The file-index key for this path: no leading slash.
    pub fn key(&self) -> &str {
        &self.path[1..]
    }
}

/// Decodes and checks the path of a request target (without its query).
pub fn parse(raw: &str) -> Result<SitePath, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PathError::BadEncoding)?;
    if decoded.contains(['\\', '\0']) {
        return Err(PathError::Traversal);
    }
    let mut path = String::with_capacity(decoded.len());
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(PathError::Traversal);
        }
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(SitePath {
        trailing_slash: decoded.ends_with('/') && path != "/",
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_decode() {
        let p = parse("/a%20b/c%C3%A9.html").unwrap();
        assert_eq!(p.path, "/a b/cé.html");
        assert_eq!(p.key(), "a b/cé.html");
        assert!(!p.trailing_slash);
        let root = parse("/").unwrap();
        assert_eq!((root.key(), root.trailing_slash), ("", false));
        let dir = parse("/docs//").unwrap();
        assert_eq!((dir.path.as_str(), dir.trailing_slash), ("/docs", true));
    }

    #[test]
    fn every_traversal_form_is_refused() {
        for raw in [
            "/../../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/%2E%2E/etc/passwd",
            "/a/..",
            "/a/./b",
            "/..%2fetc%2fpasswd",
            "/..%5cetc",
            "/a\\..\\b",
            "/a%00.html",
            "/.%2e/x",
        ] {
            assert_eq!(parse(raw), Err(PathError::Traversal), "{raw}");
        }
    }

    #[test]
    fn other_bad_targets_are_refused() {
        assert_eq!(parse(&"/a".repeat(2000)), Err(PathError::TooLong));
        assert_eq!(parse("%2e"), Err(PathError::NotAbsolute));
        assert_eq!(parse("/%ff%fe"), Err(PathError::BadEncoding));
    }
}
