//! One `[[domain.redirects]]` rule: the `from` pattern a request path is
//! matched against and the `to` template its captures are put into.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::{RuleAction, RuleError};
use crate::config::Redirect;

/// Bytes a captured value may not carry into a `Location` as they are: those
/// not allowed in a URL path; `%`, because captures are already decoded and a
/// literal `%` must stay literal; and `\`, which browsers read as `/` and
/// which could otherwise turn a local redirect into one to another host.
const LOCATION_UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A compiled redirect, rewrite or not-found rule.
#[derive(Debug, Clone)]
pub(super) struct RedirectRule {
    /// The `from` segments before any splat.
    segments: Vec<Segment>,
    /// Whether `from` ends in `*`, capturing whatever follows the segments.
    splat: bool,
    target: Target,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Segment {
    /// Must equal the request segment exactly (case-sensitive).
    Literal(String),
    /// Captures one non-empty request segment; captures are numbered in
    /// `from` order, which is how the target refers to them.
    Placeholder,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Redirect(u16),
    Rewrite,
    NotFound,
}

/// The `to` side, split at compile time so building a result is a single
/// pass over the parts.
#[derive(Debug, Clone)]
struct Target {
    /// Everything before the query and fragment for rewrites; before the
    /// fragment only for redirects (their query is kept as written).
    parts: Vec<Part>,
    /// Bytes of literal text, to size the output once.
    literal_len: usize,
    /// Whether `to` carries its own query, in which case the request's
    /// query is not appended.
    has_query: bool,
    /// `#...` as written, or empty; the request's query goes before it.
    fragment: String,
    /// Whether `to` is a path on this site rather than an absolute URL.
    local: bool,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    /// Index into the captures of `from`'s placeholders.
    Placeholder(usize),
    Splat,
}

impl RedirectRule {
    /// Compiles one rule, refusing anything it could not apply faithfully.
    pub(super) fn compile(rule: &Redirect) -> Result<RedirectRule, RuleError> {
        let kind = match rule.status {
            301 | 302 | 303 | 307 | 308 => Kind::Redirect(rule.status),
            200 => Kind::Rewrite,
            404 => Kind::NotFound,
            status => return Err(RuleError::Status(status)),
        };
        let (segments, names, splat) = parse_from(&rule.from)?;
        let target = Target::parse(&rule.to, &names, splat, matches!(kind, Kind::Redirect(_)))?;
        if !target.local && !matches!(kind, Kind::Redirect(_)) {
            return Err(RuleError::NonLocalRewrite {
                status: rule.status,
                to: rule.to.clone(),
            });
        }
        Ok(RedirectRule {
            segments,
            splat,
            target,
            kind,
        })
    }

    /// Whether an existing file for the request path takes precedence over
    /// this rule: true for rewrites and not-found rules, never for redirects.
    pub(super) fn yields_to_files(&self) -> bool {
        !matches!(self.kind, Kind::Redirect(_))
    }

    /// Matches `path`, leaving the placeholder captures in `captures` and
    /// returning the splat (empty when `from` has none); `None` if it does
    /// not match.
    pub(super) fn capture<'p>(
        &self,
        path: &'p str,
        captures: &mut Vec<&'p str>,
    ) -> Option<&'p str> {
        captures.clear();
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        // One trailing slash does not change which rule matches; it is kept
        // in the splat so `/old/dir/` can go to `/new/dir/`.
        let body = trimmed.strip_suffix('/').unwrap_or(trimmed);
        // Start of the next unconsumed segment of `body`; `None` once every
        // segment has been consumed (and from the start for the root).
        let mut next = (!body.is_empty()).then_some(0);
        for segment in &self.segments {
            let start = next?;
            let end = body[start..].find('/').map_or(body.len(), |i| start + i);
            let value = &body[start..end];
            next = (end < body.len()).then_some(end + 1);
            match segment {
                Segment::Literal(literal) if literal == value => {}
                Segment::Placeholder if !value.is_empty() => captures.push(value),
                _ => return None,
            }
        }
        match (self.splat, next) {
            (true, Some(start)) => Some(&trimmed[start..]),
            (_, None) => Some(""),
            (false, Some(_)) => None,
        }
    }

    /// Builds this rule's action from a successful `capture`.
    pub(super) fn action(&self, captures: &[&str], splat: &str, query: Option<&str>) -> RuleAction {
        match self.kind {
            Kind::Redirect(status) => {
                let mut location = self.target.fill(captures, splat, true);
                if let Some(query) = query.filter(|q| !q.is_empty() && !self.target.has_query) {
                    location.push('?');
                    location.push_str(query);
                }
                location.push_str(&self.target.fragment);
                RuleAction::Redirect { status, location }
            }
            Kind::Rewrite => RuleAction::Rewrite {
                path: self.target.fill(captures, splat, false),
            },
            Kind::NotFound => RuleAction::NotFound {
                path: self.target.fill(captures, splat, false),
            },
        }
    }
}

