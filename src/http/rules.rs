//! Headers rules and redirects from `makiatto.toml`, compiled once per
//! revision and matched per request.

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
pub struct Rules {}

impl Rules {
    /// Compiles the rules of one domain.
    pub fn compile(domain: &Domain) -> Rules {
        let _ = domain;
        Rules {}
    }
}
