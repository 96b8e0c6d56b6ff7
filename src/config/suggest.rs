//! Near-miss suggestions: "did you mean ...?" for misspelt field names and
//! values, so a typo costs the user one glance instead of a trip to the docs.

/// The candidate `input` most plausibly meant, if one is close enough.
///
/// Comparison ignores case (so `mxx` finds `MX`) and treats `-` as `_`, the two commonest slips.
/// Short names need a closer match, so `zz` does not become `to`.
pub(super) fn closest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let wanted = input.to_ascii_lowercase().replace('-', "_");
    let allowed = if wanted.chars().count() <= 4 { 1 } else { 2 };
    let by_edits = candidates
        .iter()
        .map(|c| (strsim::osa_distance(&wanted, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    by_edits.or_else(|| {
        // Catches truncations and extensions (`max_memory` for `max_memory_mb`)
        // that are too many edits away but share a long prefix.
        candidates
            .iter()
            .map(|c| (strsim::jaro_winkler(&wanted, &c.to_ascii_lowercase()), *c))
            .filter(|(score, _)| *score >= 0.9)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, c)| c)
    })
}

/// `"a", "b", "c"`: candidates quoted as they appear in messages.
pub(super) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tail of an "unknown X" message: a suggestion when one is close,
/// otherwise the full list of what is accepted.
pub(super) fn hint(input: &str, candidates: &[&str]) -> String {
    match closest(input, candidates) {
        Some(c) => format!(", did you mean {c:?}?"),
        None => match candidates {
            [] => ", this table takes no fields".to_string(),
            [only] => format!(", expected {only:?}"),
            _ => format!(", expected one of {}", quoted_list(candidates)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses() {
        let fields = [
            "name",
            "path",
            "aliases",
            "production_branch",
            "max_memory_mb",
        ];
        assert_eq!(closest("pathh", &fields), Some("path"));
        assert_eq!(closest("nmae", &fields), Some("name"));
        assert_eq!(closest("Name", &fields), Some("name"));
        assert_eq!(
            closest("production-branch", &fields),
            Some("production_branch")
        );
        assert_eq!(closest("max_memory", &fields), Some("max_memory_mb"));
        assert_eq!(closest("zzz", &fields), None);
        assert_eq!(closest("zz", &["to", "from"]), None);
    }

    #[test]
    fn hint_lists_candidates_without_a_match() {
        assert_eq!(hint("zzz", &["a", "b"]), ", expected one of \"a\", \"b\"");
        assert_eq!(hint("zzz", &["a"]), ", expected \"a\"");
        assert_eq!(hint("zzz", &[]), ", this table takes no fields");
    }
}
