//! A host's own SSH login (`root@host[:port]`, port 22 by default), and
//! running shell scripts there through the system `ssh`, the way the
//! operator would by hand. Scripts are fixed text from this crate; what
//! varies (a config, a binary) travels on stdin, never inside a command.

use std::io::Write;
use std::process::Stdio;

use super::{MachineError, Step};
use crate::remote::{self, NodeAddr};

/// The default port of a host's own sshd.
pub const DEFAULT_PORT: u16 = 22;

/// `user@host:port` of a host's own sshd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(pub NodeAddr);

/// What a script printed and how it ended.
#[derive(Debug, Clone)]
pub struct Ran {
    pub ok: bool,
    /// `ssh` itself failed (status 255): the host was not reached or
    /// refused the login.
    pub unreachable: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The script's own error output, or ssh's, trimmed, for a message.
    pub fn why(&self) -> String {
        let text = self.stderr.trim();
        if text.is_empty() {
            self.stdout.trim().to_string()
        } else {
            text.to_string()
        }
    }
}

impl Login {
    /// Parses `[user@]host[:port]`; the user is `root` and the port 22
    /// unless given.
    pub fn parse(text: &str) -> Option<Login> {
        let with_user = if text.contains('@') {
            text.to_string()
        } else {
            format!("root@{text}")
        };
        let (_, host) = with_user.split_once('@')?;
        let has_port = if let Some(v6) = host.strip_prefix('[') {
            v6.contains("]:")
        } else {
            host.contains(':') && host.matches(':').count() == 1
        };
        let full = if has_port {
            with_user
        } else if host.matches(':').count() > 1 {
            // A bare IPv6 literal.
            let (user, host) = with_user.split_once('@')?;
            format!("{user}@[{host}]:{DEFAULT_PORT}")
        } else {
            format!("{with_user}:{DEFAULT_PORT}")
        };
        NodeAddr::parse(&full).ok().map(Login)
    }

    /// The host part: an address or a name.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// As the operator wrote it, short: `root@host` (port only if not 22).
    pub fn short(&self) -> String {
        let a = &self.0;
        let host = if a.host.contains(':') {
            format!("[{}]", a.host)
        } else {
            a.host.clone()
        };
        if a.port == DEFAULT_PORT {
            format!("{}@{host}", a.user)
        } else {
            format!("{}@{host}:{}", a.user, a.port)
        }
    }

    /// Runs `script` with the remote user's shell, `input` on its stdin.
    pub fn run(&self, script: &str, input: Option<&[u8]>) -> std::io::Result<Ran> {
        let (_, mut command) = remote::ssh_to(&self.0, &["-o", "ConnectTimeout=10"]);
        command
            .arg(script)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            // A script that fails early stops reading; its status says why.
            let _ = stdin.write_all(bytes);
        }
        let output = child.wait_with_output()?;
        Ok(Ran {
            ok: output.status.success(),
            unreachable: output.status.code() == Some(255),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs `script` as `step` of a command on `host`: an `ssh` that cannot
    /// be started fails the step, naming the fix.
    pub fn step(
        &self,
        host: &str,
        step: Step,
        script: &str,
        input: Option<&[u8]>,
    ) -> Result<Ran, MachineError> {
        self.run(script, input).map_err(|e| {
            MachineError::new(
                host,
                step,
                format!("cannot run ssh: {e}"),
                "install OpenSSH's client, or set MAKI_SSH_COMMAND",
            )
        })
    }

    /// As [`Login::step`], and a script that fails fails the step too, its
    /// own error output as the cause and `fix` as the fix.
    pub fn step_ok(
        &self,
        host: &str,
        step: Step,
        script: &str,
        fix: impl Into<String>,
    ) -> Result<Ran, MachineError> {
        let ran = self.step(host, step, script, None)?;
        if ran.ok {
            Ok(ran)
        } else {
            Err(MachineError::new(host, step, ran.why(), fix))
        }
    }

    /// Runs `script` interactively, its output straight to the operator's
    /// terminal (`logs -f`); its exit status.
    pub fn run_attached(&self, script: &str) -> std::io::Result<bool> {
        let (_, mut command) = remote::ssh_to(&self.0, &[]);
        let status = command.arg(script).stdin(Stdio::null()).status()?;
        Ok(status.success())
    }
}

impl std::fmt::Display for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_default_to_root_on_port_22() {
        let l = Login::parse("203.0.113.1").unwrap();
        assert_eq!((l.0.user.as_str(), l.0.port), ("root", 22));
        assert_eq!(l.short(), "root@203.0.113.1");
        let l = Login::parse("admin@host.example:2200").unwrap();
        assert_eq!((l.0.user.as_str(), l.0.port), ("admin", 2200));
        assert_eq!(Login::parse("2001:db8::1").unwrap().0.host, "2001:db8::1");
        assert_eq!(Login::parse("root@[2001:db8::1]:23").unwrap().0.port, 23);
        for bad in ["", "-oProxyCommand=x", "root@a b", "root@h:x"] {
            assert!(Login::parse(bad).is_none(), "{bad:?}");
        }
    }
}
