//! Driving a node's git endpoint with the real `git` and `ssh` clients: a
//! temp ed25519 key from `ssh-keygen`, a temp known_hosts file, and git
//! commands run with `GIT_SSH_COMMAND` pointing at both.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::{CmdOutput, Node, run_command, temp_dir};

/// Upper bound for one git or ssh command (a large push in a debug build).
const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// A client identity: a key pair and a known_hosts file in a temp dir.
pub struct Client {
    dir: TempDir,
    pub key: PathBuf,
    pub public_key: PathBuf,
    known_hosts: PathBuf,
}

impl Client {
    /// Generates a fresh ed25519 key with the comment `test@makiatto`.
    pub fn new() -> Client {
        Client::with_comment("test@makiatto")
    }

    /// Generates a fresh ed25519 key with `comment` (what key lists show
    /// beside its fingerprint).
    pub fn with_comment(comment: &str) -> Client {
        let dir = temp_dir();
        let key = dir.path().join("id_ed25519");
        let mut keygen = Command::new("ssh-keygen");
        keygen
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(&key);
        let out = run_command(keygen, Duration::from_secs(30));
        assert!(out.success(), "ssh-keygen failed: {}", out.describe());
        Client {
            public_key: dir.path().join("id_ed25519.pub"),
            known_hosts: dir.path().join("known_hosts"),
            key,
            dir,
        }
    }

    /// A scratch directory living as long as the client.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Starts a dev node that authorises this client's key.
    pub fn start_node(&self) -> Node {
        Node::start_bare(&[OsStr::new("--authorized-key"), self.public_key.as_os_str()])
    }

    /// The ssh command line git should use.
    pub fn ssh_command(&self) -> String {
        format!(
            "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=accept-new -o BatchMode=yes -o LogLevel=ERROR",
            self.key.display(),
            self.known_hosts.display()
        )
    }

    /// Runs `git ARGS` in `dir` as this client.
    pub fn git(&self, dir: &Path, args: &[&str]) -> CmdOutput {
        let mut command = Command::new("git");
        command
            .current_dir(dir)
            .args(args)
            .env("GIT_SSH_COMMAND", self.ssh_command())
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.dir.path());
        run_command(command, GIT_TIMEOUT)
    }

    /// `git ARGS`, which must succeed.
    pub fn git_ok(&self, dir: &Path, args: &[&str]) -> CmdOutput {
        let out = self.git(dir, args);
        assert!(out.success(), "git {args:?} failed: {}", out.describe());
        out
    }

    /// Runs `ssh -p PORT git@127.0.0.1 LINE`, with `stdin` as input.
    pub fn ssh(&self, node: &Node, line: &str, stdin: Option<&Path>) -> CmdOutput {
        let mut command = Command::new("sh");
        let redirect = stdin.map_or_else(String::new, |p| format!(" < '{}'", p.display()));
        command.arg("-c").arg(format!(
            "{} -p {} git@127.0.0.1 {line}{redirect}",
            self.ssh_command(),
            node.ssh_port()
        ));
        run_command(command, GIT_TIMEOUT)
    }
}

/// `ssh://git@127.0.0.1:PORT/NAME.git` of `node`.
pub fn repo_url(node: &Node, name: &str) -> String {
    format!("ssh://git@127.0.0.1:{}/{name}.git", node.ssh_port())
}

/// A new repository at `dir` (created) on branch `main`.
pub fn init_repo(client: &Client, dir: &Path) {
    std::fs::create_dir_all(dir).expect("create repo dir");
    client.git_ok(dir, &["init", "-q", "-b", "main"]);
}

/// `git add -A && git commit -m MESSAGE` in `dir`.
pub fn commit_all(client: &Client, dir: &Path, message: &str) {
    client.git_ok(dir, &["add", "-A"]);
    client.git_ok(dir, &["commit", "-q", "--allow-empty", "-m", message]);
}
