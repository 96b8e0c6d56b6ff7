//! How admin commands print `--json`: a view struct serialised compactly
//! on one line. Control characters inside strings are written as `\u00XX`
//! (never `\n`, `\t`, …), the form these answers have always used, so
//! scripts reading them see the same bytes.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

/// `view` as one line of compact JSON, newline included.
pub fn line(view: &impl Serialize) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Compact);
    view.serialize(&mut serializer)?;
    out.push(b'\n');
    // serde_json writes only UTF-8; a failure here would be its bug, and
    // comes back as an error rather than a panic.
    String::from_utf8(out).map_err(|e| serde_json::Error::io(io::Error::other(e)))
}

/// serde_json's compact layout, with every control character as `\u00XX`.
struct Compact;

impl Formatter for Compact {
    fn write_char_escape<W>(&mut self, writer: &mut W, char_escape: CharEscape) -> io::Result<()>
    where
        W: ?Sized + io::Write,
    {
        let control = match char_escape {
            CharEscape::Backspace => 0x08,
            CharEscape::Tab => 0x09,
            CharEscape::LineFeed => 0x0a,
            CharEscape::FormFeed => 0x0c,
            CharEscape::CarriageReturn => 0x0d,
            CharEscape::AsciiControl(byte) => byte,
            // Quotes and backslashes as serde_json writes them.
            other => return CompactFormatter.write_char_escape(writer, other),
        };
        write!(writer, "\\u{control:04x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct View<'a> {
        text: &'a str,
        count: u64,
        missing: Option<u64>,
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters() {
        let view = View {
            text: "a\"b\\c\n\t\u{1}/é",
            count: 3,
            missing: None,
        };
        assert_eq!(
            line(&view).ok().as_deref(),
            Some(concat!(
                r#"{"text":"a\"b\\c\u000a\u0009\u0001/é","count":3,"missing":null}"#,
                "\n"
            ))
        );
    }
}
