//! Headers rules and redirects from `makiatto.toml` and from the
//! `_redirects` and `_headers` files of the served tree, compiled once per
//! revision and matched per request.
//!
//! Every request passes through here, so `Rules::compile` does all the
//! parsing (patterns, templates, header names and values) and matching only
//! walks what it built: no allocation per rule, and one glob-set pass for
//! headers. A rule that fails to compile is skipped with a warning rather
//! than failing the revision; config validation should already have refused
//! it, and a site serving without one rule beats a site not serving.
//!
//! Redirects follow the Netlify / Cloudflare Pages conventions authors
//! already know:
//!
//! - `from` is matched segment by segment against the decoded request path.
//!   A literal segment matches itself exactly (case-sensitive); `:name`
//!   matches exactly one non-empty segment; a final `*` (the splat) matches
//!   whatever follows, possibly nothing, possibly several segments. `*`
//!   anywhere else, or a `?`/`#` in `from`, makes the rule invalid.
//! - One trailing slash on the request path is ignored for matching, so
//!   `/about/` matches `from = "/about"` and `/old/` matches `/old/*`. The
//!   splat keeps it, so `/old/dir/` can go to `/new/dir/`.
//! - `to` gets `:splat` and every `:name` of `from` replaced by what they
//!   captured; other `:word`s (a port, say) stay as written. In a redirect
//!   the captures are percent-encoded for a `Location`; a rewrite gets them
//!   decoded, since its target is a file path.
//! - Rules are tried in file order and the first match wins, except that a
//!   rewrite (200) or not-found (404) rule is passed over when the site has
//!   a file for the request path: an SPA fallback `/* -> /index.html 200`
//!   must not hide the real assets. Redirects (3xx) always apply.
//! - A redirect whose `to` has no query carries the request's query over;
//!   one with a query of its own keeps only that. A 200 rule to an absolute
//!   `http(s)://` URL is a proxy rule: the request goes to that URL with
//!   the captures percent-encoded as in a redirect, and the request's query
//!   appended (after `&` when `to` has a query of its own). Other 200 and
//!   4xx/5xx rules name a file, so their query and fragment are dropped.
//! - A local target never comes out starting with `//`, which a browser
//!   would read as another host. A rewrite's path is built from the request,
//!   so the caller resolves it against the served tree exactly as it would
//!   a request path.
//!
//! Headers rules match the request path against a glob where `*` stays
//! within one segment and `**` crosses `/`; every matching rule adds its
//! headers, in rule order.
//!
//! The rule files (`redirects_file.rs`, `headers_file.rs`) use Netlify's
//! syntax and its semantics where they differ: every `_redirects` rule,
//! redirects included, yields to an existing file unless forced with `!`;
//! a rule may need query parameters, a country (from the GeoIP lookup of
//! the visitor's address) or a language (from `Accept-Language`). The
//! combined order is: `_redirects` rules first, then `[[domain.redirects]]`
//! (the first match wins); headers from `[[domain.headers]]` first, then
//! `_headers` blocks in file order, whose `! Name` removes what came before.
//! Both kinds are indexed by their first literal path segment
//! (`index.rs`), so thousands of rules cost a request a hash lookup and the
//! few rules that share its first segment.

#[cfg(test)]
mod file_tests;
mod headers;
mod headers_file;
mod index;
mod redirect;
mod redirects_file;
#[cfg(test)]
mod tests;
mod warning;

use std::borrow::Cow;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

use self::headers::HeaderRules;
use self::headers_file::HeaderBlock;
use self::index::SegmentIndex;
use self::redirect::RedirectRule;
use crate::config::Domain;

pub use self::headers_file::FILE as HEADERS_FILE;
pub use self::redirects_file::FILE as REDIRECTS_FILE;
pub use self::warning::RuleFileWarning;

/// What a matching redirect rule asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    /// Answer with `status` (301, 302, 303, 307, 308) and this `Location`.
    Redirect { status: u16, location: String },
    /// Serve this path instead (status 200), e.g. an SPA fallback.
    Rewrite { path: String },
    /// Forward the request to this absolute `http(s)://` URL (a 200 rule
    /// to another server) and stream its answer back.
    Proxy { url: String },
    /// Serve this path with status 404.
    NotFound { path: String },
    /// Serve this path with another 4xx or 5xx status (a `_redirects`
    /// rule such as `/old/* /gone.html 410`).
    Status { status: u16, path: String },
}

/// The texts of a revision's rule files, when it has them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleFiles<'a> {
    pub redirects: Option<&'a str>,
    pub headers: Option<&'a str>,
}

/// What rules may ask about the request beyond its path and query.
pub struct Visitor<'a> {
    /// The requested host, lowercase, without port.
    pub host: &'a str,
    /// The `Accept-Language` header, if any.
    pub accept_language: Option<&'a str>,
    /// The visitor's country (ISO code, uppercase); called at most once,
    /// and only when a rule with a country condition matches.
    pub country: &'a (dyn Fn() -> Option<[u8; 2]> + Sync),
}

