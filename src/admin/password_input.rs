//! Reading a password for `preview-password <domain> set` on the
//! operator's side: typed at a prompt without echo (twice, to catch a
//! typo), or piped on standard input. Never from the command line, where
//! shell history and `ps` would keep it.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::{Command, Stdio};

/// Why no password was read.
#[derive(Debug, thiserror::Error)]
pub enum PasswordInputError {
    #[error("cannot read the password: {0}")]
    Read(#[from] std::io::Error),
    #[error("the two passwords differ; run the command again")]
    Mismatch,
    #[error("no password given: type one at the prompt or pipe it on standard input")]
    Empty,
}

/// The password for `what`: from the terminal without echo when standard
/// input is one, else everything piped in (without its line ending).
pub fn read_password(what: &str) -> Result<String, PasswordInputError> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt(&format!("password for {what}: "))?;
        let second = prompt("again: ")?;
        if first != second {
            return Err(PasswordInputError::Mismatch);
        }
        first
    } else {
        let mut text = String::new();
        stdin.lock().read_to_string(&mut text)?;
        text.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        return Err(PasswordInputError::Empty);
    }
    Ok(password)
}

/// One line typed at the terminal with echo off.
fn prompt(text: &str) -> std::io::Result<String> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{text}")?;
    stderr.flush()?;
    let _echo = EchoOff::new();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    writeln!(stderr)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Terminal echo turned off by `stty` (on Linux and macOS alike), and on
/// again when dropped, also on an error.
struct EchoOff;

impl EchoOff {
    fn new() -> EchoOff {
        stty("-echo");
        EchoOff
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        stty("echo");
    }
}

/// Runs `stty` on the terminal standard input is; a failure only leaves
/// echo as it was.
fn stty(setting: &str) {
    let _ = Command::new("stty")
        .arg(setting)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
