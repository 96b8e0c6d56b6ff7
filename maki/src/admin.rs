//! `maki deploys`, `maki rollback`, `maki key …`, `maki status`, `maki
//! stats`, `maki scrub`, `maki dns setup`, `maki preview-password`: a node's admin commands run over SSH. The node does the work;
//! this builds the command line the node's admin parser reads (checking
//! words so nothing is misread by that parser or a shell between), sends
//! it, and returns the node's answer.

use std::path::Path;

use crate::remote::{self, Answer, RemoteError};
use crate::target::Targets;

/// Why an admin subcommand could not run.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("no node to ask")]
    NoTarget,
    #[error("{0:?} is not a valid argument: use letters, digits and . _ - : / + = only")]
    BadWord(String),
    #[error("cannot read the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// One operator request to a node.
#[derive(Debug, Clone)]
pub enum Request<'a> {
    Status {
        json: bool,
    },
    Stats {
        /// Minutes summed, the current one included.
        minutes: u64,
        json: bool,
    },
    Deploys {
        domain: &'a str,
        json: bool,
    },
    Rollback {
        domain: &'a str,
        revision: Option<&'a str>,
    },
    KeyList {
        json: bool,
    },
    KeyAdd {
        file: &'a Path,
    },
    KeyRemove {
        fingerprint: &'a str,
    },
    DnsSetup {
        domain: Option<&'a str>,
    },
    /// Start a scrub of the node's stored objects now.
    Scrub,
    /// Show, set or clear the password of a domain's previews.
    PreviewPassword {
        domain: &'a str,
        action: PasswordAction,
        /// `show` answers as JSON.
        json: bool,
    },
}

/// What `maki preview-password` does.
#[derive(Clone)]
pub enum PasswordAction {
    Show,
    /// Set this password: it travels on the command's stdin, never on the
    /// command line.
    Set(String),
    Clear,
}

/// Never prints the password.
impl std::fmt::Debug for PasswordAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordAction::Show => f.write_str("Show"),
            PasswordAction::Set(_) => f.write_str("Set(..)"),
            PasswordAction::Clear => f.write_str("Clear"),
        }
    }
}

/// Runs `request` on the first of `targets` that `ssh` reaches; the
/// answer's stderr says which nodes were passed over and why.
pub fn run(targets: &Targets, request: Request<'_>) -> Result<Answer, RequestError> {
    let (line, input) = line(request)?;
    let mut passed_over = String::new();
    let mut last = None;
    for node in &targets.nodes {
        let answer = remote::call(node, &line, input.as_deref())?;
        if !answer.unreachable {
            return Ok(Answer {
                stderr: passed_over + &answer.stderr,
                ..answer
            });
        }
        passed_over += &format!(
            "note: {node} did not answer ({}); trying the next node of the profile\n",
            answer.stderr.trim()
        );
        last = Some(answer);
    }
    // Every node was unreachable: the last one's error stands, after the
    // others'.
    let answer = last.ok_or(RequestError::NoTarget)?;
    let stderr = passed_over
        .rsplit_once("note: ")
        .map(|(before, _)| before.to_string())
        .unwrap_or_default()
        + &answer.stderr;
    Ok(Answer { stderr, ..answer })
}

/// The line to send for `request`, and what to send on stdin.
fn line(request: Request<'_>) -> Result<(String, Option<Vec<u8>>), RequestError> {
    let mut input = None;
    let line = match request {
        Request::Status { json } => with_json("status".to_string(), json),
        Request::Stats { minutes, json } => with_json(format!("stats --minutes {minutes}"), json),
        Request::Deploys { domain, json } => with_json(format!("deploys {}", word(domain)?), json),
        Request::Rollback { domain, revision } => match revision {
            Some(revision) => format!("rollback {} {}", word(domain)?, word(revision)?),
            None => format!("rollback {}", word(domain)?),
        },
        Request::KeyList { json } => with_json("keys list".to_string(), json),
        Request::KeyAdd { file } => {
            let text = std::fs::read(file).map_err(|source| RequestError::KeyFile {
                path: file.display().to_string(),
                source,
            })?;
            input = Some(text);
            // Without a key on the line, the node reads it from stdin.
            "keys add".to_string()
        }
        Request::KeyRemove { fingerprint } => format!("keys remove {}", word(fingerprint)?),
        Request::DnsSetup { domain } => match domain {
            Some(domain) => format!("dns setup {}", word(domain)?),
            None => "dns setup".to_string(),
        },
        Request::Scrub => "scrub".to_string(),
        Request::PreviewPassword {
            domain,
            action,
            json,
        } => {
            let domain = word(domain)?;
            match action {
                PasswordAction::Show => with_json(format!("preview-password {domain}"), json),
                PasswordAction::Set(password) => {
                    input = Some(format!("{password}\n").into_bytes());
                    format!("preview-password {domain} set")
                }
                PasswordAction::Clear => format!("preview-password {domain} clear"),
            }
        }
    };
    Ok((line, input))
}

/// `line`, asking for JSON when `json` is set.
fn with_json(line: String, json: bool) -> String {
    if json { line + " --json" } else { line }
}

/// `w` if it is one harmless word (the remote side splits on spaces, and
/// a shell may sit between).
fn word(w: &str) -> Result<&str, RequestError> {
    let ok = !w.is_empty()
        && !w.starts_with('-')
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/+=".contains(&b));
    if ok {
        Ok(w)
    } else {
        Err(RequestError::BadWord(w.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_with_spaces_or_shell_characters_are_refused() {
        assert!(word("example.com").is_ok());
        assert!(word("SHA256:abc+/=").is_ok());
        for bad in ["", "a b", "x;rm", "$(x)", "--json", "a'b"] {
            assert!(word(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_preview_password_goes_on_stdin_never_on_the_line() {
        let (text, input) = line(Request::PreviewPassword {
            domain: "a.test",
            action: PasswordAction::Set("correct horse".into()),
            json: false,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, "preview-password a.test set");
        assert_eq!(input.as_deref(), Some(&b"correct horse\n"[..]));
        let clear = Request::PreviewPassword {
            domain: "a.test",
            action: PasswordAction::Clear,
            json: false,
        };
        let (text, input) = line(clear).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, "preview-password a.test clear");
        assert_eq!(input, None);
    }
}