impl Visitor<'_> {
    /// A visitor nothing is known about, on any host.
    pub const ANYONE: Visitor<'static> = Visitor {
        host: "",
        accept_language: None,
        country: &|| None,
    };
}

/// A domain's compiled headers rules and redirects.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Redirect, rewrite and status rules in the order they are tried.
    redirects: Vec<RedirectRule>,
    /// `redirects` by the first literal segment of their pattern.
    redirect_index: SegmentIndex,
    /// `[[domain.headers]]`.
    headers: HeaderRules,
    /// `_headers` blocks in file order.
    file_headers: Vec<HeaderBlock>,
    /// `file_headers` by the first literal segment of their pattern.
    file_header_index: SegmentIndex,
}

/// Why a rule was skipped at compile time.
#[derive(Debug, thiserror::Error)]
enum RuleError {
    #[error("status {0} is not one of 200, 301, 302, 303, 307, 308, or a 4xx/5xx status")]
    Status(u16),
    #[error("`from` {0:?} does not start with `/`")]
    FromNotAPath(String),
    #[error("`from` {0:?} has a query or fragment, which is never matched")]
    FromQuery(String),
    #[error("`from` {0:?} has a `*` other than as its whole last segment")]
    MisplacedSplat(String),
    #[error(
        "placeholder {0:?} is not `:` and a name of letters, digits and `_` other than `splat`"
    )]
    BadPlaceholder(String),
    #[error("placeholder {0:?} appears twice in `from`")]
    DuplicatePlaceholder(String),
    #[error("`to` {0:?} is neither a path starting with `/` nor an http(s) URL")]
    BadTarget(String),
    #[error("proxy target {0:?} takes its host from the request path")]
    ProxyHostCaptured(String),
    #[error("a {status} rule must target a path on the site, not {to:?}")]
    NonLocalRewrite { status: u16, to: String },
    #[error("invalid glob {pattern:?}: {source}")]
    Glob {
        pattern: String,
        source: globset::Error,
    },
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    #[error("invalid value for header {0:?}")]
    HeaderValue(String),
}

impl RuleError {
    /// What to write instead, for a rule file line.
    fn fix(&self) -> &'static str {
        match self {
            RuleError::Status(_) => "use 301, 302, 303, 307 or 308 to redirect, 200 to rewrite",
            RuleError::FromNotAPath(_) => "start the source with `/`",
            RuleError::FromQuery(_) => {
                "match query parameters with `key=value` tokens after the source, e.g. `/store id=:id /items/:id`"
            }
            RuleError::MisplacedSplat(_) => "use `*` only as the last segment, e.g. `/blog/*`",
            RuleError::BadPlaceholder(_) | RuleError::DuplicatePlaceholder(_) => {
                "name each placeholder once, with letters, digits and `_`"
            }
            RuleError::BadTarget(_) => {
                "write the target as a path starting with `/` or an http(s):// URL"
            }
            RuleError::ProxyHostCaptured(_) => {
                "write the backend's host literally, e.g. `https://api.example.com/:splat`; a visitor must not choose the server"
            }
            RuleError::NonLocalRewrite { .. } => {
                "rewrite to a path on the site, or redirect with 301 or 302"
            }
            RuleError::Glob { .. } | RuleError::HeaderName(_) | RuleError::HeaderValue(_) => {
                "fix the header rule"
            }
        }
    }
}

impl Rules {
    /// Compiles the rules of one domain, skipping (with a warning) any that fail.
    pub fn compile(domain: &Domain) -> Rules {
        Rules::compile_with_files(domain, RuleFiles::default()).0
    }

    /// Compiles the rules of one domain together with its rule files;
    /// returns a warning for every rule file line skipped.
    pub fn compile_with_files(
        domain: &Domain,
        files: RuleFiles<'_>,
    ) -> (Rules, Vec<RuleFileWarning>) {
        let mut warnings = Vec::new();
        let mut redirects = Vec::new();
        if let Some(text) = files.redirects {
            let (parsed, skipped) = redirects_file::parse(text);
            warnings.extend(skipped);
            for rule in parsed {
                match RedirectRule::compile_spec(&rule.spec) {
                    Ok(compiled) => redirects.push(compiled),
                    Err(error) => warnings.push(RuleFileWarning {
                        file: REDIRECTS_FILE,
                        line: rule.line,
                        column: rule.column,
                        problem: error.to_string(),
                        fix: error.fix().to_string(),
                    }),
                }
            }
        }
        for rule in &domain.redirects {
            match RedirectRule::compile(rule) {
                Ok(compiled) => redirects.push(compiled),
                Err(error) => {
                    tracing::warn!(
                        domain = %domain.name,
                        from = %rule.from,
                        to = %rule.to,
                        %error,
                        "skipping redirect rule"
                    );
                }
            }
        }
        let mut redirect_index = SegmentIndex::default();
        for (i, rule) in redirects.iter().enumerate() {
            redirect_index.add(i as u32, rule.first_literal());
        }
        let mut file_headers = Vec::new();
        if let Some(text) = files.headers {
            let (blocks, skipped) = headers_file::parse(text);
            warnings.extend(skipped);
            file_headers = blocks;
        }
        let mut file_header_index = SegmentIndex::default();
        for (i, block) in file_headers.iter().enumerate() {
            file_header_index.add(i as u32, block.pattern.first_literal());
        }
        warnings.sort_by_key(|w| (w.file, w.line));
        let rules = Rules {
            redirects,
            redirect_index,
            headers: HeaderRules::compile(&domain.name, &domain.headers),
            file_headers,
            file_header_index,
        };
        (rules, warnings)
    }

