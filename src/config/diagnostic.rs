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
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
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