/// Splits `from` into its segments, its placeholder names in order, and
/// whether it ends in a splat.
fn parse_from(from: &str) -> Result<(Vec<Segment>, Vec<&str>, bool), RuleError> {
    let Some(trimmed) = from.strip_prefix('/') else {
        return Err(RuleError::FromNotAPath(from.to_owned()));
    };
    // Request paths reach the matcher decoded and without their query, so a
    // `?` or `#` here could never mean what the author intended.
    if from.contains(['?', '#']) {
        return Err(RuleError::FromQuery(from.to_owned()));
    }
    let body = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let mut segments = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut splat = false;
    let mut parts = body.split('/').filter(|_| !body.is_empty()).peekable();
    while let Some(part) = parts.next() {
        if part == "*" && parts.peek().is_none() {
            splat = true;
        } else if part.contains('*') {
            return Err(RuleError::MisplacedSplat(from.to_owned()));
        } else if let Some(name) = part.strip_prefix(':') {
            if name.is_empty() || !name.bytes().all(is_name_byte) || name == "splat" {
                return Err(RuleError::BadPlaceholder(part.to_owned()));
            }
            if names.contains(&name) {
                return Err(RuleError::DuplicatePlaceholder(part.to_owned()));
            }
            names.push(name);
            segments.push(Segment::Placeholder);
        } else {
            segments.push(Segment::Literal(part.to_owned()));
        }
    }
    Ok((segments, names, splat))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Target {
    /// Parses `to`. `names` are `from`'s placeholders and `splat` whether it
    /// has one; other `:word`s (a port, say) stay literal. A redirect keeps
    /// `to`'s query and fragment; a rewrite names a file, so drops them.
    fn parse(to: &str, names: &[&str], splat: bool, redirect: bool) -> Result<Target, RuleError> {
        let local = to.starts_with('/');
        let absolute = ["http://", "https://"].iter().any(|scheme| {
            to.get(..scheme.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        });
        if !local && !absolute {
            return Err(RuleError::BadTarget(to.to_owned()));
        }
        let (main, fragment) = match to.find('#') {
            Some(i) if redirect => (&to[..i], &to[i..]),
            Some(i) => (&to[..i], ""),
            None => (to, ""),
        };
        let (main, has_query) = match main.find('?') {
            Some(_) if redirect => (main, true),
            Some(i) => (&main[..i], false),
            None => (main, false),
        };

        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut literal_len = 0;
        let mut rest = main;
        while let Some(colon) = rest.find(':') {
            let after = &rest[colon + 1..];
            let name_len = after.bytes().take_while(|&b| is_name_byte(b)).count();
            let name = &after[..name_len];
            let part = if splat && name == "splat" {
                Some(Part::Splat)
            } else {
                names.iter().position(|n| *n == name).map(Part::Placeholder)
            };
            literal.push_str(&rest[..colon]);
            match part {
                Some(part) => {
                    if !literal.is_empty() {
                        literal_len += literal.len();
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                }
                None => {
                    literal.push(':');
                    literal.push_str(name);
                }
            }
            rest = &after[name_len..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            literal_len += literal.len();
            parts.push(Part::Literal(literal));
        }
        Ok(Target {
            parts,
            literal_len,
            has_query,
            fragment: fragment.to_owned(),
            local,
        })
    }

    /// Puts the captures into the template; `encode` percent-encodes them
    /// for a `Location` (rewrites name a file by its decoded path).
    fn fill(&self, captures: &[&str], splat: &str, encode: bool) -> String {
        let captured: usize = captures.iter().map(|c| c.len()).sum::<usize>() + splat.len();
        // Encoding can triple a byte; sizing for the common unencoded case
        // keeps the usual result to one allocation.
        let mut out = String::with_capacity(self.literal_len + captured + 1);
        for part in &self.parts {
            let value = match part {
                Part::Literal(text) => {
                    out.push_str(text);
                    continue;
                }
                // The index was taken from `from`'s placeholders, and a
                // successful match captures every one of them.
                Part::Placeholder(i) => captures.get(*i).copied().unwrap_or_default(),
                Part::Splat => splat,
            };
            if encode {
                out.extend(utf8_percent_encode(value, LOCATION_UNSAFE));
            } else {
                out.push_str(value);
            }
        }
        if self.local {
            collapse_leading_slashes(&mut out);
        }
        out
    }
}

/// A local target filled with an empty or slash-led capture (`/:splat` from
/// `//evil.example`) would start with `//`, which a browser takes as another
/// host; one slash keeps it on this site.
fn collapse_leading_slashes(path: &mut String) {
    let slashes = path.bytes().take_while(|&b| b == b'/').count();
    if slashes > 1 {
        path.replace_range(1..slashes, "");
    }
}
