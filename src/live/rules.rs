//! Headers rules and redirects from `makiatto.toml`, compiled once per
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
//!   one with a query of its own keeps only that. Only redirects may target
//!   an absolute `http(s)://` URL; a rewrite's query and fragment are
//!   dropped.
//! - A local target never comes out starting with `//`, which a browser
//!   would read as another host. A rewrite's path is built from the request,
//!   so the caller resolves it against the served tree exactly as it would
//!   a request path.
//!
//! Headers rules match the request path against a glob where `*` stays
//! within one segment and `**` crosses `/`; every matching rule adds its
//! headers, in rule order.

mod headers;
mod redirect;
#[cfg(test)]
mod tests;

use hyper::header::{HeaderName, HeaderValue};

use self::headers::HeaderRules;
use self::redirect::RedirectRule;
use crate::config::Domain;

/// What a matching redirect rule asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAction {
    /// Answer with `status` (301, 302, 303, 307, 308) and this `Location`.
    Redirect { status: u16, location: String },
    /// Serve this path instead (status 200), e.g. an SPA fallback.
    Rewrite { path: String },
    /// Serve this path with status 404.
    NotFound { path: String },
}

/// A domain's compiled headers rules and redirects.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Redirect, rewrite and not-found rules in file order.
    redirects: Vec<RedirectRule>,
    headers: HeaderRules,
}

/// Why a rule was skipped at compile time.
#[derive(Debug, thiserror::Error)]
enum RuleError {
    #[error("status {0} is not one of 200, 301, 302, 303, 307, 308, 404")]
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

impl Rules {
    /// Compiles the rules of one domain, skipping (with a warning) any that fail.
    pub fn compile(domain: &Domain) -> Rules {
        let redirects = domain
            .redirects
            .iter()
            .filter_map(|rule| match RedirectRule::compile(rule) {
                Ok(compiled) => Some(compiled),
                Err(error) => {
                    tracing::warn!(
                        domain = %domain.name,
                        from = %rule.from,
                        to = %rule.to,
                        %error,
                        "skipping redirect rule"
                    );
                    None
                }
            })
            .collect();
        Rules {
            redirects,
            headers: HeaderRules::compile(&domain.name, &domain.headers),
        }
    }

    /// First matching redirect/rewrite rule for a request path (already
    /// percent-decoded, starting with `/`) and raw query; `has_file` says
    /// whether the site has a file for the path, which shadows 200 and 404 rules.
    pub fn route(
        &self,
        path: &str,
        query: Option<&str>,
        has_file: &dyn Fn(&str) -> bool,
    ) -> Option<RuleAction> {
        // Reused across rules: allocates at most once per request, and only
        // when some rule has placeholders.
        let mut captures = Vec::new();
        // Asked at most once, and only when a shadowable rule matches.
        let mut file_exists = None;
        for rule in &self.redirects {
            let Some(splat) = rule.capture(path, &mut captures) else {
                continue;
            };
            if rule.yields_to_files() && *file_exists.get_or_insert_with(|| has_file(path)) {
                continue;
            }
            return Some(rule.action(&captures, splat, query));
        }
        None
    }

    /// Headers to add for a request path, in rule order (later rules' values
    /// for the same name come later).
    pub fn headers_for<'a>(
        &'a self,
        path: &str,
    ) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + use<'a> {
        self.headers.for_path(path)
    }

    /// Whether the domain has no redirect and no headers rules.
    pub fn is_empty(&self) -> bool {
        self.redirects.is_empty() && self.headers.is_empty()
    }
}
