//! The one layout of admin text output: rows of cells in columns, each
//! column padded to a width and aligned, cells joined by a fixed gap.
//! Every command that prints rows goes through it, so output stays
//! consistent and scripts can split it on the gap.

use std::fmt::Write as _;

/// How a column places its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Minimum width in characters; longer cells are never cut.
    width: usize,
    /// Whether cells are padded on the left (numbers) or the right.
    right: bool,
}

impl Column {
    /// As wide as each cell, no padding.
    pub const FIT: Column = Column {
        width: 0,
        right: false,
    };

    /// Padded on the right to `width`.
    pub const fn left(width: usize) -> Column {
        Column {
            width,
            right: false,
        }
    }

    /// Padded on the left to `width`.
    pub const fn right(width: usize) -> Column {
        Column { width, right: true }
    }
}

/// Text laid out in columns, built row by row.
#[derive(Debug)]
pub struct Table {
    /// Between two cells of a row.
    gap: &'static str,
    /// Cells past the last column are laid out as [`Column::FIT`].
    columns: Vec<Column>,
    out: String,
}

impl Table {
    /// A table whose cells are separated by `gap`.
    pub fn new(gap: &'static str, columns: &[Column]) -> Table {
        Table {
            gap,
            columns: columns.to_vec(),
            out: String::new(),
        }
    }

    /// Appends one row; it may have fewer cells than there are columns.
    pub fn row<I>(&mut self, cells: I)
    where
        I: IntoIterator,
        I::Item: std::fmt::Display,
    {
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                self.out.push_str(self.gap);
            }
            let column = self.columns.get(i).copied().unwrap_or(Column::FIT);
            // Padding applies to the rendered text, whatever the cell's type.
            let cell = cell.to_string();
            let width = column.width;
            let _ = if column.right {
                write!(self.out, "{cell:>width$}")
            } else {
                write!(self.out, "{cell:<width$}")
            };
        }
        self.out.push('\n');
    }

    /// Appends a line that stands outside the columns (a note between rows).
    pub fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// The laid-out text, one line per row, each ending in a newline.
    pub fn into_text(self) -> String {
        self.out
    }
}

/// The first 12 characters of a revision root or commit id, as text output
/// abbreviates them (the whole id when it is shorter).
pub fn abbreviated(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_padded_and_aligned_per_column_and_joined_by_the_gap() {
        let mut table = Table::new(" ", &[Column::left(6), Column::right(4)]);
        table.row(["NAME", "SIZE", "NOTE"]);
        table.row(["a", "12", ""]);
        table.line("unreachable: b");
        table.row(["longer-than-six", "12345"]);
        assert_eq!(
            table.into_text(),
            "NAME   SIZE NOTE\na        12 \nunreachable: b\nlonger-than-six 12345\n"
        );
    }

    #[test]
    fn fitted_columns_add_no_padding() {
        let mut table = Table::new("  ", &[]);
        table.row(["site"]);
        table.row(["", "refs/heads/main", abbreviated("0123456789abcdef")]);
        assert_eq!(table.into_text(), "site\n  refs/heads/main  0123456789ab\n");
        assert_eq!(abbreviated("abc"), "abc");
    }
}
