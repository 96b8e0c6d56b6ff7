//! When to order: the names a domain's certificate must cover, when a
//! certificate is due for renewal, and how long to wait after a failure.
//! Pure functions, so the lifecycle's decisions are unit-tested here.

use crate::config::Domain;

/// Renew this long before expiry at most (Let's Encrypt's advice for its
/// 90-day certificates).
const RENEW_BEFORE_MS: u64 = 30 * 24 * 3600 * 1000;
/// Longest wait between failed attempts.
const MAX_BACKOFF_MS: u64 = 24 * 3600 * 1000;
/// Shortest wait after the CA says we hit a rate limit: its windows are
/// hours long, and retrying sooner only extends them.
const RATE_LIMITED_BACKOFF_MS: u64 = 3 * 3600 * 1000;

/// The names `domain`'s certificate covers: the apex, its aliases inside
/// the zone (only names our DNS answers can be validated by DNS-01),
/// `*.preview.<apex>` when previews are on, `*.rev.<apex>` for the deploy
/// permalinks, and `*.ns.<apex>`, which covers every node's
/// `<node>.ns.<apex>` for DNS over TLS.
pub fn names(domain: &Domain) -> Vec<String> {
    let apex = &domain.name;
    let mut names = vec![apex.clone()];
    for alias in &domain.aliases {
        if alias.ends_with(&format!(".{apex}")) && !names.contains(alias) {
            names.push(alias.clone());
        }
    }
    if domain.previews {
        names.push(format!("*.preview.{apex}"));
    }
    names.push(format!("*.rev.{apex}"));
    names.push(format!("*.ns.{apex}"));
    names
}

/// Aliases the certificate cannot cover (outside the apex's zone).
pub fn uncovered_aliases(domain: &Domain) -> Vec<&str> {
    domain
        .aliases
        .iter()
        .filter(|a| !a.ends_with(&format!(".{}", domain.name)))
        .map(String::as_str)
        .collect()
}

/// When a certificate valid from `not_before_ms` to `not_after_ms` should be
/// renewed: 30 days before expiry, or with a third of its lifetime left if
/// that is sooner (short-lived certificates).
pub fn renew_at(not_before_ms: u64, not_after_ms: u64) -> u64 {
    let lifetime = not_after_ms.saturating_sub(not_before_ms);
    not_after_ms.saturating_sub(RENEW_BEFORE_MS.min(lifetime / 3))
}

/// How long to wait after `attempts` failures in a row (1 or more):
/// `first_ms` doubling per failure up to a day, at least three hours when
/// the CA rate-limited us.
pub fn backoff_ms(attempts: u32, first_ms: u64, rate_limited: bool) -> u64 {
    let doublings = attempts.saturating_sub(1).min(32);
    let wait = first_ms
        .saturating_mul(1u64 << doublings)
        .min(MAX_BACKOFF_MS);
    if rate_limited {
        wait.max(RATE_LIMITED_BACKOFF_MS)
    } else {
        wait
    }
}

/// Whether `host` is a preview (`<slug>.preview.<domain>`) of one of
/// `domains`: covered by that domain's `*.preview` name, never ordered alone.
pub fn is_preview_host<'a>(host: &str, mut domains: impl Iterator<Item = &'a str>) -> bool {
    host.split_once('.').is_some_and(|(slug, rest)| {
        !slug.is_empty()
            && rest
                .strip_prefix("preview.")
                .is_some_and(|domain| domains.any(|d| d == domain))
    })
}

/// Whether a certificate covering `have` serves every name in `want`.
pub fn covers(have: &[String], want: &[String]) -> bool {
    want.iter().all(|w| have.contains(w))
}

/// Whether `host` is served by a certificate naming `pattern` (exact, or
/// a `*.` wildcard matching one label).
pub fn matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600 * 1000;

    fn domain(toml: &str) -> Domain {
        match crate::config::SiteConfig::parse("makiatto.toml", toml) {
            Ok(mut site) => site.domains.remove(0),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn names_cover_apex_aliases_previews_and_name_servers() {
        let d = domain(
            "[[domain]]\nname = \"example.com\"\naliases = [\"www.example.com\", \"example.org\"]\n",
        );
        assert_eq!(
            names(&d),
            [
                "example.com",
                "www.example.com",
                "*.preview.example.com",
                "*.rev.example.com",
                "*.ns.example.com"
            ]
        );
        assert_eq!(uncovered_aliases(&d), ["example.org"]);
        let d = domain("[[domain]]\nname = \"example.com\"\npreviews = false\n");
        assert_eq!(
            names(&d),
            ["example.com", "*.rev.example.com", "*.ns.example.com"]
        );
    }

    #[test]
    fn ninety_day_certificates_renew_thirty_days_before_expiry() {
        assert_eq!(renew_at(0, 90 * DAY), 60 * DAY);
        // Short-lived ones with a third of their life left.
        assert_eq!(renew_at(1_000, 61_000), 41_000);
        // A certificate that claims to end before it starts renews now.
        assert_eq!(renew_at(5_000, 1_000), 1_000);
    }

    #[test]
    fn backoff_doubles_up_to_a_day_and_respects_rate_limits() {
        assert_eq!(backoff_ms(1, 60_000, false), 60_000);
        assert_eq!(backoff_ms(3, 60_000, false), 240_000);
        assert_eq!(backoff_ms(40, 60_000, false), DAY);
        assert_eq!(backoff_ms(1, 60_000, true), 3 * 3600 * 1000);
    }

    #[test]
    fn preview_hosts_are_recognised_by_their_domain() {
        let domains = ["example.com", "other.org"];
        assert!(is_preview_host(
            "feature.preview.example.com",
            domains.into_iter()
        ));
        assert!(!is_preview_host("example.com", domains.into_iter()));
        assert!(!is_preview_host(
            "feature.preview.unknown.net",
            domains.into_iter()
        ));
        assert!(!is_preview_host(
            "a.b.preview.example.com",
            domains.into_iter()
        ));
        assert!(!is_preview_host(
            ".preview.example.com",
            domains.into_iter()
        ));
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(matches(
            "*.preview.example.com",
            "feature.preview.example.com"
        ));
        assert!(!matches("*.preview.example.com", "a.b.preview.example.com"));
        assert!(!matches("*.preview.example.com", "preview.example.com"));
        assert!(matches("example.com", "example.com"));
        assert!(covers(&["a".into(), "b".into()], &["b".into()]));
        assert!(!covers(&["a".into()], &["a".into(), "b".into()]));
    }
}
