//! Which older revisions of a domain stay reachable for skew protection.
//!
//! A visitor whose page loaded from revision R asks for R's assets (by
//! cookie or `x-makiatto-revision`) after a deploy; for the domain's
//! `skew_protection_secs` after the next revision went live, R's kept
//! tree still answers them, so a page never mixes two deploys. Deploy
//! puts those revisions in the snapshot; HTTP picks them per request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::store::RevisionRow;

/// The kept, inactive revisions in `rows` (newest first, as the store
/// lists them) whose successor went live less than `secs` ago, each with
/// the moment its pinning ends.
pub(super) fn pinnable(rows: &[RevisionRow], secs: u64) -> Vec<(&RevisionRow, SystemTime)> {
    if secs == 0 {
        return Vec::new();
    }
    let now = SystemTime::now();
    rows.windows(2)
        .filter(|pair| !pair[1].active)
        .filter_map(|pair| {
            let superseded = UNIX_EPOCH + Duration::from_millis(pair[0].created_ms.max(0) as u64);
            let until = superseded + Duration::from_secs(secs);
            (until > now).then_some((&pair[1], until))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(root: &str, created_ms: i64, active: bool) -> RevisionRow {
        RevisionRow {
            domain: "example.com".into(),
            root: root.into(),
            manifest: String::new(),
            config: String::new(),
            source: String::new(),
            branch: None,
            created_ms,
            active,
            extras: String::new(),
            warnings: String::new(),
        }
    }

    #[test]
    fn only_revisions_superseded_within_the_window_are_pinnable() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let rows = [
            row("c", now - 1_000, true),
            row("b", now - 100_000, false),
            row("a", now - 900_000, false),
        ];
        let roots: Vec<&str> = pinnable(&rows, 60)
            .iter()
            .map(|(r, _)| r.root.as_str())
            .collect();
        // b was superseded 1 s ago; a 100 s ago, beyond the 60 s window.
        assert_eq!(roots, ["b"]);
        assert_eq!(pinnable(&rows, 200).len(), 2);
    }
}
