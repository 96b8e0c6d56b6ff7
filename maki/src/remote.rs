//! Reaching a node's admin commands over SSH, through the system `ssh`
//! client (so the operator's keys, agent and known_hosts apply, as with
//! git). `MAKI_SSH_COMMAND` replaces `ssh` (e.g. to name a key file).

use std::io::Write;
use std::process::{Command, Stdio};

/// Where a node's SSH endpoint is: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub user: String,
    pub host: String,
    pub port: u16,
}

/// Why a node could not be reached or named.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "cannot read node address {0:?}: write [user@]host[:port], e.g. git@node.example.com:2222"
    )]
    BadAddr(String),
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

/// The default SSH port of a node.
pub const DEFAULT_PORT: u16 = 2222;

impl NodeAddr {
    /// Parses `[user@]host[:port]` (`[v6]:port` for IPv6 literals).
    pub fn parse(text: &str) -> Result<NodeAddr, RemoteError> {
        let bad = || RemoteError::BadAddr(text.to_string());
        let (user, rest) = match text.split_once('@') {
            Some((user, rest)) => (user, rest),
            None => ("git", text),
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => DEFAULT_PORT,
                None => return Err(bad()),
            };
            (host, port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
                None => (rest, DEFAULT_PORT),
            }
        };
        let valid = |s: &str| {
            !s.is_empty()
                && !s.starts_with('-')
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
        };
        if !valid(user) || !valid(host) || port == 0 {
            return Err(bad());
        }
        Ok(NodeAddr {
            user: user.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

/// `user@host:port`, as ssh is told it.
impl std::fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// What the node answered.
#[derive(Debug)]
pub struct Answer {
    pub ok: bool,
    /// `ssh` itself failed (exit status 255): the node was not reached,
    /// or refused the login, so another node may answer instead.
    pub unreachable: bool,
    pub stdout: String,
    pub stderr: String,
}

/// The system `ssh` (or `MAKI_SSH_COMMAND`, split on spaces) aimed at
/// `node`, `options` before the port and login; the caller adds the remote
/// command. Returns the program's name too, for error messages.
pub fn ssh_to(node: &NodeAddr, options: &[&str]) -> (String, Command) {
    let ssh = std::env::var("MAKI_SSH_COMMAND").unwrap_or_else(|_| "ssh".to_string());
    let mut words = ssh.split_whitespace();
    let program = words.next().unwrap_or("ssh").to_string();
    let mut command = Command::new(&program);
    command
        .args(words)
        .args(options)
        .arg("-p")
        .arg(node.port.to_string())
        .arg("-l")
        .arg(&node.user)
        .arg("--")
        .arg(&node.host);
    (program, command)
}

/// Runs admin command `line` on `node`, sending `input` on stdin.
pub fn call(node: &NodeAddr, line: &str, input: Option<&[u8]>) -> Result<Answer, RemoteError> {
    let (program, mut command) = ssh_to(node, &[]);
    command
        .arg(line)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| RemoteError::Spawn {
        program: program.clone(),
        source,
    })?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // The node may answer (an error) before reading everything.
        let _ = stdin.write_all(bytes);
    }
    let output = child
        .wait_with_output()
        .map_err(|source| RemoteError::Spawn { program, source })?;
    Ok(Answer {
        ok: output.status.success(),
        unreachable: output.status.code() == Some(255),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_parse_with_defaults() {
        assert_eq!(
            NodeAddr::parse("git@node.example.com:2200").unwrap(),
            NodeAddr {
                user: "git".into(),
                host: "node.example.com".into(),
                port: 2200
            }
        );
        let plain = NodeAddr::parse("node").unwrap();
        assert_eq!((plain.user.as_str(), plain.port), ("git", DEFAULT_PORT));
        assert_eq!(NodeAddr::parse("[::1]:22").unwrap().host, "::1");
        for bad in [
            "",
            "git@",
            "-oProxyCommand=x",
            "a b",
            "host:x",
            "host:0",
            "u@[::1",
        ] {
            assert!(NodeAddr::parse(bad).is_err(), "{bad:?}");
        }
    }
}
