//! A command line as the dispatcher and each command read it: whitespace
//! separated words, taken one at a time, with `--json` accepted anywhere.

use super::cmd::ParseError;

/// The words of one command line, consumed front to back.
#[derive(Debug)]
pub struct Words<'a> {
    /// The first word, named in errors (`cannot understand "keys" …`).
    command: &'a str,
    /// The words after it, `--json` left out.
    rest: std::vec::IntoIter<&'a str>,
    /// Whether `--json` appeared anywhere on the line.
    json: bool,
}

impl<'a> Words<'a> {
    /// Splits `line`; `None` when it holds no command word.
    pub fn new(line: &'a str) -> Option<Words<'a>> {
        let json = line.split_whitespace().any(|w| w == "--json");
        let mut words = line.split_whitespace().filter(|w| *w != "--json");
        let command = words.next()?;
        Some(Words {
            command,
            rest: words.collect::<Vec<_>>().into_iter(),
            json,
        })
    }

    /// The command word.
    pub fn command(&self) -> &'a str {
        self.command
    }

    /// Whether the line asked for JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// The next word, if any.
    pub fn next_word(&mut self) -> Option<&'a str> {
        self.rest.next()
    }

    /// The next word, which the command requires.
    pub fn required(&mut self) -> Result<&'a str, ParseError> {
        self.rest.next().ok_or_else(|| self.not_understood())
    }

    /// The words left, joined by single spaces (`keys add` takes a key line).
    pub fn remainder(&mut self) -> String {
        self.rest.by_ref().collect::<Vec<_>>().join(" ")
    }

    /// Succeeds when no word is left: a command never ignores arguments.
    pub fn end(&mut self) -> Result<(), ParseError> {
        match self.rest.next() {
            None => Ok(()),
            Some(_) => Err(self.not_understood()),
        }
    }

    /// The error for arguments this command does not take.
    pub fn not_understood(&self) -> ParseError {
        ParseError::NotUnderstood(self.command.to_string())
    }
}
