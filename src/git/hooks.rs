//! Operator hooks with git's semantics: `pre-receive` (a non-zero exit
//! rejects the push) and `post-receive` (informational), each fed
//! `old new ref` lines on stdin, with env naming the repository and node.
//!
//! The defaults from the project's `hooks/` are compiled in and written to
//! the node's hooks directory when missing, never over an operator's edit.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    /// Its stdout then stderr, as lines.
    pub output: Vec<String>,
}

/// Where hooks run and what they are told.
pub struct Hooks {
    pub dir: PathBuf,
    pub node: String,
}

impl Hooks {
    /// Runs hook `name` if it exists and is executable; `None` if absent.
    pub fn run(
        &self,
        name: &str,
        repo_name: &str,
        git_dir: &Path,
        updates: &[RefUpdate],
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(hook_err)?;
        let mut input = String::new();
        for u in updates {
            input.push_str(&format!("{} {} {}\n", u.old, u.new, u.name));
        }
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that ignores stdin may exit before reading it all.
            let _ = stdin.write_all(input.as_bytes());
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut text);
                }
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let out = read(stdout.map(|p| Box::new(p) as _));
        let err = read(stderr.map(|p| Box::new(p) as _));
        let deadline = Instant::now() + HOOK_TIMEOUT;
        let status = loop {
            match child.try_wait().map_err(hook_err)? {
                Some(status) => break Some(status),
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let mut output: Vec<String> = Vec::new();
        for text in [out.join(), err.join()].into_iter().flatten() {
            output.extend(text.lines().map(str::to_string));
        }
        if status.is_none() {
            output.push(format!("{name} hook timed out after {HOOK_TIMEOUT:?}"));
        }
        Ok(Some(HookRun {
            success: status.is_some_and(|s| s.success()),
            output,
        }))
    }
}
