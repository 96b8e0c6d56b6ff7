//! Config errors that point at the offending place: file, line, column.

use std::fmt;
use std::ops::Range;

/// An error in a config file, rendered as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the error has no position.
    pub line: usize,
    /// 1-based; 0 when the error has no position.
    pub column: usize,
    pub message: String,
}

impl ConfigError {
    /// Builds an error for byte range `span` of `text`.
    pub fn new(file: &str, text: &str, span: Option<Range<usize>>, message: &str) -> ConfigError {
        let (line, column) = match span {
            Some(span) => line_col(text, span.start),
            None => (0, 0),
        };
        ConfigError {
            file: file.to_string(),
            line,
            column,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// The file being checked: its name for messages and its text for positions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error pointing at the start of byte range `span`.
    pub fn at(&self, span: Range<usize>, message: impl AsRef<str>) -> ConfigError {
        ConfigError::new(self.file, self.text, Some(span), message.as_ref())
    }

    /// An error about the file as a whole (nothing to point at).
    pub fn whole(&self, message: impl AsRef<str>) -> ConfigError {
        ConfigError::new(self.file, self.text, None, message.as_ref())
    }

    /// The 1-based line `span` starts on, for "first at line N" hints.
    pub fn line_of(&self, span: &Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }

    /// The text `span` covers, or "" when the span is out of range.
    pub fn slice(&self, span: &Range<usize>) -> &str {
        self.text.get(span.clone()).unwrap_or("")
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
