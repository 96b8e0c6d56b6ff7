//! Preview hosts: each non-production branch of a repo is served at
//! `<slug>.preview.<domain>`, beside (never instead of) the production
//! revision.
//!
//! Slug rules: the branch name lowercased; every run of characters outside
//! `[a-z0-9]` becomes one `-`; leading and trailing `-` are dropped; at most
//! 63 characters (one DNS label); an empty result is `branch`. When another
//! branch already holds that slug for the domain, the slug is cut to 58
//! characters and `-` plus 4 hex digits of the branch name's blake3 are
//! appended, so each branch keeps a stable, distinct host.

use super::DeployError;
use crate::store::Store;

/// Longest DNS label.
const MAX_LABEL: usize = 63;
/// Hex digits of the disambiguating suffix.
const SUFFIX_HEX: usize = 4;

/// The slug of `branch` before any disambiguation.
pub fn slug(branch: &str) -> String {
    let mut out = String::with_capacity(branch.len().min(MAX_LABEL));
    for c in branch.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(MAX_LABEL);
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "branch".to_string()
    } else {
        trimmed.to_string()
    }
}

/// `slug` with a suffix naming `branch` uniquely.
fn disambiguated(branch: &str) -> String {
    let base = slug(branch);
    let keep = MAX_LABEL - SUFFIX_HEX - 1;
    let cut = base[..base.len().min(keep)].trim_end_matches('-');
    let hash = blake3::hash(branch.as_bytes()).to_hex();
    format!("{cut}-{}", &hash[..SUFFIX_HEX])
}

/// The host the preview of `branch` of `repo` gets under `domain`.
pub(super) fn host_for(
    store: &Store,
    domain: &str,
    repo: &str,
    branch: &str,
) -> Result<String, DeployError> {
    let host = format!("{}.preview.{domain}", slug(branch));
    match store.preview_owner(&host)? {
        Some((r, b)) if r != repo || b != branch => {
            Ok(format!("{}.preview.{domain}", disambiguated(branch)))
        }
        _ => Ok(host),
    }
}

/// Whether `host` is a preview host of `domain`.
pub(super) fn is_preview_of(host: &str, domain: &str) -> bool {
    host.strip_suffix(domain)
        .and_then(|rest| rest.strip_suffix(".preview."))
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_one_lowercase_dns_label() {
        assert_eq!(slug("feature/New_Thing"), "feature-new-thing");
        assert_eq!(slug("--x--"), "x");
        assert_eq!(slug("ünïcode"), "n-code");
        assert_eq!(slug("///"), "branch");
        assert_eq!(slug(&"a".repeat(100)).len(), 63);
        let long = format!("{}-b", "a".repeat(62));
        assert!(!slug(&long).ends_with('-'));
    }

    #[test]
    fn disambiguated_slugs_stay_within_a_label_and_differ() {
        let a = disambiguated(&"x".repeat(80));
        assert!(a.len() <= 63, "{a}");
        assert_ne!(disambiguated("Feature"), disambiguated("feature"));
    }

    #[test]
    fn preview_hosts_are_recognised() {
        assert!(is_preview_of("dev.preview.example.com", "example.com"));
        assert!(!is_preview_of("preview.example.com", "example.com"));
        assert!(!is_preview_of("a.b.preview.example.com", "example.com"));
        assert!(!is_preview_of("dev.preview.other.com", "example.com"));
    }
}
