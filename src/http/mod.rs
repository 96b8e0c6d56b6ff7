//! The HTTP server: host routing, static files, rules.
//!
//! Requests are answered from the `SiteTable` snapshot the deploy module
//! publishes; this module never writes to the store or the CAS.

mod body;
mod conditional;
mod function;
mod negotiate;
mod path;
mod range;
mod rules;
mod serve;
mod server;
mod site;
pub mod tls;

pub use body::Body;
pub use rules::{RuleAction, Rules};
pub use server::{HttpsRedirect, bind, serve, serve_http, serve_https};
pub use site::{FileOverride, Site, SiteFile, SiteTable, SiteWasm, Sites, content_type};
pub use tls::{CertEntry, CertSnapshot, CertTable};
