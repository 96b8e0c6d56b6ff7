//! Site builds: when a pushed `makiatto.toml` has `[build]`, the receiving
//! node checks the commit out into a scratch directory, runs the build
//! command there in a bubblewrap sandbox under the node's `[build]` limits,
//! streams its output to the pusher, and hands the built checkout to the
//! deployer. Replicas never build: they receive the built revision.
//!
//! This module knows nothing of git: the push (git/push_build.rs) and dev
//! mode fill the workspace and say what is being built.

mod limits;
mod log;
mod queue;
mod runner;
mod sandbox;
mod tree;
mod workspace;

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Build, BuildLimits, NodeConfig};

pub use log::{BuildLogs, BuildRecord};
pub use queue::Turn;
pub use sandbox::{CACHE, CHECKOUT};
pub use tree::BuiltSource;
pub use workspace::Workspace;

/// Lines of the log repeated with a refusal.
const TAIL_LINES: usize = 20;
/// Who a node running as root builds as: `nobody`, so a build cannot read
/// root's files through the read-only system.
const UNPRIVILEGED: (u32, u32) = (65534, 65534);
/// The exit status `sh` reports for a command it cannot find.
const NOT_FOUND: i32 = 127;
/// The exit status of a process killed by SIGXFSZ (a file over the size
/// limit), as `sh` and bubblewrap report it.
const FILE_TOO_LARGE: i32 = 128 + libc::SIGXFSZ;
/// PATH for builds when the node has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Why a build did not produce a deployable tree.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{waiting} pushes of {repo} already wait for its build; push again once they are done")]
    QueueFull { repo: String, waiting: usize },
    #[error("cannot prepare the build directory {path}: {source}")]
    Workspace {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "bubblewrap (bwrap) is not installed on this node, so it cannot build sites; the operator installs it: apt install bubblewrap"
    )]
    NoBubblewrap,
    #[error("cannot start the build sandbox: {0}")]
    Spawn(#[source] std::io::Error),
    #[error(
        "command {command:?} is not installed on this node; the node's operator installs it on every node that receives pushes (e.g. apt install {command}, or services.makiatto.buildPackages on NixOS)"
    )]
    CommandNotFound { command: String },
    #[error("the build failed ({status}){hint}")]
    Failed { status: String, hint: &'static str },
    #[error(
        "the build ran past its time limit of {secs} s and was stopped (node.toml [build] timeout_secs)"
    )]
    TimedOut { secs: u64 },
    #[error(
        "the build wrote a file over the limit of {limit_mb} MiB (node.toml [build] max_output_mb)"
    )]
    FileTooLarge { limit_mb: u64 },
    #[error(
        "the build output is {size_mb} MiB, over the limit of {limit_mb} MiB (node.toml [build] max_output_mb)"
    )]
    OutputTooLarge { size_mb: u64, limit_mb: u64 },
    #[error(
        "the build finished but wrote no directory {output:?}; make the command write it, or fix output in [build]"
    )]
    MissingOutput { output: String },
}

/// A refused build: the reason and the end of its log.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct BuildFailure {
    #[source]
    pub error: BuildError,
    pub tail: Vec<String>,
}

impl From<BuildError> for BuildFailure {
    fn from(error: BuildError) -> BuildFailure {
        BuildFailure {
            error,
            tail: Vec::new(),
        }
    }
}

/// What is being built, for the environment and the record.
pub struct Job<'a> {
    /// The repository (or `local` in dev mode): names the cache and logs.
    pub repo: &'a str,
    /// Empty in dev mode.
    pub branch: &'a str,
    /// Empty in dev mode.
    pub commit: &'a str,
    /// The first domain the build deploys.
    pub domain: &'a str,
    /// Where the result will be served (production or preview).
    pub url: &'a str,
    pub build: &'a Build,
}

/// A finished build.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    pub duration: Duration,
}

