//! The `_headers` file at the root of the served tree, in the syntax
//! Netlify and Cloudflare Pages read.
//!
//! A line starting in the first column is a path pattern (or a full
//! `https://host/path` URL, limiting the block to that host): `*` matches
//! any run of characters, `/` included, and `:name` one non-empty segment.
//! The indented lines under it are `Name: value` headers for every request
//! path the pattern matches (a name given twice sends both values) or
//! `! Name`, which takes that header off what earlier rules and the
//! defaults set. `#` starts a comment. A line that cannot be read is
//! skipped with a warning; the rest of the file still applies.

use hyper::header::{HeaderName, HeaderValue};

use super::warning::{RuleFileWarning, lines};

/// The file's name in the served tree.
pub const FILE: &str = "_headers";

/// Wildcards allowed in one pattern: matching stays a small table walk.
const MAX_WILDCARDS: usize = 8;

/// One path pattern and the header changes under it.
#[derive(Debug, Clone)]
pub(super) struct HeaderBlock {
    pub pattern: PathPattern,
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

/// A `_headers` path pattern, compiled.
#[derive(Debug, Clone)]
pub(super) struct PathPattern {
    /// The only host (lowercase) the block applies to.
    pub host: Option<Box<str>>,
    parts: Vec<Part>,
    /// The literal first segment, for the index; `None` when it holds a
    /// wildcard.
    first: Option<Box<str>>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(Box<str>),
    /// Any run of bytes, `/` included.
    Any,
    /// One byte other than `/`.
    OneInSegment,
    /// Any run of bytes other than `/`.
    RestOfSegment,
}

impl PathPattern {
    /// The literal first segment ("" for `/`), or `None` if it has a wildcard.
    pub(super) fn first_literal(&self) -> Option<&str> {
        self.first.as_deref()
    }

    /// Whether `path` matches the whole pattern.
    pub(super) fn matches(&self, path: &str) -> bool {
        if let [Part::Literal(literal)] = self.parts.as_slice() {
            return **literal == *path;
        }
        let s = path.as_bytes();
        let n = s.len();
        let width = n + 1;
        // ok[i * width + j]: parts[i..] match s[j..]; filled from the end.
        let mut ok = vec![false; (self.parts.len() + 1) * width];
        ok[self.parts.len() * width + n] = true;
        for (i, part) in self.parts.iter().enumerate().rev() {
            for j in (0..=n).rev() {
                let next = |k: usize| ok[(i + 1) * width + k];
                let here = |k: usize| ok[i * width + k];
                ok[i * width + j] = match part {
                    Part::Literal(literal) => {
                        s[j..].starts_with(literal.as_bytes()) && next(j + literal.len())
                    }
                    Part::Any => next(j) || (j < n && here(j + 1)),
                    Part::OneInSegment => j < n && s[j] != b'/' && next(j + 1),
                    Part::RestOfSegment => next(j) || (j < n && s[j] != b'/' && here(j + 1)),
                };
            }
        }
        ok[0]
    }

