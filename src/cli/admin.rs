//! `maki deploys`, `maki rollback`, `maki key …`, `maki status`: a node's
//! admin commands run over SSH. The node does the work; this builds the
//! command line (checking words so nothing is misread by the node's parser)
//! and returns the node's answer.

use std::path::Path;

use super::remote::{self, Answer, NodeAddr, RemoteError};

/// Why an admin subcommand could not run.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
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
pub fn run(node: &NodeAddr, request: Request<'_>) -> Result<Answer, AdminError> {
    let json = |j: bool| if j { " --json" } else { "" };
    let mut input = None;
    let line = match request {
        Request::Status { json: j } => format!("status{}", json(j)),
        Request::Deploys { domain, json: j } => format!("deploys {}{}", word(domain)?, json(j)),
        Request::Rollback { domain, revision } => match revision {
            Some(rev) => format!("rollback {} {}", word(domain)?, word(rev)?),
            None => format!("rollback {}", word(domain)?),
        },
        Request::KeyList { json: j } => format!("keys list{}", json(j)),
        Request::KeyAdd { file } => {
            let text = std::fs::read(file).map_err(|source| AdminError::KeyFile {
                path: file.display().to_string(),
                source,
            })?;
            input = Some(text);
            "keys add".to_string()
        }
        Request::KeyRemove { fingerprint } => format!("keys remove {}", word(fingerprint)?),
    };
    Ok(remote::call(node, &line, input.as_deref())?)
}

/// `w` if it is one harmless word (the remote side splits on spaces, and
/// a shell may sit between).
fn word(w: &str) -> Result<&str, AdminError> {
    let ok = !w.is_empty()
        && !w.starts_with('-')
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/+=".contains(&b));
    if ok {
        Ok(w)
    } else {
        Err(AdminError::BadWord(w.to_string()))
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