/// Runs the builds of one node.
pub struct Builder {
    limits: BuildLimits,
    /// The node's data directory, which no build may see.
    data_dir: PathBuf,
    /// `<data>/builds/work`: scratch checkouts.
    work: PathBuf,
    /// `<data>/builds/cache`: one directory per repository, kept.
    cache: PathBuf,
    logs: BuildLogs,
    queue: Arc<queue::Queue>,
    /// The node's PATH, so builds use the tools the operator installed.
    path: OsString,
    /// The user builds run as when the node itself is root.
    run_as: Option<(u32, u32)>,
    /// Names scratch directories uniquely within this process.
    next: AtomicU64,
}

impl Builder {
    /// The builder of the node configured by `config`; leftovers of builds
    /// a crash interrupted are removed.
    pub fn new(config: &NodeConfig) -> Builder {
        let root = config.data_dir.join("builds");
        let work = root.join("work");
        let _ = std::fs::remove_dir_all(&work);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root_user = unsafe { libc::geteuid() } == 0;
        Builder {
            limits: config.build.clone(),
            data_dir: config.data_dir.clone(),
            work,
            cache: root.join("cache"),
            logs: BuildLogs::new(root.join("logs")),
            queue: Arc::default(),
            path: std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            run_as: root_user.then_some(UNPRIVILEGED),
            next: AtomicU64::new(0),
        }
    }

    /// The kept build records.
    pub fn logs(&self) -> &BuildLogs {
        &self.logs
    }

    /// Waits for `repo`'s turn to build; refused when the line is full.
    pub fn turn(&self, repo: &str) -> Result<Turn, BuildError> {
        self.queue
            .turn(repo, self.limits.queue)
            .map_err(|full| BuildError::QueueFull {
                repo: repo.to_string(),
                waiting: full.waiting,
            })
    }

