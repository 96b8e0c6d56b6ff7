//! The published live state: the snapshots the serving subsystems read.
//!
//! Deploy publishes the site snapshot (`sites.rs`) and the preview
//! passwords (`preview_guards.rs`), ACME the certificate snapshot
//! (`certs.rs`) with the session ticket keys (`tickets.rs`); HTTP, DNS and
//! DNS over TLS read whichever is
//! current, by one atomic load, and never touch the store on a request.
//! This module sits below all of them, so the HTTP server is a leaf that
//! serves what was published. A site's compiled headers rules and
//! redirects (`rules.rs`), with those of the tree's `_redirects` and
//! `_headers` (`rule_files.rs`), are part of its snapshot; `body_cache.rs`
//! bounds the file bodies snapshots keep in memory.

mod body_cache;
mod certs;
mod preview_guards;
mod rule_files;
mod rules;
mod sites;
mod tickets;

use std::sync::Arc;

pub use body_cache::{cacheable, set_budget as set_body_cache_budget};
pub use certs::{CertEntry, CertResolver, CertSnapshot, CertTable, server_config};
pub use preview_guards::{
    COOKIE_LIFETIME, CheckSlots, Checked, PREVIEW_COOKIE, PasswordError, PreviewGuard,
    PreviewGuards, hash_password, new_cookie_key, preview_domain,
};
pub use rule_files::{compile_rules, is_rule_file};
pub use rules::{RuleAction, RuleFileWarning, RuleFiles, Rules, Visitor};
pub use sites::{
    FileOverride, PERMALINK_LABEL, Pinned, Site, SiteFile, SiteTable, SiteWasm, Sites,
    content_type, host_name,
};
pub use tickets::{
    TICKET_KEY_ID_LEN, TICKET_KEY_SECRET_LEN, TICKET_LIFETIME_SECS, TicketKeyBytes, TicketKeys,
};

/// The snapshots of one node, as the subsystems share them.
#[derive(Debug, Clone)]
pub struct Live {
    /// The sites served, published by deploy (and by the mesh through it).
    pub sites: Arc<SiteTable>,
    /// The certificates served, published by the acme lifecycle.
    pub certs: Arc<CertTable>,
    /// The preview passwords, published by deploy.
    pub guards: Arc<PreviewGuards>,
}

impl Live {
    /// Empty snapshots; `fallback_to_first_site` as `[http]` sets it (dev
    /// mode answers unknown hosts with the first site).
    pub fn new(fallback_to_first_site: bool) -> Live {
        Live {
            sites: Arc::new(SiteTable::new(fallback_to_first_site)),
            certs: Arc::new(CertTable::new()),
            guards: Arc::new(PreviewGuards::new()),
        }
    }
}
