//! `maki deploys`, `maki rollback`, `maki key …`, `maki status`: a node's
//! admin commands run over SSH. The node does the work; this builds the
//! command (checking words so nothing is misread by the node's parser or a
//! shell between), sends its line, and returns the node's answer.

use std::path::Path;

use super::remote::{self, Answer, NodeAddr, RemoteError};
use crate::admin::{Command, cmd};

/// Why an admin subcommand could not run.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
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
}

/// Runs `request` on `node`.
pub fn run(node: &NodeAddr, request: Request<'_>) -> Result<Answer, RequestError> {
    let owned = |w: &str| word(w).map(str::to_string);
    let mut input = None;
    let command = match request {
        Request::Status { json } => Command::Status(cmd::Status { json }),
        Request::Deploys { domain, json } => Command::Deploys(cmd::Deploys {
            domain: owned(domain)?,
            json,
        }),
        Request::Rollback { domain, revision } => Command::Rollback(cmd::Rollback {
            domain: owned(domain)?,
            revision: revision.map(owned).transpose()?,
        }),
        Request::KeyList { json } => Command::KeysList(cmd::KeysList { json }),
        Request::KeyAdd { file } => {
            let text = std::fs::read(file).map_err(|source| RequestError::KeyFile {
                path: file.display().to_string(),
                source,
            })?;
            input = Some(text);
            // Without a key on the line, the node reads it from stdin.
            Command::KeysAdd(cmd::KeysAdd { key: String::new() })
        }
        Request::KeyRemove { fingerprint } => Command::KeysRemove(cmd::KeysRemove {
            fingerprint: owned(fingerprint)?,
        }),
    };
    Ok(remote::call(node, &command.to_string(), input.as_deref())?)
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
}
