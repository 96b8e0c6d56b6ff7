//! A line of `_redirects` or `_headers` that was skipped, and why.
//!
//! Real sites carry rule files written for another host, edited by hand for
//! years; one bad line must not take the whole site down, so it is skipped
//! and reported (to the pusher, and in the revision's record) with where it
//! is and what to write instead. A site that prefers a refused push sets
//! `strict_rule_files`.

use std::fmt;

/// One skipped line of a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileWarning {
    /// `_redirects` or `_headers`.
    pub file: &'static str,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column (in characters) of the offending token.
    pub column: usize,
    /// What is wrong, naming the text.
    pub problem: String,
    /// What to write instead.
    pub fix: String,
}

impl fmt::Display for RuleFileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}; {} (line skipped)",
            self.file, self.line, self.column, self.problem, self.fix
        )
    }
}

/// A whitespace-separated token of a rule file line, with its column.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    pub text: &'a str,
    /// 1-based column in characters.
    pub column: usize,
}

/// Splits `line` at whitespace, stopping at a token starting with `#`
/// (a trailing comment).
pub(super) fn tokens(line: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    let mut column = 0;
    for (i, c) in line.char_indices() {
        column += 1;
        if c.is_whitespace() {
            if let Some((s, col)) = start.take() {
                out.push(Token {
                    text: &line[s..i],
                    column: col,
                });
            }
        } else if start.is_none() {
            if c == '#' {
                return out;
            }
            start = Some((i, column));
        }
    }
    if let Some((s, col)) = start {
        out.push(Token {
            text: &line[s..],
            column: col,
        });
    }
    out
}

/// The lines of a rule file: a leading byte-order mark dropped, `\r\n`
/// endings accepted, numbered from 1.
pub(super) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
}
