//! Operator hooks with git's semantics: `pre-receive` (a non-zero exit
//! rejects the push) and `post-receive` (informational), each fed
//! `old new ref` lines on stdin, with env naming the repository and node.
//!
//! The defaults from the project's `hooks/` are compiled in and written to
//! the node's hooks directory when missing, never over an operator's edit.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::GitError;
use super::repo::RefUpdate;

/// The default hooks: (file name, contents).
const DEFAULT_HOOKS: &[(&str, &str)] = &[
    ("pre-receive", include_str!("../../hooks/pre-receive")),
    ("post-receive", include_str!("../../hooks/post-receive")),
];
/// A hook running longer than this is killed (and a pre-receive rejects).
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines read ahead of the pusher's connection; a hook printing faster
/// than the pusher reads waits on its pipe.
const LINE_QUEUE: usize = 256;

/// Writes the default hooks into `dir` where none exist yet.
pub fn install_defaults(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in DEFAULT_HOOKS {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        std::fs::write(&path, text)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// What a hook did.
#[derive(Debug)]
pub struct HookRun {
    pub success: bool,
}

/// Where hooks run and what they are told.
pub struct Hooks {
    pub dir: PathBuf,
    pub node: String,
}

impl Hooks {
    /// Runs hook `name` if it exists and is executable (`None` if absent),
    /// with `env` added to what it is told. Each line it prints, on stdout
    /// or stderr, goes to `on_line` as soon as it is printed, so a pusher
    /// watches a slow hook work.
    pub fn run(
        &self,
        name: &str,
        repo_name: &str,
        git_dir: &Path,
        updates: &[RefUpdate],
        env: &[(&str, OsString)],
        on_line: &mut dyn FnMut(&str) -> std::io::Result<()>,
    ) -> Result<Option<HookRun>, GitError> {
        let path = self.dir.join(name);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {}
            _ => return Ok(None),
        }
        let hook_err = |source: std::io::Error| GitError::Hook {
            name: name.to_string(),
            source,
        };
        let mut child = Command::new(&path)
            .current_dir(git_dir)
            .env("MAKIATTO_REPO", repo_name)
            .env("MAKIATTO_NODE", &self.node)
            .env("MAKIATTO_HOOKS_DIR", &self.dir)
            .env("GIT_DIR", git_dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(hook_err)?;
        let mut input = String::new();
        for u in updates {
            input.push_str(&format!("{} {} {}\n", u.old, u.new, u.name));
        }
        let stdin = child.stdin.take();
        // Fed from its own thread: a hook that prints before reading must
        // not wait on us while we wait on its output.
        std::thread::spawn(move || {
            if let Some(mut stdin) = stdin {
                // A hook that ignores stdin may exit before reading it all.
                let _ = stdin.write_all(input.as_bytes());
            }
        });
        let (lines, received) = mpsc::sync_channel::<String>(LINE_QUEUE);
        let readers = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|pipe| {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).split(b'\n') {
                    let Ok(line) = line else { break };
                    let text = String::from_utf8_lossy(&line)
                        .trim_end_matches('\r')
                        .to_string();
                    if lines.send(text).is_err() {
                        break;
                    }
                }
            })
        })
        .collect::<Vec<_>>();
        drop(lines);
        let deadline = Instant::now() + HOOK_TIMEOUT;
        let mut timed_out = false;
        // Until both pipes close (the hook and anything it started are
        // done with them) or the time is up.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => on_line(&line)?,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timed_out = true;
                    let _ = child.kill();
                    break;
                }
            }
        }
        let status = loop {
            match child.try_wait().map_err(hook_err)? {
                Some(status) => break Some(status),
                None if timed_out || Instant::now() >= deadline => {
                    timed_out = true;
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        if timed_out {
            // The readers end when the killed hook's pipes close; one a
            // grandchild holds open is left to finish on its own.
            on_line(&format!("{name} hook timed out after {HOOK_TIMEOUT:?}"))?;
        } else {
            for reader in readers {
                let _ = reader.join();
            }
        }
        Ok(Some(HookRun {
            success: !timed_out && status.is_some_and(|s| s.success()),
        }))
    }
}
