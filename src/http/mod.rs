//! The HTTP server: host routing, static files, rules.

mod rules;

pub use rules::{RuleAction, Rules};
