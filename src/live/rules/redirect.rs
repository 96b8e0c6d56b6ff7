//! One redirect, rewrite or status rule, from `[[domain.redirects]]` or a
//! line of `_redirects`: the host, `from` pattern and query conditions a
//! request is matched against, and the `to` template its captures are put
//! into. Country and language conditions are kept here and asked by
//! `Rules::route`, since they need facts about the visitor.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

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

/// Everything one rule says, whichever file it came from.
#[derive(Debug, Clone)]
pub(super) struct RuleSpec<'a> {
    /// The only host (lowercase) the rule applies to; `None` for every host
    /// of the site.
    pub host: Option<String>,
    pub from: &'a str,
    /// Query parameters the request must carry: a `:name` value captures
    /// the parameter's value, anything else must equal it.
    pub query: Vec<(&'a str, &'a str)>,
    pub to: &'a str,
    pub status: u16,
    /// Whether a file at the request path takes precedence over the rule.
    pub yields_to_files: bool,
    /// ISO country codes (uppercase), any of which the visitor must be in.
    pub countries: Vec<[u8; 2]>,
    /// Language tags (lowercase), one of which the visitor must accept.
    pub languages: Vec<String>,
}

/// A compiled redirect, rewrite or status rule.
#[derive(Debug, Clone)]
pub(super) struct RedirectRule {
    host: Option<Box<str>>,
    /// The `from` segments before any splat.
    segments: Vec<Segment>,
    /// Whether `from` ends in `*`, capturing whatever follows the segments.
    splat: bool,
    /// Query parameters required, each a literal or a capture.
    query: Vec<QueryCondition>,
    target: Target,
    kind: Kind,
    yields: bool,
    pub(super) countries: Vec<[u8; 2]>,
    pub(super) languages: Vec<Box<str>>,
}

#[derive(Debug, Clone)]
struct QueryCondition {
    key: Box<str>,
    /// `None` captures the value (next capture index), `Some` must equal it.
    value: Option<Box<str>>,
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
    /// Forward the request to the absolute `http(s)://` target.
    Proxy,
    /// Serve the target with this 4xx or 5xx status.
    Page(u16),
}

/// The `to` side, split at compile time so building a result is a single
/// pass over the parts.
#[derive(Debug, Clone)]
struct Target {
    /// Everything before the query and fragment for rewrites; before the
    /// fragment only for redirects and proxies (their query is kept as
    /// written).
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
    /// Compiles one `[[domain.redirects]]` rule: 200 and 404 rules yield
    /// to existing files, redirects always apply.
    pub(super) fn compile(rule: &Redirect) -> Result<RedirectRule, RuleError> {
        if !matches!(rule.status, 200 | 301 | 302 | 303 | 307 | 308 | 404) {
            return Err(RuleError::Status(rule.status));
        }
        RedirectRule::compile_spec(&RuleSpec {
            host: None,
            from: &rule.from,
            query: Vec::new(),
            to: &rule.to,
            status: rule.status,
            yields_to_files: !matches!(rule.status, 301 | 302 | 303 | 307 | 308),
            countries: Vec::new(),
            languages: Vec::new(),
        })
    }

    /// Compiles one rule, refusing anything it could not apply faithfully.
    pub(super) fn compile_spec(spec: &RuleSpec<'_>) -> Result<RedirectRule, RuleError> {
        let kind = match spec.status {
            301 | 302 | 303 | 307 | 308 => Kind::Redirect(spec.status),
            200 if !spec.to.starts_with('/') => Kind::Proxy,
            200 => Kind::Rewrite,
            400..=599 => Kind::Page(spec.status),
            status => return Err(RuleError::Status(status)),
        };
        let (segments, mut names, splat) = parse_from(spec.from)?;
        let mut query = Vec::with_capacity(spec.query.len());
        for (key, value) in &spec.query {
            let value = match value.strip_prefix(':') {
                Some(name) => {
                    if name.is_empty() || !name.bytes().all(is_name_byte) || name == "splat" {
                        return Err(RuleError::BadPlaceholder((*value).to_owned()));
                    }
                    if names.contains(&name) {
                        return Err(RuleError::DuplicatePlaceholder((*value).to_owned()));
                    }
                    names.push(name);
                    None
                }
                None => Some(Box::from(decode_query(value).as_ref())),
            };
            query.push(QueryCondition {
                key: Box::from(decode_query(key).as_ref()),
                value,
            });
        }
        if matches!(kind, Kind::Proxy) && !names_a_host(spec.to) {
            return Err(RuleError::BadTarget(spec.to.to_owned()));
        }
        let target = Target::parse(spec.to, &names, splat, kind)?;
        if matches!(kind, Kind::Proxy) && !target.literal_authority() {
            return Err(RuleError::ProxyHostCaptured(spec.to.to_owned()));
        }
        if !target.local && !matches!(kind, Kind::Redirect(_) | Kind::Proxy) {
            return Err(RuleError::NonLocalRewrite {
                status: spec.status,
                to: spec.to.to_owned(),
            });
        }
        Ok(RedirectRule {
            host: spec.host.as_deref().map(Box::from),
            segments,
            splat,
            query,
            target,
            kind,
            yields: spec.yields_to_files,
            countries: spec.countries.clone(),
            languages: spec
                .languages
                .iter()
                .map(|l| Box::from(l.as_str()))
                .collect(),
        })
    }

