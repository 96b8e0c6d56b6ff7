//! Rules indexed by the first segment of their path pattern, so a request
//! is tried only against rules that could match it.
//!
//! A site migrated from another host may carry thousands of rules, most
//! starting with a literal segment (`/blog/...`, `/old-page`); trying each
//! in turn would make every request pay for all of them. One hash lookup
//! of the request's first segment finds the few rules that can match; the
//! rules starting with a placeholder or splat are tried too, merged in
//! rule order so the first match still wins.

use std::collections::HashMap;

/// Rule numbers by first literal segment, plus the rules with none.
#[derive(Debug, Clone, Default)]
pub(super) struct SegmentIndex {
    /// First literal segment ("" for the root pattern) → rule numbers,
    /// ascending.
    literal: HashMap<Box<str>, Vec<u32>>,
    /// Rules whose pattern starts with a placeholder or splat, ascending.
    wild: Vec<u32>,
}

impl SegmentIndex {
    /// Adds rule `number` (numbers must be added in ascending order) under
    /// its first literal segment, or as a wild rule for `None`.
    pub(super) fn add(&mut self, number: u32, first: Option<&str>) {
        match first {
            Some(segment) => self.literal.entry(segment.into()).or_default().push(number),
            None => self.wild.push(number),
        }
    }

    /// The numbers of every rule that could match `path` (starting with
    /// `/`), ascending.
    pub(super) fn candidates<'a>(&'a self, path: &str) -> Candidates<'a> {
        let rest = path.strip_prefix('/').unwrap_or(path);
        let first = rest.split('/').next().unwrap_or("");
        let literal = self.literal.get(first).map_or(&[][..], Vec::as_slice);
        Candidates {
            literal,
            wild: &self.wild,
        }
    }
}

/// Two ascending lists merged into one.
pub(super) struct Candidates<'a> {
    literal: &'a [u32],
    wild: &'a [u32],
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let take_literal = match (self.literal.first(), self.wild.first()) {
            (Some(l), Some(w)) => l < w,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let list = if take_literal {
            &mut self.literal
        } else {
            &mut self.wild
        };
        let (first, rest) = list.split_first()?;
        *list = rest;
        Some(*first as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_merge_literal_and_wild_rules_in_rule_order() {
        let mut index = SegmentIndex::default();
        index.add(0, Some("blog"));
        index.add(1, None);
        index.add(2, Some("docs"));
        index.add(3, Some("blog"));
        index.add(4, None);
        index.add(5, Some(""));
        let of = |path| index.candidates(path).collect::<Vec<_>>();
        assert_eq!(of("/blog/a"), [0, 1, 3, 4]);
        assert_eq!(of("/docs"), [1, 2, 4]);
        assert_eq!(of("/other/x"), [1, 4]);
        assert_eq!(of("/"), [1, 4, 5]);
    }
}