    /// [`Rules::route_for`] a visitor nothing is known about.
    pub fn route(
        &self,
        path: &str,
        query: Option<&str>,
        has_file: &dyn Fn(&str) -> bool,
    ) -> Option<RuleAction> {
        self.route_for(&Visitor::ANYONE, path, query, has_file)
    }

    /// First matching redirect/rewrite rule for a request path (already
    /// percent-decoded, starting with `/`) and raw query from `visitor`;
    /// `has_file` says whether the site has a file for the path, which
    /// shadows rules that yield to files.
    pub fn route_for(
        &self,
        visitor: &Visitor<'_>,
        path: &str,
        query: Option<&str>,
        has_file: &dyn Fn(&str) -> bool,
    ) -> Option<RuleAction> {
        // Reused across rules: allocates at most once per request, and only
        // when some rule has placeholders.
        let mut captures: Vec<Cow<'_, str>> = Vec::new();
        // Asked at most once, and only when a shadowable rule matches.
        let mut file_exists = None;
        let mut country = None;
        for i in self.redirect_index.candidates(path) {
            let Some(rule) = self.redirects.get(i) else {
                continue;
            };
            if !rule.applies_to_host(visitor.host) {
                continue;
            }
            let Some(splat) = rule.capture(path, &mut captures) else {
                continue;
            };
            if !rule.capture_query(query, &mut captures) {
                continue;
            }
            if !rule.countries.is_empty() {
                let found = *country.get_or_insert_with(|| (visitor.country)());
                if !found.is_some_and(|c| rule.countries.contains(&c)) {
                    continue;
                }
            }
            if !rule.languages.is_empty()
                && !accepts_language(visitor.accept_language, &rule.languages)
            {
                continue;
            }
            if rule.yields_to_files() && *file_exists.get_or_insert_with(|| has_file(path)) {
                continue;
            }
            return Some(rule.action(&captures, splat, query));
        }
        None
    }

    /// Headers to add for a request path, in rule order (later rules' values
    /// for the same name come later), from `[[domain.headers]]` only.
    pub fn headers_for<'a>(
        &'a self,
        path: &str,
    ) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + use<'a> {
        self.headers.for_path(path)
    }

    /// Applies every headers rule to a response's `headers`:
    /// `[[domain.headers]]` matched against `file_path` (the served file,
    /// with its leading `/`), then `_headers` blocks matched against
    /// `request_path` on `host`. The first rule to set a name replaces the
    /// default of that name; later ones add values; `! Name` removes it.
    pub fn apply_headers(
        &self,
        headers: &mut HeaderMap,
        file_path: &str,
        request_path: &str,
        host: &str,
    ) {
        let mut set: Vec<&HeaderName> = Vec::new();
        fn put<'r>(
            headers: &mut HeaderMap,
            set: &mut Vec<&'r HeaderName>,
            name: &'r HeaderName,
            value: &HeaderValue,
        ) {
            if !set.contains(&name) {
                headers.remove(name);
                set.push(name);
            }
            headers.append(name.clone(), value.clone());
        }
        if !self.headers.is_empty() {
            for (name, value) in self.headers.for_path(file_path) {
                put(headers, &mut set, name, value);
            }
        }
        if self.file_headers.is_empty() {
            return;
        }
        for i in self.file_header_index.candidates(request_path) {
            let Some(block) = self.file_headers.get(i) else {
                continue;
            };
            if block.pattern.host.as_deref().is_some_and(|h| h != host)
                || !block.pattern.matches(request_path)
            {
                continue;
            }
            for name in &block.remove {
                headers.remove(name);
            }
            for (name, value) in &block.set {
                put(headers, &mut set, name, value);
            }
        }
    }

    /// Whether the domain has no redirect and no headers rules.
    pub fn is_empty(&self) -> bool {
        self.redirects.is_empty() && self.headers.is_empty() && self.file_headers.is_empty()
    }
}

/// Whether an `Accept-Language` value lists one of `wanted` (lowercase
/// tags; `en` also accepts `en-GB`), with a non-zero weight.
fn accepts_language(header: Option<&str>, wanted: &[Box<str>]) -> bool {
    let Some(header) = header else {
        return false;
    };
    header.split(',').any(|item| {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused
            && wanted.iter().any(|w| {
                tag == **w || (tag.starts_with(&**w) && tag.as_bytes().get(w.len()) == Some(&b'-'))
            })
    })
}