    /// The literal first segment of `from` ("" for the root rule), or
    /// `None` when it is a placeholder or splat: the key the rule is
    /// indexed under.
    pub(super) fn first_literal(&self) -> Option<&str> {
        match self.segments.first() {
            Some(Segment::Literal(literal)) => Some(literal),
            Some(Segment::Placeholder) => None,
            None if self.splat => None,
            None => Some(""),
        }
    }

    /// Whether an existing file for the request path takes precedence over
    /// this rule.
    pub(super) fn yields_to_files(&self) -> bool {
        self.yields
    }

    /// Whether the rule applies to requests for `host` (lowercase, no port).
    pub(super) fn applies_to_host(&self, host: &str) -> bool {
        self.host.as_deref().is_none_or(|h| h == host)
    }

    /// Checks the query conditions against the raw request `query`,
    /// appending captured values to `captures`.
    pub(super) fn capture_query<'p>(
        &self,
        query: Option<&'p str>,
        captures: &mut Vec<Cow<'p, str>>,
    ) -> bool {
        for condition in &self.query {
            let found = query.unwrap_or("").split('&').find_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_query(key) == *condition.key).then(|| decode_query(value))
            });
            match (found, &condition.value) {
                (Some(value), None) => captures.push(value),
                (Some(value), Some(wanted)) if value == **wanted => {}
                _ => return false,
            }
        }
        true
    }

    /// Matches `path`, leaving the placeholder captures in `captures` and
    /// returning the splat (empty when `from` has none); `None` if it does
    /// not match.
    pub(super) fn capture<'p>(
        &self,
        path: &'p str,
        captures: &mut Vec<Cow<'p, str>>,
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
                Segment::Placeholder if !value.is_empty() => captures.push(Cow::Borrowed(value)),
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
    pub(super) fn action(
        &self,
        captures: &[Cow<'_, str>],
        splat: &str,
        query: Option<&str>,
    ) -> RuleAction {
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
            Kind::Proxy => {
                let mut url = self.target.fill(captures, splat, true);
                // The visitor's query goes to the backend too, after any
                // the target names itself.
                if let Some(query) = query.filter(|q| !q.is_empty()) {
                    url.push(if self.target.has_query { '&' } else { '?' });
                    url.push_str(query);
                }
                RuleAction::Proxy { url }
            }
            Kind::Page(404) => RuleAction::NotFound {
                path: self.target.fill(captures, splat, false),
            },
            Kind::Page(status) => RuleAction::Status {
                status,
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

/// Whether an `http(s)://` URL names a host before its path, so a proxy
/// rule has somewhere to go.
fn names_a_host(url: &str) -> bool {
    let authority = url
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    !authority.is_empty() && !authority.starts_with(':') && !authority.contains(char::is_whitespace)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Target {
    /// Parses `to`. `names` are `from`'s placeholders and `splat` whether it
    /// has one; other `:word`s (a port, say) stay literal. A redirect keeps
    /// `to`'s query and fragment; a proxy its query (a fragment never
    /// reaches a server); a rewrite names a file, so drops both.
    fn parse(to: &str, names: &[&str], splat: bool, kind: Kind) -> Result<Target, RuleError> {
        let redirect = matches!(kind, Kind::Redirect(_));
        let keeps_query = redirect || matches!(kind, Kind::Proxy);
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
            Some(_) if keeps_query => (main, true),
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

    /// Whether the scheme and host come before any capture, so a visitor's
    /// path can never choose which server a proxy rule reaches.
    fn literal_authority(&self) -> bool {
        match self.parts.as_slice() {
            [Part::Literal(_)] => true,
            [Part::Literal(text), ..] => text
                .split_once("://")
                .is_some_and(|(_, rest)| rest.contains('/')),
            _ => false,
        }
    }

    /// Puts the captures into the template; `encode` percent-encodes them
    /// for a `Location` (rewrites name a file by its decoded path).
    fn fill(&self, captures: &[Cow<'_, str>], splat: &str, encode: bool) -> String {
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
                Part::Placeholder(i) => captures.get(*i).map_or("", |c| c.as_ref()),
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

/// A query key or value as written in a URL: `+` is a space, `%XX` a byte.
fn decode_query(text: &str) -> Cow<'_, str> {
    if !text.contains(['+', '%']) {
        return Cow::Borrowed(text);
    }
    let spaced = text.replace('+', " ");
    Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
}
