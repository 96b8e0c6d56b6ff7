//! `[build]` in `node.toml`: the limits every site build on this node runs
//! under. The operator sets them once for the machine; a pushed site can
//! only ask for the network (`makiatto.toml`), never for more resources.

use super::ConfigError;
use super::diagnostic::Source;
use super::raw::RawBuildLimits;
use super::wasm::positive;

/// The limits of one site build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLimits {
    /// Wall-clock seconds before the build is killed (default 600).
    pub timeout_secs: u64,
    /// Address space of each build process in MiB (default 4096).
    pub memory_mb: u64,
    /// Processes and threads the build user may run (default 512).
    pub max_processes: u64,
    /// Largest total size of the build output, and of any file the build
    /// writes, in MiB (default 1024).
    pub max_output_mb: u64,
    /// Build log kept and sent to the pusher, in KiB (default 1024); the
    /// build goes on past it, its further output is dropped.
    pub max_log_kb: u64,
    /// Pushes of one repository that may wait for its running build
    /// (default 4); one more is refused until the queue drains.
    pub queue: usize,
}

impl Default for BuildLimits {
    fn default() -> BuildLimits {
        BuildLimits {
            timeout_secs: 600,
            memory_mb: 4096,
            max_processes: 512,
            max_output_mb: 1024,
            max_log_kb: 1024,
            queue: 4,
        }
    }
}

/// Checks `[build]`; absent fields keep their defaults.
pub(super) fn build_limits(
    src: Source<'_>,
    raw: &RawBuildLimits,
) -> Result<BuildLimits, ConfigError> {
    let d = BuildLimits::default();
    let queue = match &raw.queue {
        Some(q) => usize::try_from(*q.get_ref()).unwrap_or(usize::MAX),
        None => d.queue,
    };
    Ok(BuildLimits {
        timeout_secs: positive(src, &raw.timeout_secs, "build.timeout_secs")?
            .unwrap_or(d.timeout_secs),
        memory_mb: positive(src, &raw.memory_mb, "build.memory_mb")?.unwrap_or(d.memory_mb),
        max_processes: positive(src, &raw.max_processes, "build.max_processes")?
            .unwrap_or(d.max_processes),
        max_output_mb: positive(src, &raw.max_output_mb, "build.max_output_mb")?
            .unwrap_or(d.max_output_mb),
        max_log_kb: positive(src, &raw.max_log_kb, "build.max_log_kb")?.unwrap_or(d.max_log_kb),
        queue,
    })
}