    /// A new empty scratch directory for a build of `repo`.
    pub fn workspace(&self, repo: &str) -> Result<Workspace, BuildError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.work.join(format!("{repo}-{}-{n}", std::process::id()));
        Workspace::create(dir.clone()).map_err(|source| BuildError::Workspace { path: dir, source })
    }

    /// Runs `job` in `workspace`, passing each output line to `on_line` as
    /// it comes, and records the build either way.
    pub fn run(
        &self,
        job: &Job<'_>,
        workspace: &Workspace,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Built, BuildFailure> {
        let started = Instant::now();
        let started_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut log = Vec::new();
        let result = self.sandboxed(job, workspace, &mut |line: &str| on_line(line), &mut log);
        let duration = started.elapsed();
        let record = BuildRecord {
            repo: job.repo.to_string(),
            branch: job.branch.to_string(),
            commit: job.commit.to_string(),
            started_ms,
            duration_ms: duration.as_millis() as u64,
            ok: result.is_ok(),
            result: match &result {
                Ok(()) => "built".to_string(),
                Err(e) => e.to_string(),
            },
        };
        if let Err(e) = self.logs.save(&record, &log) {
            tracing::warn!(repo = job.repo, error = %e, "cannot keep the build log");
        }
        tracing::info!(
            repo = job.repo,
            commit = job.commit,
            ok = record.ok,
            ms = record.duration_ms,
            "build finished"
        );
        match result {
            Ok(()) => Ok(Built { duration }),
            Err(error) => {
                let skip = log.len().saturating_sub(TAIL_LINES);
                Err(BuildFailure {
                    error,
                    tail: log.split_off(skip),
                })
            }
        }
    }

    fn sandboxed(
        &self,
        job: &Job<'_>,
        workspace: &Workspace,
        on_line: &mut dyn FnMut(&str),
        log: &mut Vec<String>,
    ) -> Result<(), BuildError> {
        let cache = self.cache.join(job.repo);
        let prepare = |path: &Path| {
            let err = |source| BuildError::Workspace {
                path: path.to_path_buf(),
                source,
            };
            std::fs::create_dir_all(path).map_err(err)?;
            if let Some((uid, gid)) = self.run_as {
                workspace::chown_all(path, uid, gid).map_err(err)?;
            }
            File::options()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(path)
                .map_err(err)
        };
        if self.run_as.is_some() {
            // bubblewrap, run as the build user, walks the path to each
            // directory it binds: let that user through ours (not list them).
            for dir in [&self.work, &self.cache] {
                std::fs::create_dir_all(dir)
                    .and_then(|()| {
                        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
                    })
                    .map_err(|source| BuildError::Workspace {
                        path: dir.clone(),
                        source,
                    })?;
            }
        }
        let checkout_dir = prepare(workspace.dir())?;
        let cache_dir = prepare(&cache)?;

        let sandbox = sandbox::Sandbox {
            checkout: &checkout_dir,
            cache: &cache_dir,
            network: job.build.network,
            data_dir: &self.data_dir,
            env: self.env(job),
            command: &job.build.command,
        };
        let (mut command, fds) = sandbox.command();
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, gid);
        }
        limits::Rlimits::of(&self.limits).apply(&mut command, fds);
        let run = runner::run(
            command,
            Duration::from_secs(self.limits.timeout_secs),
            usize::try_from(self.limits.max_log_kb.saturating_mul(1024)).unwrap_or(usize::MAX),
            on_line,
        )
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BuildError::NoBubblewrap
            } else {
                BuildError::Spawn(e)
            }
        })?;
        *log = run.log;
        if run.truncated {
            log.push(format!(
                "[log cut at {} KiB (node.toml [build] max_log_kb)]",
                self.limits.max_log_kb
            ));
        }
        let status = match run.ending {
            runner::Ending::TimedOut => {
                return Err(BuildError::TimedOut {
                    secs: self.limits.timeout_secs,
                });
            }
            runner::Ending::Exited(status) => status,
        };
        if !status.success() {
            return Err(self.failure(status, job, log));
        }
        let output = workspace.dir().join(&job.build.output);
        if !output.is_dir() {
            return Err(BuildError::MissingOutput {
                output: job.build.output.clone(),
            });
        }
        let size = workspace::size_of(&output).map_err(|source| BuildError::Workspace {
            path: output.clone(),
            source,
        })?;
        let limit = self.limits.max_output_mb.saturating_mul(1024 * 1024);
        if size > limit {
            return Err(BuildError::OutputTooLarge {
                size_mb: size.div_ceil(1024 * 1024),
                limit_mb: self.limits.max_output_mb,
            });
        }
        Ok(())
    }

    /// Why a build that exited unsuccessfully failed.
    fn failure(
        &self,
        status: std::process::ExitStatus,
        job: &Job<'_>,
        log: &[String],
    ) -> BuildError {
        match status.code() {
            Some(NOT_FOUND) => {
                // sh says "<shell>: <line>: <command>: not found".
                let missing = log.iter().rev().find_map(|line| {
                    let head = line.strip_suffix(": not found")?;
                    Some(head.rsplit(": ").next().unwrap_or(head).to_string())
                });
                if let Some(command) = missing {
                    return BuildError::CommandNotFound { command };
                }
            }
            Some(FILE_TOO_LARGE) => {
                return BuildError::FileTooLarge {
                    limit_mb: self.limits.max_output_mb,
                };
            }
            _ => {}
        }
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => status.to_string(),
        };
        BuildError::Failed {
            status,
            hint: if job.build.network {
                ""
            } else {
                "; it ran without network access: if it needs the network, set network = true in [build]"
            },
        }
    }

    /// The build's whole environment: the site's `[build] env`, then what
    /// the node sets (which wins).
    fn env(&self, job: &Job<'_>) -> Vec<(String, OsString)> {
        let mut env: Vec<(String, OsString)> = job
            .build
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.into()))
            .collect();
        let fixed = [
            ("PATH", self.path.clone()),
            ("HOME", "/tmp".into()),
            ("TMPDIR", "/tmp".into()),
            ("LANG", "C.UTF-8".into()),
            ("CI", "true".into()),
            ("MAKIATTO_BRANCH", job.branch.into()),
            ("MAKIATTO_COMMIT", job.commit.into()),
            ("MAKIATTO_DOMAIN", job.domain.into()),
            ("MAKIATTO_URL", job.url.into()),
            ("MAKIATTO_CACHE_DIR", CACHE.into()),
        ];
        env.retain(|(k, _)| !fixed.iter().any(|(f, _)| f == k));
        env.extend(fixed.into_iter().map(|(k, v)| (k.to_string(), v)));
        env
    }
}