    fn parse(text: &str) -> Result<PathPattern, (String, String)> {
        let (host, path) = match ["http://", "https://"].iter().find_map(|scheme| {
            let head = text.get(..scheme.len())?;
            head.eq_ignore_ascii_case(scheme)
                .then(|| &text[scheme.len()..])
        }) {
            Some(rest) => {
                let (host, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
                if host.is_empty() || host.contains(['*', ':']) {
                    return Err((
                        format!("pattern `{text}` has no plain host name"),
                        "write it as `https://host.example/path`, or as a path starting with `/`"
                            .into(),
                    ));
                }
                (Some(Box::from(host.to_ascii_lowercase().as_str())), path)
            }
            None => (None, text),
        };
        if !path.starts_with('/') {
            return Err((
                format!("`{text}` is neither a path pattern nor a header line"),
                "start a pattern with `/`, or indent a `Name: value` line under one".into(),
            ));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut wildcards = 0;
        let mut rest = path;
        while let Some(c) = rest.chars().next() {
            let after_slash = literal.ends_with('/') || (literal.is_empty() && !parts.is_empty());
            if c == '*' {
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                }
                parts.push(Part::Any);
                wildcards += 1;
                rest = &rest[1..];
            } else if c == ':' && after_slash {
                let name_len = rest[1..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                if name_len == 0 {
                    literal.push(':');
                    rest = &rest[1..];
                    continue;
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                }
                parts.push(Part::OneInSegment);
                parts.push(Part::RestOfSegment);
                wildcards += 1;
                rest = &rest[1 + name_len..];
            } else {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into()));
        }
        if wildcards > MAX_WILDCARDS {
            return Err((
                format!("pattern `{text}` has more than {MAX_WILDCARDS} wildcards"),
                "split it into simpler patterns".into(),
            ));
        }
        let body = &path[1..];
        let segment = body.split('/').next().unwrap_or("");
        let first = (!segment.contains('*') && !segment.starts_with(':')).then(|| segment.into());
        Ok(PathPattern { host, parts, first })
    }
}

/// Reads `text`, returning its blocks in file order and a warning for each
/// skipped line.
pub(super) fn parse(text: &str) -> (Vec<HeaderBlock>, Vec<RuleFileWarning>) {
    let mut blocks: Vec<HeaderBlock> = Vec::new();
    let mut warnings = Vec::new();
    // Whether header lines have a pattern to go under: false before the
    // first pattern and after one that could not be read.
    let mut open = false;
    for (number, line) in lines(text) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let column = line[..line.len() - trimmed.len()].chars().count() + 1;
        let warn = |problem: String, fix: String| RuleFileWarning {
            file: FILE,
            line: number,
            column,
            problem,
            fix,
        };
        let indented = trimmed.len() != line.len();
        if !indented && !trimmed.starts_with('!') && !looks_like_header(trimmed) {
            let text = trimmed.split_whitespace().next().unwrap_or(trimmed);
            match PathPattern::parse(text) {
                Ok(pattern) => {
                    blocks.push(HeaderBlock {
                        pattern,
                        set: Vec::new(),
                        remove: Vec::new(),
                    });
                    open = true;
                }
                Err((problem, fix)) => {
                    open = false;
                    warnings.push(warn(problem, fix));
                }
            }
            continue;
        }
        let Some(block) = blocks.last_mut().filter(|_| open) else {
            warnings.push(warn(
                format!("header line `{trimmed}` has no path pattern above it"),
                "put a pattern such as `/*` on its own line before it".into(),
            ));
            continue;
        };
        if let Some(name) = trimmed.strip_prefix('!') {
            let name = name.trim();
            match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => block.remove.push(name),
                Err(_) => warnings.push(warn(
                    format!("`{name}` is not a header name"),
                    "write `! Header-Name` to remove a header".into(),
                )),
            }
            continue;
        }
        let Some((name, value)) = trimmed.split_once(':') else {
            warnings.push(warn(
                format!("`{trimmed}` has no `:` between header name and value"),
                "write `Name: value`".into(),
            ));
            continue;
        };
        let Ok(header) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            warnings.push(warn(
                format!("`{}` is not a header name", name.trim()),
                "header names are letters, digits and `-`; write `Name: value`".into(),
            ));
            continue;
        };
        match HeaderValue::from_str(value.trim()) {
            Ok(value) => block.set.push((header, value)),
            Err(_) => warnings.push(warn(
                format!(
                    "the value of `{}` has characters a header cannot carry",
                    name.trim()
                ),
                "keep header values to printable text on one line".into(),
            )),
        }
    }
    blocks.retain(|b| !b.set.is_empty() || !b.remove.is_empty());
    (blocks, warnings)
}

/// Whether an unindented line is really a header line whose indent was
/// lost (`Name: value`), rather than a pattern.
fn looks_like_header(line: &str) -> bool {
    !line.starts_with('/')
        && line.split_once(':').is_some_and(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !line.to_ascii_lowercase().starts_with("http")
}
